"""The contract every storage backend keeps, one behaviour per test.

Each test runs against every URL in `conftest.BACKEND_URLS`. The tests only use the
`Backend` protocol, so a new backend passes by behaving like etcd, not like SQLite.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from arktos_lite import storage

from .conftest import OpenStore

# Generous wall-clock bound on anything that should happen promptly.
PROMPTLY = 10.0
# How long a slow watcher leaves its events unread.
SLOW_READER = 0.5


async def _next(events: AsyncIterator[storage.Event]) -> storage.Event:
    with trio.fail_after(PROMPTLY):
        return await anext(events)


async def _take(events: AsyncIterator[storage.Event], count: int) -> list[storage.Event]:
    return [await _next(events) for _ in range(count)]


async def _first_event(
    store: storage.Backend, prefix: str, *, from_revision: int | None
) -> storage.Event:
    async with store.watch(prefix, from_revision=from_revision) as events:
        return await _next(events)


async def _all_pages(
    store: storage.Backend, prefix: str, *, limit: int, revision: int | None = None
) -> list[storage.Page]:
    pages = [await store.list(prefix, revision=revision, limit=limit)]
    while pages[-1].continue_key is not None:
        pages.append(
            await store.list(
                prefix,
                revision=pages[0].revision,
                limit=limit,
                continue_key=pages[-1].continue_key,
            )
        )
    return pages


async def _read_until_error(
    events: AsyncIterator[storage.Event], received: list[storage.Event]
) -> None:
    while True:
        received.append(await _next(events))


def _keys(page: storage.Page) -> list[str]:
    return [kv.key for kv in page.items]


def _deletion(event: storage.Event) -> tuple[object, ...]:
    """What a DELETE event documents: the key, the delete's revision, the deleted value."""
    return (event.type, event.kv.key, event.kv.value, event.kv.mod_revision, event.prev_kv)


# Create


async def test_create_returns_the_new_key_value(store: storage.Backend) -> None:
    kv = await store.create("/registry/pods/a", b"spec")

    assert kv.key == "/registry/pods/a"
    assert kv.value == b"spec"
    assert kv.create_revision == kv.mod_revision
    assert kv.version == 1
    assert kv.lease == 0
    assert await store.get("/registry/pods/a") == kv
    assert await store.current_revision() == kv.mod_revision


async def test_create_of_an_existing_key_raises_key_exists_and_changes_nothing(
    store: storage.Backend,
) -> None:
    original = await store.create("/a", b"first")

    with pytest.raises(storage.KeyExists) as caught:
        await store.create("/a", b"second")

    assert caught.value.key == "/a"
    assert await store.get("/a") == original
    assert await store.current_revision() == original.mod_revision


async def test_revisions_strictly_increase_across_writes(store: storage.Backend) -> None:
    revisions = [
        (await store.create("/a", b"1")).mod_revision,
        (await store.create("/b", b"1")).mod_revision,
        (await store.update("/a", b"2")).mod_revision,
        (await store.delete("/b")).revision,
        (await store.create("/b", b"again")).mod_revision,
        (await store.delete("/a")).revision,
    ]

    assert revisions == sorted(set(revisions))
    assert revisions[0] >= 1


# Update


async def test_update_at_the_expected_revision_bumps_version_and_keeps_create_revision(
    store: storage.Backend,
) -> None:
    created = await store.create("/a", b"1")

    updated = await store.update("/a", b"2", expected_revision=created.mod_revision)

    assert updated.value == b"2"
    assert updated.version == 2
    assert updated.create_revision == created.create_revision
    assert updated.mod_revision > created.mod_revision
    assert await store.get("/a") == updated


async def test_update_without_expected_revision_overwrites(store: storage.Backend) -> None:
    created = await store.create("/a", b"1")
    await store.update("/a", b"2")

    third = await store.update("/a", b"3")

    assert third.version == 3
    assert third.create_revision == created.create_revision
    assert (await store.get("/a")).value == b"3"


async def test_update_at_a_stale_revision_raises_conflict_and_keeps_value(
    store: storage.Backend,
) -> None:
    created = await store.create("/a", b"1")
    latest = await store.update("/a", b"2")

    with pytest.raises(storage.Conflict) as caught:
        await store.update("/a", b"lost", expected_revision=created.mod_revision)

    assert caught.value.key == "/a"
    assert caught.value.expected == created.mod_revision
    assert caught.value.actual == latest.mod_revision
    assert await store.get("/a") == latest
    assert await store.current_revision() == latest.mod_revision


