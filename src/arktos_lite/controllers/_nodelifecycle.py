"""The node lifecycle controller: notices nodes that went silent and moves work off them.

Nodes heartbeat through their Lease (`kube-node-lease` in the `system` tenant, named
after the node: `spec.renewTime`) and their `Ready` condition's `lastHeartbeatTime`.
The controller notes, on trio's clock, when it last saw either change; it never compares
the node's wall clock with its own. Guarantees, as kube-controller-manager gives them:

* A node silent for longer than `grace_period` gets its conditions (but
  `NetworkUnavailable`, which the network sets) turned `Unknown` with reason
  `NodeStatusUnknown`; a node that never posted `Ready` gets `Ready=Unknown` with reason
  `NodeStatusNeverUpdated`. Pods on a node going from Ready to Unknown get `Ready=False`.
* A node whose `Ready` is `Unknown` carries the taint `node.kubernetes.io/unreachable`, one
  whose `Ready` is `False` carries `node.kubernetes.io/not-ready` (both `NoExecute`, with
  `timeAdded`); a node that is `Ready` again loses them.
* Pods on a node with `NoExecute` taints are evicted (deleted, with a
  `TaintManagerEviction` event) once they have tolerated each taint for its
  `tolerationSeconds`, counted from when the controller saw the taint appear; at once
  for a taint they do not tolerate, never for one tolerated without a limit. Pods
  without their own toleration for `not-ready` or `unreachable` tolerate them for
  `eviction_timeout`, as Kubernetes' DefaultTolerationSeconds admission arranges.
* Every write carries the resourceVersion it was decided on: a heartbeat that raced
  the controller wins, and the node is judged again.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import trio

from arktos_lite import client, machinery
from arktos_lite.api import errors, resources, timestamps

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
NO_EXECUTE = "NoExecute"
NODE_LEASE_NAMESPACE = "kube-node-lease"

# Set by the network plugin or route controller, not by the node agent: a silent agent
# says nothing about it.
_NOT_AGENT_CONDITIONS = frozenset({"NetworkUnavailable"})
_UNKNOWN_REASON = "NodeStatusUnknown"
_UNKNOWN_MESSAGE = "Kubelet stopped posting node status."
_NEVER_REASON = "NodeStatusNeverUpdated"
_NEVER_MESSAGE = "Kubelet never posted node status."
# kube-controller-manager retries a node status update this often before the next pass.
_STATUS_ATTEMPTS = 5
_NODE_INDEX = "nodeName"
_EVICTION_WORKERS = 4

_REGISTRY = resources.Registry()


def _resource(group: str, plural: str) -> resources.Resource:
    resource = _REGISTRY.get(group, "v1", plural)
    assert resource is not None, plural
    return resource


NODES = _resource("", "nodes")
PODS = _resource("", "pods")
LEASES = _resource("coordination.k8s.io", "leases")


def now_rfc3339() -> str:
    return timestamps.rfc3339(timestamps.now())


# Conditions and taints


def condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if isinstance(cond, Mapping) and cond.get("type") == type_:
            return cond
    return None


def ready_status(node: Mapping[str, Any]) -> str | None:
    """`True`, `False` or `Unknown`; None when the node never said."""
    cond = condition(node, "Ready")
    return str(cond.get("status")) if cond is not None else None


def unknown_conditions(
    conditions: Sequence[Mapping[str, Any]], *, now: str, created: str | None = None
) -> list[Obj] | None:
    """The conditions of a node that went silent; None when they already say so."""
    changed = False
    result: list[Obj] = []
    has_ready = False
    for cond in conditions:
        new = dict(cond)
        has_ready = has_ready or cond.get("type") == "Ready"
        if cond.get("type") not in _NOT_AGENT_CONDITIONS and cond.get("status") != "Unknown":
            new.update(
                status="Unknown",
                reason=_UNKNOWN_REASON,
                message=_UNKNOWN_MESSAGE,
                lastTransitionTime=now,
            )
            changed = True
        result.append(new)
    if not has_ready:
        result.append(
            {
                "type": "Ready",
                "status": "Unknown",
                "reason": _NEVER_REASON,
                "message": _NEVER_MESSAGE,
                "lastHeartbeatTime": created,
                "lastTransitionTime": now,
            }
        )
        changed = True
    return result if changed else None


def wanted_taint(ready: str | None) -> str | None:
    """The node controller's NoExecute taint for a node whose Ready is `ready`."""
    return {"Unknown": TAINT_UNREACHABLE, "False": TAINT_NOT_READY}.get(ready or "")


