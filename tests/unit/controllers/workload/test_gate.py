"""The gate and range informers: work on lost keys drains before a range shrinks, and
gained keys open only once every cache holds them."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from arktos_lite import machinery
from arktos_lite.api import resources, selectors
from arktos_lite.controllers import workload

Obj = dict[str, Any]
PODS = next(r for r in resources.RESOURCES if (r.group, r.kind) == ("", "Pod"))


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def keys(low: int, high: int) -> workload.HashRange:
    return workload.HashRange(low=low, high=high)


def pod(name: str, hash_key: int) -> Obj:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "tenant": "system",
            "uid": name,
            "hashKey": hash_key,
            "resourceVersion": "1",
        }
    }


@dataclasses.dataclass
class SlowLister:
    """Lists (after `delay` seconds) what matches the field selector; watches say nothing."""

    objects: list[Obj]
    delay: float = 1.0
    selectors: machinery.Selectors = dataclasses.field(default_factory=machinery.Selectors)
    lists: list[str | None] = dataclasses.field(default_factory=list)

    @property
    def resource(self) -> resources.Resource:
        return PODS

    async def list(
        self,
        *,
        selectors: machinery.Selectors,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> Obj:
        await trio.sleep(self.delay)
        self.lists.append(selectors.field)
        selector = _parse(selectors.field)
        items = [o for o in self.objects if selector.matches(o)]
        return {"metadata": {"resourceVersion": "1"}, "items": items}

    @contextlib.asynccontextmanager
    async def watch(
        self,
        *,
        selectors: machinery.Selectors,
        resource_version: str,
        timeout_seconds: int | None,
    ) -> AsyncIterator[AsyncIterator[machinery.WatchEvent]]:
        async def nothing() -> AsyncIterator[machinery.WatchEvent]:
            await trio.sleep_forever()
            yield  # type: ignore[misc]

        yield nothing()


def _parse(text: str | None) -> selectors.FieldSelector:
    return selectors.FieldSelector.parse(text or "")


async def test_an_inactive_key_is_not_held() -> None:
    gate = workload.RangeGate()
    with gate.hold(5) as mine:
        assert not mine
    gate.widen(keys(0, 10))
    assert 5 in gate
    with gate.hold(5) as mine:
        assert mine


async def test_narrowing_waits_for_work_on_lost_keys_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = workload.RangeGate()
    gate.widen(keys(-1, 100))
    finished: dict[int, float] = {}

    async def work(key: int, seconds: float) -> None:
        with gate.hold(key) as mine:
            assert mine
            await trio.sleep(seconds)
            finished[key] = trio.current_time()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(work, 80, 5.0)  # lost
        nursery.start_soon(work, 10, 50.0)  # kept
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        await gate.narrow(keys(-1, 50))
        assert trio.current_time() - start == pytest.approx(5.0)
        assert 80 in finished
        assert 10 not in finished
        # From now on the lost key is refused at once.
        assert gate.active == keys(-1, 50)
        with gate.hold(80) as mine:
            assert not mine


async def test_select_returns_once_the_new_selection_is_listed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lister = SlowLister([pod("a", 5), pod("b", 50)], delay=3.0)
    informer = workload.RangeInformer(lister)
    async with trio.open_nursery() as nursery:
        await nursery.start(informer.run)
        assert sorted(p["metadata"]["name"] for p in informer.list()) == ["a", "b"]
        start = trio.current_time()
        await informer.select(keys(10, 60).field_selector())
        assert trio.current_time() - start >= 3.0
        assert [p["metadata"]["name"] for p in informer.list()] == ["b"]
        # The same selection again costs nothing.
        start = trio.current_time()
        await informer.select(keys(10, 60).field_selector())
        assert trio.current_time() == start
        nursery.cancel_scope.cancel()


async def test_a_selection_changed_mid_list_waits_for_the_last_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lister = SlowLister([pod("a", 5), pod("b", 50)], delay=3.0)
    informer = workload.RangeInformer(lister)
    async with trio.open_nursery() as nursery:
        await nursery.start(informer.run)
        informer.set_field_selector(keys(-1, 10).field_selector())
        await trio.sleep(1.0)
        await informer.select(keys(10, 60).field_selector())
        assert [p["metadata"]["name"] for p in informer.list()] == ["b"]
        assert lister.lists[-1] == keys(10, 60).field_selector()
        nursery.cancel_scope.cancel()


async def test_gained_keys_open_only_when_every_informer_has_them(
    autojump_clock: trio.testing.MockClock,
) -> None:
    parts = workload.RangeInformers.__new__(workload.RangeInformers)
    # A RangeInformers over fakes: the same fields its constructor sets.
    parts.gate = workload.RangeGate()
    quick = workload.RangeInformer(SlowLister([pod("a", 5)], delay=1.0))
    slow = workload.RangeInformer(SlowLister([pod("b", 5)], delay=4.0))
    parts._informers = [
        (quick, workload.HashRange.field_selector),
        (slow, workload.HashRange.field_selector),
    ]
    parts._lock = trio.Lock()
    async with trio.open_nursery() as nursery:
        await nursery.start(parts.run)
        assert parts.gate.active.is_empty

        opened: list[bool] = []
        widen = parts.gate.widen

        def widen_when_full(new: workload.HashRange) -> None:
            # Both caches hold the key's objects by the time the gate opens.
            opened.append(bool(quick.list()) and bool(slow.list()))
            widen(new)

        parts.gate.widen = widen_when_full  # type: ignore[method-assign]
        await parts.set_range(keys(-1, 10))
        assert parts.gate.active == keys(-1, 10)
        assert opened == [True]
        nursery.cancel_scope.cancel()
