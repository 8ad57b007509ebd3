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
