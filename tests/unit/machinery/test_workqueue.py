"""The work queue: fair, stingy, delayed and rate-limited on trio's clock; its workers."""

from __future__ import annotations

import itertools
import logging
import math
import random

import hypothesis
import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import stateful, strategies as st

from arktos_lite.machinery import _workqueue as workqueue

KEYS = st.sampled_from("abcde")
WORKERS = st.integers(min_value=0, max_value=2)


# Fair and stingy


async def test_distinct_keys_come_out_in_the_order_they_went_in() -> None:
    queue = workqueue.WorkQueue[str]()
    for key in "cabc":
        queue.add(key)
    assert len(queue) == 3
    assert [await queue.get() for _ in range(3)] == ["c", "a", "b"]


async def test_a_key_added_while_held_comes_out_once_more_after_done() -> None:
    queue = workqueue.WorkQueue[str]()
    queue.add("a")
    held = await queue.get()
    queue.add("a")
    queue.add("a")
    assert len(queue) == 0
    with pytest.raises(trio.WouldBlock):
        queue.get_nowait()
    queue.done(held)
    assert await queue.get() == "a"
    queue.done("a")
    with pytest.raises(trio.WouldBlock):
        queue.get_nowait()


async def test_get_waits_for_an_add() -> None:
    queue = workqueue.WorkQueue[str]()
    got: list[str] = []

    async def take() -> None:
        got.append(await queue.get())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(take)
        nursery.start_soon(take)
        await trio.testing.wait_all_tasks_blocked()
        queue.add("x")
        queue.add("y")
    assert sorted(got) == ["x", "y"]


async def test_shutdown_hands_out_what_is_queued_then_raises() -> None:
    queue = workqueue.WorkQueue[str]()
    queue.add("a")
    queue.add_after("later", 1)
    queue.shutdown()
    queue.add("b")
    assert await queue.get() == "a"
    with pytest.raises(workqueue.ShutDown):
        await queue.get()


async def test_shutdown_wakes_waiting_getters() -> None:
    queue = workqueue.WorkQueue[str]()
    async with trio.open_nursery() as nursery:

        async def take() -> None:
            with pytest.raises(workqueue.ShutDown):
                await queue.get()

        nursery.start_soon(take)
        await trio.testing.wait_all_tasks_blocked()
        queue.shutdown()


# Delays


async def test_add_after_waits_on_trio_time(autojump_clock: trio.testing.MockClock) -> None:
    queue = workqueue.WorkQueue[str]()
    start = trio.current_time()
    queue.add_after("slow", 10)
    queue.add_after("fast", 2)
    queue.add_after("slow", 30)  # A later time does not postpone it.
    assert len(queue) == 0
    assert await queue.get() == "fast"
    assert trio.current_time() - start == pytest.approx(2)
    assert await queue.get() == "slow"
    assert trio.current_time() - start == pytest.approx(10)


async def test_an_earlier_delay_wakes_a_waiting_getter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = workqueue.WorkQueue[str]()
    start = trio.current_time()
    queue.add_after("a", 100)
    async with trio.open_nursery() as nursery:

        async def take() -> None:
            assert await queue.get() == "b"
            assert trio.current_time() - start == pytest.approx(5)

        nursery.start_soon(take)
        await trio.sleep(1)
        queue.add_after("b", 4)


async def test_add_after_with_no_delay_adds_at_once() -> None:
    queue = workqueue.WorkQueue[str]()
    queue.add_after("a", 0)
    queue.add_after("b", -1)
    assert len(queue) == 2


# Rate limiting


async def test_per_key_backoff_doubles_from_5ms_to_1000s_and_forget_resets(
    mock_clock: trio.testing.MockClock,
) -> None:
    limiter = workqueue.ItemExponentialRateLimiter[str]()
    delays = [limiter.when("a") for _ in range(22)]
    assert delays[:5] == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08])
    assert delays[17] == pytest.approx(0.005 * 2**17)
    assert delays[18:] == [1000.0] * 4
    assert limiter.when("b") == pytest.approx(0.005)
    assert limiter.num_requeues("a") == 22
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == pytest.approx(0.005)
    for _ in range(1000):
        limiter.when("many")
    assert limiter.when("many") == 1000.0


