"""Deployments inside `arktos up`, driven by stock `kubectl create deployment`, `set image`
and `rollout status|history|undo|pause|resume|restart`.

The pods run for real on `arktos up`'s node (the embedded runtime runs `sleep` whatever
the image's tag), so each rollout waits for real pods to start and end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from .conftest import Cluster, require_tool

pytestmark = pytest.mark.slow

NAMESPACE = "rollout-e2e"
NAME = "web"


def eventually(check: Callable[[], bool], *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the cluster did not get there in time")
        time.sleep(0.1)


def _has_deployment_controller(cluster: Cluster) -> bool:
    result = cluster.run_kubectl("get", "controllerinstances", "-o", "json")
    if result.returncode != 0:
        return False
    items = json.loads(result.stdout).get("items") or []
    return any(item.get("controllerType") == "Deployment" for item in items)


@pytest.fixture
def rollout_cluster(cluster: Cluster) -> Cluster:
    require_tool("kubectl")
    deadline = time.monotonic() + 15
    while not _has_deployment_controller(cluster):
        if time.monotonic() > deadline:
            raise AssertionError("arktos up registered no Deployment controller instance")
        time.sleep(0.5)
    cluster.kubectl("create", "namespace", NAMESPACE)
    return cluster


def kubectl(cluster: Cluster, *args: str) -> str:
    return cluster.kubectl("-n", NAMESPACE, *args)


def rollout_status(cluster: Cluster) -> str:
    return kubectl(cluster, "rollout", "status", f"deployment/{NAME}", "--timeout=60s")


def image(cluster: Cluster) -> str:
    return kubectl(
        cluster,
        "get",
        "deployment",
        NAME,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    )


def replicasets(cluster: Cluster) -> list[dict[str, object]]:
    listed = json.loads(kubectl(cluster, "get", "replicasets", "-l", f"app={NAME}", "-o", "json"))
    items: list[dict[str, object]] = listed["items"]
    return items


def revisions(cluster: Cluster) -> list[str]:
    """The REVISION column of `kubectl rollout history`."""
    lines = kubectl(cluster, "rollout", "history", f"deployment/{NAME}").splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("REVISION"))
    return [line.split()[0] for line in lines[header + 1 :] if line.strip()]


def test_kubectl_rollouts(rollout_cluster: Cluster) -> None:
    cluster = rollout_cluster
    kubectl(
        cluster, "create", "deployment", NAME, "--image=busybox:1", "--replicas=3",
        "--", "sleep", "3600",
    )  # fmt: skip
    assert "successfully rolled out" in rollout_status(cluster)

    kubectl(cluster, "set", "image", f"deployment/{NAME}", "busybox=busybox:2")
    assert "successfully rolled out" in rollout_status(cluster)
    assert revisions(cluster) == ["1", "2"]
    detail = kubectl(cluster, "rollout", "history", f"deployment/{NAME}", "--revision=2")
    assert "busybox:2" in detail

    assert "rolled back" in kubectl(cluster, "rollout", "undo", f"deployment/{NAME}")
    assert "successfully rolled out" in rollout_status(cluster)
    assert image(cluster) == "busybox:1"
    # The ReplicaSet of revision 1 came back as revision 3; no third one was made.
    assert revisions(cluster) == ["2", "3"]
    assert len(replicasets(cluster)) == 2

    assert "paused" in kubectl(cluster, "rollout", "pause", f"deployment/{NAME}")
    kubectl(cluster, "set", "image", f"deployment/{NAME}", "busybox=busybox:3")
    time.sleep(2)
    assert len(replicasets(cluster)) == 2
    assert "resumed" in kubectl(cluster, "rollout", "resume", f"deployment/{NAME}")
    assert "successfully rolled out" in rollout_status(cluster)
    assert revisions(cluster) == ["2", "3", "4"]

    assert "restarted" in kubectl(cluster, "rollout", "restart", f"deployment/{NAME}")
    assert "successfully rolled out" in rollout_status(cluster)
    assert revisions(cluster) == ["2", "3", "4", "5"]

    def one_replicaset_holds_everything() -> bool:
        sizes = sorted(int(rs["spec"]["replicas"]) for rs in replicasets(cluster))  # type: ignore[index]
        return sizes[-1] == 3 and sum(sizes) == 3

    eventually(one_replicaset_holds_everything)
    events = kubectl(cluster, "get", "events", "--field-selector", f"involvedObject.name={NAME}")
    assert "ScalingReplicaSet" in events
