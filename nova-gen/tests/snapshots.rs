//! Snapshots of every file the built-in templates render, for each kind of platform, and of
//! the parts that change with where the crate goes (its `Cargo.toml`) and the next steps.
//!
//! A template change shows here as a snapshot diff to review (`cargo insta review`).

#![allow(clippy::unwrap_used)]

mod common;

use nova_gen::{Dependencies, Generator, PlatformName, RenderRequest, RenderedFile};

fn render(kind: &str, dependencies: Dependencies, tests: bool) -> Vec<RenderedFile> {
    let request = RenderRequest::new(PlatformName::parse("acme").unwrap(), kind)
        .with_tests(tests)
        .with_dependencies(dependencies);
    Generator::embedded().render(&request).unwrap()
}

fn snapshot_all(kind: &str) {
    for file in render(kind, Dependencies::Workspace, true) {
        let name = format!("{kind}__{}", file.path.replace('/', "__"));
        insta::assert_snapshot!(name, file.contents);
    }
}

#[test]
fn generic_files() {
    snapshot_all("generic");
}

#[test]
fn jsonrpc_files() {
    snapshot_all("jsonrpc");
}

#[test]
fn every_kind_writes_the_same_files() {
    let expected = [
        "Cargo.toml",
        "README.md",
        "src/adapter.rs",
        "src/client.rs",
        "src/lib.rs",
        "src/message.rs",
        "src/subscription.rs",
        "src/types.rs",
        "tests/client_test.rs",
        "tests/message_test.rs",
    ];
    for kind in ["generic", "jsonrpc"] {
        let paths: Vec<String> = render(kind, Dependencies::Workspace, true)
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(paths, expected, "{kind}");
        let without_tests = render(kind, Dependencies::Version, false);
        assert!(
            without_tests.iter().all(|f| !f.path.starts_with("tests/")),
            "{kind}"
        );
        assert_eq!(without_tests.len(), expected.len() - 2);
    }
}

fn manifest(dependencies: Dependencies, tests: bool) -> String {
    let files = render("jsonrpc", dependencies, tests);
    files
        .into_iter()
        .find(|f| f.path == "Cargo.toml")
        .unwrap()
        .contents
}

#[test]
fn manifest_with_path_dependencies() {
    insta::assert_snapshot!(manifest(Dependencies::Path("../../nova".to_owned()), true));
}

#[test]
fn manifest_with_version_dependencies_and_no_tests() {
    insta::assert_snapshot!(manifest(Dependencies::Version, false));
}

#[test]
fn next_steps() {
    let request = RenderRequest::new(PlatformName::parse("my-venue").unwrap(), "generic")
        .with_dependencies(Dependencies::Version);
    let steps = Generator::embedded()
        .render_next_steps(&request, "out/nova-my-venue")
        .unwrap();
    insta::assert_snapshot!(steps.unwrap());
}

/// The rendered Rust needs no formatting (rustfmt's defaults), so a generated crate passes
/// `cargo fmt --check` as written. Skipped when rustfmt is not installed.
#[test]
fn rendered_rust_is_rustfmt_clean() {
    let neutral = common::TempDir::new("fmt");
    for kind in ["generic", "jsonrpc"] {
        for file in render(kind, Dependencies::Workspace, true) {
            if !file.path.ends_with(".rs") {
                continue;
            }
            let Some(formatted) = common::rustfmt(&file.contents, neutral.path()) else {
                eprintln!("rustfmt is not installed: formatting not checked");
                return;
            };
            if formatted != file.contents {
                let (line, (want, got)) = formatted
                    .lines()
                    .zip(file.contents.lines())
                    .enumerate()
                    .find(|(_, (a, b))| a != b)
                    .unwrap_or((0, ("", "")));
                panic!(
                    "{kind}/{} is not rustfmt-clean at line {}:\n  rendered: {got}\n  rustfmt:  {want}",
                    file.path,
                    line + 1
                );
            }
        }
    }
}
