//! Receive alone: how many 60-byte frames a second (64 on a wire with the
//! FCS) a tpa port takes from the kernel when nothing is answered, AF_XDP
//! and AF_PACKET on the same veth pair, TAP on its own.
//!
//! A sender thread blasts one 60-byte UDP/IPv4 frame (to 10.97.0.2, port
//! 9) through a packet socket of its own (`sendmmsg`, 32 frames a call,
//! `PACKET_QDISC_BYPASS`) as fast as the kernel takes them: on veth `xa`
//! towards `xb`, where the tpa port receives; on the TAP's kernel side,
//! towards tpa's end of the TAP. The port under test is the only one open
//! on its interface (the AF_XDP port's XDP program would otherwise take
//! the frames first):
//!
//! - `af_xdp/rx`: an AF_XDP port on `xb` (copy mode, tpa's program in
//!   native mode, port 9 open; fill and RX rings of 4096);
//! - `af_packet/rx`: an AF_PACKET port on `xb`, default receive ring
//!   (TPACKET_V2 slots); the kernel's stack also sees each frame and drops
//!   it (`xb` has no address);
//! - `tap/rx`: a TAP port, reading each frame with a system call.
//!
//! Each round measures the three in turn (the order rotating), each for
//! [`MEASURE`] after a warm-up of [`WARM_UP`], with the sender running
//! throughout: frames sent (what the sender's `sendmmsg` calls accepted)
//! and frames received by the port in the same interval. The report is
//! the median over [`ROUNDS`] rounds of each rate, written to
//! `target/bench-results/kernel-rx.json` for `benches/report.py` (table
//! `kernel-ports-rx`, groups `af_xdp/rx`, `af_packet/rx`, `tap/rx`,
//! functions `sent` and `received`). What the port did not take was
//! dropped by the kernel; where is printed per round: the sender's device
//! (a veth's full peer queue, a TAP's full queue), the receiving device,
//! and the port's own ring (AF_XDP's RX ring or fill ring, AF_PACKET's
//! ring).
//!
//! On veth the receive work of the kernel (the XDP program and the copy
//! into the UMEM, or the `sk_buff`, the packet socket's copy into its ring
//! and the stack) runs in the sender's `sendmmsg`, on the sender's CPU, so
//! the sent rate is what the sender and that work together allow; the
//! receiver thread only empties rings. Received below sent means the
//! receiver was the limit. Needs root.
//!
//! Run: `cargo bench -p tpa-benches --bench kernel_rx`. `ROUNDS`,
//! `MEASURE_MS` change the run.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use tpa::buf::{BufferPool, PacketBuf, Pool, PoolBuf, PoolConfig};
use tpa::port::af_packet::{AfPacket, AfPacketConfig};
use tpa::port::af_xdp::{AfXdp, AfXdpConfig, Transport, XskRingSize};
use tpa::port::tap::{Tap, TapConfig};
use tpa::port::{Burst, Port};
use tpa::wire::MacAddr;
use tpa_benches::results::{self, Record};
use tpa_tests::netns::Netns;

/// Rounds; each measures every port once.
const ROUNDS: usize = 5;
/// How long the sender runs before a measurement starts.
const WARM_UP: Duration = Duration::from_millis(300);
/// How long one measurement lasts.
const MEASURE: Duration = Duration::from_millis(1000);
/// How long the port must stay empty for its rings to count as drained.
const QUIET: Duration = Duration::from_millis(50);
/// Frames per `sendmmsg`.
const SEND_BATCH: usize = 32;
const SENDER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0xbe, 0x01]);
const RX_IP: [u8; 4] = [10, 97, 0, 2];
const UDP_PORT: u16 = 9;

/// A 60-byte UDP/IPv4 frame from 10.97.0.1:9 to 10.97.0.2:9 for `dst`.
fn frame(dst: MacAddr) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(SENDER_MAC.0, dst.0)
        .ipv4([10, 97, 0, 1], RX_IP, 64)
        .udp(UDP_PORT, UDP_PORT);
    let payload = [0x5au8; 18];
    let mut f = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut f, &payload).expect("build UDP frame");
    assert_eq!(f.len(), 60);
    f
}

fn is_ours(f: &[u8]) -> bool {
    f.len() == 60 && f[12..14] == [8, 0] && f[30..34] == RX_IP && f[36..38] == [0, 9]
}

