"""The garbage collector against a real API server: the three propagation policies on a
Deployment -> ReplicaSet -> Pod chain made by hand, dependents of missing owners, and
dependents of live owners that must never go."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from arktos_lite import client, machinery
from arktos_lite.controllers import _gc as gc

from .conftest import (
    CONFIGMAPS,
    DEPLOYMENTS,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    TENANTS,
    Controllers,
    eventually,
    exists,
)

Obj = dict[str, Any]

HOLD = "example.com/hold"


@pytest.fixture
async def running(
    api: client.Client,
    informers: machinery.InformerFactory,
    recorder: machinery.EventRecorder,
    controllers: Controllers,
) -> gc.GarbageCollector:
    collector = gc.GarbageCollector(api, informers, recorder=recorder)
    await controllers.start(collector)
    return collector


def owner_ref(owner: Obj, *, block: bool = True, controller: bool = True) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": block,
    }


def template(app: str) -> Obj:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }


async def chain(
    api: client.Client,
    *,
    tenant: str = "system",
    namespace: str = "default",
    pods: int = 2,
    pod_finalizers: tuple[str, ...] = (),
) -> tuple[Obj, Obj, list[Obj]]:
    """A Deployment owning a ReplicaSet owning pods, each reference blocking."""
    where: dict[str, Any] = {"tenant": tenant, "namespace": namespace}
    deploy = await api.create(
        DEPLOYMENTS,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template("web")},
        },
        **where,
    )
    rs = await api.create(
        REPLICASETS,
        {
            "metadata": {"name": "web-1", "ownerReferences": [owner_ref(deploy)]},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template("web")},
        },
        **where,
    )
    created = []
    for index in range(pods):
        body = template("web")
        body["metadata"].update(
            name=f"web-1-{index}",
            ownerReferences=[owner_ref(rs)],
            finalizers=list(pod_finalizers),
        )
        created.append(await api.create(PODS, body, **where))
    return deploy, rs, created


async def configmap(
    api: client.Client, name: str, *owners: Obj, tenant: str = "system", namespace: str = "default"
) -> Obj:
    refs = [owner_ref(owner, block=False, controller=False) for owner in owners]
    return await api.create(
        CONFIGMAPS,
        {"metadata": {"name": name, "ownerReferences": refs}, "data": {}},
        tenant=tenant,
        namespace=namespace,
    )


async def names(api: client.Client, kind: Any, *, tenant: str = "system") -> list[str]:
    listed = await api.list_all(kind, tenant=tenant, namespace="default")
    return sorted(item["metadata"]["name"] for item in listed["items"])


async def make_tenant(api: client.Client, name: str) -> None:
    await api.create(TENANTS, {"metadata": {"name": name}, "spec": {"storageClusterId": "0"}})
    await api.create(NAMESPACES, {"metadata": {"name": "default"}}, tenant=name)


# Propagation policies


async def test_background_deletes_the_owner_then_each_level_of_dependents(
    api: client.Client, running: gc.GarbageCollector
) -> None:
    await chain(api)
    await api.delete(DEPLOYMENTS, "web", namespace="default", propagation_policy="Background")
    assert await exists(api, DEPLOYMENTS, "web", namespace="default") is None

    async def all_gone() -> bool:
        return not await names(api, REPLICASETS) and not await names(api, PODS)

    await eventually(all_gone)


async def test_a_delete_without_a_policy_cascades_too(
    api: client.Client, running: gc.GarbageCollector
) -> None:
    await chain(api)
    await api.delete(DEPLOYMENTS, "web", namespace="default")

    async def all_gone() -> bool:
        return not await names(api, REPLICASETS) and not await names(api, PODS)

    await eventually(all_gone)


async def test_foreground_keeps_the_owner_until_blocking_dependents_are_gone(
    api: client.Client, running: gc.GarbageCollector
) -> None:
    # The pods hold on (a finalizer of their own), so the whole chain must wait for them.
    _deploy, _rs, pods = await chain(api, pod_finalizers=(HOLD,))
    await api.delete(DEPLOYMENTS, "web", namespace="default", propagation_policy="Foreground")

    async def pods_terminating() -> bool:
        found = [await exists(api, PODS, p["metadata"]["name"], namespace="default") for p in pods]
        return all(p is not None and p["metadata"].get("deletionTimestamp") for p in found)

    await eventually(pods_terminating)
    rs = await exists(api, REPLICASETS, "web-1", namespace="default")
    assert rs is not None
    assert rs["metadata"].get("deletionTimestamp")
    assert gc.FOREGROUND in rs["metadata"]["finalizers"]
    # Give the collector time to do something wrong.
    await trio.sleep(0.5)
    deploy = await exists(api, DEPLOYMENTS, "web", namespace="default")
    assert deploy is not None
    assert deploy["metadata"]["finalizers"] == [gc.FOREGROUND]
    assert await exists(api, REPLICASETS, "web-1", namespace="default") is not None

    # Release one pod: the rest still block.
    first = pods[0]["metadata"]["name"]
    await api.patch(PODS, first, {"metadata": {"finalizers": None}}, namespace="default")
    await eventually(lambda: _gone(api, PODS, first))
    await trio.sleep(0.3)
    assert await exists(api, DEPLOYMENTS, "web", namespace="default") is not None

    for pod in pods[1:]:
        await api.patch(
            PODS, pod["metadata"]["name"], {"metadata": {"finalizers": None}}, namespace="default"
        )

    async def all_gone() -> bool:
        return (
            await exists(api, DEPLOYMENTS, "web", namespace="default") is None
            and not await names(api, REPLICASETS)
            and not await names(api, PODS)
        )

    await eventually(all_gone)


async def test_foreground_does_not_wait_for_dependents_that_do_not_block(
    api: client.Client, running: gc.GarbageCollector
) -> None:
    owner = await api.create(CONFIGMAPS, {"metadata": {"name": "owner"}}, namespace="default")
    # Not blocking, and held by a finalizer: it is deleted but does not hold up its owner.
    await api.create(
        CONFIGMAPS,
        {
            "metadata": {
                "name": "loose",
                "ownerReferences": [owner_ref(owner, block=False)],
                "finalizers": [HOLD],
            }
        },
        namespace="default",
    )
    await api.delete(CONFIGMAPS, "owner", namespace="default", propagation_policy="Foreground")
    await eventually(lambda: _gone(api, CONFIGMAPS, "owner"))
    loose = await eventually(lambda: exists(api, CONFIGMAPS, "loose", namespace="default"))
    await eventually(
        lambda: _deleting(api, CONFIGMAPS, "loose"),
    )
    assert loose["metadata"]["finalizers"] == [HOLD]
    await api.patch(CONFIGMAPS, "loose", {"metadata": {"finalizers": None}}, namespace="default")
    await eventually(lambda: _gone(api, CONFIGMAPS, "loose"))


async def test_orphan_leaves_the_dependents_without_the_reference(
    api: client.Client, running: gc.GarbageCollector
) -> None:
    _deploy, rs, pods = await chain(api)
    await api.delete(DEPLOYMENTS, "web", namespace="default", propagation_policy="Orphan")
    await eventually(lambda: _gone(api, DEPLOYMENTS, "web"))
    kept = await exists(api, REPLICASETS, "web-1", namespace="default")
    assert kept is not None
    assert not kept["metadata"].get("ownerReferences")
    assert kept["metadata"]["uid"] == rs["metadata"]["uid"]
    # The ReplicaSet's own dependents are untouched, and nothing goes later either.
    await trio.sleep(0.5)
    assert await names(api, REPLICASETS) == ["web-1"]
    for pod in pods:
        found = await exists(api, PODS, pod["metadata"]["name"], namespace="default")
        assert found is not None
        assert [r["uid"] for r in found["metadata"]["ownerReferences"]] == [rs["metadata"]["uid"]]
        assert not found["metadata"].get("deletionTimestamp")


async def test_orphan_reaches_dependents_created_just_before_the_delete(
    api: client.Client, running: gc.GarbageCollector
) -> None:
    # No pause between creating and deleting: the collector's cache may not hold every
    # dependent yet when it sees the owner go; none may be collected for that.
    for round_ in range(5):
        owner = await api.create(
            DEPLOYMENTS,
            {
                "metadata": {"name": f"o{round_}"},
                "spec": {"selector": {"matchLabels": {"app": "o"}}, "template": template("o")},
            },
            namespace="default",
        )
        for index in range(3):
            await configmap(api, f"o{round_}-{index}", owner)
        await api.delete(
            DEPLOYMENTS, f"o{round_}", namespace="default", propagation_policy="Orphan"
        )
    for round_ in range(5):
        await eventually(lambda r=round_: _gone(api, DEPLOYMENTS, f"o{r}"))
    await trio.sleep(0.5)
    for item in (await api.list_all(CONFIGMAPS, tenant="system", namespace="default"))["items"]:
        assert not item["metadata"].get("ownerReferences"), item["metadata"]
    assert len(await names(api, CONFIGMAPS)) >= 15


# Missing and live owners


async def test_a_dependent_of_a_missing_owner_is_collected(
    api: client.Client, running: gc.GarbageCollector
) -> None:
    ghost = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000000"},
    }
    await configmap(api, "orphaned", ghost)
    await eventually(lambda: _gone(api, CONFIGMAPS, "orphaned"))


async def test_an_owner_with_the_same_name_but_another_uid_is_absent(
    api: client.Client, running: gc.GarbageCollector
) -> None:
    first = await api.create(CONFIGMAPS, {"metadata": {"name": "owner"}}, namespace="default")
    await api.delete(CONFIGMAPS, "owner", namespace="default")
    await api.create(CONFIGMAPS, {"metadata": {"name": "owner"}}, namespace="default")
    await configmap(api, "stale", first)
    await eventually(lambda: _gone(api, CONFIGMAPS, "stale"))
    assert await exists(api, CONFIGMAPS, "owner", namespace="default") is not None


async def test_an_object_with_a_live_owner_is_never_collected(
    api: client.Client, running: gc.GarbageCollector
) -> None:
    # The dependent exists first; its owner comes later and is then named.
    await api.create(CONFIGMAPS, {"metadata": {"name": "early"}}, namespace="default")
    late = await api.create(
        DEPLOYMENTS,
        {
            "metadata": {"name": "late"},
            "spec": {"selector": {"matchLabels": {"app": "l"}}, "template": template("l")},
        },
        namespace="default",
    )
    await api.patch(
        CONFIGMAPS,
        "early",
        {"metadata": {"ownerReferences": [owner_ref(late)]}},
        namespace="default",
    )
    # Owners in another informer than their dependents, created back to back: the
    # collector may see a dependent before its owner.
    for index in range(10):
        owner = await api.create(
            DEPLOYMENTS,
            {
                "metadata": {"name": f"d{index}"},
                "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": template("d")},
            },
            namespace="default",
        )
        await configmap(api, f"cm{index}", owner)
    # A cluster-scoped owner.
    node = await api.create(NODES, {"metadata": {"name": "n1"}})
    await configmap(api, "on-node", node)
    await trio.sleep(1.0)
    assert {"early", "on-node", *(f"cm{i}" for i in range(10))} <= set(await names(api, CONFIGMAPS))

    # And they go when their owners do.
    await api.delete(NODES, "n1")
    await eventually(lambda: _gone(api, CONFIGMAPS, "on-node"))
    await api.delete(DEPLOYMENTS, "late", namespace="default")
    await eventually(lambda: _gone(api, CONFIGMAPS, "early"))


async def test_references_to_missing_owners_beside_a_live_one_are_dropped(
    api: client.Client, running: gc.GarbageCollector
) -> None:
    live = await api.create(CONFIGMAPS, {"metadata": {"name": "live"}}, namespace="default")
    ghost = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000001"},
    }
    await configmap(api, "shared", live, ghost)

    async def only_live_left() -> bool:
        found = await exists(api, CONFIGMAPS, "shared", namespace="default")
        assert found is not None, "a dependent with a live owner was collected"
        return [r["uid"] for r in found["metadata"]["ownerReferences"]] == [live["metadata"]["uid"]]

    await eventually(only_live_left)


async def test_a_cluster_scoped_dependent_with_a_namespaced_owner_stays(
    api: client.Client, running: gc.GarbageCollector
) -> None:
    await api.create(
        NODES,
        {
            "metadata": {
                "name": "n2",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "nope"}
                ],
            }
        },
    )
    await trio.sleep(1.0)
    assert await exists(api, NODES, "n2") is not None


async def test_collection_works_in_every_tenant(
    api: client.Client, running: gc.GarbageCollector
) -> None:
    await make_tenant(api, "t1")
    await chain(api, tenant="t1")
    # Same names in the system tenant, unrelated.
    await chain(api)
    await api.delete(DEPLOYMENTS, "web", namespace="default", tenant="t1")

    async def t1_empty() -> bool:
        return not await names(api, REPLICASETS, tenant="t1") and not await names(
            api, PODS, tenant="t1"
        )

    await eventually(t1_empty)
    await trio.sleep(0.3)
    assert await names(api, REPLICASETS) == ["web-1"]
    assert await names(api, PODS) == ["web-1-0", "web-1-1"]


async def _gone(api: client.Client, kind: Any, name: str) -> bool:
    return await exists(api, kind, name, namespace=None if kind is NODES else "default") is None


async def _deleting(api: client.Client, kind: Any, name: str) -> bool:
    found = await exists(api, kind, name, namespace="default")
    return found is not None and bool(found["metadata"].get("deletionTimestamp"))
