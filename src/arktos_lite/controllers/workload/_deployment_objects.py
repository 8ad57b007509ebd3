"""Reading and shaping Deployments and their ReplicaSets as JSON objects; no I/O.

What kube-controller-manager's `deployment/util` does, on the API's JSON. Guarantees:

* `template_hash` is a stable function of a pod template and the collision count: the
  FNV-1a hash of the template's canonical JSON (keys sorted), then of the count as
  Kubernetes adds it, written in decimal and spelled in the safe alphabet of
  `rand.SafeEncodeString` (no vowels, no look-alikes: a valid label value and name).
  Different collision counts give different hashes for one template.
* `equal_ignore_hash` compares pod templates as Kubernetes does: the `pod-template-hash`
  label does not count, and an empty map equals a missing one.
* Revisions: `revision` reads `deployment.kubernetes.io/revision`; `set_new_rs_annotations`
  copies the Deployment's annotations (all but the controller's own and kubectl's
  last-applied configuration), raises the ReplicaSet's revision when the new one is
  larger and then keeps the revision it had in `revision-history` (at most 2000 chars,
  oldest dropped first), as rolling back to an old ReplicaSet does.
* Conditions keep their `lastTransitionTime` while their status stays, and are replaced
  only when status or reason change (`set_condition`); `calculate_status` is the
  Deployment status its ReplicaSets add up to, with the `Available` condition.
* Status and condition objects leave out zero counts, as Go's `omitempty` does, so that
  a status written here reads the same as one written by Kubernetes.
"""

from __future__ import annotations

import copy
import datetime
import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from arktos_lite.api import objects, selectors, timestamps
from arktos_lite.controllers.workload import _deployment_steps as steps

Obj = dict[str, Any]

POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# Annotations of the Deployment a ReplicaSet does not inherit (and a rollback keeps).
NOT_COPIED = frozenset(
    {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO}
)
MAX_REVISION_HISTORY_CHARS = 2000
# A progressDeadlineSeconds of MaxInt32 means no deadline, as does none at all.
MAX_INT32 = 2**31 - 1

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV_OFFSET = 2166136261
_FNV_PRIME = 16777619


class ConditionType(enum.StrEnum):
    AVAILABLE = "Available"
    PROGRESSING = "Progressing"
    REPLICA_FAILURE = "ReplicaFailure"


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionReason(enum.StrEnum):
    REPLICA_SET_UPDATED = "ReplicaSetUpdated"
    FAILED_RS_CREATE = "ReplicaSetCreateError"
    NEW_REPLICA_SET = "NewReplicaSetCreated"
    FOUND_NEW_RS = "FoundNewReplicaSet"
    NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
    TIMED_OUT = "ProgressDeadlineExceeded"
    PAUSED = "DeploymentPaused"
    RESUMED = "DeploymentResumed"
    MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
    MINIMUM_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"


# Reading objects


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    return default


def replicas(obj: Mapping[str, Any]) -> int:
    """`spec.replicas`, 1 when unset (the API's default)."""
    return _int(objects.spec(obj).get("replicas"), 1)


def status_count(obj: Mapping[str, Any], field: str) -> int:
    return _int(objects.status(obj).get(field))


def is_controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    ref = objects.controller_ref(obj)
    return ref is not None and ref.get("uid") == objects.meta(owner).get("uid")


def label_selector(obj: Mapping[str, Any]) -> selectors.LabelSelector | None:
    """`spec.selector`, or None when it is missing or invalid."""
    raw = objects.spec(obj).get("selector")
    if not isinstance(raw, Mapping):
        return None
    try:
        return selectors.LabelSelector.from_dict(raw, path="spec.selector")
    except selectors.SelectorError:
        return None


def revision_history_limit(deployment: Mapping[str, Any]) -> int | None:
    """How many old ReplicaSets to keep; None keeps all."""
    limit = objects.spec(deployment).get("revisionHistoryLimit")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit == MAX_INT32:
        return None
    return limit


def progress_deadline(deployment: Mapping[str, Any]) -> int | None:
    """`progressDeadlineSeconds`; None when progress is not watched."""
    deadline = objects.spec(deployment).get("progressDeadlineSeconds")
    if not isinstance(deadline, int) or isinstance(deadline, bool) or deadline == MAX_INT32:
        return None
    return deadline


