"""The scheduling queue: pods waiting for a node, in fair order, with backoff.

Three parts, as in kube-scheduler: an *active* queue of pods ready to be tried, a
*backoff* queue of pods waiting out a delay after a failed attempt, and an
*unschedulable* set of pods that fit nowhere and wait for the cluster to change.
Guarantees:

* Fair across tenants: the active queue takes the tenants that have pods waiting in
  turn (round-robin), one pod per turn, so a tenant with ten thousand pending pods delays
  another tenant's pod by at most one pod per waiting tenant. Within a tenant, pods go by
  priority (`spec.priority`, higher first) and then by age. Priority does not reach across
  tenants, since every tenant sets its own pods' priorities.
* A pod is held once: in the active queue, the backoff queue, the unschedulable set, or
  in flight (popped and not yet `done`). Adding it again updates what is held.
* Backoff is `initial * 2**(attempts - 1)`, capped at `maximum`, counted from the last
  failure on trio's clock.
* `move_all` (a node added or changed, a pod deleted, a binding undone) moves every
  unschedulable pod back: to the active queue, or to the backoff queue while its backoff
  runs. A pod that fails in a cycle that began before such a move goes to the backoff
  queue rather than the unschedulable set, so no cluster change is ever missed.
* An unschedulable pod is retried after `max_unschedulable_duration` even if nothing
  seems to have changed.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import heapq
import itertools
import math

import trio
import trio.lowlevel

from arktos_lite.scheduler import _pods as pods


@dataclasses.dataclass(slots=True, eq=False)
class QueuedPod:
    """A pod in the queue; `attempts` counts scheduling attempts so far."""

    pod: pods.PodInfo
    seq: int
    attempts: int = 0
    # When it last failed (or was added), on trio's clock.
    timestamp: float = 0.0
    # Changed (or deleted) while in flight: try it again instead of parking it.
    updated_in_flight: bool = False
    # The plugins that rejected it last time; only events they care about move it.
    unschedulable_plugins: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        return self.pod.key


class Where(enum.StrEnum):
    ACTIVE = "active"
    BACKOFF = "backoff"
    UNSCHEDULABLE = "unschedulable"
    IN_FLIGHT = "in-flight"


class SchedulingQueue:
    """See the module docs."""

    def __init__(
        self,
        *,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        max_unschedulable_duration: float = 300.0,
    ) -> None:
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._max_unschedulable = max_unschedulable_duration
        self._seq = itertools.count()
        # Every pod held, and where.
        self._held: dict[str, tuple[Where, QueuedPod]] = {}
        # Active: a heap per tenant of (-priority, seq, key), and the ring of tenants.
        self._active: dict[str, list[tuple[int, int, str]]] = {}
        self._ring: collections.deque[str] = collections.deque()
        self._active_count = 0
        # Backoff: a heap of (due, seq, key); entries not matching `_held` are stale.
        self._backoff: list[tuple[float, int, str]] = []
        # Unschedulable: by key, and a heap of (due for a periodic retry, seq, key).
        self._unschedulable: dict[str, QueuedPod] = {}
        self._unschedulable_due: list[tuple[float, int, str]] = []
        self._scheduling_cycle = 0
        self._move_request_cycle = -1
        self._waiters = trio.lowlevel.ParkingLot()

    # Sizes, for tests and metrics.

    def __len__(self) -> int:
        return len(self._held)

    def where(self, key: str) -> Where | None:
        held = self._held.get(key)
        return held[0] if held is not None else None

    @property
    def active_count(self) -> int:
        return self._active_count

    @property
    def unschedulable_count(self) -> int:
        return len(self._unschedulable)

    @property
    def scheduling_cycle(self) -> int:
        return self._scheduling_cycle

    # Adding and removing

    def add(self, pod: pods.PodInfo) -> None:
        """A pending pod appeared or changed."""
        held = self._held.get(pod.key)
        if held is None:
            queued = QueuedPod(pod, next(self._seq), timestamp=trio.current_time())
            self._to_active(queued)
            return
        where, queued = held
        queued.pod = pod
        if where == Where.IN_FLIGHT:
            queued.updated_in_flight = True
        elif where == Where.UNSCHEDULABLE:
            # A changed pod may fit now: try it again (after its backoff).
            del self._unschedulable[pod.key]
            self._requeue(queued)
        elif where == Where.ACTIVE:
            self._push_active(queued)

    def delete(self, key: str) -> None:
        """The pod is gone, bound, or no longer ours."""
        held = self._held.pop(key, None)
        if held is None:
            return
        where, _ = held
        if where == Where.ACTIVE:
            self._active_count -= 1
        elif where == Where.UNSCHEDULABLE:
            del self._unschedulable[key]
        # Heap entries of a deleted pod go stale and are skipped.

    # Popping

    async def pop(self) -> QueuedPod:
        """The next pod to schedule; it is in flight until `done` or a requeue."""
        await trio.lowlevel.checkpoint()
        while True:
            queued = self.pop_nowait()
            if queued is not None:
                return queued
            with trio.move_on_at(self._next_due()):
                await self._waiters.park()

    def pop_nowait(self) -> QueuedPod | None:
        self._promote()
        while self._ring:
            tenant = self._ring.popleft()
            heap = self._active.get(tenant)
            while heap:
                _, seq, key = heapq.heappop(heap)
                held = self._held.get(key)
                if held is None or held[0] != Where.ACTIVE or held[1].seq != seq:
                    continue
                queued = held[1]
                self._active_count -= 1
                self._held[key] = (Where.IN_FLIGHT, queued)
                queued.attempts += 1
                queued.updated_in_flight = False
                self._scheduling_cycle += 1
                if heap:
                    self._ring.append(tenant)
                else:
                    del self._active[tenant]
                return queued
            self._active.pop(tenant, None)
        return None

    def done(self, key: str) -> None:
        """The pod's cycle ended well (it is assumed): stop holding it."""
        held = self._held.get(key)
        if held is not None and held[0] == Where.IN_FLIGHT:
            del self._held[key]

    # Failures

    def add_unschedulable(
        self, queued: QueuedPod, *, cycle: int, plugins: frozenset[str] = frozenset()
    ) -> None:
        """The pod fits nowhere, as decided in scheduling cycle `cycle` by `plugins`."""
        if not self._holds_in_flight(queued):
            return
        queued.timestamp = trio.current_time()
        queued.unschedulable_plugins = plugins
        if self._move_request_cycle >= cycle or queued.updated_in_flight:
            # The cluster (or the pod) changed while it was being tried: try again.
            self._to_backoff(queued)
            return
        self._held[queued.key] = (Where.UNSCHEDULABLE, queued)
        self._unschedulable[queued.key] = queued
        heapq.heappush(
            self._unschedulable_due,
            (queued.timestamp + self._max_unschedulable, queued.seq, queued.key),
        )
        self._waiters.unpark_all()

    def add_backoff(self, queued: QueuedPod) -> None:
        """The attempt failed for another reason (an error, a failed binding)."""
        if queued.key in self._held and not self._holds_in_flight(queued):
            return
        queued.timestamp = trio.current_time()
        self._to_backoff(queued)

    def _holds_in_flight(self, queued: QueuedPod) -> bool:
        held = self._held.get(queued.key)
        return held is not None and held[0] == Where.IN_FLIGHT and held[1] is queued

    def move_all(self, plugins: frozenset[str] | None = None) -> None:
        """The cluster changed so that unschedulable pods may fit now.

        With `plugins`, only pods rejected by one of them (or by none in particular) move:
        a change those plugins do not look at cannot make the others fit.
        """
        self._move_request_cycle = self._scheduling_cycle
        if not self._unschedulable:
            return
        if plugins is None:
            parked = list(self._unschedulable.values())
            self._unschedulable.clear()
            self._unschedulable_due.clear()
        else:
            parked = [
                queued
                for queued in self._unschedulable.values()
                if not queued.unschedulable_plugins or queued.unschedulable_plugins & plugins
            ]
            for queued in parked:
                del self._unschedulable[queued.key]
        for queued in parked:
            self._requeue(queued)

    def update(self, pod: pods.PodInfo) -> bool:
        """A held pod changed in ways that cannot make it fit: keep it where it is, with
        its new version. Whether the pod is held."""
        held = self._held.get(pod.key)
        if held is None:
            return False
        held[1].pod = pod
        return True

    def backoff_duration(self, queued: QueuedPod) -> float:
        exponent = max(queued.attempts - 1, 0)
        if exponent > 32:
            return self._max_backoff
        return min(self._initial_backoff * 2.0**exponent, self._max_backoff)

    # Plumbing

    def _requeue(self, queued: QueuedPod) -> None:
        if trio.current_time() < queued.timestamp + self.backoff_duration(queued):
            self._to_backoff(queued)
        else:
            self._to_active(queued)

    def _to_active(self, queued: QueuedPod) -> None:
        queued.seq = next(self._seq)
        self._held[queued.key] = (Where.ACTIVE, queued)
        self._active_count += 1
        self._push_active(queued)

    def _push_active(self, queued: QueuedPod) -> None:
        # A pod whose priority changes gets a fresh entry; the old one goes stale.
        queued.seq = next(self._seq)
        tenant = queued.pod.tenant
        heap = self._active.get(tenant)
        if heap is None:
            heap = self._active[tenant] = []
            self._ring.append(tenant)
        heapq.heappush(heap, (-queued.pod.priority, queued.seq, queued.key))
        self._waiters.unpark()

    def _to_backoff(self, queued: QueuedPod) -> None:
        queued.seq = next(self._seq)
        self._held[queued.key] = (Where.BACKOFF, queued)
        due = queued.timestamp + self.backoff_duration(queued)
        heapq.heappush(self._backoff, (due, queued.seq, queued.key))
        # A waiting pop sleeps until the earliest due time; this one may be earlier.
        self._waiters.unpark_all()

    def _promote(self) -> None:
        now = trio.current_time()
        backoff = self._backoff
        while backoff and backoff[0][0] <= now:
            _, seq, key = heapq.heappop(backoff)
            held = self._held.get(key)
            if held is not None and held[0] == Where.BACKOFF and held[1].seq == seq:
                self._to_active(held[1])
        due = self._unschedulable_due
        while due and due[0][0] <= now:
            _, seq, key = heapq.heappop(due)
            queued = self._unschedulable.get(key)
            if queued is not None and queued.seq == seq:
                del self._unschedulable[key]
                self._requeue(queued)

    def _next_due(self) -> float:
        earliest = math.inf
        for heap, current in ((self._backoff, Where.BACKOFF), (self._unschedulable_due, None)):
            while heap:
                _, seq, key = heap[0]
                held = self._held.get(key)
                live = held is not None and held[1].seq == seq
                if live and (current is None or (held is not None and held[0] == current)):
                    earliest = min(earliest, heap[0][0])
                    break
                heapq.heappop(heap)
        return earliest
