"""Reads over HTTP: resourceVersion rules for get, list and watch, paging, selectors, and
watch streams (initial state, resuming, timeouts, bookmarks, 410 Gone)."""

from __future__ import annotations

import httpx
import pytest
import trio

from arktos_lite.apiserver import _http as http, _rest as rest

from .conftest import (
    Server,
    configmap,
    created,
    names,
    next_event,
    pod,
    rest_of,
    take,
    watching,
)

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
MERGE = {"Content-Type": "application/merge-patch+json"}


async def current_rv(admin: httpx.AsyncClient, url: str = CONFIGMAPS) -> str:
    rv: str = (await admin.get(url)).json()["metadata"]["resourceVersion"]
    return rv


# Get


async def test_get_at_any_version_not_older_than_asked(admin: httpx.AsyncClient) -> None:
    old = await created(admin, CONFIGMAPS, configmap("c", v="1"))
    await admin.patch(f"{CONFIGMAPS}/c", content=b'{"data":{"v":"2"}}', headers=MERGE)
    for rv in ("", "0", old["metadata"]["resourceVersion"]):
        got = await admin.get(f"{CONFIGMAPS}/c", params={"resourceVersion": rv})
        assert got.status_code == 200
        assert got.json()["data"] == {"v": "2"}
    bad = await admin.get(f"{CONFIGMAPS}/c", params={"resourceVersion": "abc"})
    assert bad.status_code == 400
    assert bad.json()["reason"] == "BadRequest"


async def test_a_future_version_waits_then_times_out(
    admin: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rest, "_FUTURE_WAIT", 0.3)
    await created(admin, CONFIGMAPS, configmap("c"))
    future = str(int(await current_rv(admin)) + 100)
    for url in (f"{CONFIGMAPS}/c", CONFIGMAPS):
        late = await admin.get(url, params={"resourceVersion": future})
        assert late.status_code == 504
        status = late.json()
        assert status["reason"] == "Timeout"
        assert status["message"].startswith(f"Too large resource version: {future}")


async def test_a_future_version_is_served_once_the_store_reaches_it(
    admin: httpx.AsyncClient,
) -> None:
    await created(admin, CONFIGMAPS, configmap("c"))
    future = str(int(await current_rv(admin)) + 1)
    answers: list[httpx.Response] = []

    async def read() -> None:
        answers.append(await admin.get(f"{CONFIGMAPS}/c", params={"resourceVersion": future}))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await trio.sleep(0.2)
        await admin.patch(f"{CONFIGMAPS}/c", content=b'{"data":{"v":"2"}}', headers=MERGE)
    [answer] = answers
    assert answer.status_code == 200
    assert answer.json()["data"] == {"v": "2"}
    assert answer.json()["metadata"]["resourceVersion"] == future


# List


async def test_list_carries_the_current_resource_version(admin: httpx.AsyncClient) -> None:
    body = await created(admin, CONFIGMAPS, configmap("c"))
    listed = (await admin.get(CONFIGMAPS)).json()
    assert listed["kind"] == "ConfigMapList"
    assert listed["apiVersion"] == "v1"
    assert listed["metadata"]["resourceVersion"] == body["metadata"]["resourceVersion"]
    assert "continue" not in listed["metadata"]
    # Writes elsewhere move the list's version too: it is the store's revision.
    await created(admin, PODS, pod("p"))
    assert int(await current_rv(admin)) > int(body["metadata"]["resourceVersion"])


