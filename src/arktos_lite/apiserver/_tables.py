"""Server-side printing: the `meta.k8s.io/v1` Tables that `kubectl get` asks for.

kubectl prints whatever cells the server sends; it only hides columns of priority above 0
unless `-o wide`, prefixes the column of format `name` with `kind/` for `--show-kind`, and
adds NAMESPACE itself for `-A`. So this module decides what users see:

* Every built-in kind gets kube-apiserver 1.32's columns (names, types, formats,
  priorities) and cells computed by the same rules, always the wide set, as kube-apiserver
  does. Ages are strings the server computes (`duration.HumanDuration` rules: "59s",
  "3m12s", "3h2m", "2d5h", "2y10d"), so `now` is injectable.
* Arktos's additions: a HashKey column for pods, printers for Tenant, ControllerInstance,
  DataPartitionConfig and Action, VM pods counted and described by their VM, and a first
  Tenant column when listing across tenants.
* Custom resources get apiextensions-apiserver's table convertor: Name, then their CRD
  version's `additionalPrinterColumns` (or Age if it has none). A cell is the column's
  JSONPath's first result, typed as the column says: integers, numbers and booleans as
  JSON values, dates as ages, strings as client-go's JSONPath prints them (objects and
  lists as JSON); null where nothing is found or the value does not fit the type.
* Any other kind (CustomResourceDefinitions too) gets the default table convertor's Name
  and "Created At" (type `date`, an RFC 3339 UTC string that kubectl prints as it is).

Pure functions over plain dicts; no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from arktos_lite.api import (
    _customresources as customresources,
    _errors as errors,
    _jsonpath as jsonpath,
    _resources as resources,
    _selectors as selectors,
    _timestamps as timestamps,
)

Obj = dict[str, Any]
Cells = list[Any]

INCLUDE_NONE = "None"
INCLUDE_METADATA = "Metadata"
INCLUDE_OBJECT = "Object"

_UTC = datetime.UTC


@dataclasses.dataclass(frozen=True, slots=True)
class Column:
    """One `TableColumnDefinition`; priority 0 shows by default, above 0 with `-o wide`."""

    name: str
    type: str = "string"
    description: str = ""
    format: str = ""
    priority: int = 0

    def definition(self) -> Obj:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class _Printer:
    columns: tuple[Column, ...]
    cells: Callable[[Mapping[str, Any], datetime.datetime], Cells]
    # Row conditions (kube-apiserver marks finished pods `Completed`).
    conditions: Callable[[Mapping[str, Any]], list[Obj]] | None = None


# --- Durations and timestamps ---------------------------------------------------------

_US_PER_SECOND = 1_000_000
_US_PER_MINUTE = 60 * _US_PER_SECOND
_US_PER_HOUR = 60 * _US_PER_MINUTE


def human_duration(delta: datetime.timedelta) -> str:
    """A duration as kubectl shows ages: about 2-3 significant figures.

    The rules of apimachinery's `duration.HumanDuration`: seconds below 2 minutes,
    minutes and seconds below 10 minutes, minutes below 3 hours, hours and minutes below
    8 hours, hours below 2 days, days and hours below 8 days, days below 2 years, years
    and days below 8 years, then years. Up to a second in the future reads "0s" (clock
    skew); further is "<invalid>".
    """
    micros = delta // datetime.timedelta(microseconds=1)
    # Go truncates toward zero here: -1.5s is -1s, still "almost now".
    seconds = micros // _US_PER_SECOND if micros >= 0 else -(-micros // _US_PER_SECOND)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = micros // _US_PER_MINUTE
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 3 * 60:
        return f"{minutes}m"
    hours = micros // _US_PER_HOUR
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        rest = days % 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"


def _since(value: Any, now: datetime.datetime) -> str:
    """`translateTimestampSince`: an age, or "<unknown>" for the zero time."""
    moment = timestamps.parse(value)
    if moment is None:
        return "<unknown>"
    return human_duration(now - moment)


def _rfc3339(value: Any) -> str:
    """A timestamp as Go formats `time.RFC3339` in UTC; the zero time if unset."""
    moment = timestamps.parse(value)
    if moment is None:
        return "0001-01-01T00:00:00Z"
    moment = moment.astimezone(_UTC)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z"
    )


# --- Reading plain JSON objects --------------------------------------------------------


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _maps(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in _seq(value) if isinstance(item, Mapping)]


def _present(parent: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    """A sub-object that is set, even if empty: Go's non-nil pointer."""
    value = parent.get(key)
    return value if isinstance(value, Mapping) else None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return value


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(obj.get("metadata"))


def _name(obj: Mapping[str, Any]) -> str:
    return _str(_metadata(obj).get("name"))


def _age(obj: Mapping[str, Any], now: datetime.datetime) -> str:
    return _since(_metadata(obj).get("creationTimestamp"), now)


def _condition(conditions: Any, kind: str) -> Mapping[str, Any] | None:
    return next((c for c in _maps(conditions) if c.get("type") == kind), None)


def _format_labels(labels: Any) -> str:
    """`labels.FormatLabels`: `k=v` sorted by key, comma-joined; "<none>" if empty."""
    pairs = sorted((str(k), str(v)) for k, v in _map(labels).items())
    return ",".join(f"{k}={v}" for k, v in pairs) or "<none>"


