"""In-process fan-out of committed events to watchers.

The writer publishes each committed batch once; every subscriber whose key range matches
gets the events in revision order. Publishing never blocks and never waits for a reader:
a subscriber more than `limit` events behind is cut off with `WatchOverflow` and its
buffer dropped, so memory per watcher stays bounded.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import trio

from arktos_lite.storage import _errors, _types


class Subscription:
    """One watcher's bounded queue of events under a key range."""

    def __init__(self, *, start: str, end: str | None, limit: int) -> None:
        self.start = start
        self.end = end
        self._limit = limit
        self._buffer: collections.deque[_types.Event] = collections.deque()
        self._error: _errors.StorageError | None = None
        self._wakeup = trio.Event()

    def matches(self, key: str) -> bool:
        return key >= self.start and (self.end is None or key < self.end)

    def _offer(self, events: Sequence[_types.Event]) -> None:
        if self._error is not None:
            return
        for event in events:
            if self.matches(event.kv.key):
                self._buffer.append(event)
        if len(self._buffer) > self._limit:
            revision = self._buffer[-1].revision
            self._buffer.clear()
            self._fail(_errors.WatchOverflow(revision=revision, limit=self._limit))
        elif self._buffer:
            self._wakeup.set()

    def _fail(self, error: _errors.StorageError) -> None:
        self._error = error
        self._wakeup.set()

    async def get(self) -> _types.Event:
        """The next event; raises the error that ended the subscription, if any."""
        while not self._buffer:
            if self._error is not None:
                raise self._error
            self._wakeup = trio.Event()
            await self._wakeup.wait()
        return self._buffer.popleft()


class Broadcaster:
    """Hands committed events to subscriptions; `revision` is the last one published."""

    def __init__(self, revision: int) -> None:
        self.revision = revision
        self._subscriptions: set[Subscription] = set()

    def subscribe(self, prefix: str, *, limit: int) -> Subscription:
        """A subscription that receives every event published after this call."""
        subscription = Subscription(start=prefix, end=_types.prefix_end(prefix), limit=limit)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def publish(self, events: Sequence[_types.Event]) -> None:
        if not events:
            return
        self.revision = events[-1].revision
        for subscription in self._subscriptions:
            subscription._offer(events)

    def close(self) -> None:
        """End every subscription with `StoreClosed`."""
        for subscription in self._subscriptions:
            subscription._fail(_errors.StoreClosed("the store was closed"))
        self._subscriptions.clear()
