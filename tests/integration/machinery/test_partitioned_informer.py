"""An informer over two real API servers (two partitions): one cache of both, a server
that goes down holds up nothing of the other, and when it returns its reflector resumes
its watch where it stopped, without listing again, and catches up with what changed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
import trio

from arktos_lite import client, machinery

from ..client._partitioned import PODS, Partitions, open_partitions, pod, stand_in
from .conftest import Recorder, eventually

LIST_PATH = "/api/v1/tenants/all/pods"


@pytest.fixture(params=[False, True], ids=["servers-of-all", "servers-of-a-partition"])
async def both(request: pytest.FixtureRequest) -> AsyncIterator[Partitions]:
    # Also against servers that refuse (421) what their partition does not hold: the
    # routed client never asks a server for what it does not hold.
    async with open_partitions(enforce=request.param) as running:
        yield running


@pytest.fixture
async def api(both: Partitions) -> AsyncIterator[client.RoutedClient]:
    # Few, quick retries: the reflectors' own backoff is what these tests watch.
    async with both.routed(retries=2, backoff_max=0.5) as routed:
        yield routed


@contextlib.asynccontextmanager
async def informing(
    api: client.Client,
) -> AsyncIterator[tuple[machinery.Informer, Recorder]]:
    target = machinery.InformerFactory(api).informer(PODS)
    recorder = Recorder()
    recorder.attach(target)
    async with trio.open_nursery() as nursery:
        await nursery.start(target.run)
        yield target, recorder
        nursery.cancel_scope.cancel()
    assert recorder.violations == []


async def create(api: client.Client, name: str, tenant: str) -> None:
    await api.create(PODS, pod(name), namespace="default", tenant=tenant)


async def test_one_informer_caches_both_partitions(
    both: Partitions, api: client.RoutedClient
) -> None:
    await create(api, "early", "t1")
    await create(api, "early", "t2")
    async with informing(api) as (target, _):
        assert target.has_synced
        assert sorted(target.keys()) == ["t1/default/early", "t2/default/early"]
        await create(api, "later", "t2")
        await api.delete(PODS, "early", namespace="default", tenant="t1", grace_period_seconds=0)
        await eventually(lambda: sorted(target.keys()) == ["t2/default/early", "t2/default/later"])
        versions = target.resource_versions
        assert set(versions) == {"a", "b"}
        assert all(versions.values())
    # One list and one (long) watch per server.
    for server in (both.a, both.b):
        sent = both.log.to(server, LIST_PATH)
        assert [s.is_list for s in sent] == [True, False]


async def test_a_server_down_and_back(both: Partitions, api: client.RoutedClient) -> None:
    await create(api, "before", "t1")
    await create(api, "before", "t2")
    async with informing(api) as (target, recorder):
        await create(api, "seen", "t2")
        await eventually(lambda: "t2/default/seen" in target)
        await both.b.stop()

        # The other partition goes on, and its changes keep coming.
        await create(api, "while-b-is-down", "t1")
        await eventually(lambda: "t1/default/while-b-is-down" in target)

        # Partition b changes while its server is down (another server over its store).
        async with stand_in(both.b, both.nursery) as other:
            await create(other, "made-while-down", "t2")
            await other.delete(
                PODS, "before", namespace="default", tenant="t2", grace_period_seconds=0
            )
        last_seen = target.resource_versions["b"]
        watches_before = len([s for s in both.log.to(both.b, LIST_PATH) if s.is_watch])

        await both.b.start()
        await eventually(
            lambda: "t2/default/made-while-down" in target and "t2/default/before" not in target,
            within=60,
        )
        await create(api, "after", "t1")
        await create(api, "after", "t2")
        await eventually(lambda: {"t1/default/after", "t2/default/after"} <= set(target.keys()))

        # b's reflector watched again from its own last version, and never listed again.
        sent_to_b = both.log.to(both.b, LIST_PATH)
        assert [s for s in sent_to_b if s.is_list] == [sent_to_b[0]]
        resumed = [s for s in sent_to_b if s.is_watch][watches_before:]
        assert resumed
        assert {s.params["resourceVersion"] for s in resumed} == {last_seen}
        # a never noticed.
        assert [s.is_list for s in both.log.to(both.a, LIST_PATH)] == [True, False]
        assert sorted(target.keys()) == [
            "t1/default/after",
            "t1/default/before",
            "t1/default/while-b-is-down",
            "t2/default/after",
            "t2/default/made-while-down",
            "t2/default/seen",
        ]
        verbs = [(verb, key) for verb, key, _ in recorder.calls if key.startswith("t2/")]
        assert verbs == [
            ("add", "t2/default/before"),
            ("add", "t2/default/seen"),
            ("add", "t2/default/made-while-down"),
            ("delete", "t2/default/before"),
            ("add", "t2/default/after"),
        ]
