//! `nova-bench`: nova against a bare tokio-tungstenite + serde_json client, side by side in one
//! run, on 127.0.0.1.
//!
//! ```text
//! cargo run --release -p nova-bench -- all
//! cargo run --release -p nova-bench -- throughput --messages 1000000 --runs 3
//! cargo run --release -p nova-bench -- memory --connections 10000 --max-connections 100000
//! cargo run --release -p nova-bench -- storm --clients 1000 --down-ms 1000
//! ```
//!
//! The measured clients run on a multi-threaded tokio runtime (`--workers`, default: one worker
//! per CPU, as `#[tokio::main]` gives); the test-kit servers run on a separate thread with their
//! own runtime, and the idle servers of the memory scenario in child processes. See
//! `BENCHMARKS.md` at the workspace root for the setup and the results.

mod adapter;
mod limits;
mod memory;
mod payload;
mod reconnect;
mod rtt;
mod server;
mod storm;
mod telemetry;
mod throughput;

use std::net::SocketAddr;
use std::sync::Arc;

use clap::{Parser, ValueEnum};

use crate::server::ServerThread;

/// The error type of the benchmark: anything, with its message.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Notifications per second: bare, nova stream, nova handler, nova Messages.
    Throughput,
    /// Request round trip p50 / p99 / max: bare and nova.
    Rtt,
    /// Idle memory per connection, bare and nova; the most nova connections (--max-connections).
    Memory,
    /// From a server drop to every subscription restored.
    Reconnect,
    /// nova with telemetry off, on with a Prometheus recorder, and with a handler attached.
    Telemetry,
    /// Everything above, then a summary against DESIGN.md's targets.
    All,
    /// A reconnect storm: many clients whose server dies at once and comes back.
    Storm,
    /// (internal) An idle WebSocket server for the memory scenario.
    #[value(hide = true)]
    ServeIdle,
    /// (internal) One measured client of the memory scenario.
    #[value(hide = true)]
    MemoryClient,
}

/// nova's benchmarks against bare tokio-tungstenite + serde_json.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The scenario.
    scenario: Scenario,
    /// Notifications in the throughput flood.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Sequential requests in the round-trip scenario.
    #[arg(long, default_value_t = 20_000)]
    requests: u64,
    /// Idle connections in the memory scenario.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Also find the most concurrent nova connections one process holds, up to this many.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Clients in the storm scenario.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// How long the server stays down in the storm scenario, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    down_ms: u64,
    /// Subscriptions restored in the reconnect scenario.
    #[arg(long, default_value_t = 100)]
    subscriptions: usize,
    /// Server drops in the reconnect scenario.
    #[arg(long, default_value_t = 5)]
    drops: usize,
    /// Runs of each throughput / round-trip variant (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Run only the throughput variants whose label contains this (e.g. `stream`, `bare`).
    #[arg(long)]
    only: Option<String>,
    /// Worker threads of the measured client's runtime (0: a current-thread runtime).
    #[arg(long)]
    workers: Option<usize>,
    /// (serve-idle) The address to listen on.
    #[arg(long, hide = true)]
    listen: Option<SocketAddr>,
    /// (memory-client) Comma-separated server addresses.
    #[arg(long, hide = true, value_delimiter = ',')]
    servers: Vec<SocketAddr>,
    /// (memory-client) Which client.
    #[arg(long, hide = true, value_enum)]
    kind: Option<memory::Kind>,
    /// (memory-client) Stop at the first failure and report the count.
    #[arg(long, hide = true)]
    until_failure: bool,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("nova-bench: {e}");
        std::process::exit(1);
    }
}

fn runtime(workers: Option<usize>) -> Result<(tokio::runtime::Runtime, String), BoxError> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    match workers.unwrap_or(cpus) {
        0 => Ok((
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            "current-thread".to_owned(),
        )),
        n => Ok((
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(n)
                .enable_all()
                .build()?,
            format!("multi-thread, {n} worker(s)"),
        )),
    }
}

fn run(args: Args) -> Result<(), BoxError> {
    match args.scenario {
        Scenario::ServeIdle => {
            let listen = args.listen.ok_or("--listen is required")?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            return rt.block_on(server::serve_idle(listen));
        }
        Scenario::MemoryClient => {
            let kind = args.kind.ok_or("--kind is required")?;
            let (rt, _) = runtime(args.workers)?;
            let servers = args.servers.clone();
            return rt.block_on(async move {
                tokio::spawn(async move {
                    memory::client(kind, &servers, args.connections, args.until_failure).await
                })
                .await?
            });
        }
        _ => {}
    }
    let (rt, flavor) = runtime(args.workers)?;
    print_machine(&flavor);
    let servers = Arc::new(ServerThread::start()?);
    // Measured code runs in a spawned task, on the runtime's workers.
    let outcome =
        rt.block_on(
            async move { tokio::spawn(async move { scenarios(&args, servers).await }).await? },
        );
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    outcome
}

