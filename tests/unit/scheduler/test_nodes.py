"""What the scheduler reads from a node, and which node changes can make a pod fit."""

from __future__ import annotations

import copy

from arktos_lite.scheduler import _nodes as nodes

from ._fixtures import node_obj


def test_facts() -> None:
    obj = node_obj(
        "n1",
        cpu="2500m",
        memory="1Gi",
        pods_allowed="30",
        labels={"zone": "a"},
        taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}],
        unschedulable=True,
        container_ready=True,
        vm_ready=False,
        extra={"example.com/gpu": "2"},
    )

    facts = nodes.NodeFacts.parse(obj)

    assert (facts.allocatable.milli_cpu, facts.allocatable.memory) == (2500, 1024**3)
    assert facts.allocatable.scalar == (("example.com/gpu", 2),)
    assert facts.allowed_pods == 30
    assert facts.labels["zone"] == "a"
    assert [(t.key, t.value, t.effect) for t in facts.taints] == [("k", "v", "NoSchedule")]
    assert facts.unschedulable
    assert (facts.container_runtime_ready, facts.vm_runtime_ready) == (True, False)


def test_a_node_with_figures_that_cannot_be_read_offers_nothing() -> None:
    obj = node_obj("n1")
    obj["status"]["allocatable"]["cpu"] = "plenty"

    facts = nodes.NodeFacts.parse(obj)

    assert facts.allocatable.is_zero
    assert facts.allowed_pods == 0


def test_heartbeats_do_not_change_what_scheduling_sees() -> None:
    before = node_obj("n1")
    after = copy.deepcopy(before)
    after["status"]["conditions"][0]["lastHeartbeatTime"] = "2030-01-01T00:00:00Z"
    after["metadata"]["resourceVersion"] = "99"
    after["metadata"]["annotations"] = {"note": "x"}

    assert (
        nodes.NodeFacts.parse(before).scheduling_view()
        == nodes.NodeFacts.parse(after).scheduling_view()
    )
    for change in (
        lambda o: o["metadata"]["labels"].update(zone="b"),
        lambda o: o["spec"].update(unschedulable=True),
        lambda o: o["spec"].update(taints=[{"key": "k", "effect": "NoSchedule"}]),
        lambda o: o["status"]["allocatable"].update(cpu="8"),
        lambda o: o["status"]["conditions"][2].update(status="False"),
    ):
        changed = copy.deepcopy(before)
        change(changed)
        assert (
            nodes.NodeFacts.parse(before).scheduling_view()
            != nodes.NodeFacts.parse(changed).scheduling_view()
        )
