"""Watch streams over a scripted server: events, errors, endings and broken connections."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
import trio.testing

from arktos_lite import client
from arktos_lite.api import errors

from ._fakes import CONFIGMAPS, PODS, FakeServer, Stream, event_line, status


def cm(name: str, rv: str) -> dict[str, object]:
    return {"metadata": {"name": name, "resourceVersion": rv}}


def streaming(stream: Stream) -> httpx.Response:
    return httpx.Response(200, headers={"Content-Type": "application/json"}, stream=stream)


async def collect(
    api: client.Client, *, into: list[client.WatchEvent] | None = None, **kwargs: Any
) -> list[client.WatchEvent]:
    """The events of a watch of config maps until it ends, also appended to `into`."""
    seen = into if into is not None else []
    async with api.watch(CONFIGMAPS, **kwargs) as events:
        async for event in events:
            seen.append(event)
    return seen


async def test_events_in_order_until_the_server_ends_the_stream() -> None:
    lines = [
        event_line("ADDED", cm("a", "2")),
        event_line("MODIFIED", cm("a", "3")),
        b"\n",
        event_line("BOOKMARK", cm("", "4")),
        event_line("DELETED", cm("a", "5")),
    ]
    # Lines split across chunks arrive whole.
    body = b"".join(lines)
    stream = Stream([body[:10], body[10:57], body[57:]])
    server = FakeServer(default=streaming(stream))
    async with server.client() as api:
        events = await collect(api, namespace="ns", resource_version="1", timeout_seconds=30)
    assert [(e.type, e.object["metadata"]["resourceVersion"]) for e in events] == [
        ("ADDED", "2"),
        ("MODIFIED", "3"),
        ("BOOKMARK", "4"),
        ("DELETED", "5"),
    ]
    assert events[0] == client.WatchEvent(type="ADDED", object=cm("a", "2"))
    assert stream.closed
    seen = server.last
    assert (seen.method, seen.path) == ("GET", "/api/v1/namespaces/ns/configmaps")
    assert seen.params == {
        "watch": ["1"],
        "allowWatchBookmarks": ["true"],
        "resourceVersion": ["1"],
        "timeoutSeconds": ["30"],
    }


async def test_watch_parameters() -> None:
    server = FakeServer(default=streaming(Stream([])))
    config = client.Config("http://fake", tenant="t1")
    watch_options: dict[str, Any] = {
        "tenant": "all",
        "label_selector": "app=web",
        "field_selector": "spec.nodeName=n1",
        "allow_bookmarks": False,
    }
    async with server.client(config) as api, api.watch(PODS, **watch_options) as events:
        assert [event async for event in events] == []
    assert server.last.path == "/api/v1/tenants/all/pods"
    assert server.last.params == {
        "watch": ["1"],
        "labelSelector": ["app=web"],
        "fieldSelector": ["spec.nodeName=n1"],
    }


async def test_an_error_event_raises_the_status_it_carries() -> None:
    gone = status(410, "Expired", "too old resource version: 1 (7)").json()
    stream = Stream([event_line("ADDED", cm("a", "8")), event_line("ERROR", gone)])
    server = FakeServer(default=streaming(stream))
    seen: list[client.WatchEvent] = []
    async with server.client() as api:
        with pytest.raises(errors.Gone, match=r"too old resource version: 1 \(7\)"):
            await collect(api, into=seen, resource_version="1")
    assert [e.type for e in seen] == ["ADDED"]
    assert stream.closed


async def test_a_broken_connection_mid_stream_is_unreachable() -> None:
    stream = Stream(
        [event_line("ADDED", cm("a", "2"))],
        then=httpx.RemoteProtocolError("peer closed connection without sending complete body"),
    )
    server = FakeServer(default=streaming(stream))
    seen: list[client.WatchEvent] = []
    async with server.client() as api:
        with pytest.raises(client.Unreachable, match="the connection broke"):
            await collect(api, into=seen)
    assert [e.type for e in seen] == ["ADDED"]
    # No reconnect inside: the caller resumes from its last version.
    assert len(server.seen) == 1


async def test_leaving_early_closes_the_stream() -> None:
    stream = Stream([event_line("ADDED", cm(str(i), str(i))) for i in range(100)])
    server = FakeServer(default=streaming(stream))
    async with server.client() as api, api.watch(CONFIGMAPS) as events:
        async for event in events:
            assert event.type == "ADDED"
            break
    assert stream.closed


async def test_the_opening_request_is_retried(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeServer(default=streaming(Stream([event_line("ADDED", cm("a", "2"))])))
    server.script = [httpx.ConnectError("refused"), status(429, "TooManyRequests", "too many")]
    async with server.client() as api:
        events = await collect(api)
    assert [e.type for e in events] == ["ADDED"]
    assert len(server.seen) == 3


async def test_an_opening_refused_raises_its_error() -> None:
    server = FakeServer(default=status(403, "Forbidden", "no"))
    async with server.client() as api:
        with pytest.raises(errors.Forbidden, match="no"):
            await collect(api)


async def test_a_watch_takes_one_token_to_start_and_none_while_it_streams(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lines = [event_line("MODIFIED", cm("a", str(i))) for i in range(50)]
    server = FakeServer(default=streaming(Stream(lines)))
    async with server.client(qps=1, burst=1) as api:
        start = trio.current_time()
        events = await collect(api)
        assert trio.current_time() == start
    assert len(events) == 50


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b"{not json\n", "not JSON"),
        (b'{"type":"ADDED"}\n', "without a type and an object"),
        (b'"text"\n', "without a type and an object"),
    ],
)
async def test_garbled_events(line: bytes, words: str) -> None:
    server = FakeServer(default=streaming(Stream([line])))
    async with server.client() as api:
        with pytest.raises(errors.InternalError, match=words):
            await collect(api)


async def test_an_error_event_without_a_status() -> None:
    server = FakeServer(default=streaming(Stream([b'{"type":"ERROR","object":"boom"}\n'])))
    async with server.client() as api:
        with pytest.raises(errors.InternalError, match="boom"):
            await collect(api)


async def test_leaving_without_reading_closes_the_stream() -> None:
    stream = Stream([event_line("ADDED", cm("a", "2"))])
    server = FakeServer(default=streaming(stream))
    async with server.client() as api, api.watch(CONFIGMAPS):
        pass
    assert stream.closed
