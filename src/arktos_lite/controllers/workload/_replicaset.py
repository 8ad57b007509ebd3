"""The ReplicaSet controller, as Kubernetes's, partitioned by the ReplicaSets' hash keys.

For every ReplicaSet whose `metadata.hashKey` lies in its range, it guarantees:

* Ownership by selector: an active pod of the ReplicaSet's tenant and namespace whose
  labels match the selector and that has no controller is adopted (the controller
  reference names the ReplicaSet; the API server adds the owner's `hashKey`); an owned
  pod whose labels stop matching is released. Adoption and release are conditional on
  the pod's resourceVersion, so a pod never gains two controllers, even when ReplicaSets
  in several instances race for one orphan. A ReplicaSet being deleted adopts and
  releases nothing.
* Replicas: too few active pods (not terminated, not being deleted) and it creates pods
  from the template, named `<replicaset>-<random>`, in slow-start batches of 1, 2, 4, ...
  (a failing batch stops the rest); too many and it deletes the ones ranked first: not
  yet scheduled, then pending before unknown before running, not ready before ready,
  lower `controller.kubernetes.io/pod-deletion-cost`, more pods of the set on the same
  node, ready for a shorter time, more container restarts, younger. At most 500 pods are
  created or deleted per pass.
* Expectations: after creating or deleting, the ReplicaSet is not acted on again until
  its informer has seen every change (or five minutes passed), so a lagging cache never
  makes it create or delete twice. Pods it adopts do not count as pods it created.
* Status through the `status` subresource: `replicas`, `fullyLabeledReplicas`,
  `readyReplicas`, `availableReplicas` (ready for `minReadySeconds`),
  `observedGeneration`, and the `ReplicaFailure` condition while creating or deleting
  fails. Events `SuccessfulCreate`, `FailedCreate`, `SuccessfulDelete`, `FailedDelete`.

How pods are watched: one informer holds the pods with a ReplicaSet owner in range
(`metadata.ownerReferences.hashkey.ReplicaSet` range selector); a second holds the pods
with no ReplicaSet owner at all (`metadata.ownerReferences.hashkey.ReplicaSet=`, the
orphans), across the range, since an orphan may be adopted by any ReplicaSet. A pod
whose only ReplicaSet reference is not its controller and is out of range is seen by
neither informer, and is not adopted here.

The range promise (`PartitionedController`) is kept with `_gate.RangeInformers`.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import enum
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import trio

from arktos_lite import client, machinery
from arktos_lite.api import errors, objects, resources, selectors, timestamps
from arktos_lite.controllers.workload import _gate as gate, _partition as partition

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

KIND = "ReplicaSet"
CONTROLLER_TYPE = KIND
COMPONENT = "replicaset-controller"
API_VERSION = "apps/v1"
# kube-controller-manager's BurstReplicas: the most pods created or deleted in one pass.
BURST_REPLICAS = 500
SLOW_START_INITIAL_BATCH = 1
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
UNREACHABLE_RETRY = 1.0

PODS = next(r for r in resources.RESOURCES if (r.group, r.kind) == ("", "Pod"))
REPLICASETS = next(r for r in resources.RESOURCES if (r.group, r.kind) == ("apps", KIND))

# Informer indexes.
BY_CONTROLLER = "controller"
BY_NAMESPACE = "namespace"


class Reason(enum.StrEnum):
    SUCCESSFUL_CREATE = "SuccessfulCreate"
    FAILED_CREATE = "FailedCreate"
    SUCCESSFUL_DELETE = "SuccessfulDelete"
    FAILED_DELETE = "FailedDelete"
    SELECTOR_INVALID = "SelectorInvalid"


class ConditionType(enum.StrEnum):
    REPLICA_FAILURE = "ReplicaFailure"


class PodPhase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


_PHASES = frozenset(PodPhase)
# Pending pods go first, then unknown, then running ones.
_PHASE_ORDER = {PodPhase.PENDING: 0, PodPhase.UNKNOWN: 1, PodPhase.RUNNING: 2}


def owned_selector(keys: partition.HashRange) -> str:
    """Pods with a ReplicaSet owner in `keys`."""
    return keys.owner_selector(KIND)


ORPHAN_SELECTOR = partition.orphan_selector(KIND)
"""Pods without any ReplicaSet owner: the field reads as "" when there is none."""


def _wall_clock() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# Reading objects


def _rs_controller_uid(pod: Obj) -> tuple[str, ...]:
    ref = objects.controller_ref(pod)
    if ref is not None and ref.get("kind") == KIND and ref.get("uid"):
        return (str(ref["uid"]),)
    return ()


def is_active(pod: Mapping[str, Any]) -> bool:
    """Counts toward replicas: not terminated and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in (PodPhase.SUCCEEDED, PodPhase.FAILED) and not objects.meta(pod).get(
        "deletionTimestamp"
    )