/// What the sender thread and the measuring thread share.
#[derive(Default)]
struct Control {
    /// Send while set; pause while clear.
    run: AtomicBool,
    /// Set by the sender while it is paused (no call in progress).
    idle: AtomicBool,
    /// End the thread.
    stop: AtomicBool,
    /// Frames the kernel accepted.
    sent: AtomicU64,
    /// Frames the kernel refused (a `sendmmsg` stops at the first frame
    /// the device dropped: a veth whose peer's queue is full, a TAP whose
    /// queue is full; with `PACKET_QDISC_BYPASS` that is `ENOBUFS`).
    refused: AtomicU64,
}

/// A thread sending one frame on an interface as fast as the kernel
/// takes it, counting what it took and what it refused.
struct Sender {
    control: Arc<Control>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Sender {
    /// Starts sending `frame` on `ifname` of `ns`.
    fn start(ns: &Netns, ifname: &str, frame: Vec<u8>) -> Sender {
        let (fd, ifindex) = ns.enter(|| {
            // SAFETY: plain socket(2); checked below. Protocol 0: the
            // socket receives nothing.
            let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
            assert!(
                raw >= 0,
                "packet socket: {}",
                std::io::Error::last_os_error()
            );
            // SAFETY: a fresh descriptor nobody else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            let one: libc::c_int = 1;
            // SAFETY: an int option of the size passed.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    libc::PACKET_QDISC_BYPASS,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            assert_eq!(
                rc,
                0,
                "PACKET_QDISC_BYPASS: {}",
                std::io::Error::last_os_error()
            );
            let name = std::ffi::CString::new(ifname).expect("name");
            // SAFETY: a NUL-terminated name.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
            assert_ne!(ifindex, 0, "{ifname}");
            (fd, ifindex)
        });
        let control = Arc::new(Control::default());
        control.run.store(true, Ordering::SeqCst);
        let thread = {
            let control = control.clone();
            thread::spawn(move || blast(&fd, ifindex, &frame, &control))
        };
        Sender {
            control,
            thread: Some(thread),
        }
    }

    /// Pauses the sender and waits until it is between calls.
    fn pause(&self) {
        self.control.run.store(false, Ordering::SeqCst);
        while !self.control.idle.load(Ordering::SeqCst) {
            let ended = self.thread.as_ref().is_none_or(|t| t.is_finished());
            assert!(!ended, "the sender thread ended (see its panic above)");
            thread::yield_now();
        }
    }

    fn resume(&self) {
        self.control.idle.store(false, Ordering::SeqCst);
        self.control.run.store(true, Ordering::SeqCst);
    }

    /// Frames accepted and refused so far.
    fn counts(&self) -> (u64, u64) {
        (
            self.control.sent.load(Ordering::SeqCst),
            self.control.refused.load(Ordering::SeqCst),
        )
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.control.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("sender thread");
        }
    }
}

/// The sender's loop: `sendmmsg` of [`SEND_BATCH`] copies of `frame`
/// while `control.run` is set.
fn blast(fd: &OwnedFd, ifindex: u32, frame: &[u8], control: &Control) {
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    to.sll_family = libc::AF_PACKET as u16;
    to.sll_protocol = (libc::ETH_P_IP as u16).to_be();
    to.sll_ifindex = ifindex as i32;
    to.sll_halen = 6;
    let mut iov = libc::iovec {
        iov_base: frame.as_ptr() as *mut libc::c_void,
        iov_len: frame.len(),
    };
    // SAFETY: all-zero is a valid mmsghdr; the pointers are set below.
    let mut msgs: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
    for m in &mut msgs {
        m.msg_hdr.msg_name = (&mut to as *mut libc::sockaddr_ll).cast();
        m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        m.msg_hdr.msg_iov = &mut iov;
        m.msg_hdr.msg_iovlen = 1;
    }
    while !control.stop.load(Ordering::Relaxed) {
        if !control.run.load(Ordering::SeqCst) {
            control.idle.store(true, Ordering::SeqCst);
            thread::sleep(Duration::from_micros(200));
            continue;
        }
        // SAFETY: every header points to `to` and `iov` (which points to
        // `frame`), all live across the call; the kernel only reads them
        // (and writes `msg_len`).
        let n = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), SEND_BATCH as u32, 0) };
        let accepted = n.max(0) as u64;
        control.sent.fetch_add(accepted, Ordering::SeqCst);
        if accepted < SEND_BATCH as u64 {
            // The call stopped at the first frame the kernel refused; its
            // error is returned only when no frame went before it.
            if n < 0 {
                let e = std::io::Error::last_os_error();
                assert_eq!(
                    e.raw_os_error(),
                    Some(libc::ENOBUFS),
                    "sender: sendmmsg: {e}"
                );
            }
            control.refused.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Drop counters of `ifname` in `ns` from /proc/net/dev: (rx dropped,
/// tx dropped).
fn dev_drops(ns: &Netns, ifname: &str) -> (u64, u64) {
    let text = ns.exec(&["cat", "/proc/net/dev"]);
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{ifname}:")))
        .unwrap_or_else(|| panic!("no {ifname} in /proc/net/dev:\n{text}"));
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().expect("a count"))
        .collect();
    // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs drop ...
    (v[3], v[11])
}

/// One measurement: frames offered and received over `elapsed`, and the
/// drop counters that moved.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// Frames the sender offered (accepted or refused).
    sent: u64,
    /// Of those, refused at once by the sender's device.
    refused: u64,
    /// Frames of those the port received.
    received: u64,
    /// How long the sender sent.
    elapsed: Duration,
    /// The sender's device's drop counter (its peer's queue full).
    sender_dev_dropped: u64,
    /// The receiving device's drop counter.
    receiver_dev_dropped: u64,
    /// The port's own drop counter (its ring full; with AF_XDP the
    /// receiving device counts the same frames too).
    port_dropped: u64,
}

