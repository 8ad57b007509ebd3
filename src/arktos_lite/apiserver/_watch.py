"""The watch cache: one store watch per resource, fanned out to every HTTP watcher.

Each `Hub` follows one resource's key prefix in the store, decodes every event once and
keeps the most recent ones in a ring, so a watcher that resumes from a recent
resourceVersion is served from memory. A watcher from an older version gets a store
watch of its own (which replays history, or fails with 410 once compacted). A watcher
that falls too far behind is cut off and resumes from its last version, as clients do.

Selector semantics follow Kubernetes: an object that starts matching arrives as ADDED,
one that stops matching leaves as DELETED.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, NoReturn

import trio
import trio.lowlevel

from arktos_lite import storage
from arktos_lite.api import _resources as resources
from arktos_lite.apiserver import _rest as rest

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

RING_SIZE = 2048
SUBSCRIBER_BUFFER = 4096


class _Change:
    """A store event of one resource, decoded at most once, shared by every watcher."""

    __slots__ = ("_event", "_object", "_previous", "key", "revision")

    def __init__(self, event: storage.Event) -> None:
        self._event = event
        self.key = event.kv.key
        self.revision = event.revision
        self._object: Obj | None = None
        self._previous: Obj | None = None

    @property
    def kind(self) -> str:
        if self._event.type is storage.EventType.DELETE:
            return "DELETED"
        return "MODIFIED" if self._event.prev_kv is not None else "ADDED"

    @property
    def object(self) -> Obj:
        """The object after the change; for a delete, the last state at the delete's revision."""
        if self._object is None:
            event = self._event
            if event.type is storage.EventType.DELETE:
                assert event.prev_kv is not None
                self._object = rest.decode(event.prev_kv)
                self._object["metadata"]["resourceVersion"] = str(event.revision)
            else:
                self._object = rest.decode(event.kv)
        return self._object

    @property
    def previous(self) -> Obj | None:
        if self._previous is None and self._event.prev_kv is not None:
            self._previous = rest.decode(self._event.prev_kv)
        return self._previous


@dataclasses.dataclass(frozen=True, slots=True)
class WatchEvent:
    type: str
    object: Obj


class TooSlow(Exception):
    """The watcher fell behind its buffer; it should resume from its last version."""


class _Subscriber:
    def __init__(self, prefix: str, matcher: rest.Matcher, after: int) -> None:
        self.prefix = prefix
        self.matcher = matcher
        # A watch from a future version starts there, not at the store's present.
        self.after = after
        self.send, self.receive = trio.open_memory_channel[_Change](SUBSCRIBER_BUFFER)
        self.too_slow = False

    def offer(self, change: _Change) -> None:
        if self.too_slow or change.revision <= self.after or not change.key.startswith(self.prefix):
            return
        try:
            self.send.send_nowait(change)
        except trio.WouldBlock:
            self.too_slow = True
            self.send.close()


class Hub:
    """Follows one resource in the store and fans its events out."""

    def __init__(self, backend: storage.Backend, resource: resources.Resource) -> None:
        self._backend = backend
        self.resource = resource
        self._ring: collections.deque[_Change] = collections.deque(maxlen=RING_SIZE)
        # Every change of this resource after `floor` is in the ring or still to come.
        self.floor = math.inf
        self._subscribers: set[_Subscriber] = set()

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        started = False
        while True:
            start = await self._backend.current_revision()
            try:
                async with self._backend.watch(
                    self.resource.prefix(), from_revision=start + 1
                ) as events:
                    self._ring.clear()
                    self.floor = start
                    if not started:
                        task_status.started()
                        started = True
                    async for event in events:
                        self._publish(_Change(event))
            except storage.WatchOverflow:
                logger.warning(
                    "watch cache of %s fell behind; restarting it", self.resource.qualified
                )
            self.floor = math.inf
            for subscriber in self._subscribers:
                subscriber.too_slow = True
                subscriber.send.close()
            self._subscribers.clear()
            await trio.lowlevel.checkpoint()

    def _publish(self, change: _Change) -> None:
        if len(self._ring) == self._ring.maxlen:
            self.floor = self._ring[0].revision
        self._ring.append(change)
        for subscriber in self._subscribers:
            subscriber.offer(change)

    def subscribe(self, prefix: str, matcher: rest.Matcher, after: int) -> _Subscriber | None:
        """A subscriber to every change after revision `after`, or None if that is too old."""
        if after < self.floor:
            return None
        subscriber = _Subscriber(prefix, matcher, after)
        for change in self._ring:
            subscriber.offer(change)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: _Subscriber) -> None:
        self._subscribers.discard(subscriber)


class WatchCache:
    """A hub per resource, started with the API server."""

    def __init__(self, backend: storage.Backend, registry: resources.Registry) -> None:
        self._backend = backend
        self._hubs = {resource: Hub(backend, resource) for resource in registry}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for hub in self._hubs.values():
                await nursery.start(hub.run)
            task_status.started()

    @contextlib.asynccontextmanager
    async def watch(
        self,
        resource: resources.Resource,
        *,
        prefix: str,
        matcher: rest.Matcher,
        after: int,
    ) -> AsyncIterator[AsyncIterator[tuple[_Change, WatchEvent | None]]]:
        """Changes after revision `after` under `prefix`, each with the event to send.

        The event is None when the change does not concern this watcher (its selectors
        exclude the object before and after); callers still learn the revision.
        Raises `storage.Compacted` if `after` is no longer in the store's history.
        """
        hub = self._hubs[resource]
        subscriber = hub.subscribe(prefix, matcher, after)
        if subscriber is not None:
            try:
                async with contextlib.aclosing(
                    _translate(subscriber.receive, matcher, lambda: subscriber.too_slow)
                ) as translated:
                    yield translated
            finally:
                hub.unsubscribe(subscriber)
            return
        async with (
            self._backend.watch(prefix, from_revision=after + 1) as events,
            contextlib.aclosing(_changes(events)) as changes,
            contextlib.aclosing(_translate(changes, matcher, lambda: False)) as translated,
        ):
            yield translated


async def _changes(events: AsyncIterator[storage.Event]) -> AsyncGenerator[_Change, None]:
    try:
        async for event in events:
            yield _Change(event)
    except storage.WatchOverflow:
        raise TooSlow from None


async def _translate(
    changes: AsyncIterator[_Change], matcher: rest.Matcher, too_slow: Any
) -> AsyncGenerator[tuple[_Change, WatchEvent | None], None]:
    async for change in changes:
        yield change, _event_for(change, matcher)
    if too_slow():
        raise TooSlow


def _event_for(change: _Change, matcher: rest.Matcher) -> WatchEvent | None:
    kind = change.kind
    if matcher.everything:
        return WatchEvent(kind, change.object)
    now = kind != "DELETED" and matcher.matches(change.object)
    previous = change.previous
    before = previous is not None and matcher.matches(previous)
    if kind == "DELETED":
        return WatchEvent("DELETED", change.object) if before else None
    if now and before:
        return WatchEvent("MODIFIED", change.object)
    if now:
        return WatchEvent("ADDED", change.object)
    if before:
        return WatchEvent("DELETED", change.object)
    return None
