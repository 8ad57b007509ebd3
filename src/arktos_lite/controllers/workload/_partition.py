"""The seam between the instance framework and the controllers it partitions.

Arktos splits the hash space [0, 2^63-1] of `metadata.hashKey` among the live instances of
one controller type. A `HashRange` is one instance's share, half open at the bottom as
Arktos's `controllerKey`s are: instance 0 owns [0, k0], instance i owns (k(i-1), ki].

A `PartitionedController` is what the framework drives. It guarantees:

* Once `run` reports `started`, it handles exactly the objects whose own hash key (for
  the object kind it controls) lies in its current range, and no other.
* `set_range(new)` returns only when (a) no worker is busy with, and no worker will ever
  again pick up, a key outside `new` (in-flight work on such keys has finished), and
  (b) its informers have re-listed with the selectors of `new` and its workers handle
  every key of `new`. A controller may be given a range it had before, or the same one:
  that is cheap.
* `workload_num` is the number of objects of its kind it currently holds (reported to
  the cluster as the instance's `workloadNum`).

Controllers are built by type from the registry `_manager.CONTROLLERS` (keyed by the
lower-case type of the Arktos config, e.g. "deployment"; each entry a `Registration` of the
`ControllerInstance` type and a `ControllerFactory`): `factory(api,
options=ControllerOptions(...))`, again after each fence, so a controller object runs once.
They start on the empty range and get their first range with `set_range` once the
instance has registered. `_gate.RangeInformers` keeps the `set_range` promise for a
controller's range-filtered informers; `orphan_selector` finds objects to adopt.

The framework (`_instance`) calls `set_range` so that no key is ever in two instances'
handled sets at once; the controller only has to keep its promise about its own set.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import trio

from arktos_lite import client
from arktos_lite.api import selectors

MAX_HASH_KEY = 2**63 - 1
"""The largest hash key; the whole space is [0, MAX_HASH_KEY]."""


@dataclasses.dataclass(frozen=True, slots=True)
class HashRange:
    """Hash keys in (low, high]; `low == -1` means from 0 inclusive.

    `HashRange.EMPTY`-like ranges (high <= low) contain nothing.
    """

    low: int
    high: int

    @classmethod
    def whole(cls) -> HashRange:
        """The whole hash space, [0, 2^63-1]."""
        return cls(low=-1, high=MAX_HASH_KEY)

    @classmethod
    def empty(cls) -> HashRange:
        """No hash key at all (an instance that has not been given a range yet)."""
        return cls(low=-1, high=-1)

    @property
    def is_empty(self) -> bool:
        return self.high <= self.low

    def __contains__(self, hash_key: object) -> bool:
        return isinstance(hash_key, int) and self.low < hash_key <= self.high

    def field_selector(self) -> str:
        """The selector of objects whose own hash key is in range."""
        return self._selector(selectors.HASHKEY_FIELD)

    def owner_selector(self, kind: str) -> str:
        """The selector of objects with an owner of `kind` whose hash key is in range.

        An object with an owner of that kind in range and another one out of range also
        matches; controllers only act on their controller reference.
        """
        return self._selector(selectors.OWNER_HASHKEY_PREFIX + kind)

    def _selector(self, field: str) -> str:
        if self.is_empty:
            # Selects nothing: no hash key is negative.
            return f"{field}=lt:0"
        return f"{field}=gt:{self.low},{field}=lte:{self.high}"

    def __str__(self) -> str:
        if self.is_empty:
            return "(empty)"
        if self.low < 0:
            return f"[0, {self.high}]"
        return f"({self.low}, {self.high}]"


def orphan_selector(kind: str) -> str:
    """The selector of objects with no owner of `kind` at all (candidates for adoption).

    Orphans have no owner hash, so every instance watches all of them; adoption must be
    conditional (on the object's resourceVersion) so that only one instance wins.
    """
    return f"{selectors.OWNER_HASHKEY_PREFIX}{kind}="


class PartitionedController(Protocol):
    """A controller whose work is split by hash range. See the module docs."""

    @property
    def controller_type(self) -> str:
        """The kind it controls, as in `ControllerInstance.controllerType`: "ReplicaSet"."""
        ...

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled, starting on an empty range (handles nothing) unless told
        otherwise at construction; `started` once informers have synced and workers run."""
        ...

    async def set_range(self, new: HashRange) -> None:
        """Handle exactly the keys of `new` from now on; returns once that holds."""
        ...

    def workload_num(self) -> int:
        """How many objects of its kind it holds now."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class ControllerOptions:
    """How a partitioned controller runs, from the manager's config."""

    workers: int = 5
    """Concurrent workers (Arktos config `controllers[].workers`)."""
    resync_period: float = 0.0
    """Seconds between full resyncs of every key in range; 0 for none."""


class ControllerFactory(Protocol):
    """Builds a controller; registered by type in `_manager.CONTROLLERS`."""

    def __call__(
        self, api: client.Client, /, *, options: ControllerOptions
    ) -> PartitionedController: ...
