"""A real API server for the machinery, one that can restart on the same port over the
same store, and a client connected to it.

The server is `tests/integration/_server.py`'s (the same users and tokens as every
integration test's); `Server.restart` stops it (its watches break, as when the process
dies) and starts a new one on the same port over the same store, whose history survives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio

from arktos_lite import client, machinery
from arktos_lite.api import resources

from .._server import ADMIN_TOKEN, Server

Obj = dict[str, Any]

REGISTRY = resources.Registry()


def resource(plural: str) -> resources.Resource:
    found = next((r for r in REGISTRY if r.plural == plural), None)
    assert found is not None, plural
    return found


PODS = resource("pods")
NODES = resource("nodes")
EVENTS = resource("events")
TENANTS = resource("tenants")
NAMESPACES = resource("namespaces")


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with Server.open(graceful_timeout=0.5) as running:
        yield running


@pytest.fixture
async def api(server: Server) -> AsyncIterator[client.Client]:
    # Few, quick retries: the reflector's own backoff is what these tests watch.
    config = client.Config(server=server.url, token=ADMIN_TOKEN)
    async with client.Client(config, retries=2, backoff_max=0.5, qps=1000, burst=1000) as c:
        yield c


async def make_tenant(api: client.Client, name: str, *namespaces: str) -> None:
    await api.create(TENANTS, {"metadata": {"name": name}})
    for namespace in namespaces:
        await api.create(NAMESPACES, {"metadata": {"name": namespace}}, tenant=name)


def pod(name: str, **labels: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


async def eventually(condition: Callable[[], bool], *, within: float = 20.0) -> None:
    """Wait until `condition` holds, checking every 20 ms of real time."""
    with trio.fail_after(within):
        # The cache catches up in its own tasks; polling is the plain way to wait for it.
        while not condition():  # noqa: ASYNC110
            await trio.sleep(0.02)


async def server_versions(api: client.Client, target: resources.Resource) -> dict[str, str]:
    """What the server holds: object key to resourceVersion."""
    listed = await api.list(target, tenant=resources.ALL_TENANTS)
    return {
        machinery.object_key(item, scope=target.scope): item["metadata"]["resourceVersion"]
        for item in listed["items"]
    }


class Recorder:
    """A handler that insists on a consistent story: adds of objects it does not hold,
    updates of ones it holds to later versions, deletes of ones it holds. Violations are
    collected (informers swallow what handlers raise); `picture` maps key to version."""

    def __init__(self) -> None:
        self.picture: dict[str, str] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.violations: list[str] = []

    def attach(self, target: machinery.Informer) -> None:
        target.add_handler(on_add=self.on_add, on_update=self.on_update, on_delete=self.on_delete)

    def on_add(self, obj: Obj) -> None:
        key, version = machinery.object_key(obj), obj["metadata"]["resourceVersion"]
        if key in self.picture:
            self.violations.append(f"add of {key}, which is already there")
        self.picture[key] = version
        self.calls.append(("add", key, version))

    def on_update(self, old: Obj, new: Obj) -> None:
        key, version = machinery.object_key(new), new["metadata"]["resourceVersion"]
        if self.picture.get(key) != old["metadata"]["resourceVersion"]:
            self.violations.append(f"update of {key} from a version not told")
        if int(version) <= int(old["metadata"]["resourceVersion"]):
            self.violations.append(f"update of {key} to no newer version")
        self.picture[key] = version
        self.calls.append(("update", key, version))

    def on_delete(self, obj: Obj) -> None:
        key = machinery.object_key(obj)
        if self.picture.pop(key, None) is None:
            self.violations.append(f"delete of {key}, which was never there")
        self.calls.append(("delete", key, obj["metadata"]["resourceVersion"]))
