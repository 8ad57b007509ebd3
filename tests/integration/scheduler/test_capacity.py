"""Capacity under pressure: hundreds of pods racing for too little room never overcommit a
node, and what is freed or added is used."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
import trio

from arktos_lite import client
from arktos_lite.scheduler import _pods as pods

from .conftest import (
    NODES,
    PODS,
    Obj,
    StartScheduler,
    bound_node,
    create_all,
    eventually,
    node,
    pod,
    scheduled_condition,
)


async def _all_pods(api: client.Client) -> list[Obj]:
    listed = await api.list_all(PODS, namespace="default")
    items: list[Obj] = listed["items"]
    return items


def _requests(obj: Obj) -> tuple[int, int]:
    info = pods.PodInfo.parse(obj)
    return info.requests.milli_cpu, info.requests.memory


@pytest.mark.slow
async def test_500_pods_racing_for_tight_capacity_never_overcommit_a_node(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    rng = random.Random(6)
    sizes = {f"n{i}": (rng.choice(["1", "2", "3"]), rng.choice(["1Gi", "2Gi"])) for i in range(8)}
    await create_all(api, [node(name, cpu=c, memory=m) for name, (c, m) in sizes.items()])
    await start_scheduler()

    wanted = [
        pod(
            f"p{i:03}",
            cpu=rng.choice(["50m", "100m", "250m"]),
            memory=rng.choice(["32Mi", "64Mi", "128Mi"]),
        )
        for i in range(500)
    ]
    # The pods arrive while the scheduler works, many at once.
    await create_all(api, wanted, concurrency=32)

    async def settled() -> list[Obj] | None:
        items = await _all_pods(api)
        for item in items:
            if not (item.get("spec") or {}).get("nodeName"):
                conditions = (item.get("status") or {}).get("conditions") or []
                if not any(c.get("reason") == "Unschedulable" for c in conditions):
                    return None
        return items

    items = await eventually(settled, timeout=60, interval=0.2)

    allocatable = {
        name: _requests(
            {"spec": {"containers": [{"resources": {"requests": {"cpu": c, "memory": m}}}]}}
        )
        for name, (c, m) in sizes.items()
    }
    used: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    placed = [i for i in items if i["spec"].get("nodeName")]
    for item in placed:
        cpu, memory = _requests(item)
        used[item["spec"]["nodeName"]][0] += cpu
        used[item["spec"]["nodeName"]][1] += memory
    for name, (cpu, memory) in used.items():
        assert cpu <= allocatable[name][0], f"{name} is overcommitted on cpu"
        assert memory <= allocatable[name][1], f"{name} is overcommitted on memory"
    # Capacity was tight: many pods are left over, and none of them fits anywhere.
    left = [i for i in items if not i["spec"].get("nodeName")]
    assert 100 < len(placed) < 400
    for item in left:
        cpu, memory = _requests(item)
        assert all(
            used[name][0] + cpu > allocatable[name][0]
            or used[name][1] + memory > allocatable[name][1]
            for name in sizes
        ), f"{item['metadata']['name']} would fit but was left out"


async def test_a_pod_fits_once_another_goes(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await api.create(NODES, node("n1", cpu="1"))
    await start_scheduler()
    await api.create(PODS, pod("first", cpu="800m"))
    assert await eventually(lambda: bound_node(api, "first")) == "n1"

    await api.create(PODS, pod("second", cpu="800m"))

    async def unschedulable() -> bool:
        condition = await scheduled_condition(api, "second")
        return condition is not None and condition["reason"] == "Unschedulable"

    await eventually(unschedulable)
    await api.delete(PODS, "first", namespace="default", grace_period_seconds=0)

    assert await eventually(lambda: bound_node(api, "second")) == "n1"


async def test_a_finished_pod_frees_its_room(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await api.create(NODES, node("n1", cpu="1"))
    await start_scheduler()
    await api.create(PODS, pod("job", cpu="800m"))
    assert await eventually(lambda: bound_node(api, "job")) == "n1"
    await api.create(PODS, pod("next", cpu="800m"))
    await trio.sleep(0.3)
    assert await bound_node(api, "next") is None

    await api.patch(
        PODS, "job", {"status": {"phase": "Succeeded"}}, namespace="default", subresource="status"
    )

    assert await eventually(lambda: bound_node(api, "next")) == "n1"


async def test_a_restarted_scheduler_counts_what_is_already_bound(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await api.create(NODES, node("n1", cpu="1"))
    await api.create(PODS, pod("old", cpu="700m", nodeName="n1"))
    await start_scheduler()

    await api.create(PODS, pod("new", cpu="700m"))

    async def unschedulable() -> str | None:
        condition = await scheduled_condition(api, "new")
        return condition["message"] if condition else None

    message = await eventually(unschedulable)
    assert message.startswith("0/1 nodes are available: 1 Insufficient cpu.")


async def test_pods_spread_over_equal_nodes(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await create_all(api, [node(f"n{i}") for i in range(4)])
    await start_scheduler()

    await create_all(api, [pod(f"p{i}", cpu="500m", memory="512Mi") for i in range(8)])

    async def placements() -> dict[str, int] | None:
        counts: dict[str, int] = defaultdict(int)
        for item in await _all_pods(api):
            if not item["spec"].get("nodeName"):
                return None
            counts[item["spec"]["nodeName"]] += 1
        return dict(counts)

    # LeastAllocated sends each pod to the emptiest node: two pods per node.
    assert await eventually(placements) == {f"n{i}": 2 for i in range(4)}
