//! Misuses of `#[derive(State)]` that must not compile, each with its error.
//! (A pipeline's `#[state]` and `#[app]` fields are in `pipeline_ui.rs`.)

#[test]
fn state_misuse_is_a_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/state/*.rs");
}
