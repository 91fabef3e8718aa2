//! A bounded SYN flood for the hostile-input tests: scapy is far too slow
//! to fill a listener's SYN queue, so this writes the frames itself on an
//! AF_PACKET socket.
//!
//! ```text
//! synflood IFACE SRC_MAC DST_MAC SRC_NET/PREFIX DST_ADDR DST_PORT COUNT RATE SEED
//! ```
//! sends COUNT TCP SYNs (with an MSS option) to DST_ADDR:DST_PORT from
//! random addresses inside SRC_NET/PREFIX (never its network or broadcast
//! address, never DST_ADDR; the tests give an on-link range that no host
//! of theirs owns) and random ports, at most RATE per second (COUNT at
//! most 10^6), as Ethernet frames from SRC_MAC to DST_MAC on IFACE; then
//! prints `sent N SYNs to ADDR:PORT from NET/PREFIX in MS ms`. The
//! randomness comes from SEED. IPv4 (PREFIX 8 to 30) or IPv6 (PREFIX 64
//! to 126), as the addresses are; both of one family.
//!
//! It refuses to run outside a namespace made by `ip netns add`, so never
//! on the machine's own network: it is for the namespaces a test created.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("synflood: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What to send.
struct Flood {
    iface: String,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    /// The source network (host bits zero) and its prefix length.
    net: IpAddr,
    prefix: u32,
    dst: IpAddr,
    dport: u16,
    count: u64,
    rate: u64,
    seed: u64,
}

fn parse(args: &[String]) -> Result<Flood, String> {
    let [iface, src_mac, dst_mac, net, dst, dport, count, rate, seed] = args else {
        return Err(
            "usage: synflood IFACE SRC_MAC DST_MAC SRC_NET/PREFIX DST_ADDR DST_PORT COUNT RATE SEED"
                .into(),
        );
    };
    let (net, prefix) = net
        .split_once('/')
        .ok_or_else(|| format!("SRC_NET {net:?} is not ADDR/PREFIX"))?;
    let net: IpAddr = net.parse().map_err(|e| format!("SRC_NET {net:?}: {e}"))?;
    let bounds = if net.is_ipv4() { 8..=30 } else { 64..=126 };
    let prefix: u32 = prefix
        .parse()
        .ok()
        .filter(|p| bounds.contains(p))
        .ok_or_else(|| {
            format!(
                "prefix {prefix:?} is not {} to {}",
                bounds.start(),
                bounds.end()
            )
        })?;
    let dst: IpAddr = dst.parse().map_err(|e| format!("DST_ADDR {dst:?}: {e}"))?;
    if dst.is_ipv4() != net.is_ipv4() {
        return Err(format!("DST_ADDR {dst} and SRC_NET {net} differ in family"));
    }
    let net = match net {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) & (u32::MAX << (32 - prefix))).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) & (u128::MAX << (128 - prefix))).into()),
    };
    let num = |what: &str, s: &str| s.parse::<u64>().map_err(|e| format!("{what} {s:?}: {e}"));
    let count = num("COUNT", count)?;
    if count > 1_000_000 {
        return Err(format!("COUNT {count} is over the bound of 1000000"));
    }
    let rate = num("RATE", rate)?.max(1);
    Ok(Flood {
        iface: iface.clone(),
        src_mac: mac(src_mac)?,
        dst_mac: mac(dst_mac)?,
        net,
        prefix,
        dst,
        dport: dport
            .parse()
            .map_err(|e| format!("DST_PORT {dport:?}: {e}"))?,
        count,
        rate,
        seed: num("SEED", seed)?,
    })
}

fn mac(s: &str) -> Result<[u8; 6], String> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        let p = parts.next().ok_or_else(|| format!("MAC {s:?} too short"))?;
        *b = u8::from_str_radix(p, 16).map_err(|e| format!("MAC {s:?}: {e}"))?;
    }
    if parts.next().is_some() {
        return Err(format!("MAC {s:?} too long"));
    }
    Ok(out)
}

