//! The bytes the benchmark moves, and their check: a bench that moves
//! wrong bytes measures nothing, so every received byte is compared with
//! what was sent, by every stack alike (one comparison per byte, against a
//! pattern in memory).

/// The bulk stream repeats with this period: a prime, so its phase never
/// lines up with segment or buffer sizes.
pub const PERIOD: usize = 65_521;

/// Size of an rr or crr request and of its response.
pub const MESSAGE: usize = 64;

/// The bulk stream: byte `i` is `bytes[i % PERIOD]`. Stored twice over so
/// that any run of up to [`PERIOD`] bytes is one slice.
pub struct Pattern {
    bytes: Vec<u8>,
}

impl Pattern {
    /// The stream's pattern, from a fixed xorshift sequence.
    pub fn new() -> Self {
        let mut x: u32 = 0x2545_f491;
        let one: Vec<u8> = (0..PERIOD)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect();
        let mut bytes = one.clone();
        bytes.extend_from_slice(&one);
        Pattern { bytes }
    }

    /// The stream's bytes from `offset` on, at most `max` of them (and at
    /// most [`PERIOD`]).
    #[inline]
    pub fn at(&self, offset: u64, max: usize) -> &[u8] {
        let start = (offset % PERIOD as u64) as usize;
        &self.bytes[start..start + max.min(PERIOD)]
    }
}

/// The receiving side's tally of the bulk stream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes received so far.
    pub bytes: u64,
    /// Received bytes that differed from the pattern.
    pub wrong: u64,
}

impl Received {
    /// Checks the next `data` of the stream.
    #[inline]
    pub fn check(&mut self, pattern: &Pattern, mut data: &[u8]) {
        while !data.is_empty() {
            let want = pattern.at(self.bytes, data.len());
            let (now, rest) = data.split_at(want.len());
            if now != want {
                self.wrong += now.iter().zip(want).filter(|(a, b)| a != b).count() as u64;
            }
            self.bytes += now.len() as u64;
            data = rest;
        }
    }
}

/// The request of transaction `n` (its response echoes it).
#[inline]
pub fn request(n: u64) -> [u8; MESSAGE] {
    let mut m = [0; MESSAGE];
    let seed = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for (i, b) in m.iter_mut().enumerate() {
        *b = (seed >> ((i % 8) * 8)) as u8 ^ i as u8;
    }
    m
}

/// A message being gathered: requests and responses may arrive in pieces.
#[derive(Debug, Clone, Copy)]
pub struct Message {
    bytes: [u8; MESSAGE],
    len: usize,
}

impl Default for Message {
    fn default() -> Self {
        Message {
            bytes: [0; MESSAGE],
            len: 0,
        }
    }
}

impl Message {
    /// Appends what fits of `data`; returns how much it took.
    #[inline]
    pub fn fill(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(MESSAGE - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    /// Whether all [`MESSAGE`] bytes are in.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == MESSAGE
    }

    /// The whole message, once full.
    #[inline]
    pub fn bytes(&self) -> &[u8; MESSAGE] {
        &self.bytes
    }

    /// Empties it for the next message.
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// What a run of transactions (rr or crr) ended with.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Transactions {
    /// Responses received whole.
    pub done: u64,
    /// Responses that were not the echo of their request.
    pub wrong: u64,
}