async def test_update_of_a_missing_key_raises_not_found(store: storage.Backend) -> None:
    with pytest.raises(storage.NotFound) as caught:
        await store.update("/missing", b"x")

    assert caught.value.key == "/missing"
    with pytest.raises(storage.NotFound):
        await store.get("/missing")


async def test_update_of_a_deleted_key_raises_not_found(store: storage.Backend) -> None:
    created = await store.create("/a", b"1")
    await store.delete("/a")

    with pytest.raises(storage.NotFound):
        await store.update("/a", b"2", expected_revision=created.mod_revision)


# Delete


async def test_delete_returns_its_revision_and_the_deleted_value(store: storage.Backend) -> None:
    created = await store.create("/a", b"1")

    deleted = await store.delete("/a")

    assert deleted.prev_kv == created
    assert deleted.revision > created.mod_revision
    assert await store.current_revision() == deleted.revision
    with pytest.raises(storage.NotFound):
        await store.get("/a")


async def test_delete_at_the_expected_revision_succeeds(store: storage.Backend) -> None:
    created = await store.create("/a", b"1")

    deleted = await store.delete("/a", expected_revision=created.mod_revision)

    assert deleted.prev_kv == created
    with pytest.raises(storage.NotFound):
        await store.get("/a")


async def test_delete_at_a_wrong_revision_raises_conflict_and_keeps_key(
    store: storage.Backend,
) -> None:
    created = await store.create("/a", b"1")
    latest = await store.update("/a", b"2")

    with pytest.raises(storage.Conflict) as caught:
        await store.delete("/a", expected_revision=created.mod_revision)

    assert caught.value.expected == created.mod_revision
    assert caught.value.actual == latest.mod_revision
    assert await store.get("/a") == latest


async def test_delete_of_a_missing_key_raises_not_found(store: storage.Backend) -> None:
    await store.create("/a", b"1")
    await store.delete("/a")
    revision = await store.current_revision()

    with pytest.raises(storage.NotFound):
        await store.delete("/a")
    with pytest.raises(storage.NotFound):
        await store.delete("/never")

    assert await store.current_revision() == revision


async def test_recreate_after_delete_starts_a_new_life(store: storage.Backend) -> None:
    first = await store.create("/a", b"1")
    await store.update("/a", b"2")
    deleted = await store.delete("/a")

    again = await store.create("/a", b"new")

    assert again.version == 1
    assert again.create_revision == again.mod_revision
    assert again.create_revision > deleted.revision > first.create_revision


# Get


async def test_get_of_a_missing_key_raises_not_found(store: storage.Backend) -> None:
    await store.create("/a", b"1")

    with pytest.raises(storage.NotFound) as caught:
        await store.get("/b")

    assert caught.value.key == "/b"


async def test_get_at_an_old_revision_returns_the_old_value(store: storage.Backend) -> None:
    first = await store.create("/a", b"1")
    second = await store.update("/a", b"2")
    await store.create("/other", b"x")
    await store.update("/a", b"3")

    assert await store.get("/a", revision=first.mod_revision) == first
    assert await store.get("/a", revision=second.mod_revision) == second
    assert await store.get("/a", revision=second.mod_revision + 1) == second


async def test_get_at_a_revision_before_creation_raises_not_found(store: storage.Backend) -> None:
    before = await store.create("/before", b"x")
    await store.create("/a", b"1")

    with pytest.raises(storage.NotFound):
        await store.get("/a", revision=before.mod_revision)


async def test_get_at_an_old_revision_finds_a_key_deleted_since(store: storage.Backend) -> None:
    created = await store.create("/a", b"1")
    deleted = await store.delete("/a")

    assert await store.get("/a", revision=created.mod_revision) == created
    with pytest.raises(storage.NotFound):
        await store.get("/a", revision=deleted.revision)


async def test_get_at_a_future_revision_raises_future_revision(store: storage.Backend) -> None:
    kv = await store.create("/a", b"1")

    with pytest.raises(storage.FutureRevision) as caught:
        await store.get("/a", revision=kv.mod_revision + 1)

    assert (caught.value.requested, caught.value.current) == (kv.mod_revision + 1, kv.mod_revision)


# List

