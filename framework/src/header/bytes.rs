//! The byte-buffer contract generated header views are built on.

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
