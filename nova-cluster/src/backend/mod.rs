//! The shared store a cluster runs on, behind one trait: [`Backend`].
//!
//! Two implementations: [`MemoryBackend`] (in-process; several nodes of one process share it —
//! tests, a single box, the embedded default) and [`RedisBackend`] (Redis 7, through the `redis`
//! crate with tokio; every read-modify-write is one Lua script, so it is atomic on the server).
//! Both namespace every key by the cluster's name, so several clusters can share one store.
//!
//! What a backend keeps, and how each part behaves (both backends behave the same; the Redis
//! key of each part is in [`RedisBackend`]'s docs):
//!
//! - **Presence**: one record per node ([`NodeInfo`]), dropped when not renewed within its TTL.
//!   A node that leaves says so ([`Backend::leave`]), which leaves a short-lived marker so the
//!   others can tell a leave from an expiry.
//! - **Leases** with **fencing tokens**: at most one holder per resource; a token that only grows,
//!   also across a restart of a backend that lost its data (the token is at least the server's
//!   clock in milliseconds, and above any token the claimant has seen).
//! - **Interest**: which channels each node's consumers want, dropped with the node's TTL.
//! - **Feeds**: one append-only log per channel (a Redis Stream), written only by the lease holder
//!   (the write is fenced by the lease) and read by every node from its own cursor.
//! - **Registries**: each node's subscription registry, for everyone to see.
//! - **Rate buckets**: token buckets updated atomically on the server.
//!
//! Time: TTLs and buckets run on the backend's clock (Redis `TIME`), never on the nodes'
//! clocks, so clock skew between machines does not matter.

mod memory;
mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::BackendError;

pub use self::memory::MemoryBackend;
pub use self::redis::RedisBackend;

/// A boxed future of a backend operation.
pub type BackendFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BackendError>> + Send + 'a>>;

/// A node as the cluster sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NodeInfo {
    /// The node's id (configured; stable across restarts).
    pub id: String,
    /// This run of the node (random per start): a node that restarts under the same id is a new
    /// instance, and does not inherit the leases of the old one.
    pub instance: String,
    /// Its region (`eu-west`, ...).
    pub region: String,
    /// Its load figure (by default the number of upstream subscriptions it owns).
    pub load: u64,
}

impl NodeInfo {
    /// A node record.
    #[must_use]
    pub fn new(
        id: impl Into<String>,
        instance: impl Into<String>,
        region: impl Into<String>,
        load: u64,
    ) -> Self {
        Self {
            id: id.into(),
            instance: instance.into(),
            region: region.into(),
            load,
        }
    }

    /// The holder name of this node's leases: `id/instance`.
    #[must_use]
    pub fn holder(&self) -> Holder {
        Holder {
            node: self.id.clone(),
            instance: self.instance.clone(),
        }
    }
}

/// Who holds a lease: a node id and its instance.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Holder {
    /// The node id.
    pub node: String,
    /// The node's instance.
    pub instance: String,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.node, self.instance)
    }
}

/// The live members, and the ids of nodes that left gracefully a short while ago.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Members {
    /// Nodes whose presence is live.
    pub live: Vec<NodeInfo>,
    /// `(node id, instance)` of nodes that left with a goodbye recently.
    pub left: Vec<(String, String)>,
}

/// A lease as the backend holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseInfo {
    /// The resource.
    pub resource: String,
    /// Its holder.
    pub holder: Holder,
    /// Its fencing token.
    pub token: u64,
    /// Time left before it expires unless renewed.
    pub remaining: Duration,
}

/// The lease before a new holder took it over.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PreviousLease {
    /// Its holder.
    pub holder: Holder,
    /// Its token.
    pub token: u64,
    /// Time from its last renewal to the new grant (how long the resource was orphaned, plus the
    /// TTL).
    pub since_renewal: Duration,
}

