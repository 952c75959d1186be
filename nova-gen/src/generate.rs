//! Generating a platform integration: options, rendering, writing the crate, joining the
//! workspace, and the report printed afterwards.

use std::fs;
use std::path::{Path, PathBuf};

use minijinja::Value;
use serde::Serialize;

use crate::error::GenError;
use crate::name::PlatformName;
use crate::templates::{RenderedFile, TemplateSet};
use crate::workspace::{self, FoundWorkspace};

/// The version of nova this generator belongs to; version dependencies ask for it.
pub const NOVA_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The kind of platform generated when none is given.
pub const DEFAULT_PLATFORM: &str = "generic";

/// Where the generated crate takes nova from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dependencies {
    /// Inside a nova checkout: `{ workspace = true }` dependencies and lints, and the crate
    /// joins the workspace.
    Workspace,
    /// Path dependencies on the nova checkout at this path (relative to the crate when both are
    /// on the same file system root).
    Path(String),
    /// Version dependencies (`nova-core = "0.1.0"`) from the registry.
    Version,
}

impl Dependencies {
    fn mode(&self) -> &'static str {
        match self {
            Self::Workspace => "workspace",
            Self::Path(_) => "path",
            Self::Version => "version",
        }
    }
}

/// What to render: everything that decides the contents of the generated files.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RenderRequest {
    /// The platform's name.
    pub name: PlatformName,
    /// The kind of platform (`generic`, `jsonrpc`, or a kind of a user's template set).
    pub platform: String,
    /// Whether to render `tests/`.
    pub tests: bool,
    /// Where nova comes from.
    pub dependencies: Dependencies,
}

impl RenderRequest {
    /// A request for `name` and `platform`, with tests, inside a nova workspace.
    #[must_use]
    pub fn new(name: PlatformName, platform: impl Into<String>) -> Self {
        Self {
            name,
            platform: platform.into(),
            tests: true,
            dependencies: Dependencies::Workspace,
        }
    }

    /// Sets [`tests`](Self::tests).
    #[must_use]
    pub fn with_tests(mut self, tests: bool) -> Self {
        self.tests = tests;
        self
    }

    /// Sets [`dependencies`](Self::dependencies).
    #[must_use]
    pub fn with_dependencies(mut self, dependencies: Dependencies) -> Self {
        self.dependencies = dependencies;
        self
    }
}

/// The variables every template sees. Documented for template authors in the crate docs.
#[derive(Serialize)]
struct TemplateContext<'a> {
    name: &'a str,
    crate_name: String,
    crate_ident: String,
    type_prefix: String,
    title: String,
    env_prefix: String,
    endpoint: String,
    platform: &'a str,
    with_tests: bool,
    deps_mode: &'static str,
    nova_path: &'a str,
    nova_version: &'static str,
    rust_version: &'static str,
    command: String,
}

impl RenderRequest {
    fn context(&self) -> Value {
        let name = &self.name;
        let mut command = format!(
            "nova-gen integration {} --platform {}",
            name.as_str(),
            self.platform
        );
        if !self.tests {
            command.push_str(" --no-test");
        }
        Value::from_serialize(TemplateContext {
            name: name.as_str(),
            crate_name: name.crate_name(),
            crate_ident: name.crate_ident(),
            type_prefix: name.type_prefix(),
            title: name.title(),
            env_prefix: name.env_prefix(),
            endpoint: format!("wss://{}/ws", name.host()),
            platform: &self.platform,
            with_tests: self.tests,
            deps_mode: self.dependencies.mode(),
            nova_path: match &self.dependencies {
                Dependencies::Path(path) => path,
                _ => "",
            },
            nova_version: NOVA_VERSION,
            rust_version: env!("CARGO_PKG_RUST_VERSION"),
            command,
        })
    }
}