async def test_token_bucket_lets_a_burst_through_then_10_per_second(
    mock_clock: trio.testing.MockClock,
) -> None:
    bucket = workqueue.BucketRateLimiter[str](qps=10, burst=100)
    assert [bucket.when(str(i)) for i in range(100)] == [0.0] * 100
    assert [bucket.when("x") for _ in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    mock_clock.jump(1.0)
    # One second brought back ten tokens, three of them already promised.
    assert [bucket.when("y") for _ in range(8)] == pytest.approx([0.0] * 7 + [0.1])
    mock_clock.jump(1000)
    assert [bucket.when("z") for _ in range(100)] == [0.0] * 100


async def test_the_default_limiter_is_the_slower_of_both(
    mock_clock: trio.testing.MockClock,
) -> None:
    limiter = workqueue.default_rate_limiter()
    assert [limiter.when("a") for _ in range(3)] == pytest.approx([0.005, 0.01, 0.02])
    for i in range(97):
        limiter.when(f"k{i}")
    # The bucket is empty: a new key waits for a token, not just 5 ms.
    assert limiter.when("new") == pytest.approx(0.1)
    assert limiter.num_requeues("a") == 3
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0


async def test_rate_limited_adds_follow_the_backoff_schedule(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = workqueue.WorkQueue[str](rate_limiter=workqueue.ItemExponentialRateLimiter())
    waits = []
    for _ in range(5):
        start = trio.current_time()
        queue.add_rate_limited("a")
        key = await queue.get()
        waits.append(trio.current_time() - start)
        queue.done(key)
    assert waits == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08])
    assert queue.num_requeues("a") == 5
    queue.forget("a")
    start = trio.current_time()
    queue.add_rate_limited("a")
    await queue.get()
    assert trio.current_time() - start == pytest.approx(0.005)


# Workers


async def test_workers_forget_on_success_and_back_off_on_failure(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    queue = workqueue.WorkQueue[str]()
    attempts: list[float] = []
    succeeded = trio.Event()

    async def handler(key: str) -> None:
        attempts.append(trio.current_time())
        if len(attempts) < 4:
            raise RuntimeError(f"attempt {len(attempts)} failed")
        succeeded.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: workqueue.run_workers(
                queue, handler, workers=2, task_status=task_status
            )
        )
        queue.add("a")
        await succeeded.wait()
        await trio.testing.wait_all_tasks_blocked()
        assert queue.num_requeues("a") == 0
        queue.shutdown()
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert gaps == pytest.approx([0.005, 0.01, 0.02])
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 3
    assert all(r.exc_info is not None for r in failures)


async def test_requeue_retries_later_without_an_error(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    queue = workqueue.WorkQueue[str]()
    attempts: list[float] = []
    third = trio.Event()

    async def handler(key: str) -> None:
        attempts.append(trio.current_time())
        if len(attempts) == 1:
            raise workqueue.Requeue(after=30)
        if len(attempts) == 2:
            raise workqueue.Requeue()
        third.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: workqueue.run_workers(queue, handler, workers=1))
        queue.add("a")
        await third.wait()
        queue.shutdown()
    assert attempts[1] - attempts[0] == pytest.approx(30)
    assert attempts[2] - attempts[1] == pytest.approx(0.005)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_shutdown_drains_the_queue_and_the_workers_return() -> None:
    queue = workqueue.WorkQueue[int]()
    handled: list[int] = []

    async def handler(key: int) -> None:
        await trio.lowlevel.checkpoint()
        handled.append(key)

    for key in range(10):
        queue.add(key)
    queue.shutdown()
    await workqueue.run_workers(queue, handler, workers=3)
    assert sorted(handled) == list(range(10))