TRICKY_KEYS = [
    "/a",
    "/a/",
    "/a/b",
    "/a/b/c",
    "/a/z",
    "/a/\x7f",
    "/a/é",
    "/a/中文",
    "/a/\U0001f600",
    "/a/\U0010ffff",
    "/a0",
    "/a0/x",
    "/ab",
    "/a.b",
    "/b/x",
    "/\U0010ffff",
    "/\U0010ffff/x",
    "0",
]


@pytest.mark.parametrize("prefix", ["/a/", "/a", "/a/b", "/\U0010ffff", "/", ""])
async def test_list_returns_exactly_the_prefix_in_key_order(
    store: storage.Backend, prefix: str
) -> None:
    for key in reversed(TRICKY_KEYS):
        await store.create(key, key.encode())

    page = await store.list(prefix)

    assert _keys(page) == sorted(key for key in TRICKY_KEYS if key.startswith(prefix))
    assert all(kv.value == kv.key.encode() for kv in page.items)
    assert page.continue_key is None
    assert page.revision == await store.current_revision()


async def test_list_of_an_empty_prefix_range_is_empty(store: storage.Backend) -> None:
    await store.create("/a/x", b"")

    page = await store.list("/b/")

    assert page.items == ()
    assert page.continue_key is None


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 13, 14, 15, 100])
async def test_list_pages_cover_every_key_once(store: storage.Backend, limit: int) -> None:
    keys = sorted(key for key in TRICKY_KEYS if key.startswith("/a"))
    for key in keys:
        await store.create(key, b"")

    pages = await _all_pages(store, "/a", limit=limit)

    assert [key for page in pages for key in _keys(page)] == keys
    assert all(len(page.items) == limit for page in pages[:-1])
    # The page holding the last key says it is the last: no empty page to fetch.
    assert len(pages) == math.ceil(len(keys) / limit)
    assert {page.revision for page in pages} == {pages[0].revision}


async def test_list_pages_read_one_snapshot_despite_writes_between_pages(
    store: storage.Backend,
) -> None:
    for i in range(10):
        await store.create(f"/p/{i:02}", b"original")
    snapshot = await store.list("/p/")

    pages = [await store.list("/p/", limit=3)]
    await store.delete("/p/00")  # already listed
    await store.delete("/p/04")  # not listed yet
    await store.update("/p/05", b"changed")
    await store.create("/p/035", b"new")
    await store.create("/p/99", b"new")
    while pages[-1].continue_key is not None:
        pages.append(
            await store.list(
                "/p/", revision=pages[0].revision, limit=3, continue_key=pages[-1].continue_key
            )
        )
        await store.update(f"/p/0{len(pages) + 4}", b"changed again")

    assert [kv for page in pages for kv in page.items] == list(snapshot.items)
    assert {page.revision for page in pages} == {snapshot.revision}


async def test_list_at_an_old_revision_shows_the_old_state(store: storage.Backend) -> None:
    kept = await store.create("/l/kept", b"old")
    gone = await store.create("/l/gone", b"x")
    then = await store.current_revision()
    await store.update("/l/kept", b"new")
    await store.delete("/l/gone")
    await store.create("/l/later", b"x")
    await store.create("/l/gone", b"reborn")

    old = await store.list("/l/", revision=then)

    assert old.items == (gone, kept)
    assert old.revision == then
    assert _keys(await store.list("/l/")) == ["/l/gone", "/l/kept", "/l/later"]


async def test_list_at_a_future_revision_raises_future_revision(store: storage.Backend) -> None:
    kv = await store.create("/a", b"")

    with pytest.raises(storage.FutureRevision):
        await store.list("/", revision=kv.mod_revision + 1)


# Compaction


async def test_compaction_forgets_older_revisions_only(store: storage.Backend) -> None:
    ancient = await store.create("/c/ancient", b"long ago")
    await store.create("/c/k", b"1")
    await store.update("/c/k", b"2")
    await store.create("/c/gone", b"x")
    await store.delete("/c/gone")
    at = await store.update("/c/k", b"3")
    await store.create("/c/later", b"x")
    await store.update("/c/k", b"4")

    await store.compact(at.mod_revision)

    assert await store.compact_revision() == at.mod_revision
    with pytest.raises(storage.Compacted) as caught:
        await store.get("/c/k", revision=at.mod_revision - 1)
    assert caught.value.requested == at.mod_revision - 1
    assert caught.value.compact_revision == at.mod_revision
    with pytest.raises(storage.Compacted):
        await store.list("/c/", revision=at.mod_revision - 1)
    assert await store.get("/c/k", revision=at.mod_revision) == at
    assert await store.get("/c/ancient", revision=at.mod_revision) == ancient
    with pytest.raises(storage.NotFound):
        await store.get("/c/gone", revision=at.mod_revision)
    assert (await store.list("/c/", revision=at.mod_revision)).items == (ancient, at)
    assert _keys(await store.list("/c/")) == ["/c/ancient", "/c/k", "/c/later"]
    assert (await store.get("/c/k")).value == b"4"


