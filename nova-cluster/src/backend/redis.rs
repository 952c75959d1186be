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

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::{Script, Value};

use super::{
    Acquire, Backend, BackendFuture, Bucket, EntryKind, FeedBatch, FeedEntry, FeedHead, FeedId,
    Holder, LeaseInfo, Members, NodeInfo, NodeRegistry, PreviousLease, Publish, Renewal, Take,
    WantedChannel, resource,
};
use crate::error::BackendError;

/// The default deadline of one operation.
const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(500);
/// The default feed length bound (approximate, `MAXLEN ~`).
const DEFAULT_MAX_LEN: usize = 10_000;
/// How many blocking-read connections are kept.
const READERS_KEPT: usize = 4;

const HEARTBEAT: &str = r"
redis.call('SADD', ARGV[1]..'nodes', ARGV[2])
redis.call('SET', ARGV[1]..'node:'..ARGV[2], ARGV[3], 'PX', ARGV[4])
return 1
";

const LEAVE: &str = r"
local p, id, inst = ARGV[1], ARGV[2], ARGV[3]
local cur = redis.call('GET', p..'node:'..id)
if cur then
  local ok, n = pcall(cjson.decode, cur)
  if ok and n.instance == inst then
    redis.call('DEL', p..'node:'..id)
    redis.call('SREM', p..'nodes', id)
  end
end
redis.call('SET', p..'left:'..id, inst, 'PX', 60000)
redis.call('SADD', p..'lefts', id)
return 1
";

const MEMBERS: &str = r"
local p = ARGV[1]
local live = {}
for _, id in ipairs(redis.call('SMEMBERS', p..'nodes')) do
  local v = redis.call('GET', p..'node:'..id)
  if v then table.insert(live, v) else redis.call('SREM', p..'nodes', id) end
end
local left = {}
for _, id in ipairs(redis.call('SMEMBERS', p..'lefts')) do
  local v = redis.call('GET', p..'left:'..id)
  if v then table.insert(left, id); table.insert(left, v) else redis.call('SREM', p..'lefts', id) end
end
return {live, left}
";

/// Fencing tokens: above the last one, above the caller's floor, and at least the server's
/// clock in milliseconds — so they keep growing after a restart that lost the counters.
const ACQUIRE: &str = r"
local p, res, node, inst, ttl, floor = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local lk = p..'lease:'..res
local cur = redis.call('GET', lk)
if cur then return {'held', cur, string.format('%d', redis.call('PTTL', lk))} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tok = redis.call('INCR', p..'fence:'..res)
if tok <= floor then tok = floor + 1 end
if tok < now then tok = now end
local stok = string.format('%d', tok)
redis.call('SET', p..'fence:'..res, stok)
local holder = stok..'|'..node..'|'..inst
redis.call('SET', lk, holder, 'PX', ttl)
redis.call('SADD', p..'leases', res)
local mk = p..'leasemeta:'..res
local prev = redis.call('HMGET', mk, 'holder', 'renewed')
redis.call('HSET', mk, 'holder', holder, 'renewed', string.format('%d', now))
redis.call('PEXPIRE', mk, 86400000)
redis.call('DEL', p..'resnap:'..res)
local since = '-1'
if prev[1] and prev[2] then since = string.format('%d', now - tonumber(prev[2])) end
return {'granted', stok, prev[1] or '', since}
";

const RENEW: &str = r"
local p, node, inst, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local out = {}
for i = 5, #ARGV, 2 do
  local res = ARGV[i]
  local want = ARGV[i + 1]..'|'..node..'|'..inst
  local lk = p..'lease:'..res
  if redis.call('GET', lk) == want then
    redis.call('PEXPIRE', lk, ttl)
    redis.call('HSET', p..'leasemeta:'..res, 'holder', want, 'renewed', now)
    if redis.call('GETDEL', p..'resnap:'..res) then table.insert(out, '2') else table.insert(out, '1') end
  else
    table.insert(out, '0')
  end
