//! UDP (RFC 768) with its IPv4 and IPv6 pseudo-header checksums.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use tpa::wire::udp::{Udp, UdpView};
//!
//! let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
//! let mut dgram = [0u8; 8 + 5];
//! dgram[8..].copy_from_slice(b"hello");
//! Udp { src_port: 1234, dst_port: 53, total_len: 13, checksum: 0 }.emit(&mut dgram).unwrap();
//! let mut view = UdpView::new(&mut dgram[..]).unwrap();
//! view.fill_checksum_v4(src, dst);
//! assert!(view.checksum_ok_v4(src, dst));
//! assert_eq!(view.datagram_payload(), Some(&b"hello"[..]));
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::header;
use crate::header::checksum::{self, Checksum};
use crate::header::{Bytes, BytesMut, HeaderError};
use crate::wire::ipv4::IpProtocol;
use crate::wire::transport::Endpoints;

/// A UDP header (8 bytes).
#[header]
pub struct Udp {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length of the datagram (header and payload) in bytes; RFC 768
    /// calls it "Length".
    pub total_len: u16,
    /// Checksum over the pseudo-header, header and payload; 0 over IPv4
    /// means "none".
    pub checksum: u16,
}

/// The value to store: a computed 0 is sent as 0xffff (0 means "no
/// checksum", RFC 768).
#[inline]
fn finish(c: Checksum) -> u16 {
    match c.checksum() {
        0 => 0xffff,
        v => v,
    }
}

impl Udp {
    /// The checksum a datagram headed by `self` carries over IPv4, where
    /// `payload` is everything after the 8-byte header (the header's own
    /// `checksum` field is ignored). The header is summed from the field
    /// values, so this equals [`UdpView::compute_checksum_v4`] on the
    /// emitted datagram without reading the header back.
    #[inline]
    pub fn checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> u16 {
        self.checksum_over(Endpoints::V4(src, dst), payload)
    }

    /// The checksum a datagram headed by `self` carries over IPv6; as
    /// [`Udp::checksum_v4`].
    #[inline]
    pub fn checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr, payload: &[u8]) -> u16 {
        self.checksum_over(Endpoints::V6(src, dst), payload)
    }

    /// The checksum from the pseudo-header of `ends`, the header's fields
    /// and the payload (which starts at the even offset 8).
    #[inline]
    fn checksum_over(&self, ends: Endpoints<'_>, payload: &[u8]) -> u16 {
        // Three 16-bit words: the total stays below 2^18, and one fold can
        // still carry (0x1ffff folds to 0x10000), so fold twice.
        let fields =
            u32::from(self.src_port) + u32::from(self.dst_port) + u32::from(self.total_len);
        let fields = (fields & 0xffff) + (fields >> 16);
        let mut c = Checksum::new();
        c.add_sum(ends.pseudo_header(IpProtocol::Udp, Self::LEN + payload.len()));
        c.add_sum(((fields & 0xffff) + (fields >> 16)) as u16);
        c.add_bytes(payload);
        finish(c)
    }

    /// Writes the header into the start of `datagram` with the checksum
    /// for IPv4 filled in; `datagram` holds the payload after the first 8
    /// bytes already. Returns the header length, as [`Udp::emit`].
    ///
    /// # Errors
    ///
    /// As [`Udp::emit`]: `datagram` is shorter than the header.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use tpa::wire::udp::{Udp, UdpView};
    /// let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    /// let mut dgram = [0u8; 8 + 5];
    /// dgram[8..].copy_from_slice(b"hello");
    /// let udp = Udp { src_port: 1234, dst_port: 53, total_len: 13, checksum: 0 };
    /// assert_eq!(udp.emit_checksummed_v4(src, dst, &mut dgram), Ok(8));
    /// assert!(UdpView::new(&dgram[..]).unwrap().checksum_ok_v4(src, dst));
    /// ```
    #[inline]
    pub fn emit_checksummed_v4(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        datagram: &mut [u8],
    ) -> Result<usize, HeaderError> {
        self.emit_checksummed(Endpoints::V4(src, dst), datagram)
    }

    /// Writes the header into the start of `datagram` with the checksum
    /// for IPv6 filled in; as [`Udp::emit_checksummed_v4`].
    ///
    /// # Errors
    ///
    /// As [`Udp::emit`].
    #[inline]
    pub fn emit_checksummed_v6(
        &self,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        datagram: &mut [u8],
    ) -> Result<usize, HeaderError> {
        self.emit_checksummed(Endpoints::V6(src, dst), datagram)
    }

    /// Writes the header into the start of `datagram` with the checksum
    /// over the pseudo-header of `ends` filled in.
    #[inline]
    fn emit_checksummed(
        &self,
        ends: Endpoints<'_>,
        datagram: &mut [u8],
    ) -> Result<usize, HeaderError> {
        let payload = datagram.get(Self::LEN..).unwrap_or_default();
        let checksum = self.checksum_over(ends, payload);
        Udp { checksum, ..*self }.emit(datagram)
    }
}