def _ready_condition(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return condition
    return None


def is_ready(pod: Mapping[str, Any]) -> bool:
    condition = _ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def ready_since(pod: Mapping[str, Any]) -> datetime.datetime | None:
    """When a ready pod became ready."""
    condition = _ready_condition(pod)
    if condition is None or condition.get("status") != "True":
        return None
    return timestamps.parse(condition.get("lastTransitionTime"))


def is_available(pod: Mapping[str, Any], *, min_ready_seconds: int, now: datetime.datetime) -> bool:
    """Ready, and for at least `min_ready_seconds`."""
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    return since is not None and since + datetime.timedelta(seconds=min_ready_seconds) < now


def _namespace_key(obj: Mapping[str, Any]) -> str:
    """`tenant/namespace` of a namespaced object, as `machinery.by_namespace` gives it."""
    meta = objects.meta(obj)
    return f"{meta.get('tenant') or resources.SYSTEM_TENANT}/{meta.get('namespace')}"


def _deletion_cost(pod: Mapping[str, Any]) -> int:
    value = (objects.meta(pod).get("annotations") or {}).get(DELETION_COST)
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def _max_restarts(pod: Mapping[str, Any]) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def _time_key(moment: datetime.datetime | None) -> tuple[int, float]:
    # Missing first, then the later moment first.
    return (0, 0.0) if moment is None else (1, -moment.timestamp())


def deletion_order(pods: Sequence[Obj], *, related: Iterable[Obj] = ()) -> list[Obj]:
    """`pods` in the order a scale-down deletes them (kube-controller-manager's ranking).

    `related` are the pods whose number on a node makes a pod there go first (the
    ReplicaSet's own active pods by default).
    """
    related = list(related) or list(pods)
    per_node: dict[str, int] = {}
    for pod in related:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and is_active(pod):
            per_node[node] = per_node.get(node, 0) + 1

    def key(pod: Obj) -> tuple[Any, ...]:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        phase = (pod.get("status") or {}).get("phase")
        ready = is_ready(pod)
        return (
            1 if node else 0,
            _PHASE_ORDER.get(PodPhase(phase), 0) if phase in _PHASES else 0,
            1 if ready else 0,
            _deletion_cost(pod),
            -per_node.get(node, 0) if node else 0,
            _time_key(ready_since(pod)) if ready else (0, 0.0),
            -_max_restarts(pod),
            _time_key(timestamps.parse(objects.meta(pod).get("creationTimestamp"))),
        )

    return sorted(pods, key=key)


def slow_start_sizes(count: int, *, initial: int = SLOW_START_INITIAL_BATCH) -> list[int]:
    """Batch sizes for `count` creations: 1, 2, 4, ... and what is left."""
    sizes: list[int] = []
    size = max(1, initial)
    while count > 0:
        batch = min(size, count)
        sizes.append(batch)
        count -= batch
        size *= 2
    return sizes


def pod_from_template(rs: Mapping[str, Any]) -> Obj:
    """A new pod of `rs`: its template, `generateName` `<rs>-`, controlled by it."""
    meta = objects.meta(rs)
    template = (rs.get("spec") or {}).get("template") or {}
    template_meta = template.get("metadata") or {}
    pod_meta: Obj = {
        "generateName": f"{meta['name']}-",
        "namespace": meta.get("namespace"),
        "labels": dict(template_meta.get("labels") or {}),
        "ownerReferences": [new_controller_ref(rs)],
    }
    if meta.get("tenant"):
        pod_meta["tenant"] = meta["tenant"]
    for field in ("annotations", "finalizers"):
        if template_meta.get(field):
            pod_meta[field] = copy.deepcopy(template_meta[field])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def new_controller_ref(rs: Mapping[str, Any]) -> Obj:
    meta = objects.meta(rs)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _set_condition(
    conditions: list[Obj], *, type_: str, reason: str, message: str, now: datetime.datetime
) -> list[Obj]:
    kept = [c for c in conditions if c.get("type") != type_]
    kept.append(
        {
            "type": type_,
            "status": "True",
            "lastTransitionTime": timestamps.rfc3339(now),
            "reason": reason,
            "message": message,
        }
    )
    return kept


@dataclasses.dataclass(frozen=True, slots=True)
class ManageError:
    """Creating or deleting failed: the reason of the `ReplicaFailure` condition."""

    reason: Reason
    message: str


def calculate_status(
    rs: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    *,
    failure: ManageError | None,
    now: datetime.datetime,
) -> Obj:
    """The status `rs` should have with these active pods of its own."""
    spec = rs.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    status: Obj = copy.deepcopy(rs.get("status") or {})
    fully_labeled = sum(
        1
        for pod in pods
        if all(objects.labels(pod).get(key) == value for key, value in template_labels.items())
    )
    status["replicas"] = len(pods)
    status["fullyLabeledReplicas"] = fully_labeled
    status["readyReplicas"] = sum(1 for pod in pods if is_ready(pod))
    status["availableReplicas"] = sum(
        1 for pod in pods if is_available(pod, min_ready_seconds=min_ready, now=now)
    )
    status["observedGeneration"] = int(objects.meta(rs).get("generation") or 0)
    conditions: list[Obj] = list(status.get("conditions") or [])
    has_failure = any(c.get("type") == ConditionType.REPLICA_FAILURE for c in conditions)
    if failure is not None and not has_failure:
        conditions = _set_condition(
            conditions,
            type_=ConditionType.REPLICA_FAILURE,
            reason=failure.reason,
            message=failure.message,
            now=now,
        )
    elif failure is None and has_failure:
        conditions = [c for c in conditions if c.get("type") != ConditionType.REPLICA_FAILURE]
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    return status


class _Requeue(Exception):
    """A sync could not finish for a reason that fixes itself (a conflict)."""


class ReplicaSetController:
    """See the module docs; a `PartitionedController` starting on the empty range."""

    controller_type = CONTROLLER_TYPE

    def __init__(
        self,
        api: client.Client,
        *,
        options: partition.ControllerOptions | None = None,
        recorder: machinery.EventRecorder | None = None,
        wall_clock: Callable[[], datetime.datetime] = _wall_clock,
        burst_replicas: int = BURST_REPLICAS,
    ) -> None:
        self._api = api
        self._options = options or partition.ControllerOptions()
        self._own_recorder = recorder is None
        self._recorder = recorder or machinery.EventRecorder(api, component=COMPONENT)
        self._now = wall_clock
        self._burst = burst_replicas
        self._queue: machinery.WorkQueue[str] = machinery.WorkQueue()
        self._expectations: machinery.Expectations[str] = machinery.Expectations()
        # Pods being adopted: their appearance among owned pods is no creation of ours.
        self._adopting: set[str] = set()

        self._ranges = gate.RangeInformers(api)
        self._replicasets = self._ranges.informer(
            REPLICASETS,
            selector=partition.HashRange.field_selector,
            indexers={BY_NAMESPACE: machinery.by_namespace},
        )
        self._pods = self._ranges.informer(
            PODS, selector=owned_selector, indexers={BY_CONTROLLER: _rs_controller_uid}
        )
        self._orphans = gate.RangeInformer(
            machinery.list_watch(api, PODS, field_selector=ORPHAN_SELECTOR),
            indexers={BY_NAMESPACE: machinery.by_namespace},
        )
        self._replicasets.add_handler(
            on_add=self._enqueue,
            on_update=self._update_replicaset,
            on_delete=self._delete_replicaset,
        )
        self._pods.add_handler(
            on_add=self._add_pod, on_update=self._update_pod, on_delete=self._pod_deleted
        )
        self._orphans.add_handler(on_add=self._orphan_changed, on_update=self._orphan_updated)

    # The PartitionedController protocol

    @property
    def range(self) -> partition.HashRange:
        """The keys acted on now."""
        return self._ranges.gate.active

    def workload_num(self) -> int:
        return len(self._replicasets)

    async def set_range(self, new: partition.HashRange) -> None:
        await self._ranges.set_range(new)
        # Keys of the new range were dropped while its caches filled; look at them all.
        for key in self._replicasets.keys():  # noqa: SIM118 (a copy: handlers may change it)
            self._queue.add(key)
        logger.debug("replicaset controller now handles %s", new)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        logger.info("replicaset controller starting with %d workers", self._options.workers)
        try:
            async with trio.open_nursery() as nursery:
                if self._own_recorder:
                    await nursery.start(self._recorder.run)
                await nursery.start(self._ranges.run)
                await nursery.start(self._orphans.run)
                if self._options.resync_period > 0:
                    nursery.start_soon(self._resync, self._options.resync_period)
                await nursery.start(
                    functools.partial(
                        machinery.run_workers,
                        self._queue,
                        self._sync,
                        workers=self._options.workers,
                    )
                )
                task_status.started()
        finally:
            self._queue.shutdown()
            logger.info("replicaset controller stopped")

    async def _resync(self, period: float) -> None:
        while True:
            await trio.sleep(period)
            for key in self._replicasets.keys():  # noqa: SIM118 (a copy: handlers may change it)
                self._queue.add(key)

    # Event handlers: they only record what was observed and enqueue keys.

    def _enqueue(self, rs: Obj) -> None:
        self._queue.add(self._replicasets.key(rs))

    def _update_replicaset(self, old: Obj, new: Obj) -> None:
        self._enqueue(new)

    def _delete_replicaset(self, rs: Obj) -> None:
        self._expectations.delete(self._replicasets.key(rs))

    def _owner_key(self, pod: Obj) -> str | None:
        """The key of the cached ReplicaSet controlling `pod`."""
        ref = objects.controller_ref(pod)
        if ref is None or ref.get("kind") != KIND:
            return None
        key = f"{_namespace_key(pod)}/{ref.get('name')}"
        rs = self._replicasets.get(key)
        if rs is None or objects.meta(rs).get("uid") != ref.get("uid"):
            return None
        return key

    def _add_pod(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is None:
            return
        uid = str(objects.meta(pod).get("uid") or "")
        if objects.meta(pod).get("deletionTimestamp"):
            self._expectations.deletion_observed(key, uid)
        elif uid in self._adopting:
            self._adopting.discard(uid)
        else:
            self._expectations.creation_observed(key)
        self._queue.add(key)

    def _update_pod(self, old: Obj, new: Obj) -> None:
        new_key = self._owner_key(new)
        being_deleted = bool(objects.meta(new).get("deletionTimestamp"))
        if being_deleted and not objects.meta(old).get("deletionTimestamp") and new_key is not None:
            self._expectations.deletion_observed(new_key, str(objects.meta(new).get("uid") or ""))
        old_key = self._owner_key(old)
        if old_key is not None and old_key != new_key:
            self._queue.add(old_key)
        if new_key is None:
            return
        self._queue.add(new_key)
        rs = self._replicasets.get(new_key)
        min_ready = int(((rs or {}).get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready > 0 and is_ready(new) and not is_ready(old):
            # Look again when it may have become available.
            self._queue.add_after(new_key, float(min_ready))

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is None:
            return
        self._expectations.deletion_observed(key, str(objects.meta(pod).get("uid") or ""))
        self._queue.add(key)

    def _orphan_changed(self, pod: Obj) -> None:
        if objects.controller_ref(pod) is not None or not is_active(pod):
            return
        labels = objects.labels(pod)
        for rs in self._replicasets.by_index(BY_NAMESPACE, _namespace_key(pod)):
            selector = _selector(rs)
            if selector is not None and not selector.empty and selector.matches(labels):
                self._enqueue(rs)

    def _orphan_updated(self, old: Obj, new: Obj) -> None:
        self._orphan_changed(new)

    # The work

    async def _sync(self, key: str) -> None:
        rs = self._replicasets.get(key)
        if rs is None:
            self._expectations.delete(key)
            return
        hash_key = objects.meta(rs).get("hashKey")
        if not isinstance(hash_key, int):
            return
        with self._ranges.gate.hold(hash_key) as mine:
            if not mine:
                return
            try:
                await self._sync_replicaset(key, rs)
            except client.Unreachable as exc:
                logger.debug("replicaset %s: API server unreachable (%s)", key, exc)
                raise machinery.Requeue(UNREACHABLE_RETRY) from None
            except (_Requeue, errors.Conflict):
                raise machinery.Requeue() from None

    async def _sync_replicaset(self, key: str, rs: Obj) -> None:
        selector = _selector(rs)
        if selector is None:
            self._recorder.event(
                rs,
                machinery.EventType.WARNING,
                reason=Reason.SELECTOR_INVALID,
                message="the selector of this ReplicaSet is invalid",
            )
            return
        # Read before claiming: what is observed after it cannot make the pass unsafe.
        satisfied = self._expectations.satisfied(key)
        pods = await self._claim_pods(rs, selector)
        active = [pod for pod in pods if is_active(pod)]
        failure: ManageError | None = None
        if satisfied and not objects.meta(rs).get("deletionTimestamp"):
            failure = await self._manage_replicas(key, rs, active)
        now = self._now()
        status = calculate_status(rs, active, failure=failure, now=now)
        written = await self._update_status(rs, status)
        spec = rs.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        if (
            failure is None
            and min_ready > 0
            and written.get("readyReplicas") == int(spec.get("replicas", 1))
            and written.get("availableReplicas") != written.get("readyReplicas")
        ):
            self._queue.add_after(key, float(min_ready))
        if failure is not None:
            raise machinery.Requeue()

    # Adoption and release

    async def _claim_pods(self, rs: Obj, selector: selectors.LabelSelector) -> list[Obj]:
        """The pods `rs` controls after adopting matching orphans and releasing misfits."""
        meta = objects.meta(rs)
        uid = str(meta["uid"])
        deleting = bool(meta.get("deletionTimestamp"))
        claimed: list[Obj] = []
        for pod in self._pods.by_index(BY_CONTROLLER, uid):
            if not is_active(pod):
                # Terminated pods are neither counted nor released.
                continue
            if selector.matches(objects.labels(pod)):
                claimed.append(pod)
            elif not deleting:
                await self._release(rs, pod)
        if deleting or selector.empty:
            return claimed
        orphans = [
            pod
            for pod in self._orphans.by_index(BY_NAMESPACE, _namespace_key(rs))
            if objects.controller_ref(pod) is None
            and is_active(pod)
            and selector.matches(objects.labels(pod))
        ]
        if orphans and await self._may_adopt(rs):
            for pod in orphans:
                adopted = await self._adopt(rs, pod)
                if adopted is not None:
                    claimed.append(adopted)
        return claimed

    async def _may_adopt(self, rs: Obj) -> bool:
        """Whether `rs`, read afresh from the API, is the same and not being deleted."""
        meta = objects.meta(rs)
        try:
            fresh = await self._api.get(
                REPLICASETS,
                meta["name"],
                namespace=meta.get("namespace"),
                tenant=meta.get("tenant"),
            )
        except errors.NotFound:
            return False
        fresh_meta = objects.meta(fresh)
        return fresh_meta.get("uid") == meta.get("uid") and not fresh_meta.get("deletionTimestamp")

    async def _adopt(self, rs: Obj, pod: Obj) -> Obj | None:
        meta = objects.meta(pod)
        uid = str(meta.get("uid") or "")
        refs = [dict(ref) for ref in meta.get("ownerReferences") or ()]
        body = {
            "metadata": {
                "ownerReferences": [*refs, new_controller_ref(rs)],
                # The pod as we saw it, or nothing: two adopters cannot both win.
                "resourceVersion": meta.get("resourceVersion"),
            }
        }
        self._adopting.add(uid)
        try:
            adopted = await self._api.patch(
                PODS, meta["name"], body, namespace=meta.get("namespace"), tenant=meta.get("tenant")
            )
        except (errors.NotFound, errors.Conflict, errors.Invalid) as exc:
            self._adopting.discard(uid)
            logger.debug("not adopting pod %s: %s", meta.get("name"), exc)
            return None
        except BaseException:
            self._adopting.discard(uid)
            raise
        if self._pods.get(self._pods.key(adopted)) is not None:
            # Already seen among owned pods while the patch was answered.
            self._adopting.discard(uid)
        logger.debug("replicaset %s adopted pod %s", objects.meta(rs).get("name"), meta.get("name"))
        return adopted

    async def _release(self, rs: Obj, pod: Obj) -> None:
        meta = objects.meta(pod)
        rs_uid = objects.meta(rs).get("uid")
        refs = [dict(ref) for ref in meta.get("ownerReferences") or () if ref.get("uid") != rs_uid]
        body = {
            "metadata": {
                "ownerReferences": refs or None,
                "resourceVersion": meta.get("resourceVersion"),
            }
        }
        try:
            await self._api.patch(
                PODS, meta["name"], body, namespace=meta.get("namespace"), tenant=meta.get("tenant")
            )
        except errors.NotFound:
            return
        except errors.Conflict:
            # The pod changed: decide again with its new state.
            raise _Requeue() from None
        rs_name = objects.meta(rs).get("name")
        logger.debug("replicaset %s released pod %s", rs_name, meta.get("name"))

    # Creating and deleting

    async def _manage_replicas(self, key: str, rs: Obj, active: list[Obj]) -> ManageError | None:
        wanted = int((rs.get("spec") or {}).get("replicas", 1))
        diff = len(active) - wanted
        if diff < 0:
            return await self._create(key, rs, min(-diff, self._burst))
        if diff > 0:
            return await self._delete(key, rs, active, min(diff, self._burst))
        return None

    async def _create(self, key: str, rs: Obj, count: int) -> ManageError | None:
        self._expectations.expect_creations(key, count)
        created = 0
        failure: ManageError | None = None
        for size in slow_start_sizes(count):
            results = await _run_all([lambda: self._create_pod(rs) for _ in range(size)])
            created += sum(1 for r in results if r is None)
            errs = [r for r in results if r is not None]
            if errs:
                failure = ManageError(Reason.FAILED_CREATE, str(errs[0]))
                break
        skipped = count - created
        if skipped:
            # Those never created will never be observed.
            self._expectations.lower_expectations(key, creations=skipped)
        return failure

    async def _create_pod(self, rs: Obj) -> None:
        meta = objects.meta(rs)
        try:
            pod = await self._api.create(
                PODS,
                pod_from_template(rs),
                namespace=meta.get("namespace"),
                tenant=meta.get("tenant"),
            )
        except errors.StatusError as exc:
            self._recorder.event(
                rs,
                machinery.EventType.WARNING,
                reason=Reason.FAILED_CREATE,
                message=f"Error creating: {exc}",
            )
            raise
        self._recorder.event(
            rs,
            machinery.EventType.NORMAL,
            reason=Reason.SUCCESSFUL_CREATE,
            message=f"Created pod: {objects.meta(pod).get('name')}",
        )

    async def _delete(self, key: str, rs: Obj, active: list[Obj], count: int) -> ManageError | None:
        doomed = deletion_order(active, related=active)[:count]
        self._expectations.expect_deletions(key, [str(objects.meta(p).get("uid")) for p in doomed])
        results = await _run_all([_bind(self._delete_pod, key, rs, pod) for pod in doomed])
        errs = [r for r in results if r is not None]
        if errs:
            return ManageError(Reason.FAILED_DELETE, str(errs[0]))
        return None

    async def _delete_pod(self, key: str, rs: Obj, pod: Obj) -> None:
        meta = objects.meta(pod)
        uid = str(meta.get("uid") or "")
        try:
            await self._api.delete(
                PODS,
                meta["name"],
                namespace=meta.get("namespace"),
                tenant=meta.get("tenant"),
                preconditions={"uid": uid},
            )
        except errors.StatusError as exc:
            # This deletion will not be observed.
            self._expectations.deletion_observed(key, uid)
            if isinstance(exc, errors.NotFound | errors.Conflict):
                return
            self._recorder.event(
                rs,
                machinery.EventType.WARNING,
                reason=Reason.FAILED_DELETE,
                message=f"Error deleting: {exc}",
            )
            raise
        self._recorder.event(
            rs,
            machinery.EventType.NORMAL,
            reason=Reason.SUCCESSFUL_DELETE,
            message=f"Deleted pod: {meta.get('name')}",
        )

    # Status

    async def _update_status(self, rs: Obj, status: Obj) -> Obj:
        """Write `status` unless `rs` has it already; the status as it now stands."""
        if status == (rs.get("status") or {}):
            return status
        meta = objects.meta(rs)
        body = {**rs, "status": status}
        for attempt in range(2):
            try:
                written = await self._api.replace(REPLICASETS, body, subresource="status")
            except errors.NotFound:
                return status
            except errors.Conflict:
                if attempt:
                    raise
                fresh = await self._api.get(
                    REPLICASETS,
                    meta["name"],
                    namespace=meta.get("namespace"),
                    tenant=meta.get("tenant"),
                )
                if objects.meta(fresh).get("uid") != meta.get("uid"):
                    return status
                body = {**fresh, "status": status}
                continue
            written_status: Obj = written.get("status") or {}
            return written_status
        return status


def _selector(rs: Mapping[str, Any]) -> selectors.LabelSelector | None:
    raw = (rs.get("spec") or {}).get("selector")
    if not isinstance(raw, Mapping):
        return None
    try:
        return selectors.LabelSelector.from_dict(raw, path="spec.selector")
    except selectors.SelectorError:
        return None


def _bind(
    function: Callable[[str, Obj, Obj], Awaitable[None]], key: str, rs: Obj, pod: Obj
) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        await function(key, rs, pod)

    return call


async def _run_all(calls: Sequence[Callable[[], Awaitable[None]]]) -> list[Exception | None]:
    """Run the calls concurrently; each one's API error, or None where it succeeded."""
    results: list[Exception | None] = [None] * len(calls)

    async def one(index: int) -> None:
        try:
            await calls[index]()
        except (errors.StatusError, client.Unreachable) as exc:
            results[index] = exc

    async with trio.open_nursery() as nursery:
        for index in range(len(calls)):
            nursery.start_soon(one, index)
    return results
