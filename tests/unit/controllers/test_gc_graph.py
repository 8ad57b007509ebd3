"""The garbage collector's pure parts: owner references, where owners live, the graph of
dependents, and the verdict on a dependent."""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from arktos_lite.api import resources
from arktos_lite.controllers import _gc as gc

REGISTRY = resources.Registry()


def _resource(group: str, plural: str) -> resources.Resource:
    found = REGISTRY.get(group, "v1", plural)
    assert found is not None
    return found


PODS = _resource("", "pods")
REPLICASETS = _resource("apps", "replicasets")
NODES = _resource("", "nodes")
NAMESPACES = _resource("", "namespaces")
CLUSTERROLES = _resource("rbac.authorization.k8s.io", "clusterroles")


def identity(
    name: str, *, resource: resources.Resource = PODS, uid: str | None = None
) -> gc.Identity:
    tenant = None if resource.scope is resources.Scope.CLUSTER else "t1"
    namespace = "ns" if resource.namespaced else None
    return gc.Identity(resource, tenant, namespace, name, uid or f"uid-{name}")


def ref(
    uid: str, *, kind: str = "ReplicaSet", api_version: str = "apps/v1", block: bool = False
) -> gc.OwnerRef:
    return gc.OwnerRef(api_version, kind, f"name-{uid}", uid, block_owner_deletion=block)


# Owner references and where owners live


def test_owner_references_skip_what_could_never_be_resolved() -> None:
    obj: dict[str, Any] = {
        "metadata": {
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "rs",
                    "uid": "u1",
                    "blockOwnerDeletion": True,
                    "controller": True,
                },
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": ""},
                {"apiVersion": "v1", "kind": "", "name": "x", "uid": "u2"},
                "not an object",
                {"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "u3"},
            ]
        }
    }
    assert gc.OwnerRef.all_of(obj) == (
        gc.OwnerRef("apps/v1", "ReplicaSet", "rs", "u1", block_owner_deletion=True),
        gc.OwnerRef("v1", "Node", "n", "u3"),
    )
    assert gc.OwnerRef.all_of({"metadata": {}}) == ()


def test_owners_live_where_their_scope_says() -> None:
    pod = identity("p")
    located = gc.locate_owner(pod, ref("u"), REGISTRY)
    assert located == gc.Identity(REPLICASETS, "t1", "ns", "name-u", "u")
    node_owner = gc.locate_owner(pod, ref("n", kind="Node", api_version="v1"), REGISTRY)
    assert node_owner == gc.Identity(NODES, None, None, "name-n", "n")
    namespace_owner = gc.locate_owner(pod, ref("x", kind="Namespace", api_version="v1"), REGISTRY)
    assert namespace_owner == gc.Identity(NAMESPACES, "t1", None, "name-x", "x")
    # The version does not matter; group and kind do.
    assert gc.locate_owner(pod, ref("u", api_version="apps/v1beta2"), REGISTRY) == located
    assert (
        gc.locate_owner(pod, ref("u", api_version="v1"), REGISTRY) is gc.Unresolvable.UNKNOWN_KIND
    )


def test_owners_that_cannot_be_resolved() -> None:
    node = identity("n", resource=NODES)
    role = identity("r", resource=CLUSTERROLES)
    assert gc.locate_owner(node, ref("u"), REGISTRY) is gc.Unresolvable.INVALID_SCOPE
    assert gc.locate_owner(role, ref("u"), REGISTRY) is gc.Unresolvable.INVALID_SCOPE
    assert (
        gc.locate_owner(node, ref("x", kind="Namespace", api_version="v1"), REGISTRY)
        is gc.Unresolvable.INVALID_SCOPE
    )
    assert (
        gc.locate_owner(node, ref("w", kind="Widget", api_version="example.com/v1"), REGISTRY)
        is gc.Unresolvable.UNKNOWN_KIND
    )
    # Events are not watched, so they cannot be looked up as owners either.
    assert (
        gc.locate_owner(identity("p"), ref("e", kind="Event", api_version="v1"), REGISTRY)
        is gc.Unresolvable.UNKNOWN_KIND
    )


