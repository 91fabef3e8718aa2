//! Bad input is an error, never a panic: the parser and the runner take
//! any text (arbitrary strings, and real scripts with bytes replaced).

use proptest::prelude::*;
use tpa_drill::run::RunOptions;

const SCRIPTS: [&str; 4] = [
    include_str!("../../../tests/drill/handshake/passive-open.pkt"),
    include_str!("../../../tests/drill/recovery/prr-newreno.pkt"),
    include_str!("../../../tests/drill/data/poll-readable.pkt"),
    include_str!("../../../tests/drill/keepalive/probes-then-timeout.pkt"),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_parser_takes_any_text(text in "\\PC{0,200}") {
        let _ = tpa_drill::script::parse(&text);
    }

    #[test]
    fn the_runner_takes_any_mutation_of_a_script(
        which in 0usize..4,
        edits in proptest::collection::vec((0usize..3000, "[ -~\n]{0,3}"), 1..4)
    ) {
        let mut text = SCRIPTS[which].to_string();
        for (at, with) in edits {
            let at = at % (text.len() + 1);
            let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            let end = (at + with.len()).min(text.len());
            let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
            text.replace_range(at..end, &with);
        }
        // Any verdict will do; a panic fails (proptest prints the input).
        let _ = tpa_drill::run_text(&text, RunOptions::default(), 1);
    }
}
