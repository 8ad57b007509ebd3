"""Real workloads on `arktos up`'s own node, driven by stock kubectl: pods run as host
processes of the embedded runtime, `kubectl logs` and `kubectl exec` reach them through the
API server and the agent, Deployments scale processes up and down, crash loops back off,
probes restart and gate, and deleting a pod ends its processes."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from arktos_lite.runtime import _oci

from .conftest import Cluster, require_tool

pytestmark = pytest.mark.slow

NAMESPACE = "workloads-e2e"


@pytest.fixture(autouse=True)
def _namespace(cluster: Cluster) -> None:
    require_tool("kubectl")
    if cluster.run_kubectl("get", "namespace", NAMESPACE).returncode != 0:
        cluster.kubectl("create", "namespace", NAMESPACE)


def eventually(check: Callable[[], bool], *, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"the cluster did not get there in time: {what}")
        time.sleep(0.1)


def marker() -> str:
    return f"m{uuid.uuid4().hex[:12]}"


def processes_with(token: str) -> list[int]:
    """Live host processes running `sh -c '…token…'`: the workloads themselves, not the
    wrappers the runtime starts them under."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # A zombie has ended; only its parent has yet to notice.
        if stat.rsplit(")", 1)[1].split()[0] == "Z" or len(argv) < 3:
            continue
        if argv[0].rsplit(b"/", 1)[-1] == b"sh" and argv[1] == b"-c" and token.encode() in argv[2]:
            found.append(int(entry.name))
    return found


