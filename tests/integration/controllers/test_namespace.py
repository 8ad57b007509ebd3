"""The namespace controller against a real API server: accounts in, everything out."""

from __future__ import annotations

from typing import Any

import pytest

from arktos_lite import client, machinery
from arktos_lite.api import errors
from arktos_lite.controllers import _namespace as namespace

from .conftest import (
    CONFIGMAPS,
    DEPLOYMENTS,
    ENDPOINTS,
    NAMESPACES,
    PODS,
    REGISTRY,
    ROLES,
    SERVICE_ACCOUNTS,
    SERVICES,
    TENANTS,
    Controllers,
    Server,
    eventually,
    exists,
)

Obj = dict[str, Any]

NAMESPACED = [kind for kind in REGISTRY if kind.namespaced]


@pytest.fixture
async def running(
    api: client.Client,
    informers: machinery.InformerFactory,
    recorder: machinery.EventRecorder,
    controllers: Controllers,
) -> Controllers:
    await controllers.start(namespace.NamespaceController(api, informers, recorder=recorder))
    return controllers


def pod(name: str, *, node: str | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "nginx"}]}
    if node is not None:
        spec["nodeName"] = node
    return {"metadata": {"name": name}, "spec": spec}


async def contents(
    api: client.Client, name: str, *, tenant: str = "system"
) -> dict[str, list[str]]:
    """Every object in the namespace, by resource, as a user listing them would find."""
    found: dict[str, list[str]] = {}
    for kind in NAMESPACED:
        listed = await api.list_all(kind, tenant=tenant, namespace=name)
        names = [item["metadata"]["name"] for item in listed["items"]]
        if names:
            found[kind.plural] = names
    return found


async def gone(api: client.Client, name: str, *, tenant: str = "system") -> bool:
    return await exists(api, NAMESPACES, name, tenant=tenant) is None


async def fill(api: client.Client, name: str) -> None:
    where: dict[str, Any] = {"tenant": "system", "namespace": name}
    for index in range(3):
        await api.create(PODS, pod(f"web-{index}"), **where)
        await api.create(CONFIGMAPS, {"metadata": {"name": f"cm-{index}"}, "data": {}}, **where)
    await api.create(
        SERVICES, {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}, **where
    )
    await api.create(ENDPOINTS, {"metadata": {"name": "web"}, "subsets": []}, **where)
    await api.create(ROLES, {"metadata": {"name": "reader"}, "rules": []}, **where)
    await api.create(
        DEPLOYMENTS,
        {
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                },
            },
        },
        **where,
    )


def condition(ns: Obj, type_: str) -> Obj:
    found = [c for c in (ns.get("status") or {}).get("conditions") or [] if c["type"] == type_]
    assert found, f"no condition {type_} in {ns.get('status')}"
    first: Obj = found[0]
    return first


async def test_every_namespace_gets_a_default_service_account_that_comes_back(
    api: client.Client, running: Controllers
) -> None:
    await api.create(NAMESPACES, {"metadata": {"name": "shop"}}, tenant="system")
    first = await eventually(
        lambda: exists(api, SERVICE_ACCOUNTS, "default", tenant="system", namespace="shop")
    )
    await api.delete(SERVICE_ACCOUNTS, "default", tenant="system", namespace="shop")

    async def replaced() -> bool:
        account = await exists(api, SERVICE_ACCOUNTS, "default", tenant="system", namespace="shop")
        return account is not None and account["metadata"]["uid"] != first["metadata"]["uid"]

    await eventually(replaced)


async def test_deleting_a_namespace_deletes_its_content_then_the_namespace(
    api: client.Client, running: Controllers
) -> None:
    for name in ("shop", "other"):
        await api.create(NAMESPACES, {"metadata": {"name": name}}, tenant="system")
        await fill(api, name)
    await eventually(
        lambda: exists(api, SERVICE_ACCOUNTS, "default", tenant="system", namespace="other")
    )
    kept = await contents(api, "other")

    deleted = await api.delete(NAMESPACES, "shop", tenant="system")
    assert deleted["status"]["phase"] == "Terminating"
    await eventually(lambda: gone(api, "shop"))
    assert await contents(api, "shop") == {}
    assert await contents(api, "other") == kept


