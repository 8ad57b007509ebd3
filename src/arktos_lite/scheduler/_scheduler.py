"""The scheduler: places pending pods, container and VM alike, on nodes through the API.

It watches every tenant's pods and every node through informers (it is a system
component), keeps the cache and the queue in step with them, and runs one scheduling
cycle at a time; bindings go out concurrently so that a round trip never holds up the
next cycle. Guarantees:

* Only pods with `spec.schedulerName` equal to the configured name (`default-scheduler`)
  that are neither bound nor being deleted are scheduled.
* No node is overcommitted by this scheduler: a pod is counted on its node (assumed)
  before its binding is sent, and stays counted until the informer shows where it is
  bound or the binding is known to have failed. A binding whose outcome is unknown
  keeps the pod counted until the pod is tried again.
* A pod that fits nowhere gets `PodScheduled=False` with reason `Unschedulable` and
  kube-scheduler's message (written only when it changes), and a `FailedScheduling`
  event; a bound pod gets a `Scheduled` event ("Successfully assigned ns/name to
  node"). A pod that cannot be scheduled for another reason gets reason
  `SchedulerError`. Status writes carry the resourceVersion they were decided on, so a
  stale verdict never lands on a pod that moved on (bound meanwhile).
* Unschedulable pods are tried again when a node is added or changes in a way that
  matters, when a bound pod goes away, when a binding is undone, and every
  `max_unschedulable_duration`; see `_queue` for the order and fairness across tenants.
* `run` reports `started` once the informers have synced (the cache holds every node
  and bound pod) and scheduling has begun.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import trio

from arktos_lite import client, machinery
from arktos_lite.api import errors, resources, timestamps
from arktos_lite.scheduler import (
    _cache as cache,
    _config as config_,
    _framework as framework,
    _pods as pods,
    _queue as queue,
)

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

_REGISTRY = resources.Registry()


def _resource(plural: str) -> resources.Resource:
    found = _REGISTRY.get("", "v1", plural)
    assert found is not None, plural
    return found


PODS = _resource("pods")
NODES = _resource("nodes")
NAMESPACES = _resource("namespaces")

POD_SCHEDULED = "PodScheduled"
STATUS_BUFFER = 1000


class Reason(enum.StrEnum):
    """Event and condition reasons, as kube-scheduler writes them."""

    SCHEDULED = "Scheduled"
    FAILED_SCHEDULING = "FailedScheduling"
    UNSCHEDULABLE = "Unschedulable"
    SCHEDULER_ERROR = "SchedulerError"


# The cluster events that may let an unschedulable pod fit, by the plugins that care.
_RESOURCES_FREED = frozenset({"NodeResourcesFit", "InterPodAffinity", "PodTopologySpread"})
_POD_PLACED = frozenset({"InterPodAffinity", "PodTopologySpread"})
_NAMESPACE_CHANGED = frozenset({"InterPodAffinity"})


@dataclasses.dataclass(frozen=True, slots=True)
class SchedulerStats:
    """Counters since the scheduler started."""

    attempts: int = 0
    scheduled: int = 0
    bound: int = 0
    unschedulable: int = 0
    errors: int = 0
    bind_failures: int = 0
    pending: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class _Binding:
    queued: queue.QueuedPod
    pod: pods.PodInfo
    node: str


@dataclasses.dataclass(frozen=True, slots=True)
class _StatusUpdate:
    pod: pods.PodInfo
    condition: Obj


def _wall_clock() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _scheduling_relevant(old: Obj, new: Obj) -> bool:
    """Whether a pending pod changed in a way that may change where it fits."""
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    return (
        old.get("spec") != new.get("spec")
        or old_meta.get("labels") != new_meta.get("labels")
        or old_meta.get("uid") != new_meta.get("uid")
    )


class Scheduler:
    """See the module docs.

    Without `informers`, the scheduler runs informers of its own. With a shared factory,
    its owner runs it: construct the scheduler first (it asks for its informers here),
    and start the factory no later than the scheduler, which waits for them to sync.
    """

    def __init__(
        self,
        api: client.Client,
        *,
        informers: machinery.InformerFactory | None = None,
        config: config_.SchedulerConfig | None = None,
        wall_clock: Callable[[], datetime.datetime] = _wall_clock,
        rng: random.Random | None = None,
    ) -> None:
        self._api = api
        self._config = config = config or config_.SchedulerConfig()
        self._owns_informers = informers is None
        self._informers = informers = informers or machinery.InformerFactory(api)
        self._recorder = machinery.EventRecorder(api, component=config.scheduler_name)
        self._wall_clock = wall_clock
        self._cache = cache.Cache(namespace_labels=self._namespace_labels)
        self._queue = queue.SchedulingQueue(
            initial_backoff=config.pod_initial_backoff,
            max_backoff=config.pod_max_backoff,
            max_unschedulable_duration=config.max_unschedulable_duration,
        )
        self._framework = config_.build_framework(
            config, framework.Handle(snapshot=self._cache), rng=rng
        )
        self._stats = dict.fromkeys(
            ("attempts", "scheduled", "bound", "unschedulable", "errors", "bind_failures"), 0
        )
        self._bind_send, self._bind_receive = trio.open_memory_channel[_Binding](
            config.bind_workers * 4
        )
        self._status_send, self._status_receive = trio.open_memory_channel[_StatusUpdate](
            STATUS_BUFFER
        )

        self._nodes = informers.informer(NODES)
        self._pods = informers.informer(PODS)
        self._namespaces = informers.informer(NAMESPACES)
        self._nodes.add_handler(
            on_add=self._on_node_add,
            on_update=self._on_node_update,
            on_delete=self._on_node_delete,
        )
        self._pods.add_handler(
            on_add=lambda obj: self._on_pod(None, obj),
            on_update=self._on_pod,
            on_delete=self._on_pod_delete,
        )
        self._namespaces.add_handler(on_update=self._on_namespace_update)

    @property
    def config(self) -> config_.SchedulerConfig:
        return self._config

    @property
    def stats(self) -> SchedulerStats:
        return SchedulerStats(**self._stats, pending=len(self._queue))

    # Running

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        name = self._config.scheduler_name
        logger.info("scheduler %s starting", name)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._recorder.run)
                if self._owns_informers:
                    await nursery.start(self._informers.run)
                else:
                    for informer in (self._nodes, self._pods, self._namespaces):
                        await informer.wait_synced()
                for _ in range(self._config.bind_workers):
                    nursery.start_soon(self._bind_worker)
                for _ in range(self._config.status_workers):
                    nursery.start_soon(self._status_worker)
                logger.info(
                    "scheduler %s synced: %d nodes, %d bound pods, %d pending",
                    name,
                    self._cache.node_count,
                    self._cache.pod_count,
                    len(self._queue),
                )
                task_status.started()
                await self._schedule_loop()
        finally:
            logger.info("scheduler %s stopped", name)
        raise AssertionError("the scheduling loop never ends")

    async def _schedule_loop(self) -> NoReturn:
        while True:
            queued = await self._queue.pop()
            await self._schedule_one(queued)

    async def _schedule_one(self, queued: queue.QueuedPod) -> None:
        key = queued.key
        pod = self._current(queued)
        if pod is None:
            self._queue.done(key)
            return
        held = self._cache.pod(key)
        if held is not None and self._cache.is_assumed(key):
            # A binding whose outcome was unknown: the pod stayed counted until now.
            self._cache.forget_pod(held)
        cycle = self._queue.scheduling_cycle
        self._stats["attempts"] += 1
        try:
            result = self._framework.schedule(self._cache, pod)
        except framework.FitError as fit:
            self._unschedulable(queued, pod, fit, cycle=cycle)
            return
        except framework.SchedulingError as exc:
            self._failed(queued, pod, str(exc))
            return
        except Exception as exc:
            # A faulty plugin must cost one pod an attempt, not stop the scheduler.
            logger.exception("scheduling %s failed", key)
            self._failed(queued, pod, f"{type(exc).__name__}: {exc}")
            return
        self._cache.assume_pod(pod, result.node)
        self._queue.done(key)
        self._stats["scheduled"] += 1
        logger.debug(
            "%s goes to %s (%d nodes looked at, %d fit)",
            key,
            result.node,
            result.evaluated,
            result.feasible,
        )
        await self._bind_send.send(_Binding(queued, pod, result.node))

    def _current(self, queued: queue.QueuedPod) -> pods.PodInfo | None:
        """The pod as the informer has it now, if it still waits for this scheduler."""
        obj = self._pods.get(queued.key)
        if obj is None or not self._responsible(obj):
            return None
        if obj is not queued.pod.obj:
            queued.pod = pods.PodInfo.parse(obj)
        return queued.pod

    def _responsible(self, obj: Obj) -> bool:
        spec = obj.get("spec") or {}
        return (
            not spec.get("nodeName")
            and (spec.get("schedulerName") or pods.DEFAULT_SCHEDULER) == self._config.scheduler_name
            and not (obj.get("metadata") or {}).get("deletionTimestamp")
        )

    # Failures

    def _unschedulable(
        self,
        queued: queue.QueuedPod,
        pod: pods.PodInfo,
        fit: framework.FitError,
        *,
        cycle: int,
    ) -> None:
        self._stats["unschedulable"] += 1
        message = str(fit)
        logger.debug("%s is unschedulable: %s", pod.key, message)
        rejecting = frozenset(s.plugin for s in fit.statuses.values() if s.plugin)
        self._queue.add_unschedulable(queued, cycle=cycle, plugins=rejecting)
        self._recorder.event(
            pod.obj, machinery.EventType.WARNING, reason=Reason.FAILED_SCHEDULING, message=message
        )
        self._set_condition(pod, reason=Reason.UNSCHEDULABLE, message=message)

    def _failed(self, queued: queue.QueuedPod, pod: pods.PodInfo, message: str) -> None:
        self._stats["errors"] += 1
        logger.debug("scheduling %s failed: %s", pod.key, message)
        self._queue.add_backoff(queued)
        self._recorder.event(
            pod.obj, machinery.EventType.WARNING, reason=Reason.FAILED_SCHEDULING, message=message
        )
        self._set_condition(pod, reason=Reason.SCHEDULER_ERROR, message=message)

    def _set_condition(self, pod: pods.PodInfo, *, reason: str, message: str) -> None:
        conditions = (pod.obj.get("status") or {}).get("conditions") or ()
        current = next((c for c in conditions if c.get("type") == POD_SCHEDULED), None)
        if (
            current is not None
            and current.get("status") == "False"
            and current.get("reason") == reason
            and current.get("message") == message
        ):
            return
        if current is not None and current.get("status") == "False":
            since = current.get("lastTransitionTime")
        else:
            since = timestamps.rfc3339(self._wall_clock())
        condition = {
            "type": POD_SCHEDULED,
            "status": "False",
            "reason": str(reason),
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": since,
        }
        try:
            self._status_send.send_nowait(_StatusUpdate(pod, condition))
        except trio.WouldBlock:
            # The next attempt writes it; the queue matters more than this word.
            logger.debug("status buffer full; %s keeps its old condition", pod.key)

    async def _status_worker(self) -> None:
        async for update in self._status_receive:
            pod = update.pod
            body: Obj = {"status": {"conditions": [update.condition]}}
            if pod.resource_version:
                body["metadata"] = {"resourceVersion": pod.resource_version}
            try:
                await self._api.patch(
                    PODS,
                    pod.name,
                    body,
                    patch_type="strategic",
                    namespace=pod.namespace,
                    tenant=pod.tenant,
                    subresource="status",
                )
            except (errors.Conflict, errors.NotFound):
                logger.debug("%s moved on; its condition is decided again", pod.key)
            except (errors.StatusError, client.Unreachable) as exc:
                logger.warning("could not set the condition of %s: %s", pod.key, exc)

    # Binding

    async def _bind_worker(self) -> None:
        async for binding in self._bind_receive:
            await self._bind(binding)

    async def _bind(self, binding: _Binding) -> None:
        pod, node = binding.pod, binding.node
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": pod.name, "uid": pod.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        try:
            await self._api.post_subresource(
                PODS, pod.name, "binding", body, namespace=pod.namespace, tenant=pod.tenant
            )
        except errors.NotFound:
            self._undo(pod, why="the pod is gone")
            return
        except errors.Conflict:
            await self._bind_conflict(binding)
            return
        except (errors.StatusError, client.Unreachable) as exc:
            # The outcome is unknown (or the server failed): the pod stays counted on the
            # node until it is tried again, so that a binding that did land is not lost.
            self._stats["bind_failures"] += 1
            logger.warning("binding %s to %s failed: %s", pod.key, node, exc)
            self._queue.add_backoff(binding.queued)
            self._recorder.event(
                pod.obj,
                machinery.EventType.WARNING,
                reason=Reason.FAILED_SCHEDULING,
                message=f"Binding rejected: {exc}",
            )
            return
        self._bound(pod, node)

    def _bound(self, pod: pods.PodInfo, node: str) -> None:
        self._stats["bound"] += 1
        self._recorder.event(
            pod.obj,
            machinery.EventType.NORMAL,
            reason=Reason.SCHEDULED,
            message=f"Successfully assigned {pod.namespace}/{pod.name} to {node}",
        )

    async def _bind_conflict(self, binding: _Binding) -> None:
        """The pod was bound already or is being deleted: find out which."""
        pod = binding.pod
        try:
            current = await self._api.get(
                PODS, pod.name, namespace=pod.namespace, tenant=pod.tenant
            )
        except errors.NotFound:
            self._undo(pod, why="the pod is gone")
            return
        except (errors.StatusError, client.Unreachable) as exc:
            self._stats["bind_failures"] += 1
            logger.warning("binding %s: conflict, and the pod cannot be read: %s", pod.key, exc)
            self._queue.add_backoff(binding.queued)
            return
        meta = current.get("metadata") or {}
        bound_to = (current.get("spec") or {}).get("nodeName")
        if meta.get("uid") == pod.uid and bound_to == binding.node:
            # An earlier try of this very binding landed.
            self._bound(pod, binding.node)
            return
        # Bound elsewhere (the informer will count it there), or being deleted.
        self._undo(pod, why=f"the pod is bound to {bound_to!r} or being deleted")

    def _undo(self, pod: pods.PodInfo, *, why: str) -> None:
        logger.debug("binding %s undone: %s", pod.key, why)
        if self._cache.forget_pod(pod):
            self._queue.move_all(_RESOURCES_FREED)

    # Informer handlers: they only update the cache and the queue.

    def _on_node_add(self, obj: Obj) -> None:
        self._cache.add_node(obj)
        self._queue.move_all()

    def _on_node_update(self, old: Obj, new: Obj) -> None:
        name = str((new.get("metadata") or {}).get("name") or "")
        before = self._cache.get_node(name)
        view = before.facts.scheduling_view() if before and before.facts else None
        after = self._cache.add_node(new)
        assert after.facts is not None
        if view != after.facts.scheduling_view():
            self._queue.move_all()

    def _on_node_delete(self, obj: Obj) -> None:
        self._cache.remove_node(str((obj.get("metadata") or {}).get("name") or ""))

    def _on_pod(self, old: Obj | None, obj: Obj) -> None:
        key = pods.pod_key(obj)
        spec = obj.get("spec") or {}
        if spec.get("nodeName"):
            self._queue.delete(key)
            pod = pods.PodInfo.parse(obj)
            if pod.terminal:
                if self._cache.remove_pod(key) is not None:
                    self._queue.move_all(_RESOURCES_FREED)
                return
            placed = self._cache.pod(key)
            self._cache.add_pod(pod)
            if placed is None or placed.labels != pod.labels:
                self._queue.move_all(_POD_PLACED)
            return
        if not self._responsible(obj):
            self._queue.delete(key)
            return
        if self._cache.is_assumed(key):
            # Its binding is in flight; the pod is read afresh if it comes back.
            return
        pod = pods.PodInfo.parse(obj)
        if old is not None and not _scheduling_relevant(old, obj) and self._queue.update(pod):
            return
        self._queue.add(pod)

    def _on_pod_delete(self, obj: Obj) -> None:
        key = pods.pod_key(obj)
        self._queue.delete(key)
        if self._cache.remove_pod(key) is not None:
            self._queue.move_all(_RESOURCES_FREED)

    def _on_namespace_update(self, old: Obj, new: Obj) -> None:
        if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
            self._queue.move_all(_NAMESPACE_CHANGED)

    def _namespace_labels(self, tenant: str, namespace: str) -> Mapping[str, str] | None:
        obj = self._namespaces.get(f"{tenant}/{namespace}")
        if obj is None:
            return None
        labels: Mapping[str, str] = (obj.get("metadata") or {}).get("labels") or {}
        return labels
