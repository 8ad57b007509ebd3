"""A real guest under QEMU/TCG through `arktos up --vm-runtime-uri qemu:///embed?root=…`.

The guest (tests/e2e/_guest.py: Debian's cloud kernel and a busybox initramfs) prints a
boot marker and then a counter every 0.5 s on its serial console, which `kubectl logs`
shows. Driven by stock kubectl and `arktos action`: the pod boots; a reboot action boots it
again (the marker twice, restartCount 1); a restore to a snapshot sends the counter back;
a new `resources` size is applied live (and one beyond the domain's maxima refused);
`powerSpec: Paused` stops the counter and `Running` continues it; `Suspended` saves the
guest to disk (no QEMU left) and `Running` restores it counting on, without a second boot;
`powerSpec: Shutdown` stops it and `Running` boots it again; a container pod runs beside
it; deleting the pod leaves no QEMU process, no domain and no disk behind. One guest at a
time: an idle TCG guest costs about 220 MB and 40 % of a CPU.

With pod networking (root, the CNI plugins and nft: always in CI) the guest is on its
tenant's pod network: its pod IP is in the node's podCIDR, the guest configured it from
the kernel's `ip=`, the container pod beside it pings it, a pod of another tenant cannot,
and deleting the VM pod gives the address back.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pathlib
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from arktos_lite import network
from arktos_lite.runtime import vm

from . import _guest
from .conftest import Cluster, require_tool, running_cluster

pytestmark = pytest.mark.slow

_COUNTER = re.compile(re.escape(_guest.COUNTER_PREFIX) + r"(\d+)")
# TCG boots in 2-4 s, reboots in 2-4 s; generous for a loaded CI machine.
_TIMEOUT = 60.0


def unavailable(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must provide it)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def guest(request: pytest.FixtureRequest) -> _guest.Guest:
    try:
        built = _guest.build_guest(request.config.cache.mkdir("arktos-guest"))
    except _guest.GuestUnavailable as e:
        unavailable(f"cannot build the test guest: {e}")
    if built.build_seconds:
        sys.stderr.write(f"test guest built in {built.build_seconds:.1f} s\n")
    return built


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, guest: _guest.Guest) -> Iterator[Cluster]:
    require_tool("kubectl")
    require_tool("qemu-img")
    require_tool("qemu-system-x86_64")
    missing = vm.libvirt_missing()
    if missing:
        unavailable(missing)
    data_dir = tmp_path_factory.mktemp("arktos")
    # QEMU's monitor socket goes under libvirt's root, and a UNIX socket path holds 107
    # bytes: an xdist worker's temporary directory (.../popen-gwN/) is too deep for it.
    root = pathlib.Path(tempfile.mkdtemp(prefix="arktos-libvirt-"))
    (data_dir / "libvirt").symlink_to(root)
    uri = f"qemu:///embed?root={root}"
    # A cluster CIDR of its own, so that clusters of other test runs do not share routes.
    cidr = f"10.{random.randint(160, 230)}.0.0/16"
    try:
        with running_cluster(data_dir, "--vm-runtime-uri", uri, "--cluster-cidr", cidr) as running:
            arktos("image", "import", str(guest.kernel), "--kernel", "--initrd", str(guest.initrd),
                   "--cmdline", _guest.CMDLINE, "--name", "guest",
                   "--root-dir", str(data_dir / "agent" / "vm"))  # fmt: skip
            yield running
    finally:
        shutil.rmtree(root, ignore_errors=True)


def arktos(*args: str, cluster: Cluster | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "arktos_lite", *args]
    if cluster is not None:
        command += ["--kubeconfig", str(cluster.kubeconfig)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{' '.join(args)}: {result.stdout}{result.stderr}"
    return result


def eventually(check: Callable[[], bool], *, what: str, timeout: float = _TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.2)


def pod_status(cluster: Cluster, name: str) -> dict[str, Any]:
    pod = json.loads(cluster.kubectl("get", "pod", name, "-o", "json"))
    status: dict[str, Any] = pod.get("status") or {}
    return status


def vm_status(cluster: Cluster, name: str) -> dict[str, Any]:
    status: dict[str, Any] = pod_status(cluster, name).get("virtualMachineStatus") or {}
    return status


def console(cluster: Cluster, name: str) -> list[str]:
    # Not `kubectl logs`: stock kubectl looks for the container in spec.containers,
    # which a VM pod has none of (it panics without -c and refuses -c).
    result = cluster.run_kubectl("get", "--raw", f"/api/v1/namespaces/default/pods/{name}/log")
    return result.stdout.splitlines() if result.returncode == 0 else []


def events(cluster: Cluster, name: str, reason: str) -> list[str]:
    selector = f"involvedObject.name={name},reason={reason}"
    listed = json.loads(
        cluster.kubectl("get", "events", "--field-selector", selector, "-o", "json")
    )
    return [str(e.get("message")) for e in listed["items"]]


def boots(lines: list[str]) -> int:
    return sum(_guest.BOOT_MARKER in line for line in lines)


def counters(lines: list[str]) -> list[int]:
    return [int(m.group(1)) for line in lines if (m := _COUNTER.search(line))]


def qemu_processes(data_dir: pathlib.Path) -> list[int]:
    """QEMU processes whose command line names this cluster's data dir."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"qemu-system" in argv and str(data_dir).encode() in argv:
            found.append(int(entry.name))
    return found


