"""Hollow nodes: many simulated nodes in one process, for scale tests of the control plane.

`HollowNodes` registers `count` real Node objects (`<prefix>0`, `<prefix>1`, …) whose
runtime is an in-memory `FakeRuntime` each, and keeps them alive as real agents would:
Leases renewed every `lease_renew_interval` and status written every
`status_report_interval`, each node at its own offset within the interval so that a
thousand nodes do not write in one burst. Guarantees:

* Cheap per node and per pod: one shared pod informer (every pod, indexed by node name;
  pods of other nodes are ignored), two work queues and a few workers; no task per node
  or per pod.
* A pod bound to a hollow node is started on its node's fake runtime at once: init
  containers exit 0, app containers run until the pod goes. Its status (written only
  when it changed) is Running with every container ready, its IP from the node's own
  range `10.<n / 256>.<n % 256>.2-254` (n: the node's index); the hostIP is the node's
  InternalIP `172.<16 + n / 65536>.<n / 256 % 256>.<n % 256>`.
* A pod being deleted is removed from the fake runtime and then deleted for good (grace
  period 0, with its uid as precondition), as an agent finalizes a pod.
* Nodes are real: each carries the usual labels (plus `arktos.futurewei.com/hollow`),
  capacity (`cpu`, `memory`, `pods`, `ephemeral-storage`), nodeInfo and conditions
  computed by the same code as a real agent's; a hollow node's runtime can be made not
  ready through `runtime(name).ready = False` (it shows at the next status write).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import pathlib
import random
from collections.abc import Mapping
from typing import Any

import trio

from arktos_lite import client, machinery
from arktos_lite.agent import (
    _node as node_,
    _podconfig as podconfig,
    _runtimes as runtimes,
    _status as status_,
)
from arktos_lite.api import errors, resources
from arktos_lite.runtime import fake
from arktos_lite.runtime.cri import api_pb2 as cri

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

HOLLOW_LABEL = "arktos.futurewei.com/hollow"
_NODE_INDEX = "nodeName"
_REGISTRATIONS_AT_ONCE = 32
_RETRY = 1.0
_GIB = 1024**3

_REGISTRY = resources.Registry()
_PODS = _REGISTRY.get("", "v1", "pods")
assert _PODS is not None
PODS: resources.Resource = _PODS

_CRI_STATES = {
    cri.CONTAINER_CREATED: status_.ContainerState.CREATED,
    cri.CONTAINER_RUNNING: status_.ContainerState.RUNNING,
    cri.CONTAINER_EXITED: status_.ContainerState.EXITED,
}


def node_ip(index: int) -> str:
    return f"172.{16 + ((index >> 16) & 15)}.{(index >> 8) & 255}.{index & 255}"


def pod_ip(index: int, host: int) -> str:
    return f"10.{(index >> 8) & 255}.{index & 255}.{host}"


def _init_exits(config: cri.ContainerConfig) -> fake.FakeExit | None:
    if config.labels.get(podconfig.CONTAINER_TYPE) == podconfig.CONTAINER_TYPE_INIT:
        return fake.FakeExit(0)
    return None


@dataclasses.dataclass(slots=True)
class _Pod:
    uid: str
    sandbox_id: str
    host: int
    # Container name -> runtime container id, init containers included.
    containers: dict[str, str]


class HollowNode:
    """One simulated node: its reporter, its fake runtime and its pods' runtime state."""

    def __init__(self, index: int, reporter: node_.NodeReporter, runtime: fake.FakeRuntime):
        self.index = index
        self.name = reporter.node_name
        self.reporter = reporter
        self.runtime = runtime
        self.ip = node_ip(index)
        self.pods: dict[str, _Pod] = {}
        # Pod IP host numbers free in this node's /24.
        self._free_hosts = list(range(254, 1, -1))

    def take_host(self, preferred: str = "") -> int:
        """A free host number of this node's range: that of `preferred` (a pod IP the
        pod had, as after a restart of the hollow nodes) if it is free, else the lowest."""
        prefix = pod_ip(self.index, 0)[:-1]
        wanted = preferred.removeprefix(prefix)
        if preferred.startswith(prefix) and wanted.isdigit() and int(wanted) in self._free_hosts:
            self._free_hosts.remove(int(wanted))
            return int(wanted)
        if not self._free_hosts:
            raise RuntimeError(f"hollow node {self.name} has no pod IP left")
        return self._free_hosts.pop()

    def release_host(self, host: int) -> None:
        self._free_hosts.append(host)
        # Lowest first, so a freed address is reused before fresh ones (as IPAM would).
        self._free_hosts.sort(reverse=True)


