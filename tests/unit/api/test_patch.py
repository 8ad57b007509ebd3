"""Merge patch, JSON patch and strategic merge patch, and the schemas that drive the last."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import assume, given, strategies as st

from arktos_lite.api import _errors as errors, _patch as patching, _schema as schema

POD = "io.k8s.api.core.v1.Pod"
DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"


def dump(value: Any) -> str:
    """Strict equality for JSON values: tells 1 from 1.0 and from True (key order aside)."""
    return json.dumps(value, sort_keys=True)


# --- Schemas --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gvk", "name"),
    [
        (("", "v1", "Pod"), "io.k8s.api.core.v1.Pod"),
        (("apps", "v1", "Deployment"), "io.k8s.api.apps.v1.Deployment"),
        (("policy", "v1", "PodDisruptionBudget"), "io.k8s.api.policy.v1.PodDisruptionBudget"),
        (("", "v1", "DeleteOptions"), "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"),
        (("example.com", "v1", "Widget"), None),
        (("apps", "v2", "Deployment"), None),
    ],
)
def test_definition_for_finds_kinds_by_group_version_kind(
    gvk: tuple[str, str, str], name: str | None
) -> None:
    assert schema.definition_for(*gvk) == name


def test_definitions_are_kubernetes_1_32_loaded_once() -> None:
    assert schema.KUBERNETES_VERSION == "v1.32.0"
    assert schema.definitions() is schema.definitions()
    pod_spec = schema.definitions()["io.k8s.api.core.v1.PodSpec"]
    assert "containers" in pod_spec["properties"]
    assert "resourceClaims" in pod_spec["properties"]


@pytest.mark.parametrize(
    ("definition", "path", "shape", "strategies", "merge_key"),
    [
        (POD, ("spec", "containers"), schema.Shape.LIST, {"merge"}, "name"),
        (POD, ("spec", "containers", "ports"), schema.Shape.LIST, {"merge"}, "containerPort"),
        (POD, ("spec", "containers", "env"), schema.Shape.LIST, {"merge"}, "name"),
        (POD, ("spec", "containers", "volumeMounts"), schema.Shape.LIST, {"merge"}, "mountPath"),
        (POD, ("spec", "volumes"), schema.Shape.LIST, {"merge", "retainKeys"}, "name"),
        (POD, ("spec", "tolerations"), schema.Shape.LIST, set(), None),
        (POD, ("spec", "nodeSelector"), schema.Shape.MAP, set(), None),
        (POD, ("spec", "nodeSelector", "disk"), schema.Shape.SCALAR, set(), None),
        (POD, ("status", "conditions"), schema.Shape.LIST, {"merge"}, "type"),
        (POD, ("metadata", "finalizers"), schema.Shape.LIST, {"merge"}, None),
        (POD, ("metadata", "labels"), schema.Shape.MAP, set(), None),
        (POD, ("metadata", "ownerReferences"), schema.Shape.LIST, {"merge"}, "uid"),
        (
            POD,
            ("spec", "containers", "resources", "limits", "cpu"),
            schema.Shape.SCALAR,
            set(),
            None,
        ),
        (POD, ("spec", "noSuchField"), schema.Shape.UNKNOWN, set(), None),
        (DEPLOYMENT, ("spec", "strategy"), schema.Shape.OBJECT, {"retainKeys"}, None),
        (
            "io.k8s.api.policy.v1.PodDisruptionBudget",
            ("spec", "selector"),
            schema.Shape.OBJECT,
            {"replace"},
            None,
        ),
        (
            "io.k8s.api.apps.v1.ControllerRevision",
            ("data",),
            schema.Shape.UNKNOWN,
            set(),
            None,
        ),
    ],
)
def test_patch_meta_reads_patch_strategies_through_refs(
    definition: str,
    path: tuple[str, ...],
    shape: schema.Shape,
    strategies: set[str],
    merge_key: str | None,
) -> None:
    meta = schema.patch_meta(definition, path)
    assert (meta.shape, set(meta.strategies), meta.merge_key) == (shape, strategies, merge_key)


def test_patch_meta_properties_and_navigation() -> None:
    containers = schema.patch_meta(POD, ("spec", "containers"))
    assert containers.merges
    assert not containers.retains_keys
    assert containers.list_type == "map"
    assert containers.list_map_keys == ("name",)
    assert containers.items().definition == "io.k8s.api.core.v1.Container"
    assert containers.items().field("image").shape is schema.Shape.SCALAR
    assert schema.patch_meta(POD, ("spec", "volumes")).retains_keys
    assert not schema.patch_meta(POD, ("spec", "tolerations")).merges
    assert schema.patch_meta(
        "io.k8s.api.policy.v1.PodDisruptionBudget", ("spec", "selector")
    ).replaces
    assert schema.patch_meta(POD).definition == POD
    assert schema.patch_meta(POD, ("spec", "nodeName")).items() is schema.UNKNOWN


def test_arktos_fields_are_layered_on_the_upstream_schemas() -> None:
    nics = schema.patch_meta(POD, ("spec", "nics"))
    assert (nics.shape, nics.merges, nics.merge_key) == (schema.Shape.LIST, True, "name")
    vm = schema.patch_meta(POD, ("spec", "virtualMachine"))
    assert (vm.shape, vm.definition) == (schema.Shape.OBJECT, "io.k8s.api.core.v1.VirtualMachine")
    assert schema.patch_meta(POD, ("spec", "virtualMachine", "volumeMounts")).merge_key == (
        "mountPath"
    )
    assert schema.patch_meta(POD, ("status", "virtualMachineStatus", "state")).shape is (
        schema.Shape.SCALAR
    )
    assert schema.patch_meta(POD, ("spec", "vpc")).shape is schema.Shape.SCALAR
    assert schema.patch_meta(POD, ("metadata", "tenant")).shape is schema.Shape.SCALAR
    assert schema.patch_meta(POD, ("metadata", "hashKey")).shape is schema.Shape.SCALAR
    owner_hash = schema.patch_meta(POD, ("metadata", "ownerReferences", "hashKey"))
    assert owner_hash.shape is schema.Shape.SCALAR
    # A VM pod has no containers.
    assert schema.definitions()["io.k8s.api.core.v1.PodSpec"]["required"] == []
    # What upstream says about PodSpec is still there.
    assert schema.patch_meta(POD, ("spec", "containers")).merge_key == "name"


def test_layered_deep_merges_without_changing_its_inputs() -> None:
    base = {"A": {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}}
    overlay = {
        "A": {"properties": {"y": {"type": "integer"}}, "required": []},
        "B": {"type": "object"},
    }
    before = copy.deepcopy((base, overlay))
    result = schema.layered(base, overlay)
    assert result == {
        "A": {
            "type": "object",
            "properties": {"x": {"type": "string"}, "y": {"type": "integer"}},
            "required": [],
        },
        "B": {"type": "object"},
    }
    assert (base, overlay) == before


def test_patch_meta_of_an_unknown_definition_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        schema.patch_meta("io.example.v1.Nothing")


# --- RFC 7386 merge patch -------------------------------------------------------------------

RFC7386_APPENDIX_A = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC7386_APPENDIX_A)
def test_merge_patch_rfc7386_appendix_a(target: Any, patch: Any, result: Any) -> None:
    assert patching.merge_patch(target, patch) == result


def test_merge_patch_rfc7386_section_3_example() -> None:
    target = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert patching.merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


def test_merge_patch_result_shares_nothing_with_its_inputs() -> None:
    target = {"keep": {"deep": [1]}, "x": 1}
    patch = {"new": {"list": [{"a": 1}]}}
    result = patching.merge_patch(target, patch)
    result["keep"]["deep"].append(2)
    result["new"]["list"][0]["a"] = 2
    assert target == {"keep": {"deep": [1]}, "x": 1}
    assert patch == {"new": {"list": [{"a": 1}]}}


# --- RFC 6902 JSON patch --------------------------------------------------------------------

RFC6902_APPENDIX_A = [
    pytest.param(
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux"}],
        {"baz": "qux", "foo": "bar"},
        id="A.1 add an object member",
    ),
    pytest.param(
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
        id="A.2 add an array element",
    ),
    pytest.param(
        {"baz": "qux", "foo": "bar"},
        [{"op": "remove", "path": "/baz"}],
        {"foo": "bar"},
        id="A.3 remove an object member",
    ),
    pytest.param(
        {"foo": ["bar", "qux", "baz"]},
        [{"op": "remove", "path": "/foo/1"}],
        {"foo": ["bar", "baz"]},
        id="A.4 remove an array element",
    ),
    pytest.param(
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
        id="A.5 replace a value",
    ),
    pytest.param(
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
        id="A.6 move a value",
    ),
    pytest.param(
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
        id="A.7 move an array element",
    ),
    pytest.param(
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [
            {"op": "test", "path": "/baz", "value": "qux"},
            {"op": "test", "path": "/foo/1", "value": 2},
        ],
        {"baz": "qux", "foo": ["a", 2, "c"]},
        id="A.8 test a value: success",
    ),
    pytest.param(
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
        id="A.10 add a nested member object",
    ),
    pytest.param(
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        {"foo": "bar", "baz": "qux"},
        id="A.11 ignore unrecognized elements",
    ),
    pytest.param(
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": 10}],
        {"/": 9, "~1": 10},
        id="A.14 ~ escape ordering",
    ),
    pytest.param(
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
        id="A.16 add an array value",
    ),
    pytest.param(
        {"a/b": {"m~n": 1}},
        [{"op": "copy", "from": "/a~1b/m~0n", "path": "/c"}],
        {"a/b": {"m~n": 1}, "c": 1},
        id="copy with escaped tokens",
    ),
    pytest.param(
        {"a": 1},
        [{"op": "replace", "path": "", "value": [1, 2]}],
        [1, 2],
        id="replace the whole document",
    ),
    pytest.param(
        {"a": 1},
        [{"op": "add", "path": "", "value": {"b": 2}}],
        {"b": 2},
        id="add at the root replaces the document",
    ),
    pytest.param(
        {"n": 1.0, "l": [1, {"x": True}]},
        [
            {"op": "test", "path": "/n", "value": 1},
            {"op": "test", "path": "/l", "value": [1.0, {"x": True}]},
        ],
        {"n": 1.0, "l": [1, {"x": True}]},
        id="test compares numbers by value",
    ),
    pytest.param(
        {"a": {"b": 1}},
        [{"op": "move", "from": "/a", "path": "/a"}],
        {"a": {"b": 1}},
        id="move onto itself",
    ),
    pytest.param({"a": 1}, [], {"a": 1}, id="no operations"),
    pytest.param({"a": 1}, None, {"a": 1}, id="null is no operations, as kube-apiserver reads it"),
]


@pytest.mark.parametrize(("document", "operations", "result"), RFC6902_APPENDIX_A)
def test_json_patch_rfc6902_appendix_a(document: Any, operations: Any, result: Any) -> None:
    assert dump(patching.json_patch(document, operations)) == dump(result)


@pytest.mark.parametrize(
    ("document", "operations"),
    [
        pytest.param({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], id="A.9"),
        pytest.param(
            {"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], id="A.12"
        ),
        pytest.param(
            {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}], id="A.15"
        ),
        pytest.param({}, [{"op": "frobnicate", "path": "/a"}], id="unknown op"),
        pytest.param({}, [{"path": "/a", "value": 1}], id="missing op"),
        pytest.param({}, [{"op": "add", "value": 1}], id="missing path"),
        pytest.param({}, [{"op": "add", "path": "/a"}], id="add without value"),
        pytest.param({"a": 1}, [{"op": "test", "path": "/a"}], id="test without value"),
        pytest.param({"a": 1}, [{"op": "move", "path": "/b"}], id="move without from"),
        pytest.param({}, [{"op": "add", "path": "a", "value": 1}], id="path without slash"),
        pytest.param({"a": 1}, [{"op": "remove", "path": "/b"}], id="remove a missing key"),
        pytest.param({"a": 1}, [{"op": "replace", "path": "/b", "value": 2}], id="replace missing"),
        pytest.param(
            {"a": [1]}, [{"op": "replace", "path": "/a/1", "value": 2}], id="index past end"
        ),
        pytest.param({"a": [1]}, [{"op": "add", "path": "/a/2", "value": 2}], id="add past end"),
        pytest.param({"a": [1]}, [{"op": "remove", "path": "/a/-"}], id="remove dash"),
        pytest.param({"a": [1, 2]}, [{"op": "remove", "path": "/a/01"}], id="leading zero"),
        pytest.param({"a": [1, 2]}, [{"op": "remove", "path": "/a/-1"}], id="negative index"),
        pytest.param({"a": 1}, [{"op": "test", "path": "/a", "value": True}], id="true is not 1"),
        pytest.param({"a": None}, [{"op": "test", "path": "/b", "value": None}], id="test missing"),
        pytest.param(
            {"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/c"}], id="into child"
        ),
        pytest.param({"a": 1}, [{"op": "remove", "path": ""}], id="remove the root"),
        pytest.param({"a": 1}, [{"op": "test", "path": "/~2", "value": 1}], id="bad escape"),
        pytest.param({"a": "s"}, [{"op": "add", "path": "/a/b", "value": 1}], id="into a string"),
        pytest.param(
            {"a": 1},
            [{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/c"}],
            id="second operation fails",
        ),
    ],
)
def test_json_patch_that_cannot_apply_is_422_as_kube_apiserver_answers(
    document: Any, operations: list[Any]
) -> None:
    before = copy.deepcopy(document)
    with pytest.raises(errors.Invalid) as caught:
        patching.json_patch(document, operations)
    status = caught.value.status()
    assert (status["code"], status["reason"]) == (422, "Invalid")
    assert status["message"] == patching.REJECTED
    assert isinstance(caught.value.__cause__, patching.PatchApplyError)
    assert dump(document) == dump(before)


@pytest.mark.parametrize(
    ("operations", "message"),
    [
        ({"op": "add", "path": "/a", "value": 1}, "cannot unmarshal object into Go value"),
        ("add", "cannot unmarshal string into Go value of type jsonpatch.Patch"),
        ([1], "cannot unmarshal number into Go value of type jsonpatch.Operation"),
        ([{"op": 1, "path": "/a"}], "jsonPatchOp.op of type string"),
        ([{"op": "add", "path": ["a"], "value": 1}], "jsonPatchOp.path of type string"),
        ([{"op": "move", "path": "/a", "from": 0}], "jsonPatchOp.from of type string"),
    ],
)
def test_malformed_json_patch_is_bad_request(operations: Any, message: str) -> None:
    with pytest.raises(errors.BadRequest, match=message):
        patching.json_patch({"a": 0}, operations)


def test_json_patch_of_more_than_10000_operations_is_too_large() -> None:
    operations = [{"op": "test", "path": "", "value": {}}] * 10_001
    with pytest.raises(errors.RequestEntityTooLarge, match="got 10001"):
        patching.json_patch({}, operations)
    assert patching.json_patch({}, operations[:10_000]) == {}


def test_python_client_list_patch_on_a_deployment() -> None:
    deployment = {"spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "x"}}}}}
    result = patching.json_patch(
        deployment,
        [
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/spec/template/metadata/labels/tier", "value": "web"},
        ],
    )
    assert result == {
        "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "x", "tier": "web"}}}}
    }
    assert deployment["spec"]["replicas"] == 1


# --- Strategic merge patch on the Kubernetes types ------------------------------------------


def make_pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web", "tier": "front"},
            "finalizers": ["a.io/x", "b.io/y"],
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "app:1",
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                },
                {"name": "sidecar", "image": "side:1"},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "tolerations": [{"key": "k1", "operator": "Exists"}],
            "nodeSelector": {"disk": "ssd"},
            "virtualMachine": {
                "name": "vm",
                "image": "cirros",
                "keyPairName": "key",
                "resources": {"limits": {"cpu": "1"}},
            },
            "nics": [{"name": "eth0", "subnetName": "a"}],
        },
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "PodScheduled", "status": "True"},
            ]
        },
    }


def at(value: Any, *path: str | int) -> Any:
    for step in path:
        value = value[step]
    return value


APP = make_pod()["spec"]["containers"][0]
SIDECAR = make_pod()["spec"]["containers"][1]

POD_CASES = [
    pytest.param(
        {"spec": {"containers": [{"name": "sidecar", "image": "side:2"}]}},
        ("spec", "containers"),
        [APP, {"name": "sidecar", "image": "side:2"}],
        id="update the image of one container",
    ),
    pytest.param(
        {"spec": {"containers": [{"name": "new", "image": "new:1"}]}},
        ("spec", "containers"),
        [{"name": "new", "image": "new:1"}, APP, SIDECAR],
        # kube-apiserver puts an item a patch adds ahead of the server's items that follow it.
        id="add a container without an order puts it first",
    ),
    pytest.param(
        {
            "spec": {
                "$setElementOrder/containers": [
                    {"name": "app"},
                    {"name": "sidecar"},
                    {"name": "new"},
                ],
                "containers": [{"name": "new", "image": "new:1"}],
            }
        },
        ("spec", "containers"),
        [APP, SIDECAR, {"name": "new", "image": "new:1"}],
        id="add a container in the order given",
    ),
    pytest.param(
        {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}},
        ("spec", "containers"),
        [APP],
        id="delete a container",
    ),
    pytest.param(
        {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]}},
        ("spec", "containers"),
        [SIDECAR, APP],
        id="reorder containers",
    ),
    pytest.param(
        {"spec": {"containers": [{"$patch": "replace"}, {"name": "solo", "image": "solo:1"}]}},
        ("spec", "containers"),
        [{"name": "solo", "image": "solo:1"}],
        id="replace the containers",
    ),
    pytest.param(
        {
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                    }
                ]
            }
        },
        ("spec", "containers", 0, "env"),
        [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
        id="env merged by name",
    ),
    pytest.param(
        {
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "$setElementOrder/env": [{"name": "C"}, {"name": "B"}],
                        "env": [{"name": "C", "value": "4"}, {"name": "A", "$patch": "delete"}],
                    }
                ]
            }
        },
        ("spec", "containers", 0, "env"),
        [{"name": "C", "value": "4"}, {"name": "B", "value": "2"}],
        id="env added, deleted and ordered",
    ),
    pytest.param(
        {"spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": None}]}]}},
        ("spec", "containers", 0, "env"),
        [{"name": "A"}, {"name": "B", "value": "2"}],
        id="null removes a field of a list item",
    ),
    pytest.param(
        {
            "spec": {
                "containers": [{"name": "app", "ports": [{"containerPort": 80, "name": "http"}]}]
            }
        },
        ("spec", "containers", 0, "ports"),
        [{"containerPort": 80, "protocol": "TCP", "name": "http"}],
        id="ports merged by containerPort",
    ),
    pytest.param(
        {
            "spec": {
                "containers": [
                    {"name": "app", "volumeMounts": [{"mountPath": "/data", "readOnly": True}]}
                ]
            }
        },
        ("spec", "containers", 0, "volumeMounts"),
        [{"name": "data", "mountPath": "/data", "readOnly": True}],
        id="volumeMounts merged by mountPath",
    ),
    pytest.param(
        {
            "spec": {
                "volumes": [
                    {
                        "$retainKeys": ["configMap", "name"],
                        "name": "data",
                        "configMap": {"name": "c"},
                    }
                ]
            }
        },
        ("spec", "volumes"),
        [{"name": "data", "configMap": {"name": "c"}}],
        id="volume source switched with retainKeys",
    ),
    pytest.param(
        {"spec": {"tolerations": [{"key": "k2", "operator": "Exists"}]}},
        ("spec", "tolerations"),
        [{"key": "k2", "operator": "Exists"}],
        id="tolerations have no merge key and are replaced",
    ),
    pytest.param(
        {"spec": {"nodeSelector": {"disk": None, "zone": "a"}}},
        ("spec", "nodeSelector"),
        {"zone": "a"},
        id="maps merge and null deletes",
    ),
    pytest.param(
        {"spec": {"nodeSelector": {"$patch": "delete"}}},
        ("spec", "nodeSelector"),
        {},
        id="delete a map",
    ),
    pytest.param(
        {"metadata": {"labels": {"tier": None, "version": "2"}}},
        ("metadata", "labels"),
        {"app": "web", "version": "2"},
        id="labels: null deletes one",
    ),
    pytest.param(
        {"metadata": {"labels": {"$patch": "replace", "only": "this"}}},
        ("metadata", "labels"),
        {"only": "this"},
        id="labels replaced",
    ),
    pytest.param(
        {"metadata": {"labels": {"$patch": "merge", "more": "x"}}},
        ("metadata", "labels"),
        {"app": "web", "tier": "front", "more": "x"},
        id="explicit merge directive",
    ),
    pytest.param(
        {"metadata": {"finalizers": ["c.io/z"]}},
        ("metadata", "finalizers"),
        ["c.io/z", "a.io/x", "b.io/y"],
        id="finalizers union",
    ),
    pytest.param(
        {"metadata": {"finalizers": ["b.io/y", "c.io/z", "a.io/x"]}},
        ("metadata", "finalizers"),
        ["b.io/y", "c.io/z", "a.io/x"],
        id="finalizers union in the patch's order",
    ),
    pytest.param(
        {
            "metadata": {
                "$setElementOrder/finalizers": ["a.io/x", "b.io/y", "c.io/z"],
                "finalizers": ["c.io/z"],
            }
        },
        ("metadata", "finalizers"),
        ["a.io/x", "b.io/y", "c.io/z"],
        id="finalizers union in the order given",
    ),
    pytest.param(
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/x", "nope"]}},
        ("metadata", "finalizers"),
        ["b.io/y"],
        id="delete from finalizers",
    ),
    pytest.param(
        {
            "metadata": {
                "$setElementOrder/finalizers": ["b.io/y", "c.io/z"],
                "$deleteFromPrimitiveList/finalizers": ["a.io/x"],
                "finalizers": ["c.io/z"],
            }
        },
        ("metadata", "finalizers"),
        ["b.io/y", "c.io/z"],
        id="finalizers as kubectl apply sends them",
    ),
    pytest.param(
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        ("status", "conditions"),
        [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
        id="conditions merged by type",
    ),
    pytest.param(
        {
            "spec": {
                "virtualMachine": {
                    "image": "ubuntu",
                    "keyPairName": None,
                    "resources": {"limits": {"memory": "1Gi"}},
                }
            }
        },
        ("spec", "virtualMachine"),
        {"name": "vm", "image": "ubuntu", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
        id="Arktos virtualMachine merges as a map",
    ),
    pytest.param(
        {
            "spec": {
                "nics": [{"name": "eth0", "ip": "10.0.0.5"}, {"name": "eth1", "subnetName": "b"}]
            }
        },
        ("spec", "nics"),
        [
            {"name": "eth0", "subnetName": "a", "ip": "10.0.0.5"},
            {"name": "eth1", "subnetName": "b"},
        ],
        id="Arktos nics merge by name",
    ),
    pytest.param(
        {"spec": {"vpc": "vpc-1"}, "metadata": {"tenant": "t1", "hashKey": 42}},
        ("metadata", "hashKey"),
        42,
        id="Arktos scalar fields",
    ),
    pytest.param(
        {"metadata": {"annotations": {"a": "1", "b": None, "c": {"$patch": "delete"}}}},
        ("metadata", "annotations"),
        {"a": "1", "c": {}},
        id="a new value keeps neither nulls nor directives",
    ),
    pytest.param(
        {"spec": {"containers": [{"name": "app", "args": ["--x"]}]}},
        ("spec", "containers", 0, "args"),
        ["--x"],
        id="a new list in a list item",
    ),
    pytest.param(
        {"spec": {"unknownThing": {"a": [1]}, "containers": [{"name": "app", "extra": {"b": 1}}]}},
        ("spec", "unknownThing"),
        {"a": [1]},
        id="fields outside the schema merge like merge patch",
    ),
]


@pytest.mark.parametrize(("patch", "path", "expected"), POD_CASES)
def test_strategic_merge_patch_on_a_pod(
    patch: dict[str, Any], path: tuple[str | int, ...], expected: Any
) -> None:
    pod = make_pod()
    before = copy.deepcopy(pod), copy.deepcopy(patch)
    result = patching.strategic_merge_patch(pod, patch, POD)
    assert dump(at(result, *path)) == dump(expected)
    assert (pod, patch) == before
    assert result["metadata"]["name"] == "web"


def test_strategic_merge_patch_leaves_other_fields_alone() -> None:
    pod = make_pod()
    result = patching.strategic_merge_patch(pod, {"spec": {"vpc": "v"}}, POD)
    expected = make_pod()
    expected["spec"]["vpc"] = "v"
    assert dump(result) == dump(expected)


def test_strategic_merge_patch_on_unknown_fields_merges_maps_and_replaces_lists() -> None:
    pod = make_pod()
    pod["spec"]["extra"] = {"keep": 1, "drop": 2, "items": [{"name": "a"}, {"name": "b"}]}
    patch = {"spec": {"extra": {"drop": None, "items": [{"name": "c"}]}}}
    result = patching.strategic_merge_patch(pod, patch, POD)
    assert result["spec"]["extra"] == {"keep": 1, "items": [{"name": "c"}]}


def make_deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:1",
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        },
                        {"name": "proxy", "image": "proxy:1"},
                    ]
                },
            },
        },
    }


@pytest.mark.parametrize(
    "strategy_patch",
    [
        {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None},
        {"$retainKeys": ["type"], "type": "Recreate"},
    ],
)
def test_retain_keys_on_a_deployment_strategy(strategy_patch: dict[str, Any]) -> None:
    result = patching.strategic_merge_patch(
        make_deployment(), {"spec": {"strategy": strategy_patch}}, DEPLOYMENT
    )
    assert result["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_must_list_every_field_the_patch_sets() -> None:
    patch = {"spec": {"strategy": {"$retainKeys": ["rollingUpdate"], "type": "Recreate"}}}
    with pytest.raises(errors.BadRequest, match="invalid patch format of retainKeys"):
        patching.strategic_merge_patch(make_deployment(), patch, DEPLOYMENT)


def test_kubectl_apply_patch_on_a_deployment() -> None:
    """The three-way patch kubectl apply sends: image changed, env B deleted, env C added.

    The `proxy` container was injected on the server; the patch keeps it where it was.
    """
    last_applied = '{"apiVersion":"apps/v1","kind":"Deployment"}\n'
    patch = {
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied}
        },
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}],
                    "containers": [
                        {
                            "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                            "env": [{"name": "C", "value": "3"}, {"name": "B", "$patch": "delete"}],
                            "image": "app:2",
                            "name": "app",
                        }
                    ],
                }
            }
        },
    }
    result = patching.strategic_merge_patch(make_deployment(), patch, DEPLOYMENT)
    assert result["spec"]["template"]["spec"]["containers"] == [
        {
            "name": "app",
            "image": "app:2",
            "env": [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}],
        },
        {"name": "proxy", "image": "proxy:1"},
    ]
    assert result["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/last-applied-configuration": last_applied
    }


@pytest.mark.parametrize(
    "patch",
    [
        {"spec": {"replicas": 5}},  # kubectl scale, and the Python client's patch_namespaced_*
        {"spec": {"replicas": 5}, "metadata": {"labels": {"app": "web"}}},
    ],
)
def test_scale_patch_on_a_deployment(patch: dict[str, Any]) -> None:
    result = patching.strategic_merge_patch(make_deployment(), patch, DEPLOYMENT)
    expected = make_deployment()
    expected["spec"]["replicas"] = 5
    assert dump(result) == dump(expected)


def test_replace_strategy_replaces_a_selector() -> None:
    pdb = {"spec": {"minAvailable": 1, "selector": {"matchLabels": {"a": "1"}}}}
    patch = {"spec": {"selector": {"matchLabels": {"b": "2"}}}}
    result = patching.strategic_merge_patch(pdb, patch, "io.k8s.api.policy.v1.PodDisruptionBudget")
    assert result == {"spec": {"minAvailable": 1, "selector": {"matchLabels": {"b": "2"}}}}


def test_strategic_merge_patch_without_a_schema_is_unsupported_media_type() -> None:
    with pytest.raises(errors.UnsupportedMediaType) as caught:
        patching.strategic_merge_patch({"spec": {}}, {"spec": {"a": 1}}, None)
    assert caught.value.code == 415
    assert caught.value.message == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )


def test_strategic_merge_patch_of_an_unknown_definition_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        patching.strategic_merge_patch({}, {}, "io.example.v1.Nothing")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ([{"op": "add"}], "cannot unmarshal array into Go value of type map"),
        ({"spec": {"containers": [{"image": "x"}]}}, "does not contain declared merge key: name"),
        ({"spec": {"containers": [{"$patch": "delete"}]}}, "does not contain declared merge key"),
        ({"spec": {"containers": [{"name": "app", "$patch": "drop"}]}}, "unknown patch type: drop"),
        ({"metadata": {"labels": {"$patch": "drop"}}}, "unknown patch type: drop"),
        ({"spec": {"$setElementOrder/containers": {"name": "app"}}}, "setElementOrder list"),
        ({"spec": {"$setElementOrdercontainers": []}}, "setElementOrder list"),
        ({"metadata": {"$deleteFromPrimitiveList": ["a"]}}, "invalid patch format of primitive"),
        ({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}, "primitive list"),
        ({"metadata": {"labels": {"$retainKeys": "app"}}}, "invalid patch format of retainKeys"),
        ({"metadata": {"finalizers": [{"name": "x"}]}}, "list element types are not identical"),
        (
            {
                "spec": {
                    "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                    "containers": [{"name": "app"}, {"name": "sidecar"}],
                }
            },
            "doesn't match",
        ),
        (
            {
                "spec": {
                    "$setElementOrder/containers": [{"image": "x"}],
                    "containers": [{"name": "a"}],
                }
            },
            "does not contain declared merge key",
        ),
    ],
)
def test_malformed_strategic_merge_patch_is_bad_request(patch: Any, message: str) -> None:
    with pytest.raises(errors.BadRequest, match=message):
        patching.strategic_merge_patch(make_pod(), patch, POD)


def test_a_list_of_lists_in_a_merging_list_is_422() -> None:
    with pytest.raises(errors.Invalid) as caught:
        patching.strategic_merge_patch(make_pod(), {"metadata": {"finalizers": [["x"]]}}, POD)
    assert caught.value.status()["code"] == 422
    assert caught.value.message == patching.REJECTED


def test_null_strategic_merge_patch_changes_nothing() -> None:
    assert dump(patching.strategic_merge_patch(make_pod(), None, POD)) == dump(make_pod())


# --- Strategic merge patch: kube-apiserver's own cases, on a test schema ---------------------


def _merging_list(key: str = "name", strategy: str = "merge") -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"$ref": "#/$defs/MergeItem"},
        "x-kubernetes-patch-strategy": strategy,
        "x-kubernetes-patch-merge-key": key,
    }


_FIELDS: dict[str, Any] = {
    "name": {"type": "string"},
    "value": {"type": "string"},
    "other": {"type": "string"},
    "mergingList": _merging_list(),
    "nonMergingList": {"type": "array", "items": {"$ref": "#/$defs/MergeItem"}},
    "mergingIntList": {
        "type": "array",
        "items": {"type": "integer"},
        "x-kubernetes-patch-strategy": "merge",
    },
    "nonMergingIntList": {"type": "array", "items": {"type": "integer"}},
    "simpleMap": {"type": "object", "additionalProperties": {"type": "string"}},
}

TEST_DEFS: dict[str, Any] = {
    "MergeItem": {
        "type": "object",
        "properties": {
            **_FIELDS,
            "replacingItem": {"type": "object", "x-kubernetes-patch-strategy": "replace"},
            "retainKeysMap": {
                "$ref": "#/$defs/RetainKeysMergeItem",
                "x-kubernetes-patch-strategy": "retainKeys",
            },
            "retainKeysMergingList": _merging_list(strategy="merge,retainKeys"),
        },
    },
    "RetainKeysMergeItem": {"type": "object", "properties": _FIELDS},
}


def items(*names: Any) -> list[dict[str, Any]]:
    """Merging-list items: `1` is `{"name": 1}`, `(1, {"value": "a"})` adds fields."""
    result = []
    for entry in names:
        name, extra = entry if isinstance(entry, tuple) else (entry, {})
        result.append({"name": name, **extra})
    return result


def delete(name: Any) -> dict[str, Any]:
    return {"name": name, "$patch": "delete"}


ORDER = "$setElementOrder/mergingList"
INT_ORDER = "$setElementOrder/mergingIntList"

MERGE_ITEM_CASES = [
    pytest.param(
        {"mergingList": items(1, (2, {"value": "b"}), 3)},
        {"mergingList": items((3, {"value": "c"}), (1, {"value": "a"}))},
        {"mergingList": items((2, {"value": "b"}), (3, {"value": "c"}), (1, {"value": "a"}))},
        id="patch order wins for the items it names",
    ),
    pytest.param(
        {"mergingIntList": [1, 2, 3]},
        {"mergingIntList": [3, 1]},
        {"mergingIntList": [2, 3, 1]},
        id="patch order wins in a primitive list",
    ),
    pytest.param(
        {"mergingIntList": [1, 2]},
        {"mergingIntList": [2, 3]},
        {"mergingIntList": [1, 2, 3]},
        id="primitive list union keeps one of each",
    ),
    pytest.param(
        {"mergingList": items(1, (2, {"value": "b"}), (4, {"value": "c"}))},
        {ORDER: items(2, 3), "mergingList": [*items(3), delete(1)]},
        {"mergingList": items((2, {"value": "b"}), (4, {"value": "c"}), 3)},
        id="a server-only item stays between when one item is deleted and one added",
    ),
    pytest.param(
        {"mergingList": items((1, {"other": "a"}), (4, {"other": "c"}))},
        {ORDER: items(2, 3), "mergingList": [*items(2, 3), delete(1)]},
        {"mergingList": items((4, {"other": "c"}), 2, 3)},
        id="a server-only item stays first when the deleted item was its neighbour",
    ),
    pytest.param(
        {"mergingList": items((1, {"other": "a"}), 2, 9, 3, 4)},
        {ORDER: items(2, 1, 4, 3)},
        {"mergingList": items(2, (1, {"other": "a"}), 9, 4, 3)},
        id="reorder around a server-only item",
    ),
    pytest.param(
        {"mergingList": items((1, {"other": "a"}), 2, 7, 9, 8, 3, 4)},
        {ORDER: items(2, 1, 4, 3)},
        {"mergingList": items(2, (1, {"other": "a"}), 7, 9, 8, 4, 3)},
        id="reorder around server-only items",
    ),
    pytest.param(
        {"mergingList": items(1, 3)},
        {ORDER: items(3, 2, 1), "mergingList": items((3, {"value": "3"}), (1, {"value": "1"}))},
        {"mergingList": items((3, {"value": "3"}), (1, {"value": "1"}))},
        id="the order may name items the list does not have",
    ),
    pytest.param(
        {"mergingList": items((1, {"other": "a"}), (2, {"value": "2", "other": "b"}))},
        {ORDER: items(4, 1, 2, 3), "mergingList": items((4, {"value": "4"}), (3, {"value": "3"}))},
        {
            "mergingList": items(
                (4, {"value": "4"}),
                (1, {"other": "a"}),
                (2, {"value": "2", "other": "b"}),
                (3, {"value": "3"}),
            )
        },
        id="add items in the order given",
    ),
    pytest.param(
        {"mergingIntList": [1, 4, 2]},
        {INT_ORDER: [3, 1, 2], "mergingIntList": [3]},
        {"mergingIntList": [3, 1, 4, 2]},
        id="add a primitive in the order given, around a server-only one",
    ),
    pytest.param(
        {"mergingIntList": [1, 2, 3]},
        {
            INT_ORDER: [4, 2, 1],
            "mergingIntList": [4],
            "$deleteFromPrimitiveList/mergingIntList": [3],
        },
        {"mergingIntList": [4, 2, 1]},
        id="add, delete and order primitives",
    ),
    pytest.param(
        {"mergingIntList": [1, 2, 3, 3, 4]},
        {INT_ORDER: [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]},
        {"mergingIntList": [1, 2, 4]},
        id="delete every copy of a primitive",
    ),
    pytest.param(
        {"mergingList": items(1, 1, (2, {"value": "a"}), 3, 3)},
        {"mergingList": [delete(1), delete(3)]},
        {"mergingList": items((2, {"value": "a"}))},
        id="delete every item with the merge key",
    ),
    pytest.param(
        {"mergingList": items(1, 2)},
        {"mergingList": [{"$patch": "replace"}]},
        {"mergingList": []},
        id="replace a list with nothing",
    ),
    pytest.param(
        {"mergingList": []},
        {"mergingList": []},
        {"mergingList": []},
        id="merge empty lists",
    ),
    pytest.param(
        {"name": 1, "value": 1},
        {"other": "a", "$patch": "replace"},
        {"other": "a"},
        id="replace the whole object",
    ),
    pytest.param(
        {"replacingItem": {"a": 1, "b": 2}},
        {"replacingItem": {"c": 3}},
        {"replacingItem": {"c": 3}},
        id="replace strategy on a field",
    ),
    pytest.param(
        {"nonMergingIntList": [1, 2]},
        {"nonMergingIntList": [2, 3]},
        {"nonMergingIntList": [2, 3]},
        id="a list without a strategy is replaced",
    ),
    pytest.param(
        {
            "mergingList": items(
                (1, {"other": "a", "nonMergingList": items(1, (2, {"value": "2"}))}),
                (2, {"other": "b"}),
            )
        },
        {
            ORDER: items(1, 2),
            "mergingList": [{"name": 1, "nonMergingList": items((1, {"value": "1"}))}],
        },
        {
            "mergingList": items(
                (1, {"other": "a", "nonMergingList": items((1, {"value": "1"}))}),
                (2, {"other": "b"}),
            )
        },
        id="a list without a strategy inside a merging list is replaced",
    ),
    pytest.param(
        {
            "mergingList": items(
                (1, {"other": "a", "mergingList": items((2, {"value": "2", "other": "d"}))}),
                (2, {"other": "b"}),
            )
        },
        {
            ORDER: items(1, 2),
            "mergingList": [
                {ORDER: items(2, 1), "name": 1, "mergingList": items((1, {"value": "1"}))}
            ],
        },
        {
            "mergingList": items(
                (
                    1,
                    {
                        "other": "a",
                        "mergingList": items(
                            (2, {"value": "2", "other": "d"}), (1, {"value": "1"})
                        ),
                    },
                ),
                (2, {"other": "b"}),
            )
        },
        id="nested merging lists with their own order",
    ),
    pytest.param(
        {"retainKeysMap": {"name": "foo", "value": "bar", "other": "a"}},
        {"retainKeysMap": {"$retainKeys": ["name", "value"]}},
        {"retainKeysMap": {"name": "foo", "value": "bar"}},
        id="retainKeys clears the fields it does not list",
    ),
    pytest.param(
        {"retainKeysMap": {"name": "type1", "value": "foo"}},
        {"retainKeysMap": {"$retainKeys": ["name", "other"], "name": "type2", "other": "bar"}},
        {"retainKeysMap": {"name": "type2", "other": "bar"}},
        id="retainKeys switches a union",
    ),
    pytest.param(
        {"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 3]}},
        {
            "retainKeysMap": {
                INT_ORDER: [1, 2, 4],
                "$retainKeys": ["mergingIntList", "name"],
                "mergingIntList": [4],
            }
        },
        {"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 4, 3]}},
        id="retainKeys with an ordered primitive list inside",
    ),
    pytest.param(
        {"retainKeysMap": {"name": "foo", "mergingList": items("a", "b", "x")}},
        {
            "retainKeysMap": {
                "$retainKeys": ["mergingList", "name"],
                ORDER: items("a"),
                "mergingList": [delete("b")],
            }
        },
        {"retainKeysMap": {"name": "foo", "mergingList": items("a", "x")}},
        id="retainKeys with a deletion from a merging list inside",
    ),
    pytest.param(
        {"retainKeysMergingList": items("bar", ("foo", {"value": "a", "other": "x"}))},
        {
            "$setElementOrder/retainKeysMergingList": items("bar", "foo"),
            "retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "foo"}],
        },
        {"retainKeysMergingList": items("bar", ("foo", {"value": "a"}))},
        id="retainKeys in the items of a merging list",
    ),
    pytest.param(
        {"simpleMap": {"key1": "1", "key2": "1"}},
        {"simpleMap": {"$patch": "delete"}},
        {"simpleMap": {}},
        id="delete a map",
    ),
]


@pytest.mark.parametrize(("current", "patch", "result"), MERGE_ITEM_CASES)
def test_strategic_merge_patch_kube_apiserver_cases(
    current: dict[str, Any], patch: dict[str, Any], result: dict[str, Any]
) -> None:
    before = copy.deepcopy((current, patch))
    assert dump(
        patching.strategic_merge_patch(current, patch, "MergeItem", defs=TEST_DEFS)
    ) == dump(result)
    assert dump((current, patch)) == dump(before)


@pytest.mark.parametrize(
    ("current", "patch", "message"),
    [
        (
            {"mergingList": items(1, 3, 2)},
            {ORDER: items(1, 2, 3), "mergingList": items((3, {"value": "3"}), (1, {"value": "1"}))},
            "doesn't match",
        ),
        (
            {"mergingIntList": [1, 3, 2]},
            {INT_ORDER: [1, 2, 3], "mergingIntList": [3, 1]},
            "doesn't match",
        ),
        (
            {"mergingList": items((1, {"value": "a"}))},
            {"mergingList": [{"value": "b"}]},
            "does not contain declared merge key",
        ),
        (
            {"retainKeysMap": {"name": "foo"}},
            {"retainKeysMap": {"$retainKeys": ["name"], "value": "x"}},
            "invalid patch format of retainKeys",
        ),
    ],
)
def test_strategic_merge_patch_kube_apiserver_error_cases(
    current: dict[str, Any], patch: dict[str, Any], message: str
) -> None:
    with pytest.raises(errors.BadRequest, match=message):
        patching.strategic_merge_patch(current, patch, "MergeItem", defs=TEST_DEFS)


# --- Properties -----------------------------------------------------------------------------

KEYS = st.text(alphabet="ab/~", max_size=3)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-1000, 1000)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=3)
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=20,
)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=5)


def reference_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 section 2, as written."""
    if isinstance(patch, dict):
        result = dict(target) if isinstance(target, dict) else {}
        for name, value in patch.items():
            if value is None:
                result.pop(name, None)
            else:
                result[name] = reference_merge_patch(result.get(name), value)
        return result
    return patch


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def locations(document: Any, pointer: str = "") -> Iterator[tuple[str, Any]]:
    """Every (JSON pointer, value) in a document, the root included."""
    yield pointer, document
    if isinstance(document, dict):
        for key, value in document.items():
            yield from locations(value, f"{pointer}/{escape(key)}")
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from locations(value, f"{pointer}/{index}")


