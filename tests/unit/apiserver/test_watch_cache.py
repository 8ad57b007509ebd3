"""The watch cache: reads from memory agree with the store, and watchers share a bounded log.

Hypothesis runs random writes from concurrent tasks while readers go through the cache:
every read must see the writes acknowledged before it (each writer owns its keys, so its
own last write is what it must read back), and every cached list must equal the store's
snapshot at the list's revision. Once the writes stop, lists with selectors, limits and
continue tokens must page exactly as the store pages them.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any, Literal

import hypothesis
import orjson
import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import strategies as st

from arktos_lite import storage
from arktos_lite.api import _errors as errors, _resources as resources
from arktos_lite.apiserver import _rest as rest, _server as server, _watch as watching

REGISTRY = resources.Registry()
CONFIGMAPS = REGISTRY.get("", "v1", "configmaps")
assert CONFIGMAPS is not None
NAMESPACES = ("default", "kube-system")
NAMES = ("a", "b", "c", "d")
LABELS = ("red", "green")


@dataclasses.dataclass(frozen=True)
class Write:
    kind: Literal["put", "delete"]
    namespace: str
    name: str
    color: str


writes = st.builds(
    Write,
    kind=st.sampled_from(["put", "put", "delete"]),
    namespace=st.sampled_from(NAMESPACES),
    name=st.sampled_from(NAMES),
    color=st.sampled_from(LABELS),
)


@dataclasses.dataclass
class Cluster:
    backend: storage.Backend
    cache: watching.WatchCache
    cached: rest.Rest
    direct: rest.Rest


@contextlib.asynccontextmanager
async def cluster() -> AsyncIterator[Cluster]:
    async with storage.open_store("sqlite://") as backend, trio.open_nursery() as nursery:
        cache = watching.WatchCache(backend, REGISTRY)
        cached = rest.Rest(backend, registry=REGISTRY, cache=cache)
        await server.bootstrap(cached)
        await nursery.start(cache.run)
        yield Cluster(backend, cache, cached, rest.Rest(backend, registry=REGISTRY))
        nursery.cancel_scope.cancel()


def configmap(name: str, color: str, version: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"color": color}}, "data": {"v": str(version)}}


async def apply(api: rest.Rest, write: Write, version: int) -> dict[str, Any] | None:
    """Do `write`; return the object as it now is (None: absent)."""
    where = rest.Where(tenant=resources.SYSTEM_TENANT, namespace=write.namespace)
    assert CONFIGMAPS is not None
    if write.kind == "delete":
        with contextlib.suppress(errors.NotFound):
            await api.delete(CONFIGMAPS, where, write.name, rest.DeleteOptions())
        return None
    body = configmap(write.name, write.color, version)
    try:
        return await api.update(CONFIGMAPS, where, write.name, body)
    except errors.NotFound:
        return await api.create(CONFIGMAPS, where, body)


async def check_snapshot(world: Cluster, namespace: str | None) -> None:
    """A list from the cache is the store's snapshot at the list's revision."""
    assert CONFIGMAPS is not None
    where = rest.Where(tenant=resources.SYSTEM_TENANT, namespace=namespace)
    listed = await world.cached.list(CONFIGMAPS, where, rest.ListOptions())
    prefix = CONFIGMAPS.prefix(tenant=resources.SYSTEM_TENANT, namespace=namespace)
    page = await world.backend.list(prefix, revision=listed.resource_version)
    assert [(s.key, s.revision, s.json) for s in listed.items] == [
        (kv.key, kv.mod_revision, rest.Stored.of(kv).json) for kv in page.items
    ]


async def run_concurrently(script: list[Write], readers: int) -> None:
    async with cluster() as world:
        # Each writer owns one (namespace, name): its last write is the truth it reads back.
        owners: dict[tuple[str, str], list[Write]] = {}
        for write in script:
            owners.setdefault((write.namespace, write.name), []).append(write)
        done = trio.Event()
        assert CONFIGMAPS is not None

        async def writer(own: list[Write]) -> None:
            for version, write in enumerate(own):
                expected = await apply(world.cached, write, version)
                where = rest.Where(tenant=resources.SYSTEM_TENANT, namespace=write.namespace)
                try:
                    read = await world.cached.get(CONFIGMAPS, where, write.name)
                except errors.NotFound:
                    read = None
                assert read == expected
                await trio.lowlevel.checkpoint()

        async def reader(namespace: str | None) -> None:
            while not done.is_set():
                await check_snapshot(world, namespace)
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as readers_nursery:
            for number in range(readers):
                namespace = (None, *NAMESPACES)[number % (len(NAMESPACES) + 1)]
                readers_nursery.start_soon(reader, namespace)
            async with trio.open_nursery() as writers:
                for own in owners.values():
                    writers.start_soon(writer, own)
            done.set()

        for namespace in (None, *NAMESPACES):
            await check_snapshot(world, namespace)


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(script=st.lists(writes, min_size=1, max_size=40), readers=st.integers(0, 4))
def test_reads_from_the_cache_agree_with_the_store_under_concurrent_writes(
    script: list[Write], readers: int
) -> None:
    trio.run(run_concurrently, script, readers)


async def pages(api: rest.Rest, options: rest.ListOptions) -> list[tuple[list[bytes], str]]:
    """Every page of a list: its items' JSON and its continue token."""
    assert CONFIGMAPS is not None
    where = rest.Where(tenant=resources.SYSTEM_TENANT)
    found = []
    while True:
        listed = await api.list(CONFIGMAPS, where, options)
        found.append(([s.json for s in listed.items], listed.continue_token))
        if not listed.continue_token:
            return found
        options = dataclasses.replace(options, continue_token=listed.continue_token)