async def test_compact_to_the_current_revision_keeps_the_current_state(
    store: storage.Backend,
) -> None:
    a = await store.create("/a", b"1")
    await store.create("/b", b"1")
    b = await store.update("/b", b"2")
    deleted = await store.delete("/a")

    await store.compact(deleted.revision)

    assert (await store.list("/")).items == (b,)
    assert await store.get("/b", revision=deleted.revision) == b
    with pytest.raises(storage.Compacted):
        await store.get("/a", revision=a.mod_revision)


async def test_compact_beyond_the_current_revision_raises_future_revision(
    store: storage.Backend,
) -> None:
    kv = await store.create("/a", b"")
    compacted = await store.compact_revision()

    with pytest.raises(storage.FutureRevision):
        await store.compact(kv.mod_revision + 1)

    assert await store.compact_revision() == compacted
    assert await store.get("/a", revision=kv.mod_revision) == kv


async def test_compact_at_or_below_the_compact_revision_raises_compacted(
    store: storage.Backend,
) -> None:
    first = await store.create("/a", b"")
    second = await store.update("/a", b"")
    await store.compact(second.mod_revision)

    with pytest.raises(storage.Compacted):
        await store.compact(second.mod_revision)
    with pytest.raises(storage.Compacted):
        await store.compact(first.mod_revision)

    assert await store.compact_revision() == second.mod_revision


async def test_compacting_at_revision_one_again_raises_compacted(store: storage.Backend) -> None:
    await store.create("/a", b"")
    # A fresh prefix of a shared etcd may start past a compaction already.
    if await store.compact_revision() < 1:
        await store.compact(1)
        assert await store.compact_revision() == 1

    with pytest.raises(storage.Compacted):
        await store.compact(1)


async def test_history_is_compacted_automatically_keeping_what_the_options_say(
    open_store: OpenStore,
) -> None:
    options = storage.Options(history_seconds=0, history_revisions=10, compact_interval=0.05)
    async with open_store(options) as store:
        kvs = [await store.create("/auto/k", b"0")]
        for i in range(1, 40):
            kvs.append(await store.update("/auto/k", str(i).encode()))
        last = kvs[-1].mod_revision

        # Nothing announces a compaction: look until the background task has done it.
        with trio.fail_after(PROMPTLY):
            while True:
                if await store.compact_revision() >= last - 10:
                    break
                await trio.sleep(0.05)

        assert await store.compact_revision() == last - 10
        assert await store.get("/auto/k", revision=last - 10) == kvs[-11]
        with pytest.raises(storage.Compacted):
            await store.get("/auto/k", revision=last - 11)


async def test_watch_from_a_compacted_revision_raises_compacted(store: storage.Backend) -> None:
    first = await store.create("/a", b"1")
    second = await store.update("/a", b"2")
    await store.compact(second.mod_revision)

    with pytest.raises(storage.Compacted):
        await _first_event(store, "/", from_revision=first.mod_revision)
    event = await _first_event(store, "/", from_revision=second.mod_revision)
    assert event.kv == second
    assert event.prev_kv == first


# Watch


async def test_watch_without_revision_sees_only_later_changes(store: storage.Backend) -> None:
    await store.create("/w/before", b"")
    async with store.watch("/w/") as events:
        later = await store.create("/w/after", b"")

        event = await _next(events)

    assert event.type is storage.EventType.PUT
    assert event.kv == later


async def test_watch_from_the_next_revision_sees_only_later_changes(
    store: storage.Backend,
) -> None:
    await store.create("/w/before", b"")
    start = await store.current_revision() + 1
    later = await store.create("/w/after", b"")
    async with store.watch("/w/", from_revision=start) as events:
        event = await _next(events)

    assert event.kv == later


