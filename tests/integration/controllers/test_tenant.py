"""The tenant controller against a real API server: tenants are born complete and die whole."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from arktos_lite import client, machinery
from arktos_lite.api import errors, resources
from arktos_lite.controllers import _namespace as namespace, _tenant as tenant

from .conftest import (
    CLUSTER_ROLE_BINDINGS as BINDINGS,
    CLUSTER_ROLES,
    CONFIGMAPS,
    DEPLOYMENTS,
    EVENTS,
    NAMESPACES,
    PODS,
    SECRETS,
    SERVICE_ACCOUNTS,
    SERVICES,
    TENANTS,
    Controllers,
    Server,
    eventually,
    exists,
)

Obj = dict[str, Any]

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public")


@pytest.fixture
async def running(
    api: client.Client,
    informers: machinery.InformerFactory,
    recorder: machinery.EventRecorder,
    controllers: Controllers,
) -> Controllers:
    """The tenant and namespace controllers, running: a tenant's namespaces need both."""
    await controllers.start(
        tenant.TenantController(api, informers, recorder=recorder),
        namespace.NamespaceController(api, informers, recorder=recorder),
    )
    return controllers


async def create_tenant(api: client.Client, name: str) -> Obj:
    return await api.create(TENANTS, {"metadata": {"name": name}})


async def tenant_ready(api: client.Client, name: str) -> bool:
    """Whether the tenant has everything a new tenant gets."""
    for ns in DEFAULT_NAMESPACES:
        if await exists(api, SERVICE_ACCOUNTS, "default", tenant=name, namespace=ns) is None:
            return False
    return (
        await exists(api, CLUSTER_ROLES, "admin-role", tenant=name) is not None
        and await exists(api, BINDINGS, "admin-role-binding", tenant=name) is not None
    )


async def leftovers(api: client.Client, name: str) -> dict[str, list[str]]:
    """Every object still in tenant `name`, by resource: what a user could still find."""
    found: dict[str, list[str]] = {}
    for kind in resources.Registry():
        if kind.scope is resources.Scope.CLUSTER:
            continue
        listed = await api.list_all(kind, tenant=name)
        names = [item["metadata"]["name"] for item in listed["items"]]
        if names:
            found[kind.plural] = names
    return found


def pod(name: str) -> Obj:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


def service(name: str) -> Obj:
    return {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}


def deployment(name: str) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }


async def fill(api: client.Client, name: str) -> None:
    """Some of everything a tenant can hold, in a namespace of its own and in `default`."""
    await api.create(NAMESPACES, {"metadata": {"name": "shop"}}, tenant=name)
    for ns in ("shop", "default"):
        where: dict[str, Any] = {"tenant": name, "namespace": ns}
        await api.create(CONFIGMAPS, {"metadata": {"name": "settings"}, "data": {}}, **where)
        await api.create(SECRETS, {"metadata": {"name": "password"}}, **where)
        await api.create(PODS, pod("web"), **where)
        await api.create(SERVICES, service("web"), **where)
        await api.create(DEPLOYMENTS, deployment("web"), **where)
    await api.create(CLUSTER_ROLES, {"metadata": {"name": "reader"}, "rules": []}, tenant=name)


