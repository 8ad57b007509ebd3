"""The node-local plugins, table-driven: one pod and one node in, a status or score out.
Container and VM pods go through the same tables."""

from __future__ import annotations

import random
from typing import Any

import pytest

from arktos_lite.scheduler import (
    _cache as cache,
    _framework as framework,
    _nodes as nodes,
    _plugins as plugins,
    _pods as pods,
)

from ._fixtures import node, placed, pod, vm_pod

Obj = dict[str, Any]
Code = framework.Code
HANDLE = framework.Handle(snapshot=cache.Cache())

UNRESOLVABLE = Code.UNSCHEDULABLE_AND_UNRESOLVABLE
UNSCHEDULABLE = Code.UNSCHEDULABLE
SUCCESS = Code.SUCCESS


def _filter(plugin: Any, pod_info: pods.PodInfo, info: nodes.NodeInfo) -> framework.Status:
    state = framework.CycleState()
    if isinstance(plugin, framework.PreFilterPlugin):
        status = plugin.pre_filter(state, pod_info)
        if status.code is Code.SKIP:
            return framework.SUCCESS
        assert status.ok
    result: framework.Status = plugin.filter(state, pod_info, info)
    return result


def _reason(status: framework.Status) -> tuple[Code, tuple[str, ...]]:
    return status.code, status.reasons


# Filters

NOT_READY = "node(s) runtime is not ready"


@pytest.mark.parametrize(
    ("pod_info", "info", "expected"),
    [
        pytest.param(pod(), node(), (SUCCESS, ()), id="container pod, container runtime ready"),
        pytest.param(
            pod(), node(container_ready=False), (UNRESOLVABLE, (NOT_READY,)), id="runtime not ready"
        ),
        pytest.param(
            pod(), node(container_ready=None), (UNRESOLVABLE, (NOT_READY,)), id="no condition"
        ),
        pytest.param(
            pod(), node(vm_ready=False), (SUCCESS, ()), id="container pod ignores the VM runtime"
        ),
        pytest.param(vm_pod(), node(), (SUCCESS, ()), id="VM pod, VM runtime ready"),
        pytest.param(
            vm_pod(), node(vm_ready=False), (UNRESOLVABLE, (NOT_READY,)), id="VM runtime not ready"
        ),
        pytest.param(vm_pod(), node(vm_ready=None), (UNRESOLVABLE, (NOT_READY,)), id="VM, none"),
        pytest.param(
            vm_pod(),
            node(container_ready=False),
            (SUCCESS, ()),
            id="VM pod ignores the container runtime",
        ),
    ],
)
def test_node_runtime_ready(
    pod_info: pods.PodInfo, info: nodes.NodeInfo, expected: tuple[Code, tuple[str, ...]]
) -> None:
    assert _reason(_filter(plugins.NodeRuntimeReady({}, HANDLE), pod_info, info)) == expected


NO_FIT = (UNRESOLVABLE, ("node(s) didn't match Pod's node affinity/selector",))


def _required(*terms: Obj) -> Obj:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}
        }
    }


def _expr(key: str, operator: str, *values: str) -> Obj:
    expression: Obj = {"key": key, "operator": operator}
    if values:
        expression["values"] = list(values)
    return expression


