"""The network controller: tenants' Networks (arktos.futurewei.com/v1) and pods on them.

Guarantees:

* Every Active tenant has a Network `default` of type `flat`; one that goes missing is
  created again while the tenant is Active (never while it terminates).
* A `flat` Network is `Ready`. A `vpc` Network without a phase is `Pending`: no provider
  of VPC networks runs here, so it stays so until one says otherwise.
* A `mizar` Network gets, in its tenant's namespace `default`, a Mizar `Vpc` and a
  `Subnet` (mizar.com/v1) named as Arktos names them: the VPC is `spec.vpcID`, or
  `<tenant>-default-network` without one; the subnet is `<vpc>-subnet`; Arktos's default
  ranges (21.0.0.0/16, 21.0.21.0/24) and one VNI per tenant and VPC. (Arktos creates them
  in the system tenant; here they stay with their tenant, so that two tenants' VPCs of
  one name never meet.) Their CustomResourceDefinitions (`vpcs.mizar.com`,
  `subnets.mizar.com`) are created first, in the system tenant, labelled to be served to
  every tenant. Existing objects are left as they are. The Network is `Ready` once both
  objects exist.
* A pod joins the Network its label `arktos.futurewei.com/network` names, `default`
  without one. A pod naming a Network its tenant does not have gets one Warning event
  `NetworkNotFound` (again only if it names another) and is looked at again when the
  Network appears. Pods with `hostNetwork: true` are left alone.
* A pod on a `Ready` mizar Network whose VPC and subnet this controller has seen to (a
  phase a client wrote is not enough) is annotated with `mizar.com/vpc` and
  `mizar.com/subnet` before Mizar hears of it; then Mizar's BuiltinsService is called:
  `CreatePod` once, `UpdatePod` for each later version of the pod (not once it is being
  deleted), and `DeletePod` when it is gone (only for pods Mizar was told of). Mizar's
  address is the `host` of the ConfigMap `default/mizar-grpc-service` of the system
  tenant (port 50052 unless it names one); without it, pods wait and are called once it
  appears.
* A temporary failure (Mizar's `TEMP_ERROR`, gRPC `UNAVAILABLE` or `DEADLINE_EXCEEDED`)
  is retried with the queue's exponential backoff; a permanent one becomes a Warning event
  `MizarCallFailed` on the pod and is not retried until the pod changes.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import logging
import zlib
from typing import Any, Final

import trio

from arktos_lite import client, machinery
from arktos_lite.api import errors, resources
from arktos_lite.controllers import _common as common
from arktos_lite.network import mizar

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

_REGISTRY = resources.Registry()


def _builtin(group: str, kind: str) -> resources.Resource:
    found = _REGISTRY.by_kind(group, kind)
    assert found is not None, kind
    return found


GROUP: Final = "arktos.futurewei.com"
NETWORKS: Final = _builtin(GROUP, "Network")
TENANTS: Final = _builtin("", "Tenant")
PODS: Final = _builtin("", "Pod")
CONFIGMAPS: Final = _builtin("", "ConfigMap")
CRDS: Final = _builtin("apiextensions.k8s.io", "CustomResourceDefinition")

NETWORK_LABEL: Final = "arktos.futurewei.com/network"
DEFAULT_NETWORK: Final = "default"
SHARING_LABEL: Final = "arktos.futurewei.com/crd-sharing-policy"

MIZAR_GROUP: Final = "mizar.com"
VPCS: Final = resources.Resource(MIZAR_GROUP, "v1", "Vpc", "vpcs", resources.Scope.NAMESPACE)
SUBNETS: Final = resources.Resource(
    MIZAR_GROUP, "v1", "Subnet", "subnets", resources.Scope.NAMESPACE
)
VPC_ANNOTATION: Final = "mizar.com/vpc"
SUBNET_ANNOTATION: Final = "mizar.com/subnet"
MIZAR_NAMESPACE: Final = "default"
# Arktos's default Mizar VPC and subnet ranges.
VPC_IP, VPC_PREFIX = "21.0.0.0", "16"
SUBNET_IP, SUBNET_PREFIX = "21.0.21.0", "24"
# VNIs are 24 bits; Mizar's own default VPC uses 1.
_VNI_SPACE = (1 << 24) - 2

# How long an object waits for its tenant's namespace `default`.
NAMESPACE_RETRY = 0.5


class NetworkType(enum.StrEnum):
    FLAT = "flat"
    VPC = "vpc"
    MIZAR = "mizar"


class Phase(enum.StrEnum):
    PENDING = "Pending"
    READY = "Ready"
    FAILED = "Failed"


class Reason(enum.StrEnum):
    NETWORK_NOT_FOUND = "NetworkNotFound"
    MIZAR_CALL_FAILED = "MizarCallFailed"
    MIZAR_OBJECTS_CREATED = "MizarObjectsCreated"


def default_network(tenant: str) -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Network",
        "metadata": {"name": DEFAULT_NETWORK, "tenant": tenant},
        "spec": {"type": NetworkType.FLAT.value},
    }


def _involved(api_version: str, kind: str, obj: Obj) -> Obj:
    """What an event is about: cached objects may lack their kind."""
    return {"apiVersion": api_version, "kind": kind, "metadata": obj.get("metadata") or {}}


def network_of(pod: Obj) -> str:
    """The name of the Network a pod is on."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return str(labels.get(NETWORK_LABEL) or DEFAULT_NETWORK)


