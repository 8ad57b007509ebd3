"""Discovery as kubectl reads it: versions, groups, resource lists with verbs and short
names, and what a tenant user does not get to see."""

from __future__ import annotations

from typing import Any

import httpx

from .conftest import ALICE_TOKEN, Server

CLUSTER_ONLY = {"nodes", "nodes/status", "tenants", "tenants/status", "tenants/finalize"}


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in document["resources"]}


async def test_versions_and_health_need_no_credentials(server: Server) -> None:
    async with server.client(None) as anonymous:
        version = (await anonymous.get("/version")).json()
        assert version["major"] == "1"
        assert version["minor"] == "32"
        assert version["gitVersion"].startswith("v1.32.0-arktos-lite")
        for url in ("/healthz", "/livez", "/readyz"):
            response = await anonymous.get(url)
            assert (response.status_code, response.text) == (200, "ok")


async def test_api_and_groups(admin: httpx.AsyncClient) -> None:
    core = (await admin.get("/api")).json()
    assert core["kind"] == "APIVersions"
    assert core["versions"] == ["v1"]
    groups = (await admin.get("/apis")).json()
    assert groups["kind"] == "APIGroupList"
    assert {g["name"]: g["preferredVersion"]["groupVersion"] for g in groups["groups"]} == {
        "apps": "apps/v1",
        "authentication.k8s.io": "authentication.k8s.io/v1",
        "apiextensions.k8s.io": "apiextensions.k8s.io/v1",
        "arktos.futurewei.com": "arktos.futurewei.com/v1",
        "coordination.k8s.io": "coordination.k8s.io/v1",
        "discovery.k8s.io": "discovery.k8s.io/v1",
        "rbac.authorization.k8s.io": "rbac.authorization.k8s.io/v1",
    }
    apps = (await admin.get("/apis/apps")).json()
    assert apps["kind"] == "APIGroup"
    assert apps["versions"] == [{"groupVersion": "apps/v1", "version": "v1"}]
    for url in ("/apis/nope", "/apis/apps/v2", "/api/v2"):
        missing = await admin.get(url)
        assert missing.status_code == 404, url
        assert missing.json()["reason"] == "NotFound"


async def test_resource_lists_name_verbs_short_names_and_subresources(
    admin: httpx.AsyncClient,
) -> None:
    core = (await admin.get("/api/v1")).json()
    assert core["kind"] == "APIResourceList"
    assert core["groupVersion"] == "v1"
    resources = by_name(core)
    assert resources.keys() >= CLUSTER_ONLY
    pods = resources["pods"]
    assert pods["namespaced"] is True
    assert pods["kind"] == "Pod"
    assert pods["shortNames"] == ["po"]
    assert "all" in pods["categories"]
    assert set(pods["verbs"]) == {
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    }
    assert resources["pods/binding"]["verbs"] == ["create"]
    assert set(resources["pods/status"]["verbs"]) == {"get", "patch", "update"}
    assert resources["namespaces"]["shortNames"] == ["ns"]
    assert resources["namespaces"]["namespaced"] is False
    assert resources["nodes"]["namespaced"] is False
    assert resources["controllerinstances"]["shortNames"] == ["co"]
    apps = by_name((await admin.get("/apis/apps/v1")).json())
    assert apps["deployments"]["shortNames"] == ["deploy"]
    assert apps["replicasets"]["shortNames"] == ["rs"]
    scale = apps["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")


async def test_tenant_users_do_not_see_cluster_resources(server: Server) -> None:
    async with server.client(ALICE_TOKEN) as alice:
        # Discovery needs no tenant to exist: kubectl asks before anything else.
        resources = by_name((await alice.get("/api/v1")).json())
    assert not CLUSTER_ONLY & resources.keys()
    assert "controllerinstances" not in resources
    assert {"pods", "namespaces", "configmaps", "services"} <= resources.keys()
