"""The action worker carries out reboot, snapshot and restore on a VM runtime, and always
completes an action, with a clear error when it cannot be done."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import trio
import trio.testing

from arktos_lite import client, machinery
from arktos_lite.agent import _actions as actions, _pods as pods
from arktos_lite.runtime._fake import FakeRuntime
from arktos_lite.runtime.cri import api_pb2 as cri

Obj = dict[str, Any]


class StubLocator:
    """Finds one VM (or raises the errors it was given, one per call)."""

    def __init__(self, found: pods.LocatedVm | None, errors: Sequence[Exception] = ()) -> None:
        self.found = found
        self.errors = list(errors)
        self.calls = 0
        self.woken: list[str] = []

    async def locate_vm(
        self, *, tenant: str, namespace: str, pod: str, uid: str = ""
    ) -> pods.LocatedVm:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        assert self.found is not None
        return self.found

    def wake(self, uid: str) -> None:
        self.woken.append(uid)


class NotAVmRuntime:
    """Anything that lacks the VM calls."""


@pytest.fixture
async def api() -> AsyncIterator[client.Client]:
    # Never reached in these tests: the locator answers everything.
    async with client.Client(client.Config(server="http://127.0.0.1:9")) as unreachable:
        yield unreachable


async def vm(fake: FakeRuntime) -> str:
    config = cri.PodSandboxConfig(metadata=cri.PodSandboxMetadata(name="vm", uid="u1"))
    sandbox = await fake.run_pod_sandbox(config)
    container = cri.ContainerConfig(
        metadata=cri.ContainerMetadata(name="vm1"),
        image=cri.ImageSpec(image="cirros"),
        annotations={"arktos.futurewei.com/virtual-machine": "{}"},
    )
    container_id = await fake.create_container(sandbox, container, config)
    await fake.start_container(container_id)
    return container_id


def worker(api: client.Client, locator: StubLocator) -> actions.ActionWorker:
    return actions.ActionWorker(
        api,
        node_name="n1",
        locator=locator,
        recorder=machinery.EventRecorder(api, component="tests"),
        ready_timeout=1.0,
        retry_interval=0.1,
    )


def action(**spec: Any) -> Obj:
    return {
        "metadata": {"name": "a1", "namespace": "default", "tenant": "system", "uid": "a-1"},
        "spec": {"nodeName": "n1", "podName": "vm", "podID": "u1", **spec},
    }


async def located(fake: Any, *, running: bool = True) -> tuple[pods.LocatedVm, str]:
    """A VM (a real one on a `FakeRuntime`) of pod `vm` (uid u1), and its container id."""
    container_id = await vm(fake) if isinstance(fake, FakeRuntime) else "c1"
    pod = {"metadata": {"name": "vm", "uid": "u1"}}
    found = pods.LocatedVm(pod=pod, runtime=fake, container_id=container_id, running=running)
    return found, container_id


def test_the_operation_of_a_spec() -> None:
    assert actions.operation({"rebootAction": {}}) is actions.Operation.REBOOT
    assert actions.operation({"snapshotAction": {"snapshotName": "s"}}) is (
        actions.Operation.SNAPSHOT
    )
    assert actions.operation({"restoreAction": {"snapshotID": "s"}}) is actions.Operation.RESTORE
    for bad in ({}, {"rebootAction": {}, "restoreAction": {}}):
        with pytest.raises(actions.ActionError, match="exactly one of"):
            actions.operation(bad)


async def test_reboot_succeeds_and_wakes_the_pod(api: client.Client) -> None:
    fake = FakeRuntime()
    found, container_id = await located(fake)
    locator = StubLocator(found)
    status = await worker(api, locator).execute(action(rebootAction={"delayInSeconds": 0}))
    assert status == {
        "complete": True,
        "error": "",
        "podName": "vm",
        "podID": "u1",
        "rebootStatus": {"rebootSuccessful": True},
    }
    listed = await fake.container_status(container_id)
    assert listed.annotations["vm.runtime.arktos.futurewei.com/restart-count"] == "1"
    assert locator.woken == ["u1"]


async def test_reboot_passes_its_delay(
    api: client.Client, autojump_clock: trio.testing.MockClock
) -> None:
    fake = FakeRuntime()
    found, _ = await located(fake)
    start = trio.current_time()
    status = await worker(api, StubLocator(found)).execute(
        action(rebootAction={"delayInSeconds": 7})
    )
    assert status["rebootStatus"] == {"rebootSuccessful": True}
    assert trio.current_time() - start == pytest.approx(7)


async def test_snapshot_and_restore(api: client.Client) -> None:
    fake = FakeRuntime()
    found, container_id = await located(fake)
    run = worker(api, StubLocator(found))
    status = await run.execute(action(snapshotAction={"snapshotName": "s1"}))
    assert (status["error"], status["snapshotStatus"]) == ("", {"snapshotID": "s1"})
    assert fake.snapshots(container_id) == ["s1"]
    status = await run.execute(action(restoreAction={"snapshotID": "s1"}))
    assert (status["error"], status["restoreStatus"]) == ("", {"restoreSuccessful": True})
    status = await run.execute(action(restoreAction={"snapshotID": "s2"}))
    assert status["restoreStatus"] == {"restoreSuccessful": False}
    assert status["error"].startswith('snapshot "s2" of pod "vm" not found')
    # A second snapshot of the same name is the runtime's error, reported.
    status = await run.execute(action(snapshotAction={"snapshotName": "s1"}))
    assert status["snapshotStatus"] == {"snapshotID": ""}
    assert status["error"].startswith("snapshot of pod 'vm' failed:")


async def test_a_vm_that_is_off(api: client.Client) -> None:
    fake = FakeRuntime()
    found, container_id = await located(fake, running=False)
    await fake.stop_container(container_id, timeout=1)
    run = worker(api, StubLocator(found))
    for spec in ({"rebootAction": {}}, {"snapshotAction": {"snapshotName": "s1"}}):
        status = await run.execute(action(**spec))
        assert status["complete"] is True
        assert status["error"] == 'the virtual machine of pod "vm" is not running'


async def test_a_runtime_without_vm_calls(api: client.Client) -> None:
    found, _ = await located(NotAVmRuntime())
    status = await worker(api, StubLocator(found)).execute(action(rebootAction={}))
    assert status["error"] == 'the runtime of pod "vm" does not support virtual machine actions'


async def test_what_the_locator_says_is_the_error(api: client.Client) -> None:
    locator = StubLocator(None, [LookupError('pod "vm" is not a virtual machine pod')])
    status = await worker(api, locator).execute(action(rebootAction={}))
    assert status["error"] == 'pod "vm" is not a virtual machine pod'
    assert status["rebootStatus"] == {"rebootSuccessful": False}


async def test_a_vm_not_created_yet_is_waited_for(
    api: client.Client, autojump_clock: trio.testing.MockClock
) -> None:
    fake = FakeRuntime()
    found, _ = await located(fake)
    not_yet = [pods.VmNotReady("not created yet") for _ in range(3)]
    locator = StubLocator(found, not_yet)
    status = await worker(api, locator).execute(action(rebootAction={}))
    assert status["error"] == ""
    assert locator.calls == 4
    # ... but not forever.
    locator = StubLocator(None, [pods.VmNotReady("not created yet")] * 100)
    status = await worker(api, locator).execute(action(rebootAction={}))
    assert status["error"] == "not created yet (waited 1s)"


async def test_bad_actions(api: client.Client) -> None:
    run = worker(api, StubLocator(None))
    status = await run.execute(action())
    assert status["complete"] is True
    assert "needs exactly one of rebootAction" in status["error"]
    status = await run.execute(action(podName="", rebootAction={}))
    assert status["error"] == "the action names no pod (spec.podName)"
    fake = FakeRuntime()
    found, _ = await located(fake)
    run = worker(api, StubLocator(found))
    status = await run.execute(action(snapshotAction={}))
    assert status["error"] == "a snapshot action needs snapshotAction.snapshotName"
    status = await run.execute(action(rebootAction={"delayInSeconds": "soon"}))
    assert "delayInSeconds must be a whole number" in status["error"]


async def test_complete_and_foreign_actions_are_skipped(api: client.Client) -> None:
    run = worker(api, StubLocator(None))
    async with trio.open_nursery() as nursery:
        run._nursery = nursery
        done = {**action(rebootAction={}), "status": {"complete": True}}
        run._on_action(done)
        foreign = action(rebootAction={})
        foreign["spec"]["nodeName"] = "n2"
        run._on_action(foreign)
        assert run._taken == set()
        run._nursery = None


class RecordingAPI:
    """Takes status writes and remembers them; enough of a `client.Client` for `_write`."""

    def __init__(self) -> None:
        self.written: list[Obj] = []

    async def patch(self, resource: Any, name: str, body: Obj, **where: Any) -> Obj:
        await trio.lowlevel.checkpoint()
        assert where["subresource"] == "status"
        self.written.append({"name": name, **body})
        return body


async def test_the_written_status_says_when_the_action_completed(api: client.Client) -> None:
    found, _container_id = await located(FakeRuntime())
    recording = RecordingAPI()
    moment = datetime.datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=datetime.UTC)
    run = actions.ActionWorker(
        api,
        node_name="n1",
        locator=StubLocator(found),
        recorder=machinery.EventRecorder(api, component="tests"),
        wall_clock=lambda: moment,
    )
    run._api = recording  # type: ignore[assignment]
    ok = action(rebootAction={"delayInSeconds": 0})
    bad = action(snapshotAction={})
    bad["metadata"] = {**bad["metadata"], "name": "a2", "uid": "a-2"}
    async with trio.open_nursery() as nursery:
        run._nursery = nursery
        run._on_action(ok)
        run._on_action(bad)
    run._nursery = None
    written = {w["name"]: w["status"] for w in recording.written}
    assert written["a1"]["complete"] is True
    assert written["a1"]["error"] == ""
    assert written["a1"]["completionTime"] == "2026-03-04T05:06:07Z"
    # A failed action is complete too, and stamped alike.
    assert written["a2"]["complete"] is True
    assert written["a2"]["error"] == "a snapshot action needs snapshotAction.snapshotName"
    assert written["a2"]["completionTime"] == "2026-03-04T05:06:07Z"
