//! The `nova-gen` binary: its help, its output after generating, and every error exit, as
//! snapshots. Each run happens in a temporary directory outside any Cargo workspace, with
//! relative paths, so the output does not depend on where the tests run.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::TempDir;

/// Runs `nova-gen` in `dir`; returns the exit code and stdout + stderr, with `dir` written as
/// `[TMP]`.
fn run(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_nova-gen"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .unwrap();
    let code = output
        .status
        .code()
        .map_or("signal".to_owned(), |c| c.to_string());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let text = format!("exit: {code}\n--- stdout\n{stdout}--- stderr\n{stderr}");
    text.replace(&dir.display().to_string(), "[TMP]")
}

#[test]
fn help() {
    let dir = TempDir::new("cli");
    insta::assert_snapshot!("help", run(dir.path(), &["--help"]));
    insta::assert_snapshot!(
        "help_integration",
        run(dir.path(), &["integration", "--help"])
    );
}

#[test]
fn generates_with_version_dependencies_and_says_what_next() {
    let dir = TempDir::new("cli");
    insta::assert_snapshot!(
        "generated_jsonrpc",
        run(
            dir.path(),
            &["integration", "acme", "--platform", "jsonrpc"]
        )
    );
    let manifest = std::fs::read_to_string(dir.path().join("nova-acme/Cargo.toml")).unwrap();
    assert!(manifest.contains("nova-core = \"0.1.0\""), "{manifest}");
    assert!(dir.path().join("nova-acme/tests/client_test.rs").is_file());
}

#[test]
fn generates_without_tests_into_out() {
    let dir = TempDir::new("cli");
    let output = run(
        dir.path(),
        &["integration", "my-venue", "--no-test", "--out", "crates"],
    );
    insta::assert_snapshot!("generated_without_tests", output);
    assert!(
        dir.path()
            .join("crates/nova-my-venue/src/client.rs")
            .is_file()
    );
    assert!(!dir.path().join("crates/nova-my-venue/tests").exists());
}

#[test]
fn path_dependencies_on_nova_path() {
    let dir = TempDir::new("cli");
    let nova = common::workspace_root();
    let output = run(
        dir.path(),
        &["integration", "acme", "--nova-path", nova.to_str().unwrap()],
    );
    assert!(output.starts_with("exit: 0"), "{output}");
    let crate_dir = dir.path().join("nova-acme");
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    // The path may be written relative to the new crate or absolute; either way it must lead to
    // this checkout's nova-core.
    let line = manifest
        .lines()
        .find(|l| l.starts_with("nova-core = "))
        .unwrap();
    let path = line.split('"').nth(1).unwrap();
    let resolved = crate_dir.join(path).canonicalize().unwrap();
    assert_eq!(
        resolved,
        nova.join("nova-core").canonicalize().unwrap(),
        "{manifest}"
    );
    assert!(line.contains("version = \"0.1.0\""), "{manifest}");
}

#[test]
fn invalid_names() {
    let dir = TempDir::new("cli");
    insta::assert_snapshot!(
        "error_uppercase_name",
        run(dir.path(), &["integration", "Acme"])
    );
    insta::assert_snapshot!(
        "error_prefixed_name",
        run(dir.path(), &["integration", "nova-acme"])
    );
    insta::assert_snapshot!(
        "error_reserved_name",
        run(dir.path(), &["integration", "core"])
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing is written"
    );
}

#[test]
fn unknown_platform_kind() {
    let dir = TempDir::new("cli");
    insta::assert_snapshot!(
        "error_unknown_kind",
        run(
            dir.path(),
            &["integration", "acme", "--platform", "graphql"]
        )
    );
}

#[test]
fn existing_directory_needs_force() {
    let dir = TempDir::new("cli");
    std::fs::create_dir_all(dir.path().join("nova-acme")).unwrap();
    std::fs::write(dir.path().join("nova-acme/notes.txt"), "mine").unwrap();
    insta::assert_snapshot!(
        "error_existing_directory",
        run(dir.path(), &["integration", "acme"])
    );
    assert!(!dir.path().join("nova-acme/Cargo.toml").exists());

    let forced = run(dir.path(), &["integration", "acme", "--force"]);
    assert!(forced.starts_with("exit: 0"), "{forced}");
    assert!(dir.path().join("nova-acme/Cargo.toml").is_file());
    let notes = std::fs::read_to_string(dir.path().join("nova-acme/notes.txt")).unwrap();
    assert_eq!(notes, "mine", "--force overwrites generated files only");
}

#[test]
fn usage_errors() {
    let dir = TempDir::new("cli");
    insta::assert_snapshot!("usage_missing_name", run(dir.path(), &["integration"]));
    insta::assert_snapshot!(
        "usage_unknown_option",
        run(dir.path(), &["integration", "acme", "--frobnicate"])
    );
}

#[test]
fn bad_nova_path() {
    let dir = TempDir::new("cli");
    insta::assert_snapshot!(
        "error_bad_nova_path",
        run(
            dir.path(),
            &["integration", "acme", "--nova-path", "nowhere"]
        )
    );
}

