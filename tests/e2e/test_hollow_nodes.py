"""200 hollow nodes (`arktos agent --hollow 200`, a process of its own) beside `arktos up`
for five minutes: every node stays Ready, the node lifecycle controller taints none, pods
bound to them run, and the store does not grow with the heartbeats."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time

import pytest

from .conftest import Cluster, require_tool, running_cluster
from .test_workloads import eventually

pytestmark = pytest.mark.slow

NODES = 200
MINUTES = 5


def ready_nodes(cluster: Cluster) -> list[str]:
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json"))["items"]
    return [
        node["metadata"]["name"]
        for node in nodes
        if not node["spec"].get("taints")
        and any(
            c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"]
        )
    ]


def store_bytes(data_dir: pathlib.Path) -> int:
    return sum(path.stat().st_size for path in data_dir.glob("state.db*"))


def test_hollow_nodes_stay_ready(tmp_path: pathlib.Path) -> None:
    require_tool("kubectl")
    with running_cluster(tmp_path, "--no-agent") as cluster:
        log = (tmp_path / "hollow.log").open("w")
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "arktos_lite",
                "agent",
                "--hollow",
                str(NODES),
                "--node-name",
                "hollow",
                "--kubeconfig",
                str(cluster.kubeconfig),
            ],
            stdout=log,
            stderr=log,
        )
        try:
            eventually(lambda: len(ready_nodes(cluster)) == NODES, timeout=60, what="all Ready")
            cluster.kubectl(
                "create", "deployment", "on-hollow", "--image=busybox", "--replicas=50",
                "--", "sleep", "3600",
            )  # fmt: skip
            eventually(
                lambda: (
                    cluster.kubectl(
                        "get", "deployment", "on-hollow", "-o", "jsonpath={.status.readyReplicas}"
                    )
                    == "50"
                ),
                timeout=60,
                what="50 pods ready on hollow nodes",
            )
            settled = store_bytes(tmp_path)
            deadline = time.monotonic() + MINUTES * 60
            while time.monotonic() < deadline:
                time.sleep(30)
                assert agent.poll() is None, "the hollow agent died"
                assert len(ready_nodes(cluster)) == NODES
            # Heartbeats rewrite Leases and Node status; compaction keeps that from piling up.
            assert store_bytes(tmp_path) < max(4 * settled, 64 << 20)
        finally:
            agent.terminate()
            agent.wait(timeout=30)
            log.close()
