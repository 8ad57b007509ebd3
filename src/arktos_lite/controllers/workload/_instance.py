"""One instance of a partitioned controller type: registration, renewal and hand-over.

An `Instance` registers the `ControllerInstance` `<type>-<uuid>` (cluster-scoped;
`controllerType`, `controllerKey`, `workloadNum`, `isLocked`), renews it every
`renew_interval` seconds, and drives one `PartitionedController` so that it handles its
share of the hash space among the live instances of its type (`_ranges.split`).

Liveness. Every write of an instance to its object (a renewal bumps the annotation
`controllers.arktos.futurewei.com/renewals`) changes the object's resourceVersion. Each
instance notes, on its own trio clock, when it last saw each peer's resourceVersion
change; a peer unchanged for `expiry` seconds is deleted with that resourceVersion as a
precondition, and only once that delete succeeds (or the object is already gone) is the
peer dead. So a watch that lags never kills a peer that is renewing, and only one view
of "dead" exists per peer object. Clocks need not agree, only run at the same rate.

Fencing. An instance whose last successful write was sent more than `expiry -
renew_interval` seconds ago stops its controller at once (cancelled, all work
abandoned) and starts a fresh one on the empty range after it renews again. Peers count
`expiry` from a moment no earlier than that send, so the instance has stopped at least
`renew_interval` seconds before any peer can declare it dead.

Hand-over: the `isLocked` protocol, made exact with a membership fingerprint. Each
instance publishes in its object the fingerprint of the set of live instances it acts
on (annotation `controllers.arktos.futurewei.com/membership`) and `isLocked`. When its
view of the live set changes it

1. publishes the new fingerprint with `isLocked: true` and `controllerKey` = the upper
   bound of its new share;
2. shrinks its controller to the keys in both its old range and its new share
   (`set_range` returns once in-flight work on the keys it loses is done);
3. publishes the fingerprint with `isLocked: false`: "I handle nothing outside my share
   of this membership".

It grows to its whole share only when every other instance of its view has published
the same fingerprint unlocked. Two instances acting on one membership have disjoint
shares; an instance that grew on membership M cannot be overlapped by a peer growing on
another membership M', since that peer waits until this one has published M' unlocked,
which it does only after shrinking into its M' share. Informer caches only move forward,
so a stale view of a peer can hold it back, never let it through. Peers are dead only
after they fenced (above), and an instance that leaves in good order stops its
controller before it deletes its object (marked `leaving`, which peers act on at once).
So no key is ever handled by two instances, and once membership is stable every key is
handled by exactly one: the shares of a membership cover the whole hash space.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import math
import uuid
from collections.abc import Callable
from typing import Any

import trio

from arktos_lite import client, machinery
from arktos_lite.api import errors, resources
from arktos_lite.controllers.workload import _partition as partition, _ranges as ranges

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

CONTROLLER_INSTANCES = next(
    r for r in resources.RESOURCES if (r.group, r.kind) == ("", "ControllerInstance")
)
ANNOTATION_PREFIX = "controllers.arktos.futurewei.com/"
MEMBERSHIP = ANNOTATION_PREFIX + "membership"
RENEWALS = ANNOTATION_PREFIX + "renewals"
HELD = ANNOTATION_PREFIX + "range"
STATE = ANNOTATION_PREFIX + "state"
Factory = Callable[[], partition.PartitionedController]
"""Builds the controller an instance drives (a fresh one after each fence)."""

# After a failed write the coordination loop tries again this much later.
RETRY = 1.0


class State(enum.StrEnum):
    """The `state` annotation: absent while running."""

    LEAVING = "leaving"


@dataclasses.dataclass(frozen=True, slots=True)
class InstanceTiming:
    """How often an instance renews and when a silent one counts as dead.

    Arktos: renew every 10 s, dead after 30 s. `expiry` must exceed twice
    `renew_interval`, so that an instance fences itself between its missed renewals
    and its peers' verdict. `leave_timeout` bounds the good-order exit; with
    `deregister_on_exit` false an instance exits as if killed (its peers wait for
    `expiry`).
    """

    renew_interval: float = 10.0
    expiry: float = 30.0
    leave_timeout: float = 5.0
    deregister_on_exit: bool = True

    def __post_init__(self) -> None:
        if self.renew_interval <= 0 or self.expiry <= 2 * self.renew_interval:
            raise ValueError(
                f"need 0 < 2 * renew_interval < expiry, not {self.renew_interval} and {self.expiry}"
            )

    @property
    def fence_after(self) -> float:
        """How long after its last successful write an instance stops its controller."""
        return self.expiry - self.renew_interval


@dataclasses.dataclass(slots=True)
class _Peer:
    """What this instance knows of another live instance of its type."""

    resource_version: str
    seen_at: float
    membership: str
    locked: bool
    deleted: bool = False


def _annotations(obj: Obj) -> dict[str, str]:
    annotations = (obj.get("metadata") or {}).get("annotations")
    return annotations if isinstance(annotations, dict) else {}


class Instance:
    """One registered instance driving one controller. See the module docs.

    `factory` builds the controller (again after a fence). `name` defaults to
    `<type>-<uuid>` with the type in lower case.
    """

    def __init__(
        self,
        api: client.Client,
        *,
        controller_type: str,
        factory: Factory,
        timing: InstanceTiming | None = None,
        name: str | None = None,
    ) -> None:
        self._api = api
        self.controller_type = controller_type
        self.name = name or f"{controller_type.lower()}-{uuid.uuid4()}"
        self._factory = factory
        self._timing = timing or InstanceTiming()
        self._informer = machinery.Informer(machinery.list_watch(api, CONTROLLER_INSTANCES))
        self._informer.add_handler(
            on_add=self._observed, on_update=lambda _old, new: self._observed(new)
        )
        self._informer.add_handler(on_delete=self._deleted)
        self._peers: dict[str, _Peer] = {}
        # Peers that left in good order but whose objects are still there.
        self._leftovers: set[str] = set()
        self._changed = trio.Event()
        self._renewed = trio.Event()
        self._renewals = 0
        self._renewed_at = -math.inf
        # What the object says now, as far as this instance's successful writes go.
        self._published: Obj = {
            "membership": "",
            "isLocked": True,
            "controllerKey": 0,
            "range": str(partition.HashRange.empty()),
        }
        self._held = partition.HashRange.empty()
        self._controller: partition.PartitionedController | None = None
        self._session: trio.CancelScope | None = None

    # What tests and status displays read

    @property
    def held(self) -> partition.HashRange:
        """The range the controller handles now."""
        return self._held

    def workload_num(self) -> int:
        """How many objects its controller holds now (0 while it has none running)."""
        return self._workload_num()

    @property
    def live(self) -> list[str]:
        """The live instances of the type as this one sees them, sorted."""
        return sorted({self.name, *self._peers})

    @property
    def target(self) -> partition.HashRange:
        """This instance's share of the live set it sees."""
        return ranges.share(self._peers, self.name)

    @property
    def settled(self) -> bool:
        """Handling its whole share, with every peer agreeing on the membership."""
        membership = ranges.fingerprint(self.live)
        return (
            self._held == self.target
            and self._published["membership"] == membership
            and not self._published["isLocked"]
            and self._peers_agree(membership)
        )

    # Observing peers

    def _observed(self, obj: Obj) -> None:
        name = str((obj.get("metadata") or {}).get("name") or "")
        if obj.get("controllerType") != self.controller_type or name == self.name or not name:
            return
        annotations = _annotations(obj)
        if annotations.get(STATE) == State.LEAVING:
            # It stopped its controller before saying so; its delete may have failed.
            if self._peers.pop(name, None) is not None:
                self._leftovers.add(name)
                self._changed.set()
            return
        version = str(obj["metadata"].get("resourceVersion") or "")
        peer = self._peers.get(name)
        if peer is not None and peer.resource_version == version:
            return
        self._peers[name] = _Peer(
            resource_version=version,
            seen_at=trio.current_time(),
            membership=annotations.get(MEMBERSHIP, ""),
            locked=bool(obj.get("isLocked", True)),
        )
        self._changed.set()

    def _deleted(self, obj: Obj) -> None:
        name = str((obj.get("metadata") or {}).get("name") or "")
        self._leftovers.discard(name)
        peer = self._peers.get(name)
        if peer is None:
            return
        if _annotations(obj).get(STATE) == State.LEAVING:
            # It stopped its controller before it went.
            del self._peers[name]
        else:
            # Gone without saying so (deleted by a peer, or by hand): it may still be
            # running until it fences itself, so it stays until it expires.
            peer.deleted = True
        self._changed.set()

    def _peers_agree(self, membership: str) -> bool:
        return all(p.membership == membership and not p.locked for p in self._peers.values())

    async def _reap(self) -> None:
        """Confirm peers silent for `expiry` dead, by deleting them conditionally."""
        for name in list(self._leftovers):
            self._leftovers.discard(name)
            with contextlib.suppress(errors.NotFound):
                await self._api.delete(CONTROLLER_INSTANCES, name)
        now = trio.current_time()
        for name, peer in list(self._peers.items()):
            if now - peer.seen_at < self._timing.expiry:
                continue
            if not peer.deleted:
                try:
                    await self._api.delete(
                        CONTROLLER_INSTANCES,
                        name,
                        preconditions={"resourceVersion": peer.resource_version},
                    )
                except errors.NotFound:
                    pass
                except errors.Conflict:
                    # It wrote since: alive after all (the watch is late to say so).
                    peer.seen_at = trio.current_time()
                    continue
            if self._peers.get(name) is peer:
                logger.info("%s: instance %s expired", self.name, name)
                del self._peers[name]
                self._changed.set()

    # Writing our own object

    def _body(self, fields: Obj) -> Obj:
        state = {**self._published, **fields}
        return {
            "apiVersion": "v1",
            "kind": "ControllerInstance",
            "metadata": {
                "name": self.name,
                "annotations": {
                    MEMBERSHIP: state["membership"],
                    HELD: state["range"],
                    RENEWALS: str(self._renewals),
                },
            },
            "controllerType": self.controller_type,
            "controllerKey": state["controllerKey"],
            "workloadNum": self._workload_num(),
            "isLocked": state["isLocked"],
        }

    def _workload_num(self) -> int:
        return self._controller.workload_num() if self._controller is not None else 0

    async def _write(self, **fields: Any) -> None:
        """Publish `fields` (and renew); creates the object again if it is gone."""
        sent = trio.current_time()
        self._renewals += 1
        body = self._body(fields)
        # Only what is asked for: a renewal racing a hand-over step must not write back
        # the membership the step is replacing.
        annotations = {RENEWALS: str(self._renewals)}
        for field, annotation in (("membership", MEMBERSHIP), ("range", HELD)):
            if field in fields:
                annotations[annotation] = str(fields[field])
        patch: Obj = {"metadata": {"annotations": annotations}, "workloadNum": body["workloadNum"]}
        for field in ("controllerKey", "isLocked"):
            if field in fields:
                patch[field] = body[field]
        try:
            await self._api.patch(CONTROLLER_INSTANCES, self.name, patch)
        except errors.NotFound:
            logger.warning("%s: its ControllerInstance is gone; registering again", self.name)
            try:
                await self._api.create(CONTROLLER_INSTANCES, body)
            except errors.AlreadyExists:
                await self._api.patch(CONTROLLER_INSTANCES, self.name, patch)
        self._published.update(fields)
        if sent > self._renewed_at:
            self._renewed_at = sent
        self._renewed.set()
        self._renewed = trio.Event()

    async def _register(self) -> None:
        """Create our object, waiting for an API server that cannot be reached yet."""
        while True:
            sent = trio.current_time()
            self._renewals += 1
            try:
                await self._api.create(CONTROLLER_INSTANCES, self._body({}))
            except client.Unreachable as exc:
                logger.warning("%s: cannot register yet: %s", self.name, exc)
                await trio.sleep(RETRY)
                continue
            self._renewed_at = sent
            logger.info("registered controller instance %s", self.name)
            return

    async def _renew_forever(self) -> None:
        while True:
            await trio.sleep(self._timing.renew_interval)
            try:
                await self._write()
            except (client.Unreachable, errors.StatusError) as exc:
                logger.warning("%s: renewal failed: %s", self.name, exc)

    async def _fence_forever(self) -> None:
        while True:
            deadline = self._renewed_at + self._timing.fence_after
            if trio.current_time() >= deadline:
                if self._session is not None and not self._session.cancel_called:
                    logger.warning(
                        "%s: not renewed for %.1f s; stopping its controller",
                        self.name,
                        self._timing.fence_after,
                    )
                    self._session.cancel()
                await self._renewed.wait()
            else:
                await trio.sleep_until(deadline)

    # Running

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Register, then hand ranges over forever; `started` once the controller runs."""
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._informer.run)
                await self._register()
                nursery.start_soon(self._renew_forever)
                nursery.start_soon(self._fence_forever)
                await self._sessions(task_status)
        finally:
            self._controller = None
            if self._timing.deregister_on_exit:
                with trio.CancelScope(shield=True), trio.move_on_after(self._timing.leave_timeout):
                    await self._leave()

    async def _leave(self) -> None:
        try:
            await self._api.patch(
                CONTROLLER_INSTANCES,
                self.name,
                {"metadata": {"annotations": {STATE: State.LEAVING.value}}},
            )
            # A peer may have cleared it away already.
            with contextlib.suppress(errors.NotFound):
                await self._api.delete(CONTROLLER_INSTANCES, self.name)
        except (client.Unreachable, errors.StatusError) as exc:
            logger.warning("%s: could not deregister: %s", self.name, exc)
        else:
            logger.info("deregistered controller instance %s", self.name)

    async def _sessions(self, task_status: trio.TaskStatus[None]) -> None:
        """Run the controller; after a fence, wait for a renewal and start afresh."""
        started = False
        while True:
            while trio.current_time() - self._renewed_at >= self._timing.fence_after:
                await self._renewed.wait()
            controller = self._factory()
            with trio.CancelScope() as session:
                self._session = session
                async with trio.open_nursery() as nursery:
                    await nursery.start(controller.run)
                    self._controller = controller
                    self._held = partition.HashRange.empty()
                    if not started:
                        started = True
                        task_status.started()
                    await self._coordinate(controller)
            self._session = None
            self._controller = None
            self._held = partition.HashRange.empty()
            logger.warning("%s: controller stopped (fenced); starting afresh", self.name)

    async def _coordinate(self, controller: partition.PartitionedController) -> None:
        while True:
            self._changed = trio.Event()
            try:
                acted = await self._step(controller)
            except (client.Unreachable, errors.StatusError) as exc:
                logger.warning("%s: hand-over step failed: %s", self.name, exc)
                await trio.sleep(RETRY)
                continue
            if not acted:
                await self._wait_for_change()

    async def _step(self, controller: partition.PartitionedController) -> bool:
        """One move towards the share of the current membership; False when none is due."""
        await self._reap()
        live = self.live
        membership = ranges.fingerprint(live)
        target = ranges.share(live, self.name)
        published = self._published
        if (
            published["membership"] != membership
            or published["isLocked"]
            or not ranges.within(self._held, target)
        ):
            kept = ranges.intersect(self._held, target)
            if kept != self._held:
                if published["membership"] != membership or not published["isLocked"]:
                    await self._write(
                        membership=membership, isLocked=True, controllerKey=target.high
                    )
                logger.info("%s: shrinking from %s to %s", self.name, self._held, kept)
                await controller.set_range(kept)
                self._held = kept
            await self._write(
                membership=membership,
                isLocked=False,
                controllerKey=target.high,
                range=str(self._held),
            )
            return True
        if self._held != target and self._peers_agree(membership):
            logger.info("%s: taking %s (%d live)", self.name, target, len(live))
            await controller.set_range(target)
            self._held = target
            await self._write(range=str(target))
            return True
        return False

    async def _wait_for_change(self) -> None:
        now = trio.current_time()
        deadline = now + self._timing.renew_interval
        for peer in self._peers.values():
            deadline = min(deadline, peer.seen_at + self._timing.expiry)
        with trio.move_on_at(max(deadline, now)):
            await self._changed.wait()
