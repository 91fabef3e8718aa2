//! [`ByteBudget`]: the byte limit on buffers one holder may keep.

use core::fmt;

/// How many bytes of buffers one holder (a socket's receive or
/// retransmission queue) may keep, and how many it keeps now.
///
/// This is the hook for per-socket limits: the sockets of issue #9 and TCP
/// will own one per queue, take from it before holding a buffer and give
/// back when they release it. Nothing in the framework holds buffers on a
/// socket's behalf yet, so nothing calls it yet.
///
/// ```
/// use tpa::buf::ByteBudget;
/// let mut b = ByteBudget::new(3000);
/// assert!(b.try_take(1500).is_ok());
/// assert!(b.try_take(1500).is_ok());
/// assert!(b.try_take(1).is_err());
/// b.give_back(1500);
/// assert_eq!((b.held(), b.refused()), (1500, 1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteBudget {
    limit: usize,
    held: usize,
    refused: u64,
}

/// Taking the bytes would exceed the budget; nothing was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    /// Bytes asked for.
    pub wanted: usize,
    /// Bytes still free in the budget.
    pub free: usize,
}

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "byte budget exceeded: {} bytes wanted, {} free",
            self.wanted, self.free
        )
    }
}

impl std::error::Error for OverBudget {}

impl ByteBudget {
    /// A budget of `limit` bytes, none held.
    pub fn new(limit: usize) -> ByteBudget {
        ByteBudget {
            limit,
            held: 0,
            refused: 0,
        }
    }

    /// Takes `bytes` from the budget, or counts a refusal.
    #[inline]
    pub fn try_take(&mut self, bytes: usize) -> Result<(), OverBudget> {
        let free = self.limit - self.held;
        if bytes > free {
            self.refused += 1;
            return Err(OverBudget {
                wanted: bytes,
                free,
            });
        }
        self.held += bytes;
        Ok(())
    }

    /// Gives `bytes` back (at most what is held).
    #[inline]
    pub fn give_back(&mut self, bytes: usize) {
        self.held -= bytes.min(self.held);
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Requests refused so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}
