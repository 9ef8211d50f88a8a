"""The keys of the shared limits, and the Lua scripts that change them (written once).

**Rate** (:class:`~cc.redis.RedisRateLimiter`), for a limiter ``key`` of a
``namespace``, two keys in one hash slot:

* ``<namespace>:rate:{<key>}``: the log, a sorted set with one member per
  unit acquired (``<ticket>#<i>``), scored by the server time (microseconds)
  at which the unit is granted. Members older than one period are dropped
  as the scripts run; the key expires one period after its last grant.
* ``<namespace>:rate:{<key>}:epoch``: ``"<id> <floor_us>"``, made when the
  log is first used. A client that saw an epoch and finds none knows that
  the server lost the log (a restart without persistence): the new epoch
  then grants nothing before ``floor_us``, one period later, so no window
  holds more than the rate across the restart either.

Each acquisition is one script, :data:`RESERVE`: it gives the caller the
earliest time, not before the latest grant already made, at which its units
fit (the newest units in any window of one period never exceed the rate),
records them at that time and returns how long the caller has to wait. The
caller sleeps exactly that long. Grants never move and come in the order the
server ran the scripts: first come, first served, across processes.

**Capacity** (:class:`~cc.redis.RedisCapacityLimiter`), six keys in one slot
``<namespace>:capacity:{<key>}``:

* the base key: the holders, a sorted set of owner tokens scored by the
  server time (ms) at which their lease ends;
* ``...:info``: token -> ``fencing token, since, holder, host, pid``
  (separated by the unit separator, 0x1f);
* ``...:meta``: ``total`` (the capacity), ``epoch``, ``quiet`` (after a
  detected restart, nothing new is granted before this time: the holders
  still alive take their tokens back at their next renewal first) and
  ``fence`` (the last fencing token);
* ``...:queue``, ``...:queued``, ``...:waiting``: the waiters, first come
  first; the times until which each one's place holds (as for locks); and
  the name to publish to wake each one.

Whenever tokens free up (a release, a lease that ran out, a larger
capacity), the first live waiters that can now be served, and only those,
are told on their session's wake channel.
"""

from __future__ import annotations

from cc.redis._scripts import Script

__all__ = [
    "CAPACITY_INSPECT", "CAPACITY_RELEASE", "CAPACITY_RENEW", "CAPACITY_SET_TOTAL",
    "CAPACITY_TAKE", "RATE_STATISTICS", "RESERVE", "capacity_keys", "rate_keys",
]  # fmt: skip

# KEYS: log, epoch
# ARGV: ticket, amount, rate, period us, known epoch ('' if none), new epoch,
#       mode (0: reserve, waiting if need be; 1: only if it fits now; 2: only say)
# -> {granted 0/1, wait us, epoch, grant time us}
RESERVE = Script("""
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local period = tonumber(ARGV[4])
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  local floor = '0'
  if ARGV[5] ~= '' then
    floor = string.format('%.0f', now + period)
  end
  epoch = ARGV[6] .. ' ' .. floor
  redis.call('SET', KEYS[2], epoch)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
local amount = tonumber(ARGV[2])
local at = math.max(now, tonumber(string.match(epoch, ' (%d+)$')))
local last = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if last[2] then
  at = math.max(at, tonumber(last[2]))
end
local rank = tonumber(ARGV[3]) - amount
local edge = redis.call('ZREVRANGE', KEYS[1], rank, rank, 'WITHSCORES')
if edge[2] then
  at = math.max(at, tonumber(edge[2]) + period)
end
if ARGV[7] == '2' or (at > now and ARGV[7] == '1') then
  return {0, string.format('%.0f', at - now), epoch, string.format('%.0f', at)}
end
local members = {}
for i = 1, amount do
  members[#members + 1] = at
  members[#members + 1] = ARGV[1] .. '#' .. i
end
redis.call('ZADD', KEYS[1], unpack(members))
redis.call('PEXPIRE', KEYS[1], math.floor((at - now + period) / 1000) + 1)
return {1, string.format('%.0f', at - now), epoch, string.format('%.0f', at)}
""")

# KEYS: log; ARGV: period us -> {units granted within the last period, units
# reserved for later}
RATE_STATISTICS = Script("""
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
return {redis.call('ZCOUNT', KEYS[1], '-inf', now),
  redis.call('ZCOUNT', KEYS[1], '(' .. string.format('%.0f', now), '+inf')}
""")

