"""The ReplicaSet controller's decisions without a cluster: which pods go first, batch
sizes, the status it reports and the pods it makes."""

from __future__ import annotations

import datetime
import random
from typing import Any

from hypothesis import given, strategies as st

from arktos_lite.controllers.workload import _replicaset as rs_controller

Obj = dict[str, Any]
NOW = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)


def stamp(seconds_ago: float) -> str:
    return (NOW - datetime.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(
    name: str,
    *,
    node: str | None = None,
    phase: str = "Pending",
    ready_for: float | None = None,
    created_ago: float = 100.0,
    restarts: int = 0,
    cost: int | None = None,
    labels: dict[str, str] | None = None,
) -> Obj:
    meta: Obj = {"name": name, "uid": name, "creationTimestamp": stamp(created_ago)}
    meta["labels"] = labels if labels is not None else {"app": "web"}
    if cost is not None:
        meta["annotations"] = {rs_controller.DELETION_COST: str(cost)}
    status: Obj = {"phase": phase, "containerStatuses": [{"restartCount": restarts}]}
    if ready_for is not None:
        status["conditions"] = [
            {"type": "Ready", "status": "True", "lastTransitionTime": stamp(ready_for)}
        ]
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}, "status": status}


def names(pods: list[Obj]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def test_deletion_ranking_of_kubernetes() -> None:
    ranked = [
        pod("unscheduled"),
        pod("pending", node="n1"),
        pod("unknown", node="n1", phase="Unknown"),
        pod("running", node="n1", phase="Running"),
        pod("cheap", node="n2", phase="Running", ready_for=10, cost=-5),
        pod("doubled", node="n3", phase="Running", ready_for=10),
        pod("doubled-too", node="n3", phase="Running", ready_for=10),
        pod("ready-briefly", node="n4", phase="Running", ready_for=5),
        pod("restarting", node="n5", phase="Running", ready_for=50, restarts=3),
        pod("young", node="n6", phase="Running", ready_for=50, created_ago=60),
        pod("old", node="n7", phase="Running", ready_for=50, created_ago=600),
    ]
    shuffled = ranked[:]
    random.Random(7).shuffle(shuffled)
    ordered = rs_controller.deletion_order(shuffled)
    assert names(ordered)[:5] == ["unscheduled", "pending", "unknown", "running", "cheap"]
    assert set(names(ordered)[5:7]) == {"doubled", "doubled-too"}
    assert names(ordered)[7:] == ["ready-briefly", "restarting", "young", "old"]


@given(st.permutations(range(6)))
def test_deletion_order_does_not_depend_on_the_input_order(order: list[int]) -> None:
    pods = [
        pod("a"),
        pod("b", node="n1"),
        pod("c", node="n1", phase="Running"),
        pod("d", node="n1", phase="Running", ready_for=3),
        pod("e", node="n2", phase="Running", ready_for=30),
        pod("f", node="n3", phase="Running", ready_for=30, created_ago=1000),
    ]
    assert names(rs_controller.deletion_order([pods[i] for i in order])) == list("abcdef")


@given(st.integers(min_value=0, max_value=2000))
def test_slow_start_doubles_and_adds_up(count: int) -> None:
    sizes = rs_controller.slow_start_sizes(count)
    assert sum(sizes) == count
    for i, size in enumerate(sizes[:-1]):
        assert size == 2**i
    if sizes:
        assert sizes[-1] <= 2 ** (len(sizes) - 1)


def replicaset(*, min_ready: int = 0, status: Obj | None = None) -> Obj:
    return {
        "metadata": {
            "name": "web",
            "namespace": "default",
            "tenant": "acme",
            "uid": "rs-uid",
            "generation": 4,
        },
        "spec": {
            "replicas": 3,
            "minReadySeconds": min_ready,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {
                    "labels": {"app": "web", "tier": "front"},
                    "annotations": {"note": "x"},
                },
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
        "status": status or {},
    }


def test_status_counts() -> None:
    pods = [
        pod("a", labels={"app": "web", "tier": "front"}, phase="Running", ready_for=120),
        pod("b", labels={"app": "web", "tier": "front"}, phase="Running", ready_for=5),
        pod("c", labels={"app": "web"}),
    ]
    status = rs_controller.calculate_status(replicaset(min_ready=30), pods, failure=None, now=NOW)
    assert status == {
        "replicas": 3,
        "fullyLabeledReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 1,
        "observedGeneration": 4,
    }
    without_min_ready = rs_controller.calculate_status(replicaset(), pods, failure=None, now=NOW)
    assert without_min_ready["availableReplicas"] == 2


def test_the_replica_failure_condition_comes_and_goes() -> None:
    failure = rs_controller.ManageError(rs_controller.Reason.FAILED_CREATE, "quota exceeded")
    failed = rs_controller.calculate_status(replicaset(), [], failure=failure, now=NOW)
    (condition,) = failed["conditions"]
    assert condition["type"] == "ReplicaFailure"
    assert condition["status"] == "True"
    assert condition["reason"] == "FailedCreate"
    assert condition["message"] == "quota exceeded"
    # It stays as it was while the failure lasts, and goes when it is over.
    again = rs_controller.calculate_status(
        replicaset(status=failed), [], failure=failure, now=NOW + datetime.timedelta(hours=1)
    )
    assert again["conditions"] == failed["conditions"]
    healed = rs_controller.calculate_status(replicaset(status=failed), [], failure=None, now=NOW)
    assert "conditions" not in healed


def test_pods_come_from_the_template_and_belong_to_the_set() -> None:
    made = rs_controller.pod_from_template(replicaset())
    meta = made["metadata"]
    assert meta["generateName"] == "web-"
    assert meta["tenant"] == "acme"
    assert meta["namespace"] == "default"
    assert meta["labels"] == {"app": "web", "tier": "front"}
    assert meta["annotations"] == {"note": "x"}
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web",
            "uid": "rs-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert made["spec"] == {"containers": [{"name": "c", "image": "nginx"}]}


def test_active_and_available() -> None:
    assert rs_controller.is_active(pod("a"))
    assert not rs_controller.is_active(pod("a", phase="Succeeded"))
    assert not rs_controller.is_active(pod("a", phase="Failed"))
    deleting = pod("a")
    deleting["metadata"]["deletionTimestamp"] = stamp(0)
    assert not rs_controller.is_active(deleting)
    ready = pod("a", phase="Running", ready_for=10)
    assert rs_controller.is_available(ready, min_ready_seconds=5, now=NOW)
    assert not rs_controller.is_available(ready, min_ready_seconds=15, now=NOW)
    assert not rs_controller.is_available(pod("a"), min_ready_seconds=0, now=NOW)
