//! The generator's error type: one enum, a variant per way generation can fail, sources kept.

use std::path::PathBuf;

/// Why a platform integration could not be generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenError {
    /// The platform name cannot name a crate `nova-NAME` and its types.
    #[error("invalid platform name `{name}`: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The template set has no templates for this kind of platform.
    #[error("unknown platform kind `{kind}`, expected one of: {}", known.join(", "))]
    UnknownPlatform {
        /// The kind given.
        kind: String,
        /// The kinds the template set has.
        known: Vec<String>,
    },
    /// The crate's directory exists already and `--force` was not given.
    #[error("{} already exists (use --force to overwrite its generated files)", path.display())]
    Exists {
        /// The directory.
        path: PathBuf,
    },
    /// A template directory given with `--templates` is not a usable template set.
    #[error("template set {}: {reason}", path.display())]
    TemplateSet {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A template failed to parse or render (an undefined variable, a syntax error).
    #[error("template `{template}` failed")]
    Template {
        /// The template's name in its set (`jsonrpc/src/client.rs.j2`).
        template: String,
        /// The template engine's error, with line and detail.
        #[source]
        source: minijinja::Error,
    },
    /// The path given with `--nova-path` is not a nova checkout.
    #[error("--nova-path {}: {reason}", path.display())]
    NovaPath {
        /// The path given.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// The nova workspace's `Cargo.toml` could not be updated to list the new crate.
    #[error("cannot add `{member}` to the workspace members in {}: {reason}", manifest.display())]
    Workspace {
        /// The workspace manifest.
        manifest: PathBuf,
        /// The member to add.
        member: String,
        /// Why.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl GenError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
