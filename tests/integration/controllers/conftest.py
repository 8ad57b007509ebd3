"""Controllers against a real API server, reached only through the client, as in production.

* `server`: an API server (`tests/integration/_server.py`) on a free loopback port over an
  in-memory store. `stop()`, `start()` and `restart()` bring it down and up again on the
  same port over the same store, as a restarted process would be.
* `api`: an `arktos_lite.client.Client` with the admin token (system tenant, may go
  everywhere).
* `informers`: an `InformerFactory` over `api`, not started: controllers register their
  informers first.
* `recorder`: an `EventRecorder` for the controllers under test.
* `controllers`: starts, in its own nursery, the recorder, the informers (until synced)
  and then each controller given to `start`; all stop before the server does.
* `eventually(predicate, timeout)`: polls a (sync or async) predicate on trio's clock
  until it gives something truthy, and returns that.
* `resource(plural, group)` looks a resource up in the registry; the ones these tests
  use are here by name (`PODS`, `DEPLOYMENTS`, …).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar, overload

import pytest
import trio

from arktos_lite import client, machinery
from arktos_lite.api import errors, resources

from .._server import ADMIN_TOKEN, Server

Obj = dict[str, Any]
T = TypeVar("T")

REGISTRY = resources.Registry()


def resource(plural: str, group: str = "") -> resources.Resource:
    """A resource of the registry by its URL name, e.g. `resource("deployments", "apps")`."""
    for candidate in REGISTRY:
        if candidate.plural == plural and candidate.group == group:
            return candidate
    raise LookupError(f"no resource {plural!r} in group {group!r}")


RBAC = "rbac.authorization.k8s.io"
TENANTS = resource("tenants")
NAMESPACES = resource("namespaces")
NODES = resource("nodes")
PODS = resource("pods")
EVENTS = resource("events")
CONFIGMAPS = resource("configmaps")
SECRETS = resource("secrets")
SERVICES = resource("services")
ENDPOINTS = resource("endpoints")
SERVICE_ACCOUNTS = resource("serviceaccounts")
LEASES = resource("leases", "coordination.k8s.io")
DEPLOYMENTS = resource("deployments", "apps")
REPLICASETS = resource("replicasets", "apps")
ROLES = resource("roles", RBAC)
CLUSTER_ROLES = resource("clusterroles", RBAC)
CLUSTER_ROLE_BINDINGS = resource("clusterrolebindings", RBAC)


@overload
async def eventually(
    predicate: Callable[[], Awaitable[T | None]],
    timeout: float = ...,  # noqa: ASYNC109
    *,
    interval: float = ...,
) -> T: ...


@overload
async def eventually(
    predicate: Callable[[], T | None],
    timeout: float = ...,  # noqa: ASYNC109
    *,
    interval: float = ...,
) -> T: ...


async def eventually(
    predicate: Callable[[], Any],
    # A polling helper's bound is its argument (applied with trio.fail_after below).
    timeout: float = 5.0,  # noqa: ASYNC109
    *,
    interval: float = 0.05,
) -> Any:
    """The first truthy value of `predicate`, polled every `interval` seconds.

    Fails the test (AssertionError, with the last value seen) after `timeout` seconds.
    """
    last: Any = None
    try:
        with trio.fail_after(timeout):
            while True:
                result = predicate()
                if inspect.isawaitable(result):
                    result = await result
                last = result
                if result:
                    return result
                await trio.sleep(interval)
    except trio.TooSlowError:
        raise AssertionError(f"not true within {timeout} s; last value: {last!r}") from None


async def exists(
    api: client.Client,
    kind: resources.Resource,
    name: str,
    *,
    tenant: str | None = None,
    namespace: str | None = None,
) -> Obj | None:
    """The object, or None when the API answers 404."""
    try:
        return await api.get(kind, name, tenant=tenant, namespace=namespace)
    except errors.NotFound:
        return None


class _Runnable(Protocol):
    async def run(self, *, task_status: trio.TaskStatus[None] = ...) -> None: ...


@dataclasses.dataclass
class Controllers:
    nursery: trio.Nursery
    informers: machinery.InformerFactory
    recorder: machinery.EventRecorder
    _started: bool = False

    async def start(self, *controllers: _Runnable) -> None:
        """Start the recorder and the informers (once), then each controller in order."""
        if not self._started:
            self._started = True
            await self.nursery.start(self.recorder.run)
            await self.nursery.start(self.informers.run)
        for controller in controllers:
            await self.nursery.start(controller.run)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with Server.open() as running:
        yield running


@pytest.fixture
async def api(server: Server) -> AsyncIterator[client.Client]:
    config = client.Config(server=server.url, token=ADMIN_TOKEN)
    # Tests poll through the same client as the controllers: no rate limit in their way.
    async with client.Client(config, qps=1000, burst=1000) as connected:
        yield connected


@pytest.fixture
def informers(api: client.Client) -> machinery.InformerFactory:
    return machinery.InformerFactory(api)


@pytest.fixture
def recorder(api: client.Client) -> machinery.EventRecorder:
    return machinery.EventRecorder(api, component="controller-tests")


@pytest.fixture
async def controllers(
    server: Server,
    api: client.Client,
    informers: machinery.InformerFactory,
    recorder: machinery.EventRecorder,
) -> AsyncIterator[Controllers]:
    async with trio.open_nursery() as nursery:
        yield Controllers(nursery=nursery, informers=informers, recorder=recorder)
        nursery.cancel_scope.cancel()
