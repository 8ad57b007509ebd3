"""From a pod's `spec.virtualMachine` to a libvirt domain: the spec, the XML, the seed.

Guarantees:

* `VmSpec.parse` reads the annotation's JSON and rejects what cannot become a VM
  (InvalidArgument with the reason): no image, malformed resources, userData that is not
  base64. vCPUs and memory come from the limits, else the requests, else 1 CPU and 512 MiB.
* `parse_nics` reads the NICs annotation (a JSON list of `name`, `macAddress`, `portId`:
  the pod's network ports) and rejects a MAC address that is not one.
* `domain_xml` escapes every value it interpolates (names, paths, the kernel cmdline).
  With a bridge, a guest gets one virtio NIC on it per network port, with the port's MAC
  address and the tap device `tap<first 11 characters of the port id>` (as OpenStack
  names them), or one NIC of its own when it has no ports.
* `parse_pod_nic` reads the pod-network NIC annotation (`runtime.POD_NIC`) and rejects
  a malformed MAC or address. The guest learns that address from the kernel's `ip=`
  parameter (`kernel_ip_param`, kernel-boot images) or the seed's `network-config`
  (`network_config`: cloud-init network config v2, the NIC matched by MAC).
* `write_seed` writes a cloud-init NoCloud seed: an ISO9660 volume labelled ``cidata``
  (Joliet and Rock Ridge names, so ``meta-data`` and ``user-data`` keep their names)
  holding meta-data (instance-id, local-hostname, public-keys) and user-data (the decoded
  userData, the cloudInitUserDataScript, both as a MIME multipart, or an empty
  ``#cloud-config``), and network-config when given.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import ipaddress
import json
import re
from collections.abc import Sequence
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from arktos_lite.runtime import _errors as errors, _vmresources

DEFAULT_VCPUS = _vmresources.DEFAULT_VCPUS
DEFAULT_MEMORY = _vmresources.DEFAULT_MEMORY
MIN_MEMORY = _vmresources.MIN_MEMORY
parse_quantity = _vmresources.parse_quantity
POWER_SPECS = ("Running", "Paused", "Shutdown", "Suspended")


@dataclasses.dataclass(frozen=True, slots=True)
class VmSpec:
    """What the runtime needs of a pod's `spec.virtualMachine`."""

    name: str
    image: str
    vcpus: int = DEFAULT_VCPUS
    memory: int = DEFAULT_MEMORY  # bytes
    public_keys: tuple[str, ...] = ()
    key_pair_name: str = ""
    user_data: bytes = b""
    user_data_script: str = ""
    power_spec: str = "Running"

    @classmethod
    def parse(cls, text: str, *, default_name: str, image: str = "") -> VmSpec:
        """The VM of an annotation's JSON; `image` (the CRI config's) when it names none."""
        try:
            vm = json.loads(text) if text else {}
        except ValueError as e:
            raise errors.InvalidArgument(f"the virtual machine spec is not JSON: {e}") from e
        if not isinstance(vm, dict):
            raise errors.InvalidArgument("the virtual machine spec must be a JSON object")
        image_ref = str(vm.get("image") or image or "")
        if not image_ref:
            raise errors.InvalidArgument("the virtual machine has no image")
        resources = vm.get("resources") or {}
        if not isinstance(resources, dict):
            raise errors.InvalidArgument("virtualMachine.resources must be an object")
        sized = _vmresources.vm_resources(resources)
        user_data = b""
        if vm.get("userData"):
            try:
                user_data = base64.b64decode(str(vm["userData"]), validate=True)
            except (binascii.Error, ValueError) as e:
                raise errors.InvalidArgument(f"virtualMachine.userData is not base64: {e}") from e
        power = str(vm.get("powerSpec") or "Running")
        if power not in POWER_SPECS:
            raise errors.InvalidArgument(
                f"virtualMachine.powerSpec {power!r} is not one of {', '.join(POWER_SPECS)}"
            )
        key = str(vm.get("publicKey") or "").strip()
        return cls(
            name=str(vm.get("name") or default_name),
            image=image_ref,
            vcpus=sized.vcpus,
            memory=sized.memory,
            public_keys=(key,) if key else (),
            key_pair_name=str(vm.get("keyPairName") or ""),
            user_data=user_data,
            user_data_script=str(vm.get("cloudInitUserDataScript") or ""),
            power_spec=power,
        )


_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


@dataclasses.dataclass(frozen=True, slots=True)
class NicSpec:
    """A NIC of the guest: a network port of the pod, on `bridge` ("": the runtime's)."""

    name: str
    mac: str
    port_id: str = ""
    bridge: str = ""

    @property
    def tap(self) -> str:
        return f"tap{self.port_id[:11]}" if self.port_id else ""


