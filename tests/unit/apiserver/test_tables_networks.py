"""The Table `kubectl get networks` shows: NAME TYPE VPC PHASE DNS AGE."""

from __future__ import annotations

import datetime
from typing import Any

from arktos_lite.api import _resources as resources
from arktos_lite.apiserver import _tables as tables

NOW = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)
NETWORKS = resources.Registry().by_kind("arktos.futurewei.com", "Network")
Obj = dict[str, Any]


def table(*objs: Obj) -> Obj:
    assert NETWORKS is not None
    return tables.table(NETWORKS, list(objs), now=NOW)


def network(name: str, spec: Obj, status: Obj | None = None) -> Obj:
    obj: Obj = {
        "metadata": {"name": name, "tenant": "t1", "creationTimestamp": "2024-04-28T12:00:00Z"},
        "spec": spec,
    }
    if status is not None:
        obj["status"] = status
    return obj


def test_the_columns_are_arktos_networks() -> None:
    result = table()
    names = [c["name"].upper() for c in result["columnDefinitions"] if c["priority"] == 0]
    assert names == ["NAME", "TYPE", "VPC", "PHASE", "DNS", "AGE"]
    assert result["columnDefinitions"][0]["format"] == "name"


def test_cells_show_type_vpc_phase_and_dns() -> None:
    result = table(
        network("default", {"type": "flat"}, {"phase": "Ready"}),
        network(
            "m",
            {"type": "mizar", "vpcID": "vpc0"},
            {"phase": "Ready", "dnsServiceIP": "10.0.0.10"},
        ),
        network("new", {"type": "vpc", "vpcID": "v"}),
    )
    rows = [row["cells"] for row in result["rows"]]
    assert rows == [
        ["default", "flat", "<none>", "Ready", "<none>", "3d"],
        ["m", "mizar", "vpc0", "Ready", "10.0.0.10", "3d"],
        ["new", "vpc", "v", "<none>", "<none>", "3d"],
    ]
