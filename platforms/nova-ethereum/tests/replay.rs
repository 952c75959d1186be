//! A recorded session with an Ethereum node replayed against the real client: `eth_chainId`,
//! a `newHeads` subscription with blocks arriving, then the node restarts under the client
//! (the connection drops, and the reconnect attempts made while it is down are refused), and
//! the client restores the subscription: the heads go on in order, none missing, none twice.
//!
//! The fixture (`tests/fixtures/new_heads_node_restart.jsonl`) was recorded through
//! `nova_testkit::replay::Relay` in front of anvil. Replaying it needs no node. Record it again
//! with `NOVA_RECORD=1 cargo test -p nova-ethereum --test replay` (anvil required: `bash
//! scripts/install-anvil.sh`), then review and commit the file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use nova_core::{ClientConfig, SubscriptionEvent};
use nova_ethereum::{EthClient, EthEvent, EthItem, EthSubscription, SubscriptionKind};
use nova_testkit::Anvil;
use nova_testkit::replay::{Matcher, Relay, RelayOptions, ReplayOptions, ReplayServer};

const WAIT: Duration = Duration::from_secs(20);
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/new_heads_node_restart.jsonl"
);

/// What the application saw.
#[derive(Debug, Default)]
struct Seen {
    chain_id: u64,
    /// `(number, hash, parent hash)` of every head, in order.
    heads: Vec<(u64, String, String)>,
    /// Heads delivered before the restore.
    before_restore: usize,
    restored: u32,
}

async fn next(sub: &mut EthSubscription) -> EthItem {
    tokio::time::timeout(WAIT, sub.recv())
        .await
        .expect("an item in time")
        .expect("the subscription is open")
}

async fn read(seen: &mut Seen, sub: &mut EthSubscription) {
    match next(sub).await {
        EthItem::Event(EthEvent::Head(h)) => {
            seen.heads
                .push((h.number, h.hash.clone().unwrap(), h.parent_hash.clone()));
        }
        EthItem::Status(SubscriptionEvent::Restored) => {
            seen.restored += 1;
            seen.before_restore = seen.heads.len();
        }
        EthItem::Status(_) => {}
        other => panic!("{other:?}"),
    }
}

/// The application. `node` is there when recording: the test restarts it.
async fn session(url: String, node: Option<&mut Anvil>) -> Seen {
    let config = ClientConfig::builder(url)
        .name("eth-replay")
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .jitter(0.0)
        .build()
        .unwrap();
    let (eth, _messages) = EthClient::connect(config);
    let mut seen = Seen {
        chain_id: eth.chain_id().await.unwrap(),
        ..Seen::default()
    };
    let mut sub = eth.subscribe(SubscriptionKind::NewHeads).await.unwrap();
    while seen.heads.len() < 2 {
        read(&mut seen, &mut sub).await;
    }
    if let Some(node) = node {
        node.restart_after(Duration::from_millis(1500))
            .await
            .unwrap();
    }
    while seen.restored == 0 {
        read(&mut seen, &mut sub).await;
    }
    let restored_at = seen.heads.len();
    while seen.heads.len() < restored_at + 2 {
        read(&mut seen, &mut sub).await;
    }
    eth.client().close(1000, "done").await.unwrap();
    seen
}

async fn record() {
    let mut node = Anvil::spawn().await.expect("start anvil");
    let relay = Relay::start(
        &node.ws_url(),
        RelayOptions::default()
            .note("nova-ethereum tests/replay.rs: NOVA_RECORD=1 records it again"),
    )
    .await
    .unwrap();
    session(relay.url(), Some(&mut node)).await;
    relay.finish(WAIT).await.save(FIXTURE).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_node_restart_replays() {
    if std::env::var_os("NOVA_RECORD").is_some() {
        record().await;
    }
    let options = ReplayOptions::default()
        .matcher(Matcher::volatile())
        .lookahead(4);
    let server = ReplayServer::load(FIXTURE, options).await.unwrap();
    let seen = session(server.url(), None).await;
    let report = server.finish(WAIT).await;
    report.assert_ok();
    assert!(report.recorded >= 2, "a drop and a reconnect: {report}");

    assert_eq!(seen.chain_id, 31337);
    assert_eq!(seen.restored, 1, "{seen:?}");
    // Every block exactly once, in order, each the child of the one before: the blocks mined
    // while the node was down were filled in.
    for pair in seen.heads.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "{seen:?}");
        assert_eq!(pair[1].2, pair[0].1, "{seen:?}");
    }
    assert!(seen.heads.len() >= 4, "{seen:?}");
}
