//! cluster_node: one node of a nova cluster sharing Deribit subscriptions.
//!
//! Joins the cluster on Redis (`--redis`; without it, an in-process cluster of this node alone),
//! connects a nova Deribit client to `--url`, and consumes every `--channel` through the
//! cluster: each channel is subscribed upstream by one node of the cluster only (the owner,
//! placed by region: `--platform-region` is Deribit's region, default `eu-west`), and every
//! node gets the data. Kill the owner and a survivor takes its channels over in under two
//! seconds; the consumers see a gap and, for books, its closing by a fresh snapshot.
//!
//! Output: one JSON line per message delivered on stdout,
//! `{"node":…,"channel":…,"owner":…,"data":…}` (`data`: the notification's `params.data` as
//! received), and one JSON line per cluster event (node joined/left/expired, lease
//! acquired/lost, failover with its duration, …) and per gap on stderr. Runs until SIGTERM or
//! Ctrl-C, then leaves the cluster (unsubscribing upstream and releasing its leases) and flushes
//! stdout. Sends of the Deribit client draw from a rate budget shared by the whole cluster.
//!
//! ```text
//! redis-server --port 6379 --save "" &
//! cargo run -p nova-examples --example cluster_node -- --redis redis://127.0.0.1:6379 \
//!     --node a --region eu-west --url wss://test.deribit.com/ws/api/v2 --channel book.BTC-PERPETUAL.100ms
//! cargo run -p nova-examples --example cluster_node -- --redis redis://127.0.0.1:6379 \
//!     --node b --region us-east --url wss://test.deribit.com/ws/api/v2 --channel book.BTC-PERPETUAL.100ms
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use nova::Client;
use nova_cluster::{
    Backend, ClientUpstream, Cluster, ClusterConfig, FeedEvent, GapReason, MemoryBackend,
    RedisBackend,
};
use nova_deribit::{DeribitAdapter, DeribitClient, DeribitConfig, Notification, TESTNET_URL};
use serde_json::json;
use tokio::sync::mpsc;

const USAGE: &str = "usage: cluster_node [--redis redis://HOST:PORT] --node NAME --region REGION \
[--url ws://HOST:PORT/ws/api/v2] --channel CH [--channel CH ...] [--platform-region REGION]";

struct Args {
    redis: Option<String>,
    node: String,
    region: String,
    url: String,
    channels: Vec<String>,
    platform_region: String,
}

