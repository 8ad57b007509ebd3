"""The core controllers and custom resources, against a real API server: a dying namespace or
tenant loses its custom objects too, and the garbage collector follows owner references
to and from custom objects (found through the CRDs, as discovery would)."""

from __future__ import annotations

from typing import Any

import pytest

from arktos_lite import client, machinery
from arktos_lite.api import resources
from arktos_lite.controllers import _gc as gc, _namespace as namespace, _tenant as tenant

from .conftest import (
    CONFIGMAPS,
    NAMESPACES,
    TENANTS,
    Controllers,
    eventually,
    exists,
    resource,
)

Obj = dict[str, Any]

CRDS = resource("customresourcedefinitions", "apiextensions.k8s.io")
GROUP = "stable.example.com"
SHARED = {"arktos.futurewei.com/crd-sharing-policy": "forced"}


def crd(plural: str, kind: str, *, scope: str = "Namespaced", labels: Obj | None = None) -> Obj:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": labels or {}},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {"plural": plural, "kind": kind},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def custom(
    plural: str, kind: str, *, scope: resources.Scope = resources.Scope.NAMESPACE
) -> resources.Resource:
    return resources.Resource(GROUP, "v1", kind, plural, scope)


CRONTABS = custom("crontabs", "CronTab")
WIDGETS = custom("widgets", "Widget", scope=resources.Scope.TENANT)


def obj(resource: resources.Resource, name: str, *, owners: tuple[Obj, ...] = ()) -> Obj:
    meta: Obj = {"name": name}
    if owners:
        meta["ownerReferences"] = [
            {
                "apiVersion": o["apiVersion"],
                "kind": o["kind"],
                "name": o["metadata"]["name"],
                "uid": o["metadata"]["uid"],
            }
            for o in owners
        ]
    return {"apiVersion": resource.api_version, "kind": resource.kind, "metadata": meta}


async def names(api: client.Client, kind: resources.Resource, **where: Any) -> list[str]:
    listed = await api.list_all(kind, **where)
    return sorted(item["metadata"]["name"] for item in listed["items"])


async def test_a_deleted_namespace_loses_its_custom_objects(
    api: client.Client,
    informers: machinery.InformerFactory,
    recorder: machinery.EventRecorder,
    controllers: Controllers,
) -> None:
    await api.create(CRDS, crd("crontabs", "CronTab"))
    await api.create(NAMESPACES, {"metadata": {"name": "doomed"}})
    for name in ("a", "b"):
        await api.create(CRONTABS, obj(CRONTABS, name), namespace="doomed")
    await api.create(CRONTABS, obj(CRONTABS, "kept"), namespace="default")
    await controllers.start(namespace.NamespaceController(api, informers, recorder=recorder))

    await api.delete(NAMESPACES, "doomed")

    async def gone() -> bool:
        return await exists(api, NAMESPACES, "doomed") is None

    await eventually(gone)
    assert await names(api, CRONTABS, tenant="system") == ["kept"]


async def test_a_deleted_tenant_loses_its_custom_objects(
    api: client.Client,
    informers: machinery.InformerFactory,
    recorder: machinery.EventRecorder,
    controllers: Controllers,
) -> None:
    # One kind shared by every tenant, one the tenant defines itself (tenant-scoped).
    await api.create(CRDS, crd("crontabs", "CronTab", labels=SHARED))
    await controllers.start(
        tenant.TenantController(api, informers, recorder=recorder),
        namespace.NamespaceController(api, informers, recorder=recorder),
    )
    await api.create(TENANTS, {"metadata": {"name": "t1"}})

    async def has_default_namespace() -> Obj | None:
        return await exists(api, NAMESPACES, "default", tenant="t1")

    await eventually(has_default_namespace)
    await api.create(CRDS, crd("widgets", "Widget", scope="Cluster"), tenant="t1")
    await api.create(CRONTABS, obj(CRONTABS, "theirs"), tenant="t1", namespace="default")
    await api.create(WIDGETS, obj(WIDGETS, "tenant-wide"), tenant="t1")
    await api.create(CRONTABS, obj(CRONTABS, "ours"), tenant="system", namespace="default")

    await api.delete(TENANTS, "t1")

    async def gone() -> bool:
        return await exists(api, TENANTS, "t1") is None

    await eventually(gone, timeout=20)
    assert await names(api, CRONTABS, tenant=resources.ALL_TENANTS) == ["ours"]
    assert await names(api, CRDS, tenant=resources.ALL_TENANTS) == [f"crontabs.{GROUP}"]


