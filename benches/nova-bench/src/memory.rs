//! Scenario 3: memory per idle connection, and the most concurrent nova connections one
//! process holds.
//!
//! Every measurement runs in its own child process (`nova-bench memory-client`), so that what
//! one variant allocated and freed cannot flatter or burden the next, and the idle servers run
//! in further child processes (`nova-bench serve-idle`), each listening on its own loopback
//! address (127.0.0.2, 127.0.0.3, ...) and holding at most [`PER_SERVER`] connections, so that
//! neither the servers' memory nor their file descriptors count against the client, and the
//! ephemeral port range (one per destination address) is not the limit.
//!
//! A client child raises `RLIMIT_NOFILE` as far as it may, reads its RSS from
//! `/proc/self/statm`, opens the connections (128 handshakes in flight), waits a second, reads
//! its RSS again and prints the difference divided by the number of connections. A bare
//! connection is a tokio-tungstenite stream with its default configuration and a task reading
//! it (an application must read to notice anything); a nova connection is `Client::connect` with
//! `DefaultHandler` and its `Messages`, both held.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use nova_core::{Client, ClientConfig, DefaultHandler};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

use crate::BoxError;
use crate::limits::{Rss, raise_nofile};

/// The most connections one idle-server process holds (below the file limit of 20,000 here).
const PER_SERVER: usize = 15_000;

/// Handshakes in flight at once.
const IN_FLIGHT: usize = 128;

/// What a client child measured.
#[derive(Clone, Debug, Default)]
pub(crate) struct Measured {
    /// Connections held.
    pub(crate) connections: u64,
    /// RSS before opening them, bytes.
    pub(crate) rss_before: u64,
    /// RSS with all of them open, bytes.
    pub(crate) rss_after: u64,
    /// The error that stopped the run, if one did.
    pub(crate) error: Option<String>,
    /// The soft open-file limit in force.
    pub(crate) nofile: u64,
}

impl Measured {
    /// RSS growth per connection, bytes.
    pub(crate) fn per_connection(&self) -> f64 {
        if self.connections == 0 {
            return 0.0;
        }
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.connections as f64
    }
}

/// The memory scenario's results.
#[derive(Clone, Debug)]
pub(crate) struct Report {
    /// Bare at `connections`.
    pub(crate) bare: Measured,
    /// nova at `connections`.
    pub(crate) nova: Measured,
    /// The probe for the most nova connections, when asked for.
    pub(crate) max: Option<Measured>,
}

/// Which client a child measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Kind {
    /// tokio-tungstenite with its defaults.
    Bare,
    /// nova with `DefaultHandler`.
    Nova,
}

/// Runs the scenario: idle memory of bare and nova at `connections`, then, when
/// `max_connections` is given, the most nova connections one process holds up to that number.
pub(crate) async fn run(
    connections: usize,
    max_connections: Option<usize>,
) -> Result<Report, BoxError> {
    println!(
        "== idle memory per connection at {connections} connections (client RSS growth / connections; servers in child processes) =="
    );
    let most = connections.max(max_connections.unwrap_or(0));
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for k in 0..most.div_ceil(PER_SERVER) {
        let (child, addr) = spawn_server(k).await?;
        servers.push(child);
        addrs.push(addr);
    }
    let result = measure_all(&addrs, connections, max_connections).await;
    for mut child in servers {
        let _ = child.kill().await;
    }
    result
}

async fn measure_all(
    addrs: &[SocketAddr],
    connections: usize,
    max_connections: Option<usize>,
) -> Result<Report, BoxError> {
    let bare = client_child(Kind::Bare, addrs, connections, false).await?;
    print_measured("bare tokio-tungstenite (defaults)", &bare, None);
    let nova = client_child(Kind::Nova, addrs, connections, false).await?;
    print_measured("nova (DefaultHandler)", &nova, Some(&bare));
    let max = match max_connections {
        Some(n) => {
            println!("== most concurrent nova connections in one process (goal {n}) ==");
            let m = client_child(Kind::Nova, addrs, n, true).await?;
            println!(
                "  nova held {} connections (open-file limit {}), {:.1} KiB each; stopped by: {}",
                m.connections,
                m.nofile,
                m.per_connection() / 1024.0,
                m.error
                    .as_deref()
                    .unwrap_or("nothing: the goal was reached")
            );
            Some(m)
        }
        None => {
            println!("  (most concurrent connections: not probed; add --max-connections 100000)");
            None
        }
    };
    Ok(Report { bare, nova, max })
}

fn print_measured(label: &str, m: &Measured, bare: Option<&Measured>) {
    let ratio = bare.map_or(String::new(), |b| {
        format!("ratio {:.2}", m.per_connection() / b.per_connection())
    });
    println!(
        "  {label:<34} {:>8.1} KiB per connection  ({} connections, RSS {:.1} → {:.1} MiB)  {ratio}",
        m.per_connection() / 1024.0,
        m.connections,
        m.rss_before as f64 / 1048576.0,
        m.rss_after as f64 / 1048576.0,
    );
    if let Some(e) = &m.error {
        println!("    error: {e}");
    }
}

