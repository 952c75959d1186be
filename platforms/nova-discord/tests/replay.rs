//! A recorded Discord gateway session replayed against the real adapter on nova's runtime:
//! Hello, Identify, READY (with its `resume_gateway_url`), dispatches, then the gateway drops
//! the connection; the client reconnects at the resume URL, sends Resume with the last
//! sequence number, gets what it missed and RESUMED, and carries on: every dispatch once, in
//! order.
//!
//! The fixture (`tests/fixtures/drop_and_resume.jsonl`) was recorded through
//! `nova_testkit::replay::Relay` in front of the Discord simulator, the resume listener relayed
//! too (`RelayOptions::also`), the bot token redacted. On replay the server points the resume
//! URL at itself. Heartbeats are timer-driven and skipped by the matcher. Record it again with
//! `NOVA_RECORD=1 cargo test -p nova-discord --test replay`, then review and commit the file.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use nova_core::{Client, ClientConfig, Messages, Secret};
use nova_discord::{Discord, DiscordConfig, Dispatch, Event, Intents};
use nova_testkit::discord::{DiscordHandle, DiscordSim, DiscordSimOptions, TEST_TOKEN};
use nova_testkit::replay::{
    Matcher, Recording, Redactions, Relay, RelayOptions, ReplayOptions, ReplayServer,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/drop_and_resume.jsonl"
);

/// A dispatch as the application saw it: `(s, event name, message content if any)`.
type Seen = Vec<(u64, String, Option<String>)>;

async fn next(messages: &mut Messages, seen: &mut Seen) {
    let m = tokio::time::timeout(WAIT, messages.recv())
        .await
        .expect("a dispatch in time")
        .expect("the client is running")
        .unwrap();
    let d = Dispatch::from_message(&m)
        .unwrap()
        .expect("only dispatches are delivered");
    let (name, content) = match &d.event {
        Event::Ready(r) => {
            assert!(!r.session_id.is_empty());
            ("READY".to_owned(), None)
        }
        Event::Resumed => ("RESUMED".to_owned(), None),
        Event::MessageCreate(m) => ("MESSAGE_CREATE".to_owned(), Some(m.content.clone())),
        Event::Unknown { name, .. } => (name.clone(), None),
        other => (
            format!("{other:?}")
                .split(['(', ' ', '{'])
                .next()
                .unwrap_or("")
                .to_owned(),
            None,
        ),
    };
    seen.push((d.seq.unwrap_or(0), name, content));
}

/// The application. `sim` is there when recording: the test drops the connection itself.
async fn session(url: &str, sim: Option<&DiscordHandle>) -> Seen {
    let config = DiscordConfig::new(
        Secret::new(TEST_TOKEN),
        url,
        Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT,
    );
    let client_config = ClientConfig::builder(config.connect_url())
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .jitter(0.0)
        .build()
        .unwrap();
    let (client, mut messages): (Client, Messages) =
        Client::connect(client_config, Discord::new(config));
    let mut seen = Seen::new();
    while seen.len() < 5 {
        next(&mut messages, &mut seen).await;
    }
    if let Some(sim) = sim {
        sim.drop_all().await;
    }
    while !seen.iter().any(|(_, name, _)| name == "RESUMED") {
        next(&mut messages, &mut seen).await;
    }
    let resumed = seen.len();
    while seen.len() < resumed + 3 {
        next(&mut messages, &mut seen).await;
    }
    client.close(1000, "done").await.unwrap();
    seen
}

async fn record() {
    let options = DiscordSimOptions::default().with_tick(Some(Duration::from_millis(20)));
    let sim = DiscordSim::start_with(options).await.unwrap();
    let handle = sim.handle();
    let relay = Relay::start(
        &handle.gateway_url(),
        RelayOptions::default()
            .also(handle.resume_gateway_url())
            .redactions(Redactions::new().field("token").string(TEST_TOKEN))
            .note("nova-discord tests/replay.rs: NOVA_RECORD=1 records it again"),
    )
    .await
    .unwrap();
    session(&relay.url(), Some(&handle)).await;
    relay.finish(WAIT).await.save(FIXTURE).unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_drop_and_resume_replays() {
    if std::env::var_os("NOVA_RECORD").is_some() {
        record().await;
    }
    let recording = Recording::load(FIXTURE).unwrap();
    assert_eq!(recording.connections().len(), 2, "a drop and a resume");
    // Heartbeats (op 1) come on the client's timer, wherever they fall.
    let matcher = Matcher::json().skip_client_json("op", json!(1));
    let options = ReplayOptions::default().matcher(matcher);
    let server = ReplayServer::load(FIXTURE, options).await.unwrap();
    let seen = session(&server.url(), None).await;
    let report = server.finish(WAIT).await;
    report.assert_ok();

    // Every dispatch once, in order, across the resume (the simulator numbers RESUMED too).
    let seqs: Vec<u64> = seen.iter().map(|(s, _, _)| *s).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "{seen:?}");
    assert_eq!(seen[0].1, "READY");
    assert!(
        seen.iter().any(|(_, name, _)| name == "RESUMED"),
        "{seen:?}"
    );
    let contents: Vec<&str> = seen.iter().filter_map(|(_, _, c)| c.as_deref()).collect();
    assert!(
        !contents.is_empty() && contents.iter().all(|c| !c.is_empty()),
        "{seen:?}"
    );
}