def parse_nics(text: str) -> tuple[NicSpec, ...]:
    """The NICs of the annotation's JSON (empty text: none)."""
    if not text:
        return ()
    try:
        listed = json.loads(text)
    except ValueError as e:
        raise errors.InvalidArgument(f"the NICs are not JSON: {e}") from e
    if not isinstance(listed, list):
        raise errors.InvalidArgument("the NICs must be a JSON list")
    nics = []
    for item in listed:
        if not isinstance(item, dict):
            raise errors.InvalidArgument("a NIC must be a JSON object")
        mac = str(item.get("macAddress") or "")
        if not _MAC.fullmatch(mac):
            raise errors.InvalidArgument(f"NIC {item.get('name')!r}: {mac!r} is no MAC address")
        nics.append(
            NicSpec(
                name=str(item.get("name") or ""), mac=mac, port_id=str(item.get("portId") or "")
            )
        )
    return tuple(nics)


# The pod-network NIC's name (its alias is `ua-pod-network`).
POD_NIC_NAME = "pod-network"


@dataclasses.dataclass(frozen=True, slots=True)
class PodNic:
    """The guest's NIC on its pod network (`runtime.POD_NIC`): bridge, MAC, address."""

    bridge: str
    mac: str
    address: str  # "10.1.2.5/27"
    gateway: str = ""

    @property
    def nic(self) -> NicSpec:
        return NicSpec(name=POD_NIC_NAME, mac=self.mac, bridge=self.bridge)


def parse_pod_nic(text: str) -> PodNic | None:
    """The pod-network NIC of the annotation's JSON (empty text: none)."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise errors.InvalidArgument(f"the pod network NIC is not JSON: {e}") from e
    if not isinstance(data, dict):
        raise errors.InvalidArgument("the pod network NIC must be a JSON object")
    bridge, mac = str(data.get("bridge") or ""), str(data.get("mac") or "")
    address, gateway = str(data.get("address") or ""), str(data.get("gateway") or "")
    if not bridge:
        raise errors.InvalidArgument("the pod network NIC names no bridge")
    if not _MAC.fullmatch(mac):
        raise errors.InvalidArgument(f"the pod network NIC's {mac!r} is no MAC address")
    try:
        interface = ipaddress.IPv4Interface(address)
        if gateway:
            ipaddress.IPv4Address(gateway)
    except ValueError as e:
        raise errors.InvalidArgument(f"the pod network NIC's address: {e}") from e
    if "/" not in address:
        raise errors.InvalidArgument(f"the pod network NIC's address {address!r} has no prefix")
    return PodNic(bridge=bridge, mac=mac, address=str(interface), gateway=gateway)


def kernel_ip_param(nic: PodNic, *, device: str = "") -> str:
    """The kernel's `ip=<client>::<gateway>:<netmask>::<device>:off` (static, no
    autoconfiguration) for the guest's pod address; initramfs tools read it too."""
    interface = ipaddress.IPv4Interface(nic.address)
    return f"ip={interface.ip}::{nic.gateway}:{interface.netmask}::{device}:off"


def network_config(pod: PodNic, *, others: Sequence[NicSpec] = ()) -> bytes:
    """cloud-init network config (version 2) for the seed: the pod NIC, matched by MAC,
    with its address and default route; `others` (Neutron ports' NICs) by DHCP, as
    cloud-init's own fallback configures a NIC without a config."""
    ethernets: dict[str, Any] = {
        "pod0": {
            "match": {"macaddress": pod.mac.lower()},
            "addresses": [pod.address],
            **({"routes": [{"to": "0.0.0.0/0", "via": pod.gateway}]} if pod.gateway else {}),
        }
    }
    for i, nic in enumerate(others):
        ethernets[f"port{i}"] = {
            "match": {"macaddress": nic.mac.lower()},
            "dhcp4": True,
            "optional": True,
        }
    # JSON is YAML: cloud-init reads it as such.
    return json.dumps({"version": 2, "ethernets": ethernets}, indent=1).encode() + b"\n"


@dataclasses.dataclass(frozen=True, slots=True)
class DiskSpec:
    path: Path
    format: str
    device: str = "disk"  # or "cdrom"
    target: str = "vda"
    bus: str = "virtio"
    readonly: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class KernelBoot:
    kernel: Path
    initrd: Path | None
    cmdline: str


