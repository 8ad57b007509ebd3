"""`POST …/pods/{name}/action` on a real API server: a CustomAction becomes an Action bound
to the pod's node, answered with Arktos's Status; bad requests are refused with a clear
Status and leave nothing behind; tenants reach only their own pods."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from arktos_lite import client
from arktos_lite.api import errors, resources

from .conftest import ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN, Server, created, make_tenant, names

Obj = dict[str, Any]

PODS = "/api/v1/namespaces/default/pods"
ACTIONS = "/api/v1/namespaces/default/actions"
VM = {
    "name": "vm",
    "image": "cirros",
    "keyPairName": "key",
    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
}


def vm_pod(name: str, *, node: str | None = "node-1") -> Obj:
    spec: Obj = {"virtualMachine": VM}
    if node is not None:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def custom(operation: str, **params: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "CustomAction", "operation": operation, **params}


REBOOT = custom("reboot", rebootParams={"delayInSeconds": 10})
SNAPSHOT = custom("snapshot", snapshotParams={"snapshotName": "snap-1"})
RESTORE = custom("restore", restoreParams={"snapshotID": "snap-1"})


async def act(client: httpx.AsyncClient, pod: str, body: Any, *, base: str = PODS) -> Obj:
    response = await client.post(f"{base}/{pod}/action", json=body)
    result: Obj = response.json()
    result["_code"] = response.status_code
    return result


async def refused(
    client: httpx.AsyncClient, pod: str, body: Any, *, code: int, reason: str, base: str = PODS
) -> str:
    """The message of a refusal with this code and reason; no action was created."""
    answer = await act(client, pod, body, base=base)
    assert answer["_code"] == code, answer
    assert answer["kind"] == "Status"
    assert answer["status"] == "Failure"
    assert answer["reason"] == reason
    assert answer["code"] == code
    message: str = answer["message"]
    return message


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        (REBOOT, "rebootAction", {"delayInSeconds": 10}),
        (SNAPSHOT, "snapshotAction", {"snapshotName": "snap-1"}),
        (RESTORE, "restoreAction", {"snapshotID": "snap-1"}),
    ],
)
async def test_an_action_is_created_for_the_pods_node(
    admin: httpx.AsyncClient, body: Obj, field: str, value: Obj
) -> None:
    pod = await created(admin, PODS, vm_pod("web"))
    before = int(time.time())
    answer = await act(admin, "web", body)
    after = int(time.time())
    operation = body["operation"]
    assert answer.pop("_code") == 201
    name = answer["details"]["name"]
    assert answer == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "message": f"Created action '{operation}' for Pod 'web'",
        "details": {"name": name, "kind": "actions"},
    }
    prefix, seconds = name.rsplit("-", 1)
    assert prefix == operation
    assert before <= int(seconds) <= after
    action = (await admin.get(f"{ACTIONS}/{name}")).json()
    uid = pod["metadata"]["uid"]
    assert action["kind"] == "Action"
    assert action["metadata"]["tenant"] == "system"
    assert action["metadata"]["namespace"] == "default"
    assert action["spec"] == {"nodeName": "node-1", "podName": "web", "podID": uid, field: value}
    assert action["status"] == {"complete": False, "podName": "web", "podID": uid}
    [owner] = action["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Pod", "web", uid)


async def test_reboot_without_params_waits_no_time(admin: httpx.AsyncClient) -> None:
    await created(admin, PODS, vm_pod("web"))
    answer = await act(admin, "web", {"operation": "reboot"})
    assert answer["_code"] == 201
    action = (await admin.get(f"{ACTIONS}/{answer['details']['name']}")).json()
    assert action["spec"]["rebootAction"] == {"delayInSeconds": 0}


async def test_a_taken_name_gets_a_suffix(admin: httpx.AsyncClient) -> None:
    await created(admin, PODS, vm_pod("web"))
    # The names of this second and the next two are taken, and so is one suffixed name.
    now = int(time.time())
    taken = [f"reboot-{now + i}" for i in range(3)] + [f"reboot-{now + i}-1" for i in range(3)]
    for name in taken:
        await created(
            admin,
            ACTIONS,
            {
                "metadata": {"name": name},
                "spec": {"nodeName": "node-1", "podName": "web", "rebootAction": {}},
            },
        )
    answer = await act(admin, "web", REBOOT)
    assert answer["_code"] == 201, answer
    made = answer["details"]["name"]
    assert made in {f"reboot-{now + i}-2" for i in range(3)}
    assert sorted(await names(admin, ACTIONS)) == sorted([*taken, made])
    action = (await admin.get(f"{ACTIONS}/{made}")).json()
    assert action["spec"]["rebootAction"] == {"delayInSeconds": 10}


async def test_the_tenant_path_works_for_the_tenants_user(server: Server) -> None:
    async with server.client() as admin, server.client(ALICE_TOKEN) as alice:
        await make_tenant(admin, "t1")
        base = "/api/v1/tenants/t1/namespaces/default/pods"
        await created(alice, base, vm_pod("web"))
        answer = await act(alice, "web", SNAPSHOT, base=base)
        assert answer["_code"] == 201
        # The short path means the user's own tenant.
        assert (await act(alice, "web", RESTORE))["_code"] == 201
        listed = await names(alice, "/api/v1/tenants/t1/namespaces/default/actions")
        assert len(listed) == 2
        assert await names(admin, ACTIONS) == []


async def test_another_tenants_user_cannot_act_on_the_pod(server: Server) -> None:
    async with (
        server.client() as admin,
        server.client(ALICE_TOKEN) as alice,
        server.client(BOB_TOKEN) as bob,
    ):
        await make_tenant(admin, "t1")
        await make_tenant(admin, "t2")
        base = "/api/v1/tenants/t1/namespaces/default/pods"
        await created(alice, base, vm_pod("web"))
        message = await refused(bob, "web", REBOOT, code=403, reason="Forbidden", base=base)
        assert 'User "bob" cannot create resource "pods/action"' in message
        assert 'in the tenant "t1"' in message
        # Through the short path, bob's own tenant has no such pod.
        await refused(bob, "web", REBOOT, code=404, reason="NotFound")
        assert await names(admin, "/api/v1/tenants/t1/namespaces/default/actions") == []
        assert await names(admin, "/api/v1/tenants/t2/namespaces/default/actions") == []
        # A system admin may act in any tenant.
        assert (await act(admin, "web", REBOOT, base=base))["_code"] == 201


async def test_an_anonymous_request_is_unauthorized(server: Server) -> None:
    async with server.client(None) as anonymous:
        await refused(anonymous, "web", REBOOT, code=401, reason="Unauthorized")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (custom("migrate"), "unknown operation 'migrate'"),
        (custom(""), "operation: Required value"),
        ({"apiVersion": "v1", "kind": "CustomAction"}, "operation: Required value"),
        (custom("snapshot"), "snapshotParams.snapshotName: Required value"),
        (custom("snapshot", snapshotParams={"snapshotName": ""}), "snapshotName: Required"),
        (custom("snapshot", snapshotParams={"snapshotName": 3}), "must be a string"),
        (custom("restore", restoreParams={}), "restoreParams.snapshotID: Required value"),
        (custom("restore", restoreParams="x"), "restoreParams: must be an object"),
        (custom("reboot", rebootParams={"delayInSeconds": -1}), "delayInSeconds: Invalid"),
        (custom("reboot", rebootParams={"delayInSeconds": 1.5}), "delayInSeconds: Invalid"),
        (custom("reboot", rebootParams={"delayInSeconds": "10"}), "delayInSeconds: Invalid"),
        (custom("reboot", rebootParams={"delayInSeconds": True}), "delayInSeconds: Invalid"),
        ({**REBOOT, "kind": "Pod"}, "does not match the expected kind (CustomAction)"),
        ({**REBOOT, "apiVersion": "v2"}, "does not match the expected API version (v1)"),
        (["reboot"], "must be a CustomAction object"),
    ],
)
async def test_a_bad_custom_action_is_a_bad_request(
    admin: httpx.AsyncClient, body: Any, words: str
) -> None:
    await created(admin, PODS, vm_pod("web"))
    message = await refused(admin, "web", body, code=400, reason="BadRequest")
    assert words in message
    assert await names(admin, ACTIONS) == []


async def test_a_body_that_is_not_json_is_a_bad_request(admin: httpx.AsyncClient) -> None:
    await created(admin, PODS, vm_pod("web"))
    for content in (b"", b"{not json"):
        response = await admin.post(
            f"{PODS}/web/action", content=content, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert response.json()["reason"] == "BadRequest"
    assert await names(admin, ACTIONS) == []


async def test_a_missing_pod_is_not_found(admin: httpx.AsyncClient) -> None:
    message = await refused(admin, "ghost", REBOOT, code=404, reason="NotFound")
    assert message == 'pods "ghost" not found'
    assert await names(admin, ACTIONS) == []


async def test_a_pod_without_a_node_takes_no_action(admin: httpx.AsyncClient) -> None:
    await created(admin, PODS, vm_pod("web", node=None))
    message = await refused(admin, "web", REBOOT, code=400, reason="BadRequest")
    assert message == "pod web is not bound to a node"
    assert await names(admin, ACTIONS) == []


async def test_a_container_pod_takes_no_action(admin: httpx.AsyncClient) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox"}]},
    }
    await created(admin, PODS, pod)
    message = await refused(admin, "web", SNAPSHOT, code=400, reason="BadRequest")
    assert "pod web is not a virtual machine pod" in message
    assert await names(admin, ACTIONS) == []


async def test_a_pod_being_deleted_takes_no_action(admin: httpx.AsyncClient) -> None:
    # Bound to a node, the pod waits for its agent after the delete.
    await created(admin, PODS, vm_pod("web"))
    deleted = await admin.delete(f"{PODS}/web")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["metadata"].get("deletionTimestamp")
    message = await refused(admin, "web", REBOOT, code=409, reason="Conflict")
    assert message == "pod web is being deleted: it takes no more actions"
    assert await names(admin, ACTIONS) == []


async def test_only_post_is_allowed(admin: httpx.AsyncClient) -> None:
    await created(admin, PODS, vm_pod("web"))
    response = await admin.get(f"{PODS}/web/action")
    assert response.status_code == 405
    assert response.json()["reason"] == "MethodNotAllowed"


async def test_actions_are_selected_by_node_and_completion(admin: httpx.AsyncClient) -> None:
    await created(admin, PODS, vm_pod("a", node="node-1"))
    await created(admin, PODS, vm_pod("b", node="node-2"))
    on_1 = (await act(admin, "a", REBOOT))["details"]["name"]
    on_2 = (await act(admin, "b", SNAPSHOT))["details"]["name"]
    assert await names(admin, ACTIONS, fieldSelector="spec.nodeName=node-1") == [on_1]
    assert await names(admin, ACTIONS, fieldSelector="spec.nodeName=node-2") == [on_2]
    # Across tenants, as a node agent watches them.
    everywhere = "/api/v1/tenants/all/actions"
    assert await names(admin, everywhere, fieldSelector="spec.nodeName=node-2") == [on_2]
    # The agent completes one.
    action = (await admin.get(f"{ACTIONS}/{on_1}")).json()
    action["status"] = {**action["status"], "complete": True, "rebootStatus": {}}
    put = await admin.put(f"{ACTIONS}/{on_1}/status", json=action)
    assert put.status_code == 200, put.text
    assert await names(admin, ACTIONS, fieldSelector="status.complete=true") == [on_1]
    assert await names(admin, ACTIONS, fieldSelector="status.complete=false") == [on_2]
    pending = "spec.nodeName=node-1,status.complete=false"
    assert await names(admin, ACTIONS, fieldSelector=pending) == []


async def test_discovery_lists_the_action_subresource(admin: httpx.AsyncClient) -> None:
    listed = (await admin.get("/api/v1")).json()["resources"]
    [entry] = [r for r in listed if r["name"] == "pods/action"]
    assert entry["kind"] == "CustomAction"
    assert entry["verbs"] == ["create"]
    assert entry["namespaced"] is True


async def test_the_client_posts_custom_actions(server: Server, admin: httpx.AsyncClient) -> None:
    await created(admin, PODS, vm_pod("web"))
    registry = resources.Registry()
    pods = registry.get("", "v1", "pods")
    assert pods is not None
    config = client.Config(server=server.url, token=ADMIN_TOKEN)
    async with client.Client(config) as api:
        answer = await api.post_subresource(pods, "web", "action", REBOOT, namespace="default")
        assert answer["status"] == "Success"
        assert answer["message"] == "Created action 'reboot' for Pod 'web'"
        with pytest.raises(errors.BadRequest, match="unknown operation 'migrate'"):
            await api.post_subresource(
                pods, "web", "action", custom("migrate"), namespace="default"
            )
    assert await names(admin, ACTIONS) == [answer["details"]["name"]]
