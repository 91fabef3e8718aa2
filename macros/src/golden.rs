//! Golden expansion tests: each declaration under `tests/expand/NAME.rs` is
//! expanded, pretty-printed and compared with the checked-in
//! `tests/expand/NAME.expanded.rs`, so that any change to the generated code
//! shows up in review as a diff of that file.
//!
//! `TPA_BLESS=1 cargo test -p tpa-macros golden` rewrites the expanded files
//! (and removes those whose declaration is gone).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use proc_macro2::TokenStream;
use quote::ToTokens;

/// The folder holding the declarations and their expansions.
fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expand")
}

const EXPANDED: &str = ".expanded.rs";

fn bless() -> bool {
    std::env::var_os("TPA_BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Expands every `#[header]` / `#[pipeline]` item of `source`, in order,
/// and pretty-prints the result. Other items are left out.
fn expand_file(name: &str, source: &str) -> Result<String, String> {
    let file = syn::parse_file(source).map_err(|e| format!("{name}: does not parse: {e}"))?;
    let mut out = TokenStream::new();
    let mut expanded = 0;
    for mut item in file.items {
        let attrs = match &mut item {
            syn::Item::Struct(s) => &mut s.attrs,
            _ => continue,
        };
        let Some(at) = attrs
            .iter()
            .position(|a| a.path().is_ident("header") || a.path().is_ident("pipeline"))
        else {
            continue;
        };
        let attr = attrs.remove(at);
        let args = match &attr.meta {
            syn::Meta::Path(_) => TokenStream::new(),
            syn::Meta::List(list) => list.tokens.clone(),
            syn::Meta::NameValue(_) => {
                return Err(format!("{name}: `#[x = ..]` is not a macro call"))
            }
        };
        let tokens = if attr.path().is_ident("header") {
            crate::header::header(args, item.into_token_stream())
        } else {
            crate::pipeline::pipeline(args, item.into_token_stream())
        };
        if tokens.to_string().contains("compile_error") {
            return Err(format!("{name}: the expansion is an error:\n{tokens}"));
        }
        out.extend(tokens);
        expanded += 1;
    }
    if expanded == 0 {
        return Err(format!("{name}: no #[header] or #[pipeline] struct in it"));
    }
    let parsed: syn::File =
        syn::parse2(out).map_err(|e| format!("{name}: the expansion is not a valid file: {e}"))?;
    Ok(format!(
        "// The expansion of {name}.rs, checked by `cargo test -p tpa-macros golden`.\n\
         // Do not edit: `TPA_BLESS=1 cargo test -p tpa-macros golden` rewrites it.\n\n{}",
        prettyplease::unparse(&parsed)
    ))
}

/// A line diff of `old` and `new` (longest common subsequence), with three
/// lines of context around each change, `-` for lines only in `old` and `+`
/// for lines only in `new`.
fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // lcs[i][j]: length of the longest common subsequence of a[i..], b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // Each line of the edit script: (mark, line number in `old` or `new`, text).
    let mut script: Vec<(char, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            script.push((' ', i + 1, a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            script.push(('-', i + 1, a[i]));
            i += 1;
        } else {
            script.push(('+', j + 1, b[j]));
            j += 1;
        }
    }
    const CONTEXT: usize = 3;
    let changed: Vec<usize> = (0..script.len()).filter(|&k| script[k].0 != ' ').collect();
    let near_change = |k: usize| changed.iter().any(|&c| c.abs_diff(k) <= CONTEXT);
    let mut out = String::new();
    let mut skipped = false;
    for (k, (mark, line, text)) in script.iter().enumerate() {
        if near_change(k) {
            if skipped || (k > 0 && out.is_empty()) {
                let _ = writeln!(out, "@@ line {line} @@");
            }
            skipped = false;
            let _ = writeln!(out, "{mark}{text}");
        } else {
            skipped = true;
        }
    }
    out
}

#[test]
fn golden_expansions() {
    let dir = dir();
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    inputs.sort();
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in &inputs {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name");
        if let Some(stem) = file_name.strip_suffix(EXPANDED) {
            if !dir.join(format!("{stem}.rs")).exists() {
                if bless() {
                    std::fs::remove_file(path).expect("removing a stale expansion");
                } else {
                    failures.push(format!(
                        "{file_name}: no {stem}.rs declares it; TPA_BLESS=1 removes it"
                    ));
                }
            }
            continue;
        }
        let Some(stem) = file_name.strip_suffix(".rs") else {
            continue;
        };
        let source = std::fs::read_to_string(path).expect("reading a declaration");
        let actual = match expand_file(stem, &source) {
            Ok(text) => text,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        checked += 1;
        let golden_path = dir.join(format!("{stem}{EXPANDED}"));
        let golden = std::fs::read_to_string(&golden_path).unwrap_or_default();
        if golden == actual {
            continue;
        }
        if bless() {
            std::fs::write(&golden_path, &actual).expect("writing an expansion");
        } else {
            failures.push(format!(
                "{stem}{EXPANDED} differs from the expansion of {stem}.rs \
                 (- checked in, + expanded now):\n{}",
                diff(&golden, &actual)
            ));
        }
    }
    assert!(checked > 0, "no declarations in {}", dir.display());
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change to the generated code is intended, rewrite the expected \
         files with `TPA_BLESS=1 cargo test -p tpa-macros golden` and review the diff.",
        failures.join("\n\n")
    );
}

#[test]
fn diff_shows_changed_lines_with_context() {
    let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\n";
    let new = "a\nb\nc\nd\nE\nf\ng\nh\ni\nj\n";
    let d = diff(old, new);
    assert_eq!(d, "@@ line 2 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n i\n+j\n");
    assert_eq!(diff(old, old), "");
}
