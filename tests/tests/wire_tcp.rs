//! TCP header and options: round trips, etherparse as the oracle for every
//! accessor and setter, checksums of real packets, no panics on any bytes.

use std::net::Ipv4Addr;

use etherparse::{TcpHeaderSlice, TcpOptionElement};
use proptest::prelude::*;
use tpa::wire::tcp::{
    SackBlock, Tcp, TcpFlags, TcpOption, TcpOptionError, TcpOptionWriter, TcpOptions, TcpView,
};
use tpa_tests::fixtures::{TCP4_OPTIONS_SACK, TCP4_SYN};

#[test]
fn real_syn_parses_and_checksums() {
    let f = TCP4_SYN.to_vec();
    let seg = &f[34..];
    let tcp = TcpView::new(seg).unwrap();
    assert_eq!(tcp.src_port(), 40000);
    assert_eq!(tcp.dst_port(), 6379);
    assert_eq!(tcp.seq(), 0x11223344);
    assert_eq!(tcp.flags(), TcpFlags::SYN);
    assert_eq!(tcp.window(), 64240);
    assert_eq!(tcp.header_len(), 40);
    let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    assert!(tcp.checksum_ok_v4(src, dst));
    assert!(!tcp.checksum_ok_v4(src, Ipv4Addr::new(10, 0, 0, 3)));
    let opts: Vec<_> = tcp.options_iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(
        opts,
        vec![
            TcpOption::Mss(1460),
            TcpOption::SackPermitted,
            TcpOption::Timestamps {
                tsval: 123456,
                tsecr: 0
            },
            TcpOption::Nop,
            TcpOption::WindowScale(7),
        ]
    );
    // Recomputing the checksum in place reproduces scapy's.
    let mut copy = seg.to_vec();
    let mut view = TcpView::new(&mut copy[..]).unwrap();
    view.set_checksum(0);
    view.fill_checksum_v4(src, dst);
    assert_eq!(copy, seg);
}

#[test]
fn real_sack_segment_parses_and_checksums() {
    let f = TCP4_OPTIONS_SACK.to_vec();
    // IPv4 header with a record-route option: IHL 7.
    let seg = &f[14 + 28..];
    let tcp = TcpView::new(seg).unwrap();
    assert_eq!(tcp.flags(), TcpFlags::PSH | TcpFlags::ACK);
    assert_eq!((tcp.seq(), tcp.ack()), (1000, 2000));
    assert_eq!(tcp.payload(), b"+OK\r\n");
    assert!(tcp.checksum_ok_v4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)));
    let set = tcp.options_iter().summary().unwrap();
    assert_eq!(set.timestamps, Some((1, 2)));
    assert_eq!(
        set.sack.unwrap().as_slice(),
        &[
            SackBlock {
                left: 3000,
                right: 4000
            },
            SackBlock {
                left: 5000,
                right: 6000
            }
        ]
    );
}

#[test]
fn emit_then_parse_round_trips() {
    let h = Tcp {
        src_port: 1,
        dst_port: 65535,
        seq: 0xdeadbeef,
        ack: 0x01020304,
        data_offset: 8,
        reserved: 0b0001,
        flags: TcpFlags::ACK | TcpFlags::CWR | TcpFlags::ECE,
        window: 12345,
        checksum: 0xabcd,
        urgent: 7,
    };
    let mut buf = [0u8; 32];
    assert_eq!(h.emit(&mut buf), Ok(32));
    assert_eq!(Tcp::parse(&buf), Ok(h));
    assert_eq!(TcpView::new(&buf[..]).unwrap().to_header(), h);
    // A buffer shorter than the header the fields declare is refused.
    assert!(h.emit(&mut [0u8; 31]).is_err());
    // data_offset below 5 is refused by the view.
    let mut bad = buf;
    bad[12] = 0x40;
    assert!(TcpView::new(&bad[..]).is_err());
}