def pod(cluster: Cluster, name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(
        cluster.kubectl("get", "pod", name, "-n", NAMESPACE, "-o", "json")
    )
    return result


def phase(cluster: Cluster, name: str) -> str:
    result = cluster.run_kubectl(
        "get", "pod", name, "-n", NAMESPACE, "-o", "jsonpath={.status.phase}"
    )
    return result.stdout if result.returncode == 0 else ""


def container_status(cluster: Cluster, name: str) -> dict[str, Any]:
    statuses = pod(cluster, name).get("status", {}).get("containerStatuses") or [{}]
    status: dict[str, Any] = statuses[0]
    return status


def test_run_logs_and_exec(cluster: Cluster) -> None:
    token = marker()
    name = f"hello-{token}"
    cluster.kubectl(
        "run",
        name,
        "-n",
        NAMESPACE,
        "--image=busybox",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        f"echo hello {token}; sleep 3600",
    )
    eventually(lambda: phase(cluster, name) == "Running", what="pod Running")
    eventually(
        lambda: f"hello {token}" in cluster.kubectl("logs", name, "-n", NAMESPACE),
        what="log line",
    )
    assert len(processes_with(token)) == 1

    assert cluster.kubectl("exec", name, "-n", NAMESPACE, "--", "echo", "hi") == "hi\n"
    failed = cluster.run_kubectl("exec", name, "-n", NAMESPACE, "--", "sh", "-c", "exit 3")
    assert failed.returncode == 3
    echoed = cluster.run_kubectl("exec", "-i", name, "-n", NAMESPACE, "--", "cat", input="piped\n")
    assert echoed.stdout == "piped\n"

    tail = cluster.kubectl("logs", name, "-n", NAMESPACE, "--tail=1", "--timestamps")
    assert tail.rstrip().endswith(f"hello {token}")
    assert tail[:4].isdigit()

    started = time.monotonic()
    cluster.kubectl("delete", "pod", name, "-n", NAMESPACE, "--grace-period=5")
    assert time.monotonic() - started < 15
    eventually(lambda: not processes_with(token), timeout=10, what="processes gone")


def test_deployment_scales_processes(cluster: Cluster) -> None:
    token = marker()
    name = f"web-{token}"
    cluster.kubectl(
        "create",
        "deployment",
        name,
        "-n",
        NAMESPACE,
        "--image=busybox",
        "--replicas=3",
        "--",
        "sh",
        "-c",
        f"echo {token}; sleep 3600",
    )
    eventually(lambda: len(processes_with(token)) == 3, what="3 processes")

    def ready_replicas() -> int:
        out = cluster.kubectl(
            "get", "deployment", name, "-n", NAMESPACE, "-o", "jsonpath={.status.readyReplicas}"
        )
        return int(out or 0)

    eventually(lambda: ready_replicas() == 3, what="3 ready replicas")
    cluster.kubectl("scale", "deployment", name, "-n", NAMESPACE, "--replicas=1")
    eventually(lambda: len(processes_with(token)) == 1, what="1 process left")
    cluster.kubectl("delete", "deployment", name, "-n", NAMESPACE)
    eventually(lambda: not processes_with(token), what="no process left")


def test_crash_loop_backs_off(cluster: Cluster) -> None:
    name = f"crash-{marker()}"
    cluster.kubectl(
        "run", name, "-n", NAMESPACE, "--image=busybox", "--", "sh", "-c", "echo boom; exit 2"
    )
    eventually(
        lambda: (
            container_status(cluster, name).get("state", {}).get("waiting", {}).get("reason")
            == "CrashLoopBackOff"
        ),
        what="CrashLoopBackOff",
    )
    status = container_status(cluster, name)
    assert status["lastState"]["terminated"]["exitCode"] == 2
    assert "back-off" in status["state"]["waiting"]["message"]
    # kubectl logs --previous shows the attempt before.
    eventually(lambda: container_status(cluster, name).get("restartCount", 0) >= 1)
    assert "boom" in cluster.kubectl("logs", name, "-n", NAMESPACE, "--previous")
    cluster.kubectl("delete", "pod", name, "-n", NAMESPACE, "--wait=false")


def _apply(cluster: Cluster, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(manifest))


def test_liveness_failure_restarts_and_readiness_gates(
    cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    name = f"probed-{marker()}"
    alive = tmp_path / "alive"
    ready = tmp_path / "ready"
    alive.touch()
    _apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "busybox",
                        "command": ["sh", "-c", "sleep 3600"],
                        "livenessProbe": {
                            "exec": {"command": ["test", "-e", str(alive)]},
                            "periodSeconds": 1,
                            "failureThreshold": 1,
                        },
                        "readinessProbe": {
                            "exec": {"command": ["test", "-e", str(ready)]},
                            "periodSeconds": 1,
                        },
                    }
                ]
            },
        },
    )
    eventually(lambda: phase(cluster, name) == "Running", what="Running")
    time.sleep(2)
    assert container_status(cluster, name).get("ready") is False
    ready.touch()
    eventually(lambda: container_status(cluster, name).get("ready") is True, what="ready")
    alive.unlink()
    eventually(
        lambda: container_status(cluster, name).get("restartCount", 0) >= 1, what="restarted"
    )
    cluster.kubectl("delete", "pod", name, "-n", NAMESPACE, "--wait=false")


def test_a_pod_runs_in_an_imported_image(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    """`arktos image import` stores an OCI image for the embedded runtime; as root with
    runc, a pod of that image runs in the image's file system, not the host's."""
    require_tool("runc")
    if os.geteuid() != 0:
        pytest.skip("images run under runc only as root")
    archive = _oci.build_busybox_image(tmp_path / "busybox.tar", name="busybox:e2e")
    imported = subprocess.run(
        [
            sys.executable, "-m", "arktos_lite", "image", "import", str(archive),
            "--root-dir", str(cluster.data_dir / "agent" / "runtime"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    assert imported.stdout.startswith("docker.io/library/busybox:e2e sha256:")
    name = f"image-{marker()}"
    cluster.kubectl(
        "run", name, "-n", NAMESPACE, "--image=busybox:e2e", "--", "sleep", "3600"
    )  # fmt: skip
    eventually(lambda: phase(cluster, name) == "Running", what="Running")
    assert cluster.kubectl("exec", name, "-n", NAMESPACE, "--", "ls", "/bin/busybox")
    host_only = cluster.run_kubectl("exec", name, "-n", NAMESPACE, "--", "ls", str(tmp_path))
    assert host_only.returncode != 0
    cluster.kubectl("delete", "pod", name, "-n", NAMESPACE, "--grace-period=1")
