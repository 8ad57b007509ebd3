"""Templates and their hash, revisions and their history, conditions and status."""

from __future__ import annotations

import datetime
import string
from typing import Any

import pytest
from hypothesis import given, strategies as st

from arktos_lite.controllers.workload import _deployment_objects as objects

Obj = dict[str, Any]

NOW = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)


def template(image: str = "nginx:1.25", **labels: str) -> Obj:
    return {
        "metadata": {"labels": {"app": "web", **labels}, "creationTimestamp": None},
        "spec": {"containers": [{"name": "web", "image": image}]},
    }


def deployment(replicas: int = 3, *, notes: dict[str, str] | None = None) -> Obj:
    return {
        "metadata": {"name": "web", "generation": 2, "annotations": dict(notes or {})},
        "spec": {"replicas": replicas, "template": template()},
        "status": {},
    }


def replicaset(name: str, *, revision: int | None = None, **fields: Any) -> Obj:
    annotations = {} if revision is None else {objects.REVISION: str(revision)}
    return {
        "metadata": {
            "name": name,
            "annotations": annotations,
            "creationTimestamp": fields.pop("created", "2024-01-01T00:00:00Z"),
        },
        "spec": {"replicas": fields.pop("replicas", 1), "template": template()},
        "status": fields,
    }


# The template hash

label_text = st.text(string.ascii_letters + string.digits, min_size=1, max_size=8)
templates = st.builds(
    lambda labels, image: {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "c", "image": image}]},
    },
    st.dictionaries(label_text, label_text, max_size=4),
    label_text,
)


def test_fnv1a_is_the_standard_one() -> None:
    assert objects.fnv32a(b"") == 0x811C9DC5
    assert objects.fnv32a(b"a") == 0xE40C292C
    assert objects.fnv32a(b"foobar") == 0xBF9CF968


def test_digits_are_spelled_in_the_safe_alphabet() -> None:
    assert objects.safe_encode("0123456789") == "456789bcdf"


@given(templates, st.one_of(st.none(), st.integers(0, 2**31 - 1)))
def test_the_hash_is_a_valid_label_value_and_name_part(template_: Obj, count: int | None) -> None:
    value = objects.template_hash(template_, count)
    assert 1 <= len(value) <= 10
    assert set(value) <= set("bcdfghjklmnpqrstvwxz2456789")


@given(templates)
def test_the_hash_does_not_depend_on_key_order(template_: Obj) -> None:
    reordered = {
        "spec": template_["spec"],
        "metadata": dict(reversed(template_["metadata"].items())),
    }
    reordered["metadata"]["labels"] = dict(reversed(template_["metadata"]["labels"].items()))
    assert objects.template_hash(reordered) == objects.template_hash(template_)


def test_the_hash_is_stable_across_runs() -> None:
    # A changed value would give every Deployment a new ReplicaSet on upgrade.
    assert objects.template_hash(template()) == objects.template_hash(template())
    assert objects.template_hash(template()) == "7f5d5dc4f5"


def test_the_hash_changes_with_the_template() -> None:
    assert objects.template_hash(template("nginx:1.25")) != objects.template_hash(
        template("nginx:1.26")
    )


def test_each_collision_count_gives_another_hash() -> None:
    hashes = {objects.template_hash(template(), count) for count in range(200)}
    hashes.add(objects.template_hash(template(), None))
    assert len(hashes) == 201


def test_templates_compare_without_the_hash_label() -> None:
    hashed = template(**{objects.POD_TEMPLATE_HASH: "abc"})
    assert objects.equal_ignore_hash(hashed, template())
    assert not objects.equal_ignore_hash(hashed, template("other"))
    empty_labels: Obj = {"metadata": {"labels": {}}, "spec": {}}
    assert objects.equal_ignore_hash(empty_labels, {"metadata": {}, "spec": {}})
    # The original keeps its label.
    assert hashed["metadata"]["labels"][objects.POD_TEMPLATE_HASH] == "abc"


def test_the_new_replicaset_is_the_oldest_with_the_template() -> None:
    older = replicaset("a", created="2024-01-01T00:00:00Z")
    younger = replicaset("b", created="2024-01-02T00:00:00Z")
    other = {**replicaset("c"), "spec": {"replicas": 1, "template": template("x")}}
    assert objects.find_new(deployment(), [younger, other, older]) is older
    assert objects.find_new(deployment(), [other]) is None


# Revisions