end
return out
";

const RELEASE: &str = r"
local p, res, want = ARGV[1], ARGV[2], ARGV[3]
if redis.call('GET', p..'lease:'..res) == want then
  redis.call('DEL', p..'lease:'..res)
  redis.call('DEL', p..'leasemeta:'..res)
  redis.call('SREM', p..'leases', res)
  redis.call('DEL', p..'feed:'..res)
  redis.call('DEL', p..'feedmeta:'..res)
  return 1
end
return 0
";

const LEASES: &str = r"
local p = ARGV[1]
local out = {}
for _, res in ipairs(redis.call('SMEMBERS', p..'leases')) do
  local v = redis.call('GET', p..'lease:'..res)
  if v then
    table.insert(out, res); table.insert(out, v)
    table.insert(out, string.format('%d', redis.call('PTTL', p..'lease:'..res)))
  else
    redis.call('SREM', p..'leases', res)
  end
end
return out
";

const SET_INTEREST: &str = r"
local p, scope, node, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local k = p..'interest:'..scope..':'..node
redis.call('DEL', k)
if #ARGV > 4 then
  for i = 5, #ARGV, 2 do redis.call('HSET', k, ARGV[i], ARGV[i + 1]) end
  redis.call('PEXPIRE', k, ttl)
  redis.call('SADD', p..'interested:'..scope, node)
else
  redis.call('SREM', p..'interested:'..scope, node)
end
return 1
";

/// Flat 4-tuples: `i NODE CHANNEL OPTIONS` for interest, `l CHANNEL LEASE PTTL` for leases.
const WANTED: &str = r"
local p, scope = ARGV[1], ARGV[2]
local out = {}
local seen = {}
local channels = {}
for _, node in ipairs(redis.call('SMEMBERS', p..'interested:'..scope)) do
  local k = p..'interest:'..scope..':'..node
  if redis.call('EXISTS', p..'node:'..node) == 1 and redis.call('EXISTS', k) == 1 then
    local h = redis.call('HGETALL', k)
    for i = 1, #h, 2 do
      table.insert(out, 'i'); table.insert(out, node); table.insert(out, h[i]); table.insert(out, h[i + 1])
      if not seen[h[i]] then seen[h[i]] = true; table.insert(channels, h[i]) end
    end
  elseif redis.call('EXISTS', k) == 0 then
    redis.call('SREM', p..'interested:'..scope, node)
  end
end
for _, ch in ipairs(channels) do
  local lk = p..'lease:'..scope..'/'..ch
  local v = redis.call('GET', lk)
  if v then
    table.insert(out, 'l'); table.insert(out, ch); table.insert(out, v)
    table.insert(out, string.format('%d', redis.call('PTTL', lk)))
  end
end
return out
";

/// `ARGV`: prefix, resource, holder value, maxlen, owner, token, then 5 per entry:
/// n, kind, value, reason, payload (empty strings for absent ones).
const PUBLISH: &str = r"
local p, res, holder, maxlen, owner, tok = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('GET', p..'lease:'..res) ~= holder then return 'fenced' end
local fk = p..'feed:'..res
local mk = p..'feedmeta:'..res
local meta = redis.call('HMGET', mk, 'token', 'n')
local lt, ln = tonumber(meta[1]) or 0, tonumber(meta[2]) or 0
local ntok = tonumber(tok)
if ntok < lt then return 'fenced' end
if ntok > lt then ln = 0 end
for i = 7, #ARGV, 5 do
  local n = tonumber(ARGV[i])
  if n > ln then
    local kind = ARGV[i + 1]
    local args = {'XADD', fk, 'MAXLEN', '~', maxlen, '*', 'o', owner, 't', tok, 'n', ARGV[i], 'k', kind}
    if ARGV[i + 2] ~= '' then table.insert(args, 'v'); table.insert(args, ARGV[i + 2]) end
    if ARGV[i + 3] ~= '' then table.insert(args, 'r'); table.insert(args, ARGV[i + 3]) end
    if ARGV[i + 4] ~= '' then table.insert(args, 'd'); table.insert(args, ARGV[i + 4]) end
    local id = redis.call(unpack(args))
    if kind == 'snap' or kind == 'bsnap' then
      redis.call('HSET', mk, 'snap', id)
      redis.call('XTRIM', fk, 'MINID', id)
    end
    ln = n
  end
