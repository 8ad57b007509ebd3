"""`InterPodAffinity`: pod affinity and anti-affinity, required and preferred.

As kube-scheduler's plugin of the same name:

* Filter, in this order: a node in a topology domain (`topologyKey` value) holding a pod
  whose required anti-affinity matches the incoming pod is rejected ("node(s) didn't
  satisfy existing pods anti-affinity rules"); a node outside every domain holding pods
  that match all the incoming pod's required affinity terms is rejected as unresolvable
  ("node(s) didn't match pod affinity rules"), except for the first pod of a group whose
  terms match itself while no matching pod exists anywhere; a node in a domain holding a
  pod that matches one of the incoming pod's required anti-affinity terms is rejected
  ("node(s) didn't match pod anti-affinity rules").
* Score: per domain, plus the weight of each preferred affinity term of the incoming pod
  that an existing pod there matches, minus that of each anti-affinity term; likewise
  for the existing pods' own terms about the incoming pod (their required affinity terms
  count `hardPodAffinityWeight`, 1 by default). Scores are scaled from the lowest to 100.
* Terms match pods of the same tenant only (see `_pods.AffinityTerm`).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from arktos_lite.scheduler import _framework as framework, _nodes as nodes, _pods as pods

Status = framework.Status
CycleState = framework.CycleState
SUCCESS = framework.SUCCESS
SKIP = framework.SKIP

Pair = tuple[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class _FilterState:
    existing_anti: Mapping[Pair, int]
    existing_anti_keys: frozenset[str]
    affinity: Mapping[Pair, int]
    anti_affinity: Mapping[Pair, int]
    matches_own_terms: bool


def _add(counts: dict[Pair, int], node: nodes.NodeInfo, key: str, weight: int) -> None:
    value = node.labels.get(key)
    if value is not None:
        pair = (key, value)
        counts[pair] = counts.get(pair, 0) + weight


class InterPodAffinity:
    name = "InterPodAffinity"
    _EXISTING_ANTI = Status.unschedulable(
        "node(s) didn't satisfy existing pods anti-affinity rules", plugin=name
    )
    _AFFINITY = Status.unschedulable(
        "node(s) didn't match pod affinity rules", resolvable=False, plugin=name
    )
    _ANTI = Status.unschedulable("node(s) didn't match pod anti-affinity rules", plugin=name)

    def __init__(self, args: Mapping[str, Any], handle: framework.Handle) -> None:
        self._snapshot = handle.snapshot
        self._hard_weight = int(args.get("hardPodAffinityWeight", 1))
        self._score_key = f"{self.name}/score"

    def _namespace_labels(self, pod: pods.PodInfo) -> Mapping[str, str] | None:
        return self._snapshot.namespace_labels(pod.tenant, pod.namespace)

    # Filter

    def pre_filter(self, state: CycleState, pod: pods.PodInfo) -> Status:
        snapshot = self._snapshot
        anti_nodes = snapshot.nodes_with_required_anti_affinity_pods()
        own = pod.required_affinity or pod.required_anti_affinity
        if not own and not anti_nodes:
            return SKIP
        labels = self._namespace_labels(pod)
        existing_anti: dict[Pair, int] = {}
        for node in anti_nodes:
            node_labels = node.labels
            for existing in node.pods_with_required_anti_affinity.values():
                for term in existing.required_anti_affinity:
                    value = node_labels.get(term.topology_key)
                    if value is not None and term.matches(pod, labels):
                        pair = (term.topology_key, value)
                        existing_anti[pair] = existing_anti.get(pair, 0) + 1
        affinity: dict[Pair, int] = {}
        anti_affinity: dict[Pair, int] = {}
        if own:
            required, anti = pod.required_affinity, pod.required_anti_affinity
            for node in snapshot.node_list():
                for existing in node.pods.values():
                    if existing.tenant != pod.tenant:
                        continue
                    existing_labels = self._namespace_labels(existing)
                    if required and all(t.matches(existing, existing_labels) for t in required):
                        for term in required:
                            _add(affinity, node, term.topology_key, 1)
                    for term in anti:
                        if term.matches(existing, existing_labels):
                            _add(anti_affinity, node, term.topology_key, 1)
        state.write(
            self.name,
            _FilterState(
                existing_anti=existing_anti,
                existing_anti_keys=frozenset(key for key, _ in existing_anti),
                affinity=affinity,
                anti_affinity=anti_affinity,
                matches_own_terms=all(t.matches(pod, labels) for t in pod.required_affinity),
            ),
        )
        return SUCCESS

    def filter_nodes(
        self,
        state: CycleState,
        pod: pods.PodInfo,
        candidates: list[nodes.NodeInfo],
        rejected: dict[str, Status],
    ) -> list[nodes.NodeInfo]:
        passing = []
        for node in candidates:
            status = self.filter(state, pod, node)
            if status is SUCCESS:
                passing.append(node)
            else:
                rejected[node.name] = status
        return passing

    def filter(self, state: CycleState, pod: pods.PodInfo, node: nodes.NodeInfo) -> Status:
        s: _FilterState = state.read(self.name)
        labels = node.labels
        for key in s.existing_anti_keys:
            value = labels.get(key)
            if value is not None and s.existing_anti.get((key, value), 0) > 0:
                return self._EXISTING_ANTI
        if pod.required_affinity:
            pods_exist = True
            for term in pod.required_affinity:
                value = labels.get(term.topology_key)
                if value is None:
                    return self._AFFINITY
                if s.affinity.get((term.topology_key, value), 0) <= 0:
                    pods_exist = False
            # The first pod of a group that attracts itself may start it anywhere.
            if not pods_exist and not (not s.affinity and s.matches_own_terms):
                return self._AFFINITY
        for term in pod.required_anti_affinity:
            value = labels.get(term.topology_key)
            if value is not None and s.anti_affinity.get((term.topology_key, value), 0) > 0:
                return self._ANTI
        return SUCCESS

    # Score

    def pre_score(
        self, state: CycleState, pod: pods.PodInfo, feasible: Sequence[nodes.NodeInfo]
    ) -> Status:
        snapshot = self._snapshot
        preferred = pod.preferred_affinity or pod.preferred_anti_affinity
        scanned = snapshot.node_list() if preferred else snapshot.nodes_with_affinity_pods()
        if not scanned:
            return SKIP
        labels = self._namespace_labels(pod)
        scores: dict[Pair, int] = {}
        for node in scanned:
            if node.facts is None:
                continue
            existing_pods = node.pods if preferred else node.pods_with_affinity
            for existing in existing_pods.values():
                if existing.tenant != pod.tenant:
                    continue
                if preferred:
                    existing_labels = self._namespace_labels(existing)
                    for term in pod.preferred_affinity:
                        if term.matches(existing, existing_labels):
                            _add(scores, node, term.topology_key, term.weight)
                    for term in pod.preferred_anti_affinity:
                        if term.matches(existing, existing_labels):
                            _add(scores, node, term.topology_key, -term.weight)
                if not existing.has_affinity:
                    continue
                if self._hard_weight > 0:
                    for term in existing.required_affinity:
                        if term.matches(pod, labels):
                            _add(scores, node, term.topology_key, self._hard_weight)
                for term in existing.preferred_affinity:
                    if term.matches(pod, labels):
                        _add(scores, node, term.topology_key, term.weight)
                for term in existing.preferred_anti_affinity:
                    if term.matches(pod, labels):
                        _add(scores, node, term.topology_key, -term.weight)
        by_key: dict[str, dict[str, int]] = collections.defaultdict(dict)
        for (key, value), score in scores.items():
            if score:
                by_key[key][value] = score
        if not by_key:
            return SKIP
        state.write(self._score_key, dict(by_key))
        return SUCCESS

    def score(self, state: CycleState, pod: pods.PodInfo, node: nodes.NodeInfo) -> int:
        by_key: dict[str, dict[str, int]] = state.read(self._score_key)
        labels = node.labels
        total = 0
        for key, values in by_key.items():
            value = labels.get(key)
            if value is not None:
                total += values.get(value, 0)
        return total

    def normalize(self, state: CycleState, pod: pods.PodInfo, scores: list[int]) -> None:
        if not scores:
            return
        low, high = min(scores), max(scores)
        spread = high - low
        for i, score in enumerate(scores):
            scores[i] = int(framework.MAX_NODE_SCORE * (score - low) / spread) if spread else 0
