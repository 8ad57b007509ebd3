"""Network ports hot-plugged into (and out of) VMs that exist: UpdateContainerResources
with the NICs annotation.

libvirt's test driver cannot attach devices, so the refusals run on it (in-process) and the
attaching on a real QEMU domain under the embedded driver, in a script of its own inside a
network namespace with a real bridge (`_vm_hotplug_smoke.py`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest
import trio

from arktos_lite import runtime
from arktos_lite.agent import _podconfig as podconfig
from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.vm import VmRuntimeConfig

from .test_vm_runtime import TEST_URI, _image, _vm, require_libvirt, serving
from .test_vm_runtime_bridge import _ip, netns as netns, short_dir as short_dir

NICS = podconfig.VM_NICS
PORT0 = "8a3c6a43-1f6b-4c39-9a51-6d8f5b7a0c11"
PORT1 = "c0ffee00-1f6b-4c39-9a51-6d8f5b7a0c22"
PORTS = [
    {"name": "eth0", "portId": PORT0, "macAddress": "fa:16:3e:00:00:01"},
    {"name": "eth1", "portId": PORT1, "macAddress": "fa:16:3e:00:00:02"},
]
TAP0, TAP1 = "tap8a3c6a43-1f", "tapc0ffee00-1f"


def _kill_guests(directory: Path) -> None:
    """End the QEMU processes of guests under `directory` (a failed script leaves them)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"qemu-system-x86_64") and str(directory).encode() in b" ".join(argv):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)


def nics(ports: list[dict[str, str]]) -> dict[str, str]:
    return {NICS: json.dumps(ports)}


async def test_nics_are_refused_with_the_reason(tmp_path: Path, short_dir: Path) -> None:
    config = VmRuntimeConfig(tmp_path / "vm", short_dir / "vm.sock", uri=TEST_URI)
    async with serving(config) as env:
        vm = _vm(_image(env))
        cid = await env.vm(await env.sandbox(), vm)
        none = cri.LinuxContainerResources()

        async def annotated() -> str | None:
            return (await env.client.container_status(cid)).annotations.get(NICS)

        # No bridge: nowhere to attach a port to.
        with pytest.raises(runtime.FailedPrecondition, match=f"port {PORT0} .*no bridge"):
            await env.client.update_container_resources(cid, none, annotations=nics(PORTS[:1]))
        assert await annotated() is None
        with pytest.raises(runtime.InvalidArgument, match="no MAC address"):
            await env.client.update_container_resources(
                cid, none, annotations=nics([{**PORTS[0], "macAddress": "nope"}])
            )
        # No ports where there are none: nothing to do, and a resize in the same call works.
        await env.client.update_container_resources(
            cid,
            cri.LinuxContainerResources(cpu_period=100_000, cpu_quota=100_000),
            annotations=nics([]),
        )
        status = await env.client.container_status(cid)
        assert status.annotations[runtime.VM_VCPUS] == "1"
        assert NICS not in status.annotations
        # A suspended VM's saved memory knows only the NICs it had.
        await env.client.suspend_vm(cid)
        with pytest.raises(runtime.FailedPrecondition, match=r"suspended .* resume it first"):
            await env.client.update_container_resources(cid, none, annotations=nics(PORTS))


@pytest.mark.slow
async def test_ports_hot_plug_into_a_real_qemu_domain(netns: str, short_dir: Path) -> None:
    require_libvirt()
    missing = [t for t in ("qemu-system-x86_64", "qemu-img") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    import pwd

    try:
        pwd.getpwnam("libvirt-qemu")
    except KeyError:
        pytest.skip("the embedded QEMU driver needs a system user libvirt-qemu when root")
    _ip("-n", netns, "link", "add", "br-hp", "type", "bridge")
    script = Path(__file__).with_name("_vm_hotplug_smoke.py")
    try:
        result = await trio.run_process(
            ["ip", "netns", "exec", netns, sys.executable, str(script), str(short_dir), "br-hp"],
            capture_stdout=True, capture_stderr=True, check=False,
        )  # fmt: skip
    finally:
        _kill_guests(short_dir)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    seen = json.loads(result.stdout.decode().strip().splitlines()[-1])
    nic0 = ["fa:16:3e:00:00:01", TAP0, "ua-eth0"]
    nic1 = ["fa:16:3e:00:00:02", TAP1, "ua-eth1"]
    assert seen == {
        "created.live": [nic0],
        "created.config": [nic0],
        "created.bridge": [TAP0],
        # Attached live and in the config, its tap on the bridge.
        "added.live": [nic0, nic1],
        "added.config": [nic0, nic1],
        "added.bridge": [TAP0, TAP1],
        # Detached from the config; the empty guest never lets go of the live one...
        "removed.live": [nic0, nic1],
        "removed.config": [nic1],
        "removed.bridge": [TAP0, TAP1],
        "again.live": [nic0, nic1],
        "again.config": [nic1],
        "again.bridge": [TAP0, TAP1],
        # ... until it is powered off.
        "rebooted.live": [nic1],
        "rebooted.config": [nic1],
        "rebooted.bridge": [TAP1],
        # Paused: attached live and in the config all the same.
        "paused.live": [nic1, nic0],
        "paused.config": [nic1, nic0],
        "paused.bridge": [TAP0, TAP1],
        "resumed": "CONTAINER_RUNNING",
        # A VM that is off: in its config, for its next boot.
        "off.config": [nic1, nic0],
        "off.bridge": [],
        "annotation": PORTS,
        # A new runtime over the same root knows the VM's ports.
        "restarted": PORTS,
        "restarted.config": [nic1, nic0],
        "restarted.bridge": [],
    }
