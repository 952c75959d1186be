//! A rate budget shared by every node: [`DistributedLimiter`], nova-core's [`RateLimiter`] on a
//! token bucket kept by the backend.
//!
//! # The bucket
//!
//! One token bucket per key (an API key, an IP) on the backend, updated by one Lua script on the
//! server's clock: refill, then take `cost` tokens or answer how long to wait. Costs are the
//! caller's — the runtime passes each operation's cost from the client's
//! [`RateLimit`] — so the budget is cost-weighted exactly like the local
//! [`TokenBucket`](nova_core::TokenBucket). A bucket the backend does not have yet (first use,
//! or a backend restarted empty) starts **empty**: nobody gets a fresh burst on top of what was
//! just spent elsewhere. Granted tokens in any window of `T` seconds therefore never exceed
//! `capacity + refill × T` across the cluster.
//!
//! # Inside a client
//!
//! The runtime asks its limiter synchronously, on the connection task. So
//! [`RateLimiter::try_acquire`] never waits for the network: it spends a grant already fetched
//! for this cost, or records the demand, wakes a background task that asks the backend, and
//! answers "try again in a moment" (the runtime holds the send and retries). Grants are fetched
//! for exactly the cost asked and are spent at the runtime's retry, a few milliseconds later; a
//! grant not spent within 100 ms is dropped (never returned), so the bound above holds with
//! `T` widened by that hold. Priority work ([`RateLimiter::force_acquire`]: authentication,
//! heartbeats) is never held back: it is counted at once and sent to the backend as debt.
//!
//! For work that is not a client's send, [`DistributedLimiter::acquire`] waits for a grant
//! directly.
//!
//! # When the backend is unreachable
//!
//! The limiter falls back to a **local share**: a bucket of `capacity / N` refilled at
//! `refill / N`, starting empty, where `N` is the number of live nodes last seen — so the nodes
//! together stay within the budget. Every 250 ms it tries the backend again; once back, it first
//! charges the shared bucket with what it spent locally during the last window (the bucket's
//! fill time, at least a second), so work done during the outage is not spent a second time.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use nova_core::{RateLimit, RateLimiter};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::backend::{Bucket, Take};
use crate::cluster::{Cluster, Node};
use crate::telemetry::ClusterEventKind;

/// How long a fetched grant waits to be spent before it is dropped.
const GRANT_HOLD: Duration = Duration::from_millis(100);
/// How often an unreachable backend is tried again.
const PROBE_EVERY: Duration = Duration::from_millis(250);
/// The retry hint while a grant is being fetched.
const FETCH_HINT: Duration = Duration::from_millis(2);

/// A rate budget shared by every node of a cluster under one key (see the module docs).
///
/// ```no_run
/// use nova_cluster::{Cluster, ClusterConfig, MemoryBackend};
/// use nova_core::{Client, ClientConfig, DefaultHandler, RateLimit};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cluster = Cluster::join(ClusterConfig::new("a", "eu-west"), MemoryBackend::new("demo")).await?;
/// // 20 requests per second for the whole cluster, bursts of 5.
/// let budget = cluster.rate_limiter("api-key-1", RateLimit::new(5, 20.0));
/// budget.acquire(1).await; // direct use
/// let config = ClientConfig::builder("ws://127.0.0.1:9000").rate_limit(RateLimit::new(5, 20.0)).build()?;
/// let (client, _messages) = Client::connect_with(
///     config,
///     DefaultHandler,
///     Box::new(nova_core::InMemoryRegistry::default()),
///     Some(Box::new(budget.clone())), // every send of this client draws from the shared budget
/// );
/// # let _ = client; Ok(()) }
/// ```
#[derive(Clone)]
pub struct DistributedLimiter {
    shared: Arc<Shared>,
    wake: mpsc::Sender<()>,
}

impl std::fmt::Debug for DistributedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedLimiter")
            .field("key", &self.shared.key)
            .field("bucket", &self.shared.bucket)
            .field("degraded", &self.is_degraded())
            .finish()
    }
}

struct Shared {
    key: String,
    bucket: Bucket,
    node: Weak<Node>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    local: Option<LocalShare>,
    /// Grants fetched and not yet spent: (cost, when).
    granted: VecDeque<(u64, Instant)>,
    /// The cost waiting for a grant (0: none).
    demand: u64,
    /// Don't ask before this (the backend said wait).
    wait_until: Option<Instant>,
    /// Tokens taken by priority work, not yet charged to the backend.
    debit: u64,
    /// Tokens spent on the local share: (when, cost).
    spent_locally: VecDeque<(Instant, u64)>,
}

