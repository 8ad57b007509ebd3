"""The whole `Agent` against a real API server, over a fake runtime: registration, the
server's port on the Node, a pod run to Running, and what shutdown does to pods."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio

from arktos_lite import agent, client
from arktos_lite.runtime._fake import FakeRuntime
from arktos_lite.runtime.cri import api_pb2 as cri

from ..controllers.conftest import LEASES, NODES, PODS, eventually, exists

Obj = dict[str, Any]
NODE = "n1"


@contextlib.asynccontextmanager
async def running(
    api: client.Client, fake: FakeRuntime, root: Path, **options: Any
) -> AsyncIterator[agent.Agent]:
    settings: dict[str, Any] = {
        "port": 0,
        "lease_renew_interval": 0.2,
        "status_update_interval": 0.1,
        "shutdown_timeout": 2.0,
    }
    settings.update(options)
    node_agent = agent.Agent(
        api,
        config=agent.AgentConfig(node_name=NODE, root_dir=root, **settings),
        runtimes=agent.RuntimeSet(
            (agent.NamedRuntime("fake", agent.WorkloadType.CONTAINER, fake),)
        ),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(node_agent.run)
        yield node_agent
        nursery.cancel_scope.cancel()


def pod(name: str) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": NODE,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}],
        },
    }


async def phase(api: client.Client, name: str) -> str | None:
    found = await exists(api, PODS, name, tenant="system", namespace="default")
    return (found or {}).get("status", {}).get("phase")


async def running_containers(fake: FakeRuntime) -> int:
    running = cri.ContainerFilter(state=cri.ContainerStateValue(state=cri.CONTAINER_RUNNING))
    return len(await fake.list_containers(running))


async def test_the_agent_registers_its_node_and_runs_a_pod(
    api: client.Client, tmp_path: Path
) -> None:
    fake = FakeRuntime()
    async with running(api, fake, tmp_path) as node_agent:
        node = await api.get(NODES, NODE)
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        assert ready["Ready"] == "True"
        port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        assert port > 0
        assert node_agent.node is not None
        assert await exists(api, LEASES, NODE, tenant="system", namespace="kube-node-lease")

        await api.create(PODS, pod("p1"), tenant="system", namespace="default")

        async def is_running() -> bool:
            return await phase(api, "p1") == "Running"

        await eventually(is_running, 10.0)
        assert await running_containers(fake) == 1
    # Stopping the agent stops its pods (the API objects stay).
    assert await running_containers(fake) == 0
    assert await phase(api, "p1") is not None


async def test_keep_pods_leaves_them_running_for_the_next_agent(
    api: client.Client, tmp_path: Path
) -> None:
    fake = FakeRuntime()
    async with running(api, fake, tmp_path, keep_pods=True):
        await api.create(PODS, pod("p1"), tenant="system", namespace="default")

        async def is_running() -> bool:
            return await phase(api, "p1") == "Running"

        await eventually(is_running, 10.0)
    assert await running_containers(fake) == 1
    ids = set(fake.container_ids)
    async with running(api, fake, tmp_path):
        await trio.sleep(0.5)
        # Adopted, not restarted.
        assert set(fake.container_ids) == ids
        assert await running_containers(fake) == 1
        assert await phase(api, "p1") == "Running"
