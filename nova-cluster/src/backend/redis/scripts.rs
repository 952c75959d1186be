//! The Lua scripts of the Redis backend, one per operation that reads and writes, so each is
//! atomic on the server; [`Scripts`] loads them once (`EVALSHA`, falling back to `EVAL`).

use redis::Script;

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

pub(super) struct Scripts {
    pub(super) heartbeat: Script,
    pub(super) leave: Script,
    pub(super) members: Script,
    pub(super) acquire: Script,
    pub(super) renew: Script,
    pub(super) release: Script,
    pub(super) leases: Script,
    pub(super) set_interest: Script,
    pub(super) wanted: Script,
    pub(super) publish: Script,
    pub(super) head: Script,
    pub(super) put_registry: Script,
    pub(super) registries: Script,
    pub(super) take: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
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