fn run(args: Vec<String>) -> Result<String, String> {
    let f = parse(&args)?;
    if !in_named_netns()? {
        return Err(
            "refusing to flood outside a namespace made by `ip netns add` (a test's): run it with ip netns exec"
                .into(),
        );
    }
    let sock = raw::PacketSocket::bind(&f.iface)?;
    let mut rng = XorShift(f.seed | 1);
    let start = Instant::now();
    let mut frame = [0u8; FRAME6_LEN];
    for i in 0..f.count {
        let src = loop {
            let a = random_host(&f, &mut rng);
            if a != f.dst {
                break a;
            }
        };
        let sport = 1024 + (rng.next() % (65536 - 1024)) as u16;
        let len = syn_frame(&mut frame, &f, src, sport, rng.next() as u32);
        sock.send(&frame[..len])?;
        // Pace: frame i leaves no earlier than i / rate seconds in.
        let due = Duration::from_nanos((i + 1) * 1_000_000_000 / f.rate);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    Ok(format!(
        "sent {} SYNs to {}:{} from {}/{} in {} ms",
        f.count,
        f.dst,
        f.dport,
        f.net,
        f.prefix,
        start.elapsed().as_millis()
    ))
}

/// Whether this process's network namespace is one of /run/netns/* (the
/// ones `ip netns add` made, which the tests create), not the machine's.
fn in_named_netns() -> Result<bool, String> {
    use std::os::unix::fs::MetadataExt;
    let own = std::fs::metadata("/proc/self/ns/net").map_err(|e| format!("own netns: {e}"))?;
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return Ok(false);
    };
    Ok(dir.flatten().any(|e| {
        std::fs::metadata(e.path()).is_ok_and(|m| m.dev() == own.dev() && m.ino() == own.ino())
    }))
}

/// A random address of `f`'s source network: neither its first nor
/// its last.
fn random_host(f: &Flood, rng: &mut XorShift) -> IpAddr {
    match f.net {
        IpAddr::V4(net) => {
            let hosts = (1u32 << (32 - f.prefix)) - 2;
            IpAddr::V4(Ipv4Addr::from(
                u32::from(net) + 1 + (rng.next() as u32) % hosts,
            ))
        }
        IpAddr::V6(net) => {
            let hosts = (1u128 << (128 - f.prefix)) - 2;
            let r = (u128::from(rng.next()) << 64) | u128::from(rng.next());
            IpAddr::V6(Ipv6Addr::from(u128::from(net) + 1 + r % hosts))
        }
    }
}

/// Ethernet (14) + IPv4 (20) + TCP with an MSS option (24).
#[cfg(test)]
const FRAME_LEN: usize = 14 + 20 + TCP_LEN;
/// Ethernet (14) + IPv6 (40) + TCP with an MSS option (24).
const FRAME6_LEN: usize = 14 + 40 + TCP_LEN;
/// The SYN's TCP header with its MSS option.
const TCP_LEN: usize = 24;

