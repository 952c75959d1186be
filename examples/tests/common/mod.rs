//! What the example tests share: finding the example binaries cargo built.

use std::path::PathBuf;

/// The binary of example `name`, built by `cargo test` (and `cargo build --examples`) next to
/// the test binaries' directory.
pub(crate) fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().unwrap().parent().unwrap();
    let path = debug
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p nova-examples --example {name}`",
        path.display()
    );
    path
}