LABELS = {"zone": "a", "disk": "ssd", "cores": "16"}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({}, (SUCCESS, ()), id="no constraint"),
        pytest.param({"nodeSelector": {"zone": "a"}}, (SUCCESS, ()), id="selector matches"),
        pytest.param({"nodeSelector": {"zone": "a", "disk": "hdd"}}, NO_FIT, id="selector one off"),
        pytest.param(
            {"affinity": _required({"matchExpressions": [_expr("zone", "In", "a", "b")]})},
            (SUCCESS, ()),
            id="In",
        ),
        pytest.param(
            {"affinity": _required({"matchExpressions": [_expr("zone", "NotIn", "a")]})},
            NO_FIT,
            id="NotIn",
        ),
        pytest.param(
            {"affinity": _required({"matchExpressions": [_expr("gpu", "DoesNotExist")]})},
            (SUCCESS, ()),
            id="DoesNotExist",
        ),
        pytest.param(
            {"affinity": _required({"matchExpressions": [_expr("gpu", "Exists")]})},
            NO_FIT,
            id="Exists",
        ),
        pytest.param(
            {"affinity": _required({"matchExpressions": [_expr("cores", "Gt", "8")]})},
            (SUCCESS, ()),
            id="Gt",
        ),
        pytest.param(
            {"affinity": _required({"matchExpressions": [_expr("cores", "Lt", "8")]})},
            NO_FIT,
            id="Lt",
        ),
        pytest.param(
            {
                "affinity": _required(
                    {"matchExpressions": [_expr("zone", "In", "b")]},
                    {"matchExpressions": [_expr("disk", "In", "ssd")]},
                )
            },
            (SUCCESS, ()),
            id="terms are ORed",
        ),
        pytest.param(
            {
                "affinity": _required(
                    {"matchExpressions": [_expr("zone", "In", "a"), _expr("disk", "In", "hdd")]}
                )
            },
            NO_FIT,
            id="expressions are ANDed",
        ),
        pytest.param(
            {"affinity": _required({"matchFields": [_expr("metadata.name", "In", "n1")]})},
            (SUCCESS, ()),
            id="matchFields by name",
        ),
        pytest.param({"affinity": _required({})}, NO_FIT, id="an empty term matches nothing"),
        pytest.param(
            {
                "nodeSelector": {"zone": "b"},
                "affinity": _required({"matchExpressions": [_expr("zone", "In", "a")]}),
            },
            NO_FIT,
            id="selector and affinity both apply",
        ),
    ],
)
def test_node_affinity_filter(spec: Obj, expected: tuple[Code, tuple[str, ...]]) -> None:
    for pod_info in (pod(**spec), pods.PodInfo.parse(_vm_with(spec))):
        status = _filter(plugins.NodeAffinity({}, HANDLE), pod_info, node("n1", labels=LABELS))
        assert _reason(status) == expected


def _vm_with(spec: Obj) -> Obj:
    return {
        "metadata": {"name": "vm", "namespace": "default"},
        "spec": {"virtualMachine": {"name": "vm", "image": "cirros"}, **spec},
    }


def test_node_affinity_by_name_narrows_the_nodes_looked_at() -> None:
    plugin = plugins.NodeAffinity({}, HANDLE)
    state = framework.CycleState()
    pinned = pod(affinity=_required({"matchFields": [_expr("metadata.name", "In", "n2", "n3")]}))

    assert plugin.pre_filter(state, pinned).ok
    assert state.node_names == frozenset({"n2", "n3"})
    assert plugin.pre_filter(framework.CycleState(), pod()).code is Code.SKIP


def _taint(key: str, value: str = "", effect: str = "NoSchedule") -> Obj:
    return {"key": key, "value": value, "effect": effect}


@pytest.mark.parametrize(
    ("taints", "tolerations", "expected"),
    [
        pytest.param([], [], (SUCCESS, ()), id="no taints"),
        pytest.param(
            [_taint("dedicated", "db")],
            [],
            (UNRESOLVABLE, ("node(s) had untolerated taint {dedicated: db}",)),
            id="NoSchedule",
        ),
        pytest.param(
            [_taint("gone", effect="NoExecute")],
            [],
            (UNRESOLVABLE, ("node(s) had untolerated taint {gone: }",)),
            id="NoExecute",
        ),
        pytest.param(
            [_taint("soft", effect="PreferNoSchedule")], [], (SUCCESS, ()), id="PreferNoSchedule"
        ),
        pytest.param(
            [_taint("dedicated", "db")],
            [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}],
            (SUCCESS, ()),
            id="tolerated",
        ),
        pytest.param(
            [_taint("a"), _taint("b", "2")],
            [{"key": "a", "operator": "Exists"}],
            (UNRESOLVABLE, ("node(s) had untolerated taint {b: 2}",)),
            id="the first untolerated taint is named",
        ),
        pytest.param(
            [_taint("a"), _taint("b", effect="NoExecute")],
            [{"operator": "Exists"}],
            (SUCCESS, ()),
            id="tolerate everything",
        ),
    ],
)
def test_taint_toleration_filter(
    taints: list[Obj], tolerations: list[Obj], expected: tuple[Code, tuple[str, ...]]
) -> None:
    plugin = plugins.TaintToleration({}, HANDLE)
    for pod_info in (
        pod(tolerations=tolerations),
        pods.PodInfo.parse(_vm_with({"tolerations": tolerations})),
    ):
        assert _reason(_filter(plugin, pod_info, node(taints=taints))) == expected


