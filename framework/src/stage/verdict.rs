//! What a stage decides about a packet, and why packets are dropped.

/// Why a packet was dropped: an index into a stage's drop counters.
///
/// The well-known reasons are associated constants; a stage with reasons of
/// its own declares them with [`Reason::custom`] and names them in
/// [`Stage::CUSTOM_REASONS`](super::Stage::CUSTOM_REASONS):
///
/// ```
/// use tpa::stage::Reason;
/// const BLOCKED_PORT: Reason = Reason::custom(0);
/// assert_eq!(Reason::MALFORMED.name(&[]), "malformed");
/// assert_eq!(BLOCKED_PORT.name(&["blocked-port"]), "blocked-port");
/// assert_ne!(BLOCKED_PORT, Reason::MALFORMED);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reason(u8);

/// Names of the well-known reasons, by index.
const BUILTIN_NAMES: [&str; Reason::BUILTIN] = [
    "malformed",
    "too-short",
    "bad-checksum",
    "not-for-us",
    "unsupported",
    "filtered",
    "no-route",
    "no-neighbor",
    "no-buffer",
    "tx-full",
    "ttl-expired",
    "rate-limited",
    "no-socket",
    "unexpected",
    "chained",
    "reserved-15",
];

impl Reason {
    /// A header is inconsistent (bad version, length fields that disagree).
    pub const MALFORMED: Reason = Reason(0);
    /// The packet is shorter than the headers it claims to carry.
    pub const TOO_SHORT: Reason = Reason(1);
    /// A checksum does not verify.
    pub const BAD_CHECKSUM: Reason = Reason(2);
    /// Addressed to someone else (MAC, IP address, port).
    pub const NOT_FOR_US: Reason = Reason(3);
    /// A protocol or option this pipeline does not handle.
    pub const UNSUPPORTED: Reason = Reason(4);
    /// Refused by policy (an ACL, a filter).
    pub const FILTERED: Reason = Reason(5);
    /// No route to the destination.
    pub const NO_ROUTE: Reason = Reason(6);
    /// The next hop's link-layer address is unknown.
    pub const NO_NEIGHBOR: Reason = Reason(7);
    /// No buffer could be allocated.
    pub const NO_BUFFER: Reason = Reason(8);
    /// A transmit queue was full.
    pub const TX_FULL: Reason = Reason(9);
    /// The IP time to live (hop limit) ran out.
    pub const TTL_EXPIRED: Reason = Reason(10);
    /// Over a rate limit.
    pub const RATE_LIMITED: Reason = Reason(11);
    /// No socket or listener matches.
    pub const NO_SOCKET: Reason = Reason(12);
    /// Valid, but not expected in the current state.
    pub const UNEXPECTED: Reason = Reason(13);
    /// A packet in several buffer segments that this stage cannot take:
    /// its headers do not all lie in the first segment, or the stage reads
    /// one segment only (every protocol but TCP).
    pub const CHAINED: Reason = Reason(14);

    /// Number of well-known reason slots (some reserved for later).
    pub const BUILTIN: usize = 16;
    /// Number of reason slots a stage may define for itself.
    pub const CUSTOM: usize = 16;
    /// Number of drop counters per stage.
    pub const COUNT: usize = Reason::BUILTIN + Reason::CUSTOM;

    /// The stage's own reason number `n` (`0..Reason::CUSTOM`). Use it in a
    /// `const` so a bad number is a compile error.
    ///
    /// # Panics
    /// If `n >= Reason::CUSTOM`.
    pub const fn custom(n: u8) -> Reason {
        assert!(
            (n as usize) < Reason::CUSTOM,
            "custom drop reasons are numbered 0..16"
        );
        Reason(Reason::BUILTIN as u8 + n)
    }

    /// The counter slot of this reason, `0..Reason::COUNT`.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The reason at counter slot `index`, if the slot exists.
    pub const fn from_index(index: usize) -> Option<Reason> {
        if index < Reason::COUNT {
            Some(Reason(index as u8))
        } else {
            None
        }
    }

    /// Whether this is one of the stage's own reasons.
    #[inline]
    pub const fn is_custom(self) -> bool {
        self.index() >= Reason::BUILTIN
    }

    /// A short name: the well-known name, or the stage's name for its own
    /// reason from `custom_names` (its [`Stage::CUSTOM_REASONS`]), or
    /// `"custom"` when the stage did not name it.
    ///
    /// [`Stage::CUSTOM_REASONS`]: super::Stage::CUSTOM_REASONS
    pub fn name(self, custom_names: &[&'static str]) -> &'static str {
        if self.is_custom() {
            custom_names
                .get(self.index() - Reason::BUILTIN)
                .copied()
                .unwrap_or("custom")
        } else {
            BUILTIN_NAMES[self.index()]
        }
    }
}

/// A stage's decision about one packet.
///
/// `T` is what the stage passes on (its `Out`), `B` the buffer type, for the
/// verdicts that hand the raw buffer to the pipeline. For stages whose output
/// is the raw buffer itself the second parameter can be left out.
///
/// Dropping is done by the stage: it lets the packet go out of scope (which
/// returns the buffer to its pool) and says why; the pipeline counts it.
#[must_use = "a verdict tells the pipeline what happened to the packet"]
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<T, B = T> {
    /// Hand the packet to the next stage.
    Pass(T),
    /// The packet was dropped; count it under this reason.
    Drop(Reason),
    /// The stage kept the packet (queued, reassembled, delivered) or freed it
    /// as part of normal work: nothing left to do, nothing to count as loss.
    Consumed,
    /// Send this buffer out of the port (for instance a reply built in place).
    Transmit(B),
    /// Give this buffer to the host stack (the exception path).
    ToHost(B),
}

impl<T, B> Verdict<T, B> {
    /// Changes the passed-on value, keeping every other verdict.
    ///
    /// ```
    /// use tpa::stage::{Reason, Verdict};
    /// let v: Verdict<u8, ()> = Verdict::Pass(2);
    /// assert_eq!(v.map(|x| x * 2), Verdict::Pass(4));
    /// let d: Verdict<u8, ()> = Verdict::Drop(Reason::FILTERED);
    /// assert_eq!(d.map(|x| x * 2), Verdict::Drop(Reason::FILTERED));
    /// ```
    #[inline]
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Verdict<U, B> {
        match self {
            Verdict::Pass(x) => Verdict::Pass(f(x)),
            Verdict::Drop(r) => Verdict::Drop(r),
            Verdict::Consumed => Verdict::Consumed,
            Verdict::Transmit(b) => Verdict::Transmit(b),
            Verdict::ToHost(b) => Verdict::ToHost(b),
        }
    }

    /// Runs `next` on a passed-on value; any other verdict ends the chain.
    #[inline]
    pub fn and_then<U>(self, next: impl FnOnce(T) -> Verdict<U, B>) -> Verdict<U, B> {
        match self {
            Verdict::Pass(x) => next(x),
            Verdict::Drop(r) => Verdict::Drop(r),
            Verdict::Consumed => Verdict::Consumed,
            Verdict::Transmit(b) => Verdict::Transmit(b),
            Verdict::ToHost(b) => Verdict::ToHost(b),
        }
    }

    /// Whether the packet goes on to the next stage.
    #[inline]
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass(_))
    }
}
