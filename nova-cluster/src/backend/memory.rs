//! The in-process backend: the same semantics as Redis, in a mutex-guarded map.
//!
//! Several nodes in one process share one [`MemoryBackend`] (clone it: clones share the
//! store). Time is tokio's clock. Feeds are bounded like the Redis ones (`max_len` entries;
//! entries before the last snapshot are dropped when it is written).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{
    Acquire, Backend, BackendFuture, Bucket, FeedBatch, FeedEntry, FeedHead, FeedId, Holder,
    LeaseInfo, Members, NodeInfo, NodeRegistry, PreviousLease, Publish, Renewal, Take,
    WantedChannel, resource,
};

/// How long a "left" marker is kept.
const LEFT_MARKER: Duration = Duration::from_secs(60);
/// The default feed length bound.
const DEFAULT_MAX_LEN: usize = 10_000;

/// The in-process backend. Cheap to clone; clones share the store.
///
/// ```
/// use nova_cluster::{Backend, MemoryBackend};
///
/// let store = MemoryBackend::new("demo");
/// let for_another_node = store.clone();
/// assert_eq!(for_another_node.cluster(), "demo");
/// assert_eq!(store.kind(), "memory");
/// ```
#[derive(Clone)]
pub struct MemoryBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("cluster", &self.inner.cluster)
            .finish_non_exhaustive()
    }
}

struct Inner {
    cluster: String,
    max_len: usize,
    state: Mutex<State>,
    appended: Notify,
}

#[derive(Default)]
struct State {
    nodes: BTreeMap<String, (NodeInfo, Instant)>,
    left: BTreeMap<String, (String, Instant)>,
    leases: BTreeMap<String, Lease>,
    /// Last holder of each resource (for failover durations).
    last_holder: HashMap<String, (Holder, u64, Instant, Duration)>,
    fences: HashMap<String, u64>,
    interest: HashMap<(String, String), (Interest, Instant)>,
    feeds: HashMap<String, Feed>,
    resnapshot: HashMap<String, bool>,
    registries: BTreeMap<(String, String), (NodeRegistry, Instant)>,
    buckets: HashMap<String, (f64, Instant)>,
}

/// The channels one node wants in one scope, with their options.
type Interest = Vec<(String, serde_json::Value)>;

struct Lease {
    holder: Holder,
    token: u64,
    expires: Instant,
}

#[derive(Default)]
struct Feed {
    entries: VecDeque<(FeedId, FeedEntry)>,
    next: u64,
    snapshot: Option<FeedId>,
    /// Last `(token, n)` written.
    written: (u64, u64),
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryBackend {
    /// A new, empty store for the cluster `name`.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_max_len(name, DEFAULT_MAX_LEN)
    }

    /// A new store whose feeds keep at most `max_len` entries each.
    #[must_use]
    pub fn with_max_len(name: impl Into<String>, max_len: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                cluster: name.into(),
                max_len: max_len.max(16),
                state: Mutex::new(State::default()),
                appended: Notify::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        let mut s = lock(&self.inner.state);
        s.expire(Instant::now());
        s
    }
}

impl State {
    fn expire(&mut self, now: Instant) {
        self.nodes.retain(|_, (_, until)| *until > now);
        self.left.retain(|_, (_, until)| *until > now);
        self.leases.retain(|_, l| l.expires > now);
        self.interest.retain(|_, (_, until)| *until > now);
        self.registries.retain(|_, (_, until)| *until > now);
    }

