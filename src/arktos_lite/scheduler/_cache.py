"""The scheduler's cache: every node and every pod placed on one, assumed pods included.

A pod the scheduler has picked a node for is *assumed* there at once, so that the next
cycle counts it while its binding is still in flight. Guarantees:

* A pod is counted on at most one node, once. When the informer reports a pod bound
  (`add_pod`/`update_pod`), an assumed copy of it is replaced by the real one (on the node
  it was really bound to); `forget_pod` uncounts an assumed pod whose binding failed, and
  does nothing to one the informer has confirmed meanwhile.
* A pod bound to a node not seen yet (or deleted) is still counted there, so that the
  node's figures are right the moment it appears.
* Terminal pods (`Succeeded`, `Failed`) take nothing: the caller removes them.
* The cache is also the `Snapshot` a cycle reads: cycles are synchronous, so they never
  see it change under them. `node_list` keeps a stable order of the nodes that exist.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence

from arktos_lite.scheduler import _nodes as nodes, _pods as pods

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class _Placed:
    pod: pods.PodInfo
    node: str
    assumed: bool


NamespaceLabels = Callable[[str, str], Mapping[str, str] | None]


def _no_namespace_labels(tenant: str, namespace: str) -> Mapping[str, str] | None:
    return None


class Cache:
    """See the module docs."""

    def __init__(self, *, namespace_labels: NamespaceLabels = _no_namespace_labels) -> None:
        self._nodes: dict[str, nodes.NodeInfo] = {}
        self._placed: dict[str, _Placed] = {}
        self._node_list: list[nodes.NodeInfo] | None = []
        self._namespace_labels = namespace_labels
        # Nodes holding pods with (required anti-)affinity, for InterPodAffinity.
        self._affinity_nodes: dict[str, nodes.NodeInfo] = {}
        self._anti_affinity_nodes: dict[str, nodes.NodeInfo] = {}

    # Nodes

    def add_node(self, obj: nodes.Obj) -> nodes.NodeInfo:
        """Add or update a node; returns its info."""
        facts = nodes.NodeFacts.parse(obj)
        info = self._nodes.get(facts.name)
        if info is None:
            info = self._nodes[facts.name] = nodes.NodeInfo(facts.name)
        if info.facts is None:
            self._node_list = None
        info.set_facts(facts)
        return info

    def remove_node(self, name: str) -> None:
        info = self._nodes.get(name)
        if info is None:
            return
        if info.facts is not None:
            self._node_list = None
        if info.pods:
            # Its pods still hold what they hold until they are gone.
            info.set_facts(None)
        else:
            del self._nodes[name]

    def get_node(self, name: str) -> nodes.NodeInfo | None:
        info = self._nodes.get(name)
        return info if info is not None and info.facts is not None else None

    def node_list(self) -> Sequence[nodes.NodeInfo]:
        if self._node_list is None:
            self._node_list = [n for n in self._nodes.values() if n.facts is not None]
        return self._node_list

    @property
    def node_count(self) -> int:
        return len(self.node_list())

    def nodes_with_affinity_pods(self) -> Sequence[nodes.NodeInfo]:
        return [n for n in self._affinity_nodes.values() if n.facts is not None]

    def nodes_with_required_anti_affinity_pods(self) -> Sequence[nodes.NodeInfo]:
        return [n for n in self._anti_affinity_nodes.values() if n.facts is not None]

    def namespace_labels(self, tenant: str, namespace: str) -> Mapping[str, str] | None:
        return self._namespace_labels(tenant, namespace)

    # Pods

    def assume_pod(self, pod: pods.PodInfo, node: str) -> None:
        """Count `pod` on `node` before it is bound there."""
        if pod.key in self._placed:
            raise ValueError(f"pod {pod.key} is already in the cache")
        self._place(_Placed(pod, node, assumed=True))

    def forget_pod(self, pod: pods.PodInfo) -> bool:
        """Uncount an assumed pod whose binding failed; whether it was still assumed."""
        placed = self._placed.get(pod.key)
        if placed is None or not placed.assumed or placed.pod.uid != pod.uid:
            return False
        self._unplace(pod.key)
        return True

    def is_assumed(self, key: str) -> bool:
        placed = self._placed.get(key)
        return placed is not None and placed.assumed

    def add_pod(self, pod: pods.PodInfo) -> None:
        """A pod the informer shows bound to `pod.node_name` (an add or an update)."""
        if pod.key in self._placed:
            self._unplace(pod.key)
        self._place(_Placed(pod, pod.node_name, assumed=False))

    update_pod = add_pod

    def remove_pod(self, key: str) -> pods.PodInfo | None:
        """The pod is gone (or finished): uncount it, assumed or not."""
        if key not in self._placed:
            return None
        return self._unplace(key)

    def pod(self, key: str) -> pods.PodInfo | None:
        placed = self._placed.get(key)
        return placed.pod if placed is not None else None

    @property
    def pod_count(self) -> int:
        return len(self._placed)

    def _place(self, placed: _Placed) -> None:
        info = self._nodes.get(placed.node)
        if info is None:
            info = self._nodes[placed.node] = nodes.NodeInfo(placed.node)
        info.add_pod(placed.pod)
        self._placed[placed.pod.key] = placed
        if placed.pod.has_affinity:
            self._affinity_nodes[info.name] = info
        if placed.pod.required_anti_affinity:
            self._anti_affinity_nodes[info.name] = info

    def _unplace(self, key: str) -> pods.PodInfo:
        placed = self._placed.pop(key)
        info = self._nodes[placed.node]
        info.remove_pod(key)
        if not info.pods_with_affinity:
            self._affinity_nodes.pop(info.name, None)
        if not info.pods_with_required_anti_affinity:
            self._anti_affinity_nodes.pop(info.name, None)
        if info.facts is None and not info.pods:
            del self._nodes[info.name]
        return placed.pod