impl<B: Bytes> UdpView<B> {
    /// The payload as `total_len` delimits it (without link-layer padding), or
    /// `None` if `total_len` is below 8 or beyond the buffer.
    #[inline]
    pub fn datagram_payload(&self) -> Option<&[u8]> {
        let len = usize::from(self.total_len()).checked_sub(Udp::LEN)?;
        self.payload().get(..len)
    }

    /// The checksum this datagram (the whole buffer) should carry over IPv4.
    pub fn compute_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        self.compute_checksum(Endpoints::V4(src, dst))
    }

    /// The checksum this datagram (the whole buffer) should carry over IPv6.
    pub fn compute_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> u16 {
        self.compute_checksum(Endpoints::V6(src, dst))
    }

    /// The checksum this datagram should carry over the pseudo-header of
    /// `ends`; the checksum field (bytes 6..8) counts as zero: the whole
    /// datagram summed in one pass, the field's value then taken back out
    /// (adding its complement). Where that leaves the sum's two zeros
    /// apart (0 and 0xffff) does not matter to UDP, which sends both as
    /// 0xffff.
    #[inline]
    fn compute_checksum(&self, ends: Endpoints<'_>) -> u16 {
        let bytes = self.as_bytes();
        let all = checksum::sum_from(ends.pseudo_header(IpProtocol::Udp, bytes.len()), bytes);
        match !checksum::combine(all, !self.checksum()) {
            0 => 0xffff,
            sum => sum,
        }
    }

    /// Whether the checksum is right over IPv4 (a zero checksum, "none",
    /// counts as right).
    #[inline]
    pub fn checksum_ok_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.checksum() == 0 || Endpoints::V4(src, dst).verifies(IpProtocol::Udp, self.as_bytes())
    }

    /// Whether the checksum is right over IPv6 (where it is mandatory).
    #[inline]
    pub fn checksum_ok_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        // Zero is never a computed checksum (sent as 0xffff), so it is wrong.
        self.checksum() != 0 && Endpoints::V6(src, dst).verifies(IpProtocol::Udp, self.as_bytes())
    }
}

