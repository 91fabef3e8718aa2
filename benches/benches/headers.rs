//! Header parse and emit: tpa's generated views side by side with
//! etherparse, smoltcp::wire, pnet_packet and rpkt, on the same frames.
//!
//! Parse: Ethernet II → IPv4 → TCP, then walk the TCP options (timestamps
//! and SACK); every parser adds ports, seq, ack, tsval, tsecr and all SACK
//! edges into one accumulator, checked against the value computed from the
//! segment descriptions before anything is timed.
//!
//! Emit: build the whole Ethernet/IPv4/TCP frame (timestamps, SACK, 64
//! bytes of payload) with both checksums, for the libraries that can, each
//! through its fastest path that does not allocate. Every field value and
//! address reaches the emitters through `black_box`, and before anything is
//! timed every emitter's bytes are compared with a frame the bench crate
//! built byte by byte.
//!
//! Run: `cargo bench -p tpa-benches --bench headers`, then
//! `python3 benches/report.py` to put the medians and ratios into
//! doc/benchmarks.md.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use tpa_benches::headers::{
    build_frame, build_frame_in, specs, OptionLayout, SegmentSpec, SharedFields, PAYLOAD_LEN,
    SHARED,
};

/// Frames per iteration.
const N: usize = 64;

type ParseFn = fn(&[u8]) -> Option<u64>;
type EmitFn = fn(&SharedFields, &SegmentSpec, &[u8], &mut [u8]) -> usize;

#[inline(always)]
fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

mod tpa_impl {
    use super::*;
    use tpa::wire::ethernet::{EtherType, EthernetView};
    use tpa::wire::ipv4::{IpProtocol, Ipv4View};
    use tpa::wire::tcp::{TcpOption, TcpView};

    #[inline(never)]
    pub fn parse(f: &[u8]) -> Option<u64> {
        let eth = EthernetView::new(f).ok()?;
        if eth.ether_type() != EtherType::Ipv4 {
            return None;
        }
        let ip = Ipv4View::new(eth.into_payload()).ok()?;
        if ip.protocol() != IpProtocol::Tcp {
            return None;
        }
        let tcp = TcpView::new(ip.into_datagram_payload().ok()?).ok()?;
        let mut acc = u64::from(tcp.src_port())
            + u64::from(tcp.dst_port())
            + u64::from(tcp.seq())
            + u64::from(tcp.ack());
        for opt in tcp.options_iter() {
            match opt.ok()? {
                TcpOption::Timestamps { tsval, tsecr } => {
                    acc += u64::from(tsval) + u64::from(tsecr)
                }
                TcpOption::Sack(blocks) => {
                    for b in &blocks {
                        acc += u64::from(b.left) + u64::from(b.right);
                    }
                }
                _ => {}
            }
        }
        Some(acc)
    }

    #[inline(never)]
    pub fn emit(c: &SharedFields, s: &SegmentSpec, payload: &[u8], out: &mut [u8]) -> usize {
        tpa_emit(c, s, payload, out).unwrap_or(0)
    }

    pub use super::tpa_emit_impl::tpa_emit;
}

mod etherparse_impl {
    use super::*;
    use etherparse::{
        EtherType, Ethernet2Header, Ethernet2HeaderSlice, IpNumber, Ipv4Header, Ipv4HeaderSlice,
        TcpHeader, TcpHeaderSlice, TcpOptionElement,
    };

    #[inline(never)]
    pub fn parse(f: &[u8]) -> Option<u64> {
        let eth = Ethernet2HeaderSlice::from_slice(f).ok()?;
        if eth.ether_type() != EtherType::IPV4 {
            return None;
        }
        let rest = &f[eth.slice().len()..];
        let ip = Ipv4HeaderSlice::from_slice(rest).ok()?;
        if ip.protocol() != IpNumber::TCP {
            return None;
        }
        let tcp = TcpHeaderSlice::from_slice(&rest[ip.slice().len()..]).ok()?;
        let mut acc = u64::from(tcp.source_port())
            + u64::from(tcp.destination_port())
            + u64::from(tcp.sequence_number())
            + u64::from(tcp.acknowledgment_number());
        for opt in tcp.options_iterator() {
            match opt.ok()? {
                TcpOptionElement::Timestamp(v, e) => acc += u64::from(v) + u64::from(e),
                TcpOptionElement::SelectiveAcknowledgement(first, more) => {
                    acc += u64::from(first.0) + u64::from(first.1);
                    for (l, r) in more.into_iter().flatten() {
                        acc += u64::from(l) + u64::from(r);
                    }
                }
                _ => {}
            }
        }
        Some(acc)
    }

