//! Three nodes in one process, each with its own nova Deribit client, against the Deribit
//! simulator: on the in-process backend and on a real redis-server. (The same scenarios with
//! three OS processes are in `examples/tests/cluster_node.rs`.)
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use nova_cluster::{
    Backend, ClientUpstream, Cluster, ClusterConfig, ClusterEventKind, FeedEvent, FeedStream,
    GapReason, MemoryBackend, RedisBackend, SharedSubscriptions,
};
use nova_core::{Client, RateLimit};
use nova_deribit::{DeribitAdapter, DeribitClient, DeribitConfig};
use nova_testkit::RedisServer;
use nova_testkit::deribit::{DeribitHandle, DeribitSim, DeribitSimOptions};
use tokio::sync::mpsc;
use tokio::time::Instant;

const BOOK: &str = "book.BTC-PERPETUAL.100ms";
const TICKER: &str = "ticker.BTC-PERPETUAL.100ms";

enum Store {
    Memory(MemoryBackend),
    Redis(RedisServer),
}

impl Store {
    async fn memory() -> Self {
        Store::Memory(MemoryBackend::new("test"))
    }

    async fn redis() -> Self {
        Store::Redis(RedisServer::start_new().await.unwrap())
    }

    fn backend(&self) -> Arc<dyn Backend> {
        match self {
            Store::Memory(m) => Arc::new(m.clone()),
            Store::Redis(r) => Arc::new(RedisBackend::connect(&r.url(), "test").unwrap()),
        }
    }
}

/// What a consumer saw, tagged with its node.
#[derive(Debug)]
struct Seen {
    node: String,
    channel: String,
    event: FeedEvent,
    at: Instant,
}

struct Node {
    cluster: Cluster,
    shared: SharedSubscriptions,
    client: Client,
}

impl Node {
    async fn start(
        store: &Store,
        sim: &DeribitHandle,
        id: &str,
        region: &str,
        seen: &mpsc::UnboundedSender<Seen>,
    ) -> Self {
        let config = ClusterConfig::new(id, region).platform_region("deribit", "eu-west");
        let cluster = Cluster::join_shared(config, store.backend()).await.unwrap();
        let deribit = DeribitConfig::default();
        let client_config = DeribitClient::config_builder(sim.url(), &deribit)
            .name(id)
            .build()
            .unwrap();
        let (client, _unclaimed) = Client::connect_with(
            client_config,
            DeribitAdapter::new(deribit),
            Box::new(cluster.registry("deribit")),
            None,
        );
        let shared = cluster.shared("deribit", ClientUpstream::deribit(client.clone()));
        for channel in [BOOK, TICKER] {
            let stream = shared
                .subscribe(channel, serde_json::json!({}))
                .await
                .unwrap();
            spawn_consumer(id, stream, seen.clone());
        }
        Node {
            cluster,
            shared,
            client,
        }
    }

    /// Dies without a goodbye: tasks stopped, the upstream connection dropped.
    async fn kill(self) {
        self.cluster.abort();
        let _ = self.client.close(1000, "killed").await;
    }
}

fn spawn_consumer(node: &str, mut stream: FeedStream, seen: mpsc::UnboundedSender<Seen>) {
    let node = node.to_owned();
    tokio::spawn(async move {
        let channel = stream.channel().to_owned();
        while let Some(event) = stream.recv().await {
            let s = Seen {
                node: node.clone(),
                channel: channel.clone(),
                event,
                at: Instant::now(),
            };
            if seen.send(s).is_err() {
                break;
            }
        }
    });
}

async fn sim() -> DeribitSim {
    DeribitSim::start_with(DeribitSimOptions::default().with_tick(Duration::from_millis(50)))
        .await
        .unwrap()
}

/// The open connections subscribed to `channel` now.
fn subscribers(sim: &DeribitHandle, channel: &str) -> usize {
    sim.open_connections()
        .iter()
        .filter(|c| c.subscriptions.contains(channel))
        .count()
}

/// Reads events until `cond` holds on everything seen so far (or panics after `timeout`).
async fn collect_until(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    all: &mut Vec<Seen>,
    timeout: Duration,
    mut cond: impl FnMut(&[Seen]) -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !cond(all) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(s)) => all.push(s),
            _ => panic!("condition not met in {timeout:?}; saw {} events", all.len()),
        }
    }
}

