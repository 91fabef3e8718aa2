//! The lab end to end: a SYN written to the TUN gets the kernel's SYN-ACK.

use std::time::{Duration, Instant};

use super::calls::{execute, Call, Detail, Outcome, Pending};
use std::net::{IpAddr, Ipv4Addr};

use super::*;

/// A segment's TCP header fields.
pub(crate) struct Tcp<'a> {
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// A multiple of 4 bytes.
    pub options: &'a [u8],
}

/// A minimal IPv4 or IPv6 TCP segment with correct checksums.
pub(crate) fn ip_tcp(
    src: impl Into<IpAddr>,
    dst: impl Into<IpAddr>,
    ports: (u16, u16),
    tcp: Tcp,
    payload: &[u8],
) -> Vec<u8> {
    let (src, dst) = (src.into(), dst.into());
    let tcp_len = 20 + tcp.options.len() + payload.len();
    let (mut p, pseudo) = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = vec![0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
            h[8] = 64;
            h[9] = 6;
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            let ip_sum = checksum(&h, 0);
            h[10..12].copy_from_slice(&ip_sum.to_be_bytes());
            (h, sum_words(&[&s.octets()[..], &d.octets()[..]]))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut h = vec![0u8; 40];
            h[0] = 0x60;
            h[4..6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
            h[6] = 6;
            h[7] = 64;
            h[8..24].copy_from_slice(&s.octets());
            h[24..40].copy_from_slice(&d.octets());
            (h, sum_words(&[&s.octets()[..], &d.octets()[..]]))
        }
        _ => panic!("{src} and {dst} are of different families"),
    };
    let ip_len = p.len();
    p.resize(ip_len + tcp_len, 0);
    let t = &mut p[ip_len..];
    t[0..2].copy_from_slice(&ports.0.to_be_bytes());
    t[2..4].copy_from_slice(&ports.1.to_be_bytes());
    t[4..8].copy_from_slice(&tcp.seq.to_be_bytes());
    t[8..12].copy_from_slice(&tcp.ack.to_be_bytes());
    t[12] = (((20 + tcp.options.len()) / 4) as u8) << 4;
    t[13] = tcp.flags;
    t[14..16].copy_from_slice(&65535u16.to_be_bytes());
    t[20..20 + tcp.options.len()].copy_from_slice(tcp.options);
    t[20 + tcp.options.len()..].copy_from_slice(payload);
    let sum = checksum(t, pseudo + 6 + tcp_len as u32);
    t[16..18].copy_from_slice(&sum.to_be_bytes());
    p
}

fn sum_words(parts: &[&[u8]]) -> u32 {
    parts
        .iter()
        .flat_map(|p| p.chunks(2))
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum()
}

fn checksum(bytes: &[u8], start: u32) -> u16 {
    let mut sum = start;
    for chunk in bytes.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn link(local: IpAddr) -> Link {
    Link {
        local,
        prefix_len: if local.is_ipv4() { 16 } else { 48 },
        mtu: 1500,
    }
}

pub(crate) const SYN: u8 = 0x02;
pub(crate) const ACK: u8 = 0x10;

fn must(o: Outcome) -> i32 {
    assert!(o.ret >= 0, "{o:?}");
    o.ret as i32
}

/// The next TCP segment out of the lab within 5 s: (flags, seq, ack,
/// payload length).
fn next_tcp(lab: &Lab) -> (u8, u32, u32, usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (p, _at) = lab
            .tun()
            .recv(deadline)
            .unwrap()
            .expect("no segment from the kernel within 5 s");
        if p[0] >> 4 != 4 || p[9] != 6 {
            continue;
        }
        let ihl = usize::from(p[0] & 0xf) * 4;
        let t = &p[ihl..];
        let doff = usize::from(t[12] >> 4) * 4;
        let seq = u32::from_be_bytes(t[4..8].try_into().unwrap());
        let ack = u32::from_be_bytes(t[8..12].try_into().unwrap());
        return (t[13], seq, ack, t.len() - doff);
    }
}

