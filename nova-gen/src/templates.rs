//! Template sets: the one embedded in the binary, or a user's own directory, and rendering them
//! with minijinja in strict mode.
//!
//! A set is a directory tree: `common/` holds templates every kind of platform shares, and one
//! directory per kind (`generic/`, `jsonrpc/`) holds that kind's. Each `PATH.j2` renders to
//! `PATH` in the new crate; a kind's file replaces a common file of the same path. Files whose
//! name (or a directory's) starts with `_` are not written: they are there to be included or
//! imported by other templates (`{% include "common/_policy.rs.j2" %}`), and
//! `_next_steps.txt.j2` is the message printed after generating. Templates under `tests/` are
//! left out with `--no-test`.
//!
//! The engine is strict: an undefined variable is an error, not an empty string. Trailing
//! newlines are kept; `trim_blocks` and `lstrip_blocks` are on, so a line holding only a
//! `{% ... %}` tag leaves nothing behind. Nothing is escaped.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use crate::error::GenError;

/// The template every set may have for the message printed after generating.
pub(crate) const NEXT_STEPS: &str = "_next_steps.txt.j2";

/// The directory of templates shared by every kind.
const COMMON: &str = "common";

macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/integration/", $path)))),*]
    };
}

/// The templates compiled into the binary (`templates/integration/` of this package).
/// A test checks this list against the directory.
pub(crate) static EMBEDDED: &[(&str, &str)] = embedded![
    "common/Cargo.toml.j2",
    "common/_credentials.rs.j2",
    "common/_next_steps.txt.j2",
    "common/_policy.rs.j2",
    "generic/README.md.j2",
    "generic/src/adapter.rs.j2",
    "generic/src/client.rs.j2",
    "generic/src/lib.rs.j2",
    "generic/src/message.rs.j2",
    "generic/src/subscription.rs.j2",
    "generic/src/types.rs.j2",
    "generic/tests/client_test.rs.j2",
    "generic/tests/message_test.rs.j2",
    "jsonrpc/README.md.j2",
    "jsonrpc/src/adapter.rs.j2",
    "jsonrpc/src/client.rs.j2",
    "jsonrpc/src/lib.rs.j2",
    "jsonrpc/src/message.rs.j2",
    "jsonrpc/src/subscription.rs.j2",
    "jsonrpc/src/types.rs.j2",
    "jsonrpc/tests/client_test.rs.j2",
    "jsonrpc/tests/message_test.rs.j2",
];

/// A file rendered from a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedFile {
    /// The path inside the new crate, with `/` separators (`src/client.rs`).
    pub path: String,
    /// The file's contents.
    pub contents: String,
}

/// A set of templates, by name (`jsonrpc/src/client.rs.j2`).
#[derive(Clone, Debug)]
pub(crate) struct TemplateSet {
    templates: BTreeMap<String, Cow<'static, str>>,
    /// Where a user's set was loaded from; `None` for the embedded set.
    origin: Option<PathBuf>,
}

impl TemplateSet {
    /// The set compiled into the binary.
    pub(crate) fn embedded() -> Self {
        let templates = EMBEDDED
            .iter()
            .map(|(name, src)| ((*name).to_owned(), Cow::Borrowed(*src)))
            .collect();
        Self {
            templates,
            origin: None,
        }
    }

