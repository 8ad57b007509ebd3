"""PATCH over HTTP in its merge, JSON and strategic merge forms, and optimistic concurrency
for every write: a stale resourceVersion is a 409 and changes nothing."""

from __future__ import annotations

import httpx
import orjson

from .conftest import configmap, created, deployment, pod

PODS = "/api/v1/namespaces/default/pods"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


async def patch(
    client: httpx.AsyncClient, url: str, body: object, content_type: str
) -> httpx.Response:
    return await client.patch(
        url, content=orjson.dumps(body), headers={"Content-Type": content_type}
    )


def two_container_pod() -> dict[str, object]:
    body = pod("web")
    body["spec"]["containers"] = [
        {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
        {"name": "sidecar", "image": "proxy:1"},
    ]
    return body


async def test_merge_patch(admin: httpx.AsyncClient) -> None:
    original = await created(admin, CONFIGMAPS, configmap("c", a="1", b="2"))
    patched = await patch(
        admin,
        f"{CONFIGMAPS}/c",
        {"data": {"a": "10", "b": None, "c": "3"}, "metadata": {"labels": {"x": "y"}}},
        MERGE,
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["data"] == {"a": "10", "c": "3"}
    assert body["metadata"]["labels"] == {"x": "y"}
    assert int(body["metadata"]["resourceVersion"]) > int(original["metadata"]["resourceVersion"])
    assert (await admin.get(f"{CONFIGMAPS}/c")).json() == body


async def test_merge_patch_replaces_lists(admin: httpx.AsyncClient) -> None:
    await created(admin, PODS, two_container_pod())
    patched = await patch(
        admin, f"{PODS}/web", {"spec": {"containers": [{"name": "only", "image": "x"}]}}, MERGE
    )
    # Containers may not be added or removed on update: an invalid result, nothing stored.
    assert patched.status_code == 422, patched.text
    assert len((await admin.get(f"{PODS}/web")).json()["spec"]["containers"]) == 2


async def test_json_patch(admin: httpx.AsyncClient) -> None:
    await created(admin, CONFIGMAPS, configmap("c", a="1", b="2"))
    patched = await patch(
        admin,
        f"{CONFIGMAPS}/c",
        [
            {"op": "test", "path": "/data/a", "value": "1"},
            {"op": "replace", "path": "/data/a", "value": "10"},
            {"op": "remove", "path": "/data/b"},
            {"op": "add", "path": "/metadata/labels", "value": {"k": "v"}},
            {"op": "copy", "from": "/data/a", "path": "/data/copied"},
        ],
        JSON_PATCH,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"] == {"a": "10", "copied": "10"}
    assert patched.json()["metadata"]["labels"] == {"k": "v"}


async def test_a_failed_json_patch_changes_nothing(admin: httpx.AsyncClient) -> None:
    original = await created(admin, CONFIGMAPS, configmap("c", a="1"))
    for operations in (
        [
            {"op": "replace", "path": "/data/a", "value": "2"},
            {"op": "test", "path": "/data/a", "value": "1"},
        ],
        [{"op": "remove", "path": "/data/missing"}],
        [{"op": "replace", "path": "/data/a", "value": "2"}, {"op": "explode", "path": "/"}],
        [{"op": "add"}],
        {"op": "add", "path": "/data/x", "value": "1"},
    ):
        failed = await patch(admin, f"{CONFIGMAPS}/c", operations, JSON_PATCH)
        assert failed.status_code in (400, 422), operations
        assert failed.json()["kind"] == "Status"
        assert failed.json()["reason"] in ("BadRequest", "Invalid")
    assert (await admin.get(f"{CONFIGMAPS}/c")).json() == original


async def test_strategic_merge_patch_merges_by_key(admin: httpx.AsyncClient) -> None:
    body = deployment("web")
    body["spec"]["template"]["spec"]["containers"] = [
        {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
        {"name": "sidecar", "image": "proxy:1"},
    ]
    await created(admin, DEPLOYMENTS, body)
    template_patch = {
        "containers": [{"name": "app", "image": "app:2", "env": [{"name": "B", "value": "2"}]}]
    }
    patched = await patch(
        admin, f"{DEPLOYMENTS}/web", {"spec": {"template": {"spec": template_patch}}}, STRATEGIC
    )
    assert patched.status_code == 200, patched.text
    containers = patched.json()["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [
        ("app", "app:2"),
        ("sidecar", "proxy:1"),
    ]
    assert containers[0]["env"] == [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]
    # $patch: delete removes one element by its key.
    delete_a = {"containers": [{"name": "app", "env": [{"name": "A", "$patch": "delete"}]}]}
    removed = await patch(
        admin, f"{DEPLOYMENTS}/web", {"spec": {"template": {"spec": delete_a}}}, STRATEGIC
    )
    assert removed.status_code == 200, removed.text
    containers = removed.json()["spec"]["template"]["spec"]["containers"]
    assert containers[0]["env"] == [{"name": "B", "value": "2"}]
    assert removed.json()["metadata"]["generation"] == 3


async def test_strategic_merge_patch_of_a_pod_image(admin: httpx.AsyncClient) -> None:
    await created(admin, PODS, two_container_pod())
    patched = await patch(
        admin,
        f"{PODS}/web",
        {"spec": {"containers": [{"name": "sidecar", "image": "proxy:2"}]}},
        STRATEGIC,
    )
    assert patched.status_code == 200, patched.text
    assert [c["image"] for c in patched.json()["spec"]["containers"]] == ["app:1", "proxy:2"]


async def test_strategic_merge_patch_of_labels_and_data(admin: httpx.AsyncClient) -> None:
    body = configmap("c", a="1")
    body["metadata"]["labels"] = {"keep": "1", "drop": "1"}
    await created(admin, CONFIGMAPS, body)
    patched = await patch(
        admin,
        f"{CONFIGMAPS}/c",
        {"metadata": {"labels": {"drop": None, "new": "1"}}, "data": {"b": "2"}},
        STRATEGIC,
    )
    assert patched.json()["metadata"]["labels"] == {"keep": "1", "new": "1"}
    assert patched.json()["data"] == {"a": "1", "b": "2"}


async def test_unknown_patch_types_are_unsupported(admin: httpx.AsyncClient) -> None:
    original = await created(admin, CONFIGMAPS, configmap("c", a="1"))
    for content_type in ("application/json", "text/plain", "application/x-patch"):
        refused = await patch(admin, f"{CONFIGMAPS}/c", {"data": {"a": "2"}}, content_type)
        assert refused.status_code == 415, content_type
        status = refused.json()
        assert status["reason"] == "UnsupportedMediaType"
        assert MERGE in status["message"]
    assert (await admin.get(f"{CONFIGMAPS}/c")).json() == original


async def test_bad_patches_change_nothing(admin: httpx.AsyncClient) -> None:
    original = await created(admin, PODS, pod("web"))
    url = f"{PODS}/web"
    cases = [
        (b"{not json", MERGE, 400),
        (b"", MERGE, 400),
        (b"[1, 2]", MERGE, 400),
        (b'"text"', STRATEGIC, 400),
        (b'{"metadata":{"name":"other"}}', MERGE, 400),
        (b'{"kind":"Service"}', MERGE, 400),
        (b'{"apiVersion":"v2"}', STRATEGIC, 400),
        (b'{"spec":{"containers":[{"name":"c","image":""}]}}', STRATEGIC, 422),
        (b'{"metadata":{"labels":{"bad key!":"x"}}}', MERGE, 422),
    ]
    for raw, content_type, code in cases:
        refused = await admin.patch(url, content=raw, headers={"Content-Type": content_type})
        assert refused.status_code == code, (raw, refused.text)
        assert refused.json()["kind"] == "Status"
    assert (await admin.get(url)).json() == original


async def test_patching_a_missing_object_is_not_found(admin: httpx.AsyncClient) -> None:
    missing = await patch(admin, f"{CONFIGMAPS}/nope", {"data": {"a": "1"}}, MERGE)
    assert missing.status_code == 404
    assert missing.json()["message"] == 'configmaps "nope" not found'


async def test_a_stale_resource_version_is_a_conflict(admin: httpx.AsyncClient) -> None:
    first = await created(admin, CONFIGMAPS, configmap("c", v="1"))
    stale_rv = first["metadata"]["resourceVersion"]
    current = (await patch(admin, f"{CONFIGMAPS}/c", {"data": {"v": "2"}}, MERGE)).json()
    stale = configmap("c", v="stale")
    stale["metadata"]["resourceVersion"] = stale_rv
    for response in (
        await admin.put(f"{CONFIGMAPS}/c", json=stale),
        await patch(
            admin,
            f"{CONFIGMAPS}/c",
            {"metadata": {"resourceVersion": stale_rv}, "data": {"v": "stale"}},
            MERGE,
        ),
        await patch(
            admin,
            f"{CONFIGMAPS}/c",
            [
                {"op": "replace", "path": "/metadata/resourceVersion", "value": stale_rv},
                {"op": "replace", "path": "/data/v", "value": "stale"},
            ],
            JSON_PATCH,
        ),
    ):
        assert response.status_code == 409, response.text
        status = response.json()
        assert status["reason"] == "Conflict"
        assert status["message"] == (
            'Operation cannot be fulfilled on configmaps "c": the object has been modified; '
            "please apply your changes to the latest version and try again"
        )
    assert (await admin.get(f"{CONFIGMAPS}/c")).json() == current
    # The current version goes through; no version at all means "whatever is there".
    fresh = configmap("c", v="3")
    fresh["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    assert (await admin.put(f"{CONFIGMAPS}/c", json=fresh)).status_code == 200
    assert (await admin.put(f"{CONFIGMAPS}/c", json=configmap("c", v="4"))).status_code == 200
    assert (await admin.get(f"{CONFIGMAPS}/c")).json()["data"] == {"v": "4"}
