"""Real API servers on free loopback ports, and clients of them, for the client's tests.

Users: `admin` (system tenant), `alice` of tenant t1 and `bob` of tenant t2, by bearer
token. The `cluster` fixture runs one server over an in-memory store and can stop it and
start it again on the same port, over the same store, as a restarted server would be.
Tenants t1 and t2, each with namespace `default`, exist from the start.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from arktos_lite import apiserver, client, storage
from arktos_lite.api import resources
from arktos_lite.apiserver import _authn as authn

ADMIN_TOKEN = "admin-token"
ALICE_TOKEN = "alice-token"
BOB_TOKEN = "bob-token"

Obj = dict[str, Any]

REGISTRY = resources.Registry()


def resource(plural: str, group: str = "") -> resources.Resource:
    found = REGISTRY.get(group, "v1", plural)
    assert found is not None
    return found


TENANTS = resource("tenants")
NAMESPACES = resource("namespaces")
PODS = resource("pods")
CONFIGMAPS = resource("configmaps")
NODES = resource("nodes")


def authenticator() -> authn.Authenticator:
    return authn.Authenticator(
        admin_token=ADMIN_TOKEN,
        tokens=(
            authn.TokenEntry(ALICE_TOKEN, authn.User("alice", "1", (), "t1")),
            authn.TokenEntry(BOB_TOKEN, authn.User("bob", "2", (), "t2")),
        ),
    )


class Cluster:
    """One API server over one store, which a test may stop and start again."""

    def __init__(
        self,
        nursery: trio.Nursery,
        backend: storage.Backend,
        *,
        auth: authn.Authenticator,
        tls: apiserver.TLSFiles | None = None,
    ) -> None:
        self._nursery = nursery
        self.backend = backend
        self._auth = auth
        self._tls = tls
        self._api: apiserver.APIServer | None = None
        self._stopped = trio.Event()
        self.url = ""
        self.port = 0

    @property
    def api(self) -> apiserver.APIServer:
        assert self._api is not None
        return self._api

    async def start(self) -> None:
        options = apiserver.ServeOptions(port=self.port, tls=self._tls, graceful_timeout=1.0)
        self._api = apiserver.APIServer(self.backend, authenticator=self._auth, options=options)
        self._stopped = trio.Event()
        bound: apiserver.Bound = await self._nursery.start(self._run, self._api, self._stopped)
        self.url, self.port = bound.url, bound.port

    async def stop(self) -> None:
        """Stop the server and wait until it no longer listens."""
        if self._api is not None:
            self._api.stop()
            await self._stopped.wait()
            self._api = None

    @staticmethod
    async def _run(
        api: apiserver.APIServer,
        stopped: trio.Event,
        *,
        task_status: trio.TaskStatus[apiserver.Bound] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            await api.run(task_status=task_status)
        finally:
            stopped.set()

    def client(
        self, token: str | None = ADMIN_TOKEN, *, tenant: str | None = None, **kwargs: Any
    ) -> client.Client:
        kwargs.setdefault("timeout", 10.0)
        return client.Client(client.Config(self.url, token=token, tenant=tenant), **kwargs)


@contextlib.asynccontextmanager
async def running(
    *, auth: authn.Authenticator | None = None, tls: apiserver.TLSFiles | None = None
) -> AsyncIterator[Cluster]:
    async with storage.open_store("sqlite://") as backend, trio.open_nursery() as nursery:
        cluster = Cluster(nursery, backend, auth=auth or authenticator(), tls=tls)
        await cluster.start()
        try:
            yield cluster
        finally:
            await cluster.stop()


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with running() as started:
        async with started.client() as admin:
            for tenant in ("t1", "t2"):
                await admin.create(TENANTS, {"metadata": {"name": tenant}})
                await admin.create(NAMESPACES, {"metadata": {"name": "default"}}, tenant=tenant)
        yield started


@pytest.fixture
async def admin(cluster: Cluster) -> AsyncIterator[client.Client]:
    async with cluster.client() as api:
        yield api


@pytest.fixture
async def alice(cluster: Cluster) -> AsyncIterator[client.Client]:
    async with cluster.client(ALICE_TOKEN) as api:
        yield api


def pod(name: str, **labels: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


def configmap(name: str, *, namespace: str = "default", **data: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


@dataclasses.dataclass(frozen=True, slots=True)
class Seen:
    type: str
    name: str
    resource_version: str


def seen(event: client.WatchEvent) -> Seen:
    meta = event.object["metadata"]
    return Seen(event.type, meta.get("name", ""), meta["resourceVersion"])