/// Renders templates into files, in memory.
///
/// ```
/// use nova_gen::{Generator, PlatformName, RenderRequest};
///
/// let generator = Generator::embedded();
/// assert_eq!(generator.kinds(), ["generic", "jsonrpc"]);
/// let request = RenderRequest::new(PlatformName::parse("acme")?, "jsonrpc");
/// let files = generator.render(&request)?;
/// let client = files.iter().find(|f| f.path == "src/client.rs").expect("a client");
/// assert!(client.contents.contains("pub struct AcmeClient"));
/// # Ok::<(), nova_gen::GenError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Generator {
    set: TemplateSet,
}

impl Generator {
    /// A generator with the templates compiled into nova-gen.
    #[must_use]
    pub fn embedded() -> Self {
        Self {
            set: TemplateSet::embedded(),
        }
    }

    /// A generator with the template set in `dir` (the layout of nova-gen's
    /// `templates/integration`: `common/` and a directory per kind).
    ///
    /// # Errors
    /// When `dir` cannot be read or holds no kinds of platform.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, GenError> {
        Ok(Self {
            set: TemplateSet::load(dir.as_ref())?,
        })
    }

    /// The kinds of platform this generator knows.
    #[must_use]
    pub fn kinds(&self) -> Vec<String> {
        self.set.kinds()
    }

    /// Renders every file of the crate, sorted by path.
    ///
    /// # Errors
    /// [`GenError::UnknownPlatform`] for a kind the set does not have; [`GenError::Template`]
    /// when a template fails (an undefined variable, a syntax error).
    pub fn render(&self, request: &RenderRequest) -> Result<Vec<RenderedFile>, GenError> {
        self.set
            .render(&request.platform, &request.context(), request.tests)
    }

    /// Renders the next steps printed after generating (`None` when the set has no
    /// `_next_steps.txt.j2`). `crate_dir` is the crate's directory as the user should see it.
    ///
    /// # Errors
    /// As [`render`](Self::render).
    pub fn render_next_steps(
        &self,
        request: &RenderRequest,
        crate_dir: &str,
    ) -> Result<Option<String>, GenError> {
        let context = minijinja::context! { crate_dir => crate_dir, ..request.context() };
        self.set.render_next_steps(&request.platform, &context)
    }
}

/// What `nova-gen integration` was asked to do.
///
/// ```
/// use nova_gen::Options;
///
/// let options = Options::new("acme").with_platform("jsonrpc").with_out("/tmp/platforms");
/// assert!(options.tests);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// The platform's name; the crate is `nova-NAME`.
    pub name: String,
    /// The kind of platform.
    pub platform: String,
    /// The directory the crate's directory is created in. Default: `platforms/` of the nova
    /// checkout the current directory is in, or else the current directory.
    pub out: Option<PathBuf>,
    /// Whether to generate `tests/`.
    pub tests: bool,
    /// Overwrite the generated files in an existing directory.
    pub force: bool,
    /// A nova checkout to take path dependencies on, when not generating inside one.
    pub nova_path: Option<PathBuf>,
    /// A user's template set instead of the embedded one.
    pub templates: Option<PathBuf>,
    /// Run `rustfmt` on the generated Rust files when it is installed, so they follow the
    /// formatting rules where they land (a long platform name makes long lines).
    pub format: bool,
}

impl Options {
    /// Options for `name`: the generic kind, with tests, in the default place.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            platform: DEFAULT_PLATFORM.to_owned(),
            out: None,
            tests: true,
            force: false,
            nova_path: None,
            templates: None,
            format: true,
        }
    }

    /// Sets [`platform`](Self::platform).
    #[must_use]
    pub fn with_platform(mut self, platform: impl Into<String>) -> Self {
        self.platform = platform.into();
        self
    }

    /// Sets [`out`](Self::out).
    #[must_use]
    pub fn with_out(mut self, out: impl Into<PathBuf>) -> Self {
        self.out = Some(out.into());
        self
    }

    /// Sets [`tests`](Self::tests).
    #[must_use]
    pub fn with_tests(mut self, tests: bool) -> Self {
        self.tests = tests;
        self
    }

    /// Sets [`force`](Self::force).
    #[must_use]
    pub fn with_force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Sets [`nova_path`](Self::nova_path).
    #[must_use]
    pub fn with_nova_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.nova_path = Some(path.into());
        self
    }

    /// Sets [`templates`](Self::templates).
    #[must_use]
    pub fn with_templates(mut self, dir: impl Into<PathBuf>) -> Self {
        self.templates = Some(dir.into());
        self
    }

    /// Sets [`format`](Self::format).
    #[must_use]
    pub fn with_format(mut self, format: bool) -> Self {
        self.format = format;
        self
    }
}

