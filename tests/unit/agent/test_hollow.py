"""Hollow nodes' addresses: each node its own, and pod IPs reused once freed."""

from __future__ import annotations

from arktos_lite.agent import _hollow as hollow


def test_every_node_has_its_own_addresses() -> None:
    assert hollow.node_ip(0) == "172.16.0.0"
    assert hollow.node_ip(258) == "172.16.1.2"
    assert hollow.pod_ip(258, 7) == "10.1.2.7"
    nodes = {hollow.node_ip(i) for i in range(5000)}
    pods = {hollow.pod_ip(i, 2) for i in range(5000)}
    assert len(nodes) == len(pods) == 5000


async def test_pod_addresses_are_handed_out_lowest_first_and_reused() -> None:
    nodes = hollow.HollowNodes(None, count=2)  # type: ignore[arg-type]
    node = nodes.nodes["hollow-node-1"]
    assert node.ip == "172.16.0.1"
    assert [node.take_host() for _ in range(3)] == [2, 3, 4]
    node.release_host(3)
    assert node.take_host() == 3
    assert node.take_host() == 5
    assert nodes.names == ["hollow-node-0", "hollow-node-1"]


async def test_a_pod_keeps_its_address_when_it_is_free() -> None:
    nodes = hollow.HollowNodes(None, count=300)  # type: ignore[arg-type]
    node = nodes.nodes["hollow-node-258"]
    assert node.take_host("10.1.2.9") == 9
    assert node.take_host("10.1.2.9") == 2  # taken: the lowest free one instead
    assert node.take_host("10.9.9.3") == 3  # another node's range
    assert node.take_host("10.1.2.10") == 10
