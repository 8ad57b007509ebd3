"""A pod's status as the node agent reports it, computed from what the agent observed.

Pure functions: the pod worker gathers a `PodView` (the runtime's containers of the pod,
its sandbox, probe results and the worker's own waiting reasons) and `pod_status` turns
it, with the pod object, into `status` exactly as kubelet would write it. Guarantees:

* The phase follows kubelet's `getPhase`: Pending until every init container succeeded
  (Failed at once if one failed under `restartPolicy: Never`), then Running while a
  container runs (or will be restarted), Succeeded when all app containers exited 0 and
  none will restart, Failed when one exited otherwise and none will restart. A phase
  that was terminal stays terminal.
* Conditions `PodReadyToStartContainers`, `Initialized`, `ContainersReady` and `Ready`
  (with `readinessGates`) are set; other conditions (`PodScheduled`, the ones readiness
  gates name, `DisruptionTarget`, ...) are kept as they are. A condition whose status
  did not change keeps its `lastTransitionTime`.
* `containerStatuses` and `initContainerStatuses` follow the spec's order, one per
  container, with state, lastState, restartCount, ready, started, image, imageID and
  containerID `<runtime>://<id>`.
* `startTime` is set once and kept; `qosClass` is Kubernetes' (Guaranteed, Burstable,
  BestEffort).
* A VM pod (a `PodView` with `vm`) also gets `virtualMachineStatus` (name, ids, image,
  state, powerState, ready, restartCount, and a `message` when there is something to say:
  a key pair not found, a refused resize, no network) and the `VirtualMachineReady`
  condition, True while the VM is `active` and powered `running` (a paused or suspended
  VM is not ready); its reason and message carry the VM's problem, if any.
* Everything is a function of its inputs and `now` (used only for a condition that
  changes): computing twice from the same observations gives equal statuses, so the
  worker writes only when something a user would see changed.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Quantities are parsed by the API's own parser, which `arktos_lite.api` does not export
# by name (the scheduler reads them the same way).
from arktos_lite.api import _validation as validation, timestamps

Obj = dict[str, Any]


class Phase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED})


class ConditionType(enum.StrEnum):
    POD_SCHEDULED = "PodScheduled"
    READY_TO_START_CONTAINERS = "PodReadyToStartContainers"
    INITIALIZED = "Initialized"
    CONTAINERS_READY = "ContainersReady"
    READY = "Ready"
    VIRTUAL_MACHINE_READY = "VirtualMachineReady"


# The conditions the agent owns, in the order kubelet lists them.
OWNED_CONDITIONS = (
    ConditionType.READY_TO_START_CONTAINERS,
    ConditionType.INITIALIZED,
    ConditionType.READY,
    ConditionType.CONTAINERS_READY,
)


class Reason(enum.StrEnum):
    """Reasons on conditions and container states, as kubelet writes them."""

    CONTAINERS_NOT_INITIALIZED = "ContainersNotInitialized"
    CONTAINERS_NOT_READY = "ContainersNotReady"
    READINESS_GATES_NOT_READY = "ReadinessGatesNotReady"
    POD_COMPLETED = "PodCompleted"
    CONTAINER_CREATING = "ContainerCreating"
    POD_INITIALIZING = "PodInitializing"
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
    COMPLETED = "Completed"
    ERROR = "Error"
    VIRTUAL_MACHINE_NOT_READY = "VirtualMachineNotReady"


class QOSClass(enum.StrEnum):
    GUARANTEED = "Guaranteed"
    BURSTABLE = "Burstable"
    BEST_EFFORT = "BestEffort"


class ContainerState(enum.StrEnum):
    """A runtime container's state (CRI's ContainerState, by name)."""

    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


@dataclasses.dataclass(frozen=True, slots=True)
class Instance:
    """One runtime container that ran (or runs) one container of the pod.

    Times are the runtime's, in nanoseconds since the epoch (0: not yet).
    """

    id: str
    state: ContainerState
    restart_count: int = 0
    image_ref: str = ""
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""
    message: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class ContainerView:
    """What the worker knows of one container of the pod spec.

    `current` is the newest runtime container of that name, `previous` the one before it.
    `waiting_reason` (with its message) is set while the worker holds the container back
    (`CrashLoopBackOff`, `ErrImagePull`, `CreateContainerConfigError`, ...). `ready` and
    `started` are the probes' verdicts, meaningful only while `current` runs.
    """

    current: Instance | None = None
    previous: Instance | None = None
    waiting_reason: str = ""
    waiting_message: str = ""
    ready: bool = False
    started: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class VmView:
    """A VM pod's VM, as its runtime reports it (empty ids until it exists)."""

    name: str
    image: str
    image_id: str = ""
    vm_id: str = ""
    # Arktos' VM state (active, stopped, ...) and power state (running, shutdown, ...).
    state: str = "building"
    power_state: str = "nostate"
    restart_count: int = 0
    # What stands in the VM's way, or is worth knowing (e.g. it has no network).
    reason: str = ""
    message: str = ""

    @property
    def ready(self) -> bool:
        return self.state == "active" and self.power_state == "running"


