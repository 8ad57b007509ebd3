"""Server-side apply and field managers over HTTP: what `kubectl apply --server-side`,
`kubectl scale` and friends see in `metadata.managedFields`, conflicts and `force`."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import yaml

from .conftest import configmap, created, deployment

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
APPLY = {"Content-Type": "application/apply-patch+yaml"}
MERGE = {"Content-Type": "application/merge-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}

Obj = dict[str, Any]


async def apply(
    client: httpx.AsyncClient, url: str, body: Obj | str, *, manager: str | None, **params: str
) -> httpx.Response:
    if manager is not None:
        params["fieldManager"] = manager
    content = body if isinstance(body, str) else yaml.safe_dump(body)
    return await client.patch(url, content=content, headers=APPLY, params=params)


def owners(obj: Obj) -> dict[tuple[str, str, str], Obj]:
    """Each managedFields entry's FieldsV1 by (manager, operation, subresource)."""
    return {
        (e["manager"], e["operation"], e.get("subresource", "")): e["fieldsV1"]
        for e in obj["metadata"].get("managedFields", [])
    }


async def test_apply_creates_a_missing_object_and_a_second_apply_changes_nothing(
    admin: httpx.AsyncClient,
) -> None:
    first = await apply(admin, f"{DEPLOYMENTS}/web", deployment("web"), manager="kubectl")
    assert first.status_code == 201, first.text
    body = first.json()
    (entry,) = body["metadata"]["managedFields"]
    assert {k: v for k, v in entry.items() if k not in ("time", "fieldsV1")} == {
        "manager": "kubectl",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1",
    }
    assert entry["fieldsV1"]["f:spec"]["f:replicas"] == {}
    assert "f:strategy" not in entry["fieldsV1"]["f:spec"]  # defaults belong to nobody
    assert body["spec"]["strategy"]["type"] == "RollingUpdate"
    assert (await admin.get(f"{DEPLOYMENTS}/web")).json() == body

    second = await apply(admin, f"{DEPLOYMENTS}/web", deployment("web"), manager="kubectl")
    assert second.status_code == 200, second.text
    assert second.json() == body


async def test_scale_then_reapply_conflicts_until_forced(admin: httpx.AsyncClient) -> None:
    url = f"{DEPLOYMENTS}/web"
    assert (await apply(admin, url, deployment("web"), manager="kubectl")).status_code == 201
    # `kubectl scale`: a merge patch of the scale subresource, manager from the User-Agent.
    scaled = await admin.patch(
        f"{url}/scale",
        content=b'{"spec":{"replicas":4}}',
        headers={**MERGE, "User-Agent": "kubectl/v1.32.4 (linux/amd64) kubernetes/abc"},
    )
    assert scaled.status_code == 200, scaled.text
    got = (await admin.get(url)).json()
    assert owners(got)[("kubectl", "Update", "scale")] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in owners(got)[("kubectl", "Apply", "")]["f:spec"]

    conflict = await apply(admin, url, deployment("web", replicas=3), manager="kubectl")
    assert conflict.status_code == 409, conflict.text
    assert conflict.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Apply failed with 1 conflict: conflict with "kubectl" with subresource '
        '"scale" using apps/v1: .spec.replicas',
        "reason": "Conflict",
        "code": 409,
        "details": {
            "causes": [
                {
                    "reason": "FieldManagerConflict",
                    "message": 'conflict with "kubectl" with subresource "scale" using apps/v1',
                    "field": ".spec.replicas",
                }
            ]
        },
    }
    assert (await admin.get(url)).json()["spec"]["replicas"] == 4

    forced = await apply(admin, url, deployment("web", replicas=3), manager="kubectl", force="true")
    assert forced.status_code == 200, forced.text
    assert forced.json()["spec"]["replicas"] == 3
    assert list(owners(forced.json())) == [("kubectl", "Apply", "")]


async def test_client_side_apply_then_server_side_apply_conflicts_on_replicas(
    admin: httpx.AsyncClient,
) -> None:
    params = {"fieldManager": "kubectl-client-side-apply"}
    assert (await admin.post(DEPLOYMENTS, json=deployment("web"), params=params)).is_success
    patched = await admin.patch(
        f"{DEPLOYMENTS}/web",
        content=b'{"spec":{"replicas":5}}',
        headers=STRATEGIC,
        params=params,
    )
    assert patched.status_code == 200, patched.text
    conflict = await apply(admin, f"{DEPLOYMENTS}/web", deployment("web"), manager="kubectl")
    assert conflict.status_code == 409
    assert conflict.json()["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using '
        "apps/v1: .spec.replicas"
    )
    # Co-owning by applying the live value is no conflict.
    same = await apply(admin, f"{DEPLOYMENTS}/web", deployment("web", replicas=5), manager="k")
    assert same.status_code == 200, same.text
    assert owners(same.json())[("k", "Apply", "")]["f:spec"]["f:replicas"] == {}
    assert (
        "f:replicas" in owners(same.json())[("kubectl-client-side-apply", "Update", "")]["f:spec"]
    )