@pytest.mark.parametrize(
    ("unschedulable", "tolerations", "expected"),
    [
        (False, [], (SUCCESS, ())),
        (True, [], (UNRESOLVABLE, ("node(s) were unschedulable",))),
        (
            True,
            [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}],
            (SUCCESS, ()),
        ),
        (
            True,
            [{"key": "node.kubernetes.io/unschedulable", "effect": "NoExecute"}],
            (UNRESOLVABLE, ("node(s) were unschedulable",)),
        ),
    ],
)
def test_node_unschedulable(
    unschedulable: bool, tolerations: list[Obj], expected: tuple[Code, tuple[str, ...]]
) -> None:
    status = _filter(
        plugins.NodeUnschedulable({}, HANDLE),
        pod(tolerations=tolerations),
        node(unschedulable=unschedulable),
    )
    assert _reason(status) == expected


@pytest.mark.parametrize(
    ("node_name", "expected"),
    [
        ("", (SUCCESS, ())),
        ("n1", (SUCCESS, ())),
        ("n2", (UNRESOLVABLE, ("node(s) didn't match the requested node name",))),
    ],
)
def test_node_name(node_name: str, expected: tuple[Code, tuple[str, ...]]) -> None:
    status = _filter(plugins.NodeName({}, HANDLE), pod(node_name=node_name), node("n1"))
    assert _reason(status) == expected


@pytest.mark.parametrize(
    ("pod_info", "info", "expected"),
    [
        pytest.param(pod(cpu="1"), node(cpu="1"), (SUCCESS, ()), id="exactly fits"),
        pytest.param(
            pod(cpu="1001m"), node(cpu="1"), (UNSCHEDULABLE, ("Insufficient cpu",)), id="cpu"
        ),
        pytest.param(
            pod(cpu="2", memory="2Gi"),
            node(cpu="1", memory="1Gi"),
            (UNSCHEDULABLE, ("Insufficient cpu", "Insufficient memory")),
            id="cpu and memory",
        ),
        pytest.param(
            pod(cpu="500m"),
            placed(node(cpu="1"), pod("a", cpu="600m")),
            (UNSCHEDULABLE, ("Insufficient cpu",)),
            id="what placed pods take counts",
        ),
        pytest.param(
            pod(),
            placed(node(pods_allowed="1"), pod("a")),
            (UNSCHEDULABLE, ("Too many pods",)),
            id="pod count",
        ),
        pytest.param(
            pod(cpu="2"),
            placed(node(cpu="1", pods_allowed="1"), pod("a")),
            (UNSCHEDULABLE, ("Too many pods", "Insufficient cpu")),
            id="pod count first",
        ),
        pytest.param(
            pod(
                containers=[
                    {"name": "c", "image": "i", "resources": {"requests": {"example.com/gpu": "1"}}}
                ]
            ),
            node(),
            (UNSCHEDULABLE, ("Insufficient example.com/gpu",)),
            id="extended resource the node lacks",
        ),
        pytest.param(
            pod(
                containers=[
                    {"name": "c", "image": "i", "resources": {"requests": {"example.com/gpu": "1"}}}
                ]
            ),
            node(extra={"example.com/gpu": "1"}),
            (SUCCESS, ()),
            id="extended resource",
        ),
        pytest.param(
            pod(
                containers=[
                    {
                        "name": "c",
                        "image": "i",
                        "resources": {"requests": {"ephemeral-storage": "2Gi"}},
                    }
                ]
            ),
            node(extra={"ephemeral-storage": "1Gi"}),
            (UNSCHEDULABLE, ("Insufficient ephemeral-storage",)),
            id="ephemeral storage",
        ),
        pytest.param(
            pod(
                initContainers=[
                    {"name": "i", "image": "i", "resources": {"requests": {"cpu": "3"}}}
                ]
            ),
            node(cpu="2"),
            (UNSCHEDULABLE, ("Insufficient cpu",)),
            id="init container",
        ),
        pytest.param(vm_pod(cpu="2"), node(cpu="2"), (SUCCESS, ()), id="VM fits"),
        pytest.param(
            vm_pod(cpu="3", memory="1Gi"),
            node(cpu="2"),
            (UNSCHEDULABLE, ("Insufficient cpu",)),
            id="VM resources count",
        ),
        pytest.param(
            vm_pod(cpu="1", memory="10Gi", limits_only=True),
            node(cpu="2", memory="8Gi"),
            (UNSCHEDULABLE, ("Insufficient memory",)),
            id="VM limits stand for requests",
        ),
        pytest.param(
            pod(cpu="1"),
            placed(node(cpu="2"), vm_pod("running-vm", cpu="1500m")),
            (UNSCHEDULABLE, ("Insufficient cpu",)),
            id="a placed VM takes its resources",
        ),
    ],
)
def test_node_resources_fit_filter(
    pod_info: pods.PodInfo, info: nodes.NodeInfo, expected: tuple[Code, tuple[str, ...]]
) -> None:
    assert _reason(_filter(plugins.NodeResourcesFit({}, HANDLE), pod_info, info)) == expected


