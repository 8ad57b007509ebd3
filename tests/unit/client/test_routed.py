"""A client over two partitions: where each request goes, merged lists and watches, and
how it is made (by hand, or from a partitioned kubeconfig)."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
import yaml
from hypothesis import given, settings, strategies as st

from arktos_lite import client
from arktos_lite.api import errors, partitions

from ._fakes import NODES, PODS, TENANTS, FakeServer, Stream, event_line, status

# Partition "a" holds the tenants before "t2" (system and t1 among them): it is the
# designated one. Partition "b" holds t2 and after.
A = partitions.Partition("a", partitions.TenantRange("", "t2"))
B = partitions.Partition("b", partitions.TenantRange("t2", ""))


def pod(name: str, tenant: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "tenant": tenant}}


def pod_list(*items: dict[str, Any], version: str = "1", more: str = "") -> httpx.Response:
    metadata: dict[str, Any] = {"resourceVersion": version}
    if more:
        metadata["continue"] = more
    return httpx.Response(
        200,
        json={"kind": "PodList", "apiVersion": "v1", "metadata": metadata, "items": list(items)},
    )


class Servers:
    def __init__(self) -> None:
        self.a = FakeServer()
        self.b = FakeServer()

    def handle(self, request: httpx.Request) -> httpx.Response:
        return {"a.test": self.a, "b.test": self.b}[request.url.host].handle(request)

    def client(self, *, tenant: str | None = None, **kwargs: Any) -> client.RoutedClient:
        kwargs.setdefault("qps", float("inf"))
        return client.RoutedClient(
            [
                (B, client.Config("http://b.test", token="tb")),
                (A, client.Config("http://a.test", token="ta")),
            ],
            tenant=tenant,
            transport=httpx.MockTransport(self.handle),
            **kwargs,
        )

    def paths(self) -> dict[str, list[str]]:
        return {
            "a": [f"{s.method} {s.path}" for s in self.a.seen],
            "b": [f"{s.method} {s.path}" for s in self.b.seen],
        }


async def test_each_request_goes_to_the_partition_of_its_tenant() -> None:
    servers = Servers()
    async with servers.client() as api:
        await api.create(PODS, pod("p", "t1"))
        await api.create(PODS, pod("p", "t2"))
        await api.get(PODS, "p", namespace="default", tenant="t2")
        await api.post_subresource(
            PODS, "p", "binding", {"target": {"name": "n1"}}, namespace="default", tenant="t2"
        )
        await api.create(TENANTS, {"metadata": {"name": "t3"}})
        await api.get(TENANTS, "t1")
        await api.patch(TENANTS, "t2", {"metadata": {"labels": {"x": "y"}}}, subresource="status")
        await api.get(NODES, "n1")
        await api.version()
        await api.request("GET", "/api/v1/namespaces/default/configmaps")
    assert servers.paths() == {
        "a": [
            "POST /api/v1/tenants/t1/namespaces/default/pods",
            "GET /api/v1/tenants/t1",
            "GET /api/v1/nodes/n1",
            "GET /version",
            # Short paths go to the client's tenant, else system.
            "GET /api/v1/namespaces/default/configmaps",
        ],
        "b": [
            "POST /api/v1/tenants/t2/namespaces/default/pods",
            "GET /api/v1/tenants/t2/namespaces/default/pods/p",
            "POST /api/v1/tenants/t2/namespaces/default/pods/p/binding",
            "POST /api/v1/tenants",
            "PATCH /api/v1/tenants/t2/status",
        ],
    }
    # Each server gets its own credentials.
    assert {s.headers["Authorization"] for s in servers.a.seen} == {"Bearer ta"}
    assert {s.headers["Authorization"] for s in servers.b.seen} == {"Bearer tb"}


async def test_the_client_tenant_routes_short_paths() -> None:
    servers = Servers()
    async with servers.client(tenant="t2") as api:
        await api.request("GET", "/api/v1/namespaces/default/configmaps")
        await api.list(PODS, namespace="default")
        async with api.with_tenant("t1") as t1:
            await t1.list(PODS, namespace="default")
    assert servers.paths() == {
        "a": ["GET /api/v1/tenants/t1/namespaces/default/pods"],
        "b": [
            "GET /api/v1/namespaces/default/configmaps",
            "GET /api/v1/tenants/t2/namespaces/default/pods",
        ],
    }


async def test_a_list_across_tenants_merges_every_partition() -> None:
    servers = Servers()
    servers.a.default = pod_list(pod("x", "t1"), version="40")
    servers.b.default = pod_list(pod("y", "t2"), pod("z", "t3"), version="7")
    async with servers.client() as api:
        listed = await api.list(PODS, tenant="all")
        whole = await api.list_all(PODS, tenant="all")
        raw = await api.request("GET", "/api/v1/tenants/all/pods")
    for answer in (listed, whole, raw):
        assert [item["metadata"]["name"] for item in answer["items"]] == ["x", "y", "z"]
        assert answer["kind"] == "PodList"
        # No single store revision describes both partitions.
        assert "resourceVersion" not in answer["metadata"]
    assert servers.paths()["b"][0] == "GET /api/v1/tenants/all/pods"


async def test_tenants_are_listed_from_every_partition() -> None:
    servers = Servers()
    servers.a.default = httpx.Response(200, json={"items": [{"metadata": {"name": "t1"}}]})
    servers.b.default = httpx.Response(200, json={"items": [{"metadata": {"name": "t2"}}]})
    async with servers.client() as api:
        listed = await api.list(TENANTS)
    assert [t["metadata"]["name"] for t in listed["items"]] == ["t1", "t2"]


async def test_a_list_across_partitions_fails_if_one_partition_fails() -> None:
    servers = Servers()
    servers.a.default = pod_list(pod("x", "t1"))
    servers.b.default = status(403, "Forbidden", "no")
    async with servers.client() as api:
        with pytest.raises(errors.Forbidden):
            await api.list(PODS, tenant="all")


async def test_a_list_across_partitions_cannot_be_read_at_one_store_version() -> None:
    servers = Servers()
    async with servers.client() as api:
        with pytest.raises(ValueError, match="one partition's store"):
            await api.list(PODS, tenant="all", resource_version="12")
    assert servers.paths() == {"a": [], "b": []}


async def test_pages_of_a_list_across_partitions() -> None:
    servers = Servers()
    servers.a.script = [pod_list(pod("a1", "t1"), pod("a2", "t1"), more="a-next")]
    servers.a.default = pod_list(pod("a3", "t1"))
    servers.b.default = pod_list(pod("b1", "t2"))
    names: list[list[str]] = []
    async with servers.client() as api:
        token: str | None = None
        while True:
            page = await api.list(PODS, tenant="all", limit=2, continue_=token)
            names.append([item["metadata"]["name"] for item in page["items"]])
            token = page["metadata"].get("continue")
            if token is None:
                break
        whole = await api.list_all(PODS, tenant="all", page_size=2)
    assert names == [["a1", "a2"], ["a3", "b1"]]
    assert servers.a.seen[1].params["continue"] == ["a-next"]
    assert servers.a.seen[1].params["limit"] == ["2"]
    assert servers.b.seen[0].params["limit"] == ["1"]
    assert "continue" not in servers.b.seen[0].params
    assert [item["metadata"]["name"] for item in whole["items"]] == ["a3", "b1"]


class Quiet(httpx.AsyncByteStream):
    """A watch that sends `lines`, then says nothing more until it is closed."""

    def __init__(self, *lines: bytes) -> None:
        self.lines = lines
        self.closed = trio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for line in self.lines:
            await trio.lowlevel.checkpoint()
            yield line
        await self.closed.wait()

    async def aclose(self) -> None:
        self.closed.set()


def watch_response(*lines: bytes) -> httpx.Response:
    return httpx.Response(200, stream=Stream(list(lines)))


async def test_a_watch_across_partitions_merges_their_streams() -> None:
    servers = Servers()
    # Streams that stay open: the merged one ends when any of them does.
    servers.a.default = httpx.Response(
        200,
        stream=Quiet(event_line("ADDED", pod("x", "t1")), event_line("BOOKMARK", {"metadata": {}})),
    )
    servers.b.default = httpx.Response(
        200,
        stream=Quiet(event_line("ADDED", pod("y", "t2")), event_line("MODIFIED", pod("y", "t2"))),
    )
    seen: list[tuple[str, str]] = []
    async with servers.client() as api, api.watch(PODS, tenant="all") as events:
        with trio.fail_after(5):
            async for event in events:
                seen.append((event.type, event.object["metadata"]["name"]))
                if len(seen) == 3:
                    break
    assert sorted(seen) == [("ADDED", "x"), ("ADDED", "y"), ("MODIFIED", "y")]
    assert seen.index(("ADDED", "y")) < seen.index(("MODIFIED", "y"))
    assert servers.paths() == {
        "a": ["GET /api/v1/tenants/all/pods"],
        "b": ["GET /api/v1/tenants/all/pods"],
    }


async def test_a_merged_watch_ends_when_a_partition_ends_and_raises_its_errors() -> None:
    servers = Servers()
    servers.a.default = watch_response()
    servers.b.default = watch_response(event_line("ADDED", pod("y", "t2")))
    async with servers.client() as api, api.watch(PODS, tenant="all") as events:
        with trio.fail_after(5):
            got = [event async for event in events]
    assert [e.object["metadata"]["name"] for e in got] in ([], ["y"])

    servers.a.default = watch_response(
        event_line("ERROR", {"kind": "Status", "code": 410, "reason": "Expired", "message": "old"})
    )
    servers.b.default = httpx.Response(200, stream=Quiet())
    async with servers.client() as api, api.watch(PODS, tenant="all") as events:
        with pytest.raises(errors.Gone), trio.fail_after(5):
            async for _ in events:
                pass


async def test_an_error_in_the_block_of_a_merged_watch_comes_out_as_it_is() -> None:
    servers = Servers()
    servers.a.default = watch_response(event_line("ADDED", pod("x", "t1")))
    servers.b.default = watch_response(event_line("ADDED", pod("y", "t2")))
    async with servers.client() as api:
        with pytest.raises(KeyError, match="mine"):  # noqa: PT012
            async with api.watch(PODS, tenant="all") as events:
                async for _ in events:
                    raise KeyError("mine")


async def test_a_merged_watch_starts_from_now_only() -> None:
    servers = Servers()
    async with servers.client() as api:
        with pytest.raises(ValueError, match="starts from now"):
            async with api.watch(PODS, tenant="all", resource_version="5"):
                pass
    assert servers.paths() == {"a": [], "b": []}


async def test_a_watch_in_one_tenant_goes_to_its_partition() -> None:
    servers = Servers()
    servers.b.default = watch_response(event_line("ADDED", pod("y", "t2")))
    async with (
        servers.client() as api,
        api.watch(PODS, tenant="t2", resource_version="5") as events,
    ):
        got = [event async for event in events]
    assert [e.object["metadata"]["name"] for e in got] == ["y"]
    assert servers.paths() == {"a": [], "b": ["GET /api/v1/tenants/t2/pods"]}


async def test_partitions_and_what_a_listing_spans() -> None:
    servers = Servers()
    async with servers.client() as api:
        assert [(pc.name, pc.client.config.server) for pc in api.partitions] == [
            ("a", "http://a.test"),
            ("b", "http://b.test"),
        ]
        assert all(type(pc.client) is client.Client for pc in api.partitions)

        def spans(resource: Any, tenant: str | None) -> list[str]:
            return [pc.name for pc in api.partitions_for(resource, tenant=tenant)]

        assert spans(PODS, "all") == ["a", "b"]
        assert spans(TENANTS, None) == ["a", "b"]
        assert spans(NODES, None) == ["a"]
        assert spans(PODS, "t2") == ["b"]
        assert spans(PODS, None) == ["a"]
        assert api.with_tenant("t3").partitions_for(PODS, tenant=None)[0].name == "b"
        path = api.path_of(PODS, tenant="all")
        assert path == "/api/v1/tenants/all/pods"
        assert [c.config.server for c in api.clients_for(path)] == [
            "http://a.test",
            "http://b.test",
        ]
        assert [c.config.server for c in api.clients_for("/api/v1/tenants/t2")] == ["http://b.test"]
    single = FakeServer().client()
    async with single:
        assert single.clients_for("/api/v1/tenants/all/pods") == (single,)
        assert single.partitions == ()
        assert [pc.client for pc in single.partitions_for(PODS, tenant="all")] == [single]


def test_the_ranges_are_checked() -> None:
    with pytest.raises(ValueError, match="overlap"):
        client.RoutedClient(
            [
                (A, client.Config("http://a.test")),
                (
                    partitions.Partition("c", partitions.TenantRange("t", "")),
                    client.Config("http://c.test"),
                ),
            ]
        )


# From a kubeconfig


def partitioned_kubeconfig(
    tmp_path: pathlib.Path,
    ranges: list[tuple[str, str, str]],
    *,
    current: str = "partition-0",
    extra: dict[str, Any] | None = None,
) -> pathlib.Path:
    contexts = []
    clusters = []
    for index, (name, start, end) in enumerate(ranges):
        partition = partitions.Partition(name, partitions.TenantRange(start, end))
        clusters.append(
            {"name": f"c{index}", "cluster": {"server": f"http://p{index}.test:{6443 + index}"}}
        )
        contexts.append(
            {
                "name": f"partition-{index}",
                "context": {
                    "cluster": f"c{index}",
                    "user": "admin",
                    "extensions": [
                        {"name": "other", "extension": {"x": 1}},
                        {
                            "name": partitions.KUBECONFIG_EXTENSION,
                            "extension": partition.data_partition_config(),
                        },
                    ],
                },
            }
        )
    clusters.append({"name": "plain", "cluster": {"server": "http://plain.test"}})
    contexts.append({"name": "plain", "context": {"cluster": "plain", "user": "admin"}})
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters,
        "users": [{"name": "admin", "user": {"token": "secret"}}],
        "contexts": contexts,
        "current-context": current,
        **(extra or {}),
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return path


async def test_a_partitioned_kubeconfig_gives_a_routed_client(tmp_path: pathlib.Path) -> None:
    path = partitioned_kubeconfig(
        tmp_path, [("1", "t2", ""), ("0", "", "t2")], current="partition-1"
    )
    async with client.Client.from_kubeconfig(path, tenant="t1", qps=7.0) as api:
        assert isinstance(api, client.RoutedClient)
        # In tenant order, each partition with its context's server.
        assert [(pc.name, pc.client.config.server) for pc in api.partitions] == [
            ("0", "http://p1.test:6444"),
            ("1", "http://p0.test:6443"),
        ]
        assert api.config.tenant == "t1"
        assert all(pc.client.config.token == "secret" for pc in api.partitions)
        assert all(pc.client._shared.bucket.qps == 7.0 for pc in api.partitions)
    # A named context is that one server.
    async with client.Client.from_kubeconfig(path, context="partition-1") as one:
        assert type(one) is client.Client
        assert one.config.server == "http://p1.test:6444"
    # So is a current context that addresses no partition.
    plain = partitioned_kubeconfig(tmp_path, [("0", "", "")], current="plain")
    async with client.Client.from_kubeconfig(plain) as other:
        assert type(other) is client.Client
        assert other.config.server == "http://plain.test"
    assert client.load_partitioned_kubeconfig(plain) is None


@pytest.mark.parametrize(
    ("ranges", "words"),
    [
        ([("0", "", "m"), ("1", "k", "")], "overlap: tenant 'k' would be in both"),
        ([("0", "", "m"), ("1", "p", "")], "no partition holds the tenants from 'm' up to 'p'"),
        ([("0", "", "m"), ("0", "m", "")], "both address partition '0'"),
    ],
)
def test_a_partitioned_kubeconfig_is_checked(
    tmp_path: pathlib.Path, ranges: list[tuple[str, str, str]], words: str
) -> None:
    path = partitioned_kubeconfig(tmp_path, ranges)
    with pytest.raises(client.KubeconfigError, match=words) as raised:
        client.Client.from_kubeconfig(path)
    assert str(path) in str(raised.value)


def test_a_partition_extension_must_be_a_data_partition_config(tmp_path: pathlib.Path) -> None:
    path = partitioned_kubeconfig(tmp_path, [("0", "", "")])
    document = yaml.safe_load(path.read_text())
    document["contexts"][0]["context"]["extensions"][1]["extension"] = {"kind": "Pod"}
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(client.KubeconfigError, match="must be a DataPartitionConfig"):
        client.Client.from_kubeconfig(path)


def paging_server(items: list[str]) -> Any:
    """A server of `items` that pages them by `limit`, its continue token an offset."""

    def handle(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("continue") or 0)
        limit = request.url.params.get("limit")
        end = len(items) if limit is None else start + int(limit)
        metadata: dict[str, Any] = {"resourceVersion": "9"}
        if end < len(items):
            metadata["continue"] = str(end)
        page = [{"metadata": {"name": name}} for name in items[start:end]]
        return httpx.Response(200, json={"kind": "PodList", "metadata": metadata, "items": page})

    return handle


@settings(max_examples=40, deadline=None)
@given(
    in_a=st.lists(st.sampled_from("abcdef"), max_size=7),
    in_b=st.lists(st.sampled_from("uvwxyz"), max_size=7),
    limit=st.integers(min_value=1, max_value=5),
)
def test_the_pages_of_a_list_across_partitions_are_the_whole_list_once(
    in_a: list[str], in_b: list[str], limit: int
) -> None:
    async def pages() -> tuple[list[str], list[list[str]]]:
        servers = Servers()
        servers.a.default = paging_server(in_a)
        servers.b.default = paging_server(in_b)
        async with servers.client() as api:
            whole = await api.list(PODS, tenant="all")
            got: list[list[str]] = []
            token: str | None = None
            while True:
                page = await api.list(PODS, tenant="all", limit=limit, continue_=token)
                got.append([item["metadata"]["name"] for item in page["items"]])
                token = page["metadata"].get("continue")
                if token is None:
                    return [item["metadata"]["name"] for item in whole["items"]], got

    whole, got = trio.run(pages)
    assert whole == in_a + in_b
    assert [name for page in got for name in page] == whole
    assert all(len(page) <= limit for page in got)
