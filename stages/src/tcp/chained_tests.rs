//! TCP's receive path on chained frames (a gathering port's delivery: the
//! headers in the first buffer segment, the payload in later ones, shared
//! with the sender): the checksum over every segment, the payload kept as
//! the chain, the headers that cross the first segment dropped as
//! `chained`.

use tpa::buf::{ChecksumStatus, PacketBuf, PoolBuf};
use tpa::stage::Reason;

use super::testing::{bytes, iface, segment_frame, Seg};
use super::wire::parse;
use crate::packet::{Ipv4Packet, Ipv6Packet, TcpPacket};
use crate::testing::{chained, pool, BufferPool};

/// `frame` cut at `cuts`, through IP input and the TCP split.
fn tcp_chain(frame: &[u8], cuts: &[usize]) -> (TcpPacket<PoolBuf>, tpa::buf::Shared<PoolBuf>) {
    let (buf, held) = chained(frame, cuts);
    let p = if frame[12..14] == [0x86, 0xdd] {
        TcpPacket::from_ipv6(Ipv6Packet::parse(buf, &iface()).unwrap()).unwrap()
    } else {
        TcpPacket::from_ipv4(Ipv4Packet::parse(buf, &iface()).unwrap()).unwrap()
    };
    (p, held)
}

fn data_segment(payload_len: usize) -> Seg {
    Seg {
        src_port: 40000,
        dst_port: 80,
        seq: 1000,
        ack: Some(1),
        window: 500,
        // NOP NOP timestamps.
        options: vec![1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 8],
        payload: (0..payload_len).map(|i| (i * 31 + 7) as u8).collect(),
        ..Seg::default()
    }
}

#[test]
fn a_chained_segment_verifies_and_keeps_its_payload_as_the_chain() {
    for v6 in [false, true] {
        let seg = data_segment(1447);
        let frame = segment_frame(v6, &seg);
        let headers = frame.len() - seg.payload.len();
        // The headers alone in the first segment (as tpa sends), and the
        // payload split at odd offsets with some of it in the first.
        for cuts in [
            vec![headers],
            vec![headers + 3, headers + 10, headers + 711],
        ] {
            let (p, held) = tcp_chain(&frame, &cuts);
            let r = parse(p).unwrap_or_else(|e| panic!("v6 {v6} cuts {cuts:?}: {e:?}"));
            let payload = r.segment.payload.as_ref().unwrap();
            assert_eq!(bytes(payload), seg.payload, "v6 {v6} cuts {cuts:?}");
            assert_eq!(payload.segment_count(), cuts.len() + 1);
            assert_eq!(r.segment.options.timestamps, Some((9, 8)));
            assert_eq!(held.ref_count(), 2, "held by reference, not copied");
            drop(r);
            assert_eq!(held.ref_count(), 1);
        }
    }
    pool().assert_whole();
}

#[test]
fn a_flipped_bit_in_a_later_segment_fails_the_checksum() {
    for v6 in [false, true] {
        let seg = data_segment(600);
        let mut frame = segment_frame(v6, &seg);
        let at = frame.len() - 101;
        frame[at] ^= 0x10;
        let headers = frame.len() - 600;
        // Two segments from a word boundary (the sums carried on), from
        // an odd one, and three.
        for cuts in [
            vec![headers],
            vec![headers + 1],
            vec![headers + 2, headers + 301],
        ] {
            let (p, _held) = tcp_chain(&frame, &cuts);
            assert_eq!(
                parse(p).unwrap_err(),
                Reason::BAD_CHECKSUM,
                "v6 {v6} {cuts:?}"
            );
        }
        // The port's verdict is trusted, as for one segment.
        let (mut p, _held) = tcp_chain(&frame, &[headers + 1]);
        p.buf_mut().meta_mut().l4_checksum = ChecksumStatus::Good;
        assert!(parse(p).is_ok());
    }
    pool().assert_whole();
}

#[test]
fn a_tcp_header_crossing_the_first_segment_is_dropped_as_chained() {
    for v6 in [false, true] {
        let seg = data_segment(100);
        let frame = segment_frame(v6, &seg);
        let l4 = if v6 { 54 } else { 34 };
        // Inside the fixed header, and inside the options.
        for cut in [l4 + 7, l4 + 25] {
            let (p, _held) = tcp_chain(&frame, &[cut]);
            assert_eq!(parse(p).unwrap_err(), Reason::CHAINED, "v6 {v6} cut {cut}");
        }
    }
    pool().assert_whole();
}
