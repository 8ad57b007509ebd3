"""The namespace controller's pure parts: what counts as left, and the conditions it shows."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, strategies as st

from arktos_lite.api import resources
from arktos_lite.controllers import _namespace as namespace

Obj = dict[str, Any]


def resource(group: str, plural: str) -> resources.Resource:
    found = resources.Registry().get(group, "v1", plural)
    assert found is not None
    return found


PODS = resource("", "pods")
DEPLOYMENTS = resource("apps", "deployments")


def obj(name: str, *finalizers: str) -> Obj:
    meta: Obj = {"name": name}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    return {"metadata": meta}


def by_type(conditions: list[Obj]) -> dict[str, Obj]:
    return {c["type"]: c for c in conditions}


def test_terminating_by_deletion_timestamp_or_phase() -> None:
    assert not namespace.terminating({"metadata": {}, "status": {"phase": "Active"}})
    assert namespace.terminating({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}})
    assert namespace.terminating({"metadata": {}, "status": {"phase": "Terminating"}})


def test_without_finalizer_removes_only_that_one_and_leaves_the_original() -> None:
    original = {"metadata": {"name": "ns"}, "spec": {"finalizers": ["kubernetes", "x.io/y"]}}
    before = copy.deepcopy(original)
    finalized = namespace.without_finalizer(original, "kubernetes")
    assert finalized["spec"]["finalizers"] == ["x.io/y"]
    assert original == before
    assert namespace.without_finalizer({"metadata": {}}, "kubernetes")["spec"] == {"finalizers": []}


def test_summarize_counts_objects_and_finalizers_by_group_resource() -> None:
    content = namespace.summarize(
        {
            PODS: [obj("a"), obj("b", "x.io/keep")],
            DEPLOYMENTS: [obj("d", "x.io/keep", "foregroundDeletion")],
        }
    )
    assert content.remaining == {"pods.": 2, "deployments.apps": 1}
    assert content.finalizers == {"x.io/keep": 2, "foregroundDeletion": 1}
    assert not content.gone
    assert namespace.summarize({PODS: [], DEPLOYMENTS: []}).gone


def test_a_failed_resource_is_never_gone() -> None:
    content = namespace.summarize({PODS: []}, failures={"pods.": "the server is on fire"})
    assert not content.gone
    assert "pods. failed" in content.describe()


def test_conditions_of_an_emptied_namespace_are_all_false() -> None:
    conditions = namespace.deletion_conditions(namespace.Content())
    assert {c["type"] for c in conditions} == {t.value for t in namespace.ConditionType}
    assert all(c["status"] == "False" for c in conditions)
    assert by_type(conditions)["NamespaceContentRemaining"]["reason"] == "ContentRemoved"


def test_conditions_say_what_remains_as_kubernetes_words_it() -> None:
    content = namespace.summarize(
        {PODS: [obj("a", "x.io/keep"), obj("b")], DEPLOYMENTS: []},
        failures={"deployments.apps": "boom"},
    )
    conditions = by_type(namespace.deletion_conditions(content))
    remaining = conditions["NamespaceContentRemaining"]
    assert remaining["status"] == "True"
    assert remaining["reason"] == "SomeResourcesRemain"
    assert remaining["message"] == ("Some resources are remaining: pods. has 2 resource instances")
    finalizers = conditions["NamespaceFinalizersRemaining"]
    assert finalizers["reason"] == "SomeFinalizersRemain"
    assert finalizers["message"] == (
        "Some content in the namespace has finalizers remaining: x.io/keep in 1 resource instances"
    )
    failure = conditions["NamespaceDeletionContentFailure"]
    assert failure["status"] == "True"
    assert failure["message"] == (
        "Failed to delete all resource types, 1 remaining: deployments.apps: boom"
    )


def test_merge_keeps_transition_times_of_unchanged_conditions_and_foreign_ones() -> None:
    foreign = {"type": "Other", "status": "True", "lastTransitionTime": "t0"}
    first = namespace.merge_conditions(
        [foreign], namespace.deletion_conditions(namespace.Content()), now="t1"
    )
    assert first[0] == foreign
    assert all(c["lastTransitionTime"] == "t1" for c in first[1:])
    remaining = namespace.summarize({PODS: [obj("a")]})
    second = by_type(
        namespace.merge_conditions(first, namespace.deletion_conditions(remaining), now="t2")
    )
    assert second["NamespaceContentRemaining"]["lastTransitionTime"] == "t2"
    assert second["NamespaceDeletionContentFailure"]["lastTransitionTime"] == "t1"
    assert second["Other"] == foreign


counts = st.dictionaries(st.sampled_from(["pods.", "deployments.apps"]), st.integers(1, 5))
contents = st.builds(
    namespace.Content,
    remaining=counts,
    finalizers=st.dictionaries(st.sampled_from(["a.io/x", "b.io/y"]), st.integers(1, 5)),
    failures=st.dictionaries(st.sampled_from(["pods."]), st.text(max_size=5)),
)


@given(before=contents, after=contents)
def test_merging_the_same_conditions_again_changes_nothing(
    before: namespace.Content, after: namespace.Content
) -> None:
    # The controller writes status only when the merge changes it: a second round with
    # the same content must not write again, whatever the clock says.
    start = namespace.merge_conditions([], namespace.deletion_conditions(before), now="t1")
    once = namespace.merge_conditions(start, namespace.deletion_conditions(after), now="t2")
    twice = namespace.merge_conditions(once, namespace.deletion_conditions(after), now="t3")
    assert twice == once


def test_rechecks_back_off_per_key_up_to_the_cap_and_start_afresh_once_forgotten() -> None:
    rechecks = namespace.Rechecks(base=1.0, cap=10.0)
    assert [rechecks.delay("t1/shop") for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert rechecks.delay("t1/other") == 1.0
    rechecks.forget("t1/shop")
    assert rechecks.delay("t1/shop") == 1.0
    rechecks.forget("t1/shop")
    rechecks.forget("t1/other")
    # Keys that are done leave nothing behind.
    assert len(rechecks) == 0
