"""OpenAPI v3 documents of custom resources: what `kubectl explain` and `apply` read."""

from __future__ import annotations

import copy
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import orjson

from arktos_lite.api import _customresources as customresources, _resources as resources
from arktos_lite.apiserver import _openapi as openapi

Obj = dict[str, Any]
SCHEMAS = "#/components/schemas/"
CRONTAB = "com.example.stable.v1.CronTab"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
ROOT = "/apis/stable.example.com/v1"

SCHEMA: Obj = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "description": "What the cron tab runs.",
            "required": ["cronSpec"],
            "properties": {
                "cronSpec": {
                    "type": "string",
                    "pattern": "^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$",
                },
                "image": {"type": "string"},
                "replicas": {"type": "integer", "minimum": 1, "default": 1},
                "port": {"x-kubernetes-int-or-string": True},
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                },
            },
        },
        "status": {
            "type": "object",
            "properties": {"replicas": {"type": "integer"}, "selector": {"type": "string"}},
        },
    },
}


def crd(
    *,
    schema: Obj | None = None,
    scope: str = "Namespaced",
    versions: tuple[str, ...] = ("v1",),
    list_kind: str | None = None,
    subresources: Obj | None = None,
) -> Obj:
    names: Obj = {"plural": "crontabs", "singular": "crontab", "kind": "CronTab"}
    if list_kind:
        names["listKind"] = list_kind
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "scope": scope,
            "names": names,
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": index == 0,
                    "schema": {"openAPIV3Schema": copy.deepcopy(schema or SCHEMA)},
                    "subresources": subresources
                    if subresources is not None
                    else {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                }
                for index, version in enumerate(versions)
            ],
        },
    }


def tenant_registry(definition: Obj | None = None, *, tenant: str = "acme") -> resources.Registry:
    custom = customresources.resources_of(definition or crd(), tenant=tenant)
    return resources.Registry((*resources.RESOURCES, *custom))


BASE = resources.Registry()
DOCUMENTS = openapi.Documents(BASE)


def load(view: openapi.View, path: str = "apis/stable.example.com/v1") -> Obj:
    found = view.group_version(path)
    assert found is not None, path
    value: Obj = orjson.loads(found.body)
    return value


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


def operations(doc: Obj) -> Iterator[tuple[str, str, Obj]]:
    for path, entry in doc["paths"].items():
        for method, operation in entry.items():
            if method != "parameters":
                yield path, method, operation


def test_definition_names_reverse_the_group() -> None:
    assert openapi.custom_definition_name("stable.example.com", "v1", "CronTab") == CRONTAB
    assert openapi.custom_definition_name("cert-manager.io", "v1", "Issuer") == (
        "io.cert-manager.v1.Issuer"
    )


def test_the_index_adds_custom_group_versions_and_reuses_the_built_in_documents() -> None:
    view = DOCUMENTS.for_registry(tenant_registry())
    index = orjson.loads(view.index().body)["paths"]
    base_index = orjson.loads(DOCUMENTS.index().body)["paths"]
    assert set(index) == {*base_index, "apis/stable.example.com/v1"}
    for path in base_index:
        assert view.group_version(path) is DOCUMENTS.group_version(path)
        assert index[path] == base_index[path]
    custom = view.group_version("apis/stable.example.com/v1")
    assert custom is not None
    assert index["apis/stable.example.com/v1"] == {
        "serverRelativeURL": f"/openapi/v3/apis/stable.example.com/v1?hash={custom.hash}"
    }
    assert view.index().hash != DOCUMENTS.index().hash


def test_every_reference_resolves() -> None:
    doc = load(DOCUMENTS.for_registry(tenant_registry()))
    schemas = doc["components"]["schemas"]
    for ref in refs(doc):
        assert ref.startswith(SCHEMAS)
        assert ref.removeprefix(SCHEMAS) in schemas, ref
    assert {CRONTAB, CRONTAB + "List", META + "ObjectMeta", META + "ListMeta"} <= set(schemas)
    assert "io.k8s.api.autoscaling.v1.Scale" in schemas