async def test_two_managers_co_own_labels(admin: httpx.AsyncClient) -> None:
    url = f"{CONFIGMAPS}/cm"

    def labelled(**labels: str) -> Obj:
        body = configmap("cm")
        body["metadata"]["labels"] = labels
        return body

    assert (await apply(admin, url, labelled(a="1", shared="s"), manager="one")).is_success
    both = await apply(admin, url, labelled(b="2", shared="s"), manager="two")
    assert both.status_code == 200, both.text
    assert both.json()["metadata"]["labels"] == {"a": "1", "shared": "s", "b": "2"}
    assert owners(both.json())[("two", "Apply", "")] == {
        "f:data": {},
        "f:metadata": {"f:labels": {"f:b": {}, "f:shared": {}}},
    }
    # One of two owners lets go: the label stays; the last one lets go: it goes.
    kept = await apply(admin, url, labelled(a="1"), manager="one")
    assert kept.json()["metadata"]["labels"] == {"a": "1", "shared": "s", "b": "2"}
    gone = await apply(admin, url, labelled(b="2"), manager="two")
    assert gone.json()["metadata"]["labels"] == {"a": "1", "b": "2"}
    # A value of its own for a label another manager owns is a conflict.
    clash = await apply(admin, url, labelled(a="9"), manager="two")
    assert clash.status_code == 409
    assert clash.json()["details"]["causes"][0]["field"] == ".metadata.labels.a"


async def test_writes_of_every_kind_record_their_managers(admin: httpx.AsyncClient) -> None:
    created_cm = await admin.post(
        CONFIGMAPS, json=configmap("cm", a="1"), params={"fieldManager": "kubectl-create"}
    )
    assert created_cm.status_code == 201, created_cm.text
    assert owners(created_cm.json()) == {
        ("kubectl-create", "Update", ""): {"f:data": {".": {}, "f:a": {}}}
    }
    body = created_cm.json()
    body["data"]["a"] = "2"
    replaced = await admin.put(
        f"{CONFIGMAPS}/cm",
        json=body,
        headers={"User-Agent": "kubectl-edit/v1.32.4 (linux/amd64) kubernetes/abc"},
    )
    assert replaced.status_code == 200, replaced.text
    assert owners(replaced.json()) == {
        ("kubectl-create", "Update", ""): {"f:data": {}},
        ("kubectl-edit", "Update", ""): {"f:data": {"f:a": {}}},
    }
    labelled = await admin.patch(
        f"{CONFIGMAPS}/cm",
        content=b'{"metadata":{"labels":{"x":"y"}}}',
        headers=MERGE,
        params={"fieldManager": "kubectl-label"},
    )
    assert owners(labelled.json())[("kubectl-label", "Update", "")] == {
        "f:metadata": {"f:labels": {".": {}, "f:x": {}}}
    }


async def test_status_writes_are_entries_of_their_own(admin: httpx.AsyncClient) -> None:
    await created(admin, DEPLOYMENTS, deployment("web"))
    url = f"{DEPLOYMENTS}/web/status"
    status = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    put = await admin.put(
        url,
        json={**status, "status": {"replicas": 1}},
        params={"fieldManager": "deployment-controller"},
    )
    assert put.status_code == 200, put.text
    assert owners(put.json())[("deployment-controller", "Update", "status")] == {
        "f:status": {"f:replicas": {}}
    }
    applied = await apply(
        admin, url, {**status, "status": {"readyReplicas": 1}}, manager="status-applier"
    )
    assert applied.status_code == 200, applied.text
    assert applied.json()["status"] == {"replicas": 1, "readyReplicas": 1}
    assert owners(applied.json())[("status-applier", "Apply", "status")] == {
        "f:status": {"f:readyReplicas": {}}
    }
    # Status applied to the main resource is nobody's and changes nothing.
    main = await apply(
        admin,
        f"{DEPLOYMENTS}/web",
        {**deployment("web"), "status": {"replicas": 7}},
        manager="kubectl",
    )
    assert main.json()["status"]["replicas"] == 1
    assert "f:status" not in owners(main.json())[("kubectl", "Apply", "")]