async def compare_lists(script: list[Write], selector: str, limit: int) -> None:
    async with cluster() as world:
        for version, write in enumerate(script):
            await apply(world.cached, write, version)
        options = rest.ListOptions(label_selector=selector, limit=limit)
        assert await pages(world.cached, options) == await pages(world.direct, options)


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(
    script=st.lists(writes, max_size=25),
    selector=st.sampled_from(["", "color=red", "color!=red", "color in (green)", "nope"]),
    limit=st.integers(0, 4),
)
def test_lists_from_the_cache_page_as_the_store_pages(
    script: list[Write], selector: str, limit: int
) -> None:
    trio.run(compare_lists, script, selector, limit)


# The log every watcher of a resource reads


def change_event(revision: int, name: str) -> storage.Event:
    value = orjson.dumps({"metadata": {"name": name}})
    kv = storage.KeyValue(
        key=f"/registry/configmaps/system/default/{name}",
        value=value,
        create_revision=revision,
        mod_revision=revision,
        version=1,
    )
    return storage.Event(type=storage.EventType.PUT, kv=kv, prev_kv=None)


class Ended:
    ended = False


async def test_a_watcher_that_falls_behind_the_log_is_cut_off_and_the_others_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watching, "LOG_SIZE", 4)
    assert CONFIGMAPS is not None
    hub = watching.Hub()
    hub.reset([], revision=10)
    cache: Any = Ended()
    prefix = CONFIGMAPS.prefix()
    fast = hub.subscribe(cache, prefix, 10)
    slow = hub.subscribe(cache, prefix, 10)
    assert fast is not None
    assert slow is not None
    seen = []
    for revision in range(11, 31):
        # Publishing never waits for anyone.
        hub.apply(change_event(revision, f"cm-{revision}"))
        seen += [change.revision for change in await fast.next(until=trio.current_time())]
    assert seen == list(range(11, 31))
    with pytest.raises(watching.TooSlow):
        await slow.next(until=trio.current_time())
    # A watcher from a version the log no longer holds must go to the store.
    assert hub.subscribe(cache, prefix, 11) is None
    assert hub.subscribe(cache, prefix, 30) is not None


