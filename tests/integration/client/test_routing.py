"""A routed client over two real API servers: each tenant's requests reach its own
server, lists and watches across tenants merge both, and a partitioned kubeconfig
makes such a client."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest
import trio
import yaml

from arktos_lite import client
from arktos_lite.api import errors, partitions

from .._server import ADMIN_TOKEN
from ._partitioned import NODES, PODS, TENANTS, A, B, Partitions, open_partitions, pod


@pytest.fixture(params=[False, True], ids=["servers-of-all", "servers-of-a-partition"])
async def both(request: pytest.FixtureRequest) -> AsyncIterator[Partitions]:
    # Also against servers that refuse (421) what their partition does not hold: the
    # routed client never asks a server for what it does not hold.
    async with open_partitions(enforce=request.param) as running:
        yield running


async def names(api: client.Client, **options: str) -> list[str]:
    listed = await api.list(PODS, **options)  # type: ignore[arg-type]
    return sorted(item["metadata"]["name"] for item in listed["items"])


async def absent(api: client.Client, *, tenant: str) -> bool:
    try:
        return await names(api, tenant=tenant) == []
    except partitions.MisdirectedRequest:
        return True


async def test_each_tenant_lives_on_its_own_server(both: Partitions) -> None:
    async with both.routed() as api:
        await api.create(PODS, pod("one"), namespace="default", tenant="t1")
        await api.create(PODS, pod("two"), namespace="default", tenant="t2")
        got = await api.get(PODS, "two", namespace="default", tenant="t2")
        assert got["metadata"]["tenant"] == "t2"
        await api.patch(
            PODS, "one", {"metadata": {"labels": {"x": "y"}}}, namespace="default", tenant="t1"
        )
        assert await names(api, tenant="t1") == ["one"]
        await api.create(NODES, {"metadata": {"name": "n1"}})
    # Asked directly, each server holds its own tenants' objects; the other has none of
    # them (or, serving one partition, refuses to be asked).
    elsewhere = (errors.NotFound, partitions.MisdirectedRequest)
    async with both.direct(both.a) as a, both.direct(both.b) as b:
        assert await names(a, tenant="t1") == ["one"]
        assert await names(b, tenant="t2") == ["two"]
        assert await absent(a, tenant="t2")
        assert await absent(b, tenant="t1")
        assert (await a.get(PODS, "one", namespace="default", tenant="t1"))["metadata"][
            "labels"
        ] == {"x": "y"}
        # Tenants live where their names fall; nodes in the designated partition.
        await a.get(TENANTS, "t1")
        await b.get(TENANTS, "t2")
        with pytest.raises(elsewhere):
            await a.get(TENANTS, "t2")
        with pytest.raises(elsewhere):
            await b.get(TENANTS, "t1")
        await a.get(NODES, "n1")
        with pytest.raises(elsewhere):
            await b.get(NODES, "n1")


async def test_lists_across_tenants_merge_both_servers(both: Partitions) -> None:
    async with both.routed() as api:
        for index in range(3):
            await api.create(PODS, pod(f"a{index}"), namespace="default", tenant="t1")
            await api.create(PODS, pod(f"b{index}"), namespace="default", tenant="t2")
        listed = await api.list(PODS, tenant="all")
        # Partition a's tenants first, then b's: the order one server would list them in.
        assert [item["metadata"]["name"] for item in listed["items"]] == [
            "a0",
            "a1",
            "a2",
            "b0",
            "b1",
            "b2",
        ]
        assert "resourceVersion" not in listed["metadata"]
        whole = await api.list_all(PODS, tenant="all", page_size=2)
        assert [item["metadata"]["name"] for item in whole["items"]] == [
            item["metadata"]["name"] for item in listed["items"]
        ]
        pages: list[list[str]] = []
        token: str | None = None
        while True:
            page = await api.list(PODS, tenant="all", limit=4, continue_=token)
            pages.append([item["metadata"]["name"] for item in page["items"]])
            token = page["metadata"].get("continue")
            if not token:
                break
        assert [name for page in pages for name in page] == ["a0", "a1", "a2", "b0", "b1", "b2"]
        assert all(len(page) <= 4 for page in pages)
        tenants = [t["metadata"]["name"] for t in (await api.list(TENANTS))["items"]]
        assert {"t1", "t2"} <= set(tenants)
        assert tenants.count("t1") == tenants.count("t2") == 1
    lists = [s for s in both.log.sent if s.path == "/api/v1/tenants/all/pods" and s.is_list]
    assert {s.port for s in lists} == {both.a.port, both.b.port}


async def test_a_watch_across_tenants_sees_both_servers(both: Partitions) -> None:
    async with both.routed() as api, api.watch(PODS, tenant="all") as events:
        await api.create(PODS, pod("x"), namespace="default", tenant="t1")
        await api.create(PODS, pod("y"), namespace="default", tenant="t2")
        seen: set[tuple[str, str]] = set()
        with trio.fail_after(10):
            async for event in events:
                meta = event.object["metadata"]
                seen.add((meta["tenant"], meta["name"]))
                if seen == {("t1", "x"), ("t2", "y")}:
                    break


def write_kubeconfig(path: pathlib.Path, both: Partitions) -> None:
    contexts, clusters = [], []
    for index, (partition, server) in enumerate([(A, both.a), (B, both.b)]):
        clusters.append({"name": f"p{index}", "cluster": {"server": server.url}})
        contexts.append(
            {
                "name": f"partition-{index}",
                "context": {
                    "cluster": f"p{index}",
                    "user": "admin",
                    "extensions": [
                        {
                            "name": partitions.KUBECONFIG_EXTENSION,
                            "extension": partition.data_partition_config(),
                        }
                    ],
                },
            }
        )
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters,
        "users": [{"name": "admin", "user": {"token": ADMIN_TOKEN}}],
        "contexts": contexts,
        "current-context": "partition-0",
    }
    path.write_text(yaml.safe_dump(document))


async def test_a_partitioned_kubeconfig_reaches_every_partition(
    both: Partitions, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, both)
    async with client.Client.from_kubeconfig(path, timeout=10.0) as api:
        assert isinstance(api, client.RoutedClient)
        await api.create(PODS, pod("via-kubeconfig"), namespace="default", tenant="t2")
        assert await names(api, tenant="all") == ["via-kubeconfig"]
    async with both.direct(both.b) as b:
        assert await names(b, tenant="t2") == ["via-kubeconfig"]
    # One context alone is that one server.
    async with client.Client.from_kubeconfig(path, context="partition-0", timeout=10.0) as a:
        assert await names(a, tenant="all") == []
