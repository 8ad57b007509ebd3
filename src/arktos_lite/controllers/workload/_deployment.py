"""The Deployment controller, as Kubernetes's, partitioned by the Deployments' hash keys.

For every Deployment whose `metadata.hashKey` lies in its range, it guarantees:

* Ownership by selector: a ReplicaSet of the Deployment's tenant and namespace whose
  labels match the selector and that has no controller is adopted (after a fresh read
  shows the Deployment alive and not being deleted); an owned ReplicaSet whose labels stop
  matching is released. Both writes are conditional on the ReplicaSet's resourceVersion,
  so a ReplicaSet never gains two controllers.
* The new ReplicaSet is the oldest owned one whose pod template equals the Deployment's
  but for the `pod-template-hash` label. When there is none it is created as
  `<deployment>-<hash>`, the hash (`_deployment_objects.template_hash`) added to its
  labels, selector and template; a name taken by a ReplicaSet that is not this one raises
  `status.collisionCount`, which gives the next attempt another hash.
* RollingUpdate moves one step per pass (`_deployment_steps.rolling_step`): the pods of
  all ReplicaSets never exceed replicas + maxSurge and no pod needed for
  replicas - maxUnavailable to stay available is taken away. Recreate scales every old
  ReplicaSet to 0, and creates or scales up the new one only once no pod of an old one
  is left running (pods are read from the API then; they are not watched here).
* A change of replicas in the middle of a rollout, or while paused, is spread over the
  ReplicaSets in proportion to their size (`_deployment_steps.scale_plan`). A paused
  Deployment makes no rollout progress: no new ReplicaSet, no step.
* Revisions: the new ReplicaSet's `deployment.kubernetes.io/revision` is one above every
  old one's, and the Deployment carries the same. Rolling back (`kubectl rollout undo`
  writes the old template into the Deployment) finds the old ReplicaSet again and gives
  it the next revision, keeping the one it had in `revision-history`; the deprecated
  `deprecated.deployment.rollback.to` annotation is honoured too. Old ReplicaSets with
  no replicas beyond `revisionHistoryLimit` are deleted, lowest revision first.
* Status through the `status` subresource: `replicas`, `updatedReplicas`,
  `readyReplicas`, `availableReplicas`, `unavailableReplicas`, `observedGeneration`,
  `collisionCount`; the `Available` condition, and with `progressDeadlineSeconds` the
  `Progressing` condition (NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated,
  NewReplicaSetAvailable, ProgressDeadlineExceeded, DeploymentPaused, DeploymentResumed),
  re-checked when the deadline falls due. Events `ScalingReplicaSet` ("Scaled up replica
  set web-5d8b9c7f6d from 0 to 3").
* A lagging cache never drives a step: after it writes a ReplicaSet, the Deployment is
  not acted on again until its informer has seen that write (or 30 s passed), and every
  write is conditional on the resourceVersion it was computed from.

How ReplicaSets are watched: one informer holds those with a Deployment owner in range
(`metadata.ownerReferences.hashkey.Deployment` range selector); a second holds those with
no Deployment owner at all, across the range, since an orphan may be adopted by any
Deployment.

The range promise (`PartitionedController`) is kept with `_gate.RangeInformers`.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import enum
import logging
from collections.abc import Callable, Mapping
from typing import Any

import trio

from arktos_lite import client, machinery
from arktos_lite.api import errors, objects as api_objects, resources, selectors, timestamps
from arktos_lite.controllers.workload import (
    _deployment_objects as objects,
    _deployment_steps as steps,
    _gate as gate,
    _partition as partition,
)

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

KIND = "Deployment"
CONTROLLER_TYPE = KIND
COMPONENT = "deployment-controller"
API_VERSION = "apps/v1"
UNREACHABLE_RETRY = 1.0
# How often a Recreate rollout looks again for old pods that are still running: pods
# are not watched here, so their going is not an event.
RECREATE_POLL = 1.0
# How long a write of ours may stay unseen by the informer before it is given up on.
WRITE_TTL = 30.0

PODS = next(r for r in resources.RESOURCES if (r.group, r.kind) == ("", "Pod"))
REPLICASETS = next(r for r in resources.RESOURCES if (r.group, r.kind) == ("apps", "ReplicaSet"))
DEPLOYMENTS = next(r for r in resources.RESOURCES if (r.group, r.kind) == ("apps", KIND))

# Informer indexes.
BY_CONTROLLER = "controller"
BY_NAMESPACE = "namespace"

ORPHAN_SELECTOR = f"{selectors.OWNER_HASHKEY_PREFIX}{KIND}="
"""ReplicaSets without any Deployment owner: the field reads as "" when there is none."""


class Reason(enum.StrEnum):
    SCALING_REPLICA_SET = "ScalingReplicaSet"
    SELECTING_ALL = "SelectingAll"
    SELECTOR_INVALID = "SelectorInvalid"
    FAILED_RS_CREATE = objects.ConditionReason.FAILED_RS_CREATE.value
    ROLLBACK_DONE = "DeploymentRollback"
    ROLLBACK_REVISION_NOT_FOUND = "DeploymentRollbackRevisionNotFound"
    ROLLBACK_TEMPLATE_UNCHANGED = "DeploymentRollbackTemplateUnchanged"


def owned_selector(keys: partition.HashRange) -> str:
    """ReplicaSets with a Deployment owner in `keys`."""
    return keys.owner_selector(KIND)


class TrioWallClock:
    """Wall-clock time that advances with trio's clock.

    Anchored to the real time when first read, so that condition timestamps are real
    moments while deadlines follow trio's clock (and a `MockClock` in tests).
    """

    __slots__ = ("_anchor",)

    def __init__(self) -> None:
        self._anchor: tuple[datetime.datetime, float] | None = None

    def __call__(self) -> datetime.datetime:
        now = trio.current_time()
        if self._anchor is None:
            self._anchor = (datetime.datetime.now(datetime.UTC), now)
        wall, at = self._anchor
        return wall + datetime.timedelta(seconds=now - at)


@dataclasses.dataclass(frozen=True, slots=True)
class _Written:
    """A write of ours to a ReplicaSet, not yet seen by the informer."""

    resource_version: int
    at: float


@dataclasses.dataclass(slots=True)
class _Pass:
    """One sync of one Deployment: the latest copy of it and of its ReplicaSets.

    Every write in the pass replaces the copy it changed, so that the next write is
    conditional on the version the server has now.
    """

    key: str
    deployment: Obj
    sets: dict[str, Obj]
    new_name: str | None = None

    @property
    def new(self) -> Obj | None:
        return self.sets.get(self.new_name) if self.new_name is not None else None

    @property
    def olds(self) -> list[Obj]:
        return [rs for name, rs in self.sets.items() if name != self.new_name]

    @property
    def all(self) -> list[Obj]:
        return list(self.sets.values())

    def put(self, rs: Obj) -> None:
        self.sets[str(api_objects.meta(rs)["name"])] = rs

    @property
    def strategy(self) -> steps.Strategy:
        return steps.Strategy.from_spec(api_objects.spec(self.deployment))

    @property
    def replicas(self) -> int:
        return objects.replicas(self.deployment)

    @property
    def name(self) -> str:
        return str(api_objects.meta(self.deployment).get("name") or "")


def _rv(obj: Mapping[str, Any]) -> int:
    try:
        return int(api_objects.meta(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _where(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = api_objects.meta(obj)
    return str(meta.get("tenant") or resources.SYSTEM_TENANT), str(meta.get("namespace") or "")


def _deployment_controller_uid(rs: Obj) -> tuple[str, ...]:
    ref = api_objects.controller_ref(rs)
    if ref is not None and ref.get("kind") == KIND and ref.get("uid"):
        return (str(ref["uid"]),)
    return ()


def new_controller_ref(deployment: Mapping[str, Any]) -> Obj:
    meta = api_objects.meta(deployment)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _quoted(name: str) -> str:
    # Go's %q, which Kubernetes uses in these messages.
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Stale(Exception):
    """The pass met a state that changes by itself soon; try again later."""


class DeploymentController:
    """See the module docs; a `PartitionedController` starting on the empty range."""

    controller_type = CONTROLLER_TYPE

    def __init__(
        self,
        api: client.Client,
        *,
        options: partition.ControllerOptions | None = None,
        recorder: machinery.EventRecorder | None = None,
        wall_clock: Callable[[], datetime.datetime] | None = None,
    ) -> None:
        self._api = api
        self._options = options or partition.ControllerOptions()
        self._own_recorder = recorder is None
        self._recorder = recorder or machinery.EventRecorder(api, component=COMPONENT)
        self._now: Callable[[], datetime.datetime] = wall_clock or TrioWallClock()
        self._queue: machinery.WorkQueue[str] = machinery.WorkQueue()
        # Per Deployment key: its ReplicaSets we wrote and the informer has not shown yet.
        self._pending: dict[str, dict[str, _Written]] = {}

        self._ranges = gate.RangeInformers(api)
        self._deployments = self._ranges.informer(
            DEPLOYMENTS,
            selector=partition.HashRange.field_selector,
            indexers={BY_NAMESPACE: machinery.by_namespace},
        )
        self._replicasets = self._ranges.informer(
            REPLICASETS,
            selector=owned_selector,
            indexers={BY_CONTROLLER: _deployment_controller_uid},
        )
        self._orphans = gate.RangeInformer(
            machinery.list_watch(api, REPLICASETS, field_selector=ORPHAN_SELECTOR),
            indexers={BY_NAMESPACE: machinery.by_namespace},
        )
        self._deployments.add_handler(
            on_add=self._enqueue,
            on_update=lambda _old, new: self._enqueue(new),
            on_delete=self._enqueue,
        )
        self._replicasets.add_handler(
            on_add=self._add_replicaset,
            on_update=self._update_replicaset,
            on_delete=self._delete_replicaset,
        )
        self._orphans.add_handler(
            on_add=self._orphan_changed, on_update=lambda _old, new: self._orphan_changed(new)
        )

    # The PartitionedController protocol

    @property
    def range(self) -> partition.HashRange:
        """The keys acted on now."""
        return self._ranges.gate.active

    def workload_num(self) -> int:
        return len(self._deployments)

    async def set_range(self, new: partition.HashRange) -> None:
        await self._ranges.set_range(new)
        # Keys of the new range were dropped while its caches filled; look at them all.
        held = self._deployments.keys()
        for key in held:
            self._queue.add(key)
        logger.debug("deployment controller now handles %s", new)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        logger.info("deployment controller starting with %d workers", self._options.workers)
        try:
            async with trio.open_nursery() as nursery:
                if self._own_recorder:
                    await nursery.start(self._recorder.run)
                await nursery.start(self._ranges.run)
                await nursery.start(self._orphans.run)
                if self._options.resync_period > 0:
                    nursery.start_soon(self._resync, self._options.resync_period)
                await nursery.start(
                    lambda task_status: machinery.run_workers(
                        self._queue,
                        self._sync,
                        workers=self._options.workers,
                        task_status=task_status,
                    )
                )
                task_status.started()
        finally:
            self._queue.shutdown()
            logger.info("deployment controller stopped")

    async def _resync(self, period: float) -> None:
        while True:
            await trio.sleep(period)
            held = self._deployments.keys()
            for key in held:
                self._queue.add(key)

    # Event handlers: they only record what was observed and enqueue keys.

    def _enqueue(self, deployment: Obj) -> None:
        self._queue.add(self._deployments.key(deployment))

    def _owner_key(self, rs: Obj) -> str | None:
        """The key of the Deployment named by the controller reference of `rs`."""
        ref = api_objects.controller_ref(rs)
        if ref is None or ref.get("kind") != KIND or not ref.get("name"):
            return None
        tenant, namespace = _where(rs)
        return f"{tenant}/{namespace}/{ref['name']}"

    def _enqueue_owner(self, rs: Obj) -> None:
        key = self._owner_key(rs)
        if key is None:
            return
        deployment = self._deployments.get(key)
        ref = api_objects.controller_ref(rs)
        if (
            deployment is not None
            and ref is not None
            and api_objects.meta(deployment).get("uid") == ref.get("uid")
        ):
            self._queue.add(key)

    def _observe(self, rs: Obj, *, gone: bool = False) -> None:
        key = self._owner_key(rs)
        pending = self._pending.get(key) if key is not None else None
        if pending is None:
            return
        rs_key = self._replicasets.key(rs)
        written = pending.get(rs_key)
        if written is not None and (gone or _rv(rs) >= written.resource_version):
            del pending[rs_key]
            if not pending:
                del self._pending[str(key)]

    def _add_replicaset(self, rs: Obj) -> None:
        self._observe(rs)
        self._enqueue_owner(rs)

    def _update_replicaset(self, old: Obj, new: Obj) -> None:
        self._observe(new)
        if self._owner_key(old) != self._owner_key(new):
            self._observe(old, gone=True)
            self._enqueue_owner(old)
        self._enqueue_owner(new)

    def _delete_replicaset(self, rs: Obj) -> None:
        self._observe(rs, gone=True)
        self._enqueue_owner(rs)

    def _orphan_changed(self, rs: Obj) -> None:
        if api_objects.controller_ref(rs) is not None or api_objects.meta(rs).get(
            "deletionTimestamp"
        ):
            return
        tenant, namespace = _where(rs)
        rs_labels = api_objects.labels(rs)
        for deployment in self._deployments.by_index(BY_NAMESPACE, f"{tenant}/{namespace}"):
            selector = objects.label_selector(deployment)
            if selector is not None and not selector.empty and selector.matches(rs_labels):
                self._enqueue(deployment)

    # Bookkeeping of our own writes

    def _record(self, key: str, rs: Obj) -> None:
        """Remember that `rs` (as the server answered a write) must reach the cache."""
        rs_key = self._replicasets.key(rs)
        cached = self._replicasets.get(rs_key)
        if cached is not None and _rv(cached) >= _rv(rs):
            # The watch was quicker than the answer.
            return
        self._pending.setdefault(key, {})[rs_key] = _Written(_rv(rs), trio.current_time())

    def _caught_up(self, key: str) -> bool:
        """Whether the cache shows every write of ours to the Deployment's ReplicaSets."""
        pending = self._pending.get(key)
        if not pending:
            return True
        now = trio.current_time()
        for rs_key, written in list(pending.items()):
            if now - written.at > WRITE_TTL:
                logger.debug("deployment %s: write of %s never seen; going on", key, rs_key)
                del pending[rs_key]
        if not pending:
            del self._pending[key]
            return True
        return False

    # The work

    async def _sync(self, key: str) -> None:
        deployment = self._deployments.get(key)
        if deployment is None:
            self._pending.pop(key, None)
            return
        hash_key = api_objects.meta(deployment).get("hashKey")
        if not isinstance(hash_key, int):
            return
        with self._ranges.gate.hold(hash_key) as mine:
            if not mine:
                return
            try:
                await self._sync_deployment(key, deployment)
            except client.Unreachable as exc:
                logger.debug("deployment %s: API server unreachable (%s)", key, exc)
                raise machinery.Requeue(UNREACHABLE_RETRY) from None
            except (_Stale, errors.Conflict, errors.Forbidden) as exc:
                # Forbidden: the namespace is going, and the Deployment with it.
                logger.debug("deployment %s: trying again (%s)", key, exc)
                raise machinery.Requeue() from None

    async def _sync_deployment(self, key: str, deployment: Obj) -> None:
        selector = objects.label_selector(deployment)
        if selector is None:
            self._recorder.event(
                deployment,
                machinery.EventType.WARNING,
                reason=Reason.SELECTOR_INVALID,
                message="the selector of this Deployment is invalid",
            )
            return
        p = _Pass(key=key, deployment=deployment, sets={})
        if selector.empty:
            self._recorder.event(
                deployment,
                machinery.EventType.WARNING,
                reason=Reason.SELECTING_ALL,
                message="This deployment is selecting all pods. A non-empty selector is required.",
            )
            generation = api_objects.meta(deployment).get("generation") or 0
            if objects.status_count(deployment, "observedGeneration") < generation:
                await self._write_status(
                    p, {**api_objects.status(deployment), "observedGeneration": generation}
                )
            return
        claimed = await self._claim(p, selector)
        if claimed is None or not self._caught_up(key):
            # The informer brings what was written, and the Deployment comes back with it;
            # should that event be lost, the write is given up on after WRITE_TTL.
            self._queue.add_after(key, WRITE_TTL)
            return
        for rs in claimed:
            p.put(rs)
        if api_objects.meta(deployment).get("deletionTimestamp"):
            await self._sync_revision(p, create=False)
            await self._sync_status(p)
            return
        # Pausing and resuming are recorded first, so that a resumed rollout is not
        # judged against the deadline from before the pause.
        await self._check_paused_conditions(p)
        if api_objects.spec(p.deployment).get("paused"):
            await self._sync_revision(p, create=False)
            await self._sync_scaling(p)
            return
        if objects.rollback_to(p.deployment) is not None:
            await self._rollback(p)
            return
        await self._sync_revision(p, create=False)
        if self._is_scaling_event(p):
            await self._sync_scaling(p)
            return
        if p.strategy.rolling:
            await self._rollout_rolling(p)
        else:
            await self._rollout_recreate(p)

    # Ownership

    async def _claim(self, p: _Pass, selector: selectors.LabelSelector) -> list[Obj] | None:
        """The ReplicaSets the Deployment controls; None when ownership was just changed."""
        deployment = p.deployment
        meta = api_objects.meta(deployment)
        deleting = bool(meta.get("deletionTimestamp"))
        claimed: list[Obj] = []
        changed = False
        for rs in self._replicasets.by_index(BY_CONTROLLER, str(meta.get("uid"))):
            if selector.matches(api_objects.labels(rs)):
                claimed.append(rs)
            elif not deleting:
                await self._release(p, rs)
                changed = True
        if not deleting:
            tenant, namespace = _where(deployment)
            orphans = [
                rs
                for rs in self._orphans.by_index(BY_NAMESPACE, f"{tenant}/{namespace}")
                if api_objects.controller_ref(rs) is None
                and not api_objects.meta(rs).get("deletionTimestamp")
                and selector.matches(api_objects.labels(rs))
            ]
            if orphans and await self._may_adopt(deployment):
                for rs in orphans:
                    changed |= await self._adopt(p, rs)
        return None if changed else claimed

    async def _may_adopt(self, deployment: Obj) -> bool:
        """Whether the Deployment, read afresh from the API, is the same and not going."""
        meta = api_objects.meta(deployment)
        try:
            fresh = await self._api.get(
                DEPLOYMENTS,
                meta["name"],
                namespace=meta.get("namespace"),
                tenant=meta.get("tenant"),
            )
        except errors.NotFound:
            return False
        fresh_meta = api_objects.meta(fresh)
        return fresh_meta.get("uid") == meta.get("uid") and not fresh_meta.get("deletionTimestamp")

    async def _adopt(self, p: _Pass, rs: Obj) -> bool:
        meta = api_objects.meta(rs)
        refs = [dict(ref) for ref in meta.get("ownerReferences") or ()]
        body = {
            "metadata": {
                "ownerReferences": [*refs, new_controller_ref(p.deployment)],
                # The ReplicaSet as we saw it, or nothing: two adopters cannot both win.
                "resourceVersion": meta.get("resourceVersion"),
            }
        }
        try:
            adopted = await self._api.patch(
                REPLICASETS,
                meta["name"],
                body,
                namespace=meta.get("namespace"),
                tenant=meta.get("tenant"),
            )
        except (errors.NotFound, errors.Conflict, errors.Invalid) as exc:
            logger.debug("not adopting replica set %s: %s", meta.get("name"), exc)
            return False
        self._record(p.key, adopted)
        logger.debug("deployment %s adopted replica set %s", p.name, meta.get("name"))
        return True

    async def _release(self, p: _Pass, rs: Obj) -> None:
        meta = api_objects.meta(rs)
        uid = api_objects.meta(p.deployment).get("uid")
        refs = [dict(ref) for ref in meta.get("ownerReferences") or () if ref.get("uid") != uid]
        body = {
            "metadata": {
                "ownerReferences": refs or None,
                "resourceVersion": meta.get("resourceVersion"),
            }
        }
        try:
            released = await self._api.patch(
                REPLICASETS,
                meta["name"],
                body,
                namespace=meta.get("namespace"),
                tenant=meta.get("tenant"),
            )
        except errors.NotFound:
            return
        rs_key = self._replicasets.key(released)
        if rs_key in self._replicasets:
            self._record(p.key, released)
        logger.debug("deployment %s released replica set %s", p.name, meta.get("name"))

    # The new ReplicaSet and revisions

    async def _sync_revision(self, p: _Pass, *, create: bool) -> None:
        """Find (or create) the new ReplicaSet and bring revisions up to date
        (`getAllReplicaSetsAndSyncRevision`)."""
        existing = objects.find_new(p.deployment, p.all)
        p.new_name = str(api_objects.meta(existing)["name"]) if existing is not None else None
        new_revision = objects.max_revision(p.olds) + 1
        if existing is not None:
            await self._sync_existing_new(p, existing, new_revision=new_revision)
        elif create:
            await self._create_new(p, new_revision=new_revision)

    async def _sync_existing_new(self, p: _Pass, rs: Obj, *, new_revision: int) -> None:
        deployment = p.deployment
        notes = dict(api_objects.annotations_of(rs))
        changed = objects.set_new_rs_annotations(
            deployment,
            notes,
            new_revision=new_revision,
            exists=True,
            maximum=p.replicas + p.strategy.surge(p.replicas),
        )
        min_ready = api_objects.spec(deployment).get("minReadySeconds") or 0
        if changed or (api_objects.spec(rs).get("minReadySeconds") or 0) != min_ready:
            body = {
                "metadata": {
                    "annotations": notes,
                    "resourceVersion": api_objects.meta(rs)["resourceVersion"],
                },
                "spec": {"minReadySeconds": min_ready},
            }
            await self._patch_replicaset(p, rs, body=body)
            # The Deployment takes the revision on the next pass, from the ReplicaSet.
            return
        revision = api_objects.annotations_of(rs).get(objects.REVISION, "")
        await self._set_deployment_revision(p, revision)
        if (
            objects.progress_deadline(p.deployment) is not None
            and objects.get_condition(
                api_objects.status(p.deployment), objects.ConditionType.PROGRESSING
            )
            is None
        ):
            # Progress is estimated from now on: a rollout found half way starts its clock.
            status = copy.deepcopy(dict(api_objects.status(p.deployment)))
            objects.set_condition(
                status,
                objects.new_condition(
                    objects.ConditionType.PROGRESSING,
                    objects.ConditionStatus.TRUE,
                    reason=objects.ConditionReason.FOUND_NEW_RS,
                    message=f"Found new replica set {_quoted(str(api_objects.meta(rs)['name']))}",
                    now=self._now(),
                ),
            )
            await self._write_status(p, status)

    async def _create_new(self, p: _Pass, *, new_revision: int) -> None:
        deployment = p.deployment
        meta = api_objects.meta(deployment)
        tenant, namespace = _where(deployment)
        collisions = api_objects.status(deployment).get("collisionCount")
        template = copy.deepcopy(dict(objects.template(deployment)))
        pod_hash = objects.template_hash(
            template, collisions if isinstance(collisions, int) else None
        )
        template_meta = template.setdefault("metadata", {})
        rs_labels = {**(template_meta.get("labels") or {}), objects.POD_TEMPLATE_HASH: pod_hash}
        template_meta["labels"] = rs_labels
        selector = copy.deepcopy(dict(api_objects.spec(deployment).get("selector") or {}))
        selector["matchLabels"] = {
            **(selector.get("matchLabels") or {}),
            objects.POD_TEMPLATE_HASH: pod_hash,
        }
        name = f"{meta['name']}-{pod_hash}"
        strategy, wanted = p.strategy, p.replicas
        fresh = steps.Counts(name=name, replicas=0)
        size = steps.new_replicas(
            replicas=wanted,
            strategy=strategy,
            new=fresh,
            all_sets=[*(objects.counts(rs) for rs in p.olds), fresh],
        )
        notes: dict[str, str] = {}
        objects.set_new_rs_annotations(
            deployment,
            notes,
            new_revision=new_revision,
            exists=False,
            maximum=wanted + strategy.surge(wanted),
        )
        rs_meta: Obj = {
            "name": name,
            "namespace": namespace,
            "labels": rs_labels,
            "annotations": notes,
            "ownerReferences": [new_controller_ref(deployment)],
        }
        if meta.get("tenant"):
            rs_meta["tenant"] = meta["tenant"]
        rs_spec: Obj = {"replicas": size, "selector": selector, "template": template}
        if api_objects.spec(deployment).get("minReadySeconds"):
            rs_spec["minReadySeconds"] = api_objects.spec(deployment)["minReadySeconds"]
        body: Obj = {
            "apiVersion": API_VERSION,
            "kind": "ReplicaSet",
            "metadata": rs_meta,
            "spec": rs_spec,
        }
        existed = False
        try:
            created = await self._api.create(REPLICASETS, body, namespace=namespace, tenant=tenant)
        except errors.AlreadyExists:
            created = await self._taken(p, name)
            existed = True
        except errors.Forbidden:
            raise
        except errors.StatusError as exc:
            await self._create_failed(p, name, error=exc)
            raise
        self._record(p.key, created)
        p.put(created)
        p.new_name = name
        if not existed and size > 0:
            self._scaled_event(p, name, before=0, after=size)
        await self._set_deployment_revision(p, str(new_revision))
        if not existed and objects.progress_deadline(p.deployment) is not None:
            status = copy.deepcopy(dict(api_objects.status(p.deployment)))
            objects.set_condition(
                status,
                objects.new_condition(
                    objects.ConditionType.PROGRESSING,
                    objects.ConditionStatus.TRUE,
                    reason=objects.ConditionReason.NEW_REPLICA_SET,
                    message=f"Created new replica set {_quoted(name)}",
                    now=self._now(),
                ),
            )
            await self._write_status(p, status)

    async def _taken(self, p: _Pass, name: str) -> Obj:
        """The ReplicaSet already named `name`: ours (a lagging cache), or a collision."""
        tenant, namespace = _where(p.deployment)
        try:
            found = await self._api.get(REPLICASETS, name, namespace=namespace, tenant=tenant)
        except errors.NotFound:
            raise _Stale(f"replica set {name} went while being created") from None
        if objects.is_controlled_by(found, p.deployment) and objects.equal_ignore_hash(
            objects.template(found), objects.template(p.deployment)
        ):
            return found
        # Someone else's ReplicaSet has the name: the next hash must differ.
        status = copy.deepcopy(dict(api_objects.status(p.deployment)))
        count = status.get("collisionCount")
        status["collisionCount"] = (count if isinstance(count, int) else 0) + 1
        await self._write_status(p, status)
        logger.debug(
            "deployment %s: hash collision on %s; collisionCount now %d",
            p.key,
            name,
            status["collisionCount"],
        )
        raise _Stale(f"hash collision on replica set {name}")

    async def _create_failed(self, p: _Pass, name: str, *, error: errors.StatusError) -> None:
        message = f"Failed to create new replica set {_quoted(name)}: {error}"
        if objects.progress_deadline(p.deployment) is not None:
            status = copy.deepcopy(dict(api_objects.status(p.deployment)))
            objects.set_condition(
                status,
                objects.new_condition(
                    objects.ConditionType.PROGRESSING,
                    objects.ConditionStatus.FALSE,
                    reason=objects.ConditionReason.FAILED_RS_CREATE,
                    message=message,
                    now=self._now(),
                ),
            )
            try:
                await self._write_status(p, status)
            except errors.StatusError as status_error:
                # The failure to create is what matters; it is reported below.
                logger.debug("deployment %s: status not written: %s", p.key, status_error)
        self._recorder.event(
            p.deployment,
            machinery.EventType.WARNING,
            reason=Reason.FAILED_RS_CREATE,
            message=message,
        )

    async def _set_deployment_revision(self, p: _Pass, revision: str) -> None:
        if api_objects.annotations_of(p.deployment).get(objects.REVISION) == revision:
            return
        await self._annotate(p, objects.REVISION, revision)

    async def _annotate(self, p: _Pass, key: str, value: str | None) -> None:
        """Set (None: remove) one annotation of the Deployment, if it has not changed since."""
        meta = api_objects.meta(p.deployment)
        body = {
            "metadata": {"annotations": {key: value}, "resourceVersion": meta["resourceVersion"]}
        }
        p.deployment = await self._api.patch(
            DEPLOYMENTS,
            meta["name"],
            body,
            namespace=meta.get("namespace"),
            tenant=meta.get("tenant"),
        )

    # Scaling

    def _is_scaling_event(self, p: _Pass) -> bool:
        """Whether some active ReplicaSet was sized for other replicas than asked now."""
        for rs in p.all:
            if objects.replicas(rs) <= 0:
                continue
            desired = objects.counts(rs).desired
            if desired is not None and desired != p.replicas:
                return True
        return False

    async def _sync_scaling(self, p: _Pass) -> None:
        """Scale without rolling forward (`sync`): a paused Deployment or new replicas."""
        new = p.new
        plan = steps.scale_plan(
            replicas=p.replicas,
            strategy=p.strategy,
            new=objects.counts(new) if new is not None else None,
            olds=[objects.counts(rs) for rs in p.olds],
            status_replicas=objects.status_count(p.deployment, "replicas"),
        )
        await self._apply(p, plan)
        paused = api_objects.spec(p.deployment).get("paused")
        if paused and objects.rollback_to(p.deployment) is None:
            await self._cleanup(p)
        await self._sync_status(p)

    async def _apply(self, p: _Pass, plan: list[steps.Scale]) -> bool:
        """Carry out `plan`; whether any ReplicaSet changed size."""
        scaled = False
        for step in plan:
            rs = p.sets[step.name]
            scaled |= await self._scale(p, rs, size=step.replicas, annotations=step.annotations)
        return scaled

    async def _scale(self, p: _Pass, rs: Obj, *, size: int, annotations: bool) -> bool:
        before = objects.replicas(rs)
        wanted = p.replicas
        maximum = wanted + p.strategy.surge(wanted)
        resize = before != size
        stale = objects.replicas_annotations_need_update(
            api_objects.annotations_of(rs), desired=wanted, maximum=maximum
        )
        if not resize and not (annotations and stale):
            return False
        body = {
            "metadata": {
                "annotations": {
                    objects.DESIRED_REPLICAS: str(wanted),
                    objects.MAX_REPLICAS: str(maximum),
                },
                "resourceVersion": api_objects.meta(rs)["resourceVersion"],
            },
            "spec": {"replicas": size},
        }
        await self._patch_replicaset(p, rs, body=body)
        if resize:
            self._scaled_event(p, str(api_objects.meta(rs)["name"]), before=before, after=size)
        return resize

    async def _patch_replicaset(self, p: _Pass, rs: Obj, *, body: Obj) -> Obj:
        meta = api_objects.meta(rs)
        try:
            updated = await self._api.patch(
                REPLICASETS,
                meta["name"],
                body,
                namespace=meta.get("namespace"),
                tenant=meta.get("tenant"),
            )
        except errors.NotFound:
            raise _Stale(f"replica set {meta.get('name')} is gone") from None
        self._record(p.key, updated)
        p.put(updated)
        return updated

    def _scaled_event(self, p: _Pass, name: str, *, before: int, after: int) -> None:
        direction = "up" if after > before else "down"
        self._recorder.event(
            p.deployment,
            machinery.EventType.NORMAL,
            reason=Reason.SCALING_REPLICA_SET,
            message=f"Scaled {direction} replica set {name} from {before} to {after}",
        )

    # Rollouts

    async def _rollout_rolling(self, p: _Pass) -> None:
        if p.new is None:
            await self._create_new(p, new_revision=objects.max_revision(p.olds) + 1)
        new = p.new
        assert new is not None
        plan = steps.rolling_step(
            replicas=p.replicas,
            strategy=p.strategy,
            new=objects.counts(new),
            olds=[objects.counts(rs) for rs in p.olds],
        )
        if await self._apply(p, plan):
            await self._sync_rollout_status(p)
            return
        if objects.deployment_complete(p.deployment, api_objects.status(p.deployment)):
            await self._cleanup(p)
        await self._sync_rollout_status(p)

    async def _rollout_recreate(self, p: _Pass) -> None:
        down = [
            steps.Scale(str(api_objects.meta(rs)["name"]), 0)
            for rs in p.olds
            if objects.replicas(rs) > 0
        ]
        if await self._apply(p, down):
            await self._sync_rollout_status(p)
            return
        if await self._old_pods_running(p):
            await self._sync_rollout_status(p)
            self._queue.add_after(p.key, RECREATE_POLL)
            return
        if p.new is None:
            # Only now: a new ReplicaSet made earlier would start its pods beside the old.
            await self._create_new(p, new_revision=objects.max_revision(p.olds) + 1)
        new = p.new
        assert new is not None
        await self._apply(p, [steps.Scale(str(api_objects.meta(new)["name"]), p.replicas)])
        if objects.deployment_complete(p.deployment, api_objects.status(p.deployment)):
            await self._cleanup(p)
        await self._sync_rollout_status(p)

    async def _old_pods_running(self, p: _Pass) -> bool:
        """Whether a pod of an old ReplicaSet may still run (`oldPodsRunning`)."""
        olds = p.olds
        if sum(objects.status_count(rs, "replicas") for rs in olds) > 0:
            return True
        old_uids = {api_objects.meta(rs).get("uid") for rs in olds}
        if not old_uids:
            return False
        selector = objects.label_selector(p.deployment)
        tenant, namespace = _where(p.deployment)
        listed = await self._api.list_all(
            PODS,
            namespace=namespace,
            tenant=tenant,
            label_selector=str(selector) if selector is not None else None,
        )
        for pod in listed.get("items") or ():
            ref = api_objects.controller_ref(pod)
            if ref is None or ref.get("uid") not in old_uids:
                continue
            # Pods of unknown phase may still run; only finished ones do not count.
            if api_objects.status(pod).get("phase") not in ("Succeeded", "Failed"):
                return True
        return False

    async def _cleanup(self, p: _Pass) -> None:
        """Delete old ReplicaSets beyond `revisionHistoryLimit`, lowest revision first."""
        limit = objects.revision_history_limit(p.deployment)
        if limit is None:
            return
        alive = [rs for rs in p.olds if not api_objects.meta(rs).get("deletionTimestamp")]
        excess = len(alive) - limit
        if excess <= 0:
            return
        for rs in sorted(alive, key=objects.by_revision)[:excess]:
            meta = api_objects.meta(rs)
            if (
                objects.status_count(rs, "replicas") != 0
                or objects.replicas(rs) != 0
                or int(meta.get("generation") or 0) > objects.status_count(rs, "observedGeneration")
            ):
                # Still holds pods, or its controller has not caught up with it.
                continue
            try:
                await self._api.delete(
                    REPLICASETS,
                    meta["name"],
                    namespace=meta.get("namespace"),
                    tenant=meta.get("tenant"),
                    # Exactly the empty ReplicaSet judged here, not one scaled up since.
                    preconditions={
                        "uid": meta.get("uid"),
                        "resourceVersion": meta.get("resourceVersion"),
                    },
                )
            except (errors.NotFound, errors.Conflict):
                continue
            logger.debug("deployment %s: deleted old replica set %s", p.key, meta.get("name"))

    # Rolling back (the deprecated annotation)

    async def _rollback(self, p: _Pass) -> None:
        await self._sync_revision(p, create=True)
        deployment = p.deployment
        target = objects.rollback_to(deployment)
        if target == 0:
            target = objects.last_revision(p.all)
            if target == 0:
                self._rollback_warning(
                    p, Reason.ROLLBACK_REVISION_NOT_FOUND, message="Unable to find last revision."
                )
                await self._clear_rollback(p)
                return
        for rs in p.all:
            if objects.revision(rs) != target:
                continue
            if objects.equal_ignore_hash(objects.template(deployment), objects.template(rs)):
                self._rollback_warning(
                    p,
                    Reason.ROLLBACK_TEMPLATE_UNCHANGED,
                    message="The rollback revision contains the same template as current "
                    f"deployment {_quoted(p.name)}",
                )
                await self._clear_rollback(p)
                return
            notes = objects.rollback_annotations(deployment, rs)
            notes.pop(objects.ROLLBACK_TO, None)
            meta = api_objects.meta(deployment)
            operations = [
                {
                    "op": "test",
                    "path": "/metadata/resourceVersion",
                    "value": meta["resourceVersion"],
                },
                {
                    "op": "replace",
                    "path": "/spec/template",
                    "value": objects.without_hash(objects.template(rs)),
                },
                {"op": "add", "path": "/metadata/annotations", "value": notes},
            ]
            p.deployment = await self._api.patch(
                DEPLOYMENTS,
                meta["name"],
                operations,
                patch_type="json",
                namespace=meta.get("namespace"),
                tenant=meta.get("tenant"),
            )
            self._recorder.event(
                p.deployment,
                machinery.EventType.NORMAL,
                reason=Reason.ROLLBACK_DONE,
                message=f"Rolled back deployment {_quoted(p.name)} to revision {target}",
            )
            return
        self._rollback_warning(
            p,
            Reason.ROLLBACK_REVISION_NOT_FOUND,
            message="Unable to find the revision to rollback to.",
        )
        await self._clear_rollback(p)

    def _rollback_warning(self, p: _Pass, reason: Reason, *, message: str) -> None:
        self._recorder.event(
            p.deployment, machinery.EventType.WARNING, reason=reason, message=message
        )

    async def _clear_rollback(self, p: _Pass) -> None:
        await self._annotate(p, objects.ROLLBACK_TO, None)

    # Status

    async def _write_status(self, p: _Pass, status: Mapping[str, Any]) -> None:
        """Write `status` through the status subresource unless the Deployment has it."""
        normalized = objects.normalized_status(status)
        if normalized == objects.normalized_status(api_objects.status(p.deployment)):
            return
        p.deployment = await self._api.replace(
            DEPLOYMENTS, {**p.deployment, "status": normalized}, subresource="status"
        )

    def _calculate_status(self, p: _Pass, *, now: datetime.datetime) -> Obj:
        return objects.calculate_status(
            p.deployment,
            p.all,
            new_rs=p.new,
            max_unavailable=p.strategy.unavailable(p.replicas),
            now=now,
        )

    async def _sync_status(self, p: _Pass) -> None:
        """The counts and `Available`, with no estimate of progress (`syncDeploymentStatus`)."""
        await self._write_status(p, self._calculate_status(p, now=self._now()))

    async def _check_paused_conditions(self, p: _Pass) -> None:
        """`Progressing` Unknown with DeploymentPaused or DeploymentResumed on a change."""
        deployment = p.deployment
        if objects.progress_deadline(deployment) is None:
            return
        current = objects.get_condition(
            api_objects.status(deployment), objects.ConditionType.PROGRESSING
        )
        if current is not None and current.get("reason") == objects.ConditionReason.TIMED_OUT:
            # Lack of progress, once reported, is not overwritten by a pause.
            return
        paused_before = (
            current is not None and current.get("reason") == objects.ConditionReason.PAUSED
        )
        paused = bool(api_objects.spec(deployment).get("paused"))
        if paused and not paused_before:
            reason, message = objects.ConditionReason.PAUSED, "Deployment is paused"
        elif not paused and paused_before:
            reason, message = objects.ConditionReason.RESUMED, "Deployment is resumed"
        else:
            return
        status = copy.deepcopy(dict(api_objects.status(deployment)))
        objects.set_condition(
            status,
            objects.new_condition(
                objects.ConditionType.PROGRESSING,
                objects.ConditionStatus.UNKNOWN,
                reason=reason,
                message=message,
                now=self._now(),
            ),
        )
        await self._write_status(p, status)

    async def _sync_rollout_status(self, p: _Pass) -> None:
        """The status with the progress estimate (`syncRolloutStatus`)."""
        deployment = p.deployment
        now = self._now()
        status = self._calculate_status(p, now=now)
        deadline = objects.progress_deadline(deployment)
        progressing = objects.ConditionType.PROGRESSING
        if deadline is None:
            objects.remove_condition(status, progressing)
        current = objects.get_condition(api_objects.status(deployment), progressing)
        finished = (
            status.get("replicas", 0) == status.get("updatedReplicas", 0)
            and current is not None
            and current.get("reason") == objects.ConditionReason.NEW_RS_AVAILABLE
        )
        if deadline is not None and not finished:
            self._estimate_progress(p, status, current=current, now=now)
        failure = objects.replica_failure(p.new, p.all)
        if failure is not None:
            objects.set_condition(status, failure)
        else:
            objects.remove_condition(status, objects.ConditionType.REPLICA_FAILURE)
        if objects.normalized_status(status) == objects.normalized_status(
            api_objects.status(deployment)
        ):
            self._requeue_stuck(p, status, now=now)
            return
        await self._write_status(p, status)

    def _estimate_progress(
        self, p: _Pass, status: Obj, *, current: Obj | None, now: datetime.datetime
    ) -> None:
        deployment = p.deployment
        new = p.new
        subject = (
            f"ReplicaSet {_quoted(str(api_objects.meta(new)['name']))}"
            if new is not None
            else f"Deployment {_quoted(p.name)}"
        )
        progressing = objects.ConditionType.PROGRESSING
        if objects.deployment_complete(deployment, status):
            objects.set_condition(
                status,
                objects.new_condition(
                    progressing,
                    objects.ConditionStatus.TRUE,
                    reason=objects.ConditionReason.NEW_RS_AVAILABLE,
                    message=f"{subject} has successfully progressed.",
                    now=now,
                ),
            )
        elif objects.deployment_progressing(deployment, status):
            condition = objects.new_condition(
                progressing,
                objects.ConditionStatus.TRUE,
                reason=objects.ConditionReason.REPLICA_SET_UPDATED,
                message=f"{subject} is progressing.",
                now=now,
            )
            # Progress moves lastUpdateTime even with the same reason: the deadline counts
            # from the last progress seen.
            if current is not None:
                if current.get("status") == objects.ConditionStatus.TRUE:
                    condition["lastTransitionTime"] = current.get("lastTransitionTime")
                objects.remove_condition(status, progressing)
            objects.set_condition(status, condition)
        elif objects.deployment_timed_out(deployment, status, now=now):
            objects.set_condition(
                status,
                objects.new_condition(
                    progressing,
                    objects.ConditionStatus.FALSE,
                    reason=objects.ConditionReason.TIMED_OUT,
                    message=f"{subject} has timed out progressing.",
                    now=now,
                ),
            )

    def _requeue_stuck(self, p: _Pass, status: Obj, *, now: datetime.datetime) -> None:
        """Look again when the deadline of a rollout without progress falls due."""
        deployment = p.deployment
        deadline = objects.progress_deadline(deployment)
        current = objects.get_condition(
            api_objects.status(deployment), objects.ConditionType.PROGRESSING
        )
        if deadline is None or current is None:
            return
        if (
            objects.deployment_complete(deployment, status)
            or current.get("reason") == objects.ConditionReason.TIMED_OUT
        ):
            return
        since = timestamps.parse(current.get("lastUpdateTime"))
        if since is None:
            return
        after = (since + datetime.timedelta(seconds=deadline) - now).total_seconds()
        # A second more, as Kubernetes adds, so the check lands past the deadline.
        self._queue.add_after(p.key, max(after, 0.0) + 1.0)
