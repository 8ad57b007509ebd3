"""What a node agent needs from a container or VM runtime: the CRI calls, as trio methods.

`RuntimeClient` speaks them over gRPC to any CRI socket (the embedded process runtime,
containerd, the VM runtime); the hollow nodes' fake runtime answers them in memory. The
values are the CRI protobuf messages themselves, so every implementation speaks exactly
the wire format. Errors are `runtime.errors.CRIError` subclasses (`NotFound`, `Unavailable`,
...), never gRPC's own.

`VmRuntime` is a runtime that also runs Arktos' VM calls (reboot, snapshot, restore) and
the power calls (pause, resume, suspend); it is `runtime_checkable`, so the agent asks
`isinstance(rt, VmRuntime)` before using them. Container runtimes never get them.
`update_container_resources` is the CRI's own; a VM runtime resizes the VM (the VM's
`spec.virtualMachine` JSON travels in `annotations`, as at CreateContainer).
A VM runtime reports each VM's facts on its containers' annotations under the `VM_*`
keys below (besides the config's own annotations).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from arktos_lite.runtime.cri import api_pb2 as cri

# The VM facts a VM runtime puts on `Container.annotations` and `ContainerStatus.annotations`.
VM_ID = "vm.runtime.arktos.futurewei.com/id"
# Arktos' VM state: active|paused|suspended|stopped|error|deleted|building.
VM_STATE = "vm.runtime.arktos.futurewei.com/state"
# nostate|running|paused|shutdown|crashed|suspended.
VM_POWER_STATE = "vm.runtime.arktos.futurewei.com/power-state"
# The reboots RebootVM did, in decimal.
VM_RESTART_COUNT = "vm.runtime.arktos.futurewei.com/restart-count"
# The VM's vCPUs and memory (bytes) now, in decimal: what a resize is measured against.
VM_VCPUS = "vm.runtime.arktos.futurewei.com/vcpus"
VM_MEMORY = "vm.runtime.arktos.futurewei.com/memory"

# Pod networking (the embedded process runtime): a sandbox whose config asks for a pod
# network namespace (`NamespaceOption.network = POD`) and carries these annotations runs
# its containers in the network namespace at that path (`ip netns`), and its status
# reports these addresses (comma-separated, the first is the pod's IP). The agent made
# the namespace and attached it; the runtime only enters it.
POD_NETNS = "network.arktos.futurewei.com/netns"
POD_IPS = "network.arktos.futurewei.com/ips"
# A runtime that honours them says "true" under this key of its verbose Status info.
POD_NETWORK_INFO = "podNetworkNamespaces"
# Pod networking of VMs: a sandbox config carrying this annotation, JSON
# `{"bridge": name, "mac": "0a:58:…", "address": "10.1.2.5/27", "gateway": "10.1.2.1"}`
# (and `POD_IPS`), gets its guest a NIC on that bridge with that MAC, told that address;
# its status reports `POD_IPS`. The agent made the bridge and reserved the address; the
# runtime only plugs the guest in. A runtime that does says "true" under `POD_NIC_INFO`.
POD_NIC = "network.arktos.futurewei.com/nic"
POD_NIC_INFO = "podNetworkNics"


@dataclasses.dataclass(frozen=True, slots=True)
class ExecResult:
    stdout: bytes
    stderr: bytes
    exit_code: int


class Runtime(Protocol):
    """One CRI runtime (RuntimeService and ImageService), as the agent calls it."""

    async def version(self) -> cri.VersionResponse: ...

    async def status(self, *, verbose: bool = False) -> cri.StatusResponse: ...

    # Sandboxes

    async def run_pod_sandbox(
        self, config: cri.PodSandboxConfig, *, runtime_handler: str = ""
    ) -> str: ...

    async def stop_pod_sandbox(self, sandbox_id: str) -> None: ...

    async def remove_pod_sandbox(self, sandbox_id: str) -> None: ...

    async def pod_sandbox_status(self, sandbox_id: str) -> cri.PodSandboxStatus: ...

    async def list_pod_sandbox(
        self, filter: cri.PodSandboxFilter | None = None
    ) -> Sequence[cri.PodSandbox]: ...

    # Containers

    async def create_container(
        self,
        sandbox_id: str,
        config: cri.ContainerConfig,
        sandbox_config: cri.PodSandboxConfig,
    ) -> str: ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, *, timeout: int) -> None:  # noqa: ASYNC109
        ...

    async def remove_container(self, container_id: str) -> None: ...

    async def list_containers(
        self, filter: cri.ContainerFilter | None = None
    ) -> Sequence[cri.Container]: ...

    async def container_status(self, container_id: str) -> cri.ContainerStatus: ...

    async def exec_sync(
        self,
        container_id: str,
        cmd: Sequence[str],
        *,
        timeout: float,  # noqa: ASYNC109 (CRI's own timeout, sent to the runtime)
    ) -> ExecResult: ...

    async def exec(self, request: cri.ExecRequest) -> str:
        """The streaming URL that serves this exec (channel.k8s.io over websocket)."""
        ...

    async def container_stats(self, container_id: str) -> cri.ContainerStats: ...

    async def list_container_stats(
        self, filter: cri.ContainerStatsFilter | None = None
    ) -> Sequence[cri.ContainerStats]: ...

    async def reopen_container_log(self, container_id: str) -> None: ...

    async def update_container_resources(
        self,
        container_id: str,
        resources: cri.LinuxContainerResources,
        *,
        annotations: Mapping[str, str] | None = None,
    ) -> None: ...

    # Images

    async def pull_image(
        self, image: str, *, sandbox_config: cri.PodSandboxConfig | None = None
    ) -> str: ...

    async def image_status(self, image: str) -> cri.Image | None: ...

    async def list_images(self) -> Sequence[cri.Image]: ...

    async def remove_image(self, image: str) -> None: ...


@runtime_checkable
class VmRuntime(Runtime, Protocol):
    """A runtime of VMs: a `Runtime` plus Arktos' VM calls, whose `vm_id` is the CRI
    container id of the VM."""

    async def reboot_vm(
        self, vm_id: str, *, delay_seconds: int = 0, domain_reboot_flag: int = 0
    ) -> None: ...

    async def create_snapshot(self, vm_id: str, snapshot_id: str, *, flags: int = 0) -> None: ...

    async def restore_to_snapshot(
        self, vm_id: str, snapshot_id: str, *, flags: int = 0
    ) -> None: ...

    async def pause_vm(self, vm_id: str) -> None:
        """Freeze a running VM in memory; a paused VM stays paused."""
        ...

    async def resume_vm(self, vm_id: str) -> None:
        """Run a paused or suspended VM again where it was; a running one keeps running."""
        ...

    async def suspend_vm(self, vm_id: str) -> None:
        """Save a running or paused VM's memory to disk and stop it; idempotent."""
        ...