# Shared by the capacity scripts. KEYS: holders, info, meta, queue, queued,
# waiting (those a script does not use may be absent at the end).
CAPACITY_HEAD = """
local function now_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
-- Drop the holders whose lease ended.
local function prune(now)
  local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
  if #gone > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
    redis.call('HDEL', KEYS[2], unpack(gone))
  end
end
-- The capacity, the epoch and the quiet time; a new epoch if there is none.
-- A caller that knew an epoch and finds none tells of a restart that lost
-- the holders: grant nothing new for one lease.
local function meta(total, known, new, now, lease)
  local found = redis.call('HMGET', KEYS[3], 'total', 'epoch', 'quiet')
  if found[2] then
    return tonumber(found[1] or total), found[2], tonumber(found[3])
  end
  local quiet = 0
  if known ~= '' then
    quiet = now + lease
  end
  redis.call('HSET', KEYS[3], 'total', found[1] or total, 'epoch', new, 'quiet', quiet)
  return tonumber(found[1] or total), new, quiet
end
local function leave_queue(waiter)
  redis.call('LREM', KEYS[4], 1, waiter)
  redis.call('ZREM', KEYS[5], waiter)
  redis.call('HDEL', KEYS[6], waiter)
end
-- Walk the live waiters from the head, dropping those that stopped checking
-- in, until `count` were seen or `token` was found: (seen, found).
local function waiters_ahead(count, token, now, visit)
  local index, seen = 0, 0
  while seen < count do
    local waiter = redis.call('LINDEX', KEYS[4], index)
    if not waiter then
      return seen, false
    end
    if waiter == token then
      return seen, true
    end
    if tonumber(redis.call('ZSCORE', KEYS[5], waiter) or 0) <= now then
      leave_queue(waiter)
    else
      if visit then
        visit(waiter)
      end
      seen, index = seen + 1, index + 1
    end
  end
  return seen, false
end
-- Tell the first live waiters that free tokens can serve.
local function wake(prefix, now)
  local total = tonumber(redis.call('HGET', KEYS[3], 'total') or 0)
  local free = total - redis.call('ZCARD', KEYS[1])
  if free > 0 and redis.call('EXISTS', KEYS[4]) == 1 then
    waiters_ahead(free, false, now, function(waiter)
      local name = redis.call('HGET', KEYS[6], waiter)
      if name then
        redis.call('PUBLISH', prefix .. string.match(waiter, '^[^:]+'), name)
      end
    end)
  end
end
"""

# ARGV: token, lease ms, holder, total, known epoch, new epoch, queue ms
#       (0: do not queue), wake name
# -> {1, fencing token, since us, epoch, total} taken (again, for a retried call)
# -> {0, ms until something may change (-1: nothing in sight), epoch, total}
CAPACITY_TAKE = Script(
    CAPACITY_HEAD
    + """
local now = now_ms()
local lease = tonumber(ARGV[2])
prune(now)
local total, epoch, quiet = meta(ARGV[4], ARGV[5], ARGV[6], now, lease)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  local info = redis.call('HGET', KEYS[2], ARGV[1])
  return {1, string.match(info, '^(%d+)'), string.match(info, '^%d+\\31(%d+)'),
    epoch, total}
end
local queued = redis.call('ZSCORE', KEYS[5], ARGV[1])
local free = total - redis.call('ZCARD', KEYS[1])
local retry = -1
local granted = false
if now < quiet then
  retry = quiet - now
elseif free > 0 then
  local seen, found = waiters_ahead(free, ARGV[1], now, false)
  granted = found or (not queued and seen < free)
end
if not granted and retry == -1 then
  if free > 0 then
    local head = redis.call('LINDEX', KEYS[4], 0)
    if head then
      retry = tonumber(redis.call('ZSCORE', KEYS[5], head) or now) - now
    end
  else
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    if first[2] then
      retry = tonumber(first[2]) - now
    end
  end
end
if granted then
  if queued then
    leave_queue(ARGV[1])
  end
  local time = redis.call('TIME')
  local since = time[1] .. string.format('%06d', tonumber(time[2]))
  local last = redis.call('HGET', KEYS[3], 'fence')
  if not last or tonumber(last) < tonumber(since) then
    redis.call('HSET', KEYS[3], 'fence', since)
  end
  local fence = redis.call('HINCRBY', KEYS[3], 'fence', 1)
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1],
    string.format('%.0f', fence) .. '\\31' .. since .. '\\31' .. ARGV[3])
  return {1, fence, since, epoch, total}
end
local queue_ms = tonumber(ARGV[7])
if queue_ms > 0 then
  if not queued then
    redis.call('RPUSH', KEYS[4], ARGV[1])
  end
  redis.call('ZADD', KEYS[5], now + queue_ms, ARGV[1])
  redis.call('HSET', KEYS[6], ARGV[1], ARGV[8])
  for q = 4, 6 do
    if redis.call('PTTL', KEYS[q]) < queue_ms then
      redis.call('PEXPIRE', KEYS[q], queue_ms)
    end
  end
end
return {0, retry, epoch, total}
"""
)

