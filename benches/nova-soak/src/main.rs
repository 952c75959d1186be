//! nova-soak: nova clients under random faults for a long time, and a slow consumer under a
//! flood (issue 18 items 2 and 4).
//!
//! ```sh
//! # The soak: seeded faults from the whole repertoire; exits non-zero on any broken invariant.
//! cargo run --release -p nova-soak -- soak --seed 7 --duration 30 --clients 24
//! # The slow consumer: 60 s without reading, under `Wait` and under `DropOldest`.
//! cargo run --release -p nova-soak -- slow-consumer --pause 60
//! ```
//!
//! Modules: [`soak`] runs the soak; [`faults`] draws the faults; [`relay`] and [`frame`] inject
//! the transport faults the simulators lack; [`platform`] wraps the simulators and adapters;
//! [`checker`] and [`reconnect`] hold the invariants; [`resources`] and [`recorder`] watch
//! memory, tasks and queues; [`slow`] is the slow-consumer scenario.

mod checker;
mod faults;
mod frame;
mod platform;
mod reconnect;
mod recorder;
mod relay;
mod resources;
mod slow;
mod soak;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use nova_core::OverflowPolicy;

use crate::platform::Platform;

/// Errors of the scenarios' set-up.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Panics anywhere in the process (counted by the panic hook; the soak fails on any).
pub(crate) static PANICS: AtomicU64 = AtomicU64::new(0);

#[derive(Parser, Debug)]
#[command(about = "nova under faults: a seeded soak and the slow-consumer measurements")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Clients of several platforms under seeded random faults, checked continuously.
    Soak {
        /// Seed of the fault schedule (printed; the same seed replays the same faults).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Seconds of faults (a settle period follows).
        #[arg(long, default_value_t = 30)]
        duration: u64,
        /// Clients, spread over the platforms in turn.
        #[arg(long, default_value_t = 24)]
        clients: usize,
        /// Comma-separated platforms.
        #[arg(long, default_value = "deribit,bybit")]
        platforms: String,
        /// Mean milliseconds between faults.
        #[arg(long, default_value_t = 250)]
        fault_every_ms: u64,
        /// The simulators' market tick, milliseconds.
        #[arg(long, default_value_t = 50)]
        tick_ms: u64,
        /// Seconds to settle after the faults stop, before the final checks.
        #[arg(long, default_value_t = 10)]
        settle: u64,
    },
    /// A consumer that stops reading under a flood, with each overflow policy.
    SlowConsumer {
        /// Seconds the consumer stops reading.
        #[arg(long, default_value_t = 60)]
        pause: u64,
        /// Which policy to measure.
        #[arg(long, value_enum, default_value_t = PolicyArg::Both)]
        policy: PolicyArg,
        /// Bytes per message.
        #[arg(long, default_value_t = 400)]
        size: usize,
        /// The inbound queue's capacity.
        #[arg(long, default_value_t = 1024)]
        capacity: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PolicyArg {
    Wait,
    DropOldest,
    Both,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        default_hook(info);
    }));
    let metrics = recorder::Metrics::install();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nova-soak: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Soak {
                seed,
                duration,
                clients,
                platforms,
                fault_every_ms,
                tick_ms,
                settle,
            } => {
                let mut list = Vec::new();
                for name in platforms.split(',') {
                    let p = Platform::parse(name).ok_or_else(|| {
                        format!("unknown platform `{name}`, expected deribit or bybit")
                    })?;
                    list.push(p);
                }
                if list.is_empty() || clients == 0 {
                    return Err("need at least one platform and one client".into());
                }
                soak::run(
                    soak::Options {
                        seed,
                        duration: Duration::from_secs(duration),
                        clients,
                        platforms: list,
                        fault_every: Duration::from_millis(fault_every_ms.max(1)),
                        tick: Duration::from_millis(tick_ms.max(1)),
                        settle: Duration::from_secs(settle),
                    },
                    metrics,
                )
                .await
            }
            Command::SlowConsumer {
                pause,
                policy,
                size,
                capacity,
            } => {
                let pause = Duration::from_secs(pause);
                let mut ok = true;
                if policy != PolicyArg::DropOldest {
                    ok &= slow::measure(OverflowPolicy::Wait, pause, size, capacity).await?;
                }
                if policy != PolicyArg::Wait {
                    ok &= slow::measure(OverflowPolicy::DropOldest, pause, size, capacity).await?;
                }
                Ok(ok)
            }
        }
    });
    // Tasks still running (simulators, relays) are dropped with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("nova-soak: {e}");
            ExitCode::FAILURE
        }
    }
}
