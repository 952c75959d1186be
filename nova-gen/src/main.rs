//! `nova-gen`: scaffolds nova platform integrations from templates.
//!
//! ```text
//! nova-gen integration NAME [--platform KIND] [--out DIR] [--no-test] [--force]
//!                           [--nova-path DIR] [--templates DIR]
//! ```
//!
//! Exit status: 0 on success, 1 when generation fails (the error and its causes are printed
//! on stderr), 2 for a command-line usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use nova_gen::{DEFAULT_PLATFORM, GenError, Options};

/// Scaffolds nova platform integrations from templates.
#[derive(Debug, Parser)]
#[command(name = "nova-gen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a platform integration crate `nova-NAME`
    ///
    /// Writes src/{adapter,client,message,subscription,types}.rs, lib.rs, Cargo.toml, a README
    /// and tests/{client_test,message_test}.rs. Inside a nova checkout the crate uses path
    /// dependencies through the workspace and is added to its members; elsewhere it uses
    /// version dependencies, or path dependencies on --nova-path.
    Integration(IntegrationArgs),
}

#[derive(Debug, Args)]
struct IntegrationArgs {
    /// The platform's name: lowercase letters, digits, `-` and `_` (e.g. `deribit`, `my-venue`)
    name: String,

    /// The kind of protocol: `generic` (JSON with an `op` field, like Bybit) or `jsonrpc`
    /// (JSON-RPC 2.0 with ids and subscription notifications, like Deribit)
    #[arg(short, long, value_name = "KIND", default_value = DEFAULT_PLATFORM)]
    platform: String,

    /// Directory to create `nova-NAME` in [default: `platforms/` of the nova checkout around
    /// the current directory, or else the current directory]
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Do not generate tests/
    #[arg(long)]
    no_test: bool,

    /// Overwrite the generated files if the crate's directory exists
    #[arg(long)]
    force: bool,

    /// Take path dependencies on the nova checkout at DIR (outside a nova checkout)
    #[arg(long, value_name = "DIR")]
    nova_path: Option<PathBuf>,

    /// Render the template set in DIR instead of the built-in one (same layout as nova-gen's
    /// templates/integration: common/ and a directory per kind)
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
}

fn main() -> ExitCode {
    let Command::Integration(args) = Cli::parse().command;
    let mut options = Options::new(args.name)
        .with_platform(args.platform)
        .with_tests(!args.no_test)
        .with_force(args.force);
    options.out = args.out;
    options.nova_path = args.nova_path;
    options.templates = args.templates;
    match nova_gen::generate(&options) {
        Ok(generated) => {
            print!("{}", generated.report());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprint!("{}", render_error(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error, each cause on its own line, and a template error's place and source lines.
fn render_error(error: &GenError) -> String {
    let mut out = format!("error: {error}\n");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        out.push_str(&format!("  caused by: {cause}\n"));
        if let Some(template_error) = cause.downcast_ref::<minijinja::Error>() {
            let info = template_error.display_debug_info().to_string();
            if !info.trim().is_empty() {
                out.push_str(&indent(&info));
            }
        }
        source = cause.source();
    }
    out
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_owned()
            } else {
                format!("    {l}\n")
            }
        })
        .collect()
}
