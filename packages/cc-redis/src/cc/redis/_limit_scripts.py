"""The keys of the shared limits, and the Lua scripts that change them (written once).

**Rate** (:class:`~cc.redis.RedisRateLimiter`), for a limiter ``key`` of a
``namespace``, two keys in one hash slot:

* ``<namespace>:rate:{<key>}``: the log, a sorted set with one member per
  unit acquired (``<ticket>``, or ``<ticket>#<i>`` for each of several),
  scored by the server time (microseconds) at which the unit is granted.
  Members older than one period are dropped every few acquisitions; the
  key expires one period after its last grant.
* ``<namespace>:rate:{<key>}:floor``: made when the log is first used, and
  kept: the time before which nothing is granted. A client that had
  answers before and finds both keys gone knows that the server lost its
  data (a restart without persistence): the floor is then one period
  later, so no window holds more than the rate across the restart either.

Each acquisition is one script, :data:`RESERVE` (what it grants, and when:
see :class:`~cc.redis.RedisRateLimiter`).

**Capacity** (:class:`~cc.redis.RedisCapacityLimiter`), six keys in one slot
``<namespace>:capacity:{<key>}``:

* the base key: the holders, a sorted set of owner tokens scored by the
  server time (ms) at which their lease ends;
* ``...:info``: token -> ``fencing token, since, holder, host, pid``
  (separated by the unit separator, 0x1f);
* ``...:meta``: ``total`` (the capacity), ``quiet`` (after a detected
  restart, nothing new is granted before this time: the holders still
  alive take their tokens back at their next renewal first) and ``fence``
  (the last fencing token);
* ``...:queue``, ``...:queued``, ``...:waiting``: the waiters, first come
  first; the times until which each one's place holds (as for locks); and
  the name to publish to wake each one. Whenever tokens free up (a release,
  a lease that ran out, a larger capacity), the first live waiters that
  they serve, and only those, are told on their session's wake channel.
"""

from __future__ import annotations

from cc.redis._scripts import CLOCK, Script

__all__ = [
    "CAPACITY_INSPECT", "CAPACITY_RELEASE", "CAPACITY_RENEW", "CAPACITY_SET_TOTAL",
    "CAPACITY_TAKE", "RATE_STATISTICS", "RESERVE", "capacity_keys", "rate_keys",
    "rate_members",
]  # fmt: skip

