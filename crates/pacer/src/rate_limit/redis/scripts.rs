//! The Lua scripts of [`RedisStore`](super::RedisStore): each step one atomic call on one key,
//! so that every call goes to the one shard that holds its key in Redis Cluster.
//!
//! Times are microseconds of the Redis node's clock (`TIME`, fractions allowed). A bucket is
//! stored as `"<tat> <seen>"`: its theoretical arrival time and the node's clock when it was
//! written (the global hash keeps both as fields). When a node reads a bucket written ahead
//! of its own clock (a failover to a replica whose clock is behind, or a clock stepped back),
//! the bucket's times move back by the difference, so the bucket keeps the level it had
//! instead of freezing until the clock catches up. A clock that is ahead is indistinguishable
//! from time passing: the bucket refills, at most to its burst.

use std::time::Duration;

use crate::rate_limit::quota::{Gcra, Quota};

/// What every script starts with: Redis's clock, effects replication (needed before Redis 7
/// for a script that reads `TIME` and writes), and the readers of stored values.
///
/// A stored time that is not a number, or NaN, reads as no bucket; a reply is capped at 2^53
/// us, as Lua makes garbage of a larger (or infinite) number turned into an integer.
macro_rules! prelude {
    () => {
        r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function num(x)
  x = tonumber(x or '')
  if x ~= x then return nil end
  return x
end
local function us(x) return math.min(math.ceil(x), 9007199254740992) end
-- Buckets read and written by this call, each read once and written once at the end.
local cached, dirty = {}, {}
-- A bucket's arrival time (at least now), moved back by how far the clock that wrote it was
-- ahead of this one.
local function tat_of(key)
  local tat = cached[key]
  if tat then return tat end
  local v = redis.call('GET', key)
  tat = now
  if v then
    local at, seen = string.match(v, '^(%S+) (%S+)$')
    at, seen = num(at or v), num(seen)
    if at then
      if seen and seen > now then at = at - (seen - now) end
      if at > tat then tat = at end
    end
  end
  cached[key] = tat
  return tat
end
local function put(key, tat)
  cached[key] = tat
  dirty[key] = true
end
local function flush()
  for key in pairs(dirty) do
    local tat = cached[key]
    if tat <= now then
      redis.call('DEL', key)
    else
      redis.call('SET', key, string.format('%.17g %.17g', tat, now), 'PX', math.max(1, math.ceil(math.min(tat - now, 9007199254740992) / 1000)))
    end
  end
end
"
    };
}

