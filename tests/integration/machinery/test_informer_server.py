"""Informers against a real API server: they follow changes, survive a compaction (410)
and a server restart on the same port, and tell their handlers a consistent story."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from arktos_lite import client, machinery, storage
from arktos_lite.api import resources
from arktos_lite.apiserver import _rest as rest, _watch as apiserver_watch

from .._server import ADMIN_TOKEN
from .conftest import PODS, Recorder, Server, eventually, make_tenant, pod, server_versions

Obj = dict[str, Any]


@contextlib.asynccontextmanager
async def informing(
    lw: machinery.ListerWatcher,
) -> AsyncIterator[tuple[machinery.Informer, Recorder]]:
    target = machinery.Informer(lw, indexers={"namespace": machinery.by_namespace})
    recorder = Recorder()
    recorder.attach(target)
    async with trio.open_nursery() as nursery:
        await nursery.start(target.run)
        yield target, recorder
        nursery.cancel_scope.cancel()
    assert recorder.violations == []


async def consistent(api: client.Client, target: machinery.Informer, recorder: Recorder) -> bool:
    held = await server_versions(api, PODS)
    cached = {target.key(obj): obj["metadata"]["resourceVersion"] for obj in target.list()}
    return recorder.violations == [] and recorder.picture == held == cached


async def until_consistent(
    api: client.Client, target: machinery.Informer, recorder: Recorder, *, within: float = 30
) -> None:
    with trio.fail_after(within):
        # The cache catches up in its own tasks; polling is the plain way to wait for it.
        while not await consistent(api, target, recorder):  # noqa: ASYNC110
            await trio.sleep(0.05)


async def delete_pod(api: client.Client, name: str, *, tenant: str = "t1") -> None:
    await api.delete(PODS, name, namespace="default", tenant=tenant, grace_period_seconds=0)


async def test_an_informer_follows_creates_updates_and_deletes(
    server: Server, api: client.Client
) -> None:
    await make_tenant(api, "t1", "default")
    await make_tenant(api, "t2", "default")
    await api.create(PODS, pod("before"), namespace="default", tenant="t1")
    async with informing(machinery.list_watch(api, PODS)) as (target, recorder):
        assert target.keys() == ["t1/default/before"]
        for tenant in ("t1", "t2"):
            await api.create(PODS, pod("web", app="web"), namespace="default", tenant=tenant)
        await api.patch(
            PODS,
            "web",
            {"metadata": {"labels": {"app": "web", "v": "2"}}},
            namespace="default",
            tenant="t1",
        )
        await delete_pod(api, "before")
        await until_consistent(api, target, recorder)
        verbs = [(verb, key) for verb, key, _ in recorder.calls]
        assert verbs == [
            ("add", "t1/default/before"),
            ("add", "t1/default/web"),
            ("add", "t2/default/web"),
            ("update", "t1/default/web"),
            ("delete", "t1/default/before"),
        ]
        assert [o["metadata"]["name"] for o in target.by_index("namespace", "t2/default")] == [
            "web"
        ]
        assert target.get("t1/default/web")["metadata"]["labels"]["v"] == "2"  # type: ignore[index]


async def test_a_paged_first_list_sees_every_object(server: Server, api: client.Client) -> None:
    await make_tenant(api, "t1", "default")
    for i in range(1100):
        await api.create(PODS, pod(f"p{i:04}"), namespace="default", tenant="t1")
    async with informing(machinery.list_watch(api, PODS, tenant="t1")) as (target, recorder):
        assert len(target) == 1100
        assert await consistent(api, target, recorder)


async def test_a_label_selector_change_against_the_server(
    server: Server, api: client.Client
) -> None:
    await make_tenant(api, "t1", "default")
    for name, app in (("a", "x"), ("b", "x"), ("c", "y")):
        await api.create(PODS, pod(name, app=app), namespace="default", tenant="t1")
    lw = machinery.list_watch(api, PODS, label_selector="app=x")
    async with informing(lw) as (target, recorder):
        assert sorted(target.keys()) == ["t1/default/a", "t1/default/b"]
        target.set_label_selector("app=y")
        await eventually(lambda: target.keys() == ["t1/default/c"])
        assert sorted((v, k) for v, k, _ in recorder.calls[2:]) == [
            ("add", "t1/default/c"),
            ("delete", "t1/default/a"),
            ("delete", "t1/default/b"),
        ]
        await api.create(PODS, pod("d", app="y"), namespace="default", tenant="t1")
        await api.create(PODS, pod("e", app="x"), namespace="default", tenant="t1")
        await eventually(lambda: "t1/default/d" in target)
        assert "t1/default/e" not in target


@dataclasses.dataclass
class Breakable:
    """A ListerWatcher over the real client whose watch connection the test can break and
    keep down: with `down()`, the next event breaks the stream as a reset connection
    would, and new watches wait until `up()`."""

    inner: machinery.ClientListerWatcher
    lists: int = 0
    breaks: int = 0
    _broken: bool = False
    _up: trio.Event = dataclasses.field(default_factory=trio.Event)

    def __post_init__(self) -> None:
        self._up.set()

    @property
    def resource(self) -> resources.Resource:
        return self.inner.resource

    @property
    def selectors(self) -> machinery.Selectors:
        return self.inner.selectors

    def down(self) -> None:
        self._broken = True
        self._up = trio.Event()

    def up(self) -> None:
        self._broken = False
        self._up.set()

    async def list(
        self,
        *,
        selectors: machinery.Selectors,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> Obj:
        self.lists += 1
        return await self.inner.list(selectors=selectors, limit=limit, continue_=continue_)

    @contextlib.asynccontextmanager
    async def watch(
        self,
        *,
        selectors: machinery.Selectors,
        resource_version: str,
        timeout_seconds: int | None,
    ) -> AsyncIterator[AsyncIterator[machinery.WatchEvent]]:
        await self._up.wait()
        async with self.inner.watch(
            selectors=selectors, resource_version=resource_version, timeout_seconds=timeout_seconds
        ) as events:
            yield self._events(events)

    async def _events(
        self, events: AsyncIterator[machinery.WatchEvent]
    ) -> AsyncIterator[machinery.WatchEvent]:
        async for event in events:
            if self._broken:
                self.breaks += 1
                raise client.Unreachable("connection reset (by the test)")
            yield event


async def test_an_informer_survives_a_compaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While its watch is down, many writes go by and the store is compacted: the watch
    from its last version is answered with 410, the informer lists again, and its handlers
    are told exactly the differences."""
    # A short watch-cache log, so that the missed changes fall out of it and the resumed
    # watch goes to the compacted store (410), as thousands of changes would make it.
    monkeypatch.setattr(apiserver_watch, "LOG_SIZE", 8)
    async with storage.open_store("sqlite://") as backend, trio.open_nursery() as nursery:
        server = Server(backend=backend, nursery=nursery)
        await server.start()
        config = client.Config(server=server.url, token=ADMIN_TOKEN)
        async with client.Client(config, qps=1000, burst=1000) as api:
            await make_tenant(api, "t1", "default")
            for i in range(30):
                await api.create(PODS, pod(f"p{i}"), namespace="default", tenant="t1")
            lw = Breakable(machinery.list_watch(api, PODS))
            async with informing(lw) as (target, recorder):
                told = len(recorder.calls)
                lw.down()
                await api.create(PODS, pod("breaks-the-watch"), namespace="default", tenant="t1")
                await eventually(lambda: lw.breaks == 1)
                for i in range(0, 30, 3):
                    await delete_pod(api, f"p{i}")
                for i in range(1, 30, 3):
                    for round_ in range(5):
                        await api.patch(
                            PODS,
                            f"p{i}",
                            {"metadata": {"labels": {"round": str(round_)}}},
                            namespace="default",
                            tenant="t1",
                        )
                for i in range(40):
                    await api.create(PODS, pod(f"new{i}"), namespace="default", tenant="t1")
                for i in range(0, 40, 2):
                    await delete_pod(api, f"new{i}")
                now = int((await api.list(PODS, tenant="t1"))["metadata"]["resourceVersion"])
                await backend.compact(now)
                lw.up()
                await until_consistent(api, target, recorder)
                assert lw.lists == 2
                changes = sorted({(verb, key) for verb, key, _ in recorder.calls[told:]})
                deleted = {f"t1/default/p{i}" for i in range(0, 30, 3)}
                updated = {f"t1/default/p{i}" for i in range(1, 30, 3)}
                added = {f"t1/default/new{i}" for i in range(1, 40, 2)} | {
                    "t1/default/breaks-the-watch"
                }
                assert changes == sorted(
                    [("delete", k) for k in deleted]
                    + [("update", k) for k in updated]
                    + [("add", k) for k in added]
                )
                # Each difference is told once: one update per changed pod, whatever
                # the number of writes it missed.
                assert len(recorder.calls) - told == len(changes)
                # And it follows the live stream again.
                await api.create(PODS, pod("after"), namespace="default", tenant="t1")
                await eventually(lambda: "t1/default/after" in target)
        await server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("compact_while_down", [False, True])
