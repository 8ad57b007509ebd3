"""The Neutron network controller against a real Neutron API server (`_neutron.py`) and a
real API server: a VM pod's NICs become bound Neutron ports whose ids and addresses are
written back into the pod, the ports go with the pod, and a Neutron that is away shows on
the pod (event and condition) until it is back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from arktos_lite import client, machinery
from arktos_lite.controllers import _neutron as neutron

from . import _neutron as server
from .conftest import EVENTS, PODS, eventually, exists

Obj = dict[str, Any]

NODE = "node-1"
NS = "default"

pytestmark = pytest.mark.slow


@asynccontextmanager
async def controller(
    api: client.Client,
    url: str,
    *,
    config: neutron.NeutronConfig | None = None,
    **options: Any,
) -> AsyncIterator[neutron.NeutronController]:
    """The controller with noauth at `url` (or with `config`) until the block ends."""
    informers = machinery.InformerFactory(api)
    recorder = machinery.EventRecorder(api, component="neutron-tests")
    if config is None:
        config = neutron.NeutronConfig(url=url, project_id=server.PROJECT, timeout=3.0)
    running = neutron.NeutronController(
        api,
        informers,
        recorder=recorder,
        config=config,
        **{"backoff_base": 0.2, "backoff_cap": 1.0, **options},
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(recorder.run)
        await nursery.start(informers.run)
        await nursery.start(running.run)
        yield running
        nursery.cancel_scope.cancel()


def vm_pod(name: str, nics: list[Obj]) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {
            "virtualMachine": {"name": "vm", "image": "cirros", "keyPairName": "key"},
            "nics": nics,
            "vpc": "vpc-1",
        },
    }


async def bind(api: client.Client, name: str) -> None:
    await api.post_subresource(
        PODS,
        name,
        "binding",
        {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name},
            "target": {"kind": "Node", "name": NODE},
        },
        namespace=NS,
    )


def condition(pod: Obj) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == neutron.CONDITION:
            return dict(cond)
    return None


async def ready_pod(api: client.Client, name: str) -> Obj | None:
    pod = await api.get(PODS, name, namespace=NS)
    cond = condition(pod)
    return pod if cond is not None and cond["status"] == "True" else None


async def test_a_vm_pod_gets_a_bound_port_per_nic_and_they_go_with_it(
    api: client.Client, neutron_server: server.NeutronServer
) -> None:
    async with controller(api, neutron_server.url):
        created = await api.create(
            PODS,
            vm_pod(
                "vm-1",
                [
                    {"name": "eth0", "subnetName": "sub-a"},
                    {"name": "eth1", "subnetName": "sub-b", "ipAddress": "10.20.0.50"},
                ],
            ),
            namespace=NS,
        )
        # Ports exist before the pod has a node; binding follows the node.
        uid = created["metadata"]["uid"]
        assert await eventually(lambda: len(neutron_server.ports(device_id=uid)) == 2, 20)
        await bind(api, "vm-1")
        pod = await eventually(lambda: ready_pod(api, "vm-1"), 20)

        assert neutron.FINALIZER in pod["metadata"]["finalizers"]
        ports = {p["id"]: p for p in neutron_server.ports(device_id=uid)}
        nics = {n["name"]: n for n in pod["spec"]["nics"]}
        assert set(ports) == {nics["eth0"]["portId"], nics["eth1"]["portId"]}
        eth0, eth1 = ports[nics["eth0"]["portId"]], ports[nics["eth1"]["portId"]]
        assert nics["eth1"]["ipAddress"] == "10.20.0.50"
        assert eth1["fixed_ips"][0]["ip_address"] == "10.20.0.50"
        assert nics["eth0"]["ipAddress"] == eth0["fixed_ips"][0]["ip_address"]
        assert nics["eth0"]["ipAddress"].startswith("10.10.0.")
        for port in (eth0, eth1):
            assert port["binding:host_id"] == NODE
            assert port["binding:vif_type"] == "ovs"
            assert port["project_id"] == server.PROJECT
        statuses = {s["name"]: s for s in pod["status"]["nicStatuses"]}
        assert statuses["eth0"]["portId"] == eth0["id"]
        assert statuses["eth0"]["macAddress"] == eth0["mac_address"]
        assert statuses["eth1"]["ipAddress"] == "10.20.0.50"
        assert {s["state"] for s in statuses.values()} == {"Ready"}

        await api.delete(PODS, "vm-1", namespace=NS, grace_period_seconds=0)
        await eventually(lambda: not neutron_server.ports(device_id=uid), 20)
        await eventually(lambda: _gone(api, "vm-1"), 10)


async def reasons(api: client.Client, pod: str, reason: str) -> list[Obj]:
    """The pod's Warning events of `reason`."""
    listed = await api.list(EVENTS, namespace=NS, field_selector=f"involvedObject.name={pod}")
    return [e for e in listed["items"] if e["reason"] == reason and e["type"] == "Warning"]