    fn lease_info(resource: &str, l: &Lease, now: Instant) -> LeaseInfo {
        LeaseInfo {
            resource: resource.to_owned(),
            holder: l.holder.clone(),
            token: l.token,
            remaining: l.expires.saturating_duration_since(now),
        }
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BackendFuture<'a, T> {
    Box::pin(std::future::ready(Ok(value)))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

impl Backend for MemoryBackend {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn cluster(&self) -> &str {
        &self.inner.cluster
    }

    fn heartbeat<'a>(&'a self, node: &'a NodeInfo, ttl: Duration) -> BackendFuture<'a, ()> {
        let now = Instant::now();
        self.state()
            .nodes
            .insert(node.id.clone(), (node.clone(), now + ttl));
        ready(())
    }

    fn leave<'a>(&'a self, node: &'a NodeInfo) -> BackendFuture<'a, ()> {
        let now = Instant::now();
        let mut s = self.state();
        if s.nodes
            .get(&node.id)
            .is_some_and(|(n, _)| n.instance == node.instance)
        {
            s.nodes.remove(&node.id);
        }
        s.left
            .insert(node.id.clone(), (node.instance.clone(), now + LEFT_MARKER));
        ready(())
    }

    fn members(&self) -> BackendFuture<'_, Members> {
        let s = self.state();
        let members = Members {
            live: s.nodes.values().map(|(n, _)| n.clone()).collect(),
            left: s
                .left
                .iter()
                .map(|(id, (instance, _))| (id.clone(), instance.clone()))
                .collect(),
        };
        ready(members)
    }

    fn acquire<'a>(
        &'a self,
        resource: &'a str,
        holder: &'a Holder,
        ttl: Duration,
        floor: u64,
    ) -> BackendFuture<'a, Acquire> {
        let now = Instant::now();
        let mut s = self.state();
        if let Some(l) = s.leases.get(resource) {
            return ready(Acquire::Held(State::lease_info(resource, l, now)));
        }
        let fence = s.fences.entry(resource.to_owned()).or_default();
        let token = (*fence + 1).max(floor + 1).max(now_ms());
        *fence = token;
        let previous = s
            .last_holder
            .get(resource)
            .map(|(h, t, renewed, _)| PreviousLease {
                holder: h.clone(),
                token: *t,
                since_renewal: now.saturating_duration_since(*renewed),
            });
        s.leases.insert(
            resource.to_owned(),
            Lease {
                holder: holder.clone(),
                token,
                expires: now + ttl,
            },
        );
        s.last_holder
            .insert(resource.to_owned(), (holder.clone(), token, now, ttl));
        s.resnapshot.remove(resource);
        ready(Acquire::Granted { token, previous })
    }

    fn renew<'a>(
        &'a self,
        leases: &'a [(String, u64)],
        holder: &'a Holder,
        ttl: Duration,
    ) -> BackendFuture<'a, Vec<Renewal>> {
        let now = Instant::now();
        let mut s = self.state();
        let mut out = Vec::with_capacity(leases.len());
        for (resource, token) in leases {
            let held = match s.leases.get_mut(resource) {
                Some(l) if l.holder == *holder && l.token == *token => {
                    l.expires = now + ttl;
                    true
                }
                _ => false,
            };
            if held {
                s.last_holder
                    .insert(resource.clone(), (holder.clone(), *token, now, ttl));
            }
            let resnapshot = held && s.resnapshot.remove(resource).unwrap_or(false);
            out.push(Renewal { held, resnapshot });
        }
        ready(out)
    }

    fn release<'a>(
        &'a self,
        resource: &'a str,
        holder: &'a Holder,
        token: u64,
    ) -> BackendFuture<'a, bool> {
        let mut s = self.state();
        let ours = s
            .leases
            .get(resource)
            .is_some_and(|l| l.holder == *holder && l.token == token);
        if ours {
            s.leases.remove(resource);
            s.last_holder.remove(resource);
            s.feeds.remove(resource);
        }
        ready(ours)
    }

    fn leases(&self) -> BackendFuture<'_, Vec<LeaseInfo>> {
        let now = Instant::now();
        let s = self.state();
        let all = s
            .leases
            .iter()
            .map(|(r, l)| State::lease_info(r, l, now))
            .collect();
        ready(all)
    }

    fn set_interest<'a>(
        &'a self,
        scope: &'a str,
        node: &'a str,
        channels: &'a [(String, serde_json::Value)],
        ttl: Duration,
    ) -> BackendFuture<'a, ()> {
        let now = Instant::now();
        let mut s = self.state();
        let key = (scope.to_owned(), node.to_owned());
        if channels.is_empty() {
            s.interest.remove(&key);
        } else {
            s.interest.insert(key, (channels.to_vec(), now + ttl));
        }
        ready(())
    }

    fn wanted<'a>(&'a self, scope: &'a str) -> BackendFuture<'a, Vec<WantedChannel>> {
        let now = Instant::now();
        let s = self.state();
        let mut wanted: BTreeMap<String, WantedChannel> = BTreeMap::new();
        for ((sc, node), (channels, _)) in &s.interest {
            if sc != scope || !s.nodes.contains_key(node) {
                continue;
            }
            for (channel, options) in channels {
                let w = wanted
                    .entry(channel.clone())
                    .or_insert_with(|| WantedChannel {
                        channel: channel.clone(),
                        options: options.clone(),
                        wanted_by: Vec::new(),
                        lease: None,
                    });
                w.wanted_by.push(node.clone());
            }
        }
        for w in wanted.values_mut() {
            w.wanted_by.sort();
            let r = resource(scope, &w.channel);
            w.lease = s.leases.get(&r).map(|l| State::lease_info(&r, l, now));
        }
        ready(wanted.into_values().collect())
    }

    fn publish<'a>(
        &'a self,
        scope: &'a str,
        channel: &'a str,
        holder: &'a Holder,
        entries: &'a [FeedEntry],
    ) -> BackendFuture<'a, Publish> {
        let r = resource(scope, channel);
        let max_len = self.inner.max_len;
        let mut s = self.state();
        let Some(lease) = s.leases.get(&r) else {
            return ready(Publish::Fenced);
        };
        if lease.holder != *holder || entries.iter().any(|e| e.token != lease.token) {
            return ready(Publish::Fenced);
        }
        let feed = s.feeds.entry(r).or_default();
        for entry in entries {
            if (entry.token, entry.n) <= feed.written {
                continue;
            }
            feed.written = (entry.token, entry.n);
            feed.next += 1;
            let id = FeedId {
                ms: 0,
                seq: feed.next,
            };
            if entry.is_snapshot() {
                feed.snapshot = Some(id);
                while feed.entries.front().is_some_and(|(i, _)| *i < id) {
                    feed.entries.pop_front();
                }
            }
            feed.entries.push_back((id, entry.clone()));
            while feed.entries.len() > max_len {
                feed.entries.pop_front();
            }
        }
        drop(s);
        self.inner.appended.notify_waiters();
        ready(Publish::Written)
    }

    fn read<'a>(
        &'a self,
        scope: &'a str,
        cursors: &'a [(String, FeedId)],
        count: usize,
        block: Duration,
    ) -> BackendFuture<'a, Vec<FeedBatch>> {
        Box::pin(async move {
            let deadline = Instant::now() + block;
            loop {
                // Registered before looking, so an append in between is not missed.
                let appended = self.inner.appended.notified();
                let batches = {
                    let s = self.state();
                    let mut batches = Vec::new();
                    for (channel, after) in cursors {
                        let Some(feed) = s.feeds.get(&resource(scope, channel)) else {
                            continue;
                        };
                        let found: Vec<_> = feed
                            .entries
                            .iter()
                            .filter(|(id, _)| id > after)
                            .take(count)
                            .cloned()
                            .collect();
                        if !found.is_empty() {
                            batches.push((channel.clone(), found));
                        }
                    }
                    batches
                };
                if !batches.is_empty() || Instant::now() >= deadline {
                    return Ok(batches);
                }
                let _ = tokio::time::timeout_at(deadline, appended).await;
            }
        })
    }

    fn range<'a>(
        &'a self,
        scope: &'a str,
        channel: &'a str,
        from: FeedId,
        count: usize,
    ) -> BackendFuture<'a, Vec<(FeedId, FeedEntry)>> {
        let s = self.state();
        let found = s
            .feeds
            .get(&resource(scope, channel))
            .map(|feed| {
                feed.entries
                    .iter()
                    .filter(|(id, _)| *id >= from)
                    .take(count)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        ready(found)
    }

    fn head<'a>(&'a self, scope: &'a str, channel: &'a str) -> BackendFuture<'a, FeedHead> {
        let s = self.state();
        let r = resource(scope, channel);
        let owned = s.leases.contains_key(&r);
        let head = s
            .feeds
            .get(&r)
            .map(|feed| FeedHead {
                last: feed.entries.back().map(|(id, _)| *id),
                snapshot: feed
                    .snapshot
                    .filter(|snap| feed.entries.front().is_some_and(|(id, _)| id <= snap)),
                owned,
                sequenced: feed.snapshot.is_some(),
            })
            .unwrap_or(FeedHead {
                owned,
                ..FeedHead::default()
            });
        ready(head)
    }

    fn request_resnapshot<'a>(&'a self, scope: &'a str, channel: &'a str) -> BackendFuture<'a, ()> {
        self.state()
            .resnapshot
            .insert(resource(scope, channel), true);
        ready(())
    }

    fn put_registry<'a>(
        &'a self,
        registry: &'a NodeRegistry,
        ttl: Duration,
    ) -> BackendFuture<'a, ()> {
        let now = Instant::now();
        self.state().registries.insert(
            (registry.node.clone(), registry.client.clone()),
            (registry.clone(), now + ttl),
        );
        ready(())
    }

    fn registries(&self) -> BackendFuture<'_, Vec<NodeRegistry>> {
        let s = self.state();
        ready(s.registries.values().map(|(r, _)| r.clone()).collect())
    }

    fn take<'a>(
        &'a self,
        key: &'a str,
        bucket: Bucket,
        cost: u64,
        debit: u64,
        force: bool,
    ) -> BackendFuture<'a, Take> {
        let now = Instant::now();
        let mut s = self.state();
        let capacity = bucket.capacity as f64;
        let (tokens, updated) = s.buckets.entry(key.to_owned()).or_insert((0.0, now));
        let elapsed = now.saturating_duration_since(*updated).as_secs_f64();
        *tokens = (*tokens + elapsed * bucket.refill_per_second).min(capacity);
        *updated = now;
        *tokens -= debit as f64;
        let cost = cost as f64;
        let needed = cost.min(capacity);
        let answer = if force || *tokens >= needed {
            *tokens -= cost;
            Take::Granted
        } else if bucket.refill_per_second > 0.0 {
            let wait = (needed - *tokens) / bucket.refill_per_second;
            Take::Wait(Duration::from_secs_f64(wait).max(Duration::from_millis(1)))
        } else {
            Take::Wait(Duration::from_secs(3600))
        };
        ready(answer)
    }
}