    /// The headers as values, each written with its own `write` into the
    /// output slice (`Ethernet2Header::write_to_slice`, `Ipv4Header::write`
    /// with the header checksum, `TcpHeader::write` after
    /// `calc_checksum_ipv4_raw`), then the payload: no allocation, no
    /// `PacketBuilder`.
    #[inline(never)]
    pub fn emit(c: &SharedFields, s: &SegmentSpec, payload: &[u8], out: &mut [u8]) -> usize {
        let mut opts = [const { TcpOptionElement::Noop }; 6];
        opts[2] = TcpOptionElement::Timestamp(s.tsval, s.tsecr);
        let n = if let Some((&first, more)) = s.sack.split_first() {
            let mut rest = [None; 3];
            for (slot, &b) in rest.iter_mut().zip(more) {
                *slot = Some(b);
            }
            opts[5] = TcpOptionElement::SelectiveAcknowledgement(first, rest);
            6
        } else {
            3
        };
        let mut tcp = TcpHeader::new(s.src_port, s.dst_port, s.seq, c.window);
        tcp.acknowledgment_number = s.ack;
        tcp.ack = true;
        tcp.psh = true;
        if tcp.set_options(&opts[..n]).is_err() {
            return 0;
        }
        let tcp_len = tcp.header_len() + payload.len();
        let Ok(mut ip) = Ipv4Header::new(tcp_len as u16, c.ttl, IpNumber::TCP, c.src_ip, c.dst_ip)
        else {
            return 0;
        };
        ip.identification = s.ident;
        let Ok(checksum) = tcp.calc_checksum_ipv4_raw(c.src_ip, c.dst_ip, payload) else {
            return 0;
        };
        tcp.checksum = checksum;
        let eth = Ethernet2Header {
            source: c.src_mac,
            destination: c.dst_mac,
            ether_type: EtherType::IPV4,
        };
        let len = Ethernet2Header::LEN + ip.header_len() + tcp_len;
        let Some(frame) = out.get_mut(..len) else {
            return 0;
        };
        let Ok(mut rest) = eth.write_to_slice(frame) else {
            return 0;
        };
        // `Write` for `&mut [u8]` advances the slice past what it wrote.
        if ip.write(&mut rest).is_err() || tcp.write(&mut rest).is_err() {
            return 0;
        }
        rest.copy_from_slice(payload);
        len
    }
}

