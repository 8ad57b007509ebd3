"""The etcd backend: the `Backend` protocol on an etcd v3 cluster, over gRPC.

URLs::

    etcd://HOST:PORT[,HOST:PORT...][/KEY-PREFIX]
    etcd+https://HOST:PORT[,...][/KEY-PREFIX]?cacert=CA.pem[&cert=CLIENT.pem&key=CLIENT-KEY.pem]

`etcd+https` speaks TLS, trusting `cacert` (the system's roots without it) and showing the
client certificate `cert`/`key` when given. Several endpoints are members of one cluster:
calls go to one and fail over to the next when it is unavailable (see `_etcd_client`). A
key prefix (without trailing slash) is put in front of every key, so that the store's keys
keep to one corner of etcd; the prefixes of two stores on one etcd must not be prefixes of
each other. Revisions are etcd's own, shared by everything written to that etcd, while a
store's watches see only its own keys; the API server waits for its watch to reach the
current revision, so give each API server group an etcd of its own (a prefix keeps keys
apart, not revisions).

Guarantees, on top of the `Backend` protocol's:

* The revisions are etcd's revisions. `create` is a transaction "create revision is 0 →
  put", `update` and `delete` compare the mod revision (and presence) in the same
  transaction and read the key when the compare fails, so `KeyExists`, `NotFound` and
  `Conflict` are exact. A write is acknowledged once etcd acknowledged it (committed to a
  quorum's fsynced log).
* A list reads one etcd revision; later pages read the same revision.
* Watches are etcd watches with previous values, resumed on another member from the next
  revision when a member goes away. Each has its own bounded buffer (`watch_buffer`).
* `compact(R)` compacts etcd at R - 1, so that revision R stays whole: reads at R, and a
  watch from R with the previous values of its events. `compact_revision()` is therefore
  etcd's compacted revision + 1; etcd does not report it, so it is found by bisecting
  with reads (a read below it fails), starting from the last one seen.
* Automatic compaction runs in the process that holds the store, with the same `Options`
  as SQLite; several API servers compacting one etcd agree (the later one finds the work
  done).
* Leases are etcd's and expire on etcd's clock; etcd grants at least its minimum TTL
  (2 s by default).
* While open, the store holds a lease whose ID is derived from the key prefix (never a
  key, so no revision is spent on it). An opener with `Options(exclusive=True)` refuses
  (`StoreInUse`) if any other holder is present and keeps later openers out; other
  openers share the store but refuse while an exclusive holder is present. A process
  that dies lets go when its lease expires (`PRESENCE_TTL`).
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import hashlib
import logging
import pathlib
import secrets
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, NoReturn, Self

import grpc
import trio

from arktos_lite.storage import _broadcast, _errors, _etcd_client, _types
from arktos_lite.storage.etcd import kv_pb2, rpc_pb2 as pb

logger = logging.getLogger(__name__)

DEFAULT_PORT = 2379
# Seconds a dead opener's presence outlives it.
PRESENCE_TTL = 10
_TAG_SHIFT = 24
_EXCLUSIVE_BIT = 1 << 23
_NONCE_BITS = 23
_WATCH_BACKOFF = (0.05, 1.0)

_Compare = pb.Compare


def parse_url(
    parts: urllib.parse.SplitResult,
) -> tuple[list[str], bytes, _etcd_client.TLS | None]:
    """Endpoints, key prefix and TLS files of an `etcd://` or `etcd+https://` URL."""
    endpoints = []
    for item in parts.netloc.split(","):
        endpoint = item.strip()
        if not endpoint:
            continue
        if "@" in endpoint:
            raise ValueError(f"etcd URL {parts.geturl()!r}: user names are not supported")
        host, _, port = endpoint.rpartition(":")
        if not host or port.startswith("]") or not port.isdigit():
            endpoint = f"{endpoint}:{DEFAULT_PORT}"
        endpoints.append(endpoint)
    if not endpoints:
        raise ValueError(f"etcd URL {parts.geturl()!r} names no endpoint (etcd://host:port)")
    prefix = urllib.parse.unquote(parts.path).rstrip("/").encode()
    query = urllib.parse.parse_qs(parts.query, strict_parsing=bool(parts.query))
    unknown = set(query) - {"cacert", "cert", "key"}
    if unknown:
        raise ValueError(f"etcd URL {parts.geturl()!r}: unknown parameter(s) {sorted(unknown)}")
    if parts.scheme != "etcd+https":
        if query:
            raise ValueError(
                f"etcd URL {parts.geturl()!r}: TLS files need the scheme etcd+https://"
            )
        return endpoints, prefix, None

    if ("cert" in query) != ("key" in query):
        raise ValueError(f"etcd URL {parts.geturl()!r}: give both cert= and key=, or neither")

    def read(name: str) -> bytes | None:
        values = query.get(name)
        if not values:
            return None
        try:
            return pathlib.Path(values[-1]).read_bytes()
        except OSError as error:
            raise ValueError(f"etcd URL {parts.geturl()!r}: cannot read {name}: {error}") from None

    return (
        endpoints,
        prefix,
        _etcd_client.TLS(ca=read("cacert"), cert=read("cert"), key=read("key")),
    )


def _range_end(start: bytes) -> bytes:
    """The end of the range of keys starting with `start`; "\\0" means no end."""
    end = bytearray(start)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\x00"


def _presence_tag(prefix: bytes) -> int:
    """39 bits naming the key prefix, the top of every presence lease ID of that store."""
    digest = hashlib.sha256(b"arktos-lite store\x00" + prefix).digest()
    return int.from_bytes(digest[:5], "big") >> 1


class EtcdStore:
    """A `Backend` on an etcd cluster. Open it with `open_etcd`."""

    def __init__(
        self,
        client: _etcd_client.Client,
        *,
        prefix: bytes,
        name: str,
        options: _types.Options,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self.name = name
        self._options = options
        # etcd's compacted revision as last seen; this store's compact revision is one more.
        self._etcd_compacted = 0
        # A compact revision too low to reach etcd (1: nothing is older).
        self._floor = 0
        self._presence = 0
        self._closed = False
        self._watches: set[_Watch] = set()
        self._nursery: trio.Nursery | None = None
        # Any key: reads of it tell the revision, or that a revision is compacted.
        self._probe_key = prefix + b"\x00"

    # Keys

    def _key(self, key: str) -> bytes:
        return self._prefix + key.encode()

    def _range(self, prefix: str) -> tuple[bytes, bytes]:
        start = self._prefix + prefix.encode()
        if not start:
            return b"\x00", b"\x00"
        return start, _range_end(start)

    def _kv(self, kv: kv_pb2.KeyValue) -> _types.KeyValue:
        return _types.KeyValue(
            key=kv.key[len(self._prefix) :].decode(),
            value=kv.value,
            create_revision=kv.create_revision,
            mod_revision=kv.mod_revision,
            version=kv.version,
            lease=kv.lease,
        )

    def _event(self, event: kv_pb2.Event) -> _types.Event:
        prev_kv = self._kv(event.prev_kv) if event.HasField("prev_kv") else None
        if event.type == kv_pb2.Event.DELETE:
            tombstone = _types.KeyValue(
                key=event.kv.key[len(self._prefix) :].decode(),
                value=b"",
                create_revision=0,
                mod_revision=event.kv.mod_revision,
                version=0,
            )
            return _types.Event(type=_types.EventType.DELETE, kv=tombstone, prev_kv=prev_kv)
        return _types.Event(type=_types.EventType.PUT, kv=self._kv(event.kv), prev_kv=prev_kv)

    # Calls

    def _check_open(self) -> None:
        if self._closed:
            raise _errors.StoreClosed("the store is closed")

    async def _kv_call(
        self,
        name: str,
        request: pb.RangeRequest | pb.TxnRequest | pb.CompactionRequest,
        response_type: type[_etcd_client._Response],
        *,
        idempotent: bool,
    ) -> _etcd_client._Response:
        self._check_open()
        return await self._client.unary(
            lambda member: getattr(member.kv, name), request, response_type, idempotent=idempotent
        )

    async def _txn(self, request: pb.TxnRequest, *, lease: int = 0) -> pb.TxnResponse:
        try:
            return await self._kv_call("Txn", request, pb.TxnResponse, idempotent=False)
        except grpc.RpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND and lease:
                raise _errors.LeaseNotFound(lease) from None
            raise _errors.StorageError(f"etcd refused the write: {error.details()}") from None

    async def _range_call(self, request: pb.RangeRequest) -> pb.RangeResponse:
        try:
            return await self._kv_call("Range", request, pb.RangeResponse, idempotent=True)
        except grpc.RpcError as error:
            if error.code() is grpc.StatusCode.OUT_OF_RANGE:
                raise await self._revision_error(request.revision) from None
            raise _errors.StorageError(f"etcd refused the read: {error.details()}") from None

    async def _revision_error(self, revision: int) -> _errors.StorageError:
        """What a read at `revision` that etcd refused as out of range ran into."""
        current = await self.current_revision()
        if revision > current:
            return _errors.FutureRevision(requested=revision, current=current)
        return _errors.Compacted(requested=revision, compact_revision=await self.compact_revision())

    def _compact_revision(self) -> int:
        """The compact revision as last seen."""
        etcd = self._etcd_compacted + 1 if self._etcd_compacted >= 1 else 0
        return max(etcd, self._floor)

    def _compacted(self, revision: int) -> _errors.Compacted | None:
        """`Compacted` if `revision` is below the compact revision as last seen."""
        compact_revision = self._compact_revision()
        if revision < compact_revision:
            return _errors.Compacted(requested=revision, compact_revision=compact_revision)
        return None

    def _saw_compaction(self, etcd_revision: int) -> None:
        self._etcd_compacted = max(self._etcd_compacted, etcd_revision)

    # Writes

    async def create(self, key: str, value: bytes, *, lease: int = 0) -> _types.KeyValue:
        k = self._key(key)
        response = await self._txn(
            pb.TxnRequest(
                compare=[
                    _Compare(
                        result=_Compare.EQUAL, target=_Compare.CREATE, key=k, create_revision=0
                    )
                ],
                success=[pb.RequestOp(request_put=pb.PutRequest(key=k, value=value, lease=lease))],
            ),
            lease=lease,
        )
        if not response.succeeded:
            raise _errors.KeyExists(key)
        revision = response.header.revision
        return _types.KeyValue(
            key=key,
            value=value,
            create_revision=revision,
            mod_revision=revision,
            version=1,
            lease=lease,
        )

    def _guards(self, k: bytes, expected_revision: int | None) -> list[pb.Compare]:
        """The key is present, and at `expected_revision` if given."""
        guards = [
            _Compare(result=_Compare.NOT_EQUAL, target=_Compare.CREATE, key=k, create_revision=0)
        ]
        if expected_revision is not None:
            guards.append(
                _Compare(
                    result=_Compare.EQUAL,
                    target=_Compare.MOD,
                    key=k,
                    mod_revision=expected_revision,
                )
            )
        return guards

    def _failure(self, key: str, response: pb.TxnResponse, expected: int | None) -> Exception:
        """Why a guarded write failed, from the read of the key its transaction made."""
        kvs = response.responses[0].response_range.kvs
        if not kvs:
            return _errors.NotFound(key)
        assert expected is not None
        return _errors.Conflict(key, expected=expected, actual=kvs[0].mod_revision)

    async def update(
        self,
        key: str,
        value: bytes,
        *,
        expected_revision: int | None = None,
        lease: int = 0,
    ) -> _types.KeyValue:
        k = self._key(key)
        response = await self._txn(
            pb.TxnRequest(
                compare=self._guards(k, expected_revision),
                success=[
                    pb.RequestOp(
                        request_put=pb.PutRequest(key=k, value=value, lease=lease, prev_kv=True)
                    )
                ],
                failure=[pb.RequestOp(request_range=pb.RangeRequest(key=k, keys_only=True))],
            ),
            lease=lease,
        )
        if not response.succeeded:
            raise self._failure(key, response, expected_revision)
        prev = response.responses[0].response_put.prev_kv
        return _types.KeyValue(
            key=key,
            value=value,
            create_revision=prev.create_revision,
            mod_revision=response.header.revision,
            version=prev.version + 1,
            lease=lease,
        )

    async def delete(self, key: str, *, expected_revision: int | None = None) -> _types.Deleted:
        k = self._key(key)
        response = await self._txn(
            pb.TxnRequest(
                compare=self._guards(k, expected_revision),
                success=[
                    pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=k, prev_kv=True))
                ],
                failure=[pb.RequestOp(request_range=pb.RangeRequest(key=k, keys_only=True))],
            )
        )
        if not response.succeeded:
            raise self._failure(key, response, expected_revision)
        (prev,) = response.responses[0].response_delete_range.prev_kvs
        return _types.Deleted(revision=response.header.revision, prev_kv=self._kv(prev))

    # Reads

    async def get(self, key: str, *, revision: int | None = None) -> _types.KeyValue:
        self._check_open()
        if revision is not None:
            compacted = self._compacted(revision)
            if compacted is not None:
                raise compacted
            if revision < 1:
                raise _errors.NotFound(key)
        response = await self._range_call(pb.RangeRequest(key=self._key(key), revision=revision))
        if not response.kvs:
            raise _errors.NotFound(key)
        return self._kv(response.kvs[0])

    async def list(
        self,
        prefix: str,
        *,
        revision: int | None = None,
        limit: int = 0,
        continue_key: str | None = None,
    ) -> _types.Page:
        self._check_open()
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        if continue_key is not None and not continue_key.startswith(prefix):
            raise ValueError(f"continue key {continue_key!r} is not under {prefix!r}")
        if revision is not None:
            compacted = self._compacted(revision)
            if compacted is not None:
                raise compacted
            if revision < 1:
                return _types.Page(items=(), revision=revision, continue_key=None)
        start, end = self._range(prefix)
        if continue_key is not None:
            start = self._key(continue_key)
        response = await self._range_call(
            pb.RangeRequest(key=start, range_end=end, revision=revision or 0, limit=limit)
        )
        items = tuple(self._kv(kv) for kv in response.kvs)
        more = limit > 0 and response.more
        return _types.Page(
            items=items,
            revision=response.header.revision if revision is None else revision,
            continue_key=items[-1].key + "\x00" if more and items else None,
        )

    async def current_revision(self) -> int:
        response = await self._range_call(pb.RangeRequest(key=self._probe_key, keys_only=True))
        return response.header.revision

    async def compact_revision(self) -> int:
        """One more than etcd's compacted revision (0 if it never compacted past 1).

        A read at a revision below etcd's compacted one fails; bisect for the oldest
        readable revision, from the last one seen (usually one read).
        """
        self._check_open()
        low = max(self._etcd_compacted, 1)
        if not await self._readable(low):
            high = await self.current_revision()
            while low + 1 < high:
                middle = (low + high) // 2
                if await self._readable(middle):
                    high = middle
                else:
                    low = middle
            low = high
        if low > 1:
            self._saw_compaction(low)
        return self._compact_revision()

    async def _readable(self, revision: int) -> bool:
        request = pb.RangeRequest(key=self._probe_key, revision=revision, keys_only=True)
        try:
            await self._kv_call("Range", request, pb.RangeResponse, idempotent=True)
        except grpc.RpcError as error:
            if error.code() is grpc.StatusCode.OUT_OF_RANGE:
                return False
            raise _errors.StorageError(f"etcd refused the read: {error.details()}") from None
        return True

    # Watch

    @contextlib.asynccontextmanager
    async def watch(
        self, prefix: str, *, from_revision: int | None = None
    ) -> AsyncIterator[AsyncIterator[_types.Event]]:
        self._check_open()
        if from_revision is not None:
            compacted = self._compacted(from_revision)
            if compacted is not None:
                raise compacted
        assert self._nursery is not None
        watch = _Watch(self, prefix, from_revision)
        self._watches.add(watch)
        try:
            self._nursery.start_soon(watch.run)
            await watch.ready()
            yield watch
        finally:
            self._watches.discard(watch)
            watch.close()

    # Compaction

    async def compact(self, revision: int) -> None:
        self._check_open()
        current = await self.current_revision()
        if revision > current:
            raise _errors.FutureRevision(requested=revision, current=current)
        compacted = self._compacted(revision)
        if compacted is not None:
            raise compacted
        if revision <= 1:
            # Nothing is older than revision 1: only the floor moves, and compacting at
            # the floor again is compacting at the compact revision (Compacted, as etcd).
            if revision <= self._floor:
                raise _errors.Compacted(requested=revision, compact_revision=self._floor)
            self._floor = revision
            return
        request = pb.CompactionRequest(revision=revision - 1)
        try:
            await self._kv_call("Compact", request, pb.CompactionResponse, idempotent=False)
        except grpc.RpcError as error:
            if error.code() is grpc.StatusCode.OUT_OF_RANGE:
                raise _errors.Compacted(
                    requested=revision, compact_revision=await self.compact_revision()
                ) from None
            raise _errors.StorageError(f"etcd refused to compact: {error.details()}") from None
        self._saw_compaction(revision - 1)

    async def _compact_loop(self) -> NoReturn:
        """Compact what is older than both history bounds, every `compact_interval`."""
        options = self._options
        samples: collections.deque[tuple[float, int]] = collections.deque()
        while True:
            try:
                now = trio.current_time()
                revision = await self.current_revision()
                samples.append((now, revision))
                while len(samples) > 1 and samples[1][0] <= now - options.history_seconds:
                    samples.popleft()
                at, by_age = samples[0]
                if at <= now - options.history_seconds:
                    target = min(by_age, revision - options.history_revisions)
                    if target > self._compact_revision():
                        await self.compact(target)
                        logger.debug("compacted history before revision %d", target)
            except _errors.Compacted:
                pass  # Another holder of the store compacted first.
            except _errors.StorageError as error:
                if not self._closed:
                    logger.warning("compaction failed: %s", error)
            await trio.sleep(options.compact_interval)

    # Leases

    async def grant(self, ttl: int) -> _types.Lease:
        self._check_open()
        if ttl < 1:
            raise ValueError(f"a lease's TTL must be at least 1 second, got {ttl}")
        response = await self._lease_grant(ttl)
        return _types.Lease(id=response.ID, ttl=response.TTL)

    async def _lease_grant(self, ttl: int, lease_id: int = 0) -> pb.LeaseGrantResponse:
        try:
            return await self._client.unary(
                lambda member: member.lease.LeaseGrant,
                pb.LeaseGrantRequest(TTL=ttl, ID=lease_id),
                pb.LeaseGrantResponse,
                # A grant applied twice leaves a lease nobody uses, which expires.
                idempotent=True,
            )
        except grpc.RpcError as error:
            raise _errors.StorageError(f"etcd refused the lease: {error.details()}") from None

    async def keepalive(self, lease_id: int) -> int:
        self._check_open()
        try:
            response = await self._client.stream_first(
                lambda member: member.lease.LeaseKeepAlive,
                pb.LeaseKeepAliveRequest(ID=lease_id),
                pb.LeaseKeepAliveResponse,
            )
        except grpc.RpcError as error:
            raise _errors.StorageError(f"etcd refused the keep-alive: {error.details()}") from None
        if response.TTL <= 0:
            raise _errors.LeaseNotFound(lease_id)
        return response.TTL

    async def revoke(self, lease_id: int) -> None:
        self._check_open()
        await self._revoke(lease_id)

    async def _revoke(self, lease_id: int) -> None:
        try:
            await self._client.unary(
                lambda member: member.lease.LeaseRevoke,
                pb.LeaseRevokeRequest(ID=lease_id),
                pb.LeaseRevokeResponse,
                idempotent=False,
            )
        except grpc.RpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                raise _errors.LeaseNotFound(lease_id) from None
            raise _errors.StorageError(f"etcd refused the revoke: {error.details()}") from None

    # Presence

    async def _announce(self) -> None:
        """Hold this store's presence lease; `StoreInUse` if the options forbid sharing."""
        tag = _presence_tag(self._prefix)
        exclusive = self._options.exclusive
        while True:
            lease_id = (
                (tag << _TAG_SHIFT)
                | (_EXCLUSIVE_BIT if exclusive else 0)
                | secrets.randbits(_NONCE_BITS)
            )
            try:
                await self._client.unary(
                    lambda member: member.lease.LeaseGrant,
                    pb.LeaseGrantRequest(TTL=PRESENCE_TTL, ID=lease_id),
                    pb.LeaseGrantResponse,
                    idempotent=False,
                )
            except grpc.RpcError as error:
                if error.code() is grpc.StatusCode.FAILED_PRECONDITION:
                    continue  # That ID is taken: draw another.
                raise _errors.StorageError(f"etcd refused a lease: {error.details()}") from None
            break
        self._presence = lease_id
        others = [other for other in await self._presences() if other != lease_id]
        blocking = others if exclusive else [o for o in others if o & _EXCLUSIVE_BIT]
        if blocking:
            await self._revoke(lease_id)
            self._presence = 0
            holder = "another process" if exclusive else "another process, exclusively"
            raise _errors.StoreInUse(
                self.name,
                detail=(
                    f"the store {self.name} is open in {holder} (an API server or a "
                    f"migration); a process that died lets go within {PRESENCE_TTL} s"
                ),
            )

    async def _presences(self) -> builtins.list[int]:
        """The presence leases of every opener of this store, this one's included."""
        try:
            response = await self._client.unary(
                lambda member: member.lease.LeaseLeases,
                pb.LeaseLeasesRequest(),
                pb.LeaseLeasesResponse,
                idempotent=True,
            )
        except grpc.RpcError as error:
            raise _errors.StorageError(f"etcd refused to list leases: {error.details()}") from None
        tag = _presence_tag(self._prefix)
        return [lease.ID for lease in response.leases if tag == lease.ID >> _TAG_SHIFT]

    async def _presence_loop(self) -> NoReturn:
        while True:
            await trio.sleep(PRESENCE_TTL / 3)
            try:
                ttl = await self.keepalive(self._presence)
            except _errors.LeaseNotFound:
                # Gone (etcd lost it, or it expired while etcd was away): take a new one.
                logger.warning("presence lease of %s lost; taking a new one", self.name)
                with contextlib.suppress(_errors.StorageError):
                    await self._announce()
            except _errors.StorageError as error:
                if not self._closed:
                    logger.warning("presence keep-alive of %s failed: %s", self.name, error)
            else:
                logger.debug("presence of %s kept for %d s", self.name, ttl)

    # Lifecycle

    async def open(self) -> int:
        """Reach etcd, learn its compacted revision, announce; return the current revision."""
        revision = await self.current_revision()
        await self.compact_revision()
        await self._announce()
        if self._prefix and await self._foreign_keys():
            logger.warning(
                "etcd %s holds keys outside the prefix %r: whatever writes them shares this "
                "store's revisions, which its watches do not see (give the store an etcd "
                "of its own)",
                ",".join(self._client.endpoints),
                self._prefix.decode(),
            )
        return revision

    async def _foreign_keys(self) -> bool:
        """Whether etcd holds keys outside this store's prefix (a count, no values read)."""
        start, end = self._range("")
        for request in (
            pb.RangeRequest(key=b"\x00", range_end=start, count_only=True),
            pb.RangeRequest(key=end, range_end=b"\x00", count_only=True),
        ):
            if (await self._range_call(request)).count:
                return True
        return False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the presence lease and compact history until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._presence_loop)
            if self._options.auto_compact:
                nursery.start_soon(self._compact_loop)
            task_status.started()

    async def close(self) -> None:
        """Refuse further calls, end every watch with `StoreClosed`, give up presence."""
        self._closed = True
        for watch in self._watches:
            watch.fail(_errors.StoreClosed("the store was closed"))
        if self._presence:
            with (
                trio.CancelScope(shield=True),
                trio.move_on_after(2),
                contextlib.suppress(_errors.StorageError),
            ):
                await self._revoke(self._presence)
            self._presence = 0