def test_every_kind_but_events_is_watched() -> None:
    kinds = {r.kind for r in gc.watched(REGISTRY)}
    assert "Event" not in kinds
    assert {
        "Pod",
        "ReplicaSet",
        "Deployment",
        "ConfigMap",
        "Secret",
        "Service",
        "Node",
        "Lease",
        "Namespace",
        "Tenant",
    } <= kinds


def test_identity_keys_follow_the_informers() -> None:
    assert identity("p").key == "t1/ns/p"
    assert identity("n", resource=NODES).key == "n"
    assert identity("r", resource=CLUSTERROLES).key == "t1/r"
    pod = {"metadata": {"name": "p", "namespace": "ns", "tenant": "t1", "uid": "u"}}
    assert gc.Identity.of(PODS, pod) == gc.Identity(PODS, "t1", "ns", "p", "u")
    node = {"metadata": {"name": "n", "uid": "u"}}
    assert gc.Identity.of(NODES, node) == gc.Identity(NODES, None, None, "n", "u")


# The graph


def test_graph_tracks_owners_and_what_changed() -> None:
    graph = gc.Graph()
    pod = identity("p")
    a, b = ref("a"), ref("b", block=True)
    assert graph.set_owners(pod, [a, b]) == [a, b]
    assert {d for d, _ in graph.dependents("a")} == {pod}
    assert graph.has_dependents("b")
    assert graph.set_owners(pod, [a, b]) == []
    b_unblocked = ref("b")
    assert graph.set_owners(pod, [a, b_unblocked]) == [b]
    assert graph.dependents("b") == [(pod, b_unblocked)]
    assert graph.remove(pod.uid) == [a, b_unblocked]
    assert not graph.has_dependents("a")
    assert len(graph) == 0
    assert graph.remove(pod.uid) == []


def test_graph_counts_one_reference_per_owner_uid() -> None:
    graph = gc.Graph()
    pod = identity("p")
    graph.set_owners(pod, [ref("a", block=True), ref("a")])
    assert graph.owners(pod.uid) == (ref("a", block=True),)


class GraphMachine(RuleBasedStateMachine):
    """The graph against a plain model: dependent uid -> {owner uid: reference}."""

    def __init__(self) -> None:
        super().__init__()
        self.graph = gc.Graph()
        self.model: dict[str, dict[str, gc.OwnerRef]] = {}

    dependents = Bundle("dependents")

    @rule(target=dependents, name=st.sampled_from("pqrstu"))
    def name(self, name: str) -> str:
        return name

    @rule(
        name=dependents,
        owners=st.lists(st.builds(ref, st.sampled_from("abcdpq"), block=st.booleans()), max_size=4),
    )
    def set_owners(self, name: str, owners: list[gc.OwnerRef]) -> None:
        before = self.model.get(f"uid-{name}", {})
        after: dict[str, gc.OwnerRef] = {}
        for owner in owners:
            after.setdefault(owner.uid, owner)
        changed = self.graph.set_owners(identity(name), owners)
        expected = {before[u] for u in before if after.get(u) != before[u]}
        expected |= {after[u] for u in after if u not in before}
        assert set(changed) == expected
        if after:
            self.model[f"uid-{name}"] = after
        else:
            self.model.pop(f"uid-{name}", None)

    @rule(name=dependents)
    def remove(self, name: str) -> None:
        removed = self.graph.remove(f"uid-{name}")
        assert set(removed) == set(self.model.pop(f"uid-{name}", {}).values())

    @invariant()
    def graph_matches_model(self) -> None:
        assert len(self.graph) == len(self.model)
        owners = {u for refs in self.model.values() for u in refs}
        assert set(self.graph.owner_uids()) == owners
        for owner in owners:
            expected = {(d, refs[owner]) for d, refs in self.model.items() if owner in refs}
            assert {(i.uid, r) for i, r in self.graph.dependents(owner)} == expected
        for dependent, refs in self.model.items():
            assert set(self.graph.owners(dependent)) == set(refs.values())


