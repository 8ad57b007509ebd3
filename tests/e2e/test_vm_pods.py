"""VM pods on `arktos up --vm-runtime-uri test:///default` (libvirt's test driver: real
domains, no guest), driven by stock kubectl and `arktos action`: a VM pod runs beside a
container pod, reboots, snapshots and restores through Actions, powers off and on with
`powerSpec`, and goes away with its domain; another waits for its key pair's Secret,
goes through every powerSpec and is resized (and refused a size beyond its maximum)."""

from __future__ import annotations

import functools
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from arktos_lite.runtime import vm

from .conftest import Cluster, require_tool, running_cluster
from .test_workloads import eventually

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_tool("kubectl")
    require_tool("qemu-img")
    missing = vm.libvirt_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing + " (CI must install libvirt and libvirt-python)")
        pytest.skip(missing)
    data_dir = tmp_path_factory.mktemp("arktos")
    with running_cluster(data_dir, "--vm-runtime-uri", "test:///default") as running:
        disk = data_dir / "disk.qcow2"
        subprocess.run(["qemu-img", "create", "-f", "qcow2", str(disk), "64M"], check=True)
        arktos(running, "image", "import", str(disk), "--vm", "--name", "cirros",
               "--root-dir", str(data_dir / "agent" / "vm"))  # fmt: skip
        yield running


def arktos(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "arktos_lite", *args]
    if args[0] == "action":
        command += ["--kubeconfig", str(cluster.kubeconfig)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)


def vm_status(cluster: Cluster, name: str) -> dict[str, Any]:
    pod = json.loads(cluster.kubectl("get", "pod", name, "-o", "json"))
    status: dict[str, Any] = pod.get("status") or {}
    return status


def test_a_vm_pod_and_its_actions(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    vm = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "vm1"},
        "spec": {
            "virtualMachine": {
                "name": "vm1",
                "image": "cirros",
                "publicKey": "ssh-ed25519 AAAA test",
                "resources": {"requests": {"cpu": "1", "memory": "256Mi"}},
            }
        },
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(vm))
    cluster.kubectl("run", "beside", "--image=busybox", "--", "sleep", "3600")

    def running(name: str) -> bool:
        return vm_status(cluster, name).get("phase") == "Running"

    eventually(lambda: running("vm1") and running("beside"), what="both pods Running")
    status = vm_status(cluster, "vm1")["virtualMachineStatus"]
    assert (status["state"], status["powerState"], status["ready"]) == ("active", "running", True)
    conditions = {c["type"]: c["status"] for c in vm_status(cluster, "vm1")["conditions"]}
    assert conditions["VirtualMachineReady"] == "True"

    assert "action complete" in arktos(cluster, "action", "reboot", "vm1", "--wait").stdout
    eventually(
        lambda: vm_status(cluster, "vm1")["virtualMachineStatus"]["restartCount"] == 1,
        what="restartCount 1",
    )
    arktos(cluster, "action", "snapshot", "vm1", "--name", "s1", "--wait")
    arktos(cluster, "action", "restore", "vm1", "--snapshot", "s1", "--wait")
    with pytest.raises(subprocess.CalledProcessError) as failed:
        arktos(cluster, "action", "restore", "vm1", "--snapshot", "nope", "--wait")
    assert "nope" in failed.value.stderr

    def power(spec: str) -> None:
        patch = {"spec": {"virtualMachine": {"powerSpec": spec}}}
        cluster.kubectl("patch", "pod", "vm1", "--type=merge", "-p", json.dumps(patch))

    power("Shutdown")
    eventually(
        lambda: vm_status(cluster, "vm1")["virtualMachineStatus"]["state"] == "stopped",
        what="stopped",
    )
    power("Running")
    eventually(
        lambda: vm_status(cluster, "vm1")["virtualMachineStatus"]["state"] == "active",
        what="active again",
    )
    cluster.kubectl("delete", "pod", "vm1", "beside", "--grace-period=2")
    assert cluster.run_kubectl("get", "pod", "vm1").returncode != 0


