"""Custom resources over real HTTP: CRDs per tenant, served at once, with every REST semantic.

A CRD is served as soon as its create returns (the next request sees the kind), gets
`NamesAccepted` and `Established`, and its objects are defaulted, pruned and validated by
its schema, convert between its versions, keep status and scale apart, and go when it goes.
Each tenant sees its own CRDs and the system tenant's shared ones, never another tenant's.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import trio

from .conftest import (
    ALICE_TOKEN,
    BOB_TOKEN,
    Server,
    created,
    make_tenant,
    names,
    next_event,
    watching,
)

Obj = dict[str, Any]

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CRONTABS = "/apis/stable.example.com/v1/namespaces/default/crontabs"

SPEC_SCHEMA: Obj = {
    "type": "object",
    "properties": {
        "cronSpec": {"type": "string", "pattern": r"^(\S+ ){4}\S+$"},
        "image": {"type": "string"},
        "replicas": {"type": "integer", "minimum": 0, "default": 1},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "port": {"x-kubernetes-int-or-string": True},
    },
    "required": ["cronSpec"],
}
STATUS_SCHEMA: Obj = {
    "type": "object",
    "properties": {
        "replicas": {"type": "integer"},
        "selector": {"type": "string"},
        "phase": {"type": "string"},
    },
}


def crontab_crd(
    *,
    versions: tuple[str, ...] = ("v1",),
    storage: str = "v1",
    scope: str = "Namespaced",
    spec_schema: Obj | None = None,
    labels: dict[str, str] | None = None,
) -> Obj:
    schema = {
        "type": "object",
        "properties": {
            "spec": spec_schema or SPEC_SCHEMA,
            "status": STATUS_SCHEMA,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com", "labels": labels or {}},
        "spec": {
            "group": "stable.example.com",
            "scope": scope,
            "names": {
                "plural": "crontabs",
                "singular": "crontab",
                "kind": "CronTab",
                "shortNames": ["ct"],
                "categories": ["all"],
            },
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": version == storage,
                    "schema": {"openAPIV3Schema": copy.deepcopy(schema)},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                }
                for version in versions
            ],
        },
    }


def crontab(name: str, *, version: str = "v1", **spec: Any) -> Obj:
    return {
        "apiVersion": f"stable.example.com/{version}",
        "kind": "CronTab",
        "metadata": {"name": name},
        "spec": {"cronSpec": "* * * * */5", "image": "busybox", **spec},
    }


async def established(client: httpx.AsyncClient, url: str, *, within: float = 5) -> Obj:
    """The CRD at `url` once it is Established."""
    with trio.fail_after(within):
        while True:
            crd: Obj = (await client.get(url)).json()
            conditions = {c["type"]: c for c in crd.get("status", {}).get("conditions", [])}
            if conditions.get("Established", {}).get("status") == "True":
                return crd
            await trio.sleep(0.02)


async def gone(client: httpx.AsyncClient, url: str, *, within: float = 5) -> None:
    with trio.fail_after(within):
        while True:
            if (await client.get(url)).status_code == 404:
                return
            await trio.sleep(0.05)


async def test_a_crd_is_served_at_once_and_established(admin: httpx.AsyncClient) -> None:
    crd = await created(admin, CRDS, crontab_crd())
    assert crd["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]
    # The very next request may use the kind.
    obj = await created(admin, CRONTABS, crontab("every-five"))
    assert obj["spec"]["replicas"] == 1  # defaulted from the schema
    assert obj["metadata"]["generation"] == 1
    assert obj["metadata"]["tenant"] == "system"
    crd = await established(admin, f"{CRDS}/crontabs.stable.example.com")
    conditions = {c["type"]: c for c in crd["status"]["conditions"]}
    assert conditions["NamesAccepted"]["status"] == "True"
    assert crd["status"]["acceptedNames"]["kind"] == "CronTab"
    assert crd["status"]["storedVersions"] == ["v1"]
    fetched = await admin.get(f"{CRONTABS}/every-five")
    assert fetched.status_code == 200
    assert fetched.json()["spec"]["cronSpec"] == "* * * * */5"
    # Both URL forms name it.
    tenanted = "/apis/stable.example.com/v1/tenants/system/namespaces/default/crontabs"
    assert await names(admin, tenanted) == ["every-five"]
    # Gone at once, a custom object's delete answers with a Status naming it.
    deleted = await admin.delete(f"{CRONTABS}/every-five")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["kind"] == "Status"
    assert deleted.json()["details"] == {
        "name": "every-five",
        "group": "stable.example.com",
        "kind": "crontabs",
        "uid": obj["metadata"]["uid"],
    }


async def test_discovery_lists_the_kind(admin: httpx.AsyncClient) -> None:
    crd = crontab_crd()
    crd["spec"]["names"]["singular"] = "crontabentry"
    await created(admin, CRDS, crd)
    groups = (await admin.get("/apis")).json()["groups"]
    assert "stable.example.com" in [g["name"] for g in groups]
    listed = (await admin.get("/apis/stable.example.com/v1")).json()["resources"]
    entries = {r["name"]: r for r in listed}
    assert entries["crontabs"]["kind"] == "CronTab"
    # The CRD's singular name, not the lower-cased kind.
    assert entries["crontabs"]["singularName"] == "crontabentry"
    assert entries["crontabs"]["namespaced"] is True
    assert entries["crontabs"]["shortNames"] == ["ct"]
    assert entries["crontabs"]["categories"] == ["all"]
    assert entries["crontabs/scale"]["kind"] == "Scale"
    assert "crontabs/status" in entries


async def test_unknown_fields_are_pruned_or_refused(admin: httpx.AsyncClient) -> None:
    await created(admin, CRDS, crontab_crd())
    body = crontab("pruned", color="red", extra={"anything": {"goes": 1}}, port="http")
    response = await admin.post(CRONTABS, json=body)
    assert response.status_code == 201, response.text
    assert "color" not in response.json()["spec"]
    assert response.json()["spec"]["extra"] == {"anything": {"goes": 1}}
    assert response.json()["spec"]["port"] == "http"
    assert 'unknown field \\"spec.color\\"' in response.headers.get("Warning", "")

    strict = await admin.post(
        CRONTABS, params={"fieldValidation": "Strict"}, json=crontab("strict", color="red")
    )
    assert strict.status_code == 400, strict.text
    assert 'unknown field "spec.color"' in strict.json()["message"]
    assert (await admin.get(f"{CRONTABS}/strict")).status_code == 404


async def test_objects_failing_the_schema_are_refused(admin: httpx.AsyncClient) -> None:
    await created(admin, CRDS, crontab_crd())
    bad = crontab("bad", cronSpec="not a cron", replicas=-1)
    response = await admin.post(CRONTABS, json=bad)
    assert response.status_code == 422, response.text
    status = response.json()
    assert status["reason"] == "Invalid"
    fields = {cause["field"] for cause in status["details"]["causes"]}
    assert {"spec.cronSpec", "spec.replicas"} <= fields
    missing = {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "missing"},
        "spec": {"image": "x"},
    }
    response = await admin.post(CRONTABS, json=missing)
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "spec.cronSpec"
    assert await names(admin, CRONTABS) == []


async def test_a_stricter_schema_lets_unchanged_values_be(admin: httpx.AsyncClient) -> None:
    made = await created(admin, CRDS, crontab_crd())
    crd = await established(admin, f"{CRDS}/{made['metadata']['name']}")
    await created(admin, CRONTABS, crontab("old", image="a-long-image-name", replicas=7))
    # The schema gets stricter: the stored object is now invalid in two fields.
    strict = copy.deepcopy(SPEC_SCHEMA)
    strict["properties"]["image"]["maxLength"] = 5
    strict["properties"]["replicas"]["maximum"] = 3
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = strict
    response = await admin.put(f"{CRDS}/{crd['metadata']['name']}", json=crd)
    assert response.status_code == 200, response.text
    with trio.fail_after(5):
        while True:
            trial = crontab("new", replicas=7)
            answer = await admin.post(CRONTABS, json=trial, params={"dryRun": "All"})
            if answer.status_code == 422:
                break
            await trio.sleep(0.05)
    # Updates that leave those values alone go through, as with kube-apiserver's ratcheting.
    merge = {"Content-Type": "application/merge-patch+json"}
    url = f"{CRONTABS}/old"
    labelled = await admin.patch(url, json={"spec": {"labels": {"a": "b"}}}, headers=merge)
    assert labelled.status_code == 200, labelled.text
    obj = labelled.json()
    obj["status"] = {"phase": "Running"}
    assert (await admin.put(f"{url}/status", json=obj)).status_code == 200
    # A changed value must pass; a fixed one may.
    bigger = await admin.patch(url, json={"spec": {"replicas": 8}}, headers=merge)
    assert bigger.status_code == 422, bigger.text
    assert [c["field"] for c in bigger.json()["details"]["causes"]] == ["spec.replicas"]
    fixed = await admin.patch(url, json={"spec": {"replicas": 2}}, headers=merge)
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["spec"]["image"] == "a-long-image-name"


async def test_status_and_spec_are_written_apart(admin: httpx.AsyncClient) -> None:
    await created(admin, CRDS, crontab_crd())
    body = crontab("apart")
    body["status"] = {"phase": "Made-up"}
    obj = await created(admin, CRONTABS, body)
    assert "status" not in obj  # a create cannot set the status
    obj["status"] = {"phase": "Running", "replicas": 1}
    status = await admin.put(f"{CRONTABS}/apart/status", json=obj)
    assert status.status_code == 200, status.text
    assert status.json()["status"]["phase"] == "Running"
    assert status.json()["metadata"]["generation"] == 1
    changed = status.json()
    changed["spec"]["image"] = "nginx"
    changed["status"]["phase"] = "Ignored"
    updated = await admin.put(f"{CRONTABS}/apart", json=changed)
    assert updated.status_code == 200, updated.text
    assert updated.json()["status"]["phase"] == "Running"
    assert updated.json()["spec"]["image"] == "nginx"
    assert updated.json()["metadata"]["generation"] == 2


async def test_patches_and_scale(admin: httpx.AsyncClient) -> None:
    await created(admin, CRDS, crontab_crd())
    await created(admin, CRONTABS, crontab("scaled"))
    merge = await admin.patch(
        f"{CRONTABS}/scaled",
        json={"metadata": {"labels": {"tier": "batch"}}, "spec": {"image": "alpine"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert merge.status_code == 200, merge.text
    assert merge.json()["spec"]["image"] == "alpine"
    json_patch = await admin.patch(
        f"{CRONTABS}/scaled",
        json=[{"op": "replace", "path": "/spec/image", "value": "nginx"}],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert json_patch.json()["spec"]["image"] == "nginx"
    strategic = await admin.patch(
        f"{CRONTABS}/scaled",
        json={"spec": {"image": "x"}},
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert strategic.status_code == 415
    assert strategic.json()["reason"] == "UnsupportedMediaType"

    scale = (await admin.get(f"{CRONTABS}/scaled/scale")).json()
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 1
    scale["spec"]["replicas"] = 4
    put = await admin.put(f"{CRONTABS}/scaled/scale", json=scale)
    assert put.status_code == 200, put.text
    assert put.json()["spec"]["replicas"] == 4
    assert (await admin.get(f"{CRONTABS}/scaled")).json()["spec"]["replicas"] == 4
    await admin.patch(
        f"{CRONTABS}/scaled/status",
        json={"status": {"replicas": 4, "selector": "app=cron"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    scale = (await admin.get(f"{CRONTABS}/scaled/scale")).json()
    assert scale["status"] == {"replicas": 4, "selector": "app=cron"}


async def test_tables_use_the_printer_columns(admin: httpx.AsyncClient) -> None:
    await created(admin, CRDS, crontab_crd())
    await created(admin, CRONTABS, crontab("tabled", replicas=3))
    table = (
        await admin.get(
            CRONTABS, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
        )
    ).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Spec", "Replicas", "Age"]
    cells = table["rows"][0]["cells"]
    assert cells[:3] == ["tabled", "* * * * */5", 3]


async def test_versions_convert_and_store_one_version(admin: httpx.AsyncClient) -> None:
    await created(admin, CRDS, crontab_crd(versions=("v1", "v1beta1"), storage="v1"))
    beta = "/apis/stable.example.com/v1beta1/namespaces/default/crontabs"
    obj = await created(admin, beta, crontab("old-style", version="v1beta1"))
    assert obj["apiVersion"] == "stable.example.com/v1beta1"
    assert (await admin.get(f"{CRONTABS}/old-style")).json()["apiVersion"] == (
        "stable.example.com/v1"
    )
    listed = (await admin.get(beta)).json()
    assert listed["apiVersion"] == "stable.example.com/v1beta1"
    assert listed["items"][0]["apiVersion"] == "stable.example.com/v1beta1"
    patched = await admin.patch(
        f"{beta}/old-style",
        json={"spec": {"image": "alpine"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["apiVersion"] == "stable.example.com/v1beta1"
    async with watching(admin, beta, watch="1", resourceVersion="0") as events:
        assert (await next_event(events))["status"] == 200
        event = await next_event(events)
        assert event["object"]["apiVersion"] == "stable.example.com/v1beta1"


async def test_watch_and_selectors(admin: httpx.AsyncClient) -> None:
    await created(admin, CRDS, crontab_crd())
    async with watching(admin, CRONTABS, watch="1", labelSelector="tier=web") as events:
        assert (await next_event(events))["status"] == 200
        body = crontab("watched")
        body["metadata"]["labels"] = {"tier": "web"}
        await created(admin, CRONTABS, crontab("ignored"))
        await created(admin, CRONTABS, body)
        event = await next_event(events)
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "watched")
    assert await names(admin, CRONTABS, fieldSelector="metadata.name=ignored") == ["ignored"]
    assert await names(admin, CRONTABS, limit="1") == ["ignored"]


async def test_deleting_the_crd_deletes_its_objects(admin: httpx.AsyncClient) -> None:
    url = f"{CRDS}/crontabs.stable.example.com"
    await created(admin, CRDS, crontab_crd())
    await created(admin, CRONTABS, crontab("first"))
    held = crontab("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await created(admin, CRONTABS, held)
    await established(admin, url)
    deleted = await admin.delete(url)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["metadata"]["deletionTimestamp"]
    # Its objects go; the one with a finalizer waits for it, and so does the CRD.
    await gone(admin, f"{CRONTABS}/first")
    refused = await admin.post(CRONTABS, json=crontab("late"))
    assert refused.status_code == 405, refused.text
    held_now = (await admin.get(f"{CRONTABS}/held")).json()
    assert held_now["metadata"]["deletionTimestamp"]
    crd = (await admin.get(url)).json()
    assert {c["type"] for c in crd["status"]["conditions"]} >= {"Terminating"}
    await admin.patch(
        f"{CRONTABS}/held",
        json={"metadata": {"finalizers": None}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    await gone(admin, url)
    assert (await admin.get(CRONTABS)).status_code == 404


async def test_bad_crds_are_refused(admin: httpx.AsyncClient) -> None:
    bad = crontab_crd()
    bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = {
        "properties": {"cronSpec": {"type": "string"}}
    }
    response = await admin.post(CRDS, json=bad)
    assert response.status_code == 422, response.text
    assert response.json()["reason"] == "Invalid"
    wrong_name = crontab_crd()
    wrong_name["metadata"]["name"] = "crontabs.other.example.com"
    response = await admin.post(CRDS, json=wrong_name)
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "metadata.name"
    no_storage = crontab_crd()
    no_storage["spec"]["versions"][0]["storage"] = False
    assert (await admin.post(CRDS, json=no_storage)).status_code == 422
    assert await names(admin, CRDS) == []


async def test_tenants_define_their_own_kinds(server: Server, admin: httpx.AsyncClient) -> None:
    await make_tenant(admin, "t1")
    await make_tenant(admin, "t2")
    t1_schema = {
        "type": "object",
        "properties": {"cronSpec": {"type": "string"}},
        "required": ["cronSpec"],
    }
    t2_schema = {
        "type": "object",
        "properties": {"size": {"type": "integer"}},
        "required": ["size"],
    }
    async with server.client(ALICE_TOKEN) as alice, server.client(BOB_TOKEN) as bob:
        await created(alice, CRDS, crontab_crd(spec_schema=t1_schema))
        await created(bob, CRDS, crontab_crd(spec_schema=t2_schema))
        ok = {
            "apiVersion": "stable.example.com/v1",
            "kind": "CronTab",
            "metadata": {"name": "a"},
            "spec": {"cronSpec": "x", "size": 3},
        }
        alice_made = await created(alice, CRONTABS, ok)
        assert alice_made["spec"] == {"cronSpec": "x"}
        bob_made = await created(bob, CRONTABS, ok)
        assert bob_made["spec"] == {"size": 3}
        assert (await alice.post(CRONTABS, json={**ok, "spec": {"size": 1}})).status_code == 422
        # Each sees its own CRD only, and its own objects.
        assert await names(alice, CRDS) == ["crontabs.stable.example.com"]
        alice_crd = (await alice.get(f"{CRDS}/crontabs.stable.example.com")).json()
        assert alice_crd["metadata"]["tenant"] == "t1"
        assert (await alice.get(f"{CRONTABS}/a")).json()["metadata"]["tenant"] == "t1"
        forbidden = await alice.get(
            "/apis/stable.example.com/v1/tenants/t2/namespaces/default/crontabs"
        )
        assert forbidden.status_code == 403
        # A tenant without the CRD is not served the kind.
        await make_tenant(admin, "t3")
        assert (
            await admin.get("/apis/stable.example.com/v1/tenants/t3/namespaces/default/crontabs")
        ).status_code == 404


async def test_a_forced_shared_system_crd_serves_every_tenant(
    server: Server, admin: httpx.AsyncClient
) -> None:
    await make_tenant(admin, "t1")
    await make_tenant(admin, "t2")
    shared = crontab_crd(labels={"arktos.futurewei.com/crd-sharing-policy": "forced"})
    await created(admin, CRDS, shared)
    async with server.client(ALICE_TOKEN) as alice, server.client(BOB_TOKEN) as bob:
        await created(alice, CRONTABS, crontab("from-alice"))
        await created(bob, CRONTABS, crontab("from-bob"))
        assert await names(alice, CRONTABS) == ["from-alice"]
        assert await names(bob, CRONTABS) == ["from-bob"]
        groups = (await alice.get("/apis")).json()["groups"]
        assert "stable.example.com" in [g["name"] for g in groups]
        # A tenant cannot redefine it.
        shadow = await alice.post(CRDS, json=crontab_crd(spec_schema={"type": "object"}))
        assert shadow.status_code == 409, shadow.text
    # A private system CRD is not shared.
    private = crontab_crd()
    private["metadata"]["name"] = "widgets.stable.example.com"
    private["spec"]["names"] = {"plural": "widgets", "kind": "Widget"}
    await created(admin, CRDS, private)
    async with server.client(ALICE_TOKEN) as alice:
        response = await alice.get("/apis/stable.example.com/v1/namespaces/default/widgets")
        assert response.status_code == 404


async def test_clashing_names_are_not_accepted(admin: httpx.AsyncClient) -> None:
    await created(admin, CRDS, crontab_crd())
    await established(admin, f"{CRDS}/crontabs.stable.example.com")
    clash = crontab_crd()
    clash["metadata"]["name"] = "crons.stable.example.com"
    clash["spec"]["names"] = {"plural": "crons", "kind": "CronTab"}
    await created(admin, CRDS, clash)
    url = f"{CRDS}/crons.stable.example.com"
    with trio.fail_after(5):
        while True:
            crd = (await admin.get(url)).json()
            conditions = {c["type"]: c for c in crd.get("status", {}).get("conditions", [])}
            if "NamesAccepted" in conditions:
                break
            await trio.sleep(0.02)
    assert conditions["NamesAccepted"]["status"] == "False"
    assert conditions["Established"]["status"] == "False"
    response = await admin.get("/apis/stable.example.com/v1/namespaces/default/crons")
    assert response.status_code == 404


async def test_cluster_scoped_custom_objects_belong_to_a_tenant(
    server: Server, admin: httpx.AsyncClient
) -> None:
    await make_tenant(admin, "t1")
    async with server.client(ALICE_TOKEN) as alice:
        await created(alice, CRDS, crontab_crd(scope="Cluster"))
        url = "/apis/stable.example.com/v1/crontabs"
        obj = await created(alice, url, crontab("tenant-wide"))
        assert obj["metadata"]["tenant"] == "t1"
        assert "namespace" not in obj["metadata"]
        assert await names(alice, url) == ["tenant-wide"]
        tenanted = "/apis/stable.example.com/v1/tenants/t1/crontabs/tenant-wide"
        assert (await alice.get(tenanted)).status_code == 200


async def test_openapi_documents_the_kind_for_its_tenant_only(
    server: Server, admin: httpx.AsyncClient
) -> None:
    await make_tenant(admin, "t1")
    await created(admin, CRDS, crontab_crd())
    paths = (await admin.get("/openapi/v3")).json()["paths"]
    url = paths["apis/stable.example.com/v1"]["serverRelativeURL"]
    document = (await admin.get(url)).json()
    schema = document["components"]["schemas"]["com.example.stable.v1.CronTab"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "stable.example.com", "version": "v1", "kind": "CronTab"}
    ]
    assert "cronSpec" in schema["properties"]["spec"]["properties"]
    assert "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs" in document["paths"]
    async with server.client(ALICE_TOKEN) as alice:
        theirs = (await alice.get("/openapi/v3")).json()["paths"]
        assert "apis/stable.example.com/v1" not in theirs
        missing = await alice.get("/openapi/v3/apis/stable.example.com/v1")
        assert missing.status_code == 404


async def test_selectable_fields_select(admin: httpx.AsyncClient) -> None:
    crd = crontab_crd()
    crd["spec"]["versions"][0]["selectableFields"] = [{"jsonPath": ".spec.image"}]
    await created(admin, CRDS, crd)
    await created(admin, CRONTABS, crontab("busy"))
    await created(admin, CRONTABS, crontab("web", image="nginx"))
    assert await names(admin, CRONTABS, fieldSelector="spec.image=nginx") == ["web"]
    assert await names(admin, CRONTABS, fieldSelector="spec.image!=nginx") == ["busy"]
    unknown = await admin.get(CRONTABS, params={"fieldSelector": "spec.cronSpec=x"})
    assert unknown.status_code == 400
    assert unknown.json()["reason"] == "BadRequest"


async def test_openapi_offers_no_strategic_merge_patch_for_custom_kinds(
    admin: httpx.AsyncClient,
) -> None:
    # kubectl apply patches with what the document offers; kube-apiserver refuses
    # strategic merge patches of custom objects.
    await created(admin, CRDS, crontab_crd())
    document = (await admin.get("/openapi/v3/apis/stable.example.com/v1")).json()
    item = "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"
    for path in (item, item + "/status"):
        offered = document["paths"][path]["patch"]["requestBody"]["content"]
        assert "application/merge-patch+json" in offered
        assert "application/strategic-merge-patch+json" not in offered
