"""Create, read, update over HTTP: Kubernetes' metadata fields, Arktos's tenant and hashKey,
both URL forms, and the objects the cluster protects."""

from __future__ import annotations

import datetime
import uuid

import httpx

from arktos_lite import api

from .conftest import ALICE_TOKEN, Server, configmap, created, deployment, make_tenant, pod

PODS = "/api/v1/namespaces/default/pods"
SYSTEM_PODS = "/api/v1/tenants/system/namespaces/default/pods"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


async def test_create_fills_in_kubernetes_and_arktos_metadata(admin: httpx.AsyncClient) -> None:
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    body = await created(admin, PODS, pod("web"))
    meta = body["metadata"]
    assert uuid.UUID(meta["uid"])
    stamp = datetime.datetime.strptime(meta["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    assert before <= stamp.replace(tzinfo=datetime.UTC) <= datetime.datetime.now(datetime.UTC)
    assert int(meta["resourceVersion"]) > 0
    assert meta["namespace"] == "default"
    assert meta["tenant"] == "system"
    assert meta["hashKey"] == api.hash_key(meta["uid"])
    assert 0 <= meta["hashKey"] <= api.MAX_HASH_KEY
    # Pods have no generation; only Deployments and ReplicaSets count it.
    assert "generation" not in meta
    got = await admin.get(f"{PODS}/web")
    assert got.json() == body


async def test_both_url_forms_name_the_same_object(admin: httpx.AsyncClient) -> None:
    short = await created(admin, PODS, pod("short"))
    prefixed = await created(admin, SYSTEM_PODS, pod("prefixed"))
    assert (await admin.get(f"{SYSTEM_PODS}/short")).json()["metadata"]["uid"] == short["metadata"][
        "uid"
    ]
    assert (await admin.get(f"{PODS}/prefixed")).json()["metadata"]["uid"] == prefixed["metadata"][
        "uid"
    ]
    for url in (PODS, SYSTEM_PODS):
        listed = await admin.get(url)
        assert sorted(p["metadata"]["name"] for p in listed.json()["items"]) == [
            "prefixed",
            "short",
        ]


async def test_a_tenant_users_short_path_is_its_own_tenant(server: Server) -> None:
    async with server.client() as admin, server.client(ALICE_TOKEN) as alice:
        await make_tenant(admin, "t1")
        body = await created(alice, PODS, pod("web"))
        assert body["metadata"]["tenant"] == "t1"
        got = await admin.get("/api/v1/tenants/t1/namespaces/default/pods/web")
        assert got.status_code == 200
        assert got.json()["metadata"]["uid"] == body["metadata"]["uid"]
        # The system tenant's default namespace has no such pod.
        assert (await admin.get(f"{PODS}/web")).status_code == 404
        ns = await created(alice, "/api/v1/namespaces", {"metadata": {"name": "dev"}})
        assert ns["metadata"]["tenant"] == "t1"
        assert (await admin.get("/api/v1/tenants/t1/namespaces/dev")).status_code == 200
        assert (await admin.get("/api/v1/namespaces/dev")).status_code == 404


async def test_every_scope_in_both_forms(admin: httpx.AsyncClient) -> None:
    # Tenant-scoped: namespaces.
    ns = await created(admin, "/api/v1/namespaces", {"metadata": {"name": "team"}})
    assert ns["metadata"]["tenant"] == "system"
    assert ns["status"] == {"phase": "Active"}
    assert (await admin.get("/api/v1/tenants/system/namespaces/team")).status_code == 200
    # Cluster-scoped: nodes carry no tenant and no namespace.
    node = await created(admin, "/api/v1/nodes", {"metadata": {"name": "n1"}})
    assert "tenant" not in node["metadata"]
    assert "namespace" not in node["metadata"]
    assert node["metadata"]["hashKey"] == api.hash_key(node["metadata"]["uid"])
    # Other groups.
    lease = await created(
        admin,
        "/apis/coordination.k8s.io/v1/tenants/system/namespaces/team/leases",
        {"metadata": {"name": "l1"}, "spec": {"holderIdentity": "me"}},
    )
    assert lease["apiVersion"] == "coordination.k8s.io/v1"
    assert lease["kind"] == "Lease"
    got = await admin.get("/apis/coordination.k8s.io/v1/namespaces/team/leases/l1")
    assert got.json()["spec"]["holderIdentity"] == "me"


async def test_a_duplicate_name_is_a_conflict(admin: httpx.AsyncClient) -> None:
    await created(admin, PODS, pod("web"))
    again = await admin.post(PODS, json=pod("web"))
    assert again.status_code == 409
    status = again.json()
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'pods "web" already exists'
    assert status["details"] == {"kind": "pods", "name": "web"}


async def test_a_missing_object_is_not_found(admin: httpx.AsyncClient) -> None:
    missing = await admin.get(f"{DEPLOYMENTS}/nope")
    assert missing.status_code == 404
    status = missing.json()
    assert status["kind"] == "Status"
    assert status["status"] == "Failure"
    assert status["message"] == 'deployments.apps "nope" not found'
    assert status["details"] == {"kind": "deployments", "name": "nope", "group": "apps"}


async def test_update_keeps_identity_and_bumps_the_resource_version(
    admin: httpx.AsyncClient,
) -> None:
    original = await created(admin, "/api/v1/namespaces/default/configmaps", configmap("c", a="1"))
    meta = original["metadata"]
    changed = configmap("c", a="2")
    changed["metadata"].update(
        uid="forged",
        creationTimestamp="2000-01-01T00:00:00Z",
        hashKey=7,
        tenant="system",
        resourceVersion=meta["resourceVersion"],
    )
    updated = await admin.put("/api/v1/namespaces/default/configmaps/c", json=changed)
    assert updated.status_code == 200, updated.text
    new_meta = updated.json()["metadata"]
    assert updated.json()["data"] == {"a": "2"}
    for field in ("uid", "creationTimestamp", "hashKey", "tenant", "namespace"):
        assert new_meta[field] == meta[field]
    assert int(new_meta["resourceVersion"]) > int(meta["resourceVersion"])
    got = await admin.get("/api/v1/tenants/system/namespaces/default/configmaps/c")
    assert got.json() == updated.json()


async def test_update_of_a_missing_object_is_not_found(admin: httpx.AsyncClient) -> None:
    missing = await admin.put("/api/v1/namespaces/default/configmaps/c", json=configmap("c"))
    assert missing.status_code == 404
    assert missing.json()["message"] == 'configmaps "c" not found'


async def test_generation_counts_spec_changes_of_deployments(admin: httpx.AsyncClient) -> None:
    body = await created(admin, DEPLOYMENTS, deployment("web"))
    assert body["metadata"]["generation"] == 1
    body["metadata"]["labels"] = {"tier": "front"}
    relabelled = (await admin.put(f"{DEPLOYMENTS}/web", json=body)).json()
    assert relabelled["metadata"]["generation"] == 1
    relabelled["spec"]["replicas"] = 3
    scaled = (await admin.put(f"{DEPLOYMENTS}/web", json=relabelled)).json()
    assert scaled["metadata"]["generation"] == 2
    scaled["status"] = {"replicas": 3, "observedGeneration": 2}
    status = await admin.put(f"{DEPLOYMENTS}/web/status", json=scaled)
    assert status.json()["metadata"]["generation"] == 2
    # A configmap's data is not a spec: no generation at all.
    cm = await created(admin, "/api/v1/namespaces/default/configmaps", configmap("c", a="1"))
    cm["data"] = {"a": "2"}
    assert (
        "generation"
        not in (await admin.put("/api/v1/namespaces/default/configmaps/c", json=cm)).json()[
            "metadata"
        ]
    )


async def test_owner_references_carry_the_owners_hash_key(admin: httpx.AsyncClient) -> None:
    rs = await created(
        admin,
        "/apis/apps/v1/namespaces/default/replicasets",
        {
            "metadata": {"name": "rs"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                },
            },
        },
    )
    assert rs["metadata"]["generation"] == 1
    owned = pod("rs-abcde", app="web")
    owned["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "rs",
            "uid": rs["metadata"]["uid"],
            "controller": True,
            "hashKey": 1,
        }
    ]
    body = await created(admin, PODS, owned)
    [ref] = body["metadata"]["ownerReferences"]
    assert ref["hashKey"] == rs["metadata"]["hashKey"]
    # Kept on update, whatever the client sends.
    body["metadata"]["ownerReferences"][0]["hashKey"] = 5
    updated = (await admin.put(f"{PODS}/rs-abcde", json=body)).json()
    assert updated["metadata"]["ownerReferences"][0]["hashKey"] == rs["metadata"]["hashKey"]


