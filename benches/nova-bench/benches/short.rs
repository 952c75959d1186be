//! `cargo bench`: a short run of the benchmark binary (`nova-bench`), so that the usual command
//! measures something: notification throughput and request round trips, nova beside a bare
//! tokio-tungstenite + serde_json loop, with small counts and one run of each variant.
//!
//! The numbers in `BENCHMARKS.md` come from the full run, which takes minutes:
//! `cargo run --release -p nova-bench -- all`. Extra arguments to this target are ignored
//! (cargo passes `--bench` and any filter).

use std::process::{Command, ExitCode};

/// The scenarios, each a `nova-bench` command line.
const SCENARIOS: &[&[&str]] = &[
    &["throughput", "--messages", "200000", "--runs", "1"],
    &["rtt", "--requests", "5000", "--runs", "1"],
];

fn main() -> ExitCode {
    let binary = env!("CARGO_BIN_EXE_nova-bench");
    for args in SCENARIOS {
        println!("== nova-bench {}", args.join(" "));
        match Command::new(binary).args(*args).status() {
            Ok(status) if status.success() => {}
            Ok(status) => {
                eprintln!("nova-bench {}: {status}", args.join(" "));
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("cannot run {binary}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
