"""The cache: nodes and the pods on them, assumed pods counted at once and forgotten when
their binding fails, confirmations from the informer replacing assumptions."""

from __future__ import annotations

import pytest

from arktos_lite.scheduler import _cache as cache, _pods as pods

from ._fixtures import node_obj, pod, pod_obj


def _cpu(held: cache.Cache, name: str) -> tuple[int, int]:
    info = held.get_node(name)
    assert info is not None
    return info.requested_milli_cpu, len(info.pods)


def test_an_assumed_pod_counts_at_once_and_is_forgotten_when_binding_fails() -> None:
    held = cache.Cache()
    held.add_node(node_obj("n1"))
    web = pod("web", cpu="1")

    held.assume_pod(web, "n1")
    assert _cpu(held, "n1") == (1000, 1)
    assert held.is_assumed(web.key)

    assert held.forget_pod(web)
    assert _cpu(held, "n1") == (0, 0)
    assert not held.forget_pod(web)


def test_the_informer_confirms_an_assumed_pod_where_it_was_really_bound() -> None:
    held = cache.Cache()
    held.add_node(node_obj("n1"))
    held.add_node(node_obj("n2"))
    obj = pod_obj("web", cpu="1")
    assumed = pods.PodInfo.parse(obj)
    held.assume_pod(assumed, "n1")

    obj["spec"]["nodeName"] = "n2"
    held.add_pod(pods.PodInfo.parse(obj))

    assert _cpu(held, "n1") == (0, 0)
    assert _cpu(held, "n2") == (1000, 1)
    assert not held.is_assumed(assumed.key)
    # A late failure report does not uncount the confirmed pod.
    assert not held.forget_pod(assumed)
    assert _cpu(held, "n2") == (1000, 1)


def test_a_pod_is_counted_once_however_often_it_is_updated() -> None:
    held = cache.Cache()
    held.add_node(node_obj("n1"))
    for _ in range(3):
        held.update_pod(pod("web", cpu="1", node_name="n1"))

    assert _cpu(held, "n1") == (1000, 1)
    assert held.pod_count == 1
    with pytest.raises(ValueError, match="already"):
        held.assume_pod(pod("web"), "n1")


def test_forgetting_needs_the_same_pod_not_just_the_same_name() -> None:
    held = cache.Cache()
    held.add_node(node_obj("n1"))
    held.assume_pod(pod("web", cpu="1"), "n1")

    assert not held.forget_pod(pod("web", cpu="1"))  # another uid
    assert _cpu(held, "n1") == (1000, 1)


def test_pods_on_a_node_not_seen_yet_count_once_it_appears() -> None:
    held = cache.Cache()
    held.add_pod(pod("early", cpu="2", node_name="late"))

    assert held.get_node("late") is None
    assert held.node_list() == []

    held.add_node(node_obj("late"))
    assert _cpu(held, "late") == (2000, 1)
    assert [n.name for n in held.node_list()] == ["late"]


def test_a_deleted_node_keeps_its_pods_until_they_go() -> None:
    held = cache.Cache()
    held.add_node(node_obj("n1"))
    held.add_pod(pod("web", cpu="1", node_name="n1"))

    held.remove_node("n1")
    assert held.node_list() == []
    held.add_node(node_obj("n1"))
    assert _cpu(held, "n1") == (1000, 1)

    held.remove_node("n1")
    held.remove_pod(pod("web").key)
    held.add_node(node_obj("n1"))
    assert _cpu(held, "n1") == (0, 0)


def test_removing_a_pod_frees_what_it_held() -> None:
    held = cache.Cache()
    held.add_node(node_obj("n1"))
    gpu = pod(
        "gpu",
        node_name="n1",
        containers=[
            {
                "name": "c",
                "image": "i",
                "resources": {"requests": {"cpu": "1", "memory": "1Gi", "example.com/gpu": "1"}},
            }
        ],
    )
    held.add_pod(gpu)
    info = held.get_node("n1")
    assert info is not None
    assert info.requested_scalar == {"example.com/gpu": 1}

    assert held.remove_pod(gpu.key) == gpu
    assert held.remove_pod(gpu.key) is None
    assert (info.requested_milli_cpu, info.requested_memory, info.requested_scalar) == (0, 0, {})
    assert (info.non_zero_milli_cpu, info.non_zero_memory) == (0, 0)


def test_nodes_with_affinity_pods_are_tracked() -> None:
    held = cache.Cache()
    held.add_node(node_obj("n1"))
    held.add_node(node_obj("n2"))
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    repelling = pod("repelling", node_name="n1", affinity=anti)
    held.add_pod(repelling)
    held.add_pod(pod("plain", node_name="n2"))

    assert [n.name for n in held.nodes_with_affinity_pods()] == ["n1"]
    assert [n.name for n in held.nodes_with_required_anti_affinity_pods()] == ["n1"]
    held.remove_pod(repelling.key)
    assert held.nodes_with_affinity_pods() == []
    assert held.nodes_with_required_anti_affinity_pods() == []


def test_node_updates_keep_the_pods_and_change_the_figures() -> None:
    held = cache.Cache()
    held.add_node(node_obj("n1", cpu="2"))
    held.add_pod(pod("web", cpu="1", node_name="n1"))

    info = held.add_node(node_obj("n1", cpu="8", labels={"zone": "a"}))

    assert info.allocatable_milli_cpu == 8000
    assert info.labels["zone"] == "a"
    assert _cpu(held, "n1") == (1000, 1)
