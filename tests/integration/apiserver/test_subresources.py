"""Subresources over HTTP: status and the main resource each touch only their part, scale
reads and writes replicas, and pods/binding assigns a node once."""

from __future__ import annotations

import httpx

from .conftest import created, deployment, pod

PODS = "/api/v1/namespaces/default/pods"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
MERGE = {"Content-Type": "application/merge-patch+json"}


async def test_status_updates_touch_only_status(admin: httpx.AsyncClient) -> None:
    body = await created(admin, PODS, pod("web", app="web"))
    body["spec"]["containers"][0]["image"] = "nginx"
    body["metadata"]["labels"] = {"app": "changed"}
    body["status"] = {"phase": "Running", "podIP": "10.0.0.5"}
    updated = await admin.put(f"{PODS}/web/status", json=body)
    assert updated.status_code == 200, updated.text
    got = (await admin.get(f"{PODS}/web")).json()
    assert got == updated.json()
    assert got["status"] == {"phase": "Running", "podIP": "10.0.0.5"}
    assert got["spec"]["containers"][0]["image"] == "busybox"
    assert got["metadata"]["labels"] == {"app": "web"}
    patched = await admin.patch(
        f"{PODS}/web/status",
        content=b'{"status":{"phase":"Succeeded"},"metadata":{"labels":{"x":"y"}}}',
        headers=MERGE,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == {"phase": "Succeeded", "podIP": "10.0.0.5"}
    assert patched.json()["metadata"]["labels"] == {"app": "web"}
    assert (await admin.get(f"{PODS}/web/status")).json()["status"]["phase"] == "Succeeded"


async def test_main_updates_leave_status_alone(admin: httpx.AsyncClient) -> None:
    body = await created(admin, PODS, pod("web"))
    assert body["status"]["phase"] == "Pending"
    body["metadata"]["labels"] = {"app": "web"}
    body["status"] = {"phase": "Running"}
    updated = (await admin.put(f"{PODS}/web", json=body)).json()
    assert updated["metadata"]["labels"] == {"app": "web"}
    assert updated["status"]["phase"] == "Pending"
    patched = await admin.patch(
        f"{PODS}/web", content=b'{"status":{"phase":"Failed"}}', headers=MERGE
    )
    assert patched.json()["status"]["phase"] == "Pending"
    # A create's status is the server's too.
    sneaky = pod("sneaky")
    sneaky["status"] = {"phase": "Running"}
    assert (await created(admin, PODS, sneaky))["status"]["phase"] == "Pending"


async def test_scale_reads_and_writes_replicas(admin: httpx.AsyncClient) -> None:
    body = await created(admin, DEPLOYMENTS, deployment("web", replicas=2))
    scale = await admin.get(f"{DEPLOYMENTS}/web/scale")
    assert scale.status_code == 200
    assert scale.json() == {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "tenant": "system",
            "uid": body["metadata"]["uid"],
            "resourceVersion": body["metadata"]["resourceVersion"],
            "creationTimestamp": body["metadata"]["creationTimestamp"],
        },
        "spec": {"replicas": 2},
        "status": {"replicas": 0, "selector": "app=web"},
    }
    put = scale.json()
    put["spec"]["replicas"] = 5
    scaled = await admin.put(f"{DEPLOYMENTS}/web/scale", json=put)
    assert scaled.status_code == 200, scaled.text
    assert scaled.json()["spec"]["replicas"] == 5
    patched = await admin.patch(
        f"{DEPLOYMENTS}/web/scale", content=b'{"spec":{"replicas":7}}', headers=MERGE
    )
    assert patched.json()["spec"]["replicas"] == 7
    got = (await admin.get(f"{DEPLOYMENTS}/web")).json()
    assert got["spec"]["replicas"] == 7
    assert got["metadata"]["generation"] == 3
    # Only replicas: the template is untouched.
    assert got["spec"]["template"] == body["spec"]["template"]


async def test_scale_refuses_bad_replicas_and_stale_versions(admin: httpx.AsyncClient) -> None:
    body = await created(admin, DEPLOYMENTS, deployment("web", replicas=2))
    for replicas in (-1, "3", None):
        bad = await admin.put(
            f"{DEPLOYMENTS}/web/scale",
            json={"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": replicas}},
        )
        assert bad.status_code == 422, replicas
        assert bad.json()["reason"] == "Invalid"
        assert bad.json()["details"]["causes"][0]["field"] == "spec.replicas"
    stale = await admin.put(
        f"{DEPLOYMENTS}/web/scale",
        json={"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 4}},
    )
    assert stale.status_code == 409
    assert stale.json()["reason"] == "Conflict"
    got = (await admin.get(f"{DEPLOYMENTS}/web")).json()
    assert got["spec"]["replicas"] == 2
    assert got["metadata"]["resourceVersion"] == body["metadata"]["resourceVersion"]
    # Pods have no scale subresource.
    await created(admin, PODS, pod("p"))
    assert (await admin.get(f"{PODS}/p/scale")).status_code == 404


async def test_binding_assigns_a_node_once(admin: httpx.AsyncClient) -> None:
    await created(admin, PODS, pod("web"))
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "web"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"},
    }
    bound = await admin.post(f"{PODS}/web/binding", json=binding)
    assert bound.status_code == 201, bound.text
    assert bound.json()["status"] == "Success"
    got = (await admin.get(f"{PODS}/web")).json()
    assert got["spec"]["nodeName"] == "n1"
    [scheduled] = got["status"]["conditions"]
    assert (scheduled["type"], scheduled["status"]) == ("PodScheduled", "True")
    again = await admin.post(f"{PODS}/web/binding", json={**binding, "target": {"name": "n2"}})
    assert again.status_code == 409
    assert again.json()["message"] == (
        'Operation cannot be fulfilled on pods "web": pod web is already assigned to node "n1"'
    )
    assert (await admin.get(f"{PODS}/web")).json()["spec"]["nodeName"] == "n1"


async def test_binding_needs_a_target_and_a_pod(admin: httpx.AsyncClient) -> None:
    await created(admin, PODS, pod("web"))
    missing_target = await admin.post(f"{PODS}/web/binding", json={"kind": "Binding"})
    assert missing_target.status_code == 422
    assert missing_target.json()["details"]["causes"][0]["field"] == "target.name"
    missing_pod = await admin.post(f"{PODS}/nope/binding", json={"target": {"name": "n1"}})
    assert missing_pod.status_code == 404
    assert missing_pod.json()["message"] == 'pods "nope" not found'
    assert "nodeName" not in (await admin.get(f"{PODS}/web")).json()["spec"]
