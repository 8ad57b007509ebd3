"""`arktos logs`: the query it sends for kubectl's options, and what it writes out, whole
or followed chunk by chunk."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio
import typer.testing

from arktos_lite import _podlogs as podlogs, cli, client
from arktos_lite.api import errors


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("1.5h", 5400), ("500ms", 1), ("0s", 1)],
)
def test_durations_as_kubectl_sends_them(text: str, seconds: int) -> None:
    assert podlogs.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "m", "5x", "5m garbage", "-5m", "1h 2m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        podlogs.parse_duration(text)


def test_the_query_carries_only_what_was_asked() -> None:
    assert podlogs.LogOptions().params() == {}
    assert podlogs.LogOptions(tail=-1).params() == {}
    everything = podlogs.LogOptions(
        container="c",
        follow=True,
        tail=5,
        since_seconds=60,
        timestamps=True,
        previous=True,
    )
    assert everything.params() == {
        "container": "c",
        "follow": "true",
        "tailLines": "5",
        "sinceSeconds": "60",
        "timestamps": "true",
        "previous": "true",
    }
    since = podlogs.LogOptions(since_time="2026-01-01T00:00:00Z").params()
    assert since == {"sinceTime": "2026-01-01T00:00:00Z"}


class _Stream(httpx.AsyncByteStream):
    """A body that arrives in parts, as a followed log does."""

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            await trio.lowlevel.checkpoint()
            yield part


def _client(handler: httpx.MockTransport) -> client.Client:
    return client.Client(client.Config(server="http://server"), transport=handler, retries=1)


async def test_the_path_names_the_tenant_when_given() -> None:
    paths: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(200, text="", headers={"Content-Type": "text/plain"})

    async with _client(httpx.MockTransport(answer)) as api:
        for tenant in (None, "t1"):
            await podlogs.write_log(
                api, "p", namespace="ns", tenant=tenant, options=podlogs.LogOptions(),
                out=lambda _chunk: None,
            )  # fmt: skip
    assert paths == [
        "/api/v1/namespaces/ns/pods/p/log",
        "/api/v1/tenants/t1/namespaces/ns/pods/p/log",
    ]


async def test_a_whole_log_is_written_once() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="one\ntwo\n", headers={"Content-Type": "text/plain"})

    written: list[bytes] = []
    async with _client(httpx.MockTransport(answer)) as api:
        options = podlogs.LogOptions(tail=1, timestamps=True)
        await podlogs.write_log(
            api, "vm1", namespace="default", tenant="t1", options=options, out=written.append
        )
    assert written == [b"one\ntwo\n"]
    [request] = seen
    assert request.url.path == "/api/v1/tenants/t1/namespaces/default/pods/vm1/log"
    assert dict(request.url.params) == {"tailLines": "1", "timestamps": "true"}


async def test_a_followed_log_is_written_as_it_comes() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.params["follow"] == "true"
        return httpx.Response(
            200, stream=_Stream([b"boot", b"ed\n", b"count 1\n"]),
            headers={"Content-Type": "text/plain"},
        )  # fmt: skip

    written: list[bytes] = []
    async with _client(httpx.MockTransport(answer)) as api:
        options = podlogs.LogOptions(follow=True)
        await podlogs.write_log(
            api, "vm1", namespace="default", tenant=None, options=options, out=written.append
        )
    assert written == [b"boot", b"ed\n", b"count 1\n"]


@pytest.mark.parametrize("follow", [False, True])
async def test_the_servers_refusal_is_its_error(follow: bool) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                "reason": "NotFound", "message": 'pods "x" not found'}  # fmt: skip
        return httpx.Response(404, json=body)

    async with _client(httpx.MockTransport(answer)) as api:
        with pytest.raises(errors.NotFound, match='pods "x" not found'):
            await podlogs.write_log(
                api,
                "x",
                namespace="default",
                tenant=None,
                options=podlogs.LogOptions(follow=follow),
                out=lambda _chunk: None,
            )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--since", "1m", "--since-time", "2026-01-01T00:00:00Z"], "not both"),
        (["--since", "soon"], "invalid duration"),
    ],
)
def test_the_command_refuses_what_kubectl_refuses(args: list[str], says: str) -> None:
    result = typer.testing.CliRunner().invoke(cli.app, ["logs", "p", *args])
    assert result.exit_code == 2
    assert says in result.output
