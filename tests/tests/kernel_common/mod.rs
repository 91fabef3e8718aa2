//! Frames and kernel-side helpers shared by the TAP and AF_PACKET tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use tpa::buf::{L4Protocol, LayerOffsets, PacketBuf, Pool, PoolBuf, PoolConfig, TxRequest};
use tpa::header::checksum;
use tpa::port::{Burst, Port, PortError, RxWait};
use tpa::wire::MacAddr;
use tpa_tests::fixtures::hex;
use tpa_tests::netns::{Background, Netns};

/// How long a test waits for a frame before failing (not a timing
/// assertion: only a bound on a hang).
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A small pool on normal pages, named after the test.
pub fn test_pool(name: &str) -> Pool {
    Pool::new(PoolConfig {
        name: name.to_owned(),
        capacity: 512,
        cache_size: 32,
        huge_pages: false,
        ..PoolConfig::default()
    })
    .expect("pool")
}

/// One line describing a frame, for failure messages.
pub fn describe(frame: &[u8]) -> String {
    if frame.len() < 14 {
        return format!("runt of {} bytes", frame.len());
    }
    format!(
        "{} -> {} type {:02x}{:02x} len {}",
        MacAddr(frame[6..12].try_into().unwrap()),
        MacAddr(frame[0..6].try_into().unwrap()),
        frame[12],
        frame[13],
        frame.len()
    )
}

/// Receives from `port` until a frame satisfies `want`, dropping others.
///
/// # Panics
/// After [`PATIENCE`], listing what was received instead.
pub fn recv_matching<P: Port<Buf = PoolBuf>>(
    port: &mut P,
    what: &str,
    mut want: impl FnMut(&[u8]) -> bool,
) -> PoolBuf {
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut rx: Burst<PoolBuf> = Burst::new();
    loop {
        port.rx_burst(&mut rx);
        let mut found = None;
        for buf in rx.drain() {
            if found.is_none() && want(buf.data()) {
                found = Some(buf);
            } else {
                seen.push(describe(buf.data()));
            }
        }
        if let Some(buf) = found {
            return buf;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{}: no {what} received; got {} other frame(s): {:#?}",
            port.caps().name,
            seen.len(),
            seen
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Copies `frame` into a buffer from `port` and transmits it.
///
/// # Panics
/// If no buffer is free or the port does not take the frame in time.
pub fn send_frame<P: Port<Buf = PoolBuf>>(port: &mut P, frame: &[u8]) {
    send_prepared(port, frame, |_| {});
}

/// Copies `frame` into a buffer from `port`, lets `prepare` fill in its
/// metadata, and transmits it, waiting until the port takes it.
fn send_prepared<P: Port<Buf = PoolBuf>>(
    port: &mut P,
    frame: &[u8],
    prepare: impl FnOnce(&mut PoolBuf),
) {
    let mut buf = port.alloc().expect("a free buffer");
    buf.append(frame.len())
        .expect("room for the frame")
        .copy_from_slice(frame);
    prepare(&mut buf);
    let mut tx: Burst<PoolBuf> = Burst::new();
    tx.push(buf);
    let start = Instant::now();
    while !tx.is_empty() {
        port.tx_burst(&mut tx);
        assert!(start.elapsed() < PATIENCE, "the port never took the frame");
    }
}

/// The fields of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

/// Parses an Ethernet frame carrying an Ethernet/IPv4 ARP packet.
pub fn parse_arp(frame: &[u8]) -> Option<Arp> {
    if frame.len() < 42 || frame[12..14] != [0x08, 0x06] {
        return None;
    }
    let a = &frame[14..42];
    // htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4.
    if a[0..6] != [0, 1, 8, 0, 6, 4] {
        return None;
    }
    Some(Arp {
        op: u16::from_be_bytes([a[6], a[7]]),
        sender_mac: MacAddr(a[8..14].try_into().unwrap()),
        sender_ip: Ipv4Addr::new(a[14], a[15], a[16], a[17]),
        target_mac: MacAddr(a[18..24].try_into().unwrap()),
        target_ip: Ipv4Addr::new(a[24], a[25], a[26], a[27]),
    })
}

/// An Ethernet frame with a broadcast ARP request from `mac` (`ip`) for
/// `target_ip`.
pub fn arp_request(mac: MacAddr, ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    let mut f = arp_reply(mac, ip, MacAddr([0; 6]), target_ip);
    f[..6].copy_from_slice(&MacAddr::BROADCAST.0);
    f[21] = 1; // operation: request
    f
}

/// An Ethernet frame with an ARP reply: `mac` has `ip`, told to `to`.
pub fn arp_reply(mac: MacAddr, ip: Ipv4Addr, to_mac: MacAddr, to_ip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&to_mac.0);
    f.extend_from_slice(&mac.0);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    f.extend_from_slice(&mac.0);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&to_mac.0);
    f.extend_from_slice(&to_ip.octets());
    f
}

/// An Ethernet/IPv4/UDP frame with correct checksums.
#[allow(clippy::too_many_arguments)]
pub fn udp_frame(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut f = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut f, payload).expect("build UDP frame");
    f
}

/// A UDP datagram found in a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Udp {
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    pub vlan: Option<u16>,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub payload: Vec<u8>,
}

