"""`arktos workload-controller-manager` processes beside `arktos up --workload-controllers 0`:
they split the ReplicaSets between them, and when one is killed (`kill -9`) the other takes
its range over, so that every ReplicaSet still converges, and none ever has more pods than
it asked for."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio

from arktos_lite import client
from arktos_lite.api import resources

pytestmark = pytest.mark.slow

READY_PREFIX = "arktos-lite is ready at "
REGISTRY = resources.Registry()
REPLICASETS = REGISTRY.get("apps", "v1", "replicasets")
PODS = REGISTRY.get("", "v1", "pods")
INSTANCES = REGISTRY.get("", "v1", "controllerinstances")
assert REPLICASETS is not None
assert PODS is not None
assert INSTANCES is not None

# Renewals every second: a killed instance is dead after three seconds.
CONFIG = {
    "reportHealthIntervalInSecond": 1,
    "resyncPeriod": "12h0m0s",
    "qps": 500,
    "controllers": [{"type": "replicaset", "workers": 5}],
}


@contextlib.contextmanager
def process(command: list[str], log: pathlib.Path, **env: str) -> Iterator[subprocess.Popen[str]]:
    with log.open("w") as log_file:
        running = subprocess.Popen(
            [sys.executable, "-m", "arktos_lite", *command],
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            env={**os.environ, **env},
        )
    try:
        yield running
    finally:
        if running.poll() is None:
            running.send_signal(signal.SIGTERM)
            try:
                running.wait(timeout=15)
            except subprocess.TimeoutExpired:
                running.kill()
                running.wait()
        assert running.stdout is not None
        running.stdout.close()


def replica_set(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


async def pods_per_set(api: client.Client) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pod in (await api.list_all(PODS, namespace="default"))["items"]:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        for owner in pod["metadata"].get("ownerReferences") or []:
            if owner.get("controller"):
                counts[owner["name"]] = counts.get(owner["name"], 0) + 1
    return counts


async def converge(api: client.Client, names: list[str], replicas: int) -> None:
    """Until every set has `replicas` pods; never more at any sample."""
    with trio.fail_after(40):
        while True:
            counts = await pods_per_set(api)
            assert all(count <= replicas for count in counts.values()), counts
            if all(counts.get(name) == replicas for name in names):
                return
            await trio.sleep(0.2)


async def instances(api: client.Client, wanted: Callable[[int], bool]) -> None:
    with trio.fail_after(20):
        while True:
            if wanted(len((await api.list(INSTANCES))["items"])):
                return
            await trio.sleep(0.2)


def test_a_killed_manager_process_hands_its_range_over(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "wcm.json"
    config.write_text(json.dumps(CONFIG))
    up = ["up", "--data-dir", str(tmp_path / "data"), "--port", "0", "--workload-controllers", "0"]
    with process(up, tmp_path / "up.log") as cluster:
        assert cluster.stdout is not None
        line = cluster.stdout.readline()
        assert line.startswith(READY_PREFIX), (tmp_path / "up.log").read_text()
        kubeconfig = line.split("; kubeconfig: ")[1].strip()
        manager = ["workload-controller-manager", "--config", str(config)]
        with (
            process(manager, tmp_path / "wcm-1.log", KUBECONFIG=kubeconfig) as first,
            process(manager, tmp_path / "wcm-2.log", KUBECONFIG=kubeconfig),
        ):

            async def scenario() -> None:
                async with client.Client.from_kubeconfig(kubeconfig) as api:
                    await instances(api, lambda count: count == 2)
                    names = [f"rs-{i}" for i in range(20)]
                    for name in names:
                        await api.create(REPLICASETS, replica_set(name, 2))
                    await converge(api, names, 2)
                    first.kill()  # SIGKILL: no chance to hand anything over
                    for name in names:
                        await api.patch(
                            REPLICASETS, name, {"spec": {"replicas": 4}}, namespace="default"
                        )
                    await converge(api, names, 4)
                    # The dead instance's object is removed by the survivor.
                    await instances(api, lambda count: count == 1)

            trio.run(scenario)