async def test_exact_lists_a_past_snapshot(admin: httpx.AsyncClient) -> None:
    await created(admin, CONFIGMAPS, configmap("a", v="1"))
    await created(admin, CONFIGMAPS, configmap("b"))
    then = await current_rv(admin)
    await admin.patch(f"{CONFIGMAPS}/a", content=b'{"data":{"v":"2"}}', headers=MERGE)
    await admin.delete(f"{CONFIGMAPS}/b")
    await created(admin, CONFIGMAPS, configmap("c"))
    past = await admin.get(
        CONFIGMAPS, params={"resourceVersion": then, "resourceVersionMatch": "Exact"}
    )
    assert past.status_code == 200, past.text
    body = past.json()
    assert body["metadata"]["resourceVersion"] == then
    assert [(c["metadata"]["name"], c.get("data")) for c in body["items"]] == [
        ("a", {"v": "1"}),
        ("b", {}),
    ]
    newer = await admin.get(
        CONFIGMAPS, params={"resourceVersion": then, "resourceVersionMatch": "NotOlderThan"}
    )
    assert [c["metadata"]["name"] for c in newer.json()["items"]] == ["a", "c"]


async def test_exact_after_compaction_is_gone(server: Server, admin: httpx.AsyncClient) -> None:
    await created(admin, CONFIGMAPS, configmap("a"))
    then = await current_rv(admin)
    await created(admin, CONFIGMAPS, configmap("b"))
    now = int(await current_rv(admin))
    await server.api.rest.backend.compact(now)
    gone = await admin.get(
        CONFIGMAPS, params={"resourceVersion": then, "resourceVersionMatch": "Exact"}
    )
    assert gone.status_code == 410
    status = gone.json()
    assert status["reason"] == "Expired"
    assert "too old" in status["message"]
    # The current state is still there.
    assert await names(admin, CONFIGMAPS) == ["a", "b"]


async def test_list_parameters_kubernetes_refuses(admin: httpx.AsyncClient) -> None:
    await created(admin, CONFIGMAPS, configmap("a"))
    await created(admin, CONFIGMAPS, configmap("b"))
    token = (await admin.get(CONFIGMAPS, params={"limit": "1"})).json()["metadata"]["continue"]
    rv = await current_rv(admin)
    for params, message in (
        (
            {"resourceVersionMatch": "Exact"},
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        ),
        (
            {"resourceVersion": "0", "resourceVersionMatch": "Exact"},
            'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
        ),
        (
            {"resourceVersion": rv, "resourceVersionMatch": "Sometimes"},
            'Unsupported value: "Sometimes": supported values: "Exact", "NotOlderThan", ""',
        ),
        (
            {"resourceVersion": "0", "resourceVersionMatch": "NotOlderThan", "continue": token},
            "resourceVersionMatch is forbidden when continue is provided",
        ),
    ):
        refused = await admin.get(CONFIGMAPS, params=params)
        assert refused.status_code == 422, params
        status = refused.json()
        assert status["reason"] == "Invalid"
        assert status["details"]["group"] == "meta.k8s.io"
        assert message in status["message"], params
    for params in (
        {"resourceVersion": "x", "resourceVersionMatch": "Exact"},
        {"resourceVersion": rv, "continue": token},
    ):
        refused = await admin.get(CONFIGMAPS, params=params)
        assert refused.status_code == 400, params
        assert refused.json()["reason"] == "BadRequest"


async def test_pages_read_one_snapshot_while_writes_happen(admin: httpx.AsyncClient) -> None:
    for name in "abcde":
        await created(admin, CONFIGMAPS, configmap(name, v="1"))
    first = (await admin.get(CONFIGMAPS, params={"limit": "2"})).json()
    assert [c["metadata"]["name"] for c in first["items"]] == ["a", "b"]
    token = first["metadata"]["continue"]
    rv = first["metadata"]["resourceVersion"]
    # Change what the next pages would show.
    await admin.delete(f"{CONFIGMAPS}/d")
    await created(admin, CONFIGMAPS, configmap("cc"))
    await admin.patch(f"{CONFIGMAPS}/e", content=b'{"data":{"v":"2"}}', headers=MERGE)
    seen = []
    while token:
        page = (await admin.get(CONFIGMAPS, params={"limit": "2", "continue": token})).json()
        assert page["metadata"]["resourceVersion"] == rv
        seen += [(c["metadata"]["name"], c["data"]["v"]) for c in page["items"]]
        token = page["metadata"].get("continue", "")
    assert seen == [("c", "1"), ("d", "1"), ("e", "1")]
    # A fresh list sees the writes.
    assert await names(admin, CONFIGMAPS) == ["a", "b", "c", "cc", "e"]


