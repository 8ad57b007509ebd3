"""Where pods land, and what users read when they cannot land, with fake nodes: each
filter and score shows in placements and in kube-scheduler's messages."""

from __future__ import annotations

import trio

from arktos_lite import client, machinery, scheduler

from .conftest import (
    NODES,
    PODS,
    StartScheduler,
    bound_node,
    events_of,
    eventually,
    node,
    pod,
    scheduled_condition,
    vm_pod,
)

PREEMPTION = "preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling."


async def _unschedulable(api: client.Client, name: str) -> str:
    async def message() -> str | None:
        condition = await scheduled_condition(api, name)
        if condition and condition["status"] == "False":
            assert condition["reason"] == "Unschedulable"
            return str(condition["message"])
        return None

    found: str = await eventually(message)
    return found


async def test_a_pod_goes_to_a_node_and_gets_a_scheduled_event(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await api.create(NODES, node("n1"))
    await start_scheduler()

    await api.create(PODS, pod("web", cpu="100m"))

    assert await eventually(lambda: bound_node(api, "web")) == "n1"
    condition = await scheduled_condition(api, "web")
    assert condition is not None
    assert condition["status"] == "True"
    events = await eventually(lambda: events_of(api, "web"))
    assert [(e["reason"], e["message"], e["source"]["component"]) for e in events] == [
        ("Scheduled", "Successfully assigned default/web to n1", "default-scheduler")
    ]


async def test_messages_name_every_reason_with_counts(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await api.create(NODES, node("small", cpu="1"))
    await api.create(
        NODES,
        node("tainted-1", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
    )
    await api.create(
        NODES,
        node("tainted-2", taints=[{"key": "dedicated", "value": "db", "effect": "NoExecute"}]),
    )
    await start_scheduler()

    await api.create(PODS, pod("big", cpu="2"))

    message = await _unschedulable(api, "big")
    assert message == (
        "0/3 nodes are available: 1 Insufficient cpu, "
        "2 node(s) had untolerated taint {dedicated: db}. "
        "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
        "2 Preemption is not helpful for scheduling."
    )
    events = await eventually(lambda: events_of(api, "big"))
    assert events[0]["reason"] == "FailedScheduling"
    assert events[0]["type"] == "Warning"
    assert events[0]["message"] == message
    assert await bound_node(api, "big") is None


async def test_a_vm_pod_needs_a_ready_vm_runtime_and_counts_its_vm_resources(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await api.create(NODES, node("containers-only", vm_ready=False))
    await api.create(NODES, node("vm-host", cpu="2", vm_ready=True))
    await start_scheduler()

    await api.create(PODS, vm_pod("vm-1", cpu="1500m"))
    assert await eventually(lambda: bound_node(api, "vm-1")) == "vm-host"

    # The first VM holds 1.5 of the host's 2 cpus; a second cannot fit anywhere.
    await api.create(PODS, vm_pod("vm-2", cpu="1"))
    message = await _unschedulable(api, "vm-2")
    assert message == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) runtime is not ready. "
        "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, "
        "1 Preemption is not helpful for scheduling."
    )


async def test_a_pending_pod_is_placed_when_a_node_is_added(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await start_scheduler()
    await api.create(PODS, pod("waiting", cpu="1"))
    assert await _unschedulable(api, "waiting") == "no nodes available to schedule pods"

    await api.create(NODES, node("late"))

    assert await eventually(lambda: bound_node(api, "waiting")) == "late"


async def test_pods_of_other_schedulers_are_left_alone(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await api.create(NODES, node("n1"))
    await start_scheduler()

    await api.create(PODS, pod("theirs", schedulerName="other-scheduler"))
    await api.create(PODS, pod("ours"))

    assert await eventually(lambda: bound_node(api, "ours")) == "n1"
    assert await bound_node(api, "theirs") is None
    assert await scheduled_condition(api, "theirs") is None
    assert await events_of(api, "theirs") == []


async def test_node_selector_and_unschedulable_nodes(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await api.create(NODES, node("ssd", labels={"disk": "ssd"}, unschedulable=True))
    await api.create(NODES, node("hdd", labels={"disk": "hdd"}))
    await start_scheduler()

    await api.create(PODS, pod("fast", nodeSelector={"disk": "ssd"}))

    message = await _unschedulable(api, "fast")
    assert message == (
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) were unschedulable. " + PREEMPTION.format(n=2)
    )
    await api.patch(NODES, "ssd", {"spec": {"unschedulable": False}})
    assert await eventually(lambda: bound_node(api, "fast")) == "ssd"


async def test_with_informers_shared_with_other_components(api: client.Client) -> None:
    informers = machinery.InformerFactory(api)
    placed = scheduler.Scheduler(api, informers=informers)
    await api.create(NODES, node("n1"))

    async with trio.open_nursery() as nursery:
        # The owner of the factory runs it; the scheduler waits for its informers to sync.
        nursery.start_soon(informers.run)
        await nursery.start(placed.run)
        await api.create(PODS, pod("shared"))
        assert await eventually(lambda: bound_node(api, "shared")) == "n1"
        nursery.cancel_scope.cancel()