/// Parses an Ethernet (optionally VLAN-tagged) IPv4 UDP frame.
pub fn parse_udp(frame: &[u8]) -> Option<Udp> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        return None;
    };
    let Some(TransportSlice::Udp(udp)) = &p.transport else {
        return None;
    };
    // The outermost tag, as the port's VLAN filter sees it.
    let vlan = p.vlan_ids().first().map(|id| id.value());
    Some(Udp {
        src_mac: MacAddr(frame[6..12].try_into().unwrap()),
        dst_mac: MacAddr(frame[0..6].try_into().unwrap()),
        vlan,
        src: ip.header().source_addr(),
        dst: ip.header().destination_addr(),
        sport: udp.source_port(),
        dport: udp.destination_port(),
        payload: udp.payload().to_vec(),
    })
}

/// Sends one UDP datagram per source port in `sports` from the kernel in
/// `ns` to `dst:dport`.
pub fn kernel_send_udp(ns: &Netns, dst: Ipv4Addr, dport: u16, sports: &[u16], payload: &str) {
    let script = format!(
        "import socket\n\
         for sp in {sports:?}:\n\
         \x20   s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         \x20   s.bind(('0.0.0.0', sp))\n\
         \x20   s.sendto(b'{payload}', ('{dst}', {dport}))\n\
         \x20   s.close()\n"
    );
    ns.exec(&["python3", "-c", &script]);
}

/// Starts a kernel UDP socket in `ns` bound to `ip:port` that prints the
/// first datagram it receives as `<src ip> <src port> <hex payload>`.
pub fn kernel_udp_listener(ns: &Netns, ip: Ipv4Addr, port: u16) -> Background {
    let script = format!(
        "import socket, sys\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.bind(('{ip}', {port}))\n\
         s.settimeout(20)\n\
         print('ready', flush=True)\n\
         data, addr = s.recvfrom(65535)\n\
         print(addr[0], addr[1], data.hex(), flush=True)\n"
    );
    ns.spawn_until(&["python3", "-c", &script], "ready")
}

/// The datagram a [`kernel_udp_listener`] printed: (source ip, source port,
/// payload).
pub fn listener_result(bg: Background) -> (Ipv4Addr, u16, Vec<u8>) {
    let out = bg.finish();
    let mut it = out.split_whitespace();
    let ip = it.next().and_then(|s| s.parse().ok());
    let port = it.next().and_then(|s| s.parse().ok());
    let payload = it.next().map(hex);
    match (ip, port, payload) {
        (Some(ip), Some(port), Some(payload)) => (ip, port, payload),
        _ => panic!("unexpected listener output: {out:?}"),
    }
}

/// Like [`test_pool`], with buffers holding `data_room` bytes.
pub fn test_pool_with_room(name: &str, data_room: usize) -> Pool {
    Pool::new(PoolConfig {
        name: name.to_owned(),
        capacity: 512,
        cache_size: 32,
        data_room,
        huge_pages: false,
        ..PoolConfig::default()
    })
    .expect("pool")
}

/// Ethernet + IPv4 (no options) + UDP.
pub const UDP4_LAYERS: LayerOffsets = LayerOffsets {
    l2: 0,
    l3: 14,
    l4: 34,
    payload: 42,
};

/// Ethernet + IPv4 (no options) + TCP (no options).
pub const TCP4_LAYERS: LayerOffsets = LayerOffsets {
    l2: 0,
    l3: 14,
    l4: 34,
    payload: 54,
};

