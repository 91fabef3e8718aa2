//! smoltcp's side: two `Interface`s (Ethernet medium, IPv4) joined by the
//! [`frame_wire`](super::frame_wire), one TCP socket each, driven on the
//! same virtual clock and in the same rounds as tpa's two pipelines.
//!
//! Settings, against tpa's `TcpConfig::default()`:
//! - the same: send and receive buffers of 512 KiB (so the same window
//!   scale, 4), MSS 1460 from the 1500-byte MTU, timestamps (1 ms ticks of
//!   the virtual clock), window scaling, SACK (smoltcp always offers it),
//!   Nagle off (tpa's `nodelay`), delayed ACKs of at most 40 ms (smoltcp's
//!   default is 10 ms), CUBIC (the `socket-tcp-cubic` feature), no
//!   keepalive, no idle timeout, checksums in software;
//! - different, because smoltcp has no knob for them: the initial
//!   congestion window (smoltcp's CUBIC starts at two segments of 536
//!   bytes, tpa at 10 segments); RTO bounds (smoltcp: 1 s to 60 s, tpa
//!   200 ms to 120 s; no loss here, so no retransmission either way); TIME_WAIT (smoltcp
//!   10 s and a socket in TIME_WAIT is reused at once by the next
//!   `connect`; tpa 60 s, one table entry per connection); no listen
//!   backlog (smoltcp's listening socket becomes the connection: the crr
//!   server listens again once it is closed);
//! - smoltcp copies the application's bytes into its send ring and out of
//!   its receive ring (`send_slice`, and `recv` handing a slice of the ring
//!   that the check reads in place), and writes each frame whole into the
//!   wire's buffer: three copies of every payload byte, where tpa copies
//!   on `send` and hands the received buffers to the application.

use std::sync::atomic::{AtomicU64, Ordering};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, Ipv4Address};

use super::frame_wire::{WireEnd, WireStats};
use super::stream::{request, Message, Pattern, Received, Transactions};
use super::{Peers, Workload, MAX_ROUNDS, PORT, ROUND_US, SOCKET_BUFFER};

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const CLIENT_IP: Ipv4Address = Ipv4Address::new(192, 0, 2, 1);
const SERVER_IP: Ipv4Address = Ipv4Address::new(192, 0, 2, 2);

/// The virtual clock, in microseconds, for the timestamp option: smoltcp
/// asks a plain `fn() -> u32` for TSval.
static NOW_US: AtomicU64 = AtomicU64::new(0);

/// TSval: milliseconds of the virtual clock (tpa's 1 ms ticks).
fn tsval() -> u32 {
    (NOW_US.load(Ordering::Relaxed) / 1000) as u32
}

/// One host: an interface, its end of the wire, one TCP socket.
struct Host {
    iface: Interface,
    device: WireEnd,
    sockets: SocketSet<'static>,
    handle: SocketHandle,
}

impl Host {
    fn new(mut device: WireEnd, mac: [u8; 6], ip: Ipv4Address, seed: u64) -> Host {
        let mut config = Config::new(EthernetAddress(mac).into());
        config.random_seed = seed;
        let mut iface = Interface::new(config, &mut device, Instant::ZERO);
        iface.update_ip_addrs(|addrs| {
            addrs
                .push(IpCidr::new(IpAddress::Ipv4(ip), 24))
                .expect("room for one address");
        });
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
            tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
        );
        socket.set_nagle_enabled(false);
        socket.set_ack_delay(Some(Duration::from_millis(40)));
        socket.set_tsval_generator(Some(tsval));
        socket.set_congestion_control(tcp::CongestionControl::Cubic);
        let mut sockets = SocketSet::new(Vec::new());
        let handle = sockets.add(socket);
        Host {
            iface,
            device,
            sockets,
            handle,
        }
    }

    /// Receives what the wire holds and sends what the socket has.
    #[inline]
    fn poll(&mut self, now: Instant) {
        self.iface.poll(now, &mut self.device, &mut self.sockets);
    }

    /// Sends what the application's calls queued (after it ran).
    #[inline]
    fn flush(&mut self, now: Instant) {
        self.iface
            .poll_egress(now, &mut self.device, &mut self.sockets);
    }

    #[inline]
    fn socket(&mut self) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut(self.handle)
    }
}

