"""Deletion over HTTP: finalizers and deletionTimestamp, graceful pod deletion, propagation
policies recorded for the garbage collector, preconditions, deletecollection, dry run."""

from __future__ import annotations

import datetime

import httpx

from .conftest import configmap, created, make_tenant, names, pod

PODS = "/api/v1/namespaces/default/pods"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}


def stamp(value: str) -> datetime.datetime:
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def seconds_from_now(value: str) -> float:
    return (stamp(value) - datetime.datetime.now(datetime.UTC)).total_seconds()


async def bound_pod(admin: httpx.AsyncClient, name: str) -> None:
    body = pod(name)
    body["spec"]["nodeName"] = "n1"
    await created(admin, PODS, body)


async def test_delete_without_finalizers_is_immediate(admin: httpx.AsyncClient) -> None:
    body = await created(admin, CONFIGMAPS, configmap("c"))
    deleted = await admin.delete(f"{CONFIGMAPS}/c")
    # Gone at once: a Status naming it (details.kind is the resource, as kube-apiserver has it).
    assert deleted.status_code == 200
    assert deleted.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "c", "kind": "configmaps", "uid": body["metadata"]["uid"]},
    }
    assert (await admin.get(f"{CONFIGMAPS}/c")).status_code == 404
    again = await admin.delete(f"{CONFIGMAPS}/c")
    assert again.status_code == 404
    assert again.json()["message"] == 'configmaps "c" not found'


async def test_finalizers_hold_the_object_until_removed(admin: httpx.AsyncClient) -> None:
    body = configmap("c")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await created(admin, CONFIGMAPS, body)
    marked = await admin.delete(f"{CONFIGMAPS}/c")
    # Still there: 200 with the object, as kube-apiserver answers.
    assert marked.status_code == 200
    meta = marked.json()["metadata"]
    assert abs(seconds_from_now(meta["deletionTimestamp"])) < 5
    assert meta["deletionGracePeriodSeconds"] == 0
    assert meta["finalizers"] == ["example.com/hold"]
    got = (await admin.get(f"{CONFIGMAPS}/c")).json()
    assert got["metadata"]["deletionTimestamp"] == meta["deletionTimestamp"]
    # Deleting again changes nothing.
    again = await admin.delete(f"{CONFIGMAPS}/c")
    assert again.status_code == 200
    assert again.json()["metadata"]["resourceVersion"] == got["metadata"]["resourceVersion"]
    # No new finalizers while terminating.
    refused = await admin.patch(
        f"{CONFIGMAPS}/c",
        content=b'{"metadata":{"finalizers":["example.com/hold","example.com/more"]}}',
        headers=MERGE,
    )
    assert refused.status_code == 422
    assert refused.json()["message"] == (
        'ConfigMap "c" is invalid: metadata.finalizers: Forbidden: no new finalizers can be '
        'added if the object is being deleted, found new finalizers ["example.com/more"]'
    )
    # Other changes are still possible; removing the last finalizer deletes it.
    relabelled = await admin.patch(
        f"{CONFIGMAPS}/c", content=b'{"metadata":{"labels":{"a":"b"}}}', headers=MERGE
    )
    assert relabelled.status_code == 200
    released = await admin.patch(
        f"{CONFIGMAPS}/c", content=b'{"metadata":{"finalizers":null}}', headers=MERGE
    )
    assert released.status_code == 200, released.text
    assert (await admin.get(f"{CONFIGMAPS}/c")).status_code == 404


async def test_a_bound_pod_is_deleted_gracefully(admin: httpx.AsyncClient) -> None:
    await bound_pod(admin, "web")
    marked = await admin.delete(f"{PODS}/web")
    assert marked.status_code == 200, marked.text
    meta = marked.json()["metadata"]
    assert meta["deletionGracePeriodSeconds"] == 30
    assert 25 < seconds_from_now(meta["deletionTimestamp"]) <= 30
    assert (await admin.get(f"{PODS}/web")).status_code == 200
    # A shorter grace period shortens it, a longer one does not extend it.
    shorter = await admin.delete(f"{PODS}/web", params={"gracePeriodSeconds": "10"})
    assert shorter.json()["metadata"]["deletionGracePeriodSeconds"] == 10
    longer = await admin.delete(f"{PODS}/web", params={"gracePeriodSeconds": "60"})
    assert longer.json()["metadata"]["deletionGracePeriodSeconds"] == 10
    # Zero (the node agent's answer, or --force) deletes it for good.
    gone = await admin.delete(f"{PODS}/web", params={"gracePeriodSeconds": "0"})
    assert gone.status_code == 200
    # A pod delete answers with the pod even when it is gone (ReturnDeletedObject).
    assert (gone.json()["kind"], gone.json()["metadata"]["name"]) == ("Pod", "web")
    assert (await admin.get(f"{PODS}/web")).status_code == 404


