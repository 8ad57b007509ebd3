"""Which partition a request path belongs to, the checks on a set of partitions, and
merged lists with their continue tokens."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, strategies as st

from arktos_lite.api import errors, partitions
from arktos_lite.client import _routing as routing

T = routing.Target


def part(name: str, start: str = "", end: str = "") -> partitions.Partition:
    return partitions.Partition(name, partitions.TenantRange(start, end))


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/api/v1/tenants/t2/namespaces/ns/pods/p", routing.Route(T.TENANT, "t2")),
        ("POST", "/api/v1/tenants/t2/namespaces/ns/pods/p/binding", routing.Route(T.TENANT, "t2")),
        ("GET", "/api/v1/watch/tenants/t2/namespaces/ns/pods", routing.Route(T.TENANT, "t2")),
        (
            "GET",
            "/apis/apps/v1/tenants/t2/namespaces/ns/deployments",
            routing.Route(T.TENANT, "t2"),
        ),
        ("GET", "/api/v1/tenants/t2", routing.Route(T.TENANT, "t2")),
        ("PUT", "/api/v1/tenants/t2/status", routing.Route(T.TENANT, "t2")),
        ("DELETE", "/api/v1/tenants/t2", routing.Route(T.TENANT, "t2")),
        ("GET", "/api/v1/tenants/t2/namespaces", routing.Route(T.TENANT, "t2")),
        ("GET", "/api/v1/tenants/all/pods", routing.Route(T.EVERYWHERE)),
        ("GET", "/api/v1/tenants/all/namespaces/ns/pods", routing.Route(T.EVERYWHERE)),
        ("DELETE", "/api/v1/tenants/all/namespaces/ns/pods", routing.Route(T.EVERYWHERE)),
        ("GET", "/apis/apps/v1/tenants/all/deployments", routing.Route(T.EVERYWHERE)),
        ("GET", "/api/v1/tenants", routing.Route(T.EVERYWHERE)),
        ("GET", "/api/v1/watch/tenants", routing.Route(T.EVERYWHERE)),
        ("POST", "/api/v1/tenants", routing.Route(T.NEW_TENANT)),
        ("GET", "/api/v1/nodes", routing.Route(T.DESIGNATED)),
        ("PATCH", "/api/v1/nodes/n1/status", routing.Route(T.DESIGNATED)),
        ("GET", "/api/v1/controllerinstances", routing.Route(T.DESIGNATED)),
        ("GET", "/api/v1/datapartitionconfigs", routing.Route(T.EVERYWHERE)),
        ("GET", "/api/v1/datapartitionconfigs/1", routing.Route(T.PARTITION, "1")),
        ("GET", "/api/v1/namespaces/ns/pods", routing.Route(T.TENANT, "me")),
        ("GET", "/api/v1/pods", routing.Route(T.TENANT, "me")),
        ("GET", "/api/v1/namespaces", routing.Route(T.TENANT, "me")),
        ("PUT", "/api/v1/namespaces/ns/finalize", routing.Route(T.TENANT, "me")),
        ("GET", "/apis/apps/v1/namespaces/ns/deployments/d", routing.Route(T.TENANT, "me")),
        ("GET", "/version", routing.Route(T.DESIGNATED)),
        ("GET", "/api", routing.Route(T.DESIGNATED)),
        ("GET", "/api/v1", routing.Route(T.DESIGNATED)),
        ("GET", "/apis/apps", routing.Route(T.DESIGNATED)),
        ("GET", "/openapi/v3", routing.Route(T.DESIGNATED)),
        ("GET", "/healthz?verbose=1", routing.Route(T.DESIGNATED)),
    ],
)
def test_routes(method: str, path: str, expected: routing.Route) -> None:
    assert routing.route(method, path, default_tenant="me") == expected


def test_a_tenant_named_all_is_only_an_object() -> None:
    assert routing.route("GET", "/api/v1/tenants/all", default_tenant="x") == routing.Route(
        T.TENANT, "all"
    )


def test_writes_across_tenants_go_to_the_designated_partition_which_refuses_them() -> None:
    route = routing.route("POST", "/api/v1/tenants/all/namespaces/ns/pods", default_tenant="x")
    assert route == routing.Route(T.DESIGNATED)


def test_a_new_tenant_goes_by_its_name() -> None:
    assert routing.new_tenant_name({"metadata": {"name": "t9"}}) == "t9"
    assert routing.new_tenant_name(b'{"metadata": {"name": "t9"}}') == "t9"
    with pytest.raises(ValueError, match="generateName"):
        routing.new_tenant_name({"metadata": {"generateName": "t-"}})
    with pytest.raises(ValueError, match=r"metadata\.name"):
        routing.new_tenant_name(b"not json")


# The set of partitions


def test_partitions_in_tenant_order_with_the_designated_one() -> None:
    mapping = routing.PartitionMap([part("b", "t2"), part("a", "", "t2")])
    assert [p.name for p in mapping.partitions] == ["a", "b"]
    assert mapping.designated.name == "a"
    assert mapping.holding("t1").name == "a"
    assert mapping.holding("t2").name == "b"
    assert mapping.holding("system").name == "a"


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ([], "at least one partition"),
        ([part("a", "", "m"), part("b", "k")], "overlap: tenant 'k' would be in both"),
        ([part("a"), part("b", "k")], "overlap"),
        ([part("a", "", "m"), part("b", "", "z"), part("c", "z")], "overlap"),
        ([part("a", "", "m"), part("b", "p")], "from 'm' up to 'p'"),
        ([part("a", "b")], "before 'b'"),
        ([part("a", "", "z")], "from 'z' on"),
        ([part("a", "", "m"), part("a", "m")], "two partitions are named 'a'"),
    ],
)
def test_partitions_must_hold_every_tenant_once(
    given: list[partitions.Partition], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        routing.PartitionMap(given)


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=6)


@given(bounds=st.lists(names, max_size=6, unique=True), tenant=names)
def test_split_ranges_hold_each_tenant_in_exactly_one_partition(
    bounds: list[str], tenant: str
) -> None:
    cuts = ["", *sorted(bounds), ""]
    given_parts = [
        part(f"p{i}", start, end) for i, (start, end) in enumerate(itertools.pairwise(cuts))
    ]
    mapping = routing.PartitionMap(reversed(given_parts))
    holders = [p for p in mapping.partitions if tenant in p.tenants]
    assert holders == [mapping.holding(tenant)]
    assert mapping.designated == mapping.holding("system")


# Merged lists


def test_merge_concatenates_in_order_without_a_version() -> None:
    first = {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"}}
    merged = routing.merge(
        [
            {**first, "items": [{"n": 1}]},
            {**first, "metadata": {"resourceVersion": "3"}, "items": [{"n": 2}]},
        ],
        continue_="next",
    )
    assert merged == {
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"continue": "next"},
        "items": [{"n": 1}, {"n": 2}],
    }


def test_merge_of_tables_concatenates_rows() -> None:
    merged = routing.merge([{"kind": "Table", "rows": [1]}, {"kind": "Table", "rows": [2]}])
    assert merged["rows"] == [1, 2]


def test_answers_that_are_not_lists_are_not_merged() -> None:
    status = {"kind": "Status", "status": "Success"}
    assert routing.merge([{"items": []}, status]) == status


def test_continue_tokens_round_trip_and_foreign_ones_are_refused() -> None:
    token = routing.Continue("b", "inner").encode()
    assert routing.Continue.decode(token, known=["a", "b"]) == routing.Continue("b", "inner")
    with pytest.raises(errors.BadRequest, match="not made by a list of these partitions"):
        routing.Continue.decode(token, known=["a"])
    with pytest.raises(errors.BadRequest):
        routing.Continue.decode("eyJ7", known=["a"])