async def test_pages_with_a_selector_are_full(admin: httpx.AsyncClient) -> None:
    for i in range(6):
        body = configmap(f"c{i}")
        body["metadata"]["labels"] = {"even": str(i % 2 == 0).lower()}
        await created(admin, CONFIGMAPS, body)
    params = {"limit": "2", "labelSelector": "even=true"}
    first = (await admin.get(CONFIGMAPS, params=params)).json()
    assert [c["metadata"]["name"] for c in first["items"]] == ["c0", "c2"]
    rest_page = (
        await admin.get(CONFIGMAPS, params={**params, "continue": first["metadata"]["continue"]})
    ).json()
    assert [c["metadata"]["name"] for c in rest_page["items"]] == ["c4"]
    assert "continue" not in rest_page["metadata"]


async def test_an_expired_continue_token_is_gone(server: Server, admin: httpx.AsyncClient) -> None:
    for name in "abc":
        await created(admin, CONFIGMAPS, configmap(name))
    token = (await admin.get(CONFIGMAPS, params={"limit": "1"})).json()["metadata"]["continue"]
    await created(admin, CONFIGMAPS, configmap("d"))
    await server.api.rest.backend.compact(int(await current_rv(admin)))
    expired = await admin.get(CONFIGMAPS, params={"limit": "1", "continue": token})
    assert expired.status_code == 410
    status = expired.json()
    assert status["reason"] == "Expired"
    assert status["message"].startswith("The provided continue parameter is too old")


async def test_bad_paging_parameters(admin: httpx.AsyncClient) -> None:
    for params in ({"continue": "garbage"}, {"limit": "-1"}, {"limit": "many"}):
        bad = await admin.get(CONFIGMAPS, params=params)
        assert bad.status_code == 400, params
        assert bad.json()["reason"] == "BadRequest"
    # A token of one collection is no good for another.
    await created(admin, CONFIGMAPS, configmap("a"))
    await created(admin, CONFIGMAPS, configmap("b"))
    token = (await admin.get(CONFIGMAPS, params={"limit": "1"})).json()["metadata"]["continue"]
    assert (await admin.get(PODS, params={"continue": token})).status_code == 400


# Selectors


async def test_label_selectors(admin: httpx.AsyncClient) -> None:
    for name, labels in [
        ("web", {"app": "web", "tier": "front"}),
        ("api", {"app": "api", "tier": "back", "version": "3"}),
        ("db", {"app": "db", "version": "12"}),
        ("bare", {}),
    ]:
        body = configmap(name)
        body["metadata"]["labels"] = labels
        await created(admin, CONFIGMAPS, body)
    cases = {
        "app=web": ["web"],
        "app==web": ["web"],
        "app!=web": ["api", "bare", "db"],
        "app in (web,api)": ["api", "web"],
        "app notin (web,api)": ["bare", "db"],
        "tier": ["api", "web"],
        "!tier": ["bare", "db"],
        "version>5": ["db"],
        "version<5": ["api"],
        "app,tier=back": ["api"],
        "": ["api", "bare", "db", "web"],
    }
    for selector, expected in cases.items():
        assert sorted(await names(admin, CONFIGMAPS, labelSelector=selector)) == expected, selector


async def test_field_selectors(admin: httpx.AsyncClient) -> None:
    await created(admin, "/api/v1/namespaces", {"metadata": {"name": "other"}})
    await created(admin, PODS, pod("a"))
    bound = pod("b")
    bound["spec"]["nodeName"] = "n1"
    await created(admin, PODS, bound)
    await created(admin, "/api/v1/namespaces/other/pods", pod("c"))
    status = {"status": {"phase": "Running"}}
    body = (await admin.get(f"{PODS}/b")).json()
    await admin.put(f"{PODS}/b/status", json={**body, **status})
    cases = {
        "metadata.name=a": ["a"],
        "metadata.name!=a": ["b", "c"],
        "metadata.namespace=other": ["c"],
        "spec.nodeName=n1": ["b"],
        "spec.nodeName=": ["a", "c"],
        "status.phase=Running": ["b"],
        "status.phase=Pending,metadata.namespace=default": ["a"],
    }
    for selector, expected in cases.items():
        assert sorted(await names(admin, "/api/v1/pods", fieldSelector=selector)) == expected, (
            selector
        )


