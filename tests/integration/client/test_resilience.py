"""The client when the API server goes away: restarts are ridden out, absence is reported."""

from __future__ import annotations

import pytest
import trio

from arktos_lite import client

from .conftest import CONFIGMAPS, Cluster, configmap, seen


async def test_requests_recover_when_the_server_restarts_on_the_same_port(
    cluster: Cluster,
) -> None:
    async with cluster.client(backoff_base=0.05, backoff_max=0.2, retries=30) as admin:
        await admin.create(CONFIGMAPS, configmap("before"), tenant="t1")
        port = cluster.port
        await cluster.stop()
        results: dict[str, object] = {}

        async def read_while_down() -> None:
            results["get"] = await admin.get(CONFIGMAPS, "before", namespace="default", tenant="t1")

        async def write_while_down() -> None:
            # A POST that could not connect surely was not processed: it is retried too.
            results["create"] = await admin.create(CONFIGMAPS, configmap("during"), tenant="t1")

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_while_down)
                nursery.start_soon(write_while_down)
                await trio.sleep(0.5)
                await cluster.start()
        assert cluster.port == port
        assert results["get"]["metadata"]["name"] == "before"  # type: ignore[index]
        assert results["create"]["metadata"]["name"] == "during"  # type: ignore[index]
        # The pool's connections to the old server are gone; new ones serve on.
        listed = await admin.list(CONFIGMAPS, tenant="t1")
        assert [c["metadata"]["name"] for c in listed["items"]] == ["before", "during"]


async def test_a_watch_ends_when_the_server_stops_and_resumes_after_it_restarts(
    cluster: Cluster,
) -> None:
    async with cluster.client(backoff_base=0.05, backoff_max=0.2, retries=30) as admin:
        first = await admin.create(CONFIGMAPS, configmap("a"), tenant="t1")
        last = first["metadata"]["resourceVersion"]
        async with admin.watch(CONFIGMAPS, tenant="t1", resource_version=last) as events:
            await admin.create(CONFIGMAPS, configmap("b"), tenant="t1")
            with trio.fail_after(5):
                event = await anext(events)
            last = event.object["metadata"]["resourceVersion"]
            with trio.fail_after(5):
                await cluster.stop()
                # The stopping server ends the stream; it does not break it.
                assert [e async for e in events] == []
        with trio.fail_after(10):
            await cluster.start()
            await admin.create(CONFIGMAPS, configmap("c"), tenant="t1")
            async with admin.watch(CONFIGMAPS, tenant="t1", resource_version=last) as events:
                resumed = seen(await anext(events))
    assert (resumed.type, resumed.name) == ("ADDED", "c")


async def test_a_server_that_is_gone_is_unreachable(cluster: Cluster) -> None:
    admin = cluster.client(retries=4, backoff_base=0.01, backoff_max=0.05)
    async with admin:
        await admin.version()
        await cluster.stop()
        with pytest.raises(client.Unreachable, match="attempt 4 of 4"):
            await admin.get(CONFIGMAPS, "a", namespace="default", tenant="t1")
        with pytest.raises(client.Unreachable):
            await admin.create(CONFIGMAPS, configmap("x"), tenant="t1")
        with pytest.raises(client.Unreachable):
            async with admin.watch(CONFIGMAPS, tenant="t1"):
                pass
