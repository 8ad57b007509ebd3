"""Partition configs: Arktos' file format, tenant ranges, the designated partition, and which
requests a partition holds."""

from __future__ import annotations

import itertools
import pathlib

import pytest
from hypothesis import given, strategies as st

from arktos_lite.api import errors, partitions, resources

REGISTRY = resources.Registry()


def core(plural: str) -> resources.Resource:
    resource = REGISTRY.get("", "v1", plural)
    assert resource is not None
    return resource


PODS = core("pods")
NAMESPACES = core("namespaces")
TENANTS = core("tenants")
NODES = core("nodes")


def holds(
    partition: partitions.Partition, resource: resources.Resource, *, tenant: str, name: str | None
) -> bool:
    return partition.misdirected(resource, tenant=tenant, name=name) is None


tenant_names = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


# --- Parsing ------------------------------------------------------------------------------


def test_one_line_gives_the_range() -> None:
    assert partitions.parse_partition_config("/registry/, a, m\n") == partitions.TenantRange(
        "a", "m"
    )


def test_empty_bounds_are_unbounded() -> None:
    tenants = partitions.parse_partition_config("/registry/pods/, , n")
    assert tenants == partitions.TenantRange("", "n")
    assert tenants.start == ""
    assert tenants != partitions.TenantRange()
    assert partitions.parse_partition_config("/registry/,,") == partitions.TenantRange()


def test_comments_blank_lines_and_per_resource_lines_of_one_range() -> None:
    text = """
    # partition 1 of 2
    /registry/pods/, n,
    /registry/deployments/ , n ,

    /registry/, n,
    """
    assert partitions.parse_partition_config(text) == partitions.TenantRange("n", "")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "/registry/, a",
            "line 1: expected 'keyPrefix, rangeStart, rangeEnd', not '/registry/, a'",
        ),
        ("/registry/, a, b, c", "line 1: expected 'keyPrefix, rangeStart, rangeEnd'"),
        ("registry/, a, b", "line 1: key prefix 'registry/' is not /registry/"),
        ("/registry/Pods/, a, b", "line 1: key prefix '/registry/Pods/' is not /registry/"),
        ("/registry/, m, a", "line 1: partition range start 'm' is not below end 'a'"),
        ("/registry/, m, m", "line 1: partition range start 'm' is not below end 'm'"),
        ("# only\n\n/registry/, a, m\n/registry/pods/, a, n", "line 4: range ['a', 'n') differs"),
        ("# nothing but comments\n", "no 'keyPrefix, rangeStart, rangeEnd' line"),
        ("", "no 'keyPrefix, rangeStart, rangeEnd' line"),
    ],
)
def test_bad_files_name_the_line_and_the_problem(text: str, problem: str) -> None:
    with pytest.raises(partitions.PartitionConfigError) as raised:
        partitions.parse_partition_config(text, source="p.conf")
    assert str(raised.value).startswith("p.conf")
    assert problem in str(raised.value)


