"""InterPodAffinity, table-driven over small clusters: required affinity and
anti-affinity (the pod's own and existing pods'), topology keys, tenants, and scores."""

from __future__ import annotations

from typing import Any

import pytest

from arktos_lite.scheduler import _cache as cache, _framework as framework, _interpod as interpod

from ._fixtures import cluster, node_obj, pod, pod_obj

Obj = dict[str, Any]
Code = framework.Code

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"

EXISTING_ANTI = "node(s) didn't satisfy existing pods anti-affinity rules"
AFFINITY = "node(s) didn't match pod affinity rules"
ANTI = "node(s) didn't match pod anti-affinity rules"


def _term(key: str, labels: dict[str, str], **extra: Any) -> Obj:
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key, **extra}


def _affinity(kind: str, *terms: Obj, preferred: bool = False, weight: int = 10) -> Obj:
    if preferred:
        listed: list[Obj] = [{"weight": weight, "podAffinityTerm": t} for t in terms]
        return {kind: {"preferredDuringSchedulingIgnoredDuringExecution": listed}}
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def _zoned_cluster(*bound: Obj) -> cache.Cache:
    """Nodes a1, a2 in zone a; b1 in zone b; bare without a zone."""
    return cluster(
        node_obj("a1", labels={ZONE: "a"}),
        node_obj("a2", labels={ZONE: "a"}),
        node_obj("b1", labels={ZONE: "b"}),
        node_obj("bare"),
        bound=bound,
    )


def _verdicts(held: cache.Cache, incoming: Obj) -> dict[str, str]:
    plugin = interpod.InterPodAffinity({}, framework.Handle(snapshot=held))
    info = pod(**incoming)
    state = framework.CycleState()
    status = plugin.pre_filter(state, info)
    if status.code is Code.SKIP:
        return {n.name: "ok" for n in held.node_list()}
    return {
        n.name: (s.reasons[0] if (s := plugin.filter(state, info, n)).reasons else "ok")
        for n in held.node_list()
    }


DB = {"app": "db"}
WEB = {"app": "web"}


@pytest.mark.parametrize(
    ("bound", "incoming", "expected"),
    [
        pytest.param(
            [],
            {"labels": WEB},
            {"a1": "ok", "a2": "ok", "b1": "ok", "bare": "ok"},
            id="no affinity anywhere",
        ),
        pytest.param(
            [pod_obj("db", labels=DB, node_name="a1")],
            {"affinity": _affinity("podAffinity", _term(ZONE, DB))},
            {"a1": "ok", "a2": "ok", "b1": AFFINITY, "bare": AFFINITY},
            id="affinity to a zone with a matching pod",
        ),
        pytest.param(
            [pod_obj("db", labels=DB, node_name="a1")],
            {"affinity": _affinity("podAffinity", _term(HOST, DB))},
            {"a1": "ok", "a2": AFFINITY, "b1": AFFINITY, "bare": AFFINITY},
            id="affinity to the node with a matching pod",
        ),
        pytest.param(
            [],
            {"labels": DB, "affinity": _affinity("podAffinity", _term(ZONE, DB))},
            {"a1": "ok", "a2": "ok", "b1": "ok", "bare": AFFINITY},
            id="the first of a group that attracts itself goes where the key is",
        ),
        pytest.param(
            [],
            {"labels": WEB, "affinity": _affinity("podAffinity", _term(ZONE, DB))},
            {"a1": AFFINITY, "a2": AFFINITY, "b1": AFFINITY, "bare": AFFINITY},
            id="affinity to pods that do not exist",
        ),
        pytest.param(
            [pod_obj("db", labels=DB, node_name="a1")],
            {"affinity": _affinity("podAntiAffinity", _term(ZONE, DB))},
            {"a1": ANTI, "a2": ANTI, "b1": "ok", "bare": "ok"},
            id="anti-affinity to a zone",
        ),
        pytest.param(
            [pod_obj("db", labels=DB, node_name="a1")],
            {"affinity": _affinity("podAntiAffinity", _term(HOST, DB))},
            {"a1": ANTI, "a2": "ok", "b1": "ok", "bare": "ok"},
            id="anti-affinity to a node",
        ),
        pytest.param(
            [
                pod_obj(
                    "loner",
                    labels=DB,
                    node_name="b1",
                    affinity=_affinity("podAntiAffinity", _term(ZONE, WEB)),
                )
            ],
            {"labels": WEB},
            {"a1": "ok", "a2": "ok", "b1": EXISTING_ANTI, "bare": "ok"},
            id="an existing pod's anti-affinity keeps the pod out of its zone",
        ),
        pytest.param(
            [pod_obj("db", labels=DB, node_name="a1", namespace="other")],
            {"affinity": _affinity("podAntiAffinity", _term(ZONE, DB))},
            {"a1": "ok", "a2": "ok", "b1": "ok", "bare": "ok"},
            id="terms look in the pod's own namespace by default",
        ),
        pytest.param(
            [pod_obj("db", labels=DB, node_name="a1", namespace="other")],
            {"affinity": _affinity("podAntiAffinity", _term(ZONE, DB, namespaces=["other"]))},
            {"a1": ANTI, "a2": ANTI, "b1": "ok", "bare": "ok"},
            id="or in the namespaces they name",
        ),
        pytest.param(
            [pod_obj("db", labels=DB, node_name="a1", tenant="t2")],
            {"affinity": _affinity("podAntiAffinity", _term(ZONE, DB, namespaceSelector={}))},
            {"a1": "ok", "a2": "ok", "b1": "ok", "bare": "ok"},
            id="never in another tenant",
        ),
        pytest.param(
            [
                pod_obj(
                    "loner",
                    labels=DB,
                    node_name="b1",
                    tenant="t2",
                    affinity=_affinity("podAntiAffinity", _term(ZONE, {}, namespaceSelector={})),
                )
            ],
            {"labels": WEB},
            {"a1": "ok", "a2": "ok", "b1": "ok", "bare": "ok"},
            id="another tenant's anti-affinity does not repel",
        ),
        pytest.param(
            [
                pod_obj("db", labels=DB, node_name="a1"),
                pod_obj("cache", labels={"app": "cache"}, node_name="b1"),
            ],
            {
                "affinity": {
                    **_affinity("podAffinity", _term(ZONE, DB)),
                    **_affinity("podAntiAffinity", _term(HOST, DB)),
                }
            },
            {"a1": ANTI, "a2": "ok", "b1": AFFINITY, "bare": AFFINITY},
            id="near the db, not on its node",
        ),
    ],
)
def test_filter(bound: list[Obj], incoming: Obj, expected: dict[str, str]) -> None:
    assert _verdicts(_zoned_cluster(*bound), incoming) == expected


