//! Human units in the config file: durations (`"200ms"`), byte sizes
//! (`"512KiB"` or a plain integer) and port ranges (`[32768, 60999]`).
//!
//! Each has a parser, a formatter that the parser reads back exactly, and a
//! serde newtype the file layout uses for its fields.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// Duration units the parser reads, largest first.
const DURATION_UNITS: [(&str, u64); 7] = [
    ("h", 3_600_000_000_000),
    ("min", 60_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// Byte-size units, largest first.
const SIZE_UNITS: [(&str, u64); 4] = [
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("B", 1),
];

/// Splits `"200ms"` or `"200 ms"` into the number and the unit.
fn split_number(text: &str) -> Result<(u64, &str), String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: String = number.chars().filter(|&c| c != '_').collect();
    if number.is_empty() {
        return Err("it does not start with a whole number".into());
    }
    let number = number
        .parse::<u64>()
        .map_err(|_| "the number is too large".to_string())?;
    Ok((number, unit.trim()))
}

/// Parses a duration with a unit (`ns`, `us` or `µs`, `ms`, `s`, `m` or
/// `min`, `h`) into nanoseconds.
///
/// ```
/// use tpa_stages::tcp::config::units::parse_duration;
/// assert_eq!(parse_duration("200ms"), Ok(200_000_000));
/// assert_eq!(parse_duration("2 h"), Ok(7_200_000_000_000));
/// assert!(parse_duration("200").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let (number, unit) = split_number(text)?;
    let unit = if unit == "µs" { "us" } else { unit };
    if unit.is_empty() {
        return Err("it has no unit (ns, us, ms, s, min or h)".into());
    }
    let (_, scale) = DURATION_UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .ok_or_else(|| format!("unknown unit {unit:?} (ns, us, ms, s, min or h)"))?;
    number
        .checked_mul(*scale)
        .ok_or_else(|| "it does not fit in 64 bits of nanoseconds".to_string())
}

/// Formats nanoseconds in the largest unit up to seconds that holds them
/// whole (seconds, not minutes, as Linux's sysctls do: `"7200s"`).
///
/// ```
/// use tpa_stages::tcp::config::units::format_duration;
/// assert_eq!(format_duration(200_000_000), "200ms");
/// assert_eq!(format_duration(7_200_000_000_000), "7200s");
/// assert_eq!(format_duration(0), "0s");
/// ```
pub fn format_duration(ns: u64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let (name, scale) = DURATION_UNITS[3..]
        .iter()
        .find(|(_, scale)| ns.is_multiple_of(*scale))
        .expect("the last unit, ns, divides every value");
    format!("{}{name}", ns / scale)
}

/// Parses a byte size: a whole number with an optional unit (`B`, `KiB`,
/// `MiB`, `GiB`).
///
/// ```
/// use tpa_stages::tcp::config::units::parse_size;
/// assert_eq!(parse_size("512KiB"), Ok(524_288));
/// assert_eq!(parse_size("1500"), Ok(1500));
/// assert!(parse_size("1.5MiB").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = split_number(text)?;
    let scale = if unit.is_empty() {
        1
    } else {
        SIZE_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(|| format!("unknown unit {unit:?} (B, KiB, MiB or GiB)"))?
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| "it does not fit in 64 bits".to_string())
}

/// Formats a byte size in the largest binary unit that holds it whole.
///
/// ```
/// use tpa_stages::tcp::config::units::format_size;
/// assert_eq!(format_size(524_288), "512KiB");
/// assert_eq!(format_size(1500), "1500B");
/// ```
pub fn format_size(bytes: u64) -> String {
    if bytes == 0 {
        return "0B".into();
    }
    let (name, scale) = SIZE_UNITS
        .iter()
        .find(|(_, scale)| bytes.is_multiple_of(*scale))
        .expect("the last unit, B, divides every value");
    format!("{}{name}", bytes / scale)
}

/// A duration field of the file, in nanoseconds; written `"200ms"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Duration(pub u64);

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string with a unit, such as \"200ms\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
                parse_duration(text)
                    .map(Duration)
                    .map_err(|why| E::custom(format!("invalid duration {text:?}: {why}")))
            }
        }
        deserializer.deserialize_str(DurationVisitor)
    }
}

