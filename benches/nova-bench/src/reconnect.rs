//! Scenario 4: from a server drop to every subscription restored.
//!
//! A nova client holds `subscriptions` subscription streams on one connection. The server
//! drops the TCP connection (`SO_LINGER` 0, so the client sees a reset); the clock runs until
//! every stream has yielded [`SubscriptionEvent::Restored`] (nova reconnected, re-subscribed each
//! channel and verified each ack). The client's backoff is set to 1 ms without jitter (and every
//! connection counts as stable, so the delay does not double from drop to drop): the figure is
//! nova's own work plus that 1 ms. The bare reference does by hand the least that
//! restores the same state: on the read error it reconnects at once, writes the same subscribe
//! requests pipelined, and waits for every ack.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use nova_core::{Client, ClientConfig, SubscriptionEvent};
use tokio::net::TcpStream;
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
    /// nova.
    pub(crate) nova_ms: f64,
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
    let nova = nova_run(&servers, subscriptions, rounds).await?;
    let report = Report {
        bare_ms: median(&bare) / 1000.0,
        nova_ms: median(&nova) / 1000.0,
    };
    let show = |v: &[f64]| {
        v.iter()
            .map(|us| format!("{:.2}", us / 1000.0))
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
    Ok(report)
}

async fn nova_run(
    servers: &ServerThread,
    subscriptions: usize,
    rounds: usize,
) -> Result<Vec<f64>, BoxError> {
    let server = servers.json_rpc().await?;
    let config = ClientConfig::builder(server.url())
        .name("bench")
        .backoff(Duration::from_millis(1), Duration::from_secs(1))
        .jitter(0.0)
        // Each connection counts as stable, so every drop starts over at the 1 ms delay
        // (otherwise the backoff doubles from one drop to the next).
        .stable_after(Duration::from_millis(1))
        .build()?;
    let (client, _messages) = Client::connect(config, BenchAdapter::new());
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
        samples.push(micros(start.elapsed()));
        // Let the server register the new connection before the next drop.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(streams);
    client.close(1000, "done").await?;
    Ok(samples)
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn bare_connect_and_subscribe(
    addr: std::net::SocketAddr,
    url: &str,
    subscriptions: usize,
    next_id: &mut u64,
) -> Result<Ws, BoxError> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (mut ws, _) = tokio_tungstenite::client_async(url, tcp).await?;
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
    Ok(ws)
}

async fn bare_run(
    servers: &ServerThread,
    subscriptions: usize,
    rounds: usize,
) -> Result<Vec<f64>, BoxError> {
    let server = servers.json_rpc().await?;
    let addr = server.server().addr();
    let url = server.url();
    let mut next_id = 1;
    let mut ws = bare_connect_and_subscribe(addr, &url, subscriptions, &mut next_id).await?;
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
        ws = bare_connect_and_subscribe(addr, &url, subscriptions, &mut next_id).await?;
        samples.push(micros(start.elapsed()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = ws.close(None).await;
    Ok(samples)
}
