"""The agent's pod networking: pods' network namespaces, the node's condition, ClusterIPs.

`PodNetworking` wraps a `network.PodNetwork` (the CNI bridge network when the agent runs
as root with the CNI plugins and nft installed, unless turned off). Guarantees:

* `attach` gives a container pod (not `hostNetwork`) on a runtime that enters pod
  network namespaces (the process runtime says so in its verbose Status info,
  `runtime.POD_NETWORK_INFO`) its own namespace and address on its network's bridge,
  and a VM pod (not `hostNetwork`) on a runtime that plugs guests into pod networks
  (`runtime.POD_NIC_INFO`: the VM runtime) an address and MAC address on that bridge,
  once the Node has a `spec.podCIDR` (it waits a few seconds for the node IPAM
  controller, then raises `network.NetworkError`, which the pod worker retries); it
  returns None where pods share the node's network (VM pods: have no pod network). A
  pod attached before keeps its address. `sandbox_annotations` is what the runtime is
  told of an attachment.
* `detach` releases the pod's address and namespace; idempotent.
* `condition` is the Node's `NetworkUnavailable` condition (False either way: pods can
  always run): reason `PodNetworkReady` with what pods get, or `HostNetwork` with why
  pods share the node's network.
* While running, the Services and Endpoints of every tenant are watched and the node's
  ClusterIP rules follow them (about a tenth of a second after a change).
* Every minute, an attachment whose pod has not been on the node (per the agent's pod
  informer, `pods`) for a whole minute is detached.
* On stop, the node's rules and bridges are removed unless `keep` (pods kept running).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import trio

from arktos_lite import client, machinery, network, runtime
from arktos_lite.agent import _node as node_, _runtimes as runtimes
from arktos_lite.api import resources

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

_REGISTRY = resources.Registry()
SERVICES = _REGISTRY.get("", "v1", "services")
ENDPOINTS = _REGISTRY.get("", "v1", "endpoints")
assert SERVICES is not None
assert ENDPOINTS is not None

NETWORK_UNAVAILABLE = "NetworkUnavailable"
_DEBOUNCE = 0.1
# How long a pod waits for the node's pod CIDR before its sync fails (and is retried).
_CIDR_WAIT = 10.0
# How often attachments of pods no longer on the node are looked for.
_SWEEP_INTERVAL = 60.0


def sweep(
    attached: Iterable[str], known: Collection[str], suspects: Collection[str]
) -> tuple[set[str], set[str]]:
    """(to detach, suspects for the next sweep): an attached pod the node does not know
    is detached when it was already unknown at the previous sweep."""
    unknown = {uid for uid in attached if uid not in known}
    return unknown & set(suspects), unknown - set(suspects)


def wants_pod_network(pod: Mapping[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    return not spec.get("hostNetwork")


def is_vm(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("spec") or {}).get("virtualMachine"))


def sandbox_annotations(attachment: network.Attachment) -> dict[str, str]:
    """The sandbox config's annotations that tell the runtime of the pod's attachment:
    the namespace to enter, or the NIC to give the guest (`runtime.POD_NIC`); both with
    the pod's addresses (`runtime.POD_IPS`)."""
    annotations = {runtime.POD_IPS: ",".join(attachment.ips)}
    if attachment.guest:
        annotations[runtime.POD_NIC] = json.dumps(
            {
                "bridge": attachment.bridge,
                "mac": attachment.mac,
                "address": attachment.address,
                "gateway": attachment.gateway,
            },
            sort_keys=True,
        )
    else:
        annotations[runtime.POD_NETNS] = attachment.netns
    return annotations


