"""The SQLite side of the SQLite backend: schema, and the blocking reads and writes.

Everything here runs in a worker thread. Layout:

* `log` is the append-only history; its integer primary key (the row id) is the revision.
  A row records a put or a delete (tombstone) of one key, and `prev_revision` points at
  the live value it replaced, so watch events carry their previous value.
* `current` maps each live key to the revision of its value (and its lease), clustered by
  key, so a list of a prefix reads only the result's rows, however long the history.
* `meta` holds the compaction marks; `leases` holds granted leases. The current
  revision is the newest history row's, which compaction never removes.

Writes are applied by exactly one connection, a batch per transaction (group commit); a
write that fails its precondition fails alone and the rest of its batch commits.
Compaction deletes, in bounded chunks, every history row that no read at or after the
compact revision can reach.
"""

from __future__ import annotations

import builtins
import dataclasses
import fcntl
import pathlib
import secrets
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sa_sqlite

from arktos_lite.storage import _errors, _types

metadata = sa.MetaData()

log = sa.Table(
    "log",
    metadata,
    sa.Column("revision", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("create_revision", sa.Integer, nullable=False),
    sa.Column("prev_revision", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("lease", sa.Integer, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False),
    sa.Index("log_key_revision", "key", "revision"),
)

current = sa.Table(
    "current",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("mod_revision", sa.Integer, nullable=False),
    sa.Column("lease", sa.Integer, nullable=False),
    sa.Index("current_lease", "lease", sqlite_where=sa.text("lease != 0")),
    sqlite_with_rowid=False,
)

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ttl", sa.Integer, nullable=False),
)

COMPACT_REVISION = "compact_revision"
# History below this revision has been swept; a compaction resumes from here.
COMPACT_SWEPT = "compact_swept"

# Keys per IN (...) list, well under SQLite's limit on bound parameters.
_IN_CHUNK = 500
# Revisions swept per compaction transaction, so writers wait at most one chunk.
COMPACT_CHUNK = 5_000

_KV_COLUMNS = (
    log.c.key,
    log.c.value,
    log.c.create_revision,
    log.c.revision,
    log.c.version,
    log.c.lease,
)

# Statements on the hot paths, built once.
_LIVE = sa.select(*_KV_COLUMNS).select_from(
    current.join(log, log.c.revision == current.c.mod_revision)
)
_GET_LIVE = _LIVE.where(current.c.key == sa.bindparam("key"))
_LOAD_LIVE = _LIVE.where(current.c.key.in_(sa.bindparam("keys", expanding=True)))
_INSERT_LOG = sa.insert(log)
_UPSERT_CURRENT = sa_sqlite.insert(current).prefix_with("OR REPLACE")


def _kv(row: Sequence[Any]) -> _types.KeyValue:
    return _types.KeyValue(
        key=row[0],
        value=row[1],
        create_revision=row[2],
        mod_revision=row[3],
        version=row[4],
        lease=row[5],
    )


def _in_range(column: sa.ColumnElement[str], prefix: str) -> sa.ColumnElement[bool]:
    end = _types.prefix_end(prefix)
    if end is None:
        return column >= prefix
    return sa.and_(column >= prefix, column < end)


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


# Write operations, as the writer thread receives them.


@dataclasses.dataclass(frozen=True, slots=True)
class Create:
    key: str
    value: bytes
    lease: int


@dataclasses.dataclass(frozen=True, slots=True)
class Update:
    key: str
    value: bytes
    expected_revision: int | None
    lease: int


@dataclasses.dataclass(frozen=True, slots=True)
class Delete:
    key: str
    expected_revision: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class Grant:
    ttl: int


@dataclasses.dataclass(frozen=True, slots=True)
class Revoke:
    lease_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class CompactStep:
    """Raise the compact revision to `revision` and sweep one chunk of history."""

    revision: int


@dataclasses.dataclass(frozen=True, slots=True)
class CompactProgress:
    compact_revision: int
    done: bool


Op = Create | Update | Delete | Grant | Revoke | CompactStep
Outcome = (
    _types.KeyValue
    | _types.Deleted
    | _types.Lease
    | list[_types.Deleted]
    | CompactProgress
    | _errors.StorageError
)


@dataclasses.dataclass(frozen=True, slots=True)
class State:
    revision: int
    compact_revision: int
    leases: dict[int, int]


class Database:
    """Blocking access to one SQLite database; call only from worker threads.

    Writes are serialised by the caller (one writer at a time). Reads may run
    concurrently with each other and with the writer (WAL), except for an in-memory
    database, whose single connection the caller serialises too.
    """

    def __init__(self, path: pathlib.Path | None) -> None:
        self.in_memory = path is None
        self._lock: IO[bytes] | None = None
        if path is None:
            url = "sqlite+pysqlite://"
            self._writer_engine = sa.create_engine(
                url,
                poolclass=sa.StaticPool,
                connect_args={"check_same_thread": False},
            )
            self._reader_engine = self._writer_engine
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = _lock(path)
            url = f"sqlite+pysqlite:///{path}"
            self._writer_engine = sa.create_engine(
                url, poolclass=sa.StaticPool, connect_args={"check_same_thread": False}
            )
            self._reader_engine = sa.create_engine(
                url,
                pool_size=8,
                max_overflow=8,
                connect_args={"check_same_thread": False},
            )
        _configure(self._writer_engine, begin="BEGIN IMMEDIATE")
        if self._reader_engine is not self._writer_engine:
            _configure(self._reader_engine, begin="BEGIN")
        self._writer = self._writer_engine.connect()
        self._revision = 0
        self._lease_ids: set[int] = set()

    # Lifecycle

    def open(self) -> State:
        """Create the schema if missing and read the store's state."""
        with self._writer.begin():
            metadata.create_all(self._writer)
            for name in (COMPACT_REVISION, COMPACT_SWEPT):
                self._writer.execute(
                    sa_sqlite.insert(meta).values(name=name, value=0).on_conflict_do_nothing()
                )
            values = dict(self._writer.execute(sa.select(meta.c.name, meta.c.value)).all())
            lease_rows = self._writer.execute(sa.select(leases.c.id, leases.c.ttl)).all()
            revision = _revision(self._writer)
        self._revision = revision
        self._lease_ids = {row.id for row in lease_rows}
        return State(
            revision=revision,
            compact_revision=values[COMPACT_REVISION],
            leases={row.id: row.ttl for row in lease_rows},
        )

    def close(self) -> None:
        self._writer.close()
        self._writer_engine.dispose()
        self._reader_engine.dispose()
        if self._lock is not None:
            self._lock.close()

    # Writes

    def commit(self, ops: Sequence[Op]) -> tuple[list[Outcome], list[_types.Event]]:
        """Apply `ops` in order in one transaction; return one outcome per op and the events.

        A precondition failure is that op's outcome; a database error raises and
        nothing of the batch is stored.
        """
        conn = self._writer
        with conn.begin():
            batch = _Batch(conn, self._revision, self._lease_ids)
            batch.load(op.key for op in ops if isinstance(op, Create | Update | Delete))
            outcomes = [batch.apply(op) for op in ops]
            batch.flush()
        self._revision = batch.revision
        self._lease_ids = batch.lease_ids
        return outcomes, batch.events

    # Reads

    def get(self, key: str, revision: int | None) -> _types.KeyValue:
        row: Sequence[Any] | None
        with self._reader_engine.connect() as conn, conn.begin():
            if revision is None:
                row = conn.execute(_GET_LIVE, {"key": key}).first()
            else:
                _check_readable(conn, revision)
                past = conn.execute(
                    sa.select(*_KV_COLUMNS, log.c.deleted)
                    .where(log.c.key == key, log.c.revision <= revision)
                    .order_by(log.c.revision.desc())
                    .limit(1)
                ).first()
                row = None if past is None or past.deleted else past[:6]
        if row is None:
            raise _errors.NotFound(key)
        return _kv(row)

    def list(
        self, prefix: str, *, revision: int | None, limit: int, continue_key: str | None
    ) -> _types.Page:
        with self._reader_engine.connect() as conn, conn.begin():
            now = _revision(conn)
            if revision is None or revision == now:
                revision = now
                query = _list_current(prefix, continue_key)
            else:
                _check_readable(conn, revision)
                query = _list_at(prefix, continue_key, revision)
            if limit > 0:
                query = query.limit(limit + 1)
            rows = conn.execute(query).all()
        more = limit > 0 and len(rows) > limit
        items = tuple(_kv(row) for row in rows[: limit if more else None])
        return _types.Page(
            items=items,
            revision=revision,
            continue_key=items[-1].key + "\x00" if more else None,
        )

    def history(self, prefix: str, *, first: int, last: int) -> builtins.list[_types.Event]:
        """Events under `prefix` with revisions in [first, last], in revision order."""
        prev = log.alias("prev")
        with self._reader_engine.connect() as conn, conn.begin():
            _check_readable(conn, first)
            rows = conn.execute(
                sa.select(
                    *_KV_COLUMNS,
                    log.c.deleted,
                    prev.c.key,
                    prev.c.value,
                    prev.c.create_revision,
                    prev.c.revision,
                    prev.c.version,
                    prev.c.lease,
                )
                .select_from(log.outerjoin(prev, prev.c.revision == log.c.prev_revision))
                .where(
                    log.c.revision >= first,
                    log.c.revision <= last,
                    _in_range(log.c.key, prefix),
                )
                .order_by(log.c.revision)
            ).all()
        events = []
        for row in rows:
            prev_kv = _kv(row[7:]) if row[10] is not None else None
            kind = _types.EventType.DELETE if row.deleted else _types.EventType.PUT
            events.append(_types.Event(type=kind, kv=_kv(row), prev_kv=prev_kv))
        return events

    def maintain(self) -> None:
        """Return freed pages to the file system and keep the WAL file short."""
        if self.in_memory:
            return
        # Outside any transaction: a checkpoint cannot run inside one.
        raw = self._writer.connection.dbapi_connection
        assert raw is not None
        # executescript steps the pragma to the end; execute() would free one page only.
        raw.executescript("PRAGMA incremental_vacuum(4000);")
        # Empty the WAL if no reader holds it now; never wait long for readers, because
        # writers queue behind this.
        raw.execute("PRAGMA busy_timeout = 50")
        try:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            raw.execute("PRAGMA busy_timeout = 10000")


class _Batch:
    """The changes of one write transaction, applied in memory then flushed at once."""

    def __init__(self, conn: sa.Connection, revision: int, lease_ids: set[int]) -> None:
        self._conn = conn
        self.revision = revision
        self.lease_ids = set(lease_ids)
        self.events: list[_types.Event] = []
        # What each touched key holds now within this batch (None: absent).
        self._live: dict[str, _types.KeyValue | None] = {}
        self._log_rows: list[dict[str, Any]] = []
        self._granted: list[dict[str, int]] = []
        self._revoked: list[int] = []

    def apply(self, op: Op) -> Outcome:
        try:
            match op:
                case Create():
                    return self._create(op)
                case Update():
                    return self._update(op)
                case Delete():
                    return self._delete(op.key, op.expected_revision)
                case Grant():
                    return self._grant(op)
                case Revoke():
                    return self._revoke(op)
                case CompactStep():
                    return self._compact(op)
        except _errors.StorageError as error:
            return error

    def load(self, keys: Iterable[str]) -> None:
        """Read the live values of `keys` not yet known to this batch."""
        missing = [key for key in dict.fromkeys(keys) if key not in self._live]
        for chunk in _chunks(missing):
            self._live.update(dict.fromkeys(chunk))
            rows = self._conn.execute(_LOAD_LIVE, {"keys": chunk}).all()
            for row in rows:
                self._live[row[0]] = _kv(row)

    def _current(self, key: str) -> _types.KeyValue | None:
        self.load([key])
        return self._live[key]

    def _check_lease(self, lease: int) -> None:
        if lease and lease not in self.lease_ids:
            raise _errors.LeaseNotFound(lease)

    def _put(self, kv: _types.KeyValue, prev: _types.KeyValue | None) -> _types.KeyValue:
        self._live[kv.key] = kv
        self._log_rows.append(
            {
                "revision": kv.mod_revision,
                "key": kv.key,
                "value": kv.value,
                "create_revision": kv.create_revision,
                "prev_revision": prev.mod_revision if prev else 0,
                "version": kv.version,
                "lease": kv.lease,
                "deleted": False,
            }
        )
        self.events.append(_types.Event(type=_types.EventType.PUT, kv=kv, prev_kv=prev))
        return kv

    def _create(self, op: Create) -> _types.KeyValue:
        if self._current(op.key) is not None:
            raise _errors.KeyExists(op.key)
        self._check_lease(op.lease)
        self.revision += 1
        kv = _types.KeyValue(
            key=op.key,
            value=op.value,
            create_revision=self.revision,
            mod_revision=self.revision,
            version=1,
            lease=op.lease,
        )
        return self._put(kv, None)

    def _update(self, op: Update) -> _types.KeyValue:
        prev = self._current(op.key)
        if prev is None:
            raise _errors.NotFound(op.key)
        if op.expected_revision is not None and op.expected_revision != prev.mod_revision:
            raise _errors.Conflict(op.key, expected=op.expected_revision, actual=prev.mod_revision)
        self._check_lease(op.lease)
        self.revision += 1
        kv = _types.KeyValue(
            key=op.key,
            value=op.value,
            create_revision=prev.create_revision,
            mod_revision=self.revision,
            version=prev.version + 1,
            lease=op.lease,
        )
        return self._put(kv, prev)

    def _delete(self, key: str, expected_revision: int | None) -> _types.Deleted:
        prev = self._current(key)
        if prev is None:
            raise _errors.NotFound(key)
        if expected_revision is not None and expected_revision != prev.mod_revision:
            raise _errors.Conflict(key, expected=expected_revision, actual=prev.mod_revision)
        self.revision += 1
        self._live[key] = None
        tombstone = _types.KeyValue(
            key=key, value=b"", create_revision=0, mod_revision=self.revision, version=0
        )
        self._log_rows.append(
            {
                "revision": self.revision,
                "key": key,
                "value": b"",
                "create_revision": 0,
                "prev_revision": prev.mod_revision,
                "version": 0,
                "lease": 0,
                "deleted": True,
            }
        )
        self.events.append(_types.Event(type=_types.EventType.DELETE, kv=tombstone, prev_kv=prev))
        return _types.Deleted(revision=self.revision, prev_kv=prev)

    def _grant(self, op: Grant) -> _types.Lease:
        lease_id = secrets.randbits(62) + 1
        while lease_id in self.lease_ids:
            lease_id = secrets.randbits(62) + 1
        self.lease_ids.add(lease_id)
        self._granted.append({"id": lease_id, "ttl": op.ttl})
        return _types.Lease(id=lease_id, ttl=op.ttl)

    def _revoke(self, op: Revoke) -> list[_types.Deleted]:
        self._check_lease(op.lease_id)
        self.lease_ids.discard(op.lease_id)
        self._revoked.append(op.lease_id)
        attached = (
            self._conn.execute(sa.select(current.c.key).where(current.c.lease == op.lease_id))
            .scalars()
            .all()
        )
        self.load(attached)
        doomed = sorted(
            key for key, kv in self._live.items() if kv is not None and kv.lease == op.lease_id
        )
        return [self._delete(key, None) for key in doomed]

    def _compact(self, op: CompactStep) -> CompactProgress:
        compact_revision = _meta(self._conn, COMPACT_REVISION)
        if op.revision > self.revision:
            raise _errors.FutureRevision(requested=op.revision, current=self.revision)
        if op.revision < compact_revision:
            raise _errors.Compacted(requested=op.revision, compact_revision=compact_revision)
        swept = _meta(self._conn, COMPACT_SWEPT)
        stop = min(op.revision, swept + COMPACT_CHUNK)
        # Every row but a key's latest is superseded by exactly one later row, which
        # points back at it; once that later row is below the compact revision, no read
        # or watch can reach the superseded row. A tombstone below it is unreachable too.
        sweep = sa.and_(log.c.revision >= swept, log.c.revision < stop)
        superseded = sa.select(log.c.prev_revision).where(sweep, log.c.prev_revision > 0)
        self._conn.execute(sa.delete(log).where(log.c.revision.in_(superseded)))
        self._conn.execute(sa.delete(log).where(sweep, log.c.deleted))
        _set_meta(self._conn, COMPACT_REVISION, op.revision)
        _set_meta(self._conn, COMPACT_SWEPT, stop)
        return CompactProgress(compact_revision=op.revision, done=stop >= op.revision)

    def flush(self) -> None:
        conn = self._conn
        if self._log_rows:
            conn.execute(_INSERT_LOG, self._log_rows)
            live = [kv for kv in self._live.values() if kv is not None]
            written = {row["key"] for row in self._log_rows}
            upserts = [
                {"key": kv.key, "mod_revision": kv.mod_revision, "lease": kv.lease}
                for kv in live
                if kv.key in written
            ]
            if upserts:
                conn.execute(_UPSERT_CURRENT, upserts)
            gone = [key for key, kv in self._live.items() if kv is None and key in written]
            for chunk in _chunks(gone):
                conn.execute(sa.delete(current).where(current.c.key.in_(chunk)))
        if self._granted:
            conn.execute(sa.insert(leases), self._granted)
        if self._revoked:
            conn.execute(sa.delete(leases).where(leases.c.id.in_(self._revoked)))


def _lock(path: pathlib.Path) -> IO[bytes]:
    """Hold `path`.lock exclusively: revisions are assigned by one process only."""
    lock = (path.parent / (path.name + ".lock")).open("ab")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise _errors.StoreInUse(str(path)) from None
    return lock


def _configure(engine: sa.Engine, *, begin: str) -> None:
    """Own transactions: pysqlite's implicit BEGIN would not give snapshot reads."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # auto_vacuum only takes effect before the first table exists.
        cursor.execute("PRAGMA auto_vacuum = INCREMENTAL")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA busy_timeout = 10000")
        # A checkpointed WAL is cut back to this size when it restarts.
        cursor.execute("PRAGMA journal_size_limit = 4194304")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(begin)


def _meta(conn: sa.Connection, name: str) -> int:
    value: int = conn.execute(sa.select(meta.c.value).where(meta.c.name == name)).scalar_one()
    return value


def _revision(conn: sa.Connection) -> int:
    """The current revision: the newest history row, which compaction never removes."""
    revision: int = conn.execute(
        sa.select(sa.func.coalesce(sa.func.max(log.c.revision), 0))
    ).scalar_one()
    return revision


def _set_meta(conn: sa.Connection, name: str, value: int) -> None:
    conn.execute(sa.update(meta).where(meta.c.name == name).values(value=value))


def _check_readable(conn: sa.Connection, revision: int) -> None:
    now = _revision(conn)
    if revision > now:
        raise _errors.FutureRevision(requested=revision, current=now)
    compact_revision = _meta(conn, COMPACT_REVISION)
    if revision < compact_revision:
        raise _errors.Compacted(requested=revision, compact_revision=compact_revision)


def _list_current(prefix: str, continue_key: str | None) -> sa.Select[Any]:
    query = _LIVE.where(_in_range(current.c.key, prefix)).order_by(current.c.key)
    if continue_key is not None:
        query = query.where(current.c.key >= continue_key)
    return query


def _list_at(prefix: str, continue_key: str | None, revision: int) -> sa.Select[Any]:
    """Keys under `prefix` as they were at `revision`.

    Keys untouched since `revision` come from `current`; the few changed since are read
    from their latest history row at or before `revision`.
    """
    unchanged = _LIVE.where(_in_range(current.c.key, prefix), current.c.mod_revision <= revision)
    changed = (
        sa.select(log.c.key)
        .where(log.c.revision > revision, _in_range(log.c.key, prefix))
        .distinct()
        .subquery("changed")
    )
    older = log.alias("older")
    latest = (
        sa.select(sa.func.max(older.c.revision))
        .where(older.c.key == changed.c.key, older.c.revision <= revision)
        .scalar_subquery()
    )
    was = (
        sa.select(*_KV_COLUMNS)
        .select_from(changed.join(log, log.c.revision == latest))
        .where(sa.not_(log.c.deleted))
    )
    if continue_key is not None:
        unchanged = unchanged.where(current.c.key >= continue_key)
        was = was.where(log.c.key >= continue_key)
    both = sa.union_all(unchanged, was).subquery("both")
    return sa.select(*both.c).order_by(both.c.key)
