"""The OpenAPI v3 documents kubectl reads for create, apply and explain."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from arktos_lite.api import _errors as errors, _resources as resources
from arktos_lite.apiserver import _openapi as openapi

Obj = dict[str, Any]
REGISTRY = resources.Registry()
SCHEMAS = "#/components/schemas/"
WRITE_METHODS = ("post", "put", "patch")


@functools.cache
def documents() -> openapi.Documents:
    return openapi.Documents(REGISTRY)


def document(path: str) -> Obj:
    found = documents().group_version(path)
    assert found is not None, path
    value: Obj = orjson.loads(found.body)
    return value


def operations(doc: Obj) -> Iterator[tuple[str, str, Obj]]:
    for path, entry in doc["paths"].items():
        for method, operation in entry.items():
            if method != "parameters":
                yield path, method, operation


def refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield item
            else:
                yield from refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs(item)


def schemas_of(value: Any) -> Iterator[Obj]:
    """Every schema object under `value` (not the names in `properties`)."""
    if isinstance(value, dict):
        yield value
        for key, item in value.items():
            if key in ("properties", "patternProperties"):
                for sub in item.values():
                    yield from schemas_of(sub)
            elif key in ("items", "additionalProperties", "not") and isinstance(item, dict):
                yield from schemas_of(item)
            elif key in ("allOf", "anyOf", "oneOf"):
                for sub in item:
                    yield from schemas_of(sub)


def test_nothing_is_built_before_the_first_request() -> None:
    fresh = openapi.Documents(REGISTRY)
    assert not fresh.built
    fresh.index()
    assert fresh.built


def test_the_index_names_every_group_version_with_its_hash() -> None:
    index = orjson.loads(documents().index().body)
    assert set(index) == {"paths"}
    assert set(index["paths"]) == {
        "api/v1",
        "apis/apiextensions.k8s.io/v1",
        "apis/apps/v1",
        "apis/arktos.futurewei.com/v1",
        "apis/coordination.k8s.io/v1",
        "apis/discovery.k8s.io/v1",
        "apis/rbac.authorization.k8s.io/v1",
    }
    for path, entry in index["paths"].items():
        found = documents().group_version(path)
        assert found is not None
        assert entry == {"serverRelativeURL": f"/openapi/v3/{path}?hash={found.hash}"}
        assert len(found.hash) == 128
        assert found.hash == found.hash.upper()


def test_an_unknown_group_version_has_no_document() -> None:
    assert documents().group_version("apis/batch/v1") is None
    assert documents().group_version("api/v2") is None


@pytest.mark.parametrize("path", ["api/v1", "apis/apps/v1", "apis/coordination.k8s.io/v1"])
def test_documents_are_openapi_3_with_every_reference_resolvable(path: str) -> None:
    doc = document(path)
    assert doc["openapi"] == "3.0.0"
    assert doc["info"]["version"] == "v1.32.0"
    schemas = doc["components"]["schemas"]
    for ref in refs(doc):
        assert ref.startswith(SCHEMAS), ref
        assert ref.removeprefix(SCHEMAS) in schemas, ref
    # Only what the operations reach, transitively: nothing from other groups.
    assert not [name for name in schemas if ".batch." in name or ".networking." in name]


@pytest.mark.parametrize("path", ["api/v1", "apis/apps/v1"])
def test_schemas_are_in_openapi_3_dialect(path: str) -> None:
    for schema in schemas_of(document(path)["components"]["schemas"]):
        kind = schema.get("type")
        assert kind is None or isinstance(kind, str), schema
        assert kind != "null"
        if "$ref" in schema:
            assert set(schema) == {"$ref"}, "a $ref's siblings belong beside an allOf"
        assert schema.get("required", [None]) != []


def test_every_resource_has_its_operations_with_gvk_and_field_validation() -> None:
    for resource in REGISTRY:
        doc = document(openapi.group_version_path(resource.group, resource.version))
        gvk = {"group": resource.group, "version": resource.version, "kind": resource.kind}
        actions: dict[str, set[str]] = {}
        for path, method, operation in operations(doc):
            if operation["x-kubernetes-group-version-kind"] != gvk:
                continue
            actions.setdefault(operation["x-kubernetes-action"], set()).add(path)
            names = {p["name"] for p in operation.get("parameters", ()) if p["in"] == "query"}
            if method in WRITE_METHODS:
                assert {"fieldValidation", "dryRun", "fieldManager"} <= names, (path, method)
        expected = {"list", "post", "deletecollection", "get", "put", "patch", "delete"}
        assert expected | {"watch", "watchlist"} == set(actions), resource.kind
        base = "/api/v1" if not resource.group else f"/apis/{resource.group}/{resource.version}"
        if resource.scope is resources.Scope.NAMESPACE:
            short = f"{base}/namespaces/{{namespace}}/{resource.plural}/{{name}}"
            tenanted = f"{base}/tenants/{{tenant}}/namespaces/{{namespace}}/{resource.plural}"
            assert f"{base}/{resource.plural}" in actions["list"]
        elif resource.scope is resources.Scope.TENANT:
            short = f"{base}/{resource.plural}/{{name}}"
            tenanted = f"{base}/tenants/{{tenant}}/{resource.plural}"
        else:
            short = f"{base}/{resource.plural}/{{name}}"
            tenanted = None
        assert short in actions["patch"]
        if tenanted is not None:
            assert tenanted in actions["list"]


def test_pod_operations_read_as_kube_apiservers() -> None:
    doc = document("api/v1")
    entry = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]
    assert [p["name"] for p in entry["parameters"]] == ["namespace", "name", "pretty"]
    patch = entry["patch"]
    assert patch["operationId"] == "patchCoreV1NamespacedPod"
    assert patch["x-kubernetes-action"] == "patch"
    assert set(patch["requestBody"]["content"]) == {
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    }
    ok = patch["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": SCHEMAS + "io.k8s.api.core.v1.Pod"}
    listed = doc["paths"]["/api/v1/namespaces/{namespace}/pods"]["get"]
    assert listed["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": SCHEMAS + "io.k8s.api.core.v1.PodList"
    }
    binding = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/binding"]["post"]
    assert binding["x-kubernetes-group-version-kind"]["kind"] == "Binding"
    status = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/status"]
    assert set(status) == {"get", "put", "patch", "parameters"}


def test_scale_subresources_speak_autoscaling_v1() -> None:
    doc = document("apis/apps/v1")
    scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["put"]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
    }
    assert "io.k8s.api.autoscaling.v1.Scale" in doc["components"]["schemas"]


def test_operation_ids_are_unique() -> None:
    for path in ("api/v1", "apis/apps/v1"):
        ids = [operation["operationId"] for _, _, operation in operations(document(path))]
        assert len(ids) == len(set(ids))


def test_arktos_kinds_and_fields_are_in_the_schemas() -> None:
    schemas = document("api/v1")["components"]["schemas"]
    for kind in ("Tenant", "ControllerInstance", "Action"):
        schema = schemas[f"io.k8s.api.core.v1.{kind}"]
        assert schema["x-kubernetes-group-version-kind"] == [
            {"group": "", "kind": kind, "version": "v1"}
        ]
    assert set(schemas["io.k8s.api.core.v1.TenantSpec"]["properties"]) == {
        "finalizers",
        "storageClusterId",
    }
    assert schemas["io.k8s.api.core.v1.ControllerInstance"]["properties"]["controllerKey"] == {
        "description": "The inclusive upper bound of the instance's range.",
        "type": "integer",
        "format": "int64",
    }
    pod_spec = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert pod_spec["virtualMachine"]["allOf"] == [
        {"$ref": SCHEMAS + "io.k8s.api.core.v1.VirtualMachine"}
    ]
    assert pod_spec["nics"]["x-kubernetes-patch-merge-key"] == "name"
    assert pod_spec["vpc"]["type"] == "string"
    meta = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]
    assert meta["tenant"]["type"] == "string"
    assert meta["hashKey"] == {
        "description": "Arktos: the object's hash key, for partitioned controllers.",
        "type": "integer",
        "format": "int64",
    }
    # A VM pod has no containers, so they are not required.
    assert "required" not in schemas["io.k8s.api.core.v1.PodSpec"]


def test_kube_extensions_are_kept() -> None:
    schemas = document("apis/apps/v1")["components"]["schemas"]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-list-type"] == "map"
    assert containers["items"] == {"$ref": SCHEMAS + "io.k8s.api.core.v1.Container"}
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]
    # The kinds' own apiVersion and kind are free strings, as in kube-apiserver's document.
    assert "enum" not in deployment["properties"]["apiVersion"]


def test_int_or_string_and_quantity_are_strings() -> None:
    schemas = document("apis/apps/v1")["components"]["schemas"]
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["type"] == "string"
    assert schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"] == "string"


def test_convert_schema() -> None:
    converted = openapi.convert_schema(
        {
            "description": "d",
            "type": ["object", "null"],
            "required": [],
            "properties": {
                "$ref": {"type": ["string", "null"]},
                "spec": {"$ref": "#/$defs/a.B", "description": "the spec"},
                "plain": {"$ref": "#/$defs/a.C"},
                "items": {
                    "type": ["array", "null"],
                    "items": {"$ref": "#/$defs/a.D"},
                    "x-kubernetes-patch-strategy": "merge",
                },
                "map": {"additionalProperties": {"type": ["integer", "null"]}},
            },
        }
    )
    assert converted == {
        "description": "d",
        "type": "object",
        "properties": {
            "$ref": {"type": "string"},
            "spec": {"allOf": [{"$ref": SCHEMAS + "a.B"}], "description": "the spec"},
            "plain": {"$ref": SCHEMAS + "a.C"},
            "items": {
                "type": "array",
                "items": {"$ref": SCHEMAS + "a.D"},
                "x-kubernetes-patch-strategy": "merge",
            },
            "map": {"additionalProperties": {"type": "integer"}},
        },
    }


def test_a_registry_gets_documents_for_exactly_its_resources() -> None:
    lease = REGISTRY.get("coordination.k8s.io", "v1", "leases")
    assert lease is not None
    only = openapi.Documents(resources.Registry((lease,)))
    assert set(orjson.loads(only.index().body)["paths"]) == {"apis/coordination.k8s.io/v1"}
    built = openapi.build_document(resources.Registry((lease,)), "coordination.k8s.io", "v1")
    kinds = {op["x-kubernetes-group-version-kind"]["kind"] for _, _, op in operations(built)}
    assert kinds == {"Lease"}


# Serving


DOC = openapi.Document.of({"paths": {}})
NOW = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def serve(**overrides: Any) -> openapi.Reply:
    arguments: dict[str, Any] = {
        "path": "/openapi/v3/api/v1",
        "hash": None,
        "accept": "application/json",
        "if_none_match": None,
        "now": NOW,
    }
    arguments.update(overrides)
    return openapi.reply(DOC, **arguments)


def test_the_hashed_url_may_be_cached_forever() -> None:
    served = serve(hash=DOC.hash)
    assert served.status == 200
    assert served.body == DOC.body
    assert served.headers["ETag"] == f'"{DOC.hash}"'
    assert served.headers["Cache-Control"] == "public, immutable"
    assert served.headers["Expires"] == "Fri, 02 Jan 2026 03:04:05 GMT"


def test_the_plain_url_is_revalidated() -> None:
    served = serve()
    assert served.status == 200
    assert served.headers["Cache-Control"] == "no-cache, private"
    assert serve(if_none_match=f'"{DOC.hash}"').status == 304
    assert serve(if_none_match='"other", "x"').status == 200


def test_a_stale_hash_redirects_to_the_current_one() -> None:
    served = serve(hash="ABC")
    assert served.status == 301
    assert served.headers["Location"] == f"/openapi/v3/api/v1?hash={DOC.hash}"


@pytest.mark.parametrize("accept", [None, "", "*/*", "application/json, */*", "application/*"])
def test_json_is_served_to_whoever_takes_it(accept: str | None) -> None:
    assert serve(accept=accept).status == 200


def test_protobuf_only_is_not_acceptable() -> None:
    with pytest.raises(errors.NotAcceptable):
        serve(accept="application/com.github.proto-openapi.spec.v3@v1.0+protobuf")


@pytest.mark.parametrize(
    ("path", "item", "returned"),
    [
        ("api/v1", "/api/v1/namespaces/{namespace}/pods/{name}", "io.k8s.api.core.v1.Pod"),
        (
            "api/v1",
            "/api/v1/namespaces/{name}",
            "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        ),
        (
            "api/v1",
            "/api/v1/namespaces/{namespace}/configmaps/{name}",
            "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        ),
        (
            "apis/apps/v1",
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
            "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        ),
    ],
)
def test_a_delete_documents_what_it_answers(path: str, item: str, returned: str) -> None:
    # As kube-apiserver documents them: the object for pods, services and service accounts.
    responses = document(path)["paths"][item]["delete"]["responses"]
    for code in ("200", "202"):
        schema = responses[code]["content"]["application/json"]["schema"]
        assert schema == {"$ref": SCHEMAS + returned}, (code, schema)
