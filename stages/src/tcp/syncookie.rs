//! SYN cookies: a listener answers a SYN without keeping any state, and
//! rebuilds the connection from the final ACK of the handshake (the idea of
//! D. J. Bernstein's SYN cookies, laid out the way Linux users know them:
//! `net.ipv4.tcp_syncookies` 0, 1, 2 are [`SynCookieMode`]'s `off`,
//! `on_overflow`, `always`).
//!
//! The cookie is our initial sequence number. Its 32 bits:
//!
//! ```text
//!  31 30 | 29 28 27 | 26 ........................... 0
//! counter| MSS index| MAC: SipHash-2-4 (secret; 4-tuple, peer's ISN,
//!  mod 4 | (8 MSSs) |      full counter, MSS index, option bits), 27 bits
//! ```
//!
//! The counter ticks every [`COUNTER_NS`] (64 s) of pipeline time; a
//! cookie of the current or the previous tick is accepted, so a cookie
//! lives 64 to 128 s. The peer's MSS is rounded down to one of
//! [`MSS_TABLE`]'s eight values.
//!
//! The options that need state (the peer's window scale, SACK permitted)
//! ride in the low [`TS_BITS`] bits of our SYN-ACK's TSval, which the
//! peer echoes in its ACK's TSecr (as Linux does); they are covered by
//! the MAC, so a forged TSecr fails the check. Without timestamps there is
//! nowhere to put them: the SYN-ACK offers neither and the connection runs
//! without both.
//!
//! The secret is 128 bits derived from the socket table's seed (see
//! [`SynCookies::from_seed`]), so a simulation replays exactly, or from
//! the host's key ([`HostKey::cookie_key`](super::host_key::HostKey::cookie_key))
//! for a stack facing a network.

use std::fmt;
use std::hash::Hasher;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher24;

use super::seq::SeqNumber;
use super::wire::FourTuple;

/// When a listener answers SYNs with cookies; `"off"`, `"on_overflow"` or
/// `"always"` in the config file (Linux `tcp_syncookies` 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SynCookieMode {
    /// Never: a SYN over the backlog is dropped.
    Off,
    /// Only for a SYN that finds its listener's backlog full; an ACK is
    /// checked as a cookie only while a cookie sent recently may be
    /// answered.
    #[default]
    OnOverflow,
    /// For every SYN to a listener: no half-open state at all.
    Always,
}

/// One tick of the cookie counter: 64 s of pipeline time.
pub const COUNTER_NS: u64 = 64 * 1_000_000_000;

/// The MSSs a cookie can carry, ascending: the peer's MSS is rounded down
/// to one of them (IPv4's default and IPv6's minimum, common tunnel and
/// PPPoE paths, Ethernet for IPv6 and IPv4, jumbo frames).
pub const MSS_TABLE: [u16; 8] = [536, 1220, 1300, 1380, 1400, 1440, 1460, 8960];

/// How many low bits of the SYN-ACK's TSval carry [`CookieOptions`].
pub const TS_BITS: u32 = 6;

const TS_MASK: u32 = (1 << TS_BITS) - 1;
const COUNTER_SHIFT: u32 = 30;
const MSS_SHIFT: u32 = 27;
const MAC_MASK: u32 = (1 << MSS_SHIFT) - 1;
/// A window scale field of 15 (above RFC 7323's 14): "not offered".
const NO_WSCALE: u8 = 0xf;
const SACK_BIT: u8 = 1 << 4;
const TS_BIT: u8 = 1 << 5;

/// The options the cookie recovers besides the MSS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CookieOptions {
    /// Timestamps on (both SYNs carried them): the other two ride in
    /// TSval.
    pub timestamps: bool,
    /// The peer's window shift (0..=14), when both sides scale.
    pub window_scale: Option<u8>,
    /// SACK permitted both ways.
    pub sack: bool,
}