async def _gone(api: client.Client, name: str) -> bool:
    return await exists(api, PODS, name, namespace=NS) is None


async def test_neutron_away_shows_on_the_pod_until_it_is_back(
    api: client.Client, neutron_server: server.NeutronServer
) -> None:
    neutron_server.stop()
    async with controller(api, neutron_server.url):
        await api.create(
            PODS, vm_pod("vm-2", [{"name": "eth0", "subnetName": "sub-a"}]), namespace=NS
        )
        await bind(api, "vm-2")

        async def failing() -> Obj | None:
            cond = condition(await api.get(PODS, "vm-2", namespace=NS))
            return cond if cond and cond["reason"] == neutron.NEUTRON_UNAVAILABLE else None

        cond = await eventually(failing, 15)
        assert cond["status"] == "False"
        assert "unreachable" in cond["message"]

        assert await eventually(lambda: reasons(api, "vm-2", neutron.NEUTRON_UNAVAILABLE), 10)

        await trio.to_thread.run_sync(neutron_server.start)
        pod = await eventually(lambda: ready_pod(api, "vm-2"), 20)
        port_id = pod["spec"]["nics"][0]["portId"]
        [port] = neutron_server.ports(device_id=pod["metadata"]["uid"])
        assert port["id"] == port_id
        assert port["binding:host_id"] == NODE


async def test_a_missing_network_is_reported_and_a_pod_without_ports_goes(
    api: client.Client, neutron_server: server.NeutronServer
) -> None:
    async with controller(api, neutron_server.url):
        body = vm_pod("vm-3", [{"name": "eth0"}])
        body["spec"]["vpc"] = "no-such-vpc"
        await api.create(PODS, body, namespace=NS)

        async def reported() -> Obj | None:
            cond = condition(await api.get(PODS, "vm-3", namespace=NS))
            return cond if cond and cond["reason"] == neutron.NETWORK_NOT_FOUND else None

        cond = await eventually(reported, 15)
        assert "no-such-vpc" in cond["message"]
        await api.delete(PODS, "vm-3", namespace=NS)
        await eventually(lambda: _gone(api, "vm-3"), 10)


async def test_a_pod_deleted_while_neutron_is_away_goes_and_its_ports_are_swept_later(
    api: client.Client, neutron_server: server.NeutronServer
) -> None:
    options: dict[str, Any] = {"release_timeout": 1.0, "sweep_period": 0.5, "sweep_grace": 0.0}
    async with controller(api, neutron_server.url, **options):
        await api.create(
            PODS, vm_pod("vm-4", [{"name": "eth0", "subnetName": "sub-a"}]), namespace=NS
        )
        await bind(api, "vm-4")
        pod = await eventually(lambda: ready_pod(api, "vm-4"), 20)
        uid = pod["metadata"]["uid"]
        assert len(neutron_server.ports(device_id=uid)) == 1

        await trio.to_thread.run_sync(neutron_server.stop)
        await api.delete(PODS, "vm-4", namespace=NS, grace_period_seconds=0)
        await eventually(lambda: _gone(api, "vm-4"), 15)
        assert await eventually(lambda: reasons(api, "vm-4", neutron.PORTS_LEFT_BEHIND), 10)

        await trio.to_thread.run_sync(neutron_server.start)
        await eventually(lambda: not neutron_server.ports(device_id=uid), 15)
