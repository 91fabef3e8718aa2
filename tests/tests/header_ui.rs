//! Compile errors of `#[header]`: each bad declaration under
//! `tests/ui/header/` must fail with the message and span pinned in its
//! `.stderr` file (regenerate with `TRYBUILD=overwrite`, then review).

#[test]
fn header_declaration_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/header/*.rs");
}