# ARGV: lease ms, total, known epoch, new epoch, token 1, holder 1, token 2, ...
# -> {epoch, per token: 1 renewed (or taken back after a restart), 0 gone}
CAPACITY_RENEW = Script(
    CAPACITY_HEAD
    + """
local now = now_ms()
local lease = tonumber(ARGV[1])
prune(now)
local total, epoch, quiet = meta(ARGV[2], ARGV[3], ARGV[4], now, lease)
local result = {epoch}
for i = 5, #ARGV, 2 do
  local token = ARGV[i]
  if redis.call('ZSCORE', KEYS[1], token) then
    redis.call('ZADD', KEYS[1], now + lease, token)
    result[#result + 1] = 1
  elseif now < quiet and redis.call('ZCARD', KEYS[1]) < total then
    redis.call('ZADD', KEYS[1], now + lease, token)
    redis.call('HSET', KEYS[2], token, '0\\31' .. string.format('%.0f', now * 1000)
      .. '\\31' .. ARGV[i + 1])
    result[#result + 1] = 1
  else
    result[#result + 1] = 0
  end
end
return result
"""
)

# ARGV: wake channel prefix, token 1, token 2, ...
# -> per token: 1 released, 0 no longer held
CAPACITY_RELEASE = Script(
    CAPACITY_HEAD
    + """
local now = now_ms()
prune(now)
local result = {}
for i = 2, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('HDEL', KEYS[2], ARGV[i])
    result[#result + 1] = 1
  else
    result[#result + 1] = 0
  end
  if redis.call('ZREM', KEYS[5], ARGV[i]) == 1 then
    leave_queue(ARGV[i])
  end
end
wake(ARGV[1], now)
return result
"""
)

# ARGV: total, wake channel prefix, known epoch, new epoch, lease ms -> epoch
CAPACITY_SET_TOTAL = Script(
    CAPACITY_HEAD
    + """
local now = now_ms()
prune(now)
local _, epoch = meta(ARGV[1], ARGV[3], ARGV[4], now, tonumber(ARGV[5]))
redis.call('HSET', KEYS[3], 'total', ARGV[1])
wake(ARGV[2], now)
return epoch
"""
)

# ARGV: total, known epoch, new epoch, lease ms
# -> {total, epoch, live waiters, {token, ms left, info}...}
CAPACITY_INSPECT = Script(
    CAPACITY_HEAD
    + """
local now = now_ms()
prune(now)
local total, epoch = meta(ARGV[1], ARGV[2], ARGV[3], now, tonumber(ARGV[4]))
local holders = {}
local found = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #found, 2 do
  holders[#holders + 1] = {found[i], tonumber(found[i + 1]) - now,
    redis.call('HGET', KEYS[2], found[i]) or ''}
end
local waiting = redis.call('ZCOUNT', KEYS[5], '(' .. string.format('%.0f', now), '+inf')
return {total, epoch, waiting, holders}
"""
)


def rate_keys(namespace: str, key: str) -> tuple[str, str]:
    """Return the log and epoch keys of the rate limit ``key``."""
    log = f"{namespace}:rate:{{{key}}}"
    return log, f"{log}:epoch"


def capacity_keys(namespace: str, key: str) -> tuple[str, ...]:
    """Return the holders, info, meta, queue, queued and waiting keys."""
    base = f"{namespace}:capacity:{{{key}}}"
    return (
        base, f"{base}:info", f"{base}:meta", f"{base}:queue", f"{base}:queued",
        f"{base}:waiting",
    )  # fmt: skip