/// The namespace step of a batch of decisions (one namespace's on Redis Cluster, where a
/// batch may not span slots), each atomically and in order, as if each were its own call. The
/// global slot was settled by the caller from its lease before the call.
///
/// Decisions come grouped by bucket, so that what Redis parses and converts grows with the
/// buckets of a batch, not with its decisions. KEYS: one namespace bucket per group. ARGV, per
/// group: the namespace's interval and tolerance, the number of *plain* decisions (no wait
/// allowed, a global token held: `try_acquire` the common case), the number of other
/// decisions, then two per other decision: its max wait and its global answer (`-1` when the
/// caller holds a global token, else how long until the global bucket has one).
///
/// The plain decisions go first: admitted while the bucket has a token, the rest refused with
/// the same wait (a refusal leaves the bucket as it is). Replies per group `{admitted, wait}`
/// for its plain decisions, then `{kind, wait}` per other decision, flattened: 0 admitted, 1
/// queued (the namespace slot reserved in `wait`), 2 refused by the namespace bucket, 3
/// refused by the global bucket (the namespace slot is free now, and not taken).
pub(super) const DECIDE: &str = concat!(
    prelude!(),
    r"
local out = {}
local a = 0
for i = 1, #KEYS do
  local key = KEYS[i]
  local ns_t, ns_tau = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local plain, others = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  a = a + 4
  local ns_tat = tat_of(key)
  local admitted = 0
  while admitted < plain and ns_tat - ns_tau - now <= 0 do
    ns_tat = ns_tat + ns_t
    admitted = admitted + 1
  end
  if admitted > 0 then put(key, ns_tat) end
  out[#out + 1] = admitted
  if admitted < plain then out[#out + 1] = us(ns_tat - ns_tau - now) else out[#out + 1] = 0 end
  for _ = 1, others do
    local max_wait, global = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    a = a + 2
    local ns_wait = math.max(ns_tat - ns_tau - now, 0)
    if ns_wait > max_wait then
      out[#out + 1] = 2
      out[#out + 1] = us(ns_wait)
    elseif ns_wait > 0 then
      ns_tat = ns_tat + ns_t
      put(key, ns_tat)
      out[#out + 1] = 1
      out[#out + 1] = us(ns_wait)
    elseif global >= 0 then
      out[#out + 1] = 3
      out[#out + 1] = us(global)
    else
      ns_tat = ns_tat + ns_t
      put(key, ns_tat)
      out[#out + 1] = 0
      out[#out + 1] = 0
    end
  end
end
flush()
return out
"
);

/// Settles a replica's previous lease of global tokens and takes a new one, on the global
/// bucket: a hash with the bucket's `tat` and `seen`, a sequence number `seq`, and one field
/// `l:<replica>` = `"<tokens> <expiry> <seq>"` per lease outstanding.
///
/// Leases outstanding count as taken: the bucket never refills past its burst minus the
/// tokens leased out, so that tokens in the bucket and tokens in leases together stay within
/// the burst. A lease Redis finds expired is dropped and its tokens count as used; a settled
/// lease gives its unused tokens back, but only when it is the lease the replica names (a
/// lease whose reply was lost is never refunded by a later one). A new lease takes at most
/// `want` tokens and at most half of those available now (at least one); with none available,
/// one token in the future when it comes within `max_wait`. `want` = 0 only settles.
/// Tokens of earlier leases that were held by a decision while their lease was settled or
/// expired, and came back unspent, are given back too (`late`).
///
/// KEYS: the global hash. ARGV: replica id, the sequence number of the lease it settles (or
/// empty), its unused tokens, want, interval, tolerance, max wait, lease time to live, late
/// tokens.
/// Replies `{tokens, wait, seq}`: tokens granted (0: refused, or only settled), the wait until
/// they may be used (or until a token comes, when refused), the new lease's sequence number.
pub(super) const LEASE: &str = concat!(
    prelude!(),
    r"
local key = KEYS[1]
local mine, settled = 'l:' .. ARGV[1], ARGV[2]
local unused, want = num(ARGV[3]) or 0, num(ARGV[4]) or 0
local T, tau = tonumber(ARGV[5]), tonumber(ARGV[6])
local max_wait, ttl = tonumber(ARGV[7]), tonumber(ARGV[8])
local late = num(ARGV[9]) or 0
local h = redis.call('HGETALL', key)
local f = {}
for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
local tat, seen = num(f.tat) or now, num(f.seen) or now
local shift = 0
if seen > now then shift = seen - now end
tat = tat - shift
local seq = (num(f.seq) or 0) + 1
local outstanding = 0
for field, v in pairs(f) do
  if string.sub(field, 1, 2) == 'l:' then
    local n, exp, s = string.match(v, '^(%S+) (%S+) (%S+)$')
    n, exp = num(n), num(exp)
    if field == mine then
      if n and s == settled and unused > 0 then tat = tat - math.min(unused, n) * T end
      redis.call('HDEL', key, field)
    elseif not n or not exp or exp - shift <= now then
      redis.call('HDEL', key, field)
    else
      if shift > 0 then
        redis.call('HSET', key, field, string.format('%.17g %.17g %s', n, exp - shift, s))
      end
      outstanding = outstanding + n
    end
  end
end
if late > 0 then tat = tat - late * T end
if tat < now + outstanding * T then tat = now + outstanding * T end
local granted, wait = 0, 0
if want > 0 then
  local available = math.floor((now + tau - tat) / T) + 1
  if available >= 1 then
    granted = math.min(want, math.max(1, math.ceil(available / 2)))
  else
    wait = tat - tau - now
    if wait <= max_wait then granted = 1 end
  end
end
if granted > 0 then
  tat = tat + granted * T
  outstanding = outstanding + granted
  redis.call('HSET', key, mine, string.format('%.17g %.17g %d', granted, now + wait + ttl, seq))
end
redis.call('HSET', key, 'tat', string.format('%.17g', tat), 'seen', string.format('%.17g', now), 'seq', seq)
-- Kept while a lease is out or the bucket is below its burst; a missing hash is a full bucket.
-- (A corrupt huge time keeps it for at most 2^53 us, which Redis accepts as an expiry.)
local keep = math.max(tat - now, 0)
if outstanding > 0 then keep = math.max(keep, wait + ttl) end
redis.call('PEXPIRE', key, math.max(1, math.ceil(math.min(keep, 9007199254740992) / 1000)))
return {granted, us(wait), seq}
"
);

/// Gives back one global slot that a waiter reserved ahead and dropped: the global hash's
/// arrival time moves back by ARGV[1], never below now (a full bucket).
pub(super) const RETURN_GLOBAL: &str = concat!(
    prelude!(),
    r"
local tat, seen = num(redis.call('HGET', KEYS[1], 'tat')), num(redis.call('HGET', KEYS[1], 'seen'))
if not tat then return 0 end
if seen and seen > now then tat = tat - (seen - now) end
tat = math.max(tat - tonumber(ARGV[1]), now)
redis.call('HSET', KEYS[1], 'tat', string.format('%.17g', tat), 'seen', string.format('%.17g', now))
return 0
"
);

/// Gives back one slot of a namespace bucket: KEYS[1] gets its arrival time moved back by
/// ARGV[1]; a bucket that is full again is deleted (a missing key is a full bucket).
pub(super) const REFUND: &str = concat!(
    prelude!(),
    r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
put(KEYS[1], tat_of(KEYS[1]) - tonumber(ARGV[1]))
flush()
return 0
"
);

/// Pauses an upstream for ARGV[1] microseconds from Redis's now, keeping a later deadline
/// already set. Replies the microseconds left of the pause in force.
pub(super) const PAUSE: &str = concat!(
    prelude!(),
    r"
local deadline = now + tonumber(ARGV[1])
local current = num(redis.call('GET', KEYS[1]))
if current and current >= deadline then return us(current - now) end
if deadline <= now then return 0 end
redis.call('SET', KEYS[1], string.format('%.17g', deadline), 'PX', math.max(1, math.ceil((deadline - now) / 1000)))
return math.ceil(deadline - now)
"
);

/// Replies the microseconds left of the pause in force for KEYS[1], or -1 when none. A value
/// past 2^53 (infinity too) is answered as 2^53: a corrupt huge pause then fails requests like
/// a too-long `Retry-After` instead of being read as no pause at all.
pub(super) const PAUSED: &str = concat!(
    prelude!(),
    r"
local current = num(redis.call('GET', KEYS[1]))
if current and current > now then return us(current - now) end
return -1
"
);

/// A quota's emission interval and tolerance in microseconds, the scripts' unit.
pub(super) fn micros(quota: Quota) -> (f64, f64) {
    let gcra = Gcra::new(quota, 1.0);
    (gcra.t as f64 / 1e3, gcra.tau as f64 / 1e3)
}

pub(super) fn duration_micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// A script's wait; a negative one (which a script never sends) reads as none.
pub(super) fn from_micros(micros: i64) -> Duration {
    Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}