@given(target=JSON, patch=JSON)
def test_merge_patch_agrees_with_the_rfc_pseudocode(target: Any, patch: Any) -> None:
    before = dump((target, patch))
    assert dump(patching.merge_patch(target, patch)) == dump(reference_merge_patch(target, patch))
    assert dump((target, patch)) == before


@given(document=JSON, data=st.data())
def test_json_patch_test_succeeds_on_any_existing_path(document: Any, data: st.DataObject) -> None:
    pointer, value = data.draw(st.sampled_from(list(locations(document))))
    operations = [{"op": "test", "path": pointer, "value": copy.deepcopy(value)}]
    assert dump(patching.json_patch(document, operations)) == dump(document)


@given(document=JSON, value=JSON, data=st.data())
def test_json_patch_add_then_remove_restores_the_document(
    document: Any, value: Any, data: st.DataObject
) -> None:
    containers = [(p, v) for p, v in locations(document) if isinstance(v, dict | list)]
    assume(containers)
    pointer, container = data.draw(st.sampled_from(containers))
    if isinstance(container, dict):
        key = data.draw(KEYS.filter(lambda k: k not in container))
        added_at = removed_at = f"{pointer}/{escape(key)}"
    else:
        index = data.draw(st.integers(0, len(container)))
        dash = index == len(container) and data.draw(st.booleans())
        added_at = f"{pointer}/{'-' if dash else index}"
        removed_at = f"{pointer}/{index}"
    before = dump(document)
    added = patching.json_patch(document, [{"op": "add", "path": added_at, "value": value}])
    assert dump(dict(locations(added))[removed_at]) == dump(value)
    restored = patching.json_patch(added, [{"op": "remove", "path": removed_at}])
    assert dump(restored) == dump(document) == before


