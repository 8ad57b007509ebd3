"""The watch cache: every object of the store in memory, and each resource's recent changes.

One store watch over the whole key space keeps it current. Every revision is the change of
one key and every change passes through that watch, so the cache knows exactly which
revision it holds: a read first waits until the cache has reached the store's current
revision (a consistent read, as Kubernetes serves them from its watch cache), then answers
from memory. Objects are kept as the JSON a read sends, so a GET or a list encodes nothing.

Each `Hub` holds one resource: its objects in key order and a log of its recent changes
that every watcher of the resource reads from, so a change is decoded and encoded once
whatever the number of watchers, and writers never wait for a watcher. The log is bounded:
a watcher that falls more than `LOG_SIZE` changes behind is cut off (`TooSlow`) and resumes
from its last version, as clients do. A watcher from a version older than the log gets a
store watch of its own (which replays history, or fails with 410 once compacted). Waiting
watchers hold no timers: every `TICK` the cache wakes them if the earliest of their
deadlines has passed.

Selector semantics follow Kubernetes: an object that starts matching arrives as ADDED,
one that stops matching leaves as DELETED.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, NoReturn, Protocol

import trio

from arktos_lite import storage
from arktos_lite.api import _resources as resources
from arktos_lite.apiserver import _rest as rest

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

# Changes of one resource a watcher may lag behind before it is cut off.
LOG_SIZE = 2048
# Waiting watchers look at their deadlines (timeoutSeconds, bookmarks) this often: a timer
# of their own on every wait would cost each event more than sending it.
TICK = 0.25
# The newest changes of a hub keep their objects decoded (for watchers with selectors,
# which match on them); older ones decode again if a lagging watcher asks.
DECODED_KEPT = 64

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"


class TooSlow(Exception):
    """The watcher fell behind the log; it should resume from its last version."""


def line(kind: str, stored: rest.Stored) -> bytes:
    """The watch event `{"type": kind, "object": ...}` and its newline, as orjson writes it."""
    return b'{"type":"' + kind.encode() + b'","object":' + stored.json + b"}\n"


class Change:
    """A change of one object, shared by every watcher; decoded only if a selector asks."""

    __slots__ = (
        "_line",
        "_object",
        "_previous_object",
        "key",
        "previous",
        "revision",
        "stored",
        "type",
    )

    def __init__(
        self,
        type: str,
        stored: rest.Stored,
        previous: rest.Stored | None,
        *,
        decoded: Obj | None = None,
    ) -> None:
        self.type = type
        # After the change; for a delete, the last state at the delete's revision.
        self.stored = stored
        self.previous = previous
        self.key = stored.key
        self.revision = stored.revision
        # Decoded forms, shared by every watcher (and with the key's next change): read only.
        self._object: Obj | None = decoded
        self._previous_object: Obj | None = None
        self._line: bytes | None = None

    def forget_decoded(self) -> None:
        """Drop the decoded objects (they are decoded again if asked for)."""
        self._object = self._previous_object = None

    @property
    def line(self) -> bytes:
        """The event line of this change as it is, for watchers without selectors."""
        if self._line is None:
            self._line = line(self.type, self.stored)
        return self._line

    @property
    def object(self) -> Obj:
        if self._object is None:
            self._object = self.stored.object()
        return self._object

    @property
    def previous_object(self) -> Obj | None:
        if self._previous_object is None and self.previous is not None:
            self._previous_object = self.previous.object()
        return self._previous_object


def _change(event: storage.Event, previous: rest.Stored | None) -> Change:
    if event.type is storage.EventType.DELETE:
        assert event.prev_kv is not None
        last = dataclasses.replace(event.prev_kv, mod_revision=event.revision)
        stored, decoded = rest.Stored.decoded(last)
        return Change(DELETED, stored, previous, decoded=decoded)
    stored, decoded = rest.Stored.decoded(event.kv)
    kind = ADDED if event.prev_kv is None else MODIFIED
    return Change(kind, stored, previous, decoded=decoded)


def event_for(change: Change, matcher: rest.Matcher) -> tuple[str, rest.Stored] | None:
    """The event type and object a watcher with `matcher` sees, or None if none."""
    if matcher.everything:
        return change.type, change.stored
    deleted = change.type == DELETED
    now = not deleted and matcher.matches(change.object)
    previous = change.previous_object
    before = previous is not None and matcher.matches(previous)
    if deleted:
        return (DELETED, change.stored) if before else None
    if now and before:
        return MODIFIED, change.stored
    if now:
        return ADDED, change.stored
    if before:
        return DELETED, change.stored
    return None


class Feed(Protocol):
    async def next(self, until: float) -> Sequence[Change]:
        """The next changes under the watched prefix, in revision order; waits for one.

        Returns nothing once trio's clock passes `until` (give or take `TICK`) or the
        watches end. Raises `TooSlow` if the watcher fell behind and must resume.
        """
        ...


class Hub:
    """One resource's objects in key order and the log of its recent changes."""

    def __init__(self) -> None:
        self._objects: dict[str, rest.Stored] = {}
        self._keys: list[str] = []
        self._log: list[Change] = []
        # Key -> its latest change while that keeps its object decoded: the next change
        # of the key takes it as its previous object instead of decoding it again.
        self._latest: dict[str, Change] = {}
        # The position of `_log[0]` among every change since the last reset.
        self._first = 0
        # Every change after this revision is in the log or still to come.
        self._floor = 0
        self._changed = trio.Event()
        # Bumped by `reset`: subscriptions of an older generation are over.
        self._generation = 0
        # Bumped by every reset and change: whoever derives state from the hub compares it.
        self.version = 0
        # The watchers waiting for a change, and until when each waits: a tick wakes them
        # only once the earliest of these has passed (bookmarks, timeoutSeconds).
        self._waiting: dict[_Subscription, float] = {}

    def reset(self, items: Iterable[rest.Stored], revision: int) -> None:
        self._objects = {stored.key: stored for stored in items}
        self._keys = sorted(self._objects)
        self._log = []
        self._latest = {}
        self._first = 0
        self._floor = revision
        self._generation += 1
        self.version += 1
        self._wake()

    def apply(self, event: storage.Event) -> None:
        key = event.kv.key
        previous = self._objects.get(key)
        change = _change(event, previous)
        earlier = self._latest.get(key)
        if earlier is not None and earlier.stored is previous:
            change._previous_object = earlier._object
        if change.type == DELETED:
            if self._objects.pop(key, None) is not None:
                del self._keys[bisect.bisect_left(self._keys, key)]
            self._latest.pop(key, None)
        else:
            if previous is None:
                bisect.insort(self._keys, key)
            self._objects[key] = change.stored
            self._latest[key] = change
        log = self._log
        log.append(change)
        if len(log) > DECODED_KEPT:
            old = log[-DECODED_KEPT - 1]
            old.forget_decoded()
            if self._latest.get(old.key) is old:
                del self._latest[old.key]
        if len(log) >= 2 * LOG_SIZE:
            dropped = len(log) - LOG_SIZE
            self._floor = log[dropped - 1].revision
            del log[:dropped]
            self._first += dropped
        self.version += 1
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def tick(self) -> None:
        """Let the waiting watchers look at the time, if one of them has reached its deadline."""
        waiting = self._waiting
        if waiting and min(waiting.values()) <= trio.current_time():
            self._wake()

    def wake_all(self) -> None:
        """Let every waiting watcher look again (the watches are ending)."""
        if self._changed.statistics().tasks_waiting:
            self._wake()

    def get(self, key: str) -> rest.Stored | None:
        return self._objects.get(key)

    def list(self, prefix: str) -> list[rest.Stored]:
        keys = self._keys
        start = bisect.bisect_left(keys, prefix)
        end = storage.prefix_end(prefix)
        stop = len(keys) if end is None else bisect.bisect_left(keys, end, lo=start)
        objects = self._objects
        return [objects[key] for key in keys[start:stop]]

    def subscribe(self, cache: WatchCache, prefix: str, after: int) -> _Subscription | None:
        """A feed of every change under `prefix` after revision `after`; None if too old."""
        if after < self._floor:
            return None
        index = bisect.bisect_right(self._log, after, key=lambda change: change.revision)
        return _Subscription(cache, self, prefix, after, self._first + index)