async def test_generate_name_gives_unique_names(admin: httpx.AsyncClient) -> None:
    template = pod("")
    template["metadata"] = {"generateName": "web-"}
    first = await created(admin, PODS, template)
    second = await created(admin, PODS, template)
    for body in (first, second):
        name = body["metadata"]["name"]
        assert name.startswith("web-")
        assert len(name) == len("web-") + 5
        assert body["metadata"]["generateName"] == "web-"
    assert first["metadata"]["name"] != second["metadata"]["name"]
    listed = await admin.get(PODS)
    assert len(listed.json()["items"]) == 2


async def test_creating_in_a_missing_tenant_is_not_found(admin: httpx.AsyncClient) -> None:
    missing = await admin.post("/api/v1/tenants/x/namespaces/default/pods", json=pod("web"))
    assert missing.status_code == 404
    assert missing.json()["message"] == 'tenants "x" not found'
    assert missing.json()["reason"] == "NotFound"
    ns = await admin.post("/api/v1/tenants/x/namespaces", json={"metadata": {"name": "n"}})
    assert ns.status_code == 404
    assert ns.json()["message"] == 'tenants "x" not found'
    listed = await admin.get("/api/v1/tenants/all/pods")
    assert listed.json()["items"] == []


async def test_creating_in_a_missing_namespace_is_not_found(admin: httpx.AsyncClient) -> None:
    missing = await admin.post("/api/v1/namespaces/nope/pods", json=pod("web"))
    assert missing.status_code == 404
    assert missing.json()["message"] == 'namespaces "nope" not found'


