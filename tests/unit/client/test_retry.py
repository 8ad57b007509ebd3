"""Retries with backoff on trio's mock clock, against a scripted server."""

from __future__ import annotations

import itertools

import httpx
import pytest
import trio
import trio.testing

from arktos_lite import client
from arktos_lite.api import errors
from arktos_lite.client import _retry as retry

from ._fakes import CONFIGMAPS, FakeServer, obj, status

CM = {"metadata": {"name": "a", "namespace": "ns"}}


def gaps(server: FakeServer) -> list[float]:
    times = server.times()
    return [later - earlier for earlier, later in itertools.pairwise(times)]


@pytest.mark.parametrize("code", [429, 500, 502, 503, 504])
async def test_reads_are_retried_with_exponential_backoff(
    autojump_clock: trio.testing.MockClock, code: int
) -> None:
    server = FakeServer(default=httpx.Response(code, text="busy"))
    async with server.client(retries=5, backoff_base=0.1, backoff_max=5.0) as api:
        with pytest.raises(errors.StatusError) as raised:
            await api.get(CONFIGMAPS, "a", namespace="ns")
    assert len(server.seen) == 5
    # Retry n waits between half and all of 0.1 * 2**(n-1).
    for n, gap in enumerate(gaps(server), start=1):
        ceiling = 0.1 * 2 ** (n - 1)
        assert ceiling / 2 <= gap <= ceiling, (n, gap)
    # The last answer is what is raised.
    assert raised.value.message == "busy"


