//! A node of a cluster: [`Cluster`], its membership and its view of the others.
//!
//! Joining starts one task that, every quarter of the TTL, renews this node's presence (its id,
//! instance, region and load) and reads the live members; the difference between two reads gives
//! the membership events (a node that disappeared after a goodbye *left*, one that did not
//! *expired*). When the backend cannot be reached the task keeps trying, says so once
//! ([`ClusterEventKind::BackendUnavailable`]) and says when it is back.
//!
//! [`Cluster::state`] reads the whole picture from the backend: live nodes, their regions and
//! loads, and the leases each holds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::backend::{
    Backend, Holder, LeaseInfo, MemoryBackend, NodeInfo, NodeRegistry, RedisBackend,
};
use crate::error::ClusterError;
use crate::geo::{DistanceTable, GeoRouter};
use crate::settings::{ClusterSettings, DEFAULT_LEASE_TTL};
use crate::telemetry::{ClusterEvent, ClusterEventKind, Telemetry};

/// How a node joins: its identity, the TTLs and the placement rules.
///
/// ```
/// use std::time::Duration;
/// use nova_cluster::{ClusterConfig, DistanceTable};
///
/// let config = ClusterConfig::new("node-a", "eu-west")
///     .lease_ttl(Duration::from_millis(1500))
///     .distances(DistanceTable::new().with("eu-west", "us-east", 80))
///     .platform_region("deribit", "eu-west");
/// assert_eq!(config.node_id(), "node-a");
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ClusterConfig {
    node_id: String,
    region: String,
    lease_ttl: Duration,
    claim_interval: Duration,
    router: GeoRouter,
    platform_regions: BTreeMap<String, String>,
    queue: usize,
}

impl ClusterConfig {
    /// A node `node_id` in `region`, with the default TTL (1 s).
    pub fn new(node_id: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            node_id: node_id.into(),
            region: region.into(),
            lease_ttl: DEFAULT_LEASE_TTL,
            claim_interval: Duration::from_millis(100),
            router: GeoRouter::default(),
            platform_regions: BTreeMap::new(),
            queue: crate::feed::DEFAULT_QUEUE,
        }
    }

    /// From the `[cluster]` settings.
    pub fn from_settings(settings: &ClusterSettings) -> Self {
        let mut c = Self::new(&settings.node_id, &settings.region)
            .lease_ttl(settings.lease_ttl)
            .distances(settings.regions.clone());
        c.platform_regions = settings.platform_regions.clone();
        c
    }

    /// The lease and presence TTL (at least 100 ms). Renewals happen every quarter of it; a
    /// lease not renewed for three quarters of it is given up locally (before it expires on the
    /// backend), so an owner cut off from the backend stops before anyone else can start.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_millis(100));
        self
    }

    /// How often free channels are looked for (default 100 ms).
    pub fn claim_interval(mut self, every: Duration) -> Self {
        self.claim_interval = every.max(Duration::from_millis(10));
        self
    }

    /// The distances between regions.
    pub fn distances(mut self, table: DistanceTable) -> Self {
        self.router = GeoRouter::new(table);
        self
    }

    /// The region of a platform (scope), for placement.
    pub fn platform_region(
        mut self,
        platform: impl Into<String>,
        region: impl Into<String>,
    ) -> Self {
        self.platform_regions.insert(platform.into(), region.into());
        self
    }

    /// The capacity of each local consumer's queue (default 4096 events).
    pub fn consumer_queue(mut self, capacity: usize) -> Self {
        self.queue = capacity.max(16);
        self
    }

    /// The node id.
    #[must_use]
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.lease_ttl
    }

    pub(crate) fn renew_every(&self) -> Duration {
        self.lease_ttl / 4
    }

    /// How long after a successful renewal (counted from when it was sent) a lease is still
    /// trusted locally: three quarters of the TTL.
    pub(crate) fn trust_for(&self) -> Duration {
        self.lease_ttl * 3 / 4
    }

    pub(crate) fn claim_every(&self) -> Duration {
        self.claim_interval
    }

    pub(crate) fn router(&self) -> &GeoRouter {
        &self.router
    }

    pub(crate) fn region_of(&self, platform: &str) -> Option<&str> {
        self.platform_regions.get(platform).map(String::as_str)
    }

    pub(crate) fn queue(&self) -> usize {
        self.queue
    }
}

/// One node in [`ClusterState`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeState {
    /// The node.
    pub info: NodeInfo,
    /// The channels it owns (`scope/channel`), with their fencing tokens.
    pub owns: Vec<(String, u64)>,
}

/// The cluster as the backend sees it now.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterState {
    /// The cluster's name.
    pub name: String,
    /// The live nodes, by id.
    pub nodes: Vec<NodeState>,
    /// Leases held by nodes that are no longer live (they expire shortly).
    pub orphaned: Vec<LeaseInfo>,
}

