"""The agent's Node: registered once, its status kept current, its Lease renewed.

`NodeReporter` is the part of the agent the control plane sees. Guarantees:

* Registration creates the Node with its labels, capacity and full status, or adopts an
  existing Node of the same name: its status is rewritten and the agent's own labels
  (`kubernetes.io/os`, `kubernetes.io/arch`, `kubernetes.io/hostname`, configured ones)
  and the runtime-isolation annotation are set; other labels, annotations and taints a
  user gave it stay.
* Capacity: cpu (`os.cpu_count`), memory (`MemTotal`, Ki), pods (`max_pods`) and
  ephemeral-storage (the size of `root_dir`'s filesystem, Ki). Allocatable is capacity
  minus kubelet's default hard eviction thresholds: 100Mi of memory, and the 5 % of
  ephemeral-storage below which the node reports `DiskPressure`; cpu and pods are whole.
* Conditions, with Kubernetes' reasons: `Ready` (True while at least one runtime is
  ready), `MemoryPressure` (True under 100Mi available, kubelet's threshold),
  `DiskPressure` (True under 5 % free on `root_dir`'s filesystem: kubelet uses 10 % to
  evict, but this agent does not evict, and 5 % is where a laptop disk really runs short),
  `PIDPressure` (always False: no PID limits are enforced), and Arktos'
  `ContainerRuntimeReady` / `VmRuntimeReady` from the `RuntimeReady` condition of each
  workload type's default runtime (False with a reason when there is none, or it cannot
  be reached). `lastHeartbeatTime` is stamped on every status write,
  `lastTransitionTime` only when a condition's status changes. `conditions` adds the
  ones other parts of the agent own (pod networking's `NetworkUnavailable`); conditions
  of other types are kept.
* Status is computed every `status_update_interval` seconds and written when anything a
  user would see changed, and at least every `status_report_interval` seconds. A write
  that loses a race (409) is recomputed over the Node as it is now; a Node deleted under
  the agent is registered again.
* The Lease `kube-node-lease/<node>` (tenant `system`) is created if missing and renewed
  every `lease_renew_interval` seconds (sooner after a failed renewal), owned by the Node.
* Registration is retried (with backoff) while the API server cannot be reached or
  answers 5xx/429; any other refusal ends `run` with its error.
* Intervals run on trio's clock; the wall clock is read only for timestamps written into
  objects.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import logging
import math
import os
import pathlib
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import trio

import arktos_lite
from arktos_lite import client, runtime
from arktos_lite.agent import _runtimes as runtimes
from arktos_lite.api import errors, resources, timestamps

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

_REGISTRY = resources.Registry()


def _resource(group: str, plural: str) -> resources.Resource:
    found = _REGISTRY.get(group, "v1", plural)
    assert found is not None, plural
    return found


NODES = _resource("", "nodes")
LEASES = _resource("coordination.k8s.io", "leases")

NODE_LEASE_NAMESPACE = "kube-node-lease"
ISOLATION_ANNOTATION = "arktos.futurewei.com/runtime-isolation"
LABEL_OS = "kubernetes.io/os"
LABEL_ARCH = "kubernetes.io/arch"
LABEL_HOSTNAME = "kubernetes.io/hostname"

# The Kubernetes release whose API this agent speaks; the API server reports the same.
KUBERNETES_VERSION = "v1.32.0"
AGENT_VERSION = f"{KUBERNETES_VERSION}-arktos-lite.{arktos_lite.__version__}"

# kubelet's default hard eviction threshold for memory.available.
MEMORY_RESERVE = 100 * 1024 * 1024
# Free space on root_dir's filesystem below which the node reports DiskPressure.
DISK_PRESSURE_FRACTION = 0.05
_STATUS_ATTEMPTS = 5
_LEASE_RETRY = 0.2
_REGISTER_RETRY_MAX = 7.0


class ConditionType(enum.StrEnum):
    READY = "Ready"
    MEMORY_PRESSURE = "MemoryPressure"
    DISK_PRESSURE = "DiskPressure"
    PID_PRESSURE = "PIDPressure"
    CONTAINER_RUNTIME_READY = "ContainerRuntimeReady"
    VM_RUNTIME_READY = "VmRuntimeReady"


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


RUNTIME_CONDITIONS: Mapping[runtimes.WorkloadType, ConditionType] = {
    runtimes.WorkloadType.CONTAINER: ConditionType.CONTAINER_RUNTIME_READY,
    runtimes.WorkloadType.VM: ConditionType.VM_RUNTIME_READY,
}


@dataclasses.dataclass(frozen=True, slots=True)
class Condition:
    """A node condition without its timestamps (those are the write's)."""

    type: str
    status: ConditionStatus
    reason: str
    message: str


# What the machine says


@dataclasses.dataclass(frozen=True, slots=True)
class HostInfo:
    """The machine's fixed facts, read once."""

    cpus: int
    memory_bytes: int
    machine_id: str = ""
    system_uuid: str = ""
    boot_id: str = ""
    kernel_version: str = ""
    os_image: str = "Linux"
    operating_system: str = "linux"
    architecture: str = "amd64"


@dataclasses.dataclass(frozen=True, slots=True)
class Usage:
    """What the machine has left, sampled before each status computation (bytes)."""

    memory_available: int
    disk_total: int
    disk_free: int


_ARCHITECTURES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def go_architecture(machine: str) -> str:
    """Go's name (GOARCH, as `kubernetes.io/arch` uses it) for `platform.machine()`."""
    return _ARCHITECTURES.get(machine.lower(), machine.lower())


def _read(path: str) -> str:
    try:
        return pathlib.Path(path).read_text().strip()
    except OSError:
        return ""


def meminfo(text: str) -> dict[str, int]:
    """`/proc/meminfo` as bytes by field name."""
    result: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            unit = 1024 if parts[1:2] == ["kB"] else 1
            result[name.strip()] = int(parts[0]) * unit
    return result


def os_image(os_release: str) -> str:
    """PRETTY_NAME of an `/etc/os-release`, as kubelet shows it; `Linux` without one."""
    for line in os_release.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "PRETTY_NAME":
            return value.strip().strip("\"'") or "Linux"
    return "Linux"


def read_host_info() -> HostInfo:
    """This machine's facts (blocking: file reads)."""
    memory = meminfo(_read("/proc/meminfo"))
    return HostInfo(
        cpus=os.cpu_count() or 1,
        memory_bytes=memory.get("MemTotal", 0),
        machine_id=_read("/etc/machine-id"),
        system_uuid=_read("/sys/class/dmi/id/product_uuid").lower(),
        boot_id=_read("/proc/sys/kernel/random/boot_id"),
        kernel_version=platform.release(),
        os_image=os_image(_read("/etc/os-release")),
        operating_system=platform.system().lower() or "linux",
        architecture=go_architecture(platform.machine()),
    )


def sample_usage(root_dir: pathlib.Path) -> Usage:
    """Available memory and `root_dir`'s filesystem (blocking: a file read and statvfs)."""
    memory = meminfo(_read("/proc/meminfo"))
    root_dir.mkdir(parents=True, exist_ok=True)
    fs = os.statvfs(root_dir)
    return Usage(
        memory_available=memory.get("MemAvailable", memory.get("MemFree", 0)),
        disk_total=fs.f_blocks * fs.f_frsize,
        # f_bavail: what an unprivileged writer may still use, as kubelet's cadvisor counts.
        disk_free=fs.f_bavail * fs.f_frsize,
    )


# What the runtimes say


@dataclasses.dataclass(frozen=True, slots=True)
class RuntimeReport:
    """One runtime's health as the node reports it."""

    name: str
    workload_type: runtimes.WorkloadType
    ready: bool
    reason: str = ""
    message: str = ""
    # `<runtime_name>://<runtime_version>`, as nodeInfo.containerRuntimeVersion.
    version: str = ""
    isolation: str = ""


def _runtime_condition(response: Any, type_: str) -> Any | None:
    for condition in response.status.conditions:
        if condition.type == type_:
            return condition
    return None


def _isolation(info: Mapping[str, str]) -> str:
    # Runtimes put JSON values in the verbose info (containerd does); a plain string is
    # accepted as it is.
    text = info.get("isolation", "")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return text


async def check_runtime(named: runtimes.NamedRuntime, *, timeout: float) -> RuntimeReport:  # noqa: ASYNC109
    """Ask one runtime for its version and status; never raises for a runtime's failure."""
    try:
        with trio.fail_after(timeout):
            version = await named.runtime.version()
            status = await named.runtime.status(verbose=True)
    except runtime.CRIError as exc:
        return RuntimeReport(
            named.name,
            named.workload_type,
            ready=False,
            reason="RuntimeUnreachable",
            message=f"runtime {named.name}: {exc}",
        )
    except trio.TooSlowError:
        return RuntimeReport(
            named.name,
            named.workload_type,
            ready=False,
            reason="RuntimeUnreachable",
            message=f"runtime {named.name} did not answer within {timeout:g}s",
        )
    ready = _runtime_condition(status, "RuntimeReady")
    is_ready = ready is not None and bool(ready.status)
    reason = "" if is_ready else (ready.reason if ready is not None else "") or "RuntimeNotReady"
    detail = "" if is_ready else (ready.message if ready is not None else "no RuntimeReady")
    return RuntimeReport(
        named.name,
        named.workload_type,
        ready=is_ready,
        reason=reason,
        message=f"runtime {named.name} is not ready: {detail}" if detail else "",
        version=f"{version.runtime_name}://{version.runtime_version}",
        isolation=_isolation(status.info),
    )


async def check_runtimes(
    runtime_set: runtimes.RuntimeSet,
    *,
    timeout: float,  # noqa: ASYNC109
) -> list[RuntimeReport]:
    """Every runtime's report, in the set's order, asked concurrently."""
    reports: list[RuntimeReport | None] = [None] * len(runtime_set.runtimes)

    async def check(index: int, named: runtimes.NamedRuntime) -> None:
        reports[index] = await check_runtime(named, timeout=timeout)

    async with trio.open_nursery() as nursery:
        for index, named in enumerate(runtime_set.runtimes):
            nursery.start_soon(check, index, named)
    absent = [
        RuntimeReport(
            "",
            type_,
            ready=False,
            reason="NoRuntime",
            message=f"no {type_.value} runtime on this node: {why}",
        )
        for type_, why in runtime_set.absent.items()
        if runtime_set.default(type_) is None
    ]
    return [report for report in reports if report is not None] + absent


def isolation_annotation(reports: Iterable[RuntimeReport]) -> str:
    """`name: isolation; …` over the runtimes that told theirs."""
    return "; ".join(f"{r.name}: {r.isolation or 'unknown'}" for r in reports)


# Computing the status


def _ki(amount: int) -> str:
    return f"{max(0, amount) // 1024}Ki"


def capacity(host: HostInfo, usage: Usage, *, max_pods: int) -> dict[str, str]:
    return {
        "cpu": str(host.cpus),
        "memory": _ki(host.memory_bytes),
        "pods": str(max_pods),
        "ephemeral-storage": _ki(usage.disk_total),
    }


def allocatable(host: HostInfo, usage: Usage, *, max_pods: int) -> dict[str, str]:
    """Capacity minus the eviction reserves (see the module docs)."""
    disk_reserve = math.ceil(usage.disk_total * DISK_PRESSURE_FRACTION)
    return {
        "cpu": str(host.cpus),
        "memory": _ki(host.memory_bytes - MEMORY_RESERVE),
        "pods": str(max_pods),
        "ephemeral-storage": _ki(usage.disk_total - disk_reserve),
    }


def runtime_condition(type_: runtimes.WorkloadType, reports: Sequence[RuntimeReport]) -> Condition:
    """The readiness condition of `type_`: its default (first) runtime's."""
    condition = RUNTIME_CONDITIONS[type_]
    report = next((r for r in reports if r.workload_type is type_), None)
    if report is None:
        return Condition(
            condition,
            ConditionStatus.FALSE,
            "NoRuntime",
            f"no {type_.value} runtime on this node",
        )
    if not report.ready:
        return Condition(condition, ConditionStatus.FALSE, report.reason, report.message)
    return Condition(
        condition,
        ConditionStatus.TRUE,
        "RuntimeReady",
        f"{type_.value} runtime {report.name} is ready",
    )


def pressure_conditions(usage: Usage) -> list[Condition]:
    memory_short = usage.memory_available < MEMORY_RESERVE
    disk_short = usage.disk_total > 0 and usage.disk_free < usage.disk_total * (
        DISK_PRESSURE_FRACTION
    )
    false, true = ConditionStatus.FALSE, ConditionStatus.TRUE
    return [
        Condition(
            ConditionType.MEMORY_PRESSURE,
            true,
            "KubeletHasInsufficientMemory",
            "kubelet has insufficient memory available",
        )
        if memory_short
        else Condition(
            ConditionType.MEMORY_PRESSURE,
            false,
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        Condition(
            ConditionType.DISK_PRESSURE, true, "KubeletHasDiskPressure", "kubelet has disk pressure"
        )
        if disk_short
        else Condition(
            ConditionType.DISK_PRESSURE,
            false,
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        Condition(
            ConditionType.PID_PRESSURE,
            false,
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
    ]


def node_conditions(reports: Sequence[RuntimeReport], usage: Usage) -> list[Condition]:
    """Every condition the agent owns, in the order kubelet lists them."""
    per_type = [runtime_condition(type_, reports) for type_ in RUNTIME_CONDITIONS]
    ready_types = [c for c in per_type if c.status is ConditionStatus.TRUE]
    if ready_types:
        ready = Condition(
            ConditionType.READY,
            ConditionStatus.TRUE,
            "KubeletReady",
            "agent is posting ready status",
        )
    else:
        why = "; ".join(c.message for c in per_type if c.message) or "no runtime"
        ready = Condition(
            ConditionType.READY,
            ConditionStatus.FALSE,
            "KubeletNotReady",
            f"no runtime is ready: {why}",
        )
    return [*pressure_conditions(usage), ready, *per_type]


def merge_conditions(
    existing: Iterable[Mapping[str, Any]], wanted: Sequence[Condition], *, now: str
) -> list[Obj]:
    """`wanted` stamped with `now` as heartbeat (and as transition where the status
    changed), followed by any existing condition of a type the agent does not own."""
    old = {str(c.get("type")): c for c in existing if isinstance(c, Mapping)}
    result: list[Obj] = []
    for condition in wanted:
        before = old.get(condition.type)
        transition = now
        if before is not None and before.get("status") == condition.status:
            transition = before.get("lastTransitionTime") or now
        result.append(
            {
                "type": condition.type,
                "status": condition.status.value,
                "lastHeartbeatTime": now,
                "lastTransitionTime": transition,
                "reason": condition.reason,
                "message": condition.message,
            }
        )
    owned = {c.type for c in wanted}
    result.extend(dict(c) for t, c in old.items() if t not in owned)
    return result


def node_info(host: HostInfo, reports: Sequence[RuntimeReport]) -> dict[str, str]:
    container = next(
        (r for r in reports if r.workload_type is runtimes.WorkloadType.CONTAINER), None
    )
    return {
        "machineID": host.machine_id,
        "systemUUID": host.system_uuid,
        "bootID": host.boot_id,
        "kernelVersion": host.kernel_version,
        "osImage": host.os_image,
        "containerRuntimeVersion": container.version if container is not None else "",
        "kubeletVersion": AGENT_VERSION,
        "kubeProxyVersion": AGENT_VERSION,
        "operatingSystem": host.operating_system,
        "architecture": host.architecture,
    }


def node_labels(node_name: str, host: HostInfo, extra: Mapping[str, str]) -> dict[str, str]:
    # The hostname label is the node's name (kubelet's default, where the node is named
    # after its host): several agents on one host still get one topology domain each.
    return {
        LABEL_OS: host.operating_system,
        LABEL_ARCH: host.architecture,
        LABEL_HOSTNAME: node_name,
        **extra,
    }


@dataclasses.dataclass(frozen=True, slots=True)
class Observed:
    """Everything a node status is computed from."""

    host: HostInfo
    usage: Usage
    reports: tuple[RuntimeReport, ...]
    # Extra conditions the agent's other parts own (pod networking's NetworkUnavailable).
    extra: tuple[Condition, ...] = ()


def node_status(
    old: Mapping[str, Any],
    observed: Observed,
    *,
    node_name: str,
    node_ip: str,
    port: int,
    max_pods: int,
    now: str,
) -> Obj:
    """The node's status: the agent's fields computed, any other field of `old` kept."""
    status: Obj = {k: v for k, v in old.items()}
    status["capacity"] = capacity(observed.host, observed.usage, max_pods=max_pods)
    status["allocatable"] = allocatable(observed.host, observed.usage, max_pods=max_pods)
    status["conditions"] = merge_conditions(
        old.get("conditions") or (),
        [*node_conditions(observed.reports, observed.usage), *observed.extra],
        now=now,
    )
    status["addresses"] = [
        {"type": "InternalIP", "address": node_ip},
        {"type": "Hostname", "address": node_name},
    ]
    status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
    status["nodeInfo"] = node_info(observed.host, observed.reports)
    return status


def _without_times(status: Mapping[str, Any]) -> Obj:
    result = dict(status)
    result["conditions"] = [
        {k: v for k, v in c.items() if k not in ("lastHeartbeatTime", "lastTransitionTime")}
        for c in status.get("conditions") or ()
        if isinstance(c, Mapping)
    ]
    return result


def status_differs(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether `new` tells a user anything `old` did not (heartbeat times aside)."""
    return _without_times(old) != _without_times(new)


def wall_clock() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def owner_reference(node: Mapping[str, Any]) -> Obj:
    meta = node.get("metadata") or {}
    return {"apiVersion": "v1", "kind": "Node", "name": meta.get("name"), "uid": meta.get("uid")}


def lease_body(
    node_name: str,
    *,
    duration: int,
    renew_time: str,
    node: Mapping[str, Any] | None,
    base: Mapping[str, Any] | None = None,
) -> Obj:
    """The node's Lease, renewed at `renew_time`; `base` is the stored one (if any)."""
    lease: Obj = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        **{k: v for k, v in (base or {}).items() if k not in ("apiVersion", "kind")},
    }
    meta = dict(lease.get("metadata") or {})
    meta["name"] = node_name
    meta["namespace"] = NODE_LEASE_NAMESPACE
    if node is not None and (node.get("metadata") or {}).get("uid"):
        meta["ownerReferences"] = [owner_reference(node)]
    lease["metadata"] = meta
    lease["spec"] = {
        **(lease.get("spec") or {}),
        "holderIdentity": node_name,
        "leaseDurationSeconds": duration,
        "renewTime": renew_time,
    }
    return lease


class LeaseKeeper:
    """Renews one node's Lease; `renew` creates it if missing."""

    def __init__(
        self,
        api: client.Client,
        *,
        node_name: str,
        duration: int,
        clock: Callable[[], datetime.datetime] = wall_clock,
    ) -> None:
        self._api = api
        self._node_name = node_name
        self._duration = duration
        self._clock = clock
        self._lease: Obj | None = None

    @property
    def lease(self) -> Obj | None:
        return self._lease

    async def renew(self, node: Mapping[str, Any] | None) -> Obj:
        for _attempt in range(_STATUS_ATTEMPTS):
            body = lease_body(
                self._node_name,
                duration=self._duration,
                renew_time=timestamps.micro_time(self._clock()),
                node=node,
                base=self._lease,
            )
            try:
                if self._lease is None:
                    self._lease = await self._api.create(
                        LEASES, body, tenant=resources.SYSTEM_TENANT, namespace=NODE_LEASE_NAMESPACE
                    )
                else:
                    self._lease = await self._api.replace(
                        LEASES, body, tenant=resources.SYSTEM_TENANT, namespace=NODE_LEASE_NAMESPACE
                    )
                return self._lease
            except errors.AlreadyExists:
                self._lease = await self._api.get(
                    LEASES,
                    self._node_name,
                    tenant=resources.SYSTEM_TENANT,
                    namespace=NODE_LEASE_NAMESPACE,
                )
            except errors.Conflict:
                self._lease = await self._api.get(
                    LEASES,
                    self._node_name,
                    tenant=resources.SYSTEM_TENANT,
                    namespace=NODE_LEASE_NAMESPACE,
                )
            except errors.NotFound:
                self._lease = None
        raise errors.Conflict(f"lease of node {self._node_name} kept changing under the agent")


# Running


class NodeReporter:
    """Registers a node and keeps its status and Lease current; see the module docs.

    `run` does it all on its own intervals; hollow nodes call `register`,
    `update_status` and `renew_lease` on their own schedule instead. `host` and `usage`
    replace what the machine would say (fixed `usage`: never sampled).
    """

    def __init__(
        self,
        api: client.Client,
        *,
        node_name: str,
        runtimes: runtimes.RuntimeSet,
        root_dir: pathlib.Path,
        node_ip: str = "127.0.0.1",
        port: int = 0,
        labels: Mapping[str, str] | None = None,
        max_pods: int = 110,
        lease_duration_seconds: int = 40,
        lease_renew_interval: float = 10.0,
        status_update_interval: float = 10.0,
        status_report_interval: float = 60.0,
        runtime_timeout: float = 5.0,
        host: HostInfo | None = None,
        usage: Usage | None = None,
        sample: Callable[[pathlib.Path], Usage] = sample_usage,
        clock: Callable[[], datetime.datetime] = wall_clock,
        conditions: Callable[[], Sequence[Condition]] | None = None,
    ) -> None:
        self._api = api
        self.node_name = node_name
        self._runtimes = runtimes
        self._root_dir = root_dir
        self._node_ip = node_ip
        self.port = port
        self._labels = dict(labels or {})
        self._max_pods = max_pods
        self._lease_renew_interval = lease_renew_interval
        self._status_update_interval = status_update_interval
        self._status_report_interval = status_report_interval
        self._runtime_timeout = runtime_timeout
        self._host = host
        self._usage = usage
        self._sample = sample
        self._clock = clock
        self._conditions = conditions
        self._leases = LeaseKeeper(
            api, node_name=node_name, duration=lease_duration_seconds, clock=clock
        )
        self._node: Obj | None = None
        self._last_write = -math.inf
        self._poke = trio.Event()
        self._force_status = False

    @property
    def node(self) -> Obj | None:
        """The Node as last written or read."""
        return self._node

    @property
    def lease(self) -> Obj | None:
        return self._leases.lease

    def update_soon(self) -> None:
        """Compute the status now rather than at the next interval."""
        self._poke.set()

    async def run(self, *, task_status: trio.TaskStatus[Obj] = trio.TASK_STATUS_IGNORED) -> None:
        """Register, post status and the Lease, then keep them current until cancelled.

        `started` with the registered Node.
        """
        delay = _LEASE_RETRY
        while True:
            try:
                node = await self.register()
                break
            except (client.Unreachable, errors.StatusError) as exc:
                # As kubelet: keep trying while the API server is not there yet (or
                # overloaded); refusals of the agent itself (401, 403, 422) are fatal.
                if isinstance(exc, errors.StatusError) and exc.code < 500 and exc.code != 429:
                    raise
                logger.warning(
                    "node %s: registering failed (retrying in %.1fs): %s",
                    self.node_name,
                    delay,
                    exc,
                )
                await trio.sleep(delay)
                delay = min(delay * 2, _REGISTER_RETRY_MAX)
        logger.info(
            "node %s registered (Ready %s)",
            self.node_name,
            _condition_status(node, ConditionType.READY),
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._lease_loop)
            nursery.start_soon(self._status_loop)
            task_status.started(node)

    async def register(self) -> Obj:
        """Create or adopt the Node with its status, and renew its Lease; the Node."""
        if self._host is None:
            self._host = await trio.to_thread.run_sync(read_host_info)
        node = await self._register(await self._observe())
        await self._leases.renew(node)
        return node

    async def update_status(self, *, force: bool = False) -> Obj:
        """Compute the status and write it if it changed (or `force`); the Node."""
        observed = await self._observe()
        before = _condition_status(self._node, ConditionType.READY)
        node = await self._write_status(observed, force=force)
        await self._update_annotation(observed)
        after = _condition_status(self._node, ConditionType.READY)
        if after != before:
            logger.info("node %s: Ready is now %s", self.node_name, after)
        return node

    async def renew_lease(self) -> Obj:
        before = self._leases.lease
        lease = await self._leases.renew(self._node)
        if before is not None and _uid(before) != _uid(lease):
            # The Lease had gone, perhaps after its Node (the garbage collector follows a
            # deleted Node): a forced status write finds out, and registers it again.
            self._force_status = True
            self._poke.set()
        return lease

    async def _observe(self) -> Observed:
        assert self._host is not None
        reports = await check_runtimes(self._runtimes, timeout=self._runtime_timeout)
        usage = self._usage
        if usage is None:
            usage = await trio.to_thread.run_sync(self._sample, self._root_dir)
        extra = tuple(self._conditions()) if self._conditions is not None else ()
        return Observed(self._host, usage, tuple(reports), extra)

    def _status(self, old: Mapping[str, Any], observed: Observed) -> Obj:
        return node_status(
            old,
            observed,
            node_name=self.node_name,
            node_ip=self._node_ip,
            port=self.port,
            max_pods=self._max_pods,
            now=timestamps.rfc3339(self._clock()),
        )

    async def _register(self, observed: Observed) -> Obj:
        assert self._host is not None
        labels = node_labels(self.node_name, self._host, self._labels)
        isolation = isolation_annotation(observed.reports)
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": labels,
                "annotations": {ISOLATION_ANNOTATION: isolation},
            },
            "spec": {},
            "status": self._status({}, observed),
        }
        try:
            node = await self._api.create(NODES, body)
            self._last_write = trio.current_time()
            self._node = node
            logger.debug("node %s created", self.node_name)
            return node
        except errors.AlreadyExists:
            pass
        existing = await self._api.get(NODES, self.node_name)
        meta = existing.get("metadata") or {}
        current_labels = meta.get("labels") or {}
        current_annotations = meta.get("annotations") or {}
        if any(current_labels.get(k) != v for k, v in labels.items()) or (
            current_annotations.get(ISOLATION_ANNOTATION) != isolation
        ):
            existing = await self._api.patch(
                NODES,
                self.node_name,
                {"metadata": {"labels": labels, "annotations": {ISOLATION_ANNOTATION: isolation}}},
            )
        self._node = existing
        logger.debug("node %s exists; adopting it", self.node_name)
        return await self._write_status(observed, force=True)

    async def _write_status(self, observed: Observed, *, force: bool) -> Obj:
        """Write the node's status if it changed (or `force`); the Node as it now is."""
        node = self._node
        for _attempt in range(_STATUS_ATTEMPTS):
            if node is None:
                return await self._register(observed)
            old = node.get("status") or {}
            status = self._status(old, observed)
            if not force and not status_differs(old, status):
                return node
            try:
                node = await self._api.replace(
                    NODES, {**node, "status": status}, subresource="status"
                )
            except errors.Conflict:
                node = await self._api.get(NODES, self.node_name)
                continue
            except errors.NotFound:
                logger.warning("node %s was deleted; registering it again", self.node_name)
                self._node = None
                return await self._register(observed)
            self._node = node
            self._last_write = trio.current_time()
            return node
        raise errors.Conflict(f"node {self.node_name} kept changing under the agent")

    async def _update_annotation(self, observed: Observed) -> None:
        isolation = isolation_annotation(observed.reports)
        annotations = ((self._node or {}).get("metadata") or {}).get("annotations") or {}
        if annotations.get(ISOLATION_ANNOTATION) == isolation:
            return
        self._node = await self._api.patch(
            NODES,
            self.node_name,
            {"metadata": {"annotations": {ISOLATION_ANNOTATION: isolation}}},
        )

    async def _status_loop(self) -> None:
        while True:
            now = trio.current_time()
            due = min(
                now + self._status_update_interval,
                self._last_write + self._status_report_interval,
            )
            with trio.move_on_at(due):
                await self._poke.wait()
            self._poke = trio.Event()
            force = self._force_status or (
                trio.current_time() >= self._last_write + self._status_report_interval
            )
            # Taken now: a renewal that asks again while this write is under way is heard.
            self._force_status = False
            try:
                await self.update_status(force=force)
            except (client.Unreachable, errors.StatusError) as exc:
                logger.warning("node %s: writing status failed: %s", self.node_name, exc)
                self._force_status = self._force_status or force

    async def _lease_loop(self) -> None:
        delay = self._lease_renew_interval
        while True:
            await trio.sleep(delay)
            try:
                await self.renew_lease()
            except (client.Unreachable, errors.StatusError) as exc:
                logger.warning("node %s: renewing the lease failed: %s", self.node_name, exc)
                # kubelet's backoff: 200 ms doubling, never longer than the interval.
                failed = delay < self._lease_renew_interval
                delay = min(self._lease_renew_interval, delay * 2 if failed else _LEASE_RETRY)
            else:
                delay = self._lease_renew_interval


def _uid(obj: Mapping[str, Any]) -> str | None:
    uid = (obj.get("metadata") or {}).get("uid")
    return str(uid) if uid else None


def _condition_status(node: Mapping[str, Any] | None, type_: str) -> str | None:
    for condition in ((node or {}).get("status") or {}).get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == type_:
            return str(condition.get("status"))
    return None
