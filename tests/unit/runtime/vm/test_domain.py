"""From a pod's virtualMachine spec to a domain: parsing, sizing, XML and the seed."""

from __future__ import annotations

import base64
import io
import json
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pycdlib
import pytest

from arktos_lite import runtime
from arktos_lite.runtime.vm import _domain
from arktos_lite.runtime.vm._domain import DiskSpec, KernelBoot, VmSpec


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", Decimal(1)),
        ("500m", Decimal("0.5")),
        ("512Mi", Decimal(512 * 2**20)),
        ("1G", Decimal(10**9)),
        ("2Gi", Decimal(2 * 2**30)),
        ("1e3", Decimal(1000)),
        (4, Decimal(4)),
    ],
)
def test_quantities(text: object, value: Decimal) -> None:
    assert _domain.parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "lots", "1Xi", "-1"])
def test_bad_quantities(text: str) -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        _domain.parse_quantity(text)


def test_limits_win_over_requests_and_defaults_apply() -> None:
    spec = VmSpec.parse(
        json.dumps(
            {
                "name": "vm",
                "image": "img",
                "resources": {
                    "limits": {"cpu": "1500m"},
                    "requests": {"cpu": "1", "memory": "1Gi"},
                },
            }
        ),
        default_name="c",
    )
    assert (spec.vcpus, spec.memory) == (2, 2**30)
    default = VmSpec.parse(json.dumps({"image": "img"}), default_name="c")
    assert (default.name, default.vcpus, default.memory) == ("c", 1, 512 * 2**20)


def test_image_falls_back_to_the_container_image() -> None:
    assert VmSpec.parse("", default_name="c", image="cri-image").image == "cri-image"


@pytest.mark.parametrize(
    ("vm", "message"),
    [
        ({"name": "x"}, "has no image"),
        ({"image": "i", "resources": {"limits": {"memory": "1Mi"}}}, "below the minimum"),
        ({"image": "i", "resources": {"limits": {"cpu": "0"}}}, "must be positive"),
        ({"image": "i", "userData": "not base64!"}, "not base64"),
        ({"image": "i", "powerSpec": "Flying"}, "powerSpec"),
        ([1, 2], "JSON object"),
    ],
)
def test_invalid_specs(vm: object, message: str) -> None:
    with pytest.raises(runtime.InvalidArgument, match=message):
        VmSpec.parse(json.dumps(vm), default_name="c")


def test_not_json() -> None:
    with pytest.raises(runtime.InvalidArgument, match="not JSON"):
        VmSpec.parse("{", default_name="c")


def test_disk_domain_xml() -> None:
    xml = _domain.domain_xml(
        name="arktos-<x>",
        domain_type="qemu",
        vcpus=2,
        memory=256 * 2**20,
        disks=[
            DiskSpec(Path("/d/disk.qcow2"), "qcow2"),
            DiskSpec(
                Path("/d/seed.iso"), "raw", device="cdrom", target="hdc", bus="ide", readonly=True
            ),
        ],
        serial_log=Path("/d/serial/stdout"),
        bridge="br0",
    )
    root = ET.fromstring(xml)
    assert root.get("type") == "qemu"
    assert root.findtext("name") == "arktos-<x>"
    assert root.findtext("vcpu") == "2"
    assert root.findtext("memory") == str(256 * 1024)
    assert root.find("os/boot") is not None
    sources = [d.find("source").get("file") for d in root.iter("disk")]  # type: ignore[union-attr]
    assert sources == ["/d/disk.qcow2", "/d/seed.iso"]
    assert [d.find("readonly") is not None for d in root.iter("disk")] == [False, True]
    serial = root.find("devices/serial")
    assert serial is not None
    assert serial.get("type") == "file"
    assert serial.find("source").get("path") == "/d/serial/stdout"  # type: ignore[union-attr]
    interface = root.find("devices/interface")
    assert interface is not None
    assert interface.get("type") == "bridge"
    assert interface.find("source").get("bridge") == "br0"  # type: ignore[union-attr]
    assert interface.find("model").get("type") == "virtio"  # type: ignore[union-attr]