def counts(rs: Mapping[str, Any]) -> steps.Counts:
    """What the rollout arithmetic needs to know of `rs`."""
    notes = objects.annotations_of(rs)
    return steps.Counts(
        name=str(objects.meta(rs).get("name") or ""),
        replicas=_int(objects.spec(rs).get("replicas"), 1),
        current=status_count(rs, "replicas"),
        available=status_count(rs, "availableReplicas"),
        created=str(objects.meta(rs).get("creationTimestamp") or ""),
        desired=_int_annotation(notes, DESIRED_REPLICAS),
        max_replicas=_int_annotation(notes, MAX_REPLICAS),
    )


def _int_annotation(notes: Mapping[str, str], key: str) -> int | None:
    value = notes.get(key)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def by_creation(rs: Mapping[str, Any]) -> tuple[str, str]:
    """Oldest first, then by name."""
    meta = objects.meta(rs)
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))


# Pod templates and their hash


def fnv32a(data: bytes) -> int:
    value = _FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """`rand.SafeEncodeString`: each character mapped into an alphabet without vowels."""
    return "".join(_SAFE_ALPHABET[ord(char) % len(_SAFE_ALPHABET)] for char in text)


def template_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """The `pod-template-hash` of `template`; see the module docs."""
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        # As controller.ComputeHash: eight bytes, the count little-endian in the first four.
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4)
    return safe_encode(str(fnv32a(data)))


def without_hash(template: Mapping[str, Any]) -> Obj:
    """A copy of `template` without the `pod-template-hash` label."""
    copied: Obj = copy.deepcopy(dict(template))
    template_meta = copied.get("metadata")
    if isinstance(template_meta, dict) and isinstance(template_meta.get("labels"), dict):
        template_meta["labels"] = {
            k: v for k, v in template_meta["labels"].items() if k != POD_TEMPLATE_HASH
        }
    return copied


def _semantic(value: Any) -> Any:
    """Empty maps and lists as missing, as apimachinery's semantic equality has them."""
    if isinstance(value, Mapping):
        cleaned = {k: _semantic(v) for k, v in value.items()}
        return {
            k: v
            for k, v in cleaned.items()
            if v is not None and not (isinstance(v, Mapping | list) and not v)
        }
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def equal_ignore_hash(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two pod templates are the same but for `pod-template-hash`."""
    return bool(_semantic(without_hash(a)) == _semantic(without_hash(b)))


def template(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = objects.spec(obj).get("template")
    return value if isinstance(value, Mapping) else {}


def find_new(deployment: Mapping[str, Any], replica_sets: Iterable[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template is the Deployment's (`FindNewReplicaSet`)."""
    wanted = template(deployment)
    for rs in sorted(replica_sets, key=by_creation):
        if equal_ignore_hash(template(rs), wanted):
            return rs
    return None


# Revisions


def revision(obj: Mapping[str, Any]) -> int | None:
    """The revision annotation: 0 when missing, None when it is not a number."""
    value = objects.annotations_of(obj).get(REVISION)
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        return None


def max_revision(replica_sets: Iterable[Mapping[str, Any]]) -> int:
    return max((r for rs in replica_sets if (r := revision(rs)) is not None), default=0)


def last_revision(replica_sets: Iterable[Mapping[str, Any]]) -> int:
    """The second highest revision: the one before the current (`LastRevision`)."""
    highest = second = 0
    for rs in replica_sets:
        value = revision(rs)
        if value is None:
            continue
        if value >= highest:
            highest, second = value, highest
        elif value > second:
            second = value
    return second


def by_revision(rs: Mapping[str, Any]) -> tuple[int, str, str]:
    """Lowest revision first; unreadable ones by age (`ReplicaSetsByRevision`, roughly)."""
    value = revision(rs)
    return (value if value is not None else 0, *by_creation(rs))


def copy_annotations(deployment: Mapping[str, Any], notes: dict[str, str]) -> bool:
    """Copy the Deployment's annotations into a ReplicaSet's `notes`; whether any changed."""
    changed = False
    for key, value in objects.annotations_of(deployment).items():
        if key in NOT_COPIED or notes.get(key) == value:
            continue
        notes[key] = value
        changed = True
    return changed


def set_replicas_annotations(notes: dict[str, str], *, desired: int, maximum: int) -> bool:
    """Record the Deployment's replicas and replicas + maxSurge; whether any changed."""
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(maximum))):
        if notes.get(key) != value:
            notes[key] = value
            changed = True
    return changed


def replicas_annotations_need_update(
    notes: Mapping[str, str], *, desired: int, maximum: int
) -> bool:
    return notes.get(DESIRED_REPLICAS) != str(desired) or notes.get(MAX_REPLICAS) != str(maximum)