impl CookieOptions {
    /// The [`TS_BITS`] bits that carry these options: 0 without
    /// timestamps; else a timestamps bit, the SACK bit and the shift (15
    /// for none).
    ///
    /// ```
    /// use tpa_stages::tcp::syncookie::CookieOptions;
    /// let o = CookieOptions { timestamps: true, window_scale: Some(7), sack: true };
    /// assert_eq!(CookieOptions::from_bits(o.bits()), Some(o));
    /// assert_eq!(CookieOptions::default().bits(), 0);
    /// ```
    pub fn bits(self) -> u8 {
        if !self.timestamps {
            return 0;
        }
        let wscale = self.window_scale.map_or(NO_WSCALE, |s| s.min(14));
        TS_BIT | if self.sack { SACK_BIT } else { 0 } | wscale
    }

    /// The options `bits` (a TSecr's low bits) carry, or `None` for bits
    /// no SYN-ACK of ours sends (timestamps bit clear with others set).
    pub fn from_bits(bits: u8) -> Option<Self> {
        let bits = bits & TS_MASK as u8;
        if bits & TS_BIT == 0 {
            return (bits == 0).then_some(CookieOptions::default());
        }
        let wscale = bits & 0xf;
        Some(CookieOptions {
            timestamps: true,
            window_scale: (wscale != NO_WSCALE).then_some(wscale.min(14)),
            sack: bits & SACK_BIT != 0,
        })
    }
}

/// Why an ACK's cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieError {
    /// A genuine cookie, but from a counter tick before the previous one.
    Expired,
    /// Not a cookie of ours: the MAC does not match (forged, damaged, a
    /// stray ACK, or options changed on the way).
    Invalid,
}

/// What a valid cookie gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieSyn {
    /// The peer's initial sequence number (the ACK's SEQ less one).
    pub peer_isn: SeqNumber,
    /// Our initial sequence number: the cookie.
    pub iss: SeqNumber,
    /// The peer's MSS, rounded down to a [`MSS_TABLE`] value.
    pub peer_mss: u16,
    /// The other options agreed.
    pub options: CookieOptions,
}

/// Makes and checks SYN cookies with a 128-bit secret.
///
/// `Debug` does not print the secret.
///
/// ```
/// use tpa_stages::tcp::seq::SeqNumber;
/// use tpa_stages::tcp::syncookie::{CookieOptions, SynCookies};
/// use tpa_stages::tcp::wire::FourTuple;
///
/// let cookies = SynCookies::from_seed(7);
/// let tuple = FourTuple {
///     local: "10.0.0.1:80".parse().unwrap(),
///     remote: "10.0.0.2:40000".parse().unwrap(),
/// };
/// let opts = CookieOptions::default();
/// let peer_isn = SeqNumber::new(1000);
/// let iss = cookies.make(0, &tuple, peer_isn, 1460, opts);
/// let back = cookies.check(1_000_000_000, &tuple, peer_isn, iss, opts).unwrap();
/// assert_eq!(back.peer_mss, 1460);
/// ```
#[derive(Clone)]
pub struct SynCookies {
    key: [u8; 16],
}

impl SynCookies {
    /// Cookies keyed with this 128-bit secret.
    pub const fn from_key(key: [u8; 16]) -> Self {
        SynCookies { key }
    }

    /// Cookies whose secret derives from `seed` (the same seed, the same
    /// cookies: simulations replay). Domain-separated from
    /// [`IsnGenerator::from_seed`](super::isn::IsnGenerator::from_seed), so
    /// the two secrets are unrelated even from one seed.
    pub fn from_seed(seed: u64) -> Self {
        // "tpa_coo0", "tpa_coo1"
        let key = super::isn::key_from_seed(seed, [0x7470_615f_636f_6f30, 0x7470_615f_636f_6f31]);
        SynCookies { key }
    }

    /// The counter tick of pipeline time `now_ns`.
    pub fn counter(now_ns: u64) -> u64 {
        now_ns / COUNTER_NS
    }

    /// The index into [`MSS_TABLE`] of the largest value not above
    /// `peer_mss` (0 for a smaller MSS: as Linux, the peer then gets 536).
    pub fn mss_index(peer_mss: u16) -> u8 {
        MSS_TABLE.iter().rposition(|&m| m <= peer_mss).unwrap_or(0) as u8
    }