/// The crate joined a Cargo workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkspaceJoin {
    /// The workspace's `Cargo.toml`.
    pub manifest: PathBuf,
    /// The `members` entry (`platforms/nova-acme`).
    pub member: String,
    /// `false` when it was a member already (regenerating with `--force`, or a glob).
    pub added: bool,
}

/// What was generated.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Generated {
    /// The platform's name.
    pub name: PlatformName,
    /// The kind of platform.
    pub platform: String,
    /// The crate's directory.
    pub crate_dir: PathBuf,
    /// The crate's directory as shown to the user: relative to the current directory when
    /// inside it.
    pub display_dir: String,
    /// The files written, relative to the crate's directory, sorted.
    pub files: Vec<String>,
    /// Where the crate takes nova from.
    pub dependencies: Dependencies,
    /// The nova workspace it joined, if it was generated inside one.
    pub workspace: Option<WorkspaceJoin>,
    /// Another (not nova's) Cargo workspace the crate is inside: it must be added to that
    /// workspace's `members` by hand.
    pub foreign_workspace: Option<PathBuf>,
    /// The next steps rendered from the template set.
    pub next_steps: Option<String>,
    /// The directory paths are shown relative to.
    cwd: PathBuf,
    /// Why the generated Rust files could not be formatted, when formatting was asked for and
    /// failed (`rustfmt` missing, or rejecting a file of a user's template set).
    pub format_error: Option<String>,
}