#[test]
fn a_syn_in_gets_a_syn_ack_out_and_data_flows() {
    let local4 = Ipv4Addr::new(192, 168, 0, 1);
    let remote4 = Ipv4Addr::new(192, 0, 2, 1);
    let lab = Lab::new(link(local4.into()), "cubic").expect("make the lab (run as root)");
    let ns = lab.namespace();
    let start = |call| {
        Pending::start(ns, call)
            .unwrap()
            .wait(Instant::now() + Duration::from_secs(5))
            .expect("a non-blocking call returned")
    };
    let fd = must(start(Call::Socket {
        domain: libc::AF_INET,
        ty: libc::SOCK_STREAM,
        protocol: 0,
    }));
    lab.pin(fd).unwrap();
    must(execute(&Call::Bind {
        fd,
        addr: "0.0.0.0:8080".parse().unwrap(),
    }));
    must(execute(&Call::Listen { fd, backlog: 1 }));
    let accept = Pending::start(ns, Call::Accept { fd }).unwrap();

    let mss = [2, 4, 0x05, 0xb4];
    let syn = ip_tcp(
        remote4,
        local4,
        (40000, 8080),
        Tcp {
            seq: 0,
            ack: 0,
            flags: SYN,
            options: &mss,
        },
        &[],
    );
    lab.tun().send(&syn).unwrap();
    let (flags, isn, ack, len) = next_tcp(&lab);
    assert_eq!((flags, ack, len), (SYN | ACK, 1, 0), "the SYN-ACK");
    assert!(accept
        .wait(Instant::now() + Duration::from_millis(20))
        .is_none());

    let ack_in = ip_tcp(
        remote4,
        local4,
        (40000, 8080),
        Tcp {
            seq: 1,
            ack: isn.wrapping_add(1),
            flags: ACK,
            options: &[],
        },
        &[],
    );
    lab.tun().send(&ack_in).unwrap();
    let conn = accept
        .wait(Instant::now() + Duration::from_secs(5))
        .expect("accept returns once the handshake completes");
    let conn = must(conn);

    // The accepted socket inherits the listener's congestion control.
    let cc = execute(&Call::GetSockOpt {
        fd: conn,
        level: libc::IPPROTO_TCP,
        name: libc::TCP_CONGESTION,
        len: 16,
    });
    let Detail::Opt(name) = cc.detail else {
        panic!("{cc:?}")
    };
    assert!(
        name.starts_with(b"cubic\0"),
        "{:?}",
        String::from_utf8_lossy(&name)
    );

    // Data in: the kernel ACKs it and read() returns it.
    let data = ip_tcp(
        remote4,
        local4,
        (40000, 8080),
        Tcp {
            seq: 1,
            ack: isn.wrapping_add(1),
            flags: ACK | 0x08,
            options: &[],
        },
        b"hello",
    );
    lab.tun().send(&data).unwrap();
    let read = execute(&Call::Read { fd: conn, len: 100 });
    assert_eq!(read.detail, Detail::Data(b"hello".to_vec()));
    // Data out: write() sends one segment of it.
    assert_eq!(execute(&Call::Write { fd: conn, len: 10 }).ret, 10);
    loop {
        let (flags, seq, ack, len) = next_tcp(&lab);
        if len == 0 {
            continue; // the (delayed) ACK of "hello"
        }
        assert_eq!(
            (flags & ACK, seq, ack, len),
            (ACK, isn.wrapping_add(1), 6, 10)
        );
        break;
    }
    must(execute(&Call::Close { fd: conn }));
    must(execute(&Call::Close { fd }));
}

#[test]
fn sysctls_of_one_lab_are_its_own() {
    let one = Lab::new(link(Ipv4Addr::new(192, 168, 0, 1).into()), "reno").unwrap();
    let two = Lab::new(link("fd3d:fa7b:d17d::1".parse().unwrap()), "cubic").unwrap();
    one.namespace()
        .set_sysctl("net.ipv4.tcp_timestamps", "0")
        .unwrap();
    assert_eq!(
        one.namespace().sysctl("net.ipv4.tcp_timestamps").unwrap(),
        "0"
    );
    assert_eq!(
        two.namespace().sysctl("net.ipv4.tcp_timestamps").unwrap(),
        "1"
    );
}
