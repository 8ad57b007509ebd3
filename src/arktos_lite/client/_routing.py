"""Where a request goes in a partitioned cluster: decided from its method and path alone.

A partitioned cluster is several API servers, each holding the tenants of one range
(`api.partitions`). `PartitionMap` is a checked set of them: the ranges do not overlap,
together hold every tenant name, and exactly one is designated (holds `system`).

`route` reads a request path (`/api/v1/…` or `/apis/{group}/{version}/…`, `watch/` forms
included) and says where it belongs. Guarantees:

* A path inside a tenant (`…/tenants/{t}/…`) and the tenant object itself
  (`/api/v1/tenants/{t}`, its `status` and `finalize`) go to the partition holding `t`.
* A list, watch or collection delete across tenants (`…/tenants/all/…`, and
  `/api/v1/tenants`) goes to every partition; so does the list of `datapartitionconfigs`,
  of which each server holds its own.
* Creating a tenant (`POST /api/v1/tenants`) goes by the new tenant's name (`NEW_TENANT`:
  the caller reads it from the body).
* Other cluster-scoped resources (nodes, controller instances, …), discovery and every
  other path outside a tenant go to the designated partition.
* A short path (Kubernetes' form, without `tenants/`) goes to the partition of
  `default_tenant`, which the client sets to its own tenant, else `system`.

Merged lists are the partitions' answers, items in partition order (ranges ascending,
so a resource's items keep the key order one server would give), without a
`resourceVersion`: no single store revision describes several stores, so a merged list
cannot seed a watch. A paged merged list carries a `continue` token of its own that
names the partition and that partition's token.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import itertools
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from arktos_lite.api import errors, partitions, resources

Obj = dict[str, Any]

_REGISTRY = resources.Registry()
_DATA_PARTITION_CONFIGS = "datapartitionconfigs"
# Methods that read or delete a whole collection, which a path across tenants can fan out.
_FAN_OUT_METHODS = frozenset({"GET", "DELETE"})


class Target(enum.Enum):
    TENANT = "tenant"
    """The partition holding `Route.tenant`."""
    DESIGNATED = "designated"
    """The designated partition."""
    EVERYWHERE = "everywhere"
    """Every partition, answers merged."""
    NEW_TENANT = "new tenant"
    """The partition holding the tenant named in the request's body."""
    PARTITION = "partition"
    """The partition named `Route.tenant` (its `DataPartitionConfig`)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    target: Target
    tenant: str | None = None


class PartitionMap:
    """Partitions that hold every tenant exactly once; see the module docs."""

    __slots__ = ("by_name", "designated", "partitions")

    def __init__(self, given: Iterable[partitions.Partition]) -> None:
        ordered = tuple(sorted(given, key=lambda p: (p.tenants.start, p.tenants.end == "")))
        if not ordered:
            raise ValueError("a partitioned client needs at least one partition")
        by_name: dict[str, partitions.Partition] = {}
        for partition in ordered:
            if partition.name in by_name:
                raise ValueError(f"two partitions are named {partition.name!r}")
            by_name[partition.name] = partition
        if ordered[0].tenants.start:
            raise ValueError(
                f"no partition holds the tenants before {ordered[0].tenants.start!r}: "
                "the ranges must hold every tenant name"
            )
        for below, above in itertools.pairwise(ordered):
            end, start = below.tenants.end, above.tenants.start
            if not end or end > start:
                raise ValueError(
                    f"partitions {below.name!r} ({below.tenants}) and {above.name!r} "
                    f"({above.tenants}) overlap: tenant {start!r} would be in both"
                )
            if end < start:
                raise ValueError(
                    f"no partition holds the tenants from {end!r} up to {start!r}: "
                    "the ranges must hold every tenant name"
                )
        if ordered[-1].tenants.end:
            raise ValueError(
                f"no partition holds the tenants from {ordered[-1].tenants.end!r} on: "
                "the ranges must hold every tenant name"
            )
        designated = [p for p in ordered if p.tenants.designated]
        # Implied by the checks above; kept so that the invariant is stated where it is used.
        if len(designated) != 1:
            raise ValueError("exactly one partition must hold the tenant 'system'")
        self.partitions = ordered
        self.by_name = by_name
        self.designated = designated[0]

    def holding(self, tenant: str) -> partitions.Partition:
        """The partition whose range holds `tenant`."""
        for partition in self.partitions:
            if tenant in partition.tenants:
                return partition
        raise AssertionError(f"the ranges hold every tenant, yet not {tenant!r}")

    def index(self, partition: partitions.Partition) -> int:
        return self.partitions.index(partition)


def route(method: str, path: str, *, default_tenant: str) -> Route:
    """Where `method` on `path` goes; see the module docs."""
    method = method.upper()
    segments = [urllib.parse.unquote(s) for s in path.split("?", 1)[0].split("/") if s]
    if len(segments) >= 2 and segments[0] == "api":
        group, rest = "", segments[2:]
        version = segments[1]
    elif len(segments) >= 3 and segments[0] == "apis":
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        # Discovery, /version, health and the like: any server answers alike.
        return Route(Target.DESIGNATED)
    if rest and rest[0] == "watch":
        rest = rest[1:]
    if not rest:
        return Route(Target.DESIGNATED)
    if rest[0] == "tenants" and (group == "" or len(rest) >= 3):
        if len(rest) == 1:
            if method == "POST":
                return Route(Target.NEW_TENANT)
            return Route(Target.EVERYWHERE if method in _FAN_OUT_METHODS else Target.DESIGNATED)
        tenant = rest[1]
        if tenant == resources.ALL_TENANTS and len(rest) >= 3:
            return Route(Target.EVERYWHERE if method in _FAN_OUT_METHODS else Target.DESIGNATED)
        return Route(Target.TENANT, tenant)
    if group == "" and rest[0] == _DATA_PARTITION_CONFIGS:
        if len(rest) == 1:
            return Route(Target.EVERYWHERE if method == "GET" else Target.DESIGNATED)
        return Route(Target.PARTITION, rest[1])
    found = _REGISTRY.get(group, version, rest[0])
    if found is not None and found.scope is resources.Scope.CLUSTER:
        return Route(Target.DESIGNATED)
    return Route(Target.TENANT, default_tenant)


def new_tenant_name(body: object) -> str:
    """The name of the tenant a create request's body (decoded or JSON) makes."""
    if isinstance(body, bytes | str):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            body = None
    name = None
    if isinstance(body, dict):
        meta = body.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        raise ValueError(
            "a partitioned cluster keeps a tenant in the partition its name falls in: "
            "create a tenant with metadata.name (generateName cannot be routed)"
        )
    return name


