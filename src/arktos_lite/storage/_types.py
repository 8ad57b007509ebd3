"""Frozen values the storage layer hands out: key-values, events, pages and leases.

They follow etcd's data model so that every backend can return them unchanged:
one global revision, per key a create revision, a mod revision and a version.
"""

from __future__ import annotations

import dataclasses
import enum


class EventType(enum.StrEnum):
    PUT = "PUT"
    DELETE = "DELETE"


@dataclasses.dataclass(frozen=True, slots=True)
class KeyValue:
    """One key at one revision.

    `mod_revision` is the revision of the write that produced this value; it is what
    compare-and-swap compares. `version` counts writes since the key was (re)created.
    """

    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """A committed change of one key.

    For PUT, `kv` is the new value and `prev_kv` the value it replaced (None on create).
    For DELETE, `kv` holds the key with an empty value and the delete's revision as
    `mod_revision`; `prev_kv` is the value that was deleted.
    """

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """One page of a list, read from a single snapshot at `revision`.

    Pass `revision` and `continue_key` back to `list` to read the next page from the
    same snapshot; `continue_key` is None on the last page.
    """

    items: tuple[KeyValue, ...]
    revision: int
    continue_key: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Deleted:
    """What a delete removed, and the revision of the delete."""

    revision: int
    prev_kv: KeyValue


@dataclasses.dataclass(frozen=True, slots=True)
class Lease:
    id: int
    ttl: int


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    """Tuning shared by every backend.

    History is compacted automatically, keeping at least `history_seconds` of it and
    at least `history_revisions` revisions. A watcher more than `watch_buffer` events
    behind is cut off with `WatchOverflow`.

    `exclusive` opens a store only if no other process has it open, and keeps every other
    opener out (`StoreInUse`) until it is closed: for offline work such as a migration. A
    SQLite file is always opened exclusively; an etcd store is shared by default (the API
    servers of one group open it together).
    """

    auto_compact: bool = True
    history_seconds: float = 300.0
    history_revisions: int = 1000
    compact_interval: float = 30.0
    watch_buffer: int = 10_000
    exclusive: bool = False


def prefix_end(prefix: str) -> str | None:
    """The smallest key greater than every key that starts with `prefix`.

    None means "no upper bound" (an empty prefix, or one made of U+10FFFF only).
    """
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            chars.append(chr(last + 1))
            return "".join(chars)
    return None
