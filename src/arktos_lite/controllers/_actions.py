"""The action controller: Actions (Arktos's VM reboot/snapshot/restore requests) neither
wait forever nor pile up.

Guarantees:

* An Action whose pod is gone (no pod of `spec.podName` in the action's tenant and
  namespace, or one whose uid is not `spec.podID`: the pod was deleted and made again) and
  which is not complete is marked `status.complete: true` with
  `status.error: "pod <name> no longer exists"` and `status.completionTime`, so nobody
  waiting on it waits forever. The cache's word that a pod is missing is checked with a
  read before anything is written, and the write carries the resourceVersion it was
  decided on: an agent that completed the action meanwhile wins.
* A complete Action is deleted `retention` seconds after it completed: counted from its
  `status.completionTime` (RFC 3339; the agent and this controller write it with
  `complete: true`), or, for an action completed without one (by an older agent, or by
  hand), from its `metadata.creationTimestamp`. The wall clock is only compared with
  those timestamps; the wait until then is a requeue on trio's clock. The
  delete carries the action's uid as a precondition, so a new action of the same name is
  never removed in its place.
* Actions owned by their pod also go with it through the garbage collector; this
  controller covers the rest (actions made by hand, or during the garbage collector's lag).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

import trio

from arktos_lite import client, machinery
from arktos_lite.api import errors, resources, timestamps
from arktos_lite.controllers import _common as common

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

DEFAULT_RETENTION = 3600.0
_POD_INDEX = "pod"
_REGISTRY = resources.Registry()


def _resource(plural: str) -> resources.Resource:
    resource = _REGISTRY.get("", "v1", plural)
    assert resource is not None, plural
    return resource


ACTIONS = _resource("actions")
PODS = _resource("pods")


def _pod_key(tenant: str, namespace: str, name: str) -> str:
    return f"{tenant}/{namespace}/{name}"


def by_pod(action: Obj) -> tuple[str, ...]:
    """The informer key of the pod an action is for."""
    meta = action.get("metadata") or {}
    pod = (action.get("spec") or {}).get("podName")
    if not pod or not meta.get("namespace"):
        return ()
    return (_pod_key(meta.get("tenant") or resources.SYSTEM_TENANT, meta["namespace"], pod),)


def completed_at(action: Obj) -> datetime.datetime | None:
    """When a complete action counts as completed (see the module docs)."""
    status = action.get("status") or {}
    meta = action.get("metadata") or {}
    completed = timestamps.parse(status.get("completionTime"))
    return completed or timestamps.parse(meta.get("creationTimestamp"))


def pod_gone_message(pod: str) -> str:
    return f"pod {pod} no longer exists"


class ActionController:
    """See the module docs. Construct before the informer factory starts; then `run`."""

    def __init__(
        self,
        api: client.Client,
        informers: machinery.InformerFactory,
        *,
        retention: float = DEFAULT_RETENTION,
        workers: int = 2,
        wall_clock: Callable[[], datetime.datetime] = timestamps.now,
    ) -> None:
        if retention < 0:
            raise ValueError(f"retention must not be negative, not {retention!r}")
        self._api = api
        self._retention = retention
        self._workers = workers
        self._wall_clock = wall_clock
        self._queue: machinery.WorkQueue[str] = machinery.WorkQueue()
        self._actions = informers.informer(ACTIONS, indexers={_POD_INDEX: by_pod})
        self._actions.add_handler(
            on_add=self._enqueue, on_update=lambda _old, new: self._enqueue(new)
        )
        self._pods = informers.informer(PODS)
        self._pods.add_handler(on_update=self._pod_updated, on_delete=self._pod_deleted)

    def _enqueue(self, action: Obj) -> None:
        self._queue.add(self._actions.key(action))

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        # A relist may show a pod made again under the same name as an update.
        if (old.get("metadata") or {}).get("uid") != (new.get("metadata") or {}).get("uid"):
            self._pod_deleted(old)

    def _pod_deleted(self, pod: Obj) -> None:
        for key in self._actions.index_keys(_POD_INDEX, self._pods.key(pod)):
            self._queue.add(key)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await common.work(
            self._queue,
            self._sync,
            workers=self._workers,
            what="action",
            logger=logger,
            task_status=task_status,
        )

    async def _sync(self, key: str) -> None:
        action = self._actions.get(key)
        if action is None:
            return
        if (action.get("status") or {}).get("complete") is True:
            await self._expire(key, action)
        elif not action["metadata"].get("deletionTimestamp"):
            await self._check_pod(key, action)

    async def _expire(self, key: str, action: Obj) -> None:
        meta = action["metadata"]
        since = completed_at(action)
        if since is not None:
            age = (self._wall_clock() - since).total_seconds()
            if age < self._retention:
                # Looked at again when due, on trio's clock.
                raise machinery.Requeue(self._retention - age)
        try:
            await self._api.delete(
                ACTIONS,
                meta["name"],
                tenant=meta.get("tenant") or resources.SYSTEM_TENANT,
                namespace=meta["namespace"],
                preconditions={"uid": meta["uid"]},
            )
        except (errors.NotFound, errors.Conflict):
            # Gone already, or another action took its name: nothing of ours to delete.
            return
        logger.debug("deleted completed action %s", key)

    async def _check_pod(self, key: str, action: Obj) -> None:
        meta = action["metadata"]
        spec = action.get("spec") or {}
        tenant = meta.get("tenant") or resources.SYSTEM_TENANT
        namespace = meta["namespace"]
        pod_name = spec.get("podName")
        pod_id = spec.get("podID")
        if not pod_name:
            return
        if self._pod_matches(self._pods.get(_pod_key(tenant, namespace, pod_name)), pod_id):
            return
        # The cache may lag behind a pod made just now: ask before judging.
        try:
            live: Obj | None = await self._api.get(
                PODS, pod_name, tenant=tenant, namespace=namespace
            )
        except errors.NotFound:
            live = None
        if self._pod_matches(live, pod_id):
            return
        status = dict(action.get("status") or {})
        status.update(
            complete=True,
            completionTime=timestamps.rfc3339(self._wall_clock()),
            error=pod_gone_message(pod_name),
            podName=pod_name,
        )
        if pod_id:
            status["podID"] = pod_id
        patch = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": status}
        try:
            await self._api.patch(
                ACTIONS,
                meta["name"],
                patch,
                tenant=tenant,
                namespace=namespace,
                subresource="status",
            )
        except errors.NotFound:
            return
        except errors.Conflict:
            # Changed since the cache saw it (the agent may have completed it): look again.
            raise machinery.Requeue() from None
        logger.info("action %s failed: %s", key, status["error"])

    @staticmethod
    def _pod_matches(pod: Obj | None, pod_id: Any) -> bool:
        if pod is None:
            return False
        return not pod_id or (pod.get("metadata") or {}).get("uid") == pod_id
