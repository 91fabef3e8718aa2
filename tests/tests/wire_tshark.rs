//! Frames built with tpa's headers, read back by tshark (the real Wireshark
//! dissectors): every field where we put it, every checksum "Good".

use std::net::{Ipv4Addr, Ipv6Addr};

use tpa::wire::ethernet::{EtherType, Ethernet};
use tpa::wire::icmpv4::{Icmpv4Echo, Icmpv4EchoView, Icmpv4Type};
use tpa::wire::icmpv6::{
    solicited_node, Icmpv6Type, NdpOptionWriter, NeighborSolicitation, NeighborSolicitationView,
};
use tpa::wire::ipv4::{IpProtocol, Ipv4};
use tpa::wire::ipv6::Ipv6;
use tpa::wire::tcp::{SackBlock, Tcp, TcpFlags, TcpOptionWriter, TcpView};
use tpa::wire::udp::{Udp, UdpView};
use tpa::wire::MacAddr;

const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

fn eth(ty: EtherType, out: &mut Vec<u8>) {
    let mut b = [0u8; 14];
    Ethernet {
        dst: B,
        src: A,
        ether_type: ty,
    }
    .emit(&mut b)
    .unwrap();
    out.extend_from_slice(&b);
}

fn ipv4(proto: IpProtocol, payload_len: usize, out: &mut Vec<u8>) -> (Ipv4Addr, Ipv4Addr) {
    let (src, dst) = (Ipv4Addr::new(10, 1, 2, 3), Ipv4Addr::new(10, 4, 5, 6));
    let mut b = [0u8; 20];
    Ipv4 {
        total_len: (20 + payload_len) as u16,
        ident: 0x4321,
        protocol: proto,
        src,
        dst,
        ..Ipv4::basic()
    }
    .emit(&mut b)
    .unwrap();
    out.extend_from_slice(&b);
    (src, dst)
}

fn ipv6(next: IpProtocol, payload_len: usize, src: Ipv6Addr, dst: Ipv6Addr, out: &mut Vec<u8>) {
    let mut b = [0u8; 40];
    Ipv6 {
        version: 6,
        dscp: 0,
        ecn: 0,
        flow_label: 0x12345,
        payload_len: payload_len as u16,
        next_header: next,
        hop_limit: 255,
        src,
        dst,
    }
    .emit(&mut b)
    .unwrap();
    out.extend_from_slice(&b);
}

fn tcp_v4_frame() -> Vec<u8> {
    let mut seg = vec![0u8; 20 + 40 + 5];
    let mut w = TcpOptionWriter::new(&mut seg[20..60]);
    w.timestamps(1000, 2000).unwrap();
    w.sack(&[
        SackBlock {
            left: 10,
            right: 20,
        },
        SackBlock {
            left: 30,
            right: 40,
        },
    ])
    .unwrap();
    let n = w.finish();
    assert_eq!(n, 32);
    seg.truncate(20 + n);
    seg.extend_from_slice(b"hello");
    Tcp {
        src_port: 40001,
        dst_port: 6379,
        seq: 0xfedcba98,
        ack: 0x01234567,
        data_offset: ((20 + n) / 4) as u8,
        reserved: 0,
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window: 512,
        checksum: 0,
        urgent: 0,
    }
    .emit(&mut seg)
    .unwrap();
    let mut f = Vec::new();
    eth(EtherType::Ipv4, &mut f);
    let (s, d) = ipv4(IpProtocol::Tcp, seg.len(), &mut f);
    TcpView::new(&mut seg[..]).unwrap().fill_checksum_v4(s, d);
    f.extend_from_slice(&seg);
    f
}

fn udp_v6_frame() -> Vec<u8> {
    let (s, d): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8::a".parse().unwrap(),
        "2001:db8::b".parse().unwrap(),
    );
    let mut dg = vec![0u8; 8];
    dg.extend_from_slice(b"odd");
    Udp {
        src_port: 5000,
        dst_port: 5001,
        total_len: dg.len() as u16,
        checksum: 0,
    }
    .emit(&mut dg)
    .unwrap();
    UdpView::new(&mut dg[..]).unwrap().fill_checksum_v6(&s, &d);
    let mut f = Vec::new();
    eth(EtherType::Ipv6, &mut f);
    ipv6(IpProtocol::Udp, dg.len(), s, d, &mut f);
    f.extend_from_slice(&dg);
    f
}

