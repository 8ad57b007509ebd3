"""The arithmetic of a Deployment's rollout, on numbers only: no objects, no I/O.

This is kube-controller-manager's deployment arithmetic (`pkg/controller/deployment`,
v1.32) over `Counts`, what one ReplicaSet asks for and reports. Guarantees:

* `scaled_value` and `resolve_fenceposts` read `maxSurge` and `maxUnavailable` as
  Kubernetes does: an int as it is, a percentage of the desired replicas with maxSurge
  rounded up and maxUnavailable rounded down; when both come to zero, maxUnavailable is 1.
  `Strategy.unavailable` never exceeds the desired replicas, and a Recreate strategy
  allows neither surge nor unavailability.
* `rolling_step` is one step of a RollingUpdate: either the new ReplicaSet's size, or
  scale-downs of old ones (unhealthy replicas first, then oldest ReplicaSets first).
  Sizes it asks for never let the pods of all ReplicaSets exceed replicas + maxSurge,
  and never take away a pod needed for replicas - maxUnavailable to stay available.
  It counts conservatively, so that this holds for the pods that really exist while the
  ReplicaSets' status lags behind their spec: a ReplicaSet holds the larger of what it
  asks for and what it reported (pods of a scaled-down set that are not gone yet), and
  the smaller of those as available.
* `scale_plan` is the scaling of a Deployment whose replicas changed (or that is
  paused): one active ReplicaSet takes the new size; otherwise a RollingUpdate spreads
  the difference over the active ReplicaSets in proportion to their size, so that the
  total stays at replicas + maxSurge.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

IntOrPercent = int | str

DEFAULT_MAX_SURGE = "25%"
DEFAULT_MAX_UNAVAILABLE = "25%"

_PERCENT = re.compile(r"([+-]?[0-9]+)%")


class StrategyType(enum.StrEnum):
    ROLLING_UPDATE = "RollingUpdate"
    RECREATE = "Recreate"


def scaled_value(value: IntOrPercent, *, total: int, round_up: bool) -> int:
    """An IntOrString against `total`: an int as it is, `"N%"` as N% of `total` rounded.

    Raises ValueError for a string that is not a percentage, as apimachinery's
    `GetScaledValueFromIntOrPercent` does.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    match = _PERCENT.fullmatch(value)
    if match is None:
        raise ValueError(f"invalid value for IntOrString: {value!r} is not a percentage")
    product = int(match.group(1)) * total
    # Exact integer rounding; Go rounds the same quotient in float64.
    return -(-product // 100) if round_up else product // 100


@dataclasses.dataclass(frozen=True, slots=True)
class Fenceposts:
    surge: int
    unavailable: int


def resolve_fenceposts(
    max_surge: IntOrPercent | None, max_unavailable: IntOrPercent | None, *, desired: int
) -> Fenceposts:
    """maxSurge rounded up and maxUnavailable rounded down; unavailable 1 if both are 0."""
    surge = scaled_value(0 if max_surge is None else max_surge, total=desired, round_up=True)
    unavailable = scaled_value(
        0 if max_unavailable is None else max_unavailable, total=desired, round_up=False
    )
    if surge == 0 and unavailable == 0:
        # Validation refuses both zero; rounding down may still get there. Surging might
        # be impossible (quota), so unavailability is the one given room.
        unavailable = 1
    return Fenceposts(surge=surge, unavailable=unavailable)


@dataclasses.dataclass(frozen=True, slots=True)
class Strategy:
    """A Deployment's `spec.strategy`."""

    type: StrategyType = StrategyType.ROLLING_UPDATE
    max_surge: IntOrPercent = DEFAULT_MAX_SURGE
    max_unavailable: IntOrPercent = DEFAULT_MAX_UNAVAILABLE

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Strategy:
        """Read `spec.strategy`; what is missing takes the API's defaults."""
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == StrategyType.RECREATE:
            return cls(type=StrategyType.RECREATE)
        rolling = strategy.get("rollingUpdate") or {}
        surge = rolling.get("maxSurge")
        unavailable = rolling.get("maxUnavailable")
        return cls(
            type=StrategyType.ROLLING_UPDATE,
            max_surge=DEFAULT_MAX_SURGE if surge is None else surge,
            max_unavailable=DEFAULT_MAX_UNAVAILABLE if unavailable is None else unavailable,
        )

    @property
    def rolling(self) -> bool:
        return self.type is StrategyType.ROLLING_UPDATE

    def surge(self, replicas: int) -> int:
        """How many pods above `replicas` a rollout may run (`MaxSurge`)."""
        if not self.rolling:
            return 0
        return resolve_fenceposts(self.max_surge, self.max_unavailable, desired=replicas).surge

    def unavailable(self, replicas: int) -> int:
        """How many of `replicas` may be unavailable during a rollout (`MaxUnavailable`)."""
        if not self.rolling or replicas == 0:
            return 0
        fenceposts = resolve_fenceposts(self.max_surge, self.max_unavailable, desired=replicas)
        return min(fenceposts.unavailable, replicas)


@dataclasses.dataclass(frozen=True, slots=True)
class Counts:
    """What one ReplicaSet asks for and last reported."""

    name: str
    replicas: int
    """`spec.replicas`."""
    current: int = 0
    """`status.replicas`: the active pods it reported."""
    available: int = 0
    """`status.availableReplicas`."""
    created: str = ""
    """`metadata.creationTimestamp` (RFC 3339, which sorts as text)."""
    desired: int | None = None
    """The `desired-replicas` annotation: the Deployment's replicas when last scaled."""
    max_replicas: int | None = None
    """The `max-replicas` annotation: replicas + maxSurge when last scaled."""

    @property
    def pods(self) -> int:
        """The most pods it may hold: a scaled-down set still holds the pods it reported."""
        return max(self.replicas, self.current)

    @property
    def sure_available(self) -> int:
        """The fewest available pods it holds: a scaled-down set loses its extra ones."""
        return max(0, min(self.replicas, self.available))


@dataclasses.dataclass(frozen=True, slots=True)
class Scale:
    """Set ReplicaSet `name` to `replicas`.

    `annotations`: write the Deployment's replicas annotations even if the size stays
    (proportional scaling records the sizes it scaled from).
    """

    name: str
    replicas: int
    annotations: bool = False


def by_creation(counts: Counts) -> tuple[str, str]:
    """Oldest first; the name breaks ties (`ReplicaSetsByCreationTimestamp`)."""
    return (counts.created, counts.name)


def _oldest_first(sets: Iterable[Counts]) -> list[Counts]:
    return sorted(sets, key=by_creation)


def new_replicas(
    *, replicas: int, strategy: Strategy, new: Counts, all_sets: Sequence[Counts]
) -> int:
    """The size the new ReplicaSet may grow to now (`NewRSNewReplicas`).

    `all_sets` holds every ReplicaSet of the Deployment, the new one included.
    """
    if not strategy.rolling:
        return replicas
    max_total = replicas + strategy.surge(replicas)
    current = sum(counts.pods for counts in all_sets)
    if current >= max_total:
        return new.replicas
    return new.replicas + min(max_total - current, replicas - new.replicas)


def rolling_step(
    *, replicas: int, strategy: Strategy, new: Counts, olds: Sequence[Counts]
) -> list[Scale]:
    """One step of a RollingUpdate towards `replicas` pods of `new`; see the module docs.

    Empty when nothing may change now: the rollout waits for pods to become available
    or to go.
    """
    # reconcileNewReplicaSet
    if new.replicas > replicas:
        return [Scale(new.name, replicas)]
    if new.replicas < replicas:
        grown = new_replicas(replicas=replicas, strategy=strategy, new=new, all_sets=[*olds, new])
        if grown != new.replicas:
            return [Scale(new.name, grown)]
    # reconcileOldReplicaSets
    active = _oldest_first(old for old in olds if old.replicas > 0)
    old_pods = sum(old.replicas for old in active)
    if old_pods == 0:
        return []
    min_available = replicas - strategy.unavailable(replicas)
    new_unavailable = new.replicas - new.sure_available
    # Unavailable pods of the new set must not let the old ones shrink: that would take
    # availability below the minimum in a later step.
    max_scaled_down = old_pods + new.replicas - min_available - new_unavailable
    if max_scaled_down <= 0:
        return []
    sizes = {old.name: old.replicas for old in active}
    # Unhealthy replicas go first: removing them costs no availability, and left alone
    # they would block the rollout until its deadline.
    cleaned = 0
    for old in active:
        if cleaned >= max_scaled_down:
            break
        unhealthy = old.replicas - old.sure_available
        if unhealthy <= 0:
            continue
        count = min(max_scaled_down - cleaned, unhealthy)
        sizes[old.name] -= count
        cleaned += count
    available = new.sure_available + sum(min(sizes[old.name], old.available) for old in active)
    budget = available - min_available
    scaled = 0
    for old in active:
        if scaled >= budget:
            break
        if sizes[old.name] == 0:
            continue
        count = min(sizes[old.name], budget - scaled)
        sizes[old.name] -= count
        scaled += count
    return [Scale(old.name, sizes[old.name]) for old in active if sizes[old.name] != old.replicas]


def find_active_or_latest(new: Counts | None, olds: Sequence[Counts]) -> Counts | None:
    """The only ReplicaSet with replicas; with none, the new one or else the newest old one;
    None when several have replicas (`FindActiveOrLatest`)."""
    if new is None and not olds:
        return None
    newest_first = sorted(olds, key=by_creation, reverse=True)
    active = [counts for counts in [*newest_first, new] if counts is not None and counts.replicas]
    if not active:
        return new if new is not None else newest_first[0]
    if len(active) == 1:
        return active[0]
    return None


def is_saturated(new: Counts | None, *, replicas: int) -> bool:
    """Whether the new ReplicaSet has all the replicas, asked for and available."""
    return (
        new is not None
        and new.replicas == replicas
        and new.desired == replicas
        and new.available == replicas
    )


def _fraction(counts: Counts, *, replicas: int, surge: int, status_replicas: int) -> int:
    """How much `counts` should grow (or shrink) to keep its share (`getReplicaSetFraction`)."""
    if replicas == 0:
        return -counts.replicas
    max_now = replicas + surge
    before = counts.max_replicas
    if not before:
        # Scaled while paused, or made by something that does not annotate: the
        # Deployment's current size stands in.
        before = status_replicas
        if before == 0:
            return 0
    size = counts.replicas * max_now / before
    # Go's integer.RoundToInt32: half away from zero (sizes here are never negative).
    return int(size + 0.5) - counts.replicas


def _proportion(
    counts: Counts, *, replicas: int, surge: int, to_add: int, added: int, status_replicas: int
) -> int:
    if counts.replicas == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = _fraction(counts, replicas=replicas, surge=surge, status_replicas=status_replicas)
    allowed = to_add - added
    # Never past what is left to add (or to remove).
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def scale_plan(
    *,
    replicas: int,
    strategy: Strategy,
    new: Counts | None,
    olds: Sequence[Counts],
    status_replicas: int,
) -> list[Scale]:
    """The scaling of a Deployment to `replicas` in the middle of whatever it does.

    `status_replicas` is the Deployment's `status.replicas`, the size to scale from when
    a ReplicaSet does not say what it was scaled for.
    """
    only = find_active_or_latest(new, olds)
    if only is not None:
        return [] if only.replicas == replicas else [Scale(only.name, replicas)]
    if is_saturated(new, replicas=replicas):
        # Adopted old sets beside a complete new one: they go.
        return [Scale(old.name, 0) for old in olds if old.replicas > 0]
    if not strategy.rolling:
        return []
    active = [counts for counts in [*olds, new] if counts is not None and counts.replicas > 0]
    surge = strategy.surge(replicas)
    allowed = replicas + surge if replicas > 0 else 0
    to_add = allowed - sum(counts.replicas for counts in active)
    if to_add > 0:
        # Larger first; of equal ones the newer grows first.
        active.sort(key=by_creation, reverse=True)
        active.sort(key=lambda counts: -counts.replicas)
    elif to_add < 0:
        # Larger first; of equal ones the older shrinks first.
        active.sort(key=by_creation)
        active.sort(key=lambda counts: -counts.replicas)
    sizes: dict[str, int] = {}
    added = 0
    for counts in active:
        share = _proportion(
            counts,
            replicas=replicas,
            surge=surge,
            to_add=to_add,
            added=added,
            status_replicas=status_replicas,
        )
        sizes[counts.name] = counts.replicas + share
        added += share
    plan: list[Scale] = []
    for index, counts in enumerate(active):
        size = sizes[counts.name]
        if index == 0 and to_add != 0:
            # What rounding left over goes to the largest.
            size = max(0, size + to_add - added)
        plan.append(Scale(counts.name, size, annotations=True))
    return plan
