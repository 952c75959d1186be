//! The Redis backend: Redis 7 through `redis-rs` on tokio, one Lua script per operation that
//! reads and writes, so each is atomic on the server.
//!
//! Every key starts with `nova:{CLUSTER}:` — the braces make the cluster name a hash tag, so on
//! a Redis Cluster every key of one nova cluster lands in one slot and the scripts may touch
//! them together. The keys (`RES` is `scope/channel`):
//!
//! | key | type | what |
//! |---|---|---|
//! | `nodes`, `node:ID` | set, string (JSON, `PX` presence TTL) | members and their presence |
//! | `lefts`, `left:ID` | set, string (`PX` 60 s) | nodes that left with a goodbye |
//! | `lease:RES` | string `TOKEN\|NODE\|INSTANCE` (`PX` lease TTL) | the lease |
//! | `fence:RES` | integer | the last fencing token |
//! | `leasemeta:RES` | hash | last holder and renewal time (failover durations) |
//! | `leases` | set | resources that may have a lease |
//! | `interested:SCOPE`, `interest:SCOPE:NODE` | set, hash channel → options (`PX` TTL) | what each node wants |
//! | `feed:RES` | stream | the channel's feed |
//! | `feedmeta:RES` | hash | last `(token, n)` written, last snapshot id |
//! | `resnap:RES` | string (`PX` 60 s) | a consumer asked for a fresh snapshot |
//! | `regs`, `reg:NODE\tCLIENT` | set, string (JSON, `PX` TTL) | shared subscription registries |
//! | `rate:KEY` | hash `tokens`, `ts` | a token bucket |
//!
//! Connections: one multiplexed connection for commands and scripts, and a small pool of
//! connections for the blocking `XREAD`s (a blocked read would hold up everything queued behind
//! it on a shared connection). Both are `ConnectionManager`s, which reconnect by themselves;
//! every operation has a deadline, so a stopped Redis gives prompt errors, never a hang.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::Value;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};

use super::{
    Acquire, Backend, BackendFuture, Bucket, EntryKind, FeedBatch, FeedEntry, FeedHead, FeedId,
    Holder, LeaseInfo, Members, NodeInfo, NodeRegistry, PreviousLease, Publish, Renewal, Take,
    WantedChannel, resource,
};
use crate::error::BackendError;

mod scripts;
use scripts::Scripts;

/// The default deadline of one operation.
const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(500);
/// The default feed length bound (approximate, `MAXLEN ~`).
const DEFAULT_MAX_LEN: usize = 10_000;
/// How many blocking-read connections are kept.
const READERS_KEPT: usize = 4;

/// The Redis backend. Cheap to clone; clones share the connections.
///
/// ```no_run
/// use nova_cluster::{Backend, RedisBackend};
///
/// # async fn run() -> Result<(), nova_cluster::ClusterError> {
/// let redis = RedisBackend::connect("redis://127.0.0.1:6379", "prod")?;
/// let members = redis.members().await?;
/// println!("{} live nodes", members.live.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

struct Inner {
    cluster: String,
    prefix: String,
    client: redis::Client,
    commands: ConnectionManager,
    readers: Mutex<Vec<ConnectionManager>>,
    scripts: Scripts,
    op_timeout: Duration,
    max_len: usize,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: only the address is shown.
        let info = self.inner.client.get_connection_info();
        f.debug_struct("RedisBackend")
            .field("cluster", &self.inner.cluster)
            .field("addr", &info.addr().to_string())
            .finish_non_exhaustive()
    }
}

fn manager_config(response_timeout: Option<Duration>) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(response_timeout)
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

impl RedisBackend {
    /// Sets up the connections to `url` (`redis://[:password@]host:port[/db]`) for the cluster
    /// `name`. Connecting happens in the background: this succeeds while Redis is down, and the
    /// operations fail (and are retried by the cluster) until it is up.
    ///
    /// # Errors
    /// When the URL is not a Redis URL. Must be called inside a tokio runtime.
    pub fn connect(url: &str, name: impl Into<String>) -> Result<Self, BackendError> {
        let client =
            redis::Client::open(url).map_err(|e| BackendError::Refused(format!("bad URL: {e}")))?;
        let commands = ConnectionManager::new_lazy_with_config(
            client.clone(),
            manager_config(Some(DEFAULT_OP_TIMEOUT)),
        )
        .map_err(BackendError::from_redis)?;
        let cluster = name.into();
        Ok(Self {
            inner: Arc::new(Inner {
                prefix: format!("nova:{{{cluster}}}:"),
                cluster,
                client,
                commands,
                readers: Mutex::new(Vec::new()),
                scripts: Scripts::new(),
                op_timeout: DEFAULT_OP_TIMEOUT,
                max_len: DEFAULT_MAX_LEN,
            }),
        })
    }

