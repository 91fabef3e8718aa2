//! Why a buffer does not hold a valid header.

use core::fmt;

/// A buffer does not hold a valid header (or a header does not fit a buffer).
///
/// Every variant names the header (the struct given to `#[header]`, e.g.
/// `"Ipv4"`) so an error deep in a parse chain still says which layer failed.
///
/// ```
/// use tpa::header::HeaderError;
/// let e = HeaderError::Truncated { header: "Ipv4", needed: 20, available: 14 };
/// assert_eq!(e.to_string(), "Ipv4 header truncated: needs 20 bytes, 14 available");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderError {
    /// The buffer is shorter than the header: its fixed part, or the length
    /// the header itself declares.
    Truncated {
        /// The header type.
        header: &'static str,
        /// Bytes the header needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// The header declares a length shorter than its own fixed part (say, an
    /// IPv4 IHL below 5).
    BadLength {
        /// The header type.
        header: &'static str,
        /// The length in bytes the header declares.
        declared: usize,
        /// The smallest valid length (the fixed part).
        min: usize,
    },
    /// A field holds a value the protocol forbids (say, an IP version that
    /// is not 4 in an IPv4 header).
    BadField {
        /// The header type.
        header: &'static str,
        /// The field name.
        field: &'static str,
    },
}

impl HeaderError {
    /// The header type the error is about.
    pub fn header(&self) -> &'static str {
        match *self {
            HeaderError::Truncated { header, .. }
            | HeaderError::BadLength { header, .. }
            | HeaderError::BadField { header, .. } => header,
        }
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HeaderError::Truncated {
                header,
                needed,
                available,
            } => write!(
                f,
                "{header} header truncated: needs {needed} bytes, {available} available"
            ),
            HeaderError::BadLength {
                header,
                declared,
                min,
            } => write!(
                f,
                "{header} header declares a length of {declared} bytes, less than its minimum of {min}"
            ),
            HeaderError::BadField { header, field } => {
                write!(f, "{header} header has an invalid {field}")
            }
        }
    }
}

impl std::error::Error for HeaderError {}
