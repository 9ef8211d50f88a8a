"""The keys of a namespace, and the Lua scripts that change them (written once).

Every lock ``name`` of a ``namespace`` is four keys in one hash slot:

* ``<namespace>:lock:{<name>}``: a hash while some process holds the lock:
  the owner ``token`` (new for every acquisition), ``fence`` (fencing
  token), ``since`` (server time, us), ``holder``, ``host``, ``pid``,
  ``site`` and ``node``. Its TTL is the lease.
* ``...:fence``: the last fencing token handed out; it never expires, so
  tokens keep growing across holders.
* ``...:queue``: the waiters' tokens, first come first; ``...:queued``: the
  same scored by the server time (ms) until which each one's place holds.
  A waiter renews it at each try (at least every ``recheck_interval``); one
  that stops (crashed, cancelled without a word) loses its place then, so
  it cannot hold up the others for longer. Both expire with the last waiter.

A free lock goes to the first live waiter: a newcomer, and the holder that
just let go, queue behind the waiters already there. A release wakes only
that first waiter, by publishing the lock's name on the channel
``<namespace>:wake:<session>`` of its session (the first part of its
token): one process is woken, and an uncontended release sends nothing.

Deadlock detection across processes uses three keys per namespace:
``<namespace>:waits``, a hash of each waiting node's (session and thread or
task) wait as a JSON array (lock, since, holder, host, pid, site), with
``...:waits:until`` scoring each node by the server time (ms) until which
its wait holds (a lease, renewed at each try), so a dead process's waits
vanish with its leases; the lock's hash names its holder's ``node``, so the
chain runs waiter, lock, holder, its wait...; and ``<namespace>:order``, a
stream of learned lock orders capped at the size of a manager's own graph.

Each step is one Lua script, atomic on the server: take (or queue, publish
the wait and follow the chain from it), renew, release (and wake the next
waiter), inspect (for ``get_lock_status()``), the wait graph (for
``detect_potential_deadlocks()``) and order sharing (add, then read on).
"""

from __future__ import annotations

import hashlib

__all__ = [
    "CLOCK", "INSPECT", "RELEASE", "RENEW", "SHARE_ORDER", "TAKE", "WAIT_GRAPH",
    "Keys", "Script",
]  # fmt: skip


class Script:
    """A Lua script and its SHA1, run with EVALSHA (EVAL when not cached)."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()


# Shared by every script (the limits' too): the server's time in ms, and in
# us as a string (exact where a Lua number is not); the TTL of KEYS[first]
# to KEYS[last] made at least ms.
CLOCK = """
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000),
    time[1] .. string.format('%06d', tonumber(time[2]))
end
local function keep(first, last, ms)
  for k = first, last do
    if redis.call('PTTL', KEYS[k]) < ms then
      redis.call('PEXPIRE', KEYS[k], ms)
    end
  end
end
"""

# Shared by the lock scripts: the first live waiter of a queue, after
# dropping the waiters at its head that stopped checking in (crashed, or
# gone); and dropping a published wait.
HEAD = (
    CLOCK
    + """
local function live_head(queue, times, now)
  while true do
    local head = redis.call('LINDEX', queue, 0)
    if not head then
      return false, 0
    end
    local until_ms = tonumber(redis.call('ZSCORE', times, head) or 0)
    if until_ms > now then
      return head, until_ms - now
    end
    redis.call('LPOP', queue)
    redis.call('ZREM', times, head)
  end
end
local function drop_wait(waits, times, node)
  if node ~= '' and redis.call('HDEL', waits, node) == 1 then
    redis.call('ZREM', times, node)
  end
end
"""
)

# KEYS: lock, fence, queue, check-in times, waits, wait times
# ARGV: token, lease ms, holder, host, pid, site, queue ms (0: do not queue),
#       node, detect ('0': no; '1': publish the wait and follow the chain;
#       '2': as '1', and drop the node's wait once taken), name,
#       lock key prefix, wait ms
# -> {1, fence, since_us} taken (again, for a retried call)
# -> {0, pttl_ms, {holder, host, pid, since_us, site, fence}, cycle} held
#    by another; cycle: {node, wait, node, wait, ...} from the caller's own
#    wait, if the chain of waits and holders came back to it; the same and
#    one more node if it ended at a holder of the caller's own session that
#    publishes no wait (the session may know what it waits for); else {}
# -> {0, ms, {}, cycle} free, but an earlier waiter's turn lasts at most ms more
TAKE = Script(
    HEAD
    + """
