//! Compile-time behaviour of `#[on_trigger]`: what must expand and run (`ui/pass`), and what
//! must be rejected, with which message at which span (`ui/fail/*.stderr`).
//!
//! Regenerate the expected output after an intended change with
//! `TRYBUILD=overwrite cargo test -p listener-macros --test ui`, then review the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
