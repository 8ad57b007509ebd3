"""The scheduling cycle: which nodes are looked at, how scores add up, and the words of
an unschedulable pod's message."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from arktos_lite.scheduler import (
    _cache as cache,
    _config as config,
    _framework as framework,
    _nodes as nodes,
    _pods as pods,
)

from ._fixtures import cluster, node_obj, pod, pod_obj

Status = framework.Status
Code = framework.Code


def _default(held: cache.Cache, *, seed: int = 0, **options: Any) -> framework.Framework:
    return config.build_framework(
        config.SchedulerConfig(**options),
        framework.Handle(snapshot=held),
        rng=random.Random(seed),
    )


@pytest.mark.parametrize(
    ("num_nodes", "percentage", "expected"),
    [
        (10, None, 10),
        (99, None, 99),
        (100, None, 100),
        (1000, None, 420),  # 50 - 1000/125 = 42%
        (5000, None, 500),  # 50 - 40 = 10%
        (6000, None, 300),  # 50 - 48 = 2%, raised to 5%
        (150, None, 100),  # 49% of 150 is 73, raised to 100
        (1000, 30, 300),
        (1000, 5, 100),
        (1000, 100, 1000),
        (50, 10, 50),
    ],
)
def test_feasible_nodes_to_find(num_nodes: int, percentage: int | None, expected: int) -> None:
    assert framework.feasible_nodes_to_find(num_nodes, percentage) == expected


def test_the_message_counts_reasons_and_sorts_them_as_kube_scheduler_does() -> None:
    held = cluster(
        node_obj("small", cpu="1"),
        node_obj("tainted", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]),
        node_obj("cordoned", unschedulable=True),
        node_obj("also-small", cpu="1"),
    )

    with pytest.raises(framework.FitError) as raised:
        _default(held).schedule(held, pod(cpu="2"))

    assert str(raised.value) == (
        "0/4 nodes are available: 1 node(s) had untolerated taint {k: v}, "
        "1 node(s) were unschedulable, 2 Insufficient cpu. "
        "preemption: 0/4 nodes are available: 2 No preemption victims found for incoming pod, "
        "2 Preemption is not helpful for scheduling."
    )
    assert {name: s.plugin for name, s in raised.value.statuses.items()} == {
        "small": "NodeResourcesFit",
        "also-small": "NodeResourcesFit",
        "tainted": "TaintToleration",
        "cordoned": "NodeUnschedulable",
    }


def test_a_node_with_several_shortages_counts_each() -> None:
    held = cluster(node_obj("a", cpu="1", memory="1Gi"), node_obj("b", cpu="1"))

    with pytest.raises(framework.FitError) as raised:
        _default(held).schedule(held, pod(cpu="2", memory="2Gi"))

    assert str(raised.value).startswith(
        "0/2 nodes are available: 1 Insufficient memory, 2 Insufficient cpu."
    )


def test_no_nodes() -> None:
    held = cluster()

    with pytest.raises(framework.FitError) as raised:
        _default(held).schedule(held, pod())

    assert str(raised.value) == "no nodes available to schedule pods"


def test_only_the_first_failing_filter_speaks_for_a_node() -> None:
    held = cluster(node_obj("n", cpu="1", unschedulable=True, container_ready=False))

    with pytest.raises(framework.FitError) as raised:
        _default(held).schedule(held, pod(cpu="2"))

    assert str(raised.value).startswith("0/1 nodes are available: 1 node(s) were unschedulable.")


def test_a_pod_that_cannot_be_read_is_an_error_not_unschedulable() -> None:
    held = cluster(node_obj("n"))

    with pytest.raises(framework.SchedulingError, match="quantity"):
        _default(held).schedule(held, pod(cpu="a lot"))


def test_the_emptiest_node_wins() -> None:
    held = cluster(
        node_obj("busy"),
        node_obj("idle"),
        bound=(pod_obj("x", cpu="3", memory="6Gi", node_name="busy"),),
    )

    result = _default(held).schedule(held, pod(cpu="500m", memory="1Gi"))

    assert result.node == "idle"
    assert (result.evaluated, result.feasible) == (2, 2)


def test_ties_are_broken_at_random() -> None:
    held = cluster(*(node_obj(f"n{i}") for i in range(5)))

    chosen = {_default(held, seed=seed).schedule(held, pod()).node for seed in range(40)}

    assert len(chosen) > 1


def test_one_feasible_node_is_taken_without_scoring() -> None:
    class Exploding:
        name = "NodeResourcesBalancedAllocation"

        def score(self, *args: Any) -> int:
            raise AssertionError("scored")

        def normalize(self, *args: Any) -> None:
            raise AssertionError("normalized")

    held = cluster(node_obj("fits", cpu="4"), node_obj("tiny", cpu="1"))
    fit = next(f for f in _default(held).filters if f.name == "NodeResourcesFit")
    fw = framework.Framework(filters=[fit], scores=[framework.WeightedScore(Exploding(), 1)])

    assert fw.schedule(held, pod(cpu="2")).node == "fits"


def test_search_stops_once_enough_nodes_fit_and_resumes_where_it_stopped() -> None:
    held = cluster(*(node_obj(f"n{i:03}") for i in range(200)))
    fw = _default(held, percentage_of_nodes_to_score=50)

    first = fw.schedule(held, pod())
    second = fw.schedule(held, pod())

    assert (first.evaluated, first.feasible) == (100, 100)
    assert first.node in {f"n{i:03}" for i in range(100)}
    assert second.node in {f"n{i:03}" for i in range(100, 200)}


class _Recorder:
    """A plugin at every extension point that records calls and says what it is told."""

    def __init__(self, name: str, **answers: Status) -> None:
        self.name = name
        self.answers = answers
        self.calls: list[str] = []

    def pre_filter(self, state: framework.CycleState, pod: pods.PodInfo) -> Status:
        self.calls.append("pre_filter")
        state.write(self.name, "from pre_filter")
        return self.answers.get("pre_filter", framework.SUCCESS)

    def filter(
        self, state: framework.CycleState, pod: pods.PodInfo, node: nodes.NodeInfo
    ) -> Status:
        assert state.read(self.name) == "from pre_filter"
        self.calls.append(f"filter {node.name}")
        return self.answers.get(f"filter {node.name}", framework.SUCCESS)

    def post_filter(
        self, state: framework.CycleState, pod: pods.PodInfo, statuses: Mapping[str, Status]
    ) -> Status:
        self.calls.append("post_filter")
        return self.answers.get("post_filter", Status.unschedulable("tried everything."))

    def pre_score(
        self, state: framework.CycleState, pod: pods.PodInfo, feasible: Sequence[nodes.NodeInfo]
    ) -> Status:
        self.calls.append("pre_score")
        return self.answers.get("pre_score", framework.SUCCESS)

    def score(self, state: framework.CycleState, pod: pods.PodInfo, node: nodes.NodeInfo) -> int:
        self.calls.append(f"score {node.name}")
        return {"a": 1, "b": 3}[node.name]

    def normalize(self, state: framework.CycleState, pod: pods.PodInfo, scores: list[int]) -> None:
        self.calls.append("normalize")
        framework.default_normalize(scores, reverse=False)


def _framework_of(*plugins: _Recorder, weight: int = 1) -> framework.Framework:
    return framework.Framework(
        pre_filters=plugins,
        filters=plugins,
        post_filters=plugins,
        pre_scores=plugins,
        scores=[framework.WeightedScore(p, weight) for p in plugins],
    )


def test_extension_points_run_in_order() -> None:
    held = cluster(node_obj("a"), node_obj("b"))
    plugin = _Recorder("P")

    assert _framework_of(plugin).schedule(held, pod()).node == "b"
    assert plugin.calls == [
        "pre_filter",
        "filter a",
        "filter b",
        "pre_score",
        "score a",
        "score b",
        "normalize",
    ]


def test_weights_multiply_normalized_scores() -> None:
    held = cluster(node_obj("a"), node_obj("b"))
    prefers_b = _Recorder("B")

    class PrefersA(_Recorder):
        def score(self, *args: Any) -> int:
            node_info = args[2]
            return {"a": 2, "b": 1}[node_info.name]

    fw = framework.Framework(
        scores=[
            framework.WeightedScore(prefers_b, 1),  # b: 100, a: 33
            framework.WeightedScore(PrefersA("A"), 3),  # a: 100, b: 50
        ],
        pre_filters=[prefers_b],
    )

    assert fw.schedule(held, pod()).node == "a"


def test_skip_leaves_out_filter_or_score() -> None:
    held = cluster(node_obj("a"), node_obj("b"))
    plugin = _Recorder("P", pre_filter=framework.SKIP, pre_score=framework.SKIP)

    _framework_of(plugin).schedule(held, pod())

    assert plugin.calls == ["pre_filter", "pre_score"]


def test_a_pre_filter_rejection_speaks_for_every_node() -> None:
    held = cluster(node_obj("a"), node_obj("b"))
    plugin = _Recorder("P", pre_filter=Status.unschedulable("the pod asks too much"))

    with pytest.raises(framework.FitError) as raised:
        _framework_of(plugin).schedule(held, pod())

    assert str(raised.value) == "0/2 nodes are available: the pod asks too much. tried everything."
    assert plugin.calls == ["pre_filter", "post_filter"]


@pytest.mark.parametrize("point", ["pre_filter", "filter a", "pre_score", "post_filter"])
def test_an_error_status_is_a_scheduling_error(point: str) -> None:
    held = cluster(node_obj("a"), node_obj("b"))
    answers = {point: Status.error("broken")}
    if point == "post_filter":
        answers["filter a"] = answers["filter b"] = Status.unschedulable("no")

    with pytest.raises(framework.SchedulingError, match="broken"):
        _framework_of(_Recorder("P", **answers)).schedule(held, pod())


def test_nodes_a_pre_filter_rules_out_are_named_in_the_message() -> None:
    held = cluster(node_obj("a", cpu="1"), node_obj("b"), node_obj("c"))
    pinned = pod(
        cpu="2",
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": ["a"]}
                            ]
                        }
                    ]
                }
            }
        },
    )

    with pytest.raises(framework.FitError) as raised:
        _default(held).schedule(held, pinned)

    assert str(raised.value).startswith(
        "0/3 nodes are available: 1 Insufficient cpu, "
        "2 node is filtered out by the prefilter result."
    )