    /// The cookie for a SYN from `tuple.remote` with sequence number
    /// `peer_isn` and MSS `peer_mss`, agreeing on `options`, at `now_ns`.
    pub fn make(
        &self,
        now_ns: u64,
        tuple: &FourTuple,
        peer_isn: SeqNumber,
        peer_mss: u16,
        options: CookieOptions,
    ) -> SeqNumber {
        let counter = Self::counter(now_ns);
        let index = Self::mss_index(peer_mss);
        let mac = self.mac(tuple, peer_isn, counter, index, options.bits());
        let low = (counter & 3) as u32;
        SeqNumber::new(low << COUNTER_SHIFT | u32::from(index) << MSS_SHIFT | mac)
    }

    /// Checks `cookie` (an ACK's SEG.ACK less one) for the peer whose ISN
    /// was `peer_isn` (the ACK's SEG.SEQ less one), with the options the
    /// ACK's TSecr carries, at `now_ns`.
    ///
    /// # Errors
    ///
    /// [`CookieError::Expired`] for a genuine cookie older than the
    /// previous counter tick, [`CookieError::Invalid`] for anything else
    /// not ours.
    pub fn check(
        &self,
        now_ns: u64,
        tuple: &FourTuple,
        peer_isn: SeqNumber,
        cookie: SeqNumber,
        options: CookieOptions,
    ) -> Result<CookieSyn, CookieError> {
        let raw = cookie.get();
        let now = Self::counter(now_ns);
        let low = u64::from(raw >> COUNTER_SHIFT);
        // The latest tick at or before now with these low bits.
        let age = now.wrapping_sub(low) & 3;
        let counter = now.checked_sub(age).ok_or(CookieError::Invalid)?;
        let index = ((raw >> MSS_SHIFT) & 7) as u8;
        if self.mac(tuple, peer_isn, counter, index, options.bits()) != raw & MAC_MASK {
            return Err(CookieError::Invalid);
        }
        if age > 1 {
            return Err(CookieError::Expired);
        }
        Ok(CookieSyn {
            peer_isn,
            iss: cookie,
            peer_mss: MSS_TABLE[usize::from(index)],
            options,
        })
    }

    /// The SYN-ACK's TSval: the clock `ts_now` with its low [`TS_BITS`]
    /// bits replaced by `options`, moved back one step when that would
    /// put it ahead of the clock (the connection's later TSvals must not
    /// go backwards).
    ///
    /// ```
    /// use tpa_stages::tcp::syncookie::{CookieOptions, SynCookies};
    /// let o = CookieOptions { timestamps: true, window_scale: Some(9), sack: false };
    /// let tsval = SynCookies::tsval(1000, o);
    /// assert!(tsval <= 1000 && 1000 - tsval < 64);
    /// assert_eq!(CookieOptions::from_bits(tsval as u8), Some(o));
    /// ```
    pub fn tsval(ts_now: u32, options: CookieOptions) -> u32 {
        let v = (ts_now & !TS_MASK) | u32::from(options.bits());
        if SeqNumber::new(v).gt(SeqNumber::new(ts_now)) {
            v.wrapping_sub(TS_MASK + 1)
        } else {
            v
        }
    }

    /// The cookie's MAC: SipHash-2-4 under the secret, low 27 bits.
    fn mac(
        &self,
        tuple: &FourTuple,
        peer_isn: SeqNumber,
        counter: u64,
        index: u8,
        bits: u8,
    ) -> u32 {
        let mut h = SipHasher24::new_with_key(&self.key);
        h.write_u8(b'c');
        write_end(&mut h, tuple.local);
        write_end(&mut h, tuple.remote);
        h.write_u32(peer_isn.get());
        h.write_u64(counter);
        h.write_u8(index);
        h.write_u8(bits);
        h.finish() as u32 & MAC_MASK
    }
}

/// One end of the 4-tuple, family-tagged (as the ISN hash writes it).
fn write_end(h: &mut SipHasher24, end: SocketAddr) {
    match end.ip() {
        IpAddr::V4(ip) => {
            h.write_u8(4);
            h.write(&ip.octets());
        }
        IpAddr::V6(ip) => {
            h.write_u8(6);
            h.write(&ip.octets());
        }
    }
    h.write(&end.port().to_be_bytes());
}

