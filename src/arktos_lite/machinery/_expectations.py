"""Expectations: what a controller has asked for and not yet seen in its informer cache.

A controller that creates or deletes objects for a key records how many creations (and
which deletions, by uid) it expects; its informer handlers report what they observe. Until
the expectations are fulfilled the controller does not act on that key again, so a cache
that lags behind the API never makes it create or delete twice.

Guarantees, as client-go's UIDTrackingControllerExpectations gives them: `satisfied(key)`
is true when nothing is expected for the key, when every expected creation and deletion
has been observed, or when the expectations are older than `ttl` (5 minutes of trio time),
so that a lost watch event cannot stall a controller forever.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

import trio

K = TypeVar("K", bound=Hashable)

EXPECTATIONS_TTL = 300.0


@dataclasses.dataclass(slots=True)
class _Record:
    creations: int
    deletions: int
    uids: set[str]
    since: float

    @property
    def fulfilled(self) -> bool:
        return self.creations <= 0 and self.deletions <= 0


class Expectations(Generic[K]):
    """Expected creations and deletions per controller key. Uses trio's clock."""

    def __init__(self, *, ttl: float = EXPECTATIONS_TTL) -> None:
        self._ttl = ttl
        self._records: dict[K, _Record] = {}

    def expect_creations(self, key: K, count: int) -> None:
        """Expect `count` creations for `key`, replacing whatever was expected before."""
        self._records[key] = _Record(count, 0, set(), trio.current_time())

    def expect_deletions(self, key: K, uids: Iterable[str]) -> None:
        """Expect the objects with these uids to be deleted, replacing earlier expectations."""
        tracked = set(uids)
        self._records[key] = _Record(0, len(tracked), tracked, trio.current_time())

    def creation_observed(self, key: K) -> None:
        record = self._records.get(key)
        if record is not None:
            record.creations -= 1

    def deletion_observed(self, key: K, uid: str) -> None:
        """One deletion seen; only uids that were expected count."""
        record = self._records.get(key)
        if record is not None and uid in record.uids:
            record.uids.discard(uid)
            record.deletions -= 1

    def lower_expectations(self, key: K, *, creations: int = 0, deletions: int = 0) -> None:
        """Expect fewer, e.g. when a create failed and will never be observed."""
        record = self._records.get(key)
        if record is not None:
            record.creations -= creations
            record.deletions -= deletions

    def satisfied(self, key: K) -> bool:
        record = self._records.get(key)
        if record is None or record.fulfilled:
            return True
        return trio.current_time() - record.since > self._ttl

    def pending(self, key: K) -> tuple[int, int]:
        """Creations and deletions still expected for `key` (zeros when none)."""
        record = self._records.get(key)
        if record is None:
            return (0, 0)
        return (max(record.creations, 0), max(record.deletions, 0))

    def delete(self, key: K) -> None:
        """Forget `key`, e.g. when its controller object is gone."""
        self._records.pop(key, None)