impl Measured {
    fn rate(n: u64, t: Duration) -> f64 {
        n as f64 / t.as_secs_f64() / 1e6
    }
}

/// Receives on `port` until nothing came for [`QUIET`]; how many frames.
fn drain<P: Port<Buf = PoolBuf>>(port: &mut P, rx: &mut Burst<PoolBuf>) -> u64 {
    let mut n = 0u64;
    let mut last = Instant::now();
    while last.elapsed() < QUIET {
        if port.rx_burst(rx) > 0 {
            n += rx.drain().filter(|b| is_ours(b.data())).count() as u64;
            last = Instant::now();
        }
    }
    n
}

/// Receives on `port` while `sender` sends: a warm-up; then, from empty
/// rings, the sender runs for `measure` while the port receives, and the
/// port takes what is still on its way once the sender paused: every
/// frame counted as received was sent in the interval. `port_drops`
/// reads the port's own drop counter.
fn measure<P: Port<Buf = PoolBuf>>(
    ns: &Netns,
    devs: (&str, &str),
    port: &mut P,
    sender: &Sender,
    measure: Duration,
    mut port_drops: impl FnMut(&mut P) -> u64,
) -> Measured {
    let mut rx: Burst<PoolBuf> = Burst::new();
    let until = Instant::now() + WARM_UP;
    while Instant::now() < until {
        port.rx_burst(&mut rx);
        rx.clear();
    }
    sender.pause();
    drain(port, &mut rx);
    let (_, sender_tx0) = dev_drops(ns, devs.0);
    let (receiver_rx0, _) = dev_drops(ns, devs.1);
    let port0 = port_drops(port);
    let (sent0, refused0) = sender.counts();
    let start = Instant::now();
    sender.resume();
    let mut received = 0u64;
    while start.elapsed() < measure {
        if port.rx_burst(&mut rx) > 0 {
            received += rx.drain().filter(|b| is_ours(b.data())).count() as u64;
        }
    }
    sender.pause();
    let elapsed = start.elapsed();
    received += drain(port, &mut rx);
    let (sent1, refused1) = sender.counts();
    let (_, sender_tx1) = dev_drops(ns, devs.0);
    let (receiver_rx1, _) = dev_drops(ns, devs.1);
    let refused = refused1 - refused0;
    Measured {
        sent: sent1 - sent0 + refused,
        refused,
        received,
        elapsed,
        sender_dev_dropped: sender_tx1 - sender_tx0,
        receiver_dev_dropped: receiver_rx1 - receiver_rx0,
        port_dropped: port_drops(port) - port0,
    }
}

fn pool() -> Pool {
    Pool::new(PoolConfig {
        name: "kernel-rx-bench".into(),
        capacity: 32768,
        huge_pages: false,
        rx_reserve: 4096,
        ..PoolConfig::default()
    })
    .expect("pool")
}

/// The three ports, opened for one measurement each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    AfXdp,
    AfPacket,
    Tap,
}

impl Kind {
    fn group(self) -> &'static str {
        match self {
            Kind::AfXdp => "af_xdp/rx",
            Kind::AfPacket => "af_packet/rx",
            Kind::Tap => "tap/rx",
        }
    }
}