fn messages_per_node(all: &[Seen], channel: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in all {
        if s.channel == channel && matches!(s.event, FeedEvent::Message(_)) {
            *m.entry(s.node.clone()).or_default() += 1;
        }
    }
    m
}

/// No node got the same notification twice on one channel.
fn assert_no_duplicates(all: &[Seen]) {
    let mut seen = BTreeSet::new();
    for s in all {
        if let FeedEvent::Message(d) = &s.event {
            let v: serde_json::Value = d.message.json().unwrap();
            let data = v["params"]["data"].to_string();
            assert!(
                seen.insert((s.node.clone(), s.channel.clone(), data.clone())),
                "{} got a duplicate on {}: {data}",
                s.node,
                s.channel
            );
        }
    }
}

async fn three_nodes(
    store: &Store,
    sim: &DeribitHandle,
) -> (Vec<Node>, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut nodes = Vec::new();
    for (id, region) in [("a", "eu-west"), ("b", "eu-west"), ("c", "us-east")] {
        nodes.push(Node::start(store, sim, id, region, &tx).await);
    }
    (nodes, rx)
}

async fn each_channel_once(store: Store) {
    let sim = sim().await;
    let (nodes, mut rx) = three_nodes(&store, &sim).await;
    let mut all = Vec::new();
    collect_until(&mut rx, &mut all, Duration::from_secs(20), |all| {
        [BOOK, TICKER].iter().all(|ch| {
            let m = messages_per_node(all, ch);
            m.len() == 3 && m.values().all(|n| *n >= 10)
        })
    })
    .await;
    for channel in [BOOK, TICKER] {
        assert_eq!(
            subscribers(&sim, channel),
            1,
            "{channel}: {:?}",
            sim.connections()
        );
    }
    let total: u64 = sim.connections().iter().map(|c| c.subscribe_count).sum();
    assert_eq!(total, 2, "each channel subscribed upstream exactly once");
    assert_no_duplicates(&all);
    // The book consumers started from a snapshot on every node.
    for node in ["a", "b", "c"] {
        let first = all
            .iter()
            .find(|s| {
                s.node == node && s.channel == BOOK && matches!(s.event, FeedEvent::Message(_))
            })
            .unwrap();
        let FeedEvent::Message(d) = &first.event else {
            unreachable!()
        };
        assert!(d.sequence.unwrap().snapshot, "{node} started mid-book");
    }
    // Placement: the platform is in eu-west, so a or b owns, not c (us-east).
    let state = nodes[0].cluster.state().await.unwrap();
    let owners: Vec<&str> = state
        .nodes
        .iter()
        .filter(|n| !n.owns.is_empty())
        .map(|n| n.info.id.as_str())
        .collect();
    assert!(!owners.contains(&"c"), "{state:?}");
    // Every node's upstream client published its registry; only owners have subscriptions.
    let registries = nodes[0].cluster.registries().await.unwrap();
    assert_eq!(registries.len(), 3, "{registries:?}");
    let subscribed: usize = registries.iter().map(|r| r.entries.len()).sum();
    assert_eq!(subscribed, 2, "{registries:?}");
    for node in nodes {
        node.cluster.leave().await;
    }
    // Leaving unsubscribed upstream.
    assert!(
        nova_testkit::wait_until(|| subscribers(&sim, BOOK) == 0, Duration::from_secs(5)).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_channel_is_subscribed_upstream_once_memory() {
    each_channel_once(Store::memory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_channel_is_subscribed_upstream_once_redis() {
    each_channel_once(Store::redis().await).await;
}

async fn failover(store: Store) {
    let sim = sim().await;
    let (mut nodes, mut rx) = three_nodes(&store, &sim).await;
    // Every node's events: the owner (whichever node it turns out to be) is killed, and the
    // survivors report the failover.
    let mut events: Vec<_> = nodes.iter().map(|n| n.cluster.events()).collect();
    let mut all = Vec::new();
    collect_until(&mut rx, &mut all, Duration::from_secs(20), |all| {
        messages_per_node(all, BOOK).len() == 3
    })
    .await;
    let state = nodes[0].cluster.state().await.unwrap();
    let owned: Vec<_> = nodes.iter().map(|n| n.shared.owned()).collect();
    let owner = nodes
        .iter()
        .position(|n| n.shared.owned().contains(&BOOK.to_owned()))
        .unwrap_or_else(|| panic!("no owner: {owned:?} {state:?}"));
    let owner_id = nodes[owner].cluster.node_id().to_owned();
    let victim = nodes.remove(owner);
    events.remove(owner);
    let killed = Instant::now();
    victim.kill().await;
    // A survivor subscribes upstream...
    let mut resubscribed = None;
    while killed.elapsed() < Duration::from_secs(10) {
        if subscribers(&sim, BOOK) == 1 && subscribers(&sim, TICKER) <= 1 {
            let new_owner = nodes
                .iter()
                .any(|n| n.shared.owned().contains(&BOOK.to_owned()));
            if new_owner {
                resubscribed = Some(killed.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let resubscribed = resubscribed.expect("no survivor took the book over");
    assert!(
        resubscribed < Duration::from_secs(2),
        "failover took {resubscribed:?}"
    );
    // ...and the survivors' consumers see the gap and its closing by a fresh snapshot.
    collect_until(&mut rx, &mut all, Duration::from_secs(10), |all| {
        nodes.iter().all(|n| {
            let id = n.cluster.node_id();
            let after: Vec<&Seen> = all
                .iter()
                .filter(|s| s.node == id && s.channel == BOOK && s.at >= killed)
                .collect();
            let gap = after.iter().position(|s| {
                matches!(&s.event, FeedEvent::Gap(GapReason::OwnerChanged { from, .. }) if from.as_deref() == Some(owner_id.as_str()))
            });
            let closed = after
                .iter()
                .position(|s| matches!(s.event, FeedEvent::GapClosed { .. }));
            let message = after
                .iter()
                .rposition(|s| matches!(s.event, FeedEvent::Message(_)));
            matches!((gap, closed, message), (Some(g), Some(c), Some(m)) if g < c && c < m)
        })
    })
    .await;
    for n in &nodes {
        let id = n.cluster.node_id();
        let first_after = all
            .iter()
            .find(|s| {
                s.node == id
                    && s.channel == BOOK
                    && s.at >= killed
                    && matches!(s.event, FeedEvent::Message(_))
            })
            .map(|s| s.at - killed)
            .unwrap();
        assert!(
            first_after < Duration::from_secs(3),
            "{id} waited {first_after:?}"
        );
    }
    assert_no_duplicates(&all);
    // The failover is reported with its duration.
    let mut failover = None;
    for survivor in &mut events {
        loop {
            match survivor.try_recv() {
                Ok(e) => {
                    if matches!(
                        e.kind,
                        ClusterEventKind::NodeExpired { .. } | ClusterEventKind::Failover { .. }
                    ) {
                        failover = Some(e.kind);
                    }
                }
                // A slow reader of the ring skips ahead; the events after it still count.
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
    }
    assert!(failover.is_some());

    // The dead node comes back under the same id: it finds its leases gone and subscribes to
    // nothing twice.
    let (tx, mut rx2) = mpsc::unbounded_channel();
    let back = Node::start(&store, &sim, &owner_id, "eu-west", &tx).await;
    let mut again = Vec::new();
    collect_until(&mut rx2, &mut again, Duration::from_secs(10), |all| {
        messages_per_node(all, BOOK).values().any(|n| *n >= 10)
    })
    .await;
    assert_eq!(subscribers(&sim, BOOK), 1, "{:?}", sim.connections());
    assert_eq!(subscribers(&sim, TICKER), 1, "{:?}", sim.connections());
    assert!(back.shared.owned().is_empty());
    assert_no_duplicates(&again);
    back.cluster.leave().await;
    for n in nodes {
        n.cluster.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_owner_fails_over_within_two_seconds_memory() {
    failover(Store::memory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_owner_fails_over_within_two_seconds_redis() {
    failover(Store::redis().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_and_restarted_never_doubles_a_subscription() {
    let mut store = Store::redis().await;
    let sim = sim().await;
    let (nodes, mut rx) = three_nodes(&store, &sim).await;
    let mut all = Vec::new();
    collect_until(&mut rx, &mut all, Duration::from_secs(20), |all| {
        messages_per_node(all, BOOK).len() == 3
    })
    .await;
    let Store::Redis(redis) = &mut store else {
        unreachable!()
    };
    redis.stop().await.unwrap();
    // While it is down: never two upstream subscriptions of a channel; the owner lets go.
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(3) {
        assert!(subscribers(&sim, BOOK) <= 1 && subscribers(&sim, TICKER) <= 1);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        subscribers(&sim, BOOK),
        0,
        "the owner gave the channel up without its lease"
    );
    redis.start().await.unwrap();
    let back = Instant::now();
    let mut ok = false;
    while back.elapsed() < Duration::from_secs(15) {
        let (b, t) = (subscribers(&sim, BOOK), subscribers(&sim, TICKER));
        assert!(b <= 1 && t <= 1, "double subscription after the restart");
        if b == 1 && t == 1 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(ok, "channels not subscribed again after Redis came back");
    let resumed = Instant::now();
    collect_until(&mut rx, &mut all, Duration::from_secs(15), |all| {
        let m: BTreeMap<&str, usize> = all
            .iter()
            .filter(|s| {
                s.at >= resumed && s.channel == BOOK && matches!(s.event, FeedEvent::Message(_))
            })
            .fold(BTreeMap::new(), |mut m, s| {
                *m.entry(s.node.as_str()).or_default() += 1;
                m
            });
        m.len() == 3
    })
    .await;
    assert_no_duplicates(&all);
    for n in nodes {
        n.cluster.leave().await;
    }
}

async fn shared_budget(store: Store) {
    // Capacity 5 + refill 10/s: at most 15 grants in any one-second window, cluster-wide.
    let limit = RateLimit::new(5, 10.0);
    let mut clusters = Vec::new();
    for id in ["a", "b", "c"] {
        let c = Cluster::join_shared(ClusterConfig::new(id, "eu-west"), store.backend())
            .await
            .unwrap();
        clusters.push(c);
    }
    let run_for = Duration::from_secs(3);
    let mut tasks = Vec::new();
    for c in &clusters {
        let budget = c.rate_limiter("key", limit.clone());
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            let mut grants = Vec::new();
            while start.elapsed() < run_for {
                budget.acquire(1).await;
                grants.push(Instant::now());
            }
            grants
        }));
    }
    let mut grants = Vec::new();
    for t in tasks {
        grants.extend(t.await.unwrap());
    }
    grants.sort();
    let max_in_a_second = (0..grants.len())
        .map(|i| {
            grants[i..]
                .iter()
                .take_while(|g| **g - grants[i] < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    assert!(
        max_in_a_second <= 15,
        "{max_in_a_second} grants in one second"
    );
    assert!(
        grants.len() >= 15,
        "only {} grants in {run_for:?}",
        grants.len()
    );
    for c in clusters {
        c.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_budget_is_never_exceeded_memory() {
    shared_budget(Store::memory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_budget_is_never_exceeded_redis() {
    shared_budget(Store::redis().await).await;
}

async fn shared_budget_inside_clients(store: Store) {
    // Three nova clients, one per node, whose sends all draw from one budget: capacity 5 and
    // 10/s give at most 15 grants per second; a grant waits at most 100 ms to be spent, so the
    // requests in any one-second window stay within 5 + 10 × 1.1 = 16.
    let sim = sim().await;
    let limit = RateLimit::new(5, 10.0);
    let mut tasks = Vec::new();
    let mut clusters = Vec::new();
    for id in ["a", "b", "c"] {
        let cluster = Cluster::join_shared(ClusterConfig::new(id, "eu-west"), store.backend())
            .await
            .unwrap();
        let deribit = DeribitConfig::default().heartbeat(None);
        let config = DeribitClient::config_builder(sim.url(), &deribit)
            .name(id)
            .rate_limit(limit.clone())
            .build()
            .unwrap();
        let budget = cluster.rate_limiter("key", limit.clone());
        let (client, _unclaimed) = Client::connect_with(
            config,
            DeribitAdapter::new(deribit),
            Box::new(nova_core::InMemoryRegistry::default()),
            Some(Box::new(budget)),
        );
        clusters.push(cluster);
        tasks.push(tokio::spawn(async move {
            client
                .wait_connected(Duration::from_secs(10))
                .await
                .unwrap();
            let start = Instant::now();
            let mut done = Vec::new();
            while start.elapsed() < Duration::from_secs(3) {
                let request =
                    nova_core::Request::json_rpc("public/get_time", serde_json::json!({}));
                if client.request(request).await.is_ok() {
                    done.push(Instant::now());
                }
            }
            done
        }));
    }
    let mut done = Vec::new();
    for t in tasks {
        done.extend(t.await.unwrap());
    }
    done.sort();
    let busiest = (0..done.len())
        .map(|i| {
            done[i..]
                .iter()
                .take_while(|d| **d - done[i] < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    assert!(busiest <= 16, "{busiest} requests in one second");
    assert!(done.len() >= 15, "only {} requests", done.len());
    assert_eq!(sim.counters().rate_limited, 0);
    for c in clusters {
        c.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_share_a_budget_through_the_rate_limiter_memory() {
    shared_budget_inside_clients(Store::memory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_share_a_budget_through_the_rate_limiter_redis() {
    shared_budget_inside_clients(Store::redis().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_falls_back_to_a_local_share_and_comes_back() {
    let mut store = Store::redis().await;
    let limit = RateLimit::new(4, 40.0);
    let a = Cluster::join_shared(ClusterConfig::new("a", "eu-west"), store.backend())
        .await
        .unwrap();
    let b = Cluster::join_shared(ClusterConfig::new("b", "eu-west"), store.backend())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let budget = a.rate_limiter("key", limit);
    let mut events = a.events();
    budget.acquire(1).await;
    assert!(!budget.is_degraded());
    let Store::Redis(redis) = &mut store else {
        unreachable!()
    };
    redis.stop().await.unwrap();
    // Work goes on at the local share (half the budget: two nodes were live).
    for _ in 0..5 {
        budget.acquire(1).await;
    }
    assert!(budget.is_degraded());
    redis.start().await.unwrap();
    let back = Instant::now();
    while budget.is_degraded() {
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "never back on the shared budget"
        );
        budget.acquire(1).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut kinds = Vec::new();
    loop {
        match events.try_recv() {
            Ok(e) => kinds.push(e.kind.name()),
            // A slow reader of the ring skips ahead; the events after it still count.
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    assert!(kinds.contains(&"rate_limit_degraded"), "{kinds:?}");
    assert!(kinds.contains(&"rate_limit_restored"), "{kinds:?}");
    a.leave().await;
    b.leave().await;
}

async fn late_consumers(store: Store, trimmed: bool) {
    let sim = sim().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let a = Node::start(&store, &sim, "a", "eu-west", &tx).await;
    let mut all = Vec::new();
    collect_until(&mut rx, &mut all, Duration::from_secs(20), |all| {
        messages_per_node(all, BOOK)
            .get("a")
            .is_some_and(|n| *n >= 40)
    })
    .await;
    // A second consumer of the book on the same node, and a consumer on a node that joins late:
    // both start from a snapshot (caught up from the feed, or a fresh one asked from the owner).
    let later = a
        .shared
        .subscribe(BOOK, serde_json::json!({}))
        .await
        .unwrap();
    spawn_consumer("a2", later, tx.clone());
    let b = Node::start(&store, &sim, "b", "eu-west", &tx).await;
    collect_until(&mut rx, &mut all, Duration::from_secs(20), |all| {
        ["a2", "b"].iter().all(|n| {
            all.iter()
                .filter(|s| s.node == *n && s.channel == BOOK)
                .filter(|s| matches!(s.event, FeedEvent::Message(_)))
                .count()
                >= 10
        })
    })
    .await;
    for n in ["a2", "b"] {
        let first = all
            .iter()
            .find(|s| s.node == n && s.channel == BOOK && matches!(s.event, FeedEvent::Message(_)))
            .unwrap();
        let FeedEvent::Message(d) = &first.event else {
            unreachable!()
        };
        assert!(
            d.sequence.unwrap().snapshot,
            "{n} started mid-book: {all:?}"
        );
    }
    let joined = all
        .iter()
        .any(|s| matches!(s.event, FeedEvent::Gap(GapReason::Joined)));
    assert_eq!(joined, trimmed, "{all:?}");
    assert_no_duplicates(&all);
    assert_eq!(subscribers(&sim, BOOK), 1);
    b.cluster.leave().await;
    a.cluster.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_consumers_start_from_a_snapshot_memory() {
    late_consumers(Store::memory().await, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_consumers_start_from_a_snapshot_when_history_is_trimmed() {
    // A 16-entry feed: the snapshot is long gone when the late consumers come, so they get a
    // `Joined` gap and the owner resubscribes for a fresh snapshot.
    late_consumers(Store::Memory(MemoryBackend::with_max_len("test", 16)), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_consumers_start_from_a_snapshot_redis() {
    late_consumers(Store::redis().await, false).await;
}