/// A client and a server host on one wire.
pub struct SmoltcpPeers {
    client: Host,
    server: Host,
    now_us: u64,
    pattern: Pattern,
    /// Bulk bytes the client queued, and what the server checked.
    sent: u64,
    received: Received,
    /// The server's request being gathered (rr and crr).
    server_msg: Message,
    rr: Transactions,
    crr: Transactions,
    next_port: u16,
}

impl SmoltcpPeers {
    /// One round's step of the virtual clock.
    #[inline]
    fn tick(&mut self) -> Instant {
        self.now_us += ROUND_US;
        NOW_US.store(self.now_us, Ordering::Relaxed);
        Instant::from_micros(self.now_us as i64)
    }

    /// The server's side of rr and crr: gathers requests, echoes each.
    /// Whether it did anything.
    #[inline]
    fn serve(server: &mut Host, msg: &mut Message) -> bool {
        let s = server.socket();
        let mut work = false;
        while s.can_recv() {
            let took = s.recv(|buf| {
                let n = msg.fill(buf);
                (n, n)
            });
            work = true;
            if msg.is_full() {
                if s.send_slice(msg.bytes()) != Ok(msg.bytes().len()) {
                    // Never with 512 KiB of send buffer and one request in
                    // flight; the client would then wait and fail the run.
                    break;
                }
                msg.clear();
            }
            if !matches!(took, Ok(n) if n > 0) {
                break;
            }
        }
        work
    }

    fn next_port(&mut self) -> u16 {
        self.next_port = if self.next_port == u16::MAX {
            49152
        } else {
            self.next_port + 1
        };
        self.next_port
    }
}

impl Peers for SmoltcpPeers {
    const NAME: &'static str = "smoltcp";

    fn new(_: Workload) -> Result<Self, String> {
        let (a, b) = WireEnd::pair();
        Ok(SmoltcpPeers {
            client: Host::new(a, CLIENT_MAC, CLIENT_IP, 1),
            server: Host::new(b, SERVER_MAC, SERVER_IP, 2),
            now_us: 0,
            pattern: Pattern::new(),
            sent: 0,
            received: Received::default(),
            server_msg: Message::default(),
            rr: Transactions::default(),
            crr: Transactions::default(),
            next_port: 49151,
        })
    }

    fn connect(&mut self) -> Result<(), String> {
        self.server
            .socket()
            .listen(PORT)
            .map_err(|e| format!("listen: {e}"))?;
        let port = self.next_port();
        let c = &mut self.client;
        c.sockets
            .get_mut::<tcp::Socket>(c.handle)
            .connect(c.iface.context(), (IpAddress::Ipv4(SERVER_IP), PORT), port)
            .map_err(|e| format!("connect: {e}"))?;
        for _ in 0..MAX_ROUNDS {
            let now = self.tick();
            self.client.poll(now);
            self.server.poll(now);
            if self.client.socket().state() == tcp::State::Established
                && self.server.socket().state() == tcp::State::Established
            {
                return Ok(());
            }
        }
        Err(format!(
            "not established after {MAX_ROUNDS} rounds: client {}, server {}",
            self.client.socket().state(),
            self.server.socket().state()
        ))
    }

    fn bulk(&mut self, len: u64) -> Result<(), String> {
        let target = self.sent + len;
        for _ in 0..MAX_ROUNDS {
            let now = self.tick();
            let SmoltcpPeers {
                client,
                server,
                pattern,
                sent,
                received,
                ..
            } = self;
            client.poll(now);
            let s = client.socket();
            let mut work = false;
            while *sent < target && s.can_send() {
                let chunk = pattern.at(*sent, (target - *sent) as usize);
                match s.send_slice(chunk) {
                    Ok(0) => break,
                    Ok(n) => *sent += n as u64,
                    Err(e) => return Err(format!("send: {e}")),
                }
                work = true;
            }
            if work {
                client.flush(now);
            }
            server.poll(now);
            let s = server.socket();
            let mut work = false;
            while s.can_recv() {
                s.recv(|buf| {
                    received.check(pattern, buf);
                    (buf.len(), ())
                })
                .map_err(|e| format!("recv: {e}"))?;
                work = true;
            }
            if work {
                server.flush(now);
            }
            if received.bytes >= target {
                return Ok(());
            }
        }
        Err(format!(
            "bulk: {} of {target} bytes after {MAX_ROUNDS} rounds",
            self.received.bytes
        ))
    }

