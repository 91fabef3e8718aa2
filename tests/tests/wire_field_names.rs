//! The field-name convention of `tpa::wire` (doc/guide/headers.md, "Field
//! names"), checked on the declarations themselves: every `#[header]` struct
//! under framework/src/wire is read from its source, so a header added or
//! renamed later is held to the same rules.

use std::fs;
use std::path::{Path, PathBuf};

/// One declared field: header, name, declared type.
#[derive(Debug)]
struct Field {
    header: String,
    name: String,
    ty: String,
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The fields of every `#[header]` struct in `src`, in order.
fn header_fields(src: &str) -> Vec<Field> {
    let mut fields = Vec::new();
    let mut lines = src.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if !line.starts_with("#[header") {
            continue;
        }
        let decl = lines.next().expect("a struct follows #[header]");
        let header = decl
            .strip_prefix("pub struct ")
            .and_then(|rest| rest.strip_suffix(" {"))
            .unwrap_or_else(|| panic!("unexpected declaration after #[header]: {decl}"));
        for line in lines.by_ref() {
            if line == "}" {
                break;
            }
            let Some(field) = line.strip_prefix("pub ") else {
                continue; // doc comments and #[field]/#[checksum] attributes
            };
            let (name, ty) = field
                .trim_end_matches(',')
                .split_once(": ")
                .unwrap_or_else(|| panic!("unexpected field line in {header}: {line}"));
            fields.push(Field {
                header: header.to_string(),
                name: name.to_string(),
                ty: ty.to_string(),
            });
        }
    }
    fields
}

fn all_fields() -> Vec<Field> {
    let wire = Path::new(env!("CARGO_MANIFEST_DIR")).join("../framework/src/wire");
    let mut files = Vec::new();
    sources(&wire, &mut files);
    files.sort();
    files
        .iter()
        .flat_map(|f| header_fields(&fs::read_to_string(f).unwrap()))
        .collect()
}

/// Whether `ty` is an unsigned integer of any width (`u1` … `u64`).
fn is_uint(ty: &str) -> bool {
    ty.strip_prefix('u')
        .and_then(|w| w.parse::<u32>().ok())
        .is_some_and(|w| (1..=64).contains(&w))
}

#[test]
fn the_reader_finds_every_header() {
    let fields = all_fields();
    let mut headers: Vec<&str> = fields.iter().map(|f| f.header.as_str()).collect();
    headers.dedup();
    // Every header the wire module's table lists.
    for want in [
        "Ethernet",
        "VlanTag",
        "Arp",
        "Ipv4",
        "Ipv6",
        "Ipv6ExtHeader",
        "Ipv6Fragment",
        "AuthHeader",
        "Icmpv4",
        "Icmpv4Echo",
        "Icmpv4DestUnreachable",
        "Icmpv4TimeExceeded",
        "Icmpv6",
        "Icmpv6Echo",
        "RouterSolicitation",
        "NeighborSolicitation",
        "NeighborAdvertisement",
        "Udp",
        "Tcp",
    ] {
        assert!(headers.contains(&want), "{want} not found in {headers:?}");
    }
}

#[test]
fn reserved_bits_are_reserved_and_numbered_when_several() {
    let fields = all_fields();
    for f in &fields {
        assert!(
            !matches!(f.name.as_str(), "res" | "unused" | "rsvd" | "pad"),
            "{}.{}: reserved bits are named `reserved`",
            f.header,
            f.name
        );
        if f.name.starts_with("reserved") {
            assert!(
                is_uint(&f.ty),
                "{}.{}: reserved bits are an unsigned integer",
                f.header,
                f.name
            );
        }
        // A single bit is a named flag, unless it is reserved.
        if f.ty == "u1" {
            assert!(
                f.name.starts_with("reserved"),
                "{}.{}: a flag bit is a named `bool`, not a `u1`",
                f.header,
                f.name
            );
        }
    }
    let mut headers: Vec<&str> = fields.iter().map(|f| f.header.as_str()).collect();
    headers.dedup();
    for header in headers {
        let reserved: Vec<&str> = fields
            .iter()
            .filter(|f| f.header == header && f.name.starts_with("reserved"))
            .map(|f| f.name.as_str())
            .collect();
        let want: Vec<String> = match reserved.len() {
            0 => vec![],
            1 => vec!["reserved".to_string()],
            n => (1..=n).map(|i| format!("reserved_{i}")).collect(),
        };
        assert_eq!(reserved, want, "{header}: reserved fields");
    }
}

#[test]
fn lengths_end_in_len_and_flags_are_bools() {
    for f in all_fields() {
        if f.name.contains("len") || f.name.contains("length") {
            assert!(
                f.name.ends_with("_len") && !f.name.contains("length"),
                "{}.{}: a length ends in `_len`",
                f.header,
                f.name
            );
        }
        assert!(
            f.name != "length" && f.name != "len",
            "{}.{}: a length says what it covers (`total_len`, `payload_len`, …)",
            f.header,
            f.name
        );
        // The one byte of flags is TCP's control bits, as a typed set.
        if f.name.contains("flag") {
            assert_eq!(
                (f.header.as_str(), f.name.as_str(), f.ty.as_str()),
                ("Tcp", "flags", "TcpFlags"),
                "flag bits are named bools"
            );
        }
    }
}
