"""PodTopologySpread, table-driven: maxSkew, missing keys, minDomains, node affinity and
taint policies, and the score of ScheduleAnyway constraints."""

from __future__ import annotations

from typing import Any

import pytest

from arktos_lite.scheduler import _cache as cache, _framework as framework, _spread as spread

from ._fixtures import cluster, node_obj, pod, pod_obj

Obj = dict[str, Any]
Code = framework.Code

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"
SKEW = "node(s) didn't match pod topology spread constraints"
MISSING = "node(s) didn't match pod topology spread constraints (missing required label)"
WEB = {"app": "web"}


def _constraint(key: str = ZONE, max_skew: int = 1, hard: bool = True, **extra: Any) -> Obj:
    return {
        "maxSkew": max_skew,
        "topologyKey": key,
        "whenUnsatisfiable": "DoNotSchedule" if hard else "ScheduleAnyway",
        "labelSelector": {"matchLabels": WEB},
        **extra,
    }


def _web(name: str, node: str, **extra: Any) -> Obj:
    return pod_obj(name, labels=WEB, node_name=node, **extra)


def _zones(*bound: Obj, **node_options: Any) -> cache.Cache:
    """a1, a2 in zone a; b1 in zone b; bare without a zone."""
    return cluster(
        node_obj("a1", labels={ZONE: "a"}, **node_options),
        node_obj("a2", labels={ZONE: "a"}),
        node_obj("b1", labels={ZONE: "b"}),
        node_obj("bare"),
        bound=bound,
    )


def _verdicts(held: cache.Cache, constraints: list[Obj], **extra: Any) -> dict[str, str]:
    plugin = spread.PodTopologySpread({}, framework.Handle(snapshot=held))
    info = pod(labels=WEB, topologySpreadConstraints=constraints, **extra)
    state = framework.CycleState()
    if plugin.pre_filter(state, info).code is Code.SKIP:
        return {n.name: "ok" for n in held.node_list()}
    return {
        n.name: (s.reasons[0] if (s := plugin.filter(state, info, n)).reasons else "ok")
        for n in held.node_list()
    }


@pytest.mark.parametrize(
    ("bound", "constraints", "extra", "expected"),
    [
        pytest.param(
            [], [], {}, {"a1": "ok", "a2": "ok", "b1": "ok", "bare": "ok"}, id="no constraint"
        ),
        pytest.param(
            [],
            [_constraint()],
            {},
            {"a1": "ok", "a2": "ok", "b1": "ok", "bare": MISSING},
            id="empty zones",
        ),
        pytest.param(
            [_web("w1", "a1")],
            [_constraint()],
            {},
            {"a1": SKEW, "a2": SKEW, "b1": "ok", "bare": MISSING},
            id="zone a is ahead",
        ),
        pytest.param(
            [_web("w1", "a1")],
            [_constraint(max_skew=2)],
            {},
            {"a1": "ok", "a2": "ok", "b1": "ok", "bare": MISSING},
            id="within maxSkew",
        ),
        pytest.param(
            [_web("w1", "a1"), _web("w2", "b1")],
            [_constraint()],
            {},
            {"a1": "ok", "a2": "ok", "b1": "ok", "bare": MISSING},
            id="balanced",
        ),
        pytest.param(
            [_web("w1", "a1")],
            [_constraint(HOST)],
            {},
            {"a1": SKEW, "a2": "ok", "b1": "ok", "bare": "ok"},
            id="per node",
        ),
        pytest.param(
            [pod_obj("other", labels={"app": "db"}, node_name="a1")],
            [_constraint()],
            {},
            {"a1": "ok", "a2": "ok", "b1": "ok", "bare": MISSING},
            id="pods that do not match do not count",
        ),
        pytest.param(
            [_web("w1", "a1", namespace="elsewhere"), _web("w2", "a1", tenant="t2")],
            [_constraint()],
            {},
            {"a1": "ok", "a2": "ok", "b1": "ok", "bare": MISSING},
            id="only the pod's own namespace and tenant count",
        ),
        pytest.param(
            [_web("w1", "a1")],
            [_constraint()],
            {"nodeSelector": {ZONE: "a"}},
            {"a1": "ok", "a2": "ok", "b1": "ok", "bare": MISSING},
            id="zones the pod cannot go to are not counted (nodeAffinityPolicy Honor)",
        ),
        pytest.param(
            [_web("w1", "a1")],
            [_constraint(nodeAffinityPolicy="Ignore")],
            {"nodeSelector": {ZONE: "a"}},
            {"a1": SKEW, "a2": SKEW, "b1": "ok", "bare": MISSING},
            id="nodeAffinityPolicy Ignore",
        ),
        pytest.param(
            [_web("w1", "a1"), _web("w2", "b1")],
            [_constraint(minDomains=3)],
            {},
            {"a1": SKEW, "a2": SKEW, "b1": SKEW, "bare": MISSING},
            id="fewer domains than minDomains count as zero",
        ),
        pytest.param(
            [_web("w1", "a1")],
            [_constraint(HOST, hard=False)],
            {},
            {"a1": "ok", "a2": "ok", "b1": "ok", "bare": "ok"},
            id="ScheduleAnyway does not filter",
        ),
    ],
)
def test_filter(
    bound: list[Obj], constraints: list[Obj], extra: Obj, expected: dict[str, str]
) -> None:
    assert _verdicts(_zones(*bound), constraints, **extra) == expected


def test_tainted_nodes_count_only_under_node_taints_policy_ignore() -> None:
    tainted = [{"key": "k", "value": "v", "effect": "NoSchedule"}]
    # Every node but the tainted a1 holds one pod.
    held = _zones(_web("w1", "a2"), _web("w2", "b1"), _web("w3", "bare"), taints=tainted)

    # Ignore (the default): empty a1 is the fewest, so nowhere else is within the skew.
    assert _verdicts(held, [_constraint(HOST)]) == {
        "a1": "ok",
        "a2": SKEW,
        "b1": SKEW,
        "bare": SKEW,
    }
    # Honor: a1 is not a domain the pod could use; one more anywhere else is fine.
    assert _verdicts(held, [_constraint(HOST, nodeTaintsPolicy="Honor")]) == {
        "a1": "ok",
        "a2": "ok",
        "b1": "ok",
        "bare": "ok",
    }


def test_a_missing_key_is_unresolvable_and_skew_is_not() -> None:
    held = _zones(_web("w1", "a1"))
    plugin = spread.PodTopologySpread({}, framework.Handle(snapshot=held))
    info = pod(labels=WEB, topologySpreadConstraints=[_constraint()])
    state = framework.CycleState()
    plugin.pre_filter(state, info)

    def code(name: str) -> Code:
        got = held.get_node(name)
        assert got is not None
        return plugin.filter(state, info, got).code

    assert code("bare") is Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert code("a1") is Code.UNSCHEDULABLE


def test_schedule_anyway_prefers_the_emptier_domain() -> None:
    held = _zones(_web("w1", "a1"), _web("w2", "a2"), _web("w3", "b1"))
    plugin = spread.PodTopologySpread({}, framework.Handle(snapshot=held))
    info = pod(labels=WEB, topologySpreadConstraints=[_constraint(hard=False)])
    state = framework.CycleState()
    feasible = list(held.node_list())

    assert plugin.pre_score(state, info, feasible).ok
    scores = [plugin.score(state, info, n) for n in feasible]
    plugin.normalize(state, info, scores)

    by_node = dict(zip([n.name for n in feasible], scores, strict=True))
    assert by_node["b1"] > by_node["a1"] == by_node["a2"]
    assert by_node["bare"] == 0
