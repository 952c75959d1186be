//! Scenario: a reconnect storm. `clients` nova clients (the default configuration: backoff from
//! 250 ms, jitter 0.2) hold a connection each to one server; the server dies at once (every
//! connection reset, the port closed), stays down for `down`, and comes back on the same port.
//! Measured: when each client tried again (its `Connecting` events after the drop), the busiest
//! 100 ms window's share of those attempts, and how long until every client was connected again.
//! No bare reference: a bare loop has no policy to compare.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use nova_core::{Client, ClientConfig, DefaultHandler, LifecycleEvent};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::BoxError;
use crate::server::ServerThread;

/// What the storm showed (printed; kept for a summary).
#[derive(Clone, Debug)]
#[allow(dead_code)]
pub(crate) struct Report {
    /// Reconnect attempts after the drop, all clients.
    pub(crate) attempts: usize,
    /// The most attempts in any 100 ms window, as a share of all.
    pub(crate) busiest_share: f64,
    /// From the server's return to every client connected.
    pub(crate) all_back: Duration,
}

/// A WebSocket server that can die (reset everything, close the port) and come back.
async fn serve(addr: SocketAddr, mut alive: watch::Receiver<bool>) {
    loop {
        if !*alive.borrow() {
            if alive.changed().await.is_err() {
                return;
            }
            continue;
        }
        let Ok(listener) = TcpListener::bind(addr).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    let mut alive = alive.clone();
                    conns.spawn(async move {
                        // Dropped with SO_LINGER 0 when the server dies: the client sees a reset.
                        // (Deprecated because a non-zero linger blocks on drop; zero does not.)
                        #[allow(deprecated)]
                        let _ = tcp.set_linger(Some(Duration::ZERO));
                        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                        loop {
                            tokio::select! {
                                frame = ws.next() => if !matches!(frame, Some(Ok(_))) { return },
                                _ = alive.changed() => if !*alive.borrow() { return },
                            }
                        }
                    });
                }
                _ = alive.changed() => if !*alive.borrow() { break },
            }
        }
        drop(listener);
        conns.shutdown().await;
    }
}

/// Runs the storm and prints what it showed.
pub(crate) async fn run(
    servers: Arc<ServerThread>,
    clients: usize,
    down: Duration,
) -> Result<Report, BoxError> {
    println!(
        "== reconnect storm: {clients} clients, the server dies for {} ms and comes back ==",
        down.as_millis()
    );
    let addr: SocketAddr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?
    };
    let (alive_tx, alive_rx) = watch::channel(true);
    servers
        .run(async move {
            tokio::spawn(serve(addr, alive_rx));
        })
        .await?;
    let config = ClientConfig::builder(format!("ws://{addr}/"))
        .name("storm")
        .build()?;
    // Every client's connect attempts, with their times.
    let attempts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let mut handles = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (client, _messages) = Client::connect(config.clone(), DefaultHandler);
        let mut events = client.events();
        let attempts = attempts.clone();
        tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                if matches!(event, LifecycleEvent::Connecting { .. }) {
                    if let Ok(mut a) = attempts.lock() {
                        a.push(Instant::now());
                    }
                }
            }
        });
        handles.push((client, _messages));
    }
    for (client, _) in &handles {
        client.wait_connected(Duration::from_secs(60)).await?;
    }
    let dropped = Instant::now();
    if let Ok(mut a) = attempts.lock() {
        a.clear();
    }
    alive_tx.send(false)?;
    tokio::time::sleep(down).await;
    let back = Instant::now();
    alive_tx.send(true)?;
    for (client, _) in &handles {
        client.wait_connected(Duration::from_secs(120)).await?;
    }
    let all_back = back.elapsed();
    let mut times: Vec<Duration> = attempts
        .lock()
        .map(|a| {
            a.iter()
                .map(|t| t.saturating_duration_since(dropped))
                .collect()
        })
        .unwrap_or_default();
    times.sort();
    let window = Duration::from_millis(100);
    let busiest = (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t < times[i] + window)
                .count()
        })
        .max()
        .unwrap_or(0);
    let report = Report {
        attempts: times.len(),
        busiest_share: busiest as f64 / times.len().max(1) as f64,
        all_back,
    };
    // Attempts per 250 ms after the drop, as a histogram.
    let mut buckets = std::collections::BTreeMap::<u128, usize>::new();
    for t in &times {
        *buckets.entry(t.as_millis() / 250).or_default() += 1;
    }
    println!(
        "  attempts after the drop: {} ({:.1} per client); busiest 100 ms window: {busiest} ({:.1} %)",
        report.attempts,
        report.attempts as f64 / clients as f64,
        report.busiest_share * 100.0
    );
    println!(
        "  every client connected again {:.0} ms after the server came back",
        all_back.as_secs_f64() * 1e3
    );
    let histogram: Vec<String> = buckets
        .iter()
        .map(|(b, n)| format!("{}-{} ms: {n}", b * 250, (b + 1) * 250))
        .collect();
    println!(
        "  attempts per 250 ms since the drop: {}",
        histogram.join(", ")
    );
    for (client, _) in &handles {
        let _ = client.close(1000, "done").await;
    }
    drop(alive_tx);
    Ok(report)
}
