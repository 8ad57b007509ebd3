"""The ReplicaSet controller against a real API server, on the whole hash range.

No nodes: pods stay Pending unless a test binds them and writes their status by hand.
"""

from __future__ import annotations

import pytest
import trio

from arktos_lite import client
from arktos_lite.api import errors
from arktos_lite.controllers import workload

from ..conftest import Controllers, eventually, resource
from ._helpers import (
    PODS,
    REPLICASETS,
    Obj,
    all_pods,
    bare_pod,
    controller_uid,
    controllers_of,
    pods_of,
    replicaset,
    set_pod_state,
)

TENANTS = resource("tenants")
NAMESPACES = resource("namespaces")


@pytest.fixture
async def controller(api: client.Client, controllers: Controllers) -> workload.ReplicaSetController:
    rsc = workload.ReplicaSetController(api, options=workload.ControllerOptions(workers=4))
    await controllers.start(rsc)
    await rsc.set_range(workload.HashRange.whole())
    return rsc


async def create(api: client.Client, rs: Obj, *, tenant: str = "system") -> Obj:
    return await api.create(REPLICASETS, rs, tenant=tenant, namespace="default")


async def scale(api: client.Client, rs: Obj, replicas: int) -> None:
    await api.patch(
        REPLICASETS,
        rs["metadata"]["name"],
        {"spec": {"replicas": replicas}},
        tenant="system",
        namespace="default",
    )


async def converged(api: client.Client, rs: Obj, replicas: int) -> list[Obj] | None:
    pods = await pods_of(api, rs)
    return pods if len(pods) == replicas else None


async def count_is(api: client.Client, rs: Obj, replicas: int) -> bool:
    return len(await pods_of(api, rs)) == replicas


async def test_a_replicaset_gets_its_pods_from_its_template(
    api: client.Client, controller: workload.ReplicaSetController
) -> None:
    rs = await create(api, replicaset("web", replicas=3))
    pods = await eventually(lambda: converged(api, rs, 3))
    for pod in pods:
        meta = pod["metadata"]
        assert meta["name"].startswith("web-")
        assert meta["labels"] == {"app": "web", "tier": "web"}
        assert meta["tenant"] == "system"
        assert meta["namespace"] == "default"
        (ref,) = meta["ownerReferences"]
        assert ref["kind"] == "ReplicaSet"
        assert ref["name"] == "web"
        assert ref["controller"]
        assert ref["hashKey"] == rs["metadata"]["hashKey"]
        assert pod["spec"]["containers"][0]["image"] == "nginx"

    async def status() -> Obj | None:
        got = await api.get(REPLICASETS, "web", tenant="system", namespace="default")
        s: Obj = got.get("status") or {}
        return s if s.get("replicas") == 3 else None

    s = await eventually(status)
    assert s["fullyLabeledReplicas"] == 3
    assert s["readyReplicas"] == 0
    assert s["availableReplicas"] == 0
    assert s["observedGeneration"] == rs["metadata"]["generation"]
    assert controller.workload_num() == 1


async def test_scaling_up_and_down(
    api: client.Client, controller: workload.ReplicaSetController
) -> None:
    rs = await create(api, replicaset("web", replicas=1))
    await eventually(lambda: converged(api, rs, 1))
    await scale(api, rs, 7)
    await eventually(lambda: converged(api, rs, 7))
    await scale(api, rs, 2)
    await eventually(lambda: converged(api, rs, 2))
    await scale(api, rs, 0)
    await eventually(lambda: count_is(api, rs, 0))


async def test_scale_down_deletes_the_least_useful_pods_first(
    api: client.Client, controller: workload.ReplicaSetController
) -> None:
    rs = await create(api, replicaset("web", replicas=5))
    pods = sorted(
        await eventually(lambda: converged(api, rs, 5)), key=lambda p: p["metadata"]["name"]
    )
    unscheduled, pending, running, not_ready, ready = (p["metadata"]["name"] for p in pods)
    await set_pod_state(api, pods[1], node="n1", phase="Pending")
    await set_pod_state(api, pods[2], node="n1", phase="Unknown")
    await set_pod_state(api, pods[3], node="n2", phase="Running", ready=False)
    await set_pod_state(api, pods[4], node="n3", phase="Running", ready=True)
    del running  # Unknown: between pending and running

    async def survivors(count: int) -> set[str] | None:
        left = await pods_of(api, rs)
        return {p["metadata"]["name"] for p in left} if len(left) == count else None

    async def settle() -> None:
        # The controller must have seen every status change before it is told to scale.
        await eventually(lambda: _observed(api, rs))

    await settle()
    await scale(api, rs, 4)
    assert unscheduled not in await eventually(lambda: survivors(4))
    await scale(api, rs, 3)
    assert pending not in await eventually(lambda: survivors(3))
    await scale(api, rs, 1)
    assert await eventually(lambda: survivors(1)) == {ready}
    del not_ready


async def _observed(api: client.Client, rs: Obj) -> bool:
    got = await api.get(REPLICASETS, rs["metadata"]["name"], tenant="system", namespace="default")
    return (got.get("status") or {}).get("readyReplicas") == 1


async def test_younger_pods_go_first_among_equals(
    api: client.Client, controller: workload.ReplicaSetController
) -> None:
    rs = await create(api, replicaset("web", replicas=1))
    (first,) = await eventually(lambda: converged(api, rs, 1))
    # Creation timestamps have a resolution of one second.
    await trio.sleep(1.1)
    await scale(api, rs, 2)
    await eventually(lambda: converged(api, rs, 2))
    await scale(api, rs, 1)
    (left,) = await eventually(lambda: converged(api, rs, 1))
    assert left["metadata"]["uid"] == first["metadata"]["uid"]


