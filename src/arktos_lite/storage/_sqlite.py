"""The SQLite backend: the trio side of `_sqlite_db`.

* Writes queue up while the previous transaction commits, and the writer task commits
  everything queued in one transaction (group commit). A write is acknowledged only after
  its transaction committed with `synchronous=FULL`, so acknowledged writes survive a
  crash; events are published before the acknowledgements go out.
* Reads run in worker threads on their own connections (WAL snapshots), bounded by a
  limiter; an in-memory store has one connection, shared with the writer in turn.
* Background tasks compact history (keeping `Options.history_seconds` and
  `Options.history_revisions` of it) and expire leases.
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import logging
import math
import pathlib
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import NoReturn, Self, TypeVar

import sqlalchemy as sa
import trio

from arktos_lite.storage import _broadcast, _errors, _sqlite_db, _types

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

_MAX_BATCH = 1000
# Revisions a watch reads from history per query while catching up.
_HISTORY_CHUNK = 1000
_READERS = 8
_LEASE_TICK = 0.5


class _Pending:
    __slots__ = ("done", "op", "outcome")

    def __init__(self, op: _sqlite_db.Op) -> None:
        self.op = op
        self.outcome: _sqlite_db.Outcome | None = None
        self.done = trio.Event()


class SqliteStore:
    """A `Backend` on one SQLite database. Open it with `open_sqlite`."""

    def __init__(
        self, db: _sqlite_db.Database, state: _sqlite_db.State, options: _types.Options
    ) -> None:
        self._db = db
        self._options = options
        self._broadcaster = _broadcast.Broadcaster(state.revision)
        self._compact_revision = state.compact_revision
        self._write_limiter = trio.CapacityLimiter(1)
        self._read_limiter = self._write_limiter if db.in_memory else trio.CapacityLimiter(_READERS)
        self._queue_in, self._queue_out = trio.open_memory_channel[_Pending](math.inf)
        # Lease id -> (ttl, deadline on trio's clock). Restored leases get a full TTL.
        now = trio.current_time()
        self._leases = {lease_id: (ttl, now + ttl) for lease_id, ttl in state.leases.items()}
        self._closed = False

    # Writes

    def _check_open(self) -> None:
        if self._closed:
            raise _errors.StoreClosed("the store is closed")

    async def _read(self, read: Callable[[], _T]) -> _T:
        self._check_open()
        return await trio.to_thread.run_sync(read, limiter=self._read_limiter)

    async def _submit(self, op: _sqlite_db.Op) -> _sqlite_db.Outcome:
        self._check_open()
        pending = _Pending(op)
        self._queue_in.send_nowait(pending)
        await pending.done.wait()
        outcome = pending.outcome
        assert outcome is not None
        if isinstance(outcome, _errors.StorageError):
            raise outcome
        return outcome

    async def _write_loop(self) -> None:
        """Commit queued writes in batches until the queue is closed and drained."""
        async for first in self._queue_out:
            batch = [first]
            while len(batch) < _MAX_BATCH:
                try:
                    batch.append(self._queue_out.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            ops = [pending.op for pending in batch]
            try:
                outcomes, events = await trio.to_thread.run_sync(
                    self._db.commit, ops, limiter=self._write_limiter
                )
            except sa.exc.SQLAlchemyError as error:
                logger.error("commit of %d writes failed: %s", len(batch), error)
                failure = _errors.StorageError(f"the write was not stored: {error}")
                outcomes = [failure] * len(batch)
                events = []
            self._broadcaster.publish(events)
            for pending, outcome in zip(batch, outcomes, strict=True):
                pending.outcome = outcome
                pending.done.set()

    async def create(self, key: str, value: bytes, *, lease: int = 0) -> _types.KeyValue:
        outcome = await self._submit(_sqlite_db.Create(key, value, lease))
        assert isinstance(outcome, _types.KeyValue)
        return outcome

    async def update(
        self,
        key: str,
        value: bytes,
        *,
        expected_revision: int | None = None,
        lease: int = 0,
    ) -> _types.KeyValue:
        outcome = await self._submit(_sqlite_db.Update(key, value, expected_revision, lease))
        assert isinstance(outcome, _types.KeyValue)
        return outcome

    async def delete(self, key: str, *, expected_revision: int | None = None) -> _types.Deleted:
        outcome = await self._submit(_sqlite_db.Delete(key, expected_revision))
        assert isinstance(outcome, _types.Deleted)
        return outcome

    # Reads

    async def get(self, key: str, *, revision: int | None = None) -> _types.KeyValue:
        return await self._read(lambda: self._db.get(key, revision))

    async def list(
        self,
        prefix: str,
        *,
        revision: int | None = None,
        limit: int = 0,
        continue_key: str | None = None,
    ) -> _types.Page:
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        if continue_key is not None and not continue_key.startswith(prefix):
            raise ValueError(f"continue key {continue_key!r} is not under {prefix!r}")

        return await self._read(
            lambda: self._db.list(prefix, revision=revision, limit=limit, continue_key=continue_key)
        )

    async def _history(self, prefix: str, first: int, last: int) -> builtins.list[_types.Event]:
        return await self._read(lambda: self._db.history(prefix, first=first, last=last))

    async def current_revision(self) -> int:
        return self._broadcaster.revision

    async def compact_revision(self) -> int:
        return self._compact_revision

    # Watch

    @contextlib.asynccontextmanager
    async def watch(
        self, prefix: str, *, from_revision: int | None = None
    ) -> AsyncIterator[AsyncIterator[_types.Event]]:
        self._check_open()
        if from_revision is not None and from_revision < self._compact_revision:
            raise _errors.Compacted(
                requested=from_revision, compact_revision=self._compact_revision
            )
        watch = _Watch(self, prefix, from_revision)
        try:
            yield watch
        finally:
            watch.close()

    # Compaction

    async def compact(self, revision: int) -> None:
        current = self._broadcaster.revision
        if revision > current:
            raise _errors.FutureRevision(requested=revision, current=current)
        if revision <= self._compact_revision:
            raise _errors.Compacted(requested=revision, compact_revision=self._compact_revision)
        await self._compact(revision)

    async def _compact(self, revision: int) -> None:
        while True:
            progress = await self._submit(_sqlite_db.CompactStep(revision))
            assert isinstance(progress, _sqlite_db.CompactProgress)
            self._compact_revision = max(self._compact_revision, progress.compact_revision)
            if progress.done:
                break
        await trio.to_thread.run_sync(self._db.maintain, limiter=self._write_limiter)

    async def _compact_loop(self) -> NoReturn:
        """Compact what is older than both history bounds, every `compact_interval`."""
        options = self._options
        samples: collections.deque[tuple[float, int]] = collections.deque()
        while True:
            now = trio.current_time()
            samples.append((now, self._broadcaster.revision))
            while len(samples) > 1 and samples[1][0] <= now - options.history_seconds:
                samples.popleft()
            at, by_age = samples[0]
            if at <= now - options.history_seconds:
                target = min(by_age, self._broadcaster.revision - options.history_revisions)
                if target > self._compact_revision:
                    try:
                        await self._compact(target)
                    except _errors.StorageError as error:
                        logger.warning("compaction to revision %d failed: %s", target, error)
                    else:
                        logger.debug("compacted history before revision %d", target)
            await trio.sleep(options.compact_interval)

    # Leases

    async def grant(self, ttl: int) -> _types.Lease:
        if ttl < 1:
            raise ValueError(f"a lease's TTL must be at least 1 second, got {ttl}")
        lease = await self._submit(_sqlite_db.Grant(ttl))
        assert isinstance(lease, _types.Lease)
        self._leases[lease.id] = (ttl, trio.current_time() + ttl)
        return lease

    async def keepalive(self, lease_id: int) -> int:
        if lease_id not in self._leases:
            raise _errors.LeaseNotFound(lease_id)
        ttl, _ = self._leases[lease_id]
        self._leases[lease_id] = (ttl, trio.current_time() + ttl)
        return ttl

    async def revoke(self, lease_id: int) -> None:
        if self._leases.pop(lease_id, None) is None:
            raise _errors.LeaseNotFound(lease_id)
        await self._submit(_sqlite_db.Revoke(lease_id))

    async def _lease_loop(self) -> NoReturn:
        while True:
            now = trio.current_time()
            expired = [lease_id for lease_id, (_, at) in self._leases.items() if at <= now]
            for lease_id in expired:
                del self._leases[lease_id]
            for lease_id in expired:
                try:
                    await self._submit(_sqlite_db.Revoke(lease_id))
                except _errors.StorageError as error:
                    logger.warning("expiry of lease %d failed: %s", lease_id, error)
            await trio.sleep(_LEASE_TICK)

    # Lifecycle

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve writes, compaction and lease expiry until `close` and the queue drained."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._lease_loop)
            if self._options.auto_compact:
                nursery.start_soon(self._compact_loop)
            task_status.started()
            await self._write_loop()
            nursery.cancel_scope.cancel()

    def close(self) -> None:
        """Stop taking writes; queued writes still commit, then `run` returns."""
        self._closed = True
        self._queue_in.close()
        self._broadcaster.close()


class _Watch:
    """Events under one prefix from `from_revision` on: history first, then live.

    While far behind, it reads history in chunks without subscribing, so catching up
    does not fill a live buffer. Near the head it subscribes and reads the last stretch of
    history up to the revision published at that moment; the subscription brings the
    rest, with neither gap nor duplicate.
    """

    def __init__(self, store: SqliteStore, prefix: str, from_revision: int | None) -> None:
        self._store = store
        self._prefix = prefix
        head = store._broadcaster.revision
        self._next = head + 1 if from_revision is None else max(from_revision, 1)
        self._backlog: collections.deque[_types.Event] = collections.deque()
        self._subscription: _broadcast.Subscription | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> _types.Event:
        store = self._store
        while not self._backlog:
            if self._subscription is not None:
                event = await self._subscription.get()
                if event.revision >= self._next:
                    self._next = event.revision + 1
                    return event
                continue
            head = store._broadcaster.revision
            if head - self._next >= _HISTORY_CHUNK:
                last = self._next + _HISTORY_CHUNK - 1
            else:
                self._subscription = store._broadcaster.subscribe(
                    self._prefix, limit=store._options.watch_buffer
                )
                last = head
            if self._next <= last:
                self._backlog.extend(await store._history(self._prefix, self._next, last))
                self._next = last + 1
        return self._backlog.popleft()

    def close(self) -> None:
        if self._subscription is not None:
            self._store._broadcaster.unsubscribe(self._subscription)


def _path(parts: urllib.parse.SplitResult) -> pathlib.Path | None:
    """`sqlite://` is in memory; `sqlite:///abs/path.db` and `sqlite:rel/path.db` are files."""
    if parts.netloc:
        raise ValueError(
            f"sqlite URL {parts.geturl()!r} names a host; use sqlite:///absolute/path.db"
        )
    if not parts.path:
        return None
    return pathlib.Path("/" + parts.path.lstrip("/") if parts.path.startswith("/") else parts.path)


@contextlib.asynccontextmanager
async def open_sqlite(
    parts: urllib.parse.SplitResult, options: _types.Options
) -> AsyncIterator[SqliteStore]:
    path = _path(parts)
    db = await trio.to_thread.run_sync(_sqlite_db.Database, path)
    try:
        state = await trio.to_thread.run_sync(db.open)
        store = SqliteStore(db, state, options)
        logger.info("store %s open at revision %d", path or "in memory", state.revision)
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            try:
                yield store
            finally:
                store.close()
    finally:
        await trio.to_thread.run_sync(db.close)
        logger.info("store %s closed", path or "in memory")
