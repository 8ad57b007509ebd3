"""The rollout arithmetic: surge and unavailability, rolling steps, proportional scaling.

The proportional cases are kube-controller-manager's own (`TestScale` in its deployment
sync tests); the rolling update is checked against a model of ReplicaSets whose pods and
status lag behind their spec in every order Hypothesis can find.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings, strategies as st

from arktos_lite.controllers.workload import _deployment_steps as steps

ROLLING = steps.StrategyType.ROLLING_UPDATE


def rolling(surge: steps.IntOrPercent, unavailable: steps.IntOrPercent) -> steps.Strategy:
    return steps.Strategy(type=ROLLING, max_surge=surge, max_unavailable=unavailable)


# Surge and unavailability


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [
        (3, 10, True, 3),
        ("25%", 10, True, 3),
        ("25%", 10, False, 2),
        ("0%", 10, True, 0),
        ("100%", 7, False, 7),
        ("30%", 3, True, 1),
        ("30%", 3, False, 0),
        ("50%", 0, True, 0),
    ],
)
def test_scaled_values_round_as_kubernetes(
    value: steps.IntOrPercent, total: int, round_up: bool, expected: int
) -> None:
    assert steps.scaled_value(value, total=total, round_up=round_up) == expected


@pytest.mark.parametrize("value", ["3", "abc%", "%", "1.5%", True])
def test_a_string_that_is_no_percentage_is_refused(value: steps.IntOrPercent) -> None:
    with pytest.raises(ValueError, match="IntOrString"):
        steps.scaled_value(value, total=10, round_up=True)


@given(
    percent=st.integers(min_value=0, max_value=200),
    total=st.integers(min_value=0, max_value=10_000),
)
def test_percentages_round_up_for_surge_and_down_for_unavailable(percent: int, total: int) -> None:
    up = steps.scaled_value(f"{percent}%", total=total, round_up=True)
    down = steps.scaled_value(f"{percent}%", total=total, round_up=False)
    exact = percent * total / 100
    assert down <= exact <= up
    assert up - down in (0, 1)
    assert (up == down) == (percent * total % 100 == 0)


@given(
    surge=st.one_of(st.integers(0, 50), st.integers(0, 100).map(lambda p: f"{p}%")),
    unavailable=st.one_of(st.integers(0, 50), st.integers(0, 100).map(lambda p: f"{p}%")),
    desired=st.integers(0, 1000),
)
def test_fenceposts_are_never_both_zero(
    surge: steps.IntOrPercent, unavailable: steps.IntOrPercent, desired: int
) -> None:
    fenceposts = steps.resolve_fenceposts(surge, unavailable, desired=desired)
    assert fenceposts.surge == steps.scaled_value(surge, total=desired, round_up=True)
    if fenceposts.surge == 0:
        assert fenceposts.unavailable >= 1
    strategy = rolling(surge, unavailable)
    assert 0 <= strategy.unavailable(desired) <= desired


def test_the_default_strategy_allows_a_quarter_each_way() -> None:
    strategy = steps.Strategy.from_spec({})
    assert strategy.rolling
    assert (strategy.surge(10), strategy.unavailable(10)) == (3, 2)
    assert (strategy.surge(1), strategy.unavailable(1)) == (1, 0)


def test_both_zero_after_rounding_makes_one_unavailable() -> None:
    strategy = rolling("10%", "10%")
    # 10% of 5: surge rounds up to 1, unavailable down to 0.
    assert (strategy.surge(5), strategy.unavailable(5)) == (1, 0)
    strategy = rolling(0, "10%")
    assert (strategy.surge(5), strategy.unavailable(5)) == (0, 1)


def test_recreate_allows_neither_surge_nor_unavailability() -> None:
    strategy = steps.Strategy.from_spec({"strategy": {"type": "Recreate"}})
    assert not strategy.rolling
    assert (strategy.surge(10), strategy.unavailable(10)) == (0, 0)


def test_strategy_reads_ints_and_percentages_from_the_spec() -> None:
    spec = {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2}}}
    strategy = steps.Strategy.from_spec(spec)
    assert strategy.max_surge == 2
    assert strategy.max_unavailable == "25%"


# One rolling step


def counts(
    name: str, replicas: int, *, current: int | None = None, available: int | None = None
) -> steps.Counts:
    return steps.Counts(
        name=name,
        replicas=replicas,
        current=replicas if current is None else current,
        available=replicas if available is None else available,
        created=f"2024-01-01T00:00:{ord(name[-1]) % 60:02d}Z",
    )


def test_the_first_step_surges_the_new_replicaset() -> None:
    plan = steps.rolling_step(
        replicas=10,
        strategy=rolling("25%", "25%"),
        new=counts("v2", 0),
        olds=[counts("v1", 10)],
    )
    assert plan == [steps.Scale("v2", 3)]


def test_old_pods_go_only_as_far_as_availability_allows() -> None:
    plan = steps.rolling_step(
        replicas=10,
        strategy=rolling("25%", "25%"),
        new=counts("v2", 3, available=0),
        olds=[counts("v1", 10)],
    )
    # 13 pods, 8 must stay available, 3 new ones are not yet.
    assert plan == [steps.Scale("v1", 8)]


def test_a_scaled_down_replicaset_counts_its_pods_until_they_are_gone() -> None:
    plan = steps.rolling_step(
        replicas=10,
        strategy=rolling("25%", "25%"),
        new=counts("v2", 3, available=0),
        olds=[counts("v1", 8, current=10, available=10)],
    )
    # Kubernetes would grow v2 to 5 now, making 15 pods while v1's extra two still run.
    assert plan == []


def test_unhealthy_old_replicas_go_first() -> None:
    plan = steps.rolling_step(
        replicas=10,
        strategy=rolling(0, 4),
        new=counts("v2", 0),
        olds=[counts("v1", 10, available=6)],
    )
    # The four unavailable pods go at once, which costs nothing; then none of the six
    # available ones may.
    assert plan == [steps.Scale("v1", 6)]
    plan = steps.rolling_step(
        replicas=10,
        strategy=rolling(0, 1),
        new=counts("v2", 0),
        olds=[counts("v1", 10, available=6)],
    )
    # Only one pod may be missing in all: one unavailable pod goes.
    assert plan == [steps.Scale("v1", 9)]


def test_the_new_replicaset_shrinks_to_replicas() -> None:
    plan = steps.rolling_step(
        replicas=4, strategy=rolling(1, 1), new=counts("v2", 6), olds=[counts("v1", 0)]
    )
    assert plan == [steps.Scale("v2", 4)]


def test_a_finished_rollout_takes_no_step() -> None:
    plan = steps.rolling_step(
        replicas=4, strategy=rolling(1, 1), new=counts("v2", 4), olds=[counts("v1", 0)]
    )
    assert plan == []


@dataclasses.dataclass
class SimReplicaSet:
    """A ReplicaSet with pods, and a status that is refreshed only when asked to."""

    name: str
    created: str
    spec: int
    pods: list[bool]
    status: tuple[int, int] = (0, 0)

    def counts(self) -> steps.Counts:
        return steps.Counts(
            name=self.name,
            replicas=self.spec,
            current=self.status[0],
            available=self.status[1],
            created=self.created,
        )

    def reconcile(self) -> None:
        while len(self.pods) < self.spec:
            self.pods.append(False)
        while len(self.pods) > self.spec:
            # The ReplicaSet controller deletes pods that are not ready first.
            self.pods.remove(all(self.pods))

    def refresh(self) -> None:
        self.status = (len(self.pods), sum(self.pods))


class Simulation:
    def __init__(self, *, replicas: int, strategy: steps.Strategy, old_size: int) -> None:
        self.replicas = replicas
        self.strategy = strategy
        old = SimReplicaSet("v1", "2024-01-01T00:00:00Z", old_size, [True] * old_size)
        old.refresh()
        self.old = old
        self.new = SimReplicaSet("v2", "2024-01-01T00:00:01Z", 0, [])
        self.sets = [self.old, self.new]

    def step(self) -> None:
        plan = steps.rolling_step(
            replicas=self.replicas,
            strategy=self.strategy,
            new=self.new.counts(),
            olds=[self.old.counts()],
        )
        for scale in plan:
            for rs in self.sets:
                if rs.name == scale.name:
                    rs.spec = scale.replicas

    def ready_one(self, which: int) -> None:
        waiting = [(rs, i) for rs in self.sets for i, ready in enumerate(rs.pods) if not ready]
        if waiting:
            rs, index = waiting[which % len(waiting)]
            rs.pods[index] = True

    def total(self) -> int:
        return sum(len(rs.pods) for rs in self.sets)

    def ready(self) -> int:
        return sum(sum(rs.pods) for rs in self.sets)

    def done(self) -> bool:
        return self.old.pods == [] and self.new.pods == [True] * self.replicas


fenceposts = st.one_of(st.integers(0, 4), st.sampled_from(["0%", "10%", "25%", "50%", "100%"]))


@settings(max_examples=300, deadline=None)
@given(
    replicas=st.integers(0, 12),
    surge=fenceposts,
    unavailable=fenceposts,
    actions=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 50)), max_size=150),
)
def test_a_rolling_update_keeps_its_bounds_at_every_moment_and_finishes(
    replicas: int,
    surge: steps.IntOrPercent,
    unavailable: steps.IntOrPercent,
    actions: list[tuple[int, int]],
) -> None:
    strategy = rolling(surge, unavailable)
    sim = Simulation(replicas=replicas, strategy=strategy, old_size=replicas)
    most = replicas + strategy.surge(replicas)
    least = replicas - strategy.unavailable(replicas)

    def check() -> None:
        assert sim.total() <= most, "more pods than replicas + maxSurge"
        assert sim.ready() >= least, "fewer available pods than replicas - maxUnavailable"

    # Any interleaving of the controller, the ReplicaSets' pods, their status and readiness.
    for action, which in actions:
        if action == 0:
            sim.step()
        elif action in (1, 2):
            sim.sets[which % 2].reconcile()
        elif action == 3:
            sim.sets[which % 2].refresh()
        else:
            sim.ready_one(which)
        check()
    # Then everything keeps happening, and the rollout must end.
    for _ in range(4 * (replicas + 2)):
        if sim.done():
            break
        sim.step()
        check()
        for rs in sim.sets:
            rs.reconcile()
            check()
            rs.refresh()
        for _ in range(sim.total()):
            sim.ready_one(0)
        check()
    assert sim.done()


# Proportional scaling: kube-controller-manager's TestScale cases.


def annotated(
    name: str, replicas: int, *, created: str, max_replicas: int, available: int = 0
) -> steps.Counts:
    return steps.Counts(
        name=name,
        replicas=replicas,
        current=replicas,
        available=available,
        created=created,
        max_replicas=max_replicas,
    )


OLD = "2024-01-01T00:00:00Z"
MIDDLE = "2024-01-01T00:01:00Z"
NEW = "2024-01-01T00:02:00Z"


@pytest.mark.parametrize(
    ("replicas", "surge", "before", "new", "olds", "expected"),
    [
        pytest.param(10, 0, 5, ("v2", 2, NEW), [("v1", 3, OLD)], {"v2": 4, "v1": 6}, id="5->10"),
        pytest.param(3, 0, 5, ("v2", 2, NEW), [("v1", 3, OLD)], {"v2": 1, "v1": 2}, id="5->3"),
        pytest.param(4, 0, 9, ("v2", 8, NEW), [("v1", 1, OLD)], {"v2": 4, "v1": 0}, id="9->4"),
        pytest.param(
            10,
            0,
            7,
            ("v3", 2, NEW),
            [("v2", 3, MIDDLE), ("v1", 2, OLD)],
            {"v3": 3, "v2": 4, "v1": 3},
            id="7->10",
        ),
        pytest.param(
            8,
            0,
            13,
            ("v3", 2, NEW),
            [("v2", 8, MIDDLE), ("v1", 3, OLD)],
            {"v3": 1, "v2": 5, "v1": 2},
            id="13->8",
        ),
        pytest.param(
            4,
            0,
            3,
            ("v3", 1, NEW),
            [("v2", 1, MIDDLE), ("v1", 1, OLD)],
            {"v3": 2, "v2": 1, "v1": 1},
            id="leftover 3->4",
        ),
        pytest.param(
            3,
            0,
            4,
            ("v3", 2, NEW),
            [("v2", 1, MIDDLE), ("v1", 1, OLD)],
            {"v3": 1, "v2": 1, "v1": 1},
            id="leftover 4->3",
        ),
        pytest.param(
            20, 2, 12, ("v2", 6, NEW), [("v1", 6, OLD)], {"v2": 11, "v1": 11}, id="with surge"
        ),
        pytest.param(0, 2, 12, ("v2", 6, NEW), [("v1", 6, OLD)], {"v2": 0, "v1": 0}, id="to zero"),
    ],
)
def test_proportional_scaling(
    replicas: int,
    surge: int,
    before: int,
    new: tuple[str, int, str],
    olds: list[tuple[str, int, str]],
    expected: dict[str, int],
) -> None:
    plan = steps.scale_plan(
        replicas=replicas,
        strategy=rolling(surge, 0),
        new=annotated(new[0], new[1], created=new[2], max_replicas=before),
        olds=[annotated(n, r, created=c, max_replicas=before) for n, r, c in olds],
        status_replicas=before,
    )
    assert {scale.name: scale.replicas for scale in plan} == expected
    assert all(scale.annotations for scale in plan)


def test_changing_surge_and_size_together() -> None:
    # 10 replicas with maxSurge 3 scaled to 50 with maxSurge 6.
    plan = steps.scale_plan(
        replicas=50,
        strategy=rolling(6, 0),
        new=annotated("v2", 5, created=NEW, max_replicas=13),
        olds=[annotated("v1", 8, created=OLD, max_replicas=13)],
        status_replicas=13,
    )
    assert {scale.name: scale.replicas for scale in plan} == {"v2": 22, "v1": 34}


def test_without_annotations_the_deployment_status_is_the_size_scaled_from() -> None:
    plan = steps.scale_plan(
        replicas=10,
        strategy=rolling(0, 1),
        new=steps.Counts("v2", 2, created=NEW),
        olds=[steps.Counts("v1", 3, created=OLD)],
        status_replicas=5,
    )
    assert {scale.name: scale.replicas for scale in plan} == {"v2": 4, "v1": 6}


def test_a_single_active_replicaset_takes_the_new_size() -> None:
    plan = steps.scale_plan(
        replicas=12,
        strategy=rolling(0, 1),
        new=counts("v2", 10),
        olds=[counts("v1", 0)],
        status_replicas=10,
    )
    assert plan == [steps.Scale("v2", 12)]
    # Already there: nothing to do.
    plan = steps.scale_plan(
        replicas=10, strategy=rolling(0, 1), new=counts("v2", 10), olds=[], status_replicas=10
    )
    assert plan == []


def test_with_no_active_replicaset_the_newest_grows() -> None:
    plan = steps.scale_plan(
        replicas=3,
        strategy=rolling(0, 1),
        new=None,
        olds=[counts("v1", 0), counts("v2", 0)],
        status_replicas=0,
    )
    assert plan == [steps.Scale("v2", 3)]


def test_a_saturated_new_replicaset_scales_adopted_old_ones_down() -> None:
    new = dataclasses.replace(counts("v2", 3), desired=3)
    plan = steps.scale_plan(
        replicas=3, strategy=rolling(1, 1), new=new, olds=[counts("v1", 2)], status_replicas=5
    )
    assert plan == [steps.Scale("v1", 0)]


def test_recreate_is_not_scaled_proportionally() -> None:
    plan = steps.scale_plan(
        replicas=5,
        strategy=steps.Strategy(type=steps.StrategyType.RECREATE),
        new=counts("v2", 2),
        olds=[counts("v1", 2)],
        status_replicas=4,
    )
    assert plan == []


@settings(max_examples=300)
@given(
    sizes=st.lists(st.integers(0, 30), min_size=1, max_size=5),
    replicas=st.integers(0, 60),
    surge=st.integers(0, 5),
    before=st.integers(0, 60),
)
def test_proportional_scaling_lands_on_replicas_plus_surge(
    sizes: list[int], replicas: int, surge: int, before: int
) -> None:
    sets = [
        steps.Counts(f"v{i}", size, created=f"2024-01-01T00:00:{i:02d}Z", max_replicas=before)
        for i, size in enumerate(sizes)
    ]
    *olds, new = sets
    plan = steps.scale_plan(
        replicas=replicas, strategy=rolling(surge, 0), new=new, olds=olds, status_replicas=before
    )
    after = {counts.name: counts.replicas for counts in sets}
    after.update({scale.name: scale.replicas for scale in plan})
    assert all(size >= 0 for size in after.values())
    active = [counts for counts in sets if counts.replicas > 0]
    if len(active) > 1 and not steps.is_saturated(new, replicas=replicas):
        allowed = replicas + surge if replicas else 0
        assert sum(after.values()) == allowed or (
            # Rounding never pushes a set below zero: then less goes.
            sum(after.values()) > allowed and any(size == 0 for size in after.values())
        )
        # Never does a set that had no replicas get some.
        assert all(after[c.name] == 0 for c in sets if c.replicas == 0)
