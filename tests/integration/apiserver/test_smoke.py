"""First contact: discovery, CRUD of a pod, and errors as Status objects."""

from __future__ import annotations

import httpx

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
}


async def test_pod_crud(admin: httpx.AsyncClient) -> None:
    created = await admin.post("/api/v1/namespaces/default/pods", json=POD)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["metadata"]["tenant"] == "system"
    assert body["status"]["phase"] == "Pending"
    got = await admin.get("/api/v1/tenants/system/namespaces/default/pods/web")
    assert got.status_code == 200
    assert got.json()["metadata"]["uid"] == body["metadata"]["uid"]
    listed = await admin.get("/api/v1/pods", params={"labelSelector": "app=web"})
    assert [p["metadata"]["name"] for p in listed.json()["items"]] == ["web"]
    gone = await admin.delete("/api/v1/namespaces/default/pods/web")
    assert gone.status_code == 200, gone.text
    missing = await admin.get("/api/v1/namespaces/default/pods/web")
    assert missing.status_code == 404
    assert missing.json()["reason"] == "NotFound"
