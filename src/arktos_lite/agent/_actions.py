"""The agent's Actions: reboot, snapshot and restore of the VM pods on its node.

`ActionWorker` watches the `actions` of every tenant bound to its node (field selector
`spec.nodeName=<node>`) and carries out each one that is not complete, through the VM
runtime of its pod (`runtime.VmRuntime`: RebootVM, CreateSnapshot, RestoreToSnapshot).
Guarantees:

* Every action it sees ends complete: its status (written through `actions/<name>/status`)
  gets `complete: true`, `error` ("" on success), `completionTime` (the wall clock when it
  ended, RFC 3339: the controller keeps a complete action for a retention period counted
  from it), `podName`, `podID` and the operation's own status
  (`rebootStatus.rebootSuccessful`, `snapshotStatus.snapshotID`,
  `restoreStatus.restoreSuccessful`). An action on a pod that is gone or replaced (its uid
  is not `spec.podID`), on a container pod, on a VM that is not running (reboot,
  snapshot), on a missing snapshot, without a runtime that runs VM calls, or whose
  runtime call failed, completes with an `error` saying so. Only an action whose VM is
  not created yet waits, up to `ready_timeout`, and then fails.
* Each action is carried out once per agent: complete actions are skipped (so an agent
  restart does not redo them), and the actions of one pod run one at a time, in the
  order the agent saw them.
* After a reboot or restore the pod's worker is woken, so the pod's
  `virtualMachineStatus.restartCount` (the runtime's restart-count annotation) shows
  the reboot at once.
"""

from __future__ import annotations

import datetime
import enum
import logging
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, Protocol

import trio

from arktos_lite import client, machinery, runtime
from arktos_lite.agent import _pods as pods_
from arktos_lite.api import errors, resources, timestamps
from arktos_lite.runtime import errors as runtime_errors

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

_REGISTRY = resources.Registry()
ACTIONS = _REGISTRY.get("", "v1", "actions")
PODS = _REGISTRY.get("", "v1", "pods")
assert ACTIONS is not None
assert PODS is not None

# Attempts at writing an action's status before giving up (the API server is away).
_WRITE_ATTEMPTS = 6


class Operation(enum.StrEnum):
    REBOOT = "reboot"
    SNAPSHOT = "snapshot"
    RESTORE = "restore"


# The spec field of each operation, and the status field that reports it.
_SPEC_FIELDS = {
    Operation.REBOOT: "rebootAction",
    Operation.SNAPSHOT: "snapshotAction",
    Operation.RESTORE: "restoreAction",
}


class VmLocator(Protocol):
    """Where the worker finds VM pods (the `PodManager`)."""

    async def locate_vm(
        self, *, tenant: str, namespace: str, pod: str, uid: str = ""
    ) -> pods_.LocatedVm: ...

    def wake(self, uid: str) -> None: ...


class ActionError(Exception):
    """An action that cannot be done; the message goes to its `status.error`."""


def operation(spec: Mapping[str, Any]) -> Operation:
    """The operation an Action's spec asks for; `ActionError` if none or several."""
    found = [op for op, field in _SPEC_FIELDS.items() if spec.get(field) is not None]
    if len(found) != 1:
        named = ", ".join(_SPEC_FIELDS.values())
        raise ActionError(f"an action needs exactly one of {named}")
    return found[0]


def _result(op: Operation | None, *, success: bool, snapshot: str = "") -> Obj:
    if op is Operation.REBOOT:
        return {"rebootStatus": {"rebootSuccessful": success}}
    if op is Operation.SNAPSHOT:
        return {"snapshotStatus": {"snapshotID": snapshot if success else ""}}
    if op is Operation.RESTORE:
        return {"restoreStatus": {"restoreSuccessful": success}}
    return {}


