"""A VM pod's network ports reach its VM after it was created: the worker asks the
runtime once per change of ports, and retries a refusal with back-off (trio's mock clock,
the fake runtime, an API stand-in)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio
import trio.testing

from arktos_lite import client, runtime
from arktos_lite.agent import _podconfig as podconfig, _podworker as podworker
from arktos_lite.agent._runtimes import NamedRuntime, WorkloadType
from arktos_lite.runtime._fake import FakeRuntime
from arktos_lite.runtime.cri import api_pb2 as cri

from .test_pods import API, _NoObjects, mock_clock_wall, until

Obj = dict[str, Any]
PORT0 = "8a3c6a43-1f6b-4c39-9a51-6d8f5b7a0c11"
PORT1 = "c0ffee00-1f6b-4c39-9a51-6d8f5b7a0c22"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Obj, type_: str, *, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]


class Counting(FakeRuntime):
    """Notes the (mock clock) time of every NIC change asked of it."""

    def __init__(self) -> None:
        super().__init__(images=["cirros:0.5"], wall_clock=mock_clock_wall)
        self.asked: list[float] = []

    async def update_container_resources(
        self,
        container_id: str,
        resources: cri.LinuxContainerResources,
        *,
        annotations: Any = None,
    ) -> None:
        if podconfig.VM_NICS in (annotations or {}):
            self.asked.append(trio.current_time())
        await super().update_container_resources(container_id, resources, annotations=annotations)


def vm_pod() -> Obj:
    return {
        "metadata": {"name": "vm", "namespace": "default", "tenant": "system", "uid": "u1"},
        "spec": {
            "nodeName": "n1",
            "virtualMachine": {
                "name": "vm1",
                "image": "cirros:0.5",
                "resources": {"limits": {"cpu": "2", "memory": "1Gi"}},
            },
        },
        "status": {},
    }


def with_ports(pod: Obj, *ports: tuple[str, str, str]) -> Obj:
    """The pod with these (name, portId, MAC) ports, as the Neutron controller writes them."""
    spec = {**pod["spec"], "nics": [{"name": n, "portId": p} for n, p, _ in ports]}
    nic_statuses = [{"name": n, "portId": p, "macAddress": m} for n, p, m in ports]
    return {**pod, "spec": spec, "status": {**pod["status"], "nicStatuses": nic_statuses}}


def worker_of(fake: FakeRuntime, tmp_path: Path, api: API) -> tuple[podworker.PodWorker, Recorder]:
    connected = client.Client(
        client.Config(server="http://api.test"), transport=httpx.MockTransport(api.handle)
    )
    recorder = Recorder()
    worker = podworker.PodWorker(
        uid="u1",
        key="system/default/vm",
        get_pod=lambda: api.pod,
        runtime=NamedRuntime("vms", WorkloadType.VM, fake),
        settings=podworker.Settings(node_name="n1", node_ip="192.0.2.1", root_dir=tmp_path),
        services=podworker.Services(
            api=connected,
            recorder=recorder,  # type: ignore[arg-type]
            reader=_NoObjects(),
        ),
    )
    return worker, recorder


async def reported(fake: FakeRuntime) -> list[Obj]:
    [vm] = await fake.list_containers()
    text = vm.annotations.get(podconfig.VM_NICS)
    return orjson.loads(text) if text else []


async def test_ports_are_asked_of_the_runtime_once_per_change(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = Counting()
    api = API(vm_pod())
    worker, recorder = worker_of(fake, tmp_path, api)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker.run)
        await until(lambda: api.patches)
        assert fake.asked == []
        # The controller finds the VM a port: hot-plugged, once.
        api.pod = with_ports(api.pod, ("eth0", PORT0, "fa:16:3e:00:00:01"))
        worker.wakeup.set()
        await until(lambda: fake.asked)
        await trio.sleep(120)  # syncs at the resync interval and on wake-ups
        worker.wakeup.set()
        await trio.sleep(1)
        assert len(fake.asked) == 1
        assert await reported(fake) == [
            {"name": "eth0", "portId": PORT0, "macAddress": "fa:16:3e:00:00:01"}
        ]
        assert ("Normal", "NICAttached", "Attached port " + PORT0) in [
            (t, r, m.split(" (")[0]) for t, r, m in recorder.events
        ]
        # A second port, then the first one gone: one call each.
        api.pod = with_ports(
            api.pod, ("eth0", PORT0, "fa:16:3e:00:00:01"), ("eth1", PORT1, "fa:16:3e:00:00:02")
        )
        worker.wakeup.set()
        await until(lambda: len(fake.asked) == 2)
        api.pod = with_ports(api.pod, ("eth1", PORT1, "fa:16:3e:00:00:02"))
        worker.wakeup.set()
        await until(lambda: len(fake.asked) == 3)
        await trio.sleep(120)
        nursery.cancel_scope.cancel()
    assert len(fake.asked) == 3
    assert [p["portId"] for p in await reported(fake)] == [PORT1]
    assert recorder.reasons().count("NICAttached") == 2
    assert (
        "Normal",
        "NICDetached",
        f"Detached port {PORT0} (fa:16:3e:00:00:01) from virtual machine vm1",
    ) in recorder.events
    # The VM was not resized by it, and never restarted.
    [vm] = await fake.list_containers()
    assert (vm.annotations[runtime.VM_VCPUS], vm.annotations[runtime.VM_MEMORY]) == (
        "2",
        str(1024**3),
    )
    assert fake.calls["create_container"] == fake.calls["start_container"] == 1


async def test_a_refused_port_is_an_event_and_retried_with_back_off(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    fake = Counting()
    fake.nic_error = runtime.FailedPrecondition("no bridge configured")
    api = API(vm_pod())
    worker, recorder = worker_of(fake, tmp_path, api)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker.run)
        await until(lambda: api.patches)
        api.pod = with_ports(api.pod, ("eth0", PORT0, "fa:16:3e:00:00:01"))
        worker.wakeup.set()
        await until(lambda: len(fake.asked) == 4)
        # The pod runs on, and its VM's status says why it has no NIC for the port.
        status = api.pod["status"]
        assert status["phase"] == "Running"
        assert (
            "network ports not attached: no bridge configured"
            in (status["virtualMachineStatus"]["message"])
        )
        fake.nic_error = None
        await until(lambda: len(fake.asked) == 5)
        await trio.sleep(120)
        nursery.cancel_scope.cancel()
    gaps = [round(b - a) for a, b in itertools.pairwise(fake.asked)]
    assert gaps == [1, 2, 4, 8]
    assert len(fake.asked) == 5
    failed = [m for t, r, m in recorder.events if (t, r) == ("Warning", "NICHotplugFailed")]
    assert failed[:2] == [
        "Virtual machine vm1: no bridge configured (retrying in 1s)",
        "Virtual machine vm1: no bridge configured (retrying in 2s)",
    ]
    assert recorder.reasons().count("NICAttached") == 1
    assert [p["portId"] for p in await reported(fake)] == [PORT0]
    assert "network ports not attached" not in str(api.pod["status"])
