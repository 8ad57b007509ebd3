"""A real API server on a free loopback port, over a fresh store, for HTTP-level tests.

Users: `admin` (system tenant, the admin token), `alice` of tenant t1, `bob` of tenant t2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from arktos_lite import apiserver, storage
from arktos_lite.apiserver import _authn as authn

ADMIN_TOKEN = "admin-token"
ALICE_TOKEN = "alice-token"
BOB_TOKEN = "bob-token"


@dataclasses.dataclass
class Server:
    url: str
    api: apiserver.APIServer

    def client(self, token: str | None = ADMIN_TOKEN) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)


def authenticator() -> authn.Authenticator:
    return authn.Authenticator(
        admin_token=ADMIN_TOKEN,
        tokens=(
            authn.TokenEntry(ALICE_TOKEN, authn.User("alice", "1", (), "t1")),
            authn.TokenEntry(BOB_TOKEN, authn.User("bob", "2", (), "t2")),
        ),
    )


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    options = apiserver.ServeOptions(port=0, graceful_timeout=1.0)
    async with storage.open_store("sqlite://") as backend, trio.open_nursery() as nursery:
        api = apiserver.APIServer(backend, authenticator=authenticator(), options=options)
        bound = await nursery.start(api.run)
        yield Server(url=bound.url, api=api)
        api.stop()


@pytest.fixture
async def admin(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as client:
        yield client