class HollowNodes:
    """`count` simulated nodes named `<name_prefix><i>`; see the module docs."""

    def __init__(
        self,
        api: client.Client,
        *,
        count: int,
        name_prefix: str = "hollow-node-",
        cpu: int = 4,
        memory_gib: int = 16,
        max_pods: int = 110,
        labels: Mapping[str, str] | None = None,
        lease_duration_seconds: int = 40,
        lease_renew_interval: float = 10.0,
        status_report_interval: float = 60.0,
        workers: int = 8,
        seed: int | None = None,
    ) -> None:
        if count < 0:
            raise ValueError(f"count must not be negative, not {count}")
        self._api = api
        self._lease_renew_interval = lease_renew_interval
        self._status_report_interval = status_report_interval
        self._workers = max(1, workers)
        self._random = random.Random(seed)
        host = node_.HostInfo(
            cpus=cpu,
            memory_bytes=memory_gib * _GIB,
            machine_id="",
            kernel_version="hollow",
            os_image="Hollow Node",
        )
        usage = node_.Usage(
            memory_available=memory_gib * _GIB, disk_total=100 * _GIB, disk_free=100 * _GIB
        )
        self.nodes: dict[str, HollowNode] = {}
        for index in range(count):
            name = f"{name_prefix}{index}"
            runtime = fake.FakeRuntime(behaviour=_init_exits)
            reporter = node_.NodeReporter(
                api,
                node_name=name,
                runtimes=runtimes.RuntimeSet(
                    (runtimes.NamedRuntime("fake", runtimes.WorkloadType.CONTAINER, runtime),)
                ),
                root_dir=pathlib.Path("/nonexistent"),
                node_ip=node_ip(index),
                port=0,
                labels={HOLLOW_LABEL: "true", **(labels or {})},
                max_pods=max_pods,
                lease_duration_seconds=lease_duration_seconds,
                host=host,
                usage=usage,
            )
            self.nodes[name] = HollowNode(index, reporter, runtime)
        self._informers = machinery.InformerFactory(api)
        self.pods = self._informers.informer(PODS, indexers={_NODE_INDEX: machinery.by_node_name})
        self._node_queue: machinery.WorkQueue[tuple[str, str]] = machinery.WorkQueue()
        self._pod_queue: machinery.WorkQueue[str] = machinery.WorkQueue()
        # Which hollow node holds the runtime state of each pod key.
        self._placed: dict[str, str] = {}

    @property
    def names(self) -> list[str]:
        return list(self.nodes)

    def runtime(self, node: str) -> fake.FakeRuntime:
        return self.nodes[node].runtime

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Register every node, then keep them and their pods going until cancelled.

        `started` once every node is registered with its Lease and the pods are synced.
        """
        logger.info("hollow nodes starting: %d", len(self.nodes))
        try:
            async with trio.open_nursery() as nursery:
                await self._register_all()
                await nursery.start(self._informers.run)
                self.pods.add_handler(
                    on_add=self._pod_changed,
                    on_update=lambda _old, new: self._pod_changed(new),
                    on_delete=self._pod_changed,
                )
                for name in self.nodes:
                    # Spread over the interval: a thousand nodes must not beat in step.
                    lease_delay = self._random.uniform(0, self._lease_renew_interval)
                    status_delay = self._random.uniform(0, self._status_report_interval)
                    self._node_queue.add_after(("lease", name), lease_delay)
                    self._node_queue.add_after(("status", name), status_delay)
                await nursery.start(
                    functools.partial(
                        machinery.run_workers,
                        self._node_queue,
                        self._sync_node,
                        workers=self._workers,
                    )
                )
                await nursery.start(
                    functools.partial(
                        machinery.run_workers,
                        self._pod_queue,
                        self._sync_pod,
                        workers=self._workers,
                    )
                )
                logger.info("hollow nodes ready: %d", len(self.nodes))
                task_status.started()
        finally:
            self._node_queue.shutdown()
            self._pod_queue.shutdown()
            logger.info("hollow nodes stopped")

    async def _register_all(self) -> None:
        limiter = trio.Semaphore(_REGISTRATIONS_AT_ONCE)

        async def register(hollow: HollowNode) -> None:
            async with limiter:
                while True:
                    try:
                        await hollow.reporter.register()
                        return
                    except (client.Unreachable, errors.StatusError) as exc:
                        logger.warning("hollow node %s: registering failed: %s", hollow.name, exc)
                        await trio.sleep(_RETRY)

        async with trio.open_nursery() as nursery:
            for hollow in self.nodes.values():
                nursery.start_soon(register, hollow)

    # Nodes

    async def _sync_node(self, key: tuple[str, str]) -> None:
        what, name = key
        hollow = self.nodes[name]
        try:
            if what == "lease":
                await hollow.reporter.renew_lease()
            else:
                await hollow.reporter.update_status(force=True)
        except (client.Unreachable, errors.StatusError) as exc:
            logger.debug("hollow node %s: %s failed: %s", name, what, exc)
            raise machinery.Requeue(after=_RETRY) from None
        interval = self._lease_renew_interval if what == "lease" else self._status_report_interval
        self._node_queue.add_after(key, interval)

    # Pods

    def _pod_changed(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node in self.nodes:
            self._pod_queue.add(self.pods.key(pod))

    async def _sync_pod(self, key: str) -> None:
        pod = self.pods.get(key)
        node = (pod.get("spec") or {}).get("nodeName") if pod is not None else None
        hollow = self.nodes.get(node) if isinstance(node, str) else None
        uid = ((pod or {}).get("metadata") or {}).get("uid")
        # A pod gone, moved, or replaced by another of its name leaves its old state.
        placed = self._placed.get(key)
        if placed is not None:
            other = self.nodes[placed]
            state = other.pods.get(key)
            if state is not None and (other is not hollow or state.uid != uid):
                await self._remove(other, key)
        if pod is None or hollow is None:
            return
        meta = pod["metadata"]
        try:
            if meta.get("deletionTimestamp"):
                await self._remove(hollow, key)
                await self._api.delete(
                    PODS,
                    meta["name"],
                    namespace=meta.get("namespace"),
                    tenant=meta.get("tenant"),
                    grace_period_seconds=0,
                    preconditions={"uid": meta["uid"]},
                )
                return
            if (pod.get("status") or {}).get("phase") in status_.TERMINAL_PHASES:
                await self._remove(hollow, key)
                return
            state = hollow.pods.get(key)
            if state is None:
                state = await self._start(hollow, key, pod)
            await self._write_status(hollow, pod, state)
        except (errors.NotFound, errors.Conflict):
            # Gone, or changed since the cache saw it: the informer brings the news.
            return
        except (client.Unreachable, errors.StatusError) as exc:
            logger.debug("hollow pod %s: %s", key, exc)
            raise machinery.Requeue(after=_RETRY) from None

    async def _start(self, hollow: HollowNode, key: str, pod: Obj) -> _Pod:
        rt = hollow.runtime
        ref = podconfig.PodRef.of(pod)
        config = cri.PodSandboxConfig(
            metadata=cri.PodSandboxMetadata(name=ref.name, uid=ref.uid, namespace=ref.namespace),
            labels=podconfig.sandbox_labels(ref),
        )
        sandbox_id = await rt.run_pod_sandbox(config)
        # A pod already running here (the hollow nodes restarted) keeps its address.
        host = hollow.take_host(str((pod.get("status") or {}).get("podIP") or ""))
        state = _Pod(uid=ref.uid, sandbox_id=sandbox_id, host=host, containers={})
        hollow.pods[key] = state
        self._placed[key] = hollow.name
        for container in podconfig.init_containers(pod):
            await self._run_container(rt, state, config, ref, container, init=True)
        for container in podconfig.app_containers(pod):
            await self._run_container(rt, state, config, ref, container, init=False)
        return state

    @staticmethod
    async def _run_container(
        rt: fake.FakeRuntime,
        state: _Pod,
        sandbox: cri.PodSandboxConfig,
        ref: podconfig.PodRef,
        container: Mapping[str, Any],
        *,
        init: bool,
    ) -> None:
        name = str(container.get("name") or "")
        image = str(container.get("image") or "")
        rt.add_image(image)
        container_id = await rt.create_container(
            state.sandbox_id,
            cri.ContainerConfig(
                metadata=cri.ContainerMetadata(name=name),
                image=cri.ImageSpec(image=image),
                labels=podconfig.container_labels(ref, name, init=init),
            ),
            sandbox,
        )
        await rt.start_container(container_id)
        state.containers[name] = container_id

    async def _remove(self, hollow: HollowNode, key: str) -> None:
        state = hollow.pods.pop(key, None)
        if state is None:
            return
        self._placed.pop(key, None)
        await hollow.runtime.stop_pod_sandbox(state.sandbox_id)
        await hollow.runtime.remove_pod_sandbox(state.sandbox_id)
        hollow.release_host(state.host)

    async def _view(self, hollow: HollowNode, pod: Obj, state: _Pod) -> status_.PodView:
        init_names = {str(c.get("name")) for c in podconfig.init_containers(pod)}
        init: dict[str, status_.ContainerView] = {}
        apps: dict[str, status_.ContainerView] = {}
        for name, container_id in state.containers.items():
            found = await hollow.runtime.container_status(container_id)
            instance = status_.Instance(
                id=container_id,
                state=_CRI_STATES.get(found.state, status_.ContainerState.UNKNOWN),
                image_ref=found.image_ref,
                started_at=found.started_at,
                finished_at=found.finished_at,
                exit_code=found.exit_code,
                reason=found.reason,
                message=found.message,
            )
            view = status_.ContainerView(current=instance, ready=True, started=True)
            (init if name in init_names else apps)[name] = view
        return status_.PodView(
            runtime_name=fake.RUNTIME_NAME,
            host_ip=hollow.ip,
            pod_ips=(pod_ip(hollow.index, state.host),),
            sandbox_ready=True,
            init_containers=init,
            containers=apps,
        )

    async def _write_status(self, hollow: HollowNode, pod: Obj, state: _Pod) -> None:
        old = pod.get("status") or {}
        new = status_.pod_status(
            pod, await self._view(hollow, pod, state), now=status_.now_rfc3339()
        )
        if not status_.differs(old, new):
            return
        meta = pod["metadata"]
        await self._api.patch(
            PODS,
            meta["name"],
            {"status": status_.status_patch(old, new)},
            namespace=meta.get("namespace"),
            tenant=meta.get("tenant"),
            subresource="status",
        )
