"""How a VM runtime is set up: where it keeps state and which libvirt it drives.

The config is a frozen value that `VmRuntime` reads once. The libvirt URI defaults to an
embedded QEMU driver under `root_dir` (`qemu:///embed?root=…`), which needs no daemon;
`qemu:///system` and libvirt's `test:///default` (tests) work the same way.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class VmRuntimeConfig:
    """Settings of one VM runtime.

    `root_dir` holds the image store (`images/`), the sandbox and container records, each
    VM's overlay disk, cloud-init seed and raw serial output; a new runtime over the same
    `root_dir` (and the same libvirt) finds the domains of the previous one.
    """

    root_dir: Path
    socket_path: Path
    _: dataclasses.KW_ONLY
    # None: `qemu:///embed?root=<root_dir>/libvirt`.
    uri: str | None = None
    # Open libvirt on the first call that needs it rather than at start (where VMs exist
    # already, at start all the same): a node without VMs never loads libvirt.
    connect_on_demand: bool = False
    # None: copy-on-write qcow2 overlays (and kernel VMs' state disks) are created when
    # `qemu-img` is on PATH; False: never (the test driver needs no real disks).
    overlays: bool | None = None
    # Log the serial console to a file and convert it into the container's CRI log.
    serial_log: bool = True
    # A cloud-init NoCloud seed (ISO9660 `cidata`) for disk images.
    cloud_init: bool = True
    log_max_bytes: int = 10 * MIB
    log_max_files: int = 5
    # RebootVM sleeps its delayInSeconds in the handler thread, never longer than this.
    max_reboot_delay: float = 300.0
    # How often the serial console log is converted into the CRI log.
    log_interval: float = 0.25
    # A network bridge guests are attached to (virtio NIC); "" means no network device.
    # A bridge that does not exist (no `<net_sysfs>/<bridge>/bridge`) when a VM is defined
    # leaves that VM without a NIC, with a note on its status.
    bridge: str = ""
    net_sysfs: Path = Path("/sys/class/net")
    # How far a running VM can be resized (UpdateContainerResources): up to `max_vcpus`
    # vCPUs (0: the node's CPU count) and `memory_growth` times the memory it was defined
    # with, both at least what it was defined with.
    max_vcpus: int = 0
    memory_growth: float = 2.0

    def bridge_missing(self) -> str | None:
        """None when guests get a NIC on `bridge`, else why they get none."""
        if not self.bridge:
            return "no bridge configured"
        if not (self.net_sysfs / self.bridge / "bridge").is_dir():
            return f"bridge {self.bridge} does not exist on this node"
        return None

    @property
    def libvirt_uri(self) -> str:
        if self.uri is not None:
            return self.uri
        return f"qemu:///embed?root={self.root_dir / 'libvirt'}"
