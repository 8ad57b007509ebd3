"""The controller manager: the core controllers over one client and one set of informers.

`run` builds the controllers (each registers the informers it needs with the shared
factory), starts the informers and waits until every one has listed, then starts each
controller's workers, and reports started only when all of them run. Every controller
sees one cache per resource, however many of them watch it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Protocol

import trio

from arktos_lite import client, machinery
from arktos_lite.controllers import (
    _actions as actions,
    _endpoints as endpoints,
    _gc as gc,
    _namespace as namespace,
    _network as network,
    _neutron as neutron,
    _nodeipam as nodeipam,
    _nodelifecycle as nodelifecycle,
    _tenant as tenant,
)

logger = logging.getLogger(__name__)

COMPONENT = "controller-manager"


@dataclasses.dataclass(frozen=True, slots=True)
class ControllerManagerOptions:
    # How long a node may stay silent before it is marked unknown and tainted.
    node_monitor_grace_period: float = 40.0
    # How long pods without their own toleration stay on an unreachable node.
    pod_eviction_timeout: float = 300.0
    node_monitor_period: float = 5.0
    # How long a complete Action (VM reboot/snapshot/restore) is kept, in seconds.
    action_retention: float = actions.DEFAULT_RETENTION
    # Where Nodes' pod CIDRs come from (comma-separated, one per IP family); "" hands
    # out none (node IPAM off).
    cluster_cidr: str = nodeipam.DEFAULT_CLUSTER_CIDR
    node_cidr_mask_size_ipv4: int = nodeipam.DEFAULT_MASK_IPV4
    node_cidr_mask_size_ipv6: int = nodeipam.DEFAULT_MASK_IPV6
    # Neutron ports for VM pods' NICs; None: no Neutron network controller.
    neutron_config: neutron.NeutronConfig | None = None

    def ipam(self) -> nodeipam.IPAMOptions | None:
        """Node IPAM's options; None when it is off. Raises ValueError for a cluster
        CIDR or mask that does not fit."""
        cidrs = nodeipam.parse_cluster_cidrs(
            self.cluster_cidr,
            mask_ipv4=self.node_cidr_mask_size_ipv4,
            mask_ipv6=self.node_cidr_mask_size_ipv6,
        )
        if not cidrs:
            return None
        return nodeipam.IPAMOptions(
            cluster_cidrs=cidrs,
            mask_ipv4=self.node_cidr_mask_size_ipv4,
            mask_ipv6=self.node_cidr_mask_size_ipv6,
        )


class _Controller(Protocol):
    async def run(self, *, task_status: trio.TaskStatus[None] = ...) -> None: ...


class ControllerManager:
    def __init__(
        self, api: client.Client, *, options: ControllerManagerOptions | None = None
    ) -> None:
        self._api = api
        self._options = options or ControllerManagerOptions()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        options = self._options
        informers = machinery.InformerFactory(self._api)
        recorder = machinery.EventRecorder(self._api, component=COMPONENT)
        controllers: list[_Controller] = [
            tenant.TenantController(self._api, informers, recorder=recorder),
            namespace.NamespaceController(self._api, informers, recorder=recorder),
            gc.GarbageCollector(self._api, informers, recorder=recorder),
            nodelifecycle.NodeLifecycleController(
                self._api,
                informers,
                recorder=recorder,
                grace_period=options.node_monitor_grace_period,
                eviction_timeout=options.pod_eviction_timeout,
                monitor_period=options.node_monitor_period,
            ),
            actions.ActionController(self._api, informers, retention=options.action_retention),
            endpoints.EndpointsController(self._api, informers, recorder=recorder),
            network.NetworkController(self._api, informers, recorder=recorder),
        ]
        ipam = options.ipam()
        if ipam is not None:
            controllers.append(
                nodeipam.NodeIPAMController(self._api, informers, recorder=recorder, options=ipam)
            )
        if options.neutron_config is not None:
            controllers.append(
                neutron.NeutronController(
                    self._api, informers, recorder=recorder, config=options.neutron_config
                )
            )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(recorder.run)
            await nursery.start(informers.run)
            for controller in controllers:
                await nursery.start(controller.run)
            logger.info("controller manager started %d controllers", len(controllers))
            task_status.started()