async def test_watch_events_carry_previous_values(store: storage.Backend) -> None:
    created = await store.create("/w/a", b"1")
    updated = await store.update("/w/a", b"2")
    deleted = await store.delete("/w/a")

    async with store.watch("/w/", from_revision=created.mod_revision) as events:
        put, update, delete = await _take(events, 3)

    assert (put.type, put.kv, put.prev_kv) == (storage.EventType.PUT, created, None)
    assert (update.type, update.kv, update.prev_kv) == (storage.EventType.PUT, updated, created)
    assert _deletion(delete) == (storage.EventType.DELETE, "/w/a", b"", deleted.revision, updated)
    assert [e.revision for e in (put, update, delete)] == [
        created.mod_revision,
        updated.mod_revision,
        deleted.revision,
    ]


async def test_live_delete_event_has_the_delete_revision(store: storage.Backend) -> None:
    created = await store.create("/w/a", b"1")
    async with store.watch("/w/") as events:
        deleted = await store.delete("/w/a")
        event = await _next(events)

    assert _deletion(event) == (storage.EventType.DELETE, "/w/a", b"", deleted.revision, created)
    assert event.revision == deleted.revision


async def test_watch_only_sees_its_prefix(store: storage.Backend) -> None:
    async with store.watch("/a/") as events:
        for key in TRICKY_KEYS:
            await store.create(key, b"")
        inside = [key for key in TRICKY_KEYS if key.startswith("/a/")]

        seen = await _take(events, len(inside))
        sentinel = await store.create("/a/~sentinel", b"")
        after = await _next(events)

    assert [event.kv.key for event in seen] == inside
    assert after.kv == sentinel


async def test_watch_replays_history_then_continues_live_without_gap_or_duplicate(
    store: storage.Backend,
) -> None:
    """A watch far in the past catches up while writers keep going."""
    writers, writes_each = 30, 50
    expected: list[storage.KeyValue] = []
    start = await store.current_revision() + 1

    async def writer(name: str, count: int) -> None:
        kv = await store.create(f"/w/{name}", b"0")
        await store.create(f"/elsewhere/{name}", b"0")
        expected.append(kv)
        for i in range(1, count):
            value = str(i).encode()
            kv = await store.update(f"/w/{name}", value, expected_revision=kv.mod_revision)
            expected.append(kv)

    async with trio.open_nursery() as nursery:
        for n in range(writers):
            nursery.start_soon(writer, f"history-{n}", writes_each)
    async with store.watch("/w/", from_revision=start) as events:
        received: list[storage.Event] = []
        async with trio.open_nursery() as nursery:
            for n in range(writers):
                nursery.start_soon(writer, f"live-{n}", 10)
            with trio.fail_after(60):
                while len(received) < writers * (writes_each + 10):
                    received.append(await anext(events))
        sentinel = await store.create("/w/~sentinel", b"")
        after = await _next(events)

    revisions = [event.revision for event in received]
    assert revisions == sorted(set(revisions))
    assert [event.kv for event in received] == sorted(expected, key=lambda kv: kv.mod_revision)
    assert after.kv == sentinel


async def test_slow_watcher_is_cut_off_and_never_blocks_writers(open_store: OpenStore) -> None:
    buffer = 10
    async with (
        open_store(storage.Options(watch_buffer=buffer)) as store,
        store.watch("/o/") as events,
    ):
        await store.create("/o/first", b"")
        assert (await _next(events)).kv.key == "/o/first"

        with trio.fail_after(PROMPTLY):
            async with trio.open_nursery() as nursery:
                for i in range(3 * buffer):
                    nursery.start_soon(store.create, f"/o/{i:02}", b"")
        written = await store.list("/o/")
        # A while without reading: a backend that hears of its writes from its server
        # (etcd) gets the events a moment after the acknowledgements.
        await trio.sleep(SLOW_READER)

        received: list[storage.Event] = []
        with pytest.raises(storage.WatchOverflow):
            await _read_until_error(events, received)

    assert len(written.items) == 3 * buffer + 1
    assert len(received) <= buffer
    in_order = sorted(written.items, key=lambda kv: kv.mod_revision)
    assert [event.kv for event in received] == in_order[1 : 1 + len(received)]


async def test_watcher_within_its_buffer_is_not_cut_off(open_store: OpenStore) -> None:
    buffer = 10
    async with (
        open_store(storage.Options(watch_buffer=buffer)) as store,
        store.watch("/o/") as events,
    ):
        await store.create("/o/first", b"")
        await _next(events)
        written = [await store.create(f"/o/{i:02}", b"") for i in range(buffer)]

        received = await _take(events, buffer)

    assert [event.kv for event in received] == written


