//! Generates each kind of platform into a temporary directory outside the workspace, with path
//! dependencies on this checkout, and runs the new crate's tests with cargo. They must pass —
//! the client tests connect to the test kit's server of the same kind — and the crate must
//! compile without a warning, clippy's included (when `clippy-driver` is installed, it lints the
//! new crate as it is built).
//!
//! Building a crate from scratch is slow on a small machine, so the build reuses what the
//! workspace has built: the same target directory (`CARGO_TARGET_DIR`), the same lock file and
//! the same profiles, offline, one cargo invocation per kind.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use nova_gen::{Options, generate_in};

/// The workspace's `[profile]` settings as `--config` arguments, so the new crate's
/// dependencies are built exactly as the workspace builds them (and so reused).
fn profile_args(root: &Path) -> Vec<String> {
    fn flatten(prefix: &str, value: &toml::Value, out: &mut Vec<String>) {
        match value {
            toml::Value::Table(table) => {
                for (key, value) in table {
                    let bare = key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                    let key = if bare {
                        key.clone()
                    } else {
                        format!("\"{key}\"")
                    };
                    flatten(&format!("{prefix}.{key}"), value, out);
                }
            }
            other => {
                out.push("--config".to_owned());
                out.push(format!("{prefix}={other}"));
            }
        }
    }
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
    let mut args = Vec::new();
    if let Some(profile) = manifest.get("profile") {
        flatten("profile", profile, &mut args);
    }
    args
}

/// Whether `clippy-driver` can be run.
fn clippy_driver() -> Option<&'static str> {
    let found = Command::new("clippy-driver")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    found.then_some("clippy-driver")
}

/// The warnings cargo printed about the crate `crate_name` (whose files it names relative to
/// the crate: `src/...`, `tests/...`).
fn own_warnings(stderr: &str, crate_name: &str) -> Vec<String> {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with("warning") {
            continue;
        }
        let location = lines[i + 1..]
            .iter()
            .take(3)
            .find_map(|l| l.trim_start().strip_prefix("--> "));
        let ours = match location {
            Some(path) => path.starts_with("src/") || path.starts_with("tests/"),
            None => line.contains(&format!("`{crate_name}`")),
        };
        if ours {
            found.push(lines[i..lines.len().min(i + 6)].join("\n"));
        }
    }
    found
}

fn generate_and_test(kind: &str) {
    let root = common::workspace_root();
    let dir = common::TempDir::new(kind);
    let name = format!("trial-{kind}");
    let options = Options::new(name.as_str())
        .with_platform(kind)
        .with_nova_path(&root);
    let generated = generate_in(dir.path(), &options).unwrap();
    let crate_name = format!("nova-{name}");
    std::fs::copy(
        root.join("Cargo.lock"),
        generated.crate_dir.join("Cargo.lock"),
    )
    .unwrap();

    let mut cargo = Command::new(option_env!("CARGO").unwrap_or("cargo"));
    cargo
        .args(profile_args(&root))
        .args(["test", "--offline"])
        .current_dir(&generated.crate_dir)
        .env("CARGO_TARGET_DIR", root.join("target"))
        .env("CARGO_TERM_COLOR", "never");
    match clippy_driver() {
        Some(driver) => cargo.env("RUSTC_WORKSPACE_WRAPPER", driver),
        None => {
            eprintln!("clippy-driver is not installed: the generated {kind} crate is not linted");
            cargo.env_remove("RUSTC_WORKSPACE_WRAPPER")
        }
    };
    let output = cargo.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`cargo test` of the generated {kind} crate failed:\n{stdout}\n{stderr}"
    );
    let warnings = own_warnings(&stderr, &crate_name);
    assert!(
        warnings.is_empty(),
        "the generated {kind} crate has warnings:\n{}",
        warnings.join("\n\n")
    );
    for suite in ["message_test", "client_test"] {
        assert!(
            stderr.contains(&format!("tests/{suite}.rs")),
            "{suite} did not run:\n{stderr}"
        );
    }
    assert!(
        !stdout.contains("FAILED") && stdout.contains("test result: ok"),
        "{stdout}"
    );
}

#[test]
fn the_generic_kind_compiles_and_its_tests_pass() {
    generate_and_test("generic");
}

#[test]
fn the_jsonrpc_kind_compiles_and_its_tests_pass() {
    generate_and_test("jsonrpc");
}