async fn spawn_server(k: usize) -> Result<(Child, SocketAddr), BoxError> {
    let host = u8::try_from(k + 2).map_err(|_| "too many server processes")?;
    let listen = SocketAddr::from(([127, 0, 0, host], 0));
    let mut child = Command::new(std::env::current_exe()?)
        .arg("serve-idle")
        .arg("--listen")
        .arg(listen.to_string())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await??
        .ok_or("the server exited")?;
    let addr = line
        .strip_prefix("READY ")
        .ok_or_else(|| format!("unexpected server output: {line}"))?
        .parse()?;
    Ok((child, addr))
}

async fn client_child(
    kind: Kind,
    addrs: &[SocketAddr],
    connections: usize,
    until_failure: bool,
) -> Result<Measured, BoxError> {
    let servers: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    let mut command = Command::new(std::env::current_exe()?);
    command
        .arg("memory-client")
        .arg("--kind")
        .arg(match kind {
            Kind::Bare => "bare",
            Kind::Nova => "nova",
        })
        .arg("--connections")
        .arg(connections.to_string())
        .arg("--servers")
        .arg(servers.join(","))
        .kill_on_drop(true);
    if until_failure {
        command.arg("--until-failure");
    }
    let output = command.output().await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .ok_or_else(|| {
            format!(
                "memory-client printed no result: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    let mut m = Measured::default();
    for field in line.split('\t') {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        match key {
            "connections" => m.connections = value.parse()?,
            "rss_before" => m.rss_before = value.parse()?,
            "rss_after" => m.rss_after = value.parse()?,
            "nofile" => m.nofile = value.parse()?,
            "error" if !value.is_empty() => m.error = Some(value.to_owned()),
            _ => {}
        }
    }
    Ok(m)
}

/// What one connection keeps alive (held, never read: dropping it would close the connection).
#[allow(dead_code)]
enum Held {
    Bare(tokio::task::JoinHandle<()>),
    Nova(Client, nova_core::Messages),
}

async fn open(kind: Kind, addr: SocketAddr) -> Result<Held, BoxError> {
    let url = format!("ws://{addr}/");
    match kind {
        Kind::Bare => {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let (mut ws, _) = tokio_tungstenite::client_async(url, tcp).await?;
            Ok(Held::Bare(tokio::spawn(async move {
                while let Some(Ok(_)) = ws.next().await {}
            })))
        }
        Kind::Nova => {
            let config = ClientConfig::builder(url)
                .name("idle")
                .max_reconnect_attempts(Some(0))
                .build()?;
            let (client, messages) = Client::connect(config, DefaultHandler);
            client.wait_connected(Duration::from_secs(20)).await?;
            Ok(Held::Nova(client, messages))
        }
    }
}

/// The child side: opens `connections` connections round-robin over `servers`, measures, and
/// prints one `RESULT` line. With `until_failure`, the first failed connection stops the run and
/// the count reached is reported instead of an error.
pub(crate) async fn client(
    kind: Kind,
    servers: &[SocketAddr],
    connections: usize,
    until_failure: bool,
) -> Result<(), BoxError> {
    let (soft, _) = raise_nofile();
    if servers.is_empty() {
        return Err("no servers".into());
    }
    // Settle the runtime's own allocations before the baseline.
    let mut rss = Rss::open()?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss.bytes();
    let mut held: Vec<Held> = Vec::with_capacity(connections);
    let mut tasks = JoinSet::new();
    let mut launched = 0usize;
    let mut error: Option<String> = None;
    while held.len() < connections {
        while error.is_none() && launched < connections && tasks.len() < IN_FLIGHT {
            let addr = servers[launched % servers.len()];
            tasks.spawn(open(kind, addr));
            launched += 1;
        }
        match tasks.join_next().await {
            Some(Ok(Ok(h))) => held.push(h),
            Some(Ok(Err(e))) => {
                error.get_or_insert_with(|| e.to_string());
            }
            Some(Err(e)) => {
                error.get_or_insert_with(|| e.to_string());
            }
            None => break,
        }
    }
    if let (Some(e), false) = (&error, until_failure) {
        return Err(format!("{} connections open, then: {e}", held.len()).into());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss.bytes();
    println!(
        "RESULT connections={}\trss_before={before}\trss_after={after}\tnofile={}\terror={}",
        held.len(),
        soft.unwrap_or(0),
        error.unwrap_or_default().replace(['\t', '\n'], " ")
    );
    // Exit without closing each connection: the servers are killed right after.
    std::process::exit(0);
}
