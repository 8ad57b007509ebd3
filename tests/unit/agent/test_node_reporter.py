"""`NodeReporter`'s schedule on trio's mock clock, over an in-memory stand-in for the API:
when the Lease is renewed and when the status is written."""

from __future__ import annotations

import copy
import datetime
import itertools
from pathlib import Path
from typing import Any, cast

import pytest
import trio

from arktos_lite import client
from arktos_lite.agent import _node as node_
from arktos_lite.agent._runtimes import NamedRuntime, RuntimeSet, WorkloadType
from arktos_lite.api import errors, resources
from arktos_lite.runtime._fake import FakeRuntime

Obj = dict[str, Any]
GIB = 1024**3
EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


class FakeAPI:
    """Objects by (plural, name), with resourceVersions, conflicts and a write log."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Obj] = {}
        self.writes: list[tuple[float, str, str]] = []
        self._versions = itertools.count(1)
        # Conflicts to answer to the next replaces, regardless of version.
        self.conflicts = 0

    def _store(self, resource: resources.Resource, obj: Obj, verb: str) -> Obj:
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        obj["metadata"].setdefault("uid", f"uid-{obj['metadata']['name']}")
        self.objects[(resource.plural, obj["metadata"]["name"])] = obj
        self.writes.append((trio.current_time(), resource.plural, verb))
        return copy.deepcopy(obj)

    async def get(self, resource: resources.Resource, name: str, **_: Any) -> Obj:
        found = self.objects.get((resource.plural, name))
        if found is None:
            raise errors.NotFound(name)
        return copy.deepcopy(found)

    async def create(self, resource: resources.Resource, obj: Obj, **_: Any) -> Obj:
        if (resource.plural, obj["metadata"]["name"]) in self.objects:
            raise errors.AlreadyExists(obj["metadata"]["name"])
        return self._store(resource, obj, "create")

    async def replace(self, resource: resources.Resource, obj: Obj, **_: Any) -> Obj:
        current = await self.get(resource, obj["metadata"]["name"])
        if self.conflicts or (
            obj["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]
        ):
            self.conflicts = max(0, self.conflicts - 1)
            raise errors.Conflict(obj["metadata"]["name"])
        return self._store(resource, obj, "replace")

    async def patch(self, resource: resources.Resource, name: str, body: Obj, **_: Any) -> Obj:
        current = await self.get(resource, name)
        for key in ("labels", "annotations"):
            current["metadata"].setdefault(key, {}).update(body["metadata"].get(key) or {})
        return self._store(resource, current, "patch")

    def times(self, plural: str) -> list[float]:
        return [at for at, kind, _verb in self.writes if kind == plural]


def reporter(api: FakeAPI, fake: FakeRuntime) -> node_.NodeReporter:
    return node_.NodeReporter(
        cast(client.Client, api),
        node_name="n1",
        runtimes=RuntimeSet((NamedRuntime("fake", WorkloadType.CONTAINER, fake),)),
        root_dir=Path("/nonexistent"),
        host=node_.HostInfo(cpus=2, memory_bytes=4 * GIB),
        usage=node_.Usage(memory_available=2 * GIB, disk_total=10 * GIB, disk_free=5 * GIB),
        clock=lambda: EPOCH + datetime.timedelta(seconds=trio.current_time()),
    )


async def test_lease_every_ten_seconds_and_status_every_minute_when_nothing_changes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api, fake = FakeAPI(), FakeRuntime()
    async with trio.open_nursery() as nursery:
        await nursery.start(reporter(api, fake).run)
        await trio.sleep(125)
        nursery.cancel_scope.cancel()
    leases = api.times("leases")
    assert len(leases) == 13  # created at 0, renewed at 10, 20, ... 120
    assert all(abs(b - a - 10.0) < 0.01 for a, b in itertools.pairwise(leases))
    assert [round(t) for t in api.times("nodes")] == [0, 60, 120]
    lease = api.objects[("leases", "n1")]
    assert lease["spec"]["renewTime"] == "2026-01-01T00:02:00.000000Z"


async def test_a_change_is_written_at_the_next_check(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api, fake = FakeAPI(), FakeRuntime()
    async with trio.open_nursery() as nursery:
        await nursery.start(reporter(api, fake).run)
        await trio.sleep(15)
        fake.ready = False
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert [round(t) for t in api.times("nodes")] == [0, 20]
    conditions = {c["type"]: c for c in api.objects[("nodes", "n1")]["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["lastTransitionTime"] == "2026-01-01T00:00:20Z"
    assert conditions["MemoryPressure"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"


async def test_a_conflicting_status_write_is_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api, fake = FakeAPI(), FakeRuntime()
    node_reporter = reporter(api, fake)
    async with trio.open_nursery() as nursery:
        await nursery.start(node_reporter.run)
        api.conflicts = 2
        fake.ready = False
        node = await node_reporter.update_status()
        nursery.cancel_scope.cancel()
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions["Ready"] == "False"
    assert (
        api.objects[("nodes", "n1")]["metadata"]["resourceVersion"]
        == (node["metadata"]["resourceVersion"])
    )


async def test_failed_lease_renewals_are_retried_sooner(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api, fake = FakeAPI(), FakeRuntime()
    async with trio.open_nursery() as nursery:
        await nursery.start(reporter(api, fake).run)
        original = api.replace
        failures = 0

        async def failing(resource: resources.Resource, obj: Obj, **options: Any) -> Obj:
            nonlocal failures
            if resource.plural == "leases" and failures < 3:
                failures += 1
                raise errors.StatusError("the store is down")
            return await original(resource, obj, **options)

        api.replace = failing  # type: ignore[method-assign]
        await trio.sleep(11.5)
        nursery.cancel_scope.cancel()
    # Failed at 10, 10.2, 10.6; renewed at 11.4 (backoff 0.2, 0.4, 0.8).
    assert failures == 3
    assert [round(t, 1) for t in api.times("leases")] == [0.0, 11.4]


async def test_registration_waits_for_the_api_server(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api, fake = FakeAPI(), FakeRuntime()
    original = api.create
    refusals = 0

    async def unreachable(resource: resources.Resource, obj: Obj, **options: Any) -> Obj:
        nonlocal refusals
        if refusals < 4:
            refusals += 1
            raise client.Unreachable("connection refused")
        return await original(resource, obj, **options)

    api.create = unreachable  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        node = await nursery.start(reporter(api, fake).run)
        nursery.cancel_scope.cancel()
    assert node["metadata"]["name"] == "n1"
    # Retried after 0.2, 0.4, 0.8 and 1.6 s.
    assert round(api.times("nodes")[0], 1) == 3.0


async def test_registration_refused_for_good_fails(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api, fake = FakeAPI(), FakeRuntime()

    async def forbidden(resource: resources.Resource, obj: Obj, **options: Any) -> Obj:
        raise errors.Forbidden("nodes is forbidden")

    api.create = forbidden  # type: ignore[method-assign]
    with pytest.raises(errors.Forbidden):
        await reporter(api, fake).run()
