//! Several nova processes acting as one: each channel subscribed upstream once per cluster,
//! a rate budget shared by every node, geo-aware placement, and failover in under two seconds —
//! on Redis, or in-process for a single machine.
//!
//! See `README.md` for the picture and the commands; each module's docs give its algorithm:
//!
//! - [`Backend`] ([`MemoryBackend`], [`RedisBackend`]): the shared store; presence, leases with
//!   fencing tokens, interest, feeds (Redis Streams), registries, token buckets.
//! - [`Cluster`]: a node; membership and its events; [`Cluster::state`].
//! - [`SharedSubscriptions`]: one upstream subscription per channel, fanned out to a
//!   [`FeedStream`] on every node; failover.
//! - [`ClusterRegistry`]: nova-core's `SubscriptionRegistry`, shared.
//! - [`DistributedLimiter`]: nova-core's `RateLimiter` on a shared token bucket.
//! - [`GeoRouter`]: who owns a new subscription.
//! - [`telemetry`]: cluster events through tracing, metrics and attached handlers.
//! - [`ClusterSettings`]: the `[cluster]` section and `NOVA_CLUSTER_*`.
//!
//! ```
//! use nova_cluster::{Cluster, ClusterConfig, MemoryBackend};
//! use nova_core::RateLimit;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), nova_cluster::ClusterError> {
//! let store = MemoryBackend::new("demo"); // or RedisBackend::connect(url, "demo")?
//! let node = Cluster::join(ClusterConfig::new("a", "eu-west"), store).await?;
//! let budget = node.rate_limiter("api-key", RateLimit::new(10, 100.0));
//! budget.acquire(1).await;
//! assert_eq!(node.state().await?.nodes[0].info.id, "a");
//! node.leave().await;
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it does |
//! |---|---|---|
//! | `deribit` | yes | [`ClientUpstream::deribit`]: Deribit book snapshots and change chains for the feeds |

mod backend;
mod cluster;
mod error;
mod feed;
mod geo;
mod rate_limit;
mod registry;
mod settings;
mod shared;
pub mod telemetry;
mod upstream;

pub use backend::{
    Acquire, Backend, BackendFuture, Bucket, EntryKind, EntrySequence, FeedBatch, FeedEntry,
    FeedHead, FeedId, Holder, LeaseInfo, Members, MemoryBackend, NodeInfo, NodeRegistry,
    PreviousLease, Publish, RedisBackend, RegistryEntry, Renewal, Take, WantedChannel,
};
pub use cluster::{Cluster, ClusterConfig, ClusterState, NodeState};
pub use error::{BackendError, ClusterError};
pub use feed::{DEFAULT_QUEUE, Delivery, FeedEvent, FeedStream, GapReason};
pub use geo::{DistanceTable, GeoRouter};
pub use rate_limit::DistributedLimiter;
pub use registry::ClusterRegistry;
pub use settings::{ClusterSettings, DEFAULT_LEASE_TTL};
pub use shared::SharedSubscriptions;
pub use telemetry::{ClusterEvent, ClusterEventKind};
pub use upstream::{ClientUpstream, Upstream, UpstreamEvent, UpstreamFuture, UpstreamSubscription};

/// The things that must be `Send` (and `Sync`) to move between tasks, checked at compile time.
#[allow(dead_code)]
fn assert_send() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Cluster>();
    send_sync::<SharedSubscriptions>();
    send_sync::<DistributedLimiter>();
    send::<ClusterRegistry>();
    send::<FeedStream>();
    send_sync::<MemoryBackend>();
    send_sync::<RedisBackend>();
}