def reconcile_taints(
    taints: Sequence[Mapping[str, Any]], ready: str | None, *, now: str
) -> list[Obj] | None:
    """The node's taints with the controller's own as `ready` asks; None if unchanged.

    Taints of others are left alone, and a taint that stays keeps its `timeAdded`.
    """
    want = wanted_taint(ready)
    ours = {TAINT_UNREACHABLE, TAINT_NOT_READY}
    result: list[Obj] = []
    present = False
    for taint in taints:
        key, effect = taint.get("key"), taint.get("effect")
        if key in ours and effect == NO_EXECUTE:
            if key != want:
                continue
            present = True
        result.append(dict(taint))
    if want is not None and not present:
        result.append({"key": want, "effect": NO_EXECUTE, "timeAdded": now})
    return None if result == [dict(t) for t in taints] else result


def pod_not_ready_conditions(
    conditions: Sequence[Mapping[str, Any]], *, now: str
) -> list[Obj] | None:
    """A pod's conditions with `Ready` turned False; None if it was not True."""
    result = [dict(c) for c in conditions]
    for cond in result:
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            cond.update(status="False", lastTransitionTime=now)
            return result
    return None


# Tolerations


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Kubernetes' `Toleration.ToleratesTaint`."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def with_default_tolerations(
    tolerations: Iterable[Mapping[str, Any]], *, seconds: float
) -> list[Mapping[str, Any]]:
    """`tolerations` plus what DefaultTolerationSeconds admission adds: `not-ready` and
    `unreachable` for `seconds`, each unless one of the pod's own already covers it."""
    result = list(tolerations)
    for key in (TAINT_NOT_READY, TAINT_UNREACHABLE):
        covered = any(
            (t.get("key") or "") in ("", key) and (t.get("effect") or "") in ("", NO_EXECUTE)
            for t in result
        )
        if not covered:
            result.append(
                {
                    "key": key,
                    "operator": "Exists",
                    "effect": NO_EXECUTE,
                    "tolerationSeconds": seconds,
                }
            )
    return result


def eviction_due(
    tolerations: Sequence[Mapping[str, Any]],
    taints: Iterable[tuple[Mapping[str, Any], float]],
    *,
    default_seconds: float,
) -> float | None:
    """When a pod with `tolerations` must leave a node with these NoExecute taints (each
    with the time it appeared); None if it may stay for good.

    For each taint, the pod's first toleration of it counts (Kubernetes'
    GetMatchingTolerations); a taint it does not tolerate sends it away when the taint
    appeared, i.e. at once.
    """
    effective = with_default_tolerations(tolerations, seconds=default_seconds)
    due: float | None = None
    for taint, since in taints:
        match = next((t for t in effective if tolerates(t, taint)), None)
        if match is None:
            at = since
        else:
            seconds = match.get("tolerationSeconds")
            if seconds is None:
                continue
            at = since + max(0.0, float(seconds))
        due = at if due is None else min(due, at)
    return due


# Observations on trio's clock


@dataclasses.dataclass(slots=True)
class _Heartbeat:
    probe: float
    lease_renew: str | None
    status_heartbeat: str | None


class Heartbeats:
    """When each node was last heard from, as seen here (trio time)."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Heartbeat] = {}

    def observe(
        self, node: str, *, lease_renew: str | None, status_heartbeat: str | None, now: float
    ) -> None:
        """A node is heard from when it is first seen, or either heartbeat changed."""
        seen = self._nodes.get(node)
        if seen is None:
            self._nodes[node] = _Heartbeat(now, lease_renew, status_heartbeat)
            return
        if (lease_renew is not None and lease_renew != seen.lease_renew) or (
            status_heartbeat is not None and status_heartbeat != seen.status_heartbeat
        ):
            seen.probe = now
        seen.lease_renew = lease_renew
        seen.status_heartbeat = status_heartbeat

    def silent_for(self, node: str, *, now: float) -> float:
        seen = self._nodes.get(node)
        return 0.0 if seen is None else now - seen.probe

    def forget(self, node: str) -> None:
        self._nodes.pop(node, None)

    def __contains__(self, node: object) -> bool:
        return node in self._nodes


def _taint_id(taint: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(taint.get("key") or ""), str(taint.get("value") or ""), str(taint.get("effect")))


class TaintClock:
    """Each node's NoExecute taints, with the trio time each was first seen."""

    def __init__(self) -> None:
        self._nodes: dict[str, dict[tuple[str, str, str], tuple[Obj, float]]] = {}

    def observe(self, node: str, taints: Iterable[Mapping[str, Any]], *, now: float) -> bool:
        """Note the node's current taints; True if its set of NoExecute taints changed."""
        before = self._nodes.get(node, {})
        after: dict[tuple[str, str, str], tuple[Obj, float]] = {}
        for taint in taints:
            if isinstance(taint, Mapping) and taint.get("effect") == NO_EXECUTE:
                ident = _taint_id(taint)
                seen = before.get(ident)
                after[ident] = (dict(taint), seen[1] if seen is not None else now)
        if after:
            self._nodes[node] = after
        else:
            self._nodes.pop(node, None)
        return after.keys() != before.keys()

    def taints(self, node: str) -> list[tuple[Obj, float]]:
        return list(self._nodes.get(node, {}).values())

    def forget(self, node: str) -> None:
        self._nodes.pop(node, None)


