"""The event recorder: where events land, what they say, how repeats aggregate, and that
recording never raises or blocks."""

from __future__ import annotations

import contextlib
import datetime
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from arktos_lite import client
from arktos_lite.api import errors
from arktos_lite.machinery import _events as events

from ._fakes import FakeClient

Obj = dict[str, Any]

POD: Obj = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web-1",
        "namespace": "prod",
        "tenant": "t1",
        "uid": "uid-web-1",
        "resourceVersion": "42",
    },
}
NODE: Obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "uid-n1"}}
NAMESPACE: Obj = {
    "apiVersion": "v1",
    "kind": "Namespace",
    "metadata": {"name": "prod", "tenant": "t1", "uid": "uid-ns"},
}


class WallClock:
    def __init__(self) -> None:
        self.now = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)


@contextlib.asynccontextmanager
async def recording(
    fake: FakeClient, wall: WallClock | None = None, *, buffer: int = 100
) -> AsyncIterator[events.EventRecorder]:
    recorder = events.EventRecorder(
        fake,  # type: ignore[arg-type]
        component="test-controller",
        host="box",
        buffer=buffer,
        wall_clock=wall or WallClock(),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(recorder.run)
        yield recorder
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()


async def test_an_event_is_written_beside_its_object() -> None:
    fake = FakeClient()
    async with recording(fake) as recorder:
        recorder.event(POD, events.EventType.NORMAL, reason="Started", message="it runs")
    [(verb, body)] = fake.writes
    assert verb == "create"
    assert body["metadata"]["namespace"] == "prod"
    assert body["metadata"]["tenant"] == "t1"
    assert body["metadata"]["name"].startswith("web-1.")
    assert body["involvedObject"] == {
        "kind": "Pod",
        "apiVersion": "v1",
        "name": "web-1",
        "namespace": "prod",
        "tenant": "t1",
        "uid": "uid-web-1",
        "resourceVersion": "42",
    }
    assert (body["type"], body["reason"], body["message"]) == ("Normal", "Started", "it runs")
    assert body["source"] == {"component": "test-controller", "host": "box"}
    assert body["firstTimestamp"] == body["lastTimestamp"] == "2025-01-02T03:04:05Z"
    assert body["count"] == 1


@pytest.mark.parametrize(
    ("obj", "where"),
    [(NODE, ("system", "default")), (NAMESPACE, ("t1", "default"))],
)
async def test_events_about_objects_outside_namespaces(obj: Obj, where: tuple[str, str]) -> None:
    fake = FakeClient()
    async with recording(fake) as recorder:
        recorder.event(obj, "Warning", reason="Trouble", message="m")
    [(tenant, namespace, _)] = fake.events
    assert (tenant, namespace) == where
    [(_, body)] = fake.writes
    assert "namespace" not in body["involvedObject"]


async def test_a_repeat_within_ten_minutes_counts_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeClient()
    wall = WallClock()
    async with recording(fake, wall) as recorder:
        recorder.event(POD, "Warning", reason="BackOff", message="restarting")
        for _ in range(3):
            await trio.sleep(300)
            wall.advance(300)
            recorder.event(POD, "Warning", reason="BackOff", message="restarting")
        # Another message, reason or object is another event.
        recorder.event(POD, "Warning", reason="BackOff", message="something else")
        recorder.event(POD, "Warning", reason="Other", message="restarting")
        recorder.event(NODE, "Warning", reason="BackOff", message="restarting")
    assert [verb for verb, _ in fake.writes] == ["create", "patch", "patch", "patch"] + [
        "create"
    ] * 3
    first = fake.writes[0][1]
    [stored] = [
        e for e in fake.events.values() if e["metadata"]["name"] == first["metadata"]["name"]
    ]
    assert stored["count"] == 4
    assert stored["firstTimestamp"] == "2025-01-02T03:04:05Z"
    assert stored["lastTimestamp"] == "2025-01-02T03:19:05Z"
    assert len(fake.events) == 4


async def test_a_repeat_after_ten_minutes_is_a_new_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeClient()
    wall = WallClock()
    async with recording(fake, wall) as recorder:
        recorder.event(POD, "Normal", reason="Pulled", message="image")
        await trio.sleep(601)
        wall.advance(601)
        recorder.event(POD, "Normal", reason="Pulled", message="image")
    assert [verb for verb, _ in fake.writes] == ["create", "create"]
    assert len(fake.events) == 2


async def test_an_event_deleted_meanwhile_is_written_anew() -> None:
    fake = FakeClient()
    async with recording(fake) as recorder:
        recorder.event(POD, "Normal", reason="R", message="m")
        await trio.testing.wait_all_tasks_blocked()
        fake.events.clear()
        recorder.event(POD, "Normal", reason="R", message="m")
    # The patch finds nothing (404); a new event takes its place.
    assert [verb for verb, _ in fake.writes] == ["create", "patch", "create"]
    [stored] = fake.events.values()
    assert stored["count"] == 1


async def test_a_full_buffer_drops_without_raising_or_waiting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="arktos_lite.machinery._events")
    fake = FakeClient()
    recorder = events.EventRecorder(fake, component="c", buffer=2)  # type: ignore[arg-type]
    for i in range(5):
        recorder.event(POD, "Normal", reason="R", message=str(i))
    assert sum("dropped" in r.message for r in caplog.records) == 3
    async with trio.open_nursery() as nursery:
        nursery.start_soon(recorder.run)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert [body["message"] for _, body in fake.writes] == ["0", "1"]


async def test_recording_a_malformed_object_does_not_raise() -> None:
    recorder = events.EventRecorder(FakeClient(), component="c")  # type: ignore[arg-type]
    recorder.event("not an object", "Normal", reason="R", message="m")  # type: ignore[arg-type]


async def test_failed_writes_are_logged_and_the_recorder_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeClient()
    fake.write_faults.extend(
        [client.Unreachable("down"), errors.Forbidden("terminating"), errors.BadRequest("no")]
    )
    async with recording(fake) as recorder:
        for reason in ("A", "B", "C", "D"):
            recorder.event(POD, "Normal", reason=reason, message="m")
    assert [body["reason"] for _, body in fake.writes] == ["D"]
    # Only the write refused for a reason other than a gone or terminating namespace warns.
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "refused" in warnings[0]


async def test_the_correlation_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "CACHE_SIZE", 3)
    fake = FakeClient()
    async with recording(fake) as recorder:
        for reason in ("A", "B", "C", "D"):
            recorder.event(POD, "Normal", reason=reason, message="m")
        # A was pushed out of the cache: its repeat is a new event; D's repeat is a patch.
        recorder.event(POD, "Normal", reason="A", message="m")
        recorder.event(POD, "Normal", reason="D", message="m")
    assert [verb for verb, _ in fake.writes] == ["create"] * 5 + ["patch"]


async def test_event_names_are_unique_even_in_the_same_instant() -> None:
    fake = FakeClient()
    async with recording(fake) as recorder:
        for reason in "ABCDE":
            recorder.event(POD, "Normal", reason=reason, message="m")
    assert len({body["metadata"]["name"] for _, body in fake.writes}) == 5
