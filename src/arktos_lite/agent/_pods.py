"""The pods of one node: a worker per pod, woken by the pod informer and by the runtimes.

`PodManager` watches the pods bound to its node (an informer over every tenant, field
selector `spec.nodeName=<node>`; pods of other nodes, should the informer be shared, are
ignored) and runs one `PodWorker` task per pod uid (see `_podworker` for what a worker
guarantees). Guarantees:

* PLEG: every `relist_interval` seconds each runtime's sandboxes and containers are listed
  and compared with the previous listing (state, and a VM's state, power state and
  restart count); the worker of every pod with a change is woken.
* Adoption: after a restart the workers find what runs by the `io.kubernetes.pod.uid`
  label and keep it; nothing running is restarted.
* Orphans: once the informer has synced, runtime sandboxes (with their containers) whose
  pod is not on this node any more are stopped and removed. A manager must therefore be
  the only user of its runtimes (each hollow node has a runtime of its own).
* `stop_all` stops every pod's containers gracefully (preStop and grace period, bounded
  by `stop_timeout`) and removes the sandboxes, leaving the API objects alone.
* `locate` finds a pod's container (or the previous one) for logs and exec; `locate_vm`
  finds a VM pod's VM container for Actions, and `wake` has a pod's worker sync now.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import trio

from arktos_lite import client, machinery, runtime
from arktos_lite.agent import (
    _env as env,
    _network as podnetwork,
    _podconfig as podconfig,
    _podworker as podworker,
    _runtimes as runtimes,
    _server as server,
)
from arktos_lite.api import errors, objects, resources
from arktos_lite.runtime import errors as runtime_errors
from arktos_lite.runtime.cri import api_pb2 as cri

logger = logging.getLogger(__name__)

Obj = dict[str, Any]


class ClientReader:
    """An `ObjectReader` over the API: the agent reads ConfigMaps and Secrets of any tenant."""

    def __init__(self, api: client.Client) -> None:
        self._api = api

    async def get(
        self, resource: resources.Resource, name: str, *, tenant: str, namespace: str
    ) -> Obj | None:
        try:
            return await self._api.get(resource, name, tenant=tenant, namespace=namespace)
        except errors.NotFound:
            return None


@dataclasses.dataclass(frozen=True, slots=True)
class LocatedVm:
    """A VM pod's VM: its pod object, its runtime and its CRI container."""

    pod: Mapping[str, Any]
    runtime: runtime.Runtime
    container_id: str
    running: bool


# The VM facts whose change wakes a VM pod's worker.
_VM_FACTS = (runtime.VM_STATE, runtime.VM_POWER_STATE, runtime.VM_RESTART_COUNT)


class PodNotOnNode(LookupError):
    """The pod informer has no such pod on this node (it may lag behind the API)."""


class VmNotReady(LookupError):
    """The pod is on this node but its VM is not created yet: asking later may find it."""