fn icmpv4_echo_frame() -> Vec<u8> {
    let mut m = vec![0u8; 8];
    m.extend_from_slice(b"0123456789");
    Icmpv4Echo {
        msg_type: Icmpv4Type::EchoRequest,
        code: 0,
        checksum: 0,
        ident: 77,
        seq: 5,
    }
    .emit(&mut m)
    .unwrap();
    assert!(Icmpv4EchoView::new(&m[..]).unwrap().checksum_ok());
    let mut f = Vec::new();
    eth(EtherType::Ipv4, &mut f);
    ipv4(IpProtocol::Icmp, m.len(), &mut f);
    f.extend_from_slice(&m);
    f
}

fn ns_frame() -> Vec<u8> {
    let s: Ipv6Addr = "fe80::1".parse().unwrap();
    let target: Ipv6Addr = "fe80::2".parse().unwrap();
    let d = solicited_node(&target);
    let mut m = vec![0u8; 32];
    NeighborSolicitation {
        msg_type: Icmpv6Type::NeighborSolicitation,
        code: 0,
        checksum: 0,
        reserved: 0,
        target,
    }
    .emit(&mut m)
    .unwrap();
    NdpOptionWriter::new(&mut m[24..])
        .source_link_addr(A)
        .unwrap();
    NeighborSolicitationView::new(&mut m[..])
        .unwrap()
        .fill_checksum_v6(&s, &d);
    let mut f = Vec::new();
    eth(EtherType::Ipv6, &mut f);
    ipv6(IpProtocol::Icmpv6, m.len(), s, d, &mut f);
    f.extend_from_slice(&m);
    f
}

/// A classic pcap file (microsecond timestamps, Ethernet link type).
fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&4u16.to_le_bytes());
    p.extend_from_slice(&0i32.to_le_bytes());
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(&65535u32.to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        p.extend_from_slice(&(i as u32).to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        p.extend_from_slice(&(f.len() as u32).to_le_bytes());
        p.extend_from_slice(&(f.len() as u32).to_le_bytes());
        p.extend_from_slice(f);
    }
    p
}

/// Runs tshark over the frames with checksum validation on; one row of
/// fields per frame.
fn tshark(name: &str, frames: &[Vec<u8>], fields: &[&str]) -> Vec<Vec<String>> {
    let dir = std::env::temp_dir().join(format!("tpa-wire-tshark-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("frames.pcap");
    std::fs::write(&file, pcap(frames)).unwrap();
    let prefs = [
        "ip.check_checksum:TRUE",
        "tcp.check_checksum:TRUE",
        "udp.check_checksum:TRUE",
        "tcp.relative_sequence_numbers:FALSE",
    ];
    let rows = tpa_tests::tshark::fields(&file, &prefs, fields);
    std::fs::remove_dir_all(&dir).unwrap();
    rows
}

// Wireshark's checksum status values: 0 bad, 1 good, 2 unverified.
const GOOD: &str = "1";

#[test]
fn tshark_reads_tcp_over_ipv4_with_options() {
    let rows = tshark(
        "tcp",
        &[tcp_v4_frame()],
        &[
            "ip.checksum.status",
            "ip.id",
            "tcp.srcport",
            "tcp.dstport",
            "tcp.seq_raw",
            "tcp.ack_raw",
            "tcp.flags",
            "tcp.window_size_value",
            "tcp.options.timestamp.tsval",
            "tcp.options.timestamp.tsecr",
            "tcp.options.sack_le",
            "tcp.options.sack_re",
            "tcp.checksum.status",
            "tcp.len",
        ],
    );
    assert_eq!(
        rows[0],
        [
            GOOD,
            "0x4321",
            "40001",
            "6379",
            "4275878552",
            "19088743",
            "0x0018",
            "512",
            "1000",
            "2000",
            "10,30",
            "20,40",
            GOOD,
            "5"
        ]
        .map(String::from)
    );
}

#[test]
fn tshark_reads_udp_over_ipv6_icmp_echo_and_ndp() {
    let rows = tshark(
        "mixed",
        &[udp_v6_frame(), icmpv4_echo_frame(), ns_frame()],
        &[
            "ipv6.flow",
            "udp.srcport",
            "udp.checksum.status",
            "icmp.type",
            "icmp.ident",
            "icmp.seq",
            "icmp.checksum.status",
            "icmpv6.type",
            "icmpv6.nd.ns.target_address",
            "icmpv6.opt.linkaddr",
            "icmpv6.checksum.status",
        ],
    );
    assert_eq!(rows[0][..3], ["0x012345", "5000", GOOD].map(String::from));
    assert_eq!(rows[1][3..7], ["8", "77", "5", GOOD].map(String::from));
    assert_eq!(
        rows[2][7..],
        ["135", "fe80::2", "02:00:00:00:00:01", GOOD].map(String::from)
    );
}
