"""RBAC objects over HTTP: roles and bindings per namespace, cluster roles and their
bindings per tenant (as in Arktos), validated as kube-apiserver validates them."""

from __future__ import annotations

from typing import Any

import httpx

from .conftest import ALICE_TOKEN, Server, created, make_tenant, names

RBAC = "/apis/rbac.authorization.k8s.io/v1"
Obj = dict[str, Any]


def cluster_role(name: str) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    }


def binding(kind: str, name: str, *, role_kind: str = "ClusterRole", role: str = "admin") -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "admin"},
            {"kind": "ServiceAccount", "name": "default", "namespace": "default"},
        ],
    }


async def test_cluster_roles_belong_to_a_tenant(server: Server, admin: httpx.AsyncClient) -> None:
    await make_tenant(admin, "t1")
    await make_tenant(admin, "t2")
    await created(admin, f"{RBAC}/tenants/t1/clusterroles", cluster_role("system:admin"))
    await created(admin, f"{RBAC}/tenants/t2/clusterroles", cluster_role("system:admin"))
    async with server.client(ALICE_TOKEN) as alice:
        assert await names(alice, f"{RBAC}/clusterroles") == ["system:admin"]
        stored = await alice.get(f"{RBAC}/clusterroles/system:admin")
        assert stored.json()["metadata"]["tenant"] == "t1"
        other = await alice.get(f"{RBAC}/tenants/t2/clusterroles/system:admin")
        assert other.status_code == 403


async def test_bindings_print_their_role_and_subjects(admin: httpx.AsyncClient) -> None:
    await created(admin, f"{RBAC}/clusterrolebindings", binding("ClusterRoleBinding", "admins"))
    await created(
        admin,
        f"{RBAC}/namespaces/default/rolebindings",
        binding("RoleBinding", "readers", role_kind="Role", role="reader"),
    )
    table = await admin.get(
        f"{RBAC}/clusterrolebindings",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
    )
    assert [c["name"] for c in table.json()["columnDefinitions"]] == [
        "Name",
        "Role",
        "Age",
        "Users",
        "Groups",
        "ServiceAccounts",
    ]
    cells = table.json()["rows"][0]["cells"]
    assert cells[:2] == ["admins", "ClusterRole/admin"]
    assert cells[3:] == ["admin", "", "default/default"]


async def test_role_ref_cannot_change(admin: httpx.AsyncClient) -> None:
    url = f"{RBAC}/namespaces/default/rolebindings"
    await created(admin, url, binding("RoleBinding", "b"))
    changed = await admin.patch(
        f"{url}/b",
        json={"roleRef": {"name": "view"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert changed.status_code == 422
    assert changed.json()["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: {"apiGroup":"rbac.authorization.k8s.io",'
            '"kind":"ClusterRole","name":"view"}: cannot change roleRef',
            "field": "roleRef",
        }
    ]


async def test_invalid_rules_and_bindings_are_refused(admin: httpx.AsyncClient) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "r"},
        "rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}, {"verbs": []}],
    }
    refused = await admin.post(f"{RBAC}/namespaces/default/roles", json=role)
    assert refused.status_code == 422
    fields = [cause["field"] for cause in refused.json()["details"]["causes"]]
    assert fields == [
        "rules[0].nonResourceURLs",
        "rules[1].verbs",
        "rules[1].apiGroups",
        "rules[1].resources",
    ]
    bad = binding("ClusterRoleBinding", "b", role_kind="Role")
    bad["subjects"] = [{"kind": "ServiceAccount", "name": "default"}, {"kind": "Robot"}]
    refused = await admin.post(f"{RBAC}/clusterrolebindings", json=bad)
    assert refused.status_code == 422
    fields = [cause["field"] for cause in refused.json()["details"]["causes"]]
    assert fields == [
        "roleRef.kind",
        "subjects[0].namespace",
        "subjects[1].name",
        "subjects[1].kind",
    ]
    assert await names(admin, f"{RBAC}/clusterrolebindings") == []