/// The answer to [`Backend::acquire`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Acquire {
    /// The lease is ours, with this fencing token.
    Granted {
        /// The fencing token.
        token: u64,
        /// Who held it before, when the backend remembers.
        previous: Option<PreviousLease>,
    },
    /// Someone holds it.
    Held(LeaseInfo),
}

/// The answer to a renewal of one lease.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Renewal {
    /// Whether the lease is still ours (and now renewed).
    pub held: bool,
    /// Whether a consumer asked for a fresh snapshot of the channel since the last renewal.
    pub resnapshot: bool,
}

/// A channel some live node wants, with its lease if any.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WantedChannel {
    /// The channel.
    pub channel: String,
    /// The subscribe options (from the first node that asked).
    pub options: serde_json::Value,
    /// The nodes that want it.
    pub wanted_by: Vec<String>,
    /// Its lease, when held.
    pub lease: Option<LeaseInfo>,
}

/// The position of an entry in a feed: Redis Stream ids (`ms-seq`), ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeedId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl FeedId {
    /// Before every entry (`0-0`).
    pub const ZERO: FeedId = FeedId { ms: 0, seq: 0 };
}

impl fmt::Display for FeedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for FeedId {
    type Err = BackendError;
    fn from_str(s: &str) -> Result<Self, BackendError> {
        let bad = || BackendError::Protocol(format!("bad feed id {s:?}"));
        let (ms, seq) = s.split_once('-').ok_or_else(bad)?;
        Ok(Self {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// What one feed entry carries.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryKind {
    /// A new owner took the channel (written before it subscribes upstream).
    Claimed,
    /// A data message.
    Data {
        /// Whether it is a binary message (otherwise text).
        binary: bool,
        /// Its sequence position, if the platform gives the channel one.
        sequence: Option<EntrySequence>,
    },
    /// The owner's upstream subscription saw a gap; `action` is how it is being closed.
    Gap {
        /// `resubscribe`, `backfill`, `report`, `resnapshot`.
        action: String,
    },
    /// The owner's upstream gap was closed at this value.
    GapClosed {
        /// The value.
        value: u64,
    },
    /// The owner's upstream gap could not be closed.
    GapNotClosed {
        /// Why.
        reason: String,
    },
    /// The owner's upstream subscription was restored after a reconnect.
    Restored,
    /// The owner's upstream subscription failed (refused, client stopped); retried.
    Failed {
        /// Why.
        reason: String,
    },
}

/// A data entry's position in the platform's sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntrySequence {
    /// The value.
    pub value: u64,
    /// Whether it is a snapshot (a fresh starting point).
    pub snapshot: bool,
}

/// One entry of a channel's feed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FeedEntry {
    /// The owner's node id.
    pub owner: String,
    /// The owner's fencing token.
    pub token: u64,
    /// The entry's number under that token, from 1, without holes.
    pub n: u64,
    /// What it is.
    pub kind: EntryKind,
    /// The message, for [`EntryKind::Data`]; empty otherwise.
    pub payload: bytes::Bytes,
}

impl FeedEntry {
    /// An entry.
    #[must_use]
    pub fn new(
        owner: impl Into<String>,
        token: u64,
        n: u64,
        kind: EntryKind,
        payload: bytes::Bytes,
    ) -> Self {
        Self {
            owner: owner.into(),
            token,
            n,
            kind,
            payload,
        }
    }

    /// Whether this entry is a snapshot message.
    #[must_use]
    pub fn is_snapshot(&self) -> bool {
        matches!(
            self.kind,
            EntryKind::Data {
                sequence: Some(EntrySequence { snapshot: true, .. }),
                ..
            }
        )
    }