class ActionWorker:
    """Carries out the Actions of one node; see the module docs."""

    def __init__(
        self,
        api: client.Client,
        *,
        node_name: str,
        locator: VmLocator,
        recorder: machinery.EventRecorder,
        ready_timeout: float = 60.0,
        retry_interval: float = 0.5,
        wall_clock: Callable[[], datetime.datetime] = timestamps.now,
    ) -> None:
        assert ACTIONS is not None
        self._api = api
        self.node_name = node_name
        self._locator = locator
        self._recorder = recorder
        self._ready_timeout = ready_timeout
        self._retry_interval = retry_interval
        self._wall_clock = wall_clock
        self.actions = machinery.InformerFactory(api).informer(
            ACTIONS,
            tenant=resources.ALL_TENANTS,
            field_selector=f"spec.nodeName={node_name}",
        )
        # Action uids taken on by this worker (running or done).
        self._taken: set[str] = set()
        # One lock per pod key: a pod's actions run one at a time.
        self._locks: dict[str, trio.Lock] = {}
        self._nursery: trio.Nursery | None = None

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        registration: machinery.HandlerRegistration | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.actions.run)
                await self.actions.wait_synced()
                registration = self.actions.add_handler(
                    on_add=self._on_action,
                    on_update=lambda _old, new: self._on_action(new),
                    on_delete=self._on_delete,
                )
                logger.info("action worker of node %s started", self.node_name)
                task_status.started()
                await trio.sleep_forever()
        finally:
            if registration is not None:
                self.actions.remove_handler(registration)
            self._nursery = None
        raise AssertionError("unreachable")

    def _on_action(self, action: Obj) -> None:
        meta = action.get("metadata") or {}
        uid = meta.get("uid") or ""
        if (action.get("spec") or {}).get("nodeName") != self.node_name:
            return
        if (action.get("status") or {}).get("complete") or not uid or uid in self._taken:
            return
        if self._nursery is None:
            return
        self._taken.add(uid)
        key = self.actions.key(action)
        pod_key = key.rsplit("/", 1)[0] + "/" + str((action.get("spec") or {}).get("podName"))
        lock = self._locks.setdefault(pod_key, trio.Lock())
        self._nursery.start_soon(self._handle, action, pod_key, lock)

    def _on_delete(self, action: Obj) -> None:
        self._taken.discard((action.get("metadata") or {}).get("uid") or "")

    async def _handle(self, action: Obj, pod_key: str, lock: trio.Lock) -> None:
        name = (action.get("metadata") or {}).get("name")
        async with lock:
            try:
                result = await self.execute(action)
            except Exception as exc:
                # Never leave an action hanging, even on a bug here.
                logger.exception("action %s failed unexpectedly", name)
                spec = action.get("spec") or {}
                result = {
                    "complete": True,
                    "error": f"internal error: {exc}",
                    "podName": spec.get("podName") or "",
                    "podID": spec.get("podID") or "",
                }
        if lock.statistics().tasks_waiting == 0 and self._locks.get(pod_key) is lock:
            del self._locks[pod_key]
        error = result.get("error")
        # Listed objects may come without their kind; the event must name it.
        action = {**action, "kind": "Action", "apiVersion": "v1"}
        if error:
            self._recorder.event(action, "Warning", reason="Failed", message=str(error))
        else:
            self._recorder.event(
                action, "Normal", reason="Completed", message=f"action {name} completed"
            )
        result["completionTime"] = timestamps.rfc3339(self._wall_clock())
        await self._write(action, result)

    async def execute(self, action: Mapping[str, Any]) -> Obj:
        """Carry out one action; its complete status (never raises for a failed action)."""
        meta = action.get("metadata") or {}
        spec = action.get("spec") or {}
        pod_name = str(spec.get("podName") or "")
        pod_id = str(spec.get("podID") or "")
        base: Obj = {"complete": True, "podName": pod_name, "podID": pod_id}
        op: Operation | None = None
        try:
            op = operation(spec)
            if not pod_name:
                raise ActionError("the action names no pod (spec.podName)")
            located = await self._find(
                tenant=meta.get("tenant") or resources.SYSTEM_TENANT,
                namespace=meta.get("namespace") or "default",
                pod=pod_name,
                uid=pod_id,
            )
            snapshot = await self._run(op, spec, located, pod_name)
        except ActionError as exc:
            logger.info("action %s: %s", meta.get("name"), exc)
            return {**base, "error": str(exc), **_result(op, success=False)}
        logger.info("action %s (%s of pod %s) done", meta.get("name"), op.value, pod_name)
        return {**base, "error": "", **_result(op, success=True, snapshot=snapshot)}

    async def _run(
        self, op: Operation, spec: Mapping[str, Any], located: pods_.LocatedVm, pod: str
    ) -> str:
        """Run `op` on the VM; the snapshot's name for a snapshot."""
        rt = located.runtime
        if not isinstance(rt, runtime.VmRuntime):
            raise ActionError(
                f'the runtime of pod "{pod}" does not support virtual machine actions'
            )
        params = spec.get(_SPEC_FIELDS[op]) or {}
        vm_id = located.container_id
        uid = str((located.pod.get("metadata") or {}).get("uid") or "")
        try:
            if op is Operation.REBOOT:
                if not located.running:
                    raise ActionError(f'the virtual machine of pod "{pod}" is not running')
                delay = _seconds(params.get("delayInSeconds"))
                await rt.reboot_vm(vm_id, delay_seconds=delay)
                self._locator.wake(uid)
                return ""
            if op is Operation.SNAPSHOT:
                name = str(params.get("snapshotName") or "")
                if not name:
                    raise ActionError("a snapshot action needs snapshotAction.snapshotName")
                if not located.running:
                    raise ActionError(f'the virtual machine of pod "{pod}" is not running')
                await rt.create_snapshot(vm_id, name)
                return name
            snapshot_id = str(params.get("snapshotID") or "")
            if not snapshot_id:
                raise ActionError("a restore action needs restoreAction.snapshotID")
            try:
                await rt.restore_to_snapshot(vm_id, snapshot_id)
            except runtime_errors.NotFound as exc:
                raise ActionError(
                    f'snapshot "{snapshot_id}" of pod "{pod}" not found: {exc.message}'
                ) from None
            self._locator.wake(uid)
            return ""
        except runtime_errors.CRIError as exc:
            raise ActionError(f"{op.value} of pod {pod!r} failed: {exc.message}") from None

    async def _find(self, *, tenant: str, namespace: str, pod: str, uid: str) -> pods_.LocatedVm:
        deadline = trio.current_time() + self._ready_timeout
        while True:
            try:
                return await self._locator.locate_vm(
                    tenant=tenant, namespace=namespace, pod=pod, uid=uid
                )
            except pods_.VmNotReady as exc:
                waiting: LookupError = exc
            except pods_.PodNotOnNode as exc:
                # The pod informer may lag behind the action: ask the API server.
                await self._check_pod(tenant=tenant, namespace=namespace, pod=pod, uid=uid)
                waiting = exc
            except LookupError as exc:
                raise ActionError(str(exc)) from None
            except runtime_errors.CRIError as exc:
                raise ActionError(f'cannot find the VM of pod "{pod}": {exc.message}') from None
            if trio.current_time() >= deadline:
                raise ActionError(f"{waiting} (waited {self._ready_timeout:g}s)")
            await trio.sleep(self._retry_interval)

    async def _check_pod(self, *, tenant: str, namespace: str, pod: str, uid: str) -> None:
        """Raise `ActionError` if the pod is gone, replaced, or not a VM pod of this node."""
        assert PODS is not None
        try:
            obj = await self._api.get(PODS, pod, tenant=tenant, namespace=namespace)
        except errors.NotFound:
            raise ActionError(f'pod "{pod}" not found in namespace "{namespace}"') from None
        except (errors.StatusError, client.Unreachable) as exc:
            raise ActionError(f'cannot read pod "{pod}": {exc}') from None
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        if uid and meta.get("uid") != uid:
            raise ActionError(f'pod "{pod}" is another pod now (uid {meta.get("uid")}, not {uid})')
        if meta.get("deletionTimestamp"):
            raise ActionError(f'pod "{pod}" is being deleted')
        if spec.get("nodeName") != self.node_name:
            raise ActionError(
                f'pod "{pod}" is on node {spec.get("nodeName") or "(none)"}, not {self.node_name}'
            )
        if not spec.get("virtualMachine"):
            raise ActionError(f'pod "{pod}" is not a virtual machine pod')

    async def _write(self, action: Mapping[str, Any], result: Obj) -> None:
        assert ACTIONS is not None
        meta = action.get("metadata") or {}
        delay = self._retry_interval
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                await self._api.patch(
                    ACTIONS,
                    meta.get("name") or "",
                    {"status": result},
                    tenant=meta.get("tenant") or resources.SYSTEM_TENANT,
                    namespace=meta.get("namespace") or "default",
                    subresource="status",
                )
                return
            except errors.NotFound:
                return  # deleted meanwhile: nobody waits for it any more
            except (errors.StatusError, client.Unreachable) as exc:
                if attempt == _WRITE_ATTEMPTS - 1:
                    logger.warning("action %s: status not written: %s", meta.get("name"), exc)
                    # Another agent (or a restart) may take it on again.
                    self._taken.discard(meta.get("uid") or "")
                    return
                await trio.sleep(delay)
                delay = min(delay * 2, 10.0)


def _seconds(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        raise ActionError(f"delayInSeconds must be a whole number, not {value!r}") from None
