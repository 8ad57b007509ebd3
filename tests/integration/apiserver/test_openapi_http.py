"""OpenAPI v3 over HTTP, and `fieldValidation` on every write, against a real server."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from .conftest import Server

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        },
    },
}


def with_unknown_fields() -> dict[str, Any]:
    body = copy.deepcopy(DEPLOYMENT)
    body["spec"]["foo"] = 1
    body["spec"]["template"]["spec"]["containers"][0]["bar"] = "x"
    return body


# The documents


async def test_the_index_and_a_document(admin: httpx.AsyncClient) -> None:
    index = await admin.get("/openapi/v3")
    assert index.status_code == 200, index.text
    assert index.headers["content-type"] == "application/json"
    paths = index.json()["paths"]
    assert set(paths) == {
        "api/v1",
        "apis/apps/v1",
        "apis/apiextensions.k8s.io/v1",
        "apis/arktos.futurewei.com/v1",
        "apis/coordination.k8s.io/v1",
        "apis/discovery.k8s.io/v1",
        "apis/rbac.authorization.k8s.io/v1",
    }
    url = paths["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    served = await admin.get(url)
    assert served.status_code == 200
    assert served.headers["cache-control"] == "public, immutable"
    assert served.headers["etag"] == f'"{url.partition("=")[2]}"'
    doc = served.json()
    assert doc["openapi"] == "3.0.0"
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert "io.k8s.api.apps.v1.Deployment" in doc["components"]["schemas"]


async def test_documents_are_revalidated_and_stale_hashes_redirected(
    admin: httpx.AsyncClient,
) -> None:
    served = await admin.get("/openapi/v3/api/v1")
    assert served.status_code == 200
    assert served.headers["cache-control"] == "no-cache, private"
    etag = served.headers["etag"]
    again = await admin.get("/openapi/v3/api/v1", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    stale = await admin.get("/openapi/v3/api/v1", params={"hash": "0"})
    assert stale.status_code == 301
    assert stale.headers["location"] == f"/openapi/v3/api/v1?hash={etag.strip(chr(34))}"


async def test_unknown_documents_and_strangers(server: Server, admin: httpx.AsyncClient) -> None:
    missing = await admin.get("/openapi/v3/apis/batch/v1")
    assert missing.status_code == 404
    assert missing.json()["reason"] == "NotFound"
    async with server.client(token=None) as anonymous:
        assert (await anonymous.get("/openapi/v3")).status_code == 401
        assert (await anonymous.get("/openapi/v3/api/v1")).status_code == 401
    protobuf = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"
    refused = await admin.get("/openapi/v3/api/v1", headers={"Accept": protobuf})
    assert refused.status_code == 406


# fieldValidation


async def test_strict_rejects_unknown_fields_and_stores_nothing(admin: httpx.AsyncClient) -> None:
    created = await admin.post(
        DEPLOYMENTS, json=with_unknown_fields(), params={"fieldValidation": "Strict"}
    )
    assert created.status_code == 400, created.text
    status = created.json()
    assert status["reason"] == "BadRequest"
    assert status["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.template.spec.containers[0].bar", unknown field "spec.foo"'
    )
    assert (await admin.get(f"{DEPLOYMENTS}/web")).status_code == 404


async def test_warn_is_the_default_and_sends_a_warning_per_field(
    admin: httpx.AsyncClient,
) -> None:
    for params in ({}, {"fieldValidation": "Warn"}):
        created = await admin.post(DEPLOYMENTS, json=with_unknown_fields(), params=params)
        assert created.status_code == 201, created.text
        assert created.headers.get_list("warning") == [
            '299 - "unknown field \\"spec.template.spec.containers[0].bar\\""',
            '299 - "unknown field \\"spec.foo\\""',
        ]
        assert (await admin.delete(f"{DEPLOYMENTS}/web")).status_code == 200


async def test_ignore_is_silent(admin: httpx.AsyncClient) -> None:
    created = await admin.post(
        DEPLOYMENTS, json=with_unknown_fields(), params={"fieldValidation": "Ignore"}
    )
    assert created.status_code == 201, created.text
    assert "warning" not in created.headers


async def test_known_fields_warn_about_nothing(admin: httpx.AsyncClient) -> None:
    created = await admin.post(DEPLOYMENTS, json=DEPLOYMENT, params={"fieldValidation": "Strict"})
    assert created.status_code == 201, created.text
    assert "warning" not in created.headers


async def test_an_unsupported_mode_is_a_bad_request(admin: httpx.AsyncClient) -> None:
    created = await admin.post(DEPLOYMENTS, json=DEPLOYMENT, params={"fieldValidation": "Loud"})
    assert created.status_code == 400
    assert created.json()["message"] == (
        'fieldValidation: Unsupported value: "Loud": supported values: "Ignore", "Strict", "Warn"'
    )


async def test_updates_are_validated(admin: httpx.AsyncClient) -> None:
    created = await admin.post(DEPLOYMENTS, json=DEPLOYMENT)
    assert created.status_code == 201
    body = created.json()
    body["spec"]["foo"] = 1
    strict = await admin.put(f"{DEPLOYMENTS}/web", json=body, params={"fieldValidation": "Strict"})
    assert strict.status_code == 400
    assert 'unknown field "spec.foo"' in strict.json()["message"]
    warned = await admin.put(f"{DEPLOYMENTS}/web", json=body)
    assert warned.status_code == 200
    assert warned.headers.get_list("warning") == ['299 - "unknown field \\"spec.foo\\""']


@pytest.mark.parametrize(
    ("content_type", "patch"),
    [
        ("application/merge-patch+json", {"spec": {"replicas": 3, "foo": 1}}),
        (
            "application/strategic-merge-patch+json",
            {
                "spec": {
                    "replicas": 3,
                    "template": {"spec": {"$setElementOrder/containers": [{"name": "c"}]}},
                    "foo": 1,
                }
            },
        ),
        (
            "application/json-patch+json",
            [
                {"op": "replace", "path": "/spec/replicas", "value": 3},
                {"op": "add", "path": "/spec/foo", "value": 1},
            ],
        ),
    ],
)
async def test_patches_are_validated_before_anything_is_stored(
    admin: httpx.AsyncClient, content_type: str, patch: Any
) -> None:
    assert (await admin.post(DEPLOYMENTS, json=DEPLOYMENT)).status_code == 201
    headers = {"Content-Type": content_type}
    strict = await admin.patch(
        f"{DEPLOYMENTS}/web", json=patch, headers=headers, params={"fieldValidation": "Strict"}
    )
    assert strict.status_code == 400
    assert strict.json()["message"] == 'strict decoding error: unknown field "spec.foo"'
    unchanged = await admin.get(f"{DEPLOYMENTS}/web")
    assert unchanged.json()["spec"]["replicas"] == 1
    warned = await admin.patch(f"{DEPLOYMENTS}/web", json=patch, headers=headers)
    assert warned.status_code == 200, warned.text
    assert warned.headers.get_list("warning") == ['299 - "unknown field \\"spec.foo\\""']
    assert warned.json()["spec"]["replicas"] == 3


async def test_server_side_apply_is_validated(admin: httpx.AsyncClient) -> None:
    applied = await admin.patch(
        f"{DEPLOYMENTS}/web",
        json=with_unknown_fields(),
        headers={"Content-Type": "application/apply-patch+yaml"},
        params={"fieldValidation": "Strict", "fieldManager": "test"},
    )
    assert applied.status_code == 400
    assert applied.json()["message"] == (
        "failed to create typed patch object (apps/v1, Kind=Deployment): errors:\n"
        "  .spec.template.spec.containers[0].bar: field not declared in schema\n"
        "  .spec.foo: field not declared in schema"
    )
    assert (await admin.get(f"{DEPLOYMENTS}/web")).status_code == 404


async def test_arktos_kinds_take_strategic_merge_patches(admin: httpx.AsyncClient) -> None:
    tenant = {"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": "t7"}}
    created = await admin.post("/api/v1/tenants", json=tenant, params={"fieldValidation": "Strict"})
    assert created.status_code == 201, created.text
    patched = await admin.patch(
        "/api/v1/tenants/t7",
        json={"spec": {"storageClusterId": "5"}},
        headers={"Content-Type": "application/strategic-merge-patch+json"},
        params={"fieldValidation": "Strict"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["spec"] == {"finalizers": ["arktos"], "storageClusterId": "5"}