def test_the_kind_schema_is_the_crds_with_type_meta_and_object_meta() -> None:
    doc = load(DOCUMENTS.for_registry(tenant_registry()))
    crontab = doc["components"]["schemas"][CRONTAB]
    assert crontab["type"] == "object"
    assert crontab["x-kubernetes-group-version-kind"] == [
        {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}
    ]
    properties = crontab["properties"]
    assert list(properties)[:3] == ["apiVersion", "kind", "metadata"]
    assert properties["apiVersion"]["type"] == properties["kind"]["type"] == "string"
    assert properties["apiVersion"]["description"].startswith("APIVersion defines")
    assert properties["metadata"] == {
        "allOf": [{"$ref": SCHEMAS + META + "ObjectMeta"}],
        "description": "Standard object's metadata. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
        "#metadata",
    }
    spec = properties["spec"]
    assert spec["description"] == "What the cron tab runs."
    assert spec["required"] == ["cronSpec"]
    assert spec["properties"]["replicas"] == {"type": "integer", "minimum": 1, "default": 1}
    assert spec["properties"]["port"] == {"x-kubernetes-int-or-string": True}
    assert properties["status"]["properties"]["replicas"] == {"type": "integer"}


def test_embedded_resources_get_type_meta_and_object_meta() -> None:
    registry = tenant_registry()
    doc = load(DOCUMENTS.for_registry(registry))
    template = doc["components"]["schemas"][CRONTAB]["properties"]["spec"]["properties"]["template"]
    assert set(template["properties"]) == {"apiVersion", "kind", "metadata"}
    assert template["properties"]["kind"]["description"].startswith("kind is a string value")
    assert template["required"] == ["kind", "apiVersion"]
    # The CRD's own schema is left as it was.
    resource = registry.get("stable.example.com", "v1", "crontabs")
    assert resource is not None
    assert resource.custom is not None
    raw = resource.custom.schema.schema["properties"]["spec"]["properties"]["template"]
    assert "properties" not in raw
    assert "required" not in raw


def test_the_list_kind() -> None:
    doc = load(DOCUMENTS.for_registry(tenant_registry()))
    listed = doc["components"]["schemas"][CRONTAB + "List"]
    assert listed["x-kubernetes-group-version-kind"] == [
        {"group": "stable.example.com", "kind": "CronTabList", "version": "v1"}
    ]
    assert listed["required"] == ["items"]
    assert listed["properties"]["items"]["items"] == {"$ref": SCHEMAS + CRONTAB}
    assert listed["properties"]["metadata"]["allOf"] == [{"$ref": SCHEMAS + META + "ListMeta"}]
    assert listed["description"] == "CronTabList is a list of CronTab"


def test_a_custom_list_kind_name() -> None:
    view = DOCUMENTS.for_registry(tenant_registry(crd(list_kind="CronTabCollection")))
    doc = load(view)
    assert CRONTAB + "Collection" in doc["components"]["schemas"]
    listing = doc["paths"][ROOT + "/namespaces/{namespace}/crontabs"]["get"]
    schema = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": SCHEMAS + CRONTAB + "Collection"}


def test_namespaced_paths_in_both_url_forms() -> None:
    doc = load(DOCUMENTS.for_registry(tenant_registry()))
    paths = doc["paths"]
    for prefix in ("", "/tenants/{tenant}"):
        collection = f"{ROOT}{prefix}/namespaces/{{namespace}}/crontabs"
        item = collection + "/{name}"
        assert set(paths[collection]) == {"get", "post", "delete", "parameters"}
        assert set(paths[item]) == {"get", "put", "patch", "delete", "parameters"}
        assert set(paths[item + "/status"]) == {"get", "put", "patch", "parameters"}
        assert set(paths[item + "/scale"]) == {"get", "put", "patch", "parameters"}
        assert f"{ROOT}{prefix}/crontabs" in paths  # across namespaces
        assert f"{ROOT}/watch{prefix}/namespaces/{{namespace}}/crontabs/{{name}}" in paths
    create = paths[ROOT + "/namespaces/{namespace}/crontabs"]["post"]
    assert create["operationId"] == "createStableExampleComV1NamespacedCronTab"
    assert create["tags"] == ["stableExampleCom_v1"]
    assert create["requestBody"]["content"]["*/*"]["schema"] == {"$ref": SCHEMAS + CRONTAB}
    assert create["x-kubernetes-group-version-kind"] == {
        "group": "stable.example.com",
        "version": "v1",
        "kind": "CronTab",
    }
    assert {p["name"] for p in create["parameters"]} >= {"fieldValidation", "fieldManager"}
    status = paths[ROOT + "/namespaces/{namespace}/crontabs/{name}/status"]["put"]
    assert status["operationId"] == "replaceStableExampleComV1NamespacedCronTabStatus"
    assert status["x-kubernetes-group-version-kind"]["kind"] == "CronTab"


