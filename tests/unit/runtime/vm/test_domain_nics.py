"""A VM pod's network ports become the guest's NICs: the agent's annotation of them, its
reading by the VM runtime, and one NIC per port (MAC address, tap device) on the bridge."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from arktos_lite.agent import _podconfig as podconfig
from arktos_lite.runtime import _errors as errors
from arktos_lite.runtime.vm import _domain

PORT0 = "8a3c6a43-1f6b-4c39-9a51-6d8f5b7a0c11"
PORT1 = "c0ffee00-1f6b-4c39-9a51-6d8f5b7a0c22"


def vm_pod() -> dict[str, object]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "tenant": "t1", "uid": "u1"},
        "spec": {
            "virtualMachine": {"name": "vm1", "image": "cirros", "keyPairName": "k"},
            "nics": [
                {"name": "eth0", "portId": PORT0},
                {"name": "eth1", "portId": PORT1},
                {"name": "eth2"},
            ],
        },
        "status": {
            "nicStatuses": [
                {"name": "eth1", "portId": PORT1, "macAddress": "fa:16:3e:00:00:02"},
                {"name": "eth0", "portId": PORT0, "macAddress": "fa:16:3e:00:00:01"},
                {"name": "eth2", "state": "Pending"},
            ]
        },
    }


def test_the_agent_hands_the_ports_with_a_mac_to_the_runtime() -> None:
    pod = vm_pod()
    [container] = podconfig.app_containers(pod)
    config = podconfig.container_config(
        pod, container, init=False, restart_count=0, envs=[], command=[], args=[], mounts=[]
    )
    nics = _domain.parse_nics(config.annotations[podconfig.VM_NICS])
    assert nics == (
        _domain.NicSpec("eth0", "fa:16:3e:00:00:01", PORT0),
        _domain.NicSpec("eth1", "fa:16:3e:00:00:02", PORT1),
    )
    # A status of another port than the spec's (a stale one) gives no NIC.
    pod["status"]["nicStatuses"][1]["portId"] = "other"  # type: ignore[index]
    assert [n["name"] for n in podconfig.vm_ports(pod)] == ["eth1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"name": "eth0"}', "JSON list"),
        ('[{"name": "eth0", "macAddress": "fa:16:3e:00:00"}]', "no MAC address"),
        ('["eth0"]', "JSON object"),
    ],
)
def test_nics_that_cannot_be_are_refused(text: str, message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        _domain.parse_nics(text)
    assert _domain.parse_nics("") == ()


def test_each_port_is_a_nic_on_the_bridge_with_its_mac_and_tap() -> None:
    nics = _domain.parse_nics(
        json.dumps(
            [
                {"name": "eth0", "portId": PORT0, "macAddress": "fa:16:3e:00:00:01"},
                {"name": "eth1", "macAddress": "fa:16:3e:00:00:02"},
            ]
        )
    )
    root = ET.fromstring(
        _domain.domain_xml(
            name="d", domain_type="qemu", vcpus=1, memory=2**28, disks=[], bridge="br0", nics=nics
        )
    )
    interfaces = root.findall("devices/interface")
    assert [i.find("mac").get("address") for i in interfaces] == [  # type: ignore[union-attr]
        "fa:16:3e:00:00:01",
        "fa:16:3e:00:00:02",
    ]
    assert {i.find("source").get("bridge") for i in interfaces} == {"br0"}  # type: ignore[union-attr]
    assert interfaces[0].find("target").get("dev") == "tap8a3c6a43-1f"  # type: ignore[union-attr]
    assert interfaces[1].find("target") is None
    assert [i.find("alias").get("name") for i in interfaces] == ["ua-eth0", "ua-eth1"]  # type: ignore[union-attr]
    # Without a bridge there is nowhere to attach them.
    bare = ET.fromstring(
        _domain.domain_xml(name="d", domain_type="qemu", vcpus=1, memory=2**28, disks=[], nics=nics)
    )
    assert bare.find("devices/interface") is None