def _selector_string(selector: Any) -> str | None:
    """A structured label selector as `LabelSelectorAsSelector(...).String()`.

    None if the selector is invalid; "" for a missing or empty one.
    """
    if selector is None:
        return ""
    try:
        return str(selectors.LabelSelector.from_dict(_map(selector)))
    except (ValueError, errors.StatusError):
        return None


def _format_selector(selector: Any) -> str:
    """`metav1.FormatLabelSelector`: "<none>" if empty, "<error>" if invalid."""
    text = _selector_string(selector)
    if text is None:
        return "<error>"
    return text or "<none>"


def _container_cells(template: Any) -> tuple[str, str]:
    """Container names and images of a pod template, comma-joined."""
    containers = _maps(_map(_map(template).get("spec")).get("containers"))
    names = ",".join(_str(c.get("name")) for c in containers)
    images = ",".join(_str(c.get("image")) for c in containers)
    return names, images


def _camel(word: str) -> str:
    """`soft-deleted` -> `SoftDeleted`: a VM state or power state as a pod status."""
    parts = word.replace("-", "_").replace(" ", "_").split("_")
    return "".join(part[:1].upper() + part[1:] for part in parts if part)


# --- Descriptions (kube-apiserver's, from the API documentation) ----------------------

_D_NAME = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_D_CREATED = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is "
    "in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
    "#metadata"
)
_D_CONTAINERS = "Names of each container in the template."
_D_IMAGES = "Images referenced by each container in the template."

_NAME = Column("Name", description=_D_NAME, format="name")
_AGE = Column("Age", description=_D_CREATED)
_TENANT = Column("Tenant", description="The tenant the object belongs to.")


# --- Pods ------------------------------------------------------------------------------

_NODE_UNREACHABLE_REASON = "NodeLost"
_TERMINAL_PHASES = ("Succeeded", "Failed")

_POD_COLUMNS = (
    _NAME,
    Column(
        "HashKey",
        "integer",
        "Arktos hash key of the object: FNV-64a of its uid, in [0, 2^63-1]; controller "
        "instances own ranges of it.",
    ),
    Column("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", description="The aggregate status of the containers in this pod."),
    Column(
        "Restarts",
        description="The number of times the containers in this pod have been restarted and "
        "when the last container in this pod has restarted.",
    ),
    _AGE,
    Column(
        "IP",
        description="podIP address allocated to the pod. Routable at least within the "
        "cluster. Empty if not yet allocated.",
        priority=1,
    ),
    Column(
        "Node",
        description="NodeName indicates in which node this pod is scheduled. If empty, this "
        "pod is a candidate for scheduling by the scheduler defined in schedulerName.",
        priority=1,
    ),
    Column(
        "Nominated Node",
        description="nominatedNodeName is set only when this pod preempts other pods on the "
        "node, but it cannot be scheduled right away as preemption victims receive their "
        "graceful termination periods.",
        priority=1,
    ),
    Column(
        "Readiness Gates",
        description="If specified, all readiness gates will be evaluated for pod readiness. "
        "A pod is ready when all its containers are ready AND all conditions specified in "
        'the readiness gates have status equal to "True"',
        priority=1,
    ),
)


class _Restarts:
    """A restart count and the latest time a container (or VM) finished before one."""

    def __init__(self) -> None:
        self.count = 0
        self.last: datetime.datetime | None = None

    def add(self, count: Any, last_state: Any) -> None:
        self.count += _int(count)
        terminated = _present(_map(last_state), "terminated")
        if terminated is None:
            return
        finished = timestamps.parse(terminated.get("finishedAt"))
        if finished is not None and (self.last is None or finished > self.last):
            self.last = finished

    def cell(self, now: datetime.datetime) -> str:
        if self.count and self.last is not None:
            return f"{self.count} ({human_duration(now - self.last)} ago)"
        return str(self.count)


def _terminated_reason(terminated: Mapping[str, Any], prefix: str = "") -> str:
    reason = _str(terminated.get("reason"))
    if reason:
        return prefix + reason
    signal = _int(terminated.get("signal"))
    if signal:
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{_int(terminated.get('exitCode'))}"


def _vm_reason(vm_status: Mapping[str, Any], reason: str) -> str:
    """The status of a VM pod without containers: its VM's state when not plainly running."""
    state = _str(vm_status.get("state"))
    power = _str(vm_status.get("powerState"))
    if state and state != "active":
        return _camel(state)
    if power and power not in ("running", "nostate"):
        return _camel(power)
    return reason