fn parse_args() -> Result<Args, String> {
    let mut redis = None;
    let mut node = None;
    let mut region = None;
    let mut url = TESTNET_URL.to_owned();
    let mut channels = Vec::new();
    let mut platform_region = "eu-west".to_owned();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--redis" => redis = Some(value()?),
            "--node" => node = Some(value()?),
            "--region" => region = Some(value()?),
            "--url" => url = value()?,
            "--channel" => channels.push(value()?),
            "--platform-region" => platform_region = value()?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if channels.is_empty() {
        return Err("at least one --channel".to_owned());
    }
    Ok(Args {
        redis,
        node: node.ok_or("--node is required")?,
        region: region.ok_or("--region is required")?,
        url,
        channels,
        platform_region,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    // stderr carries the JSON event lines; logs stay at warnings.
    nova_examples::init_logging("warn,nova_cluster=off");
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    nova_examples::exit_code("cluster_node", run(args).await)
}

/// One line for stdout or stderr.
enum Line {
    Out(String),
    Err(String),
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let backend: Arc<dyn Backend> = match &args.redis {
        Some(url) => Arc::new(RedisBackend::connect(url, "nova")?),
        None => Arc::new(MemoryBackend::new("nova")),
    };
    let config = ClusterConfig::new(&args.node, &args.region)
        .platform_region("deribit", &args.platform_region);
    let cluster = Cluster::join_shared(config, backend).await?;
    let (lines, mut out) = mpsc::channel::<Line>(4096);

    // Cluster events, one JSON line each on stderr.
    let mut events = cluster.events();
    let tx = lines.clone();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(e) => {
                    if tx.send(Line::Err(e.to_json().to_string())).await.is_err() {
                        break;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    let line = json!({"event": "events_lagged", "count": n}).to_string();
                    let _ = tx.send(Line::Err(line)).await;
                }
                Err(_) => break,
            }
        }
    });

    // The Deribit client: its registry and its rate budget are the cluster's.
    let deribit = DeribitConfig::default().client_name("nova-cluster_node", "0.1.0");
    let limit = deribit.limits.rate_limit();
    let client_config = DeribitClient::config_builder(&args.url, &deribit)
        .name(args.node.as_str())
        .backoff(Duration::from_millis(100), Duration::from_secs(2))
        .build()?;
    let budget = cluster.rate_limiter("deribit", limit);
    let (client, unclaimed) = Client::connect_with(
        client_config,
        DeribitAdapter::new(deribit),
        Box::new(cluster.registry("deribit")),
        Some(Box::new(budget)),
    );
    drop(unclaimed);
    let shared = cluster.shared("deribit", ClientUpstream::deribit(client.clone()));

    for channel in &args.channels {
        let mut stream = shared.subscribe(channel.clone(), json!({})).await?;
        let tx = lines.clone();
        let node = args.node.clone();
        tokio::spawn(async move {
            let channel = stream.channel().to_owned();
            while let Some(event) = stream.recv().await {
                let line = match event {
                    FeedEvent::Message(d) => match Notification::parse(&d.message) {
                        Ok(n) => Line::Out(
                            json!({"node": node, "channel": channel, "owner": &*d.owner, "data": n.data})
                                .to_string(),
                        ),
                        Err(e) => Line::Err(
                            json!({"event": "undecodable", "node": node, "channel": channel, "error": e.to_string()})
                                .to_string(),
                        ),
                    },
                    other => Line::Err(feed_event_json(&node, &channel, &other).to_string()),
                };
                if tx.send(line).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(lines);

    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            line = out.recv() => match line {
                Some(Line::Out(l)) => {
                    writeln!(stdout, "{l}")?;
                    // Flush when nothing else is waiting, so readers see lines promptly.
                    if out.is_empty() {
                        stdout.flush()?;
                    }
                }
                Some(Line::Err(l)) => eprintln!("{l}"),
                None => break,
            },
            _ = sigterm.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    stdout.flush()?;
    drop(stdout);
    // A goodbye: unsubscribe upstream, release the leases, leave.
    cluster.leave().await;
    let _ = client.close(1000, "bye").await;
    // What the consumers had queued meanwhile is dropped with them; what was printed is flushed.
    eprintln!("{}", json!({"event": "stopped", "node": args.node}));
    Ok(())
}

fn feed_event_json(node: &str, channel: &str, event: &FeedEvent) -> serde_json::Value {
    let mut v = match event {
        FeedEvent::Gap(reason) => {
            let reason = match reason {
                GapReason::OwnerChanged { from, to } => {
                    json!({"reason": "owner_changed", "from": from, "to": to})
                }
                GapReason::Upstream { action } => json!({"reason": "upstream", "action": action}),
                GapReason::Lost { entries } => json!({"reason": "lost", "entries": entries}),
                GapReason::Joined => json!({"reason": "joined"}),
                other => json!({"reason": format!("{other:?}")}),
            };
            let mut v = json!({"event": "gap"});
            if let (Some(m), Some(r)) = (v.as_object_mut(), reason.as_object()) {
                m.extend(r.clone());
            }
            v
        }
        FeedEvent::GapClosed { value } => json!({"event": "gap_closed", "value": value}),
        FeedEvent::GapNotClosed { reason } => json!({"event": "gap_not_closed", "reason": reason}),
        FeedEvent::Lagged(n) => json!({"event": "lagged", "count": n}),
        FeedEvent::UpstreamRestored => json!({"event": "upstream_restored"}),
        FeedEvent::UpstreamFailed { reason } => {
            json!({"event": "upstream_failed", "reason": reason})
        }
        other => json!({"event": format!("{other:?}")}),
    };
    if let Some(m) = v.as_object_mut() {
        m.insert("node".into(), node.into());
        m.insert("channel".into(), channel.into());
    }
    v
}
