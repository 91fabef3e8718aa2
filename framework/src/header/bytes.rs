//! The byte-buffer contract generated header views are built on, and the
//! length-checked buffer they hold.

use super::HeaderError;

/// A byte buffer a header view can read through.
///
/// A generated view (`Ipv4View<B>`, …) checks the buffer length once, when
/// it is made, and afterwards reads the fixed part of the header at constant
/// offsets without further bounds checks. That is only sound if the buffer
/// cannot shrink behind the view's back, hence this `unsafe` trait (the same
/// idea as zerocopy's `ByteSlice`).
///
/// # Safety
///
/// An implementation must guarantee that, for a given value,
///
/// - every call of `as_ref` (and, for [`BytesMut`], of `as_mut`) returns a
///   slice of the **same length**, and
/// - the bytes it returns only change through `as_mut` of this value (the
///   memory may move together with the value, as it does for `[u8; N]`).
///
/// Slices, vectors, boxed slices and arrays satisfy this because a view owns
/// or borrows them exclusively (or immutably): nothing can resize them while
/// the view exists. A packet-buffer type implements it when its data area
/// cannot be resized through a shared reference.
///
/// ```
/// use tpa::header::Bytes;
/// fn len_of<B: Bytes>(b: &B) -> usize {
///     b.as_ref().len()
/// }
/// assert_eq!(len_of(&&[1u8, 2, 3][..]), 3);
/// assert_eq!(len_of(&vec![0u8; 5]), 5);
/// ```
pub unsafe trait Bytes: AsRef<[u8]> {}

/// A byte buffer a header view can also write through.
///
/// # Safety
///
/// Everything [`Bytes`] requires, and `as_mut` returns the same bytes (same
/// length, same contents) as `as_ref`.
pub unsafe trait BytesMut: Bytes + AsMut<[u8]> {}

// SAFETY: a shared slice never changes length or contents.
unsafe impl Bytes for &[u8] {}
// SAFETY: a borrowed array has a constant length and is immutable.
unsafe impl<const N: usize> Bytes for &[u8; N] {}
// SAFETY: a shared borrow of a vector prevents any resize while it lives.
unsafe impl Bytes for &Vec<u8> {}

// SAFETY: an exclusive slice borrow cannot be resized; as_ref and as_mut
// return the same slice.
unsafe impl Bytes for &mut [u8] {}
// SAFETY: as for `&mut [u8]`.
unsafe impl BytesMut for &mut [u8] {}
// SAFETY: an exclusively borrowed array has a constant length.
unsafe impl<const N: usize> Bytes for &mut [u8; N] {}
// SAFETY: as above; as_ref and as_mut return the same array.
unsafe impl<const N: usize> BytesMut for &mut [u8; N] {}
// SAFETY: the view holds the only (exclusive) borrow of the vector, so it
// cannot be resized; as_ref and as_mut return its whole contents.
unsafe impl Bytes for &mut Vec<u8> {}
// SAFETY: as above.
unsafe impl BytesMut for &mut Vec<u8> {}

// SAFETY: a vector owned by the view is only reachable through the view,
// which never resizes it.
unsafe impl Bytes for Vec<u8> {}
// SAFETY: as above; as_ref and as_mut return the same contents.
unsafe impl BytesMut for Vec<u8> {}
// SAFETY: a boxed slice has a fixed length.
unsafe impl Bytes for Box<[u8]> {}
// SAFETY: as above; as_ref and as_mut return the same slice.
unsafe impl BytesMut for Box<[u8]> {}
// SAFETY: an array has a constant length; it moves with the value.
unsafe impl<const N: usize> Bytes for [u8; N] {}
// SAFETY: as above.
unsafe impl<const N: usize> BytesMut for [u8; N] {}
// SAFETY: shared, immutable, fixed-length slices.
unsafe impl Bytes for std::rc::Rc<[u8]> {}
// SAFETY: shared, immutable, fixed-length slices.
unsafe impl Bytes for std::sync::Arc<[u8]> {}

/// A borrowed byte buffer that can be cut in two, each part borrowing for
/// the whole lifetime of the original: what lets a header view hand its
/// payload on to the next layer's view
/// ([`split`](crate::wire::ipv4::Ipv4View::split),
/// [`into_payload`](crate::wire::ipv4::Ipv4View::into_payload)) without
/// re-slicing the frame.
///
/// # Safety
///
/// Everything [`Bytes`] requires, and for `mid <= self.as_ref().len()`,
/// `split_bytes_at(mid)` returns the first `mid` bytes and the rest, in
/// that order (so the first part is exactly `mid` bytes long).
///
/// ```
/// use tpa::header::SplitBytes;
/// let frame = [1u8, 2, 3, 4];
/// let (head, tail) = (&frame[..]).split_bytes_at(1);
/// assert_eq!((head, tail), (&[1u8][..], &[2u8, 3, 4][..]));
/// ```
pub unsafe trait SplitBytes: Bytes + Sized {
    /// Cuts the buffer after `mid` bytes; `mid` is at most the length.
    fn split_bytes_at(self, mid: usize) -> (Self, Self);
}