    /// Loads every `*.j2` file under `dir`.
    pub(crate) fn load(dir: &Path) -> Result<Self, GenError> {
        let invalid = |reason: String| GenError::TemplateSet {
            path: dir.to_path_buf(),
            reason,
        };
        if !dir.is_dir() {
            return Err(invalid("not a directory".to_owned()));
        }
        let mut templates = BTreeMap::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(current) = pending.pop() {
            for entry in fs::read_dir(&current).map_err(GenError::io(&current))? {
                let path = entry.map_err(GenError::io(&current))?.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "j2") {
                    let name = path.strip_prefix(dir).unwrap_or(&path);
                    let name = name
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    let source = fs::read_to_string(&path).map_err(GenError::io(&path))?;
                    templates.insert(name, Cow::Owned(source));
                }
            }
        }
        let set = Self {
            templates,
            origin: Some(dir.to_path_buf()),
        };
        if set.kinds().is_empty() {
            return Err(invalid(
                "no kinds of platform: expected a directory per kind (e.g. `generic/`) holding `*.j2` templates, and optionally `common/`"
                    .to_owned(),
            ));
        }
        Ok(set)
    }

    /// The kinds of platform this set can generate: its top-level directories but `common`.
    pub(crate) fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self
            .templates
            .keys()
            .filter_map(|name| name.split_once('/').map(|(top, _)| top))
            .filter(|top| *top != COMMON)
            .map(str::to_owned)
            .collect();
        kinds.dedup();
        kinds
    }

    /// Checks that `kind` is one of this set's kinds.
    pub(crate) fn check_kind(&self, kind: &str) -> Result<(), GenError> {
        let kinds = self.kinds();
        if kinds.iter().any(|k| k == kind) {
            Ok(())
        } else {
            Err(GenError::UnknownPlatform {
                kind: kind.to_owned(),
                known: kinds,
            })
        }
    }

    /// The engine, with every template of the set loaded (so they can include each other).
    fn environment(&self) -> Result<Environment<'_>, GenError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        for (name, source) in &self.templates {
            env.add_template(name, source)
                .map_err(|source| self.error(name, source))?;
        }
        Ok(env)
    }

    fn error(&self, template: &str, source: minijinja::Error) -> GenError {
        let template = match &self.origin {
            Some(dir) => dir.join(template).display().to_string(),
            None => template.to_owned(),
        };
        GenError::Template { template, source }
    }

    /// The output paths of `kind`, each with the template that renders it.
    fn outputs(&self, kind: &str, tests: bool) -> BTreeMap<String, &str> {
        let mut outputs = BTreeMap::new();
        // Common first, so the kind's templates replace common ones of the same path.
        for dir in [COMMON, kind] {
            let prefix = format!("{dir}/");
            for name in self.templates.keys() {
                let Some(path) = name
                    .strip_prefix(&prefix)
                    .and_then(|p| p.strip_suffix(".j2"))
                else {
                    continue;
                };
                if path.split('/').any(|part| part.starts_with('_'))
                    || (!tests && path.starts_with("tests/"))
                {
                    continue;
                }
                outputs.insert(path.to_owned(), name.as_str());
            }
        }
        outputs
    }

    /// Renders every file of `kind` with `context`, sorted by path.
    pub(crate) fn render(
        &self,
        kind: &str,
        context: &Value,
        tests: bool,
    ) -> Result<Vec<RenderedFile>, GenError> {
        self.check_kind(kind)?;
        let env = self.environment()?;
        let mut files = Vec::new();
        for (path, name) in self.outputs(kind, tests) {
            if path.is_empty()
                || path
                    .split('/')
                    .any(|part| part.is_empty() || part == "." || part == "..")
            {
                return Err(GenError::TemplateSet {
                    path: self.origin.clone().unwrap_or_default(),
                    reason: format!("template `{name}` would write outside the crate"),
                });
            }
            let template = env.get_template(name).map_err(|e| self.error(name, e))?;
            let contents = template.render(context).map_err(|e| self.error(name, e))?;
            files.push(RenderedFile { path, contents });
        }
        Ok(files)
    }

    /// Renders the message shown after generating, when the set has one (the kind's, or the
    /// common one).
    pub(crate) fn render_next_steps(
        &self,
        kind: &str,
        context: &Value,
    ) -> Result<Option<String>, GenError> {
        let candidates = [
            format!("{kind}/{NEXT_STEPS}"),
            format!("{COMMON}/{NEXT_STEPS}"),
        ];
        let Some(name) = candidates
            .iter()
            .find(|n| self.templates.contains_key(n.as_str()))
        else {
            return Ok(None);
        };
        let env = self.environment()?;
        let template = env.get_template(name).map_err(|e| self.error(name, e))?;
        template
            .render(context)
            .map(Some)
            .map_err(|e| self.error(name, e))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every file under `templates/integration` is embedded, and nothing else.
    #[test]
    fn the_embedded_list_matches_the_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/integration");
        let on_disk = TemplateSet::load(&dir).unwrap();
        let embedded = TemplateSet::embedded();
        let names = |set: &TemplateSet| set.templates.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            names(&embedded),
            names(&on_disk),
            "update EMBEDDED in nova-gen/src/templates.rs"
        );
        for (name, source) in &on_disk.templates {
            assert_eq!(embedded.templates[name], *source, "{name}");
        }
        assert_eq!(embedded.kinds(), ["generic", "jsonrpc"]);
    }
}