impl<B: BytesMut> UdpView<B> {
    /// Computes and stores the checksum for IPv4.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let c = self.compute_checksum_v4(src, dst);
        self.set_checksum(c);
    }

    /// Computes and stores the checksum for IPv6.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        let c = self.compute_checksum_v6(src, dst);
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Ports and length that sum to 0x1ffff: one fold leaves a carry
    /// (found by `emit_checksummed_matches_fill_checksum` in CI).
    #[test]
    fn header_fields_whose_sum_carries_twice_fold_right() {
        let udp = Udp {
            src_port: 58796,
            dst_port: 46539,
            total_len: 25736,
            checksum: 0,
        };
        let (src, dst) = (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED);
        let mut want = [0u8; Udp::LEN];
        udp.emit(&mut want).unwrap();
        UdpView::new(&mut want[..])
            .unwrap()
            .fill_checksum_v4(src, dst);
        let mut got = [0u8; Udp::LEN];
        assert_eq!(udp.emit_checksummed_v4(src, dst, &mut got), Ok(Udp::LEN));
        assert_eq!(got, want);
        assert_eq!(
            udp.checksum_v4(src, dst, &[]),
            UdpView::new(&want[..]).unwrap().checksum()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 16 } else { 2000 }))]

        /// The one-pass check agrees with comparing the field to the
        /// checksum computed without it, for any field value (the right
        /// one, 0, 0xffff or another).
        #[test]
        fn the_one_pass_check_agrees_with_the_computed_checksum(
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            field in prop_oneof![Just(None), Just(Some(0u16)), Just(Some(0xffff)), any::<u16>().prop_map(Some)],
            addrs in any::<([u8; 4], [u8; 4], [u8; 16], [u8; 16])>(),
        ) {
            let mut bytes = vec![0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0];
            bytes.extend_from_slice(&payload);
            let len = bytes.len() as u16;
            bytes[4..6].copy_from_slice(&len.to_be_bytes());
            let (s4, d4) = (Ipv4Addr::from(addrs.0), Ipv4Addr::from(addrs.1));
            let (s6, d6) = (Ipv6Addr::from(addrs.2), Ipv6Addr::from(addrs.3));
            let right4 = UdpView::new(&bytes[..]).unwrap().compute_checksum_v4(s4, d4);
            let right6 = UdpView::new(&bytes[..]).unwrap().compute_checksum_v6(&s6, &d6);
            for (v6, right) in [(false, right4), (true, right6)] {
                let value = field.unwrap_or(right);
                bytes[6..8].copy_from_slice(&value.to_be_bytes());
                let view = UdpView::new(&bytes[..]).unwrap();
                if v6 {
                    prop_assert_eq!(view.checksum_ok_v6(&s6, &d6), value == right);
                } else {
                    prop_assert_eq!(view.checksum_ok_v4(s4, d4), value == 0 || value == right);
                }
            }
        }

        #[test]
        fn emit_checksummed_matches_fill_checksum(
            ports in any::<(u16, u16)>(),
            total_len in any::<u16>(),
            stale_checksum in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            v4 in any::<([u8; 4], [u8; 4])>(),
            v6 in any::<([u8; 16], [u8; 16])>(),
        ) {
            // `total_len` is random too: the checksum covers the field as
            // written, whatever it says.
            let udp = Udp { src_port: ports.0, dst_port: ports.1, total_len, checksum: stale_checksum };
            let mut want = vec![0u8; Udp::LEN + payload.len()];
            want[Udp::LEN..].copy_from_slice(&payload);
            let mut got = want.clone();
            udp.emit(&mut want).unwrap();

            let (src, dst) = (Ipv4Addr::from(v4.0), Ipv4Addr::from(v4.1));
            UdpView::new(&mut want[..]).unwrap().fill_checksum_v4(src, dst);
            prop_assert_eq!(udp.emit_checksummed_v4(src, dst, &mut got), Ok(Udp::LEN));
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(udp.checksum_v4(src, dst, &payload), UdpView::new(&want[..]).unwrap().checksum());

            let (src, dst) = (Ipv6Addr::from(v6.0), Ipv6Addr::from(v6.1));
            UdpView::new(&mut want[..]).unwrap().fill_checksum_v6(&src, &dst);
            prop_assert_eq!(udp.emit_checksummed_v6(&src, &dst, &mut got), Ok(Udp::LEN));
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(udp.checksum_v6(&src, &dst, &payload), UdpView::new(&want[..]).unwrap().checksum());
        }
    }
}
