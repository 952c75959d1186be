//! Scenario 4: from a server drop to every subscription restored.
//!
//! A nova client holds `subscriptions` subscription streams on one connection. The server
//! drops the TCP connection (`SO_LINGER` 0, so the client sees a reset); the clock runs until
//! every stream has yielded [`SubscriptionEvent::Restored`] (nova reconnected, re-subscribed each
//! channel and verified each ack). The client's backoff is set to 1 ms without jitter (and every
//! connection counts as stable, so the delay does not double from drop to drop): the figure is
//! nova's own work plus that 1 ms (which tokio's millisecond timer makes 1 to 2 ms). The bare
//! reference does by hand the least that restores the same state: on the read error it
//! reconnects at once, writes the same subscribe requests pipelined, and waits for every ack.
//! nova is measured twice: with that backoff, and with a `handle_disconnect` that reconnects at
//! once (`ReconnectDecision::after(0)`), which is what the bare loop does. Both are also timed
//! from connected again (nova's `Connected` event) to everything restored, which leaves the
//! backoff out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use nova_core::{Client, ClientConfig, LifecycleEvent, SubscriptionEvent};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::BoxError;
use crate::adapter::{BenchAdapter, response_id, rpc};
use crate::limits::{median, micros};
use crate::server::ServerThread;

const LIMIT: Duration = Duration::from_secs(10);

/// Median times from the drop to everything restored, in ms.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Report {
    /// The bare reconnect-and-resubscribe loop.
    pub(crate) bare_ms: f64,
    /// nova, with its backoff (1 ms).
    pub(crate) nova_ms: f64,
    /// nova reconnecting at once (`handle_disconnect` answers `after(0)`), as the bare loop does.
    pub(crate) nova_at_once_ms: f64,
    /// The bare loop, from connected again to every ack.
    pub(crate) bare_restore_ms: f64,
    /// nova, from connected again (its `Connected` event) to every stream restored.
    pub(crate) nova_restore_ms: f64,
}

/// One drop: microseconds from the drop to connected again, and to everything restored.
#[derive(Clone, Copy, Debug)]
struct Sample {
    connected_us: f64,
    restored_us: f64,
}

fn channel(i: usize) -> String {
    format!("book.INSTR-{i}.100ms")
}

/// Runs `rounds` drops with `subscriptions` subscriptions, bare then nova, and prints the table.
pub(crate) async fn run(
    servers: Arc<ServerThread>,
    subscriptions: usize,
    rounds: usize,
) -> Result<Report, BoxError> {
    println!(
        "== reconnect: server drops the connection, time until all {subscriptions} subscriptions are restored, {rounds} drop(s), median =="
    );
    let bare = bare_run(&servers, subscriptions, rounds).await?;
    let nova = nova_run(&servers, subscriptions, rounds, BenchAdapter::new()).await?;
    let at_once = nova_run(
        &servers,
        subscriptions,
        rounds,
        BenchAdapter::reconnecting_at_once(),
    )
    .await?;
    let total =
        |v: &[Sample]| median(&v.iter().map(|s| s.restored_us).collect::<Vec<_>>()) / 1000.0;
    let restore = |v: &[Sample]| {
        median(
            &v.iter()
                .map(|s| s.restored_us - s.connected_us)
                .collect::<Vec<_>>(),
        ) / 1000.0
    };
    let report = Report {
        bare_ms: total(&bare),
        nova_ms: total(&nova),
        nova_at_once_ms: total(&at_once),
        bare_restore_ms: restore(&bare),
        nova_restore_ms: restore(&nova),
    };
    let show = |v: &[Sample]| {
        v.iter()
            .map(|s| format!("{:.2}", s.restored_us / 1000.0))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "  {:<34} {:>8.2} ms   drops (ms): {}",
        "bare reconnect + resubscribe",
        report.bare_ms,
        show(&bare)
    );
    println!(
        "  {:<34} {:>8.2} ms   drops (ms): {}   ratio {:.2} (nova backoff 1 ms, jitter 0)",
        "nova (restore verified by acks)",
        report.nova_ms,
        show(&nova),
        report.nova_ms / report.bare_ms
    );
    println!(
        "  {:<34} {:>8.2} ms   drops (ms): {}   ratio {:.2} (handle_disconnect: after(0))",
        "nova, reconnecting at once",
        report.nova_at_once_ms,
        show(&at_once),
        report.nova_at_once_ms / report.bare_ms
    );
    println!(
        "  of which from connected again to all restored: bare {:.2} ms, nova {:.2} ms, ratio {:.2}",
        report.bare_restore_ms,
        report.nova_restore_ms,
        report.nova_restore_ms / report.bare_restore_ms
    );
    Ok(report)
}