def vm_status(vm: VmView) -> Obj:
    """`status.virtualMachineStatus` of a VM pod."""
    result: Obj = {
        "name": vm.name,
        "virtualMachineId": vm.vm_id,
        "imageId": vm.image_id,
        "image": vm.image,
        "state": vm.state,
        "powerState": vm.power_state,
        "ready": vm.ready,
        "restartCount": vm.restart_count,
    }
    if vm.message:
        result["message"] = vm.message
    return result


@dataclasses.dataclass(frozen=True, slots=True)
class PodView:
    """Everything observed about one pod on this node."""

    runtime_name: str
    host_ip: str
    pod_ips: tuple[str, ...] = ()
    sandbox_ready: bool = False
    init_containers: Mapping[str, ContainerView] = dataclasses.field(default_factory=dict)
    containers: Mapping[str, ContainerView] = dataclasses.field(default_factory=dict)
    # A pod-level verdict, e.g. that this node has no runtime for the pod's type.
    reason: str = ""
    message: str = ""
    # The VM of a VM pod; None for a container pod.
    vm: VmView | None = None


# Timestamps


def rfc3339(nanos: int) -> str:
    """A runtime timestamp (nanoseconds) in the API's format."""
    return timestamps.rfc3339(timestamps.from_nanos(nanos))


def now_rfc3339() -> str:
    return timestamps.rfc3339(timestamps.now())


# QoS


def _resource_amount(listed: Mapping[str, Any] | None, name: str) -> int | None:
    if not listed or name not in listed:
        return None
    value = listed[name]
    try:
        return int(validation.parse_quantity(str(value)) * 1000)
    except validation.QuantityError:
        return None


def qos_class(spec: Mapping[str, Any]) -> QOSClass:
    """Kubernetes' `GetPodQOS` over cpu and memory of every container and init container."""
    containers = [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]
    any_set = False
    guaranteed = bool(containers)
    for container in containers:
        resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        for name in ("cpu", "memory"):
            request = _resource_amount(requests, name)
            limit = _resource_amount(limits, name)
            if (request is not None and request != 0) or (limit is not None and limit != 0):
                any_set = True
            if limit is None or limit == 0 or (request is not None and request != limit):
                guaranteed = False
    if not any_set:
        return QOSClass.BEST_EFFORT
    return QOSClass.GUARANTEED if guaranteed else QOSClass.BURSTABLE


# Containers


def container_id(runtime_name: str, instance: Instance) -> str:
    return f"{runtime_name}://{instance.id}"


def _terminated(instance: Instance, runtime_name: str) -> Obj:
    state: Obj = {
        "exitCode": instance.exit_code,
        "reason": instance.reason
        or (Reason.COMPLETED if instance.exit_code == 0 else Reason.ERROR).value,
        "containerID": container_id(runtime_name, instance),
    }
    if instance.message:
        state["message"] = instance.message
    if instance.started_at:
        state["startedAt"] = rfc3339(instance.started_at)
    if instance.finished_at:
        state["finishedAt"] = rfc3339(instance.finished_at)
    return {"terminated": state}


def _waiting(reason: str, message: str) -> Obj:
    waiting: Obj = {"reason": reason}
    if message:
        waiting["message"] = message
    return {"waiting": waiting}