    /// The wire fields: `o` owner, `t` token, `n`, `k` kind, `v` value, `r` reason/action, `d`.
    #[cfg(test)]
    pub(crate) fn to_fields(&self) -> Vec<(&'static str, Vec<u8>)> {
        let mut fields = vec![
            ("o", self.owner.as_bytes().to_vec()),
            ("t", self.token.to_string().into_bytes()),
            ("n", self.n.to_string().into_bytes()),
        ];
        let (kind, value, reason): (&str, Option<u64>, Option<&str>) = match &self.kind {
            EntryKind::Claimed => ("claim", None, None),
            EntryKind::Data { binary, sequence } => {
                let kind = match (binary, sequence) {
                    (_, Some(s)) if s.snapshot => {
                        if *binary {
                            "bsnap"
                        } else {
                            "snap"
                        }
                    }
                    (true, Some(_)) => "bseq",
                    (false, Some(_)) => "seq",
                    (true, None) => "bin",
                    (false, None) => "text",
                };
                (kind, sequence.map(|s| s.value), None)
            }
            EntryKind::Gap { action } => ("gap", None, Some(action.as_str())),
            EntryKind::GapClosed { value } => ("closed", Some(*value), None),
            EntryKind::GapNotClosed { reason } => ("notclosed", None, Some(reason.as_str())),
            EntryKind::Restored => ("restored", None, None),
            EntryKind::Failed { reason } => ("failed", None, Some(reason.as_str())),
        };
        fields.push(("k", kind.as_bytes().to_vec()));
        if let Some(v) = value {
            fields.push(("v", v.to_string().into_bytes()));
        }
        if let Some(r) = reason {
            fields.push(("r", r.as_bytes().to_vec()));
        }
        if !self.payload.is_empty() {
            fields.push(("d", self.payload.to_vec()));
        }
        fields
    }

    /// Parses the wire fields written by [`to_fields`](Self::to_fields).
    pub(crate) fn from_fields<'a>(
        fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<Self, BackendError> {
        let mut owner = None;
        let mut token = None;
        let mut n = None;
        let mut kind = None;
        let mut value = None;
        let mut reason = String::new();
        let mut payload = bytes::Bytes::new();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let number = |b: &[u8]| {
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
        };
        for (k, v) in fields {
            match k {
                b"o" => owner = Some(text(v)),
                b"t" => token = number(v),
                b"n" => n = number(v),
                b"k" => kind = Some(text(v)),
                b"v" => value = number(v),
                b"r" => reason = text(v),
                b"d" => payload = bytes::Bytes::copy_from_slice(v),
                _ => {}
            }
        }
        let missing = |what: &str| BackendError::Protocol(format!("feed entry without {what}"));
        let kind = kind.ok_or_else(|| missing("a kind"))?;
        let seq = |snapshot| value.map(|value| EntrySequence { value, snapshot });
        let kind = match kind.as_str() {
            "claim" => EntryKind::Claimed,
            "snap" | "bsnap" => EntryKind::Data {
                binary: kind == "bsnap",
                sequence: seq(true),
            },
            "seq" | "bseq" => EntryKind::Data {
                binary: kind == "bseq",
                sequence: seq(false),
            },
            "text" | "bin" => EntryKind::Data {
                binary: kind == "bin",
                sequence: None,
            },
            "gap" => EntryKind::Gap { action: reason },
            "closed" => EntryKind::GapClosed {
                value: value.unwrap_or_default(),
            },
            "notclosed" => EntryKind::GapNotClosed { reason },
            "restored" => EntryKind::Restored,
            "failed" => EntryKind::Failed { reason },
            other => {
                return Err(BackendError::Protocol(format!(
                    "unknown entry kind {other:?}"
                )));
            }
        };
        Ok(Self {
            owner: owner.ok_or_else(|| missing("an owner"))?,
            token: token.ok_or_else(|| missing("a token"))?,
            n: n.ok_or_else(|| missing("a number"))?,
            kind,
            payload,
        })
    }
}

/// The answer to [`Backend::publish`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Publish {
    /// Written (entries already written under this token — a retry — were skipped).
    Written,
    /// Refused: the lease is not ours (expired, or taken over). Nothing was written.
    Fenced,
}