fn map_ep(e: &TcpOptionElement) -> TcpOption<'static> {
    match *e {
        TcpOptionElement::Noop => TcpOption::Nop,
        TcpOptionElement::MaximumSegmentSize(m) => TcpOption::Mss(m),
        TcpOptionElement::WindowScale(s) => TcpOption::WindowScale(s),
        TcpOptionElement::SelectiveAcknowledgementPermitted => TcpOption::SackPermitted,
        TcpOptionElement::SelectiveAcknowledgement(first, rest) => {
            let mut blocks = vec![SackBlock {
                left: first.0,
                right: first.1,
            }];
            blocks.extend(
                rest.iter()
                    .flatten()
                    .map(|&(left, right)| SackBlock { left, right }),
            );
            TcpOption::Sack(tpa::wire::tcp::SackBlocks::new(&blocks).unwrap())
        }
        TcpOptionElement::Timestamp(tsval, tsecr) => TcpOption::Timestamps { tsval, tsecr },
    }
}

/// Random bytes that are likely option-shaped: known kinds with right and
/// wrong lengths.
fn option_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(vec![1u8]),
            Just(vec![0u8]),
            any::<u16>().prop_map(|m| vec![2, 4, (m >> 8) as u8, m as u8]),
            any::<u8>().prop_map(|s| vec![3, 3, s]),
            Just(vec![4, 2]),
            prop::collection::vec(any::<u8>(), 8).prop_map(|d| [vec![8, 10], d].concat()),
            (1usize..=4)
                .prop_flat_map(|n| prop::collection::vec(any::<u8>(), 8 * n))
                .prop_map(|d| [vec![5, (2 + d.len()) as u8], d].concat()),
            (9u8..=254, prop::collection::vec(any::<u8>(), 0..6)).prop_map(|(k, d)| [
                vec![k, (2 + d.len()) as u8],
                d
            ]
            .concat()),
            prop::collection::vec(any::<u8>(), 1..4),
        ],
        0..8,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 16 } else { 2000 }))]

    /// Every accessor agrees with etherparse on random headers.
    #[test]
    fn getters_agree_with_etherparse(mut bytes in prop::collection::vec(any::<u8>(), 20..80)) {
        let ours = TcpView::new(&bytes[..]);
        let theirs = TcpHeaderSlice::from_slice(&bytes);
        prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?} vs {:?}", ours.err(), theirs.err());
        // Force a plausible data offset to reach the comparisons often.
        let max_words = (bytes.len() / 4).min(15) as u8;
        bytes[12] = (bytes[12] & 0x0f) | ((5 + bytes[12] % (max_words - 4)) << 4);
        let ours = TcpView::new(&bytes[..]).unwrap();
        let theirs = TcpHeaderSlice::from_slice(&bytes).unwrap();
        prop_assert_eq!(ours.src_port(), theirs.source_port());
        prop_assert_eq!(ours.dst_port(), theirs.destination_port());
        prop_assert_eq!(ours.seq(), theirs.sequence_number());
        prop_assert_eq!(ours.ack(), theirs.acknowledgment_number());
        prop_assert_eq!(ours.data_offset(), theirs.data_offset());
        prop_assert_eq!(ours.reserved() & 1 == 1, theirs.ns());
        let f = ours.flags();
        prop_assert_eq!(
            [f.fin(), f.syn(), f.rst(), f.psh(), f.ack(), f.urg(), f.ece(), f.cwr()],
            [theirs.fin(), theirs.syn(), theirs.rst(), theirs.psh(), theirs.ack(), theirs.urg(), theirs.ece(), theirs.cwr()]
        );
        prop_assert_eq!(ours.window(), theirs.window_size());
        prop_assert_eq!(ours.checksum(), theirs.checksum());
        prop_assert_eq!(ours.urgent(), theirs.urgent_pointer());
        prop_assert_eq!(ours.options(), theirs.options());
        prop_assert_eq!(ours.header_len(), theirs.slice().len());
        prop_assert_eq!(ours.payload(), &bytes[theirs.slice().len()..]);
    }

    /// Every setter writes exactly what etherparse then reads, and nothing
    /// else changes.
    #[test]
    fn setters_agree_with_etherparse(
        base in prop::collection::vec(any::<u8>(), 20..21),
        v16 in any::<u16>(), v32 in any::<u32>(), v8 in any::<u8>(), v4 in 0u8..16,
    ) {
        let mut bytes = base.clone();
        bytes[12] = 0x50 | (bytes[12] & 0x0f);
        let before = TcpHeaderSlice::from_slice(&bytes).unwrap().to_header();
        let reserved_before = TcpView::new(&bytes[..]).unwrap().reserved();
        let check = |f: &dyn Fn(&mut TcpView<&mut [u8]>), expect: &dyn Fn(&mut etherparse::TcpHeader)| {
            let mut b = bytes.clone();
            f(&mut TcpView::new(&mut b[..]).unwrap());
            let mut want = before.clone();
            expect(&mut want);
            let got = TcpHeaderSlice::from_slice(&b).unwrap().to_header();
            assert_eq!(got, want);
        };
        check(&|v| v.set_src_port(v16), &|h| h.source_port = v16);
        check(&|v| v.set_dst_port(v16), &|h| h.destination_port = v16);
        check(&|v| v.set_seq(v32), &|h| h.sequence_number = v32);
        check(&|v| v.set_ack(v32), &|h| h.acknowledgment_number = v32);
        check(&|v| v.set_window(v16), &|h| h.window_size = v16);
        check(&|v| v.set_checksum(v16), &|h| h.checksum = v16);
        check(&|v| v.set_urgent(v16), &|h| h.urgent_pointer = v16);
        check(&|v| v.set_reserved(v4), &|h| h.ns = v4 & 1 == 1);
        check(&|v| v.set_flags(TcpFlags(v8)), &|h| {
            let f = TcpFlags(v8);
            (h.fin, h.syn, h.rst, h.psh, h.ack, h.urg, h.ece, h.cwr) =
                (f.fin(), f.syn(), f.rst(), f.psh(), f.ack(), f.urg(), f.ece(), f.cwr());
        });
        // Setting the flags leaves the reserved bits alone and vice versa.
        let mut b = bytes.clone();
        let mut v = TcpView::new(&mut b[..]).unwrap();
        v.set_flags(TcpFlags(v8));
        prop_assert_eq!(v.reserved(), reserved_before);
        prop_assert_eq!(v.data_offset(), 5);
    }

    /// The option parser agrees with etherparse's option iterator as far as
    /// etherparse goes (etherparse stops at unknown kinds; tpa yields them).
    #[test]
    fn options_agree_with_etherparse(bytes in option_bytes()) {
        let bytes = &bytes[..bytes.len().min(40)];
        let mut ours = TcpOptions::new(bytes);
        let mut theirs = etherparse::TcpOptionsIterator::from_slice(bytes);
        loop {
            match (theirs.next(), ours.next()) {
                (None, None) => break,
                (Some(Ok(e)), Some(Ok(o))) => prop_assert_eq!(o, map_ep(&e)),
                (Some(Err(etherparse::TcpOptionReadError::UnknownId(k))), o) => {
                    match o {
                        Some(Ok(TcpOption::Unknown { kind, .. })) => prop_assert_eq!(kind, k),
                        Some(Err(_)) => {}
                        other => prop_assert!(false, "unknown {} but tpa gave {:?}", k, other),
                    }
                    break;
                }
                (Some(Err(_)), Some(Err(_))) => break,
                (t, o) => prop_assert!(false, "etherparse {:?} vs tpa {:?} on {:02x?}", t, o, bytes),
            }
        }
    }

    /// `summary` (with its fast path for `NOP NOP TS`) equals folding the
    /// iterator by hand.
    #[test]
    fn summary_agrees_with_the_iterator(bytes in option_bytes()) {
        let mut want = tpa::wire::tcp::TcpOptionSet::default();
        let mut failed = None;
        for o in TcpOptions::new(&bytes) {
            match o {
                Ok(TcpOption::Mss(m)) => want.mss = Some(m),
                Ok(TcpOption::WindowScale(s)) => want.window_scale = Some(s),
                Ok(TcpOption::SackPermitted) => want.sack_permitted = true,
                Ok(TcpOption::Sack(s)) => want.sack = Some(s),
                Ok(TcpOption::Timestamps { tsval, tsecr }) => want.timestamps = Some((tsval, tsecr)),
                Ok(_) => {}
                Err(e) => { failed = Some(e); break; }
            }
        }
        let got = TcpOptions::new(&bytes).summary();
        match failed {
            Some(e) => prop_assert_eq!(got, Err(e)),
            None => prop_assert_eq!(got, Ok(want)),
        }
    }

    /// Writing options and parsing them back gives the same options, 4-byte
    /// aligned, within 40 bytes. MSS, window scale, SACK permitted and
    /// timestamps (24 bytes padded) always fit; SACK fits when its padded
    /// size does in what is left.
    #[test]
    fn writer_round_trips(
        mss in proptest::option::of(any::<u16>()),
        ws in proptest::option::of(any::<u8>()),
        sackok in any::<bool>(),
        ts in proptest::option::of((any::<u32>(), any::<u32>())),
        sack in prop::collection::vec((any::<u32>(), any::<u32>()), 0..5),
    ) {
        let mut buf = [0u8; 40];
        let mut w = TcpOptionWriter::new(&mut buf);
        let mut want = Vec::new();
        let padded = |len: usize| len.next_multiple_of(4);
        let mut used = 0;
        if let Some(m) = mss {
            prop_assert_eq!(w.mss(m), Ok(()));
            want.push(TcpOption::Mss(m));
            used += padded(4);
        }
        if let Some(s) = ws {
            prop_assert_eq!(w.window_scale(s), Ok(()));
            want.push(TcpOption::WindowScale(s));
            used += padded(3);
        }
        if sackok {
            prop_assert_eq!(w.sack_permitted(), Ok(()));
            want.push(TcpOption::SackPermitted);
            used += padded(2);
        }
        if let Some((tsval, tsecr)) = ts {
            prop_assert_eq!(w.timestamps(tsval, tsecr), Ok(()));
            want.push(TcpOption::Timestamps { tsval, tsecr });
            used += padded(10);
        }
        prop_assert_eq!(w.len(), used);
        let blocks: Vec<SackBlock> = sack.iter().map(|&(left, right)| SackBlock { left, right }).collect();
        let fits = used + padded(2 + 8 * blocks.len()) <= 40;
        match w.sack(&blocks) {
            Ok(()) => {
                prop_assert!((1..=4).contains(&blocks.len()) && fits, "{} blocks after {} bytes", blocks.len(), used);
                want.push(TcpOption::Sack(tpa::wire::tcp::SackBlocks::new(&blocks).unwrap()));
            }
            Err(TcpOptionError::NoSpace) => prop_assert!((1..=4).contains(&blocks.len()) && !fits),
            Err(TcpOptionError::BadLength { .. }) => prop_assert!(blocks.is_empty() || blocks.len() > 4),
            Err(e) => prop_assert!(false, "{}", e),
        }
        let n = w.finish();
        prop_assert_eq!(n % 4, 0);
        let got: Vec<_> = TcpOptions::new(&buf[..n])
            .filter(|o| *o != Ok(TcpOption::Nop))
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert_eq!(got, want);
    }

    /// No input makes the view or the option parser panic or loop: every
    /// step consumes input.
    #[test]
    fn no_panic_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
        prop_assert!(TcpOptions::new(&bytes).count() <= bytes.len());
        let _ = TcpOptions::new(&bytes).summary();
        if let Ok(v) = TcpView::new(&bytes[..]) {
            prop_assert!(v.header_len() <= bytes.len());
            let _ = (v.to_header(), v.options_iter().count(), v.payload().len());
            let _ = v.checksum_ok_v4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST);
        }
    }
}
