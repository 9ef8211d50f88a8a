"""Random interleavings of acquire, release, cancel and timeout on the primitives.

Two suites, on every backend:

* A hypothesis state machine drives four real tasks ("actors") in an event
  loop run by a blocking portal. Each rule hands one idle actor one step:
  acquire (with no timeout, a zero timeout or a few milliseconds) or release
  the reentrant Lock, the Semaphore, the CapacityLimiter, the Condition's
  lock, or the RateLimiter; wait on or notify the Condition while holding
  its lock at any depth; release what it does not hold. Other rules cancel a
  busy actor (also in the same turn of the event loop as a release or a
  notify that hands it something), resize the limiter, or let time pass so
  that timeouts fire.
  After every step, once the loop is quiet, each primitive's ``statistics()``
  must agree with what the actors hold: the Lock's owner and depth, the
  Semaphore's value, the limiter's borrowers, the number of waiters of each;
  a Condition wait returns (even cancelled) at the depth it was called at.
  At the end every actor is cancelled and releases what it holds, and every
  primitive is back to its initial state: no token borrowed, no lock owned,
  no waiter stranded.
* A seeded chaos run: sixty tasks take random primitives with random
  timeouts and reentrant depths while a chaos task cancels them at random,
  checking mutual exclusion inside every critical section and the rate
  limit over every window; the same clean end state is required, and no
  task may be left running.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from contextlib import ExitStack
from typing import Any

import anyio
import hypothesis
import pytest
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from anyio.from_thread import start_blocking_portal
from anyio.lowlevel import checkpoint
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from cc.primitives import CapacityLimiter, Condition, Lock, RateLimiter, Semaphore

ACTORS = 4
SEMAPHORE_TOKENS = 2
RATE, PERIOD = 4, 0.02
TIMEOUTS = st.sampled_from([None, None, 0, 0.001, 0.004])
PICKS = st.integers(0, ACTORS - 1)
# What the state machine does at each step, weighted by repetition.
STEPS = (
    *["acquire"] * 6,
    *["release"] * 2,
    *["wait"] * 2,
    "notify",
    "cancel",
    *["release racing cancel"] * 2,
    "notify racing cancel",
    "resize limiter",
    "time passes",
)
# Which primitive a step is about, weighted by repetition.
PRIMITIVES = ("lock", "lock", "sem", "sem", "cond", "cond", "limiter", "rate")

Step = tuple[str, Any, float | None]


class World:
    """The primitives, the actor tasks and what each actor holds (in the loop)."""

    def __init__(self) -> None:
        self.lock = Lock()
        self.sem = Semaphore(SEMAPHORE_TOKENS, max_value=SEMAPHORE_TOKENS)
        self.limiter = CapacityLimiter(2)
        self.cond = Condition()
        self.rate = RateLimiter(RATE, period=PERIOD)
        self.holding = [Counter[str]() for _ in range(ACTORS)]
        self.busy: list[tuple[str, Any] | None] = [None] * ACTORS
        self.scopes: list[anyio.CancelScope | None] = [None] * ACTORS
        self.inboxes: list[ObjectSendStream[Step]] = []
        self.problems: list[str] = []
        self.outcomes: Counter[str] = Counter()
        self.progress = 0

    # -- actors ---------------------------------------------------------------

    async def actor(self, me: int, inbox: ObjectReceiveStream[Step]) -> None:
        """Perform the steps sent to actor ``me``, one at a time."""
        async with inbox:
            async for op, arg, timeout in inbox:
                with anyio.CancelScope() as scope:
                    self.scopes[me] = scope
                    if timeout is not None:
                        scope.deadline = anyio.current_time() + timeout
                    try:
                        await self.perform(me, op, arg)
                    except Exception as exc:
                        self.problems.append(f"actor-{me} {op}: {exc!r}")
                if scope.cancelled_caught:
                    self.outcomes["steps cancelled or timed out"] += 1
                self.scopes[me] = None
                self.busy[me] = None
                self.progress += 1

    def submit(self, me: int, op: str, arg: Any, timeout: float | None) -> bool:
        """Hand ``op`` to actor ``me`` if it is idle; return whether it was."""
        if self.busy[me] is not None:
            return False
        self.busy[me] = (op, arg)
        self.inboxes[me].send_nowait((op, arg, timeout))
        self.outcomes[f"{op} steps"] += 1
        return True

    def submit_to(self, pick: int, op: str, arg: Any, timeout: float | None) -> None:
        """Hand ``op`` to the ``pick``-th idle actor for whom it means something.

        Releases, waits and notifications go to an actor holding the
        primitive if there is one; acquisitions to any idle actor.
        """
        idle = [i for i in range(ACTORS) if self.busy[i] is None]
        if not idle:
            return
        key = {"release": arg, "wait": "cond", "notify": "cond"}.get(op)
        holders = [i for i in idle if key and self.holding[i][key]]
        chosen = (holders or idle)[pick % len(holders or idle)]
        self.submit(chosen, op, arg, timeout)

    def cancel_one(self, pick: int, waiting_for: str | None = None) -> None:
        """Cancel the ``pick``-th busy actor (waiting for ``waiting_for``)."""
        busy = [i for i in range(ACTORS) if self.busy[i] is not None]
        waiting = [i for i in busy if waiting_for in (self.busy[i] or ())]
        if busy:
            self.cancel((waiting or busy)[pick % len(waiting or busy)])

    def cancel(self, me: int) -> None:
        """Cancel whatever actor ``me`` is doing."""
        scope = self.scopes[me]
        if scope is not None:
            scope.cancel()

    async def perform(self, me: int, op: str, arg: Any) -> None:
        """Run one step in actor ``me``; record what it now holds."""
        held = self.holding[me]
        if op == "acquire":
            if arg == "lock":
                await self.lock.acquire()
            elif arg == "sem":
                await self.sem.acquire()
            elif arg == "limiter":
                if held["limiter"]:
                    with _Expect(RuntimeError, "is already holding"):
                        await self.limiter.acquire()
                    return
                await self.limiter.acquire()
            elif arg == "cond":
                await self.cond.acquire()
            else:
                await self.rate.acquire()
                return
            held[arg] += 1
        elif op == "release":
            if not held[arg]:
                self.release_unheld(arg)
                return
            {
                "lock": self.lock.release,
                "sem": self.sem.release,
                "limiter": self.limiter.release,
                "cond": self.cond.release,
            }[arg]()
            held[arg] -= 1
        elif op == "wait":
            if not held["cond"]:
                with _Expect(RuntimeError, "not holding the underlying lock"):
                    await self.cond.wait()
                return
            depth = held["cond"]
            try:
                await self.cond.wait()
            finally:
                stats = self.cond.lock.statistics()
                if not self.cond.lock.owned_by_current_task() or stats.depth != depth:
                    self.problems.append(
                        f"actor-{me} left wait() at depth {stats.depth} owned="
                        f"{self.cond.lock.owned_by_current_task()}, expected {depth}"
                    )
        elif op == "notify":
            if not held["cond"]:
                with _Expect(RuntimeError, "not holding the underlying lock"):
                    if arg is None:
                        await self.cond.notify_all()
                    else:
                        await self.cond.notify(arg)
                return
            if arg is None:
                self.cond.notify_all()  # anyio's style: acts without an await
            else:
                await self.cond.notify(arg)  # the reference's style
        elif op == "release everything":
            for _ in range(held["lock"]):
                self.lock.release()
            for _ in range(held["cond"]):
                self.cond.release()
            for _ in range(held["sem"]):
                self.sem.release()
            if held["limiter"]:
                self.limiter.release()
            held.clear()

    def release_unheld(self, what: str) -> None:
        """Release something the actor does not hold: the documented error."""
        if what == "sem":
            return  # a semaphore has no owner: that release would be legal
        expected = {
            "lock": "not holding this lock",
            "cond": "not holding this lock",
            "limiter": "isn't holding any",
        }[what]
        release = {
            "lock": self.lock.release,
            "cond": self.cond.release,
            "limiter": self.limiter.release,
        }[what]
        with _Expect(RuntimeError, expected):
            release()
        self.outcomes["releases refused (not held)"] += 1

    # -- settling and checking --------------------------------------------

    async def settle(self) -> list[str]:
        """Let every runnable task run until nothing moves; return the problems."""
        quiet = 0
        for _ in range(400):
            before = self.progress
            await checkpoint()
            quiet = quiet + 1 if self.progress == before else 0
            if quiet >= 8:
                break
        return self.check()

    def check(self) -> list[str]:
        """Compare every primitive's statistics with what the actors hold."""
        problems = list(self.problems)
        busy = Counter(f"{b[0]}:{b[1]}" for b in self.busy if b is not None)
        self.check_lock(
            problems, "Lock", self.lock, "lock", busy["acquire:lock"], waiting=set()
        )
        in_wait = {i for i, b in enumerate(self.busy) if b and b[0] == "wait"}
        cond_stats = self.cond.statistics()
        self.check_lock(
            problems,
            "Condition lock",
            self.cond.lock,
            "cond",
            None,
            waiting=in_wait,
        )
        blocked = busy["acquire:cond"] + len(in_wait)
        if cond_stats.tasks_waiting + cond_stats.lock_statistics.tasks_waiting != (
            blocked
        ):
            problems.append(f"Condition waiters {cond_stats}, {blocked} actors blocked")
        sem = self.sem.statistics()
        held = sum(h["sem"] for h in self.holding)
        if (
            sem.value + held != SEMAPHORE_TOKENS
            or sem.tasks_waiting != busy["acquire:sem"]
        ):
            problems.append(f"Semaphore {sem}: {held} held, {busy['acquire:sem']} wait")
        lim = self.limiter.statistics()
        holders = sorted(
            f"actor-{i}" for i, h in enumerate(self.holding) if h["limiter"]
        )
        if (
            sorted(lim.borrower_names) != holders
            or lim.borrowed_tokens != len(holders)
            or lim.tasks_waiting != busy["acquire:limiter"]
        ):
            problems.append(f"CapacityLimiter {lim}: held by {holders}")
        rate = self.rate.statistics()
        if rate.tasks_waiting != busy["acquire:rate"]:
            problems.append(f"RateLimiter {rate}: {busy['acquire:rate']} waiting")
        return problems

    def check_lock(
        self,
        problems: list[str],
        label: str,
        lock: Lock,
        key: str,
        acquiring: int | None,
        waiting: set[int],
    ) -> None:
        """Check a Lock's owner, depth and waiters against the actors."""
        owners = [i for i, h in enumerate(self.holding) if h[key] and i not in waiting]
        stats = lock.statistics()
        if len(owners) > 1:
            problems.append(f"{label} held by several actors: {owners}")
            return
        owner = f"actor-{owners[0]}" if owners else None
        depth = self.holding[owners[0]][key] if owners else 0
        owner_name = None if stats.owner is None else stats.owner.name
        if owner_name != owner or stats.depth != depth or stats.locked != bool(owner):
            problems.append(f"{label} {stats}, expected {owner} at depth {depth}")
        if acquiring is not None and stats.tasks_waiting != acquiring:
            problems.append(f"{label} {stats}, {acquiring} actors waiting")

    def clean(self) -> list[str]:
        """Return what is not back to the initial state."""
        problems = []
        if self.lock.statistics() != Lock().statistics():
            problems.append(f"Lock {self.lock.statistics()}")
        if self.cond.statistics().tasks_waiting or self.cond.lock.locked():
            problems.append(f"Condition {self.cond.statistics()}")
        if self.sem.statistics() != Semaphore(2, max_value=2).statistics():
            problems.append(f"Semaphore {self.sem.statistics()}")
        lim = self.limiter.statistics()
        if lim.borrowed_tokens or lim.borrowers or lim.tasks_waiting:
            problems.append(f"CapacityLimiter {lim}")
        if self.rate.statistics().tasks_waiting:
            problems.append(f"RateLimiter {self.rate.statistics()}")
        return problems