# The controller


class NodeLifecycleController:
    """Marks silent nodes, taints them, and evicts pods that do not tolerate it."""

    def __init__(
        self,
        api: client.Client,
        informers: machinery.InformerFactory,
        *,
        recorder: machinery.EventRecorder,
        grace_period: float = 40.0,
        eviction_timeout: float = 300.0,
        monitor_period: float = 5.0,
    ) -> None:
        self._api = api
        self._recorder = recorder
        self._grace_period = grace_period
        self._eviction_timeout = eviction_timeout
        self._monitor_period = monitor_period
        self._heartbeats = Heartbeats()
        self._taints = TaintClock()
        # Nodes whose pods still need `Ready=False` after the node went unknown.
        self._pods_to_mark: set[str] = set()
        self._evictions: machinery.WorkQueue[str] = machinery.WorkQueue()
        self._nodes = informers.informer(NODES)
        self._leases = informers.informer(
            LEASES, tenant=resources.SYSTEM_TENANT, namespace=NODE_LEASE_NAMESPACE
        )
        self._pods = informers.informer(PODS, indexers={_NODE_INDEX: machinery.by_node_name})
        self._nodes.add_handler(
            on_add=self._node_changed,
            on_update=lambda _old, new: self._node_changed(new),
            on_delete=self._node_gone,
        )
        self._leases.add_handler(
            on_add=self._lease_changed,
            on_update=lambda _old, new: self._lease_changed(new),
        )
        self._pods.add_handler(
            on_add=self._pod_changed,
            on_update=lambda _old, new: self._pod_changed(new),
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        logger.info(
            "node lifecycle controller starting: grace period %ss, eviction timeout %ss",
            self._grace_period,
            self._eviction_timeout,
        )
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    functools.partial(
                        machinery.run_workers,
                        self._evictions,
                        self._evict,
                        workers=_EVICTION_WORKERS,
                    )
                )
                nursery.start_soon(self._monitor)
                task_status.started()
        finally:
            self._evictions.shutdown()
            logger.info("node lifecycle controller stopped")

    # Event handlers

    def _node_changed(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        self._observe_heartbeat(name)
        now = trio.current_time()
        if self._taints.observe(name, (node.get("spec") or {}).get("taints") or (), now=now):
            for key in self._pods.index_keys(_NODE_INDEX, name):
                self._evictions.add(key)

    def _node_gone(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        self._heartbeats.forget(name)
        self._taints.forget(name)
        self._pods_to_mark.discard(name)

    def _lease_changed(self, lease: Obj) -> None:
        self._observe_heartbeat(lease["metadata"]["name"])

    def _pod_changed(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and self._taints.taints(node):
            self._evictions.add(self._pods.key(pod))

    def _observe_heartbeat(self, name: str, node: Obj | None = None) -> None:
        node = node if node is not None else self._nodes.get(name)
        if node is None:
            return
        lease = self._leases.get(f"{resources.SYSTEM_TENANT}/{NODE_LEASE_NAMESPACE}/{name}")
        ready = condition(node, "Ready")
        self._heartbeats.observe(
            name,
            lease_renew=(lease.get("spec") or {}).get("renewTime") if lease else None,
            status_heartbeat=ready.get("lastHeartbeatTime") if ready else None,
            now=trio.current_time(),
        )

    # Monitoring nodes

    async def _monitor(self) -> None:
        while True:
            for node in self._nodes.list():
                try:
                    await self._check_node(node)
                except (client.Unreachable, errors.StatusError) as exc:
                    # The next pass looks again; the node keeps its state till then.
                    logger.warning("checking node %s failed: %s", node["metadata"].get("name"), exc)
            await trio.sleep(self._monitor_period)

    async def _check_node(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        # Heartbeats are noted as the informers bring them (see the handlers), so that
        # each counts once, when it arrives.
        for _attempt in range(_STATUS_ATTEMPTS):
            silent = self._heartbeats.silent_for(name, now=trio.current_time())
            if silent <= self._grace_period:
                break
            status = node.get("status") or {}
            conditions = unknown_conditions(
                status.get("conditions") or (),
                now=now_rfc3339(),
                created=node["metadata"].get("creationTimestamp"),
            )
            if conditions is None:
                break
            try:
                updated = await self._api.patch(
                    NODES,
                    name,
                    {
                        "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                        "status": {"conditions": conditions},
                    },
                    subresource="status",
                )
            except errors.Conflict:
                # Perhaps it just posted its status: look at it as it is.
                node = await self._api.get(NODES, name)
                self._observe_heartbeat(name, node)
                continue
            logger.info("node %s has been silent for %.1fs; marked unknown", name, silent)
            self._recorder.event(
                updated,
                machinery.EventType.NORMAL,
                reason="NodeNotReady",
                message=f"Node {name} status is now: NodeNotReady",
            )
            if ready_status(node) == "True":
                self._pods_to_mark.add(name)
            node = updated
            break
        ready = ready_status(node)
        await self._reconcile_taints(node, ready)
        if name in self._pods_to_mark:
            if ready != "True":
                await self._mark_pods_not_ready(name)
            self._pods_to_mark.discard(name)

    async def _reconcile_taints(self, node: Obj, ready: str | None) -> None:
        taints = reconcile_taints(
            (node.get("spec") or {}).get("taints") or (), ready, now=now_rfc3339()
        )
        if taints is None:
            return
        name = node["metadata"]["name"]
        try:
            # The pods' clocks start when the watch brings the taint back, not before.
            await self._api.patch(
                NODES,
                name,
                {
                    "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                    "spec": {"taints": taints or None},
                },
            )
        except errors.Conflict:
            logger.debug("node %s changed while tainting it; next pass", name)
            return
        logger.info("node %s (Ready %s) now has taints %s", name, ready, _taint_names(taints))

    async def _mark_pods_not_ready(self, node: str) -> None:
        for pod in self._pods.by_index(_NODE_INDEX, node):
            meta = pod["metadata"]
            for _attempt in range(_STATUS_ATTEMPTS):
                conditions = pod_not_ready_conditions(
                    (pod.get("status") or {}).get("conditions") or (), now=now_rfc3339()
                )
                if conditions is None:
                    break
                try:
                    await self._api.patch(
                        PODS,
                        meta["name"],
                        {
                            "metadata": {"resourceVersion": pod["metadata"]["resourceVersion"]},
                            "status": {"conditions": conditions},
                        },
                        namespace=meta.get("namespace"),
                        tenant=meta.get("tenant"),
                        subresource="status",
                    )
                except errors.NotFound:
                    break
                except errors.Conflict:
                    try:
                        pod = await self._api.get(
                            PODS,
                            meta["name"],
                            namespace=meta.get("namespace"),
                            tenant=meta.get("tenant"),
                        )
                    except errors.NotFound:
                        break
                    if pod["metadata"].get("uid") != meta.get("uid"):
                        break
                    continue
                self._recorder.event(
                    pod,
                    machinery.EventType.WARNING,
                    reason="NodeNotReady",
                    message="Node is not ready",
                )
                break

    # Evicting pods

    async def _evict(self, key: str) -> None:
        pod = self._pods.get(key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        spec = pod.get("spec") or {}
        node = spec.get("nodeName")
        taints = self._taints.taints(node) if node else []
        if not taints:
            return
        due = eviction_due(
            spec.get("tolerations") or (), taints, default_seconds=self._eviction_timeout
        )
        if due is None:
            return
        now = trio.current_time()
        if due > now:
            raise machinery.Requeue(after=due - now)
        meta = pod["metadata"]
        try:
            await self._api.delete(
                PODS,
                meta["name"],
                namespace=meta.get("namespace"),
                tenant=meta.get("tenant"),
                preconditions={"uid": meta["uid"]},
            )
        except (errors.NotFound, errors.Conflict):
            # Gone already, or another pod has its name now.
            return
        logger.info("evicted pod %s from node %s", key, node)
        self._recorder.event(
            pod,
            machinery.EventType.NORMAL,
            reason="TaintManagerEviction",
            message=f"Marking for deletion Pod {meta.get('namespace')}/{meta['name']}",
        )


def _taint_names(taints: Iterable[Mapping[str, Any]]) -> str:
    return ", ".join(f"{t.get('key')}:{t.get('effect')}" for t in taints) or "none"