def _by_network(pod: Obj) -> tuple[str, ...]:
    tenant = (pod.get("metadata") or {}).get("tenant") or resources.SYSTEM_TENANT
    return (f"{tenant}/{network_of(pod)}",)


def mizar_names(network: Obj) -> tuple[str, str]:
    """The Mizar VPC and subnet of a mizar Network, named as Arktos names them."""
    meta = network.get("metadata") or {}
    tenant = meta.get("tenant") or resources.SYSTEM_TENANT
    vpc = str((network.get("spec") or {}).get("vpcID") or f"{tenant}-default-network")
    return vpc, f"{vpc}-subnet"


def vni_of(tenant: str, vpc: str) -> str:
    """A VNI for a tenant's VPC: the same every time, spread over the 24-bit space."""
    return str(2 + zlib.crc32(f"{tenant}/{vpc}".encode()) % _VNI_SPACE)


def vpc_object(network: Obj) -> Obj:
    tenant = (network.get("metadata") or {}).get("tenant") or resources.SYSTEM_TENANT
    vpc, _subnet = mizar_names(network)
    return {
        "apiVersion": f"{MIZAR_GROUP}/v1",
        "kind": "Vpc",
        "metadata": {
            "name": vpc,
            "namespace": MIZAR_NAMESPACE,
            "labels": {NETWORK_LABEL: network["metadata"]["name"]},
        },
        "spec": {
            "ip": VPC_IP,
            "prefix": VPC_PREFIX,
            "vni": vni_of(tenant, vpc),
            "dividers": 1,
            "status": "Init",
        },
    }


def subnet_object(network: Obj) -> Obj:
    tenant = (network.get("metadata") or {}).get("tenant") or resources.SYSTEM_TENANT
    vpc, subnet = mizar_names(network)
    return {
        "apiVersion": f"{MIZAR_GROUP}/v1",
        "kind": "Subnet",
        "metadata": {
            "name": subnet,
            "namespace": MIZAR_NAMESPACE,
            "labels": {NETWORK_LABEL: network["metadata"]["name"]},
        },
        "spec": {
            "ip": SUBNET_IP,
            "prefix": SUBNET_PREFIX,
            "vni": vni_of(tenant, vpc),
            "vpc": vpc,
            "bouncers": 1,
            "status": "Init",
        },
    }


def _column(name: str, type_: str, path: str, description: str) -> Obj:
    return {"name": name, "type": type_, "jsonPath": path, "description": description}