class _Expect:
    """Like ``pytest.raises(exc_type, match=text)``, for code run by an actor.

    A missing or different exception propagates to :meth:`World.actor`,
    which records it as a problem for the machine to report.
    """

    def __init__(self, exc_type: type[Exception], text: str) -> None:
        self.exc_type = exc_type
        self.text = text

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None:
            raise AssertionError(f"{self.exc_type.__name__} was not raised")
        return isinstance(exc, self.exc_type) and self.text in str(exc)


class PrimitivesMachine(RuleBasedStateMachine):
    """Hypothesis drives the actors; see the module docstring."""

    def __init__(self, backend: Any, report: Any) -> None:
        super().__init__()
        self.report = report
        self.steps = 0
        self.world = World()
        self.stack = ExitStack()
        name, options = backend
        try:
            self.portal = self.stack.enter_context(start_blocking_portal(name, options))
            for me in range(ACTORS):
                send, receive = anyio.create_memory_object_stream[Step](1)
                self.world.inboxes.append(send)
                self.portal.start_task_soon(
                    self.world.actor, me, receive, name=f"actor-{me}"
                )
        except BaseException:
            self.stack.close()
            raise

    def _step(self, pick: int, op: str, arg: Any, timeout: float | None) -> None:
        self.portal.call(self.world.submit_to, pick, op, arg, timeout)
        self._settle()

    def _settle(self) -> None:
        self.steps += 1
        problems = self.portal.call(self.world.settle)
        assert not problems, problems

    # One rule with a weighted choice of step, rather than a rule per step:
    # acquisitions must outnumber releases for interesting states to build
    # up. The integer arguments pick among the actors for whom the step
    # means something (an idle one, one holding the primitive, one waiting
    # for it), so that short programs reach the interesting interleavings.

    @rule(
        op=st.sampled_from(STEPS),
        what=st.sampled_from(PRIMITIVES),
        pick=PICKS,
        victim=PICKS,
        timeout=TIMEOUTS,
        n=st.sampled_from([None, 0, 1, 2]),
        cancel_first=st.booleans(),
    )
    def step(
        self,
        op: str,
        what: str,
        pick: int,
        victim: int,
        timeout: float | None,
        n: int | None,
        cancel_first: bool,
    ) -> None:
        """Take one step; see the module docstring and STEPS."""
        world = self.world
        if what == "rate" and "release" in op:
            what = "sem"  # a rate limiter has nothing to release

        def act() -> None:
            if op == "acquire":
                world.submit_to(pick, "acquire", what, timeout)
            elif op == "release":
                world.submit_to(pick, "release", what, None)
            elif op == "wait":
                world.submit_to(pick, "wait", None, timeout)
            elif op == "notify":
                world.submit_to(pick, "notify", n, None)
            elif op == "cancel":
                world.cancel_one(pick)
            elif op == "release racing cancel":
                # The waiter the release hands the primitive to is woken
                # with a cancellation: it must pass it on, not strand it.
                if cancel_first:
                    world.cancel_one(victim, waiting_for=what)
                world.submit_to(pick, "release", what, None)
                if not cancel_first:
                    world.cancel_one(victim, waiting_for=what)
            elif op == "notify racing cancel":
                world.submit_to(pick, "notify", 1 if n is None else n, None)
                world.cancel_one(victim, waiting_for="wait")
            elif op == "resize limiter":
                world.limiter.total_tokens = 1 + pick % 3

        if op == "time passes":
            self.portal.call(anyio.sleep, 0.001 if cancel_first else 0.005)
        else:
            self.portal.call(act)
        self._settle()

    @invariant()
    def nothing_unexpected(self) -> None:
        """Every check of the last step passed (repeated for the report)."""
        self.report.check("primitive statistics agree with the holders")

    def teardown(self) -> None:
        """Cancel everyone, release everything, and require the initial state."""
        world = self.world
        try:
            # A cancelled Condition wait still takes its lock back (shielded),
            # so it may have to wait for another actor's release first.
            for _ in range(ACTORS + 1):
                for me in range(ACTORS):
                    self.portal.call(world.cancel, me)
                self._settle()
                for me in range(ACTORS):
                    if world.busy[me] is None and +world.holding[me]:
                        self.portal.call(
                            world.submit, me, "release everything", None, None
                        )
                self._settle()
                if not any(world.busy) and not any(+h for h in world.holding):
                    break
            problems = self.portal.call(world.clean)
            assert not problems, f"not back to the initial state: {problems}"
            self.report.check("primitives back to their initial state")
            for what, count in world.outcomes.items():
                if what.endswith(" steps"):
                    self.report.moved("primitive operations (state machine)", count)
                else:
                    self.report.fault(f"primitives (state machine): {what}", count)
        finally:
            for inbox in world.inboxes:
                self.portal.call(inbox.close)
            # Cancel what is left (an actor stuck on a stranded lock, after a
            # failure) rather than wait for it.
            self.portal.call(self.portal.stop, True)
            self.stack.close()