fn run(kind: Kind, ns: &Netns, pool: &Pool, measure_for: Duration) -> Measured {
    match kind {
        Kind::AfXdp => {
            let cfg = AfXdpConfig {
                rings: XskRingSize {
                    fill: 4096,
                    rx: 4096,
                    tx: 1024,
                    completion: 1024,
                },
                ..AfXdpConfig::new("xb", vec![IpAddr::V4(Ipv4Addr::from(RX_IP))])
            };
            let mut port = ns
                .enter(|| AfXdp::open(&cfg, pool.clone()))
                .expect("AF_XDP on xb");
            port.filter()
                .open_port(Transport::Udp, UDP_PORT)
                .expect("open port 9");
            let sender = Sender::start(ns, "xa", frame(port.caps().mac));
            let m = measure(ns, ("xa", "xb"), &mut port, &sender, measure_for, |p| {
                p.stats().rx_kernel_dropped
            });
            drop(sender);
            let x = port.filter().counters();
            eprintln!("  af_xdp: xdp {x:?}; port {:?}", port.stats());
            m
        }
        Kind::AfPacket => {
            let mut port = ns
                .enter(|| AfPacket::open(&AfPacketConfig::new("xb"), pool.clone()))
                .expect("AF_PACKET on xb");
            let sender = Sender::start(ns, "xa", frame(port.caps().mac));
            measure(ns, ("xa", "xb"), &mut port, &sender, measure_for, |p| {
                p.stats().rx_kernel_drops
            })
        }
        Kind::Tap => {
            let mut port = ns
                .enter(|| Tap::open(&TapConfig::new("tapx"), pool.clone()))
                .expect("TAP");
            let sender = Sender::start(ns, "tapx", frame(port.caps().mac));
            // tun drops what its queue cannot hold as the device's tx
            // drops, counted as the sender's device's.
            measure(ns, ("tapx", "tapx"), &mut port, &sender, measure_for, |_| 0)
        }
    }
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{key}={v}: not a number"))
        })
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter or other flags are not taken.
    if std::env::args().skip(1).any(|a| a != "--bench") {
        eprintln!("kernel_rx takes no arguments (ROUNDS and MEASURE_MS from the environment)");
    }
    let rounds: usize = env_or("ROUNDS", ROUNDS);
    let measure_for = Duration::from_millis(env_or("MEASURE_MS", MEASURE.as_millis() as u64));
    let pool = pool();
    let ns = Netns::new("bench-rx");
    ns.add_veth("xa", "xb");
    ns.up("xa");
    ns.up("xb");
    let kinds = [Kind::AfXdp, Kind::AfPacket, Kind::Tap];
    let mut all: Vec<(Kind, Measured)> = Vec::new();
    for round in 0..rounds {
        for i in 0..kinds.len() {
            let kind = kinds[(i + round) % kinds.len()];
            let m = run(kind, &ns, &pool, measure_for);
            eprintln!(
                "round {round} {}: sent {} ({:.3} Mpps; {} refused at once), received {} ({:.3} Mpps); drop counters: sender's device {}, receiving device {}, port's ring {}",
                kind.group(),
                m.sent,
                Measured::rate(m.sent, m.elapsed),
                m.refused,
                m.received,
                Measured::rate(m.received, m.elapsed),
                m.sender_dev_dropped,
                m.receiver_dev_dropped,
                m.port_dropped
            );
            all.push((kind, m));
            pool.assert_whole();
        }
    }
    let mut records = Vec::new();
    println!(
        "{:<14} {:>12} {:>14} {:>10}",
        "port", "sent Mpps", "received Mpps", "received"
    );
    for kind in kinds {
        let ms: Vec<Measured> = all
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, m)| *m)
            .collect();
        let sent = median(
            ms.iter()
                .map(|m| Measured::rate(m.sent, m.elapsed))
                .collect(),
        );
        let received = median(
            ms.iter()
                .map(|m| Measured::rate(m.received, m.elapsed))
                .collect(),
        );
        println!(
            "{:<14} {sent:>12.3} {received:>14.3} {:>9.1}%",
            kind.group(),
            100.0 * received / sent
        );
        for (function, mpps) in [("sent", sent), ("received", received)] {
            records.push(Record {
                group: kind.group().into(),
                function: function.into(),
                ns_per_iter: Some(1e3 / mpps),
                instructions_per_iter: None,
                elements: 1,
                samples: ms.len() as u64,
            });
        }
    }
    match results::write("kernel-rx", &records) {
        Ok(path) => eprintln!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write the records: {e}"),
    }
}
