"""Watch streams end without harming the server: client gone, long-lived, batched."""

from __future__ import annotations

import httpx
import trio

from .conftest import Server

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def _configmap(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


async def test_a_watcher_that_disconnects_does_not_stop_the_server(
    server: Server, admin: httpx.AsyncClient
) -> None:
    async with (
        server.client() as watcher,
        watcher.stream("GET", CONFIGMAPS, params={"watch": "1"}) as response,
    ):
        assert response.status_code == 200
    # The watcher is gone; the next change must not take the server down with it.
    for i in range(3):
        created = await admin.post(CONFIGMAPS, json=_configmap(f"after-{i}"))
        assert created.status_code == 201
        await trio.sleep(0.05)
    assert (await admin.get("/readyz")).status_code == 200
    assert (await admin.get(f"{CONFIGMAPS}/after-2")).status_code == 200


async def test_a_burst_of_events_arrives_complete_and_in_order(
    server: Server, admin: httpx.AsyncClient
) -> None:
    listed = (await admin.get(CONFIGMAPS)).json()
    rv = listed["metadata"]["resourceVersion"]
    for i in range(50):
        await admin.post(CONFIGMAPS, json=_configmap(f"burst-{i:02}"))
    names = []
    async with admin.stream(
        "GET", CONFIGMAPS, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1"}
    ) as response:
        async for line in response.aiter_lines():
            if line:
                names.append(httpx.Response(200, content=line).json()["object"]["metadata"]["name"])
    assert names == [f"burst-{i:02}" for i in range(50)]