/// Whether the IPv4 header and the UDP or TCP checksum of an
/// Ethernet/IPv4 frame with `layers` are both right.
pub fn checksums_ok(frame: &[u8], layers: LayerOffsets, proto: L4Protocol) -> bool {
    let (l3, l4) = (usize::from(layers.l3), usize::from(layers.l4));
    if checksum::checksum(&frame[l3..l4]) != 0 {
        return false;
    }
    let src = Ipv4Addr::new(
        frame[l3 + 12],
        frame[l3 + 13],
        frame[l3 + 14],
        frame[l3 + 15],
    );
    let dst = Ipv4Addr::new(
        frame[l3 + 16],
        frame[l3 + 17],
        frame[l3 + 18],
        frame[l3 + 19],
    );
    let number = match proto {
        L4Protocol::Tcp => 6,
        L4Protocol::Udp => 17,
    };
    let mut c = checksum::Checksum::new();
    c.add_sum(checksum::pseudo_header_v4(
        src,
        dst,
        number,
        (frame.len() - l4) as u16,
    ));
    c.add_bytes(&frame[l4..]);
    c.checksum() == 0
}

/// An Ethernet/IPv4/UDP frame whose IPv4 and UDP checksums are wrong
/// (zero and `0xbad0`), for a port to fix on request.
#[allow(clippy::too_many_arguments)]
pub fn udp_frame_bad_checksums(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = udp_frame(src_mac, dst_mac, src, dst, sport, dport, payload);
    f[24..26].copy_from_slice(&[0, 0]);
    f[40..42].copy_from_slice(&[0xba, 0xd0]);
    assert!(!checksums_ok(&f, UDP4_LAYERS, L4Protocol::Udp));
    f
}

/// An Ethernet/IPv4/TCP segment with only PSH set (no connection, no ACK)
/// from `sport` to `dport` at sequence number `seq`, both checksums zero.
#[allow(clippy::too_many_arguments)]
pub fn tcp_frame_unchecksummed(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
        .ipv4(src.octets(), dst.octets(), 64)
        .tcp(sport, dport, seq, 65535)
        .psh();
    let mut f = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut f, payload).expect("build TCP frame");
    f[24..26].copy_from_slice(&[0, 0]);
    f[50..52].copy_from_slice(&[0, 0]);
    f
}

/// Copies `frame` into a buffer from `port`, sets its layer offsets, lets
/// `request` fill in its transmit request and transmits it.
///
/// # Panics
/// If no buffer is free or the port does not take the frame in time.
pub fn send_with_request<P: Port<Buf = PoolBuf>>(
    port: &mut P,
    frame: &[u8],
    layers: LayerOffsets,
    request: impl FnOnce(&mut TxRequest),
) {
    send_prepared(port, frame, |buf| {
        buf.meta_mut().layers = layers;
        request(&mut buf.meta_mut().tx);
    });
}

/// A TCP reset found in a frame: ports and acknowledgment number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reset {
    pub sport: u16,
    pub dport: u16,
    pub ack: u32,
}

/// Parses an Ethernet/IPv4 frame carrying a TCP segment with RST set.
pub fn parse_reset(frame: &[u8]) -> Option<Reset> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
        return None;
    };
    tcp.rst().then(|| Reset {
        sport: tcp.source_port(),
        dport: tcp.destination_port(),
        ack: tcp.acknowledgment_number(),
    })
}

