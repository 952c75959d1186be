//! Cluster telemetry: the seed's cluster events, emitted the three ways nova-core emits its own.
//!
//! Every [`ClusterEvent`] is
//! 1. a `tracing` event (target `nova_cluster`) with `cluster` and `node` fields;
//! 2. a `metrics` counter, histogram or gauge, labelled with `cluster` and `node` (table below);
//! 3. handed to the handlers attached with [`attach`] (the seed's `:telemetry.attach`), and to
//!    every receiver of [`Cluster::events`](crate::Cluster::events).
//!
//! | metric | kind | extra labels | what |
//! |---|---|---|---|
//! | `nova_cluster_nodes_joined_total` | counter | | nodes seen joining |
//! | `nova_cluster_nodes_gone_total` | counter | `how` (`left`, `expired`) | nodes seen leaving or expiring |
//! | `nova_cluster_live_nodes` | gauge | | live nodes in this node's view |
//! | `nova_cluster_leases_acquired_total` | counter | | leases this node took |
//! | `nova_cluster_leases_lost_total` | counter | `reason` | leases this node lost |
//! | `nova_cluster_leases_released_total` | counter | | leases this node gave up |
//! | `nova_cluster_owned_channels` | gauge | | upstream subscriptions this node owns |
//! | `nova_cluster_failovers_total` | counter | | channels this node took over from a dead owner |
//! | `nova_cluster_failover_duration_seconds` | histogram | | last renewal of the dead owner → upstream subscribed here |
//! | `nova_cluster_rate_limit_denials_total` | counter | `key` | shared-budget denials |
//! | `nova_cluster_backend_errors_total` | counter | | failed backend operations |
//!
//! Labels are bounded: the cluster and node names are configuration, `key` is a configured
//! rate-limit key, `reason` and `how` come from fixed sets; channels appear only in tracing
//! fields and events, never in metric labels.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

/// What happened in the cluster, with its measurements.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ClusterEventKind {
    /// A node joined (seen by this node).
    NodeJoined {
        /// Its id.
        node: String,
        /// Its region.
        region: String,
    },
    /// A node left with a goodbye.
    NodeLeft {
        /// Its id.
        node: String,
    },
    /// A node stopped renewing its presence (died, or lost the backend).
    NodeExpired {
        /// Its id.
        node: String,
    },
    /// This node took the lease of a channel.
    LeaseAcquired {
        /// The channel (`scope/channel`).
        channel: String,
        /// The fencing token.
        token: u64,
    },
    /// This node lost the lease of a channel and stopped its upstream subscription.
    LeaseLost {
        /// The channel.
        channel: String,
        /// The token it held.
        token: u64,
        /// `taken` (someone else holds it), `expired` (not renewed in time), `fenced` (a write
        /// was refused), `upstream_stopped` (the upstream client stopped).
        reason: &'static str,
    },
    /// This node gave up the lease of a channel nobody wants any more (or on leaving).
    LeaseReleased {
        /// The channel.
        channel: String,
        /// The token it held.
        token: u64,
    },
    /// This node subscribed upstream to a channel it owns.
    UpstreamSubscribed {
        /// The channel.
        channel: String,
        /// From the lease grant to the verified subscription.
        duration: Duration,
    },
    /// This node took over a channel whose owner died.
    Failover {
        /// The channel.
        channel: String,
        /// The dead owner's node id.
        from: String,
        /// From the dead owner's last lease renewal to the upstream subscription here.
        duration: Duration,
    },
    /// The shared rate budget made work wait.
    RateLimited {
        /// The budget's key.
        key: String,
        /// The cost asked for.
        cost: u64,
        /// How long it must wait.
        wait: Duration,
    },
    /// The shared rate limiter fell back to its local share (backend unreachable).
    RateLimitDegraded {
        /// The budget's key.
        key: String,
        /// The fraction of the budget used locally.
        share: f64,
    },
    /// The shared rate limiter is back on the shared budget.
    RateLimitRestored {
        /// The budget's key.
        key: String,
    },
    /// The backend could not be reached.
    BackendUnavailable {
        /// The error.
        error: String,
    },
    /// The backend answers again.
    BackendRestored {
        /// How long it was unavailable.
        after: Duration,
    },
}