async def test_cancelled_workers_still_mark_their_keys_done() -> None:
    queue = workqueue.WorkQueue[str]()
    started = trio.Event()

    async def stuck(key: str) -> None:
        started.set()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: workqueue.run_workers(queue, stuck, workers=1))
        queue.add("a")
        await started.wait()
        queue.add("a")  # Re-added while held: must come back after the cancelled attempt.
        nursery.cancel_scope.cancel()
    assert queue.get_nowait() == "a"


async def test_workers_must_be_positive() -> None:
    async def handler(key: str) -> None:
        await trio.lowlevel.checkpoint()

    with pytest.raises(ValueError, match="workers"):
        await workqueue.run_workers(workqueue.WorkQueue[str](), handler, workers=0)


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(
    st.lists(
        st.tuples(st.sampled_from("abcdefgh"), st.floats(0, 2), st.floats(0, 1)),
        min_size=1,
        max_size=60,
    ),
    st.integers(min_value=1, max_value=6),
)
def test_concurrent_workers_never_share_a_key_and_lose_no_add(
    schedule: list[tuple[str, float, float]], workers: int
) -> None:
    """Keys are added at random times while workers take random times to handle them.

    No key is ever in two handlers at once, and every add is followed by a handling that
    starts after it.
    """
    active: set[str] = set()
    last_added: dict[str, float] = {}
    last_started: dict[str, float] = {}
    overlaps: list[str] = []

    async def main() -> None:
        queue = workqueue.WorkQueue[str]()
        durations = {key: duration for key, _, duration in schedule}

        async def handler(key: str) -> None:
            if key in active:
                overlaps.append(key)
            active.add(key)
            last_started[key] = trio.current_time()
            await trio.sleep(durations[key])
            active.discard(key)

        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: workqueue.run_workers(
                    queue, handler, workers=workers, task_status=task_status
                )
            )
            for key, gap, _ in schedule:
                await trio.sleep(gap)
                last_added[key] = trio.current_time()
                queue.add(key)
            await trio.sleep(100)
            queue.shutdown()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert overlaps == []
    for key, added in last_added.items():
        assert last_started[key] >= added


# The state machine


