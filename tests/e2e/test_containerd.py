"""`arktos up --container-runtime containerd`: the same core lifecycle as on the embedded
runtime, with containers run by a real containerd and runc (the busybox image is built
locally and imported; there is no registry here, so pods ask for `IfNotPresent`: an
untagged image defaults to `Always`, which needs the registry)."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import pytest

from integration.runtime import _containerd

from .conftest import Cluster, require_tool, running_cluster
from .test_workloads import eventually, marker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_tool("kubectl")
    _containerd.require_containerd()
    with (
        _containerd.running_containerd(tmp_path_factory.mktemp("containerd")) as containerd,
        running_cluster(
            tmp_path_factory.mktemp("arktos"),
            "--container-runtime", "containerd",
            "--containerd-endpoint", containerd.endpoint,
        ) as running,
    ):  # fmt: skip
        yield running


def pod_status(cluster: Cluster, name: str) -> dict[str, object]:
    result = cluster.run_kubectl("get", "pod", name, "-o", "json")
    if result.returncode != 0:
        return {}
    status: dict[str, object] = json.loads(result.stdout).get("status") or {}
    return status


def test_node_reports_containerd(cluster: Cluster) -> None:
    node = json.loads(cluster.kubectl("get", "nodes", "-o", "json"))["items"][0]
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert ready["Ready"] == ready["ContainerRuntimeReady"] == "True"


def test_run_logs_exec_and_delete(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    token = marker()
    name = f"ctr-{token}"
    cluster.kubectl(
        "run", name, "--image=busybox", "--image-pull-policy=IfNotPresent", "--restart=Never",
        "--", "sh", "-c", f"echo hello {token}; sleep 3600",
    )  # fmt: skip
    eventually(lambda: pod_status(cluster, name).get("phase") == "Running", what="Running")
    statuses = pod_status(cluster, name)["containerStatuses"]
    assert isinstance(statuses, list)
    assert statuses[0]["containerID"].startswith("containerd://")
    eventually(lambda: f"hello {token}" in cluster.kubectl("logs", name), what="log line")
    assert cluster.kubectl("exec", name, "--", "echo", "hi") == "hi\n"
    assert cluster.run_kubectl("exec", name, "--", "sh", "-c", "exit 3").returncode == 3
    cluster.kubectl("delete", "pod", name, "--grace-period=2")
    assert cluster.run_kubectl("get", "pod", name).returncode != 0


def test_crash_loop_and_deployment(cluster: Cluster) -> None:
    crash = f"crash-{marker()}"
    cluster.kubectl(
        "run", crash, "--image=busybox", "--image-pull-policy=IfNotPresent",
        "--", "sh", "-c", "exit 2",
    )  # fmt: skip

    def waiting_reason() -> object:
        statuses = pod_status(cluster, crash).get("containerStatuses") or [{}]
        assert isinstance(statuses, list)
        return (statuses[0].get("state") or {}).get("waiting", {}).get("reason")

    eventually(lambda: waiting_reason() == "CrashLoopBackOff", what="CrashLoopBackOff")
    cluster.kubectl("delete", "pod", crash, "--wait=false")

    name = f"web-{marker()}"
    container = {
        "name": "c",
        "image": "busybox",
        "imagePullPolicy": "IfNotPresent",
        "command": ["sleep", "3600"],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container]},
            },
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(deployment))

    def ready() -> int:
        out = cluster.kubectl("get", "deployment", name, "-o", "jsonpath={.status.readyReplicas}")
        return int(out or 0)

    eventually(lambda: ready() == 2, timeout=60, what="2 ready replicas")
    cluster.kubectl("delete", "deployment", name)
