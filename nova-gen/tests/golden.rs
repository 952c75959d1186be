//! The golden copies: `platforms/nova-gen-golden` is what `nova-gen integration gen-golden --platform
//! jsonrpc` generates inside the workspace, and `platforms/nova-gen-golden-generic` what
//! `nova-gen integration gen-golden-generic --platform generic` does. They are workspace members,
//! so CI compiles, lints and tests them with everything else (and nova-bench measures both); this
//! test regenerates them in memory and fails when a template (or nova-gen) would generate
//! anything else, so templates and the core never drift apart.
//!
//! After changing a template, refresh it and review the diff:
//!
//! ```text
//! NOVA_GEN_BLESS=1 cargo test -p nova-gen --test golden
//! ```
//!
//! Rendered files are compared after rustfmt with the workspace's configuration (when rustfmt is
//! installed), as `cargo fmt` would leave them.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use nova_gen::{Dependencies, Generator, PlatformName, RenderRequest};

/// Named so that it cannot be taken for the examples crate (`examples/`, `nova-examples`).
const GOLDEN: &str = "platforms/nova-gen-golden";

/// The `generic` kind's golden copy.
const GOLDEN_GENERIC: &str = "platforms/nova-gen-golden-generic";

/// Every file under `dir`, relative, with `/` separators.
fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                found.insert(rel);
            }
        }
    }
    found
}

#[test]
fn the_golden_crate_is_what_the_templates_generate() {
    check_golden(GOLDEN, "gen-golden", "jsonrpc");
}

#[test]
fn the_generic_golden_crate_is_what_the_templates_generate() {
    check_golden(GOLDEN_GENERIC, "gen-golden-generic", "generic");
}

/// Regenerates `name` of `kind` and compares it with the copy at `dir` (or, with
/// `NOVA_GEN_BLESS`, writes it there).
fn check_golden(dir: &str, name: &str, kind: &str) {
    let root = common::workspace_root();
    let golden = root.join(dir);
    let request = RenderRequest::new(PlatformName::parse(name).unwrap(), kind)
        .with_dependencies(Dependencies::Workspace);
    let mut rendered = Generator::embedded().render(&request).unwrap();
    for file in &mut rendered {
        if file.path.ends_with(".rs") {
            if let Some(formatted) = common::rustfmt(&file.contents, &root) {
                file.contents = formatted;
            }
        }
    }

    let expected: BTreeSet<String> = rendered.iter().map(|f| f.path.clone()).collect();
    if std::env::var_os("NOVA_GEN_BLESS").is_some() {
        for stale in files_under(&golden).difference(&expected) {
            std::fs::remove_file(golden.join(stale)).unwrap();
        }
        for file in &rendered {
            let path = golden.join(&file.path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &file.contents).unwrap();
        }
        eprintln!("blessed {dir}: review the diff");
        return;
    }

    let mut problems = Vec::new();
    let on_disk = files_under(&golden);
    for extra in on_disk.difference(&expected) {
        problems.push(format!(
            "{dir}/{extra} is not generated any more: delete it"
        ));
    }
    for file in &rendered {
        let Ok(current) = std::fs::read_to_string(golden.join(&file.path)) else {
            problems.push(format!("{dir}/{} is missing", file.path));
            continue;
        };
        if current != file.contents {
            let first = current
                .lines()
                .zip(file.contents.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| current.lines().count().min(file.contents.lines().count()));
            problems.push(format!(
                "{dir}/{} differs from the templates' output from line {}:\n    golden:    {}\n    templates: {}",
                file.path,
                first + 1,
                current.lines().nth(first).unwrap_or("<end of file>"),
                file.contents.lines().nth(first).unwrap_or("<end of file>"),
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the golden crate has drifted from the templates:\n{}\n\nRefresh it with `NOVA_GEN_BLESS=1 cargo test -p nova-gen --test golden` and review the diff.",
        problems.join("\n")
    );
}
