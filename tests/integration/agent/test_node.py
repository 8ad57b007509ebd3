"""The agent's Node and Lease against a real API server, over a fake runtime."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from arktos_lite import client
from arktos_lite.agent import _node as node_
from arktos_lite.agent._runtimes import NamedRuntime, RuntimeSet, WorkloadType
from arktos_lite.runtime._fake import FakeRuntime

from ..controllers.conftest import LEASES, NODES, eventually, exists

Obj = dict[str, Any]
NODE = "n1"


@pytest.fixture
def fake() -> FakeRuntime:
    return FakeRuntime()


def conditions(node: Obj) -> dict[str, Obj]:
    return {c["type"]: c for c in node["status"]["conditions"]}


@contextlib.asynccontextmanager
async def reporting(
    api: client.Client, fake: FakeRuntime, root: Path, **options: Any
) -> AsyncIterator[node_.NodeReporter]:
    settings: dict[str, Any] = {
        "lease_renew_interval": 0.1,
        "status_update_interval": 0.05,
        "status_report_interval": 60.0,
        "labels": {"zone": "z1"},
        "node_ip": "10.1.2.3",
        "port": 10250,
    }
    settings.update(options)
    reporter = node_.NodeReporter(
        api,
        node_name=NODE,
        runtimes=RuntimeSet((NamedRuntime("fake", WorkloadType.CONTAINER, fake),)),
        root_dir=root,
        **settings,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(reporter.run)
        yield reporter
        nursery.cancel_scope.cancel()


async def lease(api: client.Client) -> Obj | None:
    return await exists(api, LEASES, NODE, tenant="system", namespace="kube-node-lease")


async def test_the_node_is_registered_with_what_the_scheduler_needs(
    api: client.Client, fake: FakeRuntime, tmp_path: Path
) -> None:
    async with reporting(api, fake, tmp_path):
        node = await api.get(NODES, NODE)
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/os"] == "linux"
        assert labels["kubernetes.io/arch"] in ("amd64", "arm64")
        assert labels["kubernetes.io/hostname"] == NODE
        assert labels["zone"] == "z1"
        assert node["metadata"]["annotations"][node_.ISOLATION_ANNOTATION] == (
            "fake: none (fake runtime)"
        )
        status = node["status"]
        assert set(status["capacity"]) == {"cpu", "memory", "pods", "ephemeral-storage"}
        assert status["capacity"]["pods"] == "110"
        assert set(status["allocatable"]) == set(status["capacity"])
        assert status["nodeInfo"]["containerRuntimeVersion"] == "fake://0.1.0"
        assert status["nodeInfo"]["kubeletVersion"].startswith("v1.32.0-arktos-lite.")
        assert status["addresses"][0] == {"type": "InternalIP", "address": "10.1.2.3"}
        assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
        found = conditions(node)
        assert found["Ready"]["status"] == "True"
        assert found["ContainerRuntimeReady"]["status"] == "True"
        assert found["VmRuntimeReady"]["status"] == "False"
        assert found["VmRuntimeReady"]["reason"] == "NoRuntime"
        for pressure in ("MemoryPressure", "DiskPressure", "PIDPressure"):
            assert pressure in found

        held = await lease(api)
        assert held is not None
        assert held["spec"]["holderIdentity"] == NODE
        assert held["spec"]["leaseDurationSeconds"] == 40
        assert held["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]


async def test_the_lease_is_renewed(api: client.Client, fake: FakeRuntime, tmp_path: Path) -> None:
    async with reporting(api, fake, tmp_path):
        first = await lease(api)
        assert first is not None

        async def renewed() -> bool:
            now = await lease(api)
            return now is not None and now["spec"]["renewTime"] != first["spec"]["renewTime"]

        await eventually(renewed, 10.0)


async def test_a_runtime_not_ready_makes_the_node_not_ready_and_back(
    api: client.Client, fake: FakeRuntime, tmp_path: Path
) -> None:
    async with reporting(api, fake, tmp_path):
        before = conditions(await api.get(NODES, NODE))
        fake.ready = False

        async def not_ready() -> dict[str, Obj] | None:
            found = conditions(await api.get(NODES, NODE))
            return found if found["ContainerRuntimeReady"]["status"] == "False" else None

        found = await eventually(not_ready, 10.0)
        assert found["ContainerRuntimeReady"]["reason"] == "FakeNotReady"
        assert found["Ready"]["status"] == "False"
        assert found["Ready"]["reason"] == "KubeletNotReady"
        # Conditions that did not change keep when they last changed.
        assert (
            found["MemoryPressure"]["lastTransitionTime"]
            == before["MemoryPressure"]["lastTransitionTime"]
        )

        fake.available = False

        async def unreachable() -> bool:
            found = conditions(await api.get(NODES, NODE))
            return found["ContainerRuntimeReady"]["reason"] == "RuntimeUnreachable"

        await eventually(unreachable, 10.0)
        fake.available = True
        fake.ready = True

        async def ready() -> bool:
            return conditions(await api.get(NODES, NODE))["Ready"]["status"] == "True"

        await eventually(ready, 10.0)


async def test_status_is_written_on_change_and_at_the_report_interval(
    api: client.Client, fake: FakeRuntime, tmp_path: Path
) -> None:
    async with reporting(api, fake, tmp_path, status_report_interval=1.0):
        first = await api.get(NODES, NODE)
        await trio.sleep(0.4)
        # Nothing changed: no write yet.
        assert (await api.get(NODES, NODE))["metadata"]["resourceVersion"] == first["metadata"][
            "resourceVersion"
        ]

        async def rewritten() -> bool:
            now = await api.get(NODES, NODE)
            return now["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]

        await eventually(rewritten, 10.0)


async def test_an_existing_node_is_adopted_keeping_what_users_gave_it(
    api: client.Client, fake: FakeRuntime, tmp_path: Path
) -> None:
    taint = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    created = await api.create(
        NODES,
        {
            "metadata": {"name": NODE, "labels": {"team": "red", "zone": "old"}},
            "spec": {"taints": [taint]},
        },
    )
    async with reporting(api, fake, tmp_path):
        node = await api.get(NODES, NODE)
        assert node["metadata"]["uid"] == created["metadata"]["uid"]
        assert node["metadata"]["labels"]["team"] == "red"
        assert node["metadata"]["labels"]["zone"] == "z1"
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == NODE
        assert node["spec"]["taints"] == [taint]
        assert conditions(node)["Ready"]["status"] == "True"

    # A second agent over the same node (a restart) adopts it again.
    async with reporting(api, fake, tmp_path):
        again = await api.get(NODES, NODE)
        assert again["metadata"]["uid"] == created["metadata"]["uid"]
        assert conditions(again)["Ready"]["status"] == "True"


async def test_a_deleted_node_is_registered_again(
    api: client.Client, fake: FakeRuntime, tmp_path: Path
) -> None:
    async with reporting(api, fake, tmp_path) as reporter:
        old = await api.get(NODES, NODE)
        # As `kubectl delete node` does with the garbage collector following it.
        await api.delete(NODES, NODE)
        await api.delete(LEASES, NODE, tenant="system", namespace="kube-node-lease")

        async def back() -> Obj | None:
            found = await exists(api, NODES, NODE)
            return found if found and found["metadata"]["uid"] != old["metadata"]["uid"] else None

        node = await eventually(back, 10.0)
        assert conditions(node)["Ready"]["status"] == "True"

        async def lease_follows() -> bool:
            held = await lease(api)
            return (
                held is not None
                and held["metadata"]["ownerReferences"][0]["uid"] == (node["metadata"]["uid"])
            )

        await eventually(lease_follows, 10.0)
        assert reporter.node is not None


class _SlowStatus:
    """The fake runtime, answering `status` only after a while: every status write is long."""

    def __init__(self, fake: FakeRuntime, delay: float) -> None:
        self._fake = fake
        self._delay = delay

    async def status(self, *, verbose: bool = False) -> Any:
        await trio.sleep(self._delay)
        return await self._fake.status(verbose=verbose)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fake, name)


async def test_a_node_deleted_during_a_status_write_is_registered_again(
    api: client.Client, fake: FakeRuntime, tmp_path: Path
) -> None:
    # The renewal that finds the Lease gone asks for a forced status write; asked while a
    # status write was under way, it used to be forgotten when that write ended.
    slow: Any = _SlowStatus(fake, 0.3)
    async with reporting(api, slow, tmp_path):
        old = await api.get(NODES, NODE)
        await api.delete(NODES, NODE)
        await api.delete(LEASES, NODE, tenant="system", namespace="kube-node-lease")

        async def back() -> Obj | None:
            found = await exists(api, NODES, NODE)
            return found if found and found["metadata"]["uid"] != old["metadata"]["uid"] else None

        await eventually(back, 10.0)
