"""The fake runtime answers the CRI calls as a real runtime would, cheaply."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing

from arktos_lite.runtime import _errors as errors
from arktos_lite.runtime._fake import (
    EXIT_KILLED,
    EXIT_TERMINATED,
    FakeExit,
    FakeRuntime,
    command_behaviour,
)
from arktos_lite.runtime._protocol import VM_MEMORY, VM_VCPUS, ExecResult, Runtime
from arktos_lite.runtime.cri import api_pb2 as cri


def sandbox_config(uid: str = "u1", name: str = "web") -> cri.PodSandboxConfig:
    return cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name=name, uid=uid, namespace="default"),
        log_directory=f"/logs/{uid}",
        labels={"io.kubernetes.pod.uid": uid},
    )


def container_config(name: str = "app", attempt: int = 0, **kwargs: Any) -> cri.ContainerConfig:
    return cri.ContainerConfig(
        metadata=cri.ContainerMetadata(name=name, attempt=attempt),
        image=cri.ImageSpec(image="busybox"),
        labels={"io.kubernetes.container.name": name},
        log_path=f"{name}/{attempt}.log",
        **kwargs,
    )


async def run_container(
    fake: FakeRuntime, name: str = "app", *, uid: str = "u1", **kwargs: Any
) -> tuple[str, str]:
    config = sandbox_config(uid)
    sandbox_id = await fake.run_pod_sandbox(config)
    container_id = await fake.create_container(sandbox_id, container_config(name, **kwargs), config)
    await fake.start_container(container_id)
    return sandbox_id, container_id


def test_is_a_runtime() -> None:
    runtime: Runtime = FakeRuntime()
    assert runtime is not None


async def test_container_lifecycle() -> None:
    fake = FakeRuntime()
    config = sandbox_config()
    sandbox_id = await fake.run_pod_sandbox(config)
    container_id = await fake.create_container(sandbox_id, container_config(), config)
    assert (await fake.container_status(container_id)).state == cri.CONTAINER_CREATED
    await fake.start_container(container_id)
    running = await fake.container_status(container_id)
    assert running.state == cri.CONTAINER_RUNNING
    assert running.started_at > 0
    assert running.log_path == "/logs/u1/app/0.log"
    fake.exit(container_id, 3, message="boom")
    exited = await fake.container_status(container_id)
    assert exited.state == cri.CONTAINER_EXITED
    assert (exited.exit_code, exited.reason, exited.message) == (3, "Error", "boom")
    assert exited.finished_at >= exited.started_at
    # The answer given while it ran did not change under the caller.
    assert running.state == cri.CONTAINER_RUNNING


async def test_exit_zero_is_completed_and_stop_gives_signal_codes() -> None:
    fake = FakeRuntime()
    _, first = await run_container(fake, "a")
    fake.exit(first, 0)
    assert (await fake.container_status(first)).reason == "Completed"
    _, second = await run_container(fake, "b", uid="u2")
    await fake.stop_container(second, timeout=10)
    assert (await fake.container_status(second)).exit_code == EXIT_TERMINATED
    _, third = await run_container(fake, "c", uid="u3")
    await fake.stop_container(third, timeout=0)
    assert (await fake.container_status(third)).exit_code == EXIT_KILLED
    # Stopping what is stopped is fine.
    await fake.stop_container(third, timeout=0)


async def test_errors() -> None:
    fake = FakeRuntime()
    with pytest.raises(errors.NotFound):
        await fake.container_status("nope")
    with pytest.raises(errors.NotFound):
        await fake.pod_sandbox_status("nope")
    config = sandbox_config()
    sandbox_id = await fake.run_pod_sandbox(config)
    first = await fake.create_container(sandbox_id, container_config(), config)
    with pytest.raises(errors.AlreadyExists):
        await fake.create_container(sandbox_id, container_config(), config)
    await fake.start_container(first)
    with pytest.raises(errors.FailedPrecondition):
        await fake.start_container(first)
    await fake.stop_pod_sandbox(sandbox_id)
    with pytest.raises(errors.FailedPrecondition):
        await fake.create_container(sandbox_id, container_config(attempt=1), config)
    fake.available = False
    with pytest.raises(errors.Unavailable):
        await fake.list_containers()


async def test_sandbox_stop_and_remove_take_containers() -> None:
    fake = FakeRuntime()
    sandbox_id, container_id = await run_container(fake)
    await fake.stop_pod_sandbox(sandbox_id)
    assert (await fake.pod_sandbox_status(sandbox_id)).state == cri.SANDBOX_NOTREADY
    assert (await fake.container_status(container_id)).state == cri.CONTAINER_EXITED
    await fake.remove_pod_sandbox(sandbox_id)
    assert await fake.list_containers() == []
    assert await fake.list_pod_sandbox() == []
    # Removing again is fine.
    await fake.remove_pod_sandbox(sandbox_id)
    await fake.remove_container(container_id)


async def test_list_filters() -> None:
    fake = FakeRuntime()
    s1, c1 = await run_container(fake, "a", uid="u1")
    s2, c2 = await run_container(fake, "b", uid="u2")
    fake.exit(c2, 1)

    def ids(items: object) -> set[str]:
        return {item.id for item in items}  # type: ignore[attr-defined]

    assert ids(await fake.list_containers()) == {c1, c2}
    assert ids(await fake.list_containers(cri.ContainerFilter(id=c1))) == {c1}
    assert ids(await fake.list_containers(cri.ContainerFilter(pod_sandbox_id=s2))) == {c2}
    running = cri.ContainerFilter(state=cri.ContainerStateValue(state=cri.CONTAINER_RUNNING))
    assert ids(await fake.list_containers(running)) == {c1}
    by_label = cri.ContainerFilter(label_selector={"io.kubernetes.container.name": "b"})
    assert ids(await fake.list_containers(by_label)) == {c2}
    both = cri.ContainerFilter(label_selector={"io.kubernetes.container.name": "b", "x": "y"})
    assert ids(await fake.list_containers(both)) == set()
    by_uid = cri.PodSandboxFilter(label_selector={"io.kubernetes.pod.uid": "u2"})
    assert ids(await fake.list_pod_sandbox(by_uid)) == {s2}
    await fake.stop_pod_sandbox(s1)
    ready = cri.PodSandboxFilter(state=cri.PodSandboxStateValue(state=cri.SANDBOX_READY))
    assert ids(await fake.list_pod_sandbox(ready)) == {s2}
    stats = await fake.list_container_stats(cri.ContainerStatsFilter(pod_sandbox_id=s2))
    assert [s.attributes.id for s in stats] == [c2]


async def test_sandboxes_get_distinct_ips() -> None:
    fake = FakeRuntime()
    first = await fake.run_pod_sandbox(sandbox_config("u1"))
    second = await fake.run_pod_sandbox(sandbox_config("u2"))
    ips = {(await fake.pod_sandbox_status(s)).network.ip for s in (first, second)}
    assert len(ips) == 2
    assert all(ip.startswith("10.88.") for ip in ips)


async def test_behaviour_exits_at_once_or_later(mock_clock: trio.testing.MockClock) -> None:
    fake = FakeRuntime(behaviour=command_behaviour)
    _, quick = await run_container(fake, "q", command=["sh", "-c", "echo hi; exit 3"])
    assert (await fake.container_status(quick)).exit_code == 3
    _, slow = await run_container(fake, "s", uid="u2", command=["sh", "-c", "sleep 5"])
    assert (await fake.container_status(slow)).state == cri.CONTAINER_RUNNING
    mock_clock.jump(5)
    status = await fake.container_status(slow)
    assert (status.state, status.exit_code) == (cri.CONTAINER_EXITED, 0)
    _, forever = await run_container(fake, "f", uid="u3", command=["sleep", "infinity"])
    mock_clock.jump(3600)
    assert (await fake.container_status(forever)).state == cri.CONTAINER_RUNNING


def test_command_behaviour() -> None:
    def behaviour(*argv: str) -> FakeExit | None:
        return command_behaviour(cri.ContainerConfig(command=list(argv)))

    assert behaviour("sh", "-c", "exit 3") == FakeExit(3)
    assert behaviour("true") == FakeExit(0)
    assert behaviour("false") == FakeExit(1)
    assert behaviour("sh", "-c", "sleep 2; exit 1") == FakeExit(1, after=2.0)
    assert behaviour("sleep", "3600") == FakeExit(0, after=3600.0)
    assert behaviour("nginx") is None
    assert command_behaviour(cri.ContainerConfig()) is None


async def test_exec_sync_and_images() -> None:
    fake = FakeRuntime(
        exec_handler=lambda cid, cmd: ExecResult(b" ".join(map(str.encode, cmd)), b"", 7)
    )
    _, container_id = await run_container(fake)
    result = await fake.exec_sync(container_id, ["echo", "hi"], timeout=1)
    assert result == ExecResult(b"echo hi", b"", 7)
    assert await fake.image_status("nginx:1") is None
    image_id = await fake.pull_image("nginx:1")
    found = await fake.image_status("nginx:1")
    assert found is not None
    assert found.id == image_id
    fake.pull_errors["bad"] = errors.NotFound("no such image")
    with pytest.raises(errors.NotFound):
        await fake.pull_image("bad")
    await fake.remove_image("nginx:1")
    assert await fake.list_images() == []


async def test_status_and_version() -> None:
    fake = FakeRuntime()
    assert (await fake.version()).runtime_name == "fake"
    status = await fake.status(verbose=True)
    assert all(c.status for c in status.status.conditions)
    assert "isolation" in status.info
    fake.ready = False
    status = await fake.status()
    ready = next(c for c in status.status.conditions if c.type == "RuntimeReady")
    assert not ready.status


# VMs


def vm_config(name: str = "vm1") -> cri.ContainerConfig:
    return container_config(name, annotations={"arktos.futurewei.com/virtual-machine": "{}"})


def vm_facts(container: cri.Container | cri.ContainerStatus) -> tuple[str, str, str]:
    annotations = container.annotations
    return (
        annotations["vm.runtime.arktos.futurewei.com/state"],
        annotations["vm.runtime.arktos.futurewei.com/power-state"],
        annotations["vm.runtime.arktos.futurewei.com/restart-count"],
    )


async def run_vm(fake: FakeRuntime) -> str:
    config = sandbox_config()
    sandbox_id = await fake.run_pod_sandbox(config)
    container_id = await fake.create_container(sandbox_id, vm_config(), config)
    await fake.start_container(container_id)
    return container_id


async def test_a_vm_reports_its_state_and_powers_off_and_on() -> None:
    fake = FakeRuntime()
    vm = await run_vm(fake)
    status = await fake.container_status(vm)
    assert vm_facts(status) == ("active", "running", "0")
    assert status.annotations["vm.runtime.arktos.futurewei.com/id"]
    assert status.annotations["arktos.futurewei.com/virtual-machine"] == "{}"
    await fake.stop_container(vm, timeout=30)
    status = await fake.container_status(vm)
    assert (status.state, status.exit_code, status.reason) == (cri.CONTAINER_EXITED, 0, "Shutdown")
    assert vm_facts(status) == ("stopped", "shutdown", "0")
    await fake.start_container(vm)
    (listed,) = await fake.list_containers()
    assert listed.state == cri.CONTAINER_RUNNING
    assert vm_facts(listed) == ("active", "running", "0")
    assert (await fake.container_status(vm)).finished_at == 0


async def test_a_vm_pauses_suspends_and_resumes() -> None:
    fake = FakeRuntime()
    vm = await run_vm(fake)
    before = await fake.container_status(vm)
    await fake.pause_vm(vm)
    await fake.pause_vm(vm)
    status = await fake.container_status(vm)
    assert status.state == cri.CONTAINER_RUNNING
    assert vm_facts(status)[:2] == ("paused", "paused")
    assert vm_facts(before)[:2] == ("active", "running")  # earlier answers stay
    await fake.suspend_vm(vm)
    [listed] = await fake.list_containers()
    assert vm_facts(listed)[:2] == ("suspended", "suspended")
    with pytest.raises(errors.FailedPrecondition, match="suspended"):
        await fake.pause_vm(vm)
    await fake.resume_vm(vm)
    assert vm_facts(await fake.container_status(vm))[:2] == ("active", "running")
    # StartContainer restores a suspended VM; stopping one powers it off.
    await fake.suspend_vm(vm)
    await fake.start_container(vm)
    assert vm_facts(await fake.container_status(vm))[:2] == ("active", "running")
    await fake.pause_vm(vm)
    await fake.stop_container(vm, timeout=1)
    assert vm_facts(await fake.container_status(vm))[:2] == ("stopped", "shutdown")
    with pytest.raises(errors.FailedPrecondition, match="not running"):
        await fake.pause_vm(vm)


async def test_a_vm_is_resized_up_to_the_fakes_maxima() -> None:
    fake = FakeRuntime()
    vm = await run_vm(fake)
    facts = (await fake.container_status(vm)).annotations
    assert (facts[VM_VCPUS], facts[VM_MEMORY]) == ("1", str(512 * 2**20))
    spec = {"resources": {"limits": {"cpu": "3", "memory": "1Gi"}}}
    await fake.update_container_resources(
        vm,
        cri.LinuxContainerResources(),
        annotations={"arktos.futurewei.com/virtual-machine": json.dumps(spec)},
    )
    facts = (await fake.container_status(vm)).annotations
    assert (facts[VM_VCPUS], facts[VM_MEMORY]) == ("3", str(2**30))
    fake.vm_max_vcpus = 2
    with pytest.raises(errors.FailedPrecondition, match="cannot grow to 3 vCPUs"):
        await fake.update_container_resources(
            vm,
            cri.LinuxContainerResources(),
            annotations={"arktos.futurewei.com/virtual-machine": json.dumps(spec)},
        )


async def test_a_crashed_vm() -> None:
    fake = FakeRuntime()
    vm = await run_vm(fake)
    fake.exit(vm, 1)
    status = await fake.container_status(vm)
    assert (status.exit_code, status.reason) == (1, "Crashed")
    assert vm_facts(status)[:2] == ("error", "crashed")


async def test_reboot_counts_restarts() -> None:
    fake = FakeRuntime()
    vm = await run_vm(fake)
    await fake.reboot_vm(vm)
    await fake.reboot_vm(vm)
    assert vm_facts(await fake.container_status(vm)) == ("active", "running", "2")
    (listed,) = await fake.list_containers()
    assert vm_facts(listed)[2] == "2"


async def test_reboot_waits_its_delay(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeRuntime()
    vm = await run_vm(fake)
    start = trio.current_time()
    await fake.reboot_vm(vm, delay_seconds=5)
    assert trio.current_time() - start == pytest.approx(5)
    assert vm_facts(await fake.container_status(vm))[2] == "1"


async def test_snapshots_by_name() -> None:
    fake = FakeRuntime()
    vm = await run_vm(fake)
    await fake.create_snapshot(vm, "s1")
    assert fake.snapshots(vm) == ["s1"]
    with pytest.raises(errors.AlreadyExists):
        await fake.create_snapshot(vm, "s1")
    await fake.restore_to_snapshot(vm, "s1")
    with pytest.raises(errors.NotFound):
        await fake.restore_to_snapshot(vm, "missing")
    await fake.stop_container(vm, timeout=1)
    with pytest.raises(errors.FailedPrecondition):
        await fake.create_snapshot(vm, "s2")
    with pytest.raises(errors.FailedPrecondition):
        await fake.reboot_vm(vm)
    # Restoring a memory snapshot runs the VM.
    await fake.restore_to_snapshot(vm, "s1")
    assert (await fake.container_status(vm)).state == cri.CONTAINER_RUNNING


async def test_vm_calls_on_a_container_or_nothing() -> None:
    fake = FakeRuntime()
    _, container_id = await run_container(fake)
    with pytest.raises(errors.InvalidArgument):
        await fake.reboot_vm(container_id)
    with pytest.raises(errors.NotFound):
        await fake.create_snapshot("nope", "s1")
    assert (
        "vm.runtime.arktos.futurewei.com/state"
        not in (await fake.container_status(container_id)).annotations
    )
    # A container that exited is not started again.
    await fake.stop_container(container_id, timeout=1)
    with pytest.raises(errors.FailedPrecondition):
        await fake.start_container(container_id)


async def test_a_vm_gets_the_nics_it_is_given() -> None:
    fake = FakeRuntime()
    vm = await run_vm(fake)
    nics = "arktos.futurewei.com/nics"
    port = [{"name": "eth0", "portId": "p0", "macAddress": "fa:16:3e:00:00:01"}]
    none = cri.LinuxContainerResources()
    await fake.update_container_resources(vm, none, annotations={nics: json.dumps(port)})
    for answer in (await fake.container_status(vm), (await fake.list_containers())[0]):
        assert json.loads(answer.annotations[nics]) == port
        assert answer.annotations[VM_VCPUS] == "1"  # no resize asked: the size it had
    with pytest.raises(errors.InvalidArgument, match="macAddress"):
        await fake.update_container_resources(vm, none, annotations={nics: '[{"name": "x"}]'})
    fake.nic_error = errors.FailedPrecondition("no bridge")
    with pytest.raises(errors.FailedPrecondition, match="no bridge"):
        await fake.update_container_resources(vm, none, annotations={nics: "[]"})
    # The same ports again change nothing: never refused.
    await fake.update_container_resources(vm, none, annotations={nics: json.dumps(port)})
    fake.nic_error = None
    await fake.suspend_vm(vm)
    with pytest.raises(errors.FailedPrecondition, match="suspended"):
        await fake.update_container_resources(vm, none, annotations={nics: "[]"})
    await fake.resume_vm(vm)
    await fake.update_container_resources(vm, none, annotations={nics: "[]"})
    assert nics not in (await fake.container_status(vm)).annotations
