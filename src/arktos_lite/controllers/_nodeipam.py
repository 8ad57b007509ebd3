"""Node IPAM: every Node gets its own pod CIDR from the cluster CIDR, as
kube-controller-manager's range allocator gives them.

Guarantees:

* A Node without `spec.podCIDR` gets the next free subnet of each cluster CIDR (one per
  IP family; `/24` of IPv4 and `/64` of IPv6 by default) in `spec.podCIDRs`, the first
  also in `spec.podCIDR`, by a merge patch of just those fields. The search for a free
  subnet goes on from the last one handed out, so a released subnet is not reused at once.
* One subnet never goes to two Nodes: every subnet a Node holds (as seen in the cache,
  or handed out and not seen yet) is taken; a Node keeps the subnet it was handed until
  its patch succeeds, however often that is tried.
* After a restart the allocations are rebuilt from the Nodes' `spec.podCIDRs` before
  anything is handed out.
* A Node's subnets are free again once the Node is deleted; Nodes waiting for one are
  looked at again then.
* When a cluster CIDR has no free subnet left, the Node gets the event
  `CIDRNotAvailable` and is tried again later, with backoff.
* The API server keeps `spec.podCIDR` once it is set; a Node that already has pod CIDRs
  (set by hand, say) keeps them, and they count as taken.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import trio

from arktos_lite import client, machinery
from arktos_lite.api import errors, resources
from arktos_lite.controllers import _common as common

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

NODES = next(r for r in resources.RESOURCES if (r.group, r.kind) == ("", "Node"))

DEFAULT_CLUSTER_CIDR = "10.244.0.0/16"
DEFAULT_MASK_IPV4 = 24
DEFAULT_MASK_IPV6 = 64
# kube-controller-manager's clusterSubnetMaxDiff: at most 2**16 subnets per cluster CIDR.
MAX_SUBNET_BITS = 16
CIDR_NOT_AVAILABLE = "CIDRNotAvailable"


class CIDRRangeFull(Exception):
    """No free subnet is left in a cluster CIDR."""


def parse_cluster_cidrs(
    text: str,
    *,
    mask_ipv4: int = DEFAULT_MASK_IPV4,
    mask_ipv6: int = DEFAULT_MASK_IPV6,
) -> tuple[Network, ...]:
    """The cluster CIDRs of `--cluster-cidr` (comma-separated, at most one per family).

    Raises ValueError with a message fit for the user when the text or a node mask
    does not fit.
    """
    networks: list[Network] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            network = ipaddress.ip_network(part, strict=False)
        except ValueError as exc:
            raise ValueError(f"{part!r} is not a CIDR: {exc}") from None
        networks.append(network)
    if len(networks) > 2 or len({n.version for n in networks}) != len(networks):
        raise ValueError("give at most one IPv4 and one IPv6 cluster CIDR")
    for network in networks:
        mask = mask_ipv4 if network.version == 4 else mask_ipv6
        if not network.prefixlen <= mask <= network.max_prefixlen:
            raise ValueError(f"node CIDR mask /{mask} does not fit in the cluster CIDR {network}")
        if mask - network.prefixlen > MAX_SUBNET_BITS:
            raise ValueError(
                f"node CIDR mask /{mask} splits {network} into more than "
                f"2^{MAX_SUBNET_BITS} subnets"
            )
    return tuple(networks)


class CIDRSet:
    """The subnets of one cluster CIDR with one mask: which are taken, which is next."""

    def __init__(self, cluster: Network, *, mask: int) -> None:
        if not cluster.prefixlen <= mask <= cluster.max_prefixlen:
            raise ValueError(f"mask /{mask} does not fit in {cluster}")
        self.cluster = cluster
        self.mask = mask
        self.size = 1 << (mask - cluster.prefixlen)
        self._shift = cluster.max_prefixlen - mask
        self._used: set[int] = set()
        self._next = 0

    def __len__(self) -> int:
        """How many subnets are taken."""
        return len(self._used)

    def _subnet(self, index: int) -> Network:
        base = int(self.cluster.network_address) + (index << self._shift)
        return ipaddress.ip_network((base, self.mask))

    def _indices(self, network: Network) -> range:
        """The subnets `network` overlaps (empty when it lies outside the cluster CIDR)."""
        if network.version != self.cluster.version or not network.overlaps(self.cluster):
            return range(0)
        start = max(int(network.network_address), int(self.cluster.network_address))
        end = min(int(network.broadcast_address), int(self.cluster.broadcast_address))
        origin = int(self.cluster.network_address)
        return range((start - origin) >> self._shift, ((end - origin) >> self._shift) + 1)

    def allocate_next(self) -> Network:
        """The next free subnet after the last one handed out; raises `CIDRRangeFull`."""
        for step in range(self.size):
            index = (self._next + step) % self.size
            if index not in self._used:
                self._used.add(index)
                self._next = (index + 1) % self.size
                return self._subnet(index)
        raise CIDRRangeFull(f"no free /{self.mask} left in {self.cluster}")

    def occupy(self, network: Network) -> bool:
        """Mark every subnet `network` overlaps as taken; False when it is outside."""
        indices = self._indices(network)
        self._used.update(indices)
        return len(indices) > 0

    def release(self, network: Network) -> None:
        for index in self._indices(network):
            self._used.discard(index)

    def taken(self, network: Network) -> bool:
        return any(index in self._used for index in self._indices(network))


def node_cidrs(node: Mapping[str, Any]) -> tuple[str, ...]:
    """`spec.podCIDRs`, else `spec.podCIDR`."""
    spec = node.get("spec") or {}
    listed = tuple(str(c) for c in spec.get("podCIDRs") or () if c)
    if listed:
        return listed
    single = spec.get("podCIDR")
    return (str(single),) if single else ()


def _parse(cidr: str) -> Network | None:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


class RangeAllocator:
    """The subnets of every cluster CIDR and which Nodes hold them."""

    def __init__(self, cidr_sets: Sequence[CIDRSet]) -> None:
        self._sets = tuple(cidr_sets)
        # Node name to the subnets it holds (seen on it, or handed to it).
        self._held: dict[str, tuple[Network, ...]] = {}
        # How many Nodes hold each subnet: two Nodes given one by hand free it together.
        self._holders: dict[Network, set[str]] = {}

    def holds(self, node: str) -> tuple[str, ...]:
        return tuple(str(n) for n in self._held.get(node, ()))

    def observe(self, node: str, cidrs: Iterable[str]) -> None:
        """The Node holds these subnets (and no others)."""
        networks = tuple(n for c in cidrs if (n := _parse(c)) is not None)
        if self._held.get(node) == networks:
            return
        self.forget(node)
        self._held[node] = networks
        for network in networks:
            self._holders.setdefault(network, set()).add(node)
            if not any(cidr_set.occupy(network) for cidr_set in self._sets):
                logger.debug("node %s holds %s, outside the cluster CIDRs", node, network)

    def forget(self, node: str) -> None:
        """The Node is gone: its subnets are free unless another Node holds them too."""
        for network in self._held.pop(node, ()):
            holders = self._holders.get(network, set())
            holders.discard(node)
            if not holders:
                self._holders.pop(network, None)
                for cidr_set in self._sets:
                    cidr_set.release(network)

    def allocate(self, node: str) -> tuple[str, ...]:
        """A subnet of every cluster CIDR for the Node: those it was handed before, or
        the next free ones. Raises `CIDRRangeFull`, handing out nothing."""
        if node in self._held:
            return self.holds(node)
        allocated: list[Network] = []
        try:
            for cidr_set in self._sets:
                allocated.append(cidr_set.allocate_next())
        except CIDRRangeFull:
            for network, cidr_set in zip(allocated, self._sets, strict=False):
                cidr_set.release(network)
            raise
        self._held[node] = tuple(allocated)
        for network in allocated:
            self._holders.setdefault(network, set()).add(node)
        return self.holds(node)


@dataclasses.dataclass(frozen=True, slots=True)
class IPAMOptions:
    cluster_cidrs: tuple[Network, ...] = (ipaddress.ip_network(DEFAULT_CLUSTER_CIDR),)
    mask_ipv4: int = DEFAULT_MASK_IPV4
    mask_ipv6: int = DEFAULT_MASK_IPV6


class NodeIPAMController:
    """See the module docs. Construct before the informer factory starts; then `run`."""

    def __init__(
        self,
        api: client.Client,
        informers: machinery.InformerFactory,
        *,
        recorder: machinery.EventRecorder,
        options: IPAMOptions | None = None,
        workers: int = 1,
    ) -> None:
        options = options or IPAMOptions()
        self._api = api
        self._recorder = recorder
        self._workers = workers
        self.allocator = RangeAllocator(
            [
                CIDRSet(n, mask=options.mask_ipv4 if n.version == 4 else options.mask_ipv6)
                for n in options.cluster_cidrs
            ]
        )
        self._queue: machinery.WorkQueue[str] = machinery.WorkQueue()
        # Nodes that found no free subnet: a release looks at them again.
        self._waiting: set[str] = set()
        self._nodes = informers.informer(NODES)
        self._nodes.add_handler(
            on_add=self._node_seen,
            on_update=lambda _old, new: self._node_seen(new),
            on_delete=self._node_deleted,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # Every Node's subnets are known (the handlers saw the first list) before any is
        # handed out.
        await self._nodes.wait_synced()
        await common.work(
            self._queue,
            self._sync,
            workers=self._workers,
            what="node IPAM",
            logger=logger,
            task_status=task_status,
        )

    # Event handlers: they note the subnets Nodes hold and enqueue those without.

    def _node_seen(self, node: Obj) -> None:
        name = self._nodes.key(node)
        cidrs = node_cidrs(node)
        if cidrs:
            self.allocator.observe(name, cidrs)
            self._waiting.discard(name)
        else:
            self._queue.add(name)

    def _node_deleted(self, node: Obj) -> None:
        name = self._nodes.key(node)
        self.allocator.forget(name)
        self._waiting.discard(name)
        for waiting in sorted(self._waiting):
            self._queue.add(waiting)

    # The work

    async def _sync(self, name: str) -> None:
        node = self._nodes.get(name)
        if node is None or node_cidrs(node):
            return
        try:
            cidrs = self.allocator.allocate(name)
        except CIDRRangeFull as exc:
            logger.debug("no pod CIDR for node %s: %s", name, exc)
            self._waiting.add(name)
            self._recorder.event(
                {"apiVersion": "v1", "kind": "Node", "metadata": node.get("metadata") or {}},
                machinery.EventType.NORMAL,
                reason=CIDR_NOT_AVAILABLE,
                message=f"Node {name} status is now: {CIDR_NOT_AVAILABLE}",
            )
            raise machinery.Requeue() from None
        self._waiting.discard(name)
        patch = {"spec": {"podCIDR": cidrs[0], "podCIDRs": list(cidrs)}}
        try:
            await self._api.patch(NODES, name, patch)
        except errors.NotFound:
            self.allocator.forget(name)
            return
        logger.info("node %s was given pod CIDRs %s", name, ", ".join(cidrs))
