"""The scheduler inside `arktos up`, seen through stock kubectl: a pod lands on the node
whose runtime for its type is ready and that has room, with a `Scheduled` event; a pod
that fits nowhere says why in kube-scheduler's words."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from .conftest import Cluster, require_tool


@pytest.fixture(autouse=True)
def _kubectl() -> None:
    require_tool("kubectl")


def eventually(check: Callable[[], bool], *, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the cluster did not get there in time")
        time.sleep(0.1)


def node(name: str, *, cpu: str, vm_ready: bool) -> str:
    """A Node as an agent would register it (there is no agent here: the status is ours)."""
    conditions = [
        {"type": "Ready", "status": "True"},
        {"type": "ContainerRuntimeReady", "status": "True"},
        {"type": "VmRuntimeReady", "status": "True" if vm_ready else "False"},
    ]
    capacity = {"cpu": cpu, "memory": "8Gi", "pods": "110"}
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"capacity": capacity, "allocatable": capacity, "conditions": conditions},
        }
    )


def pod(name: str, *, cpu: str, vm: bool = False) -> str:
    resources = {"requests": {"cpu": cpu, "memory": "64Mi"}}
    spec: dict[str, object]
    if vm:
        spec = {
            "virtualMachine": {
                "name": "vm",
                "image": "cirros",
                "keyPairName": "key",
                "resources": resources,
            }
        }
    else:
        spec = {"containers": [{"name": "c", "image": "busybox", "resources": resources}]}
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})


def node_of(cluster: Cluster, name: str) -> str:
    return cluster.kubectl("get", "pod", name, "-o", "jsonpath={.spec.nodeName}")


def test_pods_land_where_their_runtime_is_ready_and_there_is_room(cluster: Cluster) -> None:
    for name, cpu, vm_ready in (("e2e-small", "2", True), ("e2e-big", "8", False)):
        body = node(name, cpu=cpu, vm_ready=vm_ready)
        cluster.kubectl("create", "-f", "-", input=body)
        # Status is the agent's to write: a create keeps none of it.
        status = json.dumps({"status": json.loads(body)["status"]})
        cluster.kubectl("patch", "node", name, "--subresource=status", "--type=merge", "-p", status)
    cluster.kubectl("create", "-f", "-", input=pod("e2e-vm", cpu="1", vm=True))
    cluster.kubectl("create", "-f", "-", input=pod("e2e-wide", cpu="6"))
    cluster.kubectl("create", "-f", "-", input=pod("e2e-huge", cpu="64"))
    eventually(lambda: node_of(cluster, "e2e-vm") == "e2e-small")
    eventually(lambda: node_of(cluster, "e2e-wide") == "e2e-big")
    events = cluster.kubectl(
        "get", "events", "--field-selector", "involvedObject.name=e2e-vm,reason=Scheduled"
    )
    assert "Successfully assigned default/e2e-vm to e2e-small" in events

    def unschedulable() -> bool:
        conditions = json.loads(cluster.kubectl("get", "pod", "e2e-huge", "-o", "json"))[
            "status"
        ].get("conditions", [])
        return any(c.get("reason") == "Unschedulable" for c in conditions)

    eventually(unschedulable)
    described = cluster.kubectl("describe", "pod", "e2e-huge")
    assert "FailedScheduling" in described
    assert "Insufficient cpu" in described
    for name in ("e2e-vm", "e2e-wide", "e2e-huge"):
        cluster.kubectl("delete", "pod", name, "--wait=false")
