"""What the agent says about its node: capacity, conditions, nodeInfo, the Lease body."""

from __future__ import annotations

import datetime
from typing import Any

import trio

from arktos_lite.agent import _node as node
from arktos_lite.agent._runtimes import NamedRuntime, RuntimeSet, WorkloadType
from arktos_lite.api import timestamps
from arktos_lite.runtime._fake import FakeRuntime

GIB = 1024**3
HOST = node.HostInfo(
    cpus=8,
    memory_bytes=16 * GIB,
    machine_id="m1",
    system_uuid="u1",
    boot_id="b1",
    kernel_version="6.1.0",
    os_image="Debian GNU/Linux 12 (bookworm)",
)
ROOMY = node.Usage(memory_available=8 * GIB, disk_total=100 * GIB, disk_free=50 * GIB)
CONTAINER_OK = node.RuntimeReport(
    "process", WorkloadType.CONTAINER, ready=True, version="process://0.1.0", isolation="none"
)


def by_type(conditions: list[node.Condition]) -> dict[str, node.Condition]:
    return {c.type: c for c in conditions}


def test_capacity_and_allocatable() -> None:
    assert node.capacity(HOST, ROOMY, max_pods=110) == {
        "cpu": "8",
        "memory": f"{16 * 1024 * 1024}Ki",
        "pods": "110",
        "ephemeral-storage": f"{100 * 1024 * 1024}Ki",
    }
    allocatable = node.allocatable(HOST, ROOMY, max_pods=110)
    assert allocatable["cpu"] == "8"
    assert allocatable["pods"] == "110"
    # The memory and disk reserves below which kubelet would evict.
    assert allocatable["memory"] == f"{16 * 1024 * 1024 - 100 * 1024}Ki"
    assert allocatable["ephemeral-storage"] == f"{95 * 1024 * 1024}Ki"


def test_a_ready_container_runtime_makes_the_node_ready_but_not_for_vms() -> None:
    conditions = by_type(node.node_conditions([CONTAINER_OK], ROOMY))
    assert conditions["Ready"].status == "True"
    assert conditions["Ready"].reason == "KubeletReady"
    assert conditions["Ready"].message == "agent is posting ready status"
    assert conditions["ContainerRuntimeReady"].status == "True"
    vm = conditions["VmRuntimeReady"]
    assert (vm.status, vm.reason, vm.message) == (
        "False",
        "NoRuntime",
        "no vm runtime on this node",
    )
    for pressure, reason in [
        ("MemoryPressure", "KubeletHasSufficientMemory"),
        ("DiskPressure", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "KubeletHasSufficientPID"),
    ]:
        assert (conditions[pressure].status, conditions[pressure].reason) == ("False", reason)


def test_no_ready_runtime_makes_the_node_not_ready_and_says_why() -> None:
    down = node.RuntimeReport(
        "process",
        WorkloadType.CONTAINER,
        ready=False,
        reason="RuntimeUnreachable",
        message="runtime process: connection refused",
    )
    conditions = by_type(node.node_conditions([down], ROOMY))
    assert conditions["ContainerRuntimeReady"].status == "False"
    assert conditions["ContainerRuntimeReady"].reason == "RuntimeUnreachable"
    assert conditions["Ready"].status == "False"
    assert conditions["Ready"].reason == "KubeletNotReady"
    assert "connection refused" in conditions["Ready"].message


def test_the_default_runtime_of_a_type_decides_its_condition() -> None:
    vm_ok = node.RuntimeReport("vm", WorkloadType.VM, ready=True)
    second_container = node.RuntimeReport("other", WorkloadType.CONTAINER, ready=False)
    conditions = by_type(node.node_conditions([vm_ok, CONTAINER_OK, second_container], ROOMY))
    assert conditions["VmRuntimeReady"].status == "True"
    assert conditions["ContainerRuntimeReady"].status == "True"
    assert conditions["Ready"].status == "True"


def test_pressure_when_memory_or_disk_runs_short() -> None:
    tight = node.Usage(memory_available=50 * 1024 * 1024, disk_total=100 * GIB, disk_free=4 * GIB)
    conditions = by_type(node.node_conditions([CONTAINER_OK], tight))
    assert conditions["MemoryPressure"].status == "True"
    assert conditions["MemoryPressure"].reason == "KubeletHasInsufficientMemory"
    assert conditions["DiskPressure"].status == "True"
    assert conditions["DiskPressure"].reason == "KubeletHasDiskPressure"


def test_merging_conditions_keeps_transition_times_and_foreign_conditions() -> None:
    old: list[dict[str, Any]] = [
        {
            "type": "Ready",
            "status": "True",
            "lastHeartbeatTime": "2026-01-01T00:00:00Z",
            "lastTransitionTime": "2025-12-31T00:00:00Z",
        },
        {"type": "ContainerRuntimeReady", "status": "False", "lastTransitionTime": "x"},
        {"type": "NetworkUnavailable", "status": "False", "reason": "RouteCreated"},
    ]
    wanted = node.node_conditions([CONTAINER_OK], ROOMY)
    merged = {c["type"]: c for c in node.merge_conditions(old, wanted, now="NOW")}
    assert merged["Ready"]["lastHeartbeatTime"] == "NOW"
    assert merged["Ready"]["lastTransitionTime"] == "2025-12-31T00:00:00Z"
    assert merged["ContainerRuntimeReady"]["lastTransitionTime"] == "NOW"
    assert merged["MemoryPressure"]["lastTransitionTime"] == "NOW"
    assert merged["NetworkUnavailable"] == old[2]