async fn nova_run(
    servers: &ServerThread,
    subscriptions: usize,
    rounds: usize,
    adapter: BenchAdapter,
) -> Result<Vec<Sample>, BoxError> {
    let server = servers.json_rpc().await?;
    let config = ClientConfig::builder(server.url())
        .name("bench")
        .backoff(Duration::from_millis(1), Duration::from_secs(1))
        .jitter(0.0)
        // Each connection counts as stable, so every drop starts over at the 1 ms delay
        // (otherwise the backoff doubles from one drop to the next).
        .stable_after(Duration::from_millis(1))
        .build()?;
    let (client, _messages) = Client::connect(config, adapter);
    client.wait_connected(LIMIT).await?;
    let mut streams = Vec::with_capacity(subscriptions);
    for i in 0..subscriptions {
        streams.push(
            client
                .subscribe(channel(i), serde_json::Value::Null)
                .await?,
        );
    }
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let conn = server
            .server()
            .connections()
            .pop()
            .ok_or("no server connection")?;
        // When the client is connected again, seen by a task of its own (the lifecycle ring is
        // small, and the streams are read below).
        let mut events = client.events();
        let connected = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(LifecycleEvent::Connected { .. }) => return Some(Instant::now()),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        let start = Instant::now();
        conn.drop_tcp();
        for stream in &mut streams {
            loop {
                match tokio::time::timeout(LIMIT, stream.recv()).await? {
                    Some(SubscriptionEvent::Restored) => break,
                    Some(_) => {}
                    None => return Err("subscription stream ended".into()),
                }
            }
        }
        let restored_us = micros(start.elapsed());
        let connected_at = tokio::time::timeout(LIMIT, connected)
            .await??
            .ok_or("no Connected event")?;
        samples.push(Sample {
            connected_us: micros(connected_at.duration_since(start)),
            restored_us,
        });
        // Let the server register the new connection before the next drop.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(streams);
    client.close(1000, "done").await?;
    Ok(samples)
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

/// Connects, subscribes and waits for the acks; returns the stream and when it was connected.
async fn bare_connect_and_subscribe(
    addr: std::net::SocketAddr,
    url: &str,
    subscriptions: usize,
    next_id: &mut u64,
) -> Result<(Ws, Instant), BoxError> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (mut ws, _) = tokio_tungstenite::client_async(url, tcp).await?;
    let connected = Instant::now();
    let first = *next_id;
    for i in 0..subscriptions {
        let params = format!(r#"{{"channels":["{}"]}}"#, channel(i));
        ws.feed(WsMessage::text(rpc(*next_id, "public/subscribe", &params)))
            .await?;
        *next_id += 1;
    }
    ws.flush().await?;
    let mut acked = 0;
    while acked < subscriptions {
        match ws.next().await {
            Some(Ok(WsMessage::Text(t))) => {
                if response_id(t.as_bytes()).is_some_and(|id| id >= first && id < *next_id) {
                    acked += 1;
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("closed before the acks".into()),
        }
    }
    Ok((ws, connected))
}

async fn bare_run(
    servers: &ServerThread,
    subscriptions: usize,
    rounds: usize,
) -> Result<Vec<Sample>, BoxError> {
    let server = servers.json_rpc().await?;
    let addr = server.server().addr();
    let url = server.url();
    let mut next_id = 1;
    let (mut ws, _) = bare_connect_and_subscribe(addr, &url, subscriptions, &mut next_id).await?;
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let conn = server
            .server()
            .connections()
            .pop()
            .ok_or("no server connection")?;
        let start = Instant::now();
        conn.drop_tcp();
        // Read until the connection is seen to be gone.
        while let Some(Ok(_)) = tokio::time::timeout(LIMIT, ws.next()).await? {}
        let (next, connected) =
            bare_connect_and_subscribe(addr, &url, subscriptions, &mut next_id).await?;
        ws = next;
        samples.push(Sample {
            connected_us: micros(connected.duration_since(start)),
            restored_us: micros(start.elapsed()),
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = ws.close(None).await;
    Ok(samples)
}