# Merged answers


def merge(answers: Sequence[Any], *, continue_: str | None = None) -> Any:
    """One answer from every partition's answer to the same list (or collection delete).

    Lists (`items`, or a Table's `rows`) are concatenated in the order given, without a
    resourceVersion. Answers that are not lists (a Status) cannot be merged: the first
    such answer is returned.
    """
    field = _list_field(answers)
    if field is None:
        return next(a for a in answers if _list_field([a]) is None)
    first = answers[0]
    merged: Obj = {key: value for key, value in first.items() if key not in ("metadata", field)}
    metadata: Obj = {}
    if continue_:
        metadata["continue"] = continue_
    merged["metadata"] = metadata
    merged[field] = [entry for answer in answers for entry in (answer.get(field) or ())]
    return merged


def _list_field(answers: Sequence[Any]) -> str | None:
    for field in ("items", "rows"):
        if all(isinstance(a, dict) and isinstance(a.get(field, None), list) for a in answers):
            return field
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class Continue:
    """Where a paged merged list goes on: in `partition`, with that server's `token`."""

    partition: str
    token: str | None

    def encode(self) -> str:
        document = {"p": self.partition, "c": self.token}
        return base64.urlsafe_b64encode(orjson.dumps(document)).decode("ascii")

    @classmethod
    def decode(cls, text: str, *, known: Iterable[str]) -> Continue:
        try:
            document = orjson.loads(base64.urlsafe_b64decode(text.encode("ascii")))
        except (binascii.Error, UnicodeEncodeError, ValueError, orjson.JSONDecodeError):
            document = None
        if (
            not isinstance(document, dict)
            or document.get("p") not in set(known)
            or not isinstance(document.get("c"), str | None)
        ):
            raise errors.BadRequest(
                f"continue token {text[:80]!r} was not made by a list of these partitions"
            )
        return cls(partition=document["p"], token=document["c"])
