"""API server data partitions: which tenants a partition holds, in Arktos' config format.

A partition config file has lines `keyPrefix, rangeStart, rangeEnd` (Arktos' format):
the tenants whose names sort in [rangeStart, rangeEnd) live in this partition, an empty
bound is unbounded. arktos-lite partitions whole tenants, so every line of one file must
give the same range; the key prefixes (`/registry/` or `/registry/<resource>/`) only say
which resources the line is about. Blank lines and lines starting with `#` are ignored.

The partition whose range holds the tenant `system` is the designated one: it keeps the
system tenant and every cluster-scoped object except Tenants, which live in the partition
of their own name. `Partition.misdirected` applies that rule to one request (the 421 a
partition answers what it does not hold with); `DATA_PARTITION_CONFIGS` is the read-only
resource every API server serves about its own partition (its schema is in
`_arktos_schema`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from arktos_lite.api import _errors as errors, _resources as resources

SYSTEM_TENANT = resources.SYSTEM_TENANT
# The extension name a kubeconfig context carries when it addresses one partition.
KUBECONFIG_EXTENSION = "arktos.futurewei.com/partition"

_KEY_PREFIX = re.compile(r"/registry/([a-z0-9.-]+/)?")

# Every API server serves its own partition's description: read-only, never stored.
DATA_PARTITION_CONFIGS = resources.Resource(
    "",
    "v1",
    "DataPartitionConfig",
    "datapartitionconfigs",
    resources.Scope.CLUSTER,
    system_only=True,
    verbs=("get", "list"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class TenantRange:
    """Tenants named in [start, end); an empty bound is unbounded."""

    start: str = ""
    end: str = ""

    def __post_init__(self) -> None:
        if self.start and self.end and self.start >= self.end:
            raise ValueError(f"partition range start {self.start!r} is not below end {self.end!r}")

    def __contains__(self, tenant: object) -> bool:
        if not isinstance(tenant, str):
            return False
        return (not self.start or tenant >= self.start) and (not self.end or tenant < self.end)

    @property
    def designated(self) -> bool:
        """Whether this range holds the system tenant and the cluster-scoped objects."""
        return SYSTEM_TENANT in self

    def __str__(self) -> str:
        start = repr(self.start) if self.start else "the first"
        end = f"up to {self.end!r}" if self.end else "on"
        return f"tenants from {start} {end}"


@dataclasses.dataclass(frozen=True, slots=True)
class Partition:
    """One partition: its service group id (its name) and its tenant range."""

    name: str
    tenants: TenantRange = TenantRange()

    def data_partition_config(self) -> dict[str, Any]:
        """The partition as Arktos' `DataPartitionConfig` object."""
        return {
            "kind": "DataPartitionConfig",
            "apiVersion": "v1",
            "metadata": {"name": self.name},
            "serviceGroupId": self.name,
            "rangeStart": self.tenants.start,
            "isRangeStartValid": bool(self.tenants.start),
            "rangeEnd": self.tenants.end,
            "isRangeEndValid": bool(self.tenants.end),
        }

    def misdirected(
        self,
        resource: resources.Resource,
        *,
        tenant: str,
        name: str | None,
        cluster: Sequence[tuple[Partition, str]] = (),
    ) -> MisdirectedRequest | None:
        """The error to answer a request this partition does not hold with, or None.

        `cluster` is every partition with its API server's URL, where known: the error then
        names the partition that holds what was asked for.
        """
        if resource.group == "" and resource.kind == "Tenant":
            if name is not None and name not in self.tenants:
                return MisdirectedRequest.for_tenant(name, self, _owner(cluster, name))
            return None
        if resource.scope is resources.Scope.CLUSTER:
            if not self.tenants.designated:
                owner = _owner(cluster, SYSTEM_TENANT)
                return MisdirectedRequest.for_cluster_scope(resource.qualified, self, owner)
            return None
        if tenant != resources.ALL_TENANTS and tenant not in self.tenants:
            return MisdirectedRequest.for_tenant(tenant, self, _owner(cluster, tenant))
        return None

    @classmethod
    def from_data_partition_config(cls, obj: Mapping[str, Any]) -> Partition:
        name = str(obj.get("serviceGroupId") or obj.get("metadata", {}).get("name") or "")
        start = str(obj.get("rangeStart") or "") if obj.get("isRangeStartValid") else ""
        end = str(obj.get("rangeEnd") or "") if obj.get("isRangeEndValid") else ""
        return cls(name, TenantRange(start, end))


class PartitionConfigError(ValueError):
    """A partition config file that cannot be used; the message names the file and line."""


def load_partition_config(path: str | os.PathLike[str], *, name: str) -> Partition:
    """The partition `name` (its service group id) whose range the file at `path` gives."""
    source = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as stream:
            text = stream.read()
    except OSError as error:
        raise PartitionConfigError(f"{source}: cannot read the partition config: {error}") from None
    except UnicodeDecodeError as error:
        raise PartitionConfigError(f"{source}: not UTF-8 text: {error}") from None
    if not name:
        raise PartitionConfigError(f"{source}: the service group id must not be empty")
    return Partition(name, parse_partition_config(text, source=source))


def parse_partition_config(text: str, *, source: str = "partition config") -> TenantRange:
    """The tenant range a partition config file gives; see the module docs for the format."""
    found: TenantRange | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}, line {number}"
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 3:
            raise PartitionConfigError(
                f"{where}: expected 'keyPrefix, rangeStart, rangeEnd', not {line!r}"
            )
        prefix, start, end = fields
        if not _KEY_PREFIX.fullmatch(prefix):
            raise PartitionConfigError(
                f"{where}: key prefix {prefix!r} is not /registry/ or /registry/<resource>/"
            )
        try:
            tenants = TenantRange(start, end)
        except ValueError as error:
            raise PartitionConfigError(f"{where}: {error}") from None
        if found is not None and tenants != found:
            raise PartitionConfigError(
                f"{where}: range [{start!r}, {end!r}) differs from the file's earlier lines; "
                "arktos-lite partitions whole tenants, so every line must give one range"
            )
        found = tenants
    if found is None:
        raise PartitionConfigError(f"{source}: no 'keyPrefix, rangeStart, rangeEnd' line")
    return found


class MisdirectedRequest(errors.StatusError):
    """A request for data this API server's partition does not hold (HTTP 421)."""

    code = 421
    reason = errors.Reason.MISDIRECTED_REQUEST

    @classmethod
    def for_tenant(
        cls, tenant: str, here: Partition, owner: tuple[Partition, str] | None = None
    ) -> MisdirectedRequest:
        return cls(
            f'tenant "{tenant}" is not served by this API server: it serves partition '
            f'"{here.name}" ({here.tenants}); '
            + (
                f'partition "{owner[0].name}" ({owner[0].tenants}) at {owner[1]} serves it'
                if owner is not None
                else f'send the request to the partition whose range holds "{tenant}"'
            )
        )

    @classmethod
    def for_cluster_scope(
        cls, resource: str, here: Partition, owner: tuple[Partition, str] | None = None
    ) -> MisdirectedRequest:
        where = f' (partition "{owner[0].name}" at {owner[1]})' if owner is not None else ""
        return cls(
            f"{resource} are cluster-scoped and live in the partition that holds tenant "
            f'"{SYSTEM_TENANT}"{where}; this API server serves partition "{here.name}" '
            f"({here.tenants})"
        )


def _owner(cluster: Sequence[tuple[Partition, str]], tenant: str) -> tuple[Partition, str] | None:
    return next((peer for peer in cluster if tenant in peer[0].tenants), None)
