//! TCP segments on the wire: built into IPv4/IPv6 packets (with their
//! checksums) for `<` lines, parsed out of the packets the stack sends for
//! `>` lines, and printed the way packetdrill writes them.

use std::fmt;
use std::net::IpAddr;

use crate::script::ast::{Flags, TcpOption};

/// A TCP segment's fields, in whatever number space the caller keeps
/// (the runner prints outbound segments with their sequence numbers
/// relative to the stack's ISN, as scripts write them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Segment {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Flags.
    pub flags: Flags,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful with the ACK flag).
    pub ack: u32,
    /// Window (unscaled, as on the wire).
    pub win: u16,
    /// Urgent pointer.
    pub urg: u16,
    /// Options in wire order.
    pub options: Vec<TcpOption>,
    /// Payload length.
    pub len: u16,
}

/// The IP addresses of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addrs {
    /// Source.
    pub src: IpAddr,
    /// Destination.
    pub dst: IpAddr,
}

fn flags_byte(f: &Flags) -> (u8, u8) {
    let mut b = 0u8;
    if f.fin {
        b |= 0x01;
    }
    if f.syn {
        b |= 0x02;
    }
    if f.rst {
        b |= 0x04;
    }
    if f.psh {
        b |= 0x08;
    }
    if f.ack {
        b |= 0x10;
    }
    if f.urg {
        b |= 0x20;
    }
    if f.ece {
        b |= 0x40;
    }
    if f.cwr {
        b |= 0x80;
    }
    (b, 0)
}

fn flags_from(b: u8) -> Flags {
    Flags {
        fin: b & 0x01 != 0,
        syn: b & 0x02 != 0,
        rst: b & 0x04 != 0,
        psh: b & 0x08 != 0,
        ack: b & 0x10 != 0,
        urg: b & 0x20 != 0,
        ece: b & 0x40 != 0,
        cwr: b & 0x80 != 0,
    }
}

/// The option bytes of `options`, padded with EOL to a multiple of 4.
pub fn encode_options(options: &[TcpOption]) -> Vec<u8> {
    let mut o = Vec::new();
    for opt in options {
        match opt {
            TcpOption::Nop => o.push(1),
            TcpOption::Eol => o.push(0),
            TcpOption::Mss(v) => {
                o.extend_from_slice(&[2, 4]);
                o.extend_from_slice(&v.to_be_bytes());
            }
            TcpOption::WindowScale(v) => o.extend_from_slice(&[3, 3, *v]),
            TcpOption::SackPermitted => o.extend_from_slice(&[4, 2]),
            TcpOption::Sack(blocks) => {
                o.extend_from_slice(&[5, (2 + 8 * blocks.len()) as u8]);
                for (a, b) in blocks {
                    o.extend_from_slice(&a.to_be_bytes());
                    o.extend_from_slice(&b.to_be_bytes());
                }
            }
            TcpOption::Timestamp { val, ecr } => {
                o.extend_from_slice(&[8, 10]);
                o.extend_from_slice(&val.to_be_bytes());
                o.extend_from_slice(&ecr.to_be_bytes());
            }
            TcpOption::FastOpen(_) | TcpOption::Md5(_) => {}
        }
    }
    while o.len() % 4 != 0 {
        o.push(0);
    }
    o
}

fn parse_options(mut b: &[u8]) -> Result<Vec<TcpOption>, String> {
    let mut out = Vec::new();
    while let Some(&kind) = b.first() {
        match kind {
            0 => {
                // EOL: packetdrill shows one `eol` and ignores the padding.
                out.push(TcpOption::Eol);
                break;
            }
            1 => {
                out.push(TcpOption::Nop);
                b = &b[1..];
                continue;
            }
            _ => {}
        }
        let len = *b.get(1).ok_or("truncated TCP option")? as usize;
        if len < 2 || len > b.len() {
            return Err(format!("bad TCP option length {len} (kind {kind})"));
        }
        let d = &b[2..len];
        out.push(match (kind, len) {
            (2, 4) => TcpOption::Mss(u16::from_be_bytes([d[0], d[1]])),
            (3, 3) => TcpOption::WindowScale(d[0]),
            (4, 2) => TcpOption::SackPermitted,
            (5, _) if (len - 2).is_multiple_of(8) => TcpOption::Sack(
                d.chunks(8)
                    .map(|c| {
                        (
                            u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                            u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                        )
                    })
                    .collect(),
            ),
            (8, 10) => TcpOption::Timestamp {
                val: u32::from_be_bytes([d[0], d[1], d[2], d[3]]),
                ecr: u32::from_be_bytes([d[4], d[5], d[6], d[7]]),
            },
            (34, _) => TcpOption::FastOpen(d.iter().map(|x| format!("{x:02x}")).collect()),
            _ => return Err(format!("unknown TCP option kind {kind}")),
        });
        b = &b[len..];
    }
    Ok(out)
}

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

