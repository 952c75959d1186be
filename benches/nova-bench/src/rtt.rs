//! Scenario 2: request round trip. Sequential JSON-RPC requests that the simulator answers at
//! once (`public/echo` returns its params); nova's `Client::request` against a bare loop that
//! sends the same text and reads until the response with the matching id.
//!
//! Both build the request text with the same `format!`, and both find the response's id with the
//! same borrowing serde peek (nova through the adapter's `message_type`). 1,000 warm-up requests
//! are not counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use nova_core::{Client, ClientConfig, Message, Request, RequestId};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::BoxError;
use crate::adapter::{BenchAdapter, response_id, rpc};
use crate::limits::{median, micros, quantile};
use crate::server::ServerThread;

const WARMUP: u64 = 1_000;
const PARAMS: &str = r#"{"instrument_name":"BTC-PERPETUAL","depth":1}"#;

/// Latency quantiles of one variant (medians over the runs).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Latency {
    /// Median, µs.
    pub(crate) p50: f64,
    /// 99th percentile, µs.
    pub(crate) p99: f64,
    /// Slowest, µs.
    pub(crate) max: f64,
}

/// Bare and nova latencies.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Report {
    /// The bare loop.
    pub(crate) bare: Latency,
    /// nova's `Client::request`.
    pub(crate) nova: Latency,
}

/// Runs both variants `runs` times with `requests` requests each, and prints the table.
pub(crate) async fn run(
    servers: Arc<ServerThread>,
    requests: u64,
    runs: usize,
) -> Result<Report, BoxError> {
    println!(
        "== request round trip: {requests} sequential requests (+{WARMUP} warm-up), server answers at once, {runs} run(s), median of each quantile =="
    );
    let mut bare = Vec::new();
    let mut nova = Vec::new();
    for _ in 0..runs {
        bare.push(bare_run(&servers, requests).await?);
        nova.push(nova_run(&servers, requests).await?);
    }
    let summarize = |all: &[Latency]| Latency {
        p50: median(&all.iter().map(|l| l.p50).collect::<Vec<_>>()),
        p99: median(&all.iter().map(|l| l.p99).collect::<Vec<_>>()),
        max: median(&all.iter().map(|l| l.max).collect::<Vec<_>>()),
    };
    let report = Report {
        bare: summarize(&bare),
        nova: summarize(&nova),
    };
    println!(
        "  {:<34} {:>9} {:>9} {:>9}",
        "variant", "p50 µs", "p99 µs", "max µs"
    );
    for (label, l) in [
        ("bare tokio-tungstenite + serde", report.bare),
        ("nova Client::request", report.nova),
    ] {
        println!("  {label:<34} {:>9.1} {:>9.1} {:>9.1}", l.p50, l.p99, l.max);
    }
    println!(
        "  nova - bare: p50 {:+.1} µs, p99 {:+.1} µs   ratio p99 {:.2}",
        report.nova.p50 - report.bare.p50,
        report.nova.p99 - report.bare.p99,
        report.nova.p99 / report.bare.p99
    );
    Ok(report)
}

fn latency(mut samples: Vec<Duration>) -> Latency {
    samples.sort_unstable();
    Latency {
        p50: micros(quantile(&samples, 500)),
        p99: micros(quantile(&samples, 990)),
        max: micros(samples.last().copied().unwrap_or_default()),
    }
}

async fn bare_run(servers: &ServerThread, requests: u64) -> Result<Latency, BoxError> {
    let server = servers.json_rpc().await?;
    let tcp = TcpStream::connect(server.server().addr()).await?;
    tcp.set_nodelay(true)?;
    let (mut ws, _) = tokio_tungstenite::client_async(server.url(), tcp).await?;
    let mut samples = Vec::with_capacity(usize::try_from(requests)?);
    for id in 1..=WARMUP + requests {
        let start = Instant::now();
        ws.send(WsMessage::text(rpc(id, "public/echo", PARAMS)))
            .await?;
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Text(t))) if response_id(t.as_bytes()) == Some(id) => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Err("closed".into()),
            }
        }
        if id > WARMUP {
            samples.push(start.elapsed());
        }
    }
    let _ = ws.close(None).await;
    Ok(latency(samples))
}

pub(crate) async fn nova_run(servers: &ServerThread, requests: u64) -> Result<Latency, BoxError> {
    let server = servers.json_rpc().await?;
    let config = ClientConfig::builder(server.url()).name("bench").build()?;
    let (client, _messages) = Client::connect(config, BenchAdapter::new());
    client.wait_connected(Duration::from_secs(10)).await?;
    let mut samples = Vec::with_capacity(usize::try_from(requests)?);
    for i in 1..=WARMUP + requests {
        let start = Instant::now();
        let request = Request::new(|id| {
            let n = match id {
                RequestId::Num(n) => *n,
                RequestId::Str(_) => 0,
            };
            Message::text(rpc(n, "public/echo", PARAMS))
        });
        client.request(request).await?;
        if i > WARMUP {
            samples.push(start.elapsed());
        }
    }
    client.close(1000, "done").await?;
    Ok(latency(samples))
}
