//! Runs the `slack_bot` example against the Slack Socket Mode simulator: through refresh cycles
//! (handovers) and a forced drop, every envelope is acknowledged, printed once as received, and
//! slash commands are answered in their acks; SIGTERM flushes and exits 0; `link_disabled` exits
//! 1 with the reason.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nova_testkit::slack::{Disconnect, EnvelopeKind, SlackSim, SlackSimOptions, TEST_APP_TOKEN};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(60);

fn spawn(sim: &SlackSim, extra: &[&str]) -> Child {
    Command::new(common::example_binary("slack_bot"))
        .args(["--api-url", &sim.api_url()])
        .args(extra)
        .env("SLACK_APP_TOKEN", TEST_APP_TOKEN)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn finish(child: Child) -> (std::process::ExitStatus, String, String) {
    let output = tokio::time::timeout(
        LONG,
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("the example finished in time")
    .unwrap()
    .unwrap();
    (
        output.status,
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_bot_acks_answers_and_prints_each_envelope_once() {
    let options = SlackSimOptions::default()
        .with_envelope_interval(Some(Duration::from_millis(30)))
        .with_refresh_after(Some(Duration::from_millis(1200)))
        .with_overlap(Duration::from_millis(500));
    let sim = SlackSim::start_with(options).await.unwrap();
    let child = spawn(&sim, &["--count", "120"]);
    assert!(sim.wait_for(LONG, |c| c.refreshes_requested >= 1).await);
    let hellos = sim.counters().hellos;
    sim.drop_all().await;
    assert!(sim.wait_for(LONG, |c| c.hellos > hellos).await);
    let (status, stdout, stderr) = finish(child).await;
    assert!(status.success(), "{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 120, "{stderr}");
    // Printed exactly as received: envelopes with their ids, each once.
    let ids: BTreeSet<&str> = lines
        .iter()
        .map(|l| l["envelope_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 120, "an envelope was printed twice");
    for id in &ids {
        let record = sim.record(id).unwrap();
        assert!(record.acked, "{id} printed but not acknowledged");
        if record.kind == EnvelopeKind::SlashCommands {
            let text = record.ack_payload.as_ref().unwrap()["text"]
                .as_str()
                .unwrap();
            assert!(text.starts_with("nova got /"), "{text}");
        }
    }
    assert!(sim.counters().refreshes_requested >= 1);
    assert_eq!(sim.counters().tickets_reused, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_bot_flushes_on_sigterm_and_stops_on_link_disabled() {
    let options =
        SlackSimOptions::default().with_envelope_interval(Some(Duration::from_millis(20)));
    let sim = SlackSim::start_with(options).await.unwrap();
    let child = spawn(&sim, &[]);
    assert!(sim.wait_for(LONG, |c| c.acks_received >= 20).await);
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let (status, stdout, stderr) = finish(child).await;
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    assert!(stdout.lines().count() >= 20);
    for line in stdout.lines() {
        let _: Value = serde_json::from_str(line).unwrap(); // every line complete
    }

    let child = spawn(&sim, &[]);
    assert!(sim.wait_for(LONG, |c| c.hellos >= 2).await);
    sim.disconnect_all(Disconnect::LinkDisabled);
    let (status, _stdout, stderr) = finish(child).await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("link_disabled"), "{stderr}");
}
