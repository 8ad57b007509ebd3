"""The node lifecycle controller's pure parts: conditions of a silent node, its taints,
tolerations and when a pod must leave, and what the controller notes on trio's clock."""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
from hypothesis import given

from arktos_lite.controllers import _nodelifecycle as nlc

NOW = "2024-05-01T12:00:00Z"
EARLIER = "2024-05-01T11:00:00Z"
UNREACHABLE = {"key": nlc.TAINT_UNREACHABLE, "effect": "NoExecute", "timeAdded": EARLIER}
NOT_READY = {"key": nlc.TAINT_NOT_READY, "effect": "NoExecute", "timeAdded": EARLIER}


def cond(type_: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_, "status": status, "lastHeartbeatTime": EARLIER, **extra}


# Conditions


def test_a_silent_node_has_its_agents_conditions_turned_unknown() -> None:
    conditions = [
        cond("Ready", "True", reason="KubeletReady"),
        cond("MemoryPressure", "False"),
        cond("ContainerRuntimeReady", "True"),
        cond("NetworkUnavailable", "False"),
    ]
    result = nlc.unknown_conditions(conditions, now=NOW)
    assert result is not None
    by_type = {c["type"]: c for c in result}
    for type_ in ("Ready", "MemoryPressure", "ContainerRuntimeReady"):
        assert by_type[type_]["status"] == "Unknown"
        assert by_type[type_]["reason"] == "NodeStatusUnknown"
        assert by_type[type_]["message"] == "Kubelet stopped posting node status."
        assert by_type[type_]["lastTransitionTime"] == NOW
        # The last heartbeat stays what the node said.
        assert by_type[type_]["lastHeartbeatTime"] == EARLIER
    assert by_type["NetworkUnavailable"] == conditions[3]
    assert [c["type"] for c in result] == [c["type"] for c in conditions]
    # Already unknown: nothing to write.
    assert nlc.unknown_conditions(result, now=NOW) is None


def test_a_node_that_never_said_ready_gets_ready_unknown() -> None:
    result = nlc.unknown_conditions([], now=NOW, created=EARLIER)
    assert result == [
        {
            "type": "Ready",
            "status": "Unknown",
            "reason": "NodeStatusNeverUpdated",
            "message": "Kubelet never posted node status.",
            "lastHeartbeatTime": EARLIER,
            "lastTransitionTime": NOW,
        }
    ]


def test_pods_lose_ready_only_when_it_was_true() -> None:
    conditions = [cond("PodScheduled", "True"), cond("Ready", "True")]
    result = nlc.pod_not_ready_conditions(conditions, now=NOW)
    assert result is not None
    assert result[1]["status"] == "False"
    assert result[1]["lastTransitionTime"] == NOW
    assert conditions[1]["status"] == "True"
    assert nlc.pod_not_ready_conditions(result, now=NOW) is None
    assert nlc.pod_not_ready_conditions([cond("PodScheduled", "True")], now=NOW) is None


# Taints


def test_taints_follow_ready() -> None:
    other = {"key": "example.com/gpu", "effect": "NoSchedule"}
    assert nlc.reconcile_taints([other], "True", now=NOW) is None
    assert nlc.reconcile_taints([other], None, now=NOW) is None
    unknown = nlc.reconcile_taints([other], "Unknown", now=NOW)
    assert unknown == [
        other,
        {"key": nlc.TAINT_UNREACHABLE, "effect": "NoExecute", "timeAdded": NOW},
    ]
    # A taint that stays keeps its time.
    assert nlc.reconcile_taints([other, UNREACHABLE], "Unknown", now=NOW) is None
    # Ready=False swaps unreachable for not-ready.
    assert nlc.reconcile_taints([UNREACHABLE, other], "False", now=NOW) == [
        other,
        {"key": nlc.TAINT_NOT_READY, "effect": "NoExecute", "timeAdded": NOW},
    ]
    # Ready again: both go, others stay.
    assert nlc.reconcile_taints([NOT_READY, other, UNREACHABLE], "True", now=NOW) == [other]
    # Somebody else's NoSchedule taint with our key is not ours.
    mine_no = {"key": nlc.TAINT_UNREACHABLE, "effect": "NoSchedule"}
    assert nlc.reconcile_taints([mine_no], "True", now=NOW) is None


# Tolerations


def test_tolerations_match_taints_as_kubernetes_does() -> None:
    taint = {"key": "k", "value": "v", "effect": "NoExecute"}
    assert nlc.tolerates({"operator": "Exists"}, taint)
    assert nlc.tolerates({"key": "k", "operator": "Exists"}, taint)
    assert nlc.tolerates({"key": "k", "value": "v"}, taint)
    assert nlc.tolerates(
        {"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute"}, taint
    )
    assert not nlc.tolerates({"key": "k", "value": "w"}, taint)
    assert not nlc.tolerates({"key": "j", "operator": "Exists"}, taint)
    assert not nlc.tolerates({"key": "k", "operator": "Exists", "effect": "NoSchedule"}, taint)
    assert not nlc.tolerates({"key": "k", "operator": "Lt", "value": "v"}, taint)


