"""The node-local plugins: each looks at one pod and one node at a time.

Names, reasons and codes are kube-scheduler's, so that users read the messages they know:

* `NodeName`: the pod's `spec.nodeName`, if set, names the node.
* `NodeUnschedulable`: a cordoned node takes only pods tolerating
  `node.kubernetes.io/unschedulable:NoSchedule`.
* `NodeAffinity`: `spec.nodeSelector` and required node affinity filter; preferred node
  affinity scores (the sum of the weights of the matching terms, normalized).
* `TaintToleration`: `NoSchedule` and `NoExecute` taints filter; untolerated
  `PreferNoSchedule` taints lower the score.
* `NodeResourcesFit`: requests (init containers, overhead and VM resources included)
  against allocatable minus what the node's pods (assumed ones too) request; scores by
  the `LeastAllocated` strategy by default (`MostAllocated` on request).
* `NodeResourcesBalancedAllocation`: prefers nodes whose cpu and memory use stay even.
* `NodeRuntimeReady` (Arktos): a container pod needs `ContainerRuntimeReady=True`, a VM
  pod `VmRuntimeReady=True`.
* `DefaultPreemption` (PostFilter): only words the message's preemption sentence. This
  scheduler never evicts pods, so no node ever has victims for a pod.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from typing import Any

from arktos_lite.scheduler import _framework as framework, _nodes as nodes, _pods as pods

Status = framework.Status
CycleState = framework.CycleState
SUCCESS = framework.SUCCESS
SKIP = framework.SKIP
MAX = framework.MAX_NODE_SCORE

UNSCHEDULABLE_TAINT = pods.Taint(
    key="node.kubernetes.io/unschedulable", value="", effect=pods.TaintEffect.NO_SCHEDULE
)


class NodeName:
    name = "NodeName"
    _REJECT = Status.unschedulable(
        "node(s) didn't match the requested node name", resolvable=False, plugin=name
    )

    def __init__(self, args: Mapping[str, Any], handle: framework.Handle) -> None:
        pass

    def filter(self, state: CycleState, pod: pods.PodInfo, node: nodes.NodeInfo) -> Status:
        if pod.node_name and pod.node_name != node.name:
            return self._REJECT
        return SUCCESS

    def filter_nodes(
        self,
        state: CycleState,
        pod: pods.PodInfo,
        candidates: list[nodes.NodeInfo],
        rejected: dict[str, Status],
    ) -> list[nodes.NodeInfo]:
        wanted = pod.node_name
        if not wanted:
            return candidates
        passing = [n for n in candidates if n.name == wanted]
        return _reject_others(candidates, passing, self._REJECT, rejected)


class NodeUnschedulable:
    name = "NodeUnschedulable"
    _REJECT = Status.unschedulable("node(s) were unschedulable", resolvable=False, plugin=name)

    def __init__(self, args: Mapping[str, Any], handle: framework.Handle) -> None:
        pass

    def filter(self, state: CycleState, pod: pods.PodInfo, node: nodes.NodeInfo) -> Status:
        if node.unschedulable and not pods.tolerated(pod.tolerations, UNSCHEDULABLE_TAINT):
            return self._REJECT
        return SUCCESS

    def filter_nodes(
        self,
        state: CycleState,
        pod: pods.PodInfo,
        candidates: list[nodes.NodeInfo],
        rejected: dict[str, Status],
    ) -> list[nodes.NodeInfo]:
        if pods.tolerated(pod.tolerations, UNSCHEDULABLE_TAINT):
            return candidates
        passing = [n for n in candidates if not n.unschedulable]
        return _reject_others(candidates, passing, self._REJECT, rejected)


def _reject_others(
    candidates: list[nodes.NodeInfo],
    passing: list[nodes.NodeInfo],
    status: Status,
    rejected: dict[str, Status],
) -> list[nodes.NodeInfo]:
    """`passing`, after rejecting the other candidates with `status`."""
    if len(passing) != len(candidates):
        kept = {id(n) for n in passing}
        for node in candidates:
            if id(node) not in kept:
                rejected[node.name] = status
    return passing


class NodeAffinity:
    name = "NodeAffinity"
    _REJECT = Status.unschedulable(
        "node(s) didn't match Pod's node affinity/selector", resolvable=False, plugin=name
    )

    def __init__(self, args: Mapping[str, Any], handle: framework.Handle) -> None:
        pass

    def pre_filter(self, state: CycleState, pod: pods.PodInfo) -> Status:
        required = pod.required_node_affinity
        if not pod.node_selector and required is None:
            return SKIP
        if required is not None and (names := required.node_names()) is not None:
            # DaemonSet-style pinning by name: look at those nodes only.
            state.restrict_nodes(names)
        return SUCCESS

    def filter(self, state: CycleState, pod: pods.PodInfo, node: nodes.NodeInfo) -> Status:
        if not node_affinity_matches(pod, node):
            return self._REJECT
        return SUCCESS

    def pre_score(
        self, state: CycleState, pod: pods.PodInfo, feasible: Sequence[nodes.NodeInfo]
    ) -> Status:
        return SUCCESS if pod.preferred_node_affinity else SKIP

    def score(self, state: CycleState, pod: pods.PodInfo, node: nodes.NodeInfo) -> int:
        return sum(
            preferred.weight
            for preferred in pod.preferred_node_affinity
            if preferred.term.matches(node.labels, node.name)
        )

    def normalize(self, state: CycleState, pod: pods.PodInfo, scores: list[int]) -> None:
        framework.default_normalize(scores, reverse=False)


def node_affinity_matches(pod: pods.PodInfo, node: nodes.NodeInfo) -> bool:
    """Whether `node` satisfies the pod's node selector and required node affinity."""
    labels = node.labels
    for key, value in pod.node_selector.items():
        if labels.get(key) != value:
            return False
    required = pod.required_node_affinity
    return required is None or required.matches(labels, node.name)