class _Watch:
    """One etcd watch under a prefix, pumped into a bounded buffer by a task of the store.

    `ready` returns once etcd created the watch (raising, before that, `Compacted` if the
    start is compacted). A worker thread reads the stream and hands each response to trio
    in order, without a thread hop per response. When its member goes away the watch
    resumes on another one from the next revision, and gives up with `Unavailable` after
    the client's timeout.
    """

    def __init__(self, store: EtcdStore, prefix: str, from_revision: int | None) -> None:
        self._store = store
        self._prefix = prefix
        self._next = from_revision
        self._subscription = _broadcast.Subscription(
            start=prefix, end=_types.prefix_end(prefix), limit=store._options.watch_buffer
        )
        self._scope = trio.CancelScope()
        self._ready = trio.Event()
        self._start_error: _errors.StorageError | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> _types.Event:
        return await self._subscription.get()

    async def ready(self) -> None:
        await self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    def fail(self, error: _errors.StorageError) -> None:
        self._subscription._fail(error)
        if not self._ready.is_set():
            self._start_error = error
            self._ready.set()
        self._scope.cancel()

    def close(self) -> None:
        self._scope.cancel()

    async def run(self) -> None:
        with self._scope:
            try:
                await self._pump()
            except _errors.StorageError as error:
                self.fail(error)
            except Exception as error:
                # Never the store's nursery: a broken watch ends only itself.
                logger.exception("etcd watch under %r failed", self._prefix)
                self.fail(_errors.StorageError(f"the etcd watch failed: {error!r}"))

    async def _pump(self) -> None:
        store = self._store
        client = store._client
        token = trio.lowlevel.current_trio_token()
        start, end = store._range(self._prefix)
        delay = _WATCH_BACKOFF[0]
        giving_up = trio.current_time() + client.timeout
        last_error = ""
        while True:
            for member in client.rotation():
                request = pb.WatchRequest(
                    create_request=pb.WatchCreateRequest(
                        key=start,
                        range_end=end,
                        start_revision=self._next or 0,
                        prev_kv=True,
                        progress_notify=True,
                    )
                )
                # Only the create request goes out: a half-closed stream still delivers.
                call = member.watch.Watch(iter([request]))
                stream = _Stream(self, call)
                try:
                    await trio.to_thread.run_sync(
                        _read_stream,
                        call,
                        token,
                        stream.deliver,
                        abandon_on_cancel=True,
                        limiter=client.stream_limiter,
                    )
                    last_error = "etcd ended the watch stream"
                except grpc.RpcError as error:
                    if stream.error is None and not stream.overflowed:
                        if error.code() is not grpc.StatusCode.UNAVAILABLE:
                            raise _errors.StorageError(
                                f"etcd watch failed: {error.details()}"
                            ) from None
                        last_error = error.details() or str(error.code())
                        client.failed(member)
                finally:
                    stream.closed = True
                    call.cancel()
                if stream.error is not None:
                    raise stream.error
                if stream.overflowed:
                    return  # Cut off: the reader re-lists.
                if stream.created:
                    delay = _WATCH_BACKOFF[0]
                    giving_up = trio.current_time() + client.timeout
            if trio.current_time() > giving_up:
                raise _errors.Unavailable(
                    f"no etcd member serves the watch ({', '.join(client.endpoints)}): {last_error}"
                )
            await trio.sleep(delay)
            delay = min(delay * 2, _WATCH_BACKOFF[1])


