//! Classify: which socket a segment belongs to, and what becomes of one
//! that belongs to none.
//!
//! - **Flow marks.** A port whose device marks the frames of a flow rule
//!   (DPDK's `rte_flow` MARK action, read into `Meta::flow_mark`; mlx5
//!   keeps 24 bits) can name the connection itself: a rule matching a
//!   connection's 4-tuple with the mark [`TcpSockets::flow_mark`] gives
//!   makes every segment of it arrive with its socket's slot, and the
//!   input stage takes the slot without hashing the 4-tuple. The slot is
//!   trusted only once its connection's 4-tuple equals the segment's (a
//!   rule left behind by a closed connection, a slot reused, a mark from
//!   another rule set), so a wrong mark costs a comparison and the hash
//!   lookup after it, never a segment delivered to the wrong socket.
//!   Connection marks have bit 23 set ([`CONN_MARK`]); mlx5's
//!   classification marks (listener, worker: bits 16 to 23, see
//!   `mlx5::rules::FlowMark`) never do, and go to the hash lookup.
//! - **Unmatched segments** (no connection, no listener on the address):
//!   answered with a reset (RFC 9293 §3.10.7.1, the default), dropped, or
//!   handed to the host stack through the pipeline's host path (a port
//!   shared with the kernel: the kernel's own connections on the same
//!   address), as [`Unmatched`] says.
//!
//! [`TcpSockets::flow_mark`]: super::TcpSockets::flow_mark

use core::fmt;
use core::str::FromStr;

/// The bit that makes a flow mark a connection's (bits 0 to 22: its slot).
pub const CONN_MARK: u32 = 1 << 23;

/// The highest slot a mark can name: marks stay below mlx5's largest,
/// 0xfffff0.
pub const MAX_MARKED_SLOT: u32 = 0x7f_ffef;

/// The flow mark naming slot `slot`, if it fits.
///
/// ```
/// use tpa_stages::tcp::classify::{conn_mark, slot_of_mark, CONN_MARK};
/// assert_eq!(conn_mark(5), Some(CONN_MARK | 5));
/// assert_eq!(slot_of_mark(CONN_MARK | 5), Some(5));
/// assert_eq!(slot_of_mark(0x1_0050), None); // an mlx5 listener mark
/// ```
#[inline]
pub const fn conn_mark(slot: u32) -> Option<u32> {
    if slot <= MAX_MARKED_SLOT {
        Some(CONN_MARK | slot)
    } else {
        None
    }
}

/// The slot a connection mark names; `None` for other marks.
#[inline]
pub const fn slot_of_mark(mark: u32) -> Option<u32> {
    let slot = mark & !CONN_MARK;
    if mark & CONN_MARK != 0 && slot <= MAX_MARKED_SLOT {
        Some(slot)
    } else {
        None
    }
}

/// What becomes of a segment that no connection and no listener takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unmatched {
    /// Answered with a reset (rate-limited by the input's
    /// [`ResetConfig`](super::ResetConfig)): RFC 9293's CLOSED state.
    #[default]
    Reset,
    /// Dropped without an answer (a firewall's "drop").
    Drop,
    /// Handed whole to the host stack (the pipeline's `#[host]` path):
    /// for a port shared with the kernel, whose own connections use the
    /// same address. Only on a pipeline with a host path ([`check`]).
    ///
    /// [`check`]: Unmatched::check
    Host,
}

impl Unmatched {
    /// The policy's name in configuration: `rst`, `drop` or `host`.
    pub fn name(self) -> &'static str {
        match self {
            Unmatched::Reset => "rst",
            Unmatched::Drop => "drop",
            Unmatched::Host => "host",
        }
    }

    /// The policy for a pipeline with (`has_host`) or without a host path.
    ///
    /// # Errors
    ///
    /// `host` on a pipeline without one: every segment would be dropped.
    ///
    /// ```
    /// use tpa_stages::tcp::classify::Unmatched;
    /// assert_eq!(Unmatched::Host.check(true), Ok(Unmatched::Host));
    /// let e = Unmatched::Host.check(false).unwrap_err();
    /// assert!(e.to_string().contains("no host path"));
    /// assert_eq!(Unmatched::Drop.check(false), Ok(Unmatched::Drop));
    /// ```
    pub fn check(self, has_host: bool) -> Result<Unmatched, UnmatchedError> {
        if self == Unmatched::Host && !has_host {
            return Err(UnmatchedError::NoHostPath);
        }
        Ok(self)
    }
}

impl fmt::Display for Unmatched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Unmatched {
    type Err = UnmatchedError;

    /// `rst`, `drop` or `host`.
    fn from_str(s: &str) -> Result<Unmatched, UnmatchedError> {
        match s {
            "rst" => Ok(Unmatched::Reset),
            "drop" => Ok(Unmatched::Drop),
            "host" => Ok(Unmatched::Host),
            other => Err(UnmatchedError::Unknown(other.to_owned())),
        }
    }
}

/// A policy for unmatched segments that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnmatchedError {
    /// Not `rst`, `drop` or `host`.
    Unknown(String),
    /// `host` on a pipeline without a host path.
    NoHostPath,
}

impl fmt::Display for UnmatchedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnmatchedError::Unknown(s) => {
                write!(f, "unmatched segments: {s:?} is not rst, drop or host")
            }
            UnmatchedError::NoHostPath => f.write_str(
                "unmatched segments to the host: this port has no host path \
                 (only a port shared with the kernel, with a #[host] sink, has one); \
                 use rst or drop",
            ),
        }
    }
}

impl std::error::Error for UnmatchedError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_within_mlx5s_range_and_nothing_else_decodes() {
        for slot in [0, 1, 4095, MAX_MARKED_SLOT] {
            let mark = conn_mark(slot).unwrap();
            assert!(mark <= 0xff_fff0, "{mark:#x}");
            assert_eq!(slot_of_mark(mark), Some(slot));
        }
        assert_eq!(conn_mark(MAX_MARKED_SLOT + 1), None);
        // mlx5's listener and worker marks, no mark bit, out of range.
        for other in [0x1_0050, 0x2_0003, 0, 7, CONN_MARK | 0x7f_fff0, u32::MAX] {
            assert_eq!(slot_of_mark(other), None, "{other:#x}");
        }
    }

    #[test]
    fn policies_parse_print_and_check_the_host_path() {
        for p in [Unmatched::Reset, Unmatched::Drop, Unmatched::Host] {
            assert_eq!(p.name().parse::<Unmatched>(), Ok(p));
            assert_eq!(p.to_string(), p.name());
            assert_eq!(p.check(true), Ok(p));
        }
        assert_eq!(Unmatched::default(), Unmatched::Reset);
        let e = "reset".parse::<Unmatched>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unmatched segments: \"reset\" is not rst, drop or host"
        );
        assert_eq!(
            Unmatched::Host.check(false),
            Err(UnmatchedError::NoHostPath)
        );
        assert_eq!(Unmatched::Reset.check(false), Ok(Unmatched::Reset));
    }
}
