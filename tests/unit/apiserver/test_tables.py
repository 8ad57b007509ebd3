"""Server-side printing: the Tables `kubectl get` shows, cell by cell as kube-apiserver 1.32."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

import pytest
from hypothesis import given, strategies as st

from arktos_lite.api import _errors as errors, _resources as resources
from arktos_lite.apiserver import _tables as tables

NOW = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)
REGISTRY = resources.Registry()
Obj = dict[str, Any]


def ago(**delta: float) -> str:
    moment = NOW - datetime.timedelta(**delta)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def resource(kind: str, group: str = "") -> resources.Resource:
    found = REGISTRY.by_kind(group, kind)
    assert found is not None
    return found


def build(kind: str, obj: Obj, *, group: str = "", **options: Any) -> Obj:
    return tables.table(resource(kind, group), [obj], now=NOW, **options)


def cells(kind: str, obj: Obj, *, group: str = "") -> dict[str, Any]:
    """Column name -> cell of the one row, every column (as `-o wide` shows)."""
    result = build(kind, obj, group=group)
    names = [c["name"] for c in result["columnDefinitions"]]
    (row,) = result["rows"]
    assert len(row["cells"]) == len(names)
    return dict(zip(names, row["cells"], strict=True))


def headers(kind: str, *, group: str = "", wide: bool = False, **options: Any) -> list[str]:
    """The header line kubectl prints: upper-cased names, priority 0 unless wide."""
    result = tables.table(resource(kind, group), [], now=NOW, **options)
    return [c["name"].upper() for c in result["columnDefinitions"] if wide or c["priority"] == 0]


def meta(name: str, *, created: str | None = None, **extra: Any) -> Obj:
    metadata: Obj = {"name": name, "creationTimestamp": created or ago(days=3)}
    metadata.update(extra)
    return metadata


# --- Ages --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (datetime.timedelta(0), "0s"),
        (datetime.timedelta(seconds=-1), "0s"),
        (datetime.timedelta(seconds=-1.9), "0s"),
        (datetime.timedelta(seconds=-2), "<invalid>"),
        (datetime.timedelta(seconds=0.9), "0s"),
        (datetime.timedelta(seconds=59), "59s"),
        (datetime.timedelta(seconds=119), "119s"),
        (datetime.timedelta(minutes=2), "2m"),
        (datetime.timedelta(minutes=3, seconds=12), "3m12s"),
        (datetime.timedelta(minutes=9, seconds=59), "9m59s"),
        (datetime.timedelta(minutes=10, seconds=5), "10m"),
        (datetime.timedelta(minutes=179, seconds=59), "179m"),
        (datetime.timedelta(hours=3), "3h"),
        (datetime.timedelta(hours=3, minutes=2), "3h2m"),
        (datetime.timedelta(hours=7, minutes=59, seconds=59), "7h59m"),
        (datetime.timedelta(hours=8, minutes=30), "8h"),
        (datetime.timedelta(hours=47, minutes=59), "47h"),
        (datetime.timedelta(days=2), "2d"),
        (datetime.timedelta(days=2, hours=5), "2d5h"),
        (datetime.timedelta(days=7, hours=23), "7d23h"),
        (datetime.timedelta(days=8, hours=5), "8d"),
        (datetime.timedelta(days=729), "729d"),
        (datetime.timedelta(days=730), "2y"),
        (datetime.timedelta(days=740), "2y10d"),
        (datetime.timedelta(days=8 * 365), "8y"),
        (datetime.timedelta(days=20 * 365 + 100), "20y"),
    ],
)
def test_human_duration_follows_apimachinery(delta: datetime.timedelta, expected: str) -> None:
    assert tables.human_duration(delta) == expected


_UNIT_SECONDS = {"y": 365 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


@given(st.integers(min_value=0, max_value=30 * 365 * 86400 * 10**6))
def test_human_duration_is_a_truncation_of_the_duration(micros: int) -> None:
    delta = datetime.timedelta(microseconds=micros)
    text = tables.human_duration(delta)
    parts = re.fullmatch(r"(?:(\d+)([ydhms]))(?:(\d+)([ydhms]))?", text)
    assert parts is not None, text
    shown = 0
    smallest = 0
    for number, unit in re.findall(r"(\d+)([ydhms])", text):
        shown += int(number) * _UNIT_SECONDS[unit]
        smallest = _UNIT_SECONDS[unit]
    # What is shown never exceeds the age and is off by less than its last unit.
    assert 0 <= delta.total_seconds() - shown < smallest


def test_age_cells_are_server_computed_strings() -> None:
    row = cells("ConfigMap", {"metadata": meta("c", created=ago(minutes=5, seconds=3))})
    assert row["Age"] == "5m3s"
    unknown = cells("ConfigMap", {"metadata": {"name": "c"}})
    assert unknown["Age"] == "<unknown>"


# --- The Table envelope ----------------------------------------------------------------


def test_table_envelope() -> None:
    result = tables.table(
        resource("ConfigMap"),
        [{"metadata": meta("a")}, {"metadata": meta("b")}],
        resource_version="42",
        continue_token="tok",
        now=NOW,
    )
    assert result["kind"] == "Table"
    assert result["apiVersion"] == "meta.k8s.io/v1"
    assert result["metadata"] == {"resourceVersion": "42", "continue": "tok"}
    assert [r["cells"][0] for r in result["rows"]] == ["a", "b"]
    for definition in result["columnDefinitions"]:
        assert set(definition) == {"name", "type", "format", "description", "priority"}
    json.dumps(result)  # plain JSON values only


def test_empty_list_has_columns_and_no_rows() -> None:
    result = tables.table(resource("Pod"), [], resource_version="7", now=NOW)
    assert result["rows"] == []
    assert result["metadata"] == {"resourceVersion": "7"}
    assert result["columnDefinitions"]


def test_no_continue_and_no_resource_version_are_left_out() -> None:
    assert tables.table(resource("Pod"), [], now=NOW)["metadata"] == {}


def test_watch_events_after_the_first_carry_no_column_definitions() -> None:
    result = build("ConfigMap", {"metadata": meta("c")}, column_definitions=False)
    # As kube-apiserver: the field is there but null; kubectl reuses the last columns.
    assert result["columnDefinitions"] is None
    assert result["rows"][0]["cells"][0] == "c"


# --- includeObject ---------------------------------------------------------------------


def test_include_object_metadata_is_the_default() -> None:
    metadata = meta("c", namespace="default", tenant="t1", uid="u1", resourceVersion="3")
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"a": "b"}}
    row = build("ConfigMap", obj)["rows"][0]
    assert row["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
    }


def test_empty_include_object_means_metadata() -> None:
    row = build("ConfigMap", {"metadata": meta("c")}, include_object="")["rows"][0]
    assert row["object"]["kind"] == "PartialObjectMetadata"


def test_include_object_object_and_none() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("c")}
    assert build("ConfigMap", obj, include_object="Object")["rows"][0]["object"] == obj
    row = build("ConfigMap", obj, include_object="None")["rows"][0]
    assert row["object"] is None


def test_unknown_include_object_is_a_bad_request() -> None:
    with pytest.raises(errors.BadRequest) as caught:
        build("ConfigMap", {"metadata": meta("c")}, include_object="Everything")
    assert caught.value.code == 400
    assert caught.value.message == 'unrecognized includeObject value: "Everything"'


# --- Across tenants --------------------------------------------------------------------


def test_all_tenants_puts_a_tenant_column_first() -> None:
    pod = {"metadata": meta("p", namespace="default", tenant="t1"), "spec": {}}
    result = build("Pod", pod, all_tenants=True)
    first = result["columnDefinitions"][0]
    assert first["name"] == "Tenant"
    assert first["type"] == "string"
    assert first["format"] == ""  # kubectl --show-kind must prefix Name, not Tenant
    assert result["rows"][0]["cells"][:2] == ["t1", "p"]
    assert headers("Pod", all_tenants=True)[:3] == ["TENANT", "NAME", "HASHKEY"]


def test_all_tenants_leaves_the_tenant_of_cluster_objects_empty() -> None:
    node = {"metadata": meta("n1", tenant="system"), "status": {}}
    assert build("Node", node, all_tenants=True)["rows"][0]["cells"][:2] == ["", "n1"]


def test_without_all_tenants_there_is_no_tenant_column() -> None:
    assert "TENANT" not in headers("Pod", wide=True)


def test_every_table_has_one_name_column_for_show_kind() -> None:
    # kubectl --show-kind prefixes the first string column of format "name".
    for res in REGISTRY:
        definitions = tables.table(res, [], now=NOW, all_tenants=True)["columnDefinitions"]
        named = [c["name"] for c in definitions if c["format"] == "name"]
        assert named == ["Name"], res.kind


# --- Pods --------------------------------------------------------------------------------


def running(name: str, *, restarts: int = 0, ready: bool = True) -> Obj:
    return {
        "name": name,
        "ready": ready,
        "restartCount": restarts,
        "state": {"running": {"startedAt": ago(hours=1)}},
    }


def waiting(name: str, reason: str, *, restarts: int = 0, **extra: Any) -> Obj:
    return {
        "name": name,
        "ready": False,
        "restartCount": restarts,
        "state": {"waiting": {"reason": reason}},
        **extra,
    }


def terminated(name: str, *, reason: str = "", exit_code: int = 0, signal: int = 0) -> Obj:
    state: Obj = {"exitCode": exit_code, "finishedAt": ago(minutes=1)}
    if reason:
        state["reason"] = reason
    if signal:
        state["signal"] = signal
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": state}}


def pod(
    *,
    containers: int = 1,
    init: int = 0,
    phase: str = "Running",
    statuses: list[Obj] | None = None,
    init_statuses: list[Obj] | None = None,
    conditions: list[Obj] | None = None,
    **metadata: Any,
) -> Obj:
    status: Obj = {"phase": phase}
    if statuses is not None:
        status["containerStatuses"] = statuses
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    if conditions is not None:
        status["conditions"] = conditions
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta("web", namespace="default", hashKey=1234, **metadata),
        "spec": {
            "containers": [{"name": f"c{i}", "image": "busybox"} for i in range(containers)],
            "initContainers": [{"name": f"i{i}", "image": "busybox"} for i in range(init)],
        },
        "status": status,
    }


_CRASH_LAST_STATE = {
    "terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(minutes=2)},
}

POD_CASES = {
    "running": (pod(statuses=[running("c0")]), "1/1", "Running", "0"),
    "pending unscheduled": (
        pod(
            phase="Pending",
            conditions=[
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"},
            ],
        ),
        "0/1",
        "Pending",
        "0",
    ),
    "scheduling gated": (
        pod(
            phase="Pending",
            conditions=[
                {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"},
            ],
        ),
        "0/1",
        "SchedulingGated",
        "0",
    ),
    "container creating": (
        pod(
            containers=2,
            phase="Pending",
            statuses=[waiting("c0", "ContainerCreating"), waiting("c1", "ContainerCreating")],
        ),
        "0/2",
        "ContainerCreating",
        "0",
    ),
    "crash loop back-off": (
        pod(
            statuses=[
                waiting("c0", "CrashLoopBackOff", restarts=5, lastState=_CRASH_LAST_STATE),
            ],
        ),
        "0/1",
        "CrashLoopBackOff",
        "5 (2m ago)",
    ),
    "first container's problem wins": (
        pod(
            containers=2,
            statuses=[waiting("c0", "ImagePullBackOff"), waiting("c1", "ErrImagePull")],
        ),
        "0/2",
        "ImagePullBackOff",
        "0",
    ),
    "completed": (
        pod(phase="Succeeded", statuses=[terminated("c0", reason="Completed")]),
        "0/1",
        "Completed",
        "0",
    ),
    "failed with exit code": (
        pod(phase="Failed", statuses=[terminated("c0", exit_code=137)]),
        "0/1",
        "ExitCode:137",
        "0",
    ),
    "killed by a signal": (
        pod(phase="Failed", statuses=[terminated("c0", exit_code=137, signal=9)]),
        "0/1",
        "Signal:9",
        "0",
    ),
    "one container done, one running and ready": (
        pod(
            containers=2,
            statuses=[terminated("c0", reason="Completed"), running("c1")],
            conditions=[{"type": "Ready", "status": "True"}],
        ),
        "1/2",
        "Running",
        "0",
    ),
    "one container done, pod not ready": (
        pod(containers=2, statuses=[terminated("c0", reason="Completed"), running("c1")]),
        "1/2",
        "NotReady",
        "0",
    ),
    "terminating": (
        pod(statuses=[running("c0")], deletionTimestamp=ago(seconds=5)),
        "1/1",
        "Terminating",
        "0",
    ),
    "succeeded pods are not terminating": (
        pod(
            phase="Succeeded",
            statuses=[terminated("c0", reason="Completed")],
            deletionTimestamp=ago(seconds=5),
        ),
        "0/1",
        "Completed",
        "0",
    ),
    "init 0 of 2": (
        pod(
            init=2,
            phase="Pending",
            init_statuses=[running("i0", ready=False), waiting("i1", "PodInitializing")],
            statuses=[waiting("c0", "PodInitializing")],
        ),
        "0/1",
        "Init:0/2",
        "0",
    ),
    "init 1 of 2": (
        pod(
            init=2,
            phase="Pending",
            init_statuses=[terminated("i0", reason="Completed"), running("i1", ready=False)],
            statuses=[waiting("c0", "PodInitializing")],
        ),
        "0/1",
        "Init:1/2",
        "0",
    ),
    "init crash loop": (
        pod(
            init=1,
            phase="Pending",
            init_statuses=[
                waiting("i0", "CrashLoopBackOff", restarts=3, lastState=_CRASH_LAST_STATE),
            ],
            statuses=[waiting("c0", "PodInitializing")],
        ),
        "0/1",
        "Init:CrashLoopBackOff",
        "3 (2m ago)",
    ),
    "init failed": (
        pod(
            init=1,
            phase="Pending",
            init_statuses=[terminated("i0", reason="Error", exit_code=1)],
        ),
        "0/1",
        "Init:Error",
        "0",
    ),
    "node lost, still running": (
        pod()
        | {
            "status": {
                "phase": "Running",
                "reason": "NodeLost",
                "containerStatuses": [running("c0")],
            }
        },
        "1/1",
        "NodeLost",
        "0",
    ),
    "node lost and deleted": (
        pod(deletionTimestamp=ago(seconds=5))
        | {"status": {"phase": "Running", "reason": "NodeLost"}},
        "0/1",
        "Unknown",
        "0",
    ),
}


@pytest.mark.parametrize(("obj", "ready", "status", "restarts"), POD_CASES.values(), ids=POD_CASES)
def test_pod_status_as_kubectl_shows_it(obj: Obj, ready: str, status: str, restarts: str) -> None:
    row = cells("Pod", obj)
    assert (row["Ready"], row["Status"], row["Restarts"]) == (ready, status, restarts)


def test_pod_columns() -> None:
    assert headers("Pod") == ["NAME", "HASHKEY", "READY", "STATUS", "RESTARTS", "AGE"]
    assert headers("Pod", wide=True)[6:] == ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    definitions = {c["name"]: c for c in build("Pod", pod())["columnDefinitions"]}
    assert definitions["HashKey"]["type"] == "integer"
    assert definitions["HashKey"]["priority"] == 0
    assert definitions["Restarts"]["type"] == "string"
    assert definitions["Name"]["format"] == "name"


def test_pod_cells_wide() -> None:
    obj = pod(statuses=[running("c0")], created=ago(hours=3, minutes=2))
    obj["spec"]["nodeName"] = "node-1"
    obj["spec"]["readinessGates"] = [{"conditionType": "a"}, {"conditionType": "b"}]
    obj["status"]["podIP"] = "10.0.0.5"
    obj["status"]["podIPs"] = [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]
    obj["status"]["conditions"] = [
        {"type": "a", "status": "True"},
        {"type": "b", "status": "False"},
    ]
    assert build("Pod", obj)["rows"][0]["cells"] == [
        "web",
        1234,
        "1/1",
        "Running",
        "0",
        "3h2m",
        "10.0.0.5",
        "node-1",
        "<none>",
        "1/2",
    ]


def test_unscheduled_pod_wide_cells_say_none() -> None:
    row = cells("Pod", pod(phase="Pending"))
    assert (row["IP"], row["Node"], row["Nominated Node"], row["Readiness Gates"]) == (
        "<none>",
        "<none>",
        "<none>",
        "<none>",
    )


def test_pod_ip_falls_back_to_pod_ip_field() -> None:
    obj = pod(statuses=[running("c0")])
    obj["status"]["podIP"] = "10.0.0.9"
    assert cells("Pod", obj)["IP"] == "10.0.0.9"


def test_finished_pods_carry_a_completed_row_condition() -> None:
    done = build("Pod", pod(phase="Succeeded", statuses=[terminated("c0", reason="Completed")]))
    assert done["rows"][0]["conditions"] == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]
    failed = build("Pod", pod(phase="Failed", statuses=[terminated("c0", exit_code=1)]))
    assert failed["rows"][0]["conditions"][0]["message"] == "The pod failed."
    assert "conditions" not in build("Pod", pod(statuses=[running("c0")]))["rows"][0]


def test_sidecar_init_containers_count_as_containers() -> None:
    obj = pod(init=1, statuses=[running("c0")])
    obj["spec"]["initContainers"][0]["restartPolicy"] = "Always"
    sidecar = running("i0", restarts=2) | {
        "started": True,
        "lastState": _CRASH_LAST_STATE,
    }
    obj["status"]["initContainerStatuses"] = [sidecar]
    obj["status"]["conditions"] = [{"type": "Initialized", "status": "True"}]
    row = cells("Pod", obj)
    assert (row["Ready"], row["Status"], row["Restarts"]) == ("2/2", "Running", "2 (2m ago)")


def test_restarts_without_a_last_termination_time_have_no_suffix() -> None:
    row = cells("Pod", pod(statuses=[running("c0", restarts=4)]))
    assert row["Restarts"] == "4"


def test_restarts_add_up_and_take_the_latest_termination() -> None:
    older = {"terminated": {"exitCode": 1, "finishedAt": ago(hours=1)}}
    newer = {"terminated": {"exitCode": 1, "finishedAt": ago(seconds=40)}}
    obj = pod(
        containers=2,
        statuses=[
            running("c0", restarts=1) | {"lastState": older},
            running("c1", restarts=2) | {"lastState": newer},
        ],
    )
    assert cells("Pod", obj)["Restarts"] == "3 (40s ago)"


# --- VM pods (Arktos) ------------------------------------------------------------------


def vm_pod(*, phase: str = "Running", vm_status: Obj | None = None, **metadata: Any) -> Obj:
    obj: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta("vm1", namespace="default", hashKey=99, **metadata),
        "spec": {
            "virtualMachine": {"name": "vm1", "image": "cirros", "keyPairName": "k"},
            "nodeName": "node-1",
        },
        "status": {"phase": phase},
    }
    if vm_status is not None:
        obj["status"]["virtualMachineStatus"] = vm_status
    return obj


def test_running_vm_pod_counts_its_vm() -> None:
    status = {
        "name": "vm1",
        "state": "active",
        "powerState": "running",
        "ready": True,
        "restartCount": 2,
        "lastTerminationState": _CRASH_LAST_STATE,
    }
    row = cells("Pod", vm_pod(vm_status=status))
    assert (row["Ready"], row["Status"], row["Restarts"]) == ("1/1", "Running", "2 (2m ago)")
    assert row["HashKey"] == 99


def test_vm_pod_without_vm_status_shows_its_phase() -> None:
    row = cells("Pod", vm_pod(phase="Pending"))
    assert (row["Ready"], row["Status"], row["Restarts"]) == ("0/1", "Pending", "0")


@pytest.mark.parametrize(
    ("state", "power", "expected"),
    [
        ("stopped", "shutdown", "Stopped"),
        ("paused", "paused", "Paused"),
        ("error", "nostate", "Error"),
        ("soft-deleted", "shutdown", "SoftDeleted"),
        ("active", "crashed", "Crashed"),
        ("active", "nostate", "Running"),
    ],
)
def test_vm_pod_status_reflects_its_vm(state: str, power: str, expected: str) -> None:
    status = {"state": state, "powerState": power, "ready": False, "restartCount": 0}
    row = cells("Pod", vm_pod(vm_status=status))
    assert (row["Ready"], row["Status"]) == ("0/1", expected)


def test_deleted_vm_pod_is_terminating() -> None:
    status = {"state": "active", "powerState": "running", "ready": True}
    row = cells("Pod", vm_pod(vm_status=status, deletionTimestamp=ago(seconds=1)))
    assert row["Status"] == "Terminating"


# --- Cluster and tenant objects --------------------------------------------------------


def test_namespace() -> None:
    obj = {"metadata": meta("default", created=ago(days=2, hours=5)), "status": {"phase": "Active"}}
    assert headers("Namespace") == ["NAME", "STATUS", "AGE"]
    assert build("Namespace", obj)["rows"][0]["cells"] == ["default", "Active", "2d5h"]


def test_tenant() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Tenant",
        "metadata": meta("t1", created=ago(days=40)),
        "spec": {"finalizers": ["arktos"], "storageClusterId": "0"},
        "status": {"phase": "Terminating"},
    }
    assert headers("Tenant") == ["NAME", "STATUS", "AGE"]
    assert build("Tenant", obj)["rows"][0]["cells"] == ["t1", "Terminating", "40d"]


def node(**changes: Any) -> Obj:
    obj: Obj = {
        "metadata": meta(
            "node-1",
            created=ago(days=10),
            labels={"node-role.kubernetes.io/control-plane": "", "kubernetes.io/os": "linux"},
        ),
        "spec": {},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True"},
                {"type": "VmRuntimeReady", "status": "True"},
            ],
            "addresses": [
                {"type": "Hostname", "address": "node-1"},
                {"type": "InternalIP", "address": "192.168.1.10"},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0-18-amd64",
                "containerRuntimeVersion": "containerd://1.6.20",
            },
        },
    }
    obj.update(changes)
    return obj


def test_node() -> None:
    assert headers("Node") == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert build("Node", node())["rows"][0]["cells"] == [
        "node-1",
        "Ready",
        "control-plane",
        "10d",
        "v1.32.0",
        "192.168.1.10",
        "<none>",
        "Debian GNU/Linux 12 (bookworm)",
        "6.1.0-18-amd64",
        "containerd://1.6.20",
    ]
    assert headers("Node", wide=True)[5:] == [
        "INTERNAL-IP",
        "EXTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ]


def test_cordoned_node_and_roles() -> None:
    obj = node(spec={"unschedulable": True})
    obj["metadata"]["labels"] = {
        "node-role.kubernetes.io/worker": "",
        "node-role.kubernetes.io/control-plane": "",
        "kubernetes.io/role": "edge",
    }
    row = cells("Node", obj)
    assert row["Status"] == "Ready,SchedulingDisabled"
    assert row["Roles"] == "control-plane,edge,worker"


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ([{"type": "Ready", "status": "False"}], "NotReady"),
        ([{"type": "Ready", "status": "Unknown"}], "NotReady"),
        ([], "Unknown"),
    ],
)
def test_node_not_ready(conditions: list[Obj], expected: str) -> None:
    obj = node()
    obj["status"] = {"conditions": conditions}
    obj["metadata"]["labels"] = {}
    row = cells("Node", obj)
    assert (row["Status"], row["Roles"], row["Version"]) == (expected, "<none>", "")
    assert (row["OS-Image"], row["Internal-IP"]) == ("<unknown>", "<none>")


def test_controller_instance() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ControllerInstance",
        "metadata": meta("replicaset-5f1c", created=ago(seconds=30)),
        "controllerType": "ReplicaSet",
        "controllerKey": 9223372036854775807,
        "workloadNum": 3,
        "isLocked": False,
    }
    assert headers("ControllerInstance") == [
        "NAME",
        "TYPE",
        "KEY",
        "RANGE",
        "WORKLOAD",
        "LOCKED",
        "AGE",
    ]
    assert build("ControllerInstance", obj)["rows"][0]["cells"] == [
        "replicaset-5f1c",
        "ReplicaSet",
        9223372036854775807,
        "<unknown>",
        3,
        False,
        "30s",
    ]
    types = [c["type"] for c in build("ControllerInstance", obj)["columnDefinitions"]]
    assert types == ["string", "string", "integer", "string", "integer", "boolean", "string"]
    obj["metadata"]["annotations"] = {
        "controllers.arktos.futurewei.com/range": "(4611686018427387904, 9223372036854775807]"
    }
    cells = build("ControllerInstance", obj)["rows"][0]["cells"]
    assert cells[3] == "(4611686018427387904, 9223372036854775807]"


@pytest.mark.parametrize(
    ("spec_key", "operation"),
    [
        ("rebootAction", "Reboot"),
        ("snapshotAction", "Snapshot"),
        ("restoreAction", "Restore"),
    ],
)
def test_action(spec_key: str, operation: str) -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Action",
        "metadata": meta("reboot-1714564800", namespace="default", created=ago(minutes=1)),
        "spec": {"nodeName": "node-1", "podName": "vm1", "podID": "uid", spec_key: {}},
        "status": {"complete": True, "podName": "vm1"},
    }
    assert headers("Action") == ["NAME", "OPERATION", "POD", "NODE", "COMPLETE", "AGE"]
    assert build("Action", obj)["rows"][0]["cells"] == [
        "reboot-1714564800",
        operation,
        "vm1",
        "node-1",
        True,
        "60s",
    ]


def test_new_action_is_not_complete() -> None:
    obj = {"metadata": meta("reboot-1"), "spec": {"podName": "vm1", "rebootAction": {}}}
    row = cells("Action", obj)
    assert (row["Node"], row["Complete"]) == ("<none>", False)


# --- Configuration ---------------------------------------------------------------------


def test_config_map_counts_data_and_binary_data() -> None:
    obj = {
        "metadata": meta("cfg", namespace="default"),
        "data": {"a": "1", "b": "2"},
        "binaryData": {"c": "AAE="},
    }
    assert headers("ConfigMap") == ["NAME", "DATA", "AGE"]
    assert build("ConfigMap", obj)["rows"][0]["cells"] == ["cfg", 3, "3d"]


def test_secret() -> None:
    obj = {
        "metadata": meta("tls", namespace="default"),
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "Y3J0", "tls.key": "a2V5"},
    }
    assert headers("Secret") == ["NAME", "TYPE", "DATA", "AGE"]
    assert build("Secret", obj)["rows"][0]["cells"] == ["tls", "kubernetes.io/tls", 2, "3d"]


def test_service_account() -> None:
    obj = {"metadata": meta("default", namespace="default"), "secrets": [{"name": "tok"}]}
    assert headers("ServiceAccount") == ["NAME", "SECRETS", "AGE"]
    assert build("ServiceAccount", obj)["rows"][0]["cells"] == ["default", 1, "3d"]
    assert cells("ServiceAccount", {"metadata": meta("b")})["Secrets"] == 0


def test_lease() -> None:
    obj = {"metadata": meta("kube-scheduler"), "spec": {"holderIdentity": "sched-1_abc"}}
    assert headers("Lease", group="coordination.k8s.io") == ["NAME", "HOLDER", "AGE"]
    row = build("Lease", obj, group="coordination.k8s.io")["rows"][0]
    assert row["cells"] == ["kube-scheduler", "sched-1_abc", "3d"]
    assert cells("Lease", {"metadata": meta("x")}, group="coordination.k8s.io")["Holder"] == ""


# --- Workloads -------------------------------------------------------------------------

TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {
        "containers": [
            {"name": "web", "image": "nginx:1.25"},
            {"name": "log", "image": "busybox"},
        ]
    },
}


def test_deployment() -> None:
    obj = {
        "metadata": meta("web", namespace="default"),
        "spec": {
            "replicas": 3,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}],
            },
            "template": TEMPLATE,
        },
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert headers("Deployment", group="apps") == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
    ]
    assert build("Deployment", obj, group="apps")["rows"][0]["cells"] == [
        "web",
        "2/3",
        3,
        2,
        "3d",
        "web,log",
        "nginx:1.25,busybox",
        "app=web,tier in (a,b)",
    ]


def test_new_deployment_defaults() -> None:
    obj = {"metadata": meta("web"), "spec": {"template": TEMPLATE}}
    row = cells("Deployment", obj, group="apps")
    assert (row["Ready"], row["Up-to-date"], row["Available"], row["Selector"]) == (
        "0/1",
        0,
        0,
        "",
    )


def test_replica_set() -> None:
    obj = {
        "metadata": meta("web-5d4f8", namespace="default"),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
        "status": {"replicas": 3, "readyReplicas": 1},
    }
    assert headers("ReplicaSet", group="apps", wide=True) == [
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    assert build("ReplicaSet", obj, group="apps")["rows"][0]["cells"] == [
        "web-5d4f8",
        3,
        3,
        1,
        "3d",
        "web,log",
        "nginx:1.25,busybox",
        "app=web",
    ]
    empty = {"metadata": meta("x"), "spec": {"replicas": 0, "selector": {}}}
    row = cells("ReplicaSet", empty, group="apps")
    assert (row["Desired"], row["Containers"], row["Selector"]) == (0, "", "<none>")


# --- Networking ------------------------------------------------------------------------


def service(spec: Obj, status: Obj | None = None) -> Obj:
    return {"metadata": meta("web", namespace="default"), "spec": spec, "status": status or {}}


def test_service_cluster_ip() -> None:
    obj = service(
        {
            "type": "ClusterIP",
            "clusterIP": "10.0.0.10",
            "clusterIPs": ["10.0.0.10"],
            "ports": [
                {"port": 80, "protocol": "TCP", "targetPort": 8080},
                {"port": 53, "protocol": "UDP"},
            ],
            "selector": {"tier": "front", "app": "web"},
        }
    )
    assert headers("Service") == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert build("Service", obj)["rows"][0]["cells"] == [
        "web",
        "ClusterIP",
        "10.0.0.10",
        "<none>",
        "80/TCP,53/UDP",
        "3d",
        "app=web,tier=front",
    ]


def test_service_node_port() -> None:
    obj = service(
        {
            "type": "NodePort",
            "clusterIP": "10.0.0.11",
            "ports": [{"port": 80, "nodePort": 0}, {"port": 443, "nodePort": 30443}],
            "externalIPs": ["1.2.3.4"],
        }
    )
    row = cells("Service", obj)
    assert (row["Cluster-IP"], row["External-IP"], row["Port(s)"], row["Selector"]) == (
        "10.0.0.11",
        "1.2.3.4",
        "80/TCP,443:30443/TCP",
        "<none>",
    )


def test_service_load_balancer() -> None:
    spec = {"type": "LoadBalancer", "clusterIP": "10.0.0.12", "ports": [{"port": 80}]}
    assert cells("Service", service(spec))["External-IP"] == "<pending>"
    status = {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}, {"ip": "5.6.7.8"}]}}
    row = cells("Service", service(spec | {"externalIPs": ["1.2.3.4"]}, status))
    assert row["External-IP"] == "5.6.7.8,lb.example.com,1.2.3.4"


def test_headless_and_external_name_services() -> None:
    headless = cells("Service", service({"type": "ClusterIP", "clusterIP": "None"}))
    assert (headless["Cluster-IP"], headless["Port(s)"]) == ("None", "<none>")
    external = cells("Service", service({"type": "ExternalName", "externalName": "db.example"}))
    assert (external["Cluster-IP"], external["External-IP"]) == ("<none>", "db.example")


def test_endpoints() -> None:
    obj = {
        "metadata": meta("web", namespace="default"),
        "subsets": [
            {
                "addresses": [{"ip": "10.1.0.1"}, {"ip": "10.1.0.2"}],
                "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
            },
            {"addresses": [{"ip": "fd00::3"}], "ports": [{"port": 80}]},
        ],
    }
    assert headers("Endpoints") == ["NAME", "ENDPOINTS", "AGE"]
    row = cells("Endpoints", obj)
    assert row["Endpoints"] == "10.1.0.1:80,10.1.0.2:80,10.1.0.1:443 + 2 more..."


@pytest.mark.parametrize(
    ("subsets", "expected"),
    [
        ([], "<none>"),
        ([{"addresses": [{"ip": "fd00::3"}], "ports": [{"port": 80}]}], "[fd00::3]:80"),
        ([{"addresses": [{"ip": "10.1.0.1"}, {"ip": "10.1.0.2"}]}], "10.1.0.1,10.1.0.2"),
        ([{"notReadyAddresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 80}]}], ""),
        (
            [{"addresses": [{"ip": f"10.1.0.{i}"} for i in range(3)], "ports": [{"port": 8}]}],
            "10.1.0.0:8,10.1.0.1:8,10.1.0.2:8",
        ),
    ],
)
def test_endpoints_formats(subsets: list[Obj], expected: str) -> None:
    obj = {"metadata": meta("web"), "subsets": subsets}
    assert cells("Endpoints", obj)["Endpoints"] == expected


# --- Events ----------------------------------------------------------------------------


def event(**fields: Any) -> Obj:
    obj: Obj = {
        "metadata": meta("web.17c1", namespace="default"),
        "involvedObject": {
            "kind": "Pod",
            "name": "web",
            "namespace": "default",
            "fieldPath": "spec.containers{web}",
        },
        "reason": "BackOff",
        "message": "Back-off restarting failed container\n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(minutes=30),
        "lastTimestamp": ago(seconds=45),
        "count": 6,
        "type": "Warning",
    }
    obj.update(fields)
    return obj


def test_event() -> None:
    assert headers("Event") == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert headers("Event", wide=True) == [
        "LAST SEEN",
        "TYPE",
        "REASON",
        "OBJECT",
        "SUBOBJECT",
        "SOURCE",
        "MESSAGE",
        "FIRST SEEN",
        "COUNT",
        "NAME",
    ]
    assert build("Event", event())["rows"][0]["cells"] == [
        "45s",
        "Warning",
        "BackOff",
        "pod/web",
        "spec.containers{web}",
        "kubelet, node-1",
        "Back-off restarting failed container",
        "30m",
        6,
        "web.17c1",
    ]


def test_event_of_the_new_api() -> None:
    obj = event(
        firstTimestamp=None,
        lastTimestamp=None,
        count=0,
        eventTime="2024-05-01T11:59:50.123456Z",
        source={},
        reportingComponent="default-scheduler",
        reportingInstance="",
        involvedObject={"kind": "Node"},
    )
    row = cells("Event", obj)
    assert (row["Last Seen"], row["First Seen"], row["Count"]) == ("9s", "9s", 1)
    assert (row["Source"], row["Object"]) == ("default-scheduler", "node")


def test_event_series() -> None:
    obj = event(series={"count": 12, "lastObservedTime": "2024-05-01T11:58:00.000000Z"})
    row = cells("Event", obj)
    assert (row["Last Seen"], row["Count"]) == ("2m", 12)


# --- Everything else -------------------------------------------------------------------


def test_kinds_without_a_printer_get_name_and_created_at() -> None:
    storage_clusters = resources.Resource(
        "", "v1", "StorageCluster", "storageclusters", resources.Scope.CLUSTER
    )
    obj = {"metadata": {"name": "p0", "creationTimestamp": "2024-04-28T12:00:00Z"}}
    result = tables.table(storage_clusters, [obj, {"metadata": {"name": "p1"}}], now=NOW)
    definitions = result["columnDefinitions"]
    assert [(c["name"], c["type"], c["format"]) for c in definitions] == [
        ("Name", "string", "name"),
        ("Created At", "date", ""),
    ]
    # kubectl prints these cells as they are: an RFC 3339 time, not an age.
    assert [r["cells"] for r in result["rows"]] == [
        ["p0", "2024-04-28T12:00:00Z"],
        ["p1", "0001-01-01T00:00:00Z"],
    ]


def test_created_at_is_in_utc() -> None:
    partitions = resources.Resource("", "v1", "Thing", "things", resources.Scope.CLUSTER)
    obj = {"metadata": {"name": "x", "creationTimestamp": "2024-04-28T14:00:00+02:00"}}
    row = tables.table(partitions, [obj], now=NOW)["rows"][0]
    assert row["cells"] == ["x", "2024-04-28T12:00:00Z"]


def test_endpoint_slices_show_ports_and_endpoints() -> None:
    resource = REGISTRY.get("discovery.k8s.io", "v1", "endpointslices")
    assert resource is not None
    slice_ = {
        "metadata": {"name": "web-abcde", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80}, {"name": "named"}],
        "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(5)],
    }
    empty = {"metadata": {"name": "none"}, "addressType": "IPv4"}
    found = tables.table(resource, [slice_, empty], now=NOW)
    assert [c["name"] for c in found["columnDefinitions"]] == [
        "Name",
        "AddressType",
        "Ports",
        "Endpoints",
        "Age",
    ]
    assert found["rows"][0]["cells"][:4] == [
        "web-abcde",
        "IPv4",
        "80,named",
        "10.0.0.0,10.0.0.1,10.0.0.2 + 2 more...",
    ]
    assert found["rows"][1]["cells"][2:4] == ["<unset>", "<unset>"]