def _mizar_crd(kind: str, plural: str, properties: dict[str, Any], columns: list[Obj]) -> Obj:
    # Mizar's operator writes fields of its own into spec (provisioning state, times):
    # they are kept.
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": properties,
                "x-kubernetes-preserve-unknown-fields": True,
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{MIZAR_GROUP}",
            "labels": {SHARING_LABEL: "forced"},
        },
        "spec": {
            "group": MIZAR_GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


_STR = {"type": "string"}
_INT = {"type": "integer"}


def mizar_crds() -> tuple[Obj, Obj]:
    """The CustomResourceDefinitions of Mizar's Vpc and Subnet, with Mizar's fields."""
    common_fields = {
        "ip": _STR,
        "prefix": _STR,
        "vni": _STR,
        "status": _STR,
        "createtime": _STR,
        "provisiondelay": _STR,
    }
    vpc = _mizar_crd(
        "Vpc",
        "vpcs",
        {**common_fields, "dividers": _INT},
        [
            _column("Ip", "string", ".spec.ip", "The IP of the VPC CIDR block"),
            _column("Prefix", "string", ".spec.prefix", "The prefix of the VPC CIDR block"),
            _column("Vni", "string", ".spec.vni", "The VNI of the VPC"),
            _column("Dividers", "integer", ".spec.dividers", "The number of dividers"),
            _column("Status", "string", ".spec.status", "The provisioning status"),
        ],
    )
    subnet = _mizar_crd(
        "Subnet",
        "subnets",
        {**common_fields, "vpc": _STR, "bouncers": _INT, "remote_deployed": {"type": "boolean"}},
        [
            _column("Ip", "string", ".spec.ip", "The IP of the subnet CIDR block"),
            _column("Prefix", "string", ".spec.prefix", "The prefix of the subnet CIDR block"),
            _column("Vni", "string", ".spec.vni", "The VNI of the VPC"),
            _column("Vpc", "string", ".spec.vpc", "The name of the VPC"),
            _column("Status", "string", ".spec.status", "The provisioning status"),
            _column("Bouncers", "integer", ".spec.bouncers", "The number of bouncers"),
        ],
    )
    return vpc, subnet


class NetworkController:
    """See the module docs. Construct before the informer factory starts; then `run`."""

    def __init__(
        self,
        api: client.Client,
        informers: machinery.InformerFactory,
        *,
        recorder: machinery.EventRecorder,
        workers: int = 2,
        mizar_timeout: float = 3.0,
    ) -> None:
        self._api = api
        self._recorder = recorder
        self._workers = workers
        self._mizar_timeout = mizar_timeout
        self._networks_queue: machinery.WorkQueue[str] = machinery.WorkQueue()
        self._pods_queue: machinery.WorkQueue[str] = machinery.WorkQueue()
        self._crds_ready = False
        self._mizar: mizar.MizarClient | None = None
        # Pods Mizar was told of (key -> the resourceVersion it last heard), pods that are
        # gone (key -> the last version seen), pods waiting for Mizar's address, and the
        # Network each pod was told it lacks.
        self._told: dict[str, str] = {}
        self._gone: dict[str, Obj] = {}
        self._waiting: set[str] = set()
        self._missing: dict[str, str] = {}
        # Pods Mizar refused for good, by the version it refused.
        self._refused: dict[str, str] = {}
        # Mizar networks (key -> uid) whose VPC and subnet this process has seen to:
        # a phase a client wrote does not make pods go to Mizar before they exist.
        self._provisioned: dict[str, str] = {}

        self._tenants = informers.informer(TENANTS)
        self._tenants.add_handler(
            on_add=self._tenant_seen, on_update=lambda _old, new: self._tenant_seen(new)
        )
        self._networks = informers.informer(NETWORKS)
        self._networks.add_handler(
            on_add=self._network_seen,
            on_update=lambda _old, new: self._network_seen(new),
            on_delete=self._network_seen,
        )
        self._pods = informers.informer(PODS, indexers={"network": _by_network})
        self._pods.add_handler(
            on_add=self._pod_seen,
            on_update=lambda _old, new: self._pod_seen(new),
            on_delete=self._pod_deleted,
        )
        self._configmaps = informers.informer(
            CONFIGMAPS,
            tenant=resources.SYSTEM_TENANT,
            namespace=MIZAR_NAMESPACE,
            field_selector=f"metadata.name={mizar.CONFIGMAP}",
        )
        self._configmaps.add_handler(
            on_add=self._configmap_seen,
            on_update=lambda _old, new: self._configmap_seen(new),
            on_delete=lambda _obj: self._set_target(None),
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        for informer in (self._tenants, self._networks, self._pods, self._configmaps):
            await informer.wait_synced()
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._work_networks)
                await nursery.start(self._work_pods)
                task_status.started()
        finally:
            self._set_target(None)

    async def _work_networks(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        await common.work(
            self._networks_queue,
            self._sync_network,
            workers=self._workers,
            what="network",
            logger=logger,
            task_status=task_status,
        )

    async def _work_pods(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        await common.work(
            self._pods_queue,
            self._sync_pod,
            workers=self._workers,
            what="network pod",
            logger=logger,
            task_status=task_status,
        )

    # Event handlers: they only enqueue keys (and note what a worker cannot read later).

    def _tenant_seen(self, tenant: Obj) -> None:
        self._networks_queue.add(f"{self._tenants.key(tenant)}/{DEFAULT_NETWORK}")

    def _network_seen(self, network: Obj) -> None:
        key = self._networks.key(network)
        self._networks_queue.add(key)
        for pod_key in self._pods.index_keys("network", key):
            self._pods_queue.add(pod_key)

    def _pod_seen(self, pod: Obj) -> None:
        key = self._pods.key(pod)
        self._gone.pop(key, None)
        self._pods_queue.add(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._pods.key(pod)
        self._gone[key] = pod
        self._pods_queue.add(key)

    def _configmap_seen(self, configmap: Obj) -> None:
        self._set_target(mizar.target_of(configmap.get("data") or {}))

    def _set_target(self, target: str | None) -> None:
        current = self._mizar
        if current is not None and current.target == target:
            return
        if current is not None:
            current.close()
        self._mizar = (
            None if target is None else mizar.MizarClient(target, timeout=self._mizar_timeout)
        )
        if target is not None:
            logger.info("Mizar is at %s", target)
            for key in sorted(self._waiting):
                self._pods_queue.add(key)
            self._waiting.clear()

    # Networks

    def _tenant_active(self, tenant: str) -> bool:
        obj = self._tenants.get(tenant)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return False
        return bool((obj.get("status") or {}).get("phase") == "Active")

    async def _sync_network(self, key: str) -> None:
        ref = machinery.split_key(key)
        tenant = ref.tenant or resources.SYSTEM_TENANT
        network = self._networks.get(key)
        if network is None:
            self._provisioned.pop(key, None)
            if ref.name == DEFAULT_NETWORK and self._tenant_active(tenant):
                try:
                    await self._api.create(NETWORKS, default_network(tenant), tenant=tenant)
                except errors.AlreadyExists:
                    return
                logger.info("created the default network of tenant %s", tenant)
            return
        meta = network.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return
        status = network.get("status") or {}
        kind = (network.get("spec") or {}).get("type")
        if kind == NetworkType.FLAT:
            await self._set_phase(network, Phase.READY)
        elif kind == NetworkType.VPC:
            if not status.get("phase"):
                await self._set_phase(
                    network, Phase.PENDING, "no provider of VPC networks is running"
                )
        elif kind == NetworkType.MIZAR:
            created = await self._ensure_mizar_objects(network, tenant=tenant)
            await self._set_phase(network, Phase.READY)
            uid = str(meta.get("uid") or "")
            if self._provisioned.get(key) != uid:
                self._provisioned[key] = uid
                for pod_key in self._pods.index_keys("network", key):
                    self._pods_queue.add(pod_key)
            if created:
                vpc, subnet = mizar_names(network)
                self._recorder.event(
                    _involved(f"{GROUP}/v1", "Network", network),
                    machinery.EventType.NORMAL,
                    reason=Reason.MIZAR_OBJECTS_CREATED,
                    message=f"Created Mizar VPC {vpc} and subnet {subnet}",
                )

    async def _set_phase(self, network: Obj, phase: Phase, message: str = "") -> None:
        status = network.get("status") or {}
        if status.get("phase") == phase and (status.get("message") or "") == message:
            return
        updated = copy.deepcopy(network)
        new_status = {**status, "phase": phase.value}
        if message:
            new_status["message"] = message
        else:
            new_status.pop("message", None)
        updated["status"] = new_status
        try:
            await self._api.replace(NETWORKS, updated, subresource="status")
        except errors.NotFound:
            return
        except errors.Conflict:
            raise machinery.Requeue() from None

    async def _ensure_mizar_objects(self, network: Obj, *, tenant: str) -> bool:
        """Create the Mizar CRDs, VPC and subnet that are missing; True if any object was."""
        if not self._crds_ready:
            for crd in mizar_crds():
                with contextlib.suppress(errors.AlreadyExists):
                    await self._api.create(CRDS, crd, tenant=resources.SYSTEM_TENANT)
            self._crds_ready = True
        created = False
        for kind, obj in ((VPCS, vpc_object(network)), (SUBNETS, subnet_object(network))):
            try:
                await self._api.create(kind, obj, tenant=tenant, namespace=MIZAR_NAMESPACE)
            except errors.AlreadyExists:
                continue
            except errors.NotFound:
                # The tenant's namespace `default` is not there yet (or the CRD is not
                # served yet): try again shortly.
                self._crds_ready = False
                raise machinery.Requeue(NAMESPACE_RETRY) from None
            created = True
        return created

    # Pods

    async def _sync_pod(self, key: str) -> None:
        pod = self._pods.get(key)
        if pod is None:
            await self._pod_gone(key)
            return
        meta = pod.get("metadata") or {}
        if (pod.get("spec") or {}).get("hostNetwork"):
            return
        tenant = meta.get("tenant") or resources.SYSTEM_TENANT
        name = network_of(pod)
        network = self._networks.get(f"{tenant}/{name}")
        if network is None:
            if self._missing.get(key) != name:
                self._missing[key] = name
                self._recorder.event(
                    _involved("v1", "Pod", pod),
                    machinery.EventType.WARNING,
                    reason=Reason.NETWORK_NOT_FOUND,
                    message=f"Network {name!r} does not exist in tenant {tenant!r}",
                )
            return
        self._missing.pop(key, None)
        spec = network.get("spec") or {}
        if spec.get("type") != NetworkType.MIZAR:
            return
        if (network.get("status") or {}).get("phase") != Phase.READY:
            return
        network_meta = network.get("metadata") or {}
        if self._provisioned.get(f"{tenant}/{name}") != str(network_meta.get("uid") or ""):
            return
        vpc, subnet = mizar_names(network)
        annotations = meta.get("annotations") or {}
        if annotations.get(VPC_ANNOTATION) != vpc or annotations.get(SUBNET_ANNOTATION) != subnet:
            patch = {"metadata": {"annotations": {VPC_ANNOTATION: vpc, SUBNET_ANNOTATION: subnet}}}
            with contextlib.suppress(errors.NotFound):
                await self._api.patch(
                    PODS, meta["name"], patch, tenant=tenant, namespace=meta.get("namespace")
                )
            # The pod's next version, annotated, comes back through the informer.
            return
        await self._tell_mizar(key, pod)

    async def _tell_mizar(self, key: str, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        version = str(meta.get("resourceVersion") or "")
        told = key in self._told
        if told and (self._told[key] == version or meta.get("deletionTimestamp")):
            return
        if not told and self._refused.get(key) == version:
            return
        target = self._mizar
        if target is None:
            self._waiting.add(key)
            return
        try:
            if told:
                await target.update_pod(pod)
            else:
                await target.create_pod(pod)
        except mizar.TemporaryError as exc:
            logger.debug("pod %s: %s; retrying", key, exc)
            raise machinery.Requeue() from None
        except mizar.PermanentError as exc:
            self._recorder.event(
                _involved("v1", "Pod", pod),
                machinery.EventType.WARNING,
                reason=Reason.MIZAR_CALL_FAILED,
                message=str(exc),
            )
            if not told:
                # Mizar refused the pod: an update would be its first news of it.
                self._refused[key] = version
                return
        self._refused.pop(key, None)
        self._told[key] = version

    async def _pod_gone(self, key: str) -> None:
        self._missing.pop(key, None)
        self._refused.pop(key, None)
        self._waiting.discard(key)
        gone = self._gone.get(key)
        if gone is None or key not in self._told:
            self._gone.pop(key, None)
            self._told.pop(key, None)
            return
        target = self._mizar
        if target is None:
            # Told once, so Mizar was reachable: wait for its address to come back.
            self._waiting.add(key)
            return
        try:
            await target.delete_pod(gone)
        except mizar.TemporaryError as exc:
            logger.debug("pod %s: %s; retrying", key, exc)
            raise machinery.Requeue() from None
        except mizar.PermanentError as exc:
            self._recorder.event(
                _involved("v1", "Pod", gone),
                machinery.EventType.WARNING,
                reason=Reason.MIZAR_CALL_FAILED,
                message=str(exc),
            )
        self._gone.pop(key, None)
        self._told.pop(key, None)