end
redis.call('HSET', mk, 'token', tok, 'n', string.format('%d', ln))
redis.call('PEXPIRE', mk, 86400000)
redis.call('PEXPIRE', fk, 86400000)
return 'ok'
";

const HEAD: &str = r"
local p, res = ARGV[1], ARGV[2]
local fk = p..'feed:'..res
local last = ''
local r = redis.call('XREVRANGE', fk, '+', '-', 'COUNT', 1)
if #r > 0 then last = r[1][1] end
local snap = redis.call('HGET', p..'feedmeta:'..res, 'snap')
local sequenced = '0'
if snap then
  sequenced = '1'
  if #redis.call('XRANGE', fk, snap, snap) == 0 then snap = '' end
else
  snap = ''
end
return {last, snap, tostring(redis.call('EXISTS', p..'lease:'..res)), sequenced}
";

const PUT_REGISTRY: &str = r"
local p, name, json, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
redis.call('SET', p..'reg:'..name, json, 'PX', ttl)
redis.call('SADD', p..'regs', name)
return 1
";

const REGISTRIES: &str = r"
local p = ARGV[1]
local out = {}
for _, name in ipairs(redis.call('SMEMBERS', p..'regs')) do
  local v = redis.call('GET', p..'reg:'..name)
  if v then table.insert(out, v) else redis.call('SREM', p..'regs', name) end
end
return out
";

/// A token bucket on the server's clock. A new bucket starts empty (no burst until it has
/// filled): after a restart that lost the bucket, nobody gets a fresh burst on top of what was
/// just spent.
const TAKE: &str = r"
local k = KEYS[1]
local cap, rate, cost, debit, force = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local b = redis.call('HMGET', k, 'tokens', 'ts')
local tokens, ts = tonumber(b[1]), tonumber(b[2])
if tokens == nil or ts == nil then tokens = 0; ts = now end
if now > ts then tokens = math.min(cap, tokens + (now - ts) * rate / 1000) end
tokens = tokens - debit
local need = math.min(cost, cap)
local wait = 0
if force or tokens >= need then
  tokens = tokens - cost
elseif rate > 0 then
  wait = math.ceil((need - tokens) * 1000 / rate)
  if wait < 1 then wait = 1 end
else
  wait = 3600000
end
redis.call('HSET', k, 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.3f', now))
local keep = 60000
if rate > 0 then keep = math.max(keep, math.ceil(cap * 2000 / rate)) end
redis.call('PEXPIRE', k, keep)
return string.format('%d', wait)
";

struct Scripts {
    heartbeat: Script,
    leave: Script,
    members: Script,
    acquire: Script,
    renew: Script,
    release: Script,
    leases: Script,
    set_interest: Script,
    wanted: Script,
    publish: Script,
    head: Script,
    put_registry: Script,
    registries: Script,
    take: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            heartbeat: Script::new(HEARTBEAT),
            leave: Script::new(LEAVE),
            members: Script::new(MEMBERS),
            acquire: Script::new(ACQUIRE),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
            leases: Script::new(LEASES),
            set_interest: Script::new(SET_INTEREST),
            wanted: Script::new(WANTED),
            publish: Script::new(PUBLISH),
            head: Script::new(HEAD),
            put_registry: Script::new(PUT_REGISTRY),
            registries: Script::new(REGISTRIES),
            take: Script::new(TAKE),
        }
    }
}

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
