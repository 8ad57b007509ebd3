"""A scripted API server behind `httpx.MockTransport`, and the resources the tests use.

Each request is recorded with the trio time it arrived at; the answers come from a
script (a list of responses or exceptions, consumed in order), then a default.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import trio

from arktos_lite import client
from arktos_lite.api import resources

REGISTRY = resources.Registry()


def resource(plural: str, group: str = "") -> resources.Resource:
    found = REGISTRY.get(group, "v1", plural)
    assert found is not None
    return found


PODS = resource("pods")
CONFIGMAPS = resource("configmaps")
NAMESPACES = resource("namespaces")
TENANTS = resource("tenants")
NODES = resource("nodes")
DEPLOYMENTS = resource("deployments", "apps")
CLUSTERROLES = resource("clusterroles", "rbac.authorization.k8s.io")

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


@dataclasses.dataclass(frozen=True, slots=True)
class Seen:
    method: str
    path: str
    params: dict[str, list[str]]
    headers: httpx.Headers
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


def status(code: int, reason: str, message: str = "") -> httpx.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message or reason,
        "reason": reason,
        "code": code,
    }
    return httpx.Response(code, json=body)


def obj(name: str = "x", **extra: Any) -> httpx.Response:
    return httpx.Response(200, json={"metadata": {"name": name}, **extra})


class FakeServer:
    def __init__(self, *, default: Answer | None = None) -> None:
        self.seen: list[Seen] = []
        self.script: list[Answer] = []
        self.default: Answer = default if default is not None else obj()

    def handle(self, request: httpx.Request) -> httpx.Response:
        params: dict[str, list[str]] = {}
        for key, value in request.url.params.multi_items():
            params.setdefault(key, []).append(value)
        self.seen.append(
            Seen(
                method=request.method,
                path=request.url.raw_path.decode().split("?", 1)[0],
                params=params,
                headers=request.headers,
                body=request.content,
                at=trio.current_time(),
            )
        )
        answer = self.script.pop(0) if self.script else self.default
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer

    @property
    def last(self) -> Seen:
        return self.seen[-1]

    def times(self) -> list[float]:
        return [seen.at for seen in self.seen]

    def client(self, config: client.Config | None = None, **kwargs: Any) -> client.Client:
        kwargs.setdefault("qps", float("inf"))
        return client.Client(
            config or client.Config("http://fake"),
            transport=httpx.MockTransport(self.handle),
            **kwargs,
        )


class Stream(httpx.AsyncByteStream):
    """A response body sent in chunks, optionally failing after them."""

    def __init__(self, chunks: list[bytes], *, then: Exception | None = None) -> None:
        self.chunks = chunks
        self.then = then
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            await trio.lowlevel.checkpoint()
            yield chunk
        if self.then is not None:
            raise self.then

    async def aclose(self) -> None:
        self.closed = True


def event_line(kind: str, body: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": body}).encode() + b"\n"