impl fmt::Debug for SynCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SynCookies")
            .field("key", &"<secret>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tuple(port: u16) -> FourTuple {
        FourTuple {
            local: "10.0.0.1:80".parse().unwrap(),
            remote: SocketAddr::new("10.0.0.2".parse().unwrap(), port),
        }
    }

    const ALL_OPTIONS: [CookieOptions; 4] = [
        CookieOptions {
            timestamps: false,
            window_scale: None,
            sack: false,
        },
        CookieOptions {
            timestamps: true,
            window_scale: None,
            sack: false,
        },
        CookieOptions {
            timestamps: true,
            window_scale: Some(0),
            sack: true,
        },
        CookieOptions {
            timestamps: true,
            window_scale: Some(14),
            sack: false,
        },
    ];

    #[test]
    fn every_mss_index_round_trips() {
        let c = SynCookies::from_seed(1);
        let t = tuple(40_000);
        for (i, &mss) in MSS_TABLE.iter().enumerate() {
            assert_eq!(SynCookies::mss_index(mss), i as u8);
            // A value between two entries rounds down.
            assert_eq!(SynCookies::mss_index(mss.saturating_add(1)), i as u8);
            for opts in ALL_OPTIONS {
                let peer = SeqNumber::new(0xffff_fff0 + i as u32);
                let iss = c.make(5 * COUNTER_NS, &t, peer, mss, opts);
                let back = c.check(5 * COUNTER_NS + 1, &t, peer, iss, opts).unwrap();
                assert_eq!(
                    back,
                    CookieSyn {
                        peer_isn: peer,
                        iss,
                        peer_mss: mss,
                        options: opts
                    }
                );
            }
        }
        assert_eq!(SynCookies::mss_index(100), 0);
        assert_eq!(SynCookies::mss_index(1459), 5);
        assert_eq!(SynCookies::mss_index(u16::MAX), 7);
    }

    #[test]
    fn the_previous_tick_is_accepted_older_ones_expire() {
        let c = SynCookies::from_seed(2);
        let t = tuple(1);
        let peer = SeqNumber::new(77);
        let opts = ALL_OPTIONS[2];
        let made = 10 * COUNTER_NS + 5;
        let iss = c.make(made, &t, peer, 1460, opts);
        for (later, want) in [
            (0, Ok(1460)),
            (COUNTER_NS - 6, Ok(1460)),
            (COUNTER_NS, Ok(1460)),
            (2 * COUNTER_NS - 6, Ok(1460)),
            (2 * COUNTER_NS, Err(CookieError::Expired)),
            (3 * COUNTER_NS + 9, Err(CookieError::Expired)),
        ] {
            let got = c
                .check(made + later, &t, peer, iss, opts)
                .map(|s| s.peer_mss);
            assert_eq!(got, want, "{later} ns later");
        }
        // Four ticks later the low bits alias the current tick: the MAC
        // (over the full counter) refuses it.
        assert_eq!(
            c.check(made + 4 * COUNTER_NS, &t, peer, iss, opts),
            Err(CookieError::Invalid)
        );
        // A cookie claiming a tick before time began.
        let early = SeqNumber::new(3 << COUNTER_SHIFT);
        assert_eq!(c.check(0, &t, peer, early, opts), Err(CookieError::Invalid));
    }

    #[test]
    fn forged_and_altered_acks_are_refused() {
        let c = SynCookies::from_seed(3);
        let t = tuple(5000);
        let peer = SeqNumber::new(1 << 31);
        let opts = ALL_OPTIONS[3];
        let iss = c.make(0, &t, peer, 1440, opts);
        assert!(c.check(0, &t, peer, iss, opts).is_ok());
        let bad = |tuple: &FourTuple, peer: SeqNumber, iss: SeqNumber, opts| {
            c.check(0, tuple, peer, iss, opts) == Err(CookieError::Invalid)
        };
        // Every single bit flipped in the cookie.
        for bit in 0..32 {
            assert!(
                bad(&t, peer, SeqNumber::new(iss.get() ^ 1 << bit), opts),
                "{bit}"
            );
        }
        assert!(bad(&tuple(5001), peer, iss, opts), "another port");
        assert!(bad(&t, peer + 1, iss, opts), "another peer ISN");
        for other in ALL_OPTIONS.into_iter().filter(|&o| o != opts) {
            assert!(bad(&t, peer, iss, other), "options changed: {other:?}");
        }
        // Another secret.
        assert_eq!(
            SynCookies::from_seed(4).check(0, &t, peer, iss, opts),
            Err(CookieError::Invalid)
        );
    }

    #[test]
    fn options_ride_in_tsval_and_come_back() {
        let c = SynCookies::from_seed(5);
        let t = tuple(443);
        let peer = SeqNumber::new(9);
        for wscale in (0..=14).map(Some).chain([None]) {
            for sack in [false, true] {
                let opts = CookieOptions {
                    timestamps: true,
                    window_scale: wscale,
                    sack,
                };
                for ts_now in [0u32, 5, 63, 64, 1000, u32::MAX] {
                    let tsval = SynCookies::tsval(ts_now, opts);
                    assert!(ts_now.wrapping_sub(tsval) < 64, "{ts_now} {tsval}");
                    // The peer echoes TSval as TSecr: the options decode
                    // from it and the cookie checks with them.
                    let echoed = CookieOptions::from_bits(tsval as u8).unwrap();
                    assert_eq!(echoed, opts);
                    let iss = c.make(0, &t, peer, 536, opts);
                    let back = c.check(0, &t, peer, iss, echoed).unwrap();
                    assert_eq!(
                        (back.options.window_scale, back.options.sack),
                        (wscale, sack)
                    );
                }
            }
        }
        // Bits a SYN-ACK of ours never sends.
        assert_eq!(CookieOptions::from_bits(0b01_0011), None);
    }

    #[test]
    fn seeded_secrets_replay_and_differ_from_the_isn_key() {
        let t = tuple(1);
        let opts = CookieOptions::default();
        let a = SynCookies::from_seed(42).make(0, &t, SeqNumber::new(1), 1460, opts);
        let b = SynCookies::from_seed(42).make(0, &t, SeqNumber::new(1), 1460, opts);
        assert_eq!(a, b);
        assert_ne!(SynCookies::from_seed(42).key, SynCookies::from_seed(43).key);
        assert_eq!(
            format!("{:?}", SynCookies::from_key([1; 16])),
            "SynCookies { key: \"<secret>\" }"
        );
    }

    proptest! {
        /// Any SYN's cookie checks within its two ticks, with the MSS
        /// rounded down.
        #[test]
        fn round_trip(
            seed in any::<u64>(),
            port in any::<u16>(),
            peer in any::<u32>(),
            mss in any::<u16>(),
            now in 0u64..1 << 50,
            later in 0u64..COUNTER_NS,
            opts in 0usize..4,
        ) {
            let c = SynCookies::from_seed(seed);
            let t = tuple(port);
            let opts = ALL_OPTIONS[opts];
            let iss = c.make(now, &t, SeqNumber::new(peer), mss, opts);
            let back = c.check(now + later, &t, SeqNumber::new(peer), iss, opts).unwrap();
            prop_assert!(back.peer_mss <= mss.max(MSS_TABLE[0]));
            prop_assert_eq!(back.peer_mss, MSS_TABLE[usize::from(SynCookies::mss_index(mss))]);
        }

        /// A random ACK (an attacker guessing) is almost never a cookie:
        /// 27 MAC bits. A hit here would be a broken MAC, not luck.
        #[test]
        fn random_acks_are_refused(seed in any::<u64>(), guess in any::<u32>(), peer in any::<u32>()) {
            let c = SynCookies::from_seed(seed);
            let t = tuple(1);
            let opts = CookieOptions::default();
            let real = c.make(COUNTER_NS, &t, SeqNumber::new(peer), 1460, opts);
            prop_assume!(real.get() != guess);
            prop_assert!(c.check(COUNTER_NS, &t, SeqNumber::new(peer), SeqNumber::new(guess), opts).is_err());
        }
    }
}