class PodNetworking:
    """See the module docs; `enabled=None` decides from the machine, False never attaches."""

    def __init__(
        self,
        api: client.Client,
        *,
        node_name: str,
        root_dir: Path,
        informers: machinery.InformerFactory,
        enabled: bool | None = None,
        keep: bool = False,
        pods: machinery.Informer | None = None,
    ) -> None:
        self._api = api
        self._pods = pods
        self._node_name = node_name
        self._keep = keep
        self.backend: network.PodNetwork | None = None
        self.reason = "pod networking disabled"
        if enabled is not False:
            tools, why = network.detect_tools()
            if tools is not None:
                self.backend = network.BridgeNetwork(
                    root_dir / "network", node_name=node_name, tools=tools
                )
            else:
                self.reason = why
        self._cidr = trio.Event()
        self._dirty = trio.Event()
        self._node_changed = trio.Event()
        self._node: machinery.Informer | None = None
        # Runtime name -> (enters pod namespaces, plugs guests into pod networks).
        self._supports: dict[str, tuple[bool, bool]] = {}
        self._services: machinery.Informer | None = None
        self._endpoints: machinery.Informer | None = None
        if self.backend is not None:
            assert SERVICES is not None
            assert ENDPOINTS is not None
            self._services = informers.informer(SERVICES, tenant=resources.ALL_TENANTS)
            self._endpoints = informers.informer(ENDPOINTS, tenant=resources.ALL_TENANTS)
            for informer in (self._services, self._endpoints):
                informer.add_handler(
                    on_add=self._changed, on_update=self._changed_pair, on_delete=self._changed
                )
            self._node = informers.informer(
                node_.NODES, field_selector=f"metadata.name={node_name}"
            )
            self._node.add_handler(
                on_add=self._node_seen, on_update=self._node_updated, on_delete=self._node_seen
            )

    def _changed(self, obj: Obj) -> None:
        self._dirty.set()

    def _changed_pair(self, old: Obj, new: Obj) -> None:
        self._dirty.set()

    def _node_seen(self, obj: Obj) -> None:
        self._node_changed.set()

    def _node_updated(self, old: Obj, new: Obj) -> None:
        self._node_changed.set()

    def condition(self) -> node_.Condition:
        if self.backend is None:
            return node_.Condition(
                NETWORK_UNAVAILABLE,
                node_.ConditionStatus.FALSE,
                "HostNetwork",
                f"pods share the node's network: {self.reason}",
            )
        return node_.Condition(
            NETWORK_UNAVAILABLE,
            node_.ConditionStatus.FALSE,
            "PodNetworkReady",
            self.backend.description,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        backend = self.backend
        if backend is None:
            logger.info("node %s: pods share the node's network (%s)", self._node_name, self.reason)
            task_status.started()
            await trio.sleep_forever()
            return
        await trio.to_thread.run_sync(backend.start)
        if backend.pod_cidr:
            self._cidr.set()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._follow_pod_cidr, backend)
                nursery.start_soon(self._follow_services, backend)
                if self._pods is not None:
                    nursery.start_soon(self._sweep, backend, self._pods)
                task_status.started()
                await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(lambda: backend.close(keep=self._keep))

    async def _follow_pod_cidr(self, backend: network.PodNetwork) -> None:
        assert self._node is not None
        while True:
            await self._node_changed.wait()
            self._node_changed = trio.Event()
            for node in self._node.list():
                cidr = str((node.get("spec") or {}).get("podCIDR") or "")
                if cidr and cidr != backend.pod_cidr:
                    await trio.to_thread.run_sync(backend.set_pod_cidr, cidr)
            if backend.pod_cidr:
                self._cidr.set()

    async def _follow_services(self, backend: network.PodNetwork) -> None:
        assert self._services is not None
        assert self._endpoints is not None
        await self._services.wait_synced()
        await self._endpoints.wait_synced()
        self._dirty.set()
        while True:
            await self._dirty.wait()
            await trio.sleep(_DEBOUNCE)
            self._dirty = trio.Event()
            ports = network.service_ports(self._services.list(), self._endpoints.list())
            try:
                await trio.to_thread.run_sync(backend.set_services, ports)
            except network.NetworkError as exc:
                logger.warning("node %s: applying service rules: %s", self._node_name, exc)

    async def _sweep(self, backend: network.PodNetwork, pods: machinery.Informer) -> None:
        """Detach what no pod of the node owns any more (one deleted while the agent was
        away, its sandboxes gone too): a safety net behind the pod workers."""
        await pods.wait_synced()
        suspects: set[str] = set()
        while True:
            known = {str((p.get("metadata") or {}).get("uid") or "") for p in pods.list()}
            attached = await trio.to_thread.run_sync(backend.attachments)
            stale, suspects = sweep(attached, known, suspects)
            for uid in stale:
                logger.info("node %s: releasing the address of gone pod %s", self._node_name, uid)
                await trio.to_thread.run_sync(backend.detach, uid)
            await trio.sleep(_SWEEP_INTERVAL)

    async def _supported_by(self, named: runtimes.NamedRuntime, *, guest: bool) -> bool:
        known = self._supports.get(named.name)
        if known is None:
            info = (await named.runtime.status(verbose=True)).info
            known = (
                info.get(runtime.POD_NETWORK_INFO, "") in ("true", '"true"'),
                info.get(runtime.POD_NIC_INFO, "") in ("true", '"true"'),
            )
            self._supports[named.name] = known
        return known[1] if guest else known[0]

    async def attach(
        self, pod: Mapping[str, Any], named: runtimes.NamedRuntime
    ) -> network.Attachment | None:
        """The pod's attachment, or None when it shares the node's network."""
        backend = self.backend
        if backend is None or not wants_pod_network(pod):
            return None
        guest = is_vm(pod)
        if not await self._supported_by(named, guest=guest):
            return None
        with trio.move_on_after(_CIDR_WAIT):
            await self._cidr.wait()
        if not self._cidr.is_set():
            raise network.NetworkError(
                f"node {self._node_name} has no spec.podCIDR yet (is node IPAM running?)"
            )
        meta = pod.get("metadata") or {}
        member = network.Member(
            uid=str(meta.get("uid") or ""),
            key=network.network_of(pod),
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
        )
        if guest:
            return await trio.to_thread.run_sync(backend.attach_guest, member)
        return await trio.to_thread.run_sync(backend.attach, member)

    async def detach(self, uid: str) -> None:
        backend = self.backend
        if backend is None or uid not in backend.attachments():
            return
        await trio.to_thread.run_sync(backend.detach, uid)