async def test_backoff_stops_growing_at_the_cap(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeServer(default=httpx.ConnectError("refused"))
    async with server.client(retries=8, backoff_base=1.0, backoff_max=3.0) as api:
        with pytest.raises(client.Unreachable):
            await api.get(CONFIGMAPS, "a", namespace="ns")
    later = gaps(server)[2:]
    assert later
    assert all(1.5 <= gap <= 3.0 for gap in later), later


async def test_success_after_failures(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeServer()
    server.script = [httpx.ConnectError("refused"), status(503, "ServiceUnavailable"), obj("a")]
    async with server.client() as api:
        got = await api.get(CONFIGMAPS, "a", namespace="ns")
    assert got["metadata"]["name"] == "a"
    assert len(server.seen) == 3


async def test_unreachable_after_the_retries(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeServer(default=httpx.ConnectError("connection refused"))
    async with server.client(retries=3) as api:
        with pytest.raises(client.Unreachable, match="connection refused") as raised:
            await api.list(CONFIGMAPS)
    assert len(server.seen) == 3
    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert "attempt 3 of 3" in str(raised.value)


@pytest.mark.parametrize("retries", [0, 1])
async def test_one_attempt_only(autojump_clock: trio.testing.MockClock, retries: int) -> None:
    server = FakeServer(default=httpx.ReadError("reset"))
    async with server.client(retries=retries) as api:
        with pytest.raises(client.Unreachable):
            await api.get(CONFIGMAPS, "a", namespace="ns")
    assert len(server.seen) == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_retry_after_is_honoured(autojump_clock: trio.testing.MockClock, method: str) -> None:
    server = FakeServer()
    throttled = status(429, "TooManyRequests")
    throttled.headers["Retry-After"] = "7"
    server.script = [throttled, obj("a")]
    async with server.client(backoff_base=0.1) as api:
        if method == "GET":
            await api.get(CONFIGMAPS, "a", namespace="ns")
        else:
            await api.create(CONFIGMAPS, CM)
    assert [seen.method for seen in server.seen] == [method, method]
    assert gaps(server) == pytest.approx([7.0])


async def test_post_is_not_retried_after_a_500(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeServer(default=status(500, "InternalError", "boom"))
    async with server.client() as api:
        with pytest.raises(errors.InternalError, match="boom"):
            await api.create(CONFIGMAPS, CM)
    assert len(server.seen) == 1


async def test_post_is_not_retried_when_the_connection_broke_after_sending(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(default=httpx.ReadError("reset by peer"))
    async with server.client() as api:
        with pytest.raises(client.Unreachable, match="reset by peer"):
            await api.create(CONFIGMAPS, CM)
    assert len(server.seen) == 1


async def test_post_is_not_retried_after_a_503_without_retry_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(default=status(503, "ServiceUnavailable"))
    async with server.client() as api:
        with pytest.raises(errors.ServiceUnavailable):
            await api.post_subresource(CONFIGMAPS, "a", "status", {}, namespace="ns")
    assert len(server.seen) == 1


async def test_post_is_retried_when_surely_not_processed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    unavailable = status(503, "ServiceUnavailable")
    unavailable.headers["Retry-After"] = "1"
    server = FakeServer()
    server.script = [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow"),
        status(429, "TooManyRequests"),
        unavailable,
        httpx.Response(201, json=CM),
    ]
    async with server.client(retries=5) as api:
        created = await api.create(CONFIGMAPS, CM)
    assert created == CM
    assert len(server.seen) == 5


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_idempotent_writes_are_retried_after_a_broken_connection(
    autojump_clock: trio.testing.MockClock, method: str
) -> None:
    server = FakeServer()
    server.script = [httpx.ReadError("reset"), status(500, "InternalError"), obj("a")]
    async with server.client() as api:
        if method == "PUT":
            await api.replace(CONFIGMAPS, CM)
        elif method == "PATCH":
            await api.patch(CONFIGMAPS, "a", {"data": {}}, namespace="ns")
        else:
            await api.delete(CONFIGMAPS, "a", namespace="ns")
    assert [seen.method for seen in server.seen] == [method] * 3


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (status(404, "NotFound"), errors.NotFound),
        (status(409, "AlreadyExists"), errors.AlreadyExists),
        (status(409, "Conflict"), errors.Conflict),
        (status(422, "Invalid"), errors.Invalid),
        (status(403, "Forbidden"), errors.Forbidden),
        (status(400, "BadRequest"), errors.BadRequest),
    ],
)
async def test_client_errors_are_not_retried(
    autojump_clock: trio.testing.MockClock,
    answer: httpx.Response,
    error: type[errors.StatusError],
) -> None:
    server = FakeServer(default=answer)
    async with server.client() as api:
        with pytest.raises(error):
            await api.get(CONFIGMAPS, "a", namespace="ns")
    assert len(server.seen) == 1


async def test_every_attempt_takes_a_token(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeServer(default=status(500, "InternalError"))
    async with server.client(qps=1, burst=1, retries=3, backoff_base=0.0) as api:
        with pytest.raises(errors.InternalError):
            await api.get(CONFIGMAPS, "a", namespace="ns")
    assert gaps(server) == pytest.approx([1.0, 1.0])


def test_the_retry_rules() -> None:
    connect, read = httpx.ConnectError("x"), httpx.ReadError("x")
    assert retry.may_retry_failure("GET", read)
    assert retry.may_retry_failure("POST", connect)
    assert not retry.may_retry_failure("POST", read)
    assert not retry.may_retry_failure("GET", httpx.UnsupportedProtocol("x"))
    assert retry.may_retry_status("PATCH", 502, retry_after=None)
    assert not retry.may_retry_status("GET", 501, retry_after=None)
    assert retry.may_retry_status("POST", 429, retry_after=None)
    assert retry.may_retry_status("POST", 503, retry_after=2.0)
    assert not retry.may_retry_status("POST", 503, retry_after=None)
    assert not retry.may_retry_status("POST", 500, retry_after=2.0)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), (" 0 ", 0.0), ("1.5", 1.5), ("-1", None), ("soon", None), ("nan", None)],
)
def test_retry_after_parsing(header: str, seconds: float | None) -> None:
    assert retry.retry_after(httpx.Headers({"Retry-After": header})) == seconds
    assert retry.retry_after(httpx.Headers()) is None


async def test_a_date_in_retry_after_falls_back_to_the_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    throttled = status(429, "TooManyRequests")
    throttled.headers["Retry-After"] = "Wed, 21 Oct 2015 07:28:00 GMT"
    server = FakeServer()
    server.script = [throttled, obj()]
    async with server.client(backoff_base=0.2) as api:
        await api.get(CONFIGMAPS, "a", namespace="ns")
    [gap] = gaps(server)
    assert 0.1 <= gap <= 0.2
