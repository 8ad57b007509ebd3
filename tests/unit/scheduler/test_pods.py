"""What the scheduler reads from a pod: requests (containers, init containers, sidecars,
overhead, the VM), tolerations, affinity, and what a pod it cannot read becomes."""

from __future__ import annotations

from typing import Any

import pytest

from arktos_lite.scheduler import _pods as pods

from ._fixtures import pod, pod_obj, vm_pod

Obj = dict[str, Any]

MI = 1024 * 1024
DEFAULT_MEM = pods.DEFAULT_MEMORY_REQUEST


def _container(cpu: str | None = None, memory: str | None = None, **extra: Any) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": "c", "image": "i", "resources": {"requests": requests}, **extra}


def _spec_pod(spec: Obj) -> pods.PodInfo:
    return pods.PodInfo.parse({"metadata": {"name": "p", "namespace": "default"}, "spec": spec})


@pytest.mark.parametrize(
    ("spec", "cpu", "memory", "non_zero_cpu", "non_zero_memory"),
    [
        pytest.param({"containers": [_container()]}, 0, 0, 100, DEFAULT_MEM, id="nothing"),
        pytest.param(
            {"containers": [_container("250m", "64Mi"), _container("1", "1Gi")]},
            1250,
            1088 * MI,
            1250,
            1088 * MI,
            id="containers add up",
        ),
        pytest.param(
            {"containers": [_container("500m")], "initContainers": [_container("2", "1Mi")]},
            2000,
            1 * MI,
            2000,
            DEFAULT_MEM,
            id="the largest init container wins",
        ),
        pytest.param(
            {
                "containers": [_container("500m", "100Mi")],
                "initContainers": [
                    _container("200m", "10Mi", restartPolicy="Always"),
                    _container("1", "10Mi"),
                ],
            },
            1200,
            110 * MI,
            1200,
            110 * MI,
            id="a sidecar runs beside the app and the later init containers",
        ),
        pytest.param(
            {
                "containers": [_container("100m", "1Mi")],
                "overhead": {"cpu": "50m", "memory": "1Mi"},
            },
            150,
            2 * MI,
            150,
            2 * MI,
            id="overhead",
        ),
        pytest.param(
            {"containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": "300m"}}}]},
            300,
            0,
            300,
            DEFAULT_MEM,
            id="limits stand for missing requests",
        ),
        pytest.param(
            {"containers": [_container("0.1", "1e3")]}, 100, 1000, 100, 1000, id="odd notations"
        ),
        pytest.param(
            {"containers": [_container("1m")], "initContainers": [_container("1500u")]},
            2,
            0,
            2,
            DEFAULT_MEM,
            id="rounded up to whole millicores",
        ),
    ],
)
def test_requests(
    spec: Obj, cpu: int, memory: int, non_zero_cpu: int, non_zero_memory: int
) -> None:
    info = _spec_pod(spec)

    assert info.error is None
    assert (info.requests.milli_cpu, info.requests.memory) == (cpu, memory)
    assert (info.non_zero_milli_cpu, info.non_zero_memory) == (non_zero_cpu, non_zero_memory)


def test_extended_resources_and_ephemeral_storage() -> None:
    info = _spec_pod(
        {
            "containers": [
                {
                    "name": "c",
                    "image": "i",
                    "resources": {"requests": {"ephemeral-storage": "1Gi", "example.com/gpu": "2"}},
                }
            ]
        }
    )

    assert info.requests.ephemeral_storage == 1024 * MI
    assert info.requests.scalar == (("example.com/gpu", 2),)


@pytest.mark.parametrize("limits_only", [False, True])
def test_a_vm_pod_requests_what_its_vm_does(limits_only: bool) -> None:
    info = vm_pod(cpu="2", memory="4Gi", limits_only=limits_only)

    assert info.is_vm
    assert (info.requests.milli_cpu, info.requests.memory) == (2000, 4096 * MI)
    assert (info.non_zero_milli_cpu, info.non_zero_memory) == (2000, 4096 * MI)


def test_a_vm_pod_without_resources_requests_nothing() -> None:
    info = _spec_pod({"virtualMachine": {"name": "vm", "image": "cirros"}})

    assert info.is_vm
    assert info.requests.is_zero
    assert (info.non_zero_milli_cpu, info.non_zero_memory) == (100, DEFAULT_MEM)