async def test_unread_watcher_gets_every_change_or_watch_overflow(open_store: OpenStore) -> None:
    buffer = 10
    received: list[storage.Event] = []
    async with (
        open_store(storage.Options(watch_buffer=buffer)) as store,
        store.watch("/o/") as events,
    ):
        with trio.fail_after(PROMPTLY):
            written = [await store.create(f"/o/{i:02}", b"") for i in range(3 * buffer)]
        try:
            while len(received) < len(written):
                received.append(await _next(events))
        except storage.WatchOverflow:
            pass
        else:
            sentinel = await store.create("/o/~sentinel", b"")
            assert (await _next(events)).kv == sentinel

    assert [event.kv for event in received] == written[: len(received)]


async def test_pending_watch_ends_with_store_closed_when_the_store_closes(
    open_store: OpenStore,
) -> None:
    closing = trio.Event()

    async def hold_store(*, task_status: trio.TaskStatus[storage.Backend]) -> None:
        async with open_store() as store:
            task_status.started(store)
            await closing.wait()

    async with trio.open_nursery() as nursery:
        store: storage.Backend = await nursery.start(hold_store)
        async with store.watch("/") as events:
            await store.create("/a", b"")
            await _next(events)
            closing.set()
            with pytest.raises(storage.StoreClosed):
                await _next(events)


async def test_closed_store_refuses_writes(open_store: OpenStore) -> None:
    async with open_store() as store:
        await store.create("/a", b"")

    with pytest.raises(storage.StoreClosed):
        await store.create("/b", b"")
    with pytest.raises(storage.StoreClosed):
        await store.update("/a", b"")


async def test_closed_store_refuses_reads(open_store: OpenStore) -> None:
    async with open_store() as store:
        await store.create("/a", b"")

    with pytest.raises(storage.StoreClosed):
        await store.get("/a")
    with pytest.raises(storage.StoreClosed):
        await store.list("/")


# Concurrency


async def test_concurrent_creates_get_distinct_revisions_and_are_all_listed(
    store: storage.Backend,
) -> None:
    created: list[storage.KeyValue] = []

    async def create(i: int) -> None:
        created.append(await store.create(f"/many/{i:03}", str(i).encode()))

    async with trio.open_nursery() as nursery:
        for i in range(200):
            nursery.start_soon(create, i)

    revisions = [kv.mod_revision for kv in created]
    assert len(set(revisions)) == 200
    assert await store.current_revision() == max(revisions)
    listed = await store.list("/many/")
    assert listed.items == tuple(sorted(created, key=lambda kv: kv.key))


async def _race_update(
    store: storage.Backend,
    key: str,
    values: list[bytes],
    *,
    expected_revision: int,
) -> tuple[list[storage.KeyValue], list[storage.Conflict]]:
    """Update `key` once per value, all at once, each expecting `expected_revision`."""
    winners: list[storage.KeyValue] = []
    losers: list[storage.Conflict] = []

    async def attempt(value: bytes) -> None:
        try:
            winners.append(await store.update(key, value, expected_revision=expected_revision))
        except storage.Conflict as conflict:
            losers.append(conflict)

    async with trio.open_nursery() as nursery:
        for value in values:
            nursery.start_soon(attempt, value)
    return winners, losers


async def test_concurrent_compare_and_swap_has_exactly_one_winner_per_round(
    store: storage.Backend,
) -> None:
    kv = await store.create("/cas", b"start")
    for round_ in range(5):
        values = [f"{round_}-{i}".encode() for i in range(20)]

        winners, losers = await _race_update(
            store, "/cas", values, expected_revision=kv.mod_revision
        )

        assert len(winners) == 1
        assert len(losers) == 19
        (winner,) = winners
        assert {(c.expected, c.actual) for c in losers} == {(kv.mod_revision, winner.mod_revision)}
        assert winner.version == kv.version + 1
        assert await store.get("/cas") == winner
        kv = winner


