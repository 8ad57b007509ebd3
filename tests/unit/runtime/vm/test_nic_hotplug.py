"""Which of a domain's interfaces a NIC change may detach: only network ports' NICs."""

from __future__ import annotations

from pathlib import Path

from arktos_lite.runtime.vm import _domain, _manager


def test_only_port_nics_are_ports() -> None:
    port = _domain.NicSpec(name="eth0", mac="FA:16:3E:00:00:01", port_id="8a3c6a43-1f6b")
    pod_network = _domain.NicSpec(name="pod-network", mac="fa:16:3e:00:00:09", bridge="br-pod")
    own = _domain.domain_xml(
        name="d",
        domain_type="qemu",
        vcpus=1,
        memory=512 * 2**20,
        disks=[_domain.DiskSpec(Path("/d.qcow2"), "qcow2")],
        bridge="br0",
    )
    devices = "".join(_domain.interface_xml(n, bridge="br0") for n in (port, pod_network))
    xml = own.replace("<memballoon", devices + "<memballoon")
    found = _manager._interfaces(xml)
    # By MAC address in lower case; the guest's own NIC (no MAC given) is not even listed.
    assert sorted(found) == ["fa:16:3e:00:00:01", "fa:16:3e:00:00:09"]
    assert _manager._is_port_nic(found["fa:16:3e:00:00:01"])
    assert not _manager._is_port_nic(found["fa:16:3e:00:00:09"])