async def test_grace_period_in_the_body_and_from_the_spec(admin: httpx.AsyncClient) -> None:
    body = pod("web")
    body["spec"].update(nodeName="n1", terminationGracePeriodSeconds=12)
    await created(admin, PODS, body)
    marked = await admin.delete(f"{PODS}/web")
    assert marked.json()["metadata"]["deletionGracePeriodSeconds"] == 12
    await bound_pod(admin, "other")
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 3}
    marked = await admin.request("DELETE", f"{PODS}/other", json=options)
    assert marked.json()["metadata"]["deletionGracePeriodSeconds"] == 3
    now = await admin.request("DELETE", f"{PODS}/other", json={**options, "gracePeriodSeconds": 0})
    assert now.status_code == 200
    assert await names(admin, PODS) == ["web"]


async def test_unbound_and_finished_pods_go_at_once(admin: httpx.AsyncClient) -> None:
    await created(admin, PODS, pod("pending"))
    assert (await admin.delete(f"{PODS}/pending")).status_code == 200
    await bound_pod(admin, "done")
    body = (await admin.get(f"{PODS}/done")).json()
    body["status"]["phase"] = "Succeeded"
    await admin.put(f"{PODS}/done/status", json=body)
    assert (await admin.delete(f"{PODS}/done")).status_code == 200
    assert await names(admin, PODS) == []


async def test_propagation_policy_is_recorded_as_finalizers(admin: httpx.AsyncClient) -> None:
    for name, policy, finalizer in (
        ("fg", "Foreground", "foregroundDeletion"),
        ("orphan", "Orphan", "orphan"),
    ):
        await created(admin, CONFIGMAPS, configmap(name))
        marked = await admin.request(
            "DELETE", f"{CONFIGMAPS}/{name}", json={"propagationPolicy": policy}
        )
        assert marked.status_code == 200, marked.text
        meta = (await admin.get(f"{CONFIGMAPS}/{name}")).json()["metadata"]
        assert meta["finalizers"] == [finalizer]
        assert meta["deletionTimestamp"]
    # As a query parameter, and the old orphanDependents flag.
    await created(admin, CONFIGMAPS, configmap("q"))
    await admin.delete(f"{CONFIGMAPS}/q", params={"propagationPolicy": "Foreground"})
    assert (await admin.get(f"{CONFIGMAPS}/q")).json()["metadata"]["finalizers"] == [
        "foregroundDeletion"
    ]
    await created(admin, CONFIGMAPS, configmap("old"))
    await admin.delete(f"{CONFIGMAPS}/old", params={"orphanDependents": "true"})
    assert (await admin.get(f"{CONFIGMAPS}/old")).json()["metadata"]["finalizers"] == ["orphan"]
    # Background needs nothing: the collector finds the orphans after the owner is gone.
    await created(admin, CONFIGMAPS, configmap("bg"))
    gone = await admin.request(
        "DELETE", f"{CONFIGMAPS}/bg", json={"propagationPolicy": "Background"}
    )
    assert gone.status_code == 200
    assert (await admin.get(f"{CONFIGMAPS}/bg")).status_code == 404