class WorkQueueMachine(stateful.RuleBasedStateMachine):
    """The queue against a model of client-go's semantics, with three workers.

    Runs inside a trio task (time is a MockClock the rules jump).
    """

    clock: trio.testing.MockClock

    def __init__(self) -> None:
        super().__init__()
        self.queue = workqueue.WorkQueue[str](rate_limiter=workqueue.ItemExponentialRateLimiter())
        self.ready: list[str] = []
        self.dirty: set[str] = set()
        self.processing: set[str] = set()
        self.delayed: dict[str, tuple[float, int]] = {}
        self.sequence = 0
        self.failures: dict[str, int] = {}
        self.hands: dict[int, str | None] = {0: None, 1: None, 2: None}
        self.handed_out: list[str] = []

    def _add(self, key: str) -> None:
        if key in self.dirty:
            return
        self.dirty.add(key)
        if key not in self.processing:
            self.ready.append(key)

    def _add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self._add(key)
            return
        due = trio.current_time() + delay
        if key in self.delayed and self.delayed[key][0] <= due:
            return
        self.delayed[key] = (due, self.sequence)
        self.sequence += 1

    def _promote(self) -> None:
        now = trio.current_time()
        for key, _ in sorted(
            ((k, v) for k, v in self.delayed.items() if v[0] <= now), key=lambda kv: kv[1]
        ):
            del self.delayed[key]
            self._add(key)

    @stateful.rule(key=KEYS)
    def add(self, key: str) -> None:
        self.queue.add(key)
        self._add(key)

    @stateful.rule(key=KEYS, delay=st.sampled_from([0.0, 0.5, 1.0, 2.5, 10.0]))
    def add_after(self, key: str, delay: float) -> None:
        self.queue.add_after(key, delay)
        self._add_after(key, delay)

    @stateful.rule(key=KEYS)
    def add_rate_limited(self, key: str) -> None:
        self.queue.add_rate_limited(key)
        failures = self.failures.get(key, 0)
        self.failures[key] = failures + 1
        self._add_after(key, min(0.005 * 2**failures, 1000.0))

    @stateful.rule(key=KEYS)
    def forget(self, key: str) -> None:
        self.queue.forget(key)
        self.failures.pop(key, None)

    @stateful.rule(seconds=st.sampled_from([0.001, 0.1, 0.5, 1.0, 3.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.jump(seconds)

    @stateful.rule(worker=WORKERS)
    def get(self, worker: int) -> None:
        if self.hands[worker] is not None:
            return
        self._promote()
        if not self.ready:
            with pytest.raises(trio.WouldBlock):
                self.queue.get_nowait()
            return
        expected = self.ready.pop(0)
        key = self.queue.get_nowait()
        assert key == expected
        assert key not in self.hands.values(), f"{key} given to two workers"
        self.processing.add(key)
        self.dirty.discard(key)
        self.hands[worker] = key
        self.handed_out.append(key)

    @stateful.rule(worker=WORKERS)
    def done(self, worker: int) -> None:
        key = self.hands[worker]
        if key is None:
            return
        self.hands[worker] = None
        self.queue.done(key)
        self.processing.discard(key)
        if key in self.dirty:
            self.ready.append(key)

    @stateful.invariant()
    def lengths_agree(self) -> None:
        assert len(self.queue) == len(self.ready)
        for key, failures in self.failures.items():
            assert self.queue.num_requeues(key) == failures

    def teardown(self) -> None:
        """Nothing is lost: finishing every held key and waiting out every delay hands out
        exactly the keys still owed, once each."""
        for worker in self.hands:
            self.done(worker)
        self.clock.jump(max((due for due, _ in self.delayed.values()), default=0.0) + 1)
        self._promote()
        drained = []
        while True:
            try:
                key = self.queue.get_nowait()
            except trio.WouldBlock:
                break
            drained.append(key)
        assert drained == self.ready
        assert len(set(drained)) == len(drained)


async def test_the_queue_follows_its_model(mock_clock: trio.testing.MockClock) -> None:
    WorkQueueMachine.clock = mock_clock
    stateful.run_state_machine_as_test(
        WorkQueueMachine,
        settings=hypothesis.settings(max_examples=200, stateful_step_count=60, deadline=None),
    )


def test_delays_beyond_the_cap_do_not_overflow() -> None:
    limiter = workqueue.ItemExponentialRateLimiter[str](base=1e-300, cap=math.inf)
    for _ in range(100):
        assert limiter.when("a") >= 0


@pytest.mark.parametrize("seed", range(3))
async def test_a_busy_queue_hands_every_key_to_one_worker_at_a_time(
    seed: int, autojump_clock: trio.testing.MockClock
) -> None:
    rng = random.Random(seed)
    queue = workqueue.WorkQueue[int]()
    active: set[int] = set()
    overlaps: list[int] = []
    handled = 0

    async def handler(key: int) -> None:
        nonlocal handled
        # Workers log what a handler raises; record instead, and assert at the end.
        if key in active:
            overlaps.append(key)
        active.add(key)
        await trio.sleep(rng.random() / 10)
        active.discard(key)
        handled += 1
        if rng.random() < 0.2:
            raise workqueue.Requeue(after=rng.random())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: workqueue.run_workers(queue, handler, workers=8))
        for _ in range(2000):
            queue.add(rng.randrange(50))
            if rng.random() < 0.1:
                await trio.sleep(rng.random() / 100)
        await trio.sleep(60)
        queue.shutdown()
    assert overlaps == []
    assert handled >= 50