def test_a_node_reporting_no_pod_capacity_takes_none() -> None:
    info = nodes.NodeInfo("n")
    info.set_facts(
        nodes.NodeFacts.parse({"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "1"}}})
    )

    status = _filter(plugins.NodeResourcesFit({}, HANDLE), pod(), info)
    assert status.reasons == ("Too many pods",)
    assert info.allocatable_milli_cpu == 1000  # capacity stands for missing allocatable


# Scores


def _score(plugin: Any, pod_info: pods.PodInfo, infos: list[nodes.NodeInfo]) -> list[int]:
    state = framework.CycleState()
    if isinstance(plugin, framework.PreScorePlugin):
        status = plugin.pre_score(state, pod_info, infos)
        if status.code is Code.SKIP:
            return []
    scores = [plugin.score(state, pod_info, info) for info in infos]
    plugin.normalize(state, pod_info, scores)
    return scores


@pytest.mark.parametrize(
    ("pod_info", "infos", "expected"),
    [
        pytest.param(
            pod(cpu="1", memory="2Gi"),
            [node(cpu="4", memory="8Gi"), node(cpu="2", memory="4Gi")],
            # (4-1)/4 -> 75 and (8-2)/8 -> 75; (2-1)/2 -> 50 and (4-2)/4 -> 50.
            [75, 50],
            id="the emptier node scores higher",
        ),
        pytest.param(
            pod(),
            [node(cpu="1", memory="1Gi")],
            # Non-zero defaults: 100m of 1000m -> 90; 200Mi of 1024Mi -> 80; mean 85.
            [85],
            id="empty pods count the defaults",
        ),
        pytest.param(
            pod(cpu="3"),
            [placed(node(cpu="4", memory="8Gi"), pod("a", cpu="2"))],
            # cpu over allocatable scores 0; memory (8Gi - 400Mi)/8Gi -> 95.
            [47],
            id="overfull resource scores zero",
        ),
        pytest.param(
            vm_pod(cpu="2", memory="4Gi"),
            [node(cpu="4", memory="8Gi")],
            [50],
            id="VM resources",
        ),
    ],
)
def test_least_allocated(
    pod_info: pods.PodInfo, infos: list[nodes.NodeInfo], expected: list[int]
) -> None:
    assert _score(plugins.NodeResourcesFit({}, HANDLE), pod_info, infos) == expected


def test_most_allocated_and_resource_weights() -> None:
    most = plugins.NodeResourcesFit(
        {
            "scoringStrategy": {
                "type": "MostAllocated",
                "resources": [{"name": "cpu", "weight": 3}, {"name": "memory", "weight": 1}],
            }
        },
        HANDLE,
    )

    # cpu 1/4 -> 25 (x3), memory 4/8 -> 50 (x1): (75 + 50) / 4 = 31.
    assert _score(most, pod(cpu="1", memory="4Gi"), [node(cpu="4", memory="8Gi")]) == [31]
    with pytest.raises(ValueError, match="unknown scoring strategy"):
        plugins.NodeResourcesFit({"scoringStrategy": {"type": "Random"}}, HANDLE)


@pytest.mark.parametrize(
    ("pod_info", "infos", "expected"),
    [
        pytest.param(
            pod(cpu="1", memory="2Gi"),
            [node(cpu="4", memory="8Gi"), node(cpu="4", memory="2Gi")],
            # Even: 1/4 and 2/8 -> 100. Uneven: 1/4 and 2/2 -> 1 - 0.75/2 = 62.
            [100, 62],
            id="even use scores higher",
        ),
        pytest.param(
            vm_pod(cpu="2", memory="1Gi"),
            [node(cpu="4", memory="8Gi")],
            # 2/4 and 1/8: 1 - 0.375/2 -> 81.
            [81],
            id="VM",
        ),
    ],
)
def test_balanced_allocation(
    pod_info: pods.PodInfo, infos: list[nodes.NodeInfo], expected: list[int]
) -> None:
    plugin = plugins.NodeResourcesBalancedAllocation({}, HANDLE)
    assert _score(plugin, pod_info, infos) == expected


def test_balanced_allocation_over_three_resources() -> None:
    plugin = plugins.NodeResourcesBalancedAllocation(
        {"resources": [{"name": "cpu"}, {"name": "memory"}, {"name": "example.com/gpu"}]}, HANDLE
    )
    gpu_pod = pod(
        containers=[
            {
                "name": "c",
                "image": "i",
                "resources": {"requests": {"cpu": "2", "memory": "4Gi", "example.com/gpu": "2"}},
            }
        ]
    )

    # 0.5, 0.5 and 1.0: mean 2/3, deviation sqrt(1/18) = 0.2357 -> 76.
    assert _score(plugin, gpu_pod, [node(extra={"example.com/gpu": "2"})]) == [76]


def test_preferred_node_affinity_scores_by_weight() -> None:
    preferred = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 80, "preference": {"matchExpressions": [_expr("zone", "In", "a")]}},
                {"weight": 20, "preference": {"matchExpressions": [_expr("disk", "In", "ssd")]}},
            ]
        }
    }
    infos = [
        node("both", labels={"zone": "a", "disk": "ssd"}),
        node("zone", labels={"zone": "a"}),
        node("disk", labels={"disk": "ssd"}),
        node("none"),
    ]
    plugin = plugins.NodeAffinity({}, HANDLE)

    assert _score(plugin, pod(affinity=preferred), infos) == [100, 80, 20, 0]
    assert _score(plugin, pod(), infos) == []