class TaintToleration:
    name = "TaintToleration"

    def __init__(self, args: Mapping[str, Any], handle: framework.Handle) -> None:
        self._rejections: dict[pods.Taint, Status] = {}

    def filter(self, state: CycleState, pod: pods.PodInfo, node: nodes.NodeInfo) -> Status:
        if not node.taints:
            return SUCCESS
        tolerations = pod.tolerations
        for taint in node.taints:
            if taint.effect == pods.TaintEffect.PREFER_NO_SCHEDULE:
                continue
            if not pods.tolerated(tolerations, taint):
                return self._rejection(taint)
        return SUCCESS

    def _rejection(self, taint: pods.Taint) -> Status:
        status = self._rejections.get(taint)
        if status is None:
            if len(self._rejections) > 1024:
                self._rejections.clear()
            status = self._rejections[taint] = Status.unschedulable(
                f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}",
                resolvable=False,
                plugin=self.name,
            )
        return status

    def filter_nodes(
        self,
        state: CycleState,
        pod: pods.PodInfo,
        candidates: list[nodes.NodeInfo],
        rejected: dict[str, Status],
    ) -> list[nodes.NodeInfo]:
        passing = []
        for node in candidates:
            if not node.taints:
                passing.append(node)
                continue
            status = self.filter(state, pod, node)
            if status is SUCCESS:
                passing.append(node)
            else:
                rejected[node.name] = status
        return passing

    def pre_score(
        self, state: CycleState, pod: pods.PodInfo, feasible: Sequence[nodes.NodeInfo]
    ) -> Status:
        if not any(
            t.effect == pods.TaintEffect.PREFER_NO_SCHEDULE for n in feasible for t in n.taints
        ):
            return SKIP
        state.write(
            self.name,
            tuple(
                t for t in pod.tolerations if t.effect in ("", pods.TaintEffect.PREFER_NO_SCHEDULE)
            ),
        )
        return SUCCESS

    def score(self, state: CycleState, pod: pods.PodInfo, node: nodes.NodeInfo) -> int:
        tolerations: tuple[pods.Toleration, ...] = state.read(self.name)
        return sum(
            1
            for taint in node.taints
            if taint.effect == pods.TaintEffect.PREFER_NO_SCHEDULE
            and not pods.tolerated(tolerations, taint)
        )

    def normalize(self, state: CycleState, pod: pods.PodInfo, scores: list[int]) -> None:
        framework.default_normalize(scores, reverse=True)


