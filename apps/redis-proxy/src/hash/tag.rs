//! Hash tags: the part of a key that is hashed.

/// The part of `key` nutcracker hashes under a two-byte `hash_tag` such
/// as `b"{}"`: the bytes between the first `tag[0]` and the next `tag[1]`
/// after it, if that span is non-empty; else the whole key.
pub fn hash_tag_key(key: &[u8], tag: [u8; 2]) -> &[u8] {
    if let Some(start) = key.iter().position(|&b| b == tag[0]) {
        if let Some(len) = key[start + 1..].iter().position(|&b| b == tag[1]) {
            if len > 0 {
                return &key[start + 1..start + 1 + len];
            }
        }
    }
    key
}

/// Redis Cluster's 16384 slots.
pub const CLUSTER_SLOTS: u16 = 16384;

/// CRC-16/XMODEM (polynomial 0x1021), Redis Cluster's key hash.
pub fn crc16_xmodem(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The Redis Cluster slot of `key`: CRC16 of the first non-empty `{...}`
/// span if the first `{` has a `}` after it with something in between,
/// else of the whole key; modulo 16384.
pub fn cluster_slot(key: &[u8]) -> u16 {
    crc16_xmodem(hash_tag_key(key, *b"{}")) % CLUSTER_SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_rules() {
        assert_eq!(hash_tag_key(b"user:{42}:name", *b"{}"), b"42");
        assert_eq!(hash_tag_key(b"{}x", *b"{}"), b"{}x");
        assert_eq!(hash_tag_key(b"a{b", *b"{}"), b"a{b");
        assert_eq!(hash_tag_key(b"a{b}{c}", *b"{}"), b"b");
        assert_eq!(hash_tag_key(b"a{{b}}", *b"{}"), b"{b");
        assert_eq!(hash_tag_key(b"x:tag:y", *b"::"), b"tag");
    }

    #[test]
    fn cluster_slots_match_redis() {
        // CRC-16/XMODEM check value, and slots redis documents/returns.
        assert_eq!(crc16_xmodem(b"123456789"), 0x31c3);
        assert_eq!(cluster_slot(b"foo"), 12182);
        assert_eq!(
            cluster_slot(b"{user1000}.following"),
            cluster_slot(b"user1000")
        );
        assert_eq!(cluster_slot(b"foo{}{bar}"), cluster_slot(b"foo{}{bar}"));
        assert_eq!(cluster_slot(b"foo{{bar}}zap"), cluster_slot(b"{bar"));
    }
}
