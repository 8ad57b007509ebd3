"""Reads and writes through the client against a real API server, in tenants."""

from __future__ import annotations

import pytest

from arktos_lite import client
from arktos_lite.api import errors

from .conftest import (
    BOB_TOKEN,
    CONFIGMAPS,
    NODES,
    PODS,
    TENANTS,
    Cluster,
    configmap,
    pod,
)


async def test_pods_in_a_tenant_by_explicit_tenant(admin: client.Client) -> None:
    created = await admin.create(PODS, pod("web", app="web"), namespace="default", tenant="t1")
    meta = created["metadata"]
    assert (meta["tenant"], meta["namespace"], meta["name"]) == ("t1", "default", "web")
    got = await admin.get(PODS, "web", namespace="default", tenant="t1")
    assert got["metadata"]["uid"] == meta["uid"]
    listed = await admin.list(PODS, namespace="default", tenant="t1")
    assert [p["metadata"]["name"] for p in listed["items"]] == ["web"]
    # Not in the admin's own tenant.
    with pytest.raises(errors.NotFound):
        await admin.get(PODS, "web", namespace="default")
    got["metadata"]["labels"]["tier"] = "front"
    replaced = await admin.replace(PODS, got)
    assert replaced["metadata"]["labels"] == {"app": "web", "tier": "front"}
    await admin.delete(PODS, "web", namespace="default", tenant="t1", grace_period_seconds=0)
    with pytest.raises(errors.NotFound):
        await admin.get(PODS, "web", namespace="default", tenant="t1")


async def test_configmaps_by_legacy_paths_land_in_the_callers_tenant(
    alice: client.Client, admin: client.Client
) -> None:
    created = await alice.create(CONFIGMAPS, configmap("settings", color="blue"))
    assert created["metadata"]["tenant"] == "t1"
    assert (await alice.get(CONFIGMAPS, "settings", namespace="default"))["data"] == {
        "color": "blue"
    }
    seen_by_admin = await admin.get(CONFIGMAPS, "settings", namespace="default", tenant="t1")
    assert seen_by_admin["metadata"]["uid"] == created["metadata"]["uid"]
    patched = await alice.patch(
        CONFIGMAPS, "settings", {"data": {"color": "red"}}, namespace="default"
    )
    assert patched["data"] == {"color": "red"}
    await alice.delete(CONFIGMAPS, "settings", namespace="default")
    assert (await alice.list(CONFIGMAPS, namespace="default"))["items"] == []


async def test_the_tenant_comes_from_the_object_then_the_client(cluster: Cluster) -> None:
    async with cluster.client(tenant="t1") as in_t1:
        body = configmap("a")
        body["metadata"]["tenant"] = "t2"
        assert (await in_t1.create(CONFIGMAPS, body))["metadata"]["tenant"] == "t2"
        assert (await in_t1.create(CONFIGMAPS, configmap("b")))["metadata"]["tenant"] == "t1"
        in_t2 = in_t1.with_tenant("t2")
        listed = await in_t2.list(CONFIGMAPS, namespace="default")
        assert [c["metadata"]["name"] for c in listed["items"]] == ["a"]
        everywhere = await in_t1.list(CONFIGMAPS, tenant="all")
        assert sorted(
            (c["metadata"]["tenant"], c["metadata"]["name"]) for c in everywhere["items"]
        ) == [("t1", "b"), ("t2", "a")]
        # Cluster-scoped objects are found whatever the client's tenant.
        assert (await in_t1.get(TENANTS, "t2"))["metadata"]["name"] == "t2"


async def test_every_patch_type(admin: client.Client) -> None:
    await admin.create(PODS, pod("p", app="web"), namespace="default", tenant="t1")
    where = {"namespace": "default", "tenant": "t1"}
    merged = await admin.patch(PODS, "p", {"metadata": {"labels": {"tier": "a"}}}, **where)
    assert merged["metadata"]["labels"] == {"app": "web", "tier": "a"}
    jsoned = await admin.patch(
        PODS,
        "p",
        [{"op": "replace", "path": "/metadata/labels/tier", "value": "b"}],
        patch_type="json",
        **where,
    )
    assert jsoned["metadata"]["labels"]["tier"] == "b"
    # Strategic merge merges containers by name instead of replacing the list.
    strategic = await admin.patch(
        PODS,
        "p",
        {"spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        patch_type="strategic",
        **where,
    )
    assert [(c["name"], c["image"]) for c in strategic["spec"]["containers"]] == [("c", "nginx")]
    applied = await admin.patch(
        CONFIGMAPS,
        "cm",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  k: v\n",
        patch_type="apply",
        field_manager="alpha",
        **where,
    )
    assert applied["data"] == {"k": "v"}
    other = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm"},
        "data": {"k": "w"},
    }
    with pytest.raises(errors.Conflict):
        await admin.patch(
            CONFIGMAPS, "cm", other, patch_type="apply", field_manager="beta", **where
        )
    forced = await admin.patch(
        CONFIGMAPS, "cm", other, patch_type="apply", field_manager="beta", force=True, **where
    )
    assert forced["data"] == {"k": "w"}