// SAFETY: `<[u8]>::split_at` returns exactly the first `mid` bytes and the
// rest; shared slices satisfy `Bytes`.
unsafe impl SplitBytes for &[u8] {
    #[inline]
    fn split_bytes_at(self, mid: usize) -> (Self, Self) {
        self.split_at(mid)
    }
}

// SAFETY: as for `&[u8]`, with `split_at_mut`.
unsafe impl SplitBytes for &mut [u8] {
    #[inline]
    fn split_bytes_at(self, mid: usize) -> (Self, Self) {
        self.split_at_mut(mid)
    }
}

/// A buffer checked to hold at least `LEN` bytes: the core of every
/// generated header view.
///
/// [`new`](Self::new) checks the length once; afterwards
/// [`fixed`](Self::fixed) and [`fixed_mut`](Self::fixed_mut) hand out the
/// first `LEN` bytes as an array, so the accessors of a view index it with
/// constants and need no further checks. This is the one place the header
/// machinery uses `unsafe`; generated code itself is safe, so headers can
/// be declared in crates that forbid `unsafe_code`.
///
/// ```
/// use tpa::header::HeaderBytes;
/// let buf = [1u8, 2, 3, 4, 5];
/// let h = HeaderBytes::<_, 4>::new(&buf[..], "Demo").unwrap();
/// assert_eq!(h.fixed(), &[1, 2, 3, 4]);
/// assert!(HeaderBytes::<_, 8>::new(&buf[..], "Demo").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeaderBytes<B, const LEN: usize> {
    bytes: B,
}

impl<B: Bytes, const LEN: usize> HeaderBytes<B, LEN> {
    /// Checks that `bytes` holds at least `LEN` bytes.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Truncated`] naming `header` when it is shorter.
    #[inline]
    pub fn new(bytes: B, header: &'static str) -> Result<Self, HeaderError> {
        let available = bytes.as_ref().len();
        if available < LEN {
            return Err(HeaderError::Truncated {
                header,
                needed: LEN,
                available,
            });
        }
        Ok(HeaderBytes { bytes })
    }

    /// The first `LEN` bytes.
    #[inline(always)]
    pub fn fixed(&self) -> &[u8; LEN] {
        let bytes: &[u8] = self.bytes.as_ref();
        debug_assert!(bytes.len() >= LEN);
        // SAFETY: `new` checked that the buffer holds at least LEN bytes and
        // the `Bytes` contract guarantees that its length never changes, so
        // the first LEN bytes are in bounds; `[u8; LEN]` has alignment 1.
        unsafe { &*bytes.as_ptr().cast::<[u8; LEN]>() }
    }

    /// The whole buffer.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.as_ref()
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> B {
        self.bytes
    }
}

impl<B: SplitBytes, const LEN: usize> HeaderBytes<B, LEN> {
    /// Cuts the buffer after `mid` bytes: the first part (still checked to
    /// hold `LEN` bytes) and the rest. `mid` is clamped to `LEN..=len`, so
    /// the split never fails and the first part keeps the fixed part.
    ///
    /// ```
    /// use tpa::header::HeaderBytes;
    /// let frame = [1u8, 2, 3, 4, 5];
    /// let h = HeaderBytes::<_, 2>::new(&frame[..], "Demo").unwrap();
    /// let (head, rest) = h.split_at(3);
    /// assert_eq!((head.as_bytes(), rest), (&[1u8, 2, 3][..], &[4u8, 5][..]));
    /// ```
    #[inline]
    pub fn split_at(self, mid: usize) -> (Self, B) {
        let len = self.bytes.as_ref().len();
        // `new` checked LEN <= len, so the clamp range is not empty.
        let mid = mid.max(LEN).min(len);
        let (head, rest) = self.bytes.split_bytes_at(mid);
        (HeaderBytes { bytes: head }, rest)
    }
}

impl<'a, const LEN: usize> HeaderBytes<&'a mut [u8; LEN], LEN> {
    /// Wraps an array of exactly `LEN` bytes, which needs no check. The
    /// generated `emit` assembles the fixed part of a header in such a
    /// local array before copying it out in one go.
    ///
    /// ```
    /// use tpa::header::HeaderBytes;
    /// let mut fixed = [0u8; 4];
    /// let mut h = HeaderBytes::from_array(&mut fixed);
    /// h.fixed_mut()[1] = 7;
    /// assert_eq!(fixed, [0, 7, 0, 0]);
    /// ```
    #[inline(always)]
    pub fn from_array(bytes: &'a mut [u8; LEN]) -> Self {
        HeaderBytes { bytes }
    }
}

impl<B: BytesMut, const LEN: usize> HeaderBytes<B, LEN> {
    /// The first `LEN` bytes, writable.
    #[inline(always)]
    pub fn fixed_mut(&mut self) -> &mut [u8; LEN] {
        let bytes: &mut [u8] = self.bytes.as_mut();
        debug_assert!(bytes.len() >= LEN);
        // SAFETY: as in `fixed`: the length was checked by `new` and
        // `BytesMut` guarantees it does not change; alignment is 1.
        unsafe { &mut *bytes.as_mut_ptr().cast::<[u8; LEN]>() }
    }

    /// The whole buffer, writable.
    #[inline]
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.bytes.as_mut()
    }
}