# KEYS: log, floor
# ARGV: ticket, amount, rate, period us, flags: three characters, the mode
#       (0: reserve, waiting if need be; 1: only if it fits now; 2: only
#       say), seen (1: the caller had an answer before) and tidy (1: drop
#       what left the window)
# -> grant time us * 2 + 1: granted now (one integer: the common case)
# -> {granted 0/1, wait us, grant time us}
RESERVE = Script("""
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local period = tonumber(ARGV[4])
local amount = tonumber(ARGV[2])
local at = now
local last = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if last[2] then
  last = tonumber(last[2])
  at = math.max(at, last)
  local rank = tonumber(ARGV[3]) - amount
  local edge = last
  if rank > 0 then
    edge = redis.call('ZREVRANGE', KEYS[1], rank, rank, 'WITHSCORES')[2]
  end
  if edge then
    at = math.max(at, tonumber(edge) + period)
  end
  if string.sub(ARGV[5], 3, 3) == '1' then
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
  end
else
  -- An empty log: idle for a period, never used, or lost with the server's
  -- data. In that last case the caller saw it before: grant nothing before
  -- one period has passed.
  local floor = redis.call('GET', KEYS[2])
  if not floor then
    floor = 0
    if string.sub(ARGV[5], 2, 2) == '1' then
      floor = now + period
    end
    redis.call('SET', KEYS[2], floor)
  end
  at = math.max(at, tonumber(floor))
end
local mode = string.sub(ARGV[5], 1, 1)
if mode == '2' or (at > now and mode == '1') then
  return {0, at - now, at}
end
if amount == 1 then
  redis.call('ZADD', KEYS[1], at, ARGV[1])
else
  local members = {}
  for i = 1, amount do
    members[#members + 1] = at
    members[#members + 1] = ARGV[1] .. '#' .. i
  end
  redis.call('ZADD', KEYS[1], unpack(members))
end
redis.call('PEXPIRE', KEYS[1], math.floor((at - now + period) / 1000) + 1)
if at == now then
  return at * 2 + 1
end
return {1, at - now, at}
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
CAPACITY_HEAD = (
    CLOCK
    + """
-- Drop the holders whose lease ended.
local function prune(now)
  local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
  if #gone > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
    redis.call('HDEL', KEYS[2], unpack(gone))
  end
end
-- The time (ms, us), after dropping the holders whose lease ended; then
-- the capacity, the quiet time and the last fencing token. No meta means a
-- new pool, or one the server lost (a restart without persistence): a
-- caller that had answers before (seen) tells the latter, and then nothing
-- new is granted for one lease, while the live holders take theirs back.
local function open_pool(total, seen, lease)
  local now, since = now_ms()
  prune(now)
  local found = redis.call('HMGET', KEYS[3], 'total', 'quiet', 'fence')
  if found[1] then
    return now, since, tonumber(found[1]), tonumber(found[2]), found[3]
  end
  local quiet = 0
  if seen == '1' then
    quiet = now + lease
  end
  redis.call('HSET', KEYS[3], 'total', total, 'quiet', quiet)
  return now, since, tonumber(total), quiet, false
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
  if free > 0 then
    waiters_ahead(free, false, now, function(waiter)
      local name = redis.call('HGET', KEYS[6], waiter)
      if name then
        redis.call('PUBLISH', prefix .. string.match(waiter, '^[^:]+'), name)
      end
    end)
  end
end
"""
)

# ARGV: token, lease ms, holder, total, seen ('1': the caller had answers
#       before), queue ms (0: do not queue), wake name
# -> fencing token: taken (since = fencing token - 1 us, the common case)
# -> {1, fencing token, since us}: taken
# -> {0, ms until something may change (-1: nothing in sight)}
CAPACITY_TAKE = Script(
    CAPACITY_HEAD
    + """
local lease = tonumber(ARGV[2])
local now, since, total, quiet, fence = open_pool(ARGV[4], ARGV[5], lease)
local free = total - redis.call('ZCARD', KEYS[1])
local granted, queued = false, false
if now >= quiet and free > 0 then
  if redis.call('EXISTS', KEYS[4]) == 0 then
    granted = true
  else
    queued = redis.call('ZSCORE', KEYS[5], ARGV[1])
    local seen, found = waiters_ahead(free, ARGV[1], now, false)
    granted = found or (not queued and seen < free)
  end
elseif redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  -- a retried call: the first one took the last token
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  local info = redis.call('HGET', KEYS[2], ARGV[1])
  return {1, string.match(info, '^(%d+)'), string.match(info, '^%d+\\31(%d+)')}
end
if granted then
  if queued then
    leave_queue(ARGV[1])
  end
  local next_fence = tonumber(since) + 1
  if fence and tonumber(fence) >= tonumber(since) then
    next_fence = tonumber(fence) + 1
  end
  fence = string.format('%.0f', next_fence)
  redis.call('HSET', KEYS[3], 'fence', fence)
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], fence .. '\\31' .. since .. '\\31' .. ARGV[3])
  if next_fence == tonumber(since) + 1 then
    return next_fence
  end
  return {1, next_fence, since}
end
local retry = -1
if now < quiet then
  retry = quiet - now