impl ClusterEventKind {
    /// A short name: `node_joined`, `lease_lost`, `failover`, ...
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::NodeJoined { .. } => "node_joined",
            Self::NodeLeft { .. } => "node_left",
            Self::NodeExpired { .. } => "node_expired",
            Self::LeaseAcquired { .. } => "lease_acquired",
            Self::LeaseLost { .. } => "lease_lost",
            Self::LeaseReleased { .. } => "lease_released",
            Self::UpstreamSubscribed { .. } => "upstream_subscribed",
            Self::Failover { .. } => "failover",
            Self::RateLimited { .. } => "rate_limited",
            Self::RateLimitDegraded { .. } => "rate_limit_degraded",
            Self::RateLimitRestored { .. } => "rate_limit_restored",
            Self::BackendUnavailable { .. } => "backend_unavailable",
            Self::BackendRestored { .. } => "backend_restored",
        }
    }

    /// The event's fields as JSON (durations in milliseconds).
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let ms = |d: &Duration| d.as_secs_f64() * 1e3;
        match self {
            Self::NodeJoined { node, region } => json!({"node": node, "region": region}),
            Self::NodeLeft { node } | Self::NodeExpired { node } => json!({"node": node}),
            Self::LeaseAcquired { channel, token } | Self::LeaseReleased { channel, token } => {
                json!({"channel": channel, "token": token})
            }
            Self::LeaseLost {
                channel,
                token,
                reason,
            } => json!({"channel": channel, "token": token, "reason": reason}),
            Self::UpstreamSubscribed { channel, duration } => {
                json!({"channel": channel, "duration_ms": ms(duration)})
            }
            Self::Failover {
                channel,
                from,
                duration,
            } => json!({"channel": channel, "from": from, "duration_ms": ms(duration)}),
            Self::RateLimited { key, cost, wait } => {
                json!({"key": key, "cost": cost, "wait_ms": ms(wait)})
            }
            Self::RateLimitDegraded { key, share } => json!({"key": key, "share": share}),
            Self::RateLimitRestored { key } => json!({"key": key}),
            Self::BackendUnavailable { error } => json!({"error": error}),
            Self::BackendRestored { after } => json!({"after_ms": ms(after)}),
        }
    }
}

/// An event with its metadata.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ClusterEvent {
    /// The cluster's name.
    pub cluster: Arc<str>,
    /// The node that saw or did it.
    pub node: Arc<str>,
    /// When.
    pub system_time: SystemTime,
    /// What, with its measurements.
    pub kind: ClusterEventKind,
}

impl ClusterEvent {
    /// One JSON object: `{"event": NAME, "cluster", "node", "time_ms", ...fields}`.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = self.kind.to_json();
        let time_ms = self
            .system_time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        if let Some(map) = v.as_object_mut() {
            map.insert("event".into(), self.kind.name().into());
            map.insert("cluster".into(), self.cluster.as_ref().into());
            map.entry("node")
                .or_insert_with(|| self.node.as_ref().into());
            map.insert("reporter".into(), self.node.as_ref().into());
            map.insert("time_ms".into(), serde_json::json!(time_ms));
        }
        v
    }
}

/// A user's handler of cluster events.
pub trait ClusterEventHandler: Send + Sync + 'static {
    /// Called for every event of every node of the process; keep it quick.
    fn handle(&self, event: &ClusterEvent);
}

impl<F: Fn(&ClusterEvent) + Send + Sync + 'static> ClusterEventHandler for F {
    fn handle(&self, event: &ClusterEvent) {
        self(event);
    }
}

/// Identifies an attached handler, for [`detach`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HandlerId(u64);

type Handlers = Vec<(HandlerId, Arc<dyn ClusterEventHandler>)>;

static HANDLERS: RwLock<Handlers> = RwLock::new(Vec::new());
static ATTACHED: AtomicUsize = AtomicUsize::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Attaches a handler that sees every cluster event of the process.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use nova_cluster::telemetry::{self, ClusterEvent, ClusterEventKind};
///
/// let failovers = Arc::new(Mutex::new(Vec::new()));
/// let id = telemetry::attach({
///     let failovers = failovers.clone();
///     move |e: &ClusterEvent| {
///         if let ClusterEventKind::Failover { duration, .. } = &e.kind {
///             failovers.lock().unwrap().push(*duration);
///         }
///     }
/// });
/// telemetry::detach(id);
/// ```
pub fn attach(handler: impl ClusterEventHandler) -> HandlerId {
    let id = HandlerId(NEXT_ID.fetch_add(1, Ordering::Relaxed));
    if let Ok(mut handlers) = HANDLERS.write() {
        handlers.push((id, Arc::new(handler)));
        ATTACHED.store(handlers.len(), Ordering::Release);
    }
    id
}

/// Detaches a handler.
pub fn detach(id: HandlerId) {
    if let Ok(mut handlers) = HANDLERS.write() {
        handlers.retain(|(h, _)| *h != id);
        ATTACHED.store(handlers.len(), Ordering::Release);
    }
}

/// One node's telemetry: labels, and the broadcast of its events.
pub(crate) struct Telemetry {
    cluster: Arc<str>,
    node: Arc<str>,
    events: broadcast::Sender<ClusterEvent>,
}

/// Capacity of each node's event broadcast; slower readers skip ahead (`Lagged`).
const EVENT_CAPACITY: usize = 1024;