impl Generated {
    /// The message to print: what was created, and how to get started (after the seed's
    /// `mix websockex_nova.gen.integration`).
    #[must_use]
    pub fn report(&self) -> String {
        let mut out = format!(
            "Platform integration {} generated successfully!\n\n",
            self.name.as_str()
        );
        out.push_str("The following files were created:\n");
        for file in &self.files {
            out.push_str(&format!("  * {}/{file}\n", self.display_dir));
        }
        if let Some(join) = &self.workspace {
            let (manifest, member) = (display(&self.cwd, &join.manifest), &join.member);
            out.push_str(&if join.added {
                format!("\nAdded \"{member}\" to the workspace members in {manifest}\n")
            } else {
                format!("\n\"{member}\" is already a workspace member in {manifest}\n")
            });
        }
        if let Some(manifest) = &self.foreign_workspace {
            out.push_str(&format!(
                "\nNote: {} is inside the Cargo workspace of {}: add it to that workspace's `members`.\n",
                self.display_dir,
                display(&self.cwd, manifest)
            ));
        }
        if let Some(error) = &self.format_error {
            out.push_str(&format!(
                "\nNote: the Rust files were left unformatted: {error}\n"
            ));
        }
        if let Some(steps) = &self.next_steps {
            out.push('\n');
            out.push_str(steps.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Generates the crate `nova-NAME` as `options` say, relative to the current directory.
///
/// # Errors
/// Any [`GenError`]: nothing is written unless the name, the kind, the target directory and
/// every template are fine.
pub fn generate(options: &Options) -> Result<Generated, GenError> {
    let cwd = std::env::current_dir().map_err(GenError::io("."))?;
    generate_in(&cwd, options)
}

/// [`generate`] with `cwd` as the current directory.
///
/// # Errors
/// As [`generate`].
pub fn generate_in(cwd: &Path, options: &Options) -> Result<Generated, GenError> {
    let name = PlatformName::parse(&options.name)?;
    let generator = match &options.templates {
        Some(dir) => Generator::from_dir(workspace::absolute(cwd, dir))?,
        None => Generator::embedded(),
    };
    generator.set.check_kind(&options.platform)?;

    let out = match &options.out {
        Some(out) => workspace::absolute(cwd, out),
        None => match workspace::find_workspace(cwd) {
            Some(FoundWorkspace {
                root,
                is_nova: true,
            }) => root.join("platforms"),
            _ => cwd.to_path_buf(),
        },
    };
    let crate_dir = out.join(name.crate_name());
    if !options.force && occupied(&crate_dir) {
        return Err(GenError::Exists { path: crate_dir });
    }

    let found = workspace::find_workspace(&out);
    let dependencies = match (&found, &options.nova_path) {
        (Some(FoundWorkspace { is_nova: true, .. }), _) => Dependencies::Workspace,
        (_, Some(path)) => Dependencies::Path(nova_path(cwd, path, &crate_dir)?),
        _ => Dependencies::Version,
    };
    let request = RenderRequest::new(name.clone(), options.platform.clone())
        .with_tests(options.tests)
        .with_dependencies(dependencies.clone());
    let files = generator.render(&request)?;
    let display_dir = display(cwd, &crate_dir);
    let next_steps = generator.render_next_steps(&request, &display_dir)?;

    for file in &files {
        let path = crate_dir.join(&file.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(GenError::io(parent))?;
        }
        fs::write(&path, &file.contents).map_err(GenError::io(&path))?;
    }

    let rust_files: Vec<PathBuf> = files
        .iter()
        .filter(|f| f.path.ends_with(".rs"))
        .map(|f| crate_dir.join(&f.path))
        .collect();
    let format_error = if options.format {
        rustfmt(&rust_files).err()
    } else {
        None
    };

    let (workspace, foreign_workspace) = match found {
        Some(FoundWorkspace {
            root,
            is_nova: true,
        }) => {
            let member = workspace::relative(&root, &crate_dir);
            let added = workspace::add_member(&root, &member)?;
            (
                Some(WorkspaceJoin {
                    manifest: root.join("Cargo.toml"),
                    member,
                    added,
                }),
                None,
            )
        }
        Some(FoundWorkspace {
            root,
            is_nova: false,
        }) => (None, Some(root.join("Cargo.toml"))),
        None => (None, None),
    };
    Ok(Generated {
        name,
        platform: options.platform.clone(),
        crate_dir,
        display_dir,
        files: files.into_iter().map(|f| f.path).collect(),
        dependencies,
        workspace,
        foreign_workspace,
        next_steps,
        cwd: cwd.to_path_buf(),
        format_error,
    })
}

/// `path` relative to `cwd` when inside it, else as it is.
fn display(cwd: &Path, path: &Path) -> String {
    match path.strip_prefix(cwd) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().replace('\\', "/"),
        _ => path.display().to_string(),
    }
}

/// Formats `files` in place with `rustfmt` (edition 2024, the configuration found beside them).
fn rustfmt(files: &[PathBuf]) -> Result<(), String> {
    if files.is_empty() {
        return Ok(());
    }
    let output = std::process::Command::new("rustfmt")
        .args(["--edition", "2024"])
        .args(files)
        .output()
        .map_err(|e| format!("cannot run rustfmt: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!("rustfmt failed: {}", stderr.trim()))
    }
}

/// Whether `dir` exists as a file or a non-empty directory.
fn occupied(dir: &Path) -> bool {
    match fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(_) => dir.exists(),
    }
}

/// Checks a `--nova-path` and writes it relative to the crate.
fn nova_path(cwd: &Path, path: &Path, crate_dir: &Path) -> Result<String, GenError> {
    let nova = workspace::absolute(cwd, path);
    if !nova.join("nova-core/Cargo.toml").is_file() {
        return Err(GenError::NovaPath {
            path: path.to_path_buf(),
            reason: "not a nova checkout: it has no nova-core/Cargo.toml".to_owned(),
        });
    }
    Ok(workspace::relative(crate_dir, &nova))
}