def container_status(
    spec: Mapping[str, Any],
    view: ContainerView,
    *,
    runtime_name: str,
    default_waiting: str = Reason.CONTAINER_CREATING,
) -> Obj:
    """One entry of `containerStatuses` (or `initContainerStatuses`)."""
    current, previous = view.current, view.previous
    last: Obj = {}
    running_now = current is not None and current.state is ContainerState.RUNNING
    # A container that runs is running, whatever the worker held back before.
    if view.waiting_reason and not running_now:
        state = _waiting(view.waiting_reason, view.waiting_message)
        if current is not None and current.state is ContainerState.EXITED:
            last = _terminated(current, runtime_name)
        elif previous is not None:
            last = _terminated(previous, runtime_name)
    elif current is None or current.state is ContainerState.CREATED:
        state = _waiting(default_waiting, "")
        if previous is not None:
            last = _terminated(previous, runtime_name)
    elif current.state is ContainerState.RUNNING:
        running: Obj = {}
        if current.started_at:
            running["startedAt"] = rfc3339(current.started_at)
        state = {"running": running}
        if previous is not None:
            last = _terminated(previous, runtime_name)
    else:
        # Exited, or unknown to the runtime (it lost track: report as an error exit).
        state = _terminated(current, runtime_name)
        if previous is not None:
            last = _terminated(previous, runtime_name)
    status: Obj = {
        "name": spec.get("name", ""),
        "image": spec.get("image", ""),
        "imageID": current.image_ref if current is not None else "",
        "ready": running_now and view.ready,
        "started": running_now and view.started,
        "restartCount": current.restart_count if current is not None else 0,
        "state": state,
        "lastState": last,
    }
    if current is not None:
        status["containerID"] = container_id(runtime_name, current)
    return status


# Phase


def _will_restart(policy: str, instance: Instance) -> bool:
    return policy == "Always" or (policy == "OnFailure" and instance.exit_code != 0)


def init_done(spec: Mapping[str, Any], views: Mapping[str, ContainerView]) -> bool:
    """Whether every init container exited 0."""
    for container in spec.get("initContainers") or ():
        view = views.get(container.get("name", ""))
        current = view.current if view is not None else None
        if current is None or current.state is not ContainerState.EXITED:
            return False
        if current.exit_code != 0:
            return False
    return True


def init_failed(spec: Mapping[str, Any], views: Mapping[str, ContainerView]) -> bool:
    """Whether an init container failed for good (it exited non-zero under `Never`)."""
    if (spec.get("restartPolicy") or "Always") != "Never":
        return False
    for container in spec.get("initContainers") or ():
        view = views.get(container.get("name", ""))
        current = view.current if view is not None else None
        if (
            current is not None
            and current.state is ContainerState.EXITED
            and current.exit_code != 0
        ):
            return True
    return False


def phase(spec: Mapping[str, Any], view: PodView) -> Phase:
    """Kubelet's `getPhase` over what the worker observed."""
    policy = spec.get("restartPolicy") or "Always"
    if init_failed(spec, view.init_containers):
        return Phase.FAILED
    if not init_done(spec, view.init_containers):
        return Phase.PENDING
    running = waiting = stopped = succeeded = 0
    for container in spec.get("containers") or ():
        container_view = view.containers.get(container.get("name", ""))
        current = container_view.current if container_view is not None else None
        if current is None or current.state is ContainerState.CREATED:
            # Kubelet counts a container waiting after a termination as stopped.
            previous = container_view.previous if container_view is not None else None
            if previous is not None:
                stopped += 1
                succeeded += previous.exit_code == 0
            else:
                waiting += 1
        elif current.state is ContainerState.RUNNING:
            running += 1
        else:
            stopped += 1
            if current.exit_code == 0:
                succeeded += 1
    if waiting:
        return Phase.PENDING
    if running:
        return Phase.RUNNING
    if stopped:
        if policy == "Always":
            return Phase.RUNNING
        if stopped == succeeded:
            return Phase.SUCCEEDED
        if policy == "Never":
            return Phase.FAILED
        return Phase.RUNNING
    return Phase.PENDING


def containers_finished(spec: Mapping[str, Any], view: PodView) -> bool:
    """Whether no container of the pod will run again (all exited, none to restart)."""
    policy = spec.get("restartPolicy") or "Always"
    for container in spec.get("containers") or ():
        container_view = view.containers.get(container.get("name", ""))
        current = container_view.current if container_view is not None else None
        if current is None or current.state is not ContainerState.EXITED:
            return False
        if _will_restart(policy, current):
            return False
    return bool(spec.get("containers"))


# Conditions


def _condition(type_: str, ok: bool, *, reason: str = "", message: str = "") -> Obj:
    condition: Obj = {"type": type_, "status": "True" if ok else "False"}
    if not ok and reason:
        condition["reason"] = reason
    if not ok and message:
        condition["message"] = message
    return condition


def _names(names: Iterable[str]) -> str:
    return "[" + " ".join(names) + "]"