mod smoltcp_impl {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
        Ipv4Packet, Ipv4Repr, TcpControl, TcpOption, TcpPacket, TcpRepr, TcpSeqNumber,
        TcpTimestampRepr,
    };

    #[inline(never)]
    pub fn parse(f: &[u8]) -> Option<u64> {
        let eth = EthernetFrame::new_checked(f).ok()?;
        if eth.ethertype() != EthernetProtocol::Ipv4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
        if ip.next_header() != IpProtocol::Tcp {
            return None;
        }
        let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
        let mut acc = u64::from(tcp.src_port())
            + u64::from(tcp.dst_port())
            + u64::from(tcp.seq_number().0 as u32)
            + u64::from(tcp.ack_number().0 as u32);
        let mut opts = tcp.options();
        while !opts.is_empty() {
            let (rest, opt) = TcpOption::parse(opts).ok()?;
            match opt {
                TcpOption::EndOfList => break,
                TcpOption::TimeStamp { tsval, tsecr } => acc += u64::from(tsval) + u64::from(tsecr),
                TcpOption::SackRange(r) => {
                    for (l, r) in r.into_iter().flatten() {
                        acc += u64::from(l) + u64::from(r);
                    }
                }
                _ => {}
            }
            opts = rest;
        }
        Some(acc)
    }

    /// `EthernetRepr` / `Ipv4Repr` / `TcpRepr::emit` into the output slice.
    /// `Ipv4Repr` has no identification: the IPv4 header is emitted without
    /// its checksum, then `set_ident` and `fill_checksum`.
    #[inline(never)]
    pub fn emit(c: &SharedFields, s: &SegmentSpec, payload: &[u8], out: &mut [u8]) -> usize {
        let mut sack_ranges = [None; 3];
        for (slot, &b) in sack_ranges.iter_mut().zip(&s.sack) {
            *slot = Some(b);
        }
        let tcp_repr = TcpRepr {
            src_port: s.src_port,
            dst_port: s.dst_port,
            control: TcpControl::Psh,
            seq_number: TcpSeqNumber(s.seq as i32),
            ack_number: Some(TcpSeqNumber(s.ack as i32)),
            window_len: c.window,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges,
            timestamp: Some(TcpTimestampRepr {
                tsval: s.tsval,
                tsecr: s.tsecr,
            }),
            payload,
        };
        let src = Ipv4Addr::from(c.src_ip);
        let dst = Ipv4Addr::from(c.dst_ip);
        let ip_repr = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Tcp,
            payload_len: tcp_repr.buffer_len(),
            hop_limit: c.ttl,
        };
        let eth_repr = EthernetRepr {
            src_addr: EthernetAddress(c.src_mac),
            dst_addr: EthernetAddress(c.dst_mac),
            ethertype: EthernetProtocol::Ipv4,
        };
        let len = eth_repr.buffer_len() + ip_repr.buffer_len() + tcp_repr.buffer_len();
        let Some(buf) = out.get_mut(..len) else {
            return 0;
        };
        let caps = ChecksumCapabilities::default();
        let mut frame = EthernetFrame::new_unchecked(buf);
        eth_repr.emit(&mut frame);
        let mut ip = Ipv4Packet::new_unchecked(frame.payload_mut());
        ip_repr.emit(&mut ip, &ChecksumCapabilities::ignored());
        ip.set_ident(s.ident);
        ip.fill_checksum();
        let mut tcp = TcpPacket::new_unchecked(ip.payload_mut());
        tcp_repr.emit(
            &mut tcp,
            &IpAddress::Ipv4(src),
            &IpAddress::Ipv4(dst),
            &caps,
        );
        len
    }
}

