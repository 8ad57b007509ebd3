"""Field managers: FieldsV1 field sets, ownership on update, and server-side apply."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from arktos_lite import api
from arktos_lite.api import _errors as errors, _managed as managed

Obj = dict[str, Any]

T0 = "2025-01-01T00:00:00Z"
T1 = "2025-01-01T00:00:01Z"
T2 = "2025-01-01T00:00:02Z"


def deployment(*, replicas: int | None = 1, labels: dict[str, str] | None = None) -> Obj:
    obj: Obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"} if labels is None else labels},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }
    if replicas is not None:
        obj["spec"]["replicas"] = replicas
    return obj


def configmap(**data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": data}


def applied(live: Obj | None, config: Obj, manager: str = "a", *, force: bool = False) -> Obj:
    return managed.apply(live, config, manager=manager, force=force, now=T0)


def owners(obj: Obj) -> dict[str, list[str]]:
    """Each entry (`manager/operation[/subresource]`) with the paths it owns."""
    found = {}
    for entry in managed.entries(obj):
        name = f"{entry.manager}/{entry.operation.value}"
        if entry.subresource:
            name += f"/{entry.subresource}"
        found[name] = entry.fields.rendered()
    return found


def containers(obj: Obj) -> list[Obj]:
    result: list[Obj] = obj["spec"]["template"]["spec"]["containers"]
    return result


# --- Field sets -----------------------------------------------------------------------------


def test_fields_of_a_deployment_are_kube_apiservers_fields_v1() -> None:
    config = deployment()
    containers(config)[0]["ports"] = [{"containerPort": 80}]
    containers(config)[0]["env"] = [{"name": "A", "value": "1"}]
    config["metadata"]["finalizers"] = ["x"]
    assert managed.fields_of(config).to_fields_v1() == {
        "f:metadata": {"f:finalizers": {'v:"x"': {}}, "f:labels": {"f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:containers": {
                        'k:{"name":"c"}': {
                            ".": {},
                            "f:env": {'k:{"name":"A"}': {".": {}, "f:name": {}, "f:value": {}}},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {
                                'k:{"containerPort":80,"protocol":"TCP"}': {
                                    ".": {},
                                    "f:containerPort": {},
                                }
                            },
                        }
                    }
                },
            },
        },
    }


def test_fields_v1_is_written_in_kube_apiservers_order() -> None:
    encoded = json.dumps(managed.fields_of(deployment()).to_fields_v1())
    assert encoded.index('"f:replicas"') < encoded.index('"f:selector"')
    item = managed.FieldSet.from_fields_v1({"f:z": {}, "f:a": {"f:y": {}, ".": {}, "f:b": {}}})
    assert json.dumps(item.to_fields_v1()) == (
        '{"f:a": {".": {}, "f:b": {}, "f:y": {}}, "f:z": {}}'
    )


def test_server_metadata_apiversion_and_kind_belong_to_nobody() -> None:
    config = deployment()
    config["metadata"].update(
        namespace="default", uid="u", resourceVersion="3", tenant="t", hashKey=7, generation=2
    )
    paths = managed.fields_of(config).rendered()
    assert not [p for p in paths if p.startswith((".apiVersion", ".kind"))]
    assert [p for p in paths if p.startswith(".metadata")] == [".metadata.labels.app"]


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        (("f:spec", "f:replicas"), ".spec.replicas"),
        (
            ("f:spec", "f:containers", 'k:{"name":"c"}', "f:image"),
            '.spec.containers[name="c"].image',
        ),
        (
            ("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}'),
            '.ports[containerPort=80,protocol="TCP"]',
        ),
        (("f:metadata", "f:finalizers", 'v:"x"'), '.metadata.finalizers[="x"]'),
        (("f:items", "i:3"), ".items[3]"),
    ],
)
def test_paths_render_as_kube_apiserver_prints_them(path: tuple[str, ...], rendered: str) -> None:
    assert managed.render_path(path) == rendered


def test_set_operations_follow_paths_not_subtrees() -> None:
    labels = managed.FieldSet.from_paths([("f:metadata", "f:labels")])
    app = managed.FieldSet.from_paths([("f:metadata", "f:labels", "f:app")])
    both = labels | app
    assert both.to_fields_v1() == {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}
    assert both - labels == app
    assert both - app == labels
    assert both & app == app
    assert not (labels & app)
    assert ("f:metadata", "f:labels") in both
    assert ("f:metadata",) not in both
    assert len(both) == 2


@pytest.mark.parametrize(
    "raw",
    [[], {"x": {}}, {"f:a": []}, {"f:a": {".": {"f:b": {}}}}, {"k:[1]": {}}, {"i:x": {}}],
)
def test_malformed_fields_v1_is_refused(raw: Any) -> None:
    with pytest.raises(ValueError, match=r"FieldsV1|path element|must map"):
        managed.FieldSet.from_fields_v1(raw)


def test_an_applied_list_item_without_its_key_is_a_bad_request() -> None:
    config = deployment()
    del containers(config)[0]["name"]
    with pytest.raises(errors.BadRequest) as raised:
        managed.fields_of(config)
    assert raised.value.message == (
        "failed to create typed patch object (apps/v1, Kind=Deployment): "
        ".spec.template.spec.containers: element 0: associative list with keys has an "
        'element that omits key field "name" (and doesn\'t have default value)'
    )


def test_two_applied_items_with_one_key_are_a_bad_request() -> None:
    config = deployment()
    containers(config).append({"name": "c", "image": "other"})
    with pytest.raises(errors.BadRequest, match=r'duplicate entries for key \[name="c"\]'):
        managed.fields_of(config)


# --- Random objects -------------------------------------------------------------------------

names = st.text("abcdefgh", min_size=1, max_size=4)
values = st.text("xyz01", max_size=3)
label_maps = st.dictionaries(names, values, max_size=4)


@st.composite
def pods(draw: st.DrawFn) -> Obj:
    def unique(items: list[Obj], key: Any) -> list[Obj]:
        seen: set[Any] = set()
        kept = []
        for item in items:
            if key(item) not in seen:
                seen.add(key(item))
                kept.append(item)
        return kept

    container_list = []
    for name in draw(st.lists(names, min_size=1, max_size=3, unique=True)):
        container: Obj = {"name": name, "image": draw(values)}
        ports = draw(
            st.lists(
                st.fixed_dictionaries(
                    {"containerPort": st.integers(1, 3)},
                    optional={"protocol": st.sampled_from(["TCP", "UDP"]), "name": names},
                ),
                max_size=3,
            )
        )
        if ports:
            container["ports"] = unique(
                ports, lambda p: (p["containerPort"], p.get("protocol", "TCP"))
            )
        env = draw(st.lists(st.fixed_dictionaries({"name": names, "value": values}), max_size=3))
        if env:
            container["env"] = unique(env, lambda e: e["name"])
        if draw(st.booleans()):
            container["args"] = draw(st.lists(values, max_size=3))
        if draw(st.booleans()):
            container["resources"] = {"limits": draw(st.dictionaries(names, values, max_size=2))}
        container_list.append(container)
    metadata: Obj = {"name": "p", "labels": draw(label_maps)}
    if draw(st.booleans()):
        metadata["annotations"] = draw(label_maps)
    if draw(st.booleans()):
        metadata["finalizers"] = draw(st.lists(names, max_size=3, unique=True))
    spec: Obj = {"containers": container_list}
    if draw(st.booleans()):
        spec["nodeSelector"] = draw(label_maps)
    if draw(st.booleans()):
        spec["terminationGracePeriodSeconds"] = draw(st.integers(0, 5))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def without_server_fields(obj: Obj) -> Obj:
    picked = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("name", "managedFields")}
    if meta:
        picked["metadata"] = meta
    else:
        picked.pop("metadata")
    return picked


@given(pods())
def test_field_sets_round_trip_through_fields_v1_and_paths(pod: Obj) -> None:
    fields = managed.fields_of(pod)
    encoded = json.loads(json.dumps(fields.to_fields_v1()))
    assert managed.FieldSet.from_fields_v1(encoded) == fields
    assert managed.FieldSet.from_paths(fields.paths()) == fields
    assert len(fields) == len(set(fields.rendered()))


@given(pods())
def test_an_objects_fields_pick_out_the_whole_object(pod: Obj) -> None:
    assert managed.extract(pod, managed.fields_of(pod)) == without_server_fields(pod)


@given(pods())
def test_applying_creates_the_object_and_owns_its_fields(pod: Obj) -> None:
    created = applied(None, pod)
    assert without_server_fields(created) == without_server_fields(pod)
    (entry,) = managed.entries(created)
    assert (entry.manager, entry.operation, entry.api_version) == ("a", "Apply", "v1")
    assert entry.fields == managed.fields_of(pod)


@given(pods(), pods())
@settings(max_examples=50)
def test_applying_twice_is_a_no_op(first: Obj, second: Obj) -> None:
    live = applied(applied(None, first), second)
    again = managed.apply(live, second, manager="a", force=False, now=T2)
    assert again == live


@given(pods(), label_maps, label_maps)
def test_labels_go_only_when_nobody_owns_them_any_more(
    pod: Obj, mine: dict[str, str], theirs: dict[str, str]
) -> None:
    pod["metadata"]["labels"] = {}
    mine_config = copy.deepcopy(pod)
    mine_config["metadata"]["labels"] = mine
    theirs_config = copy.deepcopy(pod)
    # Shared labels have the same value: no conflicts.
    theirs_config["metadata"]["labels"] = {k: mine.get(k, v) for k, v in theirs.items()}
    live = applied(applied(None, mine_config, "a"), theirs_config, "b")
    assert live["metadata"].get("labels", {}) == {**mine, **theirs_config["metadata"]["labels"]}
    dropped = copy.deepcopy(mine_config)
    dropped["metadata"]["labels"] = {}
    after = applied(live, dropped, "a")
    assert after["metadata"].get("labels", {}) == theirs_config["metadata"]["labels"]


# --- Apply ----------------------------------------------------------------------------------


def test_apply_creates_with_one_apply_entry() -> None:
    created = applied(None, deployment(), "kubectl")
    assert created["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": managed.fields_of(deployment()).to_fields_v1(),
        }
    ]


def test_applied_managed_fields_must_be_nil() -> None:
    config = deployment()
    config["metadata"]["managedFields"] = []
    with pytest.raises(errors.BadRequest, match=r"^metadata\.managedFields must be nil$"):
        applied(None, config)
    config["metadata"]["managedFields"] = None
    assert "managedFields" in applied(None, config)["metadata"]


def test_apply_changes_nothing_else_and_keeps_its_arguments() -> None:
    live = applied(None, deployment())
    live["spec"]["strategy"] = {"type": "RollingUpdate"}  # a default the server added
    before = copy.deepcopy(live)
    config = deployment(replicas=3)
    config_before = copy.deepcopy(config)
    result = applied(live, config)
    assert live == before
    assert config == config_before
    assert result["spec"]["replicas"] == 3
    assert result["spec"]["strategy"] == {"type": "RollingUpdate"}


def test_a_no_op_apply_keeps_the_entrys_time() -> None:
    live = applied(None, deployment())
    assert managed.apply(live, deployment(), manager="a", force=False, now=T2) == live
    changed = managed.apply(live, deployment(replicas=2), manager="a", force=False, now=T2)
    assert managed.entries(changed)[0].time == T2


def test_leaving_out_a_solely_owned_field_removes_it() -> None:
    live = applied(None, deployment(labels={"app": "web", "tier": "front"}))
    result = applied(live, deployment(replicas=None))
    assert "replicas" not in result["spec"]
    assert result["metadata"]["labels"] == {"app": "web"}
    assert ".spec.replicas" not in owners(result)["a/Apply"]


def test_leaving_out_a_shared_field_keeps_it() -> None:
    live = applied(None, deployment(replicas=2), "a")
    live = applied(live, deployment(replicas=2), "b")
    assert ".spec.replicas" in owners(live)["a/Apply"]
    assert ".spec.replicas" in owners(live)["b/Apply"]
    result = applied(live, deployment(replicas=None), "a")
    assert result["spec"]["replicas"] == 2
    assert ".spec.replicas" in owners(result)["b/Apply"]
    result = applied(result, deployment(replicas=None), "b")
    assert "replicas" not in result["spec"]


def test_a_field_an_updater_owns_stays_when_the_applier_drops_it() -> None:
    live = applied(None, deployment(labels={"app": "web"}))
    edited = copy.deepcopy(live)
    edited["metadata"]["labels"]["app"] = "shop"
    live = managed.update(live, edited, manager="kubectl-edit", now=T1)
    result = applied(live, deployment(labels={}), "a", force=True)
    assert result["metadata"]["labels"] == {"app": "shop"}


def test_conflicting_values_are_a_409_with_causes() -> None:
    live = applied(None, deployment(replicas=1), "kubectl")
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    live = managed.update(live, scaled, manager="kubectl-client-side-apply", now=T1)
    with pytest.raises(errors.Conflict) as raised:
        applied(live, deployment(replicas=3), "kubectl")
    error = raised.value
    assert error.code == 409
    assert error.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using '
        "apps/v1: .spec.replicas"
    )
    assert error.details == {
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
                "field": ".spec.replicas",
            }
        ]
    }


def test_conflicts_with_several_managers_are_listed_by_manager() -> None:
    live = applied(None, deployment(labels={"app": "web"}), "one")
    live = applied(live, deployment(labels={"app": "web", "x": "1"}), "two")
    with pytest.raises(errors.Conflict) as raised:
        applied(live, deployment(replicas=9, labels={"app": "shop", "x": "2"}), "three")
    assert raised.value.message == (
        'Apply failed with 5 conflicts: conflicts with "one":\n'
        "- .metadata.labels.app\n"
        "- .spec.replicas\n"
        'conflicts with "two":\n'
        "- .metadata.labels.app\n"
        "- .metadata.labels.x\n"
        "- .spec.replicas"
    )
    assert raised.value.details is not None
    assert [(c["message"], c["field"]) for c in raised.value.details["causes"]] == [
        ('conflict with "one"', ".metadata.labels.app"),
        ('conflict with "one"', ".spec.replicas"),
        ('conflict with "two"', ".metadata.labels.app"),
        ('conflict with "two"', ".metadata.labels.x"),
        ('conflict with "two"', ".spec.replicas"),
    ]


def test_the_same_value_is_no_conflict_but_shared_ownership() -> None:
    live = applied(None, deployment(replicas=2), "a")
    shared = applied(live, deployment(replicas=2), "b")
    assert shared["spec"] == live["spec"]
    assert ".spec.replicas" in owners(shared)["a/Apply"]
    assert ".spec.replicas" in owners(shared)["b/Apply"]


def test_force_takes_the_field_over() -> None:
    live = applied(None, deployment(replicas=1), "kubectl")
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    live = managed.update(live, scaled, manager="kubectl", now=T1, subresource="scale")
    assert owners(live)["kubectl/Update/scale"] == [".spec.replicas"]
    result = applied(live, deployment(replicas=3), "kubectl", force=True)
    assert result["spec"]["replicas"] == 3
    assert list(owners(result)) == ["kubectl/Apply"]
    assert ".spec.replicas" in owners(result)["kubectl/Apply"]


def test_keyed_lists_merge_item_by_item_with_their_owners() -> None:
    live = applied(None, deployment(), "app")
    sidecar = deployment(replicas=None, labels={})
    containers(sidecar)[0] = {
        "name": "proxy",
        "image": "envoy",
        "ports": [{"containerPort": 15000}],
        "env": [{"name": "MODE", "value": "sidecar"}],
    }
    live = applied(live, sidecar, "injector")
    assert [c["name"] for c in containers(live)] == ["c", "proxy"]
    # The app's manager re-applies its own container: the sidecar stays.
    again = deployment()
    containers(again)[0]["env"] = [{"name": "A", "value": "1"}]
    live = applied(live, again, "app")
    assert [c["name"] for c in containers(live)] == ["c", "proxy"]
    assert containers(live)[0]["env"] == [{"name": "A", "value": "1"}]
    # The injector drops its container: it goes, the app's stays.
    live = applied(live, deployment(replicas=None, labels={}) | {"spec": {}}, "injector")
    assert [c["name"] for c in containers(live)] == ["c"]


def test_ports_are_keyed_by_port_and_protocol_with_tcp_by_default() -> None:
    config = deployment()
    containers(config)[0]["ports"] = [{"containerPort": 80}, {"containerPort": 53}]
    live = applied(None, config, "a")
    live_ports = containers(live)[0]["ports"]
    live_ports[0]["protocol"] = "TCP"  # the server's default
    other = deployment(replicas=None, labels={})
    containers(other)[0] = {
        "name": "c",
        "ports": [{"containerPort": 53, "protocol": "UDP", "name": "dns"}],
    }
    live = applied(live, other, "b")
    assert containers(live)[0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP"},
        {"containerPort": 53},
        {"containerPort": 53, "protocol": "UDP", "name": "dns"},
    ]
    # The port written with TCP is the one applied without a protocol: no new item.
    mine = copy.deepcopy(config)
    containers(mine)[0]["ports"] = [{"containerPort": 80, "name": "http"}]
    live = applied(live, mine, "a")
    assert containers(live)[0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP", "name": "http"},
        {"containerPort": 53, "protocol": "UDP", "name": "dns"},
    ]


def test_env_items_are_owned_by_name() -> None:
    config = deployment()
    containers(config)[0]["env"] = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    live = applied(None, config, "a")
    mine = copy.deepcopy(config)
    containers(mine)[0]["env"] = [{"name": "B", "value": "3"}]
    with pytest.raises(errors.Conflict, match=r'\.env\[name="B"\]\.value'):
        applied(live, mine, "b")
    live = applied(live, mine, "b", force=True)
    assert containers(live)[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    env = '.spec.template.spec.containers[name="c"].env'
    assert [p for p in owners(live)["b/Apply"] if p.startswith(env)] == [
        f'{env}[name="B"]',
        f'{env}[name="B"].name',
        f'{env}[name="B"].value',
    ]
    assert [p for p in owners(live)["a/Apply"] if p.startswith(env)] == [
        f'{env}[name="A"]',
        f'{env}[name="A"].name',
        f'{env}[name="A"].value',
        f'{env}[name="B"]',
        f'{env}[name="B"].name',
    ]


def test_a_null_in_the_configuration_removes_the_field_and_owns_it() -> None:
    live = applied(None, configmap(a="1", b="2"), "a")
    config: Obj = configmap(a="1")
    config["data"]["b"] = None
    with pytest.raises(errors.Conflict, match=r"\.data\.b$"):
        applied(live, config, "b")
    result = applied(live, config, "a")
    assert result["data"] == {"a": "1"}
    assert owners(result)["a/Apply"] == [".data.a", ".data.b"]


def test_status_is_apart_for_kinds_with_a_status_subresource() -> None:
    config = deployment()
    config["status"] = {"replicas": 4}
    live = managed.apply(None, config, manager="a", force=False, now=T0, separate_status=True)
    assert "status" not in live
    status_config = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"ignored": "yes"}},
        "status": {"replicas": 4},
    }
    live = managed.apply(
        live, status_config, manager="ctl", force=False, now=T1, subresource="status"
    )
    assert live["status"] == {"replicas": 4}
    assert live["metadata"]["labels"] == {"app": "web"}
    assert owners(live)["ctl/Apply/status"] == [".status.replicas"]


# --- Update ---------------------------------------------------------------------------------


def test_a_create_owns_every_field_it_wrote() -> None:
    created = managed.update(None, configmap(a="1"), manager="kubectl-create", now=T0)
    assert created["metadata"]["managedFields"] == [
        {
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}, "f:a": {}}},
        }
    ]


def test_an_update_takes_what_it_changed_and_removed_fields_leave_every_owner() -> None:
    live = managed.update(None, configmap(a="1", b="2", c="3"), manager="create", now=T0)
    new = copy.deepcopy(live)
    new["data"] = {"a": "10", "b": "2"}
    updated = managed.update(live, new, manager="edit", now=T1)
    assert owners(updated) == {
        "create/Update": [".data", ".data.b"],
        "edit/Update": [".data.a"],
    }


def test_an_update_that_changes_nothing_keeps_the_entries_as_they_are() -> None:
    live = managed.update(None, configmap(a="1"), manager="create", now=T0)
    assert managed.update(live, copy.deepcopy(live), manager="x", now=T1) == live


def test_a_removal_alone_records_no_entry() -> None:
    live = managed.update(None, configmap(a="1", b="2"), manager="create", now=T0)
    new = copy.deepcopy(live)
    del new["data"]["b"]
    updated = managed.update(live, new, manager="edit", now=T1)
    assert list(owners(updated)) == ["create/Update"]


def test_updates_by_one_manager_merge_into_one_entry() -> None:
    live = managed.update(None, configmap(a="1"), manager="m", now=T0)
    new = copy.deepcopy(live)
    new["data"]["b"] = "2"
    updated = managed.update(live, new, manager="m", now=T1)
    (entry,) = managed.entries(updated)
    assert entry.time == T1
    assert entry.fields.rendered() == [".data", ".data.a", ".data.b"]


def test_status_writes_are_entries_of_their_own() -> None:
    config = deployment()
    live = managed.update(None, config, manager="create", now=T0, separate_status=True)
    new = copy.deepcopy(live)
    new["status"] = {"replicas": 1}
    updated = managed.update(
        live, new, manager="controller", now=T1, subresource="status", separate_status=True
    )
    assert owners(updated)["controller/Update/status"] == [".status.replicas"]
    assert owners(updated)["create/Update"] == owners(live)["create/Update"]


def test_managed_fields_set_by_the_request() -> None:
    live = managed.update(None, configmap(a="1"), manager="create", now=T0)
    reset = copy.deepcopy(live)
    reset["metadata"]["managedFields"] = []
    assert "managedFields" not in managed.update(live, reset, manager="x", now=T1)["metadata"]
    replaced = copy.deepcopy(live)
    replaced["metadata"]["managedFields"][0]["manager"] = "someone"
    assert list(owners(managed.update(live, replaced, manager="x", now=T1))) == ["someone/Update"]
    garbled = copy.deepcopy(live)
    garbled["metadata"]["managedFields"] = [{"manager": 3}]
    assert managed.update(live, garbled, manager="x", now=T1) == live


def test_at_most_ten_update_entries_the_oldest_merge() -> None:
    live = managed.update(None, configmap(), manager="create", now="2025-01-01T00:00:00Z")
    for index in range(12):
        new = copy.deepcopy(live)
        new["data"][f"k{index}"] = "v"
        live = managed.update(live, new, manager=f"m{index}", now=f"2025-01-01T00:01:{index:02d}Z")
    found = managed.entries(live)
    assert len(found) == managed.MAX_UPDATE_MANAGERS
    ancient = next(e for e in found if e.manager == managed.ANCIENT_CHANGES)
    assert ancient.fields.rendered() == [".data", ".data.k0", ".data.k1", ".data.k2"]
    assert ancient.time == "2025-01-01T00:01:02Z"


def test_entries_are_ordered_apply_first_then_by_time() -> None:
    live = managed.update(None, configmap(a="1"), manager="z", now=T1)
    live = managed.apply(live, configmap(b="2"), manager="y", force=False, now=T2)
    new = copy.deepcopy(live)
    new["data"]["c"] = "3"
    live = managed.update(live, new, manager="a", now=T2)
    assert [(e["manager"], e["operation"]) for e in live["metadata"]["managedFields"]] == [
        ("y", "Apply"),
        ("z", "Update"),
        ("a", "Update"),
    ]


def test_public_api() -> None:
    assert api.managed is managed
    assert sorted(managed.__all__) == [
        "ANCIENT_CHANGES",
        "Entry",
        "FIELDS_TYPE",
        "FieldSet",
        "MAX_MANAGER_LENGTH",
        "MAX_UPDATE_MANAGERS",
        "Operation",
        "apply",
        "entries",
        "extract",
        "fields_of",
        "render_path",
        "update",
    ]