async def test_hash_key_ranges(admin: httpx.AsyncClient) -> None:
    keys = {}
    for i in range(8):
        body = await created(admin, CONFIGMAPS, configmap(f"c{i}"))
        keys[body["metadata"]["name"]] = body["metadata"]["hashKey"]
    ordered = sorted(keys, key=keys.__getitem__)
    low, mid, high = keys[ordered[1]], keys[ordered[3]], keys[ordered[6]]
    cases = {
        f"metadata.hashkey=gt:{mid}": ordered[4:],
        f"metadata.hashkey=gte:{mid}": ordered[3:],
        f"metadata.hashkey=lt:{mid}": ordered[:3],
        f"metadata.hashkey=lte:{mid}": ordered[:4],
        f"metadata.hashkey=gt:{low},metadata.hashkey=lte:{high}": ordered[2:7],
        f"metadata.hashkey=lt:{low};metadata.hashkey=gt:{high}": [ordered[0], ordered[7]],
    }
    for selector, expected in cases.items():
        found = await names(admin, CONFIGMAPS, fieldSelector=selector)
        assert sorted(found) == sorted(expected), selector


async def test_owner_hash_key_ranges(admin: httpx.AsyncClient) -> None:
    owners = []
    for i in range(2):
        owner = await created(admin, CONFIGMAPS, configmap(f"owner{i}"))
        owners.append(owner["metadata"])
        child = pod(f"child{i}")
        child["metadata"]["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "rs",
                "uid": owner["metadata"]["uid"],
            }
        ]
        await created(admin, PODS, child)
    await created(admin, PODS, pod("orphan"))
    field = "metadata.ownerReferences.hashkey.ReplicaSet"
    for i, owner in enumerate(owners):
        key = owner["hashKey"]
        selector = f"{field}=gte:{key},{field}=lte:{key}"
        assert await names(admin, PODS, fieldSelector=selector) == [f"child{i}"]
    everything = f"{field}=gte:0"
    assert sorted(await names(admin, PODS, fieldSelector=everything)) == ["child0", "child1"]


async def test_bad_selectors_are_bad_requests(admin: httpx.AsyncClient) -> None:
    for params in (
        {"labelSelector": "app in (web"},
        {"labelSelector": "a b"},
        {"labelSelector": "app=we b"},
        {"fieldSelector": "spec.nope=1"},
        {"fieldSelector": "metadata.hashkey=gt:x"},
        {"fieldSelector": "nonsense"},
    ):
        for extra in ({}, {"watch": "1"}):
            bad = await admin.get(PODS, params={**params, **extra})
            assert bad.status_code == 400, (params, extra)
            assert bad.json()["reason"] == "BadRequest"
    unsupported = await admin.get(PODS, params={"fieldSelector": "spec.nope=1"})
    assert unsupported.json()["message"] == "field label not supported: spec.nope"


# Watch


async def test_watch_starts_with_the_current_state(admin: httpx.AsyncClient) -> None:
    await created(admin, CONFIGMAPS, configmap("a"))
    await created(admin, CONFIGMAPS, configmap("b"))
    for url, params in (
        (CONFIGMAPS, {"watch": "1"}),
        (CONFIGMAPS, {"watch": "true", "resourceVersion": "0"}),
        ("/api/v1/watch/namespaces/default/configmaps", {}),
        ("/api/v1/watch/tenants/system/namespaces/default/configmaps", {}),
    ):
        async with watching(admin, url, **params) as events:
            assert await next_event(events) == {"status": 200}
            found = await take(events, 2)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in found] == [
            ("ADDED", "a"),
            ("ADDED", "b"),
        ], url
        assert found[0]["object"]["kind"] == "ConfigMap"