def test_revisions_read_missing_as_zero_and_skip_garbage() -> None:
    sets = [replicaset("a", revision=3), replicaset("b"), replicaset("c", revision=7)]
    bad = replicaset("d")
    bad["metadata"]["annotations"][objects.REVISION] = "x"
    sets.append(bad)
    assert objects.revision(sets[1]) == 0
    assert objects.revision(bad) is None
    assert objects.max_revision(sets) == 7
    assert objects.last_revision(sets) == 3
    assert objects.max_revision([]) == 0


@given(st.lists(st.integers(0, 100), min_size=1))
def test_last_revision_is_the_second_highest(revisions: list[int]) -> None:
    sets = [replicaset(f"rs{i}", revision=r) for i, r in enumerate(revisions)]
    ordered = sorted(revisions)
    assert objects.max_revision(sets) == ordered[-1]
    assert objects.last_revision(sets) == (ordered[-2] if len(ordered) > 1 else 0)


def test_a_new_replicaset_gets_revision_replicas_and_the_deployment_annotations() -> None:
    d = deployment(
        4,
        notes={
            "kubernetes.io/change-cause": "set image",
            objects.LAST_APPLIED: "{}",
            objects.REVISION: "9",
        },
    )
    notes: dict[str, str] = {}
    changed = objects.set_new_rs_annotations(d, notes, new_revision=2, exists=False, maximum=5)
    assert changed
    assert notes == {
        "kubernetes.io/change-cause": "set image",
        objects.REVISION: "2",
        objects.DESIRED_REPLICAS: "4",
        objects.MAX_REPLICAS: "5",
    }
    assert not objects.set_new_rs_annotations(d, notes, new_revision=2, exists=True, maximum=5)


def test_rolling_back_to_a_replicaset_keeps_its_old_revisions() -> None:
    notes = {objects.REVISION: "1"}
    assert objects.set_new_rs_annotations(
        deployment(), notes, new_revision=3, exists=True, maximum=4
    )
    assert notes[objects.REVISION] == "3"
    assert notes[objects.REVISION_HISTORY] == "1"
    objects.set_new_rs_annotations(deployment(), notes, new_revision=5, exists=True, maximum=4)
    assert (notes[objects.REVISION], notes[objects.REVISION_HISTORY]) == ("5", "1,3")
    # A smaller revision (older ReplicaSets deleted since) never lowers it.
    assert not objects.set_new_rs_annotations(
        deployment(), notes, new_revision=2, exists=True, maximum=4
    )
    assert notes[objects.REVISION] == "5"


def test_revision_history_drops_its_oldest_entries_past_the_limit() -> None:
    notes = {objects.REVISION: "40", objects.REVISION_HISTORY: "10,20,30"}
    objects.set_new_rs_annotations(
        deployment(), notes, new_revision=50, exists=True, maximum=4, history_limit=9
    )
    assert notes[objects.REVISION_HISTORY] == "20,30,40"


def test_rollback_annotations_take_the_replicasets_but_keep_the_controllers() -> None:
    d = deployment(notes={objects.REVISION: "4", "note": "now", "only-now": "x"})
    rs = replicaset("a", revision=1)
    rs["metadata"]["annotations"]["note"] = "then"
    rs["metadata"]["annotations"][objects.DESIRED_REPLICAS] = "3"
    assert objects.rollback_annotations(d, rs) == {objects.REVISION: "4", "note": "then"}


def test_the_deprecated_rollback_annotation() -> None:
    assert objects.rollback_to(deployment()) is None
    assert objects.rollback_to(deployment(notes={objects.ROLLBACK_TO: "0"})) == 0
    assert objects.rollback_to(deployment(notes={objects.ROLLBACK_TO: "3"})) == 3
    assert objects.rollback_to(deployment(notes={objects.ROLLBACK_TO: "x"})) is None


# Conditions and status


def condition(reason: str, status: str = "True", *, at: datetime.datetime = NOW) -> Obj:
    return objects.new_condition(
        objects.ConditionType.PROGRESSING,
        objects.ConditionStatus(status),
        reason=reason,
        message=reason,
        now=at,
    )


def test_a_condition_keeps_its_transition_time_while_its_status_stays() -> None:
    status: Obj = {}
    objects.set_condition(status, condition("A"))
    later = NOW + datetime.timedelta(minutes=5)
    objects.set_condition(status, condition("B", at=later))
    (kept,) = status["conditions"]
    assert kept["reason"] == "B"
    assert kept["lastTransitionTime"] == "2024-05-01T12:00:00Z"
    assert kept["lastUpdateTime"] == "2024-05-01T12:05:00Z"
    # The same status and reason: nothing changes, not even the update time.
    objects.set_condition(status, condition("B", at=later + datetime.timedelta(minutes=1)))
    assert status["conditions"][0]["lastUpdateTime"] == "2024-05-01T12:05:00Z"
    objects.set_condition(status, condition("C", "False", at=later))
    assert status["conditions"][0]["lastTransitionTime"] == "2024-05-01T12:05:00Z"
    objects.remove_condition(status, "Progressing")
    assert "conditions" not in status


