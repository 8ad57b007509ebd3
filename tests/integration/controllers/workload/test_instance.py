"""A controller instance against a real API server: registration, renewal, fencing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from arktos_lite import client
from arktos_lite.controllers import workload

from ..conftest import Server, eventually
from ._helpers import CONTROLLER_INSTANCES, REPLICASETS, pods_of, replicaset

pytestmark = pytest.mark.filterwarnings(
    # The instance is cancelled mid-request when the test ends; see test_partitioned.
    "ignore:Async generator 'httpx._content.ByteStream.__aiter__':ResourceWarning"
)

TIMING = workload.InstanceTiming(renew_interval=0.3, expiry=1.2)


@pytest.fixture
async def member(api: client.Client) -> AsyncIterator[workload.Instance]:
    def build() -> workload.PartitionedController:
        return workload.ReplicaSetController(api, options=workload.ControllerOptions(workers=2))

    instance = workload.Instance(api, controller_type="ReplicaSet", factory=build, timing=TIMING)
    async with trio.open_nursery() as nursery:
        await nursery.start(instance.run)
        yield instance
        nursery.cancel_scope.cancel()


async def test_an_instance_registers_and_renews(
    api: client.Client, member: workload.Instance
) -> None:
    assert member.name.startswith("replicaset-")
    await eventually(lambda: member.settled)
    assert member.held == workload.HashRange.whole()
    first = await api.get(CONTROLLER_INSTANCES, member.name)
    assert first["controllerType"] == "ReplicaSet"
    assert first["controllerKey"] == workload.MAX_HASH_KEY
    assert first["isLocked"] is False

    async def renewed() -> bool:
        now = await api.get(CONTROLLER_INSTANCES, member.name)
        return bool(now["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"])

    await eventually(renewed, 2 * TIMING.renew_interval + 1)


async def test_workload_is_reported(api: client.Client, member: workload.Instance) -> None:
    await eventually(lambda: member.settled)
    for i in range(3):
        await api.create(
            REPLICASETS, replicaset(f"rs-{i}", replicas=1), tenant="system", namespace="default"
        )

    async def reported() -> bool:
        ci = await api.get(CONTROLLER_INSTANCES, member.name)
        return bool(ci["workloadNum"] == 3)

    await eventually(reported, 5)


async def test_an_instance_registers_again_when_its_object_is_deleted(
    api: client.Client, member: workload.Instance
) -> None:
    await eventually(lambda: member.settled)
    await api.delete(CONTROLLER_INSTANCES, member.name)

    async def back() -> bool:
        listed = await api.list(CONTROLLER_INSTANCES)
        return member.name in {ci["metadata"]["name"] for ci in listed["items"]}

    await eventually(back, 2 * TIMING.renew_interval + 1)


async def test_an_instance_that_cannot_renew_stops_before_peers_could_take_over(
    api: client.Client, server: Server, member: workload.Instance
) -> None:
    await eventually(lambda: member.settled)
    rs = await api.create(
        REPLICASETS, replicaset("web", replicas=1), tenant="system", namespace="default"
    )
    await eventually(lambda: pods_of(api, rs))
    await server.stop()
    stopped = trio.current_time()
    await eventually(lambda: member.held.is_empty, TIMING.expiry)
    # Fenced within its own deadline: before any peer could have declared it dead.
    assert trio.current_time() - stopped < TIMING.expiry
    await server.start()
    await eventually(lambda: member.settled, 10)
    assert member.held == workload.HashRange.whole()
    await api.patch(
        REPLICASETS, "web", {"spec": {"replicas": 2}}, tenant="system", namespace="default"
    )

    async def scaled() -> bool:
        return len(await pods_of(api, rs)) == 2

    await eventually(scaled, 10)