class NodeRuntimeReady:
    name = "NodeRuntimeReady"
    _REJECT = Status.unschedulable("node(s) runtime is not ready", resolvable=False, plugin=name)

    def __init__(self, args: Mapping[str, Any], handle: framework.Handle) -> None:
        pass

    def filter(self, state: CycleState, pod: pods.PodInfo, node: nodes.NodeInfo) -> Status:
        ready = node.vm_runtime_ready if pod.is_vm else node.container_runtime_ready
        return SUCCESS if ready else self._REJECT

    def filter_nodes(
        self,
        state: CycleState,
        pod: pods.PodInfo,
        candidates: list[nodes.NodeInfo],
        rejected: dict[str, Status],
    ) -> list[nodes.NodeInfo]:
        if pod.is_vm:
            passing = [n for n in candidates if n.vm_runtime_ready]
        else:
            passing = [n for n in candidates if n.container_runtime_ready]
        return _reject_others(candidates, passing, self._REJECT, rejected)


# Resources


@dataclasses.dataclass(frozen=True, slots=True)
class ResourceWeight:
    name: str
    weight: int = 1


DEFAULT_RESOURCES = (ResourceWeight(pods.CPU), ResourceWeight(pods.MEMORY))


def _resource_weights(
    args: Mapping[str, Any], default: tuple[ResourceWeight, ...]
) -> tuple[ResourceWeight, ...]:
    listed = args.get("resources")
    if not listed:
        return default
    return tuple(ResourceWeight(str(r["name"]), int(r.get("weight", 1))) for r in listed)


def _requested(node: nodes.NodeInfo, name: str, *, non_zero: bool) -> int:
    if name == pods.CPU:
        return node.non_zero_milli_cpu if non_zero else node.requested_milli_cpu
    if name == pods.MEMORY:
        return node.non_zero_memory if non_zero else node.requested_memory
    if name == pods.EPHEMERAL_STORAGE:
        return node.requested_ephemeral_storage
    return node.requested_scalar.get(name, 0)


def _pod_request(pod: pods.PodInfo, name: str, *, non_zero: bool) -> int:
    if name == pods.CPU:
        return pod.non_zero_milli_cpu if non_zero else pod.requests.milli_cpu
    if name == pods.MEMORY:
        return pod.non_zero_memory if non_zero else pod.requests.memory
    if name == pods.EPHEMERAL_STORAGE:
        return pod.requests.ephemeral_storage
    return dict(pod.requests.scalar).get(name, 0)


def _allocatable(node: nodes.NodeInfo, name: str) -> int:
    if name == pods.CPU:
        return node.allocatable_milli_cpu
    if name == pods.MEMORY:
        return node.allocatable_memory
    if name == pods.EPHEMERAL_STORAGE:
        return node.allocatable_ephemeral_storage
    return node.allocatable_scalar.get(name, 0)


class ScoringStrategy(enum.StrEnum):
    LEAST_ALLOCATED = "LeastAllocated"
    MOST_ALLOCATED = "MostAllocated"