/// A template set of one's own: rendered as given, variables and includes included.
#[test]
fn user_templates() {
    let dir = TempDir::new("cli");
    let set = dir.path().join("my-templates");
    std::fs::create_dir_all(set.join("common")).unwrap();
    std::fs::create_dir_all(set.join("ws/src")).unwrap();
    std::fs::write(
        set.join("common/_header.j2"),
        "// {{ crate_name }} ({{ platform }})\n",
    )
    .unwrap();
    std::fs::write(set.join("common/README.md.j2"), "# {{ title }}\n").unwrap();
    let lib = "{% include \"common/_header.j2\" %}pub struct {{ type_prefix }}Client;\n";
    std::fs::write(set.join("ws/src/lib.rs.j2"), lib).unwrap();
    std::fs::write(
        set.join("ws/_next_steps.txt.j2"),
        "Now edit {{ crate_dir }}.\n",
    )
    .unwrap();

    let output = run(
        dir.path(),
        &[
            "integration",
            "my-venue",
            "--platform",
            "ws",
            "--templates",
            "my-templates",
        ],
    );
    insta::assert_snapshot!("generated_from_user_templates", output);
    let lib = std::fs::read_to_string(dir.path().join("nova-my-venue/src/lib.rs")).unwrap();
    assert_eq!(lib, "// nova-my-venue (ws)\npub struct MyVenueClient;\n");

    insta::assert_snapshot!(
        "error_kind_not_in_user_templates",
        run(
            dir.path(),
            &["integration", "acme", "--templates", "my-templates"]
        )
    );
}

/// Strict templates: an undefined variable stops generation with the template, the line and
/// the variable, and nothing is written.
#[test]
fn undefined_template_variable() {
    let dir = TempDir::new("cli");
    let set = dir.path().join("broken");
    std::fs::create_dir_all(set.join("ws")).unwrap();
    std::fs::write(
        set.join("ws/Cargo.toml.j2"),
        "[package]\nname = \"{{ crate_name }}\"\nversion = \"{{ crate_version }}\"\n",
    )
    .unwrap();
    insta::assert_snapshot!(
        "error_undefined_template_variable",
        run(
            dir.path(),
            &[
                "integration",
                "acme",
                "--platform",
                "ws",
                "--templates",
                "broken"
            ]
        )
    );
    assert!(!dir.path().join("nova-acme").exists());
    insta::assert_snapshot!(
        "error_missing_template_set",
        run(
            dir.path(),
            &["integration", "acme", "--templates", "nowhere"]
        )
    );
}

/// Inside a nova checkout (found from the current directory), the crate goes to `platforms/`,
/// takes its dependencies and lints from the workspace, and joins the workspace's members.
#[test]
fn inside_a_nova_checkout_the_crate_joins_the_workspace() {
    let dir = TempDir::new("cli");
    let root = dir.path().join("nova");
    std::fs::create_dir_all(root.join("nova-core/src")).unwrap();
    let manifest = "[workspace]\nresolver = \"3\"\nmembers = [\n    \"nova-core\",\n]\n\n[workspace.dependencies]\nnova-core = { path = \"nova-core\" }\n";
    std::fs::write(root.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(
        root.join("nova-core/Cargo.toml"),
        "[package]\nname = \"nova-core\"\n",
    )
    .unwrap();

    let output = run(
        &root.join("nova-core/src"),
        &["integration", "acme", "--platform", "jsonrpc"],
    );
    insta::assert_snapshot!(
        "generated_in_workspace",
        output
            .replace("[TMP]", "")
            .replace(&root.display().to_string(), "[ROOT]")
    );
    let generated = std::fs::read_to_string(root.join("platforms/nova-acme/Cargo.toml")).unwrap();
    assert!(
        generated.contains("nova-core = { workspace = true }"),
        "{generated}"
    );
    assert!(
        generated.contains("[lints]\nworkspace = true"),
        "{generated}"
    );
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("members = [\n    \"nova-core\",\n    \"platforms/nova-acme\",\n]"),
        "{manifest}"
    );

    let again = run(
        &root,
        &["integration", "acme", "--platform", "jsonrpc", "--force"],
    );
    assert!(
        again.contains("\"platforms/nova-acme\" is already a workspace member in Cargo.toml"),
        "{again}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("Cargo.toml")).unwrap(),
        manifest,
        "listed once"
    );
}

/// Inside some other Cargo workspace, the crate is written with version dependencies and the
/// user is told to add it to that workspace's members.
#[test]
fn inside_another_workspace_the_user_is_told_to_add_it() {
    let dir = TempDir::new("cli");
    std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
    let output = run(dir.path(), &["integration", "acme"]);
    assert!(output.starts_with("exit: 0"), "{output}");
    let note = "Note: nova-acme is inside the Cargo workspace of Cargo.toml: add it to that workspace's `members`.";
    assert!(output.contains(note), "{output}");
    let manifest = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
    assert_eq!(
        manifest, "[workspace]\nmembers = []\n",
        "only a nova workspace is edited"
    );
}