mod pnet_impl {
    use super::*;
    use pnet_base::MacAddr;
    use pnet_packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};
    use pnet_packet::ip::IpNextHeaderProtocols;
    use pnet_packet::ipv4::{self, Ipv4Packet, MutableIpv4Packet};
    use pnet_packet::tcp::{
        self, MutableTcpOptionPacket, MutableTcpPacket, TcpFlags, TcpOptionNumber,
        TcpOptionNumbers, TcpPacket,
    };
    use pnet_packet::{MutablePacket, Packet};

    #[inline(never)]
    pub fn parse(f: &[u8]) -> Option<u64> {
        let eth = EthernetPacket::new(f)?;
        if eth.get_ethertype() != EtherTypes::Ipv4 {
            return None;
        }
        let ip = Ipv4Packet::new(eth.payload())?;
        if ip.get_next_level_protocol() != IpNextHeaderProtocols::Tcp {
            return None;
        }
        let tcp = TcpPacket::new(ip.payload())?;
        let mut acc = u64::from(tcp.get_source())
            + u64::from(tcp.get_destination())
            + u64::from(tcp.get_sequence())
            + u64::from(tcp.get_acknowledgement());
        for opt in tcp.get_options_iter() {
            let n = opt.get_number();
            if n == TcpOptionNumbers::TIMESTAMPS {
                let d = opt.payload();
                acc += u64::from(be32(d)?) + u64::from(be32(d.get(4..)?)?);
            } else if n == TcpOptionNumbers::SACK {
                for c in opt.payload().chunks_exact(8) {
                    acc += u64::from(be32(c)?) + u64::from(be32(&c[4..])?);
                }
            }
        }
        Some(acc)
    }

    /// Writes one option with `MutableTcpOptionPacket`'s setters at the
    /// start of `raw`; returns its length.
    fn put_option(raw: &mut [u8], number: TcpOptionNumber, data: &[u8]) -> Option<usize> {
        let mut o = MutableTcpOptionPacket::new(raw)?;
        o.set_number(number);
        if number == TcpOptionNumbers::NOP {
            return Some(1);
        }
        let len = 2 + data.len();
        o.set_length(&[len as u8]);
        o.set_data(data);
        Some(len)
    }

    /// The `Mutable*Packet` setters on the output slice. The options are
    /// written with `MutableTcpOptionPacket` into `get_options_raw_mut`
    /// (`set_options` takes `TcpOption` values, which allocate), the
    /// checksums with pnet's functions.
    #[inline(never)]
    pub fn emit(c: &SharedFields, s: &SegmentSpec, payload: &[u8], out: &mut [u8]) -> usize {
        let opt_len = s.options_len();
        let tcp_len = 20 + opt_len + payload.len();
        let len = 14 + 20 + tcp_len;
        let Some(buf) = out.get_mut(..len) else {
            return 0;
        };
        let src = Ipv4Addr::from(c.src_ip);
        let dst = Ipv4Addr::from(c.dst_ip);
        let Some(mut eth) = MutableEthernetPacket::new(buf) else {
            return 0;
        };
        eth.set_destination(MacAddr::from(c.dst_mac));
        eth.set_source(MacAddr::from(c.src_mac));
        eth.set_ethertype(EtherTypes::Ipv4);
        let Some(mut ip) = MutableIpv4Packet::new(eth.payload_mut()) else {
            return 0;
        };
        ip.set_version(4);
        ip.set_header_length(5);
        ip.set_dscp(0);
        ip.set_ecn(0);
        ip.set_total_length((20 + tcp_len) as u16);
        ip.set_identification(s.ident);
        ip.set_flags(ipv4::Ipv4Flags::DontFragment);
        ip.set_fragment_offset(0);
        ip.set_ttl(c.ttl);
        ip.set_next_level_protocol(IpNextHeaderProtocols::Tcp);
        ip.set_source(src);
        ip.set_destination(dst);
        ip.set_checksum(0);
        let sum = ipv4::checksum(&ip.to_immutable());
        ip.set_checksum(sum);
        let Some(mut t) = MutableTcpPacket::new(ip.payload_mut()) else {
            return 0;
        };
        t.set_source(s.src_port);
        t.set_destination(s.dst_port);
        t.set_sequence(s.seq);
        t.set_acknowledgement(s.ack);
        t.set_data_offset(((20 + opt_len) / 4) as u8);
        t.set_reserved(0);
        t.set_flags(TcpFlags::ACK | TcpFlags::PSH);
        t.set_window(c.window);
        t.set_checksum(0);
        t.set_urgent_ptr(0);
        {
            let raw = t.get_options_raw_mut();
            let mut at = 0;
            let mut ts = [0u8; 8];
            ts[..4].copy_from_slice(&s.tsval.to_be_bytes());
            ts[4..].copy_from_slice(&s.tsecr.to_be_bytes());
            for (number, data) in [
                (TcpOptionNumbers::NOP, &[][..]),
                (TcpOptionNumbers::NOP, &[][..]),
                (TcpOptionNumbers::TIMESTAMPS, &ts[..]),
            ] {
                let Some(n) = put_option(&mut raw[at..], number, data) else {
                    return 0;
                };
                at += n;
            }
            if !s.sack.is_empty() {
                let mut edges = [0u8; 24];
                for (chunk, &(l, r)) in edges.chunks_exact_mut(8).zip(&s.sack) {
                    chunk[..4].copy_from_slice(&l.to_be_bytes());
                    chunk[4..].copy_from_slice(&r.to_be_bytes());
                }
                for (number, data) in [
                    (TcpOptionNumbers::NOP, &[][..]),
                    (TcpOptionNumbers::NOP, &[][..]),
                    (TcpOptionNumbers::SACK, &edges[..8 * s.sack.len()]),
                ] {
                    let Some(n) = put_option(&mut raw[at..], number, data) else {
                        return 0;
                    };
                    at += n;
                }
            }
        }
        t.set_payload(payload);
        let sum = tcp::ipv4_checksum(&t.to_immutable(), &src, &dst);
        t.set_checksum(sum);
        len
    }
}

