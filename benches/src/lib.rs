//! Shared inputs for the benchmarks.
//!
//! [`headers`] describes the TCP segments the header benchmarks parse and
//! emit, builds their frames byte by byte (independently of every parser
//! under test) and computes the value each parser must arrive at.
//! [`loop_port`] is a port without a wire, for measuring a pipeline's loop;
//! [`linear_neighbors`] is the old neighbor table, the neighbor cache's
//! baseline;
//! [`criterion()`] gives the Criterion settings the benches share;
//! [`results`] stores figures measured outside criterion for
//! `benches/report.py`.

pub mod headers {
    //! The segment set of `benches/headers.rs`.

    /// Source MAC of every frame.
    pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    /// Destination MAC of every frame.
    pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
    /// Source IPv4 address of every frame.
    pub const SRC_IP: [u8; 4] = [10, 0, 0, 1];
    /// Destination IPv4 address of every frame.
    pub const DST_IP: [u8; 4] = [10, 0, 0, 2];
    /// TCP payload bytes carried by every segment.
    pub const PAYLOAD_LEN: usize = 64;
    /// TCP window of every segment.
    pub const WINDOW: u16 = 502;
    /// IPv4 TTL of every frame.
    pub const TTL: u8 = 64;

    /// The fields every frame shares: addresses, TTL and window. The emit
    /// benches pass them through `black_box` with the per-segment fields,
    /// so no emitter writes constants the compiler could fold.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SharedFields {
        /// Source MAC.
        pub src_mac: [u8; 6],
        /// Destination MAC.
        pub dst_mac: [u8; 6],
        /// Source IPv4 address.
        pub src_ip: [u8; 4],
        /// Destination IPv4 address.
        pub dst_ip: [u8; 4],
        /// IPv4 TTL.
        pub ttl: u8,
        /// TCP window.
        pub window: u16,
    }

    /// The shared fields of every frame [`build_frame`] makes.
    pub const SHARED: SharedFields = SharedFields {
        src_mac: SRC_MAC,
        dst_mac: DST_MAC,
        src_ip: SRC_IP,
        dst_ip: DST_IP,
        ttl: TTL,
        window: WINDOW,
    };

    /// How a frame's TCP options are laid out.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum OptionLayout {
        /// `NOP NOP TS`, then `NOP NOP SACK` if there are blocks: every
        /// option 4-byte aligned, as RFC 7323 (appendix A) suggests. tpa,
        /// etherparse and pnet write this.
        Aligned,
        /// `SACK` (if any) then `TS`, end-of-list bytes up to the next
        /// 4-byte boundary: what smoltcp writes (it has no NOP padding).
        Packed,
    }

    /// One data segment with timestamps and, for some, SACK blocks.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SegmentSpec {
        /// TCP source port.
        pub src_port: u16,
        /// TCP destination port.
        pub dst_port: u16,
        /// Sequence number.
        pub seq: u32,
        /// Acknowledgment number.
        pub ack: u32,
        /// Timestamp value.
        pub tsval: u32,
        /// Timestamp echo reply.
        pub tsecr: u32,
        /// 0 to 3 SACK blocks `(left, right)` (3 is the most that fit next
        /// to timestamps, and the most smoltcp represents).
        pub sack: Vec<(u32, u32)>,
        /// IPv4 identification.
        pub ident: u16,
    }

    impl SegmentSpec {
        /// The value every parser accumulates for this segment: the wrapping
        /// sum of ports, seq, ack, tsval, tsecr and all SACK edges.
        pub fn expected(&self) -> u64 {
            let mut acc = u64::from(self.src_port)
                + u64::from(self.dst_port)
                + u64::from(self.seq)
                + u64::from(self.ack)
                + u64::from(self.tsval)
                + u64::from(self.tsecr);
            for &(l, r) in &self.sack {
                acc += u64::from(l) + u64::from(r);
            }
            acc
        }

        /// Length of the TCP option area: `NOP NOP TS` and, with SACK,
        /// `NOP NOP SACK(n)`.
        pub fn options_len(&self) -> usize {
            self.options_len_in(OptionLayout::Aligned)
        }

        /// Length of the TCP option area in `layout`.
        pub fn options_len_in(&self, layout: OptionLayout) -> usize {
            let sack = if self.sack.is_empty() {
                0
            } else {
                2 + 8 * self.sack.len()
            };
            match layout {
                OptionLayout::Aligned => 12 + if sack == 0 { 0 } else { 2 + sack },
                OptionLayout::Packed => (10 + sack).next_multiple_of(4),
            }
        }
    }

    /// `n` segments from a fixed seed: a mix of plain data segments (half)
    /// and segments with 1, 2 or 3 SACK blocks.
    pub fn specs(n: usize) -> Vec<SegmentSpec> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
        };
        (0..n)
            .map(|i| {
                let seq = next();
                let nsack = if i % 2 == 0 { 0 } else { 1 + (i / 2) % 3 };
                let sack = (0..nsack)
                    .map(|_| {
                        let l = next();
                        (l, l.wrapping_add(1448))
                    })
                    .collect();
                SegmentSpec {
                    src_port: next() as u16,
                    dst_port: 6379,
                    seq,
                    ack: next(),
                    tsval: next(),
                    tsecr: next(),
                    sack,
                    ident: next() as u16,
                }
            })
            .collect()
    }

    /// The 16-bit one's complement sum of `data` (RFC 1071), not inverted.
    fn ones_sum(mut acc: u32, data: &[u8]) -> u32 {
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

    /// The frame for `spec`: Ethernet II, IPv4 (DF, no options), TCP (ACK|PSH)
    /// with its options and `PAYLOAD_LEN` bytes of payload, both checksums
    /// filled in.
    pub fn build_frame(spec: &SegmentSpec) -> Vec<u8> {
        build_frame_in(spec, OptionLayout::Aligned)
    }

    /// [`build_frame`] with the TCP options laid out as `layout` says.
    pub fn build_frame_in(spec: &SegmentSpec, layout: OptionLayout) -> Vec<u8> {
        let opt_len = spec.options_len_in(layout);
        let tcp_len = 20 + opt_len + PAYLOAD_LEN;
        let mut f = Vec::with_capacity(14 + 20 + tcp_len);
        f.extend_from_slice(&DST_MAC);
        f.extend_from_slice(&SRC_MAC);
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        // IPv4
        let ip = f.len();
        f.push(0x45);
        f.push(0);
        f.extend_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
        f.extend_from_slice(&spec.ident.to_be_bytes());
        f.extend_from_slice(&0x4000u16.to_be_bytes());
        f.push(TTL);
        f.push(6);
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&SRC_IP);
        f.extend_from_slice(&DST_IP);
        let c = fold(ones_sum(0, &f[ip..ip + 20]));
        f[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
        // TCP
        let tcp = f.len();
        f.extend_from_slice(&spec.src_port.to_be_bytes());
        f.extend_from_slice(&spec.dst_port.to_be_bytes());
        f.extend_from_slice(&spec.seq.to_be_bytes());
        f.extend_from_slice(&spec.ack.to_be_bytes());
        f.push((((20 + opt_len) / 4) as u8) << 4);
        f.push(0x18);
        f.extend_from_slice(&WINDOW.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0]);
        let sack = |f: &mut Vec<u8>| {
            f.extend_from_slice(&[5, (2 + 8 * spec.sack.len()) as u8]);
            for &(l, r) in &spec.sack {
                f.extend_from_slice(&l.to_be_bytes());
                f.extend_from_slice(&r.to_be_bytes());
            }
        };
        let ts = |f: &mut Vec<u8>| {
            f.extend_from_slice(&[8, 10]);
            f.extend_from_slice(&spec.tsval.to_be_bytes());
            f.extend_from_slice(&spec.tsecr.to_be_bytes());
        };
        match layout {
            OptionLayout::Aligned => {
                f.extend_from_slice(&[1, 1]);
                ts(&mut f);
                if !spec.sack.is_empty() {
                    f.extend_from_slice(&[1, 1]);
                    sack(&mut f);
                }
            }
            OptionLayout::Packed => {
                if !spec.sack.is_empty() {
                    sack(&mut f);
                }
                ts(&mut f);
                f.resize(tcp + 20 + opt_len, 0); // end of list, padding
            }
        }
        f.extend((0..PAYLOAD_LEN).map(|i| i as u8));
        let mut acc = ones_sum(0, &SRC_IP);
        acc = ones_sum(acc, &DST_IP);
        acc += 6 + tcp_len as u32;
        let c = fold(ones_sum(acc, &f[tcp..]));
        f[tcp + 16..tcp + 18].copy_from_slice(&c.to_be_bytes());
        f
    }

    /// Whether both checksums of a frame made like [`build_frame`]'s verify.
    pub fn checksums_ok(f: &[u8]) -> bool {
        if f.len() < 34 {
            return false;
        }
        let ihl = usize::from(f[14] & 0xf) * 4;
        if fold(ones_sum(0, &f[14..14 + ihl])) != 0 {
            return false;
        }
        let tcp = &f[14 + ihl..];
        let mut acc = ones_sum(0, &f[26..34]);
        acc += 6 + tcp.len() as u32;
        fold(ones_sum(acc, tcp)) == 0
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn frames_have_valid_checksums_and_expected_lengths() {
            for s in specs(16) {
                let f = build_frame(&s);
                assert_eq!(f.len(), 14 + 20 + 20 + s.options_len() + PAYLOAD_LEN);
                assert!(checksums_ok(&f), "{s:?}");
                let mut bad = f.clone();
                bad[40] ^= 1;
                assert!(!checksums_ok(&bad));
            }
        }

        #[test]
        fn packed_options_are_sack_then_timestamps_padded_with_end_of_list() {
            for s in specs(8) {
                let f = build_frame_in(&s, OptionLayout::Packed);
                let opt_len = s.options_len_in(OptionLayout::Packed);
                assert_eq!(opt_len % 4, 0);
                assert_eq!(f.len(), 14 + 20 + 20 + opt_len + PAYLOAD_LEN);
                assert!(checksums_ok(&f), "{s:?}");
                let opts = &f[54..54 + opt_len];
                let ts_at = if s.sack.is_empty() {
                    0
                } else {
                    assert_eq!(opts[..2], [5, (2 + 8 * s.sack.len()) as u8]);
                    2 + 8 * s.sack.len()
                };
                assert_eq!(opts[ts_at..ts_at + 2], [8, 10], "{s:?}");
                assert!(opts[ts_at + 10..].iter().all(|&b| b == 0), "{s:?}");
            }
        }
    }
}

pub mod linear_neighbors;
pub mod loop_port;
pub mod results;

/// The Criterion settings the benches share: half a second of warm-up and
/// two seconds of measurement per benchmark, then the command line's
/// options.
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .configure_from_args()
}
