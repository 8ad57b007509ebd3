"""`arktos vm-runtime --bridge` with a real Linux bridge, in a network namespace of its own.

The runtime runs as a process inside a fresh network namespace (`ip netns exec`, which
also gives it that namespace's /sys), on libvirt's test driver: the bridge is real, the
guests are not. Needs root (to create the namespace) and iproute2.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from arktos_lite.runtime import RuntimeClient
from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.vm import VIRTUAL_MACHINE, import_vm_image, libvirt_missing


def _require() -> None:
    missing = libvirt_missing()
    if missing is None and shutil.which("ip") is None:
        missing = "iproute2 (ip) is not installed"
    if missing is None and os.geteuid() != 0:
        missing = "creating a network namespace needs root"
    if missing is None:
        return
    if os.environ.get("CI") and os.geteuid() == 0:
        pytest.fail(missing)
    pytest.skip(missing)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def netns() -> Iterator[str]:
    _require()
    name = f"arktos-vm-{uuid.uuid4().hex[:8]}"
    _ip("netns", "add", name)
    try:
        yield name
    finally:
        _ip("netns", "del", name)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="vmbr-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


async def _network(client: RuntimeClient) -> cri.RuntimeCondition:
    status = await client.status()
    return next(c for c in status.status.conditions if c.type == "NetworkReady")


async def test_guests_get_a_nic_on_a_real_bridge(netns: str, short_dir: Path) -> None:
    _ip("-n", netns, "link", "add", "br-test", "type", "bridge")
    root = short_dir / "vm"
    disk = short_dir / "disk.raw"
    disk.write_bytes(b"\0" * 1024 * 1024)
    import_vm_image(root, disk, name="img")
    socket = short_dir / "vm.sock"
    command = [
        "ip", "netns", "exec", netns,
        sys.executable, "-m", "arktos_lite", "vm-runtime", "--root-dir", str(root),
        "--socket", str(socket), "--uri", "test:///default", "--bridge", "br-test",
    ]  # fmt: skip
    log = short_dir / "vm-runtime.log"
    with log.open("wb") as stderr:
        proc = await trio.lowlevel.open_process(command, stdout=subprocess.DEVNULL, stderr=stderr)
    client = RuntimeClient(f"unix://{socket}")
    try:
        with trio.fail_after(30):
            while not socket.exists():
                assert proc.returncode is None, log.read_text()
                await trio.sleep(0.1)
        network = await _network(client)
        assert (network.status, network.reason) == (True, "Bridge")
        assert network.message.startswith("guests attach to bridge br-test;")

        sandbox = cri.PodSandboxConfig(
            metadata=cri.PodSandboxMetadata(name="p", uid="u1", namespace="default")
        )
        sid = await client.run_pod_sandbox(sandbox)

        async def run_vm(name: str) -> tuple[str, str]:
            spec = {"name": name, "image": "img", "publicKey": "ssh-ed25519 AAAA t"}
            config = cri.ContainerConfig(
                metadata=cri.ContainerMetadata(name=name),
                annotations={VIRTUAL_MACHINE: json.dumps(spec)},
            )
            cid = await client.create_container(sid, config, sandbox)
            await client.start_container(cid)
            return cid, (root / "vms" / cid / "domain.xml").read_text()

        cid, xml = await run_vm("vm1")
        assert "<interface type='bridge'><source bridge=\"br-test\"/>" in xml
        assert (await client.container_status(cid)).message == ""

        # The bridge goes away: the runtime says so, and a new guest runs without a NIC.
        _ip("-n", netns, "link", "del", "br-test")
        network = await _network(client)
        assert (network.status, network.reason) == (False, "BridgeNotFound")
        assert "bridge br-test does not exist on this node" in network.message
        cid, xml = await run_vm("vm2")
        assert "<interface" not in xml
        status = await client.container_status(cid)
        assert status.state == cri.CONTAINER_RUNNING
        assert "no network device: bridge br-test does not exist" in status.message
        for c in await client.list_containers():
            await client.remove_container(c.id)
    finally:
        await client.aclose()
        proc.terminate()
        with trio.fail_after(10):
            await proc.wait()
