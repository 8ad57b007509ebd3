"""The tenant controller's pure parts: what a tenant is given and the order it is emptied in."""

from __future__ import annotations

from typing import Any

import trio

from arktos_lite import machinery
from arktos_lite.api import _validation as validation, resources
from arktos_lite.controllers import _tenant as tenant

Obj = dict[str, Any]


def in_tenant(obj: Obj) -> Obj:
    """As the API server stores it: in a tenant."""
    return {**obj, "metadata": {**obj["metadata"], "tenant": "t1"}}


def test_the_admin_role_and_binding_are_valid_rbac_objects() -> None:
    role = tenant.admin_role()
    binding = tenant.admin_role_binding()
    group = "rbac.authorization.k8s.io"
    assert validation.validate(group, "ClusterRole", in_tenant(role), None) == []
    assert validation.validate(group, "ClusterRoleBinding", in_tenant(binding), None) == []
    assert role["rules"] == [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "User", "name": "admin", "apiGroup": "rbac.authorization.k8s.io"}
    ]


def test_deletion_covers_everything_a_tenant_holds_once_with_namespaces_last() -> None:
    registry = resources.Registry()
    order = tenant.deletion_order(registry)
    held = [r for r in registry if r.scope is not resources.Scope.CLUSTER]
    assert sorted(order, key=str) == sorted(held, key=str)
    assert len(order) == len(set(order))
    assert order[-1].plural == "namespaces"
    scopes = [r.scope for r in order]
    # Namespaced content goes before the tenant-scoped objects.
    assert scopes == sorted(scopes, key=lambda s: s is resources.Scope.TENANT)


def test_custom_resources_go_before_the_built_in_ones_of_their_scope() -> None:
    crontabs = resources.Resource(
        "stable.example.com", "v1", "CronTab", "crontabs", resources.Scope.NAMESPACE
    )
    widgets = resources.Resource(
        "stable.example.com", "v1", "Widget", "widgets", resources.Scope.TENANT
    )
    builtins = list(resources.Registry())
    order = tenant.deletion_order([crontabs, widgets, *builtins])
    assert order[0] == crontabs
    first_tenant_scoped = next(i for i, r in enumerate(order) if r.scope is resources.Scope.TENANT)
    assert order[first_tenant_scoped] == widgets
    # The tenant's own CRDs go before its namespaces, and their objects with them.
    plurals = [r.plural for r in order]
    assert plurals.index("customresourcedefinitions") < plurals.index("namespaces")
    assert plurals[-1] == "namespaces"


class RecordingApi:
    """Stands in for the client: remembers what was created, and has nothing to list."""

    def __init__(self) -> None:
        self.created: list[tuple[str, str]] = []
        self.first_created = trio.Event()

    async def create(self, resource: resources.Resource, body: Obj, **_where: Any) -> Obj:
        self.created.append((resource.plural, body["metadata"]["name"]))
        self.first_created.set()
        return body


async def test_the_system_tenant_is_created_when_none_is_known() -> None:
    api: Any = RecordingApi()
    informers = machinery.InformerFactory(api)
    recorder = machinery.EventRecorder(api, component="test")
    controller = tenant.TenantController(api, informers, recorder=recorder)
    # The informers never list here: the cache knows no tenant at all.
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        with trio.fail_after(2):
            await api.first_created.wait()
        nursery.cancel_scope.cancel()
    assert api.created == [("tenants", "system")]
