"""`PodTopologySpread`: keep matching pods evenly spread over topology domains.

As kube-scheduler's plugin of the same name:

* `whenUnsatisfiable: DoNotSchedule` constraints filter. A node without the constraint's
  `topologyKey` is rejected as unresolvable ("node(s) didn't match pod topology spread
  constraints (missing required label)"); one where placing the pod would make
  `matching pods in its domain + 1 - the fewest in any domain` exceed `maxSkew` is
  rejected ("node(s) didn't match pod topology spread constraints"). The fewest is 0
  while there are fewer domains than `minDomains`.
* Domains are the values of the key on nodes that have every constraint's key and, under
  the default `nodeAffinityPolicy: Honor`, match the pod's node selector and affinity;
  under `nodeTaintsPolicy: Honor`, nodes with taints the pod does not tolerate are left out.
* Only pods of the incoming pod's tenant and namespace that are not terminating count.
* `ScheduleAnyway` constraints score: fewer matching pods in the node's domain is better,
  each constraint weighted by the log of its number of domains.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from arktos_lite.scheduler import (
    _framework as framework,
    _nodes as nodes,
    _plugins as plugins,
    _pods as pods,
)

Status = framework.Status
CycleState = framework.CycleState
SUCCESS = framework.SUCCESS
SKIP = framework.SKIP


@dataclasses.dataclass(frozen=True, slots=True)
class _Counted:
    constraint: pods.SpreadConstraint
    counts: Mapping[str, int]
    fewest: int
    self_match: int


def _eligible(pod: pods.PodInfo, node: nodes.NodeInfo, constraint: pods.SpreadConstraint) -> bool:
    if constraint.honor_node_affinity and not plugins.node_affinity_matches(pod, node):
        return False
    if constraint.honor_node_taints:
        for taint in node.taints:
            if taint.effect != pods.TaintEffect.PREFER_NO_SCHEDULE and not pods.tolerated(
                pod.tolerations, taint
            ):
                return False
    return True


def _matching(pod: pods.PodInfo, node: nodes.NodeInfo, constraint: pods.SpreadConstraint) -> int:
    selector = constraint.selector
    if selector is None:
        return 0
    return sum(
        1
        for other in node.pods.values()
        if other.namespace == pod.namespace
        and other.tenant == pod.tenant
        and not other.terminating
        and selector.matches(other.labels)
    )


def _count(
    pod: pods.PodInfo,
    constraints: Sequence[pods.SpreadConstraint],
    candidates: Sequence[nodes.NodeInfo],
    *,
    domains_from: Sequence[nodes.NodeInfo] | None = None,
) -> list[dict[str, int]]:
    """Matching pods per domain, per constraint, over nodes with every key."""
    keys = [c.topology_key for c in constraints]
    allowed: list[set[str]] | None = None
    if domains_from is not None:
        allowed = [{n.labels[key] for n in domains_from if key in n.labels} for key in keys]
    counts: list[dict[str, int]] = [{} for _ in constraints]
    for node in candidates:
        if node.facts is None:
            continue
        labels = node.labels
        if not all(key in labels for key in keys):
            continue
        for i, constraint in enumerate(constraints):
            if not _eligible(pod, node, constraint):
                continue
            value = labels[constraint.topology_key]
            if allowed is not None and value not in allowed[i]:
                continue
            counts[i][value] = counts[i].get(value, 0) + _matching(pod, node, constraint)
    return counts


class PodTopologySpread:
    name = "PodTopologySpread"
    _SKEW = Status.unschedulable(
        "node(s) didn't match pod topology spread constraints", plugin=name
    )
    _MISSING = Status.unschedulable(
        "node(s) didn't match pod topology spread constraints (missing required label)",
        resolvable=False,
        plugin=name,
    )

    def __init__(self, args: Mapping[str, Any], handle: framework.Handle) -> None:
        self._snapshot = handle.snapshot
        self._score_key = f"{self.name}/score"

    def pre_filter(self, state: CycleState, pod: pods.PodInfo) -> Status:
        hard = [c for c in pod.spread_constraints if c.hard]
        if not hard:
            return SKIP
        counts = _count(pod, hard, self._snapshot.node_list())
        counted = []
        for constraint, per_domain in zip(hard, counts, strict=True):
            if len(per_domain) < constraint.min_domains or not per_domain:
                fewest = 0
            else:
                fewest = min(per_domain.values())
            selector = constraint.selector
            counted.append(
                _Counted(
                    constraint=constraint,
                    counts=per_domain,
                    fewest=fewest,
                    self_match=int(selector is not None and selector.matches(pod.labels)),
                )
            )
        state.write(self.name, tuple(counted))
        return SUCCESS

    def filter(self, state: CycleState, pod: pods.PodInfo, node: nodes.NodeInfo) -> Status:
        counted: tuple[_Counted, ...] = state.read(self.name)
        labels = node.labels
        for c in counted:
            value = labels.get(c.constraint.topology_key)
            if value is None:
                return self._MISSING
            skew = c.counts.get(value, 0) + c.self_match - c.fewest
            if skew > c.constraint.max_skew:
                return self._SKEW
        return SUCCESS

    def pre_score(
        self, state: CycleState, pod: pods.PodInfo, feasible: Sequence[nodes.NodeInfo]
    ) -> Status:
        soft = [c for c in pod.spread_constraints if not c.hard]
        if not soft:
            return SKIP
        counts = _count(pod, soft, self._snapshot.node_list(), domains_from=feasible)
        weights = [math.log(len(per_domain) + 2) for per_domain in counts]
        state.write(self._score_key, (tuple(soft), counts, weights))
        return SUCCESS

    def score(self, state: CycleState, pod: pods.PodInfo, node: nodes.NodeInfo) -> int:
        soft, counts, weights = state.read(self._score_key)
        labels = node.labels
        total = 0.0
        for constraint, per_domain, weight in zip(soft, counts, weights, strict=True):
            value = labels.get(constraint.topology_key)
            if value is None:
                # A node outside the constraint's domains: marked, scored 0 below.
                return -1
            total += per_domain.get(value, 0) * weight + (constraint.max_skew - 1)
        return round(total)

    def normalize(self, state: CycleState, pod: pods.PodInfo, scores: list[int]) -> None:
        counted = [s for s in scores if s >= 0]
        if not counted:
            scores[:] = [0] * len(scores)
            return
        low, high = min(counted), max(counted)
        for i, score in enumerate(scores):
            if score < 0:
                scores[i] = 0
            elif high == 0:
                scores[i] = framework.MAX_NODE_SCORE
            else:
                scores[i] = framework.MAX_NODE_SCORE * (high + low - score) // high