def test_load_reads_the_file_and_names_the_partition(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "p1.conf"
    path.write_text("/registry/, n,\n")
    partition = partitions.load_partition_config(path, name="p1")
    assert partition == partitions.Partition("p1", partitions.TenantRange("n", ""))


def test_load_of_a_missing_or_bad_file_says_which(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "missing.conf"
    with pytest.raises(partitions.PartitionConfigError, match=r"missing\.conf: cannot read"):
        partitions.load_partition_config(missing, name="0")
    binary = tmp_path / "binary.conf"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(partitions.PartitionConfigError, match=r"binary\.conf: not UTF-8"):
        partitions.load_partition_config(binary, name="0")
    good = tmp_path / "good.conf"
    good.write_text("/registry/, , n\n")
    with pytest.raises(partitions.PartitionConfigError, match="service group id"):
        partitions.load_partition_config(good, name="")


# --- Ranges -------------------------------------------------------------------------------


@given(tenant_names, tenant_names, tenant_names)
def test_a_range_holds_the_names_from_start_up_to_end(start: str, end: str, tenant: str) -> None:
    if start and end and start >= end:
        with pytest.raises(ValueError, match="is not below end"):
            partitions.TenantRange(start, end)
        return
    tenants = partitions.TenantRange(start, end)
    assert (tenant in tenants) == ((not start or start <= tenant) and (not end or tenant < end))


@given(st.lists(tenant_names, min_size=1, max_size=4, unique=True), tenant_names)
def test_split_points_give_ranges_that_hold_each_tenant_exactly_once(
    points: list[str], tenant: str
) -> None:
    bounds = ["", *sorted(points), ""]
    ranges = [partitions.TenantRange(a, b) for a, b in itertools.pairwise(bounds)]
    assert sum(tenant in r for r in ranges) == 1
    assert sum(r.designated for r in ranges) == 1


def test_only_names_are_in_a_range() -> None:
    assert None not in partitions.TenantRange()
    assert 3 not in partitions.TenantRange()


def test_the_designated_partition_holds_the_system_tenant() -> None:
    assert partitions.TenantRange("", "").designated
    assert partitions.TenantRange("n", "").designated
    assert not partitions.TenantRange("", "n").designated
    assert not partitions.TenantRange("t", "").designated
    assert partitions.TenantRange("system", "system0").designated


def test_a_range_says_which_tenants_it_holds() -> None:
    assert str(partitions.TenantRange("", "n")) == "tenants from the first up to 'n'"
    assert str(partitions.TenantRange("n", "")) == "tenants from 'n' on"
    assert str(partitions.TenantRange("a", "n")) == "tenants from 'a' up to 'n'"


# --- DataPartitionConfig ------------------------------------------------------------------


def test_data_partition_config_of_a_bounded_range() -> None:
    partition = partitions.Partition("p0", partitions.TenantRange("", "n"))
    assert partition.data_partition_config() == {
        "kind": "DataPartitionConfig",
        "apiVersion": "v1",
        "metadata": {"name": "p0"},
        "serviceGroupId": "p0",
        "rangeStart": "",
        "isRangeStartValid": False,
        "rangeEnd": "n",
        "isRangeEndValid": True,
    }


@given(tenant_names, tenant_names, st.from_regex(r"[a-z0-9-]{1,8}", fullmatch=True))
def test_data_partition_config_round_trip(start: str, end: str, name: str) -> None:
    if start and end and start >= end:
        return
    partition = partitions.Partition(name, partitions.TenantRange(start, end))
    assert partitions.Partition.from_data_partition_config(partition.data_partition_config()) == (
        partition
    )


def test_from_data_partition_config_ignores_bounds_marked_invalid() -> None:
    obj = {
        "metadata": {"name": "x"},
        "rangeStart": "a",
        "isRangeStartValid": False,
        "rangeEnd": "m",
        "isRangeEndValid": True,
    }
    assert partitions.Partition.from_data_partition_config(obj) == partitions.Partition(
        "x", partitions.TenantRange("", "m")
    )


# --- What a partition holds ---------------------------------------------------------------

LOW = partitions.Partition("p0", partitions.TenantRange("", "n"))
HIGH = partitions.Partition("p1", partitions.TenantRange("n", ""))


def test_tenant_data_is_held_by_the_partition_of_its_tenant() -> None:
    assert holds(LOW, PODS, tenant="alpha", name="web")
    assert not holds(HIGH, PODS, tenant="alpha", name="web")
    assert holds(HIGH, NAMESPACES, tenant="zeta", name=None)
    assert not holds(LOW, NAMESPACES, tenant="zeta", name=None)


def test_a_tenant_object_is_held_where_its_name_is() -> None:
    assert holds(LOW, TENANTS, tenant="system", name="alpha")
    assert not holds(HIGH, TENANTS, tenant="system", name="alpha")
    # A list of tenants: each partition answers with its own.
    assert holds(LOW, TENANTS, tenant="system", name=None)
    assert holds(HIGH, TENANTS, tenant="system", name=None)


def test_other_cluster_scoped_objects_are_held_by_the_designated_partition() -> None:
    assert holds(HIGH, NODES, tenant="system", name="n1")
    assert holds(HIGH, NODES, tenant="system", name=None)
    assert not holds(LOW, NODES, tenant="system", name="n1")
    assert not holds(LOW, NODES, tenant="system", name=None)


def test_lists_across_tenants_are_held_everywhere() -> None:
    assert holds(LOW, PODS, tenant=resources.ALL_TENANTS, name=None)
    assert holds(HIGH, PODS, tenant=resources.ALL_TENANTS, name=None)


def test_misdirected_requests_are_421_naming_the_partition_and_the_tenant() -> None:
    error = HIGH.misdirected(PODS, tenant="alpha", name="web")
    assert isinstance(error, partitions.MisdirectedRequest)
    status = error.status()
    assert status["code"] == 421 == error.code
    assert status["reason"] == "MisdirectedRequest"
    assert error.reason is errors.Reason.MISDIRECTED_REQUEST
    assert status["message"] == (
        'tenant "alpha" is not served by this API server: it serves partition "p1" '
        "(tenants from 'n' on); send the request to the partition whose range holds \"alpha\""
    )
    nodes = LOW.misdirected(NODES, tenant="system", name=None)
    assert nodes is not None
    assert nodes.status()["message"] == (
        'nodes are cluster-scoped and live in the partition that holds tenant "system"; '
        "this API server serves partition \"p0\" (tenants from the first up to 'n')"
    )


def test_knowing_the_cluster_a_misdirected_request_is_told_where_to_go() -> None:
    cluster = [(LOW, "https://127.0.0.1:6443"), (HIGH, "https://127.0.0.1:6444")]
    error = LOW.misdirected(PODS, tenant="zeta", name="web", cluster=cluster)
    assert error is not None
    assert error.message == (
        'tenant "zeta" is not served by this API server: it serves partition "p0" '
        "(tenants from the first up to 'n'); partition \"p1\" (tenants from 'n' on) at "
        "https://127.0.0.1:6444 serves it"
    )
    tenant = HIGH.misdirected(TENANTS, tenant="system", name="acme", cluster=cluster)
    assert tenant is not None
    assert 'partition "p0"' in tenant.message.split(";")[1]
    nodes = LOW.misdirected(NODES, tenant="system", name=None, cluster=cluster)
    assert nodes is not None
    assert nodes.message.startswith(
        'nodes are cluster-scoped and live in the partition that holds tenant "system" '
        '(partition "p1" at https://127.0.0.1:6444);'
    )