fn pseudo_sum(addrs: &Addrs, tcp_len: usize) -> u32 {
    let mut acc = 0;
    match (addrs.src, addrs.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            acc = sum16(&s.octets(), acc);
            acc = sum16(&d.octets(), acc);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            acc = sum16(&s.octets(), acc);
            acc = sum16(&d.octets(), acc);
        }
        _ => {}
    }
    acc + 6 + tcp_len as u32
}

/// The IP packet (v4 or v6, as the addresses are) carrying `seg` with a
/// payload of `seg.len` zero bytes.
pub fn build(addrs: &Addrs, seg: &Segment) -> Vec<u8> {
    let opts = encode_options(&seg.options);
    let tcp_len = 20 + opts.len() + usize::from(seg.len);
    let mut tcp = Vec::with_capacity(tcp_len);
    tcp.extend_from_slice(&seg.src_port.to_be_bytes());
    tcp.extend_from_slice(&seg.dst_port.to_be_bytes());
    tcp.extend_from_slice(&seg.seq.to_be_bytes());
    tcp.extend_from_slice(&seg.ack.to_be_bytes());
    let (fl, _) = flags_byte(&seg.flags);
    tcp.push((((20 + opts.len()) / 4) as u8) << 4);
    tcp.push(fl);
    tcp.extend_from_slice(&seg.win.to_be_bytes());
    tcp.extend_from_slice(&[0, 0]);
    tcp.extend_from_slice(&seg.urg.to_be_bytes());
    tcp.extend_from_slice(&opts);
    tcp.resize(tcp_len, 0);
    let csum = fold(sum16(&tcp, pseudo_sum(addrs, tcp_len)));
    tcp[16..18].copy_from_slice(&csum.to_be_bytes());
    let mut ip = Vec::with_capacity(40 + tcp_len);
    match (addrs.src, addrs.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + tcp_len) as u16;
            ip.extend_from_slice(&[0x45, 0]);
            ip.extend_from_slice(&total.to_be_bytes());
            ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            let c = fold(sum16(&ip, 0));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            ip.extend_from_slice(&[0x60, 0, 0, 0]);
            ip.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            ip.extend_from_slice(&[6, 64]);
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
        }
        _ => unreachable!("addresses of one family"),
    }
    ip.extend_from_slice(&tcp);
    ip
}

/// What a packet the stack sent holds, if it is TCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A TCP segment.
    Tcp(Addrs, Segment),
    /// Another IP protocol (its number).
    Other(u8),
}

/// Parses an IP packet.
///
/// # Errors
///
/// A packet too short for its headers, or with a bad option, described.
pub fn parse(packet: &[u8]) -> Result<Parsed, String> {
    let version = packet.first().ok_or("empty packet")? >> 4;
    let (addrs, proto, tcp) = match version {
        4 => {
            if packet.len() < 20 {
                return Err("short IPv4 header".into());
            }
            let ihl = usize::from(packet[0] & 0xf) * 4;
            let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
            if ihl < 20 || total > packet.len() || total < ihl {
                return Err("bad IPv4 lengths".into());
            }
            let src: [u8; 4] = packet[12..16].try_into().unwrap_or_default();
            let dst: [u8; 4] = packet[16..20].try_into().unwrap_or_default();
            (
                Addrs {
                    src: IpAddr::from(src),
                    dst: IpAddr::from(dst),
                },
                packet[9],
                &packet[ihl..total],
            )
        }
        6 => {
            if packet.len() < 40 {
                return Err("short IPv6 header".into());
            }
            let plen = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
            if 40 + plen > packet.len() {
                return Err("bad IPv6 payload length".into());
            }
            let src: [u8; 16] = packet[8..24].try_into().unwrap_or_default();
            let dst: [u8; 16] = packet[24..40].try_into().unwrap_or_default();
            (
                Addrs {
                    src: IpAddr::from(src),
                    dst: IpAddr::from(dst),
                },
                packet[6],
                &packet[40..40 + plen],
            )
        }
        v => return Err(format!("IP version {v}")),
    };
    if proto != 6 {
        return Ok(Parsed::Other(proto));
    }
    if tcp.len() < 20 {
        return Err("short TCP header".into());
    }
    let off = usize::from(tcp[12] >> 4) * 4;
    if off < 20 || off > tcp.len() {
        return Err("bad TCP data offset".into());
    }
    let be32 = |i: usize| u32::from_be_bytes([tcp[i], tcp[i + 1], tcp[i + 2], tcp[i + 3]]);
    let be16 = |i: usize| u16::from_be_bytes([tcp[i], tcp[i + 1]]);
    Ok(Parsed::Tcp(
        addrs,
        Segment {
            src_port: be16(0),
            dst_port: be16(2),
            seq: be32(4),
            ack: be32(8),
            flags: flags_from(tcp[13]),
            win: be16(14),
            urg: be16(18),
            options: parse_options(&tcp[20..off])?,
            len: (tcp.len() - off) as u16,
        },
    ))
}

