"""Field validation: the unknown fields of objects and patches, in kube-apiserver's words."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, strategies as st

from arktos_lite.api import _fields as fields, _schema as schema

Obj = dict[str, Any]

DEPLOYMENT: Obj = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "tenant": "system",
        "hashKey": 42,
        "labels": {"app": "web"},
        "ownerReferences": [
            {"apiVersion": "v1", "kind": "X", "name": "x", "uid": "u", "hashKey": 1}
        ],
        "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:replicas": {}}}}],
    },
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "nginx",
                        "ports": [{"containerPort": 80}],
                        "resources": {"limits": {"cpu": "1", "memory": 1073741824}},
                    }
                ],
            },
        },
    },
    "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]},
}

VM_POD: Obj = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "vm"},
    "spec": {
        "virtualMachine": {
            "name": "vm",
            "image": "cirros",
            "keyPairName": "k",
            "powerSpec": "Running",
            "resources": {"limits": {"cpu": "1"}},
            "volumeMounts": [{"name": "d", "mountPath": "/d"}],
        },
        "nics": [{"name": "eth0", "subnetName": "a", "portId": "p", "ipv6Enabled": False}],
        "vpc": "v",
    },
    "status": {
        "phase": "Running",
        "virtualMachineStatus": {
            "name": "vm",
            "state": "active",
            "powerState": "running",
            "restartCount": 1,
            "lastTerminationState": {"anything": {"goes": True}},
        },
    },
}


def with_field(obj: Obj, path: list[str | int], value: Any) -> Obj:
    changed = copy.deepcopy(obj)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


def test_a_complete_object_has_no_unknown_fields() -> None:
    assert fields.unknown_fields("apps", "v1", "Deployment", DEPLOYMENT) == []
    assert fields.unknown_fields("", "v1", "Pod", VM_POD) == []


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (["spec", "foo"], "spec.foo"),
        (["foo"], "foo"),
        (["metadata", "tenantName"], "metadata.tenantName"),
        (
            ["spec", "template", "spec", "containers", 0, "foo"],
            "spec.template.spec.containers[0].foo",
        ),
        (
            ["spec", "template", "spec", "containers", 0, "ports", 0, "hostport"],
            "spec.template.spec.containers[0].ports[0].hostport",
        ),
        (
            ["spec", "strategy", "rollingUpdate", "maxSurges"],
            "spec.strategy.rollingUpdate.maxSurges",
        ),
        (["metadata", "ownerReferences", 0, "hashkey"], "metadata.ownerReferences[0].hashkey"),
        (["status", "conditions", 0, "foo"], "status.conditions[0].foo"),
    ],
)
def test_unknown_fields_are_named_by_their_path(path: list[str | int], expected: str) -> None:
    obj = with_field(DEPLOYMENT, path, 1)
    assert fields.unknown_fields("apps", "v1", "Deployment", obj) == [expected]


def test_every_unknown_field_is_reported_in_document_order() -> None:
    obj = with_field(DEPLOYMENT, ["spec", "foo"], 1)
    obj = with_field(obj, ["spec", "template", "spec", "bar"], None)
    obj = with_field(obj, ["zzz"], {"nested": 1})
    assert fields.unknown_fields("apps", "v1", "Deployment", obj) == [
        "spec.template.spec.bar",
        "spec.foo",
        "zzz",
    ]


def test_maps_free_form_objects_and_preserved_fields_take_anything() -> None:
    obj = with_field(DEPLOYMENT, ["metadata", "annotations"], {"any/key": "v"})
    obj = with_field(obj, ["metadata", "managedFields", 0, "fieldsV1"], {"f:x": {"f:y": {}}})
    assert fields.unknown_fields("apps", "v1", "Deployment", obj) == []
    pod = with_field(VM_POD, ["status", "virtualMachineStatus", "lastTerminationState"], {"a": 1})
    assert fields.unknown_fields("", "v1", "Pod", pod) == []


def test_arktos_fields_of_pods_are_checked_too() -> None:
    pod = with_field(VM_POD, ["spec", "virtualMachine", "flavor"], "m1")
    pod = with_field(pod, ["spec", "nics", 0, "ip"], "10.0.0.1")
    pod = with_field(pod, ["status", "virtualMachineStatus", "vmState"], "x")
    assert fields.unknown_fields("", "v1", "Pod", pod) == [
        "spec.virtualMachine.flavor",
        "spec.nics[0].ip",
        "status.virtualMachineStatus.vmState",
    ]


@pytest.mark.parametrize(
    ("kind", "obj", "expected"),
    [
        (
            "Tenant",
            {"metadata": {"name": "t"}, "spec": {"storageClusterId": "1", "foo": 1}},
            ["spec.foo"],
        ),
        (
            "ControllerInstance",
            {"controllerType": "ReplicaSet", "controllerKey": 5, "isLocked": False, "locked": 1},
            ["locked"],
        ),
        (
            "Action",
            {
                "spec": {"podName": "p", "rebootAction": {"delayInSeconds": 1, "delay": 2}},
                "status": {"complete": True, "rebootStatus": {"rebootSuccessful": True}},
            },
            ["spec.rebootAction.delay"],
        ),
    ],
)
def test_arktos_kinds_have_schemas(kind: str, obj: Obj, expected: list[str]) -> None:
    assert fields.unknown_fields("", "v1", kind, obj) == expected
    assert schema.definition_for("", "v1", kind) == f"io.k8s.api.core.v1.{kind}"


def test_kinds_without_a_schema_have_no_unknown_fields() -> None:
    assert fields.unknown_fields("example.com", "v1", "Widget", {"spec": {"x": 1}}) == []


def test_wrong_types_are_left_to_validation() -> None:
    obj = with_field(DEPLOYMENT, ["spec", "template", "spec", "containers"], {"name": "x"})
    obj = with_field(obj, ["spec", "selector"], "app=web")
    assert fields.unknown_fields("apps", "v1", "Deployment", obj) == []


POD_SPEC_FIELDS = frozenset(schema.definitions()["io.k8s.api.core.v1.PodSpec"]["properties"])


@given(st.text(min_size=1, max_size=12).filter(lambda name: name not in POD_SPEC_FIELDS))
def test_any_name_the_schema_lacks_is_reported(name: str) -> None:
    pod = with_field(VM_POD, ["spec", name], 1)
    assert fields.unknown_fields("", "v1", "Pod", pod) == [f"spec.{name}"]


# Patches


def patch_fields(patch: Any, body: fields.Body) -> list[str]:
    return fields.unknown_patch_fields("apps", "v1", "Deployment", patch, body=body)


def test_strategic_merge_patch_directives_are_not_fields() -> None:
    patch = {
        "spec": {
            "$retainKeys": ["strategy"],
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}],
                    "containers": [
                        {"name": "app", "image": "nginx:2", "speed": 3},
                        {"name": "old", "$patch": "delete"},
                    ],
                    "$deleteFromPrimitiveList/finalizers": ["x"],
                }
            },
        }
    }
    assert patch_fields(patch, fields.Body.STRATEGIC_MERGE_PATCH) == [
        "spec.template.spec.containers[0].speed"
    ]


def test_merge_patches_have_no_directives_and_nulls_add_nothing() -> None:
    patch = {"spec": {"$patch": "replace", "foo": None, "bar": 1}, "metadata": {"labels": None}}
    assert patch_fields(patch, fields.Body.MERGE_PATCH) == ["spec.$patch", "spec.bar"]
    assert patch_fields(patch, fields.Body.STRATEGIC_MERGE_PATCH) == ["spec.bar"]


def test_json_patches_are_checked_where_they_write_and_what() -> None:
    patch = [
        {"op": "add", "path": "/spec/foo", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "x", "q": 1}},
        {"op": "add", "path": "/metadata/labels/a~1b", "value": "v"},
        {"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}},
        {"op": "copy", "from": "/spec/replicas", "path": "/spec/copies"},
        {"op": "remove", "path": "/spec/gone"},
        {"op": "test", "path": "/spec/tested", "value": 1},
        {"op": "add", "path": "/spec/strategy", "value": {"type": "Recreate", "when": "now"}},
        {"op": "add", "path": "no-slash", "value": 1},
        "not an operation",
    ]
    assert patch_fields(patch, fields.Body.JSON_PATCH) == [
        "spec.foo",
        "spec.template.spec.containers[-].q",
        "spec.copies",
        "spec.strategy.when",
    ]


def test_the_whole_document_can_be_replaced_by_a_json_patch() -> None:
    patch = [{"op": "replace", "path": "", "value": {"spec": {"nope": 1}}}]
    assert patch_fields(patch, fields.Body.JSON_PATCH) == ["spec.nope"]


# Wording


def check(body: fields.Body, paths: tuple[str, ...]) -> fields.Unknown:
    return fields.Unknown("apps", "v1", "Deployment", body, paths)


def test_strict_wording_for_objects_patches_and_apply() -> None:
    paths = ("spec.foo", "spec.template.spec.containers[0].bar")
    assert check(fields.Body.OBJECT, paths).error_message() == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.foo", unknown field "spec.template.spec.containers[0].bar"'
    )
    assert check(fields.Body.MERGE_PATCH, paths[:1]).error_message() == (
        'strict decoding error: unknown field "spec.foo"'
    )
    assert check(fields.Body.APPLY, paths[:1]).error_message() == (
        "failed to create typed patch object (apps/v1, Kind=Deployment): "
        ".spec.foo: field not declared in schema"
    )
    assert check(fields.Body.APPLY, paths).error_message() == (
        "failed to create typed patch object (apps/v1, Kind=Deployment): errors:\n"
        "  .spec.foo: field not declared in schema\n"
        "  .spec.template.spec.containers[0].bar: field not declared in schema"
    )
    assert check(fields.Body.OBJECT, paths).warnings() == [
        'unknown field "spec.foo"',
        'unknown field "spec.template.spec.containers[0].bar"',
    ]


def test_check_picks_objects_or_patches_by_body() -> None:
    obj = with_field(DEPLOYMENT, ["spec", "foo"], 1)
    found = fields.check("apps", "v1", "Deployment", obj, body=fields.Body.APPLY)
    assert found.paths == ("spec.foo",)
    assert found
    patch = [{"op": "add", "path": "/spec/foo", "value": 1}]
    found = fields.check("apps", "v1", "Deployment", patch, body=fields.Body.JSON_PATCH)
    assert found.paths == ("spec.foo",)
    assert not fields.check("apps", "v1", "Deployment", DEPLOYMENT, body=fields.Body.OBJECT)