async def test_a_new_tenant_gets_its_namespaces_accounts_and_admin_role(
    api: client.Client, running: Controllers
) -> None:
    await create_tenant(api, "t1")
    await eventually(lambda: tenant_ready(api, "t1"))
    listed = await api.list_all(NAMESPACES, tenant="t1")
    assert sorted(item["metadata"]["name"] for item in listed["items"]) == sorted(
        DEFAULT_NAMESPACES
    )
    role = await api.get(CLUSTER_ROLES, "admin-role", tenant="t1")
    assert role["rules"] == [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    binding = await api.get(BINDINGS, "admin-role-binding", tenant="t1")
    assert binding["subjects"] == [
        {"kind": "User", "name": "admin", "apiGroup": "rbac.authorization.k8s.io"}
    ]
    assert binding["roleRef"] == {
        "kind": "ClusterRole",
        "name": "admin-role",
        "apiGroup": "rbac.authorization.k8s.io",
    }


async def test_the_system_tenant_gets_its_namespaces_but_no_admin_role(
    api: client.Client, running: Controllers
) -> None:
    for ns in DEFAULT_NAMESPACES:
        await eventually(
            functools.partial(
                exists, api, SERVICE_ACCOUNTS, "default", tenant="system", namespace=ns
            )
        )
    # Once a later tenant is complete, the system tenant has long been handled.
    await create_tenant(api, "t1")
    await eventually(lambda: tenant_ready(api, "t1"))
    assert await exists(api, CLUSTER_ROLES, "admin-role", tenant="system") is None
    assert await exists(api, BINDINGS, "admin-role-binding", tenant="system") is None


async def test_creating_a_tenant_records_events_on_it(
    api: client.Client, running: Controllers
) -> None:
    created = await create_tenant(api, "t1")
    await eventually(lambda: tenant_ready(api, "t1"))

    async def recorded() -> bool:
        listed = await api.list_all(
            EVENTS,
            tenant="system",
            namespace="default",
            field_selector=f"involvedObject.uid={created['metadata']['uid']}",
        )
        reasons = {event["reason"] for event in listed["items"]}
        return {"NamespaceCreated", "AdminRoleCreated"} <= reasons

    await eventually(recorded)


async def test_an_admin_role_binding_that_goes_missing_comes_back(
    api: client.Client, running: Controllers
) -> None:
    await create_tenant(api, "t1")
    await eventually(lambda: tenant_ready(api, "t1"))
    old = await api.get(BINDINGS, "admin-role-binding", tenant="t1")
    await api.delete(BINDINGS, "admin-role-binding", tenant="t1")

    async def recreated() -> bool:
        new = await exists(api, BINDINGS, "admin-role-binding", tenant="t1")
        return new is not None and new["metadata"]["uid"] != old["metadata"]["uid"]

    await eventually(recreated)


async def test_deleting_a_tenant_deletes_everything_it_holds_and_nothing_else(
    api: client.Client, running: Controllers
) -> None:
    for name in ("t1", "t2"):
        await create_tenant(api, name)
        await eventually(functools.partial(tenant_ready, api, name))
        await fill(api, name)
    kept = await leftovers(api, "t2")

    deleted = await api.delete(TENANTS, "t1")
    assert deleted["status"]["phase"] == "Terminating"
    await eventually(lambda: _gone(api, "t1"), timeout=8)
    assert await leftovers(api, "t1") == {}
    assert await leftovers(api, "t2") == kept


async def _gone(api: client.Client, name: str) -> bool:
    return await exists(api, TENANTS, name) is None


async def test_a_tenant_waits_for_content_that_holds_a_finalizer(
    api: client.Client, running: Controllers
) -> None:
    await create_tenant(api, "t1")
    await eventually(lambda: tenant_ready(api, "t1"))
    held = {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}, "data": {}}
    await api.create(CONFIGMAPS, held, tenant="t1", namespace="default")
    await api.delete(TENANTS, "t1")

    async def only_the_held_configmap_left() -> bool:
        return await leftovers(api, "t1") == {"configmaps": ["held"], "namespaces": ["default"]}

    await eventually(only_the_held_configmap_left)
    waiting = await api.get(TENANTS, "t1")
    assert waiting["status"]["phase"] == "Terminating"
    assert waiting["spec"]["finalizers"] == ["arktos"]

    await api.patch(
        CONFIGMAPS,
        "held",
        {"metadata": {"finalizers": None}},
        tenant="t1",
        namespace="default",
    )
    await eventually(lambda: _gone(api, "t1"))
    assert await leftovers(api, "t1") == {}


async def test_the_default_namespace_of_a_live_tenant_cannot_be_deleted(
    api: client.Client, running: Controllers
) -> None:
    await create_tenant(api, "t1")
    await eventually(lambda: tenant_ready(api, "t1"))
    with pytest.raises((errors.Forbidden, errors.Invalid)):
        await api.delete(NAMESPACES, "default", tenant="t1")
    kept = await api.get(NAMESPACES, "default", tenant="t1")
    assert kept["status"]["phase"] == "Active"
    assert "deletionTimestamp" not in kept["metadata"]


async def test_controllers_converge_across_an_api_server_restart(
    api: client.Client, server: Server, running: Controllers
) -> None:
    await create_tenant(api, "t1")
    await eventually(lambda: tenant_ready(api, "t1"))
    await fill(api, "t1")
    # The controllers are in the middle of deleting t1 when the server goes away.
    await api.delete(TENANTS, "t1")
    await server.restart(down_for=1.0)
    # Created after the restart: the controllers see it only if their watches came back.
    await create_tenant(api, "t2")
    await eventually(lambda: tenant_ready(api, "t2"), timeout=10)
    await eventually(lambda: _gone(api, "t1"), timeout=10)
    assert await leftovers(api, "t1") == {}