class NodeResourcesFit:
    """Filter on requests; score by the configured strategy (`scoringStrategy.type`)."""

    name = "NodeResourcesFit"
    _TOO_MANY_PODS = "Too many pods"

    def __init__(self, args: Mapping[str, Any], handle: framework.Handle) -> None:
        strategy = args.get("scoringStrategy") or {}
        kind = str(strategy.get("type") or ScoringStrategy.LEAST_ALLOCATED)
        if kind not in tuple(ScoringStrategy):
            raise ValueError(f"NodeResourcesFit: unknown scoring strategy {kind!r}")
        self._strategy = ScoringStrategy(kind)
        self._resources = _resource_weights(strategy, DEFAULT_RESOURCES)
        # Only the common two get the fast path; anything else takes the general one.
        self._cpu_memory = tuple(r.name for r in self._resources) == (pods.CPU, pods.MEMORY)
        self._weights = tuple(r.weight for r in self._resources)
        self._statuses: dict[tuple[str, ...], Status] = {}

    def filter(self, state: CycleState, pod: pods.PodInfo, node: nodes.NodeInfo) -> Status:
        r = pod.requests
        if (
            len(node.pods) < node.allowed_pods
            and r.milli_cpu <= node.allocatable_milli_cpu - node.requested_milli_cpu
            and r.memory <= node.allocatable_memory - node.requested_memory
            and r.ephemeral_storage
            <= node.allocatable_ephemeral_storage - node.requested_ephemeral_storage
            and not r.scalar
        ):
            return SUCCESS
        reasons = insufficient_resources(pod, node)
        if not reasons:
            return SUCCESS
        status = self._statuses.get(reasons)
        if status is None:
            status = self._statuses[reasons] = Status.unschedulable(*reasons, plugin=self.name)
        return status

    def filter_nodes(
        self,
        state: CycleState,
        pod: pods.PodInfo,
        candidates: list[nodes.NodeInfo],
        rejected: dict[str, Status],
    ) -> list[nodes.NodeInfo]:
        r = pod.requests
        cpu, memory, storage = r.milli_cpu, r.memory, r.ephemeral_storage
        if r.scalar:
            passing = candidates
        else:
            passing = [
                n
                for n in candidates
                if len(n.pods) < n.allowed_pods
                and cpu <= n.allocatable_milli_cpu - n.requested_milli_cpu
                and memory <= n.allocatable_memory - n.requested_memory
                and storage <= n.allocatable_ephemeral_storage - n.requested_ephemeral_storage
            ]
            if len(passing) == len(candidates):
                return passing
        # Some do not fit (or extended resources are asked for): the full check says why.
        checked = []
        for node in candidates:
            status = self.filter(state, pod, node)
            if status is SUCCESS:
                checked.append(node)
            else:
                rejected[node.name] = status
        return checked

    def score_nodes(
        self, state: CycleState, pod: pods.PodInfo, feasible: list[nodes.NodeInfo]
    ) -> list[int]:
        if not self._cpu_memory or self._strategy != ScoringStrategy.LEAST_ALLOCATED:
            return [self.score(state, pod, node) for node in feasible]
        cpu_weight, mem_weight = self._weights
        pod_cpu, pod_mem = pod.non_zero_milli_cpu, pod.non_zero_memory
        scores = []
        for n in feasible:
            cpu_alloc, mem_alloc = n.allocatable_milli_cpu, n.allocatable_memory
            if not (cpu_alloc and mem_alloc):
                scores.append(self.score(state, pod, n))
                continue
            cpu = n.non_zero_milli_cpu + pod_cpu
            mem = n.non_zero_memory + pod_mem
            cpu_score = (cpu_alloc - cpu) * MAX // cpu_alloc if cpu <= cpu_alloc else 0
            mem_score = (mem_alloc - mem) * MAX // mem_alloc if mem <= mem_alloc else 0
            scores.append(
                (cpu_weight * cpu_score + mem_weight * mem_score) // (cpu_weight + mem_weight)
            )
        return scores

    def score(self, state: CycleState, pod: pods.PodInfo, node: nodes.NodeInfo) -> int:
        least = self._strategy == ScoringStrategy.LEAST_ALLOCATED
        if self._cpu_memory:
            cpu_alloc = node.allocatable_milli_cpu
            mem_alloc = node.allocatable_memory
            cpu_weight, mem_weight = self._weights
            total = weights = 0
            if cpu_alloc:
                cpu = node.non_zero_milli_cpu + pod.non_zero_milli_cpu
                total += cpu_weight * _allocated_score(cpu, cpu_alloc, least=least)
                weights += cpu_weight
            if mem_alloc:
                mem = node.non_zero_memory + pod.non_zero_memory
                total += mem_weight * _allocated_score(mem, mem_alloc, least=least)
                weights += mem_weight
            return total // weights if weights else 0
        total = weights = 0
        for resource in self._resources:
            allocatable = _allocatable(node, resource.name)
            if not allocatable:
                continue
            requested = _requested(node, resource.name, non_zero=True) + _pod_request(
                pod, resource.name, non_zero=True
            )
            total += resource.weight * _allocated_score(requested, allocatable, least=least)
            weights += resource.weight
        return total // weights if weights else 0

    def normalize(self, state: CycleState, pod: pods.PodInfo, scores: list[int]) -> None:
        pass


def _allocated_score(requested: int, allocatable: int, *, least: bool) -> int:
    if requested > allocatable:
        return 0
    if least:
        return (allocatable - requested) * MAX // allocatable
    return requested * MAX // allocatable