async def test_a_failing_write_does_not_fail_concurrent_writes(store: storage.Backend) -> None:
    existing = await store.create("/m/existing", b"keep")
    succeeded: list[storage.KeyValue] = []
    failed: list[storage.KeyExists] = []

    async def attempt(key: str) -> None:
        try:
            succeeded.append(await store.create(key, b"new"))
        except storage.KeyExists as error:
            failed.append(error)

    async def doomed_delete(key: str) -> None:
        with pytest.raises(storage.NotFound):
            await store.delete(key)

    async def doomed_update() -> None:
        with pytest.raises(storage.Conflict):
            await store.update("/m/existing", b"lost", expected_revision=existing.mod_revision - 1)

    async with trio.open_nursery() as nursery:
        for i in range(100):
            nursery.start_soon(attempt, f"/m/{i:03}")
            if i % 5 == 0:
                nursery.start_soon(attempt, "/m/existing")
                nursery.start_soon(doomed_delete, f"/m/missing-{i}")
                nursery.start_soon(doomed_update)

    assert len(succeeded) == 100
    assert len(failed) == 20
    assert {error.key for error in failed} == {"/m/existing"}
    assert await store.get("/m/existing") == existing
    assert len((await store.list("/m/")).items) == 101


async def test_current_revision_matches_the_last_write(store: storage.Backend) -> None:
    kv = await store.create("/a", b"")
    assert await store.current_revision() == kv.mod_revision
    deleted = await store.delete("/a")
    assert await store.current_revision() == deleted.revision


# Leases


# Backends whose leases expire on the server's own clock, which tests cannot move.
WALL_CLOCK_LEASES = ("etcd",)


@pytest.fixture
def clock(store_url: str) -> trio.testing.MockClock | None:
    """Virtual time that stands still while the store works in threads.

    It moves when the test jumps it, or on its own after 0.1 s (real) with every task
    waiting, so a test that waits for an expiry does not hang. None (trio's real clock) for
    a backend whose leases expire on its server's clock.
    """
    if store_url.startswith(WALL_CLOCK_LEASES):
        return None
    return trio.testing.MockClock(autojump_threshold=0.1)


class LeaseTime:
    """How lease time passes for the backend under test.

    With a mock clock the store counts lease time on trio's clock and the test jumps it
    (TTL 5 s). Otherwise the server counts it on the wall clock and the test waits, with
    the shortest TTL etcd grants (2 s) and fewer keep-alive rounds.
    """

    def __init__(self, clock: trio.testing.MockClock | None) -> None:
        self._clock = clock
        self.ttl = 5 if clock is not None else 2
        self.rounds = 10 if clock is not None else 2

    async def advance(self, seconds: float) -> None:
        if self._clock is None:
            await trio.sleep(seconds)
        else:
            self._clock.jump(seconds)
            await trio.testing.wait_all_tasks_blocked()


async def test_grant_returns_a_lease_with_its_ttl(store: storage.Backend) -> None:
    first = await store.grant(30)
    second = await store.grant(30)

    assert first.ttl == 30
    assert first.id != 0
    assert first.id != second.id


async def test_keys_attached_to_a_revoked_lease_are_deleted_with_events(
    store: storage.Backend,
) -> None:
    lease = await store.grant(60)
    a = await store.create("/l/a", b"1", lease=lease.id)
    b = await store.create("/l/b", b"1")
    b = await store.update("/l/b", b"2", lease=lease.id)
    free = await store.create("/l/free", b"")
    assert a.lease == b.lease == lease.id
    start = await store.current_revision()

    async with store.watch("/l/") as events:
        await store.revoke(lease.id)
        deletions = await _take(events, 2)

    assert {event.type for event in deletions} == {storage.EventType.DELETE}
    assert {event.kv.key: event.prev_kv for event in deletions} == {"/l/a": a, "/l/b": b}
    assert start < deletions[0].revision <= deletions[1].revision
    assert (await store.list("/l/")).items == (free,)
    with pytest.raises(storage.LeaseNotFound):
        await store.keepalive(lease.id)


async def test_revoke_of_an_unknown_lease_raises_lease_not_found(store: storage.Backend) -> None:
    lease = await store.grant(60)
    await store.revoke(lease.id)

    with pytest.raises(storage.LeaseNotFound) as caught:
        await store.revoke(lease.id)
    assert caught.value.lease_id == lease.id
    with pytest.raises(storage.LeaseNotFound):
        await store.revoke(lease.id + 1)


async def test_keepalive_of_an_unknown_lease_raises_lease_not_found(
    store: storage.Backend,
) -> None:
    lease = await store.grant(60)

    with pytest.raises(storage.LeaseNotFound) as caught:
        await store.keepalive(lease.id + 1)

    assert caught.value.lease_id == lease.id + 1