    /// The same backend with another feed length bound (default 10,000 entries per channel).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub fn connect_with_max_len(
        url: &str,
        name: impl Into<String>,
        max_len: usize,
    ) -> Result<Self, BackendError> {
        let mut backend = Self::connect(url, name)?;
        if let Some(inner) = Arc::get_mut(&mut backend.inner) {
            inner.max_len = max_len.max(16);
        }
        Ok(backend)
    }

    /// The key prefix: `nova:{CLUSTER}:`.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    async fn run<T: redis::FromRedisValue + Send>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, BackendError> {
        let mut con = self.inner.commands.clone();
        match tokio::time::timeout(self.inner.op_timeout, invocation.invoke_async(&mut con)).await {
            Ok(result) => result.map_err(BackendError::from_redis),
            Err(_) => Err(BackendError::Timeout(self.inner.op_timeout)),
        }
    }

    async fn command<T: redis::FromRedisValue + Send>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, BackendError> {
        let mut con = self.inner.commands.clone();
        match tokio::time::timeout(self.inner.op_timeout, cmd.query_async(&mut con)).await {
            Ok(result) => result.map_err(BackendError::from_redis),
            Err(_) => Err(BackendError::Timeout(self.inner.op_timeout)),
        }
    }

    fn reader(&self) -> Result<ConnectionManager, BackendError> {
        let pooled = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match pooled {
            Some(con) => Ok(con),
            None => Ok(ConnectionManager::new_lazy_with_config(
                self.inner.client.clone(),
                manager_config(None),
            )
            .map_err(BackendError::from_redis)?),
        }
    }

    fn give_back(&self, con: ConnectionManager) {
        let mut readers = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if readers.len() < READERS_KEPT {
            readers.push(con);
        }
    }

    fn feed_key(&self, scope: &str, channel: &str) -> String {
        format!("{}feed:{}", self.inner.prefix, resource(scope, channel))
    }
}

fn parse_holder(value: &str) -> Result<(u64, Holder), BackendError> {
    let mut parts = value.splitn(3, '|');
    let bad = || BackendError::Protocol(format!("bad lease value {value:?}"));
    let token = parts.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
    let node = parts.next().ok_or_else(bad)?.to_owned();
    let instance = parts.next().ok_or_else(bad)?.to_owned();
    Ok((token, Holder { node, instance }))
}