local function publish_wait(now)
  local node, name = ARGV[8], ARGV[10]
  local wait = redis.call('HGET', KEYS[5], node)
  if not wait or cjson.decode(wait)[1] ~= name then
    local _, since = now_ms()
    wait = cjson.encode({name, since, ARGV[3], ARGV[4], ARGV[5], ARGV[6]})
    redis.call('HSET', KEYS[5], node, wait)
  end
  local wait_ms = tonumber(ARGV[12])
  redis.call('ZADD', KEYS[6], now + wait_ms, node)
  keep(5, 6, wait_ms)
  -- A few waits of processes that died, gone for good.
  for _, lapsed in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now,
      'LIMIT', 0, 8)) do
    drop_wait(KEYS[5], KEYS[6], lapsed)
  end
  return wait
end
local function find_cycle(now, wait)
  local path, seen = {ARGV[8], wait}, {}
  local node = redis.call('HGET', KEYS[1], 'node')
  for _ = 1, 64 do
    if not node then
      return {}
    end
    if node == ARGV[8] then
      return path
    end
    if seen[node] then
      return {}
    end
    seen[node] = true
    local next_wait = redis.call('HGET', KEYS[5], node)
    if not next_wait or tonumber(redis.call('ZSCORE', KEYS[6], node) or 0) <= now then
      if string.match(node, '^[^.]+') == string.match(ARGV[8], '^[^.]+') then
        path[#path + 1] = node  -- a holder of the caller's session: look there
        return path
      end
      return {}
    end
    path[#path + 1] = node
    path[#path + 1] = next_wait
    node = redis.call('HGET', ARGV[11] .. '{' .. cjson.decode(next_wait)[1] .. '}',
      'node')
  end
  return {}
end
local current = redis.call('HGET', KEYS[1], 'token')
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  if ARGV[9] == '2' then
    drop_wait(KEYS[5], KEYS[6], ARGV[8])
  end
  return {1, redis.call('HGET', KEYS[1], 'fence'), redis.call('HGET', KEYS[1], 'since')}
end
local now = false
local head, head_ms = false, 0
if redis.call('EXISTS', KEYS[3]) == 1 then
  now = now_ms()
  head, head_ms = live_head(KEYS[3], KEYS[4], now)
end
if current or (head and head ~= ARGV[1]) then
  local queue_ms = tonumber(ARGV[7])
  local cycle = {}
  if queue_ms > 0 then
    now = now or now_ms()
    if not redis.call('ZSCORE', KEYS[4], ARGV[1]) then
      redis.call('RPUSH', KEYS[3], ARGV[1])
    end
    redis.call('ZADD', KEYS[4], now + queue_ms, ARGV[1])
    keep(3, 4, queue_ms)
    if ARGV[9] ~= '0' then
      cycle = find_cycle(now, publish_wait(now))
    end
  end
  if current then
    return {0, redis.call('PTTL', KEYS[1]),
      redis.call('HMGET', KEYS[1], 'holder', 'host', 'pid', 'since', 'site', 'fence'),
      cycle}
  end
  return {0, head_ms, {}, cycle}
end
if head then
  redis.call('LPOP', KEYS[3])
  redis.call('ZREM', KEYS[4], head)
end
if ARGV[9] == '2' then
  drop_wait(KEYS[5], KEYS[6], ARGV[8])
end
local _, since = now_ms()
local last = redis.call('GET', KEYS[2])
if not last or tonumber(last) < tonumber(since) then
  redis.call('SET', KEYS[2], since)
end
local fence = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'fence', fence, 'since', since,
  'holder', ARGV[3], 'host', ARGV[4], 'pid', ARGV[5], 'site', ARGV[6],
  'node', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, fence, since}
"""
)

# KEYS: lock 1, queue 1, check-in times 1, lock 2, ...
# ARGV: wake channel prefix, token 1, name 1, token 2, name 2, ...
# -> per lock: 1 released, 0 no longer held by anyone, -1 held by another
# A token still queued (a waiter that gave up) leaves its queue. When the
# lock is free afterwards, the first live waiter, and only that one, is
# told: its lock's name is published on its session's wake channel.
RELEASE = Script(
    HEAD
    + """
drop_wait(KEYS[1], KEYS[2], ARGV[2])
local result = {}
for i = 3, #KEYS, 3 do
  local token = ARGV[(i - 3) / 3 * 2 + 3]
  local current = redis.call('HGET', KEYS[i], 'token')
  if current == token then
    redis.call('DEL', KEYS[i])
    current = false
    result[#result + 1] = 1
  elseif current then
    result[#result + 1] = -1
  else
    result[#result + 1] = 0
  end
  if redis.call('EXISTS', KEYS[i + 1]) == 1 then
    if redis.call('ZREM', KEYS[i + 2], token) == 1 then
      redis.call('LREM', KEYS[i + 1], 1, token)
    end
    if not current then
      local head = live_head(KEYS[i + 1], KEYS[i + 2], now_ms())
      if head then
        redis.call('PUBLISH', ARGV[1] .. string.match(head, '^[^:]+'),
          ARGV[(i - 3) / 3 * 2 + 4])
      end
    end
  end
end
return result
"""
)

# KEYS: locks; ARGV: lease ms, token 1, token 2, ...
# -> per lock: 1 renewed, 0 no longer held by anyone, -1 held by another
RENEW = Script("""
local result = {}
for i = 1, #KEYS do
  local current = redis.call('HGET', KEYS[i], 'token')
  if current == ARGV[i + 1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    result[i] = 1
  elseif current then
    result[i] = -1
  else
    result[i] = 0
  end
end
return result
""")

# KEYS: waits, wait times; ARGV: lock key prefix
# -> {node, wait, holder node ('' if none)} for each live wait
WAIT_GRAPH = Script(
    HEAD
    + """
local result = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now_ms(), '+inf')) do
  local wait = redis.call('HGET', KEYS[1], node)
  if wait then
    local lock = ARGV[1] .. '{' .. cjson.decode(wait)[1] .. '}'
    result[#result + 1] = {node, wait, redis.call('HGET', lock, 'node') or ''}
  end
end
return result
"""
)

# KEYS: the order stream
# ARGV: last id read, most entries kept, most entries returned, session,
#       then before, after, holder, before site, after site of each new order
# -> the entries after the last id read: {id, {field, value, ...}}, ...
SHARE_ORDER = Script("""
for i = 5, #ARGV, 5 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'before', ARGV[i],
    'after', ARGV[i + 1], 'holder', ARGV[i + 2], 'before_site', ARGV[i + 3],
    'after_site', ARGV[i + 4], 'session', ARGV[4])
end
return redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[3])
""")

# KEYS: locks -> per lock {pttl_ms, {holder, host, pid, since_us, site, fence}}
INSPECT = Script("""
local result = {}
for i = 1, #KEYS do
  result[i] = {redis.call('PTTL', KEYS[i]),
    redis.call('HMGET', KEYS[i], 'holder', 'host', 'pid', 'since', 'site', 'fence')}
end
return result
""")


class Keys:
    """The key names of one namespace."""

    __slots__ = ("order", "prefix", "wait_times", "waits", "wake_prefix")

    def __init__(self, namespace: str) -> None:
        self.prefix = f"{namespace}:lock:"
        self.wake_prefix = f"{namespace}:wake:"
        self.waits = f"{namespace}:waits"
        self.wait_times = f"{namespace}:waits:until"
        self.order = f"{namespace}:order"

    def lock(self, name: str) -> str:
        """Return the key of the lock ``name`` (a hash while it is held)."""
        return f"{self.prefix}{{{name}}}"

    def queue(self, name: str) -> tuple[str, str, str]:
        """Return the keys of the lock, its queue and its waiters' check-ins."""
        lock = self.lock(name)
        return lock, f"{lock}:queue", f"{lock}:queued"

    def wake(self, session: str) -> str:
        """Return the channel on which the waiters of ``session`` are woken."""
        return f"{self.wake_prefix}{session}"