def test_prefer_no_schedule_taints_lower_the_score() -> None:
    soft = [_taint("a", effect="PreferNoSchedule"), _taint("b", effect="PreferNoSchedule")]
    infos = [node("clean"), node("one", taints=soft[:1]), node("two", taints=soft)]
    plugin = plugins.TaintToleration({}, HANDLE)

    assert _score(plugin, pod(), infos) == [100, 50, 0]
    tolerant = pod(tolerations=[{"key": "a", "operator": "Exists", "effect": "PreferNoSchedule"}])
    assert _score(plugin, tolerant, infos) == [100, 100, 0]
    assert _score(plugin, pod(), [node("clean"), node("other")]) == []


@pytest.mark.parametrize(
    ("scores", "reverse", "expected"),
    [
        ([0, 0], False, [0, 0]),
        ([0, 0], True, [100, 100]),
        ([1, 2, 4], False, [25, 50, 100]),
        ([1, 2, 4], True, [75, 50, 0]),
    ],
)
def test_default_normalize(scores: list[int], reverse: bool, expected: list[int]) -> None:
    framework.default_normalize(scores, reverse=reverse)
    assert scores == expected


# PostFilter


def test_default_preemption_words_the_preemption_sentence() -> None:
    plugin = plugins.DefaultPreemption({}, HANDLE)
    statuses = {
        "a": framework.Status.unschedulable("Insufficient cpu"),
        "b": framework.Status.unschedulable("x", resolvable=False),
        "c": framework.Status.unschedulable("y", resolvable=False),
    }

    status = plugin.post_filter(framework.CycleState(), pod(), statuses)
    assert status.message == (
        "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
        "2 Preemption is not helpful for scheduling."
    )
    never = plugin.post_filter(framework.CycleState(), pod(preemptionPolicy="Never"), statuses)
    assert never.message == "preemption: not eligible due to preemptionPolicy=Never."


