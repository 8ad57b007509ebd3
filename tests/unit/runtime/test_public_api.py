"""The public face of `arktos_lite.runtime`: the names and signatures others code against."""

from __future__ import annotations

import dataclasses
import inspect

from arktos_lite import runtime
from arktos_lite.runtime import cri


def test_the_public_names() -> None:
    assert sorted(runtime.__all__) == [
        "AlreadyExists",
        "CRIError",
        "DeadlineExceeded",
        "Endpoint",
        "ExecResult",
        "FailedPrecondition",
        "Internal",
        "InvalidArgument",
        "NotFound",
        "POD_IPS",
        "POD_NETNS",
        "POD_NETWORK_INFO",
        "POD_NIC",
        "POD_NIC_INFO",
        "Runtime",
        "RuntimeClient",
        "Unavailable",
        "Unimplemented",
        "VM_ID",
        "VM_MEMORY",
        "VM_POWER_STATE",
        "VM_RESTART_COUNT",
        "VM_STATE",
        "VM_VCPUS",
        "VmResources",
        "VmRuntime",
        "WORKLOAD_TYPES",
        "cri",
        "errors",
        "fake",
        "format_endpoints",
        "parse_endpoints",
        "stream",
        "vm_resources",
    ]
    for name in runtime.__all__:
        assert hasattr(runtime, name), name
    assert runtime.cri is cri
    assert runtime.errors.NotFound is runtime.NotFound


def test_values() -> None:
    assert [f.name for f in dataclasses.fields(runtime.Endpoint)] == [
        "name",
        "workload_type",
        "address",
    ]
    assert [f.name for f in dataclasses.fields(runtime.ExecResult)] == [
        "stdout",
        "stderr",
        "exit_code",
    ]
    for value in (runtime.Endpoint, runtime.ExecResult):
        assert value.__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert "__slots__" in vars(value)
    assert runtime.WORKLOAD_TYPES == ("container", "vm")


def _protocol_methods() -> list[str]:
    return sorted(
        name
        for name, member in vars(runtime.Runtime).items()
        if inspect.iscoroutinefunction(member)
    )


def test_the_client_is_a_runtime_with_the_same_signatures() -> None:
    for name in _protocol_methods():
        ours = inspect.signature(getattr(runtime.RuntimeClient, name))
        theirs = inspect.signature(getattr(runtime.Runtime, name))
        assert list(ours.parameters) == list(theirs.parameters), name
        assert inspect.iscoroutinefunction(getattr(runtime.RuntimeClient, name)), name
    for name in ("reboot_vm", "create_snapshot", "restore_to_snapshot", "attach", "aclose"):
        assert inspect.iscoroutinefunction(getattr(runtime.RuntimeClient, name)), name


async def test_the_client_and_the_fake_are_vm_runtimes() -> None:
    vm_calls = sorted(
        name
        for name, member in vars(runtime.VmRuntime).items()
        if inspect.iscoroutinefunction(member)
    )
    assert vm_calls == [
        "create_snapshot",
        "pause_vm",
        "reboot_vm",
        "restore_to_snapshot",
        "resume_vm",
        "suspend_vm",
    ]
    for name in vm_calls:
        ours = inspect.signature(getattr(runtime.RuntimeClient, name))
        theirs = inspect.signature(getattr(runtime.VmRuntime, name))
        assert ours.parameters.keys() == theirs.parameters.keys(), name
        assert [p.kind for p in ours.parameters.values()] == [
            p.kind for p in theirs.parameters.values()
        ], name
    client = runtime.RuntimeClient("unix:///nonexistent/cri.sock")
    assert isinstance(client, runtime.VmRuntime)
    assert isinstance(runtime.fake.FakeRuntime(), runtime.VmRuntime)
    await client.aclose()


async def test_constructing_a_client_does_not_dial() -> None:
    # An agent starts before its runtime does: the first call, not the client, fails.
    client = runtime.RuntimeClient("unix:///nonexistent/cri.sock")
    assert client.address == "unix:///nonexistent/cri.sock"
    await client.aclose()
