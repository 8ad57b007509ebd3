"""Validation of Networks (arktos.futurewei.com/v1): type, VPC, service IPAM and CIDRs,
status phase, and a type that never changes."""

from __future__ import annotations

from typing import Any

import pytest

from arktos_lite.api import _validation as validation
from arktos_lite.api._errors import CauseType

Obj = dict[str, Any]
GROUP = "arktos.futurewei.com"


def network(spec: Obj | None = None, status: Obj | None = None) -> Obj:
    obj: Obj = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Network",
        "metadata": {"name": "n", "tenant": "t1"},
        "spec": {"type": "flat"} if spec is None else spec,
    }
    if status is not None:
        obj["status"] = status
    return obj


def problems(obj: Obj, old: Obj | None = None) -> list[tuple[str, str]]:
    return [(e.field, e.type.value) for e in validation.validate(GROUP, "Network", obj, old)]


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "flat"},
        {"type": "mizar", "vpcID": "vpc0", "service": {"ipam": "External"}},
        {"type": "vpc", "vpcID": "vpc-1", "service": {"ipam": "Kubernetes"}},
        {"type": "flat", "service": {"cidrs": ["10.96.0.0/12", "fd00:10:96::/108"]}},
    ],
)
def test_valid_networks_pass(spec: Obj) -> None:
    assert problems(network(spec)) == []


def test_status_with_every_field_passes() -> None:
    status = {"phase": "Ready", "message": "ok", "dnsServiceIP": "10.0.0.10"}
    assert problems(network(status=status)) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, [("spec.type", CauseType.REQUIRED)]),
        ({"type": ""}, [("spec.type", CauseType.REQUIRED)]),
        ({"type": "bridge"}, [("spec.type", CauseType.NOT_SUPPORTED)]),
        ({"type": "vpc"}, [("spec.vpcID", CauseType.REQUIRED)]),
        ({"type": "flat", "vpcID": 3}, [("spec.vpcID", CauseType.TYPE_INVALID)]),
        (
            {"type": "flat", "service": {"ipam": "DHCP"}},
            [("spec.service.ipam", CauseType.NOT_SUPPORTED)],
        ),
        (
            {"type": "flat", "service": {"cidrs": ["10.0.0.0/8", "10.0.0.1/24", "nope"]}},
            [
                ("spec.service.cidrs[1]", CauseType.INVALID),
                ("spec.service.cidrs[2]", CauseType.INVALID),
            ],
        ),
        ({"type": "flat", "service": "x"}, [("spec.service", CauseType.TYPE_INVALID)]),
    ],
)
def test_bad_specs_are_refused(spec: Obj, expected: list[tuple[str, CauseType]]) -> None:
    assert problems(network(spec)) == [(f, c.value) for f, c in expected]


def test_cidr_problems_read_as_kubernetes_words_them() -> None:
    found = validation.validate(
        GROUP, "Network", network({"type": "flat", "service": {"cidrs": ["1.2.3.4/8"]}}), None
    )
    assert found[0].detail == "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
    assert found[0].value == "1.2.3.4/8"


@pytest.mark.parametrize(
    ("status", "field"),
    [
        ({"phase": "Done"}, "status.phase"),
        ({"dnsServiceIP": "ten"}, "status.dnsServiceIP"),
    ],
)
def test_bad_status_is_refused(status: Obj, field: str) -> None:
    assert [f for f, _ in problems(network(status=status))] == [field]


def test_the_type_never_changes() -> None:
    old = network({"type": "flat"})
    assert problems(network({"type": "mizar"}), old) == [("spec.type", "FieldValueInvalid")]
    # The rest of the spec may change.
    changed = network({"type": "flat", "service": {"cidrs": ["10.0.0.0/16"]}})
    assert problems(changed, old) == []


def test_names_are_dns_subdomains() -> None:
    obj = network()
    obj["metadata"] = {"name": "Not_Valid"}
    fields = {f for f, _ in problems(obj)}
    assert "metadata.name" in fields