async def test_watchers_share_each_change_encoded_once() -> None:
    assert CONFIGMAPS is not None
    hub = watching.Hub()
    hub.reset([], revision=0)
    cache: Any = Ended()
    first = hub.subscribe(cache, CONFIGMAPS.prefix(), 0)
    second = hub.subscribe(cache, CONFIGMAPS.prefix(), 0)
    assert first is not None
    assert second is not None
    hub.apply(change_event(1, "cm"))
    [one] = await first.next(until=0)
    [other] = await second.next(until=0)
    assert one is other
    assert one.line is other.line
    assert orjson.loads(one.line) == {
        "type": "ADDED",
        "object": {"metadata": {"name": "cm", "resourceVersion": "1"}},
    }


async def test_selector_watchers_see_the_same_transitions_however_far_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only the newest changes keep their objects decoded; older ones decode again.
    monkeypatch.setattr(watching, "DECODED_KEPT", 2)
    assert CONFIGMAPS is not None
    hub = watching.Hub()
    hub.reset([], revision=0)
    cache: Any = Ended()
    prefix = CONFIGMAPS.prefix()
    red = rest.Matcher.parse(CONFIGMAPS, label="color=red", field="")
    behind = hub.subscribe(cache, prefix, 0)
    current = hub.subscribe(cache, prefix, 0)
    assert behind is not None
    assert current is not None
    live: dict[str, storage.KeyValue] = {}

    def write(revision: int, name: str, color: str | None) -> storage.Event:
        key = f"/registry/configmaps/system/default/{name}"
        prev = live.pop(key, None)
        if color is None:
            assert prev is not None
            tombstone = dataclasses.replace(prev, value=b"", mod_revision=revision, version=0)
            return storage.Event(type=storage.EventType.DELETE, kv=tombstone, prev_kv=prev)
        value = orjson.dumps({"metadata": {"name": name, "labels": {"color": color}}})
        kv = storage.KeyValue(
            key=key,
            value=value,
            create_revision=prev.create_revision if prev else revision,
            mod_revision=revision,
            version=prev.version + 1 if prev else 1,
        )
        live[key] = kv
        return storage.Event(type=storage.EventType.PUT, kv=kv, prev_kv=prev)

    script = [
        ("x", "red"),
        ("y", "red"),
        ("x", "green"),
        ("z", "green"),
        ("x", "red"),
        ("y", "green"),
        ("z", "red"),
        ("x", None),
        ("z", None),
    ]
    seen_current = []
    for revision, (name, color) in enumerate(script, start=1):
        hub.apply(write(revision, name, color))
        for change in await current.next(until=trio.current_time()):
            event = watching.event_for(change, red)
            if event is not None:
                seen_current.append((event[0], change.key.rsplit("/", 1)[1], change.revision))
    seen_behind = []
    for change in await behind.next(until=trio.current_time()):
        event = watching.event_for(change, red)
        if event is not None:
            seen_behind.append((event[0], change.key.rsplit("/", 1)[1], change.revision))

    expected = [
        ("ADDED", "x", 1),
        ("ADDED", "y", 2),
        ("DELETED", "x", 3),
        ("ADDED", "x", 5),
        ("DELETED", "y", 6),
        ("ADDED", "z", 7),
        ("DELETED", "x", 8),
        ("DELETED", "z", 9),
    ]
    assert seen_current == expected
    assert seen_behind == expected


async def test_ticks_wake_a_waiting_watcher_only_once_its_deadline_passed(
    autojump_clock: trio.abc.Clock,
) -> None:
    assert CONFIGMAPS is not None
    hub = watching.Hub()
    hub.reset([], revision=0)
    cache: Any = Ended()
    subscription = hub.subscribe(cache, CONFIGMAPS.prefix(), 0)
    assert subscription is not None
    results = []

    async def wait() -> None:
        results.append(await subscription.next(until=trio.current_time() + 1.0))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        waiting_on = hub._changed
        hub.tick()
        # Before the deadline a tick wakes nobody: the watcher waits on the same event.
        assert hub._changed is waiting_on
        await trio.sleep(1.0)
        hub.tick()
    assert results == [[]]
