"""An informer over several partitions: one reflector each, one cache, one story for the
handlers, and each partition failing, resuming and re-listing on its own."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from arktos_lite import client
from arktos_lite.api import partitions
from arktos_lite.machinery import _informer as informer, _reflector as reflector

from ._fakes import NODES, PODS, FakeCluster, FakeListerWatcher, Recorder, until, versions

Obj = dict[str, Any]


@dataclasses.dataclass
class Partitioned:
    """A lister-watcher that splits into one per fake partition, as a routed client's does."""

    parts: dict[str, FakeCluster]
    selectors: reflector.Selectors = dataclasses.field(default_factory=reflector.Selectors)

    @property
    def resource(self) -> Any:
        return PODS

    def by_partition(self) -> list[tuple[str, FakeListerWatcher]]:
        return [
            (name, FakeListerWatcher(cluster, self.selectors))
            for name, cluster in self.parts.items()
        ]

    async def list(self, **options: Any) -> Obj:
        raise AssertionError("a split lister-watcher is not listed itself")

    def watch(self, **options: Any) -> Any:
        raise AssertionError("a split lister-watcher is not watched itself")


class Hooked(informer.Informer):
    """Records the selectors in force each time the whole cache is said to be listed."""

    def __init__(self, lw: reflector.ListerWatcher) -> None:
        super().__init__(lw)
        self.replaced: list[reflector.Selectors] = []

    def listed(self) -> None:
        self.replaced.append(self.selectors)


def consistent(parts: dict[str, FakeCluster], target: informer.Informer, rec: Recorder) -> bool:
    held: dict[str, str] = {}
    for cluster in parts.values():
        held.update(versions(cluster))
    cached = {target.key(o): o["metadata"]["resourceVersion"] for o in target.list()}
    return rec.violations == [] and rec.picture == held == cached


@contextlib.asynccontextmanager
async def running(
    parts: dict[str, FakeCluster], *, started: bool = True
) -> AsyncIterator[tuple[Hooked, Recorder]]:
    target = Hooked(Partitioned(parts))
    recorder = Recorder()
    recorder.attach(target)
    async with trio.open_nursery() as nursery:
        if started:
            await nursery.start(target.run)
        else:
            nursery.start_soon(target.run)
        yield target, recorder
        nursery.cancel_scope.cancel()
    assert recorder.violations == []


def two() -> dict[str, FakeCluster]:
    a, b = FakeCluster(), FakeCluster()
    a.put("x", tenant="t1")
    b.put("y", tenant="t2")
    # The stores' revisions are unrelated, as those of two servers are.
    for _ in range(10):
        b.put("z", tenant="t2")
    return {"a": a, "b": b}


async def test_one_cache_over_every_partition(autojump_clock: trio.testing.MockClock) -> None:
    parts = two()
    async with running(parts) as (target, recorder):
        assert target.has_synced
        assert sorted(target.keys()) == ["t1/default/x", "t2/default/y", "t2/default/z"]
        parts["a"].put("x2", tenant="t1")
        parts["b"].delete("t2/default/y")
        await until(lambda: consistent(parts, target, recorder))
        assert target.resource_versions == {
            "a": str(parts["a"].revision),
            "b": str(parts["b"].revision),
        }
        # No single version describes two stores.
        assert target.resource_version == ""
    assert [len(cluster.lists) for cluster in parts.values()] == [1, 1]


async def test_synced_only_once_every_partition_has_listed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    parts = two()
    for _ in range(3):
        parts["a"].list_faults.append(client.Unreachable("connection refused"))
    async with running(parts, started=False) as (target, recorder):
        await until(lambda: "t2/default/y" in target)
        assert not target.has_synced
        assert target.replaced == []
        await target.wait_synced()
        assert consistent(parts, target, recorder)
        assert len(target.replaced) == 1


async def test_a_partition_that_is_down_holds_up_no_other(
    autojump_clock: trio.testing.MockClock,
) -> None:
    parts = two()
    a, b = parts["a"], parts["b"]
    async with running(parts) as (target, recorder):
        last_seen = str(a.revision)
        a.hold_watches()
        a.drop_watches(client.Unreachable("connection refused"))
        b.put("while-a-is-down", tenant="t2")
        a.put("made-while-down", tenant="t1")
        await until(lambda: "t2/default/while-a-is-down" in target)
        assert "t1/default/made-while-down" not in target
        # Back: a watches again from the last version it saw, without listing again.
        a.release_watches()
        await until(lambda: consistent(parts, target, recorder))
        assert len(a.lists) == 1
        assert a.watches[-1].resource_version == last_seen
        assert len(b.lists) == 1


async def test_a_410_lists_again_only_the_partition_that_had_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    parts = two()
    a, b = parts["a"], parts["b"]
    async with running(parts) as (target, recorder):
        told_before = len(recorder.calls)
        a.hold_watches()
        a.drop_watches(client.Unreachable("gone"))
        a.delete("t1/default/x")
        a.put("new", tenant="t1")
        a.compact()
        a.release_watches()
        await until(lambda: len(a.lists) == 2)
        await until(lambda: consistent(parts, target, recorder))
        told = sorted((verb, key) for verb, key, _ in recorder.calls[told_before:])
        assert told == [("add", "t1/default/new"), ("delete", "t1/default/x")]
        assert len(b.lists) == 1


async def test_a_selector_change_is_announced_once_every_partition_has_listed_with_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    parts = two()
    a, b = parts["a"], parts["b"]
    a.put("web", tenant="t1", labels={"app": "web"})
    b.put("web", tenant="t2", labels={"app": "web"})
    async with running(parts) as (target, _):
        assert target.replaced == [reflector.Selectors()]
        for _ in range(2):
            b.list_faults.append(client.Unreachable("slow to come back"))
        target.set_label_selector("app=web")
        await until(lambda: target.replaced[-1] == reflector.Selectors(label="app=web"))
        assert len(target.replaced) == 2
        assert sorted(target.keys()) == ["t1/default/web", "t2/default/web"]
        assert a.lists[-1].selectors == b.lists[-1].selectors == target.selectors


# Over a routed client


A = partitions.Partition("a", partitions.TenantRange("", "t2"))
B = partitions.Partition("b", partitions.TenantRange("t2", ""))


@pytest.mark.parametrize(
    ("resource", "tenant", "expected"),
    [
        (PODS, "all", {"a": "", "b": ""}),
        (PODS, "t2", {"b": ""}),
        (PODS, "t1", {"a": ""}),
        (NODES, "all", {"a": ""}),
    ],
)
async def test_an_informer_over_a_routed_client_has_a_reflector_per_partition(
    resource: Any, tenant: str, expected: dict[str, str]
) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(500))
    async with client.RoutedClient(
        [
            (A, client.Config("http://a.test")),
            (B, client.Config("http://b.test")),
        ],
        transport=transport,
    ) as api:
        target = informer.Informer(reflector.list_watch(api, resource, tenant=tenant))
        assert target.resource_versions == expected
        single = client.Client(client.Config("http://one.test"), transport=transport)
        async with single:
            alone = informer.Informer(reflector.list_watch(single, resource, tenant=tenant))
            assert alone.resource_versions == {"": ""}