async def test_apply_removes_fields_it_dropped_and_keeps_other_managers_items(
    admin: httpx.AsyncClient,
) -> None:
    url = f"{DEPLOYMENTS}/web"
    app = deployment("web")
    app["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    assert (await apply(admin, url, app, manager="app")).status_code == 201
    sidecar: Obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "proxy", "image": "envoy", "ports": [{"containerPort": 15000}]}
                    ]
                }
            }
        },
    }
    injected = await apply(admin, url, sidecar, manager="injector")
    assert injected.status_code == 200, injected.text
    spec = injected.json()["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["c", "proxy"]
    assert spec["containers"][1]["ports"] == [{"containerPort": 15000, "protocol": "TCP"}]
    # The app drops its env var: it goes; the sidecar stays.
    dropped = await apply(admin, url, deployment("web"), manager="app")
    spec = dropped.json()["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["c", "proxy"]
    assert "env" not in spec["containers"][0]
    assert dropped.json()["metadata"]["generation"] == 3


async def test_dry_run_apply_stores_nothing(admin: httpx.AsyncClient) -> None:
    url = f"{CONFIGMAPS}/cm"
    dry = await apply(admin, url, configmap("cm", a="1"), manager="m", dryRun="All")
    assert dry.status_code == 201, dry.text
    assert dry.json()["data"] == {"a": "1"}
    assert (await admin.get(url)).status_code == 404
    assert (await apply(admin, url, configmap("cm", a="1"), manager="m")).status_code == 201
    dry = await apply(admin, url, configmap("cm", a="2"), manager="m", dryRun="All")
    assert dry.json()["data"] == {"a": "2"}
    assert (await admin.get(url)).json()["data"] == {"a": "1"}


async def test_bad_applies_are_refused(admin: httpx.AsyncClient) -> None:
    url = f"{CONFIGMAPS}/cm"
    missing = await apply(admin, url, configmap("cm"), manager=None)
    assert missing.status_code == 422
    assert missing.json()["message"] == (
        'PatchOptions "" is invalid: fieldManager: Required value: is required for apply patch'
    )
    with_fields = configmap("cm")
    with_fields["metadata"]["managedFields"] = [{"manager": "x"}]
    refused = await apply(admin, url, with_fields, manager="m")
    assert refused.status_code == 400
    assert refused.json()["message"] == "metadata.managedFields must be nil"
    wrong = await apply(admin, url, {**configmap("cm"), "apiVersion": "v2"}, manager="m")
    assert wrong.status_code == 400
    assert wrong.json()["message"] == (
        "Incorrect version specified in apply patch. Specified patch version: v2, expected: v1"
    )
    nameless = deployment("web")
    del nameless["spec"]["template"]["spec"]["containers"][0]["name"]
    keyless = await apply(admin, f"{DEPLOYMENTS}/web", nameless, manager="m")
    assert keyless.status_code == 400
    assert keyless.json()["message"].startswith(
        "failed to create typed patch object (apps/v1, Kind=Deployment): "
        ".spec.template.spec.containers: element 0: associative list with keys"
    )
    bad_force = await apply(admin, url, configmap("cm"), manager="m", force="maybe")
    assert bad_force.status_code == 400
    for response in (missing, refused, wrong, keyless, bad_force):
        assert response.json()["kind"] == "Status"
    assert (await admin.get(url)).status_code == 404


async def test_field_manager_and_force_parameters_are_checked(admin: httpx.AsyncClient) -> None:
    long = await admin.post(CONFIGMAPS, json=configmap("cm"), params={"fieldManager": "m" * 129})
    assert long.status_code == 422
    assert long.json()["message"] == (
        'CreateOptions "" is invalid: fieldManager: Too long: may not be more than 128 bytes'
    )
    forced = await admin.post(CONFIGMAPS, json=configmap("cm"), params={"force": "true"})
    assert forced.status_code == 400
    assert forced.json()["message"] == (
        "force: Forbidden: may not be specified for non-apply patch"
    )
    ok = await admin.post(CONFIGMAPS, json=configmap("cm"), params={"fieldManager": "m" * 128})
    assert ok.status_code == 201, ok.text
    patched = await admin.patch(
        f"{CONFIGMAPS}/cm", content=b'{"data":{"a":"b"}}', headers=MERGE, params={"force": "1"}
    )
    assert patched.status_code == 400
    assert (await admin.get(f"{CONFIGMAPS}/cm")).json()["data"] == {}


async def test_managed_fields_can_be_reset_or_replaced_by_an_update(
    admin: httpx.AsyncClient,
) -> None:
    body = await created(admin, CONFIGMAPS, configmap("cm", a="1"))
    assert body["metadata"]["managedFields"]
    reset = await admin.patch(
        f"{CONFIGMAPS}/cm",
        content=orjson.dumps({"metadata": {"managedFields": []}}),
        headers=MERGE,
    )
    assert reset.status_code == 200, reset.text
    assert "managedFields" not in reset.json()["metadata"]
    entry = {
        "manager": "someone",
        "operation": "Apply",
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {"f:a": {}}},
    }
    replaced = await admin.patch(
        f"{CONFIGMAPS}/cm",
        content=orjson.dumps([{"op": "add", "path": "/metadata/managedFields", "value": [entry]}]),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["metadata"]["managedFields"] == [entry]
