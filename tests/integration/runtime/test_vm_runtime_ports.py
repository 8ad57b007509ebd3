"""`arktos vm-runtime --bridge`: a VM pod's network ports (the agent's NICs annotation)
become one NIC each on a real Linux bridge, with the port's MAC address and tap device,
and libvirt takes the domain.

As in `test_vm_runtime_bridge.py`: the runtime runs in a network namespace of its own on
libvirt's test driver (the bridge is real, the guests are not). Needs root and iproute2.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import trio

from arktos_lite.agent import _podconfig as podconfig
from arktos_lite.runtime import RuntimeClient
from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.vm import VIRTUAL_MACHINE, import_vm_image

from .test_vm_runtime_bridge import _ip, netns as netns, short_dir as short_dir

PORT0 = "8a3c6a43-1f6b-4c39-9a51-6d8f5b7a0c11"
PORT1 = "c0ffee00-1f6b-4c39-9a51-6d8f5b7a0c22"
PORTS = [
    {"name": "eth0", "portId": PORT0, "macAddress": "fa:16:3e:00:00:01"},
    {"name": "eth1", "portId": PORT1, "macAddress": "fa:16:3e:00:00:02"},
]


async def test_each_port_is_a_nic_of_the_guest_on_the_bridge(netns: str, short_dir: Path) -> None:
    _ip("-n", netns, "link", "add", "br-ports", "type", "bridge")
    root = short_dir / "vm"
    disk = short_dir / "disk.raw"
    disk.write_bytes(b"\0" * 1024 * 1024)
    import_vm_image(root, disk, name="img")
    socket = short_dir / "vm.sock"
    command = [
        "ip", "netns", "exec", netns,
        sys.executable, "-m", "arktos_lite", "vm-runtime", "--root-dir", str(root),
        "--socket", str(socket), "--uri", "test:///default", "--bridge", "br-ports",
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
        sandbox = cri.PodSandboxConfig(
            metadata=cri.PodSandboxMetadata(name="p", uid="u1", namespace="default")
        )
        sid = await client.run_pod_sandbox(sandbox)
        spec = {"name": "vm1", "image": "img", "publicKey": "ssh-ed25519 AAAA t"}
        config = cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name="vm1"),
            annotations={VIRTUAL_MACHINE: json.dumps(spec), podconfig.VM_NICS: json.dumps(PORTS)},
        )
        cid = await client.create_container(sid, config, sandbox)
        await client.start_container(cid)
        status = await client.container_status(cid)
        assert status.state == cri.CONTAINER_RUNNING
        assert status.message == ""

        domain = ET.fromstring((root / "vms" / cid / "domain.xml").read_text())
        interfaces = domain.findall("devices/interface")
        assert [
            (
                i.find("mac").get("address"),  # type: ignore[union-attr]
                i.find("source").get("bridge"),  # type: ignore[union-attr]
                i.find("target").get("dev"),  # type: ignore[union-attr]
            )
            for i in interfaces
        ] == [
            ("fa:16:3e:00:00:01", "br-ports", "tap8a3c6a43-1f"),
            ("fa:16:3e:00:00:02", "br-ports", "tapc0ffee00-1f"),
        ]
        for c in await client.list_containers():
            await client.remove_container(c.id)
    finally:
        await client.aclose()
        proc.terminate()
        with trio.fail_after(10):
            await proc.wait()