/// Writes the SYN from `src`:`sport` with sequence number `isn` to the
/// front of `b`; returns the frame's length.
fn syn_frame(b: &mut [u8; FRAME6_LEN], f: &Flood, src: IpAddr, sport: u16, isn: u32) -> usize {
    b[0..6].copy_from_slice(&f.dst_mac);
    b[6..12].copy_from_slice(&f.src_mac);
    // The pseudo-header's sum (RFC 9293 §3.1, RFC 8200 §8.1) and where
    // the TCP header starts.
    let (pseudo, tcp_at) = match (src, f.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            b[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            let ip = &mut b[14..34];
            ip.copy_from_slice(&[
                0x45, 0, 0, 44, 0, 0, 0x40, 0, 64, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ]);
            ip[12..16].copy_from_slice(&src.octets());
            ip[16..20].copy_from_slice(&dst.octets());
            let sum = checksum(0, ip);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            let mut pseudo = [0u8; 12];
            pseudo[0..4].copy_from_slice(&src.octets());
            pseudo[4..8].copy_from_slice(&dst.octets());
            pseudo[9] = 6;
            pseudo[10..12].copy_from_slice(&(TCP_LEN as u16).to_be_bytes());
            (partial(0, &pseudo), 34)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            b[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
            let ip = &mut b[14..54];
            ip[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
            ip[4..6].copy_from_slice(&(TCP_LEN as u16).to_be_bytes());
            ip[6] = 6; // TCP
            ip[7] = 64; // hop limit
            ip[8..24].copy_from_slice(&src.octets());
            ip[24..40].copy_from_slice(&dst.octets());
            let mut pseudo = [0u8; 40];
            pseudo[0..16].copy_from_slice(&src.octets());
            pseudo[16..32].copy_from_slice(&dst.octets());
            pseudo[32..36].copy_from_slice(&(TCP_LEN as u32).to_be_bytes());
            pseudo[39] = 6;
            (partial(0, &pseudo), 54)
        }
        _ => unreachable!("parse refuses mixed families"),
    };
    let tcp = &mut b[tcp_at..tcp_at + TCP_LEN];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&f.dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&isn.to_be_bytes());
    tcp[8..12].fill(0);
    tcp[12] = 6 << 4; // 24-byte header
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    tcp[16..20].fill(0); // checksum, urgent pointer
    tcp[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
    let sum = checksum(pseudo, tcp);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    tcp_at + TCP_LEN
}

/// The ones' complement sum of `data` added to `acc`, not folded.
fn partial(mut acc: u32, data: &[u8]) -> u32 {
    for pair in data.chunks(2) {
        let hi = u32::from(pair[0]) << 8;
        acc += hi | pair.get(1).map_or(0, |&lo| u32::from(lo));
    }
    acc
}

/// The Internet checksum of `data` with `acc` already summed.
fn checksum(acc: u32, data: &[u8]) -> u16 {
    let mut s = partial(acc, data);
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// xorshift64: fast, seeded, good enough for addresses and ports.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The one raw socket the generator needs.
mod raw {
    use std::ffi::CString;
    use std::io;

    /// An AF_PACKET socket bound to one interface, for sending only.
    pub struct PacketSocket(libc::c_int);

    impl PacketSocket {
        pub fn bind(iface: &str) -> Result<PacketSocket, String> {
            let name = CString::new(iface).map_err(|_| format!("bad interface name {iface:?}"))?;
            // SAFETY: if_nametoindex reads the NUL-terminated name only.
            let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
            if index == 0 {
                return Err(format!(
                    "no interface {iface}: {}",
                    io::Error::last_os_error()
                ));
            }
            // SAFETY: socket(2) with constant arguments; protocol 0: this
            // socket receives nothing.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
            if fd < 0 {
                return Err(format!("AF_PACKET socket: {}", io::Error::last_os_error()));
            }
            let sock = PacketSocket(fd);
            // SAFETY: sockaddr_ll is plain data; all zeroes is a valid value.
            let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_ifindex = index as i32;
            // SAFETY: `addr` is a valid sockaddr_ll and the length is its size.
            let rc = unsafe {
                libc::bind(
                    fd,
                    (&raw const addr).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if rc != 0 {
                return Err(format!("bind to {iface}: {}", io::Error::last_os_error()));
            }
            Ok(sock)
        }

        /// Sends one whole Ethernet frame; retries while the device queue
        /// is full.
        pub fn send(&self, frame: &[u8]) -> Result<(), String> {
            loop {
                // SAFETY: `frame` is valid for its length for the call.
                let n = unsafe { libc::send(self.0, frame.as_ptr().cast(), frame.len(), 0) };
                if n == frame.len() as isize {
                    return Ok(());
                }
                let e = io::Error::last_os_error();
                if n < 0 && matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::EAGAIN)) {
                    std::thread::yield_now();
                    continue;
                }
                return Err(format!("send: {e} ({n} of {} bytes)", frame.len()));
            }
        }
    }

    impl Drop for PacketSocket {
        fn drop(&mut self) {
            // SAFETY: we own the descriptor and close it once.
            unsafe { libc::close(self.0) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksums_verify() {
        let f = parse(
            &"va 02:00:00:00:00:01 02:00:00:00:00:02 10.9.0.0/24 10.9.0.2 5001 1 1 7"
                .split(' ')
                .map(String::from)
                .collect::<Vec<_>>(),
        )
        .expect("parses");
        let mut b = [0u8; FRAME6_LEN];
        let len = syn_frame(&mut b, &f, Ipv4Addr::new(10, 9, 0, 77).into(), 40000, 12345);
        assert_eq!(len, FRAME_LEN);
        // A correct header sums to zero (0xffff before the complement).
        assert_eq!(checksum(0, &b[14..34]), 0);
        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&[10, 9, 0, 77]);
        pseudo[4..8].copy_from_slice(&[10, 9, 0, 2]);
        pseudo[9] = 6;
        pseudo[11] = 24;
        assert_eq!(checksum(partial(0, &pseudo), &b[34..58]), 0);
        assert_eq!(b[34 + 13], 0x02, "SYN only");
    }

    #[test]
    fn the_ipv6_checksum_verifies_and_sources_stay_in_the_network() {
        let f = parse(
            &"va 02:00:00:00:00:01 02:00:00:00:00:02 2001:db8::8000:0/113 2001:db8::2 5001 1 1 7"
                .split(' ')
                .map(String::from)
                .collect::<Vec<_>>(),
        )
        .expect("parses");
        let mut rng = XorShift(7);
        let net = u128::from("2001:db8::8000:0".parse::<Ipv6Addr>().unwrap());
        for _ in 0..1000 {
            let IpAddr::V6(a) = random_host(&f, &mut rng) else {
                panic!("an IPv6 source");
            };
            let host = u128::from(a) - net;
            assert!((1..(1 << 15) - 1).contains(&host), "{a}");
        }
        let src: Ipv6Addr = "2001:db8::8000:77".parse().unwrap();
        let mut b = [0u8; FRAME6_LEN];
        assert_eq!(syn_frame(&mut b, &f, src.into(), 40000, 12345), FRAME6_LEN);
        assert_eq!(b[12..14], [0x86, 0xdd]);
        let mut pseudo = [0u8; 40];
        pseudo[0..16].copy_from_slice(&src.octets());
        pseudo[16..32].copy_from_slice(&b[38..54]);
        pseudo[35] = 24;
        pseudo[39] = 6;
        assert_eq!(checksum(partial(0, &pseudo), &b[54..78]), 0);
        assert_eq!(b[54 + 13], 0x02, "SYN only");
        let mixed = "va 02:00:00:00:00:01 02:00:00:00:00:02 2001:db8::/64 10.9.0.2 80 1 1 1";
        let args: Vec<String> = mixed.split(' ').map(String::from).collect();
        assert!(parse(&args).err().expect("refused").contains("family"));
    }

    #[test]
    fn unbounded_floods_are_refused() {
        let args = |count: &str, net: &str| -> Vec<String> {
            format!("va 02:00:00:00:00:01 02:00:00:00:00:02 {net} 10.9.0.2 80 {count} 10 1")
                .split(' ')
                .map(String::from)
                .collect()
        };
        let err = parse(&args("2000000", "10.9.0.128/25"))
            .err()
            .expect("refused");
        assert!(err.contains("bound"), "{err}");
        let err = parse(&args("10", "10.0.0.0/4")).err().expect("refused");
        assert!(err.contains("prefix"), "{err}");
        assert!(parse(&args("10", "10.9.0.128/25")).is_ok());
    }
}
