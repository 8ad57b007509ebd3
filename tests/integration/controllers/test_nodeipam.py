"""Node IPAM against a real API server: Nodes get pod CIDRs of their own, never one
another's, also across a restart of the controller; a full range says so on the Node and
is used again once a Node goes."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from arktos_lite import client, machinery
from arktos_lite.controllers import _nodeipam as ipam

from .conftest import EVENTS, NODES, eventually

Obj = dict[str, Any]


def options(cidr: str = "10.244.0.0/16", *, mask: int = 24) -> ipam.IPAMOptions:
    return ipam.IPAMOptions(cluster_cidrs=ipam.parse_cluster_cidrs(cidr), mask_ipv4=mask)


@asynccontextmanager
async def controller(
    api: client.Client, cidr_options: ipam.IPAMOptions
) -> AsyncIterator[ipam.NodeIPAMController]:
    """The controller with informers and a recorder of its own: one process's life."""
    informers = machinery.InformerFactory(api)
    recorder = machinery.EventRecorder(api, component="node-ipam-tests")
    running = ipam.NodeIPAMController(api, informers, recorder=recorder, options=cidr_options)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(recorder.run)
        await nursery.start(informers.run)
        await nursery.start(running.run)
        yield running
        nursery.cancel_scope.cancel()


async def make_node(api: client.Client, name: str, *, pod_cidr: str | None = None) -> Obj:
    body: Obj = {"metadata": {"name": name}}
    if pod_cidr:
        body["spec"] = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}
    return await api.create(NODES, body)


async def cidrs_of(api: client.Client, *names: str) -> dict[str, list[str]] | None:
    """Every named Node's pod CIDRs, once all have them."""
    found: dict[str, list[str]] = {}
    for name in names:
        spec = (await api.get(NODES, name)).get("spec") or {}
        if not spec.get("podCIDRs"):
            return None
        assert spec["podCIDR"] == spec["podCIDRs"][0]
        found[name] = spec["podCIDRs"]
    return found


async def test_nodes_get_pod_cidrs_of_their_own(api: client.Client) -> None:
    await make_node(api, "manual", pod_cidr="10.244.0.0/24")
    async with controller(api, options()):
        for name in ("n1", "n2", "n3"):
            await make_node(api, name)
        found = await eventually(lambda: cidrs_of(api, "manual", "n1", "n2", "n3"))
    assert found["manual"] == ["10.244.0.0/24"]
    given = [found[n][0] for n in ("n1", "n2", "n3")]
    assert len(set(given)) == 3
    assert "10.244.0.0/24" not in given
    for cidr in given:
        network = ipaddress.IPv4Network(cidr)
        assert network.prefixlen == 24
        assert network.subnet_of(ipaddress.IPv4Network("10.244.0.0/16"))


async def test_a_restarted_controller_hands_out_no_cidr_twice(api: client.Client) -> None:
    async with controller(api, options()):
        await make_node(api, "n1")
        await make_node(api, "n2")
        before = await eventually(lambda: cidrs_of(api, "n1", "n2"))
    # A new process: it learns the taken CIDRs from the Nodes before handing any out.
    async with controller(api, options()) as restarted:
        assert restarted.allocator.holds("n1") == tuple(before["n1"])
        await make_node(api, "n3")
        after = await eventually(lambda: cidrs_of(api, "n3"))
    assert after["n3"][0] not in (before["n1"][0], before["n2"][0])


async def test_a_full_range_is_reported_and_used_again_when_a_node_goes(
    api: client.Client,
) -> None:
    async with controller(api, options("10.244.0.0/23", mask=24)):
        await make_node(api, "n1")
        await make_node(api, "n2")
        await eventually(lambda: cidrs_of(api, "n1", "n2"))
        await make_node(api, "n3")

        async def reported() -> Obj | None:
            listed = await api.list_all(EVENTS, namespace="default")
            for event in listed["items"]:
                involved = event.get("involvedObject") or {}
                if involved.get("kind") == "Node" and involved.get("name") == "n3":
                    found: Obj = event
                    return found
            return None

        event = await eventually(reported)
        assert event["reason"] == "CIDRNotAvailable"
        assert event["message"] == "Node n3 status is now: CIDRNotAvailable"
        assert await cidrs_of(api, "n3") is None
        freed = await cidrs_of(api, "n1")
        assert freed is not None
        await api.delete(NODES, "n1")
        found = await eventually(lambda: cidrs_of(api, "n3"))
    assert found["n3"] == freed["n1"]