def domain_xml(
    *,
    name: str,
    domain_type: str,
    vcpus: int,
    memory: int,
    disks: Sequence[DiskSpec],
    max_vcpus: int = 0,
    max_memory: int = 0,
    kernel: KernelBoot | None = None,
    serial_log: Path | None = None,
    bridge: str = "",
    nics: Sequence[NicSpec] = (),
    description: str = "",
) -> str:
    """The libvirt domain XML of one VM.

    `max_vcpus` and `max_memory` (bytes; 0: no more than `vcpus`, `memory`) are how far a
    running VM can grow: vCPU hot-plug up to the first, the memory balloon up to the
    second. A `bridge` gets the guest a virtio NIC on it: one per `nics` entry, with its
    MAC address and tap device, or a single one when `nics` is empty.
    """
    os_lines = ["<type arch='x86_64' machine='pc'>hvm</type>"]
    if kernel is not None:
        os_lines.append(f"<kernel>{escape(str(kernel.kernel))}</kernel>")
        if kernel.initrd is not None:
            os_lines.append(f"<initrd>{escape(str(kernel.initrd))}</initrd>")
        os_lines.append(f"<cmdline>{escape(kernel.cmdline)}</cmdline>")
    else:
        os_lines.append("<boot dev='hd'/>")
    devices = []
    for d in disks:
        devices.append(
            f"<disk type='file' device={quoteattr(d.device)}>"
            f"<driver name='qemu' type={quoteattr(d.format)}/>"
            f"<source file={quoteattr(str(d.path))}/>"
            f"<target dev={quoteattr(d.target)} bus={quoteattr(d.bus)}/>"
            + ("<readonly/>" if d.readonly else "")
            + "</disk>"
        )
    if serial_log is not None:
        devices.append(
            f"<serial type='file'><source path={quoteattr(str(serial_log))} append='on'/>"
            "<target port='0'/></serial>"
        )
    else:
        devices.append("<serial type='pty'><target port='0'/></serial>")
    devices.append("<console type='pty'><target type='serial' port='0'/></console>")
    if bridge and not nics:
        devices.append(
            f"<interface type='bridge'><source bridge={quoteattr(bridge)}/>"
            "<model type='virtio'/></interface>"
        )
    devices.extend(interface_xml(nic, bridge=bridge) for nic in nics if nic.bridge or bridge)
    devices.append("<memballoon model='virtio'/>")
    body = "\n    ".join(devices)
    top_vcpus = max(vcpus, max_vcpus)
    top_kib = max(1, max(memory, max_memory) // 1024)
    return f"""<domain type={quoteattr(domain_type)}>
  <name>{escape(name)}</name>
  <description>{escape(description)}</description>
  <memory unit='KiB'>{top_kib}</memory>
  <currentMemory unit='KiB'>{max(1, memory // 1024)}</currentMemory>
  <vcpu current='{vcpus}'>{top_vcpus}</vcpu>
  <os>
    {chr(10).join("    " + line for line in os_lines).strip()}
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    {body}
  </devices>
</domain>
"""


def interface_xml(nic: NicSpec, *, bridge: str) -> str:
    """The `<interface>` of one NIC: on its own bridge, else on `bridge`; its alias
    `ua-<name>` finds it again (to detach it, say)."""
    target = f"<target dev={quoteattr(nic.tap)}/>" if nic.tap else ""
    return (
        f"<interface type='bridge'><mac address={quoteattr(nic.mac)}/>"
        f"<source bridge={quoteattr(nic.bridge or bridge)}/>{target}"
        f"<model type='virtio'/><alias name={quoteattr('ua-' + nic.name)}/></interface>"
    )


def snapshot_xml(name: str) -> str:
    return (
        f"<domainsnapshot><name>{escape(name)}</name>"
        "<description>arktos snapshot</description></domainsnapshot>"
    )


def user_data(spec: VmSpec) -> bytes:
    parts: list[tuple[bytes, str]] = []
    if spec.user_data:
        parts.append((spec.user_data, "user-data"))
    if spec.user_data_script:
        parts.append((spec.user_data_script.encode(), "script"))
    if not parts:
        return b"#cloud-config\n{}\n"
    if len(parts) == 1:
        return parts[0][0]
    multipart = MIMEMultipart()
    for data, filename in parts:
        text = data.decode(errors="replace")
        subtype = "x-shellscript" if text.startswith("#!") else "cloud-config"
        if text.startswith("#cloud-config"):
            subtype = "cloud-config"
        part = MIMEText(text, subtype)
        part.add_header("Content-Disposition", "attachment", filename=filename)
        multipart.attach(part)
    return multipart.as_bytes()


def meta_data(spec: VmSpec, *, instance_id: str, hostname: str) -> bytes:
    # JSON is YAML: cloud-init reads it as such.
    data: dict[str, Any] = {"instance-id": instance_id, "local-hostname": hostname}
    if spec.public_keys:
        data["public-keys"] = list(spec.public_keys)
    return json.dumps(data, indent=1).encode() + b"\n"


def write_seed(path: Path, *, meta: bytes, user: bytes, network: bytes = b"") -> None:
    """The NoCloud seed ISO at `path` (with a `network-config` when `network`)."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata")
    files = [("/METADATA.;1", "meta-data", meta), ("/USERDATA.;1", "user-data", user)]
    if network:
        files.append(("/NETCONF.;1", "network-config", network))
    try:
        for iso_name, real_name, data in files:
            iso.add_fp(
                io.BytesIO(data),
                len(data),
                iso_name,
                rr_name=real_name,
                joliet_path=f"/{real_name}",
            )
        tmp = path.with_name(path.name + ".tmp")
        iso.write(str(tmp))
        tmp.replace(path)
    finally:
        iso.close()
