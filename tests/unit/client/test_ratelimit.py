"""The client's token bucket, on trio's mock clock."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

from arktos_lite.client import _ratelimit as ratelimit

from ._fakes import CONFIGMAPS, FakeServer


async def _acquire_times(bucket: ratelimit.TokenBucket, count: int) -> list[float]:
    start = trio.current_time()
    times = []
    for _ in range(count):
        await bucket.acquire()
        times.append(trio.current_time() - start)
    return times


async def test_a_burst_then_qps(autojump_clock: trio.testing.MockClock) -> None:
    bucket = ratelimit.TokenBucket(qps=10, burst=3)
    times = await _acquire_times(bucket, 6)
    assert times[:3] == [0, 0, 0]
    assert times[3:] == pytest.approx([0.1, 0.2, 0.3])


async def test_idle_time_refills_up_to_the_burst(autojump_clock: trio.testing.MockClock) -> None:
    bucket = ratelimit.TokenBucket(qps=10, burst=2)
    await _acquire_times(bucket, 2)
    await trio.sleep(60)
    times = await _acquire_times(bucket, 3)
    assert times == pytest.approx([0, 0, 0.1])


async def test_concurrent_waiters_are_spaced_out(autojump_clock: trio.testing.MockClock) -> None:
    bucket = ratelimit.TokenBucket(qps=4, burst=1)
    start = trio.current_time()
    times: list[float] = []

    async def one() -> None:
        await bucket.acquire()
        times.append(trio.current_time() - start)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(one)
    assert sorted(times) == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])


async def test_a_cancelled_waiter_gives_its_token_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bucket = ratelimit.TokenBucket(qps=1, burst=1)
    await bucket.acquire()
    with trio.move_on_after(0.5):
        await bucket.acquire()
    # The cancelled reservation is returned: the next token is due 1s after the first.
    times = await _acquire_times(bucket, 1)
    assert times == pytest.approx([0.5])


async def test_no_limit(autojump_clock: trio.testing.MockClock) -> None:
    bucket = ratelimit.TokenBucket(qps=math.inf, burst=1)
    assert await _acquire_times(bucket, 1000) == [0] * 1000


@pytest.mark.parametrize(("qps", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_bad_settings(qps: float, burst: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        ratelimit.TokenBucket(qps=qps, burst=burst)


async def test_views_of_a_client_share_one_bucket(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeServer()
    async with server.client(qps=2, burst=2) as api:
        t1, t2 = api.with_tenant("t1"), api.with_tenant("t2")
        for view in (api, t1, t2, t1):
            await view.get(CONFIGMAPS, "a", namespace="ns")
    start = server.seen[0].at
    assert [seen.at - start for seen in server.seen] == pytest.approx([0, 0, 0.5, 1.0])
    assert [seen.path.split("/")[3:5] for seen in server.seen] == [
        ["namespaces", "ns"],
        ["tenants", "t1"],
        ["tenants", "t2"],
        ["tenants", "t1"],
    ]
