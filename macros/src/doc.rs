//! Doc comments for generated items, written so that the expansion reads
//! like hand-written code: one `#[doc = " line"]` per line (what `///`
//! desugars to, so `cargo expand` shows `/// line`), long lines wrapped.

use proc_macro2::TokenStream;
use quote::quote;

/// Where generated prose is wrapped (the comment marker and indentation
/// come on top).
const WIDTH: usize = 76;

/// `text` as doc attributes: each line of it (wrapped at [`WIDTH`] on
/// spaces) becomes one `#[doc = " line"]`; an empty line stays a paragraph
/// break.
pub fn doc(text: &str) -> TokenStream {
    let lines = text.lines().flat_map(wrap).map(|line| {
        let line = if line.is_empty() {
            String::new()
        } else {
            format!(" {line}")
        };
        quote!(#[doc = #line])
    });
    quote!(#(#lines)*)
}

/// Splits one line into lines of at most [`WIDTH`] characters at spaces (a
/// longer word stays whole).
fn wrap(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for word in line.split(' ') {
        if !current.is_empty() && current.len() + 1 + word.len() > WIDTH {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    out.push(current);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_doc_attributes_with_a_leading_space() {
        assert_eq!(
            doc("One.\n\nTwo.").to_string(),
            r#"# [doc = " One."] # [doc = ""] # [doc = " Two."]"#
        );
    }

    #[test]
    fn long_lines_wrap_at_spaces() {
        let long = "word ".repeat(30);
        let lines = wrap(long.trim_end());
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.len() <= WIDTH), "{lines:?}");
        assert_eq!(lines.join(" "), long.trim_end());
        assert_eq!(wrap(&"x".repeat(100)), vec!["x".repeat(100)]);
    }
}