/// Where a feed stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FeedHead {
    /// The last entry, if any.
    pub last: Option<FeedId>,
    /// The last snapshot entry, if the channel has had one.
    pub snapshot: Option<FeedId>,
    /// Whether someone holds the channel's lease now (otherwise the feed is history).
    pub owned: bool,
    /// Whether the feed has had a snapshot (even one trimmed since): a sequenced channel.
    pub sequenced: bool,
}

/// A batch of entries read from one feed.
pub type FeedBatch = (String, Vec<(FeedId, FeedEntry)>);

/// One subscription in a node's shared registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RegistryEntry {
    /// nova's subscription id (per client).
    pub id: String,
    /// The channel.
    pub channel: String,
    /// `pending`, `active` or `error`.
    pub status: String,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The subscribe options.
    pub options: serde_json::Value,
}

/// One client's registry, as published by its node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NodeRegistry {
    /// The node.
    pub node: String,
    /// The client's name.
    pub client: String,
    /// Its subscriptions.
    pub entries: Vec<RegistryEntry>,
}

/// The answer to [`Backend::take`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Take {
    /// The tokens were taken.
    Granted,
    /// Not enough tokens: try again after this long.
    Wait(Duration),
}

/// A token bucket's parameters, for [`Backend::take`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// Most tokens held.
    pub capacity: u64,
    /// Tokens added per second.
    pub refill_per_second: f64,
}

/// The operations a cluster needs from its shared store.
///
/// Every operation is one round trip and atomic. `scope` separates the subscriptions of
/// different upstreams (platforms) in one cluster; a *resource* of a lease is
/// `scope/channel`.
pub trait Backend: Send + Sync + 'static {
    /// `"memory"` or `"redis"`.
    fn kind(&self) -> &'static str;

    /// The cluster name every key is namespaced by.
    fn cluster(&self) -> &str;

    /// Creates or renews `node`'s presence for `ttl`.
    fn heartbeat<'a>(&'a self, node: &'a NodeInfo, ttl: Duration) -> BackendFuture<'a, ()>;

    /// Removes `node`'s presence (when it is still this instance) and leaves a marker that it
    /// left, for a minute.
    fn leave<'a>(&'a self, node: &'a NodeInfo) -> BackendFuture<'a, ()>;

    /// The live members (expired ones are cleaned up on the way).
    fn members(&self) -> BackendFuture<'_, Members>;

    /// Takes the lease on `resource` for `ttl` when nobody holds it. The token granted is above
    /// `floor` (the highest token the caller has seen for it).
    fn acquire<'a>(
        &'a self,
        resource: &'a str,
        holder: &'a Holder,
        ttl: Duration,
        floor: u64,
    ) -> BackendFuture<'a, Acquire>;

    /// Renews each `(resource, token)` held by `holder` for `ttl`.
    fn renew<'a>(
        &'a self,
        leases: &'a [(String, u64)],
        holder: &'a Holder,
        ttl: Duration,
    ) -> BackendFuture<'a, Vec<Renewal>>;

    /// Gives the lease up, when it is still `holder`'s with `token`, and drops the feed (nobody
    /// wants the channel any more); whether it was.
    fn release<'a>(
        &'a self,
        resource: &'a str,
        holder: &'a Holder,
        token: u64,
    ) -> BackendFuture<'a, bool>;

    /// Every lease held now.
    fn leases(&self) -> BackendFuture<'_, Vec<LeaseInfo>>;

    /// Replaces the channels `node` wants in `scope` (channel, options), for `ttl`.
    fn set_interest<'a>(
        &'a self,
        scope: &'a str,
        node: &'a str,
        channels: &'a [(String, serde_json::Value)],
        ttl: Duration,
    ) -> BackendFuture<'a, ()>;

    /// The channels live nodes want in `scope`, with their leases.
    fn wanted<'a>(&'a self, scope: &'a str) -> BackendFuture<'a, Vec<WantedChannel>>;

    /// Appends `entries` to the feed of `scope/channel`, fenced: only while `holder` holds the
    /// lease with `token`. Entries whose number was already written under this token are
    /// skipped, so a retry after an unclear failure writes nothing twice.
    fn publish<'a>(
        &'a self,
        scope: &'a str,
        channel: &'a str,
        holder: &'a Holder,
        entries: &'a [FeedEntry],
    ) -> BackendFuture<'a, Publish>;

    /// Entries after each cursor, waiting up to `block` when there are none; at most `count`
    /// per feed.
    fn read<'a>(
        &'a self,
        scope: &'a str,
        cursors: &'a [(String, FeedId)],
        count: usize,
        block: Duration,
    ) -> BackendFuture<'a, Vec<FeedBatch>>;

    /// Entries from `from` (inclusive), at most `count`.
    fn range<'a>(
        &'a self,
        scope: &'a str,
        channel: &'a str,
        from: FeedId,
        count: usize,
    ) -> BackendFuture<'a, Vec<(FeedId, FeedEntry)>>;

    /// Where the feed of `scope/channel` stands.
    fn head<'a>(&'a self, scope: &'a str, channel: &'a str) -> BackendFuture<'a, FeedHead>;

    /// Asks the owner of `scope/channel` for a fresh snapshot (seen at its next renewal).
    fn request_resnapshot<'a>(&'a self, scope: &'a str, channel: &'a str) -> BackendFuture<'a, ()>;

    /// Publishes one client's registry for `ttl`.
    fn put_registry<'a>(
        &'a self,
        registry: &'a NodeRegistry,
        ttl: Duration,
    ) -> BackendFuture<'a, ()>;

    /// Every live registry.
    fn registries(&self) -> BackendFuture<'_, Vec<NodeRegistry>>;

    /// Takes `cost` tokens from the bucket `key` (after first taking `debit` tokens without
    /// condition, for work done while the backend was unreachable). `force`: take them even
    /// into debt. A bucket that does not exist yet starts empty.
    fn take<'a>(
        &'a self,
        key: &'a str,
        bucket: Bucket,
        cost: u64,
        debit: u64,
        force: bool,
    ) -> BackendFuture<'a, Take>;
}