def test_codes_say_which_rejections_preemption_could_help() -> None:
    held = _zoned_cluster(
        pod_obj("db", labels=DB, node_name="a1"),
        pod_obj(
            "loner",
            labels=DB,
            node_name="b1",
            affinity=_affinity("podAntiAffinity", _term(ZONE, WEB)),
        ),
    )
    plugin = interpod.InterPodAffinity({}, framework.Handle(snapshot=held))

    def code(incoming: Obj, node: str) -> Code:
        info = pod(**incoming)
        state = framework.CycleState()
        plugin.pre_filter(state, info)
        got = held.get_node(node)
        assert got is not None
        return plugin.filter(state, info, got).code

    assert code({"labels": WEB}, "b1") is Code.UNSCHEDULABLE
    assert code({"affinity": _affinity("podAntiAffinity", _term(HOST, DB))}, "a1") is (
        Code.UNSCHEDULABLE
    )
    assert code({"affinity": _affinity("podAffinity", _term(HOST, DB))}, "a2") is (
        Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    )


def _scores(held: cache.Cache, incoming: Obj) -> dict[str, int] | None:
    plugin = interpod.InterPodAffinity({}, framework.Handle(snapshot=held))
    info = pod(**incoming)
    state = framework.CycleState()
    feasible = list(held.node_list())
    if plugin.pre_score(state, info, feasible).code is Code.SKIP:
        return None
    scores = [plugin.score(state, info, n) for n in feasible]
    plugin.normalize(state, info, scores)
    return {n.name: s for n, s in zip(feasible, scores, strict=True)}


def test_preferred_affinity_and_anti_affinity_score() -> None:
    held = _zoned_cluster(
        pod_obj("db", labels=DB, node_name="a1"), pod_obj("web", labels=WEB, node_name="b1")
    )

    near_db = _affinity("podAffinity", _term(ZONE, DB), preferred=True)
    assert _scores(held, {"affinity": near_db}) == {"a1": 100, "a2": 100, "b1": 0, "bare": 0}
    away_from_web = _affinity("podAntiAffinity", _term(ZONE, WEB), preferred=True)
    assert _scores(held, {"affinity": away_from_web}) == {
        "a1": 100,
        "a2": 100,
        "b1": 0,
        "bare": 100,
    }


def test_existing_pods_preferences_about_the_incoming_pod_score() -> None:
    likes_web = pod_obj(
        "friendly",
        node_name="b1",
        affinity=_affinity("podAffinity", _term(ZONE, WEB), preferred=True, weight=50),
    )
    needs_web = pod_obj(
        "needy", node_name="a1", affinity=_affinity("podAffinity", _term(HOST, WEB))
    )
    held = _zoned_cluster(likes_web, needs_web)

    # b1: +50 from the friendly pod's preference; a1: +1 from the needy pod's requirement.
    assert _scores(held, {"labels": WEB}) == {"a1": 2, "a2": 0, "b1": 100, "bare": 0}
    assert _scores(cluster(node_obj("n")), {"labels": WEB}) is None