def test_status_differs_only_for_what_a_user_sees() -> None:
    observed = node.Observed(HOST, ROOMY, (CONTAINER_OK,))
    options: dict[str, Any] = {"node_name": "n1", "node_ip": "10.0.0.1", "port": 10250}
    first = node.node_status({}, observed, max_pods=110, now="T1", **options)
    again = node.node_status(first, observed, max_pods=110, now="T2", **options)
    assert not node.status_differs(first, again)
    more_pods = node.node_status(first, observed, max_pods=120, now="T2", **options)
    assert node.status_differs(first, more_pods)


def test_status_fields() -> None:
    observed = node.Observed(HOST, ROOMY, (CONTAINER_OK,))
    status = node.node_status(
        {"images": []}, observed, node_name="n1", node_ip="10.0.0.1", port=4321, max_pods=5, now="T"
    )
    assert status["images"] == []
    assert status["addresses"] == [
        {"type": "InternalIP", "address": "10.0.0.1"},
        {"type": "Hostname", "address": "n1"},
    ]
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 4321}}
    info = status["nodeInfo"]
    assert info["containerRuntimeVersion"] == "process://0.1.0"
    assert info["kubeletVersion"].startswith("v1.32.0-arktos-lite.")
    assert info["osImage"] == "Debian GNU/Linux 12 (bookworm)"
    assert (info["operatingSystem"], info["architecture"]) == ("linux", "amd64")
    assert (info["machineID"], info["systemUUID"], info["bootID"]) == ("m1", "u1", "b1")


def test_labels() -> None:
    labels = node.node_labels("n1", HOST, {"zone": "a", node.LABEL_OS: "override"})
    assert labels == {
        "kubernetes.io/os": "override",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": "n1",
        "zone": "a",
    }


def test_host_parsing() -> None:
    assert node.go_architecture("x86_64") == "amd64"
    assert node.go_architecture("aarch64") == "arm64"
    assert node.os_image('NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n') == (
        "Debian GNU/Linux 12 (bookworm)"
    )
    assert node.os_image("") == "Linux"
    assert node.meminfo("MemTotal:       1024 kB\nHugePages_Total:       0\n") == {
        "MemTotal": 1024 * 1024,
        "HugePages_Total": 0,
    }
    host = node.read_host_info()
    assert host.cpus >= 1
    assert host.memory_bytes > 0


def test_lease_body() -> None:
    owner = {"metadata": {"name": "n1", "uid": "u-1"}}
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)
    lease = node.lease_body(
        "n1", duration=40, renew_time=timestamps.micro_time(moment), node=owner, base=None
    )
    assert lease["metadata"]["namespace"] == "kube-node-lease"
    assert lease["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "u-1"}
    ]
    assert lease["spec"] == {
        "holderIdentity": "n1",
        "leaseDurationSeconds": 40,
        "renewTime": "2026-01-02T03:04:05.678901Z",
    }


async def test_runtime_reports() -> None:
    fake = FakeRuntime()
    named = NamedRuntime("fake", WorkloadType.CONTAINER, fake)
    report = await node.check_runtime(named, timeout=1.0)
    assert report.ready
    assert report.version == "fake://0.1.0"
    assert report.isolation == "none (fake runtime)"
    assert node.isolation_annotation([report]) == "fake: none (fake runtime)"

    fake.ready = False
    report = await node.check_runtime(named, timeout=1.0)
    assert not report.ready
    assert report.reason == "FakeNotReady"

    fake.available = False
    report = await node.check_runtime(named, timeout=1.0)
    assert (report.ready, report.reason) == (False, "RuntimeUnreachable")
    assert "unavailable" in report.message


class _Hanging(FakeRuntime):
    async def version(self) -> Any:
        await trio.sleep_forever()


async def test_a_runtime_that_does_not_answer_is_unreachable(autojump_clock: Any) -> None:
    report = await node.check_runtime(
        NamedRuntime("slow", WorkloadType.VM, _Hanging()), timeout=2.0
    )
    assert (report.ready, report.reason) == (False, "RuntimeUnreachable")
    assert "did not answer within 2s" in report.message


async def test_runtimes_are_reported_in_order() -> None:
    broken = FakeRuntime()
    broken.available = False
    runtimes = RuntimeSet(
        (
            NamedRuntime("a", WorkloadType.CONTAINER, FakeRuntime()),
            NamedRuntime("b", WorkloadType.VM, broken),
        )
    )
    reports = await node.check_runtimes(runtimes, timeout=1.0)
    assert [(r.name, r.ready) for r in reports] == [("a", True), ("b", False)]
