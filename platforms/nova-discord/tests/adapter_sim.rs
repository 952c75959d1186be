//! The adapter on nova's runtime against the Discord simulator (real sockets): resumes after
//! drops with no lost or repeated dispatch, a zombie noticed and resumed, a silent server (no
//! Hello) given up and the session resumed, op 7 and op 9 both ways, 4004 stopping after one
//! connection, compressed and plain runs alike, two shards paced by `max_concurrency`, and a
//! burst of application sends paced under the send limit while heartbeats go on.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nova_core::{Client, ClientConfig, Message, Messages, Secret, StopReason};
use nova_discord::{
    Discord, DiscordConfig, Discovery, Dispatch, Event, IdentifyLimiter, Intents, Shards,
};
use nova_testkit::discord::{DiscordSim, DiscordSimOptions, TEST_TOKEN};

const WAIT: Duration = Duration::from_secs(20);

/// Every dispatch an application received: `(s, t, text)`.
type Seen = Arc<Mutex<Vec<(u64, String, String)>>>;

fn config(sim: &DiscordSim, token: &str) -> DiscordConfig {
    DiscordConfig::new(
        Secret::new(token),
        sim.gateway_url(),
        Intents::GUILDS | Intents::GUILD_MESSAGES,
    )
}

fn start(sim: &DiscordSim, token: &str, compress: bool) -> (Client, Seen) {
    start_with(config(sim, token).with_compress(compress))
}

fn start_with(config: DiscordConfig) -> (Client, Seen) {
    let client_config = ClientConfig::builder(config.connect_url())
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .jitter(0.0)
        .build()
        .unwrap();
    let (client, messages) = Client::connect(client_config, Discord::new(config));
    (client, collect(messages))
}

fn collect(mut messages: Messages) -> Seen {
    let seen: Seen = Arc::default();
    let out = seen.clone();
    tokio::spawn(async move {
        while let Some(Ok(m)) = messages.recv().await {
            let d = Dispatch::from_message(&m)
                .unwrap()
                .expect("only dispatches are delivered");
            let name = match &d.event {
                Event::Ready(_) => "READY".to_owned(),
                Event::Resumed => "RESUMED".to_owned(),
                Event::Unknown { name, .. } => name.clone(),
                other => format!("{other:?}")
                    .split(['(', ' ', '{'])
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            };
            out.lock()
                .unwrap()
                .push((d.seq.unwrap_or(0), name, m.as_text().unwrap().to_owned()));
        }
    });
    seen
}

/// The sequence numbers of one session's dispatches (the simulator numbers RESUMED too): 1, 2,
/// 3, ... each once.
fn assert_contiguous(seen: &Seen) {
    let seqs: Vec<u64> = seen.lock().unwrap().iter().map(|(s, _, _)| *s).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "a dispatch lost or repeated");
}