TestGraphMachine = GraphMachine.TestCase
TestGraphMachine.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)


# The verdict

STATES = st.dictionaries(
    st.sampled_from("abcdef"), st.sampled_from(list(gc.OwnerState)), max_size=5
)


@given(
    states=STATES,
    finalizers=st.lists(st.sampled_from([gc.ORPHAN, gc.FOREGROUND, "other"]), max_size=3),
    has_dependents=st.booleans(),
    dependent_waits=st.booleans(),
)
def test_nothing_with_a_live_owner_is_deleted(
    states: dict[str, gc.OwnerState],
    finalizers: list[str],
    has_dependents: bool,
    dependent_waits: bool,
) -> None:
    verdict = gc.judge(
        states,
        finalizers=finalizers,
        has_dependents=has_dependents,
        dependent_waits=dependent_waits,
    )
    solid = {u for u, s in states.items() if s is gc.OwnerState.SOLID}
    if not states:
        assert verdict.action is gc.Action.KEEP
    elif solid:
        assert verdict.action is not gc.Action.DELETE
        # References to owners that are gone or going are dropped; none to a live one.
        assert verdict.drop == states.keys() - solid
        assert verdict.action is (gc.Action.DROP_REFERENCES if verdict.drop else gc.Action.KEEP)
    else:
        assert verdict.action is gc.Action.DELETE
        assert verdict.policy in ("Background", "Foreground", "Orphan")
        assert not verdict.unblock or dependent_waits


@pytest.mark.parametrize(
    ("states", "finalizers", "has_dependents", "policy"),
    [
        ({"a": gc.OwnerState.DANGLING}, (), False, "Background"),
        ({"a": gc.OwnerState.DANGLING}, (gc.ORPHAN,), True, "Orphan"),
        ({"a": gc.OwnerState.DANGLING}, (gc.FOREGROUND,), False, "Foreground"),
        ({"a": gc.OwnerState.WAITING}, (), False, "Background"),
        # An owner waits and this dependent has its own: those go first.
        ({"a": gc.OwnerState.WAITING, "b": gc.OwnerState.DANGLING}, (), True, "Foreground"),
    ],
)
def test_deletes_use_the_propagation_kubernetes_would(
    states: dict[str, gc.OwnerState], finalizers: tuple[str, ...], has_dependents: bool, policy: str
) -> None:
    verdict = gc.judge(states, finalizers=finalizers, has_dependents=has_dependents)
    assert verdict == gc.Verdict(gc.Action.DELETE, policy=policy)


def test_a_waiting_dependent_of_a_waiting_dependent_is_unblocked_first() -> None:
    verdict = gc.judge({"a": gc.OwnerState.WAITING}, has_dependents=True, dependent_waits=True)
    assert verdict == gc.Verdict(gc.Action.DELETE, policy="Foreground", unblock=True)


# Helpers that write


def test_references_and_finalizers_edits() -> None:
    obj = {
        "metadata": {
            "finalizers": ["orphan", "example.com/keep", "foregroundDeletion"],
            "ownerReferences": [
                {"uid": "a", "kind": "ReplicaSet", "name": "a", "blockOwnerDeletion": True},
                {"uid": "b", "kind": "ReplicaSet", "name": "b"},
            ],
        }
    }
    assert gc.references_without(obj, {"a"}) == [{"uid": "b", "kind": "ReplicaSet", "name": "b"}]
    assert gc.references_without(obj, {"a", "b"}) == []
    assert [r.get("blockOwnerDeletion") for r in gc.references_unblocked(obj)] == [False, None]
    assert gc.finalizers_without(obj, gc.ORPHAN) == ["example.com/keep", "foregroundDeletion"]
    assert obj["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is True


def test_waiting_for_dependents_needs_both_marks() -> None:
    assert gc.waits_for_dependents(
        {"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": [gc.FOREGROUND]}}
    )
    assert not gc.waits_for_dependents({"metadata": {"finalizers": [gc.FOREGROUND]}})
    assert not gc.waits_for_dependents(
        {"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": [gc.ORPHAN]}}
    )