async def test_the_system_tenant_cannot_be_deleted(admin: httpx.AsyncClient) -> None:
    refused = await admin.delete("/api/v1/tenants/system")
    assert refused.status_code == 403
    status = refused.json()
    assert status["reason"] == "Forbidden"
    assert status["message"] == 'tenants "system" is forbidden: this tenant may not be deleted'
    tenant = (await admin.get("/api/v1/tenants/system")).json()
    assert "deletionTimestamp" not in tenant["metadata"]
    assert tenant["status"]["phase"] == "Active"


async def test_default_namespaces_cannot_be_deleted(admin: httpx.AsyncClient) -> None:
    await make_tenant(admin, "t1", namespaces=("default", "kube-system", "kube-public"))
    for url in ("/api/v1/namespaces", "/api/v1/tenants/t1/namespaces"):
        for name in ("default", "kube-system", "kube-public"):
            refused = await admin.delete(f"{url}/{name}")
            assert refused.status_code == 403, refused.text
            assert refused.json()["message"] == (
                f'namespaces "{name}" is forbidden: this namespace may not be deleted'
            )
    for url in ("/api/v1/namespaces", "/api/v1/tenants/t1/namespaces"):
        got = await admin.get(f"{url}/default")
        assert "deletionTimestamp" not in got.json()["metadata"]


async def test_other_namespaces_terminate_on_delete(admin: httpx.AsyncClient) -> None:
    await created(admin, "/api/v1/namespaces", {"metadata": {"name": "team"}})
    deleted = await admin.delete("/api/v1/namespaces/team")
    # 200 with the namespace, Terminating (kube-apiserver's answer).
    assert deleted.status_code == 200, deleted.text
    body = deleted.json()
    assert body["status"]["phase"] == "Terminating"
    assert body["metadata"]["deletionTimestamp"]
    assert body["spec"]["finalizers"] == ["kubernetes"]
    # Nothing new may be created in it.
    refused = await admin.post("/api/v1/namespaces/team/configmaps", json=configmap("c"))
    assert refused.status_code == 403
    assert "because it is being terminated" in refused.json()["message"]
