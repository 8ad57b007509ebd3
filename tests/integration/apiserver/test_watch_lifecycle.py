"""Watch streams end without harming the server: client gone, long-lived, batched, too
slow to keep up, server stopping."""

from __future__ import annotations

import socket

import httpx
import pytest
import trio

from arktos_lite.apiserver import _watch as watch_cache

from .conftest import ADMIN_TOKEN, Server, next_event, rest_of, start_server, take, watching

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def _configmap(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


async def test_a_watcher_that_disconnects_does_not_stop_the_server(
    server: Server, admin: httpx.AsyncClient
) -> None:
    async with (
        server.client() as watcher,
        watcher.stream("GET", CONFIGMAPS, params={"watch": "1"}) as response,
    ):
        assert response.status_code == 200
    # The watcher is gone; the next change must not take the server down with it.
    for i in range(3):
        created = await admin.post(CONFIGMAPS, json=_configmap(f"after-{i}"))
        assert created.status_code == 201
        await trio.sleep(0.05)
    assert (await admin.get("/readyz")).status_code == 200
    assert (await admin.get(f"{CONFIGMAPS}/after-2")).status_code == 200


async def test_a_burst_of_events_arrives_complete_and_in_order(
    server: Server, admin: httpx.AsyncClient
) -> None:
    listed = (await admin.get(CONFIGMAPS)).json()
    rv = listed["metadata"]["resourceVersion"]
    for i in range(50):
        await admin.post(CONFIGMAPS, json=_configmap(f"burst-{i:02}"))
    names = []
    async with admin.stream(
        "GET", CONFIGMAPS, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1"}
    ) as response:
        async for line in response.aiter_lines():
            if line:
                names.append(httpx.Response(200, content=line).json()["object"]["metadata"]["name"])
    assert names == [f"burst-{i:02}" for i in range(50)]


async def test_a_slow_watcher_is_cut_off_without_delaying_writers_or_other_watchers(
    server: Server, admin: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch_cache, "LOG_SIZE", 4)
    rv = (await admin.get(CONFIGMAPS)).json()["metadata"]["resourceVersion"]
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    # A watcher that reads nothing after the head, through a small receive window.
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect((host, int(port)))
    slow = trio.SocketStream(sock)
    await slow.send_all(
        f"GET {CONFIGMAPS}?watch=1&resourceVersion={rv} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {ADMIN_TOKEN}\r\n\r\n".encode()
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += await slow.receive_some(1)
    assert head.startswith(b"HTTP/1.1 200")
    count = 24
    blob = "x" * 500_000  # 12 MB in all: far more than the slow socket's buffers hold
    async with watching(admin, CONFIGMAPS, watch="1", resourceVersion=rv) as fast:
        assert await next_event(fast) == {"status": 200}
        with trio.fail_after(30):
            for i in range(count):
                body = {**_configmap(f"big-{i:02}"), "data": {"blob": blob}}
                assert (await admin.post(CONFIGMAPS, json=body)).status_code == 201
            found = [event["object"]["metadata"]["name"] for event in await take(fast, count)]
    assert found == [f"big-{i:02}" for i in range(count)]
    # Once it reads again, the slow watcher finds its stream ended, short of the events.
    received = b""
    with trio.fail_after(30):
        while not received.endswith(b"\r\n0\r\n\r\n"):
            data = await slow.receive_some(1 << 20)
            assert data, "the server closed the connection instead of ending the stream"
            received += data
    await slow.aclose()
    assert 0 < received.count(b'"type":"ADDED"') < count


async def test_watches_end_when_the_server_stops() -> None:
    async with (
        start_server() as server,
        server.client() as admin,
        watching(admin, CONFIGMAPS, watch="1") as events,
    ):
        assert await next_event(events) == {"status": 200}
        stopping = trio.current_time()
        server.api.stop()
        assert await rest_of(events, within=3) == []
        # Well before the grace period (1 s) would cut the connection.
        assert trio.current_time() - stopping < 0.8