def test_the_status_adds_up_the_replicasets() -> None:
    new = replicaset("b", replicas=3, replicas_=0)
    new["status"] = {"replicas": 3, "readyReplicas": 2, "availableReplicas": 1}
    old = replicaset("a", replicas=1)
    old["status"] = {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}
    status = objects.calculate_status(
        deployment(3), [old, new], new_rs=new, max_unavailable=0, now=NOW
    )
    (available,) = status.pop("conditions")
    assert status == {
        "observedGeneration": 2,
        "replicas": 5,
        "updatedReplicas": 3,
        "readyReplicas": 4,
        "availableReplicas": 3,
        "unavailableReplicas": 1,
    }
    assert (available["type"], available["status"], available["reason"]) == (
        "Available",
        "True",
        "MinimumReplicasAvailable",
    )


def test_too_few_available_is_reported() -> None:
    new = replicaset("b", replicas=3)
    status = objects.calculate_status(deployment(3), [new], new_rs=new, max_unavailable=1, now=NOW)
    (available,) = status["conditions"]
    assert (available["status"], available["reason"]) == ("False", "MinimumReplicasUnavailable")
    # Zero counts are left out, as Kubernetes writes them.
    assert "availableReplicas" not in status
    assert status["unavailableReplicas"] == 3


def test_completeness_needs_every_replica_and_the_latest_generation() -> None:
    d = deployment(3)
    done = {"updatedReplicas": 3, "replicas": 3, "availableReplicas": 3, "observedGeneration": 2}
    assert objects.deployment_complete(d, done)
    assert not objects.deployment_complete(d, {**done, "observedGeneration": 1})
    assert not objects.deployment_complete(d, {**done, "replicas": 4})


def test_progress_is_any_count_moving_the_right_way() -> None:
    d = deployment(3)
    d["status"] = {"replicas": 4, "updatedReplicas": 1, "readyReplicas": 3, "availableReplicas": 3}
    assert not objects.deployment_progressing(d, dict(d["status"]))
    assert objects.deployment_progressing(d, {**d["status"], "updatedReplicas": 2})
    assert objects.deployment_progressing(d, {**d["status"], "replicas": 3})
    assert objects.deployment_progressing(d, {**d["status"], "availableReplicas": 4})


@pytest.mark.parametrize(
    ("reason", "minutes", "expected"),
    [
        ("ReplicaSetUpdated", 9, False),
        ("ReplicaSetUpdated", 11, True),
        ("NewReplicaSetAvailable", 60, False),
        ("ProgressDeadlineExceeded", 0, True),
    ],
)
def test_timing_out(reason: str, minutes: int, expected: bool) -> None:
    d = deployment()
    d["spec"]["progressDeadlineSeconds"] = 600
    status = {"conditions": [condition(reason)]}
    now = NOW + datetime.timedelta(minutes=minutes)
    assert objects.deployment_timed_out(d, status, now=now) is expected
    d["spec"]["progressDeadlineSeconds"] = objects.MAX_INT32
    assert not objects.deployment_timed_out(d, status, now=now)


def test_a_replicaset_failure_becomes_a_deployment_condition() -> None:
    failing = replicaset("b")
    failing["status"] = {
        "conditions": [
            {
                "type": "ReplicaFailure",
                "status": "True",
                "reason": "FailedCreate",
                "message": "quota",
                "lastTransitionTime": "2024-05-01T12:00:00Z",
            }
        ]
    }
    found = objects.replica_failure(None, [replicaset("a"), failing])
    assert found is not None
    assert (found["type"], found["reason"], found["lastUpdateTime"]) == (
        "ReplicaFailure",
        "FailedCreate",
        "2024-05-01T12:00:00Z",
    )
    assert objects.replica_failure(None, [replicaset("a")]) is None


def test_counts_read_spec_status_and_annotations() -> None:
    rs = replicaset("a", replicas=4, availableReplicas=2)
    rs["status"]["replicas"] = 5
    rs["metadata"]["annotations"].update({objects.DESIRED_REPLICAS: "4", objects.MAX_REPLICAS: "x"})
    counts = objects.counts(rs)
    assert (counts.replicas, counts.current, counts.available) == (4, 5, 2)
    assert (counts.desired, counts.max_replicas) == (4, None)
    assert (counts.pods, counts.sure_available) == (5, 2)