# Without shrinking: the backends schedule nondeterministically, so a failure
# rarely replays step for step, and shrinking would only spend the time
# budget. The failing program is printed as it ran.
MACHINE_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=list(HealthCheck),
)


def test_state_machine_keeps_primitives_consistent(
    anyio_backend: Any, kit: Any
) -> None:
    """Random steps of four actors; statistics agree after every one."""

    def machine() -> PrimitivesMachine:
        return PrimitivesMachine(anyio_backend, kit.report)

    hypothesis.seed(kit.seed)(machine)
    run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)


# -- the seeded chaos run -----------------------------------------------------

CHAOS_TASKS = 60
CHAOS_SECONDS = 0.5
GRACE = 2.0


class Chaos:
    """Sixty tasks, five primitives, random timeouts and cancellations."""

    def __init__(self, rng: random.Random) -> None:
        self.lock = Lock()
        self.sem = Semaphore(3, max_value=3)
        self.limiter = CapacityLimiter(4)
        self.cond = Condition()
        self.rate = RateLimiter(50, period=0.05)
        self.items = 0
        self.inside: Counter[str] = Counter()
        self.violations: list[str] = []
        self.rate_times: list[float] = []
        self.outcomes: Counter[str] = Counter()
        self.rngs = [random.Random(rng.getrandbits(64)) for _ in range(CHAOS_TASKS)]
        self.chaos_rng = random.Random(rng.getrandbits(64))
        self.scopes: list[anyio.CancelScope | None] = [None] * CHAOS_TASKS
        self.end = math.inf

    async def pause(self, rng: random.Random) -> None:
        """Stay a little inside a critical section."""
        pick = rng.random()
        if pick < 0.5:
            await checkpoint()
        elif pick < 0.6:
            await anyio.sleep(0.0005)

    async def enter(self, name: str, limit: int, rng: random.Random) -> None:
        """Count the tasks inside ``name``; more than ``limit`` is a violation."""
        self.inside[name] += 1
        try:
            if self.inside[name] > limit:
                self.violations.append(f"{self.inside[name]} tasks inside {name}")
            await self.pause(rng)
        finally:
            self.inside[name] -= 1

    async def nested_lock(self, depth: int, rng: random.Random) -> None:
        """Take the Lock ``depth`` times, checking the depth at the bottom."""
        async with self.lock:
            if depth > 1:
                await self.nested_lock(depth - 1, rng)
                return
            stats = self.lock.statistics()
            if not self.lock.owned_by_current_task():
                self.violations.append(f"Lock not owned inside its block: {stats}")
            await self.enter("lock", 1, rng)

    async def one_step(self, rng: random.Random) -> None:
        """Do one random thing with one random primitive."""
        op = rng.choice(["lock", "sem", "limiter", "put", "take", "rate"])
        self.outcomes[f"{op} steps"] += 1
        if op == "lock":
            depth = rng.randint(1, 3)
            await self.nested_lock(depth, rng)
        elif op == "sem":
            async with self.sem:
                await self.enter("sem", 3, rng)
        elif op == "limiter":
            async with self.limiter:
                await self.enter("limiter", 4, rng)
        elif op == "put":
            async with self.cond:
                self.items += 1
                await self.cond.notify(rng.choice([1, 1, 2]))
        elif op == "take":
            async with self.cond, self.cond:  # a wait at depth 2
                await self.cond.wait_for(lambda: self.items > 0)
                if self.cond.lock.statistics().depth != 2:
                    self.violations.append("wait_for returned at the wrong depth")
                self.items -= 1
        else:
            await self.rate.acquire()
            self.rate_times.append(anyio.current_time())

    async def worker(self, me: int) -> None:
        """Loop over random steps, each under a random timeout, until the end."""
        rng = self.rngs[me]
        while anyio.current_time() < self.end:
            with anyio.CancelScope() as scope:
                self.scopes[me] = scope
                timeout = rng.choice([None, 0, 0.0005, 0.002, 0.01])
                # "No timeout" still ends a while after the run, so that a
                # stranded primitive fails the checks below instead of
                # hanging the test.
                scope.deadline = (
                    anyio.current_time() + timeout
                    if timeout is not None
                    else self.end + GRACE
                )
                await self.one_step(rng)
            self.scopes[me] = None
            if scope.cancelled_caught:
                self.outcomes["steps cancelled or timed out"] += 1
            await checkpoint()

    async def chaos(self) -> None:
        """Cancel a random task's current step now and then."""
        rng = self.chaos_rng
        while anyio.current_time() < self.end:
            await anyio.sleep(rng.choice([0, 0.0005, 0.002]))
            scope = self.scopes[rng.randrange(CHAOS_TASKS)]
            if scope is not None:
                scope.cancel()
                self.outcomes["chaos cancellations"] += 1
        # Time is up: cancel whatever is still waiting (a consumer waiting
        # for an item that will never come, a waiter without timeout).
        for scope in self.scopes:
            if scope is not None:
                scope.cancel()

    def rate_excess(self, since: float) -> str | None:
        """Say how the acquisitions exceed the rate over the whole run, if they do.

        At most ``rate`` per period, so at most ``rate * (span / period + 1)``
        within ``span`` seconds: a bound that late clock readings on a loaded
        machine cannot break. The exact window is checked in virtual time by
        test_rate_limiter_window_is_exact_in_virtual_time.
        """
        if not self.rate_times:
            return None
        span = max(self.rate_times) - since
        bound = self.rate.rate * (span / self.rate.period + 1)
        if len(self.rate_times) > bound:
            return f"{len(self.rate_times)} acquisitions in {span:.4f} s > {bound:.0f}"
        return None


