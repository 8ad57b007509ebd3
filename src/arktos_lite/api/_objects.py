"""Reading the parts of an API object given as JSON: `metadata`, `spec`, `status`, labels,
annotations and the controller's owner reference.

Each reader takes whatever a client or an informer cache holds and never raises for a
missing or malformed part: a part that is absent, null or not a mapping reads as empty
(or None). What it returns is the object's own mapping, not a copy; do not change it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """`metadata`."""
    return _mapping(obj.get("metadata"))


def spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """`spec`."""
    return _mapping(obj.get("spec"))


def status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """`status`."""
    return _mapping(obj.get("status"))


def labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """`metadata.labels`."""
    return _mapping(meta(obj).get("labels"))


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """`metadata.annotations`."""
    return _mapping(meta(obj).get("annotations"))


def controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The owner reference with `controller: true`, if any."""
    for ref in meta(obj).get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return ref
    return None