def _pod_cells(pod: Mapping[str, Any], now: datetime.datetime) -> Cells:
    """The pod row as kubectl 1.32 shows it (`printPod`), plus Arktos's hash key and VMs."""
    meta = _metadata(pod)
    spec = _map(pod.get("spec"))
    status = _map(pod.get("status"))
    conditions = status.get("conditions")

    init_specs = _maps(spec.get("initContainers"))
    sidecars = {_str(c.get("name")) for c in init_specs if c.get("restartPolicy") == "Always"}
    vm = _present(spec, "virtualMachine")
    total = len(_seq(spec.get("containers"))) + len(sidecars) + (1 if vm is not None else 0)
    ready = 0

    phase = _str(status.get("phase"))
    reason = _str(status.get("reason")) or phase
    scheduled = _condition(conditions, "PodScheduled")
    if scheduled is not None and scheduled.get("reason") == "SchedulingGated":
        reason = "SchedulingGated"

    restarts = _Restarts()
    sidecar_restarts = _Restarts()
    initializing = False
    for index, container in enumerate(_maps(status.get("initContainerStatuses"))):
        restarts.add(container.get("restartCount"), container.get("lastState"))
        is_sidecar = _str(container.get("name")) in sidecars
        if is_sidecar:
            sidecar_restarts.add(container.get("restartCount"), container.get("lastState"))
        state = _map(container.get("state"))
        terminated = _present(state, "terminated")
        waiting = _present(state, "waiting")
        if terminated is not None and _int(terminated.get("exitCode")) == 0:
            continue
        if is_sidecar and container.get("started") is True:
            if container.get("ready") is True:
                ready += 1
            continue
        if terminated is not None:
            reason = _terminated_reason(terminated, "Init:")
        elif waiting is not None and _str(waiting.get("reason")) not in ("", "PodInitializing"):
            reason = "Init:" + _str(waiting.get("reason"))
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break

    initialized = _condition(conditions, "Initialized")
    if not initializing or (initialized is not None and initialized.get("status") == "True"):
        # Once initialized, of the init containers only sidecars' restarts still count.
        restarts = sidecar_restarts
        has_running = False
        container_statuses = _maps(status.get("containerStatuses"))
        # Backwards, so the first container's problem is the one shown.
        for container in reversed(container_statuses):
            restarts.add(container.get("restartCount"), container.get("lastState"))
            state = _map(container.get("state"))
            terminated = _present(state, "terminated")
            waiting = _present(state, "waiting")
            if waiting is not None and _str(waiting.get("reason")):
                reason = _str(waiting.get("reason"))
            elif terminated is not None:
                reason = _terminated_reason(terminated)
            elif container.get("ready") is True and _present(state, "running") is not None:
                has_running = True
                ready += 1
        vm_status = _present(status, "virtualMachineStatus")
        if vm is not None and vm_status is not None:
            restarts.add(vm_status.get("restartCount"), vm_status.get("lastTerminationState"))
            if vm_status.get("ready") is True:
                ready += 1
            if not container_statuses:
                reason = _vm_reason(vm_status, reason)
        if reason == "Completed" and has_running:
            pod_ready = _condition(conditions, "Ready")
            running = pod_ready is not None and pod_ready.get("status") == "True"
            reason = "Running" if running else "NotReady"

    if meta.get("deletionTimestamp") is not None:
        if status.get("reason") == _NODE_UNREACHABLE_REASON:
            reason = "Unknown"
        elif phase not in _TERMINAL_PHASES:
            reason = "Terminating"

    pod_ips = _maps(status.get("podIPs"))
    pod_ip = _str(pod_ips[0].get("ip")) if pod_ips else _str(status.get("podIP"))
    gates = _maps(spec.get("readinessGates"))
    gates_cell = "<none>"
    if gates:
        true_gates = 0
        for gate in gates:
            found = _condition(conditions, _str(gate.get("conditionType")))
            if found is not None and found.get("status") == "True":
                true_gates += 1
        gates_cell = f"{true_gates}/{len(gates)}"

    return [
        _name(pod),
        _int(meta.get("hashKey")),
        f"{ready}/{total}",
        reason,
        restarts.cell(now),
        _age(pod, now),
        pod_ip or "<none>",
        _str(spec.get("nodeName")) or "<none>",
        _str(status.get("nominatedNodeName")) or "<none>",
        gates_cell,
    ]


def _pod_conditions(pod: Mapping[str, Any]) -> list[Obj]:
    phase = _map(pod.get("status")).get("phase")
    if phase == "Succeeded":
        message = "The pod has completed successfully."
    elif phase == "Failed":
        message = "The pod failed."
    else:
        return []
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


# --- Cluster and tenant objects --------------------------------------------------------


def _phase_cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
    return [_name(obj), _str(_map(obj.get("status")).get("phase")), _age(obj, now)]


_NAMESPACE_COLUMNS = (_NAME, Column("Status", description="The status of the namespace"), _AGE)
_TENANT_COLUMNS = (_NAME, Column("Status", description="The status of the tenant"), _AGE)

_NODE_ROLE_PREFIX = "node-role.kubernetes.io/"
_NODE_ROLE_LABEL = "kubernetes.io/role"

_NODE_COLUMNS = (
    _NAME,
    Column("Status", description="The status of the node"),
    Column("Roles", description="The roles of the node"),
    _AGE,
    Column("Version", description="Kubelet Version reported by the node."),
    Column("Internal-IP", description="List of addresses reachable to the node.", priority=1),
    Column("External-IP", description="List of addresses reachable to the node.", priority=1),
    Column(
        "OS-Image",
        description="OS Image reported by the node from /etc/os-release (e.g. Debian "
        "GNU/Linux 7 (wheezy)).",
        priority=1,
    ),
    Column(
        "Kernel-Version",
        description="Kernel Version reported by the node from 'uname -r' (e.g. "
        "3.16.0-0.bpo.4-amd64).",
        priority=1,
    ),
    Column(
        "Container-Runtime",
        description="ContainerRuntime Version reported by the node through runtime remote "
        "API (e.g. containerd://1.4.2).",
        priority=1,
    ),
)


