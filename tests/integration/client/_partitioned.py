"""Two real API servers as the partitions of one cluster, and a routed client over them.

Partition "a" holds the tenants before "t2" (system and t1): it is the designated one.
Partition "b" holds t2 and after. Each server has its own in-memory SQLite store and can
be stopped and started again on its port over that store. With `enforce`, each server is
started with its partition and answers requests for data it does not hold with 421.
The routed client's requests pass through `RequestLog`, which records each one with the
port it went to, so that a test can tell which server was asked what.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import trio

from arktos_lite import apiserver, client, storage
from arktos_lite.api import partitions, resources

from .._server import ADMIN_TOKEN, Server

REGISTRY = resources.Registry()


def resource(plural: str) -> resources.Resource:
    found = REGISTRY.get("", "v1", plural)
    assert found is not None
    return found


TENANTS = resource("tenants")
NAMESPACES = resource("namespaces")
PODS = resource("pods")
NODES = resource("nodes")

A = partitions.Partition("a", partitions.TenantRange("", "t2"))
B = partitions.Partition("b", partitions.TenantRange("t2", ""))


@dataclasses.dataclass(frozen=True, slots=True)
class Sent:
    port: int | None
    method: str
    path: str
    params: dict[str, str]

    @property
    def is_list(self) -> bool:
        return self.method == "GET" and "watch" not in self.params

    @property
    def is_watch(self) -> bool:
        return self.method == "GET" and self.params.get("watch") == "1"


class RequestLog(httpx.AsyncBaseTransport):
    """The network, recording each request as it is sent."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport(retries=0)
        self.sent: list[Sent] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(
            Sent(request.url.port, request.method, request.url.path, dict(request.url.params))
        )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def to(self, server: Server, path: str | None = None) -> list[Sent]:
        return [s for s in self.sent if s.port == server.port and path in (None, s.path)]


@dataclasses.dataclass
class Partitions:
    a: Server
    b: Server
    nursery: trio.Nursery
    log: RequestLog

    def routed(self, **kwargs: Any) -> client.RoutedClient:
        kwargs.setdefault("timeout", 10.0)
        kwargs.setdefault("qps", 1000.0)
        kwargs.setdefault("burst", 1000)
        return client.RoutedClient(
            [
                (A, client.Config(self.a.url, token=ADMIN_TOKEN)),
                (B, client.Config(self.b.url, token=ADMIN_TOKEN)),
            ],
            transport=self.log,
            **kwargs,
        )

    def direct(self, server: Server) -> client.Client:
        """A client of one server alone, to see what that server holds."""
        return client.Client(client.Config(server.url, token=ADMIN_TOKEN), timeout=10.0)


class PartitionServer(Server):
    """A test server that serves one partition (and refuses the rest with 421)."""

    def __init__(self, partition: partitions.Partition, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.partition = partition

    async def start(self) -> None:
        assert self._api is None, "the server is running"
        options = apiserver.ServeOptions(
            port=self.port,
            limits=self._limits,
            graceful_timeout=self._graceful_timeout,
            partition=self.partition,
            # Disjoint ranges of cluster IPs, as partitions need.
            service_cidr="10.96.0.0/16" if self.partition.tenants.designated else "10.97.0.0/16",
        )
        api = apiserver.APIServer(self.backend, authenticator=self._auth, options=options)
        stopped = trio.Event()

        async def serve(*, task_status: trio.TaskStatus[apiserver.Bound]) -> None:
            try:
                await api.run(task_status=task_status)
            finally:
                stopped.set()

        bound: apiserver.Bound = await self._nursery.start(serve)
        self._api, self._stopped = api, stopped
        self.url, self.port = bound.url, bound.port


@contextlib.asynccontextmanager
async def open_partitions(*, enforce: bool = False) -> AsyncIterator[Partitions]:
    """Both servers running, tenants t1 (in a) and t2 (in b) made, each with `default`."""
    async with (
        storage.open_store("sqlite://") as store_a,
        storage.open_store("sqlite://") as store_b,
        trio.open_nursery() as nursery,
    ):
        a, b = (
            PartitionServer(partition, backend=store, nursery=nursery, graceful_timeout=0.5)
            if enforce
            else Server(backend=store, nursery=nursery, graceful_timeout=0.5)
            for partition, store in ((A, store_a), (B, store_b))
        )
        await a.start()
        await b.start()
        both = Partitions(a=a, b=b, nursery=nursery, log=RequestLog())
        async with both.routed() as api:
            for tenant in ("t1", "t2"):
                await api.create(TENANTS, {"metadata": {"name": tenant}})
                await api.create(NAMESPACES, {"metadata": {"name": "default"}}, tenant=tenant)
        try:
            yield both
        finally:
            for server in (a, b):
                if server.running:
                    await server.stop()


@contextlib.asynccontextmanager
async def stand_in(server: Server, nursery: trio.Nursery) -> AsyncIterator[client.Client]:
    """While `server` is down, another server over its store (on another port), and a
    client of it: what a client writes through it is in the store when `server` returns."""
    assert not server.running
    other = Server(backend=server.backend, nursery=nursery, graceful_timeout=0.5)
    await other.start()
    try:
        async with client.Client(client.Config(other.url, token=ADMIN_TOKEN), timeout=10.0) as api:
            yield api
    finally:
        await other.stop()


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
