//! Quickstart: a nova client against the built-in simulator, fully offline.
//!
//! Starts the test kit's WebSocket server in-process, connects a client that streams numbered
//! messages (the server echoes them), makes the server restart the connection halfway, and shows
//! the client reconnecting by itself and carrying on: every message reaches the server exactly
//! once, in order. Ends with a summary.
//!
//! ```text
//! cargo run -p nova-examples --example quickstart
//! ```

use std::time::{Duration, Instant};

use nova::{Client, ClientConfig, DefaultHandler, LifecycleEvent};
use nova_testkit::TestServer;

const TOTAL: usize = 2_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "nova_core=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let started = Instant::now();

    let simulator = TestServer::start().await?;
    println!("simulator listening on {}", simulator.url());

    let config = ClientConfig::builder(simulator.url())
        .name("quickstart")
        .backoff(Duration::from_millis(250), Duration::from_secs(5))
        .heartbeat_interval(Some(Duration::from_secs(5)))
        .build()?;
    let (client, mut messages) = Client::connect(config, DefaultHandler);
    let mut events = client.events();

    // Print what the client does, as it happens.
    let watcher = tokio::spawn(async move {
        let mut reconnects = 0u32;
        while let Ok(event) = events.recv().await {
            match &event {
                LifecycleEvent::Connected {
                    connection_index,
                    duration,
                } => {
                    println!("connected (connection #{connection_index}, {duration:?})");
                    if *connection_index > 0 {
                        reconnects += 1;
                    }
                }
                LifecycleEvent::Disconnected { reason, .. } => println!("disconnected: {reason}"),
                LifecycleEvent::ReconnectScheduled { attempt, delay } => {
                    println!("reconnect attempt {attempt} in {delay:?}");
                }
                LifecycleEvent::Stopped { reason } => {
                    println!("stopped: {reason}");
                    break;
                }
                _ => {}
            }
        }
        reconnects
    });

    let sender = {
        let client = client.clone();
        tokio::spawn(async move {
            for n in 0..TOTAL {
                client.send_text(n.to_string()).await?;
                if n % 100 == 99 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            Ok::<_, nova::Error>(())
        })
    };

    // Echoes come back on the message stream; count them as they arrive.
    let reader = tokio::spawn(async move {
        let mut echoed = 0u64;
        while let Some(message) = messages.recv().await {
            if message.is_ok() {
                echoed += 1;
            }
        }
        echoed
    });

    // Halfway through, the server restarts: it closes the connection with code 1012.
    let halfway = TOTAL / 2;
    while simulator.received().len() < halfway {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("-- the server drops the connection now --");
    simulator
        .next_connection()
        .await
        .close(1012, "service restart")
        .await;

    sender.await??;
    let received: Vec<usize> = simulator
        .wait_for_received(TOTAL, Duration::from_secs(10))
        .await
        .iter()
        .filter_map(|r| r.frame.as_text()?.parse().ok())
        .collect();
    client.close(1000, "quickstart done").await?;
    let reconnects = watcher.await?;
    let echoed = reader.await?;

    let in_order = received.iter().copied().eq(0..TOTAL);
    println!();
    println!("summary");
    println!("  messages at the server   : {} of {TOTAL}", received.len());
    println!("  echoes back at the client: {echoed}");
    println!(
        "  lost or repeated         : {}",
        if in_order { "none" } else { "SOME" }
    );
    println!("  reconnects               : {reconnects}");
    println!("  elapsed                  : {:.2?}", started.elapsed());
    if !in_order {
        return Err("messages were lost or repeated".into());
    }
    Ok(())
}
