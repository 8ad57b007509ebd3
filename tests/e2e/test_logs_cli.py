"""`arktos logs` against `arktos up --vm-runtime-uri test:///default`: a container pod's
log with kubectl's options, and a VM pod's serial console, which stock `kubectl logs`
refuses (it needs `spec.containers`), read whole and followed as it grows.

libvirt's test driver runs no guest, so the test writes the guest's console output into
the raw serial file the runtime gave the VM, as QEMU would."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from arktos_lite.runtime import vm

from .conftest import Cluster, require_tool, running_cluster
from .test_workloads import eventually, marker

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
        subprocess.run(
            [sys.executable, "-m", "arktos_lite", "image", "import", str(disk), "--vm",
             "--name", "cirros", "--root-dir", str(data_dir / "agent" / "vm")],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        yield running


def logs(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "arktos_lite", "logs", *args,
         "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def phase(cluster: Cluster, name: str) -> str:
    found = cluster.run_kubectl("get", "pod", name, "-o", "jsonpath={.status.phase}")
    return found.stdout if found.returncode == 0 else ""


def test_a_container_pods_log(cluster: Cluster) -> None:
    token = marker()
    name = f"talker-{token}"
    cluster.kubectl(
        "run", name, "--image=busybox", "--restart=Never", "--",
        "sh", "-c", f"echo one {token}; echo two {token}; sleep 3600",
    )  # fmt: skip
    # Until the container starts, kubectl logs fails ("waiting to start"): ask again.
    eventually(
        lambda: f"two {token}" in cluster.kubectl("logs", name, check=False), what="both lines"
    )
    whole = logs(cluster, name)
    assert whole.returncode == 0, whole.stderr
    assert whole.stdout == f"one {token}\ntwo {token}\n"
    # What kubectl shows, option for option.
    for options in (["--tail", "1", "--timestamps"], ["--since", "1h", "-c", name]):
        ours = logs(cluster, name, *options)
        assert ours.returncode == 0, ours.stderr
        assert ours.stdout == cluster.kubectl("logs", name, *options), options
        if "--timestamps" in options:
            assert ours.stdout[:4].isdigit()
            assert ours.stdout.rstrip().endswith(f"two {token}")

    wrong = logs(cluster, name, "-c", "nope")
    assert wrong.returncode == 1
    assert f"container nope is not valid for pod {name}" in wrong.stderr
    missing = logs(cluster, f"absent-{token}")
    assert missing.returncode == 1
    assert f'pods "absent-{token}" not found' in missing.stderr
    cluster.kubectl("delete", "pod", name, "--grace-period=1", "--wait=false")


def serial_file(cluster: Cluster, uid: str) -> pathlib.Path:
    """The raw serial console file of the VM of pod `uid` (as QEMU would write it)."""
    for record in (cluster.data_dir / "agent" / "vm" / "vms").glob("*/vm.json"):
        if uid in record.read_text():
            return record.parent / "serial" / "stdout"
    raise AssertionError(f"no VM of pod {uid} under {cluster.data_dir}")


def test_a_vm_pods_serial_console(cluster: Cluster) -> None:
    token = marker()
    name = f"vm-{token}"
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "virtualMachine": {
                "name": "vm",
                "image": "cirros",
                "publicKey": "ssh-ed25519 AAAA test",
                "resources": {"requests": {"cpu": "1", "memory": "256Mi"}},
            }
        },
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(body))
    eventually(lambda: phase(cluster, name) == "Running", what="VM pod Running")
    uid = cluster.kubectl("get", "pod", name, "-o", "jsonpath={.metadata.uid}")
    console = serial_file(cluster, uid)

    refused = cluster.run_kubectl("logs", name)
    assert refused.returncode != 0  # stock kubectl wants spec.containers

    with console.open("a") as guest:
        guest.write(f"booted {token}\r\n")
    eventually(lambda: f"booted {token}" in logs(cluster, name).stdout, what="boot line")

    with subprocess.Popen(
        [sys.executable, "-m", "arktos_lite", "logs", name, "-f",
         "--kubeconfig", str(cluster.kubeconfig)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    ) as follower:  # fmt: skip
        seen: list[str] = []

        def read() -> None:
            assert follower.stdout is not None
            for line in follower.stdout:
                seen.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            eventually(lambda: any(f"booted {token}" in s for s in seen), what="followed boot")
            with console.open("a") as guest:
                guest.write(f"counter 1 {token}\r\n")
            eventually(lambda: any(f"counter 1 {token}" in s for s in seen), what="followed line")
            assert follower.poll() is None  # still following
        finally:
            follower.terminate()
            follower.wait(timeout=10)
            reader.join(timeout=10)
    cluster.kubectl("delete", "pod", name, "--grace-period=1")
