"""A VM pod on the pod network: the NIC annotation the runtime reads, and how the guest
learns its address (the kernel's `ip=`, cloud-init's network-config)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from arktos_lite.runtime import _errors as errors
from arktos_lite.runtime.vm import _domain

NIC = {
    "bridge": "arktos0123abcd",
    "mac": "0a:58:0a:a0:00:05",
    "address": "10.160.0.5/27",
    "gateway": "10.160.0.1",
}


def test_the_annotation_gives_bridge_mac_and_address() -> None:
    nic = _domain.parse_pod_nic(json.dumps(NIC))
    assert nic == _domain.PodNic(
        "arktos0123abcd", "0a:58:0a:a0:00:05", "10.160.0.5/27", "10.160.0.1"
    )
    assert nic.nic == _domain.NicSpec("pod-network", "0a:58:0a:a0:00:05", bridge="arktos0123abcd")
    assert _domain.parse_pod_nic("") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bridge": ""}, "names no bridge"),
        ({"mac": "0a:58"}, "is no MAC address"),
        ({"address": "10.160.0.5"}, "has no prefix"),
        ({"address": "10.160.0.300/27"}, "address"),
        ({"gateway": "gw"}, "address"),
    ],
)
def test_a_malformed_annotation_is_refused(change: dict[str, str], message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        _domain.parse_pod_nic(json.dumps(NIC | change))
    with pytest.raises(errors.InvalidArgument, match="JSON"):
        _domain.parse_pod_nic("[")


def test_the_kernel_ip_parameter_is_static() -> None:
    nic = _domain.parse_pod_nic(json.dumps(NIC))
    assert nic is not None
    assert _domain.kernel_ip_param(nic) == "ip=10.160.0.5::10.160.0.1:255.255.255.224:::off"
    assert (
        _domain.kernel_ip_param(nic, device="eth0")
        == "ip=10.160.0.5::10.160.0.1:255.255.255.224::eth0:off"
    )


def test_network_config_matches_the_nic_by_mac_and_ports_use_dhcp() -> None:
    nic = _domain.parse_pod_nic(json.dumps(NIC | {"mac": "0A:58:0A:A0:00:05"}))
    assert nic is not None
    port = _domain.NicSpec("eth0", "fa:16:3e:00:00:01", port_id="p1")
    config = json.loads(_domain.network_config(nic, others=(port,)))
    assert config == {
        "version": 2,
        "ethernets": {
            "pod0": {
                "match": {"macaddress": "0a:58:0a:a0:00:05"},
                "addresses": ["10.160.0.5/27"],
                "routes": [{"to": "0.0.0.0/0", "via": "10.160.0.1"}],
            },
            "port0": {
                "match": {"macaddress": "fa:16:3e:00:00:01"},
                "dhcp4": True,
                "optional": True,
            },
        },
    }


def _seed_files(path: Path) -> dict[str, bytes]:
    pycdlib = pytest.importorskip("pycdlib")
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        files = {}
        for child in iso.list_children(joliet_path="/"):
            name = child.file_identifier().decode("utf-16-be")
            if child.is_file():
                buf = io.BytesIO()
                iso.get_file_from_iso_fp(buf, joliet_path=f"/{name}")
                files[name] = buf.getvalue()
        return files
    finally:
        iso.close()


def test_the_seed_holds_the_network_config(tmp_path: Path) -> None:
    seed = tmp_path / "seed.iso"
    _domain.write_seed(seed, meta=b"{}\n", user=b"#cloud-config\n", network=b'{"version": 2}\n')
    assert _seed_files(seed) == {
        "meta-data": b"{}\n",
        "user-data": b"#cloud-config\n",
        "network-config": b'{"version": 2}\n',
    }
    # Without one, the seed has none (cloud-init falls back to DHCP on the first NIC).
    _domain.write_seed(seed, meta=b"{}\n", user=b"#cloud-config\n")
    assert "network-config" not in _seed_files(seed)
