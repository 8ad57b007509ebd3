"""What a partitioned controller needs to keep the `PartitionedController` promise.

* `RangeGate`: the range a controller's workers may act on now. A worker holds a key's
  hash while it works (`with gate.hold(hash_key) as mine:`); `narrow` takes keys away
  and returns only once no worker holds one of them any more, so that after it no key
  outside the range is being worked on or will be.
* `RangeInformer`: an informer whose selector follows the range; `select` changes the
  selector and returns only once the informer has listed again with it, so that its
  cache then holds every object of the new range as of a moment after the call.
* `RangeInformers`: the gate and a controller's range informers together. Its
  `set_range(new)` first narrows the gate to the keys in both the old and the new range
  (and waits for work on the others), then re-lists every informer on `new`, and only
  when all of them have listed widens the gate to `new`. A controller therefore never
  acts on a newly gained key with a cache that lacks that key's objects, e.g. a
  ReplicaSet listed before its pods, which would make it create them twice.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Mapping

import trio

from arktos_lite import client, machinery
from arktos_lite.api import resources
from arktos_lite.controllers.workload import _partition as partition, _ranges as ranges

Selector = Callable[[partition.HashRange], str]
"""The field selector of an informer for one range."""


class RangeGate:
    """The keys workers may act on now, and who is acting on which. See the module docs."""

    def __init__(self) -> None:
        self._active = partition.HashRange.empty()
        self._held: dict[int, int] = {}
        self._tokens = itertools.count()
        self._released = trio.Event()

    @property
    def active(self) -> partition.HashRange:
        return self._active

    def __contains__(self, hash_key: object) -> bool:
        return hash_key in self._active

    @contextlib.contextmanager
    def hold(self, hash_key: int) -> Iterator[bool]:
        """Whether `hash_key` is active; if so it counts as being worked on until exit."""
        if hash_key not in self._active:
            yield False
            return
        token = next(self._tokens)
        self._held[token] = hash_key
        try:
            yield True
        finally:
            del self._held[token]
            self._released.set()

    async def narrow(self, new: partition.HashRange) -> None:
        """Keep only the active keys also in `new`; return once none other is held."""
        self._active = ranges.intersect(self._active, new)
        while any(key not in self._active for key in self._held.values()):
            self._released = trio.Event()
            await self._released.wait()

    def widen(self, new: partition.HashRange) -> None:
        """Make `new` active (the caller has made sure its caches hold it)."""
        self._active = new


class RangeInformer(machinery.Informer):
    """An informer that can say when it has listed again after a selector change."""

    def __init__(
        self,
        lw: machinery.ListerWatcher,
        *,
        indexers: Mapping[str, machinery.IndexFunc] | None = None,
        transform: machinery.Transform | None = machinery.strip_managed_fields,
    ) -> None:
        super().__init__(lw, indexers=indexers, transform=transform)
        self._listed_with: machinery.Selectors | None = None
        self._listed = trio.Event()

    def listed(self) -> None:
        # Called once every partition's list in the cache was made with the selectors in
        # force now.
        self._listed_with = self.selectors
        self._listed.set()
        self._listed = trio.Event()

    async def select(self, field_selector: str) -> None:
        """Follow `field_selector`; return once a list made with it is in the cache."""
        self.set_field_selector(field_selector)
        while self._listed_with != self.selectors:
            await self._listed.wait()


class RangeInformers:
    """A controller's gate and range-filtered informers. See the module docs."""

    def __init__(self, api: client.Client) -> None:
        self._api = api
        self.gate = RangeGate()
        self._informers: list[tuple[RangeInformer, Selector]] = []
        self._lock = trio.Lock()

    def informer(
        self,
        resource: resources.Resource,
        *,
        selector: Selector,
        indexers: Mapping[str, machinery.IndexFunc] | None = None,
    ) -> RangeInformer:
        """An informer over every tenant, on the empty range until `set_range`."""
        lw = machinery.list_watch(
            self._api, resource, field_selector=selector(partition.HashRange.empty())
        )
        informer = RangeInformer(lw, indexers=indexers)
        self._informers.append((informer, selector))
        return informer

    @property
    def informers(self) -> list[RangeInformer]:
        return [informer for informer, _ in self._informers]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run every informer; `started` once each has listed."""
        async with trio.open_nursery() as nursery:
            for informer, _ in self._informers:
                await nursery.start(informer.run)
            task_status.started()

    async def set_range(self, new: partition.HashRange) -> None:
        """Narrow, re-list, widen; see the module docs. Calls are taken one at a time."""
        async with self._lock:
            await self.gate.narrow(new)
            async with trio.open_nursery() as nursery:
                for informer, selector in self._informers:
                    nursery.start_soon(informer.select, selector(new))
            self.gate.widen(new)
