"""The plugin framework: kube-scheduler's extension points, statuses and cycle state.

A scheduling cycle for one pod runs PreFilter, then Filter on nodes until enough fit,
then PreScore and Score (with normalization and weights) on those that fit, and picks
the node with the highest total score, ties broken at random. When no node fits, the
PostFilter plugins run and the cycle ends in a `FitError` whose message is
kube-scheduler's ("0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had
untolerated taint {key: value}. preemption: ..."). Guarantees:

* A cycle is synchronous: it reads the snapshot it is given and nothing changes it
  meanwhile, so every plugin sees one consistent cluster.
* Filters run in their configured order and a node's first failing filter is the one
  reported for it. A PreFilter returning `Skip` skips that plugin's Filter for the cycle;
  a PreScore returning `Skip` skips its Score.
* Nodes are searched from where the previous cycle stopped (round-robin), and the search
  stops after `feasible_nodes_to_find` fitting nodes, as `percentageOfNodesToScore`
  defines; with one fitting node no scoring is done.
* Scores are integers in [0, `MAX_NODE_SCORE`] after normalization, weighted and summed.
* A plugin may also offer batch forms (`filter_nodes`, `score_nodes`) that say for each
  node exactly what its per-node forms say; the framework then calls it once per cycle
  instead of once per node, which is most of a cycle's cost in Python.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from arktos_lite.scheduler import _nodes as nodes, _pods as pods

MAX_NODE_SCORE = 100
# kube-scheduler: below this many nodes every node is searched; and never fewer are found.
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5

NO_NODES_MESSAGE = "no nodes available to schedule pods"


class Code(enum.StrEnum):
    SUCCESS = "Success"
    ERROR = "Error"
    UNSCHEDULABLE = "Unschedulable"
    UNSCHEDULABLE_AND_UNRESOLVABLE = "UnschedulableAndUnresolvable"
    SKIP = "Skip"


@dataclasses.dataclass(frozen=True, slots=True)
class Status:
    """What an extension point says: a code, the reasons (user-facing words) and the
    plugin that said it."""

    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def ok(self) -> bool:
        return self.code is Code.SUCCESS

    @property
    def rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    @classmethod
    def unschedulable(cls, *reasons: str, resolvable: bool = True, plugin: str = "") -> Status:
        code = Code.UNSCHEDULABLE if resolvable else Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        return cls(code, reasons, plugin)

    @classmethod
    def error(cls, reason: str) -> Status:
        return cls(Code.ERROR, (reason,))


SUCCESS = Status()
SKIP = Status(Code.SKIP)
FILTERED_BY_PRE_FILTER = Status(
    Code.UNSCHEDULABLE_AND_UNRESOLVABLE, ("node is filtered out by the prefilter result",)
)


class CycleState:
    """Data plugins share within one scheduling cycle, by key; gone after the cycle."""

    __slots__ = ("_data", "node_names", "skip_filter", "skip_score")

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()
        # Set by PreFilter plugins that know the pod can only go to these nodes.
        self.node_names: frozenset[str] | None = None

    def write(self, key: str, value: Any) -> None:
        self._data[key] = value

    def read(self, key: str) -> Any:
        """The value under `key`; KeyError if the PreFilter that writes it did not run."""
        return self._data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def restrict_nodes(self, names: frozenset[str]) -> None:
        self.node_names = names if self.node_names is None else self.node_names & names


class Snapshot(Protocol):
    """The cluster as a cycle sees it (the scheduler's cache)."""

    def node_list(self) -> Sequence[nodes.NodeInfo]:
        """Every node that exists, in a stable order."""
        ...

    def get_node(self, name: str) -> nodes.NodeInfo | None: ...

    def nodes_with_affinity_pods(self) -> Sequence[nodes.NodeInfo]:
        """Nodes holding at least one pod with pod affinity or anti-affinity."""
        ...

    def nodes_with_required_anti_affinity_pods(self) -> Sequence[nodes.NodeInfo]: ...

    def namespace_labels(self, tenant: str, namespace: str) -> Mapping[str, str] | None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Handle:
    """What a plugin may use besides its arguments."""

    snapshot: Snapshot


# Extension points. A plugin is any object with a `name` that implements some of them.


class Plugin(Protocol):
    @property
    def name(self) -> str: ...


@runtime_checkable
class PreFilterPlugin(Plugin, Protocol):
    def pre_filter(self, state: CycleState, pod: pods.PodInfo) -> Status:
        """Compute what Filter needs; `SKIP` when Filter has nothing to check."""
        ...


@runtime_checkable
class FilterPlugin(Plugin, Protocol):
    def filter(self, state: CycleState, pod: pods.PodInfo, node: nodes.NodeInfo) -> Status: ...


@runtime_checkable
class PostFilterPlugin(Plugin, Protocol):
    def post_filter(
        self, state: CycleState, pod: pods.PodInfo, statuses: Mapping[str, Status]
    ) -> Status:
        """Run when no node fits; `statuses` holds every node's rejection by name.

        An unschedulable status's reasons become the sentence after the filter reasons.
        """
        ...


@runtime_checkable
class PreScorePlugin(Plugin, Protocol):
    def pre_score(
        self, state: CycleState, pod: pods.PodInfo, feasible: Sequence[nodes.NodeInfo]
    ) -> Status: ...


@runtime_checkable
class ScorePlugin(Plugin, Protocol):
    def score(self, state: CycleState, pod: pods.PodInfo, node: nodes.NodeInfo) -> int: ...

    def normalize(self, state: CycleState, pod: pods.PodInfo, scores: list[int]) -> None:
        """Bring `scores` (one per feasible node, in order) into [0, MAX_NODE_SCORE]."""
        ...


# Batch forms: optional, for plugins on the hot path. They must say for each node exactly
# what the per-node form says; they only spare the framework a call per node.


@runtime_checkable
class BatchFilterPlugin(Plugin, Protocol):
    def filter_nodes(
        self,
        state: CycleState,
        pod: pods.PodInfo,
        candidates: list[nodes.NodeInfo],
        rejected: dict[str, Status],
    ) -> list[nodes.NodeInfo]:
        """The candidates that pass, in order; each other one goes into `rejected` by name
        with its status (naming this plugin). Errors raise `SchedulingError`."""
        ...


@runtime_checkable
class BatchScorePlugin(Plugin, Protocol):
    def score_nodes(
        self, state: CycleState, pod: pods.PodInfo, feasible: list[nodes.NodeInfo]
    ) -> list[int]: ...


BatchFilter = Callable[
    [CycleState, pods.PodInfo, list[nodes.NodeInfo], dict[str, Status]], list[nodes.NodeInfo]
]


def batch_filter(plugin: FilterPlugin) -> BatchFilter:
    """The plugin's `filter_nodes`, or one made of its `filter`."""
    if isinstance(plugin, BatchFilterPlugin):
        return plugin.filter_nodes
    run = plugin.filter
    name = plugin.name

    def filter_nodes(
        state: CycleState,
        pod: pods.PodInfo,
        candidates: list[nodes.NodeInfo],
        rejected: dict[str, Status],
    ) -> list[nodes.NodeInfo]:
        passing = []
        for node in candidates:
            status = run(state, pod, node)
            if status is SUCCESS or status.code is Code.SUCCESS:
                passing.append(node)
            elif status.code is Code.ERROR:
                raise SchedulingError(f"running Filter plugin {name}: {status.message}")
            else:
                rejected[node.name] = (
                    status if status.plugin else dataclasses.replace(status, plugin=name)
                )
        return passing

    return filter_nodes


def default_normalize(scores: list[int], *, reverse: bool) -> None:
    """kube-scheduler's `DefaultNormalizeScore`: scale so the highest is MAX_NODE_SCORE
    (with `reverse`, the highest becomes 0)."""
    highest = max(scores, default=0)
    if highest == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for i, score in enumerate(scores):
        score = MAX_NODE_SCORE * score // highest
        scores[i] = MAX_NODE_SCORE - score if reverse else score


# Results


class SchedulingError(Exception):
    """The cycle could not decide (a plugin failed); the pod is retried with backoff."""


class FitError(Exception):
    """No node fits the pod. `str()` is kube-scheduler's message."""

    def __init__(
        self,
        *,
        pod: pods.PodInfo,
        num_nodes: int,
        statuses: Mapping[str, Status],
        pre_filter_message: str = "",
        post_filter_message: str = "",
    ) -> None:
        self.pod = pod
        self.num_nodes = num_nodes
        self.statuses = statuses
        self.pre_filter_message = pre_filter_message
        self.post_filter_message = post_filter_message
        super().__init__(self._message())

    def _message(self) -> str:
        if self.num_nodes == 0:
            return NO_NODES_MESSAGE
        message = f"0/{self.num_nodes} nodes are available:"
        if self.pre_filter_message:
            message += f" {self.pre_filter_message}."
        else:
            histogram = reason_histogram(self.statuses.values())
            if histogram:
                message += f" {histogram}."
        if self.post_filter_message:
            message += f" {self.post_filter_message}"
        return message


def reason_histogram(statuses: Iterable[Status]) -> str:
    """`1 Insufficient cpu, 2 node(s) were unschedulable`: counts of reasons, sorted as
    strings (as kube-scheduler sorts them)."""
    counts: collections.Counter[str] = collections.Counter()
    for status in statuses:
        counts.update(status.reasons)
    return ", ".join(sorted(f"{count} {reason}" for reason, count in counts.items()))


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleResult:
    node: str
    evaluated: int
    feasible: int


def feasible_nodes_to_find(num_nodes: int, percentage: int | None) -> int:
    """How many fitting nodes a cycle looks for, as kube-scheduler computes it.

    `percentage` None or 0 is adaptive: 50% minus 1% per 125 nodes, at least 5%.
    """
    if num_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_nodes
    if not percentage:
        percentage = max(50 - num_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    if percentage >= 100:
        return num_nodes
    return max(num_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


@dataclasses.dataclass(frozen=True, slots=True)
class WeightedScore:
    plugin: ScorePlugin
    weight: int


class Framework:
    """Plugins by extension point, and the cycle that runs them. See the module docs."""

    def __init__(
        self,
        *,
        pre_filters: Sequence[PreFilterPlugin] = (),
        filters: Sequence[FilterPlugin] = (),
        post_filters: Sequence[PostFilterPlugin] = (),
        pre_scores: Sequence[PreScorePlugin] = (),
        scores: Sequence[WeightedScore] = (),
        percentage_of_nodes_to_score: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.pre_filters = tuple(pre_filters)
        self.filters = tuple(filters)
        self.post_filters = tuple(post_filters)
        self.pre_scores = tuple(pre_scores)
        self.scores = tuple(scores)
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        self._batch_filters = tuple((p.name, batch_filter(p)) for p in self.filters)
        self._scorers = tuple(
            (
                w.plugin,
                w.weight,
                w.plugin.score_nodes if isinstance(w.plugin, BatchScorePlugin) else None,
            )
            for w in self.scores
        )
        self._rng = rng or random.Random()
        self._next_start = 0

    def schedule(self, snapshot: Snapshot, pod: pods.PodInfo) -> ScheduleResult:
        """The node for `pod`; raises `FitError` or `SchedulingError`."""
        all_nodes = snapshot.node_list()
        if not all_nodes:
            raise FitError(pod=pod, num_nodes=0, statuses={})
        if pod.error is not None:
            raise SchedulingError(f"the pod cannot be read: {pod.error}")
        state = CycleState()
        rejected = self._pre_filter(state, pod)
        if rejected is not None:
            # Every node fails as the PreFilter said; its words stand for them all.
            statuses = {n.name: rejected for n in all_nodes}
            raise FitError(
                pod=pod,
                num_nodes=len(all_nodes),
                statuses=statuses,
                pre_filter_message=rejected.message,
                post_filter_message=self._post_filter(state, pod, statuses),
            )
        candidates: Sequence[nodes.NodeInfo] = all_nodes
        allowed = state.node_names
        if allowed is not None:
            candidates = [n for n in all_nodes if n.name in allowed]
        feasible, statuses = self._find_feasible(state, pod, candidates)
        if not feasible:
            if allowed is not None:
                for node in all_nodes:
                    if node.name not in allowed:
                        statuses[node.name] = FILTERED_BY_PRE_FILTER
            raise FitError(
                pod=pod,
                num_nodes=len(all_nodes),
                statuses=statuses,
                post_filter_message=self._post_filter(state, pod, statuses),
            )
        evaluated = len(statuses) + len(feasible)
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, evaluated, 1)
        totals = self._score(state, pod, feasible)
        return ScheduleResult(self._select(feasible, totals), evaluated, len(feasible))

    def _pre_filter(self, state: CycleState, pod: pods.PodInfo) -> Status | None:
        """The first rejection by a PreFilter plugin, if any."""
        for plugin in self.pre_filters:
            status = plugin.pre_filter(state, pod)
            if status.code is Code.SKIP:
                state.skip_filter.add(plugin.name)
            elif status.rejected:
                return status if status.plugin else dataclasses.replace(status, plugin=plugin.name)
            elif not status.ok:
                raise SchedulingError(f"running PreFilter plugin {plugin.name}: {status.message}")
        return None

    def _find_feasible(
        self, state: CycleState, pod: pods.PodInfo, candidates: Sequence[nodes.NodeInfo]
    ) -> tuple[list[nodes.NodeInfo], dict[str, Status]]:
        filters = [run for name, run in self._batch_filters if name not in state.skip_filter]
        count = len(candidates)
        to_find = feasible_nodes_to_find(count, self.percentage_of_nodes_to_score)
        start = self._next_start % count if count else 0
        order = [*candidates[start:], *candidates[:start]]
        feasible: list[nodes.NodeInfo] = []
        rejected: dict[str, Status] = {}
        position = 0
        # The hot loop of the scheduler. Nodes go through the filters in chunks of as many
        # as are still needed, so that no node past the last one needed is looked at.
        while position < count and len(feasible) < to_find:
            chunk = order[position : position + to_find - len(feasible)]
            position += len(chunk)
            for run in filters:
                chunk = run(state, pod, chunk, rejected)
                if not chunk:
                    break
            feasible.extend(chunk)
        if count:
            self._next_start = (start + position) % count
        return feasible, rejected

    def _post_filter(
        self, state: CycleState, pod: pods.PodInfo, statuses: Mapping[str, Status]
    ) -> str:
        messages = []
        for plugin in self.post_filters:
            status = plugin.post_filter(state, pod, statuses)
            if status.code is Code.ERROR:
                raise SchedulingError(f"running PostFilter plugin {plugin.name}: {status.message}")
            if status.reasons:
                messages.append(status.message)
        return " ".join(messages)

    def _score(
        self, state: CycleState, pod: pods.PodInfo, feasible: list[nodes.NodeInfo]
    ) -> list[int]:
        for plugin in self.pre_scores:
            status = plugin.pre_score(state, pod, feasible)
            if status.code is Code.SKIP:
                state.skip_score.add(plugin.name)
            elif not status.ok:
                raise SchedulingError(f"running PreScore plugin {plugin.name}: {status.message}")
        totals = [0] * len(feasible)
        for scorer, weight, batch in self._scorers:
            if scorer.name in state.skip_score:
                continue
            if batch is not None:
                scores = batch(state, pod, feasible)
            else:
                score = scorer.score
                scores = [score(state, pod, node) for node in feasible]
            scorer.normalize(state, pod, scores)
            totals = [total + value * weight for total, value in zip(totals, scores, strict=True)]
        return totals

    def _select(self, feasible: list[nodes.NodeInfo], totals: list[int]) -> str:
        # Every node with the top score is as likely to be chosen.
        best = max(totals)
        ties = [i for i, total in enumerate(totals) if total == best]
        chosen = ties[0] if len(ties) == 1 else self._rng.choice(ties)
        return feasible[chosen].name


PluginFactory = Callable[[Mapping[str, Any], Handle], Plugin]