def test_bad_vm_input(cluster: Cluster) -> None:
    both = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "both"},
        "spec": {
            "containers": [{"name": "c", "image": "busybox"}],
            "virtualMachine": {"name": "vm", "image": "cirros", "keyPairName": "k"},
        },
    }
    refused = cluster.run_kubectl("create", "-f", "-", input=json.dumps(both))
    assert refused.returncode != 0
    assert "containers and virtualMachine workloads in same pod" in refused.stderr
    cluster.kubectl("run", "plain", "--image=busybox", "--", "sleep", "3600")
    eventually(lambda: vm_status(cluster, "plain").get("phase") == "Running", what="Running")
    with pytest.raises(subprocess.CalledProcessError) as failed:
        arktos(cluster, "action", "reboot", "plain")
    assert "not a virtual machine pod" in failed.value.stderr
    cluster.kubectl("delete", "pod", "plain", "--grace-period=1")


def test_power_specs_resize_and_key_pairs(cluster: Cluster) -> None:
    # The key pair is a Secret; the VM waits for it.
    vm = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "vm2"},
        "spec": {
            "virtualMachine": {
                "name": "vm2",
                "image": "cirros",
                "keyPairName": "key2",
                "resources": {"limits": {"cpu": "1", "memory": "256Mi"}},
            }
        },
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(vm))

    def ready_condition() -> dict[str, Any]:
        conditions = vm_status(cluster, "vm2").get("conditions") or []
        return next((c for c in conditions if c["type"] == "VirtualMachineReady"), {})

    eventually(
        lambda: 'key pair "key2" not found' in ready_condition().get("message", ""),
        what="VirtualMachineReady saying the key pair is missing",
    )
    assert vm_status(cluster, "vm2")["phase"] == "Pending"
    cluster.kubectl(
        "create", "secret", "generic", "key2", "--from-literal=publicKey=ssh-ed25519 AAAA k2"
    )
    eventually(
        lambda: vm_status(cluster, "vm2").get("virtualMachineStatus", {}).get("ready") is True,
        what="the VM running once its key pair exists",
    )

    def vm_state() -> tuple[str, str]:
        found = vm_status(cluster, "vm2")["virtualMachineStatus"]
        return found["state"], found["powerState"]

    def patch(vm_patch: dict[str, Any]) -> None:
        body = json.dumps({"spec": {"virtualMachine": vm_patch}})
        cluster.kubectl("patch", "pod", "vm2", "--type=merge", "-p", body)

    for spec, state in (
        ("Paused", ("paused", "paused")),
        ("Running", ("active", "running")),
        ("Suspended", ("suspended", "suspended")),
        ("Paused", ("paused", "paused")),
        ("Shutdown", ("stopped", "shutdown")),
        ("Running", ("active", "running")),
    ):
        patch({"powerSpec": spec})
        eventually(functools.partial(lambda want: vm_state() == want, state), what=spec)
        assert vm_status(cluster, "vm2")["phase"] == "Running"

    def events(reason: str) -> list[str]:
        listed = json.loads(
            cluster.kubectl(
                "get", "events", "--field-selector", f"involvedObject.name=vm2,reason={reason}",
                "-o", "json",
            )
        )["items"]  # fmt: skip
        return [e["message"] for e in listed]

    # Resized live: the domain has room for twice its memory.
    patch({"resources": {"limits": {"cpu": "1", "memory": "384Mi"}}})
    eventually(lambda: bool(events("Resized")), what="a Resized event")
    patch({"resources": {"limits": {"cpu": "1", "memory": "4Gi"}}})
    eventually(lambda: bool(events("ResizeFailed")), what="a ResizeFailed event")
    assert "at most" in events("ResizeFailed")[0]
    eventually(
        lambda: ready_condition().get("reason") == "ResizeFailed",
        what="the refused resize on VirtualMachineReady",
    )
    assert vm_state() == ("active", "running")
    cluster.kubectl("delete", "pod", "vm2", "--grace-period=2")
    cluster.kubectl("delete", "secret", "key2")
