"""What a VM gets of `spec.virtualMachine.resources`: one definition for runtime and agent.

The VM runtime sizes a domain with it, and the agent compares it with what the runtime
reports (`VM_VCPUS`, `VM_MEMORY`) to tell a resize from a VM that has what its pod asks.
vCPUs and memory come from the limits, else the requests, else 1 CPU and 512 MiB; CPUs
round up to whole vCPUs. What cannot become a VM raises `InvalidArgument` with the reason.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from arktos_lite.runtime import _errors as errors

DEFAULT_VCPUS = 1
DEFAULT_MEMORY = 512 * 1024 * 1024
MIN_MEMORY = 32 * 1024 * 1024
_SUFFIXES: dict[str, Decimal] = {
    k: Decimal(str(v))
    for k, v in {
        "": 1,
        "k": 10**3,
        "M": 10**6,
        "G": 10**9,
        "T": 10**12,
        "P": 10**15,
        "E": 10**18,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "Pi": 2**50,
        "Ei": 2**60,
        "m": "0.001",
    }.items()
}
_QUANTITY = re.compile(r"^([+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(value: object) -> Decimal:
    """A Kubernetes resource quantity ("500m", "1Gi", 2) as a number; ValueError if not."""
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if match is None or match.group(2) not in _SUFFIXES:
        raise ValueError(f"invalid quantity {value!r}")
    try:
        return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]
    except InvalidOperation as e:
        raise ValueError(f"invalid quantity {value!r}") from e


@dataclasses.dataclass(frozen=True, slots=True)
class VmResources:
    vcpus: int = DEFAULT_VCPUS
    memory: int = DEFAULT_MEMORY  # bytes


def vm_resources(resources: Mapping[str, Any] | None) -> VmResources:
    """The vCPUs and memory of a `spec.virtualMachine.resources` (None: the defaults)."""
    resources = resources or {}
    if not isinstance(resources, Mapping):
        raise errors.InvalidArgument("virtualMachine.resources must be an object")
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    if not isinstance(limits, Mapping) or not isinstance(requests, Mapping):
        raise errors.InvalidArgument("virtualMachine.resources limits/requests must be objects")

    def pick(key: str) -> Decimal | None:
        raw = limits.get(key, requests.get(key))
        if raw is None:
            return None
        try:
            value = parse_quantity(raw)
        except ValueError as e:
            raise errors.InvalidArgument(f"virtualMachine.resources {key}: {e}") from e
        if value <= 0:
            raise errors.InvalidArgument(f"virtualMachine.resources {key} must be positive")
        return value

    cpu = pick("cpu")
    mem = pick("memory")
    vcpus = max(1, math.ceil(cpu)) if cpu is not None else DEFAULT_VCPUS
    memory = int(mem) if mem is not None else DEFAULT_MEMORY
    if memory < MIN_MEMORY:
        raise errors.InvalidArgument(
            f"virtualMachine memory {memory} bytes is below the minimum of {MIN_MEMORY}"
        )
    return VmResources(vcpus=vcpus, memory=memory)
