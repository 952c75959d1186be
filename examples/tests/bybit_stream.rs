//! Runs the `bybit_stream` example against the in-process Bybit simulator.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nova_bybit::{BybitClient, BybitConfig, Credentials, Endpoint, OrderCreate, OrderType, Side};
use nova_testkit::bybit::{BybitSim, BybitSimOptions, TEST_API_KEY, TEST_API_SECRET};
use nova_testkit::wait_until;

fn command(sim: &BybitSim, extra: &[&str]) -> Command {
    let mut command = Command::new(common::example_binary("bybit_stream"));
    command
        .args(["--url", &sim.url("/v5/public/linear")])
        .args([
            "--topic",
            "orderbook.50.BTCUSDT",
            "--topic",
            "tickers.BTCUSDT",
        ])
        .args([
            "--private-url",
            &sim.url("/v5/private"),
            "--private-topic",
            "order",
        ])
        .args(extra)
        .env("BYBIT_API_KEY", TEST_API_KEY)
        .env("BYBIT_API_SECRET", TEST_API_SECRET)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Places a limit order through the simulator's trade endpoint, so the private topic has data.
async fn place_order(sim: &BybitSim, link: &str) {
    let config = BybitConfig::new(Endpoint::Trade)
        .credentials(Credentials::new(TEST_API_KEY, TEST_API_SECRET));
    let (trade, _) = BybitClient::connect(&sim.url("/v5/trade"), config).unwrap();
    let order = OrderCreate::new("linear", "BTCUSDT", Side::Buy, OrderType::Limit, "0.01")
        .price("1000")
        .order_link_id(link);
    trade.create_order(&order).await.unwrap();
    trade.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_stream_prints_pushes_as_received_through_a_forced_drop() {
    let sim = BybitSim::start_with(BybitSimOptions::default().with_tick(Duration::from_millis(20)))
        .await
        .unwrap();
    let mut child = command(&sim, &["--count", "400"]).spawn().unwrap();
    // stdout read as it comes, so the test knows when a push has reached the example.
    let printed = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let stdout = child.stdout.take().unwrap();
        let printed = printed.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                printed.lock().unwrap().push(line.unwrap());
            }
        })
    };
    let seen = |link: &'static str| {
        let printed = printed.clone();
        move || printed.lock().unwrap().iter().any(|l| l.contains(link))
    };

    // Subscribed on both connections: an order shows on the private topic.
    assert!(
        sim.wait_for(Duration::from_secs(20), |c| c.subscribes >= 3
            && c.pushes >= 30)
            .await,
        "{:?}",
        sim.counters()
    );
    place_order(&sim, "before-drop").await;
    // The order's push reaches the example before the reset (a push still in flight when a
    // TCP connection is reset is lost: WebSocket has no acknowledgements).
    assert!(wait_until(seen("before-drop"), Duration::from_secs(20)).await);
    // The simulator resets every connection: the example reconnects, re-authenticates and
    // resubscribes by itself.
    sim.drop_all().await;
    assert!(
        sim.wait_for(Duration::from_secs(20), |c| c.subscribes >= 6)
            .await,
        "{:?}",
        sim.counters()
    );
    place_order(&sim, "after-drop").await;

    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    reader.join().unwrap();
    let stdout = printed.lock().unwrap().join("\n");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 400, "{stdout}");
    let topics: BTreeSet<&str> = lines.iter().map(|l| l["topic"].as_str().unwrap()).collect();
    assert_eq!(
        topics,
        ["order", "orderbook.50.BTCUSDT", "tickers.BTCUSDT"]
            .into_iter()
            .collect(),
        "{stderr}"
    );
    let links: Vec<&str> = lines
        .iter()
        .filter(|l| l["topic"] == "order")
        .map(|l| l["data"][0]["orderLinkId"].as_str().unwrap())
        .collect();
    assert_eq!(links, ["before-drop", "after-drop"]);
    // Exactly as received: the simulator writes compact serde_json text, which the example
    // passes through unchanged (not re-encoded, not wrapped).
    for line in stdout.lines() {
        let parsed: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), line);
    }
    assert!(stderr.contains("restored"), "{stderr}");
    let c = sim.counters();
    assert_eq!(
        c.connections,
        2 + 2 + 2,
        "two per start, one trade per order: {c:?}"
    );
    assert_eq!(c.auths, 4, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_stream_flushes_and_exits_zero_on_sigterm() {
    let sim = BybitSim::start_with(BybitSimOptions::default().with_tick(Duration::from_millis(20)))
        .await
        .unwrap();
    let child = command(&sim, &[]).spawn().unwrap();
    assert!(
        sim.wait_for(Duration::from_secs(20), |c| c.pushes >= 50)
            .await,
        "{:?}",
        sim.counters()
    );
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(!lines.is_empty());
    // Every line complete: nothing cut off by the exit.
    for line in &lines {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    assert!(stdout.ends_with('\n'));
}