async def test_watch_streams_changes_and_ends_at_its_timeout(admin: httpx.AsyncClient) -> None:
    rv = await current_rv(admin)
    started = trio.current_time()
    async with watching(
        admin, CONFIGMAPS, watch="1", resourceVersion=rv, timeoutSeconds="1"
    ) as events:
        assert await next_event(events) == {"status": 200}
        made = await created(admin, CONFIGMAPS, configmap("a", v="1"))
        await admin.patch(f"{CONFIGMAPS}/a", content=b'{"data":{"v":"2"}}', headers=MERGE)
        await admin.delete(f"{CONFIGMAPS}/a")
        found = await rest_of(events)
    assert 0.9 <= trio.current_time() - started < 3
    assert [(e["type"], e["object"]["data"]["v"]) for e in found] == [
        ("ADDED", "1"),
        ("MODIFIED", "2"),
        ("DELETED", "2"),
    ]
    revisions = [int(e["object"]["metadata"]["resourceVersion"]) for e in found]
    assert revisions == sorted(revisions)
    assert revisions[0] == int(made["metadata"]["resourceVersion"])


async def test_watch_resumes_after_a_resource_version(admin: httpx.AsyncClient) -> None:
    first = await created(admin, CONFIGMAPS, configmap("a"))
    await created(admin, CONFIGMAPS, configmap("b"))
    await admin.delete(f"{CONFIGMAPS}/a")
    async with watching(
        admin,
        CONFIGMAPS,
        watch="1",
        resourceVersion=first["metadata"]["resourceVersion"],
    ) as events:
        assert await next_event(events) == {"status": 200}
        found = await take(events, 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in found] == [
        ("ADDED", "b"),
        ("DELETED", "a"),
    ]


async def test_watch_from_a_compacted_version_is_gone(
    server: Server, admin: httpx.AsyncClient
) -> None:
    await created(admin, CONFIGMAPS, configmap("a"))
    now = int(await current_rv(admin))
    await server.api.rest.backend.compact(now)
    async with watching(admin, CONFIGMAPS, watch="1", resourceVersion="1") as events:
        assert await next_event(events) == {"status": 200}
        found = await rest_of(events)
    [error] = found
    assert error["type"] == "ERROR"
    status = error["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert status["message"] == f"too old resource version: 1 ({now})"


async def test_selector_watch_turns_changes_into_added_and_deleted(
    admin: httpx.AsyncClient,
) -> None:
    rv = await current_rv(admin)
    label = b'{"metadata":{"labels":{"app":"web"}}}'
    unlabel = b'{"metadata":{"labels":{"app":null}}}'
    async with watching(
        admin,
        CONFIGMAPS,
        watch="1",
        resourceVersion=rv,
        labelSelector="app=web",
    ) as events:
        assert await next_event(events) == {"status": 200}
        await created(admin, CONFIGMAPS, configmap("c", v="1"))
        await admin.patch(f"{CONFIGMAPS}/c", content=label, headers=MERGE)
        await admin.patch(f"{CONFIGMAPS}/c", content=b'{"data":{"v":"2"}}', headers=MERGE)
        await admin.patch(f"{CONFIGMAPS}/c", content=unlabel, headers=MERGE)
        await admin.patch(f"{CONFIGMAPS}/c", content=b'{"data":{"v":"3"}}', headers=MERGE)
        await admin.delete(f"{CONFIGMAPS}/c")
        # A matching object last: nothing came in between.
        sentinel = configmap("sentinel", v="4")
        sentinel["metadata"]["labels"] = {"app": "web"}
        await created(admin, CONFIGMAPS, sentinel)
        found = await take(events, 4)
    assert [(e["type"], e["object"]["data"]["v"]) for e in found] == [
        ("ADDED", "1"),
        ("MODIFIED", "2"),
        ("DELETED", "2"),
        ("ADDED", "4"),
    ]


async def test_field_selector_watch(admin: httpx.AsyncClient) -> None:
    rv = await current_rv(admin, PODS)
    async with watching(
        admin,
        "/api/v1/watch/pods",
        resourceVersion=rv,
        fieldSelector="spec.nodeName=n1",
    ) as events:
        assert await next_event(events) == {"status": 200}
        await created(admin, PODS, pod("a"))
        await admin.post(
            f"{PODS}/a/binding",
            json={
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": "a"},
                "target": {"kind": "Node", "name": "n1"},
            },
        )
        found = await take(events, 1)
    assert [(e["type"], e["object"]["spec"].get("nodeName")) for e in found] == [("ADDED", "n1")]


async def test_bookmarks_carry_the_latest_version(
    admin: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "_BOOKMARK_INTERVAL", 0.2)
    rv = await current_rv(admin)
    async with watching(
        admin,
        CONFIGMAPS,
        watch="1",
        resourceVersion=rv,
        allowWatchBookmarks="true",
        labelSelector="app=web",
        timeoutSeconds="2",
    ) as events:
        assert await next_event(events) == {"status": 200}
        # A change the selector filters out still moves the watch's version on.
        other = await created(admin, CONFIGMAPS, configmap("other"))
        bookmark = await next_event(events)
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"] == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": other["metadata"]["resourceVersion"]},
    }