@pytest.mark.anyio
async def test_seeded_chaos_leaves_primitives_clean(kit: Any) -> None:
    """Sixty tasks under random timeouts and cancellations; see the module."""
    chaos = Chaos(kit.rng)
    baseline = kit.live_tasks()
    started = anyio.current_time()
    chaos.end = started + CHAOS_SECONDS
    async with anyio.create_task_group() as tg:
        for me in range(CHAOS_TASKS):
            tg.start_soon(chaos.worker, me)
        tg.start_soon(chaos.chaos)
    where = kit.where(outcomes=dict(chaos.outcomes))
    assert not chaos.violations, f"{chaos.violations[:5]} {where}"
    kit.report.check("mutual exclusion inside every critical section")
    assert chaos.rate_excess(started) is None, f"{chaos.rate_excess(started)} {where}"
    kit.report.check("rate limit kept")
    assert chaos.lock.statistics() == Lock().statistics(), where
    cond = chaos.cond.statistics()
    assert cond.tasks_waiting == 0 and not cond.lock_statistics.locked, where
    assert chaos.sem.statistics() == Semaphore(3, max_value=3).statistics(), where
    limiter = chaos.limiter.statistics()
    assert (limiter.borrowed_tokens, limiter.tasks_waiting) == (0, 0), where
    assert chaos.rate.statistics().tasks_waiting == 0, where
    kit.report.check("primitives back to their initial state")
    kit.assert_no_new_tasks(baseline)
    for what, count in chaos.outcomes.items():
        if what.endswith(" steps"):
            kit.report.moved("primitive operations (chaos)", count)
        else:
            kit.report.fault(f"primitives (chaos): {what}", count)