/// A byte-size field of the file; written `"512KiB"` or `524288`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Size(pub u64);

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_size(self.0))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size in bytes, such as 65536 or \"64KiB\"")
            }
            fn visit_u64<E: de::Error>(self, bytes: u64) -> Result<Size, E> {
                Ok(Size(bytes))
            }
            fn visit_i64<E: de::Error>(self, bytes: i64) -> Result<Size, E> {
                u64::try_from(bytes)
                    .map(Size)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(bytes), &self))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Size, E> {
                parse_size(text)
                    .map(Size)
                    .map_err(|why| E::custom(format!("invalid size {text:?}: {why}")))
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

/// A count field of the file (sockets, segments, retries): a whole number,
/// 0 or more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Count(pub u64);

impl Serialize for Count {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // TOML integers are i64; a count past it (never a valid one) is
        // written as the largest.
        serializer.serialize_i64(i64::try_from(self.0).unwrap_or(i64::MAX))
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl Visitor<'_> for CountVisitor {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number, 0 or more")
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Count, E> {
                Ok(Count(value))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Count, E> {
                u64::try_from(value)
                    .map(Count)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(value), &self))
            }
        }
        deserializer.deserialize_any(CountVisitor)
    }
}

/// The local port range: `[first, last]`, or `"first-last"` (handy in an
/// environment variable). Wider than ports, so that validation, not the
/// parser, says a port is out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PortRange(pub u64, pub u64);

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        [Count(self.0), Count(self.1)].serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RangeVisitor;
        impl<'de> Visitor<'de> for RangeVisitor {
            type Value = PortRange;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port range, such as [32768, 60999] or \"32768-60999\"")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PortRange, A::Error> {
                let first: Count = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let last: Count = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(PortRange(first.0, last.0))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<PortRange, E> {
                let parsed = text.split_once('-').and_then(|(first, last)| {
                    Some(PortRange(
                        first.trim().parse().ok()?,
                        last.trim().parse().ok()?,
                    ))
                });
                parsed.ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
            }
        }
        deserializer.deserialize_any(RangeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("7ns"), Ok(7));
        assert_eq!(parse_duration("7us"), Ok(7_000));
        assert_eq!(parse_duration("7µs"), Ok(7_000));
        assert_eq!(parse_duration("7ms"), Ok(7_000_000));
        assert_eq!(parse_duration("7s"), Ok(7_000_000_000));
        assert_eq!(parse_duration("7m"), Ok(420_000_000_000));
        assert_eq!(parse_duration("7min"), Ok(420_000_000_000));
        assert_eq!(parse_duration("7h"), Ok(25_200_000_000_000));
        assert_eq!(parse_duration(" 1_000 ms "), Ok(1_000_000_000));
    }

    #[test]
    fn bad_durations_say_why() {
        assert_eq!(
            parse_duration("200"),
            Err("it has no unit (ns, us, ms, s, min or h)".into())
        );
        assert_eq!(
            parse_duration("ms"),
            Err("it does not start with a whole number".into())
        );
        assert_eq!(
            parse_duration("1.5s"),
            Err("unknown unit \".5s\" (ns, us, ms, s, min or h)".into())
        );
        assert_eq!(
            parse_duration("200 parsecs"),
            Err("unknown unit \"parsecs\" (ns, us, ms, s, min or h)".into())
        );
        assert_eq!(
            parse_duration("99999999999h"),
            Err("it does not fit in 64 bits of nanoseconds".into())
        );
        assert_eq!(
            parse_duration("99999999999999999999999s"),
            Err("the number is too large".into())
        );
    }

    #[test]
    fn sizes_parse_with_and_without_units() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("3B"), Ok(3));
        assert_eq!(parse_size("3KiB"), Ok(3072));
        assert_eq!(parse_size("3 MiB"), Ok(3 << 20));
        assert_eq!(parse_size("3GiB"), Ok(3 << 30));
        assert_eq!(
            parse_size("3KB"),
            Err("unknown unit \"KB\" (B, KiB, MiB or GiB)".into())
        );
        assert_eq!(
            parse_size("99999999999GiB"),
            Err("it does not fit in 64 bits".into())
        );
    }

    #[test]
    fn formatting_reads_back_exactly() {
        for ns in [
            0,
            1,
            999,
            1_000,
            1_500_000,
            40_000_000,
            1_000_000_000,
            90_000_000_000,
            7_200_000_000_000,
            u64::MAX,
        ] {
            assert_eq!(parse_duration(&format_duration(ns)), Ok(ns), "{ns} ns");
        }
        for bytes in [0, 1, 1023, 1024, 1536, 524_288, 1 << 30, u64::MAX] {
            assert_eq!(parse_size(&format_size(bytes)), Ok(bytes), "{bytes} B");
        }
    }
}