async def test_a_matching_orphan_is_adopted_instead_of_a_new_pod(
    api: client.Client, controller: workload.ReplicaSetController
) -> None:
    orphan = await api.create(
        PODS, bare_pod("stray", {"app": "web", "tier": "web"}), tenant="system", namespace="default"
    )
    other = await api.create(
        PODS, bare_pod("other", {"app": "db"}), tenant="system", namespace="default"
    )
    rs = await create(api, replicaset("web", replicas=2))
    pods = await eventually(lambda: converged(api, rs, 2))
    assert orphan["metadata"]["uid"] in {p["metadata"]["uid"] for p in pods}
    adopted = next(p for p in pods if p["metadata"]["name"] == "stray")
    assert adopted["metadata"]["ownerReferences"][0]["hashKey"] == rs["metadata"]["hashKey"]
    still = await api.get(PODS, "other", tenant="system", namespace="default")
    assert not still["metadata"].get("ownerReferences")
    assert other["metadata"]["uid"] == still["metadata"]["uid"]


async def test_an_orphan_appearing_later_is_adopted_and_the_surplus_removed(
    api: client.Client, controller: workload.ReplicaSetController
) -> None:
    rs = await create(api, replicaset("web", replicas=2))
    await eventually(lambda: converged(api, rs, 2))
    await api.create(PODS, bare_pod("stray", {"app": "web"}), tenant="system", namespace="default")

    async def adopted_or_gone() -> bool:
        try:
            pod = await api.get(PODS, "stray", tenant="system", namespace="default")
        except errors.NotFound:
            return True
        return controller_uid(pod) == rs["metadata"]["uid"]

    await eventually(adopted_or_gone)
    await eventually(lambda: converged(api, rs, 2))
    for pod in await all_pods(api):
        assert controllers_of(pod) <= 1


async def test_a_pod_whose_labels_change_is_released_and_replaced(
    api: client.Client, controller: workload.ReplicaSetController
) -> None:
    rs = await create(api, replicaset("web", replicas=2))
    pods = await eventually(lambda: converged(api, rs, 2))
    name = pods[0]["metadata"]["name"]
    await api.patch(
        PODS,
        name,
        {"metadata": {"labels": {"app": "elsewhere"}}},
        tenant="system",
        namespace="default",
    )

    async def released() -> bool:
        pod = await api.get(PODS, name, tenant="system", namespace="default")
        return not pod["metadata"].get("ownerReferences")

    await eventually(released)
    replaced = await eventually(lambda: converged(api, rs, 2))
    assert name not in {p["metadata"]["name"] for p in replaced}


async def test_status_counts_ready_and_available_pods(
    api: client.Client, controller: workload.ReplicaSetController
) -> None:
    rs = await create(api, replicaset("web", replicas=3, min_ready_seconds=30))
    pods = await eventually(lambda: converged(api, rs, 3))
    # Ready long enough, ready too recently, not ready.
    await set_pod_state(api, pods[0], node="n1", phase="Running", ready=True, ready_since=-120)
    await set_pod_state(api, pods[1], node="n1", phase="Running", ready=True, ready_since=-1)
    await set_pod_state(api, pods[2], node="n1", phase="Running", ready=False)

    async def status() -> Obj | None:
        got = await api.get(REPLICASETS, "web", tenant="system", namespace="default")
        s: Obj = got.get("status") or {}
        return s if s.get("readyReplicas") == 2 else None

    s = await eventually(status)
    assert s["replicas"] == 3
    assert s["fullyLabeledReplicas"] == 3
    assert s["availableReplicas"] == 1


async def test_replicas_in_other_tenants_are_created_there(
    api: client.Client, controller: workload.ReplicaSetController
) -> None:
    await api.create(TENANTS, {"metadata": {"name": "acme"}})

    async def namespace_ready() -> bool:
        try:
            await api.create(NAMESPACES, {"metadata": {"name": "default"}}, tenant="acme")
        except errors.AlreadyExists:
            return True
        return True

    await eventually(namespace_ready)
    rs = await create(api, replicaset("web", replicas=2), tenant="acme")
    pods = await eventually(lambda: _tenant_pods(api, rs, "acme", 2))
    assert all(p["metadata"]["tenant"] == "acme" for p in pods)


async def _tenant_pods(api: client.Client, rs: Obj, tenant: str, count: int) -> list[Obj] | None:
    pods = await pods_of(api, rs, tenant=tenant)
    return pods if len(pods) == count else None


async def test_scaling_through_the_scale_subresource(
    api: client.Client, controller: workload.ReplicaSetController
) -> None:
    rs = await create(api, replicaset("web", replicas=1))
    await eventually(lambda: converged(api, rs, 1))
    current = await api.get(
        REPLICASETS, "web", tenant="system", namespace="default", subresource="scale"
    )
    # Without its resourceVersion: the controller may write the status meanwhile.
    del current["metadata"]["resourceVersion"]
    await api.replace(
        REPLICASETS,
        {**current, "spec": {"replicas": 3}},
        subresource="scale",
        tenant="system",
        namespace="default",
    )
    await eventually(lambda: converged(api, rs, 3))

    async def scale_status() -> bool:
        got = await api.get(
            REPLICASETS, "web", tenant="system", namespace="default", subresource="scale"
        )
        return bool(got.get("status", {}).get("replicas") == 3)

    await eventually(scale_status)