/// `S.`, `P.`, `.`, `F.`, `R`, `-`: the flags as packetdrill writes them.
pub fn flags_text(f: &Flags) -> String {
    let mut s = String::new();
    for (on, c) in [
        (f.fin, 'F'),
        (f.syn, 'S'),
        (f.rst, 'R'),
        (f.psh, 'P'),
        (f.urg, 'U'),
        (f.ece, 'E'),
        (f.cwr, 'W'),
    ] {
        if on {
            s.push(c);
        }
    }
    if f.ack {
        s.push('.');
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

/// An option as packetdrill writes it.
pub fn option_text(o: &TcpOption) -> String {
    match o {
        TcpOption::Nop => "nop".into(),
        TcpOption::Eol => "eol".into(),
        TcpOption::Mss(v) => format!("mss {v}"),
        TcpOption::WindowScale(v) => format!("wscale {v}"),
        TcpOption::SackPermitted => "sackOK".into(),
        TcpOption::Sack(b) => {
            let blocks: Vec<String> = b.iter().map(|(x, y)| format!("{x}:{y}")).collect();
            format!("sack {}", blocks.join(" "))
        }
        TcpOption::Timestamp { val, ecr } => format!("TS val {val} ecr {ecr}"),
        TcpOption::FastOpen(c) => format!("FO {c}").trim().to_string(),
        TcpOption::Md5(c) => format!("md5 {c}"),
    }
}

/// `<mss 1460,nop,...>`, or nothing for no options.
pub fn options_text(opts: &[TcpOption]) -> String {
    if opts.is_empty() {
        return String::new();
    }
    let v: Vec<String> = opts.iter().map(option_text).collect();
    format!(" <{}>", v.join(","))
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}:{}({})",
            flags_text(&self.flags),
            self.seq,
            self.seq.wrapping_add(u32::from(self.len)),
            self.len
        )?;
        if self.flags.ack {
            write!(f, " ack {}", self.ack)?;
        }
        write!(f, " win {}", self.win)?;
        if self.urg != 0 {
            write!(f, " urg {}", self.urg)?;
        }
        write!(f, "{}", options_text(&self.options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_then_parse_round_trips_both_families() {
        let seg = Segment {
            src_port: 40000,
            dst_port: 8080,
            flags: Flags {
                syn: true,
                ack: true,
                ..Flags::default()
            },
            seq: 7,
            ack: 9,
            win: 1000,
            urg: 0,
            options: vec![
                TcpOption::Mss(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamp { val: 1, ecr: 2 },
                TcpOption::Nop,
                TcpOption::WindowScale(7),
            ],
            len: 10,
        };
        for (s, d) in [("192.0.2.1", "192.168.0.1"), ("2001:db8::1", "fd3d::1")] {
            let addrs = Addrs {
                src: s.parse().unwrap(),
                dst: d.parse().unwrap(),
            };
            let p = build(&addrs, &seg);
            let Parsed::Tcp(a, back) = parse(&p).unwrap() else {
                panic!()
            };
            assert_eq!(a, addrs);
            // Padding comes back as one eol.
            assert_eq!(back.options[..5], seg.options[..]);
            assert_eq!(back.len, 10);
            assert_eq!((back.seq, back.ack, back.win), (7, 9, 1000));
        }
    }

    #[test]
    fn printed_as_packetdrill_writes() {
        let seg = Segment {
            flags: Flags {
                psh: true,
                ack: true,
                ..Flags::default()
            },
            seq: 1,
            ack: 1,
            win: 257,
            len: 1000,
            options: vec![TcpOption::Nop, TcpOption::Sack(vec![(1, 2)])],
            ..Segment::default()
        };
        assert_eq!(
            seg.to_string(),
            "P. 1:1001(1000) ack 1 win 257 <nop,sack 1:2>"
        );
    }

    #[test]
    fn bad_packets_are_errors() {
        assert!(parse(&[]).is_err());
        assert!(parse(&[0x45, 0, 0]).is_err());
        let mut p = build(
            &Addrs {
                src: "192.0.2.1".parse().unwrap(),
                dst: "192.0.2.2".parse().unwrap(),
            },
            &Segment {
                options: vec![TcpOption::Mss(1)],
                ..Segment::default()
            },
        );
        p[41] = 9; // MSS length 9: past the header
        assert!(parse(&p).is_err());
    }
}