async fn scenarios(args: &Args, servers: Arc<ServerThread>) -> Result<(), BoxError> {
    let all = args.scenario == Scenario::All;
    let mut tput = None;
    let mut rtt = None;
    let mut mem = None;
    let mut rec = None;
    if all || args.scenario == Scenario::Throughput {
        tput = Some(
            throughput::run(
                servers.clone(),
                args.messages,
                args.runs,
                args.only.as_deref(),
            )
            .await?,
        );
    }
    if all || args.scenario == Scenario::Rtt {
        rtt = Some(rtt::run(servers.clone(), args.requests, args.runs).await?);
    }
    if all || args.scenario == Scenario::Memory {
        mem = Some(memory::run(args.connections, args.max_connections).await?);
    }
    if all || args.scenario == Scenario::Reconnect {
        rec = Some(reconnect::run(servers.clone(), args.subscriptions, args.drops).await?);
    }
    if args.scenario == Scenario::Storm {
        storm::run(
            servers.clone(),
            args.clients,
            std::time::Duration::from_millis(args.down_ms),
        )
        .await?;
    }
    let mut tel = None;
    if all || args.scenario == Scenario::Telemetry {
        let messages = args.messages.min(500_000);
        let requests = args.requests.min(10_000);
        tel = Some(telemetry::run(servers.clone(), messages, requests, args.runs).await?);
    }
    if all {
        summary(
            tput.as_ref(),
            rtt.as_ref(),
            mem.as_ref(),
            rec.as_ref(),
            tel.as_ref(),
        );
    }
    Ok(())
}

fn verdict(met: bool) -> &'static str {
    if met { "MET" } else { "NOT MET" }
}

fn summary(
    tput: Option<&throughput::Report>,
    rtt: Option<&rtt::Report>,
    mem: Option<&memory::Report>,
    rec: Option<&reconnect::Report>,
    tel: Option<&telemetry::Report>,
) {
    println!("== summary against DESIGN.md's performance bar ==");
    if let Some(t) = tput {
        let ratio = t.shipped_stream_ratio();
        println!(
            "  throughput via the shipped adapters' streams (worst of nova-gen jsonrpc, nova-deribit typed): ratio {ratio:.2} (target ≥ 0.90): {}",
            verdict(ratio >= 0.90)
        );
        let ratio = t.messages_ratio();
        println!(
            "  throughput via Messages: ratio {ratio:.2} (target ≥ 0.97): {}",
            verdict(ratio >= 0.97)
        );
    }
    if let Some(r) = rtt {
        let delta = r.nova.p99 - r.bare.p99;
        println!(
            "  request p99: nova {:.1} µs vs bare {:.1} µs, {delta:+.1} µs (target ≤ +3 µs): {}",
            r.nova.p99,
            r.bare.p99,
            verdict(delta <= 3.0)
        );
    }
    if let Some(m) = mem {
        let kib = m.nova.per_connection() / 1024.0;
        println!(
            "  idle memory: nova {kib:.1} KiB per connection, bare {:.1} KiB (target ≤ 16 KiB): {}",
            m.bare.per_connection() / 1024.0,
            verdict(kib <= 16.0)
        );
        match &m.max {
            Some(max) => println!(
                "  concurrent nova connections in one process: {} (target 100000): {}",
                max.connections,
                verdict(max.connections >= 100_000)
            ),
            None => {
                println!("  concurrent nova connections: not probed (add --max-connections 100000)")
            }
        }
    }
    if let Some(r) = rec {
        println!(
            "  restore of the subscriptions after a drop, reconnecting at once as bare does: {:.2} ms, bare by hand {:.2} ms, ratio {:.2} (target <= 2): {}; with a 1 ms backoff: ratio {:.2}; from connected again: ratio {:.2}",
            r.nova_at_once_ms,
            r.bare_ms,
            r.nova_at_once_ms / r.bare_ms,
            verdict(r.nova_at_once_ms <= 2.0 * r.bare_ms),
            r.nova_ms / r.bare_ms,
            r.nova_restore_ms / r.bare_restore_ms
        );
    }
    if let Some(t) = tel {
        let off = t.rows.first().map_or(0.0, |r| r.1);
        let parts: Vec<String> = t
            .rows
            .iter()
            .skip(1)
            .map(|(label, rate, _, p99)| {
                format!("{label}: ratio {:.2}, p99 {p99:.1} µs", rate / off)
            })
            .collect();
        println!(
            "  telemetry (vs off, p99 off {:.1} µs): {} (no target)",
            t.rows.first().map_or(0.0, |r| r.3),
            parts.join("; ")
        );
    }
}

fn print_machine(flavor: &str) {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    println!(
        "nova-bench: {cpus} CPU(s), {model}; client runtime {flavor}; servers on their own thread and runtime (memory: child processes); 127.0.0.1"
    );
}
