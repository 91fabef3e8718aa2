//! The hook between a header's option bytes and the iterator that walks
//! them.

/// A walker over a header's option area (e.g. TCP's or IPv4's options),
/// made from the raw option bytes.
///
/// Naming it in a declaration, `#[header(length = .., options = MyOptions)]`,
/// makes the generated view offer `options_iter()`, which hands the bytes
/// between the fixed part and the end of the header to
/// [`from_bytes`](Self::from_bytes). Implementations must accept any bytes:
/// malformed options are reported by the walker, never by a panic.
///
/// ```
/// use tpa::header::HeaderOptions;
///
/// /// Walks one-byte option kinds, stopping at a zero.
/// struct Kinds<'a>(&'a [u8]);
///
/// impl<'a> HeaderOptions<'a> for Kinds<'a> {
///     fn from_bytes(bytes: &'a [u8]) -> Self {
///         Kinds(bytes)
///     }
/// }
///
/// impl Iterator for Kinds<'_> {
///     type Item = u8;
///     fn next(&mut self) -> Option<u8> {
///         let (&kind, rest) = self.0.split_first().filter(|(k, _)| **k != 0)?;
///         self.0 = rest;
///         Some(kind)
///     }
/// }
///
/// let kinds: Vec<u8> = Kinds::from_bytes(&[1, 1, 3, 0, 9]).collect();
/// assert_eq!(kinds, [1, 1, 3]);
/// ```
pub trait HeaderOptions<'a>: Sized {
    /// Starts walking `bytes`, a header's whole option area.
    fn from_bytes(bytes: &'a [u8]) -> Self;
}
