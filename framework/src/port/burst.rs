//! A fixed-capacity batch of packets, moved between ports and stages
//! without allocation.

use arrayvec::ArrayVec;

/// The default number of packets in a burst.
pub const BURST_SIZE: usize = 32;

/// Up to `N` packets, stored inline.
///
/// ```
/// use tpa::port::Burst;
/// let mut b: Burst<u32> = Burst::new();
/// b.push(7);
/// assert_eq!(b.len(), 1);
/// ```
#[derive(Debug)]
pub struct Burst<B, const N: usize = BURST_SIZE> {
    items: ArrayVec<B, N>,
}

impl<B, const N: usize> Default for Burst<B, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B, const N: usize> Burst<B, N> {
    /// An empty burst.
    #[inline]
    pub const fn new() -> Self {
        Burst {
            items: ArrayVec::new_const(),
        }
    }
    /// Number of packets held.
    #[inline]
    pub fn len(&self) -> usize {
        self.items.len()
    }
    /// Whether the burst is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// Whether the burst holds `N` packets.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.items.is_full()
    }
    /// The capacity `N`.
    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }
    /// Free slots left.
    #[inline]
    pub fn remaining(&self) -> usize {
        N - self.items.len()
    }
    /// Appends a packet.
    ///
    /// # Panics
    /// If the burst is full; use [`try_push`](Self::try_push) where it may be.
    #[inline]
    pub fn push(&mut self, b: B) {
        self.items.push(b)
    }
    /// Appends a packet, or gives it back if the burst is full.
    #[inline]
    pub fn try_push(&mut self, b: B) -> Result<(), B> {
        self.items.try_push(b).map_err(|e| e.element())
    }
    /// Removes and returns the last packet.
    #[inline]
    pub fn pop(&mut self) -> Option<B> {
        self.items.pop()
    }
    /// Removes all packets, front to back.
    #[inline]
    pub fn drain(&mut self) -> arrayvec::Drain<'_, B, N> {
        self.items.drain(..)
    }
    /// Removes the first `n` packets (already handed on) and returns them.
    #[inline]
    pub fn drain_front(&mut self, n: usize) -> arrayvec::Drain<'_, B, N> {
        self.items.drain(..n)
    }
    /// Drops every packet.
    #[inline]
    pub fn clear(&mut self) {
        self.items.clear()
    }
    /// The packets as a slice.
    #[inline]
    pub fn as_slice(&self) -> &[B] {
        &self.items
    }
    /// The packets as a mutable slice.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [B] {
        &mut self.items
    }
}

impl<B, const N: usize> Extend<B> for Burst<B, N> {
    fn extend<I: IntoIterator<Item = B>>(&mut self, iter: I) {
        self.items.extend(iter)
    }
}
