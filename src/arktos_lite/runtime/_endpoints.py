"""Which runtimes a node has: `--runtime-endpoint 'name,workloadType,endpoint;…'`.

Arktos' kubelet names each CRI runtime, says whether it runs containers or VMs and where
its socket is; the first runtime of each workload type is that type's default. This module
parses and formats that list. Every error is a `ValueError` whose message names the
offending entry, so the command line can show it as is. `grpc_target` turns an endpoint
address into the target string gRPC dials, and rejects what gRPC would misread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

WORKLOAD_TYPES = ("container", "vm")

# Separators of the list syntax, so neither may appear inside a field.
_FORBIDDEN_IN_FIELDS = frozenset(",;")


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """One named runtime: its workload type (`container` or `vm`) and its CRI address.

    The address is a unix socket (`unix:///abs/path`, `unix:/abs/path` or a bare
    `/abs/path`) or TCP (`host:port`, `tcp://host:port`).
    """

    name: str
    workload_type: str
    address: str

    def __post_init__(self) -> None:
        for label, value in (("name", self.name), ("address", self.address)):
            if not value or value != value.strip():
                raise ValueError(f"runtime endpoint {label} {value!r} is empty or padded")
            if _FORBIDDEN_IN_FIELDS & set(value):
                raise ValueError(f"runtime endpoint {label} {value!r} contains ',' or ';'")
        if self.workload_type not in WORKLOAD_TYPES:
            raise ValueError(
                f"runtime endpoint {self.name!r}: unknown workload type "
                f"{self.workload_type!r} (expected one of {', '.join(WORKLOAD_TYPES)})"
            )
        grpc_target(self.address)

    def format(self) -> str:
        """This endpoint as one entry of the list syntax."""
        return f"{self.name},{self.workload_type},{self.address}"


def parse_endpoints(text: str) -> tuple[Endpoint, ...]:
    """The endpoints of `name,workloadType,endpoint;…`, in order.

    Whitespace around fields and a trailing `;` are allowed. Raises ValueError for an
    empty list, an entry without exactly three fields, an unknown workload type, a bad
    address or a name used twice.
    """
    entries = [entry.strip() for entry in text.split(";")]
    if not any(entries):
        raise ValueError("no runtime endpoints given (expected 'name,workloadType,endpoint;…')")
    endpoints: list[Endpoint] = []
    seen: set[str] = set()
    if not entries[-1]:
        entries.pop()
    for entry in entries:
        fields = [field.strip() for field in entry.split(",")]
        if len(fields) != 3:
            raise ValueError(
                f"runtime endpoint {entry!r} has {len(fields)} field(s); "
                "expected name,workloadType,endpoint"
            )
        endpoint = Endpoint(*fields)
        if endpoint.name in seen:
            raise ValueError(f"runtime endpoint name {endpoint.name!r} is used twice")
        seen.add(endpoint.name)
        endpoints.append(endpoint)
    return tuple(endpoints)


def format_endpoints(endpoints: Iterable[Endpoint]) -> str:
    """The list syntax `parse_endpoints` reads back to the same endpoints."""
    return ";".join(endpoint.format() for endpoint in endpoints)


def grpc_target(address: str) -> str:
    """The gRPC target for a CRI address.

    Unix sockets become `unix:///abs/path` (gRPC's `unix://` form wants an absolute path);
    `tcp://host:port` and `host:port` become `host:port`. Raises ValueError for anything
    else, e.g. `unix://relative` or a URL scheme gRPC would dial differently.
    """
    if address.startswith("unix:"):
        path = address.removeprefix("unix:")
        if path.startswith("//"):
            path = path.removeprefix("//")
        if not path.startswith("/"):
            raise ValueError(f"runtime address {address!r}: a unix socket needs an absolute path")
        return "unix://" + path
    if address.startswith("/"):
        return "unix://" + address
    hostport = address.removeprefix("tcp://")
    if "://" in hostport:
        raise ValueError(
            f"runtime address {address!r}: unsupported scheme (use unix:///path or host:port)"
        )
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"runtime address {address!r}: expected a unix socket or host:port")
    return hostport