class _Stream:
    """The responses of one watch stream, as they arrive in trio's thread."""

    def __init__(self, watch: _Watch, call: grpc.Future[Any]) -> None:
        self._watch = watch
        self._call = call
        self.created = False
        self.overflowed = False
        self.closed = False
        self.error: _errors.StorageError | None = None

    def deliver(self, response: pb.WatchResponse) -> None:
        # A callback of trio's run loop: it must not raise.
        if self.closed or self.error is not None or self.overflowed:
            return
        watch = self._watch
        try:
            if response.canceled:
                if response.compact_revision:
                    watch._store._saw_compaction(response.compact_revision)
                    self.error = _errors.Compacted(
                        requested=watch._next or 0,
                        compact_revision=response.compact_revision + 1,
                    )
                else:
                    self.error = _errors.StorageError(
                        f"etcd cancelled the watch: {response.cancel_reason}"
                    )
                self._call.cancel()
                return
            if response.created:
                self.created = True
                if watch._next is None:
                    watch._next = response.header.revision + 1
                watch._ready.set()
            if response.events:
                events = []
                for raw in response.events:
                    event = watch._store._event(raw)
                    if event.prev_kv is None and (
                        event.type is _types.EventType.DELETE or event.kv.version > 1
                    ):
                        # etcd leaves out a previous value it can no longer read: the
                        # history this watch still needed was compacted under it.
                        self.error = _errors.Compacted(
                            requested=event.revision, compact_revision=event.revision
                        )
                        break
                    events.append(event)
                if events:
                    watch._next = events[-1].revision + 1
                    watch._subscription._offer(events)
                if self.error is not None:
                    self._call.cancel()
                    return
                if watch._subscription._error is not None:
                    self.overflowed = True
                    self._call.cancel()
            elif not response.created and watch._next is not None:
                # A progress notification: nothing under the prefix up to its revision,
                # so a resumed watch need not replay (or find compacted) what came before.
                watch._next = max(watch._next, response.header.revision + 1)
        except Exception as error:
            self.error = _errors.StorageError(f"unreadable watch response from etcd: {error!r}")
            self._call.cancel()


def _read_stream(
    call: Iterator[pb.WatchResponse],
    token: trio.lowlevel.TrioToken,
    deliver: Callable[[pb.WatchResponse], None],
) -> None:
    """In a worker thread: hand every response of `call` to trio's thread, in order."""
    for response in call:
        try:
            token.run_sync_soon(deliver, response)
        except trio.RunFinishedError:
            return


@contextlib.asynccontextmanager
async def open_etcd(
    parts: urllib.parse.SplitResult, options: _types.Options
) -> AsyncIterator[EtcdStore]:
    endpoints, prefix, tls = parse_url(parts)
    scheme = "etcd+https" if tls is not None else "etcd"
    name = f"{scheme}://{','.join(endpoints)}{prefix.decode()}"
    client = _etcd_client.Client(endpoints, tls=tls)
    try:
        store = EtcdStore(client, prefix=prefix, name=name, options=options)
        revision = await store.open()
        logger.info("store %s open at revision %d", name, revision)
        async with trio.open_nursery() as nursery:
            store._nursery = nursery
            await nursery.start(store.run)
            try:
                yield store
            finally:
                await store.close()
                nursery.cancel_scope.cancel()
    finally:
        client.close()
    logger.info("store %s closed", name)