/// Receives from `port` until `count` TCP resets to `dport` have arrived
/// and returns their acknowledgment numbers, sorted. The kernel answers
/// each segment to a closed port whose IPv4 and TCP checksums are right
/// with one reset acknowledging the segment's end (segments with a bad
/// checksum are dropped silently), so this counts the segments the kernel
/// accepted and tells where each ended.
///
/// # Panics
/// After [`PATIENCE`] without `count` resets.
pub fn recv_resets<P: Port<Buf = PoolBuf>>(port: &mut P, dport: u16, count: usize) -> Vec<u32> {
    let start = Instant::now();
    let mut acks = Vec::new();
    let mut rx: Burst<PoolBuf> = Burst::new();
    while acks.len() < count {
        port.rx_burst(&mut rx);
        for buf in rx.drain() {
            if let Some(r) = parse_reset(buf.data()).filter(|r| r.dport == dport) {
                acks.push(r.ack);
            }
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{}: {} of {count} resets received (acks {acks:?})",
            port.caps().name,
            acks.len()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    acks.sort_unstable();
    acks
}

/// The kernel's `Tcp:` or `Udp:` counter `name` in namespace `ns` (from
/// `/proc/net/snmp`).
pub fn snmp_counter(ns: &Netns, proto: &str, name: &str) -> u64 {
    let text = ns.exec(&["cat", "/proc/net/snmp"]);
    let mut lines = text.lines().filter(|l| l.starts_with(&format!("{proto}:")));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        panic!("no {proto} lines in /proc/net/snmp: {text}");
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no {proto} counter {name}: {names} / {values}"))
}

/// A link between a tpa port and the kernel in a namespace: the kernel's
/// interface and both ends' addresses. The scenarios below run over any
/// port (TAP, AF_PACKET) and assert what the kernel must see.
pub struct KernelLink<'a> {
    /// The namespace holding the kernel's interface.
    pub ns: &'a Netns,
    /// The kernel's interface (holding `kernel_ip`).
    pub kernel_dev: &'a str,
    /// The kernel's MAC address.
    pub kernel_mac: MacAddr,
    /// The kernel's IPv4 address.
    pub kernel_ip: Ipv4Addr,
    /// tpa's MAC address.
    pub tpa_mac: MacAddr,
    /// tpa's IPv4 address (not configured in the kernel).
    pub tpa_ip: Ipv4Addr,
}

impl KernelLink<'_> {
    /// The port's receive wait ([`Port::wait_rx`]) on a link where the
    /// kernel sends nothing unasked (no IPv6 in the namespace): a short
    /// wait runs out; then the kernel sends tpa a datagram, and the ARP
    /// request it sends first ends a wait of up to [`PATIENCE`], after
    /// which the frame is there to receive.
    pub fn wait_rx_wakes_for_a_frame<P: Port<Buf = PoolBuf>>(&self, port: &mut P) {
        let mut rx: Burst<PoolBuf, 32> = Burst::new();
        assert_eq!(port.rx_burst(&mut rx), 0, "the link should be quiet");
        assert_eq!(
            port.wait_rx(Duration::from_millis(20)),
            RxWait::TimedOut,
            "nothing was sent"
        );
        kernel_send_udp(self.ns, self.tpa_ip, 7777, &[40001], "wake up");
        assert_eq!(port.wait_rx(PATIENCE), RxWait::Ready);
        assert!(
            port.rx_burst(&mut rx) > 0,
            "the wait said Ready with nothing to receive"
        );
        let arp = parse_arp(rx.as_slice()[0].data()).expect("the kernel's ARP request");
        assert_eq!(arp.target_ip, self.tpa_ip);
    }

    /// The kernel resolves tpa's address with ARP before sending it a UDP
    /// datagram (to port 7777 from 40001, "hello tpa"): checks the
    /// broadcast request, answers it, checks the datagram that was held,
    /// and that the kernel learnt tpa's MAC. `request` and `datagram` see
    /// the received frames for port-specific checks.
    pub fn arp_then_udp<P: Port<Buf = PoolBuf>>(
        &self,
        port: &mut P,
        request: impl FnOnce(&PoolBuf),
        datagram: impl FnOnce(&PoolBuf),
    ) {
        let (kernel_ip, tpa_ip) = (self.kernel_ip, self.tpa_ip);
        // The kernel must resolve tpa's address first: it broadcasts an ARP
        // request and holds the datagram until someone answers.
        kernel_send_udp(self.ns, tpa_ip, 7777, &[40001], "hello tpa");
        let req = recv_matching(port, &format!("ARP request for {tpa_ip}"), |f| {
            parse_arp(f).is_some_and(|a| a.op == 1 && a.target_ip == tpa_ip)
        });
        assert_eq!(
            &req.data()[0..6],
            &MacAddr::BROADCAST.0,
            "ARP request not broadcast"
        );
        assert_eq!(&req.data()[6..12], &self.kernel_mac.0);
        let arp = parse_arp(req.data()).unwrap();
        assert_eq!(
            (arp.sender_mac, arp.sender_ip),
            (self.kernel_mac, kernel_ip)
        );
        request(&req);
        drop(req);

        send_frame(
            port,
            &arp_reply(self.tpa_mac, tpa_ip, self.kernel_mac, kernel_ip),
        );

        // With the answer learnt, the held datagram comes to tpa's MAC.
        let dgram = recv_matching(port, "UDP datagram to port 7777", |f| {
            parse_udp(f).is_some_and(|u| u.dport == 7777)
        });
        let udp = parse_udp(dgram.data()).unwrap();
        assert_eq!((udp.src_mac, udp.dst_mac), (self.kernel_mac, self.tpa_mac));
        assert_eq!((udp.src, udp.dst, udp.sport), (kernel_ip, tpa_ip, 40001));
        assert_eq!(udp.payload, b"hello tpa");
        datagram(&dgram);
        drop(dgram);

        let neigh = self
            .ns
            .ip(&["neigh", "show", &tpa_ip.to_string(), "dev", self.kernel_dev]);
        assert!(
            neigh.contains(&self.tpa_mac.to_string()),
            "kernel did not learn tpa's MAC from the ARP reply: {neigh:?}"
        );
    }

    /// tpa sends a UDP datagram (5555 to 9999) carrying `payload`; a kernel
    /// socket receives it from tpa's address.
    pub fn udp_to_kernel_socket<P: Port<Buf = PoolBuf>>(&self, port: &mut P, payload: &[u8]) {
        let listener = kernel_udp_listener(self.ns, self.kernel_ip, 9999);
        send_frame(
            port,
            &udp_frame(
                self.tpa_mac,
                self.kernel_mac,
                self.tpa_ip,
                self.kernel_ip,
                5555,
                9999,
                payload,
            ),
        );
        let (src, sport, got) = listener_result(listener);
        assert_eq!((src, sport), (self.tpa_ip, 5555));
        assert_eq!(got, payload);
    }

    /// tpa sends a UDP datagram with wrong IPv4 and UDP checksums and asks
    /// the port to fill them in; the kernel, which drops bad checksums,
    /// delivers it to a socket and counts no checksum error. `context`
    /// names the variant in failure messages.
    pub fn udp_checksum_request<P: Port<Buf = PoolBuf>>(&self, port: &mut P, context: &str) {
        let listener = kernel_udp_listener(self.ns, self.kernel_ip, 9999);
        let payload = b"checksummed by tpa";
        // Only the port's software offload makes this one arrive.
        let frame = udp_frame_bad_checksums(
            self.tpa_mac,
            self.kernel_mac,
            self.tpa_ip,
            self.kernel_ip,
            5555,
            9999,
            payload,
        );
        send_with_request(port, &frame, UDP4_LAYERS, |tx| {
            tx.request_checksums(L4Protocol::Udp);
        });
        let (src, sport, got) = listener_result(listener);
        assert_eq!((src, sport), (self.tpa_ip, 5555), "{context}");
        assert_eq!(got, payload, "{context}");
        assert_eq!(snmp_counter(self.ns, "Udp", "InCsumErrors"), 0, "{context}");
    }

    /// tpa sends a UDP datagram (5555 to 9999) as a chain: a header
    /// segment (Ethernet, IPv4, UDP, both checksums wrong) in front of a
    /// 1000-byte payload held shared, as a retransmission queue holds data,
    /// asking the port for the checksums (computed over both segments). A
    /// kernel socket receives the payload byte for byte, the kernel counts
    /// no checksum error, and the port keeps no reference to the payload.
    pub fn chained_udp_to_kernel_socket<P: Port<Buf = PoolBuf>>(
        &self,
        port: &mut P,
        context: &str,
    ) {
        let listener = kernel_udp_listener(self.ns, self.kernel_ip, 9999);
        let payload: Vec<u8> = (0..1000u32).map(|i| (i * 31 + 7) as u8).collect();
        let frame = udp_frame_bad_checksums(
            self.tpa_mac,
            self.kernel_mac,
            self.tpa_ip,
            self.kernel_ip,
            5555,
            9999,
            &payload,
        );
        let mut data = port.alloc().expect("a free buffer");
        data.extend_from_slice(&frame[42..])
            .expect("room for the payload");
        let held = data.share();
        send_prepared(port, &frame[..42], |buf| {
            buf.chain_shared(held.clone())
                .expect("a header takes a tail");
            buf.meta_mut().layers = UDP4_LAYERS;
            buf.meta_mut().tx.request_checksums(L4Protocol::Udp);
        });
        let (src, sport, got) = listener_result(listener);
        assert_eq!((src, sport), (self.tpa_ip, 5555), "{context}");
        assert_eq!(got, payload, "{context}");
        assert_eq!(snmp_counter(self.ns, "Udp", "InCsumErrors"), 0, "{context}");
        assert_eq!(held.ref_count(), 1, "{context}: the port kept a reference");
        assert_eq!(
            held.data(),
            &frame[42..],
            "{context}: the held data changed"
        );
    }

    /// tpa sends one unchecksummed 3500-byte TCP segment to a closed port
    /// asking for checksums and TSO at an MSS of 1000; the kernel must
    /// accept four checksummed segments (it resets each, acknowledging its
    /// end). The port's buffers must hold 3500 bytes of payload; tpa's
    /// address must be in the kernel's neighbor table.
    pub fn tso_request<P: Port<Buf = PoolBuf>>(&self, port: &mut P, context: &str) {
        let segs_before = snmp_counter(self.ns, "Tcp", "InSegs");
        // PSH to a closed port: the kernel resets every segment it accepts.
        let seq = 1_000_000;
        let payload: Vec<u8> = (0..3500u32).map(|i| i as u8).collect();
        let frame = tcp_frame_unchecksummed(
            self.tpa_mac,
            self.kernel_mac,
            self.tpa_ip,
            self.kernel_ip,
            40000,
            5001,
            seq,
            &payload,
        );
        send_with_request(port, &frame, TCP4_LAYERS, |tx| {
            tx.request_checksums(L4Protocol::Tcp).request_tso(1000);
        });
        let acks = recv_resets(port, 40000, 4);
        assert_eq!(
            acks,
            [seq + 1000, seq + 2000, seq + 3000, seq + 3500],
            "{context}"
        );
        assert_eq!(snmp_counter(self.ns, "Tcp", "InCsumErrors"), 0, "{context}");
        assert_eq!(
            snmp_counter(self.ns, "Tcp", "InSegs") - segs_before,
            4,
            "{context}"
        );
    }
}

