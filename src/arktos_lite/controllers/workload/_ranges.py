"""How the hash space is split among the live instances of one controller type.

Arktos's rule: the instances, sorted by name, split [0, 2^63-1] evenly. Instance i of n
has the upper bound `controllerKey` k_i = ceil((2^63-1) * (i+1) / n) (the last one exactly
2^63-1); instance 0 covers [0, k_0] and instance i covers (k_(i-1), k_i]. For two
instances that is 4611686018427387904 and 9223372036854775807, for three
3074457345618258603, 6148914691236517205 and 9223372036854775807.

Guaranteed for any non-empty set of distinct names: the ranges cover [0, 2^63-1] exactly,
without overlap, in name order, and differ in size by at most two keys (the first
also holds key 0).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from arktos_lite.controllers.workload import _partition as partition


def controller_keys(count: int) -> list[int]:
    """The inclusive upper bounds of `count` even shares, in order."""
    if count < 1:
        raise ValueError(f"at least one instance is needed, not {count}")
    top = partition.MAX_HASH_KEY
    # Ceiling division: -(-a // b).
    return [-(-top * (i + 1) // count) for i in range(count)]


def split(names: Iterable[str]) -> dict[str, partition.HashRange]:
    """Each instance's share, by name."""
    ordered = sorted(set(names))
    if not ordered:
        return {}
    ranges: dict[str, partition.HashRange] = {}
    low = -1
    for name, high in zip(ordered, controller_keys(len(ordered)), strict=True):
        ranges[name] = partition.HashRange(low=low, high=high)
        low = high
    return ranges


def share(names: Iterable[str], name: str) -> partition.HashRange:
    """The share of `name` among `names` (it is counted in even if missing there)."""
    return split([*names, name])[name]


def intersect(a: partition.HashRange, b: partition.HashRange) -> partition.HashRange:
    """The keys in both; an empty range when there are none."""
    low, high = max(a.low, b.low), min(a.high, b.high)
    if high <= low:
        return partition.HashRange.empty()
    return partition.HashRange(low=low, high=high)


def within(inner: partition.HashRange, outer: partition.HashRange) -> bool:
    """Whether every key of `inner` is in `outer`."""
    return inner.is_empty or (outer.low <= inner.low and inner.high <= outer.high)


def fingerprint(names: Iterable[str]) -> str:
    """A short digest of a membership (the sorted, distinct names), equal for equal sets."""
    digest = hashlib.sha256("\n".join(sorted(set(names))).encode()).hexdigest()
    return digest[:16]


def owner_of(ranges: Mapping[str, partition.HashRange], hash_key: int) -> str | None:
    """The name whose range holds `hash_key`."""
    for name, keys in ranges.items():
        if hash_key in keys:
            return name
    return None