/// The local share used while the backend is unreachable.
struct LocalShare {
    capacity: f64,
    refill: f64,
    tokens: f64,
    updated: Instant,
}

impl LocalShare {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.refill).min(self.capacity);
        self.updated = now;
    }

    fn try_take(&mut self, cost: u64, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        let cost = cost as f64;
        let needed = cost.min(self.capacity);
        if self.tokens >= needed {
            self.tokens -= cost;
            return Ok(());
        }
        if self.refill <= 0.0 {
            return Err(Duration::from_secs(3600));
        }
        Err(
            Duration::from_secs_f64((needed - self.tokens) / self.refill)
                .max(Duration::from_millis(1)),
        )
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Cluster {
    /// The shared budget `key` with `limit`'s capacity and refill (costs come from each client's
    /// own `RateLimit`). Every node must give the same `limit` for the same key.
    #[must_use]
    pub fn rate_limiter(&self, key: impl Into<String>, limit: RateLimit) -> DistributedLimiter {
        let bucket = Bucket {
            capacity: u64::from(limit.capacity()),
            refill_per_second: limit.refill_per_second(),
        };
        let shared = Arc::new(Shared {
            key: key.into(),
            bucket,
            node: Arc::downgrade(&self.node),
            state: Mutex::new(State::default()),
        });
        let (wake, rx) = mpsc::channel(1);
        self.node.spawn(run_fetcher(Arc::downgrade(&shared), rx));
        DistributedLimiter { shared, wake }
    }
}

impl Shared {
    /// The window over which local spending is charged back: the bucket's fill time, at least 1 s.
    fn window(&self) -> Duration {
        let fill = if self.bucket.refill_per_second > 0.0 {
            self.bucket.capacity as f64 / self.bucket.refill_per_second
        } else {
            0.0
        };
        Duration::from_secs_f64(fill.max(1.0))
    }

    fn emit(&self, kind: ClusterEventKind) {
        if let Some(node) = self.node.upgrade() {
            node.telemetry.emit(kind);
        }
    }

    /// Switches to the local share (when not on it already).
    fn degrade(&self, now: Instant) {
        let mut st = lock(&self.state);
        if st.local.is_some() {
            return;
        }
        let n = self
            .node
            .upgrade()
            .map(|n| n.peak_members.load(Ordering::Relaxed).max(1))
            .unwrap_or(1) as f64;
        st.local = Some(LocalShare {
            capacity: (self.bucket.capacity as f64 / n).max(1.0),
            refill: self.bucket.refill_per_second / n,
            tokens: 0.0,
            updated: now,
        });
        st.granted.clear();
        drop(st);
        self.emit(ClusterEventKind::RateLimitDegraded {
            key: self.key.clone(),
            share: 1.0 / n,
        });
    }

    /// What was spent locally during the last window (charged to the backend on return).
    fn local_debt(&self, st: &mut State, now: Instant) -> u64 {
        let window = self.window();
        while st
            .spent_locally
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > window)
        {
            st.spent_locally.pop_front();
        }
        st.spent_locally.iter().map(|(_, c)| c).sum()
    }
}

impl DistributedLimiter {
    /// The budget's key.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.shared.key
    }

    /// Whether the limiter is on its local share (backend unreachable).
    #[must_use]
    pub fn is_degraded(&self) -> bool {
        lock(&self.shared.state).local.is_some()
    }

    /// Takes `cost` tokens now, or says how long to wait. Asks the backend (one round trip).
    ///
    /// # Errors
    /// The wait, when the budget is short.
    pub async fn try_take(&self, cost: u64) -> Result<(), Duration> {
        let now = Instant::now();
        let debit = {
            let mut st = lock(&self.shared.state);
            if let Some(local) = st.local.as_mut() {
                let taken = local.try_take(cost, now);
                if taken.is_ok() {
                    st.spent_locally.push_back((now, cost));
                }
                return taken;
            }
            std::mem::take(&mut st.debit)
        };
        let Some(node) = self.shared.node.upgrade() else {
            return Err(Duration::from_secs(1));
        };
        match node
            .backend
            .take(&self.shared.key, self.shared.bucket, cost, debit, false)
            .await
        {
            Ok(Take::Granted) => Ok(()),
            Ok(Take::Wait(wait)) => {
                self.shared.emit(ClusterEventKind::RateLimited {
                    key: self.shared.key.clone(),
                    cost,
                    wait,
                });
                Err(wait)
            }
            Err(_) => {
                lock(&self.shared.state).debit += debit;
                self.shared.degrade(now);
                let _ = self.wake.try_send(());
                Err(Duration::from_millis(1))
            }
        }
    }

    /// Waits until `cost` tokens are granted.
    pub async fn acquire(&self, cost: u64) {
        while let Err(wait) = self.try_take(cost).await {
            tokio::time::sleep(wait).await;
        }
    }
}

