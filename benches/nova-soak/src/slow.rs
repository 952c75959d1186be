//! Scenario: a slow consumer under a flood (issue 18 item 4). A local server writes
//! `{"seq":N,"pad":"…"}` messages of a fixed size as fast as the socket takes them; a nova
//! client reads for a while, then its application stops reading for `pause`, then reads again.
//!
//! - `OverflowPolicy::Wait`: the inbound queue fills, the connection task stops reading the
//!   socket, the kernel buffers fill, and the server's writes stop completing: its count of
//!   messages written stops growing (TCP backpressure). Memory stays within the queue's
//!   capacity times the message size plus buffers; afterwards every message arrives, in order.
//! - `OverflowPolicy::DropOldest`: the connection keeps reading and the queue keeps the newest
//!   messages; the application is told how many it lost (`Err(Lagged(n))` in the stream, before
//!   the next message). Checked: received + reported lost = written, and each reported loss
//!   matches the hole in the sequence that follows it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use nova_core::{Client, ClientConfig, DefaultHandler, Messages, OverflowPolicy};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::BoxError;
use crate::resources::rss_kib;

/// The flooding server's counters.
#[derive(Debug, Default)]
struct Flood {
    /// Messages whose write the socket accepted.
    sent: AtomicU64,
    /// Connections accepted.
    connections: AtomicU64,
    /// Stop writing (the connection stays open).
    stop: AtomicBool,
}

/// Starts the server; returns its URL.
async fn flood_server(flood: Arc<Flood>, size: usize) -> Result<String, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            flood.connections.fetch_add(1, Ordering::Relaxed);
            let flood = Arc::clone(&flood);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let mut seq = 0u64;
                while !flood.stop.load(Ordering::Relaxed) {
                    let head = format!("{{\"seq\":{seq},\"pad\":\"");
                    let pad = size.saturating_sub(head.len() + 2);
                    let text = format!("{head}{}\"}}", "x".repeat(pad));
                    if ws.feed(WsMessage::text(text)).await.is_err() {
                        return;
                    }
                    seq += 1;
                    flood.sent.store(seq, Ordering::Relaxed);
                    if seq % 32 == 0 && ws.flush().await.is_err() {
                        return;
                    }
                }
                let _ = ws.flush().await;
                // Stay open, answering pings, until the client goes.
                while let Some(Ok(_)) = ws.next().await {}
            });
        }
    });
    Ok(format!("ws://{addr}/"))
}

/// The sequence number of a flood message.
fn seq_of(text: &str) -> Option<u64> {
    let rest = text.strip_prefix("{\"seq\":")?;
    let end = rest.find(',')?;
    rest[..end].parse().ok()
}

/// What the consumer saw.
#[derive(Debug, Default)]
struct Seen {
    received: u64,
    /// Sum of the `Lagged` counts.
    lagged: u64,
    /// `Lagged` items.
    lag_reports: u64,
    next: u64,
    /// Holes in the sequence not announced by a `Lagged` of the same size, and repeats.
    unexplained: u64,
    /// The loss announced and not yet seen as a hole.
    announced: u64,
}

impl Seen {
    fn see(&mut self, item: Result<nova_core::Message, nova_core::Lagged>) {
        match item {
            Err(nova_core::Lagged(n)) => {
                self.lagged += n;
                self.lag_reports += 1;
                self.announced += n;
            }
            Ok(m) => {
                self.received += 1;
                match m.as_text().and_then(seq_of) {
                    Some(seq) => {
                        let hole = seq.checked_sub(self.next);
                        match hole {
                            Some(h) if h == self.announced => {}
                            _ => self.unexplained += 1,
                        }
                        self.announced = 0;
                        self.next = seq + 1;
                    }
                    None => self.unexplained += 1,
                }
            }
        }
    }
}

async fn read_for(messages: &mut Messages, seen: &mut Seen, for_: Duration) {
    let end = Instant::now() + for_;
    while let Ok(Some(item)) = tokio::time::timeout_at(end, messages.recv()).await {
        seen.see(item);
    }
}