elseif free > 0 then
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
local queue_ms = tonumber(ARGV[6])
if queue_ms > 0 then
  if not queued and not redis.call('ZSCORE', KEYS[5], ARGV[1]) then
    redis.call('RPUSH', KEYS[4], ARGV[1])
  end
  redis.call('ZADD', KEYS[5], now + queue_ms, ARGV[1])
  redis.call('HSET', KEYS[6], ARGV[1], ARGV[7])
  keep(4, 6, queue_ms)
end
return {0, retry}
"""
)

# ARGV: lease ms, total, seen, token 1, holder 1, token 2, ...
# -> per token: 1 renewed (or taken back after a restart), 0 gone
CAPACITY_RENEW = Script(
    CAPACITY_HEAD
    + """
local lease = tonumber(ARGV[1])
local now, since, total, quiet = open_pool(ARGV[2], ARGV[3], lease)
local result = {}
for i = 4, #ARGV, 2 do
  local token = ARGV[i]
  if redis.call('ZSCORE', KEYS[1], token) then
    redis.call('ZADD', KEYS[1], now + lease, token)
    result[#result + 1] = 1
  elseif now < quiet and redis.call('ZCARD', KEYS[1]) < total then
    redis.call('ZADD', KEYS[1], now + lease, token)
    redis.call('HSET', KEYS[2], token, '0\\31' .. since .. '\\31' .. ARGV[i + 1])
    result[#result + 1] = 1
  else
    result[#result + 1] = 0
  end
end
return result
"""
)

# ARGV: wake channel prefix, token 1, token 2, ...
# -> per token: 1 released, 0 no longer held (an int for one token)
CAPACITY_RELEASE = Script(
    CAPACITY_HEAD
    + """
local result = {}
for i = 2, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('HDEL', KEYS[2], ARGV[i])
    result[#result + 1] = 1
  else
    result[#result + 1] = 0
  end
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  local now = now_ms()
  prune(now)
  for i = 2, #ARGV do
    if redis.call('ZSCORE', KEYS[5], ARGV[i]) then
      leave_queue(ARGV[i])
    end
  end
  wake(ARGV[1], now)
end
if #result == 1 then
  return result[1]
end
return result
"""
)

# ARGV: total, wake channel prefix, seen, lease ms -> 1
CAPACITY_SET_TOTAL = Script(
    CAPACITY_HEAD
    + """
local now = open_pool(ARGV[1], ARGV[3], tonumber(ARGV[4]))
redis.call('HSET', KEYS[3], 'total', ARGV[1])
wake(ARGV[2], now)
return 1
"""
)

# ARGV: total, seen, lease ms
# -> {total, live waiters, {token, ms left, info}...}
CAPACITY_INSPECT = Script(
    CAPACITY_HEAD
    + """
local now, _, total = open_pool(ARGV[1], ARGV[2], tonumber(ARGV[3]))
local holders = {}
local found = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #found, 2 do
  holders[#holders + 1] = {found[i], tonumber(found[i + 1]) - now,
    redis.call('HGET', KEYS[2], found[i]) or ''}
end
local waiting = redis.call('ZCOUNT', KEYS[5], '(' .. string.format('%.0f', now), '+inf')
return {total, waiting, holders}
"""
)


def rate_keys(namespace: str, key: str) -> tuple[str, str]:
    """Return the log and floor keys of the rate limit ``key``."""
    log = f"{namespace}:rate:{{{key}}}"
    return log, f"{log}:floor"


def rate_members(ticket: str, amount: int) -> list[str]:
    """Return the log's members for ``amount`` units of ``ticket``."""
    if amount == 1:
        return [ticket]
    return [f"{ticket}#{i}" for i in range(1, amount + 1)]


def capacity_keys(namespace: str, key: str) -> tuple[str, ...]:
    """Return the holders, info, meta, queue, queued and waiting keys."""
    base = f"{namespace}:capacity:{{{key}}}"
    return (
        base, f"{base}:info", f"{base}:meta", f"{base}:queue", f"{base}:queued",
        f"{base}:waiting",
    )  # fmt: skip
