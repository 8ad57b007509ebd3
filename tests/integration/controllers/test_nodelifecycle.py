"""The node lifecycle controller against a real API server, with a stand-in node agent
that heartbeats through its Lease and Ready condition until the test silences it."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from arktos_lite import client, machinery
from arktos_lite.controllers import _nodelifecycle as nlc

from .conftest import EVENTS, LEASES, NODES, PODS, Controllers, eventually, exists

Obj = dict[str, Any]

GRACE = 1.0
EVICTION_TIMEOUT = 3.0
BEAT = 0.2


def _stamp(micro: bool = False) -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


class Agent:
    """Heartbeats for one node, as the node agent would: the lease every beat, and the
    node's status (Ready=`ready`, a fresh lastHeartbeatTime) every beat too."""

    def __init__(self, api: client.Client, node: str) -> None:
        self.api = api
        self.node = node
        self.ready = "True"
        # When the last heartbeat was written (trio time).
        self.last_beat = 0.0

    async def register(self) -> None:
        # The API server keeps the lease namespace in the system tenant, as kube-apiserver does.
        await self.api.create(NODES, {"metadata": {"name": self.node}})
        await self.api.create(
            LEASES,
            {
                "metadata": {"name": self.node},
                "spec": {
                    "holderIdentity": self.node,
                    "leaseDurationSeconds": 40,
                    "renewTime": _stamp(micro=True),
                },
            },
            tenant="system",
            namespace=nlc.NODE_LEASE_NAMESPACE,
        )
        await self.beat()

    async def beat(self) -> None:
        await self.api.patch(
            LEASES,
            self.node,
            {"spec": {"renewTime": _stamp(micro=True)}},
            tenant="system",
            namespace=nlc.NODE_LEASE_NAMESPACE,
        )
        now = _stamp()
        conditions = [
            {
                "type": type_,
                "status": self.ready if type_ == "Ready" else "True",
                "reason": "AgentReady",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
            for type_ in ("Ready", "ContainerRuntimeReady")
        ]
        await self.api.patch(
            NODES, self.node, {"status": {"conditions": conditions}}, subresource="status"
        )
        self.last_beat = trio.current_time()

    @contextlib.asynccontextmanager
    async def alive(self) -> AsyncIterator[None]:
        """Heartbeat while inside."""

        async def beating() -> None:
            while True:
                await self.beat()
                await trio.sleep(BEAT)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(beating)
            yield
            nursery.cancel_scope.cancel()


@pytest.fixture
async def running(
    api: client.Client,
    informers: machinery.InformerFactory,
    recorder: machinery.EventRecorder,
    controllers: Controllers,
) -> nlc.NodeLifecycleController:
    controller = nlc.NodeLifecycleController(
        api,
        informers,
        recorder=recorder,
        grace_period=GRACE,
        eviction_timeout=EVICTION_TIMEOUT,
        monitor_period=0.1,
    )
    await controllers.start(controller)
    return controller


def tolerating(seconds: int | None) -> list[Obj]:
    toleration: Obj = {
        "key": nlc.TAINT_UNREACHABLE,
        "operator": "Exists",
        "effect": "NoExecute",
    }
    if seconds is not None:
        toleration["tolerationSeconds"] = seconds
    return [toleration]


async def bound_pod(
    api: client.Client, name: str, node: str, *, tolerations: list[Obj] | None = None
) -> Obj:
    spec: Obj = {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    await api.create(PODS, {"metadata": {"name": name}, "spec": spec}, namespace="default")
    return await api.patch(
        PODS,
        name,
        {
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        },
        namespace="default",
        subresource="status",
    )


async def node(api: client.Client, name: str) -> Obj:
    return await api.get(NODES, name)


def taint_keys(obj: Obj) -> list[str]:
    return [t["key"] for t in (obj.get("spec") or {}).get("taints") or ()]


async def evicted(api: client.Client, name: str) -> bool:
    pod = await exists(api, PODS, name, namespace="default")
    return pod is None or bool(pod["metadata"].get("deletionTimestamp"))


async def test_a_silent_node_is_marked_tainted_and_its_pods_evicted_in_their_time(
    api: client.Client, running: nlc.NodeLifecycleController
) -> None:
    agent = Agent(api, "n1")
    await agent.register()
    await bound_pod(api, "plain", "n1")
    await bound_pod(api, "short", "n1", tolerations=tolerating(1))
    await bound_pod(api, "long", "n1", tolerations=tolerating(60))
    await bound_pod(api, "forever", "n1", tolerations=tolerating(None))

    async with agent.alive():
        # Heartbeats keep it well past the grace period.
        await trio.sleep(GRACE * 2)
        alive = await node(api, "n1")
        assert nlc.ready_status(alive) == "True"
        assert taint_keys(alive) == []

    async def marked() -> Obj | None:
        found = await node(api, "n1")
        return found if nlc.TAINT_UNREACHABLE in taint_keys(found) else None

    tainted = await eventually(marked, timeout=GRACE + 3)
    # Not before the grace period has passed since the last heartbeat (give or take the
    # moment between the write and its answer).
    assert trio.current_time() - agent.last_beat >= GRACE - 0.1
    conditions = {c["type"]: c for c in tainted["status"]["conditions"]}
    for type_ in ("Ready", "ContainerRuntimeReady"):
        assert conditions[type_]["status"] == "Unknown"
        assert conditions[type_]["reason"] == "NodeStatusUnknown"
        assert conditions[type_]["message"] == "Kubelet stopped posting node status."
    (taint,) = tainted["spec"]["taints"]
    assert taint["effect"] == "NoExecute"
    assert taint["timeAdded"]
    tainted_at = trio.current_time()

    async def pods_not_ready() -> bool:
        for name in ("long", "forever"):
            pod = await api.get(PODS, name, namespace="default")
            ready = nlc.condition(pod, "Ready")
            if ready is None or ready["status"] != "False":
                return False
        return True

    await eventually(pods_not_ready)

    # The pod tolerating the taint for 1 s goes first; the one relying on the default
    # toleration (3 s here) later.
    await eventually(lambda: evicted(api, "short"), timeout=3)
    assert trio.current_time() - tainted_at >= 0.8
    assert not await evicted(api, "plain")
    await eventually(lambda: evicted(api, "plain"), timeout=EVICTION_TIMEOUT + 2)
    assert trio.current_time() - tainted_at >= EVICTION_TIMEOUT - 0.3
    assert not await evicted(api, "long")
    assert not await evicted(api, "forever")

    async def eviction_event() -> bool:
        events = await api.list_all(
            EVENTS,
            tenant="system",
            namespace="default",
            field_selector="involvedObject.name=short,reason=TaintManagerEviction",
        )
        return bool(events["items"])

    await eventually(eviction_event)

    # The node comes back: the taint goes, the pods that waited stay.
    async with agent.alive():

        async def untainted() -> bool:
            found = await node(api, "n1")
            return not taint_keys(found) and nlc.ready_status(found) == "True"

        await eventually(untainted, timeout=3)
        await trio.sleep(GRACE * 1.5)
        assert not taint_keys(await node(api, "n1"))
    assert not await evicted(api, "long")
    assert not await evicted(api, "forever")


async def test_a_node_that_says_not_ready_gets_the_not_ready_taint(
    api: client.Client, running: nlc.NodeLifecycleController
) -> None:
    agent = Agent(api, "n2")
    await agent.register()
    async with agent.alive():
        agent.ready = "False"

        async def not_ready() -> bool:
            return taint_keys(await node(api, "n2")) == [nlc.TAINT_NOT_READY]

        await eventually(not_ready, timeout=3)
        agent.ready = "True"

        async def clean() -> bool:
            return taint_keys(await node(api, "n2")) == []

        await eventually(clean, timeout=3)
        # It heartbeats, so it is never marked unknown.
        assert nlc.ready_status(await node(api, "n2")) == "True"


async def test_a_node_that_never_reported_is_marked_unknown(
    api: client.Client, running: nlc.NodeLifecycleController
) -> None:
    await api.create(NODES, {"metadata": {"name": "n3"}})
    await bound_pod(api, "early", "n3", tolerations=tolerating(60))

    async def marked() -> Obj | None:
        found = await node(api, "n3")
        return found if taint_keys(found) == [nlc.TAINT_UNREACHABLE] else None

    found = await eventually(marked, timeout=GRACE + 3)
    ready = nlc.condition(found, "Ready")
    assert ready is not None
    assert ready["status"] == "Unknown"
    assert ready["reason"] == "NodeStatusNeverUpdated"
    assert not await evicted(api, "early")
