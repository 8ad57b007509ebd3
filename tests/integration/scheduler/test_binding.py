"""Bindings that fail: the pod is tried again after its backoff, a binding that landed
anyway is never lost or doubled, and a pod bound by someone else is counted where it is.

The scheduler's client is a real client whose bindings can be made to fail (before or
after reaching the server), a fake at the edge rather than a mock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio

from arktos_lite import client, scheduler
from arktos_lite.api import errors, resources

from .conftest import (
    NODES,
    PODS,
    bound_node,
    events_of,
    eventually,
    node,
    pod,
    scheduled_condition,
)

Obj = dict[str, Any]
Fault = Callable[[client.Client, str, Obj], Any]


class FaultyClient(client.Client):
    """A client whose next bindings go through `faults` first, one fault per binding."""

    faults: list[Fault]
    patches: int

    async def post_subresource(
        self,
        resource: resources.Resource,
        name: str,
        subresource: str,
        body: Obj,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
    ) -> Obj:
        if subresource == "binding" and self.faults:
            await self.faults.pop(0)(self, name, body)
        return await super().post_subresource(
            resource, name, subresource, body, namespace=namespace, tenant=tenant
        )

    async def patch(self, resource: resources.Resource, name: str, body: Any, **kw: Any) -> Obj:
        if kw.get("subresource") == "status":
            self.patches += 1
        return await super().patch(resource, name, body, **kw)


@pytest.fixture
async def faulty(api: client.Client) -> AsyncIterator[FaultyClient]:
    async with FaultyClient(api.config, qps=5000, burst=5000) as connected:
        connected.faults = []
        connected.patches = 0
        yield connected


@pytest.fixture
async def running(faulty: FaultyClient) -> AsyncIterator[scheduler.Scheduler]:
    config = scheduler.SchedulerConfig(pod_initial_backoff=0.2, pod_max_backoff=0.5)
    started = scheduler.Scheduler(faulty, config=config)
    async with trio.open_nursery() as nursery:
        await nursery.start(started.run)
        yield started
        nursery.cancel_scope.cancel()


async def _server_error(api: client.Client, name: str, body: Obj) -> None:
    raise errors.InternalError("the store is having a bad day")


async def _lands_then_times_out(api: client.Client, name: str, body: Obj) -> None:
    # The binding reaches the server, but the answer never comes back.
    await client.Client.post_subresource(api, PODS, name, "binding", body, namespace="default")
    raise client.Unreachable("read timed out")


def _someone_else_binds_to(node_name: str) -> Fault:
    async def fault(api: client.Client, name: str, body: Obj) -> None:
        other = {**body, "target": {**body["target"], "name": node_name}}
        await client.Client.post_subresource(api, PODS, name, "binding", other, namespace="default")

    return fault


async def test_a_failed_binding_is_retried(
    api: client.Client, faulty: FaultyClient, running: scheduler.Scheduler
) -> None:
    faulty.faults.append(_server_error)
    await api.create(NODES, node("n1"))

    await api.create(PODS, pod("web"))

    assert await eventually(lambda: bound_node(api, "web")) == "n1"
    assert running.stats.bind_failures == 1

    async def told() -> list[tuple[str, str]] | None:
        events = await events_of(api, "web")
        found = sorted((e["reason"], e["message"]) for e in events)
        return found if len(found) == 2 else None

    assert await eventually(told) == [
        ("FailedScheduling", "Binding rejected: the store is having a bad day"),
        ("Scheduled", "Successfully assigned default/web to n1"),
    ]


async def test_a_binding_that_landed_without_an_answer_is_kept_once(
    api: client.Client, faulty: FaultyClient, running: scheduler.Scheduler
) -> None:
    faulty.faults.append(_lands_then_times_out)
    await api.create(NODES, node("n1", cpu="1"))
    await api.create(NODES, node("n2", cpu="1"))

    await api.create(PODS, pod("first", cpu="600m"))
    home = await eventually(lambda: bound_node(api, "first"))
    # Two more of the same size: one fits on the other node, the last fits nowhere.
    await api.create(PODS, pod("second", cpu="600m"))
    await api.create(PODS, pod("third", cpu="600m"))

    other = await eventually(
        lambda: _either(api, "second", "third"),
    )
    assert other != home

    async def last_waits() -> bool:
        states = [await scheduled_condition(api, n) for n in ("second", "third")]
        return any(s and s.get("reason") == "Unschedulable" for s in states)

    await eventually(last_waits)
    assert await bound_node(api, "first") == home


async def _either(api: client.Client, *names: str) -> str | None:
    for name in names:
        found = await bound_node(api, name)
        if found:
            return found
    return None


async def test_a_pod_bound_by_someone_else_counts_where_it_went(
    api: client.Client, faulty: FaultyClient, running: scheduler.Scheduler
) -> None:
    await api.create(NODES, node("n1", cpu="1"))
    await api.create(NODES, node("n2", cpu="1", labels={"pin": "yes"}))
    # Another binder wins the race and puts the pod on n1, against its selector.
    faulty.faults.append(_someone_else_binds_to("n1"))

    await api.create(PODS, pod("taken", cpu="600m", nodeSelector={"pin": "yes"}))
    assert await eventually(lambda: bound_node(api, "taken")) == "n1"

    # n1 holds the pod now and n2 does not: another one of its size must go to n2.
    await api.create(PODS, pod("next", cpu="600m"))
    assert await eventually(lambda: bound_node(api, "next")) == "n2"
    assert running.stats.bound == 1


async def test_the_condition_is_written_only_when_it_changes(
    api: client.Client, faulty: FaultyClient, running: scheduler.Scheduler
) -> None:
    await api.create(NODES, node("n1", cpu="1"))
    await api.create(PODS, pod("big", cpu="2"))

    first = await eventually(lambda: scheduled_condition(api, "big"))
    # Node changes that matter bring the pod back; the verdict stays the same.
    for i in range(3):
        await api.patch(NODES, "n1", {"metadata": {"labels": {"round": str(i)}}})
        await trio.sleep(0.7)

    assert running.stats.unschedulable >= 3
    assert faulty.patches == 1
    assert await scheduled_condition(api, "big") == first


async def test_a_pending_pod_deleted_before_its_turn_is_dropped(
    api: client.Client, faulty: FaultyClient, running: scheduler.Scheduler
) -> None:
    await api.create(PODS, pod("gone"))
    await eventually(lambda: scheduled_condition(api, "gone"))
    await api.delete(PODS, "gone", namespace="default")

    await api.create(NODES, node("n1"))
    await api.create(PODS, pod("kept"))

    assert await eventually(lambda: bound_node(api, "kept")) == "n1"
    assert running.stats.pending == 0
