"""The scheduling queue on trio's mock clock: fairness across tenants, priority and age
within one, backoff, and unschedulable pods moving back when the cluster changes."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from arktos_lite.scheduler import _pods as pods, _queue as queue

from ._fixtures import pod


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def _queue(**options: float) -> queue.SchedulingQueue:
    return queue.SchedulingQueue(
        initial_backoff=options.get("initial", 1.0),
        max_backoff=options.get("maximum", 10.0),
        max_unschedulable_duration=options.get("unschedulable", 300.0),
    )


def _drain(q: queue.SchedulingQueue) -> list[str]:
    names = []
    while (queued := q.pop_nowait()) is not None:
        names.append(f"{queued.pod.tenant}/{queued.pod.name}")
        q.done(queued.key)
    return names


async def test_tenants_take_turns() -> None:
    q = _queue()
    for i in range(5):
        q.add(pod(f"a{i}", tenant="big"))
    q.add(pod("b0", tenant="small"))
    q.add(pod("c0", tenant="other"))
    q.add(pod("b1", tenant="small"))

    assert _drain(q) == [
        "big/a0",
        "small/b0",
        "other/c0",
        "big/a1",
        "small/b1",
        "big/a2",
        "big/a3",
        "big/a4",
    ]


async def test_within_a_tenant_priority_then_age() -> None:
    q = _queue()
    q.add(pod("old-low", priority=0))
    q.add(pod("high", priority=100))
    q.add(pod("young-low", priority=0))
    q.add(pod("negative", priority=-5))

    assert _drain(q) == ["system/high", "system/old-low", "system/young-low", "system/negative"]


async def test_priority_does_not_reach_across_tenants() -> None:
    q = _queue()
    q.add(pod("urgent-1", tenant="a", priority=1000))
    q.add(pod("urgent-2", tenant="a", priority=1000))
    q.add(pod("plain", tenant="b"))

    assert _drain(q) == ["a/urgent-1", "b/plain", "a/urgent-2"]


async def test_a_pod_is_held_once() -> None:
    q = _queue()
    first = pod("p")
    q.add(first)
    q.add(pods.PodInfo.parse({**first.obj, "metadata": {**first.obj["metadata"], "labels": {}}}))

    assert len(q) == 1
    queued = q.pop_nowait()
    assert queued is not None
    assert q.pop_nowait() is None
    assert q.where(queued.key) == queue.Where.IN_FLIGHT
    q.done(queued.key)
    assert len(q) == 0


async def test_deleted_pods_are_not_handed_out() -> None:
    q = _queue()
    gone = pod("gone")
    q.add(gone)
    q.add(pod("kept"))
    q.delete(gone.key)

    assert _drain(q) == ["system/kept"]
    assert q.active_count == 0


async def test_pop_waits_for_a_pod() -> None:
    q = _queue()
    got: list[str] = []

    async def popper() -> None:
        got.append((await q.pop()).pod.name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(popper)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        q.add(pod("late"))
    assert got == ["late"]


async def test_each_failure_waits_longer(clock: trio.testing.MockClock) -> None:
    q = _queue(initial=1.0, maximum=10.0)
    q.add(pod("p"))
    queued = await q.pop()
    waits = []
    for _ in range(6):
        q.add_backoff(queued)
        failed_at = trio.current_time()
        queued = await q.pop()
        waits.append(trio.current_time() - failed_at)

    assert waits == pytest.approx([1.0, 2.0, 4.0, 8.0, 10.0, 10.0])


async def test_unschedulable_pods_wait_for_a_cluster_change(clock: trio.testing.MockClock) -> None:
    q = _queue(initial=1.0)
    q.add(pod("p"))
    queued = await q.pop()
    q.add_unschedulable(queued, cycle=q.scheduling_cycle)
    assert q.where(queued.key) == queue.Where.UNSCHEDULABLE

    with trio.move_on_after(100):
        await q.pop()
        raise AssertionError("an unschedulable pod came back by itself")

    q.move_all()
    assert q.where(queued.key) == queue.Where.ACTIVE
    assert (await q.pop()).key == queued.key


async def test_a_move_during_backoff_goes_to_the_backoff_queue(
    clock: trio.testing.MockClock,
) -> None:
    q = _queue(initial=5.0)
    q.add(pod("p"))
    queued = await q.pop()
    q.add_unschedulable(queued, cycle=q.scheduling_cycle)
    started = trio.current_time()

    q.move_all()

    assert q.where(queued.key) == queue.Where.BACKOFF
    await q.pop()
    assert trio.current_time() - started == pytest.approx(5.0)


async def test_a_change_while_in_flight_is_not_missed(clock: trio.testing.MockClock) -> None:
    q = _queue(initial=1.0)
    q.add(pod("p"))
    queued = await q.pop()
    cycle = q.scheduling_cycle
    q.move_all()  # a node appeared while the pod was being tried

    q.add_unschedulable(queued, cycle=cycle)

    assert q.where(queued.key) == queue.Where.BACKOFF


async def test_a_pod_updated_while_in_flight_is_tried_again(clock: trio.testing.MockClock) -> None:
    q = _queue()
    first = pod("p")
    q.add(first)
    queued = await q.pop()
    q.add(first)  # the pod changed

    q.add_unschedulable(queued, cycle=q.scheduling_cycle)

    assert q.where(queued.key) == queue.Where.BACKOFF


async def test_a_pod_deleted_while_in_flight_is_not_requeued() -> None:
    q = _queue()
    q.add(pod("p"))
    queued = q.pop_nowait()
    assert queued is not None
    q.delete(queued.key)

    q.add_unschedulable(queued, cycle=q.scheduling_cycle)

    assert len(q) == 0


async def test_moves_only_reach_pods_the_change_can_help() -> None:
    q = _queue()
    q.add(pod("needs-cpu"))
    q.add(pod("needs-label"))
    q.add(pod("no-nodes"))
    for plugins in ({"NodeResourcesFit"}, {"NodeAffinity"}, set()):
        queued = q.pop_nowait()
        assert queued is not None
        q.add_unschedulable(queued, cycle=q.scheduling_cycle, plugins=frozenset(plugins))

    q.move_all(frozenset({"NodeResourcesFit", "InterPodAffinity"}))

    assert q.unschedulable_count == 1
    assert q.where(pod("needs-label").key) == queue.Where.UNSCHEDULABLE


async def test_unschedulable_pods_are_retried_now_and_then(clock: trio.testing.MockClock) -> None:
    q = _queue(unschedulable=60.0)
    q.add(pod("p"))
    queued = await q.pop()
    q.add_unschedulable(queued, cycle=q.scheduling_cycle)
    parked_at = trio.current_time()

    await q.pop()

    assert trio.current_time() - parked_at == pytest.approx(60.0)


async def test_a_changed_unschedulable_pod_is_tried_again(clock: trio.testing.MockClock) -> None:
    q = _queue(initial=1.0)
    first = pod("p")
    q.add(first)
    queued = await q.pop()
    q.add_unschedulable(queued, cycle=q.scheduling_cycle)
    await trio.sleep(2)

    q.update(first)  # a status-only change leaves it parked
    assert q.where(first.key) == queue.Where.UNSCHEDULABLE
    q.add(first)  # a change to what it asks for does not

    assert q.where(first.key) == queue.Where.ACTIVE


async def test_a_failed_binding_is_requeued_after_its_backoff(
    clock: trio.testing.MockClock,
) -> None:
    q = _queue(initial=1.0)
    q.add(pod("p"))
    queued = await q.pop()
    q.done(queued.key)  # assumed; the binding goes out

    q.add_backoff(queued)  # and fails
    started = trio.current_time()

    assert (await q.pop()).key == queued.key
    assert trio.current_time() - started == pytest.approx(1.0)
