"""What the tenant and namespace controllers share: the worker loop that waits out an
unreachable API server, and `finalize`'s answers."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
import trio
import trio.testing

from arktos_lite import client, machinery
from arktos_lite.api import resources
from arktos_lite.controllers import _common as common

TENANTS = resources.Registry().get("", "v1", "tenants")
assert TENANTS is not None
LOGGER = logging.getLogger("test_common")


def answering(code: int, reason: str, seen: list[httpx.Request]) -> client.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if code == 200:
            return httpx.Response(200, content=request.content)
        status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code}
        return httpx.Response(code, json={**status, "reason": reason, "message": reason})

    return client.Client(
        client.Config("http://api.invalid"), transport=httpx.MockTransport(handler), retries=1
    )


def tenant() -> dict[str, object]:
    return {"metadata": {"name": "t1", "resourceVersion": "7"}, "spec": {"finalizers": []}}


async def test_finalize_writes_through_the_finalize_subresource() -> None:
    seen: list[httpx.Request] = []
    async with answering(200, "", seen) as api:
        assert await common.finalize(api, TENANTS, tenant())
    (request,) = seen
    assert (request.method, request.url.path) == ("PUT", "/api/v1/tenants/t1/finalize")
    assert json.loads(request.content)["spec"] == {"finalizers": []}


async def test_finalize_of_an_object_that_is_gone() -> None:
    async with answering(404, "NotFound", []) as api:
        assert not await common.finalize(api, TENANTS, tenant())


async def test_finalize_of_a_stale_copy_requeues_the_key() -> None:
    async with answering(409, "Conflict", []) as api:
        with pytest.raises(machinery.Requeue) as raised:
            await common.finalize(api, TENANTS, tenant())
    assert raised.value.after is None


async def test_an_unreachable_api_server_delays_the_key(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    queue: machinery.WorkQueue[str] = machinery.WorkQueue()
    attempts: list[float] = []
    done = trio.Event()

    async def sync(key: str) -> None:
        attempts.append(trio.current_time())
        if len(attempts) == 1:
            raise client.Unreachable("connection refused")
        done.set()

    caplog.set_level(logging.DEBUG, logger=LOGGER.name)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: common.work(
                queue, sync, workers=1, what="tenant", logger=LOGGER, task_status=task_status
            )
        )
        queue.add("t1")
        await done.wait()
        nursery.cancel_scope.cancel()
    assert attempts[1] - attempts[0] == pytest.approx(common.UNREACHABLE_RETRY)
    assert queue.shutting_down
    assert "tenant t1: API server unreachable" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
