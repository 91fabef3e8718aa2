//! Misuses of `#[pipeline]` that must not compile, each with its error.

#[test]
fn pipeline_misuse_is_a_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/pipeline/*.rs");
}
