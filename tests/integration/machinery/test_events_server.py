"""The event recorder against a real API server: Events land beside their objects, with
what `kubectl describe` shows, and repeats count up on one Event."""

from __future__ import annotations

from typing import Any

import trio

from arktos_lite import client, machinery

from .conftest import EVENTS, NODES, PODS, Server, make_tenant, pod

Obj = dict[str, Any]


async def events_in(api: client.Client, *, tenant: str, namespace: str) -> list[Obj]:
    listed = await api.list(EVENTS, tenant=tenant, namespace=namespace)
    items: list[Obj] = listed["items"]
    return items


async def settled(api: client.Client, *, tenant: str, namespace: str, count: int) -> list[Obj]:
    """The events there once their counts add up to `count`."""
    with trio.fail_after(10):
        while True:
            found = await events_in(api, tenant=tenant, namespace=namespace)
            if sum(e.get("count", 1) for e in found) >= count:
                return found
            await trio.sleep(0.02)


async def test_events_are_written_and_repeats_aggregate(server: Server, api: client.Client) -> None:
    await make_tenant(api, "t1", "default", "prod")
    web = await api.create(PODS, pod("web"), namespace="prod", tenant="t1")
    node = await api.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    recorder = machinery.EventRecorder(api, component="machinery-tests", host="box")
    async with trio.open_nursery() as nursery:
        await nursery.start(recorder.run)
        for _ in range(3):
            recorder.event(web, machinery.EventType.WARNING, reason="BackOff", message="again")
        recorder.event(web, machinery.EventType.NORMAL, reason="Pulled", message="image pulled")
        recorder.event(node, machinery.EventType.NORMAL, reason="Registered", message="hello")
        found = await settled(api, tenant="t1", namespace="prod", count=4)
        system = await settled(api, tenant="system", namespace="default", count=1)
        nursery.cancel_scope.cancel()

    by_reason = {e["reason"]: e for e in found}
    assert sorted(by_reason) == ["BackOff", "Pulled"]
    backoff = by_reason["BackOff"]
    assert backoff["count"] == 3
    assert backoff["type"] == "Warning"
    assert backoff["message"] == "again"
    assert backoff["source"] == {"component": "machinery-tests", "host": "box"}
    assert backoff["firstTimestamp"] <= backoff["lastTimestamp"]
    involved = backoff["involvedObject"]
    assert involved["kind"] == "Pod"
    assert involved["name"] == "web"
    assert involved["namespace"] == "prod"
    assert involved["uid"] == web["metadata"]["uid"]
    assert involved["resourceVersion"] == web["metadata"]["resourceVersion"]
    assert backoff["metadata"]["tenant"] == "t1"
    [registered] = [e for e in system if e["reason"] == "Registered"]
    assert registered["involvedObject"]["kind"] == "Node"
    assert registered["involvedObject"]["name"] == "n1"
    # The field selectors kubectl describe uses find them.
    described = await api.list(
        EVENTS,
        tenant="t1",
        namespace="prod",
        field_selector=f"involvedObject.name=web,involvedObject.uid={web['metadata']['uid']}",
    )
    assert len(described["items"]) == 2
