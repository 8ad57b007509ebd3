"""Random sequences of store operations, checked against a plain Python model of etcd.

Hypothesis draws writes (some of them concurrent, some compare-and-swaps bound to fail),
reads at past revisions, paged lists interleaved with writes, compactions and watches
from any revision. Revisions are learnt from the store's answers (each must exceed the
last); everything else is predicted by the model: values, versions, errors, list pages,
and the exact event stream of every watch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Literal

import hypothesis
import pytest
import trio
from hypothesis import strategies as st

from arktos_lite import storage

# Few keys, so that writes collide; tricky neighbours for the prefixes below.
KEYS = ["/a", "/a/x", "/a/y", "/a/x/1", "/a0", "/ab", "/b/x", "/b/é", "/b/\U0001f600"]
PREFIXES = ["", "/", "/a", "/a/", "/a/x", "/b/", "/c/"]
PROMPTLY = 10.0
# Backends whose fresh store is cheap enough to open once per example.
MODEL_URLS = ["sqlite://"]

Cas = Literal["none", "right", "wrong"]


@dataclasses.dataclass(frozen=True)
class Create:
    key: str
    value: bytes


@dataclasses.dataclass(frozen=True)
class Update:
    key: str
    value: bytes
    cas: Cas


@dataclasses.dataclass(frozen=True)
class Delete:
    key: str
    cas: Cas


@dataclasses.dataclass(frozen=True)
class Burst:
    """Unconditional writes of distinct keys, all at once (None: delete)."""

    writes: tuple[tuple[str, bytes | None], ...]


@dataclasses.dataclass(frozen=True)
class Get:
    key: str
    back: int | None


@dataclasses.dataclass(frozen=True)
class List:
    prefix: str
    limit: int
    back: int | None


@dataclasses.dataclass(frozen=True)
class Continue:
    """The next page of one of the unfinished lists."""

    which: int


@dataclasses.dataclass(frozen=True)
class Compact:
    back: int


@dataclasses.dataclass(frozen=True)
class Watch:
    prefix: str
    back: int | None


Op = Create | Update | Delete | Burst | Get | List | Continue | Compact | Watch

keys = st.sampled_from(KEYS)
values = st.binary(max_size=3)
cas = st.sampled_from(["none", "right", "right", "wrong"])
# How far back from the current revision; 0 is one past it (the future).
backs = st.integers(min_value=0, max_value=15)

writes: st.SearchStrategy[Op] = st.one_of(
    st.builds(Create, keys, values),
    st.builds(Update, keys, values, cas),
    st.builds(Delete, keys, cas),
    st.builds(
        Burst,
        st.lists(
            st.tuples(keys, st.none() | values), min_size=2, max_size=6, unique_by=lambda w: w[0]
        ).map(tuple),
    ),
)
others: st.SearchStrategy[Op] = st.one_of(
    st.builds(Get, keys, st.none() | backs),
    st.builds(List, st.sampled_from(PREFIXES), st.sampled_from([0, 1, 1, 2, 3]), st.none() | backs),
    st.builds(Continue, st.integers(0, 7)),
    st.builds(Compact, backs),
    st.builds(Watch, st.sampled_from(PREFIXES), st.none() | backs),
)
# Mostly writes, so that there is history to read, list, compact and watch.
ops: st.SearchStrategy[Op] = st.one_of(writes, writes, others)


def _view(event: storage.Event) -> tuple[object, ...]:
    """What an event documents (a DELETE's kv only has its key and revision)."""
    if event.type is storage.EventType.DELETE:
        return (event.type, event.kv.key, event.kv.value, event.kv.mod_revision, event.prev_kv)
    return (event.type, event.kv, event.prev_kv)


@dataclasses.dataclass
class Model:
    revision: int
    compact_revision: int = 0
    live: dict[str, storage.KeyValue] = dataclasses.field(default_factory=dict)
    events: list[storage.Event] = dataclasses.field(default_factory=list)

    def revision_back(self, back: int) -> int:
        return max(1, self.revision + 1 - back)

    def readable(self, revision: int) -> type[storage.StorageError] | None:
        """The error a read at `revision` must raise, if any."""
        if revision > self.revision:
            return storage.FutureRevision
        if revision < self.compact_revision:
            return storage.Compacted
        return None

    def at(self, revision: int) -> dict[str, storage.KeyValue]:
        state: dict[str, storage.KeyValue] = {}
        for event in self.events:
            if event.revision > revision:
                break
            if event.type is storage.EventType.PUT:
                state[event.kv.key] = event.kv
            else:
                del state[event.kv.key]
        return state

    def put(self, key: str, value: bytes, revision: int) -> storage.KeyValue:
        """Record a create or update the store acknowledged at `revision`."""
        assert revision > self.revision
        prev = self.live.get(key)
        kv = storage.KeyValue(
            key=key,
            value=value,
            create_revision=prev.create_revision if prev else revision,
            mod_revision=revision,
            version=prev.version + 1 if prev else 1,
        )
        self.live[key] = kv
        self.events.append(storage.Event(type=storage.EventType.PUT, kv=kv, prev_kv=prev))
        self.revision = revision
        return kv

    def delete(self, key: str, revision: int) -> storage.Deleted:
        assert revision > self.revision
        prev = self.live.pop(key)
        tombstone = storage.KeyValue(
            key=key, value=b"", create_revision=0, mod_revision=revision, version=0
        )
        self.events.append(storage.Event(type=storage.EventType.DELETE, kv=tombstone, prev_kv=prev))
        self.revision = revision
        return storage.Deleted(revision=revision, prev_kv=prev)


@dataclasses.dataclass
class PendingList:
    prefix: str
    limit: int
    revision: int
    last_key: str
    continue_key: str


@dataclasses.dataclass
class OpenWatch:
    prefix: str
    start: int
    events: AsyncIterator[storage.Event]
    must_fail: bool


class Runner:
    """Applies ops to a store and to the model, and compares every answer."""

    def __init__(
        self, store: storage.Backend, model: Model, stack: contextlib.AsyncExitStack
    ) -> None:
        self.store = store
        self.model = model
        self.stack = stack
        self.lists: list[PendingList] = []
        self.watches: list[OpenWatch] = []

    async def apply(self, op: Op) -> None:
        match op:
            case Create():
                await self.create(op.key, op.value)
            case Update():
                await self.update(op)
            case Delete():
                await self.delete(op)
            case Burst():
                await self.burst(op)
            case Get():
                await self.get(op)
            case List():
                await self.start_list(op)
            case Continue():
                if self.lists:
                    await self.next_page(self.lists[op.which % len(self.lists)])
            case Compact():
                await self.compact(op)
            case Watch():
                await self.watch(op)
        assert await self.store.current_revision() == self.model.revision

    def _expected_revision(self, key: str, cas: Cas) -> int | None:
        kv = self.model.live.get(key)
        if cas == "none":
            return None
        if kv is None:
            return self.model.revision or 1
        return kv.mod_revision if cas == "right" else kv.mod_revision - 1

    async def create(self, key: str, value: bytes) -> None:
        if key in self.model.live:
            with pytest.raises(storage.KeyExists):
                await self.store.create(key, value)
            return
        kv = await self.store.create(key, value)
        assert kv == self.model.put(key, value, kv.mod_revision)

    async def update(self, op: Update) -> None:
        expected = self._expected_revision(op.key, op.cas)
        if op.key not in self.model.live:
            with pytest.raises(storage.NotFound):
                await self.store.update(op.key, op.value, expected_revision=expected)
        elif op.cas == "wrong":
            with pytest.raises(storage.Conflict):
                await self.store.update(op.key, op.value, expected_revision=expected)
        else:
            kv = await self.store.update(op.key, op.value, expected_revision=expected)
            assert kv == self.model.put(op.key, op.value, kv.mod_revision)

    async def delete(self, op: Delete) -> None:
        expected = self._expected_revision(op.key, op.cas)
        if op.key not in self.model.live:
            with pytest.raises(storage.NotFound):
                await self.store.delete(op.key, expected_revision=expected)
        elif op.cas == "wrong":
            with pytest.raises(storage.Conflict):
                await self.store.delete(op.key, expected_revision=expected)
        else:
            deleted = await self.store.delete(op.key, expected_revision=expected)
            assert deleted == self.model.delete(op.key, deleted.revision)

    async def burst(self, op: Burst) -> None:
        done: list[tuple[int, str, bytes | None, object]] = []
        missing: list[str] = []

        async def write(key: str, value: bytes | None) -> None:
            outcome: storage.KeyValue | storage.Deleted
            if value is None:
                try:
                    outcome = await self.store.delete(key)
                except storage.NotFound:
                    missing.append(key)
                    return
                done.append((outcome.revision, key, value, outcome))
            else:
                if key in self.model.live:
                    outcome = await self.store.update(key, value)
                else:
                    outcome = await self.store.create(key, value)
                done.append((outcome.mod_revision, key, value, outcome))

        async with trio.open_nursery() as nursery:
            for key, value in op.writes:
                nursery.start_soon(write, key, value)

        assert sorted(missing) == sorted(
            key for key, value in op.writes if value is None and key not in self.model.live
        )
        assert len({revision for revision, *_ in done}) == len(done)
        for revision, key, value, outcome in sorted(done, key=lambda d: d[0]):
            if value is None:
                assert outcome == self.model.delete(key, revision)
            else:
                assert outcome == self.model.put(key, value, revision)

    async def get(self, op: Get) -> None:
        if op.back is None:
            expected = self.model.live.get(op.key)
            revision = None
        else:
            revision = self.model.revision_back(op.back)
            error = self.model.readable(revision)
            if error is not None:
                with pytest.raises(error):
                    await self.store.get(op.key, revision=revision)
                return
            expected = self.model.at(revision).get(op.key)
        if expected is None:
            with pytest.raises(storage.NotFound):
                await self.store.get(op.key, revision=revision)
        else:
            assert await self.store.get(op.key, revision=revision) == expected

    def _expected_page(
        self, prefix: str, limit: int, revision: int, after: str | None
    ) -> tuple[list[storage.KeyValue], bool]:
        state = self.model.at(revision)
        items = [
            state[key]
            for key in sorted(state)
            if key.startswith(prefix) and (after is None or key > after)
        ]
        if limit and len(items) > limit:
            return items[:limit], True
        return items, False

    async def start_list(self, op: List) -> None:
        revision = None if op.back is None else self.model.revision_back(op.back)
        if revision is not None and (error := self.model.readable(revision)) is not None:
            with pytest.raises(error):
                await self.store.list(op.prefix, revision=revision, limit=op.limit)
            return
        page = await self.store.list(op.prefix, revision=revision, limit=op.limit)
        assert page.revision == (self.model.revision if revision is None else revision)
        self._check_page(page, PendingList(op.prefix, op.limit, page.revision, "", ""), None)

    async def next_page(self, pending: PendingList) -> None:
        self.lists.remove(pending)
        if pending.revision < self.model.compact_revision:
            with pytest.raises(storage.Compacted):
                await self._list_on(pending)
            return
        page = await self._list_on(pending)
        assert page.revision == pending.revision
        self._check_page(page, pending, pending.last_key)

    async def _list_on(self, pending: PendingList) -> storage.Page:
        return await self.store.list(
            pending.prefix,
            revision=pending.revision,
            limit=pending.limit,
            continue_key=pending.continue_key,
        )

    def _check_page(self, page: storage.Page, pending: PendingList, after: str | None) -> None:
        items, more = self._expected_page(pending.prefix, pending.limit, page.revision, after)
        assert list(page.items) == items
        assert (page.continue_key is not None) == more
        if page.continue_key is not None:
            pending.last_key = items[-1].key
            pending.continue_key = page.continue_key
            self.lists.append(pending)

    async def compact(self, op: Compact) -> None:
        revision = self.model.revision_back(op.back)
        if revision > self.model.revision:
            with pytest.raises(storage.FutureRevision):
                await self.store.compact(revision)
        elif revision <= self.model.compact_revision:
            with pytest.raises(storage.Compacted):
                await self.store.compact(revision)
        else:
            await self.store.compact(revision)
            self.model.compact_revision = revision
        assert await self.store.compact_revision() == self.model.compact_revision

    async def watch(self, op: Watch) -> None:
        from_revision = None if op.back is None else self.model.revision_back(op.back - 1)
        must_fail = from_revision is not None and from_revision < self.model.compact_revision
        try:
            events = await self.stack.enter_async_context(
                self.store.watch(op.prefix, from_revision=from_revision)
            )
        except storage.Compacted:
            assert must_fail
            return
        start = self.model.revision + 1 if from_revision is None else from_revision
        self.watches.append(OpenWatch(op.prefix, start, events, must_fail))

    async def finish(self) -> None:
        """Finish every list; end every watch with a write it must see; check it all."""
        while self.lists:
            await self.next_page(self.lists[0])
        for prefix in sorted({watch.prefix for watch in self.watches}):
            await self.create(prefix + "~end", b"")
        for watch in self.watches:
            # A watch from a future revision may need one or two more writes to see one.
            while not self._matching(watch):
                await self.update(Update(watch.prefix + "~end", b"again", "none"))
        for watch in self.watches:
            await self.check_watch(watch)
        assert list((await self.store.list("")).items) == [
            self.model.live[key] for key in sorted(self.model.live)
        ]
        assert await self.store.compact_revision() == self.model.compact_revision

    def _matching(self, watch: OpenWatch) -> list[storage.Event]:
        return [
            event
            for event in self.model.events
            if event.revision >= watch.start and event.kv.key.startswith(watch.prefix)
        ]

    async def check_watch(self, watch: OpenWatch) -> None:
        matching = self._matching(watch)
        expected = [_view(event) for event in matching]
        last = matching[-1].revision
        received: list[storage.Event] = []
        try:
            with trio.fail_after(PROMPTLY):
                while not received or received[-1].revision < last:
                    received.append(await anext(watch.events))
        except storage.Compacted:
            # Allowed only once history the watch still needed had been compacted.
            needed = received[-1].revision + 1 if received else watch.start
            assert needed < self.model.compact_revision
            assert [_view(event) for event in received] == expected[: len(received)]
            return
        assert not watch.must_fail
        assert [_view(event) for event in received] == expected


async def _run(url: str, script: list[Op]) -> None:
    options = storage.Options(auto_compact=False)
    async with storage.open_store(url, options) as store, contextlib.AsyncExitStack() as stack:
        # A fresh store of a shared server (etcd) starts at that server's revisions.
        model = Model(
            revision=await store.current_revision(),
            compact_revision=await store.compact_revision(),
        )
        runner = Runner(store, model, stack)
        for op in script:
            await runner.apply(op)
        await runner.finish()


@pytest.mark.parametrize("url", MODEL_URLS)
@hypothesis.settings(max_examples=120, deadline=None)
@hypothesis.given(script=st.lists(ops, min_size=20, max_size=80))
def test_store_behaves_like_the_model(url: str, script: list[Op]) -> None:
    trio.run(_run, url, script)


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(script=st.lists(ops, min_size=20, max_size=80))
def test_etcd_store_behaves_like_the_model(
    etcd_server: storage.LocalEtcd, script: list[Op]
) -> None:
    """The same on etcd: each example on a key prefix of its own of the session's etcd."""
    trio.run(_run, f"{etcd_server.url}/model-{uuid.uuid4().hex}", script)