@pytest.fixture
async def collector(
    api: client.Client,
    informers: machinery.InformerFactory,
    recorder: machinery.EventRecorder,
    controllers: Controllers,
) -> gc.GarbageCollector:
    collector = gc.GarbageCollector(api, informers, recorder=recorder)
    await controllers.start(collector)
    return collector


async def test_dependents_of_a_deleted_custom_object_are_collected(
    api: client.Client, collector: gc.GarbageCollector
) -> None:
    await api.create(CRDS, crd("crontabs", "CronTab"))
    owner = await api.create(CRONTABS, obj(CRONTABS, "owner"), namespace="default")
    await api.create(CONFIGMAPS, obj(CONFIGMAPS, "child", owners=(owner,)), namespace="default")
    await api.create(CONFIGMAPS, obj(CONFIGMAPS, "plain"), namespace="default")
    # A custom object owned by a custom object is collected as well.
    await api.create(CRONTABS, obj(CRONTABS, "grandchild", owners=(owner,)), namespace="default")

    await api.delete(CRONTABS, "owner", namespace="default")

    async def collected() -> bool:
        left = await names(api, CONFIGMAPS, tenant="system", namespace="default")
        return (
            "child" not in left
            and await names(api, CRONTABS, tenant="system", namespace="default") == []
        )

    await eventually(collected, timeout=10)
    assert await exists(api, CONFIGMAPS, "plain", tenant="system", namespace="default")


async def test_custom_dependents_of_a_deleted_built_in_owner_are_collected(
    api: client.Client, collector: gc.GarbageCollector
) -> None:
    await api.create(CRDS, crd("crontabs", "CronTab"))
    owner = await api.create(CONFIGMAPS, obj(CONFIGMAPS, "owner"), namespace="default")
    await api.create(CRONTABS, obj(CRONTABS, "dependent", owners=(owner,)), namespace="default")
    await api.delete(CONFIGMAPS, "owner", namespace="default")

    async def collected() -> bool:
        return await names(api, CRONTABS, tenant="system", namespace="default") == []

    await eventually(collected, timeout=10)


async def test_a_dependent_of_an_unknown_custom_kind_is_kept(
    api: client.Client, collector: gc.GarbageCollector
) -> None:
    ghost = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Ghost",
        "metadata": {"name": "ghost", "uid": "8c5b1b9e-0000-4000-8000-000000000000"},
    }
    await api.create(CONFIGMAPS, obj(CONFIGMAPS, "haunted", owners=(ghost,)), namespace="default")
    # Another dependent, of a gone built-in owner, shows the collector at work meanwhile.
    gone_owner = await api.create(CONFIGMAPS, obj(CONFIGMAPS, "gone"), namespace="default")
    await api.create(
        CONFIGMAPS, obj(CONFIGMAPS, "orphaned", owners=(gone_owner,)), namespace="default"
    )
    await api.delete(CONFIGMAPS, "gone", namespace="default")

    async def orphan_collected() -> bool:
        return (
            await exists(api, CONFIGMAPS, "orphaned", tenant="system", namespace="default") is None
        )

    await eventually(orphan_collected, timeout=10)
    assert await exists(api, CONFIGMAPS, "haunted", tenant="system", namespace="default")
