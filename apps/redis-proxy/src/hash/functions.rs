//! The twelve key hash functions of nutcracker (twemproxy), bit for bit.
//!
//! nutcracker reads keys as C `char`, which is signed on x86: where its
//! code widens a `char` to a wider integer the byte is sign-extended, and
//! so are ours (`widen`), so keys with bytes >= 0x80 map the same way.

use super::md5::md5;

/// A key hash function as named in nutcracker's `hash:` setting.
// Variant names follow nutcracker's (`fnv1a_64` → `Fnv1a_64`).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashFunction {
    /// Jenkins's one-at-a-time hash.
    OneAtATime,
    /// The first four bytes of the MD5 digest, little-endian.
    Md5,
    /// nutcracker 0.5.0's CRC-16: the XMODEM table (0x1021) stepped in a
    /// 32-bit register that is never truncated, so the high bits keep the
    /// shifted-out history (upstream changed it after 0.5.0; we follow the
    /// release, as Debian ships it).
    Crc16,
    /// libmemcached's CRC-32: bits 16..31 of the CRC, masked to 15 bits.
    Crc32,
    /// The standard CRC-32 (IEEE).
    Crc32a,
    /// FNV-1, 64-bit state, truncated to 32 bits.
    Fnv1_64,
    /// nutcracker's "FNV-1a 64": a 32-bit state with the 64-bit constants truncated.
    Fnv1a_64,
    /// FNV-1, 32-bit.
    Fnv1_32,
    /// FNV-1a, 32-bit.
    Fnv1a_32,
    /// Paul Hsieh's SuperFastHash.
    Hsieh,
    /// MurmurHash2 seeded with `0xdeadbeef * len`.
    Murmur,
    /// Bob Jenkins's lookup3 `hashlittle` with initval 13.
    Jenkins,
}

impl HashFunction {
    /// Every function, in nutcracker's order.
    pub const ALL: [HashFunction; 12] = [
        HashFunction::OneAtATime,
        HashFunction::Md5,
        HashFunction::Crc16,
        HashFunction::Crc32,
        HashFunction::Crc32a,
        HashFunction::Fnv1_64,
        HashFunction::Fnv1a_64,
        HashFunction::Fnv1_32,
        HashFunction::Fnv1a_32,
        HashFunction::Hsieh,
        HashFunction::Murmur,
        HashFunction::Jenkins,
    ];

    /// The name used in nutcracker's YAML.
    pub fn name(self) -> &'static str {
        match self {
            HashFunction::OneAtATime => "one_at_a_time",
            HashFunction::Md5 => "md5",
            HashFunction::Crc16 => "crc16",
            HashFunction::Crc32 => "crc32",
            HashFunction::Crc32a => "crc32a",
            HashFunction::Fnv1_64 => "fnv1_64",
            HashFunction::Fnv1a_64 => "fnv1a_64",
            HashFunction::Fnv1_32 => "fnv1_32",
            HashFunction::Fnv1a_32 => "fnv1a_32",
            HashFunction::Hsieh => "hsieh",
            HashFunction::Murmur => "murmur",
            HashFunction::Jenkins => "jenkins",
        }
    }

    /// The function named `name` in nutcracker's YAML, if any.
    pub fn from_name(name: &str) -> Option<HashFunction> {
        HashFunction::ALL.into_iter().find(|h| h.name() == name)
    }

    /// The 32-bit hash of `key`.
    pub fn hash(self, key: &[u8]) -> u32 {
        match self {
            HashFunction::OneAtATime => one_at_a_time(key),
            HashFunction::Md5 => md5_hash(key, 0),
            HashFunction::Crc16 => crc16(key),
            HashFunction::Crc32 => (!crc32_raw(key) >> 16) & 0x7fff,
            HashFunction::Crc32a => !crc32_raw(key),
            HashFunction::Fnv1_64 => fnv1_64(key),
            HashFunction::Fnv1a_64 => fnv1a_64(key),
            HashFunction::Fnv1_32 => fnv1_32(key),
            HashFunction::Fnv1a_32 => fnv1a_32(key),
            HashFunction::Hsieh => hsieh(key),
            HashFunction::Murmur => murmur(key),
            HashFunction::Jenkins => jenkins(key),
        }
    }
}

/// A C `char` widened to 32 bits: sign-extended, as on x86.
fn widen(byte: u8) -> u32 {
    byte as i8 as i32 as u32
}

/// Word `word` (0..4) of the MD5 digest of `key`, little-endian: ketama's
/// point value and (word 0) the `md5` key hash.
pub fn md5_hash(key: &[u8], word: usize) -> u32 {
    let digest = md5(key);
    let w = &digest[word * 4..word * 4 + 4];
    u32::from_le_bytes([w[0], w[1], w[2], w[3]])
}

fn one_at_a_time(key: &[u8]) -> u32 {
    let mut value: u32 = 0;
    for &b in key {
        value = value.wrapping_add(widen(b));
        value = value.wrapping_add(value << 10);
        value ^= value >> 6;
    }
    value = value.wrapping_add(value << 3);
    value ^= value >> 11;
    value.wrapping_add(value << 15)
}

/// nutcracker 0.5.0's `hash_crc16`.
fn crc16(key: &[u8]) -> u32 {
    let mut crc: u32 = 0;
    for &b in key {
        crc = (crc << 8) ^ u32::from(XMODEM_TABLE[(((crc >> 8) ^ widen(b)) & 0xff) as usize]);
    }
    crc
}

const fn xmodem_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static XMODEM_TABLE: [u16; 256] = xmodem_table();

const fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static CRC32_TABLE: [u32; 256] = crc32_table();