fn holder_value(holder: &Holder, token: u64) -> String {
    format!("{token}|{}|{}", holder.node, holder.instance)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn pttl(s: &str) -> Duration {
    Duration::from_millis(s.parse::<u64>().unwrap_or(0))
}

fn lease_info(resource: String, value: &str, ttl: &str) -> Result<LeaseInfo, BackendError> {
    let (token, holder) = parse_holder(value)?;
    Ok(LeaseInfo {
        resource,
        holder,
        token,
        remaining: pttl(ttl),
    })
}

fn entry_of(id: &StreamId) -> Result<(FeedId, FeedEntry), BackendError> {
    let fid: FeedId = id.id.parse()?;
    let fields: Vec<(&[u8], &[u8])> = id
        .map
        .iter()
        .filter_map(|(k, v)| match v {
            Value::BulkString(b) => Some((k.as_bytes(), b.as_slice())),
            Value::SimpleString(s) => Some((k.as_bytes(), s.as_bytes())),
            _ => None,
        })
        .collect();
    Ok((fid, FeedEntry::from_fields(fields)?))
}

fn entry_args(entry: &FeedEntry) -> [Vec<u8>; 5] {
    let (kind, value, reason) = match &entry.kind {
        EntryKind::Claimed => ("claim", None, ""),
        EntryKind::Data { binary, sequence } => {
            let kind = match (binary, sequence) {
                (false, Some(s)) if s.snapshot => "snap",
                (true, Some(s)) if s.snapshot => "bsnap",
                (false, Some(_)) => "seq",
                (true, Some(_)) => "bseq",
                (false, None) => "text",
                (true, None) => "bin",
            };
            (kind, sequence.map(|s| s.value), "")
        }
        EntryKind::Gap { action } => ("gap", None, action.as_str()),
        EntryKind::GapClosed { value } => ("closed", Some(*value), ""),
        EntryKind::GapNotClosed { reason } => ("notclosed", None, reason.as_str()),
        EntryKind::Restored => ("restored", None, ""),
        EntryKind::Failed { reason } => ("failed", None, reason.as_str()),
    };
    [
        entry.n.to_string().into_bytes(),
        kind.as_bytes().to_vec(),
        value
            .map(|v| v.to_string())
            .unwrap_or_default()
            .into_bytes(),
        reason.as_bytes().to_vec(),
        entry.payload.to_vec(),
    ]
}

impl Backend for RedisBackend {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn cluster(&self) -> &str {
        &self.inner.cluster
    }

    fn heartbeat<'a>(&'a self, node: &'a NodeInfo, ttl: Duration) -> BackendFuture<'a, ()> {
        Box::pin(async move {
            let json =
                serde_json::to_string(node).map_err(|e| BackendError::Protocol(e.to_string()))?;
            let mut inv = self.inner.scripts.heartbeat.prepare_invoke();
            inv.arg(&self.inner.prefix)
                .arg(&node.id)
                .arg(json)
                .arg(millis(ttl));
            let _: i64 = self.run(&inv).await?;
            Ok(())
        })
    }

    fn leave<'a>(&'a self, node: &'a NodeInfo) -> BackendFuture<'a, ()> {
        Box::pin(async move {
            let mut inv = self.inner.scripts.leave.prepare_invoke();
            inv.arg(&self.inner.prefix)
                .arg(&node.id)
                .arg(&node.instance);
            let _: i64 = self.run(&inv).await?;
            Ok(())
        })
    }

    fn members(&self) -> BackendFuture<'_, Members> {
        Box::pin(async move {
            let mut inv = self.inner.scripts.members.prepare_invoke();
            inv.arg(&self.inner.prefix);
            let (live, left): (Vec<String>, Vec<String>) = self.run(&inv).await?;
            let live = live
                .iter()
                .filter_map(|json| serde_json::from_str::<NodeInfo>(json).ok())
                .collect();
            let left = left
                .chunks_exact(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect();
            Ok(Members { live, left })
        })
    }

    fn acquire<'a>(
        &'a self,
        resource: &'a str,
        holder: &'a Holder,
        ttl: Duration,
        floor: u64,
    ) -> BackendFuture<'a, Acquire> {
        Box::pin(async move {
            let mut inv = self.inner.scripts.acquire.prepare_invoke();
            inv.arg(&self.inner.prefix)
                .arg(resource)
                .arg(&holder.node)
                .arg(&holder.instance)
                .arg(millis(ttl))
                .arg(floor);
            let reply: Vec<String> = self.run(&inv).await?;
            let field = |i: usize| reply.get(i).map(String::as_str).unwrap_or_default();
            match field(0) {
                "held" => Ok(Acquire::Held(lease_info(
                    resource.to_owned(),
                    field(1),
                    field(2),
                )?)),
                "granted" => {
                    let token = field(1)
                        .parse()
                        .map_err(|_| BackendError::Protocol(format!("bad token {reply:?}")))?;
                    let previous = match (parse_holder(field(2)), field(3).parse::<u64>()) {
                        (Ok((token, holder)), Ok(since)) => Some(PreviousLease {
                            holder,
                            token,
                            since_renewal: Duration::from_millis(since),
                        }),
                        _ => None,
                    };
                    Ok(Acquire::Granted { token, previous })
                }
                _ => Err(BackendError::Protocol(format!(
                    "acquire answered {reply:?}"
                ))),
            }
        })
    }

    fn renew<'a>(
        &'a self,
        leases: &'a [(String, u64)],
        holder: &'a Holder,
        ttl: Duration,
    ) -> BackendFuture<'a, Vec<Renewal>> {
        Box::pin(async move {
            if leases.is_empty() {
                return Ok(Vec::new());
            }
            let mut inv = self.inner.scripts.renew.prepare_invoke();
            inv.arg(&self.inner.prefix)
                .arg(&holder.node)
                .arg(&holder.instance)
                .arg(millis(ttl));
            for (resource, token) in leases {
                inv.arg(resource).arg(token);
            }
            let reply: Vec<String> = self.run(&inv).await?;
            Ok(reply
                .iter()
                .map(|r| Renewal {
                    held: r != "0",
                    resnapshot: r == "2",
                })
                .collect())
        })
    }

    fn release<'a>(
        &'a self,
        resource: &'a str,
        holder: &'a Holder,
        token: u64,
    ) -> BackendFuture<'a, bool> {
        Box::pin(async move {
            let mut inv = self.inner.scripts.release.prepare_invoke();
            inv.arg(&self.inner.prefix)
                .arg(resource)
                .arg(holder_value(holder, token));
            let released: i64 = self.run(&inv).await?;
            Ok(released == 1)
        })
    }

    fn leases(&self) -> BackendFuture<'_, Vec<LeaseInfo>> {
        Box::pin(async move {
            let mut inv = self.inner.scripts.leases.prepare_invoke();
            inv.arg(&self.inner.prefix);
            let reply: Vec<String> = self.run(&inv).await?;
            reply
                .chunks_exact(3)
                .map(|c| lease_info(c[0].clone(), &c[1], &c[2]))
                .collect()
        })
    }

    fn set_interest<'a>(
        &'a self,
        scope: &'a str,
        node: &'a str,
        channels: &'a [(String, serde_json::Value)],
        ttl: Duration,
    ) -> BackendFuture<'a, ()> {
        Box::pin(async move {
            let mut inv = self.inner.scripts.set_interest.prepare_invoke();
            inv.arg(&self.inner.prefix)
                .arg(scope)
                .arg(node)
                .arg(millis(ttl));
            for (channel, options) in channels {
                inv.arg(channel).arg(options.to_string());
            }
            let _: i64 = self.run(&inv).await?;
            Ok(())
        })
    }

    fn wanted<'a>(&'a self, scope: &'a str) -> BackendFuture<'a, Vec<WantedChannel>> {
        Box::pin(async move {
            let mut inv = self.inner.scripts.wanted.prepare_invoke();
            inv.arg(&self.inner.prefix).arg(scope);
            let reply: Vec<String> = self.run(&inv).await?;
            let mut wanted: std::collections::BTreeMap<String, WantedChannel> =
                std::collections::BTreeMap::new();
            for t in reply.chunks_exact(4) {
                match t[0].as_str() {
                    "i" => {
                        let w = wanted.entry(t[2].clone()).or_insert_with(|| WantedChannel {
                            channel: t[2].clone(),
                            options: serde_json::from_str(&t[3]).unwrap_or(serde_json::Value::Null),
                            wanted_by: Vec::new(),
                            lease: None,
                        });
                        w.wanted_by.push(t[1].clone());
                    }
                    "l" => {
                        if let Some(w) = wanted.get_mut(&t[1]) {
                            w.lease = Some(lease_info(resource(scope, &t[1]), &t[2], &t[3])?);
                        }
                    }
                    _ => {}
                }
            }
            for w in wanted.values_mut() {
                w.wanted_by.sort();
            }
            Ok(wanted.into_values().collect())
        })
    }

    fn publish<'a>(
        &'a self,
        scope: &'a str,
        channel: &'a str,
        holder: &'a Holder,
        entries: &'a [FeedEntry],
    ) -> BackendFuture<'a, Publish> {
        Box::pin(async move {
            let Some(first) = entries.first() else {
                return Ok(Publish::Written);
            };
            if entries.iter().any(|e| e.token != first.token) {
                return Err(BackendError::Refused(
                    "one publish carries one token".to_owned(),
                ));
            }
            let mut inv = self.inner.scripts.publish.prepare_invoke();
            inv.arg(&self.inner.prefix)
                .arg(resource(scope, channel))
                .arg(holder_value(holder, first.token))
                .arg(self.inner.max_len)
                .arg(&holder.node)
                .arg(first.token);
            for entry in entries {
                for arg in entry_args(entry) {
                    inv.arg(arg);
                }
            }
            let reply: String = self.run(&inv).await?;
            match reply.as_str() {
                "ok" => Ok(Publish::Written),
                "fenced" => Ok(Publish::Fenced),
                other => Err(BackendError::Protocol(format!(
                    "publish answered {other:?}"
                ))),
            }
        })
    }

    fn read<'a>(
        &'a self,
        scope: &'a str,
        cursors: &'a [(String, FeedId)],
        count: usize,
        block: Duration,
    ) -> BackendFuture<'a, Vec<FeedBatch>> {
        Box::pin(async move {
            if cursors.is_empty() {
                tokio::time::sleep(block).await;
                return Ok(Vec::new());
            }
            let keys: HashMap<String, &str> = cursors
                .iter()
                .map(|(c, _)| (self.feed_key(scope, c), c.as_str()))
                .collect();
            let mut cmd = redis::cmd("XREAD");
            cmd.arg("COUNT").arg(count.max(1));
            if !block.is_zero() {
                cmd.arg("BLOCK").arg(millis(block));
            }
            cmd.arg("STREAMS");
            for (channel, _) in cursors {
                cmd.arg(self.feed_key(scope, channel));
            }
            for (_, after) in cursors {
                cmd.arg(after.to_string());
            }
            let mut con = self.reader()?;
            let deadline = block + self.inner.op_timeout;
            let reply: Option<StreamReadReply> =
                match tokio::time::timeout(deadline, cmd.query_async(&mut con)).await {
                    Ok(Ok(reply)) => reply,
                    Ok(Err(e)) => return Err(BackendError::from_redis(e)),
                    // The connection may still be blocked: drop it rather than pool it.
                    Err(_) => return Err(BackendError::Timeout(deadline)),
                };
            self.give_back(con);
            let mut batches = Vec::new();
            for key in reply.map(|r| r.keys).unwrap_or_default() {
                let Some(channel) = keys.get(&key.key) else {
                    continue;
                };
                let mut entries = Vec::with_capacity(key.ids.len());
                for id in &key.ids {
                    match entry_of(id) {
                        Ok(entry) => entries.push(entry),
                        Err(e) => {
                            tracing::warn!(channel = %channel, id = %id.id, error = %e, "skipping an unreadable feed entry");
                        }
                    }
                }
                batches.push(((*channel).to_owned(), entries));
            }
            Ok(batches)
        })
    }

    fn range<'a>(
        &'a self,
        scope: &'a str,
        channel: &'a str,
        from: FeedId,
        count: usize,
    ) -> BackendFuture<'a, Vec<(FeedId, FeedEntry)>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("XRANGE");
            cmd.arg(self.feed_key(scope, channel))
                .arg(from.to_string())
                .arg("+")
                .arg("COUNT")
                .arg(count.max(1));
            let reply: StreamRangeReply = self.command(&cmd).await?;
            reply.ids.iter().map(entry_of).collect()
        })
    }

    fn head<'a>(&'a self, scope: &'a str, channel: &'a str) -> BackendFuture<'a, FeedHead> {
        Box::pin(async move {
            let mut inv = self.inner.scripts.head.prepare_invoke();
            inv.arg(&self.inner.prefix).arg(resource(scope, channel));
            let (last, snap, owned, sequenced): (String, String, String, String) =
                self.run(&inv).await?;
            let id = |s: &str| if s.is_empty() { None } else { s.parse().ok() };
            Ok(FeedHead {
                last: id(&last),
                snapshot: id(&snap),
                owned: owned == "1",
                sequenced: sequenced == "1",
            })
        })
    }

    fn request_resnapshot<'a>(&'a self, scope: &'a str, channel: &'a str) -> BackendFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(format!(
                "{}resnap:{}",
                self.inner.prefix,
                resource(scope, channel)
            ))
            .arg(1)
            .arg("PX")
            .arg(60_000);
            let _: Value = self.command(&cmd).await?;
            Ok(())
        })
    }

    fn put_registry<'a>(
        &'a self,
        registry: &'a NodeRegistry,
        ttl: Duration,
    ) -> BackendFuture<'a, ()> {
        Box::pin(async move {
            let json = serde_json::to_string(registry)
                .map_err(|e| BackendError::Protocol(e.to_string()))?;
            let mut inv = self.inner.scripts.put_registry.prepare_invoke();
            inv.arg(&self.inner.prefix)
                .arg(format!("{}\t{}", registry.node, registry.client))
                .arg(json)
                .arg(millis(ttl));
            let _: i64 = self.run(&inv).await?;
            Ok(())
        })
    }

    fn registries(&self) -> BackendFuture<'_, Vec<NodeRegistry>> {
        Box::pin(async move {
            let mut inv = self.inner.scripts.registries.prepare_invoke();
            inv.arg(&self.inner.prefix);
            let reply: Vec<String> = self.run(&inv).await?;
            Ok(reply
                .iter()
                .filter_map(|json| serde_json::from_str(json).ok())
                .collect())
        })
    }

    fn take<'a>(
        &'a self,
        key: &'a str,
        bucket: Bucket,
        cost: u64,
        debit: u64,
        force: bool,
    ) -> BackendFuture<'a, Take> {
        Box::pin(async move {
            let mut inv = self
                .inner
                .scripts
                .take
                .key(format!("{}rate:{key}", self.inner.prefix));
            inv.arg(bucket.capacity)
                .arg(bucket.refill_per_second)
                .arg(cost)
                .arg(debit)
                .arg(if force { "1" } else { "0" });
            let wait: String = self.run(&inv).await?;
            let wait: u64 = wait
                .parse()
                .map_err(|_| BackendError::Protocol(format!("take answered {wait:?}")))?;
            Ok(if wait == 0 {
                Take::Granted
            } else {
                Take::Wait(Duration::from_millis(wait))
            })
        })
    }
}
