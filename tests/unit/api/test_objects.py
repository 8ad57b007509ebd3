"""Readers of an object's parts: absent, null and malformed parts read as empty, and what
they return is the object's own mapping. RFC 3339 timestamps parse to aware datetimes."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from arktos_lite.api import objects, timestamps

POD: dict[str, Any] = {
    "metadata": {
        "name": "web-1",
        "labels": {"app": "web"},
        "annotations": {"note": "x"},
        "ownerReferences": [
            {"kind": "Node", "uid": "n", "controller": False},
            "not a reference",
            {"kind": "ReplicaSet", "uid": "rs", "controller": True},
        ],
    },
    "spec": {"nodeName": "a"},
    "status": {"phase": "Running"},
}


def test_readers_return_the_objects_own_parts() -> None:
    assert objects.meta(POD) is POD["metadata"]
    assert objects.spec(POD) is POD["spec"]
    assert objects.status(POD) is POD["status"]
    assert objects.labels(POD) == {"app": "web"}
    assert objects.annotations_of(POD) == {"note": "x"}
    assert objects.controller_ref(POD) == {"kind": "ReplicaSet", "uid": "rs", "controller": True}


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"metadata": None, "spec": None, "status": None},
        {"metadata": "x", "spec": [1], "status": 3},
        {"metadata": {"labels": None, "annotations": ["a"], "ownerReferences": None}},
        {"metadata": {"ownerReferences": [{"uid": "u", "controller": "true"}]}},
    ],
)
def test_missing_or_malformed_parts_read_as_empty(obj: dict[str, Any]) -> None:
    assert objects.meta(obj).get("name") is None
    assert dict(objects.spec(obj)) == {}
    assert dict(objects.status(obj)) == {}
    assert dict(objects.labels(obj)) == {}
    assert dict(objects.annotations_of(obj)) == {}
    assert objects.controller_ref(obj) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-29T08:14:21Z", datetime.datetime(2026, 11, 29, 8, 14, 21, tzinfo=datetime.UTC)),
        (
            "2026-11-29T08:14:21.123456Z",
            datetime.datetime(2026, 11, 29, 8, 14, 21, 123456, tzinfo=datetime.UTC),
        ),
        (
            "2026-11-29T09:14:21+01:00",
            datetime.datetime(2026, 11, 29, 8, 14, 21, tzinfo=datetime.UTC),
        ),
        # No zone named: taken as UTC.
        ("2026-11-29T08:14:21", datetime.datetime(2026, 11, 29, 8, 14, 21, tzinfo=datetime.UTC)),
    ],
)
def test_parse_reads_rfc3339(text: str, expected: datetime.datetime) -> None:
    moment = timestamps.parse(text)
    assert moment == expected
    assert moment is not None
    assert moment.tzinfo is not None


@pytest.mark.parametrize("value", [None, "", "yesterday", 1700000000, ["2026-11-29T08:14:21Z"]])
def test_parse_gives_none_for_absent_or_unreadable(value: object) -> None:
    assert timestamps.parse(value) is None


def test_parse_reads_what_rfc3339_writes() -> None:
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert timestamps.parse(timestamps.rfc3339(moment)) == moment
    assert timestamps.parse(timestamps.micro_time(moment)) == moment
