"""Kubernetes' wire forms of time: `metav1.Time` (RFC 3339, whole seconds, UTC, `Z`) and
`metav1.MicroTime` (microseconds), from timezone-aware datetimes, and back."""

from __future__ import annotations

import datetime
from typing import Any


def rfc3339(moment: datetime.datetime) -> str:
    """`2026-11-29T08:14:21Z`: what `creationTimestamp` and conditions carry."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(moment: datetime.datetime) -> str:
    """`2026-11-29T08:14:21.123456Z`: what a Lease's `renewTime` carries."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(value: Any) -> datetime.datetime | None:
    """An RFC 3339 timestamp as an aware datetime (UTC when it names no zone); None when
    it is absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


def from_nanos(nanos: int) -> datetime.datetime:
    """A wall-clock time given in nanoseconds since the epoch (as the CRI gives them)."""
    return datetime.datetime.fromtimestamp(nanos / 1e9, datetime.UTC)


def now() -> datetime.datetime:
    """The wall clock, for timestamps written into objects (never for intervals)."""
    return datetime.datetime.now(datetime.UTC)
