//! The reset for a segment no connection takes (RFC 9293 §3.10.7.1), and
//! how often such resets may go out.

use tpa::buf::PacketBuf;
use tpa::wire::tcp::TcpFlags;

use super::segment::{OptionsOut, SegmentIn, SegmentOut};
use super::seq::SeqNumber;
use crate::udp::TokenBucket;

/// How segments without a connection are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetConfig {
    /// Whether they are answered at all (off: dropped silently, as a
    /// firewall's "drop" policy).
    pub enabled: bool,
    /// Resets a second, on average.
    pub rate: u64,
    /// Resets in a burst.
    pub burst: u64,
}

impl Default for ResetConfig {
    /// On, 1000 a second in bursts of 50 (the ICMP limits Linux applies to
    /// its own error messages; Linux does not limit these resets, but a
    /// stack answering a scan at line rate serves the scanner).
    fn default() -> Self {
        ResetConfig {
            enabled: true,
            rate: 1000,
            burst: 50,
        }
    }
}

/// The reset answering `seg`, which reached no connection (RFC 9293
/// §3.10.7.1, "If the state is CLOSED"): none for a reset; for a segment
/// with ACK, `<SEQ=SEG.ACK><CTL=RST>`; otherwise
/// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`.
///
/// ```
/// use tpa::buf::PoolBuf;
/// use tpa::wire::tcp::{TcpFlags, TcpOptionSet};
/// use tpa_stages::tcp::reset::reset_for;
/// use tpa_stages::tcp::segment::SegmentIn;
/// use tpa_stages::tcp::seq::SeqNumber;
///
/// let syn: SegmentIn<PoolBuf> = SegmentIn {
///     seq: SeqNumber::new(1000), ack: SeqNumber::new(0), flags: TcpFlags::SYN,
///     window: 65535, options: TcpOptionSet::default(), payload: None,
/// };
/// let rst = reset_for(&syn).unwrap();
/// assert_eq!((rst.seq.get(), rst.ack.get()), (0, 1001));
/// assert_eq!(rst.flags, TcpFlags::RST | TcpFlags::ACK);
/// ```
pub fn reset_for<B: PacketBuf>(seg: &SegmentIn<B>) -> Option<SegmentOut<B>> {
    if seg.flags.rst() {
        return None;
    }
    let (seq, ack, flags) = if seg.flags.ack() {
        (seg.ack, SeqNumber::new(0), TcpFlags::RST)
    } else {
        (
            SeqNumber::new(0),
            seg.seq + seg.seq_len(),
            TcpFlags::RST | TcpFlags::ACK,
        )
    };
    Some(SegmentOut {
        seq,
        ack,
        flags,
        window: 0,
        options: OptionsOut::default(),
        payload: None,
    })
}

/// The rate limit of resets: [`ResetConfig`] over a token bucket.
#[derive(Debug, Clone)]
pub struct ResetLimiter {
    config: ResetConfig,
    bucket: TokenBucket,
}

impl ResetLimiter {
    /// A limiter as `config` says.
    pub fn new(config: ResetConfig) -> Self {
        ResetLimiter {
            config,
            bucket: TokenBucket::new(config.rate, config.burst),
        }
    }

    /// Whether resets are sent at all.
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// Takes a token at `now_ns`: whether a reset may go now.
    pub fn try_take(&mut self, now_ns: u64) -> bool {
        self.config.enabled && self.bucket.try_take(now_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpa::buf::PoolBuf;
    use tpa::wire::tcp::TcpOptionSet;

    fn seg(flags: TcpFlags, seq: u32, ack: u32, len: usize) -> SegmentIn<PoolBuf> {
        let payload = (len > 0).then(|| crate::testing::frame(&vec![0; len]));
        SegmentIn {
            seq: SeqNumber::new(seq),
            ack: SeqNumber::new(ack),
            flags,
            window: 100,
            options: TcpOptionSet::default(),
            payload,
        }
    }

    #[test]
    fn the_reset_follows_rfc_9293_and_never_answers_a_reset() {
        // With ACK: SEQ=SEG.ACK, RST alone.
        let r = reset_for(&seg(TcpFlags::ACK, 5, 77, 10)).unwrap();
        assert_eq!((r.seq.get(), r.flags), (77, TcpFlags::RST));
        // Without: SEQ=0, ACK=SEG.SEQ+SEG.LEN (SYN and FIN count, wrapping).
        let r = reset_for(&seg(TcpFlags::SYN | TcpFlags::FIN, u32::MAX, 0, 3)).unwrap();
        assert_eq!((r.seq.get(), r.ack.get()), (0, 4));
        assert_eq!(r.flags, TcpFlags::RST | TcpFlags::ACK);
        assert_eq!(r.data_len(), 0);
        assert!(reset_for(&seg(TcpFlags::RST, 1, 0, 0)).is_none());
        assert!(reset_for(&seg(TcpFlags::RST | TcpFlags::ACK, 1, 2, 0)).is_none());
        tpa::buf::BufferPool::assert_whole(&crate::testing::pool());
    }

    #[test]
    fn resets_are_limited_and_can_be_switched_off() {
        let mut l = ResetLimiter::new(ResetConfig {
            enabled: true,
            rate: 10,
            burst: 2,
        });
        assert!(l.try_take(0) && l.try_take(0));
        assert!(!l.try_take(0));
        assert!(l.try_take(100_000_000));
        let mut off = ResetLimiter::new(ResetConfig {
            enabled: false,
            ..ResetConfig::default()
        });
        assert!(!off.try_take(0));
    }
}