def _gate_conditions(
    spec: Mapping[str, Any], existing: Sequence[Mapping[str, Any]]
) -> tuple[bool, str]:
    by_type = {c.get("type"): c for c in existing}
    missing: list[str] = []
    not_true: list[str] = []
    for gate in spec.get("readinessGates") or ():
        type_ = gate.get("conditionType", "")
        found = by_type.get(type_)
        if found is None:
            missing.append(type_)
        elif found.get("status") != "True":
            not_true.append(type_)
    if missing:
        return (
            False,
            f'corresponding condition of pod readiness gate "{missing[0]}" does not exist.',
        )
    if not_true:
        return False, f'the status of pod readiness gate "{not_true[0]}" is not "True", but False'
    return True, ""


def conditions(
    spec: Mapping[str, Any],
    view: PodView,
    *,
    existing: Sequence[Mapping[str, Any]],
    pod_phase: Phase,
    now: str,
) -> list[Obj]:
    """The pod's conditions: the agent's own computed, every other one kept."""
    terminal = pod_phase in TERMINAL_PHASES
    incomplete = [
        c.get("name", "")
        for c in spec.get("initContainers") or ()
        if not _init_succeeded(view.init_containers.get(c.get("name", "")))
    ]
    initialized = _condition(
        ConditionType.INITIALIZED,
        not incomplete,
        reason=Reason.CONTAINERS_NOT_INITIALIZED,
        message=f"containers with incomplete status: {_names(incomplete)}",
    )
    unready = [
        c.get("name", "")
        for c in spec.get("containers") or ()
        if not _ready(view.containers.get(c.get("name", "")))
    ]
    if terminal:
        containers_ready = _condition(
            ConditionType.CONTAINERS_READY, False, reason=Reason.POD_COMPLETED
        )
        ready = _condition(ConditionType.READY, False, reason=Reason.POD_COMPLETED)
    elif incomplete:
        # App containers only count once initialization is done.
        message = f"containers with incomplete status: {_names(incomplete)}"
        containers_ready = _condition(
            ConditionType.CONTAINERS_READY,
            False,
            reason=Reason.CONTAINERS_NOT_INITIALIZED,
            message=message,
        )
        ready = _condition(
            ConditionType.READY, False, reason=Reason.CONTAINERS_NOT_INITIALIZED, message=message
        )
    elif unready:
        message = f"containers with unready status: {_names(unready)}"
        containers_ready = _condition(
            ConditionType.CONTAINERS_READY,
            False,
            reason=Reason.CONTAINERS_NOT_READY,
            message=message,
        )
        ready = _condition(
            ConditionType.READY, False, reason=Reason.CONTAINERS_NOT_READY, message=message
        )
    else:
        containers_ready = _condition(ConditionType.CONTAINERS_READY, True)
        gates_ok, gates_message = _gate_conditions(spec, existing)
        ready = _condition(
            ConditionType.READY,
            gates_ok,
            reason=Reason.READINESS_GATES_NOT_READY,
            message=gates_message,
        )
    sandbox = _condition(ConditionType.READY_TO_START_CONTAINERS, view.sandbox_ready)
    computed = {c["type"]: c for c in (sandbox, initialized, ready, containers_ready)}
    types: tuple[str, ...] = OWNED_CONDITIONS
    if view.vm is not None:
        types = (*types, ConditionType.VIRTUAL_MACHINE_READY)
        vm = view.vm
        vm_ready = vm.ready and not terminal
        vm_condition = _condition(
            ConditionType.VIRTUAL_MACHINE_READY,
            vm_ready,
            reason=vm.reason or Reason.VIRTUAL_MACHINE_NOT_READY,
            message=f"virtual machine is {vm.state}, power state {vm.power_state}"
            + (f": {vm.message}" if vm.message else ""),
        )
        if vm_ready and vm.message:
            if vm.reason:
                vm_condition["reason"] = vm.reason
            vm_condition["message"] = vm.message
        computed[ConditionType.VIRTUAL_MACHINE_READY] = vm_condition
    by_type = {c.get("type"): c for c in existing}
    result: list[Obj] = []
    for type_ in types:
        new = computed[type_]
        old = by_type.get(type_)
        new["lastProbeTime"] = None
        if old is not None and old.get("status") == new["status"]:
            new["lastTransitionTime"] = old.get("lastTransitionTime") or now
        else:
            new["lastTransitionTime"] = now
        result.append(new)
    if ConditionType.POD_SCHEDULED not in by_type:
        result.append(
            {
                "type": ConditionType.POD_SCHEDULED.value,
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": now,
            }
        )
    owned = set(types)
    result.extend(dict(c) for c in existing if c.get("type") not in owned)
    return result


