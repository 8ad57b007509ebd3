"""The action controller against a real API server: complete actions go after the
retention period, and actions whose pod is gone complete with an error instead of
waiting forever."""

from __future__ import annotations

from typing import Any

import trio

from arktos_lite import client, machinery
from arktos_lite.api import timestamps
from arktos_lite.controllers import ControllerManagerOptions, _actions as actions

from .conftest import PODS, Controllers, eventually, exists, resource

Obj = dict[str, Any]

ACTIONS = resource("actions")
VM = {
    "name": "vm",
    "image": "cirros",
    "keyPairName": "key",
    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
}


async def start(
    api: client.Client,
    informers: machinery.InformerFactory,
    controllers: Controllers,
    *,
    retention: float = 3600.0,
) -> actions.ActionController:
    controller = actions.ActionController(api, informers, retention=retention)
    await controllers.start(controller)
    return controller


async def make_pod(api: client.Client, name: str) -> Obj:
    body = {"metadata": {"name": name}, "spec": {"virtualMachine": VM, "nodeName": "node-1"}}
    return await api.create(PODS, body, namespace="default")


async def make_action(
    api: client.Client, name: str, *, pod: str, pod_id: str = "", complete: bool = False
) -> Obj:
    spec: Obj = {"nodeName": "node-1", "podName": pod, "rebootAction": {"delayInSeconds": 0}}
    if pod_id:
        spec["podID"] = pod_id
    made = await api.create(
        ACTIONS, {"metadata": {"name": name}, "spec": spec}, namespace="default"
    )
    made["status"] = {"complete": complete, "podName": pod, "podID": pod_id}
    return await api.replace(ACTIONS, made, subresource="status")


async def action(api: client.Client, name: str) -> Obj | None:
    return await exists(api, ACTIONS, name, namespace="default")


def test_the_manager_keeps_complete_actions_an_hour_by_default() -> None:
    assert ControllerManagerOptions().action_retention == 3600.0


async def test_complete_actions_go_after_the_retention_period(
    api: client.Client, informers: machinery.InformerFactory, controllers: Controllers
) -> None:
    pod = await make_pod(api, "web")
    uid = pod["metadata"]["uid"]
    await start(api, informers, controllers, retention=2.0)
    await make_action(api, "done", pod="web", pod_id=uid, complete=True)
    await make_action(api, "pending", pod="web", pod_id=uid)
    await trio.sleep(0.5)
    assert await action(api, "done") is not None
    await eventually(lambda: _gone(api, "done"), timeout=5)
    # The pending one, whose pod lives, is left alone.
    pending = await action(api, "pending")
    assert pending is not None
    assert pending["status"] == {"complete": False, "podName": "web", "podID": uid}


async def test_complete_actions_stay_within_the_retention_period(
    api: client.Client, informers: machinery.InformerFactory, controllers: Controllers
) -> None:
    await start(api, informers, controllers)
    await make_action(api, "done", pod="web", complete=True)
    await trio.sleep(0.5)
    kept = await action(api, "done")
    assert kept is not None
    # Complete already: not the controller's to judge, even though its pod is missing.
    assert "error" not in kept["status"]


async def _gone(api: client.Client, name: str) -> bool:
    return await action(api, name) is None


async def _failed(api: client.Client, name: str) -> Obj | None:
    found = await action(api, name)
    if found is None or not (found.get("status") or {}).get("complete"):
        return None
    return found


async def test_an_action_for_a_missing_pod_completes_with_an_error(
    api: client.Client, informers: machinery.InformerFactory, controllers: Controllers
) -> None:
    await start(api, informers, controllers)
    await make_action(api, "orphan", pod="ghost", pod_id="0000")
    failed = await eventually(lambda: _failed(api, "orphan"))
    # Retention counts from when it failed.
    assert timestamps.parse(failed["status"].pop("completionTime")) is not None
    assert failed["status"] == {
        "complete": True,
        "error": "pod ghost no longer exists",
        "podName": "ghost",
        "podID": "0000",
    }


async def test_an_action_completes_with_an_error_when_its_pod_goes(
    api: client.Client, informers: machinery.InformerFactory, controllers: Controllers
) -> None:
    pod = await make_pod(api, "web")
    uid = pod["metadata"]["uid"]
    await start(api, informers, controllers)
    await make_action(api, "reboot-1", pod="web", pod_id=uid)
    await trio.sleep(0.3)
    waiting = await action(api, "reboot-1")
    assert waiting is not None
    assert waiting["status"]["complete"] is False
    await api.delete(PODS, "web", namespace="default", grace_period_seconds=0)
    failed = await eventually(lambda: _failed(api, "reboot-1"))
    assert failed["status"]["error"] == "pod web no longer exists"
    assert failed["status"]["podID"] == uid


async def test_an_action_for_an_earlier_pod_of_the_same_name_fails(
    api: client.Client, informers: machinery.InformerFactory, controllers: Controllers
) -> None:
    await make_pod(api, "web")
    await start(api, informers, controllers)
    await make_action(api, "old", pod="web", pod_id="uid-of-an-earlier-web")
    failed = await eventually(lambda: _failed(api, "old"))
    assert failed["status"]["error"] == "pod web no longer exists"
