//! Shared subscriptions: each channel subscribed upstream once per cluster, its data fanned out
//! to the consumers of every node.
//!
//! # How it works
//!
//! ```text
//!   node A (owner of book.X)                 backend                      node B, node C
//!   ┌────────────────────────┐   fenced   ┌───────────────┐   XREAD   ┌──────────────────────┐
//!   │ nova Client ─ upstream │──publish──▶│ feed:book.X   │──────────▶│ reader → FeedStreams │
//!   │ subscription (1×)      │            │ lease:book.X  │           │ (dedup, gaps)        │
//!   └────────────────────────┘            └───────────────┘           └──────────────────────┘
//! ```
//!
//! - **Interest**: each node writes the channels its local consumers want (with its presence
//!   TTL). A channel is *wanted* while one live node wants it.
//! - **Ownership**: every 100 ms each node looks for wanted channels without a lease. The node
//!   the [`GeoRouter`](crate::GeoRouter) prefers claims at once; any other node claims once the
//!   channel has been free for a quarter of the TTL (the preferred one may be dead). The claim is
//!   atomic on the backend and returns a fencing token; the winner writes a `claimed` entry,
//!   subscribes upstream with its nova `Client`, and renews the lease every quarter TTL.
//! - **Fan-out through a log, not a broadcast**: the owner appends every upstream event to the
//!   channel's feed — a **Redis Stream** (`XADD`, read with `XREAD` from per-node cursors), not
//!   Pub/Sub. Why: Pub/Sub drops whatever is published while a reader reconnects, with no way to
//!   tell, and gives messages no identity; a Stream keeps a bounded history with ordered ids, so
//!   a node that blinks picks up where it stopped, a late consumer of a book starts from its last
//!   snapshot, and every entry carries `(token, n)` so consumers drop duplicates and see exact
//!   gaps. The append is fenced in the same script: only the current lease holder can write, so
//!   an old owner that has not noticed its loss cannot interleave stale data.
//! - **Failover**: a killed owner stops renewing; its lease expires after the TTL (1 s by
//!   default) and a survivor claims it on its next 100 ms scan and subscribes upstream — well
//!   within 2 s. Consumers see the new token as [`GapReason::OwnerChanged`](crate::GapReason),
//!   and the new owner's first book message is a snapshot, which closes the gap
//!   ([`FeedEvent::GapClosed`](crate::FeedEvent)).
//! - **Cut off from the backend**: an owner that cannot renew trusts its lease for three quarters
//!   of the TTL after the last renewal it *sent*, then unsubscribes upstream — before the lease
//!   can expire on the backend — so two nodes never hold the same upstream subscription at once.
//!   A node that comes back (restarted, or reconnected) finds its leases gone or taken, and only
//!   subscribes again if it wins a new claim.
//!
//! # What is guaranteed
//!
//! - At most one upstream subscription per channel at any time (lease + local early give-up),
//!   exactly one in steady state.
//! - No duplicate delivery to a consumer (fenced writes, per-consumer `(token, n)` filter).
//! - Per-channel order as the owner received it.
//! - At-most-once across a failover: what the platform sent between the death and the new
//!   subscription is lost, and the consumer is told (a gap). For channels with snapshots (books)
//!   the snapshot restores the exact state; for event channels (trades, tickers) the events in
//!   the gap are gone (`GapNotClosed`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

use crate::backend::{FeedEntry, FeedId};
use crate::cluster::{Cluster, Node};
use crate::error::ClusterError;
use crate::feed::{EventQueue, FeedEvent, FeedStream, GapReason, Position};
use crate::upstream::Upstream;

mod ownership;

use ownership::run_coordinator;

