//! trybuild cases for `#[nova::client]`: code that must compile (`ui/pass`), and code that must
//! not, with the exact errors users see (`ui/fail/*.stderr`). The `.stderr` files are written
//! by the machine's stable toolchain: regenerate with `TRYBUILD=overwrite cargo test -p nova-ws
//! --test ui` after an intended change, and review them.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