POINTERS = st.lists(KEYS | st.sampled_from(["0", "1", "-"]), max_size=3).map(
    lambda tokens: "".join("/" + escape(t) if t not in ("0", "1", "-") else "/" + t for t in tokens)
)
OPERATIONS = st.lists(
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test"]),
            "path": POINTERS,
        },
        optional={"from": POINTERS, "value": JSON},
    ),
    max_size=4,
)


@given(document=JSON, operations=OPERATIONS)
def test_json_patch_never_changes_its_inputs(document: Any, operations: list[Any]) -> None:
    before = dump((document, operations))
    try:
        result = patching.json_patch(document, operations)
    except errors.StatusError:
        pass
    else:
        if isinstance(result, dict | list) and result:
            # The result shares nothing mutable with the inputs.
            mutate(result)
    assert dump((document, operations)) == before


def mutate(value: Any) -> None:
    for _pointer, inner in list(locations(value)):
        if isinstance(inner, dict):
            inner["__mutated__"] = True
        elif isinstance(inner, list):
            inner.append("__mutated__")


SMP_KEYS = st.sampled_from(
    [
        "name",
        "value",
        "mergingList",
        "mergingIntList",
        "nonMergingList",
        "simpleMap",
        "retainKeysMap",
        "$patch",
        "$retainKeys",
        "$setElementOrder/mergingList",
        "$setElementOrder/mergingIntList",
        "$deleteFromPrimitiveList/mergingIntList",
    ]
)
SMP_VALUES = st.recursive(
    SCALARS | st.sampled_from(["replace", "delete", "merge"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(SMP_KEYS, children, max_size=4)
    ),
    max_leaves=16,
)
SMP_OBJECTS = st.dictionaries(SMP_KEYS, SMP_VALUES, max_size=5)


@given(target=SMP_OBJECTS, patch=SMP_OBJECTS)
def test_strategic_merge_patch_never_changes_its_inputs(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    """Whatever the patch, the inputs stay as they were and errors are `Status` errors."""
    before = dump((target, patch))
    for definition, defs in ((POD, None), ("MergeItem", TEST_DEFS)):
        try:
            result = patching.strategic_merge_patch(target, patch, definition, defs=defs)
        except errors.StatusError:
            continue
        mutate(result)
        assert dump((target, patch)) == before


PLAIN_KEYS = st.text(alphabet="abc", max_size=2)
FLAT_LISTS = st.lists(SCALARS, max_size=3)
PLAIN_PATCH_VALUES = st.recursive(
    SCALARS | FLAT_LISTS,
    lambda children: st.dictionaries(PLAIN_KEYS, children, max_size=3),
    max_leaves=12,
)


@given(target=OBJECTS, patch=st.dictionaries(PLAIN_KEYS, PLAIN_PATCH_VALUES, max_size=4))
def test_strategic_merge_patch_without_a_schema_is_merge_patch(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    """Where the schema says nothing, maps merge and lists are replaced: RFC 7386."""
    free: Mapping[str, Any] = {"Free": {"type": "object"}}
    assert dump(patching.strategic_merge_patch(target, patch, "Free", defs=free)) == dump(
        patching.merge_patch(target, patch)
    )
