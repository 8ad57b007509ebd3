"""A real API server on a free loopback port, and the users it knows, for integration tests.

Users, by bearer token: `admin` (system tenant, may go everywhere), `alice` of tenant t1
and `bob` of tenant t2. `Server.stop` brings the server down (its watches break, as when
the process dies) and waits until it no longer listens; `Server.start` starts a new one on
the same port over the same store, whose objects and history survive.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import AsyncIterator
from typing import Self

import trio

from arktos_lite import apiserver, storage
from arktos_lite.apiserver import _authn as authn

ADMIN_TOKEN = "admin-token"
ALICE_TOKEN = "alice-token"
BOB_TOKEN = "bob-token"


def authenticator() -> authn.Authenticator:
    return authn.Authenticator(
        admin_token=ADMIN_TOKEN,
        tokens=(
            authn.TokenEntry(ALICE_TOKEN, authn.User("alice", "1", (), "t1")),
            authn.TokenEntry(BOB_TOKEN, authn.User("bob", "2", (), "t2")),
        ),
    )


class Server:
    """One API server process-alike over `backend`, run in `nursery`; see the module docs."""

    def __init__(
        self,
        *,
        backend: storage.Backend,
        nursery: trio.Nursery,
        auth: authn.Authenticator | None = None,
        tls: apiserver.TLSFiles | None = None,
        limits: apiserver.Limits | None = None,
        graceful_timeout: float = 1.0,
        unix_socket: pathlib.Path | None = None,
    ) -> None:
        self.backend = backend
        self.unix_socket = unix_socket
        self._nursery = nursery
        self._auth = auth or authenticator()
        self._tls = tls
        self._limits = limits or apiserver.Limits()
        self._graceful_timeout = graceful_timeout
        self._api: apiserver.APIServer | None = None
        self._stopped = trio.Event()
        self.url = ""
        self.port = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        *,
        auth: authn.Authenticator | None = None,
        tls: apiserver.TLSFiles | None = None,
        limits: apiserver.Limits | None = None,
        graceful_timeout: float = 1.0,
        unix_socket: pathlib.Path | None = None,
    ) -> AsyncIterator[Self]:
        """A started server over a fresh in-memory store, stopped (if running) on exit."""
        async with storage.open_store("sqlite://") as backend, trio.open_nursery() as nursery:
            server = cls(
                backend=backend,
                nursery=nursery,
                auth=auth,
                tls=tls,
                limits=limits,
                graceful_timeout=graceful_timeout,
                unix_socket=unix_socket,
            )
            await server.start()
            try:
                yield server
            finally:
                if server.running:
                    await server.stop()

    @property
    def running(self) -> bool:
        return self._api is not None

    @property
    def api(self) -> apiserver.APIServer:
        assert self._api is not None, "the server is not running"
        return self._api

    async def start(self) -> None:
        assert self._api is None, "the server is running"
        options = apiserver.ServeOptions(
            port=self.port,
            tls=self._tls,
            limits=self._limits,
            graceful_timeout=self._graceful_timeout,
            unix_socket=self.unix_socket,
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