mod rpkt_impl {
    use rpkt::ether::{EtherPacket, EtherType};
    use rpkt::ipv4::{IpProtocol, Ipv4Packet};
    use rpkt::tcp::{TcpOption, TcpOptionIter, TcpPacket};
    use rpkt::Cursor;

    #[inline(never)]
    pub fn parse(f: &[u8]) -> Option<u64> {
        let eth = EtherPacket::parse(Cursor::new(f)).ok()?;
        if eth.ethertype() != EtherType::IPV4 {
            return None;
        }
        let ip = Ipv4Packet::parse(eth.payload()).ok()?;
        if ip.protocol() != IpProtocol::TCP {
            return None;
        }
        let tcp = TcpPacket::parse(ip.payload()).ok()?;
        let mut acc = u64::from(tcp.src_port())
            + u64::from(tcp.dst_port())
            + u64::from(tcp.seq_number())
            + u64::from(tcp.ack_number());
        for opt in TcpOptionIter::from_option_bytes(tcp.option_bytes()) {
            match opt {
                TcpOption::Ts(v, e) => acc += u64::from(v) + u64::from(e),
                TcpOption::Sack(s) => {
                    for i in 0..s.num_blocks() {
                        let (l, r) = s.block(i);
                        acc += u64::from(l) + u64::from(r);
                    }
                }
                _ => {}
            }
        }
        Some(acc)
    }
}

const PARSERS: &[(&str, ParseFn)] = &[
    ("tpa", tpa_impl::parse),
    ("etherparse", etherparse_impl::parse),
    ("smoltcp", smoltcp_impl::parse),
    ("pnet", pnet_impl::parse),
    ("rpkt", rpkt_impl::parse),
];

/// The whole-frame emitters and the option layout each writes.
const EMITTERS: &[(&str, EmitFn, OptionLayout)] = &[
    ("tpa", tpa_impl::emit, OptionLayout::Aligned),
    ("etherparse", etherparse_impl::emit, OptionLayout::Aligned),
    ("smoltcp", smoltcp_impl::emit, OptionLayout::Packed),
    ("pnet", pnet_impl::emit, OptionLayout::Aligned),
];

/// Only the IPv4 header, 20 bytes with its checksum: the code `#[header]`
/// generates for tpa, next to the peers' header writers.
mod ipv4_only {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{IpProtocol, Ipv4Packet, Ipv4Repr};

    /// Length of the TCP segment the header announces.
    fn tcp_len(s: &SegmentSpec) -> usize {
        20 + s.options_len() + PAYLOAD_LEN
    }

    /// The owned `Ipv4` header's generated `emit`.
    #[inline(never)]
    pub fn tpa(c: &SharedFields, s: &SegmentSpec, out: &mut [u8]) -> usize {
        use tpa::wire::ipv4::{IpProtocol, Ipv4};
        let ip = Ipv4 {
            total_len: (Ipv4::LEN + tcp_len(s)) as u16,
            ident: s.ident,
            dont_fragment: true,
            ttl: c.ttl,
            protocol: IpProtocol::Tcp,
            src: Ipv4Addr::from(c.src_ip),
            dst: Ipv4Addr::from(c.dst_ip),
            ..Ipv4::basic()
        };
        ip.emit(out).unwrap_or(0)
    }