class _Subscription:
    """A watcher's place in its hub's log."""

    def __init__(self, cache: WatchCache, hub: Hub, prefix: str, after: int, position: int) -> None:
        self._cache = cache
        self._hub = hub
        self._prefix = prefix
        # A watch from a future version starts there, not at the store's present.
        self._after = after
        self._position = position
        self._generation = hub._generation

    async def next(self, until: float) -> list[Change]:
        hub = self._hub
        while True:
            if self._generation != hub._generation or self._position < hub._first:
                raise TooSlow
            end = hub._first + len(hub._log)
            if self._position < end:
                changes = hub._log[self._position - hub._first :]
                self._position = end
                prefix, after = self._prefix, self._after
                mine = [c for c in changes if c.revision > after and c.key.startswith(prefix)]
                if mine:
                    return mine
            if self._cache.ended or trio.current_time() >= until:
                return []
            hub._waiting[self] = until
            try:
                await hub._changed.wait()
            finally:
                del hub._waiting[self]


class _StoreFeed:
    """Changes from a store watch of their own, for watchers older than the log."""

    def __init__(self, events: AsyncIterator[storage.Event]) -> None:
        self._events = events

    async def next(self, until: float) -> list[Change]:
        # Rare enough to afford a timer; returning every tick lets the watcher see `ended`.
        with trio.move_on_at(min(until, trio.current_time() + TICK)) as waiting:
            try:
                event = await anext(self._events)
            except storage.WatchOverflow:
                raise TooSlow from None
        if waiting.cancelled_caught:
            return []
        previous = None if event.prev_kv is None else rest.Stored.of(event.prev_kv)
        return [_change(event, previous)]


