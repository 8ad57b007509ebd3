"""Tenants: the scheduler places every tenant's pods, tells each tenant about its own, and
one tenant's backlog does not starve another's pods."""

from __future__ import annotations

import trio

from arktos_lite import client, scheduler
from arktos_lite.api import resources

from .conftest import (
    NODES,
    PODS,
    StartScheduler,
    bound_node,
    create_all,
    events_of,
    eventually,
    make_tenant,
    node,
    pod,
)


async def test_pods_of_every_tenant_are_placed_and_their_events_stay_home(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await make_tenant(api, "acme")
    await api.create(NODES, node("n1"))
    await start_scheduler()

    await api.create(PODS, pod("web", tenant="acme"))
    await api.create(PODS, pod("web"))

    assert await eventually(lambda: bound_node(api, "web", tenant="acme")) == "n1"
    assert await eventually(lambda: bound_node(api, "web")) == "n1"
    acme_events = await eventually(lambda: events_of(api, "web", tenant="acme"))
    assert [(e["reason"], e["metadata"]["tenant"]) for e in acme_events] == [("Scheduled", "acme")]


async def test_a_tenant_with_a_backlog_does_not_starve_another(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await make_tenant(api, "big")
    await make_tenant(api, "small")
    await api.create(NODES, node("n1", cpu="1000", memory="1Ti", pods="1000"))
    # The big tenant's backlog is in the queue first.
    await create_all(api, [pod(f"b{i:03}", tenant="big") for i in range(200)])
    await create_all(api, [pod(f"s{i}", tenant="small") for i in range(10)])

    order: list[str] = []

    async def follow(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with api.watch(PODS, tenant=resources.ALL_TENANTS, resource_version="0") as events:
            task_status.started()
            async for event in events:
                obj = event.object
                if event.type == "MODIFIED" and obj["spec"].get("nodeName"):
                    name = f"{obj['metadata']['tenant']}/{obj['metadata']['name']}"
                    if name not in order:
                        order.append(name)

    async with trio.open_nursery() as nursery:
        await nursery.start(follow)
        # One binding at a time, so that they land in the order they were decided.
        await start_scheduler(scheduler.SchedulerConfig(bind_workers=1))
        await eventually(lambda: len(order) == 210, timeout=30)
        nursery.cancel_scope.cancel()

    small = [i for i, name in enumerate(order) if name.startswith("small/")]
    # Turns alternate: the small tenant's pods are done within its first ten turns.
    assert max(small) < 20, order[:25]
