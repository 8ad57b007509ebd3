"""The node agent: one node's registration, heartbeats, pods, logs and exec, over CRI.

`Agent.run` starts, in order and each once ready: the event recorder, the agent's HTTPS
server (so the Node can say on which port it listens), the node's registration with its
status and Lease, the informer over the pods bound to the node (every tenant), the
pod manager, and the action worker (the node's VM Actions); it reports `started` once
the Node is registered with its conditions posted and the pods are synced. Guarantees:

* On cancellation (or a component's failure) the pods of the node are stopped
  gracefully through their runtimes, within `shutdown_timeout` (plus a few seconds to
  kill what is left), unless `keep_pods`; kept pods are adopted by the next agent over
  the same runtimes. Only then do the pod workers, the informer and the server stop.
* The agent's API client writes in any tenant: every call names the tenant.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
from collections.abc import Mapping

import trio

from arktos_lite import client, machinery
from arktos_lite.agent import (
    _actions as actions_,
    _network as network_,
    _node as node_,
    _pods as pods_,
    _runtimes as runtimes,
    _server as server_,
)
from arktos_lite.api import resources

logger = logging.getLogger(__name__)

COMPONENT = "arktos-agent"
# Beyond the pods' own grace: time to kill what is left and remove the sandboxes.
_SHUTDOWN_SLACK = 5.0

_REGISTRY = resources.Registry()
PODS = _REGISTRY.get("", "v1", "pods")
assert PODS is not None


@dataclasses.dataclass(frozen=True, slots=True)
class AgentConfig:
    """One node agent's settings (`arktos agent` flags)."""

    node_name: str
    # The agent's state, pod volumes and container logs.
    root_dir: pathlib.Path
    # Where the agent's HTTPS server (logs, exec) listens; port 0 picks a free one.
    address: str = "127.0.0.1"
    port: int = 10250
    # The node's address, as the API server and pods reach it.
    node_ip: str = "127.0.0.1"
    lease_duration_seconds: int = 40
    lease_renew_interval: float = 10.0
    # How often the status is computed; it is written when it changed ...
    status_update_interval: float = 10.0
    # ... and at least this often.
    node_status_report: float = 60.0
    max_pods: int = 110
    # On stop, leave the pods running for the next agent to adopt.
    keep_pods: bool = False
    # Labels of the Node besides kubernetes.io/{os,arch,hostname}.
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # How long stopping the pods on shutdown may take at most.
    shutdown_timeout: float = 30.0
    # Pods' own network namespaces through CNI (`arktos up` and `arktos agent` default to
    # None): None when root with the plugins and nft, False never (pods share the node's
    # network, as they do by default here).
    pod_network: bool | None = False


class Agent:
    """Runs one node; see the module docs."""

    def __init__(
        self, api: client.Client, *, config: AgentConfig, runtimes: runtimes.RuntimeSet
    ) -> None:
        self._api = api
        self.config = config
        self.runtimes = runtimes
        self.recorder = machinery.EventRecorder(api, component=COMPONENT, host=config.node_name)
        self._informers = machinery.InformerFactory(api)
        assert PODS is not None
        self.pods = self._informers.informer(
            PODS,
            tenant=resources.ALL_TENANTS,
            field_selector=f"spec.nodeName={config.node_name}",
        )
        self.networking = network_.PodNetworking(
            api,
            node_name=config.node_name,
            root_dir=config.root_dir,
            informers=self._informers,
            enabled=config.pod_network,
            keep=config.keep_pods,
            pods=self.pods,
        )
        self.pod_manager = pods_.PodManager(
            api,
            node_name=config.node_name,
            runtimes=runtimes,
            root_dir=config.root_dir,
            node_ip=config.node_ip,
            recorder=self.recorder,
            pods=self.pods,
            stop_timeout=config.shutdown_timeout,
            network=self.networking,
        )
        self.action_worker = actions_.ActionWorker(
            api, node_name=config.node_name, locator=self.pod_manager, recorder=self.recorder
        )
        self.server = server_.AgentServer(
            api,
            locator=self.pod_manager,
            root_dir=config.root_dir,
            host=config.address,
            port=config.port,
        )
        self.reporter: node_.NodeReporter | None = None

    @property
    def node(self) -> node_.Obj | None:
        """The Node as last written."""
        return self.reporter.node if self.reporter is not None else None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        config = self.config
        await trio.to_thread.run_sync(lambda: config.root_dir.mkdir(parents=True, exist_ok=True))
        logger.info(
            "agent of node %s starting: runtimes %s",
            config.node_name,
            ", ".join(f"{r.name} ({r.workload_type})" for r in self.runtimes.runtimes) or "none",
        )
        # The pod workers stop only after `stop_all` had its chance to stop their pods
        # gracefully: a cancellation from outside must not reach them first.
        manager_scope = trio.CancelScope(shield=True)

        async def run_pod_manager(*, task_status: trio.TaskStatus[None]) -> None:
            with manager_scope:
                await self.pod_manager.run(task_status=task_status)

        try:
            async with trio.open_nursery() as nursery:
                try:
                    await nursery.start(self.recorder.run)
                    port = await nursery.start(self.server.run)
                    self.reporter = node_.NodeReporter(
                        self._api,
                        node_name=config.node_name,
                        runtimes=self.runtimes,
                        root_dir=config.root_dir,
                        node_ip=config.node_ip,
                        port=port,
                        labels=config.labels,
                        max_pods=config.max_pods,
                        lease_duration_seconds=config.lease_duration_seconds,
                        lease_renew_interval=config.lease_renew_interval,
                        status_update_interval=config.status_update_interval,
                        status_report_interval=config.node_status_report,
                        conditions=lambda: [self.networking.condition()],
                    )
                    await nursery.start(self.reporter.run)
                    self._informers.start(nursery)
                    await nursery.start(self.networking.run)
                    await nursery.start(run_pod_manager)
                    await nursery.start(self.action_worker.run)
                    logger.info(
                        "agent of node %s ready: %d pods, server on port %s",
                        config.node_name,
                        len(self.pods),
                        port,
                    )
                    task_status.started()
                    await trio.sleep_forever()
                finally:
                    await self._shutdown()
                    manager_scope.cancel()
        finally:
            logger.info("agent of node %s stopped", config.node_name)

    async def _shutdown(self) -> None:
        if self.config.keep_pods:
            logger.info("agent of node %s stopping; its pods keep running", self.config.node_name)
            return
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + self.config.shutdown_timeout + _SHUTDOWN_SLACK
            await self.pod_manager.stop_all()
        if scope.cancelled_caught:
            logger.warning(
                "agent of node %s: stopping its pods took too long", self.config.node_name
            )