impl Telemetry {
    pub(crate) fn new(cluster: &str, node: &str) -> Self {
        Self {
            cluster: Arc::from(cluster),
            node: Arc::from(node),
            events: broadcast::channel(EVENT_CAPACITY).0,
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<ClusterEvent> {
        self.events.subscribe()
    }

    fn labels(&self) -> [(&'static str, String); 2] {
        [
            ("cluster", self.cluster.to_string()),
            ("node", self.node.to_string()),
        ]
    }

    pub(crate) fn live_nodes(&self, count: usize) {
        metrics::gauge!("nova_cluster_live_nodes", &self.labels()).set(count as f64);
    }

    pub(crate) fn owned(&self, count: usize) {
        metrics::gauge!("nova_cluster_owned_channels", &self.labels()).set(count as f64);
    }

    pub(crate) fn backend_error(&self) {
        metrics::counter!("nova_cluster_backend_errors_total", &self.labels()).increment(1);
    }

    pub(crate) fn emit(&self, kind: ClusterEventKind) {
        let labels = self.labels();
        let (cluster, node) = (&*self.cluster, &*self.node);
        match &kind {
            ClusterEventKind::NodeJoined { node: who, region } => {
                metrics::counter!("nova_cluster_nodes_joined_total", &labels).increment(1);
                tracing::info!(target: "nova_cluster", cluster, node, joined = %who, %region, "node joined");
            }
            ClusterEventKind::NodeLeft { node: who } => {
                let mut l = labels.to_vec();
                l.push(("how", "left".to_owned()));
                metrics::counter!("nova_cluster_nodes_gone_total", &l).increment(1);
                tracing::info!(target: "nova_cluster", cluster, node, left = %who, "node left");
            }
            ClusterEventKind::NodeExpired { node: who } => {
                let mut l = labels.to_vec();
                l.push(("how", "expired".to_owned()));
                metrics::counter!("nova_cluster_nodes_gone_total", &l).increment(1);
                tracing::warn!(target: "nova_cluster", cluster, node, expired = %who, "node expired");
            }
            ClusterEventKind::LeaseAcquired { channel, token } => {
                metrics::counter!("nova_cluster_leases_acquired_total", &labels).increment(1);
                tracing::info!(target: "nova_cluster", cluster, node, %channel, token, "lease acquired");
            }
            ClusterEventKind::LeaseLost {
                channel,
                token,
                reason,
            } => {
                let mut l = labels.to_vec();
                l.push(("reason", (*reason).to_owned()));
                metrics::counter!("nova_cluster_leases_lost_total", &l).increment(1);
                tracing::warn!(target: "nova_cluster", cluster, node, %channel, token, reason, "lease lost");
            }
            ClusterEventKind::LeaseReleased { channel, token } => {
                metrics::counter!("nova_cluster_leases_released_total", &labels).increment(1);
                tracing::info!(target: "nova_cluster", cluster, node, %channel, token, "lease released");
            }
            ClusterEventKind::UpstreamSubscribed { channel, duration } => {
                tracing::info!(target: "nova_cluster", cluster, node, %channel,
                    duration_ms = duration.as_secs_f64() * 1e3, "subscribed upstream");
            }
            ClusterEventKind::Failover {
                channel,
                from,
                duration,
            } => {
                metrics::counter!("nova_cluster_failovers_total", &labels).increment(1);
                metrics::histogram!("nova_cluster_failover_duration_seconds", &labels)
                    .record(duration.as_secs_f64());
                tracing::warn!(target: "nova_cluster", cluster, node, %channel, %from,
                    duration_ms = duration.as_secs_f64() * 1e3, "failover");
            }
            ClusterEventKind::RateLimited { key, cost, wait } => {
                let mut l = labels.to_vec();
                l.push(("key", key.clone()));
                metrics::counter!("nova_cluster_rate_limit_denials_total", &l).increment(1);
                tracing::debug!(target: "nova_cluster", cluster, node, %key, cost,
                    wait_ms = wait.as_secs_f64() * 1e3, "shared rate budget: waiting");
            }
            ClusterEventKind::RateLimitDegraded { key, share } => {
                tracing::warn!(target: "nova_cluster", cluster, node, %key, share,
                    "shared rate budget unreachable: using a local share");
            }
            ClusterEventKind::RateLimitRestored { key } => {
                tracing::info!(target: "nova_cluster", cluster, node, %key, "shared rate budget back");
            }
            ClusterEventKind::BackendUnavailable { error } => {
                tracing::warn!(target: "nova_cluster", cluster, node, %error, "cluster backend unavailable");
            }
            ClusterEventKind::BackendRestored { after } => {
                tracing::info!(target: "nova_cluster", cluster, node,
                    after_ms = after.as_secs_f64() * 1e3, "cluster backend restored");
            }
        }
        let event = ClusterEvent {
            cluster: self.cluster.clone(),
            node: self.node.clone(),
            system_time: SystemTime::now(),
            kind,
        };
        if ATTACHED.load(Ordering::Acquire) > 0 {
            if let Ok(handlers) = HANDLERS.read() {
                for (_, h) in handlers.iter() {
                    h.handle(&event);
                }
            }
        }
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }
}
