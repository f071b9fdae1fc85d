//! Compile-time behaviour of `#[cached]` and `#[invalidate_cache]`: what
//! compiles (`tests/<macro>/pass`) and the errors misuse produces
//! (`tests/<macro>/fail/*.stderr`). Refresh the snapshots with
//! `TRYBUILD=overwrite cargo test -p ngx-cache --test macros_ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/cached/pass/*.rs");
    t.compile_fail("tests/cached/fail/*.rs");
    t.pass("tests/invalidate_cache/pass/*.rs");
    t.compile_fail("tests/invalidate_cache/fail/*.rs");
}
