"""The scheduler inside `arktos up`, seen through stock kubectl: a pod lands on the node
whose runtime for its type is ready and that has room, with a `Scheduled` event; a pod
that fits nowhere says why in kube-scheduler's words.

`arktos up` runs the VM runtime by default where libvirt and QEMU are installed, so the
cluster's own node may take VM pods too: the pods placed among the hand-made nodes say
so (node affinity), and the node's own VM runtime is tested on its own, on and off."""

from __future__ import annotations

import json
import pathlib
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from arktos_lite import cluster as cluster_

from .conftest import Cluster, require_tool, running_cluster


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


def pod(name: str, *, cpu: str, vm: bool = False, nodes: tuple[str, ...] = ()) -> str:
    """A pod; with `nodes`, one that may only go to those (required node affinity)."""
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
    if nodes:
        term = {"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": list(nodes)}
        ]}  # fmt: skip
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
            }
        }
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
    # Among these two nodes only: the cluster's own node may have a VM runtime, and cores.
    ours = ("e2e-small", "e2e-big")
    cluster.kubectl("create", "-f", "-", input=pod("e2e-vm", cpu="1", vm=True, nodes=ours))
    cluster.kubectl("create", "-f", "-", input=pod("e2e-wide", cpu="6", nodes=ours))
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


def vm_runtime_condition(cluster: Cluster) -> dict[str, Any]:
    """The VmRuntimeReady condition of the cluster's own node, once the agent wrote it."""
    found: dict[str, Any] = {}

    def written() -> bool:
        # `arktos up` names its node after the host.
        got = cluster.run_kubectl("get", "node", socket.gethostname(), "-o", "json")
        if got.returncode != 0:
            return False
        for condition in json.loads(got.stdout).get("status", {}).get("conditions") or ():
            if condition["type"] == "VmRuntimeReady":
                found.update(condition)
                return True
        return False

    eventually(written)
    return found


def test_the_node_runs_the_vm_runtime_by_default_where_libvirt_is(cluster: Cluster) -> None:
    condition = vm_runtime_condition(cluster)
    missing = cluster_.default_vm_runtime_missing()
    if missing is None:
        assert (condition["status"], condition["reason"]) == ("True", "RuntimeReady")
    else:
        # `arktos up` starts without one; the node says it has none.
        assert (condition["status"], condition["reason"]) == ("False", "NoRuntime")


def test_without_the_vm_runtime_a_vm_pod_waits_for_a_node(tmp_path: pathlib.Path) -> None:
    with running_cluster(tmp_path, "--no-vm-runtime") as cluster:
        condition = vm_runtime_condition(cluster)
        assert (condition["status"], condition["reason"]) == ("False", "NoRuntime")
        cluster.kubectl("create", "-f", "-", input=pod("e2e-lonely-vm", cpu="1", vm=True))

        def refused() -> bool:
            found = json.loads(cluster.kubectl("get", "pod", "e2e-lonely-vm", "-o", "json"))
            conditions = found["status"].get("conditions") or []
            return any(c.get("reason") == "Unschedulable" for c in conditions)

        eventually(refused)
        described = cluster.kubectl("describe", "pod", "e2e-lonely-vm")
        assert "runtime is not ready" in described