class WatchCache:
    """The `rest.Cache` of one API server: every resource's hub, fed by one store watch.

    Built-in resources have their hubs from the start; a custom resource's hub comes with
    its first object or watcher, whichever is first.
    """

    def __init__(self, backend: storage.Backend, registry: resources.Registry) -> None:
        self._backend = backend
        self._hubs = {_hub_name(resource.prefix()): Hub() for resource in registry}
        # The revision the cache holds, valid while `_live`.
        self.revision = 0
        self._live = False
        self._advanced = trio.Event()
        # Set once the server stops: every watch ends.
        self.ended = False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._tick)
            await self._follow(task_status)

    def end_watches(self) -> None:
        """End every watch, now and from now on: the server is stopping."""
        self.ended = True
        for hub in self._hubs.values():
            hub.wake_all()

    async def _tick(self) -> NoReturn:
        while True:
            await trio.sleep(TICK)
            for hub in self._hubs.values():
                hub.tick()

    async def _follow(self, task_status: trio.TaskStatus[None]) -> NoReturn:
        started = False
        while True:
            try:
                page = await self._backend.list("")
                self._load(page)
                async with self._backend.watch("", from_revision=page.revision + 1) as events:
                    self._live = True
                    if not started:
                        task_status.started()
                        started = True
                    async for event in events:
                        hub = self._hub_of(event.kv.key, create=True)
                        if hub is not None:
                            hub.apply(event)
                        self.revision = event.revision
                        self._advanced.set()
                        self._advanced = trio.Event()
            except (storage.WatchOverflow, storage.Compacted):
                logger.warning("the watch cache fell behind the store; reloading it")
            self._live = False
            # Readers waiting for it go to the store.
            self._advanced.set()
            self._advanced = trio.Event()
            await trio.lowlevel.checkpoint()

    def _load(self, page: storage.Page) -> None:
        items: dict[Hub, list[rest.Stored]] = {hub: [] for hub in self._hubs.values()}
        for kv in page.items:
            hub = self._hub_of(kv.key, create=True)
            if hub is not None:
                items.setdefault(hub, []).append(rest.Stored.of(kv))
        for hub, stored in items.items():
            hub.reset(stored, page.revision)
        self.revision = page.revision

    def _hub_of(self, key: str, *, create: bool = False) -> Hub | None:
        """The hub of a resource's key or prefix; None for keys of no resource.

        With `create`, a custom resource without a hub gets one: every change after the
        cache's revision goes to it.
        """
        name = _hub_name(key)
        if name is None:
            return None
        hub = self._hubs.get(name)
        if hub is None and create and "." in name:
            hub = self._hubs[name] = Hub()
            hub.reset((), self.revision)
        return hub

    # Reads (`rest.Cache`)

    async def current(self) -> int | None:
        if not self._live:
            return None
        target = await self._backend.current_revision()
        while self.revision < target:
            await self._advanced.wait()
            if not self._live:
                return None
        return self.revision

    def get(self, key: str) -> rest.Stored | None:
        hub = self._hub_of(key)
        return None if hub is None else hub.get(key)

    def list(self, prefix: str) -> list[rest.Stored]:
        hub = self._hub_of(prefix)
        return [] if hub is None else hub.list(prefix)

    def version(self, prefix: str) -> int:
        """Changes when anything under the resource `prefix` changes (or the cache reloads)."""
        hub = self._hub_of(prefix)
        return -1 if hub is None else hub.version

    # Watches

    @contextlib.asynccontextmanager
    async def watch(self, *, prefix: str, after: int) -> AsyncIterator[Feed]:
        """Every change under `prefix` after revision `after`.

        Raises `storage.Compacted` if `after` is no longer in the store's history.
        """
        hub = self._hub_of(prefix, create=True)
        if self._live and hub is not None:
            subscription = hub.subscribe(self, prefix, after)
            if subscription is not None:
                yield subscription
                return
        async with self._backend.watch(prefix, from_revision=after + 1) as events:
            yield _StoreFeed(events)


def _hub_name(key: str) -> str | None:
    """`pods` for `/registry/pods/...`, `example.com/widgets` for a custom resource's keys."""
    parts = key.split("/", 5)
    if len(parts) < 4 or parts[0] or parts[1] != "registry":
        return None
    if "." not in parts[2]:
        return parts[2]
    if len(parts) < 5 or not parts[3]:
        return None
    return f"{parts[2]}/{parts[3]}"
