"""Expectations: satisfied exactly when everything expected was observed, or too old."""

from __future__ import annotations

import hypothesis
import pytest
import trio
import trio.testing
from hypothesis import stateful, strategies as st

from arktos_lite.machinery import _expectations as expectations

KEYS = st.sampled_from(["rs1", "rs2", "rs3"])
UIDS = st.sampled_from([f"uid-{i}" for i in range(6)])


async def test_unknown_keys_are_satisfied() -> None:
    assert expectations.Expectations[str]().satisfied("nothing")


async def test_creations_are_satisfied_once_all_are_observed() -> None:
    tracker = expectations.Expectations[str]()
    tracker.expect_creations("rs", 3)
    for _ in range(2):
        tracker.creation_observed("rs")
        assert not tracker.satisfied("rs")
    assert tracker.pending("rs") == (1, 0)
    tracker.creation_observed("rs")
    assert tracker.satisfied("rs")


async def test_only_expected_deletions_count_and_only_once() -> None:
    tracker = expectations.Expectations[str]()
    tracker.expect_deletions("rs", ["u1", "u2"])
    tracker.deletion_observed("rs", "other")
    tracker.deletion_observed("rs", "u1")
    tracker.deletion_observed("rs", "u1")
    assert not tracker.satisfied("rs")
    assert tracker.pending("rs") == (0, 1)
    tracker.deletion_observed("rs", "u2")
    assert tracker.satisfied("rs")


async def test_lowering_covers_writes_that_failed() -> None:
    tracker = expectations.Expectations[str]()
    tracker.expect_creations("rs", 2)
    tracker.creation_observed("rs")
    tracker.lower_expectations("rs", creations=1)
    assert tracker.satisfied("rs")


async def test_expectations_expire_after_five_minutes(mock_clock: trio.testing.MockClock) -> None:
    tracker = expectations.Expectations[str]()
    tracker.expect_creations("rs", 1)
    mock_clock.jump(expectations.EXPECTATIONS_TTL)
    assert not tracker.satisfied("rs")
    mock_clock.jump(0.001)
    assert tracker.satisfied("rs")
    # New expectations start a new five minutes.
    tracker.expect_creations("rs", 1)
    assert not tracker.satisfied("rs")


async def test_delete_forgets_the_key() -> None:
    tracker = expectations.Expectations[str]()
    tracker.expect_creations("rs", 5)
    tracker.delete("rs")
    assert tracker.satisfied("rs")
    tracker.creation_observed("rs")
    assert tracker.pending("rs") == (0, 0)


class ExpectationsMachine(stateful.RuleBasedStateMachine):
    """Against a model: satisfied iff unknown, everything observed, or older than the TTL."""

    clock: trio.testing.MockClock

    def __init__(self) -> None:
        super().__init__()
        self.tracker = expectations.Expectations[str](ttl=60.0)
        # key -> (creations left, uids left, extra deletions lowered, since)
        self.model: dict[str, tuple[int, set[str], int, float]] = {}

    @stateful.rule(key=KEYS, count=st.integers(0, 4))
    def expect_creations(self, key: str, count: int) -> None:
        self.tracker.expect_creations(key, count)
        self.model[key] = (count, set(), 0, trio.current_time())

    @stateful.rule(key=KEYS, uids=st.sets(UIDS, max_size=4))
    def expect_deletions(self, key: str, uids: set[str]) -> None:
        self.tracker.expect_deletions(key, uids)
        self.model[key] = (0, set(uids), 0, trio.current_time())

    @stateful.rule(key=KEYS)
    def creation_observed(self, key: str) -> None:
        self.tracker.creation_observed(key)
        if key in self.model:
            creations, uids, lowered, since = self.model[key]
            self.model[key] = (creations - 1, uids, lowered, since)

    @stateful.rule(key=KEYS, uid=UIDS)
    def deletion_observed(self, key: str, uid: str) -> None:
        self.tracker.deletion_observed(key, uid)
        if key in self.model:
            creations, uids, lowered, since = self.model[key]
            self.model[key] = (creations, uids - {uid}, lowered, since)

    @stateful.rule(key=KEYS, creations=st.integers(0, 2), deletions=st.integers(0, 2))
    def lower(self, key: str, creations: int, deletions: int) -> None:
        self.tracker.lower_expectations(key, creations=creations, deletions=deletions)
        if key in self.model:
            left, uids, lowered, since = self.model[key]
            self.model[key] = (left - creations, uids, lowered + deletions, since)

    @stateful.rule(key=KEYS)
    def delete(self, key: str) -> None:
        self.tracker.delete(key)
        self.model.pop(key, None)

    @stateful.rule(seconds=st.sampled_from([1.0, 30.0, 59.0, 61.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.jump(seconds)

    @stateful.invariant()
    def satisfied_iff_all_observed_or_expired(self) -> None:
        for key in ("rs1", "rs2", "rs3"):
            if key not in self.model:
                expected = True
            else:
                creations, uids, lowered, since = self.model[key]
                observed = creations <= 0 and len(uids) - lowered <= 0
                expected = observed or trio.current_time() - since > 60.0
            assert self.tracker.satisfied(key) == expected


async def test_expectations_follow_their_model(mock_clock: trio.testing.MockClock) -> None:
    ExpectationsMachine.clock = mock_clock
    stateful.run_state_machine_as_test(
        ExpectationsMachine,
        settings=hypothesis.settings(max_examples=200, stateful_step_count=40, deadline=None),
    )


@hypothesis.settings(deadline=None)
@hypothesis.given(count=st.integers(1, 20), observed=st.integers(0, 25))
def test_creations_satisfied_iff_all_observed(count: int, observed: int) -> None:
    async def main() -> None:
        tracker = expectations.Expectations[str]()
        tracker.expect_creations("rs", count)
        for _ in range(observed):
            tracker.creation_observed("rs")
        assert tracker.satisfied("rs") == (observed >= count)

    trio.run(main)


@pytest.mark.parametrize("uids", [[], ["a"], ["a", "b", "a"]])
async def test_expecting_deletions_counts_distinct_uids(uids: list[str]) -> None:
    tracker = expectations.Expectations[str]()
    tracker.expect_deletions("rs", uids)
    assert tracker.pending("rs") == (0, len(set(uids)))
