"""Hollow nodes against a real API server: many nodes that stay Ready, and pods on them
that run and go."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from arktos_lite import agent, client

from ..controllers.conftest import LEASES, NODES, PODS, eventually, exists

Obj = dict[str, Any]


@contextlib.asynccontextmanager
async def hollow(
    api: client.Client, count: int, **options: Any
) -> AsyncIterator[agent.HollowNodes]:
    nodes = agent.HollowNodes(api, count=count, seed=1, **options)
    async with trio.open_nursery() as nursery:
        await nursery.start(nodes.run)
        yield nodes
        nursery.cancel_scope.cancel()


def ready(node: Obj) -> str | None:
    for condition in node.get("status", {}).get("conditions") or ():
        if condition["type"] == "Ready":
            return str(condition["status"])
    return None


def pod(name: str, node: str, **spec: Any) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "image": "busybox"}],
            **spec,
        },
    }


async def pod_of(api: client.Client, name: str) -> Obj | None:
    return await exists(api, PODS, name, tenant="system", namespace="default")


@pytest.mark.slow
async def test_fifty_hollow_nodes_register_and_stay_ready(api: client.Client) -> None:
    async with hollow(api, 50, lease_renew_interval=0.5, status_report_interval=1.0):
        nodes = (await api.list(NODES))["items"]
        assert len(nodes) == 50
        assert all(ready(n) == "True" for n in nodes)
        assert {n["metadata"]["labels"][agent.HOLLOW_LABEL] for n in nodes} == {"true"}
        capacity = nodes[0]["status"]["capacity"]
        assert (capacity["cpu"], capacity["memory"], capacity["pods"]) == ("4", "16Gi", "110")
        leases = (await api.list(LEASES, tenant="system", namespace="kube-node-lease"))["items"]
        before = {lease["metadata"]["name"]: lease["spec"]["renewTime"] for lease in leases}
        assert len(before) == 50
        heartbeats = {n["metadata"]["name"]: n["metadata"]["resourceVersion"] for n in nodes}

        async def all_renewed() -> bool:
            items = (await api.list(LEASES, tenant="system", namespace="kube-node-lease"))["items"]
            return all(
                lease["spec"]["renewTime"] != before[lease["metadata"]["name"]] for lease in items
            )

        await eventually(all_renewed, 10.0)

        async def all_rewritten() -> bool:
            items = (await api.list(NODES))["items"]
            return all(
                n["metadata"]["resourceVersion"] != heartbeats[n["metadata"]["name"]]
                and ready(n) == "True"
                for n in items
            )

        await eventually(all_rewritten, 10.0)


async def test_a_pod_on_a_hollow_node_runs_and_is_finalized_when_deleted(
    api: client.Client,
) -> None:
    async with hollow(api, 3):
        await api.create(
            PODS,
            pod("p1", "hollow-node-2", initContainers=[{"name": "i", "image": "busybox"}]),
            tenant="system",
            namespace="default",
        )

        async def running() -> Obj | None:
            found = await pod_of(api, "p1")
            return found if (found or {}).get("status", {}).get("phase") == "Running" else None

        found = await eventually(running, 10.0)
        status = found["status"]
        assert status["podIP"] == "10.0.2.2"
        assert status["hostIP"] == "172.16.0.2"
        assert status["containerStatuses"][0]["ready"] is True
        assert "running" in status["containerStatuses"][0]["state"]
        assert status["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
        conditions = {c["type"]: c["status"] for c in status["conditions"]}
        assert conditions["Ready"] == "True"

        # A pod on another node is none of the hollow nodes' business.
        await api.create(PODS, pod("other", "real-node"), tenant="system", namespace="default")

        await api.delete(PODS, "p1", tenant="system", namespace="default")

        async def gone() -> bool:
            return await pod_of(api, "p1") is None

        await eventually(gone, 10.0)
        await trio.sleep(0.2)
        other = await pod_of(api, "other")
        assert other is not None
        assert other.get("status", {}).get("phase") == "Pending"

        # The freed address is handed out again.
        await api.create(PODS, pod("p2", "hollow-node-2"), tenant="system", namespace="default")

        async def p2_ip() -> str | None:
            found = await pod_of(api, "p2")
            return (found or {}).get("status", {}).get("podIP")

        assert await eventually(p2_ip, 10.0) == "10.0.2.2"


async def test_a_hollow_node_whose_runtime_fails_turns_not_ready(api: client.Client) -> None:
    async with hollow(api, 2, status_report_interval=0.2) as nodes:
        nodes.runtime("hollow-node-1").ready = False

        async def not_ready() -> bool:
            return ready(await api.get(NODES, "hollow-node-1")) == "False"

        await eventually(not_ready, 10.0)
        assert ready(await api.get(NODES, "hollow-node-0")) == "True"


async def test_restarted_hollow_nodes_keep_their_pods_and_addresses(api: client.Client) -> None:
    async def status_of(name: str) -> Obj:
        found = await pod_of(api, name)
        return (found or {}).get("status") or {}

    async with hollow(api, 1):
        await api.create(PODS, pod("p1", "hollow-node-0"), tenant="system", namespace="default")
        await api.create(PODS, pod("p2", "hollow-node-0"), tenant="system", namespace="default")

        async def both_running() -> bool:
            phases = [(await status_of(n)).get("phase") for n in ("p1", "p2")]
            return phases == ["Running", "Running"]

        await eventually(both_running, 10.0)
        p2_ip = (await status_of("p2"))["podIP"]
        await api.delete(PODS, "p1", tenant="system", namespace="default")

        async def p1_gone() -> bool:
            return await pod_of(api, "p1") is None

        await eventually(p1_gone, 10.0)

    async with hollow(api, 1):
        await api.create(PODS, pod("p3", "hollow-node-0"), tenant="system", namespace="default")

        async def p3_ip() -> str | None:
            return (await status_of("p3")).get("podIP")

        # p2 kept its address through the restart, so p3 does not get it.
        assert await eventually(p3_ip, 10.0) != p2_ip
        assert (await status_of("p2"))["podIP"] == p2_ip
        assert (await status_of("p2"))["phase"] == "Running"
