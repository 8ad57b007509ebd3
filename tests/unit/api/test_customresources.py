"""CustomResourceDefinitions: defaults, validation, names, and the resources they serve."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, strategies as st

from arktos_lite.api import customresources as crds, resources
from arktos_lite.api._errors import CauseType
from arktos_lite.api._fields import Body

Obj = dict[str, Any]


def crontab_schema(*, replicas: Obj | None = None) -> Obj:
    return {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "cronSpec": {"type": "string", "default": "5 0 * * *"},
                    "image": {"type": "string"},
                    "color": {"type": "string", "enum": ["red", "blue"]},
                    "paused": {"type": "boolean"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "replicas": replicas or {"type": "integer", "minimum": 0, "default": 1},
                    "steps": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}},
                        },
                    },
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "pools": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {"size": {"type": "integer"}},
                        },
                    },
                },
            },
            "status": {
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer"},
                    "labelSelector": {"type": "string"},
                },
            },
        },
    }


def crontab_crd(**spec: Any) -> Obj:
    """The crontabs of the Kubernetes documentation, with two versions and everything on."""
    v1: Obj = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": crontab_schema()},
        "subresources": {
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.labelSelector",
            },
        },
        "additionalPrinterColumns": [
            {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
            {
                "name": "Replicas",
                "type": "integer",
                "format": "int32",
                "description": "wanted",
                "priority": 1,
                "jsonPath": ".spec.replicas",
            },
        ],
        "selectableFields": [{"jsonPath": ".spec.color"}, {"jsonPath": ".spec.paused"}],
    }
    v1beta1: Obj = {
        "name": "v1beta1",
        "served": True,
        "storage": False,
        "schema": {"openAPIV3Schema": crontab_schema()},
    }
    body: Obj = {
        "group": "stable.example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "crontabs",
            "kind": "CronTab",
            "shortNames": ["ct"],
            "categories": ["all"],
        },
        "versions": [v1, v1beta1],
    }
    body.update(spec)
    crd: Obj = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com", "tenant": "acme"},
        "spec": body,
    }
    crds.default_crd(crd)
    crds.prepare_crd_create(crd)
    return crd


def version(crd: Obj, index: int = 0) -> Obj:
    result: Obj = crd["spec"]["versions"][index]
    return result


def problems(crd: Obj, old: Obj | None = None) -> list[str]:
    return [str(e) for e in crds.validate_crd(crd, old)]


def kind_of(crd: Obj | None = None, *, tenant: str = "acme") -> crds.CustomKind:
    custom = crds.resources_of(crd or crontab_crd(), tenant=tenant)[0].custom
    assert custom is not None
    return custom


# ---------------------------------------------------------------------------------------
# Defaults and what create, update and delete set


def test_defaults_fill_names_and_conversion() -> None:
    crd: Obj = {"spec": {"names": {"plural": "crontabs", "kind": "CronTab"}}}
    crds.default_crd(crd)
    assert crd["spec"]["names"] == {
        "plural": "crontabs",
        "kind": "CronTab",
        "singular": "crontab",
        "listKind": "CronTabList",
    }
    assert crd["spec"]["conversion"] == {"strategy": "None"}


def test_defaults_keep_what_is_given() -> None:
    names = {"plural": "crontabs", "kind": "CronTab", "singular": "tab", "listKind": "Tabs"}
    crd: Obj = {"spec": {"names": dict(names), "conversion": {"strategy": "Webhook"}}}
    crds.default_crd(crd)
    assert crd["spec"]["names"] == names
    assert crd["spec"]["conversion"] == {"strategy": "Webhook"}


def test_defaults_leave_printer_column_priority_absent() -> None:
    crd = crontab_crd()
    assert "priority" not in version(crd)["additionalPrinterColumns"][0]
    columns = kind_of(crd).printer_columns
    assert [c.priority for c in columns] == [0, 1]


def test_create_starts_the_status_and_holds_the_finalizer() -> None:
    crd = crontab_crd()
    assert crd["status"] == {
        "conditions": [],
        "acceptedNames": {"plural": "", "kind": ""},
        "storedVersions": ["v1"],
    }
    assert crd["metadata"]["finalizers"] == [crds.CLEANUP_FINALIZER]
    crds.prepare_crd_create(crd)
    assert crd["metadata"]["finalizers"] == [crds.CLEANUP_FINALIZER]


def test_update_keeps_the_status_and_adds_a_new_storage_version() -> None:
    old = crontab_crd()
    old["status"]["acceptedNames"] = crds.accepted_names(old)
    new = copy.deepcopy(old)
    new["status"] = {"storedVersions": ["forged"]}
    version(new, 0)["storage"] = False
    version(new, 1)["storage"] = True
    crds.prepare_crd_update(new, old)
    assert new["status"]["acceptedNames"] == old["status"]["acceptedNames"]
    assert new["status"]["storedVersions"] == ["v1", "v1beta1"]
    assert problems(new, old) == []


def test_a_realistic_crd_is_valid() -> None:
    assert problems(crontab_crd()) == []


def test_name_must_be_plural_dot_group() -> None:
    crd = crontab_crd()
    crd["metadata"]["name"] = "crontab.stable.example.com"
    assert problems(crd) == [
        'metadata.name: Invalid value: "crontab.stable.example.com": '
        'must be spec.names.plural+"."+spec.group'
    ]


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ("", "spec.group: Required value"),
        (
            "example",
            'spec.group: Invalid value: "example": should be a domain with at least one dot',
        ),
        (
            "Example.com",
            'spec.group: Invalid value: "Example.com": a lowercase RFC 1123 subdomain must',
        ),
    ],
)
def test_group(group: str, expected: str) -> None:
    crd = crontab_crd(group=group)
    crd["metadata"]["name"] = f"crontabs.{group}"
    found = problems(crd)
    assert len(found) == 1
    assert found[0].startswith(expected)


def test_scope() -> None:
    assert problems(crontab_crd(scope="Tenant")) == [
        'spec.scope: Unsupported value: "Tenant": supported values: "Cluster", "Namespaced"'
    ]
    assert problems(crontab_crd(scope="")) == ["spec.scope: Required value"]


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (
            {"plural": "CronTabs"},
            ['spec.names.plural: Invalid value: "CronTabs": a DNS-1035 label must consist'],
        ),
        (
            {"singular": "cron.tab"},
            ['spec.names.singular: Invalid value: "cron.tab": a DNS-1035 label must consist'],
        ),
        (
            {"kind": "Cron_Tab", "listKind": "CronTabList"},
            [
                'spec.names.kind: Invalid value: "Cron_Tab": may have mixed case, but should '
                "otherwise match: a DNS-1035 label"
            ],
        ),
        (
            {"listKind": "CronTab"},
            [
                'spec.names.listKind: Invalid value: "CronTab": kind and listKind may not be '
                "the same"
            ],
        ),
        (
            {"shortNames": ["ct", "CT"]},
            ['spec.names.shortNames[1]: Invalid value: "CT": a DNS-1035 label must consist'],
        ),
        (
            {"categories": ["all", "my_things"]},
            ['spec.names.categories[1]: Invalid value: "my_things": a DNS-1035 label'],
        ),
        ({"kind": ""}, ["spec.names.kind: Required value"]),
    ],
)
def test_names(names: Obj, expected: list[str]) -> None:
    crd = crontab_crd()
    crd["spec"]["names"].update(names)
    plural = crd["spec"]["names"]["plural"]
    crd["metadata"]["name"] = f"{plural}.stable.example.com"
    found = problems(crd)
    assert len(found) == len(expected), found
    for text, start in zip(found, expected, strict=True):
        assert text.startswith(start)


def test_versions_need_exactly_one_storage_version() -> None:
    crd = crontab_crd()
    version(crd, 1)["storage"] = True
    found = crds.validate_crd(crd, None)
    assert [(e.field, e.detail) for e in found] == [
        ("spec.versions", "must have exactly one version marked as storage version"),
        ("status.storedVersions", "must have the storage version v1beta1"),
    ]
    version(crd, 0)["storage"] = version(crd, 1)["storage"] = False
    assert [(e.field, e.detail) for e in crds.validate_crd(crd, None)] == [
        ("spec.versions", "must have exactly one version marked as storage version"),
    ]


def test_versions_are_required_unique_labels() -> None:
    crd = crontab_crd()
    version(crd, 1)["name"] = "v1"
    assert [(e.field, e.detail) for e in crds.validate_crd(crd, None)] == [
        ("spec.versions", "must contain unique version names")
    ]
    crd = crontab_crd()
    version(crd, 1)["name"] = "V2"
    [error] = crds.validate_crd(crd, None)
    assert error.field == "spec.versions[1].name"
    assert error.detail.startswith("a DNS-1035 label must consist")
    crd = crontab_crd(versions=[])
    fields = [e.field for e in crds.validate_crd(crd, None)]
    assert "spec.versions" in fields


def test_served_is_required() -> None:
    crd = crontab_crd()
    del version(crd, 1)["served"]
    assert problems(crd) == ["spec.versions[1].served: Required value"]


def test_every_version_needs_a_structural_schema() -> None:
    crd = crontab_crd()
    del version(crd, 1)["schema"]
    assert problems(crd) == ["spec.versions[1].schema.openAPIV3Schema: Required value"]
    crd = crontab_crd()
    version(crd, 1)["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["x"] = {}
    assert problems(crd) == [
        "spec.versions[1].schema.openAPIV3Schema.properties[spec].properties[x].type: "
        "Required value: must not be empty for specified object fields"
    ]


def test_cel_rules_are_refused_where_they_are() -> None:
    crd = crontab_crd()
    schema = version(crd)["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"]["x-kubernetes-validations"] = [{"rule": "self.replicas < 10"}]
    [error] = crds.validate_crd(crd, None)
    assert error.type is CauseType.FORBIDDEN
    assert error.field == (
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations"
    )


def test_schema_root_with_status_subresource() -> None:
    crd = crontab_crd()
    version(crd)["schema"]["openAPIV3Schema"]["additionalProperties"] = False
    found = crds.validate_crd(crd, None)
    assert next(e.field for e in found) == "spec.versions[0].schema.openAPIV3Schema"
    assert found[0].detail.endswith(
        "fields are allowed at the root of the schema if the status subresource is enabled"
    )


def test_status_subresource_must_be_empty() -> None:
    crd = crontab_crd()
    version(crd)["subresources"]["status"] = {"path": ".status"}
    assert problems(crd) == [
        'spec.versions[0].subresources.status: Invalid value: {"path":".status"}: '
        "must be an empty object"
    ]


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        (
            {"specReplicasPath": ".status.replicas"},
            "spec.versions[0].subresources.scale.specReplicasPath: Invalid value: "
            '".status.replicas": should be a json path under .spec',
        ),
        (
            {"specReplicasPath": "spec.replicas"},
            "spec.versions[0].subresources.scale.specReplicasPath: Invalid value: "
            '"spec.replicas": must be a simple json path starting with .',
        ),
        (
            {"specReplicasPath": ""},
            "spec.versions[0].subresources.scale.specReplicasPath: Required value",
        ),
        (
            {"statusReplicasPath": ".spec.replicas"},
            "spec.versions[0].subresources.scale.statusReplicasPath: Invalid value: "
            '".spec.replicas": should be a json path under .status',
        ),
        (
            {"labelSelectorPath": ".metadata.labels"},
            "spec.versions[0].subresources.scale.labelSelectorPath: Invalid value: "
            '".metadata.labels": should be a json path under either .spec or .status',
        ),
        (
            {"specReplicasPath": ".spec.image"},
            "spec.versions[0].subresources.scale.specReplicasPath: Invalid value: "
            '".spec.image": must point to a field of type integer in the schema',
        ),
    ],
)
def test_scale_paths(scale: Obj, expected: str) -> None:
    crd = crontab_crd()
    version(crd)["subresources"]["scale"].update(scale)
    assert problems(crd) == [expected]


def test_scale_path_the_schema_does_not_name_is_fine() -> None:
    crd = crontab_crd()
    version(crd)["subresources"]["scale"]["specReplicasPath"] = ".spec.extra.count"
    assert problems(crd) == []


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (
            {"name": "", "type": "string", "jsonPath": ".spec.image"},
            "spec.versions[0].additionalPrinterColumns[2].name: Required value",
        ),
        (
            {"name": "Spec", "type": "string", "jsonPath": ".spec.image"},
            'spec.versions[0].additionalPrinterColumns[2].name: Duplicate value: "Spec"',
        ),
        (
            {"name": "Image", "type": "text", "jsonPath": ".spec.image"},
            'spec.versions[0].additionalPrinterColumns[2].type: Invalid value: "text": '
            "must be one of boolean,date,integer,number,string",
        ),
        (
            {"name": "Image", "jsonPath": ".spec.image"},
            "spec.versions[0].additionalPrinterColumns[2].type: Required value: "
            "must be one of boolean,date,integer,number,string",
        ),
        (
            {"name": "Image", "type": "string", "format": "url", "jsonPath": ".spec.image"},
            'spec.versions[0].additionalPrinterColumns[2].format: Invalid value: "url": '
            "must be one of byte,date,date-time,double,float,int32,int64,password",
        ),
        (
            {"name": "Image", "type": "string"},
            "spec.versions[0].additionalPrinterColumns[2].JSONPath: Required value",
        ),
        (
            {"name": "Image", "type": "string", "jsonPath": "spec.image"},
            "spec.versions[0].additionalPrinterColumns[2].JSONPath: Invalid value: "
            '"spec.image": must be a simple json path starting with .',
        ),
    ],
)
def test_printer_columns(column: Obj, expected: str) -> None:
    crd = crontab_crd()
    version(crd)["additionalPrinterColumns"].append(column)
    assert problems(crd) == [expected]


def test_printer_column_json_path_must_parse() -> None:
    crd = crontab_crd()
    column = {"name": "Bad", "type": "string", "jsonPath": ".spec.steps[?(@.name=="}
    version(crd)["additionalPrinterColumns"].append(column)
    [error] = crds.validate_crd(crd, None)
    assert error.field == "spec.versions[0].additionalPrinterColumns[2].JSONPath"
    assert error.detail.startswith("is an invalid JSONPath: ")


@pytest.mark.parametrize(
    ("json_path", "detail"),
    [
        ("spec.color", "is an invalid path: expected [ or . but got: spec"),
        (".spec.steps[0].name", "is an invalid path: array notation is not allowed"),
        (".spec.missing", "is an invalid path: does not refer to a valid field"),
        (".spec.", "is an invalid path: unexpected end of JSON path"),
        (
            ".spec.steps",
            "must point to a field of type string, boolean or integer. Enum string fields and "
            "strings with formats are allowed.",
        ),
        (".spec.color", ""),
    ],
)
def test_selectable_fields(json_path: str, detail: str) -> None:
    crd = crontab_crd()
    version(crd)["selectableFields"].append({"jsonPath": json_path})
    found = crds.validate_crd(crd, None)
    assert len(found) == 1
    assert found[0].field == "spec.versions[0].selectableFields[2].jsonPath"
    if detail:
        assert found[0].detail == detail
    else:
        assert found[0].type is CauseType.DUPLICATE


def test_selectable_fields_may_use_a_map_key() -> None:
    crd = crontab_crd()
    version(crd)["selectableFields"].append({"jsonPath": ".spec.labels.team"})
    assert problems(crd) == []
    assert "spec.labels.team" in crds.resources_of(crd, tenant="acme")[0].field_labels


def test_at_most_eight_selectable_fields() -> None:
    schema = version(crontab_crd())["schema"]["openAPIV3Schema"]
    spec_fields = schema["properties"]["spec"]["properties"]
    for index in range(9):
        spec_fields[f"f{index}"] = {"type": "string"}
    crd = crontab_crd()
    version(crd)["schema"]["openAPIV3Schema"] = schema
    version(crd)["selectableFields"] = [{"jsonPath": f".spec.f{i}"} for i in range(9)]
    assert problems(crd) == [
        "spec.versions[0].selectableFields: Too many: must have at most 8 items"
    ]


def test_webhook_conversion_is_refused() -> None:
    crd = crontab_crd(conversion={"strategy": "Webhook", "webhook": {}})
    [error] = crds.validate_crd(crd, None)
    assert error.field == "spec.conversion.strategy"
    assert error.type is CauseType.NOT_SUPPORTED
    assert "webhook conversion is not supported by this server" in error.message
    crd = crontab_crd(conversion={"strategy": "None", "webhook": {}})
    assert problems(crd) == [
        "spec.conversion.webhook: Forbidden: should not be set when strategy is not set to Webhook"
    ]


def test_preserve_unknown_fields_at_the_top_is_refused() -> None:
    [error] = crds.validate_crd(crontab_crd(preserveUnknownFields=True), None)
    assert error.field == "spec.preserveUnknownFields"


def test_update_keeps_group_and_plural() -> None:
    old = crontab_crd()
    new = copy.deepcopy(old)
    new["spec"]["names"]["plural"] = "crons"
    new["spec"]["group"] = "other.example.com"
    new["metadata"]["name"] = "crons.other.example.com"
    assert problems(new, old) == [
        'spec.group: Invalid value: "other.example.com": field is immutable',
        'spec.names.plural: Invalid value: "crons": field is immutable',
    ]


def test_update_of_an_established_crd_keeps_scope_and_kind() -> None:
    old = crontab_crd()
    new = copy.deepcopy(old)
    new["spec"]["scope"] = "Cluster"
    assert problems(new, old) == []
    old["status"]["conditions"] = [{"type": "Established", "status": "True"}]
    assert problems(new, old) == ['spec.scope: Invalid value: "Cluster": field is immutable']


def test_update_may_not_drop_a_stored_version() -> None:
    old = crontab_crd()
    old["status"]["storedVersions"] = ["v1beta1", "v1"]
    new = copy.deepcopy(old)
    del new["spec"]["versions"][1]
    crds.prepare_crd_update(new, old)
    [error] = crds.validate_crd(new, old)
    assert error.field == "status.storedVersions[0]"
    assert error.detail.startswith(
        "missing from spec.versions; v1beta1 was previously a storage version"
    )


def test_status_update_checks_accepted_names() -> None:
    crd = crontab_crd()
    crd["status"]["acceptedNames"] = {"plural": "Cron", "kind": "CronTab"}
    [error] = crds.validate_crd(crd, None)
    assert error.field == "status.acceptedNames.plural"


def test_wrong_json_types_are_reported_not_raised() -> None:
    crd = crontab_crd()
    crd["spec"]["versions"] = [5, {"name": 1, "served": "yes"}]
    crd["spec"]["names"]["shortNames"] = "ct"
    found = crds.validate_crd(crd, None)
    assert {e.field for e in found if e.type is CauseType.TYPE_INVALID} >= {
        "spec.versions[0]",
        "spec.versions[1].name",
        "spec.versions[1].served",
        "spec.names.shortNames",
    }
    assert crds.validate_crd({"spec": "x"}, None)[0].field == "spec"


# ---------------------------------------------------------------------------------------
# Sharing and names


def test_forced_sharing_label() -> None:
    crd = crontab_crd()
    assert not crds.forced_shared(crd)
    crd["metadata"]["labels"] = {crds.SHARING_LABEL: "forced"}
    assert crds.forced_shared(crd)
    assert kind_of(crd, tenant="system").shared
    assert not kind_of(crd, tenant="acme").shared


def accepted(crd: Obj) -> Obj:
    crd["status"]["acceptedNames"] = crds.accepted_names(crd)
    return crd


def test_accepted_names() -> None:
    assert crds.accepted_names(crontab_crd()) == {
        "plural": "crontabs",
        "singular": "crontab",
        "shortNames": ["ct"],
        "kind": "CronTab",
        "listKind": "CronTabList",
        "categories": ["all"],
    }


def other_crd(**names: Any) -> Obj:
    crd = crontab_crd(names={"plural": "jobs", "kind": "Job", **names})
    crd["metadata"]["name"] = f"{crd['spec']['names']['plural']}.stable.example.com"
    crds.default_crd(crd)
    return accepted(crd)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ({"plural": "crontabs", "kind": "Job"}, '"crontabs" is already in use'),
        ({"singular": "ct"}, '"ct" is already in use'),
        (
            {"shortNames": ["crontab", "ct"]},
            '["crontab" is already in use, "ct" is already in use]',
        ),
        ({"kind": "CronTab", "listKind": "JobList"}, '"CronTab" is already in use'),
        ({"listKind": "CronTabList"}, '"CronTabList" is already in use'),
        ({"shortNames": ["j"]}, None),
    ],
)
def test_name_conflicts(names: Obj, message: str | None) -> None:
    # A shared system CRD: the only way another CRD of the view can have the same name.
    existing = accepted(crontab_crd())
    existing["metadata"]["tenant"] = "system"
    crd = other_crd(**names)
    assert crds.name_conflicts(crd, [existing, crd]) == message


def test_names_do_not_conflict_across_groups_or_with_themselves() -> None:
    existing = accepted(crontab_crd())
    assert crds.name_conflicts(existing, [existing]) is None
    elsewhere = crontab_crd(group="other.example.com")
    assert crds.name_conflicts(elsewhere, [existing]) is None


def test_names_only_conflict_with_accepted_ones() -> None:
    pending = crontab_crd()
    assert crds.name_conflicts(other_crd(plural="crontabs"), [pending]) is None


# ---------------------------------------------------------------------------------------
# The resources a CRD serves


def test_resources_of_a_realistic_crd() -> None:
    crd = crontab_crd()
    served = crds.resources_of(crd, tenant="acme")
    assert [(r.group, r.version, r.kind, r.plural) for r in served] == [
        ("stable.example.com", "v1", "CronTab", "crontabs"),
        ("stable.example.com", "v1beta1", "CronTab", "crontabs"),
    ]
    v1, v1beta1 = served
    assert v1.scope is resources.Scope.NAMESPACE
    assert v1.short_names == ("ct",)
    assert v1.categories == ("all",)
    assert v1.subresources == frozenset({"status", "scale"})
    assert v1beta1.subresources == frozenset()
    assert v1.field_labels == frozenset({"spec.color", "spec.paused"})
    assert v1.field_label_supported("spec.color")
    custom = v1.custom
    assert custom is not None
    assert custom.crd_name == "crontabs.stable.example.com"
    assert (custom.tenant, custom.shared, custom.storage_version) == ("acme", False, "v1")
    assert custom.list_kind == "CronTabList"
    assert custom.scale == crds.ScalePaths(
        ".spec.replicas", ".status.replicas", ".status.labelSelector"
    )
    assert custom.printer_columns == (
        crds.PrinterColumn("Spec", "string", ".spec.cronSpec"),
        crds.PrinterColumn("Replicas", "integer", ".spec.replicas", "int32", "wanted", 1),
    )
    assert v1beta1.custom is not None
    assert v1beta1.custom.scale is None
    assert v1.custom is not v1beta1.custom
    assert v1.custom != v1beta1.custom


def test_cluster_scope_serves_tenant_objects_and_unserved_versions_are_left_out() -> None:
    crd = crontab_crd(scope="Cluster")
    version(crd, 1)["served"] = False
    [served] = crds.resources_of(crd, tenant="acme")
    assert served.scope is resources.Scope.TENANT
    assert served.version == "v1"
    assert served.prefix(tenant="acme") == "/registry/stable.example.com/crontabs/acme/"


def test_resources_use_the_accepted_names() -> None:
    crd = accepted(crontab_crd())
    crd["spec"]["names"]["shortNames"] = ["ct", "cron"]
    assert crds.resources_of(crd, tenant="acme")[0].short_names == ("ct",)


# ---------------------------------------------------------------------------------------
# Custom objects


def crontab(spec: Obj | None = None, **top: Any) -> Obj:
    return {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "a", "namespace": "default", "tenant": "acme", "odd": 1},
        "spec": spec if spec is not None else {"image": "busybox"},
        **top,
    }


def test_prepare_defaults_then_prunes() -> None:
    obj = crontab({"image": "busybox", "bogus": 1, "steps": [{"name": "x", "y": 2}]}, extra=3)
    pruned = kind_of().prepare(obj)
    assert pruned == ["extra", "spec.bogus", "spec.steps[0].y"]
    assert obj["spec"] == {
        "image": "busybox",
        "cronSpec": "5 0 * * *",
        "replicas": 1,
        "steps": [{"name": "x"}],
    }
    assert obj["metadata"]["odd"] == 1
    assert obj["apiVersion"] == "stable.example.com/v1"
    assert obj["kind"] == "CronTab"


def test_prepare_keeps_preserved_fields() -> None:
    obj = crontab({"extra": {"anything": {"goes": True}}})
    assert kind_of().prepare(obj) == []
    assert obj["spec"]["extra"] == {"anything": {"goes": True}}


def test_validate_with_kubernetes_paths() -> None:
    custom = kind_of()
    obj = crontab({"image": 5, "color": "green"})
    custom.prepare(obj)
    found = {e.field: e for e in custom.validate(obj, None)}
    assert set(found) == {"spec.image", "spec.color"}
    assert found["spec.color"].type is CauseType.NOT_SUPPORTED


def test_validate_scale_replicas() -> None:
    schema = crontab_schema(replicas={"x-kubernetes-int-or-string": True})
    crd = crontab_crd()
    version(crd)["schema"]["openAPIV3Schema"] = schema
    custom = kind_of(crd)
    assert [str(e) for e in custom.validate(crontab({"replicas": -1}), None)] == [
        ".spec.replicas: Invalid value: -1: should be a non-negative integer"
    ]
    assert [str(e) for e in custom.validate(crontab({"replicas": "two"}), None)] == [
        ".spec.replicas: Invalid value: 0: .spec.replicas accessor error: two is of the type "
        "string, expected int64"
    ]
    assert [str(e) for e in custom.validate(crontab({"replicas": 2**31}), None)] == [
        ".spec.replicas: Invalid value: 2147483648: should be less than or equal to 2147483647"
    ]
    assert custom.validate(crontab({}), None) == []


def test_unknown_fields_of_objects_and_apply() -> None:
    custom = kind_of()
    body = crontab({"image": "x", "bogus": 1, "labels": {"a": "b"}})
    before = copy.deepcopy(body)
    for body_type in (Body.OBJECT, Body.APPLY):
        assert custom.unknown_fields(body, body_type=body_type) == ["spec.bogus"]
    assert body == before


def test_unknown_fields_of_a_merge_patch() -> None:
    custom = kind_of()
    patch = {"spec": {"bogus": None, "other": 1, "image": None, "steps": [{"z": 1}]}}
    assert custom.unknown_fields(patch, body_type=Body.MERGE_PATCH) == [
        "spec.other",
        "spec.steps[0].z",
    ]


def test_unknown_fields_of_a_json_patch() -> None:
    custom = kind_of()
    patch = [
        {"op": "add", "path": "/spec/bogus", "value": 1},
        {"op": "replace", "path": "/spec/steps/0", "value": {"name": "a", "zz": 1}},
        {"op": "add", "path": "/spec/labels/team", "value": "x"},
        {"op": "add", "path": "/spec/extra/anything", "value": {"x": 1}},
        {"op": "add", "path": "/metadata/labels/x", "value": "y"},
        {"op": "remove", "path": "/spec/other"},
        {"op": "add", "path": "/spec", "value": {"image": "i", "yy": 2}},
        {"op": "move", "from": "/spec/image", "path": "/spec/moved"},
    ]
    assert custom.unknown_fields(patch, body_type=Body.JSON_PATCH) == [
        "spec.bogus",
        "spec.moved",
        "spec.steps[0].zz",
        "spec.yy",
    ]


def test_strategic_merge_patches_have_no_unknown_fields() -> None:
    patch = {"spec": {"bogus": 1}}
    assert kind_of().unknown_fields(patch, body_type=Body.STRATEGIC_MERGE_PATCH) == []


def test_scale_of() -> None:
    obj = crontab(
        {"replicas": 3},
        status={"replicas": 2, "labelSelector": "app=cron"},
    )
    obj["metadata"].update(uid="u1", resourceVersion="7", creationTimestamp="2026-01-01T00:00:00Z")
    assert kind_of().scale_of(obj) == {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": "a",
            "namespace": "default",
            "tenant": "acme",
            "uid": "u1",
            "resourceVersion": "7",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"replicas": 3},
        "status": {"replicas": 2, "selector": "app=cron"},
    }


def test_scale_of_absent_values_is_zero() -> None:
    scale = kind_of().scale_of(crontab({}))
    assert scale["spec"] == {"replicas": 0}
    assert scale["status"] == {"replicas": 0}


def test_scale_of_a_wrong_type_is_an_error() -> None:
    with pytest.raises(crds.ScaleError, match="expected int64"):
        kind_of().scale_of(crontab({"replicas": "3"}))


def test_with_replicas_copies_and_creates_the_path() -> None:
    custom = kind_of()
    obj = crontab({"image": "x"})
    updated = custom.with_replicas(obj, 5)
    assert updated["spec"] == {"image": "x", "replicas": 5}
    assert obj["spec"] == {"image": "x"}


def test_with_replicas_through_a_non_object_is_an_error() -> None:
    crd = crontab_crd()
    version(crd)["subresources"]["scale"]["specReplicasPath"] = ".spec.image.count"
    with pytest.raises(crds.ScaleError, match="not a map"):
        kind_of(crd).with_replicas(crontab({"image": "x"}), 1)


_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789-_", min_size=1, max_size=8)


@given(steps=st.lists(_NAMES, min_size=1, max_size=5), replicas=st.integers(0, 2**31 - 1))
def test_replicas_paths_round_trip(steps: list[str], replicas: int) -> None:
    crd = crontab_crd()
    path = ".spec." + ".".join(steps)
    version(crd)["subresources"]["scale"]["specReplicasPath"] = path
    version(crd)["schema"]["openAPIV3Schema"]["properties"]["spec"] = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    del version(crd)["selectableFields"]
    assert problems(crd) == []
    custom = kind_of(crd)
    obj = custom.with_replicas({"metadata": {"name": "a"}}, replicas)
    assert custom.scale_of(obj)["spec"]["replicas"] == replicas
    assert custom.validate(obj, None) == []


def test_unknown_fields_under_a_map_are_named_by_key() -> None:
    custom = kind_of()
    obj = crontab({"pools": {"a.b": {"size": 1, "bogus": 2}}, "steps": [{}, {"x": 1}]})
    assert custom.prepare(obj) == ["spec.pools.a.b.bogus", "spec.steps[1].x"]
    patch = [{"op": "add", "path": "/spec/pools/b", "value": {"size": 1, "zz": 2}}]
    assert custom.unknown_fields(patch, body_type=Body.JSON_PATCH) == ["spec.pools.b.zz"]
    merge = {"spec": {"pools": {"c": {"yy": 1}}}}
    assert custom.unknown_fields(merge, body_type=Body.MERGE_PATCH) == ["spec.pools.c.yy"]


_KEYS = st.sampled_from(["image", "bogus", "steps", "name", "pools", "a", "size", "extra"])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


@given(spec=st.dictionaries(_KEYS, _JSON, max_size=5))
def test_unknown_fields_are_what_prepare_prunes(spec: Obj) -> None:
    custom = kind_of()
    obj = crontab(spec)
    unknown = custom.unknown_fields(obj, body_type=Body.OBJECT)
    prepared = copy.deepcopy(obj)
    assert custom.prepare(prepared) == unknown
    assert custom.unknown_fields(prepared, body_type=Body.OBJECT) == []
    assert custom.prepare(copy.deepcopy(prepared)) == []
