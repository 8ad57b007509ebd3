"""A pod worker's timing on trio's mock clock: crash-loop back-off, reset, and writes.

The worker runs against the fake runtime (on the mock clock too) and an API stand-in
(an `httpx.MockTransport`) that answers status patches and records them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from arktos_lite import client, machinery
from arktos_lite.agent import _podworker as podworker
from arktos_lite.agent._runtimes import NamedRuntime, WorkloadType
from arktos_lite.runtime._fake import FakeExit, FakeRuntime
from arktos_lite.runtime.cri import api_pb2 as cri

Obj = dict[str, Any]


class API:
    """Answers every request; keeps the pod's status as the patches leave it."""

    def __init__(self, pod: Obj) -> None:
        self.pod = pod
        self.patches: list[Obj] = []
        self.deletes: list[Obj] = []
        self.version = 1

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        if request.method == "PATCH" and request.url.path.endswith("/status"):
            self.patches.append(body)
            status = dict(self.pod.get("status") or {})
            for key, value in body["status"].items():
                if value is None:
                    status.pop(key, None)
                else:
                    status[key] = value
            self.version += 1
            self.pod = {
                **self.pod,
                "status": status,
                "metadata": {**self.pod["metadata"], "resourceVersion": str(self.version)},
            }
            return httpx.Response(200, json=self.pod)
        if request.method == "DELETE":
            self.deletes.append(body)
            return httpx.Response(200, json={"kind": "Status", "status": "Success"})
        return httpx.Response(201, json=body)

    def waiting_messages(self) -> list[str]:
        messages = []
        for patch in self.patches:
            for entry in patch["status"].get("containerStatuses") or ():
                waiting = entry["state"].get("waiting") or {}
                if waiting.get("reason") == "CrashLoopBackOff":
                    messages.append(waiting["message"])
        return list(dict.fromkeys(messages))


def pod_object() -> Obj:
    return {
        "metadata": {
            "name": "web",
            "namespace": "default",
            "tenant": "system",
            "uid": "u1",
            "resourceVersion": "1",
        },
        "spec": {
            "nodeName": "n1",
            "restartPolicy": "Always",
            "containers": [{"name": "app", "image": "img:1", "command": ["run"]}],
        },
        "status": {},
    }


async def until(predicate: Callable[[], object]) -> None:
    """Poll `predicate` on the mock clock (the worker may wait on threads meanwhile)."""
    while not predicate():  # noqa: ASYNC110 - polling state the fakes keep
        await trio.sleep(0.5)


def mock_clock_wall() -> int:
    return int(trio.current_time() * 1e9)


def make_worker(
    fake: FakeRuntime, tmp_path: Path, api: API, **settings: Any
) -> podworker.PodWorker:
    connected = client.Client(
        client.Config(server="http://api.test"), transport=httpx.MockTransport(api.handle)
    )
    recorder = machinery.EventRecorder(connected, component="test")
    return podworker.PodWorker(
        uid="u1",
        key="system/default/web",
        get_pod=lambda: api.pod,
        runtime=NamedRuntime("fake", WorkloadType.CONTAINER, fake),
        settings=podworker.Settings(
            node_name="n1", node_ip="192.0.2.1", root_dir=tmp_path, **settings
        ),
        services=podworker.Services(api=connected, recorder=recorder, reader=_NoObjects()),
    )


class _NoObjects:
    async def get(self, resource: Any, name: str, *, tenant: str, namespace: str) -> Obj | None:
        return None


def crashing(starts: list[float], runs: Callable[[int], float] = lambda n: 0.0) -> FakeRuntime:
    def behaviour(config: cri.ContainerConfig) -> FakeExit:
        starts.append(trio.current_time())
        return FakeExit(1, after=runs(len(starts)))

    return FakeRuntime(behaviour=behaviour, images=["img:1"], wall_clock=mock_clock_wall)


async def test_crash_loop_back_off_doubles_to_five_minutes(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    starts: list[float] = []
    fake = crashing(starts)
    api = API(pod_object())
    worker = make_worker(fake, tmp_path, api)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker.run)
        await until(lambda: len(starts) >= 9)
        nursery.cancel_scope.cancel()
    gaps = [round(b - a) for a, b in itertools.pairwise(starts)]
    assert gaps == [0, 10, 20, 40, 80, 160, 300, 300]
    messages = api.waiting_messages()
    assert [m.split()[1] for m in messages[:6]] == ["10s", "20s", "40s", "1m20s", "2m40s", "5m0s"]
    assert messages[0] == "back-off 10s restarting failed container=app pod=web_default(u1)"
    last = api.pod["status"]["containerStatuses"][0]
    assert last["restartCount"] >= 7


async def test_back_off_resets_after_ten_minutes_of_running(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    starts: list[float] = []
    # Starts 1-3 crash at once; the 4th runs for 11 minutes, then crashes.
    fake = crashing(starts, runs=lambda n: 660.0 if n == 4 else 0.0)
    worker = make_worker(fake, tmp_path, API(pod_object()))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker.run)
        await until(lambda: len(starts) >= 5)
        nursery.cancel_scope.cancel()
    gaps = [round(b - a) for a, b in itertools.pairwise(starts)]
    assert gaps == [0, 10, 20, 660]


async def test_status_is_written_once_per_change(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeRuntime(images=["img:1"], wall_clock=mock_clock_wall)
    api = API(pod_object())
    worker = make_worker(fake, tmp_path, api, resync_interval=5.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker.run)
        await until(lambda: api.patches)
        await trio.sleep(60)
        nursery.cancel_scope.cancel()
    assert len(api.patches) == 1
    status = api.patches[0]["status"]
    assert status["phase"] == "Running"
    assert status["containerStatuses"][0]["ready"] is True


async def test_deleted_pod_is_stopped_within_its_grace_period(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = FakeRuntime(images=["img:1"], wall_clock=mock_clock_wall)
    api = API(pod_object())
    worker = make_worker(fake, tmp_path, api)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker.run)
        await until(lambda: api.patches)
        assert fake.calls["start_container"] == 1
        meta = api.pod["metadata"]
        api.pod = {
            **api.pod,
            "metadata": {
                **meta,
                "deletionTimestamp": "2026-01-01T00:00:30Z",
                "deletionGracePeriodSeconds": 7,
            },
        }
        worker.wakeup.set()
        await until(lambda: worker.done)
    assert fake.sandbox_ids == []
    assert fake.container_ids == []
    assert api.deletes == [
        {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": "u1"},
        }
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (10, "10s"), (59.9, "59s"), (80, "1m20s"), (300, "5m0s"), (3725, "1h2m5s")],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert podworker.go_duration(seconds) == text