    fn rr(&mut self) -> Result<(), String> {
        let req = request(self.rr.done + self.rr.wrong);
        let mut resp = Message::default();
        let mut asked = false;
        for _ in 0..MAX_ROUNDS {
            let now = self.tick();
            self.client.poll(now);
            let s = self.client.socket();
            let mut work = false;
            if !asked {
                if s.send_slice(&req) != Ok(req.len()) {
                    return Err("rr: the request did not fit".into());
                }
                asked = true;
                work = true;
            }
            while s.can_recv() && !resp.is_full() {
                s.recv(|buf| {
                    let n = resp.fill(buf);
                    (n, ())
                })
                .map_err(|e| format!("recv: {e}"))?;
                work = true;
            }
            if work {
                self.client.flush(now);
            }
            if resp.is_full() {
                if resp.bytes() == &req {
                    self.rr.done += 1;
                } else {
                    self.rr.wrong += 1;
                }
                return Ok(());
            }
            self.server.poll(now);
            if Self::serve(&mut self.server, &mut self.server_msg) {
                self.server.flush(now);
            }
        }
        Err(format!("rr: no response after {MAX_ROUNDS} rounds"))
    }

    fn crr(&mut self) -> Result<(), String> {
        let req = request(self.crr.done + self.crr.wrong);
        let server = self.server.socket();
        if !server.is_listening() {
            server.listen(PORT).map_err(|e| format!("listen: {e}"))?;
        }
        let port = self.next_port();
        let c = &mut self.client;
        c.sockets
            .get_mut::<tcp::Socket>(c.handle)
            .connect(c.iface.context(), (IpAddress::Ipv4(SERVER_IP), PORT), port)
            .map_err(|e| format!("connect: {e}"))?;
        let mut resp = Message::default();
        let (mut asked, mut closed, mut served) = (false, false, false);
        for _ in 0..MAX_ROUNDS {
            let now = self.tick();
            self.client.poll(now);
            let s = self.client.socket();
            let mut work = false;
            if !asked && s.may_send() {
                if s.send_slice(&req) != Ok(req.len()) {
                    return Err("crr: the request did not fit".into());
                }
                asked = true;
                work = true;
            }
            while s.can_recv() && !resp.is_full() {
                s.recv(|buf| {
                    let n = resp.fill(buf);
                    (n, ())
                })
                .map_err(|e| format!("recv: {e}"))?;
                work = true;
            }
            if resp.is_full() && !closed {
                s.close();
                closed = true;
                work = true;
            }
            let client_done = closed && !s.is_open();
            if work {
                self.client.flush(now);
            }
            self.server.poll(now);
            let mut work = Self::serve(&mut self.server, &mut self.server_msg);
            let s = self.server.socket();
            match s.state() {
                tcp::State::CloseWait => {
                    s.close();
                    work = true;
                }
                tcp::State::Closed if !served => {
                    s.listen(PORT).map_err(|e| format!("listen: {e}"))?;
                    served = true;
                }
                _ => {}
            }
            if work {
                self.server.flush(now);
            }
            if client_done && served {
                if resp.bytes() == &req {
                    self.crr.done += 1;
                } else {
                    self.crr.wrong += 1;
                }
                return Ok(());
            }
        }
        Err(format!(
            "crr: not done after {MAX_ROUNDS} rounds: client {}, server {}",
            self.client.socket().state(),
            self.server.socket().state()
        ))
    }

    fn check(&self) -> Result<(), String> {
        let w = self.client.device.stats();
        let problems: Vec<String> = [
            (self.received.wrong > 0).then(|| {
                format!(
                    "{} of {} bulk bytes wrong",
                    self.received.wrong, self.received.bytes
                )
            }),
            (self.rr.wrong > 0).then(|| format!("{} rr responses wrong", self.rr.wrong)),
            (self.crr.wrong > 0).then(|| format!("{} crr responses wrong", self.crr.wrong)),
            (w.dropped > 0).then(|| format!("{} frames dropped on the wire", w.dropped)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("smoltcp: {}", problems.join("; ")))
        }
    }

    fn summary(&self) -> String {
        let WireStats { sent, .. } = self.client.device.stats();
        format!(
            "smoltcp: {} bulk bytes checked, {} rr, {} crr; frames client->server {}, \
             server->client {}; {} virtual us",
            self.received.bytes, self.rr.done, self.crr.done, sent[0], sent[1], self.now_us
        )
    }
}
