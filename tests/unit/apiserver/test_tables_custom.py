"""Tables of custom resources: their CRD's printer columns, as kube-apiserver 1.32 prints."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from hypothesis import given, strategies as st

from arktos_lite.api import _customresources as customresources, _resources as resources
from arktos_lite.apiserver import _tables as tables

NOW = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)
Obj = dict[str, Any]


def ago(**delta: float) -> str:
    return (NOW - datetime.timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def crd(columns: list[Obj] | None = None, *, scope: str = "Namespaced") -> Obj:
    version: Obj = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
            }
        },
    }
    if columns is not None:
        version["additionalPrinterColumns"] = columns
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "scope": scope,
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab"},
            "versions": [version],
        },
    }


def crontabs(columns: list[Obj] | None = None, *, scope: str = "Namespaced") -> resources.Resource:
    (resource,) = customresources.resources_of(crd(columns, scope=scope), tenant="acme")
    assert resource.custom is not None
    return resource


def crontab(name: str = "tab", **fields: Any) -> Obj:
    return {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {
            "name": name,
            "namespace": "default",
            "tenant": "acme",
            "creationTimestamp": ago(hours=5),
        },
        **fields,
    }


def column(name: str, kind: str, path: str, **extra: Any) -> Obj:
    return {"name": name, "type": kind, "jsonPath": path, **extra}


def row(resource: resources.Resource, obj: Obj) -> list[Any]:
    table = tables.table(resource, [obj], now=NOW)
    (only,) = table["rows"]
    cells: list[Any] = only["cells"]
    assert len(cells) == len(table["columnDefinitions"])
    return cells


def test_without_printer_columns_name_and_age() -> None:
    table = tables.table(crontabs(), [crontab()], now=NOW)
    assert table["columnDefinitions"] == [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "description": tables._D_NAME,
            "priority": 0,
        },
        {
            "name": "Age",
            "type": "date",
            "format": "",
            "description": tables._D_CREATED,
            "priority": 0,
        },
    ]
    assert table["rows"][0]["cells"] == ["tab", "5h"]


def test_printer_columns_are_the_crds() -> None:
    resource = crontabs(
        [
            column("Spec", "string", ".spec.cronSpec"),
            column("Replicas", "integer", ".spec.replicas", description="How many."),
            column("Image", "string", ".spec.image", priority=1, format="byte"),
            column("Age", "date", ".metadata.creationTimestamp"),
        ]
    )
    definitions = tables.table(resource, [], now=NOW)["columnDefinitions"]
    assert [(d["name"], d["type"], d["format"], d["priority"]) for d in definitions] == [
        ("Name", "string", "name", 0),
        ("Spec", "string", "", 0),
        ("Replicas", "integer", "", 0),
        ("Image", "string", "byte", 1),
        ("Age", "date", "", 0),
    ]
    assert definitions[1]["description"] == (
        "Custom resource definition column (in JSONPath format): .spec.cronSpec"
    )
    assert definitions[2]["description"] == "How many."
    obj = crontab(spec={"cronSpec": "* * * * */5", "replicas": 2, "image": "cron:1"})
    assert row(resource, obj) == ["tab", "* * * * */5", 2, "cron:1", "5h"]
    assert [c.name for c in tables.columns(resource)] == [d["name"] for d in definitions]


def test_missing_values_are_null_cells() -> None:
    resource = crontabs(
        [
            column("Spec", "string", ".spec.cronSpec"),
            column("Replicas", "integer", ".spec.replicas"),
            column("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
            column("Seen", "date", ".status.lastSeen"),
        ]
    )
    assert row(resource, crontab()) == ["tab", None, None, None, None]


def test_a_filter_column_shows_the_first_match() -> None:
    resource = crontabs(
        [
            column("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
            column("First", "string", ".status.conditions[*].type"),
        ]
    )
    obj = crontab(
        status={
            "conditions": [
                {"type": "Synced", "status": "False"},
                {"type": "Ready", "status": "True"},
            ]
        }
    )
    assert row(resource, obj) == ["tab", "True", "Synced"]


@pytest.mark.parametrize(
    ("kind", "value", "cell"),
    [
        ("integer", 3, 3),
        ("integer", 3.9, 3),
        ("integer", -3.9, -3),
        ("integer", "3", None),
        ("integer", True, None),
        ("number", 3, 3.0),
        ("number", 2.5, 2.5),
        ("number", "2.5", None),
        ("boolean", True, True),
        ("boolean", "true", None),
        ("boolean", 1, None),
        ("string", "text", "text"),
        ("string", 3, "3"),
        ("string", 2.5, "2.5"),
        ("string", 3.0, "3"),
        ("string", 1e6, "1e+06"),
        ("string", 123456.0, "123456"),
        ("string", 0.0001, "0.0001"),
        ("string", 0.00001, "1e-05"),
        ("string", True, "true"),
        ("string", None, "<no value>"),
        ("string", {"b": 1, "a": [1, "x"]}, '{"a":[1,"x"],"b":1}'),
        ("string", ["<&>"], '["\\u003c\\u0026\\u003e"]'),
        ("string", [], "[]"),
        ("date", ago(minutes=3, seconds=12), "3m12s"),
        ("date", ago(days=3, hours=2), "3d2h"),
        ("date", "2024-05-01T11:00:00.5+02:00", "179m"),
        ("date", "", "<unknown>"),
        ("date", "0001-01-01T00:00:00Z", "<unknown>"),
        ("date", "yesterday", "<invalid>"),
        ("date", "2024-05-01", "<invalid>"),
        ("date", 12, None),
        ("integer", None, None),
        ("unknown", "x", None),
    ],
)
def test_cells_are_typed_as_kube_apiserver_types_them(kind: str, value: Any, cell: Any) -> None:
    resource = crontabs([column("Value", kind, ".spec.value")])
    found = row(resource, crontab(spec={"value": value}))[1]
    assert found == cell
    assert type(found) is type(cell)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_reads_back_as_the_same_number(value: float) -> None:
    resource = crontabs([column("Value", "string", ".spec.value")])
    text = row(resource, crontab(spec={"value": value}))[1]
    assert float(text) == value
    # Go writes %g: an exponent below 1e-4 and from 1e6 (shortest digits), else plain.
    assert ("e" in text) == (value != 0 and not 1e-4 <= abs(value) < 1e6)


def test_priority_columns_are_kept_for_wide_output() -> None:
    resource = crontabs([column("Extra", "string", ".spec.extra", priority=2)])
    (definition,) = [d for d in tables.table(resource, [])["columnDefinitions"] if d["priority"]]
    assert definition["name"] == "Extra"


def test_across_tenants_the_tenant_comes_first() -> None:
    resource = crontabs([column("Spec", "string", ".spec.cronSpec")])
    table = tables.table(resource, [crontab(spec={"cronSpec": "x"})], now=NOW, all_tenants=True)
    assert [d["name"] for d in table["columnDefinitions"]] == ["Tenant", "Name", "Spec"]
    assert table["rows"][0]["cells"] == ["acme", "tab", "x"]


def test_cluster_scoped_custom_objects_still_show_their_tenant() -> None:
    resource = crontabs(scope="Cluster")
    assert resource.scope is resources.Scope.TENANT
    obj = crontab()
    del obj["metadata"]["namespace"]
    table = tables.table(resource, [obj], now=NOW, all_tenants=True)
    assert table["rows"][0]["cells"] == ["acme", "tab", "5h"]


def test_rows_carry_the_object_as_asked() -> None:
    resource = crontabs()
    obj = crontab(spec={"a": 1})
    whole = tables.table(resource, [obj], include_object=tables.INCLUDE_OBJECT, now=NOW)
    assert whole["rows"][0]["object"] == obj
    partial = tables.table(resource, [obj], now=NOW)
    assert partial["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_two_versions_have_their_own_columns() -> None:
    definition = crd([column("Spec", "string", ".spec.cronSpec")])
    v2 = {
        **definition["spec"]["versions"][0],
        "name": "v2",
        "storage": False,
        "additionalPrinterColumns": [column("Schedule", "string", ".spec.schedule")],
    }
    definition["spec"]["versions"].append(v2)
    first, second = customresources.resources_of(definition, tenant="acme")
    obj = crontab(spec={"cronSpec": "a", "schedule": "b"})
    assert row(first, obj) == ["tab", "a"]
    assert row(second, obj) == ["tab", "b"]


def test_custom_resource_definitions_show_name_and_creation_time() -> None:
    registry = resources.Registry()
    resource = registry.by_kind("apiextensions.k8s.io", "CustomResourceDefinition")
    assert resource is not None
    obj = crd()
    obj["metadata"]["creationTimestamp"] = "2024-04-30T10:20:30Z"
    table = tables.table(resource, [obj], now=NOW)
    assert [(d["name"], d["type"]) for d in table["columnDefinitions"]] == [
        ("Name", "string"),
        ("Created At", "date"),
    ]
    assert table["rows"][0]["cells"] == ["crontabs.stable.example.com", "2024-04-30T10:20:30Z"]
