//! Finding where a frame ends, resumably.
//!
//! A `Scanner` is fed the same receive buffer again and again as it grows;
//! it remembers how far it got (the offset of the next element and the
//! elements still owed by each open aggregate), so each byte is examined a
//! bounded number of times however the frame is split. Nothing is copied.
//! Once it reports the frame's end, `parse` over exactly those bytes builds
//! the frame in one pass.

use super::parse::{is_type_byte, line, number};
use super::{Limits, ParseError};

/// Resumable framing of one RESP frame (or inline command) at a time.
#[derive(Debug, Clone)]
pub struct Scanner {
    limits: Limits,
    inline: bool,
    /// Where the next element starts.
    pos: usize,
    /// Elements still owed by each open aggregate, outermost first.
    open: Vec<usize>,
    /// How far an inline command's newline has been searched for.
    inline_searched: usize,
}

impl Scanner {
    /// A scanner under `limits`; `inline` accepts inline commands.
    pub fn new(limits: Limits, inline: bool) -> Scanner {
        Scanner {
            limits,
            inline,
            pos: 0,
            open: Vec::new(),
            inline_searched: 0,
        }
    }

    /// Forgets progress: the next `scan` starts a new frame.
    pub fn reset(&mut self) {
        self.pos = 0;
        self.open.clear();
        self.inline_searched = 0;
    }

    /// Continues scanning `buf`, which holds the frame from its first byte
    /// and has only grown since the last call. `Some(end)`: the frame is
    /// `buf[..end]`, and the scanner is ready for the next frame (whose
    /// buffer starts at `end`). `None`: more bytes are needed.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, ParseError> {
        let result = self.step(buf);
        if !matches!(result, Ok(None)) {
            self.reset();
        }
        result
    }

    fn step(&mut self, buf: &[u8]) -> Result<Option<usize>, ParseError> {
        let limits = self.limits;
        if self.pos == 0 && self.open.is_empty() {
            match buf.first() {
                None => return Ok(None),
                Some(&b) if self.inline && !is_type_byte(b) => return self.scan_inline(buf),
                Some(_) => {
                    if let Some(end) = self.whole(buf) {
                        return Ok(Some(end));
                    }
                }
            }
        }
        loop {
            let Some(&kind) = buf.get(self.pos) else {
                return Ok(None);
            };
            let Some((text, next)) = line(buf, self.pos + 1, &limits)? else {
                return Ok(None);
            };
            match kind {
                b'+' | b'-' | b',' | b'(' => self.pos = next,
                b':' => {
                    number(text)?;
                    self.pos = next;
                }
                b'_' if text.is_empty() => self.pos = next,
                b'_' => return Err(ParseError::BadNumber),
                b'#' if text == b"t" || text == b"f" => self.pos = next,
                b'#' => return Err(ParseError::BadBoolean),
                b'$' | b'!' | b'=' => {
                    let n = number(text)?;
                    if n == -1 && kind == b'$' {
                        self.pos = next;
                    } else {
                        let len = usize::try_from(n).map_err(|_| ParseError::BadLength(n))?;
                        if len > limits.max_bulk {
                            return Err(ParseError::BulkTooLong(len));
                        }
                        let end = next.checked_add(len).ok_or(ParseError::BulkTooLong(len))?;
                        if buf.len() < end + 2 {
                            return Ok(None);
                        }
                        if &buf[end..end + 2] != b"\r\n" {
                            return Err(ParseError::MissingCrlf);
                        }
                        self.pos = end + 2;
                    }
                }
                b'*' | b'%' | b'~' | b'>' | b'|' => {
                    let n = number(text)?;
                    if n == -1 && kind == b'*' {
                        self.pos = next;
                    } else {
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
                        if self.open.len() + 1 > limits.max_depth {
                            return Err(ParseError::TooDeep);
                        }
                        self.pos = next;
                        if elements > 0 {
                            self.open.push(elements);
                            continue;
                        }
                    }
                }
                other => return Err(ParseError::UnknownType(other)),
            }
            // One element is complete: settle the aggregates it closes.
            loop {
                match self.open.last_mut() {
                    None => return Ok(Some(self.pos)),
                    Some(owed) if *owed > 1 => {
                        *owed -= 1;
                        break;
                    }
                    Some(_) => {
                        self.open.pop();
                    }
                }
            }
        }
    }

    /// The common frames, when whole in `buf`, framed in one tight pass:
    /// an array of bulk strings (a client's request) or a bulk string (a
    /// GET's reply). `None`: another frame, one not whole yet, or one the
    /// limits refuse, for the general loop (which reports errors).
    fn whole(&self, buf: &[u8]) -> Option<usize> {
        let limits = &self.limits;
        if limits.max_line < 20 || limits.max_depth == 0 {
            return None;
        }
        match buf[0] {
            b'*' => {
                let (count, mut at) = digits(buf, 1)?;
                if count > limits.max_elements {
                    return None;
                }
                for _ in 0..count {
                    if *buf.get(at)? != b'$' {
                        return None;
                    }
                    at = self.bulk(buf, at + 1)?;
                }
                Some(at)
            }
            b'$' => self.bulk(buf, 1),
            _ => None,
        }
    }

    /// The end of the bulk string whose length starts at `at`, if whole.
    fn bulk(&self, buf: &[u8], at: usize) -> Option<usize> {
        let (len, data) = digits(buf, at)?;
        if len > self.limits.max_bulk {
            return None;
        }
        let end = data.checked_add(len)?;
        if buf.get(end..end.checked_add(2)?)? != b"\r\n" {
            return None;
        }
        Some(end + 2)
    }

    fn scan_inline(&mut self, buf: &[u8]) -> Result<Option<usize>, ParseError> {
        let from = self.inline_searched.min(buf.len());
        match buf[from..].iter().position(|&b| b == b'\n') {
            Some(at) if from + at > self.limits.max_line => Err(ParseError::LineTooLong),
            Some(at) => Ok(Some(from + at + 1)),
            None if buf.len() > self.limits.max_line => Err(ParseError::LineTooLong),
            None => {
                self.inline_searched = buf.len();
                Ok(None)
            }
        }
    }
}

/// The decimal digits at `at` (at most 19) ending in CRLF: their number and
/// the index after the CRLF; `None` for anything else.
fn digits(buf: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut n: u64 = 0;
    let mut i = at;
    loop {
        match *buf.get(i)? {
            d @ b'0'..=b'9' if i - at < 19 => n = n * 10 + u64::from(d - b'0'),
            b'\r' => break,
            _ => return None,
        }
        i += 1;
    }
    if i == at || *buf.get(i + 1)? != b'\n' {
        return None;
    }
    Some((usize::try_from(n).ok()?, i + 2))
}
