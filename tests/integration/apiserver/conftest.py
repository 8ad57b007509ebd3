"""A real API server on a free loopback port, over a fresh store, for HTTP-level tests.

Users: `admin` (system tenant, the admin token), `alice` of tenant t1, `bob` of tenant t2.
Tenants t1 and t2 (and their namespaces) exist only once a test creates them, with
`make_tenant`; `watching` follows a watch stream in the background.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio

from arktos_lite import apiserver

from .. import _server
from .._server import (
    ADMIN_TOKEN as ADMIN_TOKEN,
    ALICE_TOKEN as ALICE_TOKEN,
    BOB_TOKEN as BOB_TOKEN,
    authenticator as authenticator,
)

Obj = dict[str, Any]


class Server(_server.Server):
    """`tests/integration/_server.py`'s server, with plain HTTP clients of it."""

    def client(self, token: str | None = ADMIN_TOKEN) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)


def start_server(
    limits: apiserver.Limits | None = None,
) -> contextlib.AbstractAsyncContextManager[Server]:
    """A server over an in-memory store, with default limits unless told otherwise."""
    return Server.open(limits=limits)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with start_server() as started:
        yield started


@pytest.fixture
async def admin(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as client:
        yield client


async def make_tenant(
    admin: httpx.AsyncClient, name: str, *, namespaces: tuple[str, ...] = ("default",)
) -> None:
    """Create a tenant and some of its namespaces (there is no tenant controller yet)."""
    created = await admin.post("/api/v1/tenants", json={"metadata": {"name": name}})
    assert created.status_code == 201, created.text
    for namespace in namespaces:
        created = await admin.post(
            f"/api/v1/tenants/{name}/namespaces", json={"metadata": {"name": namespace}}
        )
        assert created.status_code == 201, created.text


def pod(name: str, **labels: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


def configmap(name: str, **data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def deployment(name: str, *, replicas: int = 1) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }


async def created(client: httpx.AsyncClient, url: str, body: Obj) -> Obj:
    response = await client.post(url, json=body)
    assert response.status_code == 201, response.text
    result: Obj = response.json()
    return result


async def names(client: httpx.AsyncClient, url: str, **params: str) -> list[str]:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    return [item["metadata"]["name"] for item in response.json()["items"]]


@contextlib.asynccontextmanager
async def watching(
    client: httpx.AsyncClient, url: str, **params: str
) -> AsyncIterator[trio.MemoryReceiveChannel[Obj]]:
    """The events of a watch as they arrive; the channel ends when the stream does.

    The first item is the response itself as `{"status": code}`, so a test sees errors.
    """
    send, receive = trio.open_memory_channel[Obj](1000)

    async def read() -> None:
        async with send, client.stream("GET", url, params=params) as response:
            await send.send({"status": response.status_code})
            if response.status_code != 200:
                await send.send(json.loads(await response.aread()))
                return
            async for line in response.aiter_lines():
                if line.strip():
                    await send.send(json.loads(line))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        yield receive
        nursery.cancel_scope.cancel()


async def next_event(events: trio.MemoryReceiveChannel[Obj], *, within: float = 5) -> Obj:
    with trio.fail_after(within):
        return await events.receive()


async def rest_of(events: trio.MemoryReceiveChannel[Obj], *, within: float = 5) -> list[Obj]:
    """Every event until the stream ends."""
    with trio.fail_after(within):
        return [event async for event in events]


async def take(events: trio.MemoryReceiveChannel[Obj], count: int) -> list[Obj]:
    """The next `count` events."""
    return [await next_event(events) for _ in range(count)]
