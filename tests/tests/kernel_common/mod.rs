//! Frames and kernel-side helpers shared by the TAP and AF_PACKET tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use tpa::buf::{L4Protocol, LayerOffsets, PacketBuf, Pool, PoolBuf, PoolConfig, TxRequest};
use tpa::header::checksum;
use tpa::port::{Burst, Port};
use tpa::wire::MacAddr;
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
    let mut buf = port.alloc().expect("a free buffer");
    buf.append(frame.len())
        .expect("room for the frame")
        .copy_from_slice(frame);
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
    let vlan = match &p.vlan {
        Some(etherparse::VlanSlice::SingleVlan(v)) => Some(v.vlan_identifier().value()),
        Some(etherparse::VlanSlice::DoubleVlan(v)) => Some(v.outer().vlan_identifier().value()),
        None => None,
    };
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
    let hex = it.next().unwrap_or("");
    let payload = (0..hex.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    match (ip, port) {
        (Some(ip), Some(port)) => (ip, port, payload),
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
    let mut buf = port.alloc().expect("a free buffer");
    buf.append(frame.len())
        .expect("room for the frame")
        .copy_from_slice(frame);
    buf.meta_mut().layers = layers;
    request(&mut buf.meta_mut().tx);
    let mut tx: Burst<PoolBuf> = Burst::new();
    tx.push(buf);
    let start = Instant::now();
    while !tx.is_empty() {
        port.tx_burst(&mut tx);
        assert!(start.elapsed() < PATIENCE, "the port never took the frame");
    }
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