# Batch forms


def _random_node(rng: random.Random, name: str) -> nodes.NodeInfo:
    taints = [
        _taint(rng.choice(["a", "b"]), rng.choice(["", "x"]), rng.choice(_EFFECTS))
        for _ in range(rng.choice([0, 0, 1, 2]))
    ]
    info = node(
        name,
        cpu=rng.choice(["0", "1", "2"]),
        memory=rng.choice(["0", "1Gi", "2Gi"]),
        pods_allowed=rng.choice(["0", "1", "3"]),
        unschedulable=rng.random() < 0.2,
        container_ready=rng.choice([True, False, None]),
        vm_ready=rng.choice([True, False, None]),
        taints=taints,
        extra={"example.com/gpu": "1"} if rng.random() < 0.5 else None,
    )
    for i in range(rng.choice([0, 1, 2])):
        info.add_pod(pod(f"{name}-{i}", cpu=rng.choice(["100m", "900m"]), memory="512Mi"))
    return info


_EFFECTS = ["NoSchedule", "NoExecute", "PreferNoSchedule"]


def _random_pod(rng: random.Random) -> pods.PodInfo:
    requests = {"cpu": rng.choice(["0", "500m", "1500m"]), "memory": rng.choice(["0", "1Gi"])}
    if rng.random() < 0.3:
        requests["example.com/gpu"] = "1"
    spec: Obj = {
        "containers": [{"name": "c", "image": "i", "resources": {"requests": requests}}],
        "tolerations": [{"key": "a", "operator": "Exists"}] if rng.random() < 0.5 else [],
    }
    if rng.random() < 0.3:
        spec["tolerations"].append(
            {"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}
        )
    if rng.random() < 0.3:
        spec["nodeName"] = rng.choice(["n0", "n1", "nowhere"])
    if rng.random() < 0.3:
        return pods.PodInfo.parse(
            {
                "metadata": {"name": "vm", "namespace": "default"},
                "spec": {
                    "virtualMachine": {"name": "vm", "resources": {"requests": requests}},
                    "tolerations": spec["tolerations"],
                },
            }
        )
    return pods.PodInfo.parse({"metadata": {"name": "p", "namespace": "default"}, "spec": spec})


@pytest.mark.parametrize("seed", range(20))
def test_batch_forms_say_what_the_per_node_forms_say(seed: int) -> None:
    rng = random.Random(seed)
    infos = [_random_node(rng, f"n{i}") for i in range(12)]
    for _ in range(10):
        pod_info = _random_pod(rng)
        for plugin in (
            plugins.NodeName({}, HANDLE),
            plugins.NodeUnschedulable({}, HANDLE),
            plugins.NodeRuntimeReady({}, HANDLE),
            plugins.TaintToleration({}, HANDLE),
            plugins.NodeResourcesFit({}, HANDLE),
        ):
            state = framework.CycleState()
            rejected: dict[str, framework.Status] = {}
            passing = plugin.filter_nodes(state, pod_info, list(infos), rejected)
            one_by_one = {n.name: plugin.filter(state, pod_info, n) for n in infos}
            assert [n.name for n in passing] == [n for n, s in one_by_one.items() if s.ok]
            assert rejected == {n: s for n, s in one_by_one.items() if not s.ok}
            assert all(s.plugin == plugin.name for s in rejected.values())
        for scorer in (
            plugins.NodeResourcesFit({}, HANDLE),
            plugins.NodeResourcesBalancedAllocation({}, HANDLE),
        ):
            state = framework.CycleState()
            assert scorer.score_nodes(state, pod_info, infos) == [
                scorer.score(state, pod_info, n) for n in infos
            ]
