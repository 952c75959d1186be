//! Runs the `discord_events` example against the Discord simulator with compression and a drop
//! halfway: every dispatch printed once, in order, as received.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use nova_testkit::discord::{DiscordSim, DiscordSimOptions, TEST_TOKEN};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_events_prints_each_dispatch_once() {
    let options = DiscordSimOptions::default().with_tick(Some(Duration::from_millis(20)));
    let sim = DiscordSim::start_with(options).await.unwrap();
    let child = Command::new(common::example_binary("discord_events"))
        .args(["--api-url", &sim.api_url(), "--compress", "--count", "40"])
        .env("DISCORD_TOKEN", TEST_TOKEN)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        sim.wait_for(Duration::from_secs(20), |c| c.identifies == 1)
            .await
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    sim.drop_all().await;
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("the example finished in time")
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 40, "{stdout}");
    assert!(lines.iter().all(|l| l["op"] == 0 && l.get("d").is_some()));
    assert_eq!(lines[0]["t"], "READY");
    let seqs: Vec<u64> = lines.iter().map(|l| l["s"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=40).collect::<Vec<u64>>(), "{stderr}");
    assert_eq!(sim.counters().resumes, 1, "{stderr}");
}