pub(crate) struct Node {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) config: ClusterConfig,
    pub(crate) telemetry: Telemetry,
    pub(crate) holder: Holder,
    info: Mutex<NodeInfo>,
    /// Loads added by each shared-subscription layer (owned channels).
    pub(crate) owned: AtomicU64,
    members: watch::Sender<Vec<NodeInfo>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stopped: AtomicBool,
    pub(crate) shutdown: watch::Sender<bool>,
    /// Highest number of live nodes recently seen (the rate limiter's share).
    pub(crate) peak_members: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Node {
    pub(crate) fn info(&self) -> NodeInfo {
        let mut info = lock(&self.info).clone();
        info.load = self.owned.load(Ordering::Relaxed);
        info
    }

    pub(crate) fn members(&self) -> Vec<NodeInfo> {
        self.members.borrow().clone()
    }

    pub(crate) fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

/// A node of a cluster. Cheap to clone; clones are the same node.
///
/// ```
/// use nova_cluster::{Cluster, ClusterConfig, MemoryBackend};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), nova_cluster::ClusterError> {
/// let store = MemoryBackend::new("demo");
/// let a = Cluster::join(ClusterConfig::new("a", "eu-west"), store.clone()).await?;
/// let b = Cluster::join(ClusterConfig::new("b", "us-east"), store).await?;
/// let state = a.state().await?;
/// assert_eq!(state.nodes.len(), 2);
/// b.leave().await;
/// a.leave().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cluster {
    pub(crate) node: Arc<Node>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("cluster", &self.node.backend.cluster())
            .field("node", &self.node.holder.to_string())
            .field("backend", &self.node.backend.kind())
            .finish()
    }
}

impl Cluster {
    /// Joins the cluster the backend belongs to: announces this node and starts following the
    /// membership. An unreachable backend is not an error here: the node keeps trying, and
    /// reports [`ClusterEventKind::BackendUnavailable`].
    ///
    /// # Errors
    /// When the node id is empty or contains `|`, a tab or braces.
    pub async fn join(config: ClusterConfig, backend: impl Backend) -> Result<Self, ClusterError> {
        Self::join_shared(config, Arc::new(backend)).await
    }

    /// Like [`join`](Self::join), with a shared backend.
    ///
    /// # Errors
    /// As [`join`](Self::join).
    pub async fn join_shared(
        config: ClusterConfig,
        backend: Arc<dyn Backend>,
    ) -> Result<Self, ClusterError> {
        let id = config.node_id.clone();
        if id.is_empty() || id.contains(['|', '\t', '{', '}']) {
            return Err(ClusterError::Config(format!("bad node id {id:?}")));
        }
        let instance = format!("{:016x}", rand::random::<u64>());
        let info = NodeInfo::new(&id, &instance, &config.region, 0);
        let telemetry = Telemetry::new(backend.cluster(), &id);
        let node = Arc::new(Node {
            holder: info.holder(),
            backend,
            telemetry,
            info: Mutex::new(info),
            owned: AtomicU64::new(0),
            members: watch::Sender::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
            shutdown: watch::Sender::new(false),
            peak_members: AtomicU64::new(1),
            config,
        });
        // The first round now, so the node is visible when `join` returns (when reachable).
        let mut membership = Membership::default();
        membership.round(&node).await;
        node.spawn(run_membership(Arc::downgrade(&node), membership));
        Ok(Self { node })
    }

    /// Joins with the `[cluster]` settings: the Redis backend at `backend_url`, or the
    /// in-process one (a cluster of this process alone) without one.
    ///
    /// # Errors
    /// When clustering is disabled, the URL is invalid, or as [`join`](Self::join).
    pub async fn from_settings(settings: &ClusterSettings) -> Result<Self, ClusterError> {
        if !settings.enabled {
            return Err(ClusterError::Config(
                "clustering is disabled ([cluster] enabled = false)".to_owned(),
            ));
        }
        let config = ClusterConfig::from_settings(settings);
        let backend: Arc<dyn Backend> = match &settings.backend_url {
            Some(url) => Arc::new(RedisBackend::connect(url.expose(), &settings.name)?),
            None => Arc::new(MemoryBackend::new(&settings.name)),
        };
        Self::join_shared(config, backend).await
    }

    /// This node's id.
    #[must_use]
    pub fn node_id(&self) -> &str {
        &self.node.holder.node
    }

    /// This node's instance (random per run).
    #[must_use]
    pub fn instance(&self) -> &str {
        &self.node.holder.instance
    }