def pod_networking() -> bool:
    """Whether pods get networks of their own here (in CI they must)."""
    tools, why = network.detect_tools()
    if tools is None and os.environ.get("CI"):
        pytest.fail(f"pod networking needs root, the CNI plugins and nft: {why}")
    return tools is not None


def ping(netns: str, ip: str) -> bool:
    """Whether `ip` answers a ping from the network namespace `netns`."""
    done = subprocess.run(
        ["ip", "netns", "exec", netns, str(_guest.BUSYBOX), "ping", "-c", "1", "-W", "1", ip],
        capture_output=True,
        timeout=10,
        check=False,
    )
    return done.returncode == 0


def stranger_pod(cluster: Cluster) -> None:
    """A container pod of another tenant (created while the guest boots)."""
    tenant = {"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": "vmnetb"}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(tenant))
    path = "/api/v1/tenants/vmnetb/namespaces/default"
    eventually(lambda: cluster.run_kubectl("get", "--raw", path).returncode == 0, what="vmnetb")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "stranger", "namespace": "default"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}],
        },
    }
    cluster.kubectl("create", "--raw", f"{path}/pods", "-f", "-", input=json.dumps(pod))


def stranger(cluster: Cluster) -> dict[str, Any]:
    path = "/api/v1/tenants/vmnetb/namespaces/default/pods/stranger"
    result = cluster.run_kubectl("get", "--raw", path)
    found: dict[str, Any] = json.loads(result.stdout) if result.returncode == 0 else {}
    return found


def check_pod_network(cluster: Cluster) -> str:
    """The guest on its tenant's pod network, reached from its tenant only; its IP."""
    guest_ip = str(pod_status(cluster, "guest1").get("podIP") or "")
    node = json.loads(cluster.kubectl("get", "nodes", "-o", "json"))["items"][0]
    assert ipaddress.ip_address(guest_ip) in ipaddress.ip_network(node["spec"]["podCIDR"])
    assert pod_status(cluster, "guest1")["podIPs"] == [{"ip": guest_ip}]
    assert pod_status(cluster, "guest1")["hostIP"] != guest_ip
    # The guest's initramfs configured it from the kernel's ip= parameter.
    assert f"{_guest.NET_MARKER}eth0 {guest_ip}" in "\n".join(console(cluster, "guest1"))
    beside = json.loads(cluster.kubectl("get", "pod", "beside", "-o", "json"))
    netns = network.netns_name(beside["metadata"]["uid"])
    eventually(lambda: ping(netns, guest_ip), what="the container pod pinging the guest")
    eventually(
        lambda: (stranger(cluster).get("status") or {}).get("podIP"), what="stranger running"
    )
    assert not ping(network.netns_name(stranger(cluster)["metadata"]["uid"]), guest_ip)
    return guest_ip