async def test_an_informer_rides_out_a_server_restart(
    server: Server, api: client.Client, compact_while_down: bool
) -> None:
    """The server stops under a running informer; while it is down the store changes (and
    may be compacted); a new server starts on the same port. The informer resumes from
    its last version (or lists again on 410) and ends up where the server is."""
    await make_tenant(api, "t1", "default")
    for i in range(20):
        await api.create(PODS, pod(f"p{i}"), namespace="default", tenant="t1")
    lw = Breakable(machinery.list_watch(api, PODS))
    async with informing(lw) as (target, recorder):
        await server.stop()
        # What happens while the server is away, written to its store directly.
        offline = rest.Rest(server.backend, registry=resources.Registry())
        where = rest.Where(tenant="t1", namespace="default")
        for i in range(5):
            await offline.create(PODS, where, pod(f"while-down{i}"))
        for i in range(0, 20, 4):
            await offline.delete(PODS, where, f"p{i}", rest.DeleteOptions(grace_period_seconds=0))
        if compact_while_down:
            await server.backend.compact(await server.backend.current_revision())
        await trio.sleep(1)  # Long enough for the reflector to fail and back off.
        await server.start()
        await until_consistent(api, target, recorder, within=60)
        assert lw.lists == (2 if compact_while_down else 1)
        await api.create(PODS, pod("after"), namespace="default", tenant="t1")
        await delete_pod(api, "p1")
        await until_consistent(api, target, recorder)
