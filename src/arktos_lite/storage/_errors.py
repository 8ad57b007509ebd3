"""Typed errors of the storage layer.

Callers branch on the class, never on the message. The API server maps each class to an
HTTP status in exactly one place.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error the storage layer raises on purpose."""


class KeyExists(StorageError):
    """A create found the key already present."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} already exists")
        self.key = key


class NotFound(StorageError):
    """The key is absent (at the requested revision)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} not found")
        self.key = key


class Conflict(StorageError):
    """A compare-and-swap saw another mod revision than the caller expected."""

    def __init__(self, key: str, *, expected: int, actual: int) -> None:
        super().__init__(f"key {key!r} is at revision {actual}, not the expected {expected}")
        self.key = key
        self.expected = expected
        self.actual = actual


class Compacted(StorageError):
    """The requested revision is older than the oldest revision kept."""

    def __init__(self, *, requested: int, compact_revision: int) -> None:
        super().__init__(
            f"revision {requested} has been compacted (oldest kept: {compact_revision})"
        )
        self.requested = requested
        self.compact_revision = compact_revision


class FutureRevision(StorageError):
    """The requested revision is newer than the store's current revision."""

    def __init__(self, *, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is in the future (current: {current})")
        self.requested = requested
        self.current = current


class LeaseNotFound(StorageError):
    """The lease does not exist: never granted, revoked or expired."""

    def __init__(self, lease_id: int) -> None:
        super().__init__(f"lease {lease_id} not found")
        self.lease_id = lease_id


class WatchOverflow(StorageError):
    """A watcher fell too far behind and was cut off; it must re-list."""

    def __init__(self, *, revision: int, limit: int) -> None:
        super().__init__(f"watcher fell more than {limit} events behind at revision {revision}")
        self.revision = revision
        self.limit = limit


class Unavailable(StorageError):
    """The store's server did not answer (every etcd member tried), or went away during a
    write whose outcome is therefore unknown."""


class StoreClosed(StorageError):
    """The store was closed while the operation was pending."""


class StoreInUse(StorageError):
    """Another process has the store open (or, for a shared store, open exclusively)."""

    def __init__(self, path: str, *, detail: str = "") -> None:
        super().__init__(detail or f"the store {path} is open in another process")
        self.path = path


class UnknownBackend(StorageError):
    """No backend is registered for the URL's scheme."""

    def __init__(self, url: str, known: list[str]) -> None:
        super().__init__(
            f"no storage backend for {url!r}; known schemes: {', '.join(sorted(known))}"
        )
        self.url = url
