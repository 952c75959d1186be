//! Runs the `deribit_stream` example against the in-process Deribit simulator.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nova_testkit::deribit::{DeribitSim, DeribitSimOptions, TEST_CLIENT_ID, TEST_CLIENT_SECRET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deribit_stream_prints_notifications_and_rides_out_a_drop() {
    let options = DeribitSimOptions::default().with_tick(Duration::from_millis(50));
    let sim = DeribitSim::start_with(options).await.unwrap();
    let channels = [
        "ticker.BTC-PERPETUAL.raw",
        "book.BTC-PERPETUAL.100ms",
        "deribit_price_index.btc_usd",
    ];
    let mut command = Command::new(common::example_binary("deribit_stream"));
    command
        .args(["--url", &sim.url(), "--count", "150"])
        .env("DERIBIT_CLIENT_ID", TEST_CLIENT_ID)
        .env("DERIBIT_CLIENT_SECRET", TEST_CLIENT_SECRET)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for channel in channels {
        command.args(["--channel", channel]);
    }
    let child = command.spawn().unwrap();

    // Halfway, the simulator drops the connection: the example reconnects, re-authenticates
    // and resubscribes by itself.
    assert!(
        sim.wait_for(Duration::from_secs(20), |c| c.notifications >= 40)
            .await,
        "{:?}",
        sim.counters()
    );
    sim.drop_all().await;

    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));

    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 150, "{stdout}");
    let seen: BTreeSet<&str> = lines
        .iter()
        .map(|l| l["channel"].as_str().unwrap())
        .collect();
    assert_eq!(seen, channels.into_iter().collect(), "{stdout}");
    assert!(lines.iter().all(|l| l["data"].is_object()));
    // The raw ticker needs authentication: the credentials came from the environment.
    assert!(
        stderr.contains("authenticating as nova-test-id"),
        "{stderr}"
    );
    assert!(stderr.contains("restored"), "{stderr}");
    let counters = sim.counters();
    assert_eq!(counters.connections, 2, "{counters:?}");
    assert_eq!(counters.auths, 2, "{counters:?}");
}
