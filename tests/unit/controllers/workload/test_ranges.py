"""Splitting the hash space among instances, and the selectors of one share."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, strategies as st

from arktos_lite.api import errors, selectors
from arktos_lite.controllers import workload
from arktos_lite.controllers.workload import _ranges as ranges

TOP = 2**63 - 1
names = st.sets(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True), min_size=1, max_size=40)


def test_arktos_keys_for_two_and_three_instances() -> None:
    assert workload.controller_keys(1) == [TOP]
    assert workload.controller_keys(2) == [4611686018427387904, 9223372036854775807]
    assert workload.controller_keys(3) == [
        3074457345618258603,
        6148914691236517205,
        9223372036854775807,
    ]


def test_shares_follow_name_order() -> None:
    split = workload.split(["replicaset-b", "replicaset-a"])
    assert split["replicaset-a"] == workload.HashRange(low=-1, high=4611686018427387904)
    assert split["replicaset-b"] == workload.HashRange(low=4611686018427387904, high=TOP)


@given(names)
def test_shares_cover_the_space_exactly_once(instance_names: set[str]) -> None:
    split = workload.split(instance_names)
    assert set(split) == instance_names
    shares = [split[name] for name in sorted(instance_names)]
    assert shares[0].low == -1
    assert 0 in shares[0]
    assert shares[-1].high == TOP
    assert TOP in shares[-1]
    for before, after in itertools.pairwise(shares):
        # Adjacent: each starts right after the one before ends.
        assert after.low == before.high
        assert before.high not in after
        assert before.high in before
    sizes = [share.high - share.low for share in shares]
    assert max(sizes) - min(sizes) <= 2
    assert sum(sizes) == TOP + 1
    assert [share.high for share in shares] == workload.controller_keys(len(shares))


@given(names, st.integers(min_value=0, max_value=TOP))
def test_every_key_has_exactly_one_owner(instance_names: set[str], key: int) -> None:
    split = workload.split(instance_names)
    assert sum(1 for share in split.values() if key in share) == 1
    assert ranges.owner_of(split, key) is not None


@given(names, names)
def test_fingerprints_agree_exactly_when_memberships_do(a: set[str], b: set[str]) -> None:
    assert (ranges.fingerprint(a) == ranges.fingerprint(b)) == (a == b)
    assert ranges.fingerprint(sorted(a)) == ranges.fingerprint(reversed(sorted(a)))


def test_no_instances_no_shares() -> None:
    assert workload.split([]) == {}
    with pytest.raises(ValueError, match="at least one"):
        workload.controller_keys(0)


bounds = st.integers(min_value=-1, max_value=TOP)


@given(bounds, bounds, bounds, bounds, st.integers(min_value=0, max_value=TOP))
def test_intersection_and_containment(a: int, b: int, c: int, d: int, key: int) -> None:
    x = workload.HashRange(low=min(a, b), high=max(a, b))
    y = workload.HashRange(low=min(c, d), high=max(c, d))
    both = ranges.intersect(x, y)
    assert (key in both) == (key in x and key in y)
    assert ranges.within(both, x)
    assert ranges.within(both, y)
    assert ranges.within(x, y) == all(k in y for k in (x.low + 1, x.high) if k in x)


@given(bounds, bounds, st.integers(min_value=0, max_value=TOP))
def test_the_selectors_select_what_the_range_contains(a: int, b: int, key: int) -> None:
    keys = workload.HashRange(low=min(a, b), high=max(a, b))
    own = selectors.FieldSelector.parse(keys.field_selector())
    assert own.matches({"metadata": {"hashKey": key}}) == (key in keys)
    owned = selectors.FieldSelector.parse(keys.owner_selector("ReplicaSet"))
    pod = {"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "hashKey": key}]}}
    assert owned.matches(pod) == (key in keys)
    assert not owned.matches({"metadata": {}})


def test_the_empty_range_selects_nothing() -> None:
    empty = workload.HashRange.empty()
    assert empty.is_empty
    assert 0 not in empty
    assert -1 not in empty
    selector = selectors.FieldSelector.parse(empty.field_selector())
    assert not selector.matches({"metadata": {"hashKey": 0}})
    assert str(empty) == "(empty)"
    assert str(workload.HashRange.whole()) == f"[0, {TOP}]"
    assert str(workload.HashRange(low=5, high=9)) == "(5, 9]"


def test_selectors_are_valid_for_the_api_server() -> None:
    for keys in (workload.HashRange.whole(), workload.HashRange.empty()):
        for text in (keys.field_selector(), keys.owner_selector("Deployment")):
            parsed = selectors.FieldSelector.parse(text)
            assert not parsed.empty
    with pytest.raises(errors.BadRequest):
        selectors.FieldSelector.parse("metadata.hashkey=gt:x")


def test_hash_ranges_do_not_hold_what_is_not_an_int() -> None:
    assert "5" not in workload.HashRange.whole()


def test_the_orphan_selector_selects_objects_without_such_an_owner() -> None:
    orphans = selectors.FieldSelector.parse(workload.orphan_selector("ReplicaSet"))
    assert orphans.matches({"metadata": {}})
    assert orphans.matches({"metadata": {"ownerReferences": [{"kind": "Job", "hashKey": 3}]}})
    owned = {"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "hashKey": 3}]}}
    assert not orphans.matches(owned)