async def test_delete_with_preconditions(admin: client.Client) -> None:
    created = await admin.create(CONFIGMAPS, configmap("a"), tenant="t1")
    meta = created["metadata"]
    with pytest.raises(errors.Conflict, match="Precondition failed"):
        await admin.delete(
            CONFIGMAPS, "a", namespace="default", tenant="t1", preconditions={"uid": "other"}
        )
    with pytest.raises(errors.Conflict):
        await admin.delete(
            CONFIGMAPS,
            "a",
            namespace="default",
            tenant="t1",
            preconditions={"resourceVersion": str(int(meta["resourceVersion"]) - 1)},
        )
    await admin.delete(
        CONFIGMAPS,
        "a",
        namespace="default",
        tenant="t1",
        preconditions={"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]},
    )
    with pytest.raises(errors.NotFound):
        await admin.get(CONFIGMAPS, "a", namespace="default", tenant="t1")


async def test_list_all_pages_through_everything(admin: client.Client) -> None:
    for i in range(7):
        await admin.create(CONFIGMAPS, configmap(f"c{i}", even=str(i % 2 == 0)), tenant="t1")
    await admin.create(CONFIGMAPS, configmap("elsewhere"), tenant="t2")
    whole = await admin.list(CONFIGMAPS, tenant="t1")
    first = await admin.list(CONFIGMAPS, tenant="t1", limit=3)
    assert first["metadata"]["continue"]
    listed = await admin.list_all(CONFIGMAPS, tenant="t1", page_size=3)
    assert [c["metadata"]["name"] for c in listed["items"]] == [f"c{i}" for i in range(7)]
    assert listed["items"] == whole["items"]
    assert listed["kind"] == "ConfigMapList"
    assert listed["metadata"] == {"resourceVersion": whole["metadata"]["resourceVersion"]}
    everywhere = await admin.list_all(CONFIGMAPS, tenant="all", page_size=2)
    assert len(everywhere["items"]) == 8


async def test_delete_collection_and_dry_run(admin: client.Client) -> None:
    for name in ("a", "b"):
        await admin.create(CONFIGMAPS, configmap(name), tenant="t1")
    dry = await admin.create(CONFIGMAPS, configmap("c"), tenant="t1", dry_run=True)
    assert dry["metadata"]["name"] == "c"
    await admin.delete(CONFIGMAPS, "a", namespace="default", tenant="t1", dry_run=True)
    names = [c["metadata"]["name"] for c in (await admin.list(CONFIGMAPS, tenant="t1"))["items"]]
    assert names == ["a", "b"]
    await admin.delete_collection(CONFIGMAPS, namespace="default", tenant="t1")
    assert (await admin.list(CONFIGMAPS, tenant="t1"))["items"] == []


async def test_binding_a_pod(admin: client.Client) -> None:
    await admin.create(NODES, {"metadata": {"name": "n1"}})
    await admin.create(PODS, pod("p"), namespace="default", tenant="t1")
    binding = {"apiVersion": "v1", "kind": "Binding", "target": {"kind": "Node", "name": "n1"}}
    await admin.post_subresource(PODS, "p", "binding", binding, namespace="default", tenant="t1")
    bound = await admin.get(PODS, "p", namespace="default", tenant="t1")
    assert bound["spec"]["nodeName"] == "n1"
    with pytest.raises(errors.Conflict, match="already assigned"):
        await admin.post_subresource(
            PODS, "p", "binding", binding, namespace="default", tenant="t1"
        )


async def test_typed_errors(cluster: Cluster, admin: client.Client, alice: client.Client) -> None:
    with pytest.raises(errors.NotFound, match='configmaps "nope" not found'):
        await admin.get(CONFIGMAPS, "nope", namespace="default", tenant="t1")
    created = await admin.create(CONFIGMAPS, configmap("a"), tenant="t1")
    with pytest.raises(errors.AlreadyExists, match='configmaps "a" already exists'):
        await admin.create(CONFIGMAPS, configmap("a"), tenant="t1")
    await admin.patch(CONFIGMAPS, "a", {"data": {"k": "v"}}, namespace="default", tenant="t1")
    with pytest.raises(errors.Conflict, match="the object has been modified"):
        await admin.replace(CONFIGMAPS, created)
    with pytest.raises(errors.Invalid):
        await admin.create(CONFIGMAPS, configmap("Not_A_Name"), tenant="t1")
    with pytest.raises(errors.NotFound, match='tenants "t9" not found'):
        await admin.create(CONFIGMAPS, configmap("a"), tenant="t9")
    # A user of t1 reaches nothing of t2, nor every tenant at once.
    with pytest.raises(errors.Forbidden, match='in the tenant "t2"'):
        await alice.get(CONFIGMAPS, "a", namespace="default", tenant="t2")
    with pytest.raises(errors.Forbidden):
        await alice.create(CONFIGMAPS, configmap("b"), tenant="t2")
    with pytest.raises(errors.Forbidden):
        await alice.list(CONFIGMAPS, tenant="all")
    async with cluster.client(BOB_TOKEN, tenant="t1") as bob:
        with pytest.raises(errors.Forbidden):
            await bob.list(CONFIGMAPS, namespace="default")
    async with cluster.client("wrong-token") as stranger:
        with pytest.raises(errors.Unauthorized):
            await stranger.list(CONFIGMAPS)


async def test_version_and_raw_requests(alice: client.Client) -> None:
    version = await alice.version()
    assert version["major"] == "1"
    assert await alice.request("GET", "/healthz") == "ok"
    groups = await alice.request("GET", "/apis")
    assert groups["kind"] == "APIGroupList"
    made = await alice.request(
        "POST", "/api/v1/namespaces/default/configmaps", json=configmap("raw")
    )
    assert made["metadata"]["tenant"] == "t1"
    with pytest.raises(errors.NotFound):
        await alice.request("GET", "/api/v1/namespaces/default/configmaps/nope")


async def test_a_user_reads_its_own_tenant(alice: client.Client) -> None:
    assert (await alice.get(TENANTS, "t1"))["metadata"]["name"] == "t1"
    with pytest.raises(errors.Forbidden):
        await alice.get(TENANTS, "t2")
