"""The agent's runtimes, chosen per pod by its workload type.

`--runtime-endpoint 'name,workloadType,endpoint;…'` names them; the first runtime of each
workload type (`container`, `vm`) is that type's default, and a pod goes to `vm` exactly
when it has `spec.virtualMachine`.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from arktos_lite import runtime


class WorkloadType(enum.StrEnum):
    CONTAINER = "container"
    VM = "vm"


def workload_type(pod: Mapping[str, Any]) -> WorkloadType:
    spec = pod.get("spec") or {}
    return WorkloadType.VM if spec.get("virtualMachine") else WorkloadType.CONTAINER


@dataclasses.dataclass(frozen=True, slots=True)
class NamedRuntime:
    name: str
    workload_type: WorkloadType
    runtime: runtime.Runtime


@dataclasses.dataclass(frozen=True, slots=True)
class RuntimeSet:
    """The runtimes in the order the command line named them."""

    runtimes: tuple[NamedRuntime, ...]
    # Why a workload type has no runtime here, for the node's condition to say.
    absent: Mapping[WorkloadType, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [named.name for named in self.runtimes]
        if len(set(names)) != len(names):
            raise ValueError(f"runtime names must be unique: {names}")

    def default(self, type_: WorkloadType) -> NamedRuntime | None:
        return next((r for r in self.runtimes if r.workload_type is type_), None)

    def for_pod(self, pod: Mapping[str, Any]) -> NamedRuntime | None:
        """The runtime that runs `pod`, or None when this node has none of its type."""
        return self.default(workload_type(pod))

    def by_name(self) -> Mapping[str, NamedRuntime]:
        return {named.name: named for named in self.runtimes}