def test_identity_and_state() -> None:
    obj = pod_obj("web", tenant="t1", namespace="ns", priority=7, schedulerName="other")
    obj["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    obj["status"] = {"phase": "Succeeded"}

    info = pods.PodInfo.parse(obj)

    assert (info.key, info.tenant, info.namespace, info.name) == ("t1/ns/web", "t1", "ns", "web")
    assert (info.priority, info.scheduler_name) == (7, "other")
    assert info.terminating
    assert info.terminal
    assert pod().scheduler_name == pods.DEFAULT_SCHEDULER
    assert pods.pod_key({"metadata": {"name": "a", "namespace": "b"}}) == "system/b/a"


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"containers": [_container("lots")]}, "quantity"),
        (
            {
                "containers": [_container()],
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {"matchExpressions": [{"key": "k", "operator": "Near"}]}
                            ]
                        }
                    }
                },
            },
            "operator",
        ),
    ],
)
def test_a_pod_that_cannot_be_read_says_why(spec: Obj, error: str) -> None:
    info = _spec_pod(spec)

    assert info.error is not None
    assert error in info.error
    assert info.requests.is_zero


@pytest.mark.parametrize(
    ("toleration", "taint", "tolerated"),
    [
        ({"key": "k", "value": "v", "effect": "NoSchedule"}, ("k", "v", "NoSchedule"), True),
        ({"key": "k", "value": "v"}, ("k", "v", "NoExecute"), True),
        ({"key": "k", "value": "w"}, ("k", "v", "NoSchedule"), False),
        ({"key": "k", "operator": "Exists"}, ("k", "anything", "NoSchedule"), True),
        ({"operator": "Exists"}, ("any", "thing", "NoExecute"), True),
        ({"operator": "Exists", "effect": "NoSchedule"}, ("any", "", "NoExecute"), False),
        ({"key": "other", "operator": "Exists"}, ("k", "", "NoSchedule"), False),
        ({"key": "k", "operator": "Between", "value": "v"}, ("k", "v", "NoSchedule"), False),
    ],
)
def test_tolerations(toleration: Obj, taint: tuple[str, str, str], tolerated: bool) -> None:
    parsed = pods.Toleration.parse(toleration)

    assert parsed.tolerates(pods.Taint(*taint)) is tolerated


def test_affinity_terms_default_to_the_pods_namespace_and_tenant() -> None:
    term = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}
    info = pod(
        tenant="t1",
        namespace="ns",
        affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}},
    )

    (parsed,) = info.required_anti_affinity
    assert parsed.matches(pod(tenant="t1", namespace="ns", labels={"app": "db"}))
    assert not parsed.matches(pod(tenant="t1", namespace="other", labels={"app": "db"}))
    assert not parsed.matches(pod(tenant="t2", namespace="ns", labels={"app": "db"}))
    assert not parsed.matches(pod(tenant="t1", namespace="ns", labels={"app": "web"}))


def test_affinity_term_namespaces_and_namespace_selectors() -> None:
    every = {"labelSelector": {}, "namespaceSelector": {}, "topologyKey": "zone"}
    listed = {"labelSelector": {}, "namespaces": ["a"], "topologyKey": "zone"}
    selected = {
        "labelSelector": {},
        "namespaceSelector": {"matchLabels": {"team": "x"}},
        "topologyKey": "zone",
    }
    info = pod(
        affinity={
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [every, listed, selected]
            }
        }
    )
    every_term, listed_term, selected_term = info.required_affinity
    elsewhere = pod(namespace="b")

    assert every_term.matches(elsewhere)
    assert listed_term.matches(pod(namespace="a"))
    assert not listed_term.matches(elsewhere)
    assert selected_term.matches(elsewhere, {"team": "x"})
    assert not selected_term.matches(elsewhere, {"team": "y"})
    assert not selected_term.matches(elsewhere, None)


def test_an_affinity_term_without_a_label_selector_matches_nothing() -> None:
    info = pod(
        affinity={
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone"}]
            }
        }
    )

    assert not info.required_affinity[0].matches(pod())
