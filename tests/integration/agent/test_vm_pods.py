"""VM pods and their Actions against a real API server, on fake container and VM runtimes.

Each test starts a pod informer, a `PodManager` for node `n1` (a `FakeRuntime` as the
`container` runtime and another as the `vm` runtime) and an `ActionWorker`, with a fast
PLEG so that a VM boots, shuts down or reboots in well under a second. The key pair `k1`
the VMs name is a Secret in their namespace.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from arktos_lite import client, machinery, runtime
from arktos_lite.agent._actions import ActionWorker
from arktos_lite.agent._pods import PodManager
from arktos_lite.agent._runtimes import NamedRuntime, RuntimeSet, WorkloadType
from arktos_lite.api import resources
from arktos_lite.runtime._fake import FakeRuntime, command_behaviour
from arktos_lite.runtime.cri import api_pb2 as cri

from ..controllers.conftest import EVENTS, PODS, SECRETS, eventually, exists

Obj = dict[str, Any]
NODE = "n1"
ACTIONS = resources.Registry().get("", "v1", "actions")
assert ACTIONS is not None

pytestmark = pytest.mark.filterwarnings(
    # The manager is cancelled mid-request (a status write, an event) when a test ends;
    # see tests/integration/controllers/workload/test_partitioned.py.
    "ignore:Async generator 'httpx._content.ByteStream.__aiter__':ResourceWarning"
)


@dataclass
class Node:
    api: client.Client
    vms: FakeRuntime
    containers: FakeRuntime
    manager: PodManager
    actions: ActionWorker


PUBLIC_KEY = "ssh-ed25519 AAAAC3Nza k1@example"


def key_pair(name: str, key: str = "publicKey", value: str = PUBLIC_KEY) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "data": {key: base64.b64encode(value.encode()).decode()},
    }


@pytest.fixture
async def node(api: client.Client, tmp_path: Path) -> AsyncIterator[Node]:
    await api.create(SECRETS, key_pair("k1"), namespace="default")
    vms = FakeRuntime(images=["cirros:0.5"])
    containers = FakeRuntime(behaviour=command_behaviour, images=["present:1"])
    async with trio.open_nursery() as nursery:
        informers = machinery.InformerFactory(api)
        pods = informers.informer(PODS, field_selector=f"spec.nodeName={NODE}")
        recorder = machinery.EventRecorder(api, component="agent-tests", host=NODE)
        await nursery.start(recorder.run)
        await nursery.start(informers.run)
        manager = PodManager(
            api,
            node_name=NODE,
            runtimes=RuntimeSet(
                (
                    NamedRuntime("fake", WorkloadType.CONTAINER, containers),
                    NamedRuntime("vms", WorkloadType.VM, vms),
                )
            ),
            root_dir=tmp_path,
            node_ip="127.0.0.1",
            recorder=recorder,
            pods=pods,
            relist_interval=0.05,
            resync_interval=5.0,
            backoff_base=0.5,
            backoff_max=1.0,
            stop_timeout=2.0,
        )
        await nursery.start(manager.run)
        worker = ActionWorker(
            api,
            node_name=NODE,
            locator=manager,
            recorder=recorder,
            ready_timeout=3.0,
            retry_interval=0.05,
        )
        await nursery.start(worker.run)
        yield Node(api, vms, containers, manager, worker)
        nursery.cancel_scope.cancel()


def vm_pod(name: str = "vm", **vm: Any) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": NODE,
            "terminationGracePeriodSeconds": 5,
            "virtualMachine": {"name": "vm1", "image": "cirros:0.5", "keyPairName": "k1", **vm},
        },
    }


async def get_pod(api: client.Client, name: str = "vm") -> Obj | None:
    return await exists(api, PODS, name, namespace="default")


def vm_status(pod: Obj | None) -> Obj:
    return dict(((pod or {}).get("status") or {}).get("virtualMachineStatus") or {})


def condition(pod: Obj | None, type_: str) -> str:
    for entry in ((pod or {}).get("status") or {}).get("conditions") or ():
        if entry.get("type") == type_:
            return str(entry.get("status"))
    return ""


def vm_is(api: client.Client, name: str = "vm", **wanted: Any) -> Callable[[], Any]:
    async def check() -> Obj | None:
        pod = await get_pod(api, name)
        found = vm_status(pod)
        return pod if all(found.get(k) == v for k, v in wanted.items()) else None

    return check


async def running_vm(api: client.Client, name: str = "vm", **vm: Any) -> Obj:
    await api.create(PODS, vm_pod(name, **vm), namespace="default")
    pod: Obj = await eventually(vm_is(api, name, state="active", ready=True), 10)
    return pod


async def power(api: client.Client, spec: str, name: str = "vm") -> Obj:
    body = {"spec": {"virtualMachine": {"powerSpec": spec}}}
    return await api.patch(PODS, name, body, namespace="default")


async def act(api: client.Client, pod: Obj, name: str, **action: Any) -> Obj:
    meta = pod["metadata"]
    obj = {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": NODE, "podName": meta["name"], "podID": meta["uid"], **action},
    }
    assert ACTIONS is not None
    await api.create(ACTIONS, obj, namespace="default")

    async def complete() -> Obj | None:
        assert ACTIONS is not None
        found = await exists(api, ACTIONS, name, namespace="default")
        status = (found or {}).get("status") or {}
        return dict(status) if status.get("complete") else None

    result: Obj = await eventually(complete, 10)
    return result


async def test_a_vm_pod_runs_and_reports_its_vm(node: Node) -> None:
    pod = await running_vm(node.api)
    status = pod["status"]
    assert status["phase"] == "Running"
    assert condition(pod, "VirtualMachineReady") == "True"
    assert condition(pod, "Ready") == "True"
    found = vm_status(pod)
    assert found["name"] == "vm1"
    assert found["image"] == "cirros:0.5"
    assert found["powerState"] == "running"
    assert found["virtualMachineId"]
    assert found["imageId"].startswith("sha256:")
    assert found.get("restartCount", 0) == 0
    assert "containerStatuses" not in status


async def test_power_spec_shutdown_then_running(node: Node) -> None:
    api = node.api
    pod = await running_vm(api)
    await power(api, "Shutdown")
    pod = await eventually(vm_is(api, state="stopped", powerState="shutdown", ready=False), 10)
    assert pod["status"]["phase"] == "Running"
    assert condition(pod, "VirtualMachineReady") == "False"
    [vm_id] = node.vms.container_ids
    stopped = await node.vms.container_status(vm_id)
    assert (stopped.state, stopped.reason) == (cri.CONTAINER_EXITED, "Shutdown")
    # It stays off: no restart, no crash-loop back-off.
    await trio.sleep(0.3)
    assert (await node.vms.container_status(vm_id)).state == cri.CONTAINER_EXITED
    assert vm_status(await get_pod(api))["state"] == "stopped"
    await power(api, "Running")
    pod = await eventually(vm_is(api, state="active", powerState="running", ready=True), 10)
    assert condition(pod, "VirtualMachineReady") == "True"
    # The same VM was powered on again.
    assert node.vms.container_ids == [vm_id]


async def test_a_crashed_vm_is_powered_on_again_with_back_off(node: Node) -> None:
    api = node.api
    await running_vm(api)
    [vm_id] = node.vms.container_ids
    node.vms.exit(vm_id, 1)
    # The first time at once ...
    await eventually(lambda: node.vms._containers[vm_id].listed.state == cri.CONTAINER_RUNNING)
    # A real VM boots for longer than a relist interval: the agent sees it run again.
    await trio.sleep(0.2)
    node.vms.exit(vm_id, 1)
    crashed = trio.current_time()
    await eventually(vm_is(api, state="error", powerState="crashed", ready=False), 10)
    # ... then after the back-off.
    await eventually(vm_is(api, state="active", ready=True), 10)
    assert trio.current_time() - crashed >= 0.4
    assert node.vms.container_ids == [vm_id]


async def event(api: client.Client, reason: str) -> Obj:
    async def noted() -> Obj | None:
        listed = await api.list(EVENTS, namespace="default")
        return next((e for e in listed["items"] if e.get("reason") == reason), None)

    found: Obj = await eventually(noted, 10)
    return found


def condition_of(pod: Obj | None, type_: str) -> Obj:
    for entry in ((pod or {}).get("status") or {}).get("conditions") or ():
        if entry.get("type") == type_:
            return dict(entry)
    return {}


async def test_power_spec_paused_suspended_and_running_again(node: Node) -> None:
    api = node.api
    await running_vm(api)
    [vm_id] = node.vms.container_ids
    await power(api, "Paused")
    pod = await eventually(vm_is(api, state="paused", powerState="paused", ready=False), 10)
    assert pod["status"]["phase"] == "Running"
    assert condition(pod, "VirtualMachineReady") == "False"
    assert "paused" in condition_of(pod, "VirtualMachineReady")["message"]
    assert (await event(api, "Paused"))["message"] == "Paused virtual machine vm1"
    # Level-triggered: once paused, nothing more is asked.
    calls = node.vms.calls["pause_vm"]
    await trio.sleep(0.3)
    assert node.vms.calls["pause_vm"] == calls == 1

    await power(api, "Running")
    await eventually(vm_is(api, state="active", powerState="running", ready=True), 10)
    await power(api, "Suspended")
    await eventually(vm_is(api, state="suspended", powerState="suspended", ready=False), 10)
    # Suspended -> Paused: resumed, then paused.
    await power(api, "Paused")
    await eventually(vm_is(api, state="paused", powerState="paused"), 10)
    # Paused -> Shutdown: thawed, then shut down.
    await power(api, "Shutdown")
    await eventually(vm_is(api, state="stopped", powerState="shutdown"), 10)
    # Shutdown -> Suspended: powered on, then suspended.
    await power(api, "Suspended")
    await eventually(vm_is(api, state="suspended", powerState="suspended"), 10)
    await power(api, "Running")
    await eventually(vm_is(api, state="active", powerState="running", ready=True), 10)
    assert node.vms.container_ids == [vm_id]
    assert node.containers.calls["pause_vm"] == node.containers.calls["suspend_vm"] == 0


class NoPowerCalls(FakeRuntime):
    """A VM runtime that predates the power calls."""

    async def pause_vm(self, vm_id: str) -> None:
        raise runtime.Unimplemented("unknown method PauseVM")


async def test_a_runtime_without_power_calls_gets_an_event(node: Node) -> None:
    api = node.api
    node.vms.__class__ = NoPowerCalls
    await running_vm(api)
    await power(api, "Paused")
    found = await event(api, "UnsupportedPowerSpec")
    assert found["message"] == (
        "powerSpec Paused is not supported by this runtime: unknown method PauseVM"
    )
    await trio.sleep(0.2)
    assert vm_status(await get_pod(api))["state"] == "active"


async def test_a_vm_is_resized_when_its_resources_change(node: Node) -> None:
    api = node.api
    await running_vm(api, resources={"limits": {"cpu": "1", "memory": "512Mi"}})
    [vm_id] = node.vms.container_ids
    body = {"spec": {"virtualMachine": {"resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}}}
    await api.patch(PODS, "vm", body, namespace="default")
    await event(api, "Resized")
    listed = (await node.vms.list_containers())[0].annotations
    assert (listed[runtime.VM_VCPUS], listed[runtime.VM_MEMORY]) == ("2", str(1024**3))
    assert node.vms.calls["update_container_resources"] == 1

    # Beyond what the runtime allows: an event and a message; the VM runs on as it was.
    node.vms.vm_max_vcpus = 4
    body = {"spec": {"virtualMachine": {"resources": {"limits": {"cpu": "16"}}}}}
    await api.patch(PODS, "vm", body, namespace="default")
    failed = await event(api, "ResizeFailed")
    assert "cannot grow to 16 vCPUs" in failed["message"]

    async def noted() -> Obj | None:
        pod = await get_pod(api)
        found = condition_of(pod, "VirtualMachineReady")
        return pod if found.get("reason") == "ResizeFailed" else None

    pod = await eventually(noted, 10)
    ready = condition_of(pod, "VirtualMachineReady")
    assert ready["status"] == "True"
    assert "cannot grow to 16 vCPUs" in ready["message"]
    assert "cannot grow to 16 vCPUs" in vm_status(pod)["message"]
    assert pod["status"]["phase"] == "Running"
    # Asked once for that size, not on every sync.
    await trio.sleep(0.3)
    assert node.vms.calls["update_container_resources"] == 2
    listed = (await node.vms.list_containers())[0].annotations
    assert listed[runtime.VM_VCPUS] == "2"
    assert node.vms.container_ids == [vm_id]


async def test_a_suspended_vm_is_resized_once_it_runs_again(node: Node) -> None:
    api = node.api
    await running_vm(api)
    await power(api, "Suspended")
    await eventually(vm_is(api, state="suspended"), 10)
    body = {"spec": {"virtualMachine": {"resources": {"limits": {"cpu": "2"}}}}}
    await api.patch(PODS, "vm", body, namespace="default")
    await trio.sleep(0.3)
    assert node.vms.calls["update_container_resources"] == 0
    await power(api, "Running")
    await event(api, "Resized")
    listed = (await node.vms.list_containers())[0].annotations
    assert listed[runtime.VM_VCPUS] == "2"


async def test_a_key_pair_is_read_from_its_secret(node: Node) -> None:
    await running_vm(node.api)
    [vm_id] = node.vms.container_ids
    config = node.vms._containers[vm_id].config
    vm = json.loads(config.annotations["arktos.futurewei.com/virtual-machine"])
    assert (vm["keyPairName"], vm["publicKey"]) == ("k1", PUBLIC_KEY)


async def test_a_vm_waits_for_its_key_pair(node: Node) -> None:
    api = node.api
    await api.create(PODS, vm_pod("late", keyPairName="k2"), namespace="default")

    async def waiting() -> Obj | None:
        pod = await get_pod(api, "late")
        found = condition_of(pod, "VirtualMachineReady")
        return pod if found.get("reason") == "CreateContainerConfigError" else None

    pod = await eventually(waiting, 10)
    message = condition_of(pod, "VirtualMachineReady")["message"]
    assert 'key pair "k2" not found: no secret "k2" in namespace default' in message
    assert vm_status(pod)["state"] == "building"
    assert node.vms.container_ids == []
    failed = await event(api, "Failed")
    assert 'key pair "k2" not found' in failed["message"]
    # An ssh-auth Secret, as kubectl creates them, once it appears.
    value = "ssh-rsa AAAAB3 k2@example"
    await api.create(SECRETS, key_pair("k2", "ssh-publickey", value), namespace="default")
    await eventually(vm_is(api, "late", state="active", ready=True), 15)
    [vm_id] = node.vms.container_ids
    vm = json.loads(
        node.vms._containers[vm_id].config.annotations["arktos.futurewei.com/virtual-machine"]
    )
    assert vm["publicKey"] == value


async def test_reboot_action(node: Node) -> None:
    pod = await running_vm(node.api)
    status = await act(node.api, pod, "reboot-1", rebootAction={"delayInSeconds": 0})
    assert status["error"] == ""
    assert status["rebootStatus"] == {"rebootSuccessful": True}
    assert (status["podName"], status["podID"]) == ("vm", pod["metadata"]["uid"])
    await eventually(vm_is(node.api, restartCount=1, state="active"), 10)


async def test_snapshot_then_restore(node: Node) -> None:
    pod = await running_vm(node.api)
    status = await act(node.api, pod, "snapshot-1", snapshotAction={"snapshotName": "s1"})
    assert status["error"] == ""
    assert status["snapshotStatus"] == {"snapshotID": "s1"}
    [vm_id] = node.vms.container_ids
    assert node.vms.snapshots(vm_id) == ["s1"]
    status = await act(node.api, pod, "restore-1", restoreAction={"snapshotID": "s1"})
    assert status["error"] == ""
    assert status["restoreStatus"] == {"restoreSuccessful": True}


async def test_restore_of_a_missing_snapshot_fails(node: Node) -> None:
    pod = await running_vm(node.api)
    status = await act(node.api, pod, "restore-1", restoreAction={"snapshotID": "nope"})
    assert 'snapshot "nope"' in status["error"]
    assert "not found" in status["error"]
    assert status["restoreStatus"] == {"restoreSuccessful": False}


async def test_reboot_of_a_vm_that_is_off_fails(node: Node) -> None:
    api = node.api
    pod = await running_vm(api)
    pod = await power(api, "Shutdown")
    await eventually(vm_is(api, state="stopped"), 10)
    status = await act(api, pod, "reboot-1", rebootAction={})
    assert "not running" in status["error"]
    assert status["rebootStatus"] == {"rebootSuccessful": False}


async def test_an_action_on_a_container_pod_fails(node: Node) -> None:
    api = node.api
    container_pod = {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "nodeName": NODE,
            "containers": [{"name": "app", "image": "present:1", "command": ["sleep", "9"]}],
        },
    }
    pod = await api.create(PODS, container_pod, namespace="default")
    status = await act(api, pod, "reboot-1", rebootAction={})
    assert status["error"] == 'pod "web" is not a virtual machine pod'
    assert status["rebootStatus"] == {"rebootSuccessful": False}


async def test_an_action_whose_pod_is_gone_fails(node: Node) -> None:
    pod = {"metadata": {"name": "gone", "uid": "0000-gone"}}
    status = await act(node.api, pod, "reboot-1", rebootAction={})
    assert status["error"] == 'pod "gone" not found in namespace "default"'
    assert (status["podName"], status["podID"]) == ("gone", "0000-gone")


async def test_an_action_on_a_replaced_pod_fails(node: Node) -> None:
    pod = await running_vm(node.api)
    pod["metadata"]["uid"] = "an-older-uid"
    status = await act(node.api, pod, "snapshot-1", snapshotAction={"snapshotName": "s1"})
    assert "is another pod now" in status["error"]


async def test_an_action_right_after_its_pod_waits_for_the_vm(node: Node) -> None:
    pod = await node.api.create(PODS, vm_pod(), namespace="default")
    status = await act(node.api, pod, "snapshot-1", snapshotAction={"snapshotName": "s1"})
    assert status["error"] == ""
    [vm_id] = node.vms.container_ids
    assert node.vms.snapshots(vm_id) == ["s1"]


async def test_the_actions_of_a_pod_run_in_order(node: Node) -> None:
    api = node.api
    pod = await running_vm(api)
    assert ACTIONS is not None
    spec = {"nodeName": NODE, "podName": "vm", "podID": pod["metadata"]["uid"]}
    start = trio.current_time()
    reboot = {
        "metadata": {"name": "reboot-1"},
        "spec": {**spec, "rebootAction": {"delayInSeconds": 1}},
    }
    await api.create(ACTIONS, reboot, namespace="default")
    status = await act(api, pod, "snapshot-1", snapshotAction={"snapshotName": "after-reboot"})
    assert status["error"] == ""
    # The snapshot waited for the delayed reboot before it.
    assert trio.current_time() - start >= 0.9
    await eventually(vm_is(api, restartCount=1), 10)
