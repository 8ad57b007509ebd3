"""What each client method sends, and what it makes of the answer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
import yaml

from arktos_lite import client
from arktos_lite.api import errors

from ._fakes import CONFIGMAPS, NAMESPACES, PODS, TENANTS, FakeServer, status


def cm(name: str = "a", **meta: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta}}


async def test_headers() -> None:
    server = FakeServer()
    config = client.Config("http://fake", token="s3cret")
    async with server.client(config, user_agent="tester/1.0") as api:
        await api.get(CONFIGMAPS, "a", namespace="ns")
    headers = server.last.headers
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["User-Agent"] == "tester/1.0"
    assert headers["Accept"] == "application/json"


async def test_no_credentials_no_authorization_header() -> None:
    server = FakeServer()
    async with server.client() as api:
        await api.get(NAMESPACES, "default")
    assert "Authorization" not in server.last.headers
    assert server.last.path == "/api/v1/namespaces/default"


async def test_a_server_url_with_a_path_prefix() -> None:
    server = FakeServer()
    async with server.client(client.Config("http://fake/k8s/")) as api:
        await api.get(PODS, "p", namespace="ns", subresource="status")
        await api.version()
    assert [seen.path for seen in server.seen] == [
        "/k8s/api/v1/namespaces/ns/pods/p/status",
        "/k8s/version",
    ]


async def test_list_parameters() -> None:
    server = FakeServer(default=httpx.Response(200, json={"items": [], "metadata": {}}))
    async with server.client() as api:
        await api.list(
            PODS,
            namespace="ns",
            tenant="t1",
            label_selector="app=web",
            field_selector="spec.nodeName=n1",
            limit=10,
            continue_="token",
            resource_version="5",
            resource_version_match="NotOlderThan",
        )
        await api.list(PODS)
    first, second = server.seen
    assert first.path == "/api/v1/tenants/t1/namespaces/ns/pods"
    assert first.params == {
        "labelSelector": ["app=web"],
        "fieldSelector": ["spec.nodeName=n1"],
        "limit": ["10"],
        "continue": ["token"],
        "resourceVersion": ["5"],
        "resourceVersionMatch": ["NotOlderThan"],
    }
    assert (second.path, second.params) == ("/api/v1/pods", {})


def _pages(pages: dict[str | None, tuple[list[str], str | None]]) -> FakeServer:
    """A server answering a paged list: continue token -> (names, next token)."""

    def answer(request: httpx.Request) -> httpx.Response:
        names, after = pages[request.url.params.get("continue")]
        metadata: dict[str, Any] = {"resourceVersion": f"rv-{names[0]}"}
        if after:
            metadata["continue"] = after
        return httpx.Response(
            200,
            json={
                "kind": "ConfigMapList",
                "apiVersion": "v1",
                "metadata": metadata,
                "items": [{"metadata": {"name": n}} for n in names],
            },
        )

    return FakeServer(default=answer)


async def test_list_all_follows_the_continue_tokens() -> None:
    server = _pages({None: (["a", "b"], "t1"), "t1": (["c", "d"], "t2"), "t2": (["e"], None)})
    async with server.client() as api:
        listed = await api.list_all(CONFIGMAPS, tenant="all", label_selector="x", page_size=2)
    assert listed == {
        "kind": "ConfigMapList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "rv-a"},
        "items": [{"metadata": {"name": n}} for n in "abcde"],
    }
    assert [seen.params.get("continue") for seen in server.seen] == [None, ["t1"], ["t2"]]
    assert all(seen.params["limit"] == ["2"] for seen in server.seen)
    assert all(seen.params["labelSelector"] == ["x"] for seen in server.seen)
    assert server.seen[0].path == "/api/v1/tenants/all/configmaps"


async def test_list_all_starts_over_unpaged_when_the_snapshot_expires() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if "continue" in params:
            return status(410, "Expired", "The provided continue parameter is too old")
        names, after = (["a"], "t1") if "limit" in params else (["a", "b", "c"], None)
        metadata = {"resourceVersion": "5", **({"continue": after} if after else {})}
        items = [{"metadata": {"name": n}} for n in names]
        return httpx.Response(200, json={"metadata": metadata, "items": items})

    server = FakeServer(default=answer)
    async with server.client() as api:
        listed = await api.list_all(CONFIGMAPS, page_size=1)
    assert [item["metadata"]["name"] for item in listed["items"]] == ["a", "b", "c"]
    assert [sorted(seen.params) for seen in server.seen] == [["limit"], ["continue", "limit"], []]


async def test_list_all_raises_gone_on_the_first_page() -> None:
    server = FakeServer(default=status(410, "Expired", "too old"))
    async with server.client() as api:
        with pytest.raises(errors.Gone):
            await api.list_all(CONFIGMAPS)


@pytest.mark.parametrize(
    ("config_tenant", "kwargs", "body_meta", "path"),
    [
        (None, {}, {"namespace": "ns"}, "/api/v1/namespaces/ns/configmaps"),
        (
            None,
            {},
            {"namespace": "ns", "tenant": "t1"},
            "/api/v1/tenants/t1/namespaces/ns/configmaps",
        ),
        ("t9", {}, {"namespace": "ns"}, "/api/v1/tenants/t9/namespaces/ns/configmaps"),
        (
            "t9",
            {},
            {"namespace": "ns", "tenant": "t1"},
            "/api/v1/tenants/t1/namespaces/ns/configmaps",
        ),
        (
            "t9",
            {"tenant": "t2", "namespace": "other"},
            {"namespace": "ns", "tenant": "t1"},
            "/api/v1/tenants/t2/namespaces/other/configmaps",
        ),
    ],
)
async def test_create_addresses_the_tenant_and_namespace(
    config_tenant: str | None, kwargs: dict[str, str], body_meta: dict[str, str], path: str
) -> None:
    server = FakeServer(default=httpx.Response(201, json=cm()))
    body = cm(**body_meta)
    async with server.client(client.Config("http://fake", tenant=config_tenant)) as api:
        created = await api.create(CONFIGMAPS, body, **kwargs)
    assert created == cm()
    assert server.last.method == "POST"
    assert server.last.path == path
    assert server.last.json() == body
    assert server.last.headers["Content-Type"] == "application/json"


async def test_create_options() -> None:
    server = FakeServer()
    async with server.client() as api:
        await api.create(CONFIGMAPS, cm(namespace="ns"), dry_run=True, field_manager="me")
    assert server.last.params == {"dryRun": ["All"], "fieldManager": ["me"]}


async def test_create_refuses_what_it_cannot_address() -> None:
    server = FakeServer()
    async with server.client() as api:
        with pytest.raises(ValueError, match="say in which namespace"):
            await api.create(CONFIGMAPS, cm())
        with pytest.raises(ValueError, match="cannot hold a new object"):
            await api.create(CONFIGMAPS, cm(namespace="ns"), tenant="all")
    assert server.seen == []


async def test_cluster_scoped_objects_have_no_tenant() -> None:
    server = FakeServer()
    async with server.client(client.Config("http://fake", tenant="t9")) as api:
        await api.create(TENANTS, {"metadata": {"name": "t1"}}, tenant="t2")
        await api.replace(
            TENANTS, {"metadata": {"name": "t1", "tenant": "t1"}}, subresource="finalize"
        )
        await api.get(TENANTS, "t1")
    assert [(s.method, s.path) for s in server.seen] == [
        ("POST", "/api/v1/tenants"),
        ("PUT", "/api/v1/tenants/t1/finalize"),
        ("GET", "/api/v1/tenants/t1"),
    ]


async def test_replace_goes_where_the_metadata_says() -> None:
    server = FakeServer()
    body = cm(namespace="ns", tenant="t1", resourceVersion="7")
    async with server.client() as api:
        await api.replace(CONFIGMAPS, body, field_manager="me")
        await api.replace(
            NAMESPACES, {"metadata": {"name": "ns"}}, tenant="t2", subresource="status"
        )
        with pytest.raises(ValueError, match=r"metadata\.name"):
            await api.replace(CONFIGMAPS, {"metadata": {"namespace": "ns"}})
    first, second = server.seen
    assert (first.method, first.path) == ("PUT", "/api/v1/tenants/t1/namespaces/ns/configmaps/a")
    assert first.json() == body
    assert first.params == {"fieldManager": ["me"]}
    assert second.path == "/api/v1/tenants/t2/namespaces/ns/status"


@pytest.mark.parametrize(
    ("patch_type", "content_type"),
    [
        ("merge", "application/merge-patch+json"),
        ("json", "application/json-patch+json"),
        ("strategic", "application/strategic-merge-patch+json"),
        ("apply", "application/apply-patch+yaml"),
    ],
)
async def test_patch_types(patch_type: str, content_type: str) -> None:
    server = FakeServer()
    body: Any = (
        [{"op": "add", "path": "/data", "value": {}}] if patch_type == "json" else {"data": {}}
    )
    async with server.client() as api:
        await api.patch(CONFIGMAPS, "a", body, patch_type=patch_type, namespace="ns", tenant="t1")
    assert server.last.method == "PATCH"
    assert server.last.path == "/api/v1/tenants/t1/namespaces/ns/configmaps/a"
    assert server.last.headers["Content-Type"] == content_type
    assert server.last.json() == body


async def test_apply_sends_yaml_as_it_is_and_its_options() -> None:
    server = FakeServer()
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n"
    async with server.client() as api:
        await api.patch(
            CONFIGMAPS,
            "a",
            manifest,
            patch_type="apply",
            namespace="ns",
            field_manager="me",
            force=True,
            dry_run=True,
            subresource="status",
        )
    assert server.last.body == manifest.encode()
    assert yaml.safe_load(server.last.body)["data"] == {"k": "v"}
    assert server.last.params == {"dryRun": ["All"], "fieldManager": ["me"], "force": ["true"]}
    assert server.last.path == "/api/v1/namespaces/ns/configmaps/a/status"


async def test_an_unknown_patch_type() -> None:
    async with FakeServer().client() as api:
        with pytest.raises(ValueError, match="not one of merge, json, strategic, apply"):
            await api.patch(CONFIGMAPS, "a", {}, patch_type="xml", namespace="ns")


async def test_delete_options() -> None:
    server = FakeServer(default=httpx.Response(200, json={"kind": "Status", "status": "Success"}))
    async with server.client() as api:
        answer = await api.delete(
            PODS,
            "p",
            namespace="ns",
            tenant="t1",
            propagation_policy="Foreground",
            grace_period_seconds=0,
            preconditions={"uid": "u1", "resourceVersion": "9"},
            dry_run=True,
        )
        await api.delete(PODS, "p", namespace="ns")
    assert answer == {"kind": "Status", "status": "Success"}
    first, second = server.seen
    assert (first.method, first.path) == ("DELETE", "/api/v1/tenants/t1/namespaces/ns/pods/p")
    assert first.params == {"dryRun": ["All"]}
    assert first.json() == {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "propagationPolicy": "Foreground",
        "gracePeriodSeconds": 0,
        "preconditions": {"uid": "u1", "resourceVersion": "9"},
    }
    assert second.body == b""


async def test_delete_collection() -> None:
    server = FakeServer(default=httpx.Response(200, json={"items": []}))
    async with server.client() as api:
        await api.delete_collection(
            PODS, namespace="ns", label_selector="app=web", propagation_policy="Background"
        )
    assert (server.last.method, server.last.path) == ("DELETE", "/api/v1/namespaces/ns/pods")
    assert server.last.params == {"labelSelector": ["app=web"]}
    assert server.last.json()["propagationPolicy"] == "Background"


async def test_post_subresource() -> None:
    server = FakeServer(default=httpx.Response(201, json={"kind": "Status", "code": 201}))
    binding = {"apiVersion": "v1", "kind": "Binding", "target": {"kind": "Node", "name": "n1"}}
    async with server.client(client.Config("http://fake", tenant="t1")) as api:
        await api.post_subresource(PODS, "p", "binding", binding, namespace="ns")
    assert server.last.path == "/api/v1/tenants/t1/namespaces/ns/pods/p/binding"
    assert server.last.json() == binding


async def test_raw_requests() -> None:
    server = FakeServer()
    server.script = [
        httpx.Response(200, json={"paths": ["/api"]}),
        httpx.Response(200, text="ok"),
        httpx.Response(204),
    ]
    async with server.client() as api:
        assert await api.request("get", "/", params={"a": 1, "b": None}) == {"paths": ["/api"]}
        assert await api.request("GET", "/healthz") == "ok"
        assert await api.request("POST", "/x", json={"k": 1}, headers={"X-Y": "z"}) is None
        with pytest.raises(ValueError, match="not both"):
            await api.request("POST", "/x", json={}, content=b"{}")
        for elsewhere in ("https://elsewhere/api", "//elsewhere/api", "api"):
            with pytest.raises(ValueError, match="absolute path on the server"):
                await api.request("GET", elsewhere)
    first, _, third = server.seen
    assert first.params == {"a": ["1"]}
    assert third.json() == {"k": 1}
    assert third.headers["Content-Type"] == "application/json"
    assert third.headers["X-Y"] == "z"


async def test_an_answer_that_is_not_an_object() -> None:
    server = FakeServer(default=httpx.Response(200, json=["a"]))
    async with server.client() as api:
        with pytest.raises(errors.InternalError, match="not an object"):
            await api.get(CONFIGMAPS, "a", namespace="ns")
    server.default = httpx.Response(200, text="<html>")
    async with server.client() as api:
        with pytest.raises(errors.InternalError, match="not JSON"):
            await api.get(CONFIGMAPS, "a", namespace="ns")


async def test_status_answers_become_their_error_class() -> None:
    details = {"name": "a", "kind": "configmaps"}
    answer = status(404, "NotFound", 'configmaps "a" not found')
    answer = httpx.Response(404, json={**answer.json(), "details": details})
    server = FakeServer(default=answer)
    async with server.client() as api:
        with pytest.raises(errors.NotFound) as raised:
            await api.get(CONFIGMAPS, "a", namespace="ns")
    assert raised.value.message == 'configmaps "a" not found'
    assert raised.value.details == details


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (401, errors.Unauthorized),
        (403, errors.Forbidden),
        (404, errors.NotFound),
        (409, errors.Conflict),
        (410, errors.Gone),
        (413, errors.RequestEntityTooLarge),
        (422, errors.Invalid),
    ],
)
async def test_other_error_answers_become_the_class_of_their_status(
    code: int, error: type[errors.StatusError]
) -> None:
    server = FakeServer(default=httpx.Response(code, text=" not a Status \n"))
    async with server.client() as api:
        with pytest.raises(error) as raised:
            await api.get(CONFIGMAPS, "a", namespace="ns")
    assert type(raised.value) is error
    assert raised.value.message == "not a Status"


async def test_an_unknown_error_status() -> None:
    server = FakeServer(default=httpx.Response(418, text=""))
    async with server.client() as api:
        with pytest.raises(errors.StatusError, match="HTTP 418"):
            await api.get(CONFIGMAPS, "a", namespace="ns")


async def test_views_share_the_pool_and_outlive_their_own_close() -> None:
    server = FakeServer()
    api = server.client(client.Config("http://fake", tenant="t1"))
    view = api.with_tenant(None)
    async with view:
        await view.get(CONFIGMAPS, "a", namespace="ns")
    # The view's close left the pool open for the client and its other views.
    await api.get(CONFIGMAPS, "a", namespace="ns")
    await api.with_tenant("t2").get(CONFIGMAPS, "a", namespace="ns")
    await api.aclose()
    with pytest.raises(RuntimeError):
        await view.get(CONFIGMAPS, "a", namespace="ns")
    assert [seen.path.split("/configmaps")[0] for seen in server.seen] == [
        "/api/v1/namespaces/ns",
        "/api/v1/tenants/t1/namespaces/ns",
        "/api/v1/tenants/t2/namespaces/ns",
    ]
    assert view.config.tenant is None
    assert api.config.tenant == "t1"


async def test_cancellation_reaches_a_request_waiting_for_its_retry() -> None:
    server = FakeServer(default=status(503, "ServiceUnavailable"))
    async with server.client(backoff_base=60.0, backoff_max=60.0) as api:
        with trio.move_on_after(0.2) as scope:
            await api.get(CONFIGMAPS, "a", namespace="ns")
    assert scope.cancelled_caught
    assert len(server.seen) == 1


def test_bad_settings() -> None:
    config = client.Config("http://fake")
    with pytest.raises(ValueError, match="timeout"):
        client.Client(config, timeout=0)
    with pytest.raises(ValueError, match="qps"):
        client.Client(config, qps=0)
    with pytest.raises(ValueError, match="negative"):
        client.Client(config, backoff_base=-1)