async def test_a_later_delete_changes_the_collectors_finalizers(
    admin: httpx.AsyncClient,
) -> None:
    # As kube-apiserver: a delete's policy replaces `orphan`/`foregroundDeletion`, and the
    # object goes once nothing else holds it.
    body = configmap("held")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await created(admin, CONFIGMAPS, body)
    await admin.delete(f"{CONFIGMAPS}/held", params={"propagationPolicy": "Orphan"})
    await admin.delete(f"{CONFIGMAPS}/held", params={"propagationPolicy": "Foreground"})
    meta = (await admin.get(f"{CONFIGMAPS}/held")).json()["metadata"]
    assert meta["finalizers"] == ["example.com/hold", "foregroundDeletion"]
    await admin.delete(f"{CONFIGMAPS}/held", params={"orphanDependents": "false"})
    meta = (await admin.get(f"{CONFIGMAPS}/held")).json()["metadata"]
    assert meta["finalizers"] == ["example.com/hold"]
    # A delete without options keeps what the object has.
    await created(admin, CONFIGMAPS, configmap("kept"))
    await admin.delete(f"{CONFIGMAPS}/kept", params={"propagationPolicy": "Orphan"})
    assert (await admin.delete(f"{CONFIGMAPS}/kept")).status_code == 200
    meta = (await admin.get(f"{CONFIGMAPS}/kept")).json()["metadata"]
    assert meta["finalizers"] == ["orphan"]
    # Background takes `orphan` away; nothing is left to wait for.
    gone = await admin.delete(f"{CONFIGMAPS}/kept", params={"propagationPolicy": "Background"})
    assert gone.status_code == 200, gone.text
    assert (await admin.get(f"{CONFIGMAPS}/kept")).status_code == 404


async def test_bad_delete_options_are_invalid(admin: httpx.AsyncClient) -> None:
    await created(admin, CONFIGMAPS, configmap("c"))
    bad = await admin.delete(f"{CONFIGMAPS}/c", params={"propagationPolicy": "Later"})
    assert bad.status_code == 422, bad.text
    status = bad.json()
    assert status["reason"] == "Invalid"
    assert status["details"]["kind"] == "DeleteOptions"
    assert status["details"]["group"] == "meta.k8s.io"
    assert 'propagationPolicy: Unsupported value: "Later"' in status["message"]
    both = await admin.request(
        "DELETE",
        f"{CONFIGMAPS}/c",
        json={"propagationPolicy": "Orphan", "orphanDependents": True},
    )
    assert both.status_code == 422, both.text
    assert "orphanDependents and deletionPropagation cannot be both set" in both.json()["message"]
    assert "deletionTimestamp" not in (await admin.get(f"{CONFIGMAPS}/c")).json()["metadata"]


async def test_delete_preconditions(admin: httpx.AsyncClient) -> None:
    body = await created(admin, CONFIGMAPS, configmap("c"))
    for preconditions in ({"uid": "other"}, {"resourceVersion": "1"}):
        refused = await admin.request(
            "DELETE", f"{CONFIGMAPS}/c", json={"preconditions": preconditions}
        )
        assert refused.status_code == 409, preconditions
        assert refused.json()["reason"] == "Conflict"
        assert "Precondition failed" in refused.json()["message"]
    assert (await admin.get(f"{CONFIGMAPS}/c")).status_code == 200
    meta = body["metadata"]
    exact = {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]}
    ok = await admin.request("DELETE", f"{CONFIGMAPS}/c", json={"preconditions": exact})
    assert ok.status_code == 200


async def test_delete_collection(admin: httpx.AsyncClient) -> None:
    await created(admin, "/api/v1/namespaces", {"metadata": {"name": "other"}})
    for name, app in (("a", "web"), ("b", "web"), ("c", "db")):
        body = configmap(name)
        body["metadata"]["labels"] = {"app": app}
        await created(admin, CONFIGMAPS, body)
    await created(admin, "/api/v1/namespaces/other/configmaps", configmap("a"))
    deleted = await admin.delete(CONFIGMAPS, params={"labelSelector": "app=web"})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["kind"] == "ConfigMapList"
    assert [c["metadata"]["name"] for c in deleted.json()["items"]] == ["a", "b"]
    assert await names(admin, CONFIGMAPS) == ["c"]
    everything = await admin.delete(CONFIGMAPS)
    assert [c["metadata"]["name"] for c in everything.json()["items"]] == ["c"]
    assert await names(admin, CONFIGMAPS) == []
    assert await names(admin, "/api/v1/namespaces/other/configmaps") == ["a"]