def test_a_domain_has_room_to_grow() -> None:
    xml = _domain.domain_xml(
        name="g",
        domain_type="qemu",
        vcpus=2,
        memory=256 * 2**20,
        max_vcpus=8,
        max_memory=512 * 2**20,
        disks=[],
    )
    root = ET.fromstring(xml)
    vcpu = root.find("vcpu")
    assert vcpu is not None
    assert (vcpu.get("current"), vcpu.text) == ("2", "8")
    assert root.findtext("memory") == str(512 * 1024)
    assert root.findtext("currentMemory") == str(256 * 1024)
    assert root.find("devices/memballoon").get("model") == "virtio"  # type: ignore[union-attr]
    # No bridge, no NIC; maxima below the size are the size.
    root = ET.fromstring(
        _domain.domain_xml(
            name="g", domain_type="qemu", vcpus=4, memory=2**30, max_vcpus=2, disks=[]
        )
    )
    assert root.find("devices/interface") is None
    assert (root.find("vcpu").get("current"), root.findtext("vcpu")) == ("4", "4")  # type: ignore[union-attr]
    assert root.findtext("memory") == root.findtext("currentMemory") == str(2**20)


def test_vm_resources_is_the_runtimes_own_reading() -> None:
    assert runtime.vm_resources(None) == runtime.VmResources(1, 512 * 2**20)
    sized = runtime.vm_resources({"requests": {"cpu": "1500m", "memory": "1Gi"}})
    assert sized == runtime.VmResources(2, 2**30)
    spec = VmSpec.parse(
        json.dumps({"image": "i", "resources": {"requests": {"cpu": "1500m", "memory": "1Gi"}}}),
        default_name="vm",
    )
    assert (spec.vcpus, spec.memory) == (sized.vcpus, sized.memory)
    with pytest.raises(runtime.InvalidArgument, match="below the minimum"):
        runtime.vm_resources({"limits": {"memory": "1Mi"}})


def test_kernel_domain_xml() -> None:
    xml = _domain.domain_xml(
        name="k",
        domain_type="test",
        vcpus=1,
        memory=2**28,
        disks=[],
        kernel=KernelBoot(Path("/i/kernel"), Path("/i/initrd"), "console=ttyS0 quiet & more"),
    )
    root = ET.fromstring(xml)
    assert root.findtext("os/kernel") == "/i/kernel"
    assert root.findtext("os/initrd") == "/i/initrd"
    assert root.findtext("os/cmdline") == "console=ttyS0 quiet & more"
    assert root.find("os/boot") is None
    assert root.find("devices/serial").get("type") == "pty"  # type: ignore[union-attr]


def _read_iso(path: Path) -> dict[str, bytes]:
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        out = {"volume": iso.pvd.volume_identifier.strip()}
        for name in ("meta-data", "user-data"):
            buf = io.BytesIO()
            iso.get_file_from_iso_fp(buf, joliet_path=f"/{name}")
            out[name] = buf.getvalue()
        return out
    finally:
        iso.close()


def test_seed_holds_meta_and_user_data(tmp_path: Path) -> None:
    spec = VmSpec(name="vm", image="i", public_keys=("ssh-rsa AAA",), user_data=b"#cloud-config\n")
    seed = tmp_path / "seed.iso"
    _domain.write_seed(
        seed,
        meta=_domain.meta_data(spec, instance_id="id1", hostname="host1"),
        user=_domain.user_data(spec),
    )
    files = _read_iso(seed)
    assert files["volume"] == b"cidata"
    assert json.loads(files["meta-data"]) == {
        "instance-id": "id1",
        "local-hostname": "host1",
        "public-keys": ["ssh-rsa AAA"],
    }
    assert files["user-data"] == b"#cloud-config\n"


def test_user_data_combinations() -> None:
    assert _domain.user_data(VmSpec(name="v", image="i")).startswith(b"#cloud-config")
    script = VmSpec(name="v", image="i", user_data_script="#!/bin/sh\necho hi\n")
    assert _domain.user_data(script) == b"#!/bin/sh\necho hi\n"
    both = VmSpec(
        name="v",
        image="i",
        user_data=base64.b64decode(base64.b64encode(b"#cloud-config\nhostname: x\n")),
        user_data_script="#!/bin/sh\necho hi\n",
    )
    data = _domain.user_data(both)
    assert b"multipart/mixed" in data
    assert b"text/cloud-config" in data
    assert b"text/x-shellscript" in data
