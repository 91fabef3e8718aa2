//! The valid name closest to a misspelt one, for "did you mean" hints
//! (the TCP and the trace config loaders).

/// Levenshtein distance between `a` and `b`, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The last part of a dotted key: `rto.min` → `min`.
fn leaf(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// How far `wrong` is from `candidate`: the edit distance of the whole
/// dotted keys, or of their last parts plus one (a right name in the wrong
/// table: `sack` → `options.sack`), whichever is smaller.
fn score(wrong: &str, candidate: &str) -> usize {
    distance(wrong, candidate).min(distance(leaf(wrong), leaf(candidate)) + 1)
}

/// The candidate nearest to `wrong` (the first of equals); empty when there
/// are no candidates.
pub(crate) fn nearest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    candidates
        .into_iter()
        .min_by_key(|candidate| score(wrong, candidate))
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("rto_min", "rto.min"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn nearest_prefers_the_closest_then_the_first() {
        assert_eq!(nearest("rto.mn", ["rto.max", "rto.min"]), "rto.min");
        assert_eq!(nearest("x", ["ab", "cd"]), "ab");
        assert_eq!(nearest("x", []), "");
        assert_eq!(nearest("sack", ["backlog", "options.sack"]), "options.sack");
        assert_eq!(
            nearest("rto.sack", ["rto.min", "options.sack"]),
            "options.sack"
        );
    }
}