async def test_delete_collection_of_pods_is_graceful(admin: httpx.AsyncClient) -> None:
    await bound_pod(admin, "bound")
    await created(admin, PODS, pod("pending"))
    deleted = await admin.delete(PODS)
    assert deleted.status_code == 200
    # The answer lists them as they were before (kube-apiserver's store does the same).
    items = deleted.json()["items"]
    assert [p["metadata"]["name"] for p in items] == ["bound", "pending"]
    assert all("deletionTimestamp" not in p["metadata"] for p in items)
    assert await names(admin, PODS) == ["bound"]
    assert (await admin.get(f"{PODS}/bound")).json()["metadata"]["deletionTimestamp"]


async def test_dry_run_delete_keeps_the_object(admin: httpx.AsyncClient) -> None:
    await created(admin, CONFIGMAPS, configmap("c"))
    await bound_pod(admin, "web")
    kinds = {f"{CONFIGMAPS}/c": "Status", f"{PODS}/web": "Pod", CONFIGMAPS: "ConfigMapList"}
    for url, kind in kinds.items():
        answer = await admin.delete(url, params={"dryRun": "All"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["kind"] == kind
    assert await names(admin, CONFIGMAPS) == ["c"]
    assert "deletionTimestamp" not in (await admin.get(f"{PODS}/web")).json()["metadata"]


async def test_a_deleted_tenant_terminates_until_finalized(admin: httpx.AsyncClient) -> None:
    await make_tenant(admin, "t1", namespaces=("default", "kube-system", "kube-public"))
    marked = await admin.delete("/api/v1/tenants/t1")
    assert marked.status_code == 200, marked.text
    tenant = marked.json()
    assert tenant["status"]["phase"] == "Terminating"
    assert tenant["spec"]["finalizers"] == ["arktos"]
    assert tenant["metadata"]["deletionTimestamp"]
    # Nothing new in a terminating tenant; its default namespaces may go now.
    refused = await admin.post(
        "/api/v1/tenants/t1/namespaces/default/configmaps", json=configmap("c")
    )
    assert refused.status_code == 403
    assert refused.json()["message"].endswith(
        "unable to create new content in tenant t1 because it is being terminated"
    )
    ns = await admin.delete("/api/v1/tenants/t1/namespaces/default")
    assert ns.status_code == 200
    assert ns.json()["status"]["phase"] == "Terminating"
    # The tenant controller's last step: clear the finalizer, and the tenant is gone.
    tenant["spec"]["finalizers"] = []
    finalized = await admin.put("/api/v1/tenants/t1/finalize", json=tenant)
    assert finalized.status_code == 200, finalized.text
    assert (await admin.get("/api/v1/tenants/t1")).status_code == 404


async def test_force_deleting_a_pod_with_finalizers_ends_its_grace_period(
    admin: httpx.AsyncClient,
) -> None:
    body = pod("web")
    body["spec"]["nodeName"] = "n1"
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await created(admin, PODS, body)
    graceful = (await admin.delete(f"{PODS}/web")).json()["metadata"]
    assert graceful["deletionGracePeriodSeconds"] == 30
    forced = await admin.delete(f"{PODS}/web", params={"gracePeriodSeconds": "0"})
    assert forced.status_code == 200
    meta = forced.json()["metadata"]
    assert meta["deletionGracePeriodSeconds"] == 0
    assert abs(seconds_from_now(meta["deletionTimestamp"])) < 5
    assert meta["finalizers"] == ["example.com/hold"]


async def test_only_an_explicit_orphan_dependents_false_is_accepted_with_202(
    admin: httpx.AsyncClient,
) -> None:
    # kube-apiserver answers 202 Accepted when the object stays and the (deprecated)
    # orphanDependents was false; not when it is gone at once.
    body = configmap("held")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await created(admin, CONFIGMAPS, body)
    await created(admin, CONFIGMAPS, configmap("free"))
    await bound_pod(admin, "web")
    cascading = {"orphanDependents": False}
    held = await admin.request("DELETE", f"{CONFIGMAPS}/held", json=cascading)
    assert held.status_code == 202, held.text
    assert held.json()["metadata"]["deletionTimestamp"]
    free = await admin.request("DELETE", f"{CONFIGMAPS}/free", json=cascading)
    assert free.status_code == 200, free.text
    assert free.json()["kind"] == "Status"
    waiting = await admin.delete(f"{PODS}/web", params={"orphanDependents": "false"})
    assert waiting.status_code == 202, waiting.text
    assert waiting.json()["metadata"]["deletionGracePeriodSeconds"] == 30