def _init_succeeded(view: ContainerView | None) -> bool:
    current = view.current if view is not None else None
    return current is not None and current.state is ContainerState.EXITED and current.exit_code == 0


def _ready(view: ContainerView | None) -> bool:
    if view is None or view.current is None:
        return False
    return view.current.state is ContainerState.RUNNING and view.ready


# The whole status


# The fields of `status` the agent writes; others (nominatedNodeName, ...) are left alone.
OWNED_FIELDS = (
    "phase",
    "conditions",
    "hostIP",
    "hostIPs",
    "podIP",
    "podIPs",
    "startTime",
    "containerStatuses",
    "initContainerStatuses",
    "qosClass",
    "reason",
    "message",
    "virtualMachineStatus",
)


def pod_status(pod: Mapping[str, Any], view: PodView, *, now: str) -> Obj:
    """The pod's status: the agent's fields computed, any other field kept."""
    spec: Mapping[str, Any] = pod.get("spec") or {}
    old: Mapping[str, Any] = pod.get("status") or {}
    old_phase = old.get("phase")
    computed = phase(spec, view)
    if old_phase in TERMINAL_PHASES:
        computed = Phase(old_phase)
    status: Obj = {k: v for k, v in old.items() if k not in OWNED_FIELDS}
    status["phase"] = computed.value
    status["conditions"] = conditions(
        spec, view, existing=old.get("conditions") or (), pod_phase=computed, now=now
    )
    status["hostIP"] = view.host_ip
    status["hostIPs"] = [{"ip": view.host_ip}] if view.host_ip else []
    if view.pod_ips:
        status["podIP"] = view.pod_ips[0]
        status["podIPs"] = [{"ip": ip} for ip in view.pod_ips]
    elif old.get("podIP"):
        status["podIP"] = old["podIP"]
        status["podIPs"] = old.get("podIPs") or [{"ip": old["podIP"]}]
    status["startTime"] = old.get("startTime") or now
    # A finished pod whose containers the runtime no longer has keeps what it reported.
    keep = old_phase in TERMINAL_PHASES
    init_specs = spec.get("initContainers") or ()
    if init_specs:
        status["initContainerStatuses"] = _statuses(
            init_specs,
            view.init_containers,
            old=old.get("initContainerStatuses") if keep else None,
            runtime_name=view.runtime_name,
            default_waiting=Reason.POD_INITIALIZING,
        )
    initializing = not init_done(spec, view.init_containers)
    status["containerStatuses"] = _statuses(
        spec.get("containers") or (),
        view.containers,
        old=old.get("containerStatuses") if keep else None,
        runtime_name=view.runtime_name,
        default_waiting=Reason.POD_INITIALIZING if initializing else Reason.CONTAINER_CREATING,
    )
    status["qosClass"] = qos_class(spec).value
    if view.vm is not None:
        status["virtualMachineStatus"] = vm_status(view.vm)
    if view.reason:
        status["reason"] = view.reason
    if view.message:
        status["message"] = view.message
    return status


def _statuses(
    specs: Sequence[Mapping[str, Any]],
    views: Mapping[str, ContainerView],
    *,
    old: Sequence[Mapping[str, Any]] | None,
    runtime_name: str,
    default_waiting: str,
) -> list[Obj]:
    kept = {entry.get("name"): entry for entry in old or ()}
    result: list[Obj] = []
    for spec in specs:
        name = spec.get("name", "")
        found = views.get(name) or ContainerView()
        if found.current is None and name in kept:
            result.append(dict(kept[name]))
            continue
        result.append(
            container_status(
                spec, found, runtime_name=runtime_name, default_waiting=default_waiting
            )
        )
    return result


def owned(status: Mapping[str, Any]) -> Obj:
    """The part of `status` the agent writes, for comparing."""
    return {k: status[k] for k in OWNED_FIELDS if k in status and status[k] not in (None, [])}


def differs(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether writing `new` over `old` changes what a user sees."""
    return owned(old) != owned(new)


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> Obj:
    """A merge patch setting every agent field of `new`, and removing (null) those that
    `old` has and `new` has not; fields the agent does not own are left alone."""
    patch: Obj = {}
    for key in OWNED_FIELDS:
        if key in new:
            patch[key] = new[key]
        elif old.get(key) is not None:
            patch[key] = None
    return patch