def set_new_rs_annotations(
    deployment: Mapping[str, Any],
    notes: dict[str, str],
    *,
    new_revision: int,
    exists: bool,
    maximum: int,
    history_limit: int = MAX_REVISION_HISTORY_CHARS,
) -> bool:
    """Bring the new ReplicaSet's `notes` up to date (`SetNewReplicaSetAnnotations`).

    Whether anything changed. A new one (`exists` false) also gets the replicas
    annotations; `maximum` is the Deployment's replicas + maxSurge.
    """
    changed = copy_annotations(deployment, notes)
    old_text = notes.get(REVISION)
    if old_text is None:
        old_revision = 0
    else:
        try:
            old_revision = int(old_text)
        except ValueError:
            return False
    if old_revision < new_revision:
        notes[REVISION] = str(new_revision)
        changed = True
        if old_text is not None:
            # Rolled back to this ReplicaSet: keep where it was before.
            notes[REVISION_HISTORY] = _append_history(
                notes.get(REVISION_HISTORY, ""), old_text, limit=history_limit
            )
    if not exists and set_replicas_annotations(
        notes, desired=replicas(deployment), maximum=maximum
    ):
        changed = True
    return changed


def _append_history(history: str, old: str, *, limit: int) -> str:
    if not history:
        return old
    kept = history.split(",")
    total = len(history) + len(old) + 1
    start = 0
    while total > limit and start < len(kept):
        total -= len(kept[start]) + 1
        start += 1
    if total > limit:
        return history
    return ",".join([*kept[start:], old])


def rollback_to(deployment: Mapping[str, Any]) -> int | None:
    """The revision the deprecated `rollback.to` annotation asks for, if any."""
    value = objects.annotations_of(deployment).get(ROLLBACK_TO)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def rollback_annotations(deployment: Mapping[str, Any], rs: Mapping[str, Any]) -> dict[str, str]:
    """The Deployment's annotations after rolling back to `rs` (`SetDeploymentAnnotationsTo`)."""
    result = {k: v for k, v in objects.annotations_of(deployment).items() if k in NOT_COPIED}
    result.update({k: v for k, v in objects.annotations_of(rs).items() if k not in NOT_COPIED})
    return result


# Conditions


def new_condition(
    type_: ConditionType,
    status_: ConditionStatus,
    *,
    reason: ConditionReason | str,
    message: str,
    now: datetime.datetime,
) -> Obj:
    stamp = timestamps.rfc3339(now)
    return {
        "type": str(type_),
        "status": str(status_),
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
        "reason": str(reason),
        "message": message,
    }


def get_condition(status_: Mapping[str, Any], type_: str) -> Obj | None:
    for condition in status_.get("conditions") or ():
        if isinstance(condition, dict) and condition.get("type") == type_:
            return condition
    return None


def set_condition(status_: Obj, condition: Obj) -> None:
    """Put `condition` in place unless one of its type has the same status and reason."""
    current = get_condition(status_, condition["type"])
    if (
        current is not None
        and current.get("status") == condition["status"]
        and current.get("reason") == condition["reason"]
    ):
        return
    if current is not None and current.get("status") == condition["status"]:
        condition = {**condition, "lastTransitionTime": current.get("lastTransitionTime")}
    kept = [c for c in status_.get("conditions") or () if c.get("type") != condition["type"]]
    status_["conditions"] = [*kept, condition]


def remove_condition(status_: Obj, type_: str) -> None:
    kept = [c for c in status_.get("conditions") or () if c.get("type") != type_]
    if kept:
        status_["conditions"] = kept
    else:
        status_.pop("conditions", None)


def replica_failure(
    new_rs: Mapping[str, Any] | None, all_sets: Iterable[Mapping[str, Any]]
) -> Obj | None:
    """The first `ReplicaFailure` of the new ReplicaSet, else of any other, as a
    Deployment condition."""
    candidates = [new_rs] if new_rs is not None else []
    for rs in [*candidates, *all_sets]:
        for condition in objects.status(rs).get("conditions") or ():
            if isinstance(condition, Mapping) and condition.get("type") == "ReplicaFailure":
                moment = condition.get("lastTransitionTime")
                return {
                    "type": str(ConditionType.REPLICA_FAILURE),
                    "status": condition.get("status"),
                    "lastUpdateTime": moment,
                    "lastTransitionTime": moment,
                    "reason": condition.get("reason"),
                    "message": condition.get("message"),
                }
    return None


