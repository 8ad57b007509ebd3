"""Controllers against a real API server, reached only through the client, as in production.

* `server`: an API server on a free loopback port over an in-memory store. `stop()`,
  `start()` and `restart()` bring it down and up again on the same port over the same
  store, as a restarted process would be.
* `api`: an `arktos_lite.client.Client` with the admin token (system tenant, may go
  everywhere).
* `informers`: an `InformerFactory` over `api`, not started: controllers register their
  informers first.
* `recorder`: an `EventRecorder` for the controllers under test.
* `controllers`: starts, in its own nursery, the recorder, the informers (until synced)
  and then each controller given to `start`; all stop before the server does.
* `eventually(predicate, timeout)`: polls a (sync or async) predicate on trio's clock
  until it gives something truthy, and returns that.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar, overload

import pytest
import trio

from arktos_lite import apiserver, client, machinery, storage
from arktos_lite.api import errors, resources

ADMIN_TOKEN = "admin-token"

Obj = dict[str, Any]
T = TypeVar("T")

REGISTRY = resources.Registry()


def resource(plural: str, group: str = "") -> resources.Resource:
    """A resource of the registry by its URL name, e.g. `resource("deployments", "apps")`."""
    for candidate in REGISTRY:
        if candidate.plural == plural and candidate.group == group:
            return candidate
    raise LookupError(f"no resource {plural!r} in group {group!r}")


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


def authenticator() -> apiserver.Authenticator:
    return apiserver.Authenticator(admin_token=ADMIN_TOKEN)


class _Runnable(Protocol):
    async def run(self, *, task_status: trio.TaskStatus[None] = ...) -> None: ...


@dataclasses.dataclass
class Server:
    """One API server process-alike; see the module docs."""

    backend: storage.Backend
    nursery: trio.Nursery
    port: int = 0
    url: str = ""
    _api: apiserver.APIServer | None = None
    _stopped: trio.Event = dataclasses.field(default_factory=trio.Event)

    @property
    def running(self) -> bool:
        return self._api is not None

    async def start(self) -> None:
        assert self._api is None, "the server is running"
        options = apiserver.ServeOptions(port=self.port, graceful_timeout=1.0)
        api = apiserver.APIServer(self.backend, authenticator=authenticator(), options=options)
        stopped = trio.Event()

        async def serve(*, task_status: trio.TaskStatus[apiserver.Bound]) -> None:
            try:
                await api.run(task_status=task_status)
            finally:
                stopped.set()

        bound: apiserver.Bound = await self.nursery.start(serve)
        self._api, self._stopped = api, stopped
        self.port, self.url = bound.port, bound.url

    async def stop(self) -> None:
        """Stop accepting, end the watches, and wait until the server is down.

        The store stays open: a later `start` finds every object again.
        """
        assert self._api is not None, "the server is not running"
        self._api.stop()
        await self._stopped.wait()
        self._api = None

    async def restart(self, *, down_for: float = 0.0) -> None:
        await self.stop()
        await trio.sleep(down_for)
        await self.start()


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
    async with storage.open_store("sqlite://") as backend, trio.open_nursery() as nursery:
        running = Server(backend=backend, nursery=nursery)
        await running.start()
        yield running
        if running.running:
            await running.stop()


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
