//! The RESP2/RESP3 frame parser.
//!
//! `parse` looks at a buffer from its start and either returns one whole
//! frame and the bytes it used, says more bytes are needed (nothing is
//! copied or kept: call again once more bytes arrived), or returns an error.
//! Bulk payloads are borrowed from the buffer, not copied.

use std::fmt;

/// Bounds on what a peer may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string (redis's proto-max-bulk-len default: 512 MB).
    pub max_bulk: usize,
    /// Most elements in one aggregate (array, map, set, push).
    pub max_elements: usize,
    /// Deepest nesting of aggregates.
    pub max_depth: usize,
    /// Longest simple line (status, error, number, inline command).
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bulk: 512 * 1024 * 1024,
            max_elements: 1024 * 1024,
            max_depth: 32,
            max_line: 64 * 1024,
        }
    }
}

/// One RESP value; bulk data borrows the input.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame<'a> {
    /// `+text`
    Simple(&'a [u8]),
    /// `-text`
    Error(&'a [u8]),
    /// `:n`
    Integer(i64),
    /// `$n` payload, or `$-1` (None).
    Bulk(Option<&'a [u8]>),
    /// `*n` elements, or `*-1` (None).
    Array(Option<Vec<Frame<'a>>>),
    /// RESP3 `_`.
    Null,
    /// RESP3 `#t` / `#f`.
    Boolean(bool),
    /// RESP3 `,` double, kept as text.
    Double(&'a [u8]),
    /// RESP3 `(` big number, kept as text.
    BigNumber(&'a [u8]),
    /// RESP3 `!n` bulk error.
    BulkError(&'a [u8]),
    /// RESP3 `=n` verbatim string (with its `txt:` prefix).
    Verbatim(&'a [u8]),
    /// RESP3 `%n` map: 2n elements, key then value.
    Map(Vec<Frame<'a>>),
    /// RESP3 `~n` set.
    Set(Vec<Frame<'a>>),
    /// RESP3 `>n` push.
    Push(Vec<Frame<'a>>),
    /// RESP3 `|n` attribute: 2n elements, then the value it describes is
    /// the next frame.
    Attribute(Vec<Frame<'a>>),
    /// An inline command (`GET k\r\n`): its space-separated words.
    Inline(Vec<&'a [u8]>),
}

/// Malformed or oversized input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A type byte RESP does not have.
    UnknownType(u8),
    /// A length or integer that is not a decimal number.
    BadNumber,
    /// A negative length other than -1.
    BadLength(i64),
    /// A bulk payload not followed by CRLF.
    MissingCrlf,
    /// A bulk string above `Limits::max_bulk`.
    BulkTooLong(usize),
    /// An aggregate above `Limits::max_elements`.
    TooManyElements(usize),
    /// Aggregates nested deeper than `Limits::max_depth`.
    TooDeep,
    /// A line above `Limits::max_line` without its CRLF.
    LineTooLong,
    /// A boolean other than `#t` / `#f`.
    BadBoolean,
    /// An inline command with an unbalanced quote.
    UnbalancedQuotes,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::UnknownType(b) => write!(f, "Protocol error: unknown type byte 0x{b:02x}"),
            ParseError::BadNumber => write!(f, "Protocol error: invalid number"),
            ParseError::BadLength(n) => write!(f, "Protocol error: invalid length {n}"),
            ParseError::MissingCrlf => write!(f, "Protocol error: bulk data not followed by CRLF"),
            ParseError::BulkTooLong(n) => {
                write!(f, "Protocol error: bulk length {n} above the limit")
            }
            ParseError::TooManyElements(n) => {
                write!(f, "Protocol error: {n} elements, above the limit")
            }
            ParseError::TooDeep => write!(f, "Protocol error: nesting too deep"),
            ParseError::LineTooLong => write!(f, "Protocol error: line too long"),
            ParseError::BadBoolean => write!(f, "Protocol error: invalid boolean"),
            ParseError::UnbalancedQuotes => {
                write!(f, "Protocol error: unbalanced quotes in request")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// What `parse` found at the start of the buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed<'a> {
    /// A whole frame, and how many bytes it took.
    Frame(Frame<'a>, usize),
    /// The buffer ends inside a frame: call again with more bytes.
    NeedMore,
}

/// Parses one frame from the start of `buf`. `inline` allows inline
/// commands (a client's first byte not `*` and not a RESP type).
pub fn parse<'a>(buf: &'a [u8], limits: &Limits, inline: bool) -> Result<Parsed<'a>, ParseError> {
    if buf.is_empty() {
        return Ok(Parsed::NeedMore);
    }
    if inline && !is_type_byte(buf[0]) {
        return parse_inline(buf, limits);
    }
    match value(buf, 0, limits, 0)? {
        Some((frame, end)) => Ok(Parsed::Frame(frame, end)),
        None => Ok(Parsed::NeedMore),
    }
}

pub(super) fn is_type_byte(b: u8) -> bool {
    matches!(
        b,
        b'+' | b'-'
            | b':'
            | b'$'
            | b'*'
            | b'_'
            | b'#'
            | b','
            | b'('
            | b'!'
            | b'='
            | b'%'
            | b'~'
            | b'>'
            | b'|'
    )
}

/// The line starting at `at` (without CRLF) and the index after its CRLF.
pub(super) fn line<'a>(
    buf: &'a [u8],
    at: usize,
    limits: &Limits,
) -> Result<Option<(&'a [u8], usize)>, ParseError> {
    let rest = &buf[at..];
    // The first CR followed by LF (a lone CR is part of the line).
    let mut from = 0;
    let crlf = loop {
        match rest[from..].iter().position(|&b| b == b'\r') {
            Some(i) if rest.get(from + i + 1) == Some(&b'\n') => break Some(from + i),
            Some(i) => from += i + 1,
            None => break None,
        }
    };
    match crlf {
        Some(end) if end > limits.max_line => Err(ParseError::LineTooLong),
        Some(end) => Ok(Some((&rest[..end], at + end + 2))),
        None if rest.len() > limits.max_line + 1 => Err(ParseError::LineTooLong),
        None => Ok(None),
    }
}

pub(super) fn number(text: &[u8]) -> Result<i64, ParseError> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::BadNumber);
    }
    let mut n: i64 = 0;
    for &d in digits {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(i64::from(d - b'0')))
            .ok_or(ParseError::BadNumber)?;
    }
    Ok(if negative { -n } else { n })
}

type Step<'a> = Result<Option<(Frame<'a>, usize)>, ParseError>;

fn value<'a>(buf: &'a [u8], at: usize, limits: &Limits, depth: usize) -> Step<'a> {
    if at >= buf.len() {
        return Ok(None);
    }
    let kind = buf[at];
    let Some((text, next)) = line(buf, at + 1, limits)? else {
        return Ok(None);
    };
    match kind {
        b'+' => Ok(Some((Frame::Simple(text), next))),
        b'-' => Ok(Some((Frame::Error(text), next))),
        b':' => Ok(Some((Frame::Integer(number(text)?), next))),
        b',' => Ok(Some((Frame::Double(text), next))),
        b'(' => Ok(Some((Frame::BigNumber(text), next))),
        b'_' if text.is_empty() => Ok(Some((Frame::Null, next))),
        b'_' => Err(ParseError::BadNumber),
        b'#' => match text {
            b"t" => Ok(Some((Frame::Boolean(true), next))),
            b"f" => Ok(Some((Frame::Boolean(false), next))),
            _ => Err(ParseError::BadBoolean),
        },
        b'$' | b'!' | b'=' => {
            let n = number(text)?;
            if n == -1 && kind == b'$' {
                return Ok(Some((Frame::Bulk(None), next)));
            }
            let len = usize::try_from(n).map_err(|_| ParseError::BadLength(n))?;
            if len > limits.max_bulk {
                return Err(ParseError::BulkTooLong(len));
            }
            let Some(end) = next.checked_add(len) else {
                return Err(ParseError::BulkTooLong(len));
            };
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ParseError::MissingCrlf);
            }
            let payload = &buf[next..end];
            let frame = match kind {
                b'$' => Frame::Bulk(Some(payload)),
                b'!' => Frame::BulkError(payload),
                _ => Frame::Verbatim(payload),
            };
            Ok(Some((frame, end + 2)))
        }
        b'*' | b'%' | b'~' | b'>' | b'|' => {
            let n = number(text)?;
            if n == -1 && kind == b'*' {
                return Ok(Some((Frame::Array(None), next)));
            }
            let count = usize::try_from(n).map_err(|_| ParseError::BadLength(n))?;
            let elements = if matches!(kind, b'%' | b'|') {
                count
                    .checked_mul(2)
                    .ok_or(ParseError::TooManyElements(count))?
            } else {
                count
            };
            if elements > limits.max_elements {
                return Err(ParseError::TooManyElements(elements));
            }
            if depth + 1 > limits.max_depth {
                return Err(ParseError::TooDeep);
            }
            // Every element takes at least 3 bytes: never reserve more
            // than the bytes at hand could hold.
            let mut items = Vec::with_capacity(elements.min((buf.len() - next) / 3));
            let mut pos = next;
            for _ in 0..elements {
                let Some((item, after)) = value(buf, pos, limits, depth + 1)? else {
                    return Ok(None);
                };
                items.push(item);
                pos = after;
            }
            let frame = match kind {
                b'*' => Frame::Array(Some(items)),
                b'%' => Frame::Map(items),
                b'~' => Frame::Set(items),
                b'>' => Frame::Push(items),
                _ => Frame::Attribute(items),
            };
            Ok(Some((frame, pos)))
        }
        other => Err(ParseError::UnknownType(other)),
    }
}

/// An inline command as redis reads it: a line ending in `\n` (a `\r`
/// before it dropped), split on spaces and tabs, with "double" and
/// 'single' quoted words.
fn parse_inline<'a>(buf: &'a [u8], limits: &Limits) -> Result<Parsed<'a>, ParseError> {
    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > limits.max_line {
            Err(ParseError::LineTooLong)
        } else {
            Ok(Parsed::NeedMore)
        };
    };
    if end > limits.max_line {
        return Err(ParseError::LineTooLong);
    }
    let mut text = &buf[..end];
    if let [rest @ .., b'\r'] = text {
        text = rest;
    }
    let mut words = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b' ' | b'\t' => i += 1,
            quote @ (b'"' | b'\'') => {
                let close = text[i + 1..]
                    .iter()
                    .position(|&b| b == quote)
                    .ok_or(ParseError::UnbalancedQuotes)?;
                words.push(&text[i + 1..i + 1 + close]);
                i += close + 2;
            }
            _ => {
                let len = text[i..]
                    .iter()
                    .position(|&b| b == b' ' || b == b'\t')
                    .unwrap_or(text.len() - i);
                words.push(&text[i..i + len]);
                i += len;
            }
        }
        if words.len() > limits.max_elements {
            return Err(ParseError::TooManyElements(words.len()));
        }
    }
    Ok(Parsed::Frame(Frame::Inline(words), end + 1))
}