/// Most entries read per feed and round.
const READ_COUNT: usize = 256;
/// How long one read waits for entries.
const READ_BLOCK: Duration = Duration::from_millis(250);
/// Most upstream events published in one write.
const PUBLISH_BATCH: usize = 64;
/// Scans a channel must be unwanted before its owner lets it go (interest can blink).
const UNWANTED_SCANS: u32 = 3;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The shared subscriptions of one upstream (one platform, the *scope*) on this node.
///
/// ```no_run
/// use nova_cluster::{ClientUpstream, Cluster, ClusterConfig, FeedEvent, MemoryBackend};
///
/// # async fn run(client: nova_core::Client) -> Result<(), nova_cluster::ClusterError> {
/// let cluster = Cluster::join(ClusterConfig::new("a", "eu-west"), MemoryBackend::new("demo")).await?;
/// let shared = cluster.shared("deribit", ClientUpstream::deribit(client));
/// let mut book = shared.subscribe("book.BTC-PERPETUAL.100ms", serde_json::json!({})).await?;
/// while let Some(event) = book.recv().await {
///     match event {
///         FeedEvent::Message(d) => println!("{} via {}: {:?}", d.channel, d.owner, d.message),
///         other => eprintln!("{other:?}"),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SharedSubscriptions {
    feeds: Arc<Feeds>,
}

impl std::fmt::Debug for SharedSubscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSubscriptions")
            .field("scope", &self.feeds.scope)
            .field("node", &self.feeds.node.holder.node)
            .finish_non_exhaustive()
    }
}

struct Feeds {
    node: Arc<Node>,
    scope: String,
    upstream: Arc<dyn Upstream>,
    consumers: Mutex<BTreeMap<String, Channel>>,
    next_consumer: AtomicU64,
    interest_changed: Notify,
    reader_wake: Notify,
    /// Channels this node owns now.
    owned: Mutex<BTreeSet<String>>,
}

struct Channel {
    name: Arc<str>,
    options: Value,
    consumers: Vec<Consumer>,
}

struct Consumer {
    id: u64,
    queue: Arc<EventQueue>,
    position: Position,
    started: bool,
}

impl Cluster {
    /// The shared subscriptions of `scope` (a platform name: `deribit`) through `upstream`. Its
    /// tasks run until the node leaves. The platform's region for placement is the one
    /// configured for `scope` ([`ClusterConfig::platform_region`](crate::ClusterConfig::platform_region)).
    pub fn shared(&self, scope: impl Into<String>, upstream: impl Upstream) -> SharedSubscriptions {
        let feeds = Arc::new(Feeds {
            node: self.node.clone(),
            scope: scope.into(),
            upstream: Arc::new(upstream),
            consumers: Mutex::new(BTreeMap::new()),
            next_consumer: AtomicU64::new(1),
            interest_changed: Notify::new(),
            reader_wake: Notify::new(),
            owned: Mutex::new(BTreeSet::new()),
        });
        self.node.spawn(run_reader(Arc::downgrade(&feeds)));
        self.node.spawn(run_coordinator(feeds.clone()));
        SharedSubscriptions { feeds }
    }
}

impl SharedSubscriptions {
    /// A local consumer of `channel`: its stream gets the channel's data whatever node owns it.
    /// `options` are the platform's subscribe options (the first consumer's count).
    ///
    /// # Errors
    /// [`ClusterError::Stopped`] once the node has left.
    pub async fn subscribe(
        &self,
        channel: impl Into<String>,
        options: Value,
    ) -> Result<FeedStream, ClusterError> {
        let feeds = &self.feeds;
        if feeds.node.is_stopped() {
            return Err(ClusterError::Stopped);
        }
        let channel = channel.into();
        let id = feeds.next_consumer.fetch_add(1, Ordering::Relaxed);
        let queue = Arc::new(EventQueue::new(feeds.node.config.queue()));
        let name = {
            let mut consumers = lock(&feeds.consumers);
            let entry = consumers.entry(channel.clone()).or_insert_with(|| Channel {
                name: Arc::from(channel.as_str()),
                options,
                consumers: Vec::new(),
            });
            entry.consumers.push(Consumer {
                id,
                queue: queue.clone(),
                position: Position::default(),
                started: false,
            });
            entry.name.clone()
        };
        feeds.reader_wake.notify_one();
        // Tell the cluster now rather than at the next round; the coordinator retries failures.
        let _ = feeds.write_interest().await;
        let weak = Arc::downgrade(feeds);
        let on_drop = Box::new(move || {
            if let Some(feeds) = weak.upgrade() {
                feeds.remove_consumer(&channel, id);
            }
        });
        Ok(FeedStream::new(name, queue, on_drop))
    }