    /// `Ipv4Repr::emit` without the checksum, `set_ident` (the `Repr` has
    /// no identification), `fill_checksum`.
    #[inline(never)]
    pub fn smoltcp(c: &SharedFields, s: &SegmentSpec, out: &mut [u8]) -> usize {
        let repr = Ipv4Repr {
            src_addr: Ipv4Addr::from(c.src_ip),
            dst_addr: Ipv4Addr::from(c.dst_ip),
            next_header: IpProtocol::Tcp,
            payload_len: tcp_len(s),
            hop_limit: c.ttl,
        };
        let Some(buf) = out.get_mut(..20) else {
            return 0;
        };
        let mut packet = Ipv4Packet::new_unchecked(buf);
        repr.emit(&mut packet, &ChecksumCapabilities::ignored());
        packet.set_ident(s.ident);
        packet.fill_checksum();
        20
    }

    /// `Ipv4Header::new`, then its `write` (which computes the header
    /// checksum) into the output slice.
    #[inline(never)]
    pub fn etherparse(c: &SharedFields, s: &SegmentSpec, out: &mut [u8]) -> usize {
        use etherparse::{IpNumber, Ipv4Header};
        let Ok(mut h) =
            Ipv4Header::new(tcp_len(s) as u16, c.ttl, IpNumber::TCP, c.src_ip, c.dst_ip)
        else {
            return 0;
        };
        h.identification = s.ident;
        let mut w = &mut out[..];
        match h.write(&mut w) {
            Ok(()) => Ipv4Header::MIN_LEN,
            Err(_) => 0,
        }
    }
}

type HeaderEmitFn = fn(&SharedFields, &SegmentSpec, &mut [u8]) -> usize;

const IPV4_EMITTERS: &[(&str, HeaderEmitFn)] = &[
    ("tpa", ipv4_only::tpa),
    ("etherparse", ipv4_only::etherparse),
    ("smoltcp", ipv4_only::smoltcp),
];

/// Formats the first difference between two byte strings for a failed check.
fn first_difference(got: &[u8], want: &[u8]) -> String {
    match got.iter().zip(want).position(|(a, b)| a != b) {
        Some(i) => format!("byte {i}: {:#04x}, want {:#04x}", got[i], want[i]),
        None => format!("length {}, want {}", got.len(), want.len()),
    }
}

/// Refuses to time anything that does not do the work right: every parser
/// arrives at the expected sum, and every emitter writes exactly the bytes
/// of the frame (or IPv4 header) the bench crate built byte by byte.
fn check(specs: &[SegmentSpec], frames: &[Vec<u8>], payload: &[u8]) {
    let expected: u64 = specs.iter().map(SegmentSpec::expected).sum();
    for &(name, parse) in PARSERS {
        let got: u64 = frames.iter().map(|f| parse(f).expect(name)).sum();
        assert_eq!(got, expected, "{name} parsed the frames wrong");
    }
    for &(name, emit, layout) in EMITTERS {
        for s in specs {
            // A dirty buffer, so an emitter that skips a byte is caught.
            let mut out = [0xa5u8; 256];
            let n = emit(&SHARED, s, payload, &mut out);
            let want = build_frame_in(s, layout);
            assert!(
                out[..n] == want[..],
                "{name} emitted other bytes than the reference ({}) for {s:?}",
                first_difference(&out[..n], &want)
            );
        }
    }
    for &(name, emit) in IPV4_EMITTERS {
        for (s, frame) in specs.iter().zip(frames) {
            let mut out = [0xa5u8; 64];
            let n = emit(&SHARED, s, &mut out);
            let want = &frame[14..34];
            assert!(
                out[..n] == want[..],
                "{name} emitted another IPv4 header than the reference ({}) for {s:?}",
                first_difference(&out[..n], want)
            );
        }
    }
}