async def test_no_bookmarks_unless_asked(
    admin: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "_BOOKMARK_INTERVAL", 0.1)
    rv = await current_rv(admin)
    async with watching(admin, CONFIGMAPS, watch="1", resourceVersion=rv) as events:
        assert await next_event(events) == {"status": 200}
        await created(admin, CONFIGMAPS, configmap("a"))
        await trio.sleep(0.5)
        await created(admin, CONFIGMAPS, configmap("b"))
        found = await take(events, 2)
    assert [e["type"] for e in found] == ["ADDED", "ADDED"]


@pytest.mark.slow
async def test_bookmarks_come_at_the_real_interval(admin: httpx.AsyncClient) -> None:
    rv = await current_rv(admin)
    async with watching(
        admin,
        CONFIGMAPS,
        watch="1",
        resourceVersion=rv,
        allowWatchBookmarks="1",
        timeoutSeconds="7",
    ) as events:
        assert await next_event(events) == {"status": 200}
        made = await created(admin, CONFIGMAPS, configmap("a"))
        assert (await next_event(events))["type"] == "ADDED"
        bookmark = await next_event(events, within=6)
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]


async def test_watch_from_a_malformed_version_is_a_bad_request(admin: httpx.AsyncClient) -> None:
    async with watching(admin, CONFIGMAPS, watch="1", resourceVersion="abc") as events:
        first = await next_event(events)
        found = [first, *await rest_of(events)]
    errors = [e["object"] for e in found if e.get("type") == "ERROR"] or found[1:]
    assert errors[0]["code"] == 400
    assert errors[0]["reason"] == "BadRequest"
    # The server lives on.
    assert (await admin.get(CONFIGMAPS)).status_code == 200


async def test_watch_of_one_object_is_not_allowed(admin: httpx.AsyncClient) -> None:
    await created(admin, CONFIGMAPS, configmap("a"))
    refused = await admin.get("/api/v1/watch/namespaces/default/configmaps/a")
    assert refused.status_code == 405
    assert refused.json()["reason"] == "MethodNotAllowed"


async def test_watch_from_a_future_version_starts_there(admin: httpx.AsyncClient) -> None:
    future = int(await current_rv(admin)) + 2
    async with watching(admin, CONFIGMAPS, watch="1", resourceVersion=str(future)) as events:
        assert await next_event(events) == {"status": 200}
        for name in "abc":
            await created(admin, CONFIGMAPS, configmap(name))
        event = await next_event(events)
    assert event["object"]["metadata"]["name"] == "c"
    assert int(event["object"]["metadata"]["resourceVersion"]) == future + 1