class PodManager:
    """Runs the pods bound to `node_name` on `runtimes`; see the module docs.

    `backoff_base`, `backoff_max` and `backoff_reset` are the crash-loop back-off's
    (kubelet: 10 s, 300 s, 10 min); tests make them small.
    """

    def __init__(
        self,
        api: client.Client,
        *,
        node_name: str,
        runtimes: runtimes.RuntimeSet,
        root_dir: Path,
        node_ip: str,
        recorder: machinery.EventRecorder,
        pods: machinery.Informer,
        relist_interval: float = 1.0,
        resync_interval: float = 60.0,
        backoff_base: float = 10.0,
        backoff_max: float = 300.0,
        backoff_reset: float = 600.0,
        stop_timeout: float = 30.0,
        reader: env.ObjectReader | None = None,
        network: podnetwork.PodNetworking | None = None,
    ) -> None:
        self.node_name = node_name
        self._runtimes = runtimes
        self._pods = pods
        self._relist_interval = relist_interval
        self._stop_timeout = stop_timeout
        self._root_dir = root_dir
        self._settings = podworker.Settings(
            node_name=node_name,
            node_ip=node_ip,
            root_dir=root_dir,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            backoff_reset=backoff_reset,
            resync_interval=resync_interval,
        )
        self._services = podworker.Services(
            api=api, recorder=recorder, reader=reader or ClientReader(api), network=network
        )
        self._workers: dict[str, podworker.PodWorker] = {}
        self._worker_scopes: dict[str, trio.CancelScope] = {}
        # The pods of this node by uid, as the informer last told (uid -> key).
        self._known: dict[str, str] = {}
        self._removing: set[str] = set()
        self._nursery: trio.Nursery | None = None
        self._stopping = False

    @property
    def workers(self) -> Mapping[str, podworker.PodWorker]:
        """The running workers by pod uid."""
        return dict(self._workers)

    # Running

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        await self._pods.wait_synced()
        registration: machinery.HandlerRegistration | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                registration = self._pods.add_handler(
                    on_add=self._on_pod,
                    on_update=lambda _old, new: self._on_pod(new),
                    on_delete=self._on_delete,
                )
                for named in self._runtimes.runtimes:
                    await nursery.start(self._pleg, named)
                logger.info(
                    "pod manager of node %s started (%d pods)", self.node_name, len(self._known)
                )
                task_status.started()
                await trio.sleep_forever()
        finally:
            if registration is not None:
                self._pods.remove_handler(registration)
            self._nursery = None
            logger.info("pod manager of node %s stopped", self.node_name)
        raise AssertionError("unreachable")

    def _on_pod(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName") != self.node_name:
            return
        uid = objects.meta(pod).get("uid")
        if not uid:
            return
        key = self._pods.key(pod)
        self._known[uid] = key
        self._ensure_worker(uid, key, pod).wakeup.set()

    def _on_delete(self, pod: Obj) -> None:
        uid = objects.meta(pod).get("uid")
        if not uid or self._known.pop(uid, None) is None:
            return
        worker = self._workers.get(uid)
        if worker is not None:
            worker.wakeup.set()

    def _ensure_worker(self, uid: str, key: str, pod: Obj) -> podworker.PodWorker:
        worker = self._workers.get(uid)
        if worker is not None:
            return worker

        def get_pod() -> Obj | None:
            return self._pods.get(key)

        worker = podworker.PodWorker(
            uid=uid,
            key=key,
            get_pod=get_pod,
            runtime=self._runtimes.for_pod(pod),
            settings=self._settings,
            services=self._services,
        )
        if self._stopping or self._nursery is None:
            return worker
        self._workers[uid] = worker
        scope = self._worker_scopes[uid] = trio.CancelScope()
        self._nursery.start_soon(self._run_worker, worker, scope)
        return worker

    async def _run_worker(self, worker: podworker.PodWorker, scope: trio.CancelScope) -> None:
        try:
            with scope:
                while not worker.done:
                    try:
                        await worker.run()
                    except Exception:
                        # A bug for one pod must not take every other pod down with it.
                        logger.exception("pod %s: worker failed; restarting it", worker.key)
                        await trio.sleep(self._settings.retry_max)
        finally:
            if self._workers.get(worker.uid) is worker:
                del self._workers[worker.uid]
                self._worker_scopes.pop(worker.uid, None)

    # PLEG and orphans

    async def _pleg(
        self,
        named: runtimes.NamedRuntime,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        previous: dict[str, tuple[object, str]] = {}
        started = False
        while True:
            try:
                current = await self._relist(named)
            except runtime_errors.CRIError as exc:
                logger.debug("runtime %s: relist failed: %s", named.name, exc)
            else:
                changed = {
                    uid for k, (state, uid) in current.items() if previous.get(k) != (state, uid)
                }
                changed.update(uid for k, (_, uid) in previous.items() if k not in current)
                for uid in changed:
                    worker = self._workers.get(uid)
                    if worker is not None:
                        worker.wakeup.set()
                previous = current
                self._collect_orphans(named, {uid for _, uid in current.values()})
            if not started:
                started = True
                task_status.started()
            await trio.sleep(self._relist_interval)

    async def _relist(self, named: runtimes.NamedRuntime) -> dict[str, tuple[object, str]]:
        rt = named.runtime
        current: dict[str, tuple[object, str]] = {}
        for sandbox in await rt.list_pod_sandbox():
            current["sandbox/" + sandbox.id] = (
                sandbox.state,
                sandbox.labels.get(podconfig.POD_UID, ""),
            )
        for container in await rt.list_containers():
            state: object = container.state
            if runtime.VM_STATE in container.annotations:
                # A VM changes without a change of CRI state too (a reboot, a pause).
                state = (state, *(container.annotations.get(k, "") for k in _VM_FACTS))
            current[container.id] = (state, container.labels.get(podconfig.POD_UID, ""))
        return current

    def _collect_orphans(self, named: runtimes.NamedRuntime, uids: set[str]) -> None:
        if self._stopping or self._nursery is None:
            return
        for uid in uids:
            if (
                uid
                and uid not in self._known
                and uid not in self._workers
                and uid not in self._removing
            ):
                self._removing.add(uid)
                self._nursery.start_soon(self._remove_orphan, named, uid)

    async def _remove_orphan(self, named: runtimes.NamedRuntime, uid: str) -> None:
        try:
            logger.info("runtime %s: removing pod %s, which is not on this node", named.name, uid)
            await self._remove_pod(named, uid, grace_cap=self._stop_timeout)
        except runtime_errors.CRIError as exc:
            logger.warning("runtime %s: removing orphan pod %s failed: %s", named.name, uid, exc)
        finally:
            self._removing.discard(uid)

    async def _remove_pod(
        self, named: runtimes.NamedRuntime, uid: str, *, grace_cap: float
    ) -> None:
        """Stop and remove every sandbox and container of pod `uid` (no preStop)."""
        rt = named.runtime
        selector = {podconfig.POD_UID: uid}
        containers = await rt.list_containers(cri.ContainerFilter(label_selector=selector))

        async def stop(container: cri.Container) -> None:
            grace = _int(container.annotations.get(podconfig.TERMINATION_GRACE_PERIOD), 30)
            with trio.move_on_after(grace_cap + 1):
                await rt.stop_container(
                    container.id, timeout=math.ceil(max(0.0, min(float(grace), grace_cap)))
                )

        async with trio.open_nursery() as nursery:
            for container in containers:
                if container.state in (cri.CONTAINER_RUNNING, cri.CONTAINER_CREATED):
                    nursery.start_soon(stop, container)
        for sandbox in await rt.list_pod_sandbox(cri.PodSandboxFilter(label_selector=selector)):
            await rt.stop_pod_sandbox(sandbox.id)
            for container in containers:
                if container.pod_sandbox_id == sandbox.id:
                    await rt.remove_container(container.id)
            await rt.remove_pod_sandbox(sandbox.id)
        if self._services.network is not None:
            await self._services.network.detach(uid)

    # Shutdown

    async def stop_all(self) -> None:
        """Stop every pod of this node gracefully and remove its sandboxes; the API objects
        stay. Bounded by `stop_timeout` (plus a moment to kill what is left)."""
        self._stopping = True
        workers = list(self._workers.values())
        for scope in self._worker_scopes.values():
            scope.cancel()
        logger.info("stopping the %d pods of node %s", len(workers), self.node_name)
        with trio.move_on_after(self._stop_timeout):
            async with trio.open_nursery() as nursery:
                for worker in workers:
                    pod = worker.current_pod()
                    if pod is not None and worker.runtime is not None:
                        nursery.start_soon(self._terminate_quietly, worker, pod)
        for named in self._runtimes.runtimes:
            try:
                sandboxes = await named.runtime.list_pod_sandbox()
            except runtime_errors.CRIError as exc:
                logger.warning("runtime %s: cannot list sandboxes to stop: %s", named.name, exc)
                continue
            uids = {s.labels.get(podconfig.POD_UID, "") for s in sandboxes} - {""}
            async with trio.open_nursery() as nursery:
                for uid in uids:
                    nursery.start_soon(self._remove_quietly, named, uid)

    async def _terminate_quietly(self, worker: podworker.PodWorker, pod: Obj) -> None:
        try:
            await worker.terminate(pod, delete=False)
        except podworker.TRANSIENT_ERRORS as exc:
            logger.warning("pod %s: stopping failed: %s", worker.key, exc)

    async def _remove_quietly(self, named: runtimes.NamedRuntime, uid: str) -> None:
        try:
            await self._remove_pod(named, uid, grace_cap=0)
        except runtime_errors.CRIError as exc:
            logger.warning("runtime %s: removing pod %s failed: %s", named.name, uid, exc)

    def wake(self, uid: str) -> None:
        """Have the worker of pod `uid` sync now (e.g. after a VM reboot changed its
        runtime annotations, which the PLEG does not compare)."""
        worker = self._workers.get(uid)
        if worker is not None:
            worker.wakeup.set()

    async def locate_vm(self, *, tenant: str, namespace: str, pod: str, uid: str = "") -> LocatedVm:
        """The VM container of a VM pod of this node (whose uid is `uid`, if given).

        Raises `LookupError` saying what is missing: the pod is not (or no more) on this
        node as the informer knows it, it is another pod by that name, it is no VM pod,
        this node has no runtime for it; `PodNotOnNode` when the informer does not have it
        (yet); `VmNotReady` when its VM is not created yet."""
        obj = self._pods.get(f"{tenant}/{namespace}/{pod}")
        if obj is None or (obj.get("spec") or {}).get("nodeName") != self.node_name:
            raise PodNotOnNode(
                f'pod "{pod}" in namespace "{namespace}" is not on node {self.node_name}'
            )
        ref = podconfig.PodRef.of(obj)
        if uid and ref.uid != uid:
            raise LookupError(f'pod "{pod}" is another pod now (uid {ref.uid}, not {uid})')
        vm = podconfig.vm_container(obj)
        if vm is None:
            raise LookupError(f'pod "{pod}" is not a virtual machine pod')
        named = self._runtimes.for_pod(obj)
        if named is None:
            raise LookupError(f"node {self.node_name} has no runtime for virtual machines")
        selector = {podconfig.POD_UID: ref.uid, podconfig.CONTAINER_NAME: vm["name"]}
        listed = sorted(
            await named.runtime.list_containers(cri.ContainerFilter(label_selector=selector)),
            key=lambda c: (
                podconfig.restart_count(c.annotations, c.metadata.attempt),
                c.created_at,
            ),
        )
        if not listed:
            raise VmNotReady(f'the virtual machine of pod "{pod}" is not created yet')
        found = listed[-1]
        return LocatedVm(
            pod=obj,
            runtime=named.runtime,
            container_id=found.id,
            running=found.state == cri.CONTAINER_RUNNING,
        )

    # Logs and exec

    async def locate(
        self, *, tenant: str, namespace: str, pod: str, container: str, previous: bool
    ) -> server.LocatedContainer:
        """The runtime container of `container` in a pod of this node (or the one before
        it, with `previous`). Raises `LookupError` saying what is missing."""
        obj = self._pods.get(f"{tenant}/{namespace}/{pod}")
        if obj is None or (obj.get("spec") or {}).get("nodeName") != self.node_name:
            raise LookupError(
                f'pod "{pod}" in namespace "{namespace}" is not on node {self.node_name}'
            )
        named = self._runtimes.for_pod(obj)
        if named is None:
            raise LookupError(f'pod "{pod}" has no runtime on node {self.node_name}')
        names = [
            c.get("name") for c in (*podconfig.init_containers(obj), *podconfig.app_containers(obj))
        ]
        if container not in names:
            raise LookupError(f'container "{container}" is not valid for pod "{pod}"')
        ref = podconfig.PodRef.of(obj)
        selector = {podconfig.POD_UID: ref.uid, podconfig.CONTAINER_NAME: container}
        listed = sorted(
            await named.runtime.list_containers(cri.ContainerFilter(label_selector=selector)),
            key=lambda c: (
                podconfig.restart_count(c.annotations, c.metadata.attempt),
                c.created_at,
            ),
        )
        wanted = 2 if previous else 1
        if len(listed) < wanted:
            if previous:
                raise LookupError(
                    f'previous terminated container "{container}" in pod "{pod}" not found'
                )
            raise LookupError(f'container "{container}" in pod "{pod}" is waiting to start')
        found = listed[-wanted]
        try:
            found_status = await named.runtime.container_status(found.id)
        except runtime_errors.NotFound:
            raise LookupError(f'container "{container}" in pod "{pod}" is gone') from None
        restarts = podconfig.restart_count(found.annotations, found.metadata.attempt)
        log_path = Path(found_status.log_path)
        if not log_path.is_absolute():
            log_path = podconfig.log_directory(self._root_dir, ref) / podconfig.log_path(
                container, restarts
            )
        return server.LocatedContainer(
            runtime=named.runtime,
            container_id=found.id,
            log_path=log_path,
            running=found_status.state == cri.CONTAINER_RUNNING,
        )


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