/// Measures one policy; returns whether its claims held.
pub(crate) async fn measure(
    policy: OverflowPolicy,
    pause: Duration,
    size: usize,
    capacity: usize,
) -> Result<bool, BoxError> {
    let name = match policy {
        OverflowPolicy::Wait => "wait",
        _ => "drop_oldest",
    };
    println!(
        "== slow consumer ({name}): {size}-byte messages flooded, inbound queue {capacity}, the consumer stops for {} s ==",
        pause.as_secs()
    );
    let rss_base = rss_kib();
    let flood = Arc::new(Flood::default());
    let url = flood_server(Arc::clone(&flood), size).await?;
    let config = ClientConfig::builder(url)
        .name(format!("slow-{name}"))
        .inbound(capacity, policy)
        .build()?;
    let (client, mut messages) = Client::connect(config, DefaultHandler);
    client.wait_connected(Duration::from_secs(10)).await?;
    let mut seen = Seen::default();
    read_for(&mut messages, &mut seen, Duration::from_secs(2)).await;
    println!(
        "  reading: {:.0} msg/s before the pause",
        seen.received as f64 / 2.0
    );

    // The pause: the application reads nothing.
    let rss0 = rss_kib();
    let sent0 = flood.sent.load(Ordering::Relaxed);
    let read0 = seen.received + seen.lagged;
    let mut rss_max = rss0;
    let mut trace = Vec::new();
    let start = Instant::now();
    let mut second = 0u64;
    while start.elapsed() < pause {
        tokio::time::sleep(Duration::from_secs(1)).await;
        second += 1;
        let rss = rss_kib();
        rss_max = rss_max.max(rss);
        let sent = flood.sent.load(Ordering::Relaxed);
        trace.push((second, sent - sent0, rss));
    }
    let sent_pause = flood.sent.load(Ordering::Relaxed) - sent0;
    // Written by the server, not yet read by the application: in nova's queue, the socket
    // buffers on both sides, tungstenite's buffers.
    let held = (sent0 + sent_pause).saturating_sub(read0);
    // Writes in the second half of the pause: zero under backpressure.
    let half = trace.get(trace.len() / 2).map_or(0, |t| t.1);
    let late_writes = sent_pause - half;
    let shown: Vec<String> = trace
        .iter()
        .filter(|(s, _, _)| *s <= 5 || s % 10 == 0 || *s == second)
        .map(|(s, n, r)| format!("{s}s: +{n} written, rss {r} KiB"))
        .collect();
    println!("  during the pause: {}", shown.join("; "));

    // Resume, stop the flood, drain.
    read_for(&mut messages, &mut seen, Duration::from_secs(1)).await;
    flood.stop.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let total = flood.sent.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.received + seen.lagged < total && Instant::now() < deadline {
        read_for(&mut messages, &mut seen, Duration::from_secs(2)).await;
    }
    let connections = flood.connections.load(Ordering::Relaxed);
    let growth = rss_max.saturating_sub(rss_base);
    println!(
        "  written {total} messages in all, {sent_pause} during the pause ({late_writes} in its second half); connections {connections}"
    );
    println!(
        "  received {}, reported lost {} in {} Lagged items (Messages::dropped {}), unexplained holes or repeats {}",
        seen.received,
        seen.lagged,
        seen.lag_reports,
        messages.dropped(),
        seen.unexplained
    );
    println!(
        "  rss: {rss_base} KiB before the client and server started, {rss0} KiB when the pause began, {rss_max} KiB at most during it (+{growth} KiB over the start)"
    );
    if policy == OverflowPolicy::Wait {
        println!(
            "  at the pause's end, {held} messages ({} KiB) were written and not yet read: at most {capacity} in nova's queue, the rest in socket buffers",
            held * size as u64 / 1024
        );
    }
    let mut ok = connections == 1 && seen.unexplained == 0;
    let accounted = seen.received + seen.lagged == total;
    match policy {
        OverflowPolicy::Wait => {
            // Over the process before the client and the server existed: the queue's messages
            // with their allocations, plus 4 MiB for everything else a client and a server
            // bring (read and write buffers, tasks, the allocator's first arenas). The kernel's
            // socket buffers are not in RSS.
            let bound = (capacity * (size + 256)) as u64 / 1024 + 4096;
            let backpressure = late_writes == 0;
            println!(
                "  memory bound {bound} KiB: {}; TCP backpressure (no write completed in the pause's second half): {}; nothing lost: {}",
                if growth <= bound { "held" } else { "EXCEEDED" },
                if backpressure { "yes" } else { "NO" },
                if accounted && seen.lagged == 0 {
                    "yes"
                } else {
                    "NO"
                }
            );
            ok &= growth <= bound && backpressure && accounted && seen.lagged == 0;
        }
        _ => {
            println!(
                "  loss accounted in-band (received + reported lost = written): {}",
                if accounted { "yes" } else { "NO" }
            );
            ok &= accounted && seen.lagged > 0 && messages.dropped() == seen.lagged;
        }
    }
    let _ = client.close(1000, "done").await;
    println!("  result: {}", if ok { "PASS" } else { "FAIL" });
    Ok(ok)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn msg(seq: u64) -> Result<nova_core::Message, nova_core::Lagged> {
        Ok(nova_core::Message::text(format!(
            "{{\"seq\":{seq},\"pad\":\"\"}}"
        )))
    }

    #[test]
    fn announced_losses_match_holes_and_unannounced_ones_do_not() {
        let mut s = Seen::default();
        s.see(msg(0));
        s.see(msg(1));
        s.see(Err(nova_core::Lagged(3)));
        s.see(msg(5));
        assert_eq!((s.received, s.lagged, s.unexplained), (3, 3, 0));
        s.see(msg(7));
        s.see(msg(7));
        assert_eq!(s.unexplained, 2);
        assert_eq!(seq_of("{\"seq\":42,\"pad\":\"xx\"}"), Some(42));
    }
}
