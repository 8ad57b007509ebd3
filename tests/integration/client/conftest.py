"""Real API servers on free loopback ports, and clients of them, for the client's tests.

Users: `admin` (system tenant), `alice` of tenant t1 and `bob` of tenant t2, by bearer
token. The `cluster` fixture runs one server over an in-memory store and can stop it and
start it again on the same port, over the same store, as a restarted server would be.
Tenants t1 and t2, each with namespace `default`, exist from the start.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from arktos_lite import client
from arktos_lite.api import resources

from .._server import ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN as BOB_TOKEN, Server

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


class Cluster(Server):
    """One API server over one store, which a test may stop and start again."""

    def client(
        self, token: str | None = ADMIN_TOKEN, *, tenant: str | None = None, **kwargs: Any
    ) -> client.Client:
        kwargs.setdefault("timeout", 10.0)
        return client.Client(client.Config(self.url, token=token, tenant=tenant), **kwargs)


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with Cluster.open() as started:
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
