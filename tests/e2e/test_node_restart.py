"""Stopping and starting `arktos up` with workloads on its node: without `--keep-pods`
no process of a pod survives the stop; with it, the pods keep running and the next start
adopts them instead of starting them again."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal

import pytest

from .conftest import require_tool, running_cluster
from .test_workloads import eventually, marker, processes_with

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _kubectl() -> None:
    require_tool("kubectl")


def test_stop_leaves_no_process_behind(tmp_path: pathlib.Path) -> None:
    token = marker()
    with running_cluster(tmp_path) as cluster:
        cluster.kubectl(
            "create",
            "deployment",
            "sleepers",
            "--image=busybox",
            "--replicas=2",
            "--",
            "sh",
            "-c",
            f"sleep 3600; echo {token}",
        )
        eventually(lambda: len(processes_with(token)) == 2, what="2 processes")
    assert processes_with(token) == []


def test_keep_pods_then_adopt(tmp_path: pathlib.Path) -> None:
    token = marker()
    with running_cluster(tmp_path, "--keep-pods") as cluster:
        cluster.kubectl(
            "run", "kept", "--image=busybox", "--", "sh", "-c", f"sleep 3600; echo {token}"
        )
        eventually(lambda: len(processes_with(token)) == 1, what="1 process")
        before = processes_with(token)
    try:
        assert processes_with(token) == before
        with running_cluster(tmp_path) as cluster:

            def restarts() -> object:
                pod = json.loads(cluster.kubectl("get", "pod", "kept", "-o", "json"))
                statuses = pod["status"].get("containerStatuses") or [{}]
                return statuses[0].get("restartCount"), pod["status"].get("phase")

            eventually(lambda: restarts() == (0, "Running"), what="adopted")
            assert processes_with(token) == before
        assert processes_with(token) == []
    finally:
        for pid in processes_with(token):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