/// The CRC-32 register before the final inversion.
fn crc32_raw(key: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &b in key {
        crc = (crc >> 8) ^ CRC32_TABLE[((crc ^ b as u32) & 0xff) as usize];
    }
    crc
}

const FNV_64_INIT: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_64_PRIME: u64 = 0x0000_0100_0000_01b3;
const FNV_32_INIT: u32 = 2_166_136_261;
const FNV_32_PRIME: u32 = 16_777_619;

fn fnv1_64(key: &[u8]) -> u32 {
    let mut hash = FNV_64_INIT;
    for &b in key {
        hash = hash.wrapping_mul(FNV_64_PRIME);
        hash ^= b as i8 as i64 as u64;
    }
    hash as u32
}

fn fnv1a_64(key: &[u8]) -> u32 {
    let mut hash = FNV_64_INIT as u32;
    for &b in key {
        hash ^= widen(b);
        hash = hash.wrapping_mul(FNV_64_PRIME as u32);
    }
    hash
}

fn fnv1_32(key: &[u8]) -> u32 {
    let mut hash = FNV_32_INIT;
    for &b in key {
        hash = hash.wrapping_mul(FNV_32_PRIME);
        hash ^= widen(b);
    }
    hash
}

fn fnv1a_32(key: &[u8]) -> u32 {
    let mut hash = FNV_32_INIT;
    for &b in key {
        hash ^= widen(b);
        hash = hash.wrapping_mul(FNV_32_PRIME);
    }
    hash
}

fn get16(bytes: &[u8]) -> u32 {
    u32::from(bytes[0]) | (u32::from(bytes[1]) << 8)
}

fn hsieh(key: &[u8]) -> u32 {
    if key.is_empty() {
        return 0;
    }
    let mut hash: u32 = 0;
    let mut chunks = key.chunks_exact(4);
    for chunk in &mut chunks {
        hash = hash.wrapping_add(get16(chunk));
        let tmp = (get16(&chunk[2..]) << 11) ^ hash;
        hash = (hash << 16) ^ tmp;
        hash = hash.wrapping_add(hash >> 11);
    }
    let rest = chunks.remainder();
    match rest.len() {
        3 => {
            hash = hash.wrapping_add(get16(rest));
            hash ^= hash << 16;
            hash ^= widen(rest[2]) << 18;
            hash = hash.wrapping_add(hash >> 11);
        }
        2 => {
            hash = hash.wrapping_add(get16(rest));
            hash ^= hash << 11;
            hash = hash.wrapping_add(hash >> 17);
        }
        1 => {
            hash = hash.wrapping_add(u32::from(rest[0]));
            hash ^= hash << 10;
            hash = hash.wrapping_add(hash >> 1);
        }
        _ => {}
    }
    hash ^= hash << 3;
    hash = hash.wrapping_add(hash >> 5);
    hash ^= hash << 4;
    hash = hash.wrapping_add(hash >> 17);
    hash ^= hash << 25;
    hash.wrapping_add(hash >> 6)
}

fn murmur(key: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let len = key.len() as u32;
    let mut h = 0xdead_beef_u32.wrapping_mul(len) ^ len;
    let mut chunks = key.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

fn jenkins(key: &[u8]) -> u32 {
    fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(4);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(6);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(8);
        *b = b.wrapping_add(*a);
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(16);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(19);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(4);
        *b = b.wrapping_add(*a);
    }
    fn word(bytes: &[u8]) -> u32 {
        let mut w = [0u8; 4];
        w[..bytes.len()].copy_from_slice(bytes);
        u32::from_le_bytes(w)
    }
    let init = 0xdead_beef_u32
        .wrapping_add(key.len() as u32)
        .wrapping_add(13);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut rest = key;
    while rest.len() > 12 {
        a = a.wrapping_add(word(&rest[0..4]));
        b = b.wrapping_add(word(&rest[4..8]));
        c = c.wrapping_add(word(&rest[8..12]));
        mix(&mut a, &mut b, &mut c);
        rest = &rest[12..];
    }
    if rest.is_empty() {
        return c;
    }
    a = a.wrapping_add(word(&rest[..rest.len().min(4)]));
    if rest.len() > 4 {
        b = b.wrapping_add(word(&rest[4..rest.len().min(8)]));
    }
    if rest.len() > 8 {
        c = c.wrapping_add(word(&rest[8..]));
    }
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(14));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(11));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(25));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(16));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(4));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(14));
    c ^= b;
    c.wrapping_sub(b.rotate_left(24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_vectors() {
        // Published check values of the standard algorithms.
        assert_eq!(HashFunction::Crc32a.hash(b"123456789"), 0xcbf4_3926);
        // Its low 16 bits are CRC-16/XMODEM's.
        assert_eq!(HashFunction::Crc16.hash(b"123456789") & 0xffff, 0x31c3);
        assert_eq!(HashFunction::Fnv1a_32.hash(b"a"), 0xe40c_292c);
        assert_eq!(HashFunction::Fnv1_32.hash(b"a"), 0x050c_5d7e);
        assert_eq!(
            HashFunction::Fnv1_64.hash(b"a"),
            0xaf63_bd4c_8601_b7be_u64 as u32
        );
        assert_eq!(HashFunction::OneAtATime.hash(b"a"), 0xca2e_9442);
        // lookup3 hashlittle("", 0) is 0xdeadbeef; initval 13 adds 13.
        assert_eq!(HashFunction::Jenkins.hash(b""), 0xdead_befc);
        assert_eq!(HashFunction::Hsieh.hash(b""), 0);
    }

    #[test]
    fn names_round_trip() {
        for h in HashFunction::ALL {
            assert_eq!(HashFunction::from_name(h.name()), Some(h));
        }
        assert_eq!(HashFunction::from_name("sha1"), None);
    }
}