def test_default_tolerations_fill_in_only_what_is_missing() -> None:
    added = nlc.with_default_tolerations([], seconds=300)
    assert {t["key"] for t in added} == {nlc.TAINT_NOT_READY, nlc.TAINT_UNREACHABLE}
    assert all(t["tolerationSeconds"] == 300 for t in added)
    own = {
        "key": nlc.TAINT_UNREACHABLE,
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 5,
    }
    added = nlc.with_default_tolerations([own], seconds=300)
    assert [t["key"] for t in added] == [nlc.TAINT_UNREACHABLE, nlc.TAINT_NOT_READY]
    assert nlc.with_default_tolerations([{"operator": "Exists"}], seconds=300) == [
        {"operator": "Exists"}
    ]


def test_eviction_times() -> None:
    unreachable = {"key": nlc.TAINT_UNREACHABLE, "effect": "NoExecute"}
    custom = {"key": "example.com/maintenance", "effect": "NoExecute"}
    # Nothing of its own: the default toleration.
    assert nlc.eviction_due([], [(unreachable, 10.0)], default_seconds=300) == 310.0
    # Its own toleration wins over the default, shorter or longer.
    own = [
        {
            "key": nlc.TAINT_UNREACHABLE,
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 2,
        }
    ]
    assert nlc.eviction_due(own, [(unreachable, 10.0)], default_seconds=300) == 12.0
    # Tolerated without a limit: never.
    forever = [{"key": nlc.TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}]
    assert nlc.eviction_due(forever, [(unreachable, 10.0)], default_seconds=300) is None
    # A taint it does not tolerate at all: when the taint appeared.
    assert (
        nlc.eviction_due(forever, [(unreachable, 10.0), (custom, 20.0)], default_seconds=300)
        == 20.0
    )
    # Negative seconds mean at once.
    now = [{"operator": "Exists", "tolerationSeconds": -5}]
    assert nlc.eviction_due(now, [(custom, 3.0)], default_seconds=300) == 3.0
    assert nlc.eviction_due([], [], default_seconds=300) is None


TAINTS = st.lists(
    st.tuples(
        st.fixed_dictionaries(
            {
                "key": st.sampled_from([nlc.TAINT_UNREACHABLE, nlc.TAINT_NOT_READY, "a", "b"]),
                "effect": st.just("NoExecute"),
            }
        ),
        st.floats(0, 1000),
    ),
    max_size=4,
)
TOLERATIONS = st.lists(
    st.fixed_dictionaries(
        {"operator": st.just("Exists")},
        optional={
            "key": st.sampled_from([nlc.TAINT_UNREACHABLE, "a"]),
            "effect": st.sampled_from(["NoExecute", "NoSchedule"]),
            "tolerationSeconds": st.integers(-10, 100),
        },
    ),
    max_size=4,
)


@given(tolerations=TOLERATIONS, taints=TAINTS, default=st.floats(0, 500))
def test_no_pod_leaves_before_a_taint_appeared_nor_stays_past_an_untolerated_one(
    tolerations: list[dict[str, Any]], taints: list[tuple[dict[str, Any], float]], default: float
) -> None:
    due = nlc.eviction_due(tolerations, taints, default_seconds=default)
    if not taints:
        assert due is None
        return
    if due is not None:
        assert due >= min(since for _taint, since in taints)
    effective = nlc.with_default_tolerations(tolerations, seconds=default)
    for taint, since in taints:
        if not any(nlc.tolerates(t, taint) for t in effective):
            assert due is not None
            assert due <= since


# Observations


def test_heartbeats_count_from_when_they_are_seen_to_change() -> None:
    beats = nlc.Heartbeats()
    assert beats.silent_for("n", now=5.0) == 0.0
    beats.observe("n", lease_renew="r1", status_heartbeat="h1", now=10.0)
    assert beats.silent_for("n", now=15.0) == 5.0
    beats.observe("n", lease_renew="r1", status_heartbeat="h1", now=20.0)
    assert beats.silent_for("n", now=25.0) == 15.0
    beats.observe("n", lease_renew="r2", status_heartbeat="h1", now=30.0)
    assert beats.silent_for("n", now=31.0) == 1.0
    beats.observe("n", lease_renew="r2", status_heartbeat="h2", now=40.0)
    assert beats.silent_for("n", now=40.0) == 0.0
    # A lease that disappears is no heartbeat.
    beats.observe("n", lease_renew=None, status_heartbeat="h2", now=50.0)
    assert beats.silent_for("n", now=50.0) == 10.0
    beats.forget("n")
    assert "n" not in beats


def test_taint_clock_keeps_first_sight_of_no_execute_taints() -> None:
    clock = nlc.TaintClock()
    no_schedule = {"key": "x", "effect": "NoSchedule"}
    assert not clock.observe("n", [no_schedule], now=1.0)
    assert clock.taints("n") == []
    assert clock.observe("n", [UNREACHABLE, no_schedule], now=2.0)
    assert clock.taints("n") == [(UNREACHABLE, 2.0)]
    assert not clock.observe("n", [UNREACHABLE], now=3.0)
    assert clock.taints("n") == [(UNREACHABLE, 2.0)]
    assert clock.observe("n", [UNREACHABLE, NOT_READY], now=4.0)
    assert sorted(since for _t, since in clock.taints("n")) == [2.0, 4.0]
    assert clock.observe("n", [], now=5.0)
    assert clock.taints("n") == []