async def test_create_with_an_unknown_lease_raises_lease_not_found_and_creates_nothing(
    store: storage.Backend,
) -> None:
    lease = await store.grant(60)
    await store.revoke(lease.id)
    revision = await store.current_revision()

    with pytest.raises(storage.LeaseNotFound):
        await store.create("/l/a", b"", lease=lease.id)
    with pytest.raises(storage.LeaseNotFound):
        await store.create("/l/b", b"", lease=12345)

    assert (await store.list("/l/")).items == ()
    assert await store.current_revision() == revision


async def test_expired_lease_deletes_its_keys(
    store: storage.Backend, clock: trio.testing.MockClock | None
) -> None:
    time = LeaseTime(clock)
    granted_at = trio.current_time()
    lease = await store.grant(time.ttl)
    leased = await store.create("/l/leased", b"", lease=lease.id)
    free = await store.create("/l/free", b"")

    async with store.watch("/l/") as events:
        await time.advance(time.ttl - 0.5)
        assert await store.get("/l/leased") == leased

        await time.advance(1)
        event = await _next(events)

    assert _deletion(event) == (
        storage.EventType.DELETE,
        "/l/leased",
        b"",
        await store.current_revision(),
        leased,
    )
    assert time.ttl <= trio.current_time() - granted_at <= time.ttl + 2
    assert (await store.list("/l/")).items == (free,)
    with pytest.raises(storage.LeaseNotFound):
        await store.keepalive(lease.id)


async def test_keepalive_keeps_keys_past_the_ttl(
    store: storage.Backend, clock: trio.testing.MockClock | None
) -> None:
    time = LeaseTime(clock)
    lease = await store.grant(time.ttl)
    leased = await store.create("/l/leased", b"", lease=lease.id)

    for _ in range(time.rounds):
        await time.advance(time.ttl * 0.6)
        assert await store.get("/l/leased") == leased
        assert await store.keepalive(lease.id) == time.ttl

    async with store.watch("/l/") as events:
        await time.advance(time.ttl + 1)
        event = await _next(events)
    assert event.type is storage.EventType.DELETE


# Durability


async def test_reopened_store_keeps_keys_history_and_compaction(durable_store_url: str) -> None:
    async with storage.open_store(durable_store_url) as store:
        for i in range(20):
            await store.create(f"/d/{i:02}", str(i).encode())
        old = await store.update("/d/05", b"old")
        await store.update("/d/05", b"new")
        await store.delete("/d/07")
        await store.compact(old.mod_revision)
        contents = await store.list("/")
        revision = await store.current_revision()

    async with storage.open_store(durable_store_url) as store:
        assert await store.current_revision() == revision
        assert await store.compact_revision() == old.mod_revision
        assert await store.list("/") == contents
        assert await store.get("/d/05", revision=old.mod_revision) == old
        with pytest.raises(storage.Compacted):
            await store.get("/d/05", revision=old.mod_revision - 1)
        assert (await store.create("/d/new", b"")).mod_revision > revision


async def test_reopened_store_never_reuses_a_revision(durable_store_url: str) -> None:
    """Even when the newest writes were deletes and history is compacted away."""
    async with storage.open_store(durable_store_url) as store:
        await store.create("/a", b"")
        await store.create("/b", b"")
        await store.delete("/a")
        last = await store.delete("/b")
        await store.compact(last.revision)

    async with storage.open_store(durable_store_url) as store:
        assert await store.current_revision() == last.revision
        assert (await store.create("/a", b"")).mod_revision > last.revision


async def test_reopened_store_replays_history_to_a_watch(durable_store_url: str) -> None:
    async with storage.open_store(durable_store_url) as store:
        created = await store.create("/a", b"1")
        updated = await store.update("/a", b"2")

    async with (
        storage.open_store(durable_store_url) as store,
        store.watch("/", from_revision=created.mod_revision) as events,
    ):
        first, second = await _take(events, 2)
        live = await store.create("/b", b"")
        third = await _next(events)

    assert (first.kv, second.kv, second.prev_kv, third.kv) == (created, updated, created, live)


async def test_reopened_store_keeps_leases(durable_store_url: str) -> None:
    async with storage.open_store(durable_store_url) as store:
        lease = await store.grant(600)
        await store.create("/l/a", b"", lease=lease.id)

    async with storage.open_store(durable_store_url) as store:
        assert await store.keepalive(lease.id) == 600
        await store.revoke(lease.id)
        with pytest.raises(storage.NotFound):
            await store.get("/l/a")
