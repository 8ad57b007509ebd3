"""BridgeNetwork on the real machine: namespaces, CNI plugins, nftables (root only)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from arktos_lite import network

from ._netfixtures import eventually_fetch, fetch, free_pod_cidr, http_server, require_cni


@pytest.fixture
def net(tmp_path: Path) -> Iterator[network.BridgeNetwork]:
    tools = require_cni()
    node = f"node-{uuid.uuid4().hex[:8]}"
    bn = network.BridgeNetwork(tmp_path / "net", node_name=node, tools=tools)
    bn.start()
    bn.set_pod_cidr(free_pod_cidr())
    try:
        yield bn
    finally:
        bn.close()


def _member(tenant: str, net_name: str = "default") -> network.Member:
    return network.Member(
        uid=str(uuid.uuid4()),
        key=network.NetworkKey(tenant, net_name),
        namespace="default",
        name=f"p-{tenant}",
    )


def _ns(a: network.Attachment) -> str:
    return Path(a.netns).name


@pytest.mark.slow
def test_pods_of_one_tenant_reach_each_other_and_no_other_tenant(
    net: network.BridgeNetwork, tmp_path: Path
) -> None:
    a1, a2 = net.attach(_member("alpha")), net.attach(_member("alpha"))
    b1 = net.attach(_member("beta"))
    other = net.attach(_member("alpha", "other"))
    assert a1.bridge == a2.bridge != b1.bridge != other.bridge
    assert len({a1.ips[0], a2.ips[0], b1.ips[0], other.ips[0]}) == 4
    with http_server(_ns(a2), 8080, "alpha-2", tmp_path / "www"):
        url = f"http://{a2.ips[0]}:8080/"
        assert eventually_fetch(url, netns=_ns(a1)) == "alpha-2"
        # The node reaches every pod.
        assert fetch(url) == "alpha-2"
        # Another tenant, and another network of the same tenant, do not.
        assert fetch(url, netns=_ns(b1)) is None
        assert fetch(url, netns=_ns(other)) is None

        # ClusterIP: from the tenant's pods and the node, not from another tenant's.
        cluster_ip = "10.96.77.10"
        net.set_services(
            [
                network.ServicePort(
                    tenant="alpha",
                    cluster_ip=cluster_ip,
                    protocol="tcp",
                    port=80,
                    endpoints=(network.Endpoint(a2.ips[0], 8080),),
                )
            ]
        )
        service = f"http://{cluster_ip}:80/"
        assert eventually_fetch(service, netns=_ns(a1)) == "alpha-2"
        # Hairpin: the endpoint reaches itself through its own Service.
        assert fetch(service, netns=_ns(a2)) == "alpha-2"
        assert fetch(service) == "alpha-2"
        assert fetch(service, netns=_ns(b1)) is None


def test_detach_releases_the_address_and_removes_namespace_and_bridge(
    net: network.BridgeNetwork,
) -> None:
    first = net.attach(_member("gamma"))
    # Attaching again is idempotent.
    assert net.attach(network.Member(first.uid, first.key)) == first
    ipam = net.state_dir / "ipam" / first.bridge
    assert (ipam / first.ips[0]).read_text().startswith(first.uid)
    net.detach(first.uid)
    net.detach(first.uid)
    assert not Path(first.netns).exists()
    assert not (ipam / first.ips[0]).exists()
    assert not Path("/sys/class/net", first.bridge).exists()
    assert first.uid not in net.attachments()
    second = net.attach(_member("gamma"))
    # The address went back to the pool: the next pod gets the first one again.
    assert second.ips == first.ips


def test_state_survives_a_new_instance(net: network.BridgeNetwork) -> None:
    attached = net.attach(_member("delta"))
    again = network.BridgeNetwork(net.state_dir, node_name=net.node_name, tools=net.tools)
    again.start()
    assert again.attachments()[attached.uid] == attached
    assert again.pod_cidr == net.pod_cidr
    tables = subprocess.run(["nft", "-j", "list", "tables"], capture_output=True, text=True)
    names = {t["table"]["name"] for t in json.loads(tables.stdout)["nftables"] if "table" in t}
    assert network.table_name(net.identity) in names


def test_two_nodes_on_one_machine_with_one_pod_cidr_get_separate_slices(
    net: network.BridgeNetwork, tmp_path: Path
) -> None:
    other = network.BridgeNetwork(tmp_path / "other", node_name=net.node_name, tools=net.tools)
    other.start()
    other.set_pod_cidr(net.pod_cidr)
    try:
        mine = net.attach(_member("alpha"))
        theirs = other.attach(_member("alpha"))
        assert mine.bridge != theirs.bridge
        subnets = {net.bridges()[mine.bridge].subnet, other.bridges()[theirs.bridge].subnet}
        assert len(subnets) == 2
        with http_server(_ns(theirs), 8081, "theirs", tmp_path / "www"):
            assert eventually_fetch(f"http://{theirs.ips[0]}:8081/") == "theirs"
    finally:
        other.close()


def _ping(netns: str, ip: str) -> bool:
    done = subprocess.run(
        ["ip", "netns", "exec", netns, "busybox", "ping", "-c", "1", "-W", "1", ip],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def test_a_guest_gets_an_address_and_mac_on_its_networks_bridge(
    net: network.BridgeNetwork,
) -> None:
    member = _member("epsilon")
    guest = net.attach_guest(member)
    assert guest.guest
    assert guest.netns == ""
    bridge = net.bridges()[guest.bridge]
    assert guest.subnet == bridge.subnet
    assert guest.gateway == bridge.gateway
    assert guest.mac == network.guest_mac(guest.ips[0])
    # The bridge is there, up, with its gateway address, as the bridge plugin makes it.
    shown = json.loads(
        subprocess.run(
            ["ip", "-j", "addr", "show", "dev", guest.bridge], capture_output=True
        ).stdout
    )[0]
    assert "UP" in shown["flags"]
    prefix = int(bridge.subnet.split("/")[1])
    ipv4 = {(a["local"], a["prefixlen"]) for a in shown["addr_info"] if a["family"] == "inet"}
    assert ipv4 == {(bridge.gateway, prefix)}
    ipam = net.state_dir / "ipam" / guest.bridge
    assert (ipam / guest.ips[0]).read_text().startswith(member.uid)
    # Idempotent, and kept by a new instance over the same state, which puts the bridge
    # back (as after a reboot of the machine: the VM will need it when it starts again).
    assert net.attach_guest(member) == guest
    subprocess.run(["ip", "link", "delete", guest.bridge], check=True)
    again = network.BridgeNetwork(net.state_dir, node_name=net.node_name, tools=net.tools)
    again.start()
    assert again.attachments()[member.uid] == guest
    assert Path("/sys/class/net", guest.bridge, "bridge").is_dir()

    # The guest's NIC, as the VM runtime plugs it in (a veth standing in for the tap):
    # a container pod of the network reaches it, one of another tenant does not.
    ns = f"g-{member.uid[:8]}"
    tap = f"t{member.uid[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for argv in (
            ["link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", ns],
            ["link", "set", tap, "master", guest.bridge, "up"],
            ["-n", ns, "link", "set", "eth0", "address", guest.mac, "up"],
            ["-n", ns, "addr", "add", guest.address, "dev", "eth0"],
        ):
            subprocess.run(["ip", *argv], check=True)
        # The bridge plugin takes the bridge as it found it.
        pod = net.attach(_member("epsilon"))
        stranger = net.attach(_member("zeta"))
        assert pod.bridge == guest.bridge
        assert _ping(_ns(pod), guest.ips[0])
        assert not _ping(_ns(stranger), guest.ips[0])
        net.detach(pod.uid)
        net.detach(stranger.uid)
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
        subprocess.run(["ip", "link", "delete", tap], capture_output=True, check=False)

    # Detached: the address goes back, and with the network's last member, the bridge.
    net.detach(member.uid)
    net.detach(member.uid)
    assert not (ipam / guest.ips[0]).exists()
    assert not Path("/sys/class/net", guest.bridge).exists()
    assert member.uid not in net.attachments()