def test_a_real_guest_boots_reboots_restores_and_powers_off(cluster: Cluster) -> None:
    networked = pod_networking()
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "guest1"},
        "spec": {
            "virtualMachine": {
                "name": "guest1",
                "image": "guest",
                "publicKey": "ssh-ed25519 AAAA test",
                "resources": {"requests": {"cpu": "1", "memory": "256Mi"}},
            }
        },
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(pod))
    cluster.kubectl("run", "beside", "--image=busybox", "--", "sleep", "3600")
    if networked:
        stranger_pod(cluster)
    eventually(
        lambda: (
            pod_status(cluster, "guest1").get("phase") == "Running"
            and pod_status(cluster, "beside").get("phase") == "Running"
        ),
        what="the VM pod and the container pod Running",
    )
    eventually(lambda: boots(console(cluster, "guest1")) == 1, what="the boot marker in the logs")
    guest_ip = check_pod_network(cluster) if networked else ""
    status = vm_status(cluster, "guest1")
    assert (status["state"], status["powerState"], status["ready"]) == ("active", "running", True)
    assert len(qemu_processes(cluster.data_dir)) == 1
    domains = cluster.data_dir / "libvirt" / "etc" / "qemu"
    assert len(list(domains.glob("*.xml"))) == 1

    # A reboot is a real ACPI reboot: the guest boots a second time.
    assert "complete" in arktos("action", "reboot", "guest1", "--wait", cluster=cluster).stdout
    eventually(lambda: boots(console(cluster, "guest1")) == 2, what="the boot marker again")
    eventually(lambda: vm_status(cluster, "guest1").get("restartCount") == 1, what="restartCount 1")

    # A restore goes back to the memory of the snapshot: the counter goes back.
    eventually(lambda: len(counters(console(cluster, "guest1"))) >= 2, what="the counter")
    arktos("action", "snapshot", "guest1", "--name", "s1", "--wait", cluster=cluster)
    at_snapshot = max(counters(console(cluster, "guest1")))
    eventually(
        lambda: max(counters(console(cluster, "guest1"))) >= at_snapshot + 4,
        what="the counter advancing after the snapshot",
    )
    before = console(cluster, "guest1")
    highest = max(counters(before))
    arktos("action", "restore", "guest1", "--snapshot", "s1", "--wait", cluster=cluster)
    # Lines written before the restore but logged late only continue upwards; a value
    # below the highest one seen comes from the restored memory.
    eventually(
        lambda: any(n < highest for n in counters(console(cluster, "guest1")[len(before) :])),
        what=f"a counter below {highest} after the restore",
    )

    def power(spec: str) -> None:
        patch = {"spec": {"virtualMachine": {"powerSpec": spec}}}
        cluster.kubectl("patch", "pod", "guest1", "--type=merge", "-p", json.dumps(patch))

    def resize(limits: dict[str, str]) -> None:
        patch = {"spec": {"virtualMachine": {"resources": {"limits": limits}}}}
        cluster.kubectl("patch", "pod", "guest1", "--type=merge", "-p", json.dumps(patch))

    # A live resize: a vCPU hot-plugged and the balloon's target raised, within the
    # maxima the domain was defined with; beyond them, refused, and the guest runs on.
    resize({"cpu": "2", "memory": "384Mi"})
    eventually(lambda: bool(events(cluster, "guest1", "Resized")), what="a Resized event")
    assert events(cluster, "guest1", "ResizeFailed") == []
    resize({"cpu": "64", "memory": "384Mi"})
    eventually(lambda: bool(events(cluster, "guest1", "ResizeFailed")), what="a ResizeFailed event")
    assert "64 vCPUs (at most" in events(cluster, "guest1", "ResizeFailed")[0]
    assert vm_status(cluster, "guest1").get("state") == "active"

    # Paused: the guest's vCPUs stand still, so does its counter; Running continues it.
    power("Paused")
    eventually(lambda: vm_status(cluster, "guest1").get("state") == "paused", what="paused")
    assert len(qemu_processes(cluster.data_dir)) == 1
    time.sleep(1.0)  # lines printed just before the pause reach the log
    frozen = max(counters(console(cluster, "guest1")))
    time.sleep(3.0)
    assert max(counters(console(cluster, "guest1"))) == frozen
    booted = boots(console(cluster, "guest1"))
    power("Running")
    eventually(lambda: vm_status(cluster, "guest1").get("state") == "active", what="resumed")
    eventually(
        lambda: max(counters(console(cluster, "guest1"))) > frozen + 2,
        what="the counter advancing after the pause",
    )

    # Suspended: the memory goes to disk and QEMU exits; Running restores it, and the
    # guest carries on counting from where it was, without booting again.
    power("Suspended")
    eventually(lambda: vm_status(cluster, "guest1").get("state") == "suspended", what="suspended")
    eventually(lambda: qemu_processes(cluster.data_dir) == [], what="QEMU gone while suspended")
    at_save = console(cluster, "guest1")
    saved = max(counters(at_save))
    power("Running")
    eventually(lambda: vm_status(cluster, "guest1").get("state") == "active", what="restored")
    eventually(
        lambda: max(counters(console(cluster, "guest1"))) > saved + 2,
        what="the counter continuing after the restore",
    )
    after = console(cluster, "guest1")
    assert boots(after) == booted
    restored = counters(after[len(at_save) :])
    assert restored
    assert min(restored) > saved  # continued, not restarted from 0
    assert vm_status(cluster, "guest1").get("restartCount") == 1

    power("Shutdown")
    eventually(lambda: vm_status(cluster, "guest1").get("state") == "stopped", what="stopped")
    assert qemu_processes(cluster.data_dir) == []
    booted = boots(console(cluster, "guest1"))
    power("Running")
    eventually(lambda: vm_status(cluster, "guest1").get("state") == "active", what="active")
    eventually(
        lambda: boots(console(cluster, "guest1")) == booted + 1, what="the marker after power on"
    )
    assert pod_status(cluster, "beside").get("phase") == "Running"

    cluster.kubectl("delete", "pod", "guest1", "beside", "--grace-period=2")
    assert cluster.run_kubectl("get", "pod", "guest1").returncode != 0
    if networked:
        # The guest's address went back to host-local.
        ipam = cluster.data_dir / "agent" / "network" / "ipam"
        eventually(lambda: not list(ipam.glob(f"*/{guest_ip}")), what="the address released")
    eventually(lambda: qemu_processes(cluster.data_dir) == [], what="no QEMU process left")
    vm_root = cluster.data_dir / "agent" / "vm"
    assert sorted(vm_root.rglob("*.qcow2")) == []
    assert sorted(p.name for p in domains.glob("*.xml")) == []