async fn wait_seen(seen: &Seen, n: usize) {
    assert!(
        nova_testkit::wait_until(|| seen.lock().unwrap().len() >= n, WAIT).await,
        "only {} dispatches",
        seen.lock().unwrap().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_resets_each_resumed_with_every_dispatch_once() {
    let options = DiscordSimOptions::default().with_tick(Some(Duration::from_millis(10)));
    let sim = DiscordSim::start_with(options).await.unwrap();
    let (client, seen) = start(&sim, TEST_TOKEN, false);
    for round in 1..=5u64 {
        let before = seen.lock().unwrap().len();
        wait_seen(&seen, before + 5).await;
        sim.drop_all().await;
        assert!(
            sim.wait_for(WAIT, |c| c.resumes == round).await,
            "resume {round}"
        );
    }
    let before = seen.lock().unwrap().len();
    wait_seen(&seen, before + 5).await;
    let c = sim.counters();
    assert_eq!((c.identifies, c.resumes, c.resume_failures), (1, 5, 0));
    assert!(
        c.resume_url_connections >= 5,
        "resumed at resume_gateway_url"
    );
    assert_contiguous(&seen);
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_is_noticed_within_an_interval_and_resumed() {
    let interval = Duration::from_millis(300);
    let options = DiscordSimOptions::default()
        .with_tick(Some(Duration::from_millis(20)))
        .with_heartbeat_interval(interval)
        .with_heartbeat_timeout_code(None);
    let sim = DiscordSim::start_with(options).await.unwrap();
    let (client, seen) = start(&sim, TEST_TOKEN, false);
    assert!(sim.wait_for(WAIT, |c| c.heartbeat_acks >= 1).await);
    sim.set_zombie(true);
    let since = Instant::now();
    let closed = nova_testkit::wait_until(
        || {
            sim.connections()
                .iter()
                .any(|c| c.client_close_code == Some(4000))
        },
        WAIT,
    )
    .await;
    assert!(closed, "the client closed the zombie with 4000");
    // One beat goes unACKed, the next finds the zombie: within two intervals of the last ACK.
    assert!(
        since.elapsed() <= interval * 2 + Duration::from_millis(200),
        "{:?}",
        since.elapsed()
    );
    sim.set_zombie(false);
    assert!(sim.wait_for(WAIT, |c| c.resumes == 1).await);
    let before = seen.lock().unwrap().len();
    wait_seen(&seen, before + 5).await;
    assert_eq!(sim.counters().identifies, 1);
    assert_contiguous(&seen);
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op7_and_op9_both_ways() {
    let options = DiscordSimOptions::default().with_tick(Some(Duration::from_millis(20)));
    let sim = DiscordSim::start_with(options).await.unwrap();
    let (client, seen) = start(&sim, TEST_TOKEN, false);
    wait_seen(&seen, 3).await;
    sim.reconnect_all().await;
    assert!(sim.wait_for(WAIT, |c| c.resumes == 1).await, "op 7 resumes");
    let before = seen.lock().unwrap().len();
    wait_seen(&seen, before + 3).await;
    sim.invalidate_sessions(true).await;
    assert!(
        sim.wait_for(WAIT, |c| c.resumes == 2).await,
        "op 9 d:true resumes"
    );
    let before = seen.lock().unwrap().len();
    wait_seen(&seen, before + 3).await;
    assert_contiguous(&seen);
    assert_eq!(sim.counters().identifies, 1);
    sim.invalidate_sessions(false).await;
    let since = Instant::now();
    assert!(
        sim.wait_for(WAIT, |c| c.identifies == 2).await,
        "op 9 d:false identifies again"
    );
    assert!(
        since.elapsed() >= Duration::from_millis(900),
        "after 1-5 s: {:?}",
        since.elapsed()
    );
    assert_eq!(sim.counters().resumes, 2);
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_failed_stops_after_one_connection() {
    let sim = DiscordSim::start().await.unwrap();
    let (client, _seen) = start(&sim, "not-the-token", false);
    let stopped = tokio::time::timeout(WAIT, client.stopped()).await.unwrap();
    match &stopped {
        StopReason::Policy(why) => assert!(why.contains("4004"), "{why}"),
        other => panic!("stopped with {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sim.counters().connections, 1);
    assert!(!format!("{stopped:?}").contains("not-the-token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_and_plain_give_the_same_dispatches() {
    let mut runs = Vec::new();
    for compress in [false, true] {
        let sim = DiscordSim::start_with(DiscordSimOptions::default().with_tick(None))
            .await
            .unwrap();
        let (client, seen) = start(&sim, TEST_TOKEN, compress);
        wait_seen(&seen, 3).await; // READY and a GUILD_CREATE per guild
        for i in 0..20 {
            sim.emit(
                "NOVA_TEST",
                &format!(r#"{{"i":{i},"pad":"{}"}}"#, "x".repeat(i * 50)),
            );
        }
        wait_seen(&seen, 23).await;
        assert!(sim.connections().iter().all(|c| c.compressed == compress));
        let got: Vec<(u64, String, String)> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|(s, t, text)| {
                (
                    *s,
                    t.clone(),
                    if t == "READY" {
                        String::new()
                    } else {
                        text.clone()
                    },
                )
            })
            .collect();
        runs.push(got);
        client.close(1000, "done").await.unwrap();
    }
    assert_eq!(runs[0], runs[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_respect_max_concurrency() {
    let window = Duration::from_millis(800);
    let options = DiscordSimOptions::default()
        .with_shards(2)
        .with_max_concurrency(1)
        .with_identify_interval(window);
    let sim = DiscordSim::start_with(options).await.unwrap();
    let gateway = Discovery::new(sim.api_url())
        .unwrap()
        .gateway_bot(&Secret::new(TEST_TOKEN))
        .await
        .unwrap();
    let limiter = Arc::new(IdentifyLimiter::with_window(
        &gateway.session_start_limit,
        Instant::now(),
        window,
    ));
    let base = DiscordConfig::new(
        Secret::new(TEST_TOKEN),
        gateway.url.clone(),
        Intents::GUILDS,
    );
    let started = Instant::now();
    let shards = Shards::connect(&base, gateway.shards, limiter, |b| {
        b.backoff(Duration::from_millis(20), Duration::from_millis(200))
    })
    .unwrap();
    assert!(sim.wait_for(WAIT, |c| c.identifies == 2).await);
    assert!(
        started.elapsed() >= window,
        "the second Identify waited for the bucket"
    );
    let c = sim.counters();
    assert_eq!(
        c.identify_rate_limited, 0,
        "no Identify went faster than max_concurrency allows"
    );
    let mut shard_ids: Vec<u32> = sim
        .sessions()
        .iter()
        .filter_map(|s| s.shard.map(|[id, _]| id))
        .collect();
    shard_ids.sort_unstable();
    assert_eq!(shard_ids, vec![0, 1]);
    shards.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_is_given_up_after_the_hello_timeout_and_the_session_resumed() {
    let options = DiscordSimOptions::default().with_tick(Some(Duration::from_millis(20)));
    let sim = DiscordSim::start_with(options).await.unwrap();
    let hello_timeout = Duration::from_millis(300);
    // The first connection hears nothing: given up, then the next one identifies.
    sim.withhold_hello(1);
    let started = Instant::now();
    let (client, seen) = start_with(config(&sim, TEST_TOKEN).with_hello_timeout(hello_timeout));
    assert!(sim.wait_for(WAIT, |c| c.identifies == 1).await);
    assert!(
        started.elapsed() >= hello_timeout,
        "{:?}",
        started.elapsed()
    );
    let first = &sim.connections()[0];
    assert_eq!(first.client_close_code, Some(4000), "{first:?}");
    assert_eq!(first.session_id, None);
    assert_eq!(first.received, 0, "nothing was sent before Hello");
    wait_seen(&seen, 5).await;
    // A resume that hears nothing: given up with 4000, and the next connection still resumes.
    sim.withhold_hello(1);
    sim.drop_all().await;
    assert!(sim.wait_for(WAIT, |c| c.resumes == 1).await);
    let c = sim.counters();
    assert_eq!(
        (c.hellos_withheld, c.identifies, c.resume_failures),
        (2, 1, 0)
    );
    let silent: Vec<_> = sim
        .connections()
        .into_iter()
        .filter(|c| c.client_close_code == Some(4000))
        .collect();
    assert_eq!(silent.len(), 2, "{silent:?}");
    let before = seen.lock().unwrap().len();
    wait_seen(&seen, before + 5).await;
    assert_contiguous(&seen);
    client.close(1000, "done").await.unwrap();
}

/// A presence update (op 3): what an application might send in a burst.
const PRESENCE: &str =
    r#"{"op":3,"d":{"since":null,"activities":[],"status":"online","afk":false}}"#;

/// Sends `count` presence updates as fast as the client takes them, against a simulator that
/// allows 40 payloads per second and closes a connection heartbeating less often than every
/// 375 ms; the client believes the limit is `client_limit` per second.
/// Returns when the last send was accepted, with when the first was made and how many
/// heartbeats the simulator had seen before it.
async fn presence_burst(count: usize, client_limit: u32) -> (DiscordSim, Client, Instant, u64) {
    let window = Duration::from_secs(1);
    let interval = Duration::from_millis(250);
    let options = DiscordSimOptions::default()
        .with_tick(None)
        .with_heartbeat_interval(interval)
        .with_send_limit(40, window);
    let sim = DiscordSim::start_with(options).await.unwrap();
    let config = config(&sim, TEST_TOKEN).with_send_limit(client_limit, window);
    let (client, seen) = start_with(config);
    wait_seen(&seen, 3).await; // READY and a GUILD_CREATE per guild: sends flow
    let beats_before = sim.counters().heartbeats;
    let started = Instant::now();
    for _ in 0..count {
        client.send(Message::text(PRESENCE)).await.unwrap();
    }
    (sim, client, started, beats_before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_sends_is_paced_under_the_send_limit_while_heartbeats_go_on() {
    let (sim, client, started, beats_before) = presence_burst(200, 40).await;
    // Every update reaches the server: the Identify, the beats, and the 200.
    let all_in = nova_testkit::wait_until(
        || {
            let received = sim.connections()[0].received;
            received >= 1 + 200 + sim.counters().heartbeats
        },
        Duration::from_secs(60),
    )
    .await;
    assert!(all_in, "{:?} {:?}", sim.connections(), sim.counters());
    let c = sim.counters();
    assert_eq!(c.rate_limited, 0, "never closed with 4008");
    assert_eq!(c.heartbeat_timeouts, 0, "heartbeats were never held back");
    assert_eq!(c.connections, 1, "one connection throughout");
    assert!(sim.connections()[0].open);
    assert_eq!(c.heartbeat_acks, c.heartbeats);
    // 200 sends at 32 per window (40 minus 8 reserved at 4 beats per second) span 6 windows.
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(3), "not paced: {took:?}");
    let beats = c.heartbeats - beats_before;
    assert!(beats >= 6, "{beats} heartbeats in {took:?}");
    client.close(1000, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_burst_unpaced_is_closed_with_4008() {
    // The client believes in a limit the simulator does not have: the simulator's 4008 fires,
    // so the test above can fail.
    let (sim, client, _, _) = presence_burst(200, 1000).await;
    assert!(sim.wait_for(WAIT, |c| c.rate_limited >= 1).await);
    assert_eq!(sim.connections()[0].server_close_code, Some(4008));
    client.close(1000, "done").await.unwrap();
}