    /// The channels this node owns (subscribes upstream) now.
    #[must_use]
    pub fn owned(&self) -> Vec<String> {
        lock(&self.feeds.owned).iter().cloned().collect()
    }

    /// The channels this node's consumers want now.
    #[must_use]
    pub fn wanted(&self) -> Vec<String> {
        lock(&self.feeds.consumers).keys().cloned().collect()
    }

    /// The scope (platform name).
    #[must_use]
    pub fn scope(&self) -> &str {
        &self.feeds.scope
    }
}

impl Feeds {
    fn remove_consumer(&self, channel: &str, id: u64) {
        let mut consumers = lock(&self.consumers);
        if let Some(c) = consumers.get_mut(channel) {
            c.consumers.retain(|c| c.id != id);
            if c.consumers.is_empty() {
                consumers.remove(channel);
            }
        }
        drop(consumers);
        self.interest_changed.notify_one();
    }

    fn interest(&self) -> Vec<(String, Value)> {
        lock(&self.consumers)
            .iter()
            .map(|(k, c)| (k.clone(), c.options.clone()))
            .collect()
    }

    async fn write_interest(&self) -> Result<(), ClusterError> {
        let interest = if self.node.is_stopped() {
            Vec::new()
        } else {
            self.interest()
        };
        self.node
            .backend
            .set_interest(
                &self.scope,
                &self.node.holder.node,
                &interest,
                self.node.config.ttl(),
            )
            .await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The reader: one per node and scope, feeding the local consumers.

fn before(id: FeedId) -> FeedId {
    if id.seq > 0 {
        FeedId {
            ms: id.ms,
            seq: id.seq - 1,
        }
    } else {
        FeedId {
            ms: id.ms.saturating_sub(1),
            seq: u64::MAX,
        }
    }
}

async fn run_reader(feeds: Weak<Feeds>) {
    let Some((mut shutdown, backend, scope)) = feeds.upgrade().map(|f| {
        (
            f.node.shutdown.subscribe(),
            f.node.backend.clone(),
            f.scope.clone(),
        )
    }) else {
        return;
    };
    let mut cursors: BTreeMap<String, FeedId> = BTreeMap::new();
    let mut backoff = Duration::from_millis(50);
    loop {
        if *shutdown.borrow() {
            if let Some(f) = feeds.upgrade() {
                for c in lock(&f.consumers).values() {
                    for consumer in &c.consumers {
                        consumer.queue.close();
                    }
                }
            }
            return;
        }
        let Some(f) = feeds.upgrade() else { return };
        // New consumers get their starting point.
        let starting: Vec<(String, u64)> = lock(&f.consumers)
            .iter()
            .flat_map(|(ch, c)| {
                c.consumers
                    .iter()
                    .filter(|c| !c.started)
                    .map(move |c| (ch.clone(), c.id))
            })
            .collect();
        let mut failed = false;
        for (channel, id) in starting {
            if let Err(e) = start_consumer(&f, &mut cursors, &channel, id).await {
                tracing::debug!(%channel, error = %e, "cannot start a consumer yet");
                failed = true;
            }
        }
        // Channels nobody here reads any more.
        {
            let consumers = lock(&f.consumers);
            cursors.retain(|ch, _| consumers.contains_key(ch));
        }
        let reads: Vec<(String, FeedId)> = cursors.iter().map(|(c, i)| (c.clone(), *i)).collect();
        let wake = f.reader_wake.notified();
        if reads.is_empty() {
            tokio::select! {
                _ = wake => {}
                _ = tokio::time::sleep(READ_BLOCK) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let result = tokio::select! {
            r = backend.read(&scope, &reads, READ_COUNT, READ_BLOCK) => Some(r),
            _ = wake => None,
            _ = shutdown.changed() => None,
        };
        match result {
            None => {}
            Some(Ok(batches)) => {
                backoff = Duration::from_millis(50);
                for (channel, entries) in batches {
                    if let Some(last) = entries.last().map(|(id, _)| *id) {
                        deliver(&f, &channel, entries.iter().map(|(_, e)| e)).await;
                        if let Some(c) = cursors.get_mut(&channel) {
                            *c = last;
                        }
                    }
                }
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "feed read failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
        if failed {
            tokio::time::sleep(backoff).await;
        }
    }
}

/// Gives consumer `id` of `channel` its position: from the channel's last snapshot when the
/// feed is live and has one (so a book consumer starts from a full book), else from now.
async fn start_consumer(
    f: &Feeds,
    cursors: &mut BTreeMap<String, FeedId>,
    channel: &str,
    id: u64,
) -> Result<(), ClusterError> {
    let backend = &f.node.backend;
    let head = backend.head(&f.scope, channel).await?;
    // A sequenced channel whose last snapshot is gone (trimmed): wait for a fresh one.
    let mut joining = head.owned && head.sequenced && head.snapshot.is_none();
    let Some(&cursor) = cursors.get(channel) else {
        // The first consumer of this channel here: the node's cursor starts at the snapshot.
        let start = match (head.owned, head.snapshot) {
            (true, Some(snap)) => before(snap),
            _ => head.last.unwrap_or(FeedId::ZERO),
        };
        if joining {
            let _ = backend.request_resnapshot(&f.scope, channel).await;
        }
        cursors.insert(channel.to_owned(), start);
        mark_started(f, channel, id, joining, Vec::new());
        return Ok(());
    };
    // The node already reads this channel: catch this consumer up from the snapshot.
    let mut catch_up = Vec::new();
    if let (true, Some(snap)) = (head.owned, head.snapshot) {
        if snap <= cursor {
            let limit = f.node.config.queue() / 2;
            let entries = backend.range(&f.scope, channel, snap, limit).await?;
            let reached = entries.iter().any(|(i, _)| *i >= cursor);
            if reached {
                catch_up = entries
                    .into_iter()
                    .filter(|(i, _)| *i <= cursor)
                    .map(|(_, e)| e)
                    .collect();
            } else {
                joining = true;
            }
        }
    }
    if joining {
        let _ = backend.request_resnapshot(&f.scope, channel).await;
    }
    mark_started(f, channel, id, joining, catch_up);
    Ok(())
}

fn mark_started(f: &Feeds, channel: &str, id: u64, joining: bool, catch_up: Vec<FeedEntry>) {
    let mut consumers = lock(&f.consumers);
    let Some(c) = consumers.get_mut(channel) else {
        return;
    };
    let name = c.name.clone();
    let Some(consumer) = c.consumers.iter_mut().find(|c| c.id == id) else {
        return;
    };
    consumer.started = true;
    if joining {
        consumer.position = Position::joining();
        consumer.queue.push(FeedEvent::Gap(GapReason::Joined));
    }
    for entry in &catch_up {
        for event in consumer.position.accept(&name, entry).events {
            consumer.queue.push(event);
        }
    }
}

async fn deliver<'a>(f: &Feeds, channel: &str, entries: impl Iterator<Item = &'a FeedEntry>) {
    let mut resnapshot = false;
    {
        let mut consumers = lock(&f.consumers);
        let Some(c) = consumers.get_mut(channel) else {
            return;
        };
        let name = c.name.clone();
        for entry in entries {
            for consumer in c.consumers.iter_mut().filter(|c| c.started) {
                let accepted = consumer.position.accept(&name, entry);
                resnapshot |= accepted.resnapshot;
                for event in accepted.events {
                    consumer.queue.push(event);
                }
            }
        }
    }
    if resnapshot {
        let _ = f.node.backend.request_resnapshot(&f.scope, channel).await;
    }
}