def _node_address(status: Mapping[str, Any], kind: str) -> str:
    for address in _maps(status.get("addresses")):
        if address.get("type") == kind:
            return _str(address.get("address"))
    return "<none>"


def _node_cells(node: Mapping[str, Any], now: datetime.datetime) -> Cells:
    status = _map(node.get("status"))
    ready = _condition(status.get("conditions"), "Ready")
    if ready is None:
        words = ["Unknown"]
    else:
        words = ["Ready" if ready.get("status") == "True" else "NotReady"]
    if _map(node.get("spec")).get("unschedulable") is True:
        words.append("SchedulingDisabled")
    roles: set[str] = set()
    for key, value in _map(_metadata(node).get("labels")).items():
        if key.startswith(_NODE_ROLE_PREFIX) and key != _NODE_ROLE_PREFIX:
            roles.add(key.removeprefix(_NODE_ROLE_PREFIX))
        elif key == _NODE_ROLE_LABEL and value:
            roles.add(str(value))
    info = _map(status.get("nodeInfo"))
    return [
        _name(node),
        ",".join(words),
        ",".join(sorted(roles)) or "<none>",
        _age(node, now),
        _str(info.get("kubeletVersion")),
        _node_address(status, "InternalIP"),
        _node_address(status, "ExternalIP"),
        _str(info.get("osImage")) or "<unknown>",
        _str(info.get("kernelVersion")) or "<unknown>",
        _str(info.get("containerRuntimeVersion")) or "<unknown>",
    ]


_CONTROLLER_INSTANCE_COLUMNS = (
    _NAME,
    Column("Type", description="The type of controller this instance runs."),
    Column(
        "Key",
        "integer",
        "The inclusive upper bound of the hash key range this instance owns.",
    ),
    Column(
        "Range",
        description="The hash key range the instance handles now (empty while it waits "
        "for a hand-over).",
    ),
    Column("Workload", "integer", "The number of workload objects assigned to this instance."),
    Column("Locked", "boolean", "Whether the instance is locked."),
    _AGE,
)

# Where a workload controller instance publishes the range it handles at the moment.
_HELD_RANGE_ANNOTATION = "controllers.arktos.futurewei.com/range"


def _controller_instance_cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
    return [
        _name(obj),
        _str(obj.get("controllerType")),
        _int(obj.get("controllerKey")),
        _str(_map(_metadata(obj).get("annotations")).get(_HELD_RANGE_ANNOTATION)) or "<unknown>",
        _int(obj.get("workloadNum")),
        obj.get("isLocked") is True,
        _age(obj, now),
    ]


# An API server's data partition: the tenants it holds, [start, end), empty = unbounded.
_DATA_PARTITION_CONFIG_COLUMNS = (
    _NAME,
    Column("Range Start", description="The first tenant name of the partition (inclusive)."),
    Column("Range End", description="The tenant name where the partition ends (exclusive)."),
    Column("Service Group", description="The service group id of the partition's API servers."),
)
_UNBOUNDED = "<unbounded>"


def _data_partition_config_cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
    start = _str(obj.get("rangeStart")) if obj.get("isRangeStartValid") is True else ""
    end = _str(obj.get("rangeEnd")) if obj.get("isRangeEndValid") is True else ""
    return [
        _name(obj),
        start or _UNBOUNDED,
        end or _UNBOUNDED,
        _str(obj.get("serviceGroupId")),
    ]


# --- Configuration and workloads -------------------------------------------------------

_CONFIG_MAP_COLUMNS = (
    _NAME,
    Column("Data", description="Data contains the configuration data."),
    _AGE,
)


def _config_map_cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
    count = len(_map(obj.get("data"))) + len(_map(obj.get("binaryData")))
    return [_name(obj), count, _age(obj, now)]


_SECRET_COLUMNS = (
    _NAME,
    Column("Type", description="Used to facilitate programmatic handling of secret data."),
    Column("Data", description="Data contains the secret data."),
    _AGE,
)


def _secret_cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
    return [_name(obj), _str(obj.get("type")), len(_map(obj.get("data"))), _age(obj, now)]


_SERVICE_ACCOUNT_COLUMNS = (
    _NAME,
    Column(
        "Secrets",
        description="Secrets is a list of the secrets in the same namespace that pods running "
        "using this ServiceAccount are allowed to use.",
    ),
    _AGE,
)


def _service_account_cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
    return [_name(obj), len(_seq(obj.get("secrets"))), _age(obj, now)]


_DEPLOYMENT_COLUMNS = (
    _NAME,
    Column("Ready", description="Number of the pod with ready state"),
    Column(
        "Up-to-date",
        description="Total number of non-terminated pods targeted by this deployment that "
        "have the desired template spec.",
    ),
    Column(
        "Available",
        description="Total number of available pods (ready for at least minReadySeconds) "
        "targeted by this deployment.",
    ),
    _AGE,
    Column("Containers", description=_D_CONTAINERS, priority=1),
    Column("Images", description=_D_IMAGES, priority=1),
    Column("Selector", description="Label selector for pods.", priority=1),
)