def insufficient_resources(pod: pods.PodInfo, node: nodes.NodeInfo) -> tuple[str, ...]:
    """kube-scheduler's reasons, in its order: pods, cpu, memory, ephemeral storage, the rest."""
    reasons: list[str] = []
    if len(node.pods) + 1 > node.allowed_pods:
        reasons.append(NodeResourcesFit._TOO_MANY_PODS)
    r = pod.requests
    if r.is_zero:
        return tuple(reasons)
    if r.milli_cpu and r.milli_cpu > node.allocatable_milli_cpu - node.requested_milli_cpu:
        reasons.append(f"Insufficient {pods.CPU}")
    if r.memory and r.memory > node.allocatable_memory - node.requested_memory:
        reasons.append(f"Insufficient {pods.MEMORY}")
    if r.ephemeral_storage and (
        r.ephemeral_storage > node.allocatable_ephemeral_storage - node.requested_ephemeral_storage
    ):
        reasons.append(f"Insufficient {pods.EPHEMERAL_STORAGE}")
    for name, amount in r.scalar:
        if amount and amount > node.allocatable_scalar.get(name, 0) - node.requested_scalar.get(
            name, 0
        ):
            reasons.append(f"Insufficient {name}")
    return tuple(reasons)


class NodeResourcesBalancedAllocation:
    name = "NodeResourcesBalancedAllocation"

    def __init__(self, args: Mapping[str, Any], handle: framework.Handle) -> None:
        self._resources = tuple(r.name for r in _resource_weights(args, DEFAULT_RESOURCES))
        self._cpu_memory = self._resources == (pods.CPU, pods.MEMORY)

    def score_nodes(
        self, state: CycleState, pod: pods.PodInfo, feasible: list[nodes.NodeInfo]
    ) -> list[int]:
        if not self._cpu_memory:
            return [self.score(state, pod, node) for node in feasible]
        pod_cpu, pod_mem = pod.requests.milli_cpu, pod.requests.memory
        scores = []
        for n in feasible:
            cpu_alloc, mem_alloc = n.allocatable_milli_cpu, n.allocatable_memory
            if not (cpu_alloc and mem_alloc):
                scores.append(self.score(state, pod, n))
                continue
            cpu = (n.requested_milli_cpu + pod_cpu) / cpu_alloc
            mem = (n.requested_memory + pod_mem) / mem_alloc
            if cpu > 1.0:
                cpu = 1.0
            if mem > 1.0:
                mem = 1.0
            scores.append(int((1.0 - abs(cpu - mem) / 2) * MAX))
        return scores

    def score(self, state: CycleState, pod: pods.PodInfo, node: nodes.NodeInfo) -> int:
        if self._cpu_memory:
            cpu_alloc = node.allocatable_milli_cpu
            mem_alloc = node.allocatable_memory
            if cpu_alloc and mem_alloc:
                cpu = min((node.requested_milli_cpu + pod.requests.milli_cpu) / cpu_alloc, 1.0)
                mem = min((node.requested_memory + pod.requests.memory) / mem_alloc, 1.0)
                return int((1.0 - abs(cpu - mem) / 2) * MAX)
        fractions = []
        for name in self._resources:
            allocatable = _allocatable(node, name)
            if not allocatable:
                continue
            requested = _requested(node, name, non_zero=False) + _pod_request(
                pod, name, non_zero=False
            )
            fractions.append(min(requested / allocatable, 1.0))
        if len(fractions) < 2:
            return MAX
        if len(fractions) == 2:
            deviation = abs(fractions[0] - fractions[1]) / 2
        else:
            mean = sum(fractions) / len(fractions)
            deviation = (sum((f - mean) ** 2 for f in fractions) / len(fractions)) ** 0.5
        return int((1.0 - deviation) * MAX)

    def normalize(self, state: CycleState, pod: pods.PodInfo, scores: list[int]) -> None:
        pass


# PostFilter


class DefaultPreemption:
    """Words the preemption sentence of an unschedulable pod's message; evicts nothing."""

    name = "DefaultPreemption"
    NOT_HELPFUL = "Preemption is not helpful for scheduling"
    NO_VICTIMS = "No preemption victims found for incoming pod"

    def __init__(self, args: Mapping[str, Any], handle: framework.Handle) -> None:
        pass

    def post_filter(
        self, state: CycleState, pod: pods.PodInfo, statuses: Mapping[str, Status]
    ) -> Status:
        if (pod.obj.get("spec") or {}).get("preemptionPolicy") == "Never":
            return Status.unschedulable("preemption: not eligible due to preemptionPolicy=Never.")
        reasons = [
            Status.unschedulable(
                self.NO_VICTIMS if status.code is framework.Code.UNSCHEDULABLE else self.NOT_HELPFUL
            )
            for status in statuses.values()
        ]
        histogram = framework.reason_histogram(reasons)
        return Status.unschedulable(
            f"preemption: 0/{len(statuses)} nodes are available: {histogram}."
        )