/// The kernel in `ns` sends 64 UDP flows (source ports 20000..20064) to
/// `dst`:4242; every one must arrive exactly once over `queues`, each
/// frame marked with the queue it came through, and both queues must get
/// some.
pub fn flows_spread_over_queues<P: Port<Buf = PoolBuf>>(
    ns: &Netns,
    queues: &mut [P],
    dst: Ipv4Addr,
) {
    let sports: Vec<u16> = (20000..20064).collect();
    kernel_send_udp(ns, dst, 4242, &sports, "spread");

    let mut got = vec![0u32; sports.len()];
    let mut per_queue = vec![0u32; queues.len()];
    let start = Instant::now();
    while got.iter().sum::<u32>() < sports.len() as u32 {
        for (qi, q) in queues.iter_mut().enumerate() {
            let mut rx: Burst<PoolBuf> = Burst::new();
            q.rx_burst(&mut rx);
            for buf in rx.drain() {
                assert_eq!(buf.meta().rx_queue, qi as u16);
                if let Some(u) = parse_udp(buf.data()).filter(|u| u.dport == 4242) {
                    got[usize::from(u.sport - 20000)] += 1;
                    per_queue[qi] += 1;
                }
            }
        }
        assert!(
            start.elapsed() < PATIENCE,
            "received {got:?} of 64 flows (per queue {per_queue:?})"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(got.iter().all(|&n| n == 1), "each flow once: {got:?}");
    assert!(
        per_queue.iter().all(|&n| n > 0),
        "64 flows all hashed to one queue: {per_queue:?}"
    );
}

/// `result` is the refusal of a port whose MTU (9000) its pool's buffers
/// cannot hold, naming the interface `name` and the MTU.
pub fn assert_refused_for_mtu<T: std::fmt::Debug>(result: Result<T, PortError>, name: &str) {
    match result {
        Err(PortError::InvalidConfig { name: got, what }) => {
            assert_eq!(got, name);
            assert!(what.contains("9000"), "{what}");
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

/// `err` says that interface `name` does not exist, and names it.
pub fn assert_no_such_device(err: &PortError, name: &str) {
    match err {
        PortError::NoSuchDevice { name: got } => assert_eq!(got, name),
        other => panic!("expected NoSuchDevice, got {other:?}"),
    }
    assert!(err.to_string().contains(name), "{err}");
}
