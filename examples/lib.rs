//! Library part of nova-examples: what the examples share with each other and with their tests.
//! The examples themselves live beside this crate.

use std::process::ExitCode;

#[path = "prometheus/mod.rs"]
pub mod prometheus;

/// Logs to stderr, so that stdout stays for the example's data; colours only on a terminal;
/// `RUST_LOG` overrides `default_filter`.
pub fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The exit code of an example: success, or the error on stderr (prefixed with the example's
/// name) and a failure code.
pub fn exit_code(name: &str, outcome: Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