def test_the_scale_subresource_speaks_autoscaling_v1() -> None:
    doc = load(DOCUMENTS.for_registry(tenant_registry()))
    scale = doc["paths"][ROOT + "/namespaces/{namespace}/crontabs/{name}/scale"]
    assert scale["get"]["operationId"] == "readStableExampleComV1NamespacedCronTabScale"
    assert scale["put"]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
    }
    body = scale["put"]["requestBody"]["content"]["*/*"]["schema"]
    assert body == {"$ref": SCHEMAS + "io.k8s.api.autoscaling.v1.Scale"}


def test_without_subresources_there_are_no_subresource_paths() -> None:
    doc = load(DOCUMENTS.for_registry(tenant_registry(crd(subresources={}))))
    assert not [path for path in doc["paths"] if path.endswith(("/status", "/scale"))]


def test_cluster_scoped_custom_resources_are_per_tenant() -> None:
    doc = load(DOCUMENTS.for_registry(tenant_registry(crd(scope="Cluster"))))
    paths = set(doc["paths"])
    assert {ROOT + "/crontabs", ROOT + "/crontabs/{name}"} <= paths
    assert {
        ROOT + "/tenants/{tenant}/crontabs",
        ROOT + "/tenants/{tenant}/crontabs/{name}",
    } <= paths
    assert not [path for path in paths if "namespaces" in path]
    read = doc["paths"][ROOT + "/crontabs/{name}"]["get"]
    assert read["operationId"] == "readStableExampleComV1CronTab"


def test_operation_ids_are_unique() -> None:
    doc = load(DOCUMENTS.for_registry(tenant_registry()))
    ids = [operation["operationId"] for _, _, operation in operations(doc)]
    assert len(ids) == len(set(ids))


def test_every_served_version_has_its_document() -> None:
    view = DOCUMENTS.for_registry(tenant_registry(crd(versions=("v1", "v2"))))
    v2 = load(view, "apis/stable.example.com/v2")
    assert "com.example.stable.v2.CronTab" in v2["components"]["schemas"]
    assert CRONTAB not in v2["components"]["schemas"]
    assert "com.example.stable.v2.CronTab" not in load(view)["components"]["schemas"]


def test_a_view_is_kept_while_its_registry_is_in_use() -> None:
    registry = tenant_registry()
    view = DOCUMENTS.for_registry(registry)
    assert DOCUMENTS.for_registry(registry) is view
    gone = weakref.ref(view)
    del view, registry
    gc.collect()
    assert gone() is None


def test_a_registry_of_built_ins_only_shares_the_built_in_view() -> None:
    base_view = DOCUMENTS.for_registry(BASE)
    assert base_view.index() is DOCUMENTS.index()
    assert DOCUMENTS.for_registry(resources.Registry()) is base_view


def test_tenants_with_the_same_kind_see_their_own_schemas() -> None:
    other = copy.deepcopy(SCHEMA)
    other["properties"]["spec"]["properties"] = {"schedule": {"type": "string"}}
    acme = DOCUMENTS.for_registry(tenant_registry(tenant="acme"))
    globex = DOCUMENTS.for_registry(tenant_registry(crd(schema=other), tenant="globex"))
    acme_spec = load(acme)["components"]["schemas"][CRONTAB]["properties"]["spec"]
    globex_spec = load(globex)["components"]["schemas"][CRONTAB]["properties"]["spec"]
    assert "cronSpec" in acme_spec["properties"]
    assert set(globex_spec["properties"]) == {"schedule"}
    # Built-in documents stay free of custom definitions.
    core = load(acme, "api/v1")
    assert not [name for name in core["components"]["schemas"] if name.startswith("com.")]


def test_build_document_knows_custom_kinds() -> None:
    doc = openapi.build_document(tenant_registry(), "stable.example.com", "v1")
    assert CRONTAB in doc["components"]["schemas"]
    assert doc["openapi"] == "3.0.0"


def test_built_in_operation_ids_follow_kube_apiserver() -> None:
    doc = load(DOCUMENTS.for_registry(BASE), "apis/rbac.authorization.k8s.io/v1")
    ids = {operation["operationId"] for _, _, operation in operations(doc)}
    assert "listRbacAuthorizationV1NamespacedRole" in ids
    tags = {operation["tags"][0] for _, _, operation in operations(doc)}
    assert tags == {"rbacAuthorization_v1"}
