"""Placement rules end to end: node affinity (required and preferred), taints and
tolerations (NoSchedule, PreferNoSchedule), pod affinity and anti-affinity, topology
spread, and the messages when they cannot be met."""

from __future__ import annotations

from collections import Counter
from typing import Any

from arktos_lite import client

from .conftest import (
    NODES,
    PODS,
    StartScheduler,
    bound_node,
    create_all,
    eventually,
    node,
    pod,
    scheduled_condition,
)

Obj = dict[str, Any]
ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"


async def _message(api: client.Client, name: str) -> str:
    async def message() -> str | None:
        condition = await scheduled_condition(api, name)
        return condition["message"] if condition and condition["status"] == "False" else None

    found: str = await eventually(message)
    return found


async def _placements(api: client.Client, names: list[str]) -> dict[str, str]:
    async def placed() -> dict[str, str] | None:
        found = {}
        for name in names:
            node_name = await bound_node(api, name)
            if node_name is None:
                return None
            found[name] = node_name
        return found

    result: dict[str, str] = await eventually(placed)
    return result


async def test_preferred_node_affinity_and_prefer_no_schedule_taints(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await api.create(NODES, node("plain"))
    await api.create(NODES, node("gpu", labels={"accelerator": "gpu"}))
    await api.create(
        NODES,
        node("spot", taints=[{"key": "spot", "value": "true", "effect": "PreferNoSchedule"}]),
    )
    await start_scheduler()

    prefers_gpu = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "preference": {
                        "matchExpressions": [
                            {"key": "accelerator", "operator": "In", "values": ["gpu"]}
                        ]
                    },
                }
            ]
        }
    }
    await api.create(PODS, pod("trainer", affinity=prefers_gpu))
    assert await eventually(lambda: bound_node(api, "trainer")) == "gpu"

    # Fill the two clean nodes a little, so that only the taint keeps pods off "spot".
    await create_all(api, [pod(f"w{i}", cpu="100m") for i in range(6)])
    placed = await _placements(api, [f"w{i}" for i in range(6)])
    assert "spot" not in placed.values()


async def test_required_node_affinity_message(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await api.create(NODES, node("a", labels={ZONE: "a"}))
    await api.create(NODES, node("b", labels={ZONE: "b"}))
    await start_scheduler()
    in_zone_c = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": ZONE, "operator": "In", "values": ["c"]}]}
                ]
            }
        }
    }

    await api.create(PODS, pod("lost", affinity=in_zone_c))

    assert await _message(api, "lost") == (
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )
    # The node gets the label: the change brings the pod back.
    await api.patch(NODES, "b", {"metadata": {"labels": {ZONE: "c"}}})
    assert await eventually(lambda: bound_node(api, "lost")) == "b"


async def test_a_toleration_added_later_lets_a_pod_in(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await api.create(
        NODES, node("db", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    )
    await start_scheduler()
    await api.create(PODS, pod("postgres"))
    assert await _message(api, "postgres") == (
        "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: db}. "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    )

    await api.patch(
        PODS,
        "postgres",
        {"spec": {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db"}]}},
        namespace="default",
    )

    assert await eventually(lambda: bound_node(api, "postgres")) == "db"


def _anti(labels: dict[str, str], key: str) -> Obj:
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": labels}, "topologyKey": key}
            ]
        }
    }


async def test_pod_anti_affinity_puts_replicas_on_separate_nodes(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await create_all(api, [node(f"n{i}") for i in range(3)])
    await start_scheduler()
    app = {"app": "etcd"}

    await create_all(
        api, [pod(f"etcd-{i}", labels=app, affinity=_anti(app, HOST)) for i in range(4)]
    )

    async def outcome() -> tuple[Counter[str], list[str]] | None:
        hosts: Counter[str] = Counter()
        waiting = []
        for i in range(4):
            node_name = await bound_node(api, f"etcd-{i}")
            if node_name:
                hosts[node_name] += 1
            else:
                condition = await scheduled_condition(api, f"etcd-{i}")
                if not condition or condition["status"] != "False":
                    return None
                waiting.append(condition["message"])
        return hosts, waiting

    hosts, waiting = await eventually(outcome)
    assert sorted(hosts.values()) == [1, 1, 1]
    # The others' rules are checked first, and they repel it too.
    assert waiting == [
        "0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules. "
        "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    ]


async def test_pod_affinity_follows_the_pods_it_likes(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await api.create(NODES, node("a1", labels={ZONE: "a"}))
    await api.create(NODES, node("b1", labels={ZONE: "b"}))
    await api.create(NODES, node("b2", labels={ZONE: "b"}))
    await api.create(PODS, pod("cache", labels={"app": "cache"}, nodeName="b2"))
    await start_scheduler()
    near_cache = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": ZONE}
            ]
        }
    }

    await create_all(api, [pod(f"web-{i}", affinity=near_cache) for i in range(4)])

    placed = await _placements(api, [f"web-{i}" for i in range(4)])
    assert set(placed.values()) <= {"b1", "b2"}

    await api.create(
        PODS,
        pod(
            "orphan",
            affinity=_anti({"app": "none"}, ZONE)
            | {
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": {"app": "missing"}}, "topologyKey": ZONE}
                    ]
                }
            },
        ),
    )
    assert (await _message(api, "orphan")).startswith(
        "0/3 nodes are available: 3 node(s) didn't match pod affinity rules."
    )


async def test_topology_spread_keeps_zones_even(
    api: client.Client, start_scheduler: StartScheduler
) -> None:
    await api.create(NODES, node("a1", labels={ZONE: "a"}))
    await api.create(NODES, node("a2", labels={ZONE: "a"}))
    await api.create(NODES, node("b1", labels={ZONE: "b"}))
    await start_scheduler()
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": ZONE,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}},
        }
    ]

    # One at a time, so that each decision sees the ones before it bound.
    for i in range(6):
        await api.create(
            PODS, pod(f"web-{i}", labels={"app": "web"}, topologySpreadConstraints=spread)
        )
        await eventually(lambda i=i: bound_node(api, f"web-{i}"))

    placed = await _placements(api, [f"web-{i}" for i in range(6)])
    zones = Counter("a" if n.startswith("a") else "b" for n in placed.values())
    assert zones == {"a": 3, "b": 3}

    await api.create(
        PODS,
        pod(
            "needs-rack",
            labels={"app": "web"},
            topologySpreadConstraints=[{**spread[0], "topologyKey": "rack"}],
        ),
    )
    assert (await _message(api, "needs-rack")).startswith(
        "0/3 nodes are available: 3 node(s) didn't match pod topology spread constraints "
        "(missing required label)."
    )