# Status


STATUS_COUNTS = (
    "observedGeneration",
    "replicas",
    "updatedReplicas",
    "readyReplicas",
    "availableReplicas",
    "unavailableReplicas",
)


def normalized_status(status_: Mapping[str, Any]) -> Obj:
    """`status_` as Go would serialize it: zero counts and empty lists left out."""
    result: Obj = {}
    for key, value in status_.items():
        if value is None or (isinstance(value, list | dict) and not value):
            continue
        if key in STATUS_COUNTS and value == 0:
            continue
        result[key] = value
    return result


def calculate_status(
    deployment: Mapping[str, Any],
    all_sets: Sequence[Mapping[str, Any]],
    *,
    new_rs: Mapping[str, Any] | None,
    max_unavailable: int,
    now: datetime.datetime,
) -> Obj:
    """The status the ReplicaSets add up to, with the `Available` condition
    (`calculateStatus`)."""
    available = sum(status_count(rs, "availableReplicas") for rs in all_sets)
    asked = sum(_int(objects.spec(rs).get("replicas"), 1) for rs in all_sets)
    current: Obj = {
        "observedGeneration": _int(objects.meta(deployment).get("generation")),
        "replicas": sum(status_count(rs, "replicas") for rs in all_sets),
        "updatedReplicas": status_count(new_rs, "replicas") if new_rs is not None else 0,
        "readyReplicas": sum(status_count(rs, "readyReplicas") for rs in all_sets),
        "availableReplicas": available,
        # Negative while scaling down with more available than asked for.
        "unavailableReplicas": max(0, asked - available),
        "conditions": copy.deepcopy(list(objects.status(deployment).get("conditions") or ())),
    }
    collisions = objects.status(deployment).get("collisionCount")
    if collisions is not None:
        current["collisionCount"] = collisions
    if available >= replicas(deployment) - max_unavailable:
        condition = new_condition(
            ConditionType.AVAILABLE,
            ConditionStatus.TRUE,
            reason=ConditionReason.MINIMUM_REPLICAS_AVAILABLE,
            message="Deployment has minimum availability.",
            now=now,
        )
    else:
        condition = new_condition(
            ConditionType.AVAILABLE,
            ConditionStatus.FALSE,
            reason=ConditionReason.MINIMUM_REPLICAS_UNAVAILABLE,
            message="Deployment does not have minimum availability.",
            now=now,
        )
    set_condition(current, condition)
    return normalized_status(current)


def deployment_complete(deployment: Mapping[str, Any], status_: Mapping[str, Any]) -> bool:
    """Every replica updated and available, and the latest spec observed."""
    wanted = replicas(deployment)
    generation = _int(objects.meta(deployment).get("generation"))
    return (
        _int(status_.get("updatedReplicas")) == wanted
        and _int(status_.get("replicas")) == wanted
        and _int(status_.get("availableReplicas")) == wanted
        and _int(status_.get("observedGeneration")) >= generation
    )


def deployment_progressing(deployment: Mapping[str, Any], new_status: Mapping[str, Any]) -> bool:
    """Whether `new_status` shows progress over the Deployment's current status."""
    old_status = objects.status(deployment)

    def count(source: Mapping[str, Any], field: str) -> int:
        return _int(source.get(field))

    old_old = count(old_status, "replicas") - count(old_status, "updatedReplicas")
    new_old = count(new_status, "replicas") - count(new_status, "updatedReplicas")
    return (
        count(new_status, "updatedReplicas") > count(old_status, "updatedReplicas")
        or new_old < old_old
        or count(new_status, "readyReplicas") > count(old_status, "readyReplicas")
        or count(new_status, "availableReplicas") > count(old_status, "availableReplicas")
    )


def deployment_timed_out(
    deployment: Mapping[str, Any], new_status: Mapping[str, Any], *, now: datetime.datetime
) -> bool:
    """Whether the rollout made no progress for `progressDeadlineSeconds`."""
    deadline = progress_deadline(deployment)
    if deadline is None:
        return False
    condition = get_condition(new_status, ConditionType.PROGRESSING)
    if condition is None:
        return False
    # A finished rollout is not judged again until a new one starts.
    if condition.get("reason") == ConditionReason.NEW_RS_AVAILABLE:
        return False
    if condition.get("reason") == ConditionReason.TIMED_OUT:
        return True
    since = timestamps.parse(condition.get("lastUpdateTime"))
    if since is None:
        return False
    return since + datetime.timedelta(seconds=deadline) < now