    /// The backend.
    #[must_use]
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.node.backend
    }

    /// The configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.node.config
    }

    /// The live members as of the last membership round.
    #[must_use]
    pub fn members(&self) -> Vec<NodeInfo> {
        self.node.members()
    }

    /// A `watch` of the live members.
    #[must_use]
    pub fn watch_members(&self) -> watch::Receiver<Vec<NodeInfo>> {
        self.node.members.subscribe()
    }

    /// This node's cluster events from now on (a reader more than 1024 events behind skips
    /// ahead: `Lagged`).
    #[must_use]
    pub fn events(&self) -> broadcast::Receiver<ClusterEvent> {
        self.node.telemetry.subscribe()
    }

    /// The cluster now: live nodes with their regions, loads and leases.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn state(&self) -> Result<ClusterState, ClusterError> {
        let members = self.node.backend.members().await?;
        let leases = self.node.backend.leases().await?;
        let mut nodes: BTreeMap<String, NodeState> = members
            .live
            .into_iter()
            .map(|info| {
                (
                    info.id.clone(),
                    NodeState {
                        info,
                        owns: Vec::new(),
                    },
                )
            })
            .collect();
        let mut orphaned = Vec::new();
        for lease in leases {
            match nodes.get_mut(&lease.holder.node) {
                Some(n) if n.info.instance == lease.holder.instance => {
                    n.owns.push((lease.resource.clone(), lease.token));
                }
                _ => orphaned.push(lease),
            }
        }
        for n in nodes.values_mut() {
            n.owns.sort();
        }
        Ok(ClusterState {
            name: self.node.backend.cluster().to_owned(),
            nodes: nodes.into_values().collect(),
            orphaned,
        })
    }

    /// Every node's published subscription registries (see [`ClusterRegistry`](crate::ClusterRegistry)).
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn registries(&self) -> Result<Vec<NodeRegistry>, ClusterError> {
        Ok(self.node.backend.registries().await?)
    }

    /// Leaves gracefully: the shared-subscription layers unsubscribe upstream and release their
    /// leases, then the node says goodbye and its tasks stop.
    pub async fn leave(&self) {
        if self.node.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        self.node.shutdown.send_replace(true);
        // The layers see the shutdown and finish their goodbyes; give them the time of a TTL.
        let deadline = Instant::now() + self.node.config.lease_ttl.max(Duration::from_secs(2));
        loop {
            let running = {
                let tasks = lock(&self.node.tasks);
                tasks.iter().filter(|t| !t.is_finished()).count()
            };
            // The membership task ends at once; the layers take a little longer.
            if running == 0 || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = self.node.backend.leave(&self.node.info()).await;
        self.abort();
    }

    /// Stops every task of this node at once, without a goodbye: its presence and leases expire
    /// on the backend as if the process had died. For tests of failover, and for a process that
    /// must stop now.
    pub fn abort(&self) {
        self.node.stopped.store(true, Ordering::Release);
        self.node.shutdown.send_replace(true);
        for task in lock(&self.node.tasks).drain(..) {
            task.abort();
        }
    }
}

#[derive(Default)]
struct Membership {
    known: BTreeSet<(String, String)>,
    down_since: Option<Instant>,
}

impl Membership {
    async fn round(&mut self, node: &Node) {
        let info = node.info();
        let ttl = node.config.ttl();
        let result = async {
            node.backend.heartbeat(&info, ttl).await?;
            node.backend.members().await
        }
        .await;
        let members = match result {
            Ok(m) => m,
            Err(e) => {
                node.telemetry.backend_error();
                if self.down_since.is_none() {
                    self.down_since = Some(Instant::now());
                    node.telemetry.emit(ClusterEventKind::BackendUnavailable {
                        error: e.to_string(),
                    });
                }
                return;
            }
        };
        if let Some(since) = self.down_since.take() {
            node.telemetry.emit(ClusterEventKind::BackendRestored {
                after: since.elapsed(),
            });
        }
        let now: BTreeSet<(String, String)> = members
            .live
            .iter()
            .map(|n| (n.id.clone(), n.instance.clone()))
            .collect();
        let left: BTreeSet<&(String, String)> = members.left.iter().collect();
        for gone in self.known.difference(&now) {
            if left.contains(gone) {
                node.telemetry.emit(ClusterEventKind::NodeLeft {
                    node: gone.0.clone(),
                });
            } else {
                node.telemetry.emit(ClusterEventKind::NodeExpired {
                    node: gone.0.clone(),
                });
            }
        }
        for n in &members.live {
            if !self.known.contains(&(n.id.clone(), n.instance.clone())) {
                node.telemetry.emit(ClusterEventKind::NodeJoined {
                    node: n.id.clone(),
                    region: n.region.clone(),
                });
            }
        }
        self.known = now;
        let count = members.live.len();
        node.telemetry.live_nodes(count);
        node.peak_members
            .store(u64::try_from(count.max(1)).unwrap_or(1), Ordering::Relaxed);
        node.members.send_replace(members.live);
    }
}

async fn run_membership(node: std::sync::Weak<Node>, mut membership: Membership) {
    let Some(every) = node.upgrade().map(|n| n.config.renew_every()) else {
        return;
    };
    let mut shutdown = match node.upgrade() {
        Some(n) => n.shutdown.subscribe(),
        None => return,
    };
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let Some(node) = node.upgrade() else { return };
        membership.round(&node).await;
    }
}