# -- the rate limiter's window, in virtual time ------------------------------


def test_rate_limiter_window_is_exact_in_virtual_time(kit: Any) -> None:
    """Forty tasks under timeouts and cancellations; no window holds too much.

    On trio with a MockClock that jumps ahead whenever every task waits, no
    time passes while tasks run, so the time read right after an acquisition
    is the limiter's own: every window of one period, wherever it starts,
    must hold at most ``rate`` (amounts of 0.5, 1 and 2 included).
    """
    import trio.testing

    rng = random.Random(kit.rng.getrandbits(64))
    rate, period = 10, 0.1
    limiter = RateLimiter(rate, period=period)
    taken: list[tuple[float, float]] = []
    outcomes: Counter[str] = Counter()
    scopes: dict[int, anyio.CancelScope] = {}

    async def acquirer(me: int, plan: random.Random) -> None:
        for _ in range(60):
            amount = plan.choice([1, 1, 1, 2, 0.5])
            with anyio.CancelScope() as scope:
                scopes[me] = scope
                timeout = plan.choice([None, None, 0.01, 0.05])
                if timeout is not None:
                    scope.deadline = anyio.current_time() + timeout
                await limiter.acquire(amount)
                taken.append((anyio.current_time(), amount))
            del scopes[me]
            outcomes["cancelled or timed out" if scope.cancelled_caught else "ok"] += 1
            await anyio.sleep(plan.choice([0, 0.01, 0.03]))

    async def chaos() -> None:
        while scopes or not taken:
            await anyio.sleep(rng.choice([0.005, 0.02]))
            if scopes:
                scopes[rng.choice(list(scopes))].cancel()
                outcomes["chaos cancellations"] += 1

    async def main() -> int:
        async with anyio.create_task_group() as tg:
            for me in range(40):
                tg.start_soon(acquirer, me, random.Random(rng.getrandbits(64)))
            tg.start_soon(chaos)
        return limiter.statistics().tasks_waiting

    clock = trio.testing.MockClock(autojump_threshold=0)
    waiting = anyio.run(main, backend="trio", backend_options={"clock": clock})
    taken.sort()
    first = 0
    in_window = 0.0
    for now, amount in taken:
        in_window += amount
        # Clock readings are sums of floats: allow their rounding residue,
        # as the limiter does.
        while taken[first][0] <= now - period + period * 1e-9:
            in_window -= taken[first][1]
            first += 1
        assert in_window <= rate + 1e-9, (
            f"{in_window} acquired within {period} s before {now} {kit.where()}"
        )
    assert waiting == 0, f"{waiting} waiters stranded {kit.where()}"
    kit.report.check("rate limiter window exact in virtual time", len(taken))
    kit.report.moved("rate limiter acquisitions (virtual time)", len(taken))
    kit.report.fault(
        "rate limiter waits cancelled or timed out", outcomes["cancelled or timed out"]
    )
