"""Network ports hot-plugged into a real QEMU domain through the VM runtime, as a script.

Run in a fresh interpreter (see `_vm_embed_smoke.py` for why) inside a network namespace
that has the bridge named on the command line. The guest is an empty disk: nothing boots,
QEMU runs. Prints one JSON object of observations.
"""

from __future__ import annotations

import os

os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import trio

from arktos_lite.agent import _podconfig as podconfig
from arktos_lite.runtime import RuntimeClient
from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.vm import VIRTUAL_MACHINE, VmRuntime, VmRuntimeConfig, import_vm_image

NICS = podconfig.VM_NICS

PORTS = [
    {
        "name": "eth0",
        "portId": "8a3c6a43-1f6b-4c39-9a51-6d8f5b7a0c11",
        "macAddress": "fa:16:3e:00:00:01",
    },
    {
        "name": "eth1",
        "portId": "c0ffee00-1f6b-4c39-9a51-6d8f5b7a0c22",
        "macAddress": "fa:16:3e:00:00:02",
    },
]


def nics(ports: list[dict[str, str]]) -> dict[str, str]:
    return {NICS: json.dumps(ports)}


def interfaces(xml: str) -> list[list[str]]:
    found = []
    for i in ET.fromstring(xml).iterfind("devices/interface"):
        target = i.find("target")
        alias = i.find("alias")
        found.append(
            [
                i.find("mac").get("address", ""),  # type: ignore[union-attr]
                target.get("dev", "") if target is not None else "",
                alias.get("name", "") if alias is not None else "",
            ]
        )
    return found


class Looks:
    """What the domain and the bridge hold at each step, by step name."""

    def __init__(self, bridge: str) -> None:
        self.bridge = bridge
        self.seen: dict[str, object] = {}

    def look(self, what: str, vm_runtime: VmRuntime, cid: str, *, live: bool = True) -> None:
        dom = vm_runtime.manager.conn.lookup(f"arktos-{cid[:16]}")
        assert dom is not None
        if live:
            self.seen[f"{what}.live"] = interfaces(dom.xml())
        self.seen[f"{what}.config"] = interfaces(dom.xml(inactive=True))
        self.seen[f"{what}.bridge"] = sorted(os.listdir(f"/sys/class/net/{self.bridge}/brif"))


async def first_runtime(vm_runtime: VmRuntime, client: RuntimeClient, looks: Looks) -> None:
    sid = await client.run_pod_sandbox(
        cri.PodSandboxConfig(metadata=cri.PodSandboxMetadata(name="p", uid="u"))
    )
    vm = {"name": "vm", "image": "img", "resources": {"limits": {"memory": "128Mi"}}}
    cid = await client.create_container(
        sid,
        cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name="vm"),
            annotations={VIRTUAL_MACHINE: json.dumps(vm), **nics(PORTS[:1])},
        ),
        cri.PodSandboxConfig(),
    )
    none = cri.LinuxContainerResources()
    await client.start_container(cid)
    looks.look("created", vm_runtime, cid)
    # Hot-plugged into the running VM and its config, a tap on the bridge each.
    await client.update_container_resources(cid, none, annotations=nics(PORTS))
    looks.look("added", vm_runtime, cid)
    # Unplugged from the config; the running VM is asked to let go of it (an empty guest
    # never does: its NIC goes when it is next powered off).
    await client.update_container_resources(cid, none, annotations=nics(PORTS[1:]))
    looks.look("removed", vm_runtime, cid)
    await client.update_container_resources(cid, none, annotations=nics(PORTS[1:]))
    looks.look("again", vm_runtime, cid)
    await client.stop_container(cid, timeout=0)
    await client.start_container(cid)
    looks.look("rebooted", vm_runtime, cid)
    # A paused VM gets it live too, and keeps it once resumed.
    await client.pause_vm(cid)
    await client.update_container_resources(cid, none, annotations=nics(PORTS))
    looks.look("paused", vm_runtime, cid)
    await client.resume_vm(cid)
    looks.seen["resumed"] = cri.ContainerState.Name((await client.container_status(cid)).state)
    # A VM that is off gets the NIC in its config.
    await client.stop_container(cid, timeout=0)
    await client.update_container_resources(cid, none, annotations=nics(PORTS))
    looks.look("off", vm_runtime, cid, live=False)
    status = await client.container_status(cid)
    looks.seen["annotation"] = json.loads(status.annotations[NICS])


async def main(directory: Path, bridge: str) -> dict[str, object]:
    source = directory / "src.qcow2"
    await trio.run_process(["qemu-img", "create", "-q", "-f", "qcow2", str(source), "16M"])
    config = VmRuntimeConfig(directory / "root", directory / "vm.sock", bridge=bridge)
    import_vm_image(config.root_dir, source, name="img")
    looks = Looks(bridge)
    for round_ in range(2):
        vm_runtime = VmRuntime(config)
        async with trio.open_nursery() as nursery:
            await nursery.start(vm_runtime.run)
            client = RuntimeClient(vm_runtime.endpoint)
            if round_ == 0:
                await first_runtime(vm_runtime, client, looks)
            else:  # a new runtime over the same root
                [c] = await client.list_containers()
                looks.seen["restarted"] = json.loads(c.annotations[NICS])
                looks.look("restarted", vm_runtime, c.id, live=False)
                await client.remove_container(c.id)
            await client.aclose()
            nursery.cancel_scope.cancel()
    return looks.seen


if __name__ == "__main__":
    print(json.dumps(trio.run(main, Path(sys.argv[1]), sys.argv[2])))
