"""A VM pod whose Neutron ports come after its VM: the agent hot-plugs them.

A real API server and the session's Neutron (`shared_neutron`), the Neutron
controller, and the agent's pod manager on a fake VM runtime (see `test_vm_pods.py`). The
VM runs before the controller gives its pod any port; once the controller has written
the port's id and MAC address into the pod, the same VM gets a NIC for it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from arktos_lite import machinery
from arktos_lite.agent import _podconfig as podconfig
from arktos_lite.controllers import _neutron as neutron

from ..controllers import _neutron as neutron_fixture
from ..controllers.conftest import EVENTS, PODS, eventually
from .test_vm_pods import NODE, Node, node as node, vm_is, vm_pod

Obj = dict[str, Any]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings(
        "ignore:Async generator 'httpx._content.ByteStream.__aiter__':ResourceWarning"
    ),
]


async def test_ports_given_after_the_vm_runs_are_hot_plugged(
    node: Node, neutron_server: neutron_fixture.NeutronServer
) -> None:
    api = node.api
    pod = vm_pod()
    pod["spec"].update({"nics": [{"name": "eth0", "subnetName": "sub-a"}], "vpc": "vpc-1"})
    pod_uid = (await api.create(PODS, pod, namespace="default"))["metadata"]["uid"]
    await eventually(vm_is(api, state="active", ready=True), 10)
    [vm] = await node.vms.list_containers()
    assert podconfig.VM_NICS not in vm.annotations

    informers = machinery.InformerFactory(api)
    recorder = machinery.EventRecorder(api, component="neutron-tests")
    controller = neutron.NeutronController(
        api,
        informers,
        recorder=recorder,
        config=neutron.NeutronConfig(
            url=neutron_server.url, project_id=neutron_fixture.PROJECT, timeout=3.0
        ),
        backoff_base=0.2,
        backoff_cap=1.0,
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(recorder.run)
        await nursery.start(informers.run)
        await nursery.start(controller.run)

        async def attached() -> Obj | None:
            listed = await api.list(
                EVENTS, namespace="default", field_selector="involvedObject.name=vm"
            )
            found = [e for e in listed["items"] if e["reason"] == "NICAttached"]
            return found[0] if found else None

        event = await eventually(attached, 20)
        nursery.cancel_scope.cancel()
    [port] = neutron_server.ports(device_id=pod_uid)
    assert port["binding:host_id"] == NODE
    assert event["type"] == "Normal"
    assert event["message"] == (
        f"Attached port {port['id']} ({port['mac_address']}) to virtual machine vm1 as eth0"
    )
    # The same VM, now with a NIC for the port.
    [vm] = await node.vms.list_containers()
    assert json.loads(vm.annotations[podconfig.VM_NICS]) == [
        {"name": "eth0", "portId": port["id"], "macAddress": port["mac_address"]}
    ]
    assert node.vms.calls["create_container"] == 1
    assert node.vms.calls["update_container_resources"] == 1