fn bench(c: &mut Criterion, specs: &[SegmentSpec], frames: &[Vec<u8>], payload: &[u8]) {
    let mut g = c.benchmark_group("parse_eth_ipv4_tcp_opts");
    g.throughput(Throughput::Elements(N as u64));
    for &(name, parse) in PARSERS {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for f in frames {
                    acc = acc.wrapping_add(parse(black_box(f)).unwrap_or(0));
                }
                black_box(acc)
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("emit_eth_ipv4_tcp");
    g.throughput(Throughput::Elements(N as u64));
    for &(name, emit, _) in EMITTERS {
        let mut out = [0u8; 256];
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut total = 0usize;
                for s in specs {
                    total += emit(
                        black_box(&SHARED),
                        black_box(s),
                        black_box(payload),
                        &mut out,
                    );
                    black_box(&out);
                }
                black_box(total)
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("emit_ipv4");
    g.throughput(Throughput::Elements(N as u64));
    for &(name, emit) in IPV4_EMITTERS {
        let mut out = [0u8; 64];
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut total = 0usize;
                for s in specs {
                    total += emit(black_box(&SHARED), black_box(s), &mut out);
                    black_box(&out);
                }
                black_box(total)
            })
        });
    }
    g.finish();
}

fn main() {
    let specs = specs(N);
    let frames: Vec<Vec<u8>> = specs.iter().map(build_frame).collect();
    let payload: Vec<u8> = (0..PAYLOAD_LEN).map(|i| i as u8).collect();
    check(&specs, &frames, &payload);

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    bench(&mut c, &specs, &frames, &payload);
    c.final_summary();
    println!(
        "\nMedians and ratios: `python3 benches/report.py --print headers-parse` \
         (and headers-emit, headers-emit-ipv4); without --print it updates doc/benchmarks.md."
    );
}

mod tpa_emit_impl {
    use super::{Ipv4Addr, SegmentSpec, SharedFields};
    use tpa::wire::ethernet::{EtherType, Ethernet};
    use tpa::wire::ipv4::{IpProtocol, Ipv4};
    use tpa::wire::tcp::{SackBlock, Tcp, TcpFlags, TcpOptionWriter};
    use tpa::wire::MacAddr;

    /// Builds the frame with tpa's owned headers and the option writer.
    #[inline(always)]
    pub fn tpa_emit(
        c: &SharedFields,
        s: &SegmentSpec,
        payload: &[u8],
        out: &mut [u8],
    ) -> Option<usize> {
        let opt_len = s.options_len();
        let tcp_len = 20 + opt_len + payload.len();
        let len = Ethernet::LEN + Ipv4::LEN + tcp_len;
        let frame = out.get_mut(..len)?;
        let (eth, rest) = frame.split_at_mut(Ethernet::LEN);
        Ethernet {
            dst: MacAddr(c.dst_mac),
            src: MacAddr(c.src_mac),
            ether_type: EtherType::Ipv4,
        }
        .emit(eth)
        .ok()?;
        let (ip, seg) = rest.split_at_mut(Ipv4::LEN);
        let (src, dst) = (Ipv4Addr::from(c.src_ip), Ipv4Addr::from(c.dst_ip));
        Ipv4 {
            version: 4,
            ihl: 5,
            dscp: 0,
            ecn: 0,
            total_len: (Ipv4::LEN + tcp_len) as u16,
            ident: s.ident,
            reserved: 0,
            dont_fragment: true,
            more_fragments: false,
            frag_offset: 0,
            ttl: c.ttl,
            protocol: IpProtocol::Tcp,
            checksum: 0,
            src,
            dst,
        }
        .emit(ip)
        .ok()?;
        seg[Tcp::LEN + opt_len..].copy_from_slice(payload);
        let mut w = TcpOptionWriter::new(&mut seg[Tcp::LEN..Tcp::LEN + opt_len]);
        w.timestamps(s.tsval, s.tsecr).ok()?;
        if !s.sack.is_empty() {
            let mut blocks = [SackBlock::default(); 3];
            for (b, &(left, right)) in blocks.iter_mut().zip(&s.sack) {
                *b = SackBlock { left, right };
            }
            w.sack(&blocks[..s.sack.len()]).ok()?;
        }
        Tcp {
            src_port: s.src_port,
            dst_port: s.dst_port,
            seq: s.seq,
            ack: s.ack,
            data_offset: ((Tcp::LEN + opt_len) / 4) as u8,
            reserved: 0,
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window: c.window,
            checksum: 0,
            urgent: 0,
        }
        .emit_checksummed_v4(src, dst, seg)
        .ok()?;
        Some(len)
    }
}
