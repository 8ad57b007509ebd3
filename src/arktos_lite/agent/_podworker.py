"""One pod's worker: brings the runtime in line with the pod object, and reports status.

The `PodManager` runs one `PodWorker` task per pod uid and wakes it when the pod object
changes, when the runtime's containers change (PLEG), when a probe result changes, and at
the deadlines the worker asks for (back-off ends, retries). Each wake-up runs one
level-triggered `sync`: it reads the runtime's sandboxes and containers of the pod (found
by the `io.kubernetes.pod.uid` label, so a restarted agent adopts what runs) and acts:

* A pod that is being deleted (or gone) has its containers stopped gracefully (preStop
  first; `StopContainer` with what is left of the grace period), its sandboxes stopped
  and removed, its volumes cleaned up, and its object deleted with `gracePeriodSeconds=0`
  and a uid precondition. The worker then ends.
* Otherwise: a ready sandbox (a new one when none is ready), volumes, the init containers
  one at a time in order, then every app container. An exited container restarts as the
  restart policy says, with kubelet's crash-loop back-off (at once the first time, then
  `backoff_base` doubling up to `backoff_max`; reset once a container ran for
  `backoff_reset`); while it waits its state is `CrashLoopBackOff`. A container whose
  liveness (or startup) probe failed is stopped and restarted the same way.
* A pod whose containers are all done for good (phase Succeeded or Failed) gets its
  sandbox stopped; nothing restarts.
* A VM pod runs its one VM container as `spec.virtualMachine.powerSpec` says: `Running`
  (or none) starts it, also again after it was shut off (a VM powers on again rather
  than being replaced); `Shutdown` stops it gracefully (StopContainer with the grace
  period) and it stays off, the pod staying Running with `VirtualMachineReady` False.
  A VM that crashed is powered on again after the crash-loop back-off. `Paused` freezes
  a running VM (`pause_vm`), `Suspended` saves it to disk and stops it (`suspend_vm`),
  and `Running` resumes either; each sync takes one step per look (Suspended to Paused
  resumes, then pauses; Paused to Shutdown resumes, then stops). A runtime without the
  power calls gets a Warning event `UnsupportedPowerSpec` once and the VM is left as it
  is. A new `spec.virtualMachine.resources` size is asked of the runtime
  (`update_container_resources`) once per size, measured against the size the runtime
  reports (`VM_VCPUS`, `VM_MEMORY`); a refusal is a `ResizeFailed` event and a message on
  the VM's status, and the VM runs on as it was. The pod's network ports (`vm_ports`:
  Neutron ports known after the VM was created, or gone since) are compared with the NICs
  the runtime reports (the `arktos.futurewei.com/nics` annotation) whenever the VM exists
  and is not suspended (a suspended VM gets them once it runs again); a difference is
  asked of the runtime (`update_container_resources` with the VM's current size and the
  NICs annotation) once per set of ports: `NICAttached`/`NICDetached` events name each
  port; a failure is a `NICHotplugFailed` event, a message on the VM's status, and a retry
  after `retry_base` doubling up to `retry_max`, while the VM runs on. A `keyPairName`
  is resolved from the Secret of that name (see `env.vm_public_key`) before the VM is
  created; while it is missing the VM waits, retried like any config error. Its status
  carries `virtualMachineStatus` from the runtime's `VM_*` annotations (the listed
  container's, which are fresh on every sync).
* Status is written to `pods/<name>/status` (a merge patch of the agent's fields) only
  when it differs from what was last seen or written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from arktos_lite import client, machinery, network as network_, runtime as runtime_
from arktos_lite.agent import (
    _env as env,
    _network as podnetwork,
    _podconfig as podconfig,
    _probes as probes,
    _runtimes as runtimes,
    _status as status,
    _volumes as volumes,
)
from arktos_lite.api import errors, resources
from arktos_lite.runtime import (
    VM_ID,
    VM_MEMORY,
    VM_POWER_STATE,
    VM_RESTART_COUNT,
    VM_STATE,
    VM_VCPUS,
    errors as runtime_errors,
)
from arktos_lite.runtime.cri import api_pb2 as cri

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
ContainerKey = tuple[bool, str]  # (is an init container, name)

PODS = next(r for r in resources.RESOURCES if (r.group, r.kind) == ("", "Pod"))

# Kubelet never gives a container less than this after its preStop hook, unless the
# grace period is 0.
MIN_GRACE_AFTER_PRE_STOP = 2
_ACTIONS_PER_SYNC = 4
# Errors of one sync that a later sync may not meet again.
TRANSIENT_ERRORS = (
    runtime_errors.CRIError,
    errors.StatusError,
    client.Unreachable,
    OSError,
    httpx.HTTPError,
    network_.NetworkError,
)


class WaitingReason:
    """Waiting reasons the worker sets, as kubelet names them."""

    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
    ERR_IMAGE_PULL = "ErrImagePull"
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
    CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    CREATE_CONTAINER_ERROR = "CreateContainerError"
    RUN_CONTAINER_ERROR = "RunContainerError"


NO_RUNTIME_REASON = "NoRuntime"


class PowerSpec:
    """`spec.virtualMachine.powerSpec` values (Arktos' VmPowerSpec)."""

    RUNNING = "Running"
    SHUTDOWN = "Shutdown"
    PAUSED = "Paused"
    SUSPENDED = "Suspended"


class VmPower:
    """The power states a VM runtime reports (`VM_POWER_STATE`) that powerSpecs aim at."""

    RUNNING = "running"
    PAUSED = "paused"
    SUSPENDED = "suspended"


_POWER_STATES = {
    PowerSpec.RUNNING: VmPower.RUNNING,
    PowerSpec.PAUSED: VmPower.PAUSED,
    PowerSpec.SUSPENDED: VmPower.SUSPENDED,
}
# Event reason and verb of each power call.
_POWER_EVENTS = {
    "pause": ("Paused", "Paused"),
    "resume": ("Resumed", "Resumed"),
    "suspend": ("Suspended", "Suspended"),
}


def power_spec(pod: Mapping[str, Any]) -> str:
    vm = (pod.get("spec") or {}).get("virtualMachine") or {}
    return str(vm.get("powerSpec") or PowerSpec.RUNNING)


# A VM's state and power state when its runtime does not report them, by CRI state.
_VM_STATES = {
    cri.CONTAINER_CREATED: ("building", "nostate"),
    cri.CONTAINER_RUNNING: ("active", "running"),
    cri.CONTAINER_EXITED: ("stopped", "shutdown"),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Timings and places shared by every worker of one manager."""

    node_name: str
    node_ip: str
    root_dir: Path
    backoff_base: float = 10.0
    backoff_max: float = 300.0
    backoff_reset: float = 600.0
    # Retry of a failed image pull, config or runtime call: doubling up to retry_max.
    retry_base: float = 1.0
    retry_max: float = 30.0
    resync_interval: float = 60.0


@dataclasses.dataclass(frozen=True, slots=True)
class Services:
    """What workers use to reach the world."""

    api: client.Client
    recorder: machinery.EventRecorder
    reader: env.ObjectReader
    # Pods' own network namespaces (None: every pod shares the node's network).
    network: podnetwork.PodNetworking | None = None


def go_duration(seconds: float) -> str:
    """A duration as Go prints it, as kubelet's back-off messages show: 10s, 1m20s, 5m0s."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m{secs}s"


def _normalized(value: Any) -> Any:
    """`value` without nulls, empty strings, maps and lists, for comparing statuses."""
    if isinstance(value, Mapping):
        items = {k: _normalized(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v not in (None, "", {}, [])}
    if isinstance(value, list | tuple):
        return [_normalized(v) for v in value]
    return value


def same_status(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return bool(_normalized(status.owned(old)) == _normalized(status.owned(new)))


class Wakeup:
    """A level-triggered wake-up: `set` any number of times, `wait` returns once."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        if self._event.is_set():
            self._event = trio.Event()

    async def wait(self, deadline: float) -> None:
        with trio.move_on_at(deadline):
            await self._event.wait()


@dataclasses.dataclass(slots=True)
class _Observed:
    """The runtime's view of one pod."""

    sandboxes: list[cri.PodSandbox]
    ready_sandbox: cri.PodSandbox | None
    pod_ips: tuple[str, ...]
    # Runtime containers by container, oldest first.
    containers: dict[ContainerKey, list[cri.Container]]
    statuses: dict[str, cri.ContainerStatus]

    def instances(self, key: ContainerKey) -> tuple[status.Instance | None, status.Instance | None]:
        listed = self.containers.get(key) or []
        found = [self._instance(c) for c in listed[-2:]]
        current = found[-1] if found else None
        previous = found[-2] if len(found) > 1 else None
        return current, previous

    def running(self) -> list[cri.Container]:
        return [
            c
            for listed in self.containers.values()
            for c in listed
            if c.state in (cri.CONTAINER_RUNNING, cri.CONTAINER_CREATED)
        ]

    def _instance(self, container: cri.Container) -> status.Instance:
        found = self.statuses.get(container.id)
        restarts = podconfig.restart_count(container.annotations, container.metadata.attempt)
        state = _STATES.get(container.state, status.ContainerState.UNKNOWN)
        if found is None:
            return status.Instance(
                id=container.id, state=state, restart_count=restarts, image_ref=container.image_ref
            )
        return status.Instance(
            id=container.id,
            state=state,
            restart_count=restarts,
            image_ref=found.image_ref or container.image_ref,
            started_at=found.started_at,
            finished_at=found.finished_at,
            exit_code=found.exit_code,
            reason=found.reason,
            message=found.message,
        )


_STATES = {
    cri.CONTAINER_CREATED: status.ContainerState.CREATED,
    cri.CONTAINER_RUNNING: status.ContainerState.RUNNING,
    cri.CONTAINER_EXITED: status.ContainerState.EXITED,
    cri.CONTAINER_UNKNOWN: status.ContainerState.UNKNOWN,
}


@dataclasses.dataclass(slots=True)
class _Prober:
    container_id: str
    prober: probes.ContainerProber
    scope: trio.CancelScope


@dataclasses.dataclass(frozen=True, slots=True)
class _NicChange:
    """The ports (NICs annotation JSON) asked of the runtime for one VM; when to ask again
    after a failure (never after a success), and the delay that led there."""

    vm_id: str
    ports: str
    at: float = math.inf
    delay: float | None = None


@dataclasses.dataclass(slots=True)
class _Retry:
    """A held-back action: why, and when to try again."""

    reason: str
    message: str
    at: float
    delay: float


def _key_of(container: cri.Container) -> ContainerKey:
    init = container.labels.get(podconfig.CONTAINER_TYPE) == podconfig.CONTAINER_TYPE_INIT
    name = container.labels.get(podconfig.CONTAINER_NAME) or container.metadata.name
    return (init, name)


def _has_probe(container: Mapping[str, Any]) -> bool:
    return any(container.get(k) for k in ("livenessProbe", "readinessProbe", "startupProbe"))


class PodWorker:
    """Keeps one pod (by uid) as its object says; see the module docs."""

    def __init__(
        self,
        *,
        uid: str,
        key: str,
        get_pod: Callable[[], Obj | None],
        runtime: runtimes.NamedRuntime | None,
        settings: Settings,
        services: Services,
    ) -> None:
        self.uid = uid
        self.key = key
        self.wakeup = Wakeup()
        self.runtime = runtime
        self._get_pod = get_pod
        self._settings = settings
        self._services = services
        self._pod: Obj | None = None
        self._wake_at = math.inf
        self._backoff: dict[ContainerKey, float] = {}
        self._exit_seen: dict[str, float] = {}
        self._backoff_noted: set[str] = set()
        self._retries: dict[ContainerKey, _Retry] = {}
        self._probers: dict[ContainerKey, _Prober] = {}
        self._status_cache: dict[str, cri.ContainerStatus] = {}
        self._volumes: dict[str, Path] | None = None
        self._volume_retry: _Retry | None = None
        self._sent: tuple[Obj, int] | None = None
        self._termination_deadline: float | None = None
        self._no_runtime_noted = False
        self._unsupported_power_noted: set[str] = set()
        # VM id -> the (vCPUs, memory) last asked of the runtime, and why it refused.
        self._resized: dict[str, tuple[int, int]] = {}
        self._resize_problem: str | None = None
        # The network ports last asked of the runtime for the VM, and why it refused.
        self._nics_asked: _NicChange | None = None
        self._nic_problem: str | None = None
        self._nursery: trio.Nursery | None = None
        self.done = False

    # The loop

    async def run(self) -> None:
        """Sync until the pod is gone and cleaned up."""
        delay = self._settings.retry_base
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            while True:
                self.wakeup.clear()
                now = trio.current_time()
                self._wake_at = now + self._settings.resync_interval
                try:
                    finished = await self.sync()
                    delay = self._settings.retry_base
                except TRANSIENT_ERRORS as exc:
                    logger.warning(
                        "pod %s: sync failed, retrying in %.1fs: %s", self.key, delay, exc
                    )
                    self._wake_at = min(self._wake_at, now + delay)
                    delay = min(delay * 2, self._settings.retry_max)
                    finished = False
                if finished:
                    break
                await self.wakeup.wait(self._wake_at)
            nursery.cancel_scope.cancel()
        self.done = True

    def _wake_by(self, at: float) -> None:
        self._wake_at = min(self._wake_at, at)

    def current_pod(self) -> Obj | None:
        pod = self._get_pod()
        if pod is not None and (pod.get("metadata") or {}).get("uid") != self.uid:
            return None
        return pod

    async def sync(self) -> bool:
        """One level-triggered pass; True when the pod is gone and the worker may end."""
        pod = self.current_pod()
        if pod is None:
            if self._pod is not None:
                await self.terminate(self._pod, delete=False)
            return True
        self._pod = pod
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            await self.terminate(pod, delete=True)
            return True
        if self.runtime is None:
            await self._report_no_runtime(pod)
            return False
        # Each action (a sandbox, then the containers it allows) is followed by a fresh
        # look, so a new pod reaches Running in one sync and one status write.
        for _ in range(_ACTIONS_PER_SYNC):
            observed = await self._observe()
            if not await self._act(pod, observed):
                break
        else:
            observed = await self._observe()
            self.wakeup.set()
        self._manage_probers(pod, observed)
        await self._write_status(pod, observed)
        return False

    # Observing the runtime

    async def _observe(self) -> _Observed:
        assert self.runtime is not None
        rt = self.runtime.runtime
        selector = {podconfig.POD_UID: self.uid}
        sandboxes = sorted(
            await rt.list_pod_sandbox(cri.PodSandboxFilter(label_selector=selector)),
            key=lambda s: s.created_at,
        )
        ready = next((s for s in reversed(sandboxes) if s.state == cri.SANDBOX_READY), None)
        pod_ips: tuple[str, ...] = ()
        if ready is not None:
            sandbox_status = await rt.pod_sandbox_status(ready.id)
            network = sandbox_status.network
            pod_ips = tuple(
                ip for ip in (network.ip, *(a.ip for a in network.additional_ips)) if ip
            )
        listed = await rt.list_containers(cri.ContainerFilter(label_selector=selector))
        containers: dict[ContainerKey, list[cri.Container]] = {}
        for container in sorted(
            listed,
            key=lambda c: (
                podconfig.restart_count(c.annotations, c.metadata.attempt),
                c.created_at,
            ),
        ):
            containers.setdefault(_key_of(container), []).append(container)
        statuses: dict[str, cri.ContainerStatus] = {}
        for history in containers.values():
            for container in history[-2:]:
                cached = self._status_cache.get(container.id)
                # A VM may have been powered on and off again since it was last
                # seen, in the same CRI state: its status is always read afresh.
                if (
                    cached is None
                    or cached.state != container.state
                    or VM_STATE in container.annotations
                ):
                    try:
                        cached = await rt.container_status(container.id)
                    except runtime_errors.NotFound:
                        continue
                    self._status_cache[container.id] = cached
                statuses[container.id] = cached
        known = {c.id for c in listed}
        for stale in [i for i in self._status_cache if i not in known]:
            del self._status_cache[stale]
        return _Observed(
            sandboxes=sandboxes,
            ready_sandbox=ready,
            pod_ips=pod_ips,
            containers=containers,
            statuses=statuses,
        )

    def _pod_ips(self, observed: _Observed) -> tuple[str, ...]:
        # A runtime without pod networking runs the pod in the host's network.
        if observed.pod_ips:
            return observed.pod_ips
        return (self._settings.node_ip,) if observed.ready_sandbox is not None else ()

    # Acting

    async def _act(self, pod: Obj, observed: _Observed) -> bool:
        """Start, restart or stop what the pod needs; True if anything changed."""
        assert self.runtime is not None
        spec = pod.get("spec") or {}
        policy = spec.get("restartPolicy") or "Always"
        view = self._view(pod, observed)
        pod_phase = status.phase(self._status_spec(pod), view)
        old_phase = (pod.get("status") or {}).get("phase")
        if old_phase in status.TERMINAL_PHASES or pod_phase in status.TERMINAL_PHASES:
            return await self._finish(pod, observed)
        sandbox = observed.ready_sandbox
        acted = False
        if sandbox is None:
            await self._new_sandbox(pod, observed)
            return True
        sandbox_config = podconfig.sandbox_config(
            pod, root_dir=self._settings.root_dir, attempt=sandbox.metadata.attempt
        )
        if not await self._ensure_volumes(pod):
            return acted
        pod_ip = self._pod_ips(observed)[0] if self._pod_ips(observed) else ""
        # Init containers, one at a time in order.
        for container in podconfig.init_containers(pod):
            key: ContainerKey = (True, container.get("name") or "")
            current, _ = observed.instances(key)
            if current is not None and current.state is status.ContainerState.EXITED:
                if current.exit_code == 0:
                    continue
                if policy == "Never":
                    return acted
                return await self._restart(
                    pod, container, key, current, sandbox.id, sandbox_config, pod_ip
                )
            if current is not None and current.state is status.ContainerState.CREATED:
                await self.runtime.runtime.start_container(current.id)
                return True
            if current is not None:
                return acted  # running: wait for it
            return await self._start(pod, container, key, 0, sandbox.id, sandbox_config, pod_ip)
        vm = podconfig.vm_container(pod)
        if vm is not None:
            return await self._act_vm(pod, vm, observed, sandbox.id, sandbox_config, pod_ip)
        for container in podconfig.app_containers(pod):
            key = (False, container.get("name") or "")
            current, _ = observed.instances(key)
            if current is None:
                acted |= await self._start(
                    pod, container, key, 0, sandbox.id, sandbox_config, pod_ip
                )
            elif current.state is status.ContainerState.CREATED:
                await self.runtime.runtime.start_container(current.id)
                acted = True
            elif current.state is status.ContainerState.RUNNING:
                acted |= await self._check_liveness(pod, container, key, current)
            elif policy == "Always" or (policy == "OnFailure" and current.exit_code != 0):
                acted |= await self._restart(
                    pod, container, key, current, sandbox.id, sandbox_config, pod_ip
                )
        return acted

    async def _act_vm(
        self,
        pod: Obj,
        vm: Mapping[str, Any],
        observed: _Observed,
        sandbox_id: str,
        sandbox_config: cri.PodSandboxConfig,
        pod_ip: str,
    ) -> bool:
        """Bring a VM pod's VM to its powerSpec and size; True if anything changed.

        Each call takes at most one step towards the powerSpec (start, pause, resume,
        suspend, stop); the sync's next look takes the next one.
        """
        assert self.runtime is not None
        rt = self.runtime.runtime
        name = vm.get("name") or ""
        key: ContainerKey = (False, name)
        current, _ = observed.instances(key)
        power = power_spec(pod)
        if current is None:
            return await self._start(pod, vm, key, 0, sandbox_id, sandbox_config, pod_ip)
        listed = (observed.containers.get(key) or [])[-1]
        vm_power = listed.annotations.get(VM_POWER_STATE, "")
        # Ports first: a VM about to be powered on boots with them.
        if vm_power != VmPower.SUSPENDED and await self._plug_nics(pod, vm, current.id, listed):
            return True
        if current.state is status.ContainerState.CREATED:
            if power == PowerSpec.SHUTDOWN:
                return False
            await rt.start_container(current.id)
            return True
        if current.state is status.ContainerState.RUNNING:
            if power == PowerSpec.SHUTDOWN:
                if vm_power == VmPower.PAUSED:
                    # A frozen guest cannot hear the ACPI power button: thaw it first.
                    await self._vm_power_call(pod, "resume", current.id)
                self._event(pod, "Normal", "Stopping", f"Shutting down virtual machine {name}")
                with contextlib.suppress(runtime_errors.NotFound):
                    await rt.stop_container(current.id, timeout=podconfig.grace_period(pod))
                return True
            wanted = _POWER_STATES.get(power, VmPower.RUNNING)
            if vm_power == VmPower.SUSPENDED == wanted:
                return False  # its size is on disk with it: resized once it runs again
            if vm_power == wanted or not vm_power:
                return await self._resize_vm(pod, vm, current.id, listed)
            if wanted == VmPower.PAUSED and vm_power != VmPower.RUNNING:
                call = "resume"  # a suspended VM runs again first, then pauses
            else:
                call = {
                    VmPower.RUNNING: "resume",
                    VmPower.PAUSED: "pause",
                    VmPower.SUSPENDED: "suspend",
                }[wanted]
            return await self._vm_power_call(pod, call, current.id, name=name)
        if power == PowerSpec.SHUTDOWN:
            return await self._resize_vm(pod, vm, current.id, listed)
        if current.exit_code != 0 and self._vm_backing_off(pod, key, current):
            return False
        # Shut off (by powerSpec before, or from inside): power the same VM on again
        # (a Paused or Suspended one is then paused or suspended by the next step).
        await rt.start_container(current.id)
        self._event(pod, "Normal", "Started", f"Started virtual machine {name}")
        return True

    async def _vm_power_call(self, pod: Obj, call: str, vm_id: str, *, name: str = "") -> bool:
        """Pause, resume or suspend a VM; False when its runtime cannot (an event says so
        once per powerSpec)."""
        assert self.runtime is not None
        rt = self.runtime.runtime
        power = power_spec(pod)
        try:
            if not isinstance(rt, runtime_.VmRuntime):
                raise runtime_errors.Unimplemented(f"runtime {self.runtime.name} runs no VMs")
            if call == "pause":
                await rt.pause_vm(vm_id)
            elif call == "resume":
                await rt.resume_vm(vm_id)
            else:
                await rt.suspend_vm(vm_id)
        except runtime_errors.Unimplemented as exc:
            if power not in self._unsupported_power_noted:
                self._unsupported_power_noted.add(power)
                self._event(
                    pod,
                    "Warning",
                    "UnsupportedPowerSpec",
                    f"powerSpec {power} is not supported by this runtime: {exc.message}",
                )
            return False
        self._unsupported_power_noted.discard(power)
        if name:
            reason, verb = _POWER_EVENTS[call]
            self._event(pod, "Normal", reason, f"{verb} virtual machine {name}")
        return True

    async def _resize_vm(
        self, pod: Obj, vm: Mapping[str, Any], vm_id: str, listed: cri.Container
    ) -> bool:
        """Ask the runtime to give the VM the size its spec now asks for, once per size:
        a refusal is an event and a status message, never a retry loop."""
        assert self.runtime is not None
        reported = listed.annotations
        if VM_VCPUS not in reported or VM_MEMORY not in reported:
            return False  # the runtime does not say: nothing to compare with
        spec_vm = (pod.get("spec") or {}).get("virtualMachine") or {}
        try:
            wanted = runtime_.vm_resources(spec_vm.get("resources"))
        except runtime_errors.InvalidArgument:
            return False  # the runtime refused this spec at creation already
        have = (_int_version(reported.get(VM_VCPUS)), _int_version(reported.get(VM_MEMORY)))
        size = (wanted.vcpus, wanted.memory)
        if have[0] == size[0] and have[1] // 1024 == size[1] // 1024:
            self._resized.pop(vm_id, None)
            self._resize_problem = None
            return False
        if self._resized.get(vm_id) == size:
            return False
        self._resized[vm_id] = size
        name = vm.get("name") or ""
        try:
            await self.runtime.runtime.update_container_resources(
                vm_id,
                _vm_size(wanted.vcpus, wanted.memory),
                annotations={podconfig.VIRTUAL_MACHINE: orjson.dumps(spec_vm).decode()},
            )
        except (
            runtime_errors.FailedPrecondition,
            runtime_errors.InvalidArgument,
            runtime_errors.Unimplemented,
        ) as exc:
            self._resize_problem = (
                f"resize to {wanted.vcpus} vCPUs, {wanted.memory} bytes failed: {exc.message}"
            )
            self._event(pod, "Warning", "ResizeFailed", f"Virtual machine {name}: {exc.message}")
            return False
        except runtime_errors.CRIError:
            self._resized.pop(vm_id, None)  # transient: the next sync tries again
            raise
        self._resize_problem = None
        self._event(
            pod,
            "Normal",
            "Resized",
            f"Resized virtual machine {name} to {wanted.vcpus} vCPUs and {wanted.memory} bytes",
        )
        return True

    async def _plug_nics(
        self, pod: Obj, vm: Mapping[str, Any], vm_id: str, listed: cri.Container
    ) -> bool:
        """Ask the runtime to give the VM a NIC for each of the pod's network ports, and
        none for ports it no longer has, once per set of ports (again after a failure,
        with back-off); True when the runtime did."""
        assert self.runtime is not None
        wanted = podconfig.vm_ports(pod)
        have = _reported_ports(listed.annotations.get(podconfig.VM_NICS, ""))
        if _port_set(wanted) == _port_set(have):
            self._nics_asked = None
            self._nic_problem = None
            return False
        ports = orjson.dumps(wanted).decode()
        now = trio.current_time()
        asked = self._nics_asked
        previous_delay = None
        if asked is not None and (asked.vm_id, asked.ports) == (vm_id, ports):
            if now < asked.at:
                if asked.at < math.inf:
                    self._wake_by(asked.at)
                return False
            previous_delay = asked.delay
        name = vm.get("name") or ""
        reported = listed.annotations
        resources = cri.LinuxContainerResources()
        if VM_VCPUS in reported and VM_MEMORY in reported:
            # The size it has: a NIC change is no resize.
            resources = _vm_size(
                _int_version(reported[VM_VCPUS]), _int_version(reported[VM_MEMORY])
            )
        try:
            await self.runtime.runtime.update_container_resources(
                vm_id, resources, annotations={podconfig.VM_NICS: ports}
            )
        except runtime_errors.CRIError as exc:
            delay = self._next_delay(previous_delay)
            self._nics_asked = _NicChange(vm_id, ports, now + delay, delay)
            self._wake_by(now + delay)
            self._nic_problem = f"network ports not attached: {exc.message}"
            self._event(
                pod,
                "Warning",
                "NICHotplugFailed",
                f"Virtual machine {name}: {exc.message} (retrying in {go_duration(delay)})",
            )
            return False
        self._nics_asked = _NicChange(vm_id, ports)
        self._nic_problem = None
        kept = _port_set(have)
        for port in wanted:
            if _port_key(port) not in kept:
                self._event(
                    pod,
                    "Normal",
                    "NICAttached",
                    f"Attached port {port['portId']} ({port['macAddress']}) to virtual machine "
                    f"{name} as {port['name']}",
                )
        gone = _port_set(wanted)
        for port in have:
            if _port_key(port) not in gone:
                self._event(
                    pod,
                    "Normal",
                    "NICDetached",
                    f"Detached port {port.get('portId', '')} ({port.get('macAddress', '')}) "
                    f"from virtual machine {name}",
                )
        return True

    def _vm_backing_off(self, pod: Obj, key: ContainerKey, current: status.Instance) -> bool:
        """Whether a crashed VM waits before it is powered on again: the crash-loop
        back-off of containers, over the same VM's successive crashes."""
        settings = self._settings
        now = trio.current_time()
        # One VM container crashes many times: each crash is known by its finish time.
        crash = f"{current.id}@{current.finished_at}"
        seen = self._exit_seen.setdefault(crash, now)
        ran = (current.finished_at - current.started_at) / 1e9
        delay = 0.0 if ran >= settings.backoff_reset else self._backoff.get(key, 0.0)
        if now < seen + delay:
            self._wake_by(seen + delay)
            if crash not in self._backoff_noted:
                self._backoff_noted.add(crash)
                self._event(
                    pod,
                    "Warning",
                    "BackOff",
                    f"Back-off {go_duration(delay)} powering on crashed virtual machine {key[1]}",
                )
            return True
        self._backoff[key] = (
            settings.backoff_base if delay == 0 else min(delay * 2, settings.backoff_max)
        )
        self._exit_seen.pop(crash, None)
        self._backoff_noted.discard(crash)
        return False

    async def _finish(self, pod: Obj, observed: _Observed) -> bool:
        """Stop whatever still runs of a pod that is done, and its sandbox."""
        assert self.runtime is not None
        acted = False
        running = observed.running()
        if running:
            deadline = trio.current_time() + podconfig.grace_period(pod)
            async with trio.open_nursery() as nursery:
                for container in running:
                    nursery.start_soon(self._kill, pod, container, deadline)
            acted = True
        for sandbox in observed.sandboxes:
            if sandbox.state == cri.SANDBOX_READY:
                await self.runtime.runtime.stop_pod_sandbox(sandbox.id)
                acted = True
        if acted and self._services.network is not None:
            # A pod that is done gives its address back, as kubelet's StopPodSandbox does.
            await self._services.network.detach(self.uid)
        return acted

    async def _new_sandbox(self, pod: Obj, observed: _Observed) -> str:
        assert self.runtime is not None
        attempt = max((s.metadata.attempt + 1 for s in observed.sandboxes), default=0)
        config = podconfig.sandbox_config(pod, root_dir=self._settings.root_dir, attempt=attempt)
        # Whatever still runs in a sandbox that died is stopped first, as kubelet does.
        for container in observed.running():
            await self.runtime.runtime.stop_container(container.id, timeout=0)
        for sandbox in observed.sandboxes:
            await self.runtime.runtime.stop_pod_sandbox(sandbox.id)
        await trio.to_thread.run_sync(
            lambda: Path(config.log_directory).mkdir(parents=True, exist_ok=True)
        )
        if self._services.network is not None:
            try:
                attachment = await self._services.network.attach(pod, self.runtime)
            except network_.NetworkError as exc:
                self._event(
                    pod, "Warning", "FailedCreatePodSandBox", f"pod network not set up: {exc}"
                )
                raise
            if attachment is not None:
                config.annotations.update(podnetwork.sandbox_annotations(attachment))
                if not attachment.guest:
                    config.linux.security_context.namespace_options.network = cri.POD
        sandbox_id = await self.runtime.runtime.run_pod_sandbox(config)
        logger.debug("pod %s: sandbox %s (attempt %d)", self.key, sandbox_id, attempt)
        return sandbox_id

    async def _ensure_volumes(self, pod: Obj) -> bool:
        if self._volumes is not None:
            return True
        now = trio.current_time()
        retry = self._volume_retry
        if retry is not None and now < retry.at:
            self._wake_by(retry.at)
            return False
        ref = podconfig.PodRef.of(pod)
        try:
            self._volumes = await volumes.prepare_volumes(
                pod=pod,
                pod_dir=podconfig.pod_dir(self._settings.root_dir, ref),
                reader=self._services.reader,
            )
        except env.ContainerConfigError as exc:
            delay = self._next_delay(retry.delay if retry else None)
            self._volume_retry = _Retry(
                WaitingReason.CREATE_CONTAINER_CONFIG_ERROR, str(exc), now + delay, delay
            )
            self._wake_by(now + delay)
            self._event(pod, "Warning", "FailedMount", str(exc))
            return False
        self._volume_retry = None
        return True

    def _next_delay(self, previous: float | None) -> float:
        if previous is None:
            return self._settings.retry_base
        return min(previous * 2, self._settings.retry_max)

    async def _restart(
        self,
        pod: Obj,
        container: Mapping[str, Any],
        key: ContainerKey,
        current: status.Instance,
        sandbox_id: str,
        sandbox_config: cri.PodSandboxConfig,
        pod_ip: str,
    ) -> bool:
        """Restart an exited container, or hold it back while it is backing off."""
        settings = self._settings
        now = trio.current_time()
        seen = self._exit_seen.setdefault(current.id, now)
        ran = (current.finished_at - current.started_at) / 1e9
        delay = self._backoff.get(key, 0.0)
        if ran >= settings.backoff_reset:
            delay = 0.0
        due = seen + delay
        if now < due:
            ref = podconfig.PodRef.of(pod)
            name = key[1]
            message = f"back-off {go_duration(delay)} restarting failed container={name} pod={ref}"
            self._retries[key] = _Retry(WaitingReason.CRASH_LOOP_BACK_OFF, message, due, delay)
            self._wake_by(due)
            if current.id not in self._backoff_noted:
                self._backoff_noted.add(current.id)
                self._event(
                    pod,
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {name} in pod {ref}",
                )
            return False
        retry = self._retries.get(key)
        if retry is not None and retry.reason == WaitingReason.CRASH_LOOP_BACK_OFF:
            del self._retries[key]
        started = await self._start(
            pod, container, key, current.restart_count + 1, sandbox_id, sandbox_config, pod_ip
        )
        if started:
            self._backoff[key] = (
                settings.backoff_base if delay == 0 else min(delay * 2, settings.backoff_max)
            )
            self._exit_seen.pop(current.id, None)
            self._backoff_noted.discard(current.id)
        return started

    async def _start(
        self,
        pod: Obj,
        container: Mapping[str, Any],
        key: ContainerKey,
        restart_count: int,
        sandbox_id: str,
        sandbox_config: cri.PodSandboxConfig,
        pod_ip: str,
    ) -> bool:
        """Pull, configure, create and start one container; False if held back."""
        assert self.runtime is not None
        rt = self.runtime.runtime
        now = trio.current_time()
        retry = self._retries.get(key)
        if retry is not None and now < retry.at:
            self._wake_by(retry.at)
            if retry.reason == WaitingReason.ERR_IMAGE_PULL:
                self._retries[key] = dataclasses.replace(
                    retry, reason=WaitingReason.IMAGE_PULL_BACK_OFF
                )
            return False
        name = key[1]
        try:
            await self._pull(pod, container, sandbox_config)
            pairs = await env.container_env(
                pod=pod,
                container=container,
                reader=self._services.reader,
                node_ip=self._settings.node_ip,
                pod_ip=pod_ip,
            )
            variables = dict(pairs)
            public_key = None
            if not key[0] and podconfig.vm_container(pod) is not None:
                public_key = await env.vm_public_key(pod=pod, reader=self._services.reader)
            config = podconfig.container_config(
                pod,
                container,
                init=key[0],
                restart_count=restart_count,
                envs=pairs,
                command=env.expand(container.get("command") or (), variables),
                args=env.expand(container.get("args") or (), variables),
                mounts=volumes.mounts(container, self._volumes or {}),
            )
            if public_key is not None:
                # The runtime reads the VM from this annotation: the key joins it there.
                vm_spec = {**(pod.get("spec") or {}).get("virtualMachine", {})}
                vm_spec["publicKey"] = public_key
                config.annotations[podconfig.VIRTUAL_MACHINE] = orjson.dumps(vm_spec).decode()
        except _HeldBack as held:
            self._hold(pod, key, held.reason, held.message, retry)
            return False
        except env.ContainerConfigError as exc:
            self._hold(pod, key, WaitingReason.CREATE_CONTAINER_CONFIG_ERROR, str(exc), retry)
            return False
        try:
            container_id = await rt.create_container(sandbox_id, config, sandbox_config)
        except runtime_errors.CRIError as exc:
            self._hold(pod, key, WaitingReason.CREATE_CONTAINER_ERROR, exc.message, retry)
            return False
        self._event(pod, "Normal", "Created", f"Created container {name}")
        try:
            await rt.start_container(container_id)
        except runtime_errors.CRIError as exc:
            self._event(pod, "Warning", "Failed", f"Error: {exc.message}")
            self._retries.pop(key, None)
            return True
        self._retries.pop(key, None)
        self._event(pod, "Normal", "Started", f"Started container {name}")
        post_start = (container.get("lifecycle") or {}).get("postStart")
        if post_start:
            await self._post_start(pod, container, container_id, post_start, pod_ip)
        return True

    async def _post_start(
        self,
        pod: Obj,
        container: Mapping[str, Any],
        container_id: str,
        handler: Mapping[str, Any],
        pod_ip: str,
    ) -> None:
        """Run the postStart hook; a container whose hook failed is killed, as kubelet
        does, and then restarts as its pod's restart policy says."""
        assert self.runtime is not None
        grace = podconfig.grace_period(pod)
        result = await probes.run_handler(
            handler,
            runtime=self.runtime.runtime,
            container_id=container_id,
            pod_ip=pod_ip or self._settings.node_ip,
            container=container,
            timeout=float(grace or podconfig.DEFAULT_GRACE_PERIOD),
        )
        if result.success:
            return
        name = container.get("name") or ""
        self._event(
            pod,
            "Warning",
            "FailedPostStartHook",
            f"PostStartHook failed for container {name}: {result.message}",
        )
        with contextlib.suppress(runtime_errors.NotFound):
            await self.runtime.runtime.stop_container(container_id, timeout=grace)

    def _hold(
        self, pod: Obj, key: ContainerKey, reason: str, message: str, previous: _Retry | None
    ) -> None:
        now = trio.current_time()
        delay = self._next_delay(previous.delay if previous is not None else None)
        self._retries[key] = _Retry(reason, message, now + delay, delay)
        self._wake_by(now + delay)
        self._event(pod, "Warning", "Failed", f"Error: {message}" if message else reason)

    async def _pull(
        self,
        pod: Obj,
        container: Mapping[str, Any],
        sandbox_config: cri.PodSandboxConfig,
    ) -> None:
        assert self.runtime is not None
        rt = self.runtime.runtime
        image = container.get("image") or ""
        policy = container.get("imagePullPolicy") or _default_pull_policy(image)
        if policy != "Always":
            present = await rt.image_status(image)
            if present is not None:
                return
            if policy == "Never":
                raise _HeldBack(
                    WaitingReason.ERR_IMAGE_NEVER_PULL,
                    f'Container image "{image}" is not present with pull policy of Never',
                )
        try:
            await rt.pull_image(image, sandbox_config=sandbox_config)
        except runtime_errors.CRIError as exc:
            raise _HeldBack(
                WaitingReason.ERR_IMAGE_PULL, f'failed to pull image "{image}": {exc.message}'
            ) from None
        self._event(pod, "Normal", "Pulled", f'Successfully pulled image "{image}"')

    async def _check_liveness(
        self, pod: Obj, container: Mapping[str, Any], key: ContainerKey, current: status.Instance
    ) -> bool:
        handle = self._probers.get(key)
        if handle is None or handle.container_id != current.id or handle.prober.live:
            return False
        assert self.runtime is not None
        name = key[1]
        self._event(
            pod,
            "Normal",
            "Killing",
            f"Container {name} failed liveness probe, will be restarted",
        )
        handle.scope.cancel()
        del self._probers[key]
        deadline = trio.current_time() + podconfig.grace_period(pod)
        listed = cri.Container(id=current.id, labels={podconfig.CONTAINER_NAME: name})
        await self._kill(pod, listed, deadline)
        return True

    # Probes

    def _manage_probers(self, pod: Obj, observed: _Observed) -> None:
        assert self.runtime is not None
        assert self._nursery is not None
        wanted: dict[ContainerKey, tuple[Mapping[str, Any], str, int]] = {}
        for container in podconfig.app_containers(pod):
            if not _has_probe(container):
                continue
            key: ContainerKey = (False, container.get("name") or "")
            current, _ = observed.instances(key)
            if current is not None and current.state is status.ContainerState.RUNNING:
                wanted[key] = (container, current.id, current.started_at)
        for key, handle in list(self._probers.items()):
            if key not in wanted or wanted[key][1] != handle.container_id:
                handle.scope.cancel()
                del self._probers[key]
        ips = self._pod_ips(observed)
        for key, (container, container_id, started_at) in wanted.items():
            if key in self._probers:
                continue
            # The runtime's start time is wall-clock: an adopted container's probes
            # count initialDelaySeconds from when it really started.
            running_for = (time.time_ns() - started_at) / 1e9 if started_at else 0.0
            prober = probes.ContainerProber(
                running_for=max(0.0, running_for),
                pod=pod,
                container=container,
                container_id=container_id,
                runtime=self.runtime.runtime,
                pod_ip=ips[0] if ips else self._settings.node_ip,
                on_change=self.wakeup.set,
            )
            scope = trio.CancelScope()
            self._probers[key] = _Prober(container_id=container_id, prober=prober, scope=scope)
            self._nursery.start_soon(self._run_prober, prober, scope)

    async def _run_prober(self, prober: probes.ContainerProber, scope: trio.CancelScope) -> None:
        with scope:
            await prober.run()

    # Stopping

    async def _kill(self, pod: Obj, container: cri.Container, deadline: float) -> None:
        """Stop one container gracefully: preStop, then StopContainer with what is left."""
        assert self.runtime is not None
        rt = self.runtime.runtime
        name = container.labels.get(podconfig.CONTAINER_NAME) or container.metadata.name
        spec = next(
            (
                c
                for c in (*podconfig.init_containers(pod), *podconfig.app_containers(pod))
                if c.get("name") == name
            ),
            {},
        )
        pre_stop = (spec.get("lifecycle") or {}).get("preStop")
        grace = deadline - trio.current_time()
        if pre_stop and grace > 0:
            with trio.move_on_at(deadline):
                await self._pre_stop(pod, spec, container.id, pre_stop, deadline)
        remaining = max(0.0, deadline - trio.current_time())
        timeout = math.ceil(remaining)
        if grace > 0:
            timeout = max(timeout, MIN_GRACE_AFTER_PRE_STOP if pre_stop else 1)
        with contextlib.suppress(runtime_errors.NotFound):
            await rt.stop_container(container.id, timeout=timeout)

    async def _pre_stop(
        self,
        pod: Obj,
        container: Mapping[str, Any],
        container_id: str,
        handler: Mapping[str, Any],
        deadline: float,
    ) -> None:
        assert self.runtime is not None
        result = await probes.run_handler(
            handler,
            runtime=self.runtime.runtime,
            container_id=container_id,
            pod_ip=self._known_pod_ip(pod),
            container=container,
            timeout=max(1.0, deadline - trio.current_time()),
        )
        if not result.success:
            name = container.get("name") or ""
            self._event(
                pod,
                "Warning",
                "FailedPreStopHook",
                f"PreStopHook failed for container {name}: {result.message}",
            )

    def _known_pod_ip(self, pod: Obj) -> str:
        return str((pod.get("status") or {}).get("podIP") or self._settings.node_ip)

    async def terminate(self, pod: Obj, *, delete: bool) -> None:
        """Stop everything of the pod gracefully, remove it, and (if `delete`) the object."""
        if self._termination_deadline is None:
            self._termination_deadline = trio.current_time() + podconfig.grace_period(pod)
        for handle in self._probers.values():
            handle.scope.cancel()
        self._probers.clear()
        if self.runtime is not None:
            observed = await self._observe()
            running = observed.running()
            if running:
                name = (pod.get("metadata") or {}).get("name")
                logger.debug("pod %s: stopping %d containers", name, len(running))
                async with trio.open_nursery() as nursery:
                    for container in running:
                        nursery.start_soon(self._kill, pod, container, self._termination_deadline)
            rt = self.runtime.runtime
            for sandbox in observed.sandboxes:
                await rt.stop_pod_sandbox(sandbox.id)
            for history in observed.containers.values():
                for container in history:
                    await rt.remove_container(container.id)
            for sandbox in observed.sandboxes:
                await rt.remove_pod_sandbox(sandbox.id)
        if self._services.network is not None:
            await self._services.network.detach(self.uid)
        ref = podconfig.PodRef.of(pod)
        await volumes.cleanup_volumes(podconfig.pod_dir(self._settings.root_dir, ref))
        if delete:
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                await self._services.api.delete(
                    PODS,
                    ref.name,
                    tenant=ref.tenant,
                    namespace=ref.namespace,
                    grace_period_seconds=0,
                    preconditions={"uid": ref.uid},
                )
            logger.debug("pod %s: deleted", self.key)

    # Status

    def _view(self, pod: Obj, observed: _Observed) -> status.PodView:
        assert self.runtime is not None

        def container_view(key: ContainerKey) -> status.ContainerView:
            current, previous = observed.instances(key)
            retry = self._retries.get(key)
            reason = message = ""
            if retry is not None and (
                current is None or current.state is not status.ContainerState.RUNNING
            ):
                reason, message = retry.reason, retry.message
            elif self._volume_retry is not None and current is None:
                reason, message = self._volume_retry.reason, self._volume_retry.message
            running = current is not None and current.state is status.ContainerState.RUNNING
            handle = self._probers.get(key)
            if handle is not None and current is not None and handle.container_id == current.id:
                ready, started = handle.prober.ready, handle.prober.started
            else:
                ready = started = running
            return status.ContainerView(
                current=current,
                previous=previous,
                waiting_reason=reason,
                waiting_message=message,
                ready=ready,
                started=started,
            )

        return status.PodView(
            runtime_name=self.runtime.name,
            host_ip=self._settings.node_ip,
            pod_ips=self._pod_ips(observed),
            sandbox_ready=observed.ready_sandbox is not None,
            init_containers={
                c.get("name") or "": container_view((True, c.get("name") or ""))
                for c in podconfig.init_containers(pod)
            },
            containers={
                c.get("name") or "": container_view((False, c.get("name") or ""))
                for c in podconfig.app_containers(pod)
            },
            vm=self._vm_view(pod, observed),
        )

    def _vm_view(self, pod: Obj, observed: _Observed) -> status.VmView | None:
        vm = podconfig.vm_container(pod)
        if vm is None:
            return None
        name = vm.get("name") or ""
        listed = observed.containers.get((False, name)) or []
        retry = self._retries.get((False, name)) or self._volume_retry
        if not listed:
            return status.VmView(
                name=name,
                image=vm.get("image") or "",
                reason=retry.reason if retry is not None else "",
                message=retry.message if retry is not None else "",
            )
        current = listed[-1]
        found = observed.statuses.get(current.id)
        annotations = current.annotations
        state, power = _VM_STATES.get(current.state, ("error", "nostate"))
        if current.state == cri.CONTAINER_EXITED and found is not None and found.exit_code:
            state, power = "error", "crashed"
        return status.VmView(
            name=name,
            image=vm.get("image") or "",
            image_id=(found.image_ref if found is not None else "") or current.image_ref,
            vm_id=annotations.get(VM_ID, ""),
            state=annotations.get(VM_STATE) or state,
            power_state=annotations.get(VM_POWER_STATE) or power,
            restart_count=_int_version(annotations.get(VM_RESTART_COUNT)),
            reason="ResizeFailed"
            if self._resize_problem
            else ("NICHotplugFailed" if self._nic_problem else ""),
            # What the runtime notes about the VM (no network, ...), a refused resize and
            # ports not attached.
            message="; ".join(
                m
                for m in (
                    (found.message if found else ""),
                    self._resize_problem or "",
                    self._nic_problem or "",
                )
                if m
            ),
        )

    @staticmethod
    def _status_spec(pod: Obj) -> Mapping[str, Any]:
        spec: Mapping[str, Any] = pod.get("spec") or {}
        vm = podconfig.vm_container(pod)
        # A VM that is shut off keeps its pod Running (Arktos): it may be powered on again.
        if vm is not None:
            return {**spec, "containers": [vm], "restartPolicy": "Always"}
        return spec

    async def _write_status(self, pod: Obj, observed: _Observed) -> None:
        view = self._view(pod, observed)
        subject = {**pod, "spec": self._status_spec(pod)}
        new = status.pod_status(subject, view, now=status.now_rfc3339())
        if podconfig.vm_container(pod) is not None:
            new.pop("containerStatuses", None)
        await self._send_status(pod, new)

    async def _report_no_runtime(self, pod: Obj) -> None:
        type_ = runtimes.workload_type(pod)
        message = f"this node has no runtime for workload type {type_.value}"
        if not self._no_runtime_noted:
            self._no_runtime_noted = True
            self._event(pod, "Warning", NO_RUNTIME_REASON, message)
        old = pod.get("status") or {}
        new = dict(old)
        new.update(
            phase=status.Phase.PENDING.value,
            reason=NO_RUNTIME_REASON,
            message=message,
            hostIP=self._settings.node_ip,
            hostIPs=[{"ip": self._settings.node_ip}],
            qosClass=status.qos_class(pod.get("spec") or {}).value,
        )
        await self._send_status(pod, new)

    async def _send_status(self, pod: Obj, new: Obj) -> None:
        meta = pod.get("metadata") or {}
        seen: Mapping[str, Any] = pod.get("status") or {}
        informer_version = _int_version(meta.get("resourceVersion"))
        if self._sent is not None and informer_version < self._sent[1]:
            # The informer has not caught up with our last write yet.
            seen = self._sent[0]
        if same_status(seen, new):
            return
        ref = podconfig.PodRef.of(pod)
        body = {"status": status.status_patch(seen, new)}
        try:
            answer = await self._services.api.patch(
                PODS,
                ref.name,
                body,
                tenant=ref.tenant,
                namespace=ref.namespace,
                subresource="status",
            )
        except errors.NotFound:
            return
        version = _int_version((answer.get("metadata") or {}).get("resourceVersion"))
        self._sent = (answer.get("status") or new, version)

    def _event(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        self._services.recorder.event(pod, type_, reason=reason, message=message)


class _HeldBack(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _default_pull_policy(image: str) -> str:
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    if ":" not in tail or tail.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _vm_size(vcpus: int, memory: int) -> cri.LinuxContainerResources:
    """A VM's size as the CRI's resources: `vcpus` whole CPUs, `memory` bytes."""
    period = podconfig.CPU_PERIOD
    return cri.LinuxContainerResources(
        cpu_period=period, cpu_quota=vcpus * period, memory_limit_in_bytes=memory
    )


def _reported_ports(text: str) -> list[Obj]:
    """The ports of a runtime's NICs annotation (none when it has none or is unreadable)."""
    try:
        listed = orjson.loads(text) if text else []
    except orjson.JSONDecodeError:
        return []
    return [p for p in listed if isinstance(p, dict)] if isinstance(listed, list) else []


def _port_key(port: Mapping[str, Any]) -> tuple[str, str, str]:
    return (
        str(port.get("name") or ""),
        str(port.get("portId") or ""),
        str(port.get("macAddress") or "").lower(),
    )


def _port_set(ports: list[Obj]) -> frozenset[tuple[str, str, str]]:
    return frozenset(_port_key(p) for p in ports)


def _int_version(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