async def test_a_namespace_waits_for_its_pods_to_terminate_gracefully(
    api: client.Client, running: Controllers
) -> None:
    await api.create(NAMESPACES, {"metadata": {"name": "shop"}}, tenant="system")
    # Bound to a node: its agent would stop it; here nobody does, so it waits.
    await api.create(PODS, pod("bound", node="node-1"), tenant="system", namespace="shop")
    await api.create(PODS, pod("unbound"), tenant="system", namespace="shop")
    await api.delete(NAMESPACES, "shop", tenant="system")

    async def only_the_bound_pod_left() -> bool:
        return await contents(api, "shop") == {"pods": ["bound"]}

    await eventually(only_the_bound_pod_left)
    bound = await api.get(PODS, "bound", tenant="system", namespace="shop")
    assert bound["metadata"]["deletionTimestamp"]

    async def reported() -> Obj | None:
        ns = await api.get(NAMESPACES, "shop", tenant="system")
        conditions = (ns.get("status") or {}).get("conditions") or []
        return ns if any(c["type"] == "NamespaceContentRemaining" for c in conditions) else None

    ns = await eventually(reported)
    assert ns["status"]["phase"] == "Terminating"
    remaining = condition(ns, "NamespaceContentRemaining")
    assert remaining["status"] == "True"
    assert remaining["message"] == "Some resources are remaining: pods. has 1 resource instances"

    # What the node's agent does once the pod has stopped.
    await api.delete(PODS, "bound", tenant="system", namespace="shop", grace_period_seconds=0)
    await eventually(lambda: gone(api, "shop"))


async def test_a_namespace_waits_for_finalizers_of_its_content(
    api: client.Client, running: Controllers
) -> None:
    await api.create(NAMESPACES, {"metadata": {"name": "shop"}}, tenant="system")
    held = {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}, "data": {}}
    await api.create(CONFIGMAPS, held, tenant="system", namespace="shop")
    await api.delete(NAMESPACES, "shop", tenant="system")

    async def reported() -> Obj | None:
        ns = await api.get(NAMESPACES, "shop", tenant="system")
        conditions = (ns.get("status") or {}).get("conditions") or []
        waiting = [c for c in conditions if c["type"] == "NamespaceFinalizersRemaining"]
        return ns if waiting and waiting[0]["status"] == "True" else None

    ns = await eventually(reported)
    assert condition(ns, "NamespaceFinalizersRemaining")["message"] == (
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 "
        "resource instances"
    )
    assert condition(ns, "NamespaceDeletionContentFailure")["status"] == "False"
    assert ns["spec"]["finalizers"] == ["kubernetes"]

    await api.patch(
        CONFIGMAPS, "held", {"metadata": {"finalizers": None}}, tenant="system", namespace="shop"
    )
    await eventually(lambda: gone(api, "shop"))


async def test_a_default_namespace_of_a_live_tenant_survives_a_delete(
    api: client.Client, running: Controllers
) -> None:
    await api.create(TENANTS, {"metadata": {"name": "t1"}})
    await api.create(NAMESPACES, {"metadata": {"name": "kube-system"}}, tenant="t1")
    await eventually(
        lambda: exists(api, SERVICE_ACCOUNTS, "default", tenant="t1", namespace="kube-system")
    )
    with pytest.raises((errors.Forbidden, errors.Invalid)):
        await api.delete(NAMESPACES, "kube-system", tenant="t1")
    with pytest.raises((errors.Forbidden, errors.Invalid)):
        await api.delete(NAMESPACES, "default", tenant="system")
    kept = await api.get(NAMESPACES, "kube-system", tenant="t1")
    assert kept["status"]["phase"] == "Active"
    assert await contents(api, "kube-system", tenant="t1") == {"serviceaccounts": ["default"]}


async def test_a_namespace_deleted_while_the_api_server_restarts_still_goes(
    api: client.Client, server: Server, running: Controllers
) -> None:
    await api.create(NAMESPACES, {"metadata": {"name": "shop"}}, tenant="system")
    await fill(api, "shop")
    await server.restart(down_for=0.5)
    await api.create(NAMESPACES, {"metadata": {"name": "later"}}, tenant="system")
    await eventually(
        lambda: exists(api, SERVICE_ACCOUNTS, "default", tenant="system", namespace="later"),
        timeout=10,
    )
    await api.delete(NAMESPACES, "shop", tenant="system")
    await eventually(lambda: gone(api, "shop"), timeout=10)
    assert await contents(api, "shop") == {}
