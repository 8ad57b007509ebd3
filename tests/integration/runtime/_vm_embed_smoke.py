"""A real QEMU domain's lifecycle through the VM runtime, run as a script in a fresh interpreter.

gRPC must not install its fork handlers in a process where libvirt fork()s QEMU (the child
aborts), and gRPC reads GRPC_ENABLE_FORK_SUPPORT when it is imported: hence a separate
interpreter with the variable set first. The guest is an empty disk (nothing boots), which
is enough to check that QEMU accepts the domain, the overlay, the seed and the snapshots.
Prints one JSON object of observations.
"""

from __future__ import annotations

import os

os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"

import json
import sys
from pathlib import Path

import trio

from arktos_lite.runtime import RuntimeClient
from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.vm import (
    VIRTUAL_MACHINE,
    VM_STATE,
    VmRuntime,
    VmRuntimeConfig,
    import_vm_image,
)


async def main(directory: Path) -> dict[str, object]:
    source = directory / "src.qcow2"
    await trio.run_process(["qemu-img", "create", "-q", "-f", "qcow2", str(source), "16M"])
    config = VmRuntimeConfig(directory / "root", directory / "vm.sock")
    import_vm_image(config.root_dir, source, name="img")
    seen: dict[str, object] = {}
    vm_runtime = VmRuntime(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(vm_runtime.run)
        client = RuntimeClient(vm_runtime.endpoint)
        sid = await client.run_pod_sandbox(
            cri.PodSandboxConfig(
                metadata=cri.PodSandboxMetadata(name="p", uid="u"),
                log_directory=str(directory / "logs"),
            )
        )
        vm = {"name": "vm", "image": "img", "resources": {"limits": {"memory": "128Mi"}}}
        cid = await client.create_container(
            sid,
            cri.ContainerConfig(
                metadata=cri.ContainerMetadata(name="vm"),
                log_path="vm/0.log",
                annotations={VIRTUAL_MACHINE: json.dumps({**vm, "publicKey": "ssh-rsa AAA"})},
            ),
            cri.PodSandboxConfig(),
        )
        await client.start_container(cid)
        status = await client.container_status(cid)
        seen["running"] = [status.state, status.annotations[VM_STATE]]
        await client.create_snapshot(cid, "s1")
        await client.restore_to_snapshot(cid, "s1")
        status = await client.container_status(cid)
        seen["restored"] = [status.state, status.annotations[VM_STATE]]
        await client.stop_container(cid, timeout=1)
        status = await client.container_status(cid)
        seen["stopped"] = [status.state, status.reason, status.exit_code]
        await client.remove_container(cid)
        seen["left"] = sorted(p.name for p in (config.root_dir / "vms").iterdir())
        await client.aclose()
        nursery.cancel_scope.cancel()
    return seen


if __name__ == "__main__":
    print(json.dumps(trio.run(main, Path(sys.argv[1]))))
