"""A node as the scheduler sees it: what it offers and what its pods already take.

`NodeInfo` holds a node's static facts (labels, taints, allocatable, runtime readiness),
parsed once per node version, and the running totals of the pods placed on it, assumed
ones included. Guarantees:

* `requested` and the non-zero totals are always the sums over `pods`: every pod is
  counted through `add_pod` and uncounted through `remove_pod` with the same `PodInfo`.
* Allocatable comes from `status.allocatable`, or `status.capacity` where a node reports
  no allocatable; a node that reports no `pods` can take none, as in Kubernetes.
* A node's runtime for a workload type is ready only when its condition
  (`ContainerRuntimeReady`, `VmRuntimeReady`) is `True`; a missing condition is not ready,
  as in Arktos.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from arktos_lite.scheduler import _pods as pods

Obj = dict[str, Any]

CONTAINER_RUNTIME_READY = "ContainerRuntimeReady"
VM_RUNTIME_READY = "VmRuntimeReady"


@dataclasses.dataclass(frozen=True, slots=True)
class NodeFacts:
    """What a node version says about itself that scheduling reads."""

    name: str
    obj: Obj
    labels: Mapping[str, str]
    taints: tuple[pods.Taint, ...]
    unschedulable: bool
    allocatable: pods.Resources
    allowed_pods: int
    container_runtime_ready: bool
    vm_runtime_ready: bool

    @classmethod
    def parse(cls, obj: Obj) -> NodeFacts:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        listed = status.get("allocatable") or status.get("capacity") or {}
        try:
            allocatable = pods.Resources.from_list(listed)
            allowed = pods.quantity(listed[pods.PODS]) if pods.PODS in listed else 0
        except pods.PodParseError:
            # A node whose figures cannot be read offers nothing rather than anything.
            allocatable, allowed = pods.Resources(), 0
        ready = {c.get("type"): c.get("status") == "True" for c in status.get("conditions") or ()}
        return cls(
            name=str(meta.get("name") or ""),
            obj=obj,
            labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
            taints=tuple(pods.Taint.parse(t) for t in spec.get("taints") or ()),
            unschedulable=bool(spec.get("unschedulable")),
            allocatable=allocatable,
            allowed_pods=allowed,
            container_runtime_ready=ready.get(CONTAINER_RUNTIME_READY, False),
            vm_runtime_ready=ready.get(VM_RUNTIME_READY, False),
        )

    def scheduling_view(self) -> tuple[Any, ...]:
        """What a change must touch for pods that did not fit before to fit now."""
        return (
            self.labels,
            self.taints,
            self.unschedulable,
            self.allocatable,
            self.allowed_pods,
            self.container_runtime_ready,
            self.vm_runtime_ready,
        )


class NodeInfo:
    """A node and the pods on it. See the module docs.

    The scheduler's cache owns every `NodeInfo`; plugins only read them. `facts` is None
    for a node that is gone (or not seen yet) while pods bound to it are still known.
    """

    __slots__ = (
        "_facts",
        "allocatable_ephemeral_storage",
        "allocatable_memory",
        "allocatable_milli_cpu",
        "allocatable_scalar",
        "allowed_pods",
        "container_runtime_ready",
        "labels",
        "name",
        "non_zero_memory",
        "non_zero_milli_cpu",
        "pods",
        "pods_with_affinity",
        "pods_with_required_anti_affinity",
        "requested_ephemeral_storage",
        "requested_memory",
        "requested_milli_cpu",
        "requested_scalar",
        "taints",
        "unschedulable",
        "vm_runtime_ready",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self._facts: NodeFacts | None = None
        self.labels: Mapping[str, str] = {}
        self.taints: tuple[pods.Taint, ...] = ()
        self.unschedulable = False
        self.container_runtime_ready = False
        self.vm_runtime_ready = False
        self.allocatable_milli_cpu = 0
        self.allocatable_memory = 0
        self.allocatable_ephemeral_storage = 0
        self.allocatable_scalar: dict[str, int] = {}
        self.allowed_pods = 0
        self.requested_milli_cpu = 0
        self.requested_memory = 0
        self.requested_ephemeral_storage = 0
        self.requested_scalar: dict[str, int] = {}
        self.non_zero_milli_cpu = 0
        self.non_zero_memory = 0
        self.pods: dict[str, pods.PodInfo] = {}
        self.pods_with_affinity: dict[str, pods.PodInfo] = {}
        self.pods_with_required_anti_affinity: dict[str, pods.PodInfo] = {}

    def __repr__(self) -> str:
        return f"NodeInfo({self.name!r}, pods={len(self.pods)})"

    @property
    def facts(self) -> NodeFacts | None:
        return self._facts

    @property
    def node(self) -> Obj | None:
        return self._facts.obj if self._facts is not None else None

    def set_facts(self, facts: NodeFacts | None) -> None:
        self._facts = facts
        if facts is None:
            return
        self.labels = facts.labels
        self.taints = facts.taints
        self.unschedulable = facts.unschedulable
        self.container_runtime_ready = facts.container_runtime_ready
        self.vm_runtime_ready = facts.vm_runtime_ready
        allocatable = facts.allocatable
        self.allocatable_milli_cpu = allocatable.milli_cpu
        self.allocatable_memory = allocatable.memory
        self.allocatable_ephemeral_storage = allocatable.ephemeral_storage
        self.allocatable_scalar = dict(allocatable.scalar)
        self.allowed_pods = facts.allowed_pods

    def add_pod(self, pod: pods.PodInfo) -> None:
        if pod.key in self.pods:
            raise ValueError(f"pod {pod.key} is already counted on node {self.name}")
        self.pods[pod.key] = pod
        self._count(pod, 1)
        if pod.has_affinity:
            self.pods_with_affinity[pod.key] = pod
        if pod.required_anti_affinity:
            self.pods_with_required_anti_affinity[pod.key] = pod

    def remove_pod(self, key: str) -> pods.PodInfo | None:
        pod = self.pods.pop(key, None)
        if pod is not None:
            self._count(pod, -1)
            self.pods_with_affinity.pop(key, None)
            self.pods_with_required_anti_affinity.pop(key, None)
        return pod

    def _count(self, pod: pods.PodInfo, sign: int) -> None:
        requests = pod.requests
        self.requested_milli_cpu += sign * requests.milli_cpu
        self.requested_memory += sign * requests.memory
        self.requested_ephemeral_storage += sign * requests.ephemeral_storage
        for name, amount in requests.scalar:
            left = self.requested_scalar.get(name, 0) + sign * amount
            if left:
                self.requested_scalar[name] = left
            else:
                self.requested_scalar.pop(name, None)
        self.non_zero_milli_cpu += sign * pod.non_zero_milli_cpu
        self.non_zero_memory += sign * pod.non_zero_memory
