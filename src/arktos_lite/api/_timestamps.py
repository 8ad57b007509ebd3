"""Kubernetes' wire forms of time: `metav1.Time` (RFC 3339, whole seconds, UTC, `Z`) and
`metav1.MicroTime` (microseconds), from timezone-aware datetimes."""

from __future__ import annotations

import datetime


def rfc3339(moment: datetime.datetime) -> str:
    """`2026-11-29T08:14:21Z`: what `creationTimestamp` and conditions carry."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(moment: datetime.datetime) -> str:
    """`2026-11-29T08:14:21.123456Z`: what a Lease's `renewTime` carries."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_nanos(nanos: int) -> datetime.datetime:
    """A wall-clock time given in nanoseconds since the epoch (as the CRI gives them)."""
    return datetime.datetime.fromtimestamp(nanos / 1e9, datetime.UTC)


def now() -> datetime.datetime:
    """The wall clock, for timestamps written into objects (never for intervals)."""
    return datetime.datetime.now(datetime.UTC)
