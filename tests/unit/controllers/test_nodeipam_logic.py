"""Node IPAM's bookkeeping: cluster CIDRs, subnets handed out in turn, never twice, and
free again when their Node goes."""

from __future__ import annotations

import contextlib
import ipaddress

import hypothesis.strategies as st
import pytest
from hypothesis import given

from arktos_lite.controllers import ControllerManagerOptions, _nodeipam as ipam


def net(text: str) -> ipam.Network:
    return ipaddress.ip_network(text)


def test_cluster_cidrs_parse_one_per_family() -> None:
    assert ipam.parse_cluster_cidrs("10.244.0.0/16") == (net("10.244.0.0/16"),)
    assert ipam.parse_cluster_cidrs("10.244.0.0/16, fd00:10::/56") == (
        net("10.244.0.0/16"),
        net("fd00:10::/56"),
    )
    # Host bits are masked, as Kubernetes' ParseCIDR does.
    assert ipam.parse_cluster_cidrs("10.244.3.4/16") == (net("10.244.0.0/16"),)
    assert ipam.parse_cluster_cidrs("") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nonsense", "is not a CIDR"),
        ("10.0.0.0/16,10.1.0.0/16", "at most one IPv4 and one IPv6"),
        ("10.0.0.0/25", "does not fit"),
        ("10.0.0.0/4", r"more than 2\^16 subnets"),
    ],
)
def test_cluster_cidrs_that_do_not_fit_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ipam.parse_cluster_cidrs(text)


def test_the_manager_allocates_from_10_244_by_default_and_can_be_turned_off() -> None:
    options = ControllerManagerOptions().ipam()
    assert options is not None
    assert options.cluster_cidrs == (net("10.244.0.0/16"),)
    assert options.mask_ipv4 == 24
    assert ControllerManagerOptions(cluster_cidr="").ipam() is None
    with pytest.raises(ValueError, match="does not fit"):
        ControllerManagerOptions(node_cidr_mask_size_ipv4=8).ipam()


def test_subnets_are_handed_out_in_turn_until_none_is_left() -> None:
    cidrs = ipam.CIDRSet(net("10.244.0.0/22"), mask=24)
    assert [str(cidrs.allocate_next()) for _ in range(4)] == [
        "10.244.0.0/24",
        "10.244.1.0/24",
        "10.244.2.0/24",
        "10.244.3.0/24",
    ]
    with pytest.raises(ipam.CIDRRangeFull):
        cidrs.allocate_next()
    cidrs.release(net("10.244.1.0/24"))
    assert str(cidrs.allocate_next()) == "10.244.1.0/24"


def test_a_released_subnet_is_not_the_next_one_handed_out() -> None:
    cidrs = ipam.CIDRSet(net("10.244.0.0/16"), mask=24)
    first = cidrs.allocate_next()
    cidrs.allocate_next()
    cidrs.release(first)
    assert str(cidrs.allocate_next()) == "10.244.2.0/24"


def test_occupied_subnets_are_skipped_and_outside_ones_ignored() -> None:
    cidrs = ipam.CIDRSet(net("10.244.0.0/16"), mask=24)
    assert cidrs.occupy(net("10.244.0.0/23"))
    assert not cidrs.occupy(net("192.168.0.0/24"))
    assert not cidrs.occupy(net("fd00::/64"))
    assert str(cidrs.allocate_next()) == "10.244.2.0/24"
    assert len(cidrs) == 3


def test_ipv6_subnets() -> None:
    cidrs = ipam.CIDRSet(net("fd00:10::/56"), mask=64)
    assert cidrs.size == 256
    assert [str(cidrs.allocate_next()) for _ in range(2)] == ["fd00:10::/64", "fd00:10:0:1::/64"]


def test_the_allocator_gives_a_node_one_subnet_per_family_and_the_same_again() -> None:
    allocator = ipam.RangeAllocator(
        [ipam.CIDRSet(net("10.244.0.0/16"), mask=24), ipam.CIDRSet(net("fd00::/48"), mask=64)]
    )
    assert allocator.allocate("n1") == ("10.244.0.0/24", "fd00::/64")
    # Asked again before the Node shows it: the same, never a second pair.
    assert allocator.allocate("n1") == ("10.244.0.0/24", "fd00::/64")
    assert allocator.allocate("n2") == ("10.244.1.0/24", "fd00:0:0:1::/64")


def test_subnets_seen_on_nodes_are_taken_and_free_again_when_they_go() -> None:
    allocator = ipam.RangeAllocator([ipam.CIDRSet(net("10.244.0.0/30"), mask=32)])
    allocator.observe("a", ["10.244.0.0/32"])
    allocator.observe("b", ["10.244.0.1/32"])
    # Two Nodes given one subnet by hand: it is free only once both are gone.
    allocator.observe("c", ["10.244.0.1/32"])
    assert allocator.allocate("d") == ("10.244.0.2/32",)
    assert allocator.allocate("e") == ("10.244.0.3/32",)
    with pytest.raises(ipam.CIDRRangeFull):
        allocator.allocate("f")
    allocator.forget("b")
    with pytest.raises(ipam.CIDRRangeFull):
        allocator.allocate("f")
    allocator.forget("c")
    assert allocator.allocate("f") == ("10.244.0.1/32",)


def test_a_full_second_family_hands_out_nothing() -> None:
    allocator = ipam.RangeAllocator(
        [ipam.CIDRSet(net("10.244.0.0/16"), mask=24), ipam.CIDRSet(net("fd00::/64"), mask=64)]
    )
    allocator.allocate("a")
    with pytest.raises(ipam.CIDRRangeFull):
        allocator.allocate("b")
    assert allocator.holds("b") == ()
    # The IPv4 subnet tried for b went back.
    allocator.forget("a")
    assert allocator.allocate("b")[1] == "fd00::/64"


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 20)), max_size=60))
def test_no_subnet_is_ever_held_by_two_nodes(steps: list[tuple[bool, int]]) -> None:
    allocator = ipam.RangeAllocator([ipam.CIDRSet(net("10.0.0.0/28"), mask=30)])
    for allocate, node in steps:
        name = f"n{node}"
        if allocate:
            with contextlib.suppress(ipam.CIDRRangeFull):
                allocator.allocate(name)
        else:
            allocator.forget(name)
        held = [allocator.holds(f"n{i}") for i in range(21)]
        flat = [cidr for cidrs in held for cidr in cidrs]
        assert len(flat) == len(set(flat))
        assert len(flat) <= 4
