"""Watches through the client against a real API server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import pytest
import trio

from arktos_lite import client
from arktos_lite.api import errors
from arktos_lite.apiserver import _http as http

from .conftest import CONFIGMAPS, PODS, Cluster, Seen, configmap, pod, seen


async def events_of(
    watch: AbstractAsyncContextManager[AsyncIterator[client.WatchEvent]],
) -> list[client.WatchEvent]:
    """Every event of `watch` until its stream ends (at most 5 seconds)."""
    with trio.fail_after(5):
        async with watch as events:
            return [event async for event in events]


async def test_changes_after_a_resource_version(admin: client.Client) -> None:
    start = await admin.create(CONFIGMAPS, configmap("a"), tenant="t1")
    rv = start["metadata"]["resourceVersion"]
    where = {"namespace": "default", "tenant": "t1"}
    b = await admin.create(CONFIGMAPS, configmap("b"), tenant="t1")
    a2 = await admin.patch(CONFIGMAPS, "a", {"data": {"k": "v"}}, **where)
    await admin.delete(CONFIGMAPS, "b", **where)
    # Elsewhere: not in this watch.
    await admin.create(CONFIGMAPS, configmap("c"), tenant="t2")
    async with admin.watch(CONFIGMAPS, resource_version=rv, **where) as events:
        found: list[Seen] = []
        with trio.fail_after(5):
            async for event in events:
                found.append(seen(event))
                if len(found) == 3:
                    break
    assert [(s.type, s.name) for s in found] == [
        ("ADDED", "b"),
        ("MODIFIED", "a"),
        ("DELETED", "b"),
    ]
    assert found[0].resource_version == b["metadata"]["resourceVersion"]
    assert found[1].resource_version == a2["metadata"]["resourceVersion"]


async def test_events_as_they_happen_across_tenants(admin: client.Client) -> None:
    rv = (await admin.list(PODS, tenant="all"))["metadata"]["resourceVersion"]
    async with admin.watch(PODS, tenant="all", resource_version=rv) as events:
        await admin.create(PODS, pod("p1"), namespace="default", tenant="t1")
        await admin.create(PODS, pod("p2"), namespace="default", tenant="t2")
        with trio.fail_after(5):
            first = await anext(events)
            second = await anext(events)
    assert [(e.type, e.object["metadata"]["tenant"]) for e in (first, second)] == [
        ("ADDED", "t1"),
        ("ADDED", "t2"),
    ]


async def test_without_a_version_the_current_objects_come_first(alice: client.Client) -> None:
    await alice.create(CONFIGMAPS, configmap("a"))
    async with alice.watch(CONFIGMAPS, namespace="default", timeout_seconds=1) as events:
        with trio.fail_after(5):
            found = [seen(event) async for event in events]
    assert [(s.type, s.name) for s in found] == [("ADDED", "a")]


async def test_bookmarks(admin: client.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "_BOOKMARK_INTERVAL", 0.2)
    rv = (await admin.list(CONFIGMAPS, tenant="t1"))["metadata"]["resourceVersion"]
    async with admin.watch(
        CONFIGMAPS, tenant="t1", resource_version=rv, label_selector="app=web"
    ) as events:
        # A change this watch does not show still moves its version on.
        other = await admin.create(CONFIGMAPS, configmap("other"), tenant="t1")
        with trio.fail_after(5):
            event = await anext(events)
    assert event.type == "BOOKMARK"
    assert event.object["kind"] == "ConfigMap"
    assert event.object["metadata"]["resourceVersion"] == other["metadata"]["resourceVersion"]


async def test_the_server_ends_the_stream_at_the_timeout(admin: client.Client) -> None:
    rv = (await admin.list(CONFIGMAPS, tenant="t1"))["metadata"]["resourceVersion"]
    started = trio.current_time()
    async with admin.watch(CONFIGMAPS, tenant="t1", resource_version=rv, timeout_seconds=1) as ev:
        with trio.fail_after(5):
            found = [event async for event in ev]
    assert found == []
    assert 0.9 <= trio.current_time() - started < 5


async def test_a_compacted_version_is_gone(cluster: Cluster, admin: client.Client) -> None:
    await admin.create(CONFIGMAPS, configmap("a"), tenant="t1")
    now = int((await admin.list(CONFIGMAPS, tenant="t1"))["metadata"]["resourceVersion"])
    await cluster.backend.compact(now)
    # Version 1 is older than the server's watch cache, so only the store could replay it.
    watch = admin.watch(CONFIGMAPS, tenant="t1", resource_version="1")
    with pytest.raises(errors.Gone, match=rf"too old resource version: 1 \({now}\)"):
        await events_of(watch)


async def test_a_watch_outside_the_users_tenant_is_forbidden(alice: client.Client) -> None:
    with pytest.raises(errors.Forbidden):
        async with alice.watch(CONFIGMAPS, tenant="t2"):
            pass


async def test_leaving_a_watch_early_keeps_the_client_usable(admin: client.Client) -> None:
    for name in "abc":
        await admin.create(CONFIGMAPS, configmap(name), tenant="t1")
    for _ in range(3):
        async with admin.watch(CONFIGMAPS, tenant="t1") as events:
            async for _event in events:
                break
    assert len((await admin.list(CONFIGMAPS, tenant="t1"))["items"]) == 3
