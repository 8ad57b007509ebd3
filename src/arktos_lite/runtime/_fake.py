"""A complete `Runtime` in memory: hollow nodes run on it, and the agent's tests drive it.

`FakeRuntime` keeps sandboxes, containers and images in dicts and answers every CRI call
of the `Runtime` protocol as a real runtime would, with the same errors. Guarantees:

* Semantics follow the CRI: a container is CREATED, then RUNNING once started, then
  EXITED (with exit code, reason `Completed`/`Error`, started/finished times); stopping or
  removing what is already stopped or gone is not an error; creating a container needs a
  ready sandbox and a (name, attempt) not used in it yet; stopping a sandbox stops its
  containers and removing it removes them. Missing ids raise `NotFound`.
* List calls filter by id, state, sandbox and labels (every key of the selector equal).
* A started container runs until told otherwise: `exit()` ends it, `stop_container`
  ends it (exit code 143, or 137 for a timeout of 0), and the optional `behaviour` hook
  may give it an exit when it starts, at once or after some (trio) seconds. Delayed
  exits are applied lazily whenever the fake is called: no tasks, threads or sleeps,
  so a process can hold thousands of fakes.
* Returned messages are snapshots shared with the fake: a change of state replaces the
  stored message rather than mutating it, so a caller's earlier answer never changes
  under it. Callers must not mutate them.
* `available = False` makes every call raise `Unavailable`; `ready = False` makes
  `status` report RuntimeReady false.
* It is a `VmRuntime` too: a container whose config has the annotation
  `arktos.futurewei.com/virtual-machine` is a VM. Its annotations also report the VM's
  id, state, power state and restart count (`runtime.VM_*`); stopping it is a clean
  shutdown (EXITED, exit code 0, reason `Shutdown`) and starting it again once it exited
  powers it on. `reboot_vm` (after `delay_seconds` of trio time) counts a restart of a
  running VM; snapshots are kept by name (a snapshot of a VM that is not running is a
  `FailedPrecondition`, restoring a missing one `NotFound`, restoring one powers the VM
  on). `pause_vm`, `suspend_vm` and `resume_vm` change a running VM's state and power
  state (paused, suspended, back to active/running; idempotent; the container stays
  RUNNING); `update_container_resources` resizes a VM up to `vm_max_vcpus` vCPUs and
  `vm_max_memory` bytes (else `FailedPrecondition`), reported as `VM_VCPUS`/`VM_MEMORY`,
  from the VM spec in its annotations, else from its resources. With the NICs annotation
  (`arktos.futurewei.com/nics`, a JSON list of ports) it gives the VM exactly those NICs,
  as the VM runtime hot-plugs them: the container's annotations then list them (none: no
  annotation); a suspended VM refuses (`FailedPrecondition`), and `nic_error`, while set,
  is what every NIC change raises. VM calls on a container that is not a VM are
  `InvalidArgument`.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import heapq
import itertools
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import orjson
import trio

from arktos_lite.runtime import _errors as errors, _vmresources
from arktos_lite.runtime._protocol import (
    VM_ID,
    VM_MEMORY,
    VM_POWER_STATE,
    VM_RESTART_COUNT,
    VM_STATE,
    VM_VCPUS,
    ExecResult,
)
from arktos_lite.runtime.cri import api_pb2 as cri

RUNTIME_NAME = "fake"
RUNTIME_VERSION = "0.1.0"
# The exit codes of a process ended by SIGTERM and by SIGKILL.
EXIT_TERMINATED = 143
EXIT_KILLED = 137
# A container config carrying this annotation (the pod's spec.virtualMachine) is a VM.
VIRTUAL_MACHINE = "arktos.futurewei.com/virtual-machine"
# A VM's network ports, one NIC each (JSON: name, portId, macAddress).
NICS = "arktos.futurewei.com/nics"


@dataclasses.dataclass(frozen=True, slots=True)
class FakeExit:
    """How a started container ends: with `code`, `after` seconds (trio time)."""

    code: int
    after: float = 0.0
    reason: str = ""
    message: str = ""


Behaviour = Callable[[cri.ContainerConfig], FakeExit | None]
"""Told each container as it starts; returns its exit, or None to run until stopped."""

ExecHandler = Callable[[str, Sequence[str]], ExecResult]
"""Answers `exec_sync(container_id, cmd)`."""


_EXIT = re.compile(r"(?:^|[;&|\s])exit\s+(\d+)\s*$")
_SLEEP = re.compile(r"(?:^|[;&|\s])sleep\s+(\d+(?:\.\d+)?)")


def command_behaviour(config: cri.ContainerConfig) -> FakeExit | None:
    """A behaviour reading the obvious shell idioms in command + args.

    A script ending in `exit N` exits N; `true` exits 0 and `false` exits 1; a script
    whose first `sleep S` is not followed by `infinity` exits (0, or its `exit N`) after
    S seconds. Anything else runs until stopped.
    """
    argv = [*config.command, *config.args]
    if not argv:
        return None
    if argv[0] in ("true", "/bin/true"):
        return FakeExit(0)
    if argv[0] in ("false", "/bin/false"):
        return FakeExit(1)
    script = " ".join(argv[2:]) if argv[1:2] == ["-c"] else " ".join(argv)
    code_match = _EXIT.search(script)
    sleep_match = _SLEEP.search(script)
    code = int(code_match.group(1)) if code_match else None
    if sleep_match is not None:
        return FakeExit(code or 0, after=float(sleep_match.group(1)))
    if code is not None:
        return FakeExit(code)
    return None


def _default_exec(container_id: str, cmd: Sequence[str]) -> ExecResult:
    return ExecResult(stdout=b"", stderr=b"", exit_code=0)


def _matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@dataclasses.dataclass(slots=True)
class _Sandbox:
    config: cri.PodSandboxConfig
    listed: cri.PodSandbox
    status: cri.PodSandboxStatus
    containers: dict[str, None]


@dataclasses.dataclass(slots=True)
class _Vm:
    """What the fake knows of a VM beyond its container."""

    vm_id: str
    restart_count: int = 0
    # Snapshot name -> the wall-clock time it was taken.
    snapshots: dict[str, int] = dataclasses.field(default_factory=dict)
    # "paused" or "suspended" while the running VM is so; "" otherwise.
    power: str = ""
    vcpus: int = _vmresources.DEFAULT_VCPUS
    memory: int = _vmresources.DEFAULT_MEMORY
    # Its NICs annotation ("": no ports).
    nics: str = ""


@dataclasses.dataclass(slots=True)
class _Container:
    config: cri.ContainerConfig
    listed: cri.Container
    status: cri.ContainerStatus
    # The trio time a pending exit is due (and what it is), if one is scheduled.
    exit_due: float | None = None
    exit: FakeExit | None = None
    vm: _Vm | None = None


class FakeRuntime:
    """A `runtime.Runtime` in memory; see the module docs."""

    def __init__(
        self,
        *,
        behaviour: Behaviour | None = None,
        exec_handler: ExecHandler | None = None,
        images: Iterable[str] = (),
        ip_prefix: str = "10.88",
        wall_clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.behaviour = behaviour
        self.exec_handler: ExecHandler = exec_handler or _default_exec
        self.available = True
        self.ready = True
        # How far update_container_resources may grow a VM.
        self.vm_max_vcpus = 8
        self.vm_max_memory = 16 * 1024**3
        # While set, what every change of a VM's NICs raises.
        self.nic_error: errors.CRIError | None = None
        # Images whose pull fails, with the error it raises.
        self.pull_errors: dict[str, errors.CRIError] = {}
        # How often each call was made, by method name (for tests).
        self.calls: collections.Counter[str] = collections.Counter()
        self._wall_clock = wall_clock
        self._ip_prefix = ip_prefix
        self._ids = itertools.count(1)
        self._addresses = itertools.count(2)
        self._sandboxes: dict[str, _Sandbox] = {}
        self._containers: dict[str, _Container] = {}
        self._images: dict[str, cri.Image] = {}
        self._exits: list[tuple[float, str]] = []
        for image in images:
            self._add_image(image)

    # Knobs

    def exit(self, container_id: str, code: int, *, reason: str = "", message: str = "") -> None:
        """End a running container now, as if its process exited with `code`."""
        container = self._container(container_id)
        if container.listed.state == cri.CONTAINER_RUNNING:
            if container.vm is not None and not reason:
                reason = "Shutdown" if code == 0 else "Crashed"
            self._finish(container, code, reason=reason, message=message)

    def add_image(self, image: str) -> None:
        """Make `image` present, as if pulled."""
        self._add_image(image)

    def snapshots(self, container_id: str) -> list[str]:
        """The names of a VM's snapshots, oldest first."""
        return list(self._vm(container_id).snapshots)

    @property
    def sandbox_ids(self) -> list[str]:
        return list(self._sandboxes)

    @property
    def container_ids(self) -> list[str]:
        return list(self._containers)

    # Runtime

    async def version(self) -> cri.VersionResponse:
        self._enter("version")
        return cri.VersionResponse(
            version="0.1.0",
            runtime_name=RUNTIME_NAME,
            runtime_version=RUNTIME_VERSION,
            runtime_api_version="v1",
        )

    async def status(self, *, verbose: bool = False) -> cri.StatusResponse:
        self._enter("status")
        conditions = [
            cri.RuntimeCondition(
                type="RuntimeReady",
                status=self.ready,
                reason="" if self.ready else "FakeNotReady",
                message="" if self.ready else "the fake runtime was told to be not ready",
            ),
            cri.RuntimeCondition(type="NetworkReady", status=True),
        ]
        info = {"isolation": '"none (fake runtime)"'} if verbose else {}
        return cri.StatusResponse(status=cri.RuntimeStatus(conditions=conditions), info=info)

    # Sandboxes

    async def run_pod_sandbox(
        self, config: cri.PodSandboxConfig, *, runtime_handler: str = ""
    ) -> str:
        self._enter("run_pod_sandbox")
        sandbox_id = self._new_id()
        created = self._wall_clock()
        number = next(self._addresses)
        ip = f"{self._ip_prefix}.{(number >> 8) & 255}.{number & 255}"
        listed = cri.PodSandbox(
            id=sandbox_id,
            metadata=config.metadata,
            state=cri.SANDBOX_READY,
            created_at=created,
            labels=config.labels,
            annotations=config.annotations,
            runtime_handler=runtime_handler,
        )
        status = cri.PodSandboxStatus(
            id=sandbox_id,
            metadata=config.metadata,
            state=cri.SANDBOX_READY,
            created_at=created,
            network=cri.PodSandboxNetworkStatus(ip=ip),
            labels=config.labels,
            annotations=config.annotations,
            runtime_handler=runtime_handler,
        )
        self._sandboxes[sandbox_id] = _Sandbox(
            config=config, listed=listed, status=status, containers={}
        )
        return sandbox_id

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        self._enter("stop_pod_sandbox")
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        for container_id in sandbox.containers:
            container = self._containers[container_id]
            if container.listed.state in (cri.CONTAINER_RUNNING, cri.CONTAINER_CREATED):
                self._stop(container, 0)
        if sandbox.listed.state != cri.SANDBOX_NOTREADY:
            listed = cri.PodSandbox()
            listed.CopyFrom(sandbox.listed)
            listed.state = cri.SANDBOX_NOTREADY
            status = cri.PodSandboxStatus()
            status.CopyFrom(sandbox.status)
            status.state = cri.SANDBOX_NOTREADY
            sandbox.listed, sandbox.status = listed, status

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        self._enter("remove_pod_sandbox")
        sandbox = self._sandboxes.pop(sandbox_id, None)
        if sandbox is None:
            return
        for container_id in sandbox.containers:
            self._containers.pop(container_id, None)

    async def pod_sandbox_status(self, sandbox_id: str) -> cri.PodSandboxStatus:
        self._enter("pod_sandbox_status")
        return self._sandbox(sandbox_id).status

    async def list_pod_sandbox(
        self, filter: cri.PodSandboxFilter | None = None
    ) -> Sequence[cri.PodSandbox]:
        self._enter("list_pod_sandbox")
        if filter is None:
            return [s.listed for s in self._sandboxes.values()]
        if filter.id:
            found = self._sandboxes.get(filter.id)
            candidates: Iterable[_Sandbox] = (found,) if found is not None else ()
        else:
            candidates = self._sandboxes.values()
        want_state = filter.state.state if filter.HasField("state") else None
        selector = filter.label_selector
        return [
            s.listed
            for s in candidates
            if (want_state is None or s.listed.state == want_state)
            and (not selector or _matches(s.listed.labels, selector))
        ]

    # Containers

    async def create_container(
        self,
        sandbox_id: str,
        config: cri.ContainerConfig,
        sandbox_config: cri.PodSandboxConfig,
    ) -> str:
        self._enter("create_container")
        sandbox = self._sandbox(sandbox_id)
        if sandbox.listed.state != cri.SANDBOX_READY:
            raise errors.FailedPrecondition(f"sandbox {sandbox_id} is not ready")
        if not config.metadata.name:
            raise errors.InvalidArgument("a container needs metadata.name")
        for other_id in sandbox.containers:
            other = self._containers[other_id].config.metadata
            if (other.name, other.attempt) == (config.metadata.name, config.metadata.attempt):
                raise errors.AlreadyExists(
                    f"container {other.name} attempt {other.attempt} exists in {sandbox_id}"
                )
        container_id = self._new_id()
        created = self._wall_clock()
        image = self._images.get(config.image.image)
        image_ref = image.id if image is not None else config.image.image
        listed = cri.Container(
            id=container_id,
            pod_sandbox_id=sandbox_id,
            metadata=config.metadata,
            image=config.image,
            image_ref=image_ref,
            image_id=image_ref,
            state=cri.CONTAINER_CREATED,
            created_at=created,
            labels=config.labels,
            annotations=config.annotations,
        )
        log_path = (
            f"{sandbox.config.log_directory.rstrip('/')}/{config.log_path}"
            if sandbox.config.log_directory and config.log_path
            else config.log_path
        )
        status = cri.ContainerStatus(
            id=container_id,
            metadata=config.metadata,
            state=cri.CONTAINER_CREATED,
            created_at=created,
            image=config.image,
            image_ref=image_ref,
            image_id=image_ref,
            labels=config.labels,
            annotations=config.annotations,
            mounts=config.mounts,
            log_path=log_path,
        )
        container = _Container(config=config, listed=listed, status=status)
        if VIRTUAL_MACHINE in config.annotations:
            vm_id = hashlib.sha256(f"vm-{container_id}".encode()).hexdigest()
            size = _vm_size(config.annotations)
            container.vm = _Vm(
                vm_id=f"{vm_id[:8]}-{vm_id[8:12]}-{vm_id[12:16]}-{vm_id[16:20]}-{vm_id[20:32]}",
                vcpus=size.vcpus,
                memory=size.memory,
                nics=_known_nics(config.annotations.get(NICS, "")),
            )
            self._transition(container, cri.CONTAINER_CREATED)
        self._containers[container_id] = container
        sandbox.containers[container_id] = None
        return container_id

    async def start_container(self, container_id: str) -> None:
        self._enter("start_container")
        container = self._container(container_id)
        if container.vm is not None and container.vm.power == "suspended":
            # A suspended VM is restored where it was.
            container.vm.power = ""
            self._refresh(container)
            return
        if container.vm is not None and container.listed.state == cri.CONTAINER_EXITED:
            # A VM that was shut off powers on again.
            self._transition(
                container, cri.CONTAINER_RUNNING, started_at=self._wall_clock(), restarted=True
            )
            return
        if container.listed.state != cri.CONTAINER_CREATED:
            raise errors.FailedPrecondition(f"container {container_id} was started already")
        self._transition(container, cri.CONTAINER_RUNNING, started_at=self._wall_clock())
        outcome = self.behaviour(container.config) if self.behaviour is not None else None
        if outcome is None:
            return
        if outcome.after <= 0:
            self._finish(container, outcome.code, reason=outcome.reason, message=outcome.message)
        else:
            container.exit = outcome
            container.exit_due = trio.current_time() + outcome.after
            heapq.heappush(self._exits, (container.exit_due, container_id))

    # The CRI's own timeouts are part of the Runtime protocol's signatures.
    async def stop_container(self, container_id: str, *, timeout: int) -> None:  # noqa: ASYNC109
        self._enter("stop_container")
        container = self._container(container_id)
        if container.listed.state in (cri.CONTAINER_RUNNING, cri.CONTAINER_CREATED):
            self._stop(container, timeout)

    async def remove_container(self, container_id: str) -> None:
        self._enter("remove_container")
        container = self._containers.pop(container_id, None)
        if container is None:
            return
        sandbox = self._sandboxes.get(container.listed.pod_sandbox_id)
        if sandbox is not None:
            sandbox.containers.pop(container_id, None)

    async def list_containers(
        self, filter: cri.ContainerFilter | None = None
    ) -> Sequence[cri.Container]:
        self._enter("list_containers")
        if filter is None:
            return [c.listed for c in self._containers.values()]
        if filter.id:
            found = self._containers.get(filter.id)
            candidates: Iterable[_Container] = (found,) if found is not None else ()
        elif filter.pod_sandbox_id:
            sandbox = self._sandboxes.get(filter.pod_sandbox_id)
            ids = sandbox.containers if sandbox is not None else {}
            candidates = (self._containers[i] for i in ids)
        else:
            candidates = self._containers.values()
        want_state = filter.state.state if filter.HasField("state") else None
        selector = filter.label_selector
        return [
            c.listed
            for c in candidates
            if (want_state is None or c.listed.state == want_state)
            and (not filter.pod_sandbox_id or c.listed.pod_sandbox_id == filter.pod_sandbox_id)
            and (not selector or _matches(c.listed.labels, selector))
        ]

    async def container_status(self, container_id: str) -> cri.ContainerStatus:
        self._enter("container_status")
        return self._container(container_id).status

    async def exec_sync(
        self,
        container_id: str,
        cmd: Sequence[str],
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> ExecResult:
        self._enter("exec_sync")
        container = self._container(container_id)
        if container.listed.state != cri.CONTAINER_RUNNING:
            raise errors.FailedPrecondition(f"container {container_id} is not running")
        return self.exec_handler(container_id, list(cmd))

    async def exec(self, request: cri.ExecRequest) -> str:
        self._enter("exec")
        container = self._container(request.container_id)
        if container.listed.state != cri.CONTAINER_RUNNING:
            raise errors.FailedPrecondition(f"container {request.container_id} is not running")
        raise errors.Unimplemented("the fake runtime has no streaming server")

    async def container_stats(self, container_id: str) -> cri.ContainerStats:
        self._enter("container_stats")
        return self._stats(self._container(container_id))

    async def list_container_stats(
        self, filter: cri.ContainerStatsFilter | None = None
    ) -> Sequence[cri.ContainerStats]:
        self._enter("list_container_stats")
        result = []
        for container in self._containers.values():
            listed = container.listed
            if filter is not None and (
                (filter.id and listed.id != filter.id)
                or (filter.pod_sandbox_id and listed.pod_sandbox_id != filter.pod_sandbox_id)
                or not _matches(listed.labels, filter.label_selector)
            ):
                continue
            result.append(self._stats(container))
        return result

    async def reopen_container_log(self, container_id: str) -> None:
        self._enter("reopen_container_log")
        container = self._container(container_id)
        if container.listed.state != cri.CONTAINER_RUNNING:
            raise errors.FailedPrecondition(f"container {container_id} is not running")

    # VMs

    async def reboot_vm(
        self, vm_id: str, *, delay_seconds: int = 0, domain_reboot_flag: int = 0
    ) -> None:
        self._enter("reboot_vm")
        self._running_vm(vm_id)
        if delay_seconds > 0:
            await trio.sleep(delay_seconds)
        # The VM may have been shut off or removed while the reboot waited.
        container = self._running_vm(vm_id)
        assert container.vm is not None
        container.vm.restart_count += 1
        self._transition(
            container,
            cri.CONTAINER_RUNNING,
            started_at=container.status.started_at or self._wall_clock(),
        )

    async def create_snapshot(self, vm_id: str, snapshot_id: str, *, flags: int = 0) -> None:
        self._enter("create_snapshot")
        container = self._running_vm(vm_id)
        assert container.vm is not None
        if not snapshot_id:
            raise errors.InvalidArgument("a snapshot needs a name")
        if snapshot_id in container.vm.snapshots:
            raise errors.AlreadyExists(f"VM {vm_id} has a snapshot {snapshot_id!r} already")
        container.vm.snapshots[snapshot_id] = self._wall_clock()

    async def restore_to_snapshot(self, vm_id: str, snapshot_id: str, *, flags: int = 0) -> None:
        self._enter("restore_to_snapshot")
        container = self._container(vm_id)
        vm = self._vm(vm_id)
        if snapshot_id not in vm.snapshots:
            raise errors.NotFound(f"VM {vm_id} has no snapshot {snapshot_id!r}")
        if container.listed.state != cri.CONTAINER_RUNNING:
            # The snapshot holds the memory of a running VM: restoring runs it.
            self._transition(
                container, cri.CONTAINER_RUNNING, started_at=self._wall_clock(), restarted=True
            )

    async def pause_vm(self, vm_id: str) -> None:
        self._enter("pause_vm")
        container = self._running_vm(vm_id)
        assert container.vm is not None
        if container.vm.power == "suspended":
            raise errors.FailedPrecondition(f"cannot pause VM {vm_id}: it is suspended")
        container.vm.power = "paused"
        self._refresh(container)

    async def resume_vm(self, vm_id: str) -> None:
        self._enter("resume_vm")
        container = self._running_vm(vm_id)
        assert container.vm is not None
        container.vm.power = ""
        self._refresh(container)

    async def suspend_vm(self, vm_id: str) -> None:
        self._enter("suspend_vm")
        container = self._running_vm(vm_id)
        assert container.vm is not None
        container.vm.power = "suspended"
        self._refresh(container)

    async def update_container_resources(
        self,
        container_id: str,
        resources: cri.LinuxContainerResources,
        *,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        self._enter("update_container_resources")
        container = self._container(container_id)
        vm = container.vm
        if vm is None:
            return
        annotations = annotations or {}
        nics = _nics(annotations[NICS]) if NICS in annotations else None
        if VIRTUAL_MACHINE in annotations:
            size = _vm_size(annotations)
        else:
            size = _vmresources.VmResources(
                vcpus=-(-resources.cpu_quota // resources.cpu_period)
                if resources.cpu_quota > 0 and resources.cpu_period > 0
                else vm.vcpus,
                memory=resources.memory_limit_in_bytes or vm.memory,
            )
        if nics is not None and nics != vm.nics:
            if vm.power == "suspended":
                raise errors.FailedPrecondition(
                    f"cannot change the NICs of VM {container_id} while it is suspended: "
                    "resume it first"
                )
            if self.nic_error is not None:
                raise self.nic_error
        if size.vcpus > self.vm_max_vcpus or size.memory > self.vm_max_memory:
            raise errors.FailedPrecondition(
                f"VM {container_id} cannot grow to {size.vcpus} vCPUs and {size.memory} bytes "
                f"(at most {self.vm_max_vcpus} and {self.vm_max_memory})"
            )
        vm.vcpus, vm.memory = size.vcpus, size.memory
        if nics is not None:
            vm.nics = nics
        self._refresh(container)

    # Images

    async def pull_image(
        self, image: str, *, sandbox_config: cri.PodSandboxConfig | None = None
    ) -> str:
        self._enter("pull_image")
        failure = self.pull_errors.get(image)
        if failure is not None:
            raise failure
        return self._add_image(image).id

    async def image_status(self, image: str) -> cri.Image | None:
        self._enter("image_status")
        return self._images.get(image)

    async def list_images(self) -> Sequence[cri.Image]:
        self._enter("list_images")
        unique = {image.id: image for image in self._images.values()}
        return list(unique.values())

    async def remove_image(self, image: str) -> None:
        self._enter("remove_image")
        found = self._images.get(image)
        if found is None:
            return
        for key in [k for k, v in self._images.items() if v.id == found.id]:
            del self._images[key]

    # Internals

    def _enter(self, call: str) -> None:
        self.calls[call] += 1
        if not self.available:
            raise errors.Unavailable("the fake runtime was told to be unavailable")
        if self._exits:
            self._apply_due_exits()

    def _apply_due_exits(self) -> None:
        now = trio.current_time()
        while self._exits and self._exits[0][0] <= now:
            due, container_id = heapq.heappop(self._exits)
            container = self._containers.get(container_id)
            if container is None or container.exit_due != due or container.exit is None:
                continue
            outcome = container.exit
            container.exit, container.exit_due = None, None
            if container.listed.state == cri.CONTAINER_RUNNING:
                self._finish(
                    container, outcome.code, reason=outcome.reason, message=outcome.message
                )

    def _new_id(self) -> str:
        return hashlib.sha256(f"{id(self)}-{next(self._ids)}".encode()).hexdigest()

    def _sandbox(self, sandbox_id: str) -> _Sandbox:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            raise errors.NotFound(f"no sandbox {sandbox_id!r}")
        return sandbox

    def _container(self, container_id: str) -> _Container:
        container = self._containers.get(container_id)
        if container is None:
            raise errors.NotFound(f"no container {container_id!r}")
        return container

    def _vm(self, container_id: str) -> _Vm:
        container = self._container(container_id)
        if container.vm is None:
            raise errors.InvalidArgument(f"container {container_id} is not a virtual machine")
        return container.vm

    def _running_vm(self, container_id: str) -> _Container:
        self._vm(container_id)
        container = self._container(container_id)
        if container.listed.state != cri.CONTAINER_RUNNING:
            raise errors.FailedPrecondition(f"VM {container_id} is not running")
        return container

    def _stop(self, container: _Container, timeout: int) -> None:
        if container.vm is not None:
            container.vm.power = ""
            # A VM shuts down cleanly (ACPI) within any timeout in the fake.
            self._finish(container, 0, reason="Shutdown")
        else:
            self._finish(container, EXIT_KILLED if timeout <= 0 else EXIT_TERMINATED)

    def _add_image(self, image: str) -> cri.Image:
        found = self._images.get(image)
        if found is not None:
            return found
        digest = "sha256:" + hashlib.sha256(image.encode()).hexdigest()
        record = cri.Image(id=digest, repo_tags=[image], size=1024, spec=cri.ImageSpec(image=image))
        self._images[image] = record
        self._images[digest] = record
        return record

    def _finish(
        self, container: _Container, code: int, *, reason: str = "", message: str = ""
    ) -> None:
        now = self._wall_clock()
        started = container.status.started_at or now
        container.exit, container.exit_due = None, None
        self._transition(
            container,
            cri.CONTAINER_EXITED,
            started_at=started,
            finished_at=now,
            exit_code=code,
            reason=reason or ("Completed" if code == 0 else "Error"),
            message=message,
        )

    @staticmethod
    def _transition(
        container: _Container,
        state: cri.ContainerState,
        *,
        started_at: int = 0,
        finished_at: int = 0,
        exit_code: int = 0,
        reason: str = "",
        message: str = "",
        restarted: bool = False,
    ) -> None:
        # Copy on write: answers already handed out stay as they were.
        listed = cri.Container()
        listed.CopyFrom(container.listed)
        listed.state = state
        status = cri.ContainerStatus()
        status.CopyFrom(container.status)
        status.state = state
        if started_at:
            status.started_at = started_at
        if finished_at or restarted:
            status.finished_at = finished_at
        status.exit_code = exit_code
        status.reason = reason
        status.message = message
        if container.vm is not None:
            if state != cri.CONTAINER_RUNNING:
                container.vm.power = ""
            _vm_annotations(container.vm, listed, status)
        container.listed, container.status = listed, status

    @staticmethod
    def _refresh(container: _Container) -> None:
        """New answers for a VM whose facts changed but whose CRI state did not."""
        assert container.vm is not None
        listed = cri.Container()
        listed.CopyFrom(container.listed)
        status = cri.ContainerStatus()
        status.CopyFrom(container.status)
        _vm_annotations(container.vm, listed, status)
        container.listed, container.status = listed, status

    @staticmethod
    def _stats(container: _Container) -> cri.ContainerStats:
        listed = container.listed
        return cri.ContainerStats(
            attributes=cri.ContainerAttributes(
                id=listed.id,
                metadata=listed.metadata,
                labels=listed.labels,
                annotations=listed.annotations,
            ),
            cpu=cri.CpuUsage(usage_core_nano_seconds=cri.UInt64Value(value=0)),
            memory=cri.MemoryUsage(working_set_bytes=cri.UInt64Value(value=0)),
        )


def _vm_size(annotations: Mapping[str, str]) -> _vmresources.VmResources:
    """The size a VM container's `spec.virtualMachine` asks for (defaults if unreadable)."""
    try:
        vm = orjson.loads(annotations.get(VIRTUAL_MACHINE) or "{}")
        return _vmresources.vm_resources(vm.get("resources") if isinstance(vm, dict) else None)
    except (orjson.JSONDecodeError, errors.InvalidArgument):
        return _vmresources.VmResources()


def _nics(text: str) -> str:
    """The NICs annotation as the fake keeps it: canonical JSON, "" for no ports."""
    try:
        listed = orjson.loads(text or "[]")
    except orjson.JSONDecodeError as e:
        raise errors.InvalidArgument(f"the NICs are not JSON: {e}") from e
    if not isinstance(listed, list) or not all(
        isinstance(nic, dict) and nic.get("macAddress") for nic in listed
    ):
        raise errors.InvalidArgument("the NICs must be a JSON list of ports with a macAddress")
    return orjson.dumps(listed).decode() if listed else ""


def _known_nics(text: str) -> str:
    try:
        return _nics(text)
    except errors.InvalidArgument:
        return text


def _vm_annotations(vm: _Vm, listed: cri.Container, status: cri.ContainerStatus) -> None:
    vm_state, power_state = _vm_states(listed.state, status.exit_code)
    if vm.power and listed.state == cri.CONTAINER_RUNNING:
        vm_state = power_state = vm.power
    for answer in (listed.annotations, status.annotations):
        answer[VM_ID] = vm.vm_id
        answer[VM_STATE] = vm_state
        answer[VM_POWER_STATE] = power_state
        answer[VM_RESTART_COUNT] = str(vm.restart_count)
        answer[VM_VCPUS] = str(vm.vcpus)
        answer[VM_MEMORY] = str(vm.memory)
        if vm.nics:
            answer[NICS] = vm.nics
        else:
            answer.pop(NICS, None)


def _vm_states(state: cri.ContainerState, exit_code: int) -> tuple[str, str]:
    """A VM's Arktos state and power state for its container's CRI state."""
    if state == cri.CONTAINER_RUNNING:
        return "active", "running"
    if state == cri.CONTAINER_EXITED:
        return ("stopped", "shutdown") if exit_code == 0 else ("error", "crashed")
    return "building", "nostate"
