"""Tenant isolation over HTTP: every verb, both URL forms, lists, watches, `tenants/all`,
cluster-scoped resources, and requests without credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from .conftest import (
    ALICE_TOKEN,
    BOB_TOKEN,
    Server,
    configmap,
    created,
    deployment,
    make_tenant,
    names,
    next_event,
    watching,
)

T2_CONFIGMAPS = "/api/v1/tenants/t2/namespaces/default/configmaps"
SHORT_CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
async def alice(server: Server, admin: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """Alice of t1, with tenants t1 and t2 in place and a configmap `cm` in t2."""
    await make_tenant(admin, "t1")
    await make_tenant(admin, "t2")
    await created(admin, T2_CONFIGMAPS, configmap("cm", owner="bob"))
    async with server.client(ALICE_TOKEN) as client:
        yield client


def assert_forbidden(response: httpx.Response, verb: str, *, resource: str = "configmaps") -> None:
    assert response.status_code == 403, response.text
    status = response.json()
    assert status["kind"] == "Status"
    assert status["reason"] == "Forbidden"
    assert f'User "alice" cannot {verb} resource "{resource}" in API group ""' in status["message"]


async def test_every_verb_on_another_tenant_is_forbidden(
    alice: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    cm = f"{T2_CONFIGMAPS}/cm"
    merge = {"Content-Type": "application/merge-patch+json"}
    attempts = {
        "get": alice.get(cm),
        "list": alice.get(T2_CONFIGMAPS),
        "watch": alice.get(T2_CONFIGMAPS, params={"watch": "1", "timeoutSeconds": "1"}),
        "create": alice.post(T2_CONFIGMAPS, json=configmap("mine")),
        "update": alice.put(cm, json=configmap("cm", owner="alice")),
        "patch": alice.patch(cm, content=b'{"data":{"owner":"alice"}}', headers=merge),
        "delete": alice.delete(cm),
        "deletecollection": alice.delete(T2_CONFIGMAPS),
    }
    for verb, attempt in attempts.items():
        response = await attempt
        assert_forbidden(response, verb)
        assert response.json()["message"].endswith(' in the tenant "t2"')
    watch_prefix = await alice.get("/api/v1/watch/tenants/t2/namespaces/default/configmaps")
    assert_forbidden(watch_prefix, "watch")
    # Nothing changed in t2.
    assert await names(admin, T2_CONFIGMAPS) == ["cm"]
    got = (await admin.get(cm)).json()
    assert got["data"] == {"owner": "bob"}
    assert "deletionTimestamp" not in got["metadata"]
    assert (await admin.get("/api/v1/tenants/t2/namespaces")).json()["items"][0]["metadata"][
        "name"
    ] == "default"


async def test_subresources_of_another_tenant_are_forbidden(
    alice: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    t2 = "/api/v1/tenants/t2/namespaces/default"
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    await created(admin, f"{t2}/pods", pod)
    deploy = "/apis/apps/v1/tenants/t2/namespaces/default/deployments"
    await created(admin, deploy, deployment("d"))
    merge = {"Content-Type": "application/merge-patch+json"}
    for response, verb, resource in (
        (await alice.get(f"{t2}/pods/p/status"), "get", "pods"),
        (await alice.put(f"{t2}/pods/p/status", json=pod), "update", "pods"),
        (
            await alice.patch(
                f"{t2}/pods/p/status", content=b'{"status":{"phase":"Failed"}}', headers=merge
            ),
            "patch",
            "pods",
        ),
        (
            await alice.post(f"{t2}/pods/p/binding", json={"target": {"name": "n1"}}),
            "create",
            "pods",
        ),
        (await alice.get(f"{deploy}/d/scale"), "get", "deployments"),
        (
            await alice.put(f"{deploy}/d/scale", json={"spec": {"replicas": 9}}),
            "update",
            "deployments",
        ),
    ):
        assert response.status_code == 403, response.text
        assert f'cannot {verb} resource "{resource}"' in response.json()["message"]
    got = (await admin.get(f"{t2}/pods/p")).json()
    assert got["status"]["phase"] == "Pending"
    assert "nodeName" not in got["spec"]
    assert (await admin.get(f"{deploy}/d")).json()["spec"]["replicas"] == 1


async def test_forbidden_message_reads_like_kubernetes(alice: httpx.AsyncClient) -> None:
    response = await alice.get(f"{T2_CONFIGMAPS}/cm")
    assert response.json()["message"] == (
        'configmaps "cm" is forbidden: User "alice" cannot get resource "configmaps" in API '
        'group "" in the tenant "t2"'
    )
    listed = await alice.get("/apis/apps/v1/tenants/t2/namespaces/default/deployments")
    assert listed.json()["message"] == (
        'deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API '
        'group "apps" in the tenant "t2"'
    )


async def test_short_paths_reach_only_the_callers_tenant(
    server: Server, alice: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    async with server.client(BOB_TOKEN) as bob:
        # Each sees only its own tenant's objects under the same URL.
        assert await names(bob, SHORT_CONFIGMAPS) == ["cm"]
        assert await names(alice, SHORT_CONFIGMAPS) == []
        assert await names(alice, "/api/v1/configmaps") == []
        assert (await alice.get(f"{SHORT_CONFIGMAPS}/cm")).status_code == 404
        # Writes by name under the short path cannot reach bob's object either.
        merge = {"Content-Type": "application/merge-patch+json"}
        assert (
            await alice.put(f"{SHORT_CONFIGMAPS}/cm", json=configmap("cm", owner="alice"))
        ).status_code == 404
        assert (
            await alice.patch(f"{SHORT_CONFIGMAPS}/cm", content=b'{"data":{}}', headers=merge)
        ).status_code == 404
        assert (await alice.delete(f"{SHORT_CONFIGMAPS}/cm")).status_code == 404
        # A create under the short path lands in alice's tenant, even with bob's name.
        mine = await created(alice, SHORT_CONFIGMAPS, configmap("cm", owner="alice"))
        assert mine["metadata"]["tenant"] == "t1"
        # deletecollection empties alice's namespace only.
        assert (await alice.delete(SHORT_CONFIGMAPS)).status_code == 200
        assert await names(alice, SHORT_CONFIGMAPS) == []
        got = await bob.get(f"{SHORT_CONFIGMAPS}/cm")
        assert got.json()["data"] == {"owner": "bob"}
        # The tenant-prefixed form of one's own tenant works as the short one does.
        assert await names(bob, T2_CONFIGMAPS) == ["cm"]


async def test_watches_see_only_the_callers_tenant(
    server: Server, alice: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    rv = (await admin.get(T2_CONFIGMAPS)).json()["metadata"]["resourceVersion"]
    async with watching(
        alice, "/api/v1/configmaps", watch="1", resourceVersion=rv, timeoutSeconds="5"
    ) as events:
        assert await next_event(events) == {"status": 200}
        await created(admin, T2_CONFIGMAPS, configmap("theirs"))
        await created(admin, "/api/v1/tenants/t1/namespaces/default/configmaps", configmap("own"))
        event = await next_event(events)
        assert event["type"] == "ADDED"
        assert event["object"]["metadata"]["name"] == "own"
        assert event["object"]["metadata"]["tenant"] == "t1"


async def test_all_tenants_is_for_system_users(
    alice: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await created(admin, "/api/v1/tenants/t1/namespaces/default/configmaps", configmap("a"))
    for params in ({}, {"watch": "1", "timeoutSeconds": "1"}):
        refused = await alice.get("/api/v1/tenants/all/configmaps", params=params)
        assert refused.status_code == 403
        assert refused.json()["message"].endswith(' in the tenant "all"')
    listed = await admin.get("/api/v1/tenants/all/configmaps")
    assert sorted(
        (c["metadata"]["tenant"], c["metadata"]["name"]) for c in listed.json()["items"]
    ) == [("t1", "a"), ("t2", "cm")]


async def test_all_tenants_with_a_namespace_lists_that_namespace(
    admin: httpx.AsyncClient,
) -> None:
    await make_tenant(admin, "t1", namespaces=("default", "dev"))
    await created(admin, "/api/v1/tenants/t1/namespaces/default/configmaps", configmap("a"))
    await created(admin, "/api/v1/tenants/t1/namespaces/dev/configmaps", configmap("b"))
    listed = await names(admin, "/api/v1/tenants/all/namespaces/dev/configmaps")
    assert listed == ["b"]
    deleted = await admin.delete("/api/v1/tenants/all/namespaces/dev/configmaps")
    assert [c["metadata"]["name"] for c in deleted.json()["items"]] == ["b"]
    assert await names(admin, "/api/v1/tenants/all/configmaps") == ["a"]


async def test_all_tenants_with_a_namespace_watches_that_namespace(
    admin: httpx.AsyncClient,
) -> None:
    await make_tenant(admin, "t1", namespaces=("default", "dev"))
    rv = (await admin.get("/api/v1/tenants/all/configmaps")).json()["metadata"]["resourceVersion"]
    async with watching(
        admin,
        "/api/v1/watch/tenants/all/namespaces/dev/configmaps",
        resourceVersion=rv,
        timeoutSeconds="5",
    ) as events:
        assert await next_event(events) == {"status": 200}
        await created(admin, "/api/v1/tenants/t1/namespaces/default/configmaps", configmap("a"))
        await created(admin, "/api/v1/tenants/t1/namespaces/dev/configmaps", configmap("b"))
        event = await next_event(events)
        assert event["object"]["metadata"]["name"] == "b"


async def test_tenant_users_may_not_touch_cluster_resources(
    alice: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await created(admin, "/api/v1/nodes", {"metadata": {"name": "n1"}})
    for response, verb, resource in [
        (await alice.get("/api/v1/nodes"), "list", "nodes"),
        (await alice.get("/api/v1/nodes/n1"), "get", "nodes"),
        (await alice.post("/api/v1/nodes", json={"metadata": {"name": "n2"}}), "create", "nodes"),
        (await alice.delete("/api/v1/nodes/n1"), "delete", "nodes"),
        (await alice.get("/api/v1/tenants"), "list", "tenants"),
        (await alice.get("/api/v1/tenants/t2"), "get", "tenants"),
        (await alice.delete("/api/v1/tenants/t1"), "delete", "tenants"),
        (
            await alice.post("/api/v1/tenants", json={"metadata": {"name": "t3"}}),
            "create",
            "tenants",
        ),
    ]:
        assert_forbidden(response, verb, resource=resource)
    # Her own tenant she may read.
    own = await alice.get("/api/v1/tenants/t1")
    assert own.status_code == 200
    assert own.json()["metadata"]["name"] == "t1"
    assert await names(admin, "/api/v1/nodes") == ["n1"]
    assert sorted(await names(admin, "/api/v1/tenants")) == ["system", "t1", "t2"]


async def test_system_users_go_everywhere(
    alice: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    body = await created(admin, "/api/v1/tenants/t1/namespaces/default/configmaps", configmap("x"))
    assert body["metadata"]["tenant"] == "t1"
    assert await names(alice, SHORT_CONFIGMAPS) == ["x"]
    merge = {"Content-Type": "application/merge-patch+json"}
    patched = await admin.patch(
        f"{T2_CONFIGMAPS}/cm", content=b'{"data":{"owner":"admin"}}', headers=merge
    )
    assert patched.json()["data"] == {"owner": "admin"}
    assert (await admin.delete(f"{T2_CONFIGMAPS}/cm")).status_code == 200


async def test_no_credentials_is_unauthorized(server: Server) -> None:
    for token in (None, "wrong-token"):
        async with server.client(token) as anonymous:
            for url in ("/api", "/apis", "/api/v1", "/api/v1/namespaces/default/pods"):
                response = await anonymous.get(url)
                assert response.status_code == 401, url
                status = response.json()
                assert status["reason"] == "Unauthorized"
                assert status["code"] == 401
            refused = await anonymous.post(SHORT_CONFIGMAPS, json=configmap("x"))
            assert refused.status_code == 401
    async with server.client() as admin:
        assert await names(admin, SHORT_CONFIGMAPS) == []