def _replicas(spec: Mapping[str, Any]) -> int:
    # The API server defaults a missing spec.replicas to 1.
    return _int(spec.get("replicas"), 1)


def _deployment_cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
    spec = _map(obj.get("spec"))
    status = _map(obj.get("status"))
    names, images = _container_cells(spec.get("template"))
    selector = _selector_string(spec.get("selector"))
    return [
        _name(obj),
        f"{_int(status.get('readyReplicas'))}/{_replicas(spec)}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        _age(obj, now),
        names,
        images,
        "<invalid>" if selector is None else selector,
    ]


_REPLICA_SET_COLUMNS = (
    _NAME,
    Column("Desired", "integer", "Replicas is the number of desired replicas."),
    Column("Current", "integer", "Replicas is the most recently observed number of replicas."),
    Column(
        "Ready",
        "integer",
        "readyReplicas is the number of pods targeted by this ReplicaSet with a Ready Condition.",
    ),
    _AGE,
    Column("Containers", description=_D_CONTAINERS, priority=1),
    Column("Images", description=_D_IMAGES, priority=1),
    Column(
        "Selector",
        description="Selector is a label query over pods that should match the replica count.",
        priority=1,
    ),
)


def _replica_set_cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
    spec = _map(obj.get("spec"))
    status = _map(obj.get("status"))
    names, images = _container_cells(spec.get("template"))
    return [
        _name(obj),
        _replicas(spec),
        _int(status.get("replicas")),
        _int(status.get("readyReplicas")),
        _age(obj, now),
        names,
        images,
        _format_selector(spec.get("selector")),
    ]


_ACTION_OPERATIONS = (
    ("rebootAction", "Reboot"),
    ("snapshotAction", "Snapshot"),
    ("restoreAction", "Restore"),
)

_ACTION_COLUMNS = (
    _NAME,
    Column("Operation", description="The operation the action performs on its pod."),
    Column("Pod", description="The pod for which this action was created."),
    Column("Node", description="The node of the pod the action runs on."),
    Column("Complete", "boolean", "Whether the action has completed."),
    _AGE,
)


def _action_cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
    spec = _map(obj.get("spec"))
    operation = next((word for key, word in _ACTION_OPERATIONS if key in spec), "<none>")
    return [
        _name(obj),
        operation,
        _str(spec.get("podName")) or "<none>",
        _str(spec.get("nodeName")) or "<none>",
        _map(obj.get("status")).get("complete") is True,
        _age(obj, now),
    ]


# Arktos's tenant networks (arktos.futurewei.com/v1)
_NETWORK_COLUMNS = (
    _NAME,
    Column("Type", description="The network's type: flat, vpc or mizar."),
    Column("VPC", description="The VPC of the network provider."),
    Column("Phase", description="The network's lifecycle phase."),
    Column("DNS", description="The address of the network's DNS service."),
    _AGE,
)


def _network_cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
    spec = _map(obj.get("spec"))
    status = _map(obj.get("status"))
    return [
        _name(obj),
        _str(spec.get("type")) or "<none>",
        _str(spec.get("vpcID")) or "<none>",
        _str(status.get("phase")) or "<none>",
        _str(status.get("dnsServiceIP")) or "<none>",
        _age(obj, now),
    ]


_LEASE_COLUMNS = (
    _NAME,
    Column(
        "Holder",
        description="holderIdentity contains the identity of the holder of a current lease.",
    ),
    _AGE,
)


def _lease_cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
    holder = _str(_map(obj.get("spec")).get("holderIdentity"))
    return [_name(obj), holder, _age(obj, now)]


# --- RBAC ------------------------------------------------------------------------------

_BINDING_COLUMNS = (
    _NAME,
    Column("Role", description="RoleRef references the role being granted."),
    _AGE,
    Column("Users", description="Users in the binding.", priority=1),
    Column("Groups", description="Groups in the binding.", priority=1),
    Column("ServiceAccounts", description="ServiceAccounts in the binding.", priority=1),
)


def _binding_cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
    role_ref = _map(obj.get("roleRef"))
    by_kind: dict[str, list[str]] = {"User": [], "Group": [], "ServiceAccount": []}
    for subject in _maps(obj.get("subjects")):
        name = _str(subject.get("name"))
        kind = _str(subject.get("kind"))
        if kind == "ServiceAccount":
            name = f"{_str(subject.get('namespace'))}/{name}"
        by_kind.setdefault(kind, []).append(name)
    role = f"{_str(role_ref.get('kind'))}/{_str(role_ref.get('name'))}"
    return [
        _name(obj),
        role,
        _age(obj, now),
        *(", ".join(by_kind[kind]) for kind in ("User", "Group", "ServiceAccount")),
    ]


# --- Networking ------------------------------------------------------------------------

