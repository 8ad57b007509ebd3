"""The `Backend` protocol: what every store (SQLite, etcd) offers the API server.

Guarantees every backend keeps:
* one global revision, strictly increasing, returned by every write;
* create fails with `KeyExists` if the key is present; update and delete compare the
  key's mod revision when asked to and fail alone with `Conflict`;
* a write is acknowledged only once it is durable;
* `list` pages read one snapshot; `watch` delivers every change after `from_revision`
  in revision order, with the previous value, or raises `Compacted`/`WatchOverflow`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

from arktos_lite.storage import _types


class Backend(Protocol):
    async def create(self, key: str, value: bytes, *, lease: int = 0) -> _types.KeyValue:
        """Store `value` under a new `key`; raise `KeyExists` if it is present."""
        ...

    async def update(
        self,
        key: str,
        value: bytes,
        *,
        expected_revision: int | None = None,
        lease: int = 0,
    ) -> _types.KeyValue:
        """Replace the value of an existing key.

        With `expected_revision`, only if the key's mod revision is that one (`Conflict`
        otherwise). Raise `NotFound` if the key is absent.
        """
        ...

    async def delete(self, key: str, *, expected_revision: int | None = None) -> _types.Deleted:
        """Remove a key, optionally only at `expected_revision`."""
        ...

    async def get(self, key: str, *, revision: int | None = None) -> _types.KeyValue:
        """The key's value now, or as it was at `revision`; `NotFound` if absent."""
        ...

    async def list(
        self,
        prefix: str,
        *,
        revision: int | None = None,
        limit: int = 0,
        continue_key: str | None = None,
    ) -> _types.Page:
        """Keys under `prefix` in key order, at most `limit` (0 = all) from one snapshot."""
        ...

    def watch(
        self, prefix: str, *, from_revision: int | None = None
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[_types.Event]]:
        """Changes of keys under `prefix` with revision >= `from_revision`.

        Without `from_revision`, only changes committed after the watch started.
        """
        ...

    async def compact(self, revision: int) -> None:
        """Forget history before `revision`; reads and watches below it raise `Compacted`."""
        ...

    async def current_revision(self) -> int: ...

    async def compact_revision(self) -> int: ...

    async def grant(self, ttl: int) -> _types.Lease:
        """A new lease that expires `ttl` seconds from now unless kept alive."""
        ...

    async def keepalive(self, lease_id: int) -> int:
        """Restart the lease's countdown; return its TTL. `LeaseNotFound` if gone."""
        ...

    async def revoke(self, lease_id: int) -> None:
        """End the lease now and delete every key attached to it."""
        ...