/// The lease resource of a channel in a scope.
pub(crate) fn resource(scope: &str, channel: &str) -> String {
    format!("{scope}/{channel}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn feed_ids_parse_and_order() {
        let a: FeedId = "1700000000000-3".parse().unwrap();
        let b: FeedId = "1700000000001-0".parse().unwrap();
        assert!(a < b);
        assert_eq!(a.to_string(), "1700000000000-3");
        assert!("12".parse::<FeedId>().is_err());
    }

    #[test]
    fn entries_round_trip_through_fields() {
        let entries = [
            EntryKind::Claimed,
            EntryKind::Data {
                binary: false,
                sequence: Some(EntrySequence {
                    value: 7,
                    snapshot: true,
                }),
            },
            EntryKind::Data {
                binary: true,
                sequence: None,
            },
            EntryKind::Gap {
                action: "resubscribe".into(),
            },
            EntryKind::GapClosed { value: 9 },
            EntryKind::GapNotClosed { reason: "x".into() },
            EntryKind::Restored,
            EntryKind::Failed {
                reason: "no".into(),
            },
        ];
        for (i, kind) in entries.into_iter().enumerate() {
            let entry = FeedEntry {
                owner: "a".into(),
                token: 5,
                n: i as u64 + 1,
                kind,
                payload: bytes::Bytes::from_static(b"{\"x\":1}"),
            };
            let fields = entry.to_fields();
            let back =
                FeedEntry::from_fields(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())))
                    .unwrap();
            assert_eq!(back, entry);
        }
    }
}