_SERVICE_COLUMNS = (
    _NAME,
    Column(
        "Type",
        description="type determines how the Service is exposed. Defaults to ClusterIP. "
        "Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer.",
    ),
    Column(
        "Cluster-IP",
        description="clusterIP is the IP address of the service and is usually assigned randomly.",
    ),
    Column(
        "External-IP",
        description="externalIPs is a list of IP addresses for which nodes in the cluster "
        "will also accept traffic for this service.",
    ),
    Column("Port(s)", description="The list of ports that are exposed by this service."),
    _AGE,
    Column(
        "Selector",
        description="Route service traffic to pods with label keys and values matching this "
        "selector.",
        priority=1,
    ),
)


def _load_balancer_ips(status: Mapping[str, Any]) -> list[str]:
    found: set[str] = set()
    for ingress in _maps(_map(status.get("loadBalancer")).get("ingress")):
        value = _str(ingress.get("ip")) or _str(ingress.get("hostname"))
        if value:
            found.add(value)
    return sorted(found)


def _service_external_ip(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    kind = spec.get("type")
    external = [str(ip) for ip in _seq(spec.get("externalIPs"))]
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        # The server prints wide, so the list is not clipped to 16 characters.
        return ",".join(_load_balancer_ips(status) + external) or "<pending>"
    if kind == "ExternalName":
        return _str(spec.get("externalName"))
    return "<unknown>"


def _service_ports(spec: Mapping[str, Any]) -> str:
    pieces = []
    for port in _maps(spec.get("ports")):
        protocol = _str(port.get("protocol")) or "TCP"
        node_port = _int(port.get("nodePort"))
        number = _int(port.get("port"))
        pieces.append(
            f"{number}:{node_port}/{protocol}" if node_port > 0 else f"{number}/{protocol}"
        )
    return ",".join(pieces) or "<none>"


def _service_cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
    spec = _map(obj.get("spec"))
    cluster_ips = _seq(spec.get("clusterIPs"))
    cluster_ip = str(cluster_ips[0]) if cluster_ips else _str(spec.get("clusterIP"))
    return [
        _name(obj),
        _str(spec.get("type")),
        cluster_ip or "<none>",
        _service_external_ip(spec, _map(obj.get("status"))),
        _service_ports(spec),
        _age(obj, now),
        _format_labels(spec.get("selector")),
    ]


_ENDPOINTS_COLUMNS = (
    _NAME,
    Column(
        "Endpoints",
        description="The set of all endpoints is the union of all subsets.",
    ),
    _AGE,
)
_ENDPOINTS_SHOWN = 3


def _host_port(ip: str, port: int) -> str:
    """`net.JoinHostPort`: IPv6 addresses in brackets."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _format_endpoints(obj: Mapping[str, Any]) -> str:
    subsets = _maps(obj.get("subsets"))
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    for subset in subsets:
        ips = [_str(a.get("ip")) for a in _maps(subset.get("addresses"))]
        ports = _maps(subset.get("ports"))
        # A headless service may have no ports: list the bare addresses.
        targets = (
            [_host_port(ip, _int(p.get("port"))) for p in ports for ip in ips] if ports else ips
        )
        count += len(targets)
        shown.extend(targets[: _ENDPOINTS_SHOWN - len(shown)])
    text = ",".join(shown)
    if count > _ENDPOINTS_SHOWN:
        return f"{text} + {count - _ENDPOINTS_SHOWN} more..."
    return text


def _endpoints_cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
    return [_name(obj), _format_endpoints(obj), _age(obj, now)]


_ENDPOINT_SLICE_COLUMNS = (
    _NAME,
    Column(
        "AddressType",
        description="addressType specifies the type of address carried by this EndpointSlice.",
    ),
    Column(
        "Ports",
        description="ports specifies the list of network ports exposed by each endpoint in "
        "this slice.",
    ),
    Column("Endpoints", description="endpoints is a list of unique endpoints in this slice."),
    _AGE,
)


def _first_few(items: list[str]) -> str:
    """The first few items, and how many more, as kubectl lists a slice's ports and endpoints."""
    if not items:
        return "<unset>"
    text = ",".join(items[:_ENDPOINTS_SHOWN])
    if len(items) > _ENDPOINTS_SHOWN:
        return f"{text} + {len(items) - _ENDPOINTS_SHOWN} more..."
    return text


def _endpoint_slice_cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
    ports = [
        str(_int(port["port"])) if port.get("port") is not None else _str(port.get("name")) or "*"
        for port in _maps(obj.get("ports"))
    ]
    addresses = [
        _str(address)
        for endpoint in _maps(obj.get("endpoints"))
        for address in _seq(endpoint.get("addresses"))
    ]
    return [
        _name(obj),
        _str(obj.get("addressType")),
        _first_few(ports),
        _first_few(addresses),
        _age(obj, now),
    ]


# --- Events ----------------------------------------------------------------------------

_EVENT_COLUMNS = (
    Column(
        "Last Seen",
        description="The time at which the most recent occurrence of this event was recorded.",
    ),
    Column(
        "Type",
        description="Type of this event (Normal, Warning), new types could be added in the future",
    ),
    Column(
        "Reason",
        description="This should be a short, machine understandable string that gives the "
        "reason for the transition into the object's current status.",
    ),
    Column("Object", description="The object that this event is about."),
    Column(
        "Subobject",
        description="If referring to a piece of an object instead of an entire object, this "
        "string should contain a valid JSON/Go field access statement.",
        priority=1,
    ),
    Column(
        "Source",
        description="The component reporting this event. Should be a short machine "
        "understandable string.",
        priority=1,
    ),
    Column("Message", description="A human-readable description of the status of this operation."),
    Column(
        "First Seen",
        description="The time at which the event was first recorded. (Time of server receipt "
        "is in TypeMeta.)",
        priority=1,
    ),
    Column("Count", description="The number of times this event has occurred.", priority=1),
    Column("Name", description=_D_NAME, format="name", priority=1),
)


def _event_cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
    first = obj.get("firstTimestamp")
    first_seen = (
        _since(first, now)
        if timestamps.parse(first) is not None
        else _since(obj.get("eventTime"), now)
    )
    last = obj.get("lastTimestamp")
    last_seen = _since(last, now) if timestamps.parse(last) is not None else first_seen
    count = _int(obj.get("count"))
    series = _present(obj, "series")
    if series is not None:
        last_seen = _since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1  # singleton events of the new API carry no count
    involved = _map(obj.get("involvedObject"))
    kind = _str(involved.get("kind")).lower()
    target = f"{kind}/{_str(involved.get('name'))}" if involved.get("name") else kind
    source = _map(obj.get("source"))
    component = _str(source.get("component")) or _str(obj.get("reportingComponent"))
    instance = _str(source.get("host")) or _str(obj.get("reportingInstance"))
    return [
        last_seen,
        _str(obj.get("type")),
        _str(obj.get("reason")),
        target,
        _str(involved.get("fieldPath")),
        f"{component}, {instance}" if instance else component,
        _str(obj.get("message")).strip(),
        first_seen,
        count,
        _name(obj),
    ]


# --- Everything else: kube-apiserver's default table convertor -------------------------

_DEFAULT_COLUMNS = (_NAME, Column("Created At", "date", _D_CREATED))


def _default_cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
    return [_name(obj), _rfc3339(_metadata(obj).get("creationTimestamp"))]


_DEFAULT = _Printer(_DEFAULT_COLUMNS, _default_cells)


# --- Custom resources: their CRD's additionalPrinterColumns ----------------------------

# As apiextensions-apiserver: a version without printer columns shows its age.
_AGE_COLUMN = (Column("Age", "date", _D_CREATED), ".metadata.creationTimestamp")
_ZERO_TIME = datetime.datetime(1, 1, 1, tzinfo=_UTC)
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def _go_float(value: float) -> str:
    """A float as Go's `fmt.Print` writes it: `%g` of the shortest digits that read back."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    # Python's repr finds the same shortest digits; only the layout differs.
    significand, _, shift = repr(abs(value)).lower().partition("e")
    whole, _, fraction = significand.partition(".")
    all_digits = whole + fraction
    digits = all_digits.lstrip("0").rstrip("0")
    leading_zeros = len(all_digits) - len(all_digits.lstrip("0"))
    exponent = len(whole) + int(shift or 0) - leading_zeros - 1
    if exponent < -4 or exponent >= 6:
        rest = f".{digits[1:]}" if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{rest}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if exponent < 0:
        return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
    if len(digits) <= exponent + 1:
        return sign + digits + "0" * (exponent + 1 - len(digits))
    return f"{sign}{digits[: exponent + 1]}.{digits[exponent + 1 :]}"


def _go_json(value: Any) -> str:
    """`json.Marshal` of a JSON value: compact, keys sorted, `<>&` escaped."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _as_text(value: Any) -> str:
    """A found value as client-go's JSONPath prints it: objects and lists as JSON."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, dict | list):
        return _go_json(value)
    return str(value)


def _custom_cell(column_type: str, value: Any, now: datetime.datetime) -> Any:
    """`cellForJSONValue`: a typed cell, None where the value does not fit the type."""
    if column_type == "string":
        return _as_text(value)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if column_type == "integer" and number:
        return int(value) if math.isfinite(value) else None
    if column_type == "number" and number:
        return float(value)
    if column_type == "boolean" and isinstance(value, bool):
        return value
    if column_type == "date" and isinstance(value, str):
        if value in ("", "null"):
            return "<unknown>"
        if _RFC3339.fullmatch(value) is None or (moment := timestamps.parse(value)) is None:
            return "<invalid>"
        if moment == _ZERO_TIME:
            return "<unknown>"
        return human_duration(now - moment)
    return None


def _custom_printer(custom: customresources.CustomKind) -> _Printer:
    return _printer_of(custom.printer_columns)


@functools.lru_cache(maxsize=512)
def _printer_of(printer_columns: tuple[customresources.PrinterColumn, ...]) -> _Printer:
    """kube-apiserver's table convertor for custom resources, from their printer columns."""
    shown = [
        (
            Column(
                column.name,
                column.type,
                column.description
                or f"Custom resource definition column (in JSONPath format): {column.json_path}",
                column.format,
                column.priority,
            ),
            column.json_path,
        )
        for column in printer_columns
    ] or [_AGE_COLUMN]
    paths: list[tuple[str, jsonpath.Path | None]] = []
    for column, text in shown:
        try:
            paths.append((column.type, jsonpath.parse(text)))
        except jsonpath.JSONPathError:
            paths.append((column.type, None))  # refused when the CRD was written

    def cells(obj: Mapping[str, Any], now: datetime.datetime) -> Cells:
        row: Cells = [_name(obj)]
        for column_type, path in paths:
            found = path.find(obj) if path is not None else []
            row.append(_custom_cell(column_type, found[0], now) if found else None)
        return row

    return _Printer((_NAME, *(column for column, _ in shown)), cells)


_PRINTERS: dict[tuple[str, str], _Printer] = {
    ("", "Pod"): _Printer(_POD_COLUMNS, _pod_cells, _pod_conditions),
    ("", "Namespace"): _Printer(_NAMESPACE_COLUMNS, _phase_cells),
    ("", "Tenant"): _Printer(_TENANT_COLUMNS, _phase_cells),
    ("", "Node"): _Printer(_NODE_COLUMNS, _node_cells),
    ("", "ConfigMap"): _Printer(_CONFIG_MAP_COLUMNS, _config_map_cells),
    ("", "Secret"): _Printer(_SECRET_COLUMNS, _secret_cells),
    ("", "Service"): _Printer(_SERVICE_COLUMNS, _service_cells),
    ("", "Endpoints"): _Printer(_ENDPOINTS_COLUMNS, _endpoints_cells),
    ("discovery.k8s.io", "EndpointSlice"): _Printer(_ENDPOINT_SLICE_COLUMNS, _endpoint_slice_cells),
    ("", "Event"): _Printer(_EVENT_COLUMNS, _event_cells),
    ("", "ServiceAccount"): _Printer(_SERVICE_ACCOUNT_COLUMNS, _service_account_cells),
    ("", "ControllerInstance"): _Printer(_CONTROLLER_INSTANCE_COLUMNS, _controller_instance_cells),
    ("", "DataPartitionConfig"): _Printer(
        _DATA_PARTITION_CONFIG_COLUMNS, _data_partition_config_cells
    ),
    ("", "Action"): _Printer(_ACTION_COLUMNS, _action_cells),
    ("arktos.futurewei.com", "Network"): _Printer(_NETWORK_COLUMNS, _network_cells),
    ("apps", "Deployment"): _Printer(_DEPLOYMENT_COLUMNS, _deployment_cells),
    ("apps", "ReplicaSet"): _Printer(_REPLICA_SET_COLUMNS, _replica_set_cells),
    ("coordination.k8s.io", "Lease"): _Printer(_LEASE_COLUMNS, _lease_cells),
    ("rbac.authorization.k8s.io", "RoleBinding"): _Printer(_BINDING_COLUMNS, _binding_cells),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _Printer(_BINDING_COLUMNS, _binding_cells),
}


def _printer(resource: resources.Resource) -> _Printer:
    if resource.custom is not None:
        return _custom_printer(resource.custom)
    return _PRINTERS.get((resource.group, resource.kind), _DEFAULT)


def columns(resource: resources.Resource, *, all_tenants: bool = False) -> tuple[Column, ...]:
    """The columns of `resource`'s tables, the Tenant column first when across tenants."""
    own = _printer(resource).columns
    return (_TENANT, *own) if all_tenants else own


# --- The Table -------------------------------------------------------------------------


def _row_object(obj: Mapping[str, Any], include_object: str) -> Any:
    if include_object == INCLUDE_OBJECT:
        return obj
    if include_object == INCLUDE_METADATA:
        return {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": _metadata(obj),
        }
    return None


def table(
    resource: resources.Resource,
    objects: Sequence[Obj],
    *,
    include_object: str = INCLUDE_METADATA,
    all_tenants: bool = False,
    resource_version: str = "",
    continue_token: str = "",
    now: datetime.datetime | None = None,
    column_definitions: bool = True,
) -> Obj:
    """`objects` of `resource` as a `meta.k8s.io/v1` Table, as kube-apiserver answers it.

    `include_object` is the request's `includeObject`: "Metadata" (default) puts a
    `PartialObjectMetadata` in each row, "Object" the whole object, "None" a null; anything
    else is a `BadRequest`. `column_definitions=False` leaves them null, as kube-apiserver
    does for watch events after the first. Ages are measured from `now` (default: the
    current UTC time).
    """
    if include_object == "":
        include_object = INCLUDE_METADATA  # an empty query parameter means the default
    if include_object not in (INCLUDE_NONE, INCLUDE_METADATA, INCLUDE_OBJECT):
        raise errors.BadRequest(f'unrecognized includeObject value: "{include_object}"')
    if now is None:
        now = datetime.datetime.now(_UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=_UTC)
    printer = _printer(resource)
    tenant_scoped = resource.scope is not resources.Scope.CLUSTER

    rows: list[Obj] = []
    for obj in objects:
        cells = printer.cells(obj, now)
        if all_tenants:
            tenant = _str(_metadata(obj).get("tenant")) if tenant_scoped else ""
            cells = [tenant, *cells]
        row: Obj = {"cells": cells}
        if printer.conditions is not None and (found := printer.conditions(obj)):
            row["conditions"] = found
        row["object"] = _row_object(obj, include_object)
        rows.append(row)

    metadata: Obj = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    definitions = (
        [c.definition() for c in columns(resource, all_tenants=all_tenants)]
        if column_definitions
        else None
    )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    }