impl RateLimiter for DistributedLimiter {
    fn try_acquire(&mut self, cost: u32, now: Instant) -> Result<(), Duration> {
        let cost = u64::from(cost);
        let mut st = lock(&self.shared.state);
        if let Some(local) = st.local.as_mut() {
            let taken = local.try_take(cost, now);
            if taken.is_ok() {
                st.spent_locally.push_back((now, cost));
            }
            return taken;
        }
        while st
            .granted
            .front()
            .is_some_and(|(_, at)| now.saturating_duration_since(*at) > GRANT_HOLD)
        {
            st.granted.pop_front();
        }
        if let Some(i) = st.granted.iter().position(|(c, _)| *c >= cost) {
            st.granted.remove(i);
            return Ok(());
        }
        st.demand = st.demand.max(cost);
        let hint = st
            .wait_until
            .and_then(|t| t.checked_duration_since(now))
            .unwrap_or(FETCH_HINT)
            .max(FETCH_HINT);
        drop(st);
        let _ = self.wake.try_send(());
        Err(hint)
    }

    fn force_acquire(&mut self, cost: u32, now: Instant) {
        let cost = u64::from(cost);
        let mut st = lock(&self.shared.state);
        if let Some(local) = st.local.as_mut() {
            local.refill(now);
            local.tokens -= cost as f64;
            st.spent_locally.push_back((now, cost));
            return;
        }
        st.debit += cost;
        drop(st);
        let _ = self.wake.try_send(());
    }
}

/// Fetches grants for the demand, charges debts, and probes the backend while degraded.
async fn run_fetcher(shared: Weak<Shared>, mut wake: mpsc::Receiver<()>) {
    loop {
        let Some(s) = shared.upgrade() else { return };
        let (degraded, demand, debit, wait_until) = {
            let st = lock(&s.state);
            (st.local.is_some(), st.demand, st.debit, st.wait_until)
        };
        let now = Instant::now();
        let pause = if degraded {
            Some(PROBE_EVERY)
        } else if demand == 0 && debit == 0 {
            None
        } else {
            wait_until.and_then(|t| t.checked_duration_since(now))
        };
        drop(s);
        if let Some(p) = pause {
            tokio::select! {
                _ = tokio::time::sleep(p) => {}
                w = wake.recv() => if w.is_none() { return },
            }
        } else if demand == 0 && debit == 0 && wake.recv().await.is_none() {
            return;
        }
        let Some(s) = shared.upgrade() else { return };
        let Some(node) = s.node.upgrade() else { return };
        let now = Instant::now();
        let (degraded, demand, pending, local) = {
            let mut st = lock(&s.state);
            let pending = std::mem::take(&mut st.debit);
            let local = if st.local.is_some() {
                s.local_debt(&mut st, now)
            } else {
                0
            };
            (st.local.is_some(), st.demand, pending, local)
        };
        let debit = pending + local;
        let cost = if degraded { 0 } else { demand };
        match node
            .backend
            .take(&s.key, s.bucket, cost, debit, false)
            .await
        {
            Ok(answer) => {
                let mut st = lock(&s.state);
                if degraded {
                    st.local = None;
                    st.spent_locally.clear();
                    drop(st);
                    s.emit(ClusterEventKind::RateLimitRestored { key: s.key.clone() });
                    continue;
                }
                match answer {
                    Take::Granted => {
                        if cost > 0 {
                            st.granted.push_back((cost, Instant::now()));
                            if st.demand <= cost {
                                st.demand = 0;
                            }
                        }
                        st.wait_until = None;
                    }
                    Take::Wait(wait) => {
                        st.wait_until = Some(Instant::now() + wait);
                        drop(st);
                        if cost > 0 {
                            s.emit(ClusterEventKind::RateLimited {
                                key: s.key.clone(),
                                cost,
                                wait,
                            });
                        }
                    }
                }
            }
            Err(_) => {
                node.telemetry.backend_error();
                // Debt not charged yet stays for the return (local spending is counted again
                // from its log then).
                lock(&s.state).debit += pending;
                if !degraded {
                    s.degrade(now);
                }
            }
        }
    }
}
