"""A VM pod on the pod network, as the VM runtime sees it (libvirt's test driver): the
sandbox's NIC annotation becomes the guest's first NIC on that bridge with that MAC,
the guest is told the address (kernel `ip=`, the seed's network-config), Neutron ports
stay on the runtime's bridge, and the sandbox reports the pod's address."""

from __future__ import annotations

import io
import json
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from arktos_lite import runtime
from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.vm import VIRTUAL_MACHINE, VmRuntimeConfig, import_vm_image

from .test_vm_runtime import TEST_URI, Env, serving

NIC = {
    "bridge": "arktos0123abcd",
    "mac": "0a:58:0a:a0:00:05",
    "address": "10.160.0.5/27",
    "gateway": "10.160.0.1",
}
PORT = {"name": "eth0", "portId": "8a3c6a43-1f6b-4c39", "macAddress": "fa:16:3e:00:00:01"}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    sysfs = tmp_path / "sys"
    (sysfs / "br-ports" / "bridge").mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="vmnic-") as short:
        config = VmRuntimeConfig(
            tmp_path / "vm",
            Path(short) / "vm.sock",
            uri=TEST_URI,
            overlays=False,
            bridge="br-ports",
            net_sysfs=sysfs,
        )
        async with serving(config) as served:
            yield served


async def _vm(env: Env, image: str, *, ports: bool) -> tuple[str, str, str]:
    """(container id, domain XML, sandbox id) of a VM pod on the pod network."""
    uid = str(uuid.uuid4())
    sandbox = cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name="p", uid=uid, namespace="default"),
        hostname="p",
        annotations={runtime.POD_NIC: json.dumps(NIC), runtime.POD_IPS: "10.160.0.5"},
    )
    sid = await env.client.run_pod_sandbox(sandbox)
    annotations = {VIRTUAL_MACHINE: json.dumps({"name": "vm1", "image": image})}
    if ports:
        annotations["arktos.futurewei.com/nics"] = json.dumps([PORT])
    config = cri.ContainerConfig(
        metadata=cri.ContainerMetadata(name="vm1"), annotations=annotations
    )
    cid = await env.client.create_container(sid, config, sandbox)
    xml = await trio.Path(env.config.root_dir / "vms" / cid / "domain.xml").read_text()
    return cid, xml, sid


def _nics(xml: str) -> list[tuple[str, str]]:
    """(MAC address, bridge) of each of the domain's interfaces, in order."""
    root = ET.fromstring(xml)
    return [
        (str(mac.get("address")), str(source.get("bridge")))
        for mac, source in zip(
            root.iterfind("devices/interface/mac"),
            root.iterfind("devices/interface/source"),
            strict=True,
        )
    ]


async def test_a_kernel_guest_gets_the_pod_nic_first_and_ip_on_its_cmdline(env: Env) -> None:
    status = await env.client.status(verbose=True)
    assert status.info[runtime.POD_NIC_INFO] == "true"
    kernel = env.config.root_dir / "vmlinuz"
    kernel.parent.mkdir(parents=True, exist_ok=True)
    kernel.write_bytes(b"kernel")
    import_vm_image(env.config.root_dir, kernel, name="tiny", kind="kernel", cmdline="quiet")

    cid, xml, sid = await _vm(env, "tiny", ports=False)
    # Alone on the pod network: no NIC of its own on the runtime's bridge.
    assert _nics(xml) == [(NIC["mac"], NIC["bridge"])]
    cmdline = ET.fromstring(xml).findtext("os/cmdline")
    assert cmdline == "quiet console=ttyS0 ip=10.160.0.5::10.160.0.1:255.255.255.224:::off"
    sandbox = await env.client.pod_sandbox_status(sid)
    assert sandbox.network.ip == "10.160.0.5"
    assert (await env.client.container_status(cid)).message == ""

    # With a Neutron port, that NIC stays on the runtime's bridge, after the pod's.
    _, xml, _ = await _vm(env, "tiny", ports=True)
    assert _nics(xml) == [(NIC["mac"], NIC["bridge"]), (PORT["macAddress"], "br-ports")]
    assert (
        ET.fromstring(xml)
        .findtext("os/cmdline", "")
        .endswith("ip=10.160.0.5::10.160.0.1:255.255.255.224::eth0:off")
    )


async def test_a_disk_guest_finds_its_address_in_the_seeds_network_config(env: Env) -> None:
    pycdlib = pytest.importorskip("pycdlib")
    disk = env.config.root_dir / "disk.raw"
    disk.parent.mkdir(parents=True, exist_ok=True)
    disk.write_bytes(b"\0" * 1024 * 1024)
    import_vm_image(env.config.root_dir, disk, name="img")
    cid, xml, _ = await _vm(env, "img", ports=True)
    assert _nics(xml) == [(NIC["mac"], NIC["bridge"]), (PORT["macAddress"], "br-ports")]
    iso = pycdlib.PyCdlib()
    iso.open(str(env.config.root_dir / "vms" / cid / "seed.iso"))
    try:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, joliet_path="/network-config")
    finally:
        iso.close()
    ethernets = json.loads(out.getvalue())["ethernets"]
    assert ethernets["pod0"]["match"] == {"macaddress": NIC["mac"]}
    assert ethernets["pod0"]["addresses"] == [NIC["address"]]
    assert ethernets["port0"]["match"] == {"macaddress": PORT["macAddress"]}
