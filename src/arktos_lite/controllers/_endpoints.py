"""The endpoints controller: every Service with a selector gets the Endpoints and
EndpointSlices of the pods it selects, as kube-controller-manager's endpoint and
endpointslice controllers give them, tenant by tenant.

Guarantees, for each Service of type other than ExternalName whose `spec.selector` is
set and not empty (the `kubernetes` Service of the system tenant's `default` namespace
excepted: the API server keeps its Endpoints):

* Only pods of the Service's own tenant and namespace count: a pod of another tenant
  never lands in its Endpoints or slices, however its labels match.
* A pod counts once it has an address (`status.podIPs`, else `status.podIP`) of the
  Service's IP family and is not terminal (`Succeeded`, `Failed`).
* `Endpoints` of the Service's name: ready pods (condition `Ready` True) in `addresses`,
  the others in `notReadyAddresses`, pods being deleted left out (unless the Service
  has `publishNotReadyAddresses`, which also puts every pod in `addresses`). Each
  address has `ip`, `nodeName`, `targetRef` (kind Pod, tenant, namespace, name, uid) and
  the pod's `hostname` where its `subdomain` names the Service. Ports come from each
  port's `targetPort`: a number as it is, a name looked up among the pod's container
  ports of the same protocol (a pod without it is left out of that port). Subsets are
  repacked as Kubernetes does: addresses offering the same ports share one subset,
  addresses and subsets sorted. The Endpoints carry the Service's labels (plus
  `service.kubernetes.io/headless` for a headless one, and
  `endpoints.kubernetes.io/managed-by: endpoint-controller`) and the annotation
  `endpoints.kubernetes.io/last-change-trigger-time`; past 1000 addresses they are
  truncated and annotated `endpoints.kubernetes.io/over-capacity: truncated`.
* `EndpointSlice`s (discovery.k8s.io/v1) per address type of the Service: named
  `<service>-<random>`, labelled `kubernetes.io/service-name` and
  `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io` (with the
  Service's labels), owned by the Service (controller, blockOwnerDeletion). Each endpoint
  has `addresses`, `conditions` (`ready`, `serving`, `terminating`: pods being deleted
  stay, terminating), `nodeName`, `targetRef`; slices hold at most
  `max_endpoints_per_slice` (100) endpoints of one set of ports. Slices are kept: an
  endpoint that changes is updated where it is, new endpoints fill slices being written
  anyway, and a slice that would go is reused for one that would be created. A Service
  without endpoints has one empty slice. Slices of a deleted Service go with it through
  the garbage collector (their owner reference).
* A Service without a selector keeps whatever Endpoints and slices users give it. When
  a Service goes, so do its Endpoints; Endpoints left by a Service deleted while the
  controller was down go when it starts.
* Level-triggered and idempotent: handlers only enqueue Service keys (a pod's change
  enqueues the Services selecting it before or after), a worker computes what should be
  and writes only what differs. Writes of slices the cache has not caught up with hold
  the Service back until it has, so a lagging cache never creates slices twice.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import ipaddress
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import trio

from arktos_lite import client, machinery
from arktos_lite.api import errors, objects, resources, timestamps
from arktos_lite.controllers import _common as common

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

_REGISTRY = resources.Registry()


def _resource(group: str, plural: str) -> resources.Resource:
    found = _REGISTRY.get(group, "v1", plural)
    if found is None:
        raise LookupError(f"the registry does not serve {plural}")
    return found


SERVICES = _resource("", "services")
PODS = _resource("", "pods")
ENDPOINTS = _resource("", "endpoints")
ENDPOINT_SLICES = _resource("discovery.k8s.io", "endpointslices")

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"
ENDPOINTS_MANAGED_BY_LABEL = "endpoints.kubernetes.io/managed-by"
ENDPOINTS_CONTROLLER_NAME = "endpoint-controller"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
# Labels the controller owns on a slice; a Service's own labels of these names are ignored.
_RESERVED_LABELS = frozenset({SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL})
# The most addresses an Endpoints object holds (kube-controller-manager's maxCapacity).
MAX_ENDPOINTS_CAPACITY = 1000
MAX_ENDPOINTS_PER_SLICE = 100
IPV4 = "IPv4"
IPV6 = "IPv6"
# The Service whose Endpoints the API server itself keeps.
API_SERVICE_KEY = f"{resources.SYSTEM_TENANT}/default/kubernetes"
# How long a write of ours may stay unseen by the slice cache before it is given up on.
WRITE_TTL = 30.0
STALE_RETRY = 1.0

BY_NAMESPACE = "namespace"
BY_SERVICE = "endpointslice-service"


class Reason:
    FAILED_TO_CREATE_ENDPOINT = "FailedToCreateEndpoint"
    FAILED_TO_UPDATE_ENDPOINT = "FailedToUpdateEndpoint"
    FAILED_TO_UPDATE_SLICE = "FailedToUpdateEndpointSlices"


# Reading objects


def _tenant(obj: Mapping[str, Any]) -> str:
    return str(objects.meta(obj).get("tenant") or resources.SYSTEM_TENANT)


def service_key(tenant: str, namespace: str, name: str) -> str:
    return f"{tenant}/{namespace}/{name}"


def selector_of(service: Mapping[str, Any]) -> dict[str, str] | None:
    """The Service's selector; None for one without (an empty map selects nothing here,
    as Kubernetes stores it: as no selector)."""
    selector = objects.spec(service).get("selector")
    if not isinstance(selector, Mapping) or not selector:
        return None
    return {str(k): str(v) for k, v in selector.items()}


def managed(service: Mapping[str, Any]) -> bool:
    """Whether this controller keeps the Service's Endpoints and slices."""
    return objects.spec(service).get("type") != "ExternalName" and selector_of(service) is not None


def selects(selector: Mapping[str, str], pod: Mapping[str, Any]) -> bool:
    labels = objects.meta(pod).get("labels")
    if not isinstance(labels, Mapping):
        return False
    return all(labels.get(key) == value for key, value in selector.items())


def is_headless(service: Mapping[str, Any]) -> bool:
    cluster_ip = objects.spec(service).get("clusterIP")
    return cluster_ip in (None, "", "None")


def is_ready(pod: Mapping[str, Any]) -> bool:
    for condition in objects.status(pod).get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def is_terminating(pod: Mapping[str, Any]) -> bool:
    return bool(objects.meta(pod).get("deletionTimestamp"))


def pod_ips(pod: Mapping[str, Any]) -> list[str]:
    """`status.podIPs`, else `status.podIP`."""
    status = objects.status(pod)
    listed = [
        str(entry["ip"])
        for entry in status.get("podIPs") or ()
        if isinstance(entry, Mapping) and entry.get("ip")
    ]
    if listed:
        return listed
    single = status.get("podIP")
    return [str(single)] if single else []


def _is_ipv6(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).version == 6
    except ValueError:
        return False


def counts(pod: Mapping[str, Any], *, include_terminating: bool) -> bool:
    """Whether the pod may be an endpoint at all (Kubernetes' ShouldPodBeInEndpoints)."""
    if objects.status(pod).get("phase") in ("Succeeded", "Failed"):
        return False
    if not pod_ips(pod):
        return False
    return include_terminating or not is_terminating(pod)


def _publish_not_ready(service: Mapping[str, Any]) -> bool:
    return bool(objects.spec(service).get("publishNotReadyAddresses"))


def find_port(pod: Mapping[str, Any], service_port: Mapping[str, Any]) -> int | None:
    """The pod's port for this Service port: `targetPort` as a number, or the container
    port of that name and protocol; None when the pod has no such port."""
    target = service_port.get("targetPort")
    if target is None or target == "" or target == 0:
        target = service_port.get("port")
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    for container in objects.spec(pod).get("containers") or ():
        for port in (container or {}).get("ports") or ():
            if (
                isinstance(port, Mapping)
                and port.get("name") == target
                and (port.get("protocol") or "TCP") == protocol
            ):
                number = port.get("containerPort")
                return int(number) if isinstance(number, int) else None
    return None


def _target_ref(pod: Mapping[str, Any]) -> Obj:
    meta = objects.meta(pod)
    ref: Obj = {"kind": "Pod", "namespace": meta.get("namespace"), "name": meta.get("name")}
    if meta.get("tenant"):
        ref["tenant"] = meta["tenant"]
    if meta.get("uid"):
        ref["uid"] = meta["uid"]
    return ref


def _hostname(pod: Mapping[str, Any], service: Mapping[str, Any]) -> str | None:
    """The pod's hostname where it publishes one under this Service (its subdomain)."""
    spec = objects.spec(pod)
    hostname = spec.get("hostname")
    if (
        hostname
        and spec.get("subdomain") == objects.meta(service).get("name")
        and objects.meta(pod).get("namespace") == objects.meta(service).get("namespace")
    ):
        return str(hostname)
    return None


def _family(service: Mapping[str, Any], pod: Mapping[str, Any]) -> str:
    """The IP family of the Service's Endpoints (Kubernetes: its first ipFamily)."""
    spec = objects.spec(service)
    families = spec.get("ipFamilies")
    if isinstance(families, list) and families:
        return str(families[0])
    cluster_ip = spec.get("clusterIP")
    if cluster_ip and cluster_ip != "None":
        return IPV6 if _is_ipv6(str(cluster_ip)) else IPV4
    ips = pod_ips(pod)
    return IPV6 if ips and _is_ipv6(ips[0]) else IPV4


# Endpoints


def _address(pod: Mapping[str, Any], service: Mapping[str, Any]) -> Obj | None:
    want_v6 = _family(service, pod) == IPV6
    ip = next((ip for ip in pod_ips(pod) if _is_ipv6(ip) == want_v6), None)
    if ip is None:
        return None
    address: Obj = {"ip": ip}
    hostname = _hostname(pod, service)
    if hostname:
        address["hostname"] = hostname
    node = objects.spec(pod).get("nodeName")
    if node:
        address["nodeName"] = node
    address["targetRef"] = _target_ref(pod)
    return address


def _endpoint_port(service_port: Mapping[str, Any], number: int) -> Obj:
    port: Obj = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def _port_key(port: Mapping[str, Any]) -> tuple[str, int, str, str]:
    return (
        str(port.get("name") or ""),
        int(port.get("port") or 0),
        str(port.get("protocol") or ""),
        str(port.get("appProtocol") or ""),
    )


def _address_key(address: Mapping[str, Any]) -> tuple[str, str]:
    ref = address.get("targetRef")
    uid = ref.get("uid") if isinstance(ref, Mapping) else None
    return (str(address.get("ip") or ""), str(uid or ""))


def _sorted_ip_key(address: Mapping[str, Any]) -> tuple[int, int, str]:
    ip, uid = _address_key(address)
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return (0, 0, ip + "/" + uid)
    return (parsed.version, int(parsed), uid)


def raw_subsets(service: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> list[Obj]:
    """One subset per pod and port, before repacking."""
    include_all = _publish_not_ready(service)
    service_ports = [p for p in objects.spec(service).get("ports") or () if isinstance(p, Mapping)]
    subsets: list[Obj] = []
    for pod in pods:
        if not counts(pod, include_terminating=include_all):
            continue
        address = _address(pod, service)
        if address is None:
            continue
        where = "addresses" if include_all or is_ready(pod) else "notReadyAddresses"
        if not service_ports:
            # A headless Service may have no ports: its addresses stand alone.
            if is_headless(service):
                subsets.append({where: [address]})
            continue
        for service_port in service_ports:
            number = find_port(pod, service_port)
            if number is None:
                continue
            subsets.append({where: [address], "ports": [_endpoint_port(service_port, number)]})
    return subsets


def repack(subsets: Iterable[Mapping[str, Any]]) -> list[Obj]:
    """Kubernetes' RepackSubsets: addresses offering the same ports in one subset; an
    address not ready for a port stays not ready there; everything sorted."""
    addresses: dict[tuple[str, str], Obj] = {}
    # Port (None: no ports) to the readiness of each address offering it.
    by_port: dict[tuple[str, int, str, str] | None, dict[tuple[str, str], bool]] = {}
    port_objects: dict[tuple[str, int, str, str], Obj] = {}
    for given in subsets:
        ports = [p for p in given.get("ports") or () if isinstance(p, Mapping)]
        keys: list[tuple[str, int, str, str] | None] = []
        for port in ports:
            port_key = _port_key(port)
            port_objects.setdefault(port_key, dict(port))
            keys.append(port_key)
        if not keys:
            keys = [None]
        for field, ready in (("addresses", True), ("notReadyAddresses", False)):
            for address in given.get(field) or ():
                akey = _address_key(address)
                addresses.setdefault(akey, dict(address))
                for maybe_port in keys:
                    readiness = by_port.setdefault(maybe_port, {})
                    # Not ready trumps ready.
                    if readiness.get(akey, True):
                        readiness[akey] = ready
    groups: dict[frozenset[tuple[tuple[str, str], bool]], list[tuple[str, int, str, str]]] = {}
    for maybe_port, readiness in by_port.items():
        group = groups.setdefault(frozenset(readiness.items()), [])
        if maybe_port is not None:
            group.append(maybe_port)
    repacked: list[Obj] = []
    for members, port_keys in groups.items():
        packed: Obj = {}
        ready_addresses = sorted(
            (addresses[a] for a, ok in members if ok), key=lambda addr: _sorted_ip_key(addr)
        )
        not_ready = sorted(
            (addresses[a] for a, ok in members if not ok), key=lambda addr: _sorted_ip_key(addr)
        )
        if ready_addresses:
            packed["addresses"] = ready_addresses
        if not_ready:
            packed["notReadyAddresses"] = not_ready
        if port_keys:
            packed["ports"] = [port_objects[k] for k in sorted(port_keys)]
        repacked.append(packed)
    return sorted(repacked, key=_subset_order)


def _subset_order(subset: Mapping[str, Any]) -> tuple[Any, ...]:
    ports = tuple(_port_key(p) for p in subset.get("ports") or ())
    addresses = tuple(
        _sorted_ip_key(a)
        for a in [*(subset.get("addresses") or ()), *(subset.get("notReadyAddresses") or ())]
    )
    return (ports, addresses)


def truncate(subsets: list[Obj], *, capacity: int = MAX_ENDPOINTS_CAPACITY) -> bool:
    """Keep at most `capacity` addresses (in place), as Kubernetes does: not-ready ones go
    first; each subset keeps its share, rounded up. True when anything went."""
    total_ready = sum(len(s.get("addresses") or ()) for s in subsets)
    total_not_ready = sum(len(s.get("notReadyAddresses") or ()) for s in subsets)
    if total_ready + total_not_ready <= capacity:
        return False
    truncate_ready = total_ready > capacity
    allowed = capacity if truncate_ready else capacity - total_ready
    total = total_ready if truncate_ready else total_not_ready
    left = allowed
    for subset in subsets:
        field = "addresses" if truncate_ready else "notReadyAddresses"
        members = list(subset.get(field) or ())
        share = min(math.ceil(len(members) / total * allowed), left)
        kept = members[:share]
        left -= len(kept)
        if kept:
            subset[field] = kept
        else:
            subset.pop(field, None)
        if truncate_ready:
            subset.pop("notReadyAddresses", None)
    subsets[:] = [s for s in subsets if s.get("addresses") or s.get("notReadyAddresses")]
    return True


def subsets_for(service: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> list[Obj]:
    """The repacked subsets of the Service's Endpoints with these (selected) pods."""
    return repack(raw_subsets(service, pods))


def _pod_trigger_time(pod: Mapping[str, Any]) -> datetime.datetime | None:
    for condition in objects.status(pod).get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            moment = timestamps.parse(condition.get("lastTransitionTime"))
            if moment is not None:
                return moment
    return timestamps.parse(objects.meta(pod).get("creationTimestamp"))


def trigger_time(service: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> str | None:
    """The latest change among the Service and its pods' readiness: the value of
    `endpoints.kubernetes.io/last-change-trigger-time`."""
    moments = [timestamps.parse(objects.meta(service).get("creationTimestamp"))]
    moments += [_pod_trigger_time(pod) for pod in pods]
    known = [m for m in moments if m is not None]
    return timestamps.rfc3339(max(known)) if known else None


def endpoint_labels(service: Mapping[str, Any]) -> dict[str, str]:
    """The Service's labels, the headless mark, and this controller's own."""
    labels = dict(objects.labels(service))
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    labels[ENDPOINTS_MANAGED_BY_LABEL] = ENDPOINTS_CONTROLLER_NAME
    return labels


def desired_endpoints(
    service: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    current: Mapping[str, Any] | None,
) -> Obj | None:
    """The Endpoints to write for the Service with these selected pods, or None when
    `current` (the cached Endpoints, None if there are none) is right already."""
    subsets = subsets_for(service, pods)
    truncated = truncate(subsets)
    labels = endpoint_labels(service)
    if current is not None:
        annotations = objects.meta(current).get("annotations") or {}
        capacity_right = (annotations.get(OVER_CAPACITY_ANNOTATION) == "truncated") == truncated
        if (
            (current.get("subsets") or []) == subsets
            and objects.labels(current) == labels
            and capacity_right
        ):
            return None
    meta = objects.meta(service)
    body: Obj = (
        copy.deepcopy(dict(current))
        if current is not None
        else {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
        }
    )
    body.setdefault("apiVersion", "v1")
    body.setdefault("kind", "Endpoints")
    new_meta = body["metadata"]
    if meta.get("tenant"):
        new_meta["tenant"] = meta["tenant"]
    new_meta["labels"] = labels
    annotations = dict(new_meta.get("annotations") or {})
    moment = trigger_time(service, pods)
    if moment is not None:
        annotations[TRIGGER_TIME_ANNOTATION] = moment
    else:
        annotations.pop(TRIGGER_TIME_ANNOTATION, None)
    if truncated:
        annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
    else:
        annotations.pop(OVER_CAPACITY_ANNOTATION, None)
    if annotations:
        new_meta["annotations"] = annotations
    else:
        new_meta.pop("annotations", None)
    body["subsets"] = subsets
    return body


# EndpointSlices


def address_types(service: Mapping[str, Any]) -> list[str]:
    """The address types the Service's slices have (Kubernetes' getAddressTypesForService)."""
    spec = objects.spec(service)
    families = [f for f in spec.get("ipFamilies") or () if f in (IPV4, IPV6)]
    if families:
        return list(dict.fromkeys(families))
    cluster_ip = spec.get("clusterIP")
    if cluster_ip and cluster_ip != "None":
        return [IPV6 if _is_ipv6(str(cluster_ip)) else IPV4]
    return [IPV4, IPV6]


def slice_endpoint(pod: Mapping[str, Any], service: Mapping[str, Any], address_type: str) -> Obj:
    """The pod as an endpoint of a slice of `address_type` (without addresses when it has
    none of that type)."""
    serving = is_ready(pod)
    terminating = is_terminating(pod)
    ready = _publish_not_ready(service) or (serving and not terminating)
    want_v6 = address_type == IPV6
    endpoint: Obj = {
        "addresses": [ip for ip in pod_ips(pod) if _is_ipv6(ip) == want_v6],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
    }
    hostname = _hostname(pod, service)
    if hostname:
        endpoint["hostname"] = hostname
    node = objects.spec(pod).get("nodeName")
    if node:
        endpoint["nodeName"] = node
    endpoint["targetRef"] = _target_ref(pod)
    return endpoint


def slice_ports(service: Mapping[str, Any], pod: Mapping[str, Any]) -> list[Obj]:
    """The ports this pod offers for the Service, as a slice lists them."""
    ports: list[Obj] = []
    for service_port in objects.spec(service).get("ports") or ():
        if not isinstance(service_port, Mapping):
            continue
        number = find_port(pod, service_port)
        if number is None:
            continue
        port: Obj = {
            "name": service_port.get("name") or "",
            "port": number,
            "protocol": service_port.get("protocol") or "TCP",
        }
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        ports.append(port)
    return ports


EndpointKey = tuple[tuple[str, ...], str, str, str]
PortsKey = tuple[tuple[str, int, str, str], ...]


def endpoint_key(endpoint: Mapping[str, Any]) -> EndpointKey:
    """What makes an endpoint the same one (Kubernetes hashes the same fields)."""
    ref = endpoint.get("targetRef")
    ref = ref if isinstance(ref, Mapping) else {}
    return (
        tuple(sorted(str(a) for a in endpoint.get("addresses") or ())),
        str(endpoint.get("hostname") or ""),
        str(ref.get("namespace") or ""),
        str(ref.get("name") or ""),
    )


def ports_key(ports: Iterable[Mapping[str, Any]] | None) -> PortsKey:
    return tuple(sorted(_port_key(p) for p in ports or ()))


def slice_labels(service: Mapping[str, Any]) -> dict[str, str]:
    labels = {k: v for k, v in objects.labels(service).items() if k not in _RESERVED_LABELS}
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = str(objects.meta(service).get("name"))
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def owner_reference(service: Mapping[str, Any]) -> Obj:
    meta = objects.meta(service)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(slice_: Mapping[str, Any], service: Mapping[str, Any]) -> bool:
    uid = objects.meta(service).get("uid")
    return any(
        isinstance(ref, Mapping) and ref.get("uid") == uid and ref.get("controller") is True
        for ref in objects.meta(slice_).get("ownerReferences") or ()
    )


def new_slice(
    service: Mapping[str, Any], *, address_type: str, ports: Sequence[Mapping[str, Any]]
) -> Obj:
    """A slice of the Service to create (named by the API server from generateName)."""
    meta = objects.meta(service)
    slice_meta: Obj = {
        "generateName": f"{meta.get('name')}-",
        "namespace": meta.get("namespace"),
        "labels": slice_labels(service),
        "ownerReferences": [owner_reference(service)],
    }
    if meta.get("tenant"):
        slice_meta["tenant"] = meta["tenant"]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": slice_meta,
        "addressType": address_type,
        "endpoints": [],
        "ports": [dict(p) for p in ports],
    }


@dataclasses.dataclass(frozen=True, slots=True)
class SlicePlan:
    """The writes that bring a Service's slices to what they should be."""

    create: tuple[Obj, ...] = ()
    update: tuple[Obj, ...] = ()
    delete: tuple[Obj, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


def _name(obj: Mapping[str, Any]) -> str:
    return str(objects.meta(obj).get("name") or "")


def _with_endpoints(slice_: Mapping[str, Any], endpoints: list[Obj], labels: dict[str, str]) -> Obj:
    updated = copy.deepcopy(dict(slice_))
    updated["endpoints"] = endpoints
    updated["metadata"]["labels"] = labels
    return updated


def _by_ports(
    service: Mapping[str, Any],
    existing: Sequence[Mapping[str, Any]],
    desired: dict[EndpointKey, Obj],
    *,
    address_type: str,
    ports: Sequence[Mapping[str, Any]],
    max_per_slice: int,
) -> tuple[list[Obj], dict[str, Obj], list[Obj]]:
    """Kubernetes' reconcileByPortMapping for one set of ports: creates, updates by name,
    deletes."""
    labels = slice_labels(service)
    remaining = dict(desired)
    updates: dict[str, Obj] = {}
    unchanged: list[Mapping[str, Any]] = []
    deletes: list[Obj] = []
    # 1. Drop endpoints no longer wanted, refresh the ones that changed.
    for existing_slice in sorted(existing, key=_name):
        current = [e for e in existing_slice.get("endpoints") or () if isinstance(e, Mapping)]
        kept: list[Obj] = []
        changed = False
        for endpoint in current:
            wanted = remaining.pop(endpoint_key(endpoint), None)
            if wanted is not None:
                kept.append(wanted)
                changed = changed or wanted != endpoint
        if changed or len(kept) != len(current):
            if kept:
                updates[_name(existing_slice)] = _with_endpoints(existing_slice, kept, labels)
            else:
                deletes.append(dict(existing_slice))
        elif objects.labels(existing_slice) != labels:
            updates[_name(existing_slice)] = _with_endpoints(existing_slice, kept, labels)
        else:
            unchanged.append(existing_slice)
    left = [remaining[key] for key in sorted(remaining)]
    # 2. Fill the slices being written anyway, the fullest first.
    for updated in sorted(updates.values(), key=lambda s: -len(s["endpoints"])):
        room = max_per_slice - len(updated["endpoints"])
        if room > 0 and left:
            updated["endpoints"].extend(left[:room])
            left = left[room:]
    # 3. The rest into an unchanged slice they fit in, else into new slices.
    creates: list[Obj] = []
    while left:
        target: Obj | None = None
        if len(left) < max_per_slice and unchanged:
            best = _slice_to_fill(unchanged, len(left), max_per_slice)
            if best is not None:
                unchanged.remove(best)
                target = _with_endpoints(best, list(best.get("endpoints") or ()), labels)
        if target is None:
            target = new_slice(service, address_type=address_type, ports=ports)
        room = max_per_slice - len(target["endpoints"])
        target["endpoints"].extend(left[:room])
        left = left[room:]
        if _name(target):
            updates[_name(target)] = target
        else:
            creates.append(target)
    return creates, updates, deletes


def _slice_to_fill(
    slices: Sequence[Mapping[str, Any]], count: int, max_per_slice: int
) -> Mapping[str, Any] | None:
    """The slice `count` more endpoints fill most closely."""
    closest_diff = max_per_slice
    closest: Mapping[str, Any] | None = None
    for candidate in slices:
        diff = max_per_slice - (count + len(candidate.get("endpoints") or ()))
        if 0 <= diff < closest_diff:
            closest_diff, closest = diff, candidate
            if diff == 0:
                break
    return closest


def plan_slices(
    service: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    existing: Sequence[Mapping[str, Any]],
    *,
    max_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
) -> SlicePlan:
    """What to create, update and delete so that the Service's slices (`existing`: those
    labelled as this controller's for its name) hold these selected pods."""
    types = address_types(service)
    creates: list[Obj] = []
    updates: dict[str, Obj] = {}
    deletes: list[Obj] = [dict(s) for s in existing if s.get("addressType") not in types]
    for address_type in types:
        of_type = [s for s in existing if s.get("addressType") == address_type]
        type_creates, type_updates, type_deletes = _plan_type(
            service, pods, of_type, address_type=address_type, max_per_slice=max_per_slice
        )
        creates += type_creates
        updates.update(type_updates)
        deletes += type_deletes
    if objects.meta(service).get("deletionTimestamp"):
        # The garbage collector is taking the slices away: creating more would race it.
        creates = []
    return SlicePlan(
        create=tuple(creates),
        update=tuple(updates[name] for name in sorted(updates)),
        delete=tuple(sorted(deletes, key=_name)),
    )


def _plan_type(
    service: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    existing: Sequence[Mapping[str, Any]],
    *,
    address_type: str,
    max_per_slice: int,
) -> tuple[list[Obj], dict[str, Obj], list[Obj]]:
    desired: dict[PortsKey, tuple[list[Obj], dict[EndpointKey, Obj]]] = {}
    for pod in sorted(pods, key=_name):
        if not counts(pod, include_terminating=True):
            continue
        endpoint = slice_endpoint(pod, service, address_type)
        if not endpoint["addresses"]:
            continue
        ports = slice_ports(service, pod)
        group = desired.setdefault(ports_key(ports), (ports, {}))
        group[1].setdefault(endpoint_key(endpoint), endpoint)
    deletes: list[Obj] = []
    existing_by_ports: dict[PortsKey, list[Mapping[str, Any]]] = {}
    for existing_slice in existing:
        if owned_by(existing_slice, service):
            key = ports_key(existing_slice.get("ports"))
            existing_by_ports.setdefault(key, []).append(existing_slice)
        else:
            deletes.append(dict(existing_slice))
    creates: list[Obj] = []
    updates: dict[str, Obj] = {}
    for key in sorted(desired):
        ports, endpoints = desired[key]
        c, u, d = _by_ports(
            service,
            existing_by_ports.get(key, []),
            endpoints,
            address_type=address_type,
            ports=ports,
            max_per_slice=max_per_slice,
        )
        creates += c
        updates.update(u)
        deletes += d
    for key, slices in existing_by_ports.items():
        if key not in desired:
            deletes += [dict(s) for s in slices]
    # A Service without endpoints keeps one empty slice of each type.
    if len(existing) == len(deletes) and not creates:
        placeholder = new_slice(service, address_type=address_type, ports=[])
        if (
            len(deletes) == 1
            and not deletes[0].get("endpoints")
            and not deletes[0].get("ports")
            and owned_by(deletes[0], service)
            and objects.labels(deletes[0]) == placeholder["metadata"]["labels"]
        ):
            deletes = []
        else:
            creates.append(placeholder)
    # Reuse slices that would go for ones that would be created: fewer writes, stable names.
    kept_deletes: list[Obj] = []
    for doomed in sorted(deletes, key=_name):
        if creates and owned_by(doomed, service):
            created = creates.pop()
            reused = copy.deepcopy(doomed)
            reused["endpoints"] = created["endpoints"]
            reused["ports"] = created["ports"]
            reused["metadata"]["labels"] = created["metadata"]["labels"]
            updates[_name(reused)] = reused
        else:
            kept_deletes.append(doomed)
    return creates, updates, kept_deletes


# The controller


def _slice_service_key(slice_: Obj) -> tuple[str, ...]:
    """`tenant/namespace/service` of a slice this controller manages."""
    labels = objects.meta(slice_).get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != CONTROLLER_NAME or not labels.get(SERVICE_NAME_LABEL):
        return ()
    meta = objects.meta(slice_)
    return (service_key(_tenant(slice_), str(meta.get("namespace")), labels[SERVICE_NAME_LABEL]),)


def _newer_or_same(cached: str, written: str) -> bool:
    try:
        return int(cached) >= int(written)
    except ValueError:
        return cached == written


@dataclasses.dataclass(slots=True)
class _Writes:
    """The slice writes of one Service the cache has yet to show: name to the
    resourceVersion written, names deleted, and when the last was made."""

    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    deleted: set[str] = dataclasses.field(default_factory=set)
    at: float = 0.0

    @property
    def pending(self) -> bool:
        return bool(self.versions or self.deleted)


class EndpointsController:
    """See the module docs. Construct before the informer factory starts; then `run`."""

    def __init__(
        self,
        api: client.Client,
        informers: machinery.InformerFactory,
        *,
        recorder: machinery.EventRecorder,
        workers: int = 2,
        max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
    ) -> None:
        if max_endpoints_per_slice < 1:
            raise ValueError("max_endpoints_per_slice must be at least 1")
        self._api = api
        self._recorder = recorder
        self._workers = workers
        self._max_per_slice = max_endpoints_per_slice
        self._queue: machinery.WorkQueue[str] = machinery.WorkQueue()
        self._writes: dict[str, _Writes] = {}
        self._services = informers.informer(
            SERVICES, indexers={BY_NAMESPACE: machinery.by_namespace}
        )
        self._pods = informers.informer(PODS, indexers={BY_NAMESPACE: machinery.by_namespace})
        self._endpoints = informers.informer(ENDPOINTS)
        self._slices = informers.informer(
            ENDPOINT_SLICES, indexers={BY_SERVICE: _slice_service_key}
        )
        self._services.add_handler(
            on_add=self._service_changed,
            on_update=lambda _old, new: self._service_changed(new),
            on_delete=self._service_changed,
        )
        self._pods.add_handler(
            on_add=self._pod_changed, on_update=self._pod_updated, on_delete=self._pod_changed
        )
        self._endpoints.add_handler(
            on_update=lambda _old, new: self._endpoints_changed(new),
            on_delete=self._endpoints_changed,
        )
        self._slices.add_handler(
            on_add=self._slice_seen,
            on_update=lambda _old, new: self._slice_seen(new),
            on_delete=self._slice_deleted,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        for informer in (self._services, self._pods, self._endpoints, self._slices):
            await informer.wait_synced()
        # Endpoints whose Service went while nobody watched.
        for endpoints in self._endpoints.list():
            key = self._endpoints.key(endpoints)
            annotations = objects.meta(endpoints).get("annotations") or {}
            if key not in self._services and LEADER_ANNOTATION not in annotations:
                self._queue.add(key)
        await common.work(
            self._queue,
            self._sync,
            workers=self._workers,
            what="endpoints",
            logger=logger,
            task_status=task_status,
        )

    # Event handlers: they only note what was observed and enqueue Service keys.

    def _service_changed(self, service: Obj) -> None:
        self._queue.add(self._services.key(service))

    def _services_selecting(self, pod: Obj) -> set[str]:
        meta = objects.meta(pod)
        namespace = f"{_tenant(pod)}/{meta.get('namespace')}"
        keys: set[str] = set()
        for service in self._services.by_index(BY_NAMESPACE, namespace):
            selector = selector_of(service)
            if selector is not None and selects(selector, pod):
                keys.add(self._services.key(service))
        return keys

    def _pod_changed(self, pod: Obj) -> None:
        for key in self._services_selecting(pod):
            self._queue.add(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if objects.meta(old).get("resourceVersion") == objects.meta(new).get("resourceVersion"):
            return
        if _endpoint_view(old) == _endpoint_view(new):
            return
        for key in self._services_selecting(old) | self._services_selecting(new):
            self._queue.add(key)

    def _endpoints_changed(self, endpoints: Obj) -> None:
        key = self._endpoints.key(endpoints)
        # Endpoints without a Service are left be unless their Service goes.
        if key in self._services:
            self._queue.add(key)

    def _slice_seen(self, slice_: Obj) -> None:
        for key in _slice_service_key(slice_):
            writes = self._writes.get(key)
            name = _name(slice_)
            if writes is not None and name in writes.versions:
                version = str(objects.meta(slice_).get("resourceVersion") or "")
                if _newer_or_same(version, writes.versions[name]):
                    del writes.versions[name]
            if key in self._services:
                self._queue.add(key)

    def _slice_deleted(self, slice_: Obj) -> None:
        for key in _slice_service_key(slice_):
            writes = self._writes.get(key)
            if writes is not None:
                writes.versions.pop(_name(slice_), None)
                writes.deleted.discard(_name(slice_))
            if key in self._services:
                self._queue.add(key)

    # The work

    async def _sync(self, key: str) -> None:
        if key == API_SERVICE_KEY:
            return
        ref = machinery.split_key(key)
        service = self._services.get(key)
        if service is None:
            self._writes.pop(key, None)
            await self._delete_endpoints(ref)
            return
        if not managed(service):
            return
        selector = selector_of(service)
        assert selector is not None
        namespace = f"{ref.tenant}/{ref.namespace}"
        pods = [
            pod for pod in self._pods.by_index(BY_NAMESPACE, namespace) if selects(selector, pod)
        ]
        # The two are independent: one held back (a lagging cache, a failed write) must
        # not hold back the other.
        failures: list[Exception] = []
        for step in (self._sync_endpoints, self._sync_slices):
            try:
                await step(key, service, pods)
            except (errors.Conflict, errors.AlreadyExists):
                # The cache is behind a write; the newer state comes with a fresh event.
                failures.append(machinery.Requeue())
            except (machinery.Requeue, errors.StatusError) as exc:
                failures.append(exc)
        if failures:
            raise _first_failure(failures)

    async def _delete_endpoints(self, ref: machinery.ObjectRef) -> None:
        try:
            await self._api.delete(ENDPOINTS, ref.name, namespace=ref.namespace, tenant=ref.tenant)
        except errors.NotFound:
            return
        logger.debug("deleted the endpoints of the gone service %s/%s", ref.namespace, ref.name)

    async def _sync_endpoints(self, key: str, service: Obj, pods: list[Obj]) -> None:
        current = self._endpoints.get(key)
        wanted = desired_endpoints(service, pods, current)
        if wanted is None:
            return
        meta = objects.meta(service)
        tenant = _tenant(service)
        try:
            if current is None:
                await self._api.create(
                    ENDPOINTS, wanted, namespace=meta.get("namespace"), tenant=tenant
                )
            else:
                await self._api.replace(ENDPOINTS, wanted, tenant=tenant)
        except errors.Forbidden as exc:
            # Most likely the namespace is terminating: nothing may be created in it.
            logger.debug("endpoints of %s not written: %s", key, exc)
            return
        except errors.NotFound:
            # The namespace (or the Endpoints we meant to update) went.
            raise machinery.Requeue() from None
        except (errors.Conflict, errors.AlreadyExists):
            raise
        except errors.StatusError as exc:
            reason, verb = (
                (Reason.FAILED_TO_CREATE_ENDPOINT, "create")
                if current is None
                else (Reason.FAILED_TO_UPDATE_ENDPOINT, "update")
            )
            self._recorder.event(
                wanted,
                machinery.EventType.WARNING,
                reason=reason,
                message=f"Failed to {verb} endpoint {meta.get('namespace')}/{meta.get('name')}: "
                f"{exc}",
            )
            raise
        logger.debug("wrote the endpoints of %s", key)

    def _stale(self, key: str) -> bool:
        writes = self._writes.get(key)
        if writes is None:
            return False
        if not writes.pending:
            del self._writes[key]
            return False
        if trio.current_time() - writes.at > WRITE_TTL:
            logger.debug("slices of %s: giving up waiting for the cache", key)
            del self._writes[key]
            return False
        return True

    def _note_write(self, key: str, slice_: Obj) -> None:
        name = _name(slice_)
        version = str(objects.meta(slice_).get("resourceVersion") or "")
        cached = self._slices.get(self._slices.key(slice_))
        if cached is not None and _newer_or_same(
            str(objects.meta(cached).get("resourceVersion") or ""), version
        ):
            return
        writes = self._writes.setdefault(key, _Writes())
        writes.versions[name] = version
        writes.at = trio.current_time()

    def _note_delete(self, key: str, slice_: Mapping[str, Any]) -> None:
        if self._slices.get(self._slices.key(dict(slice_))) is None:
            return
        writes = self._writes.setdefault(key, _Writes())
        writes.deleted.add(_name(slice_))
        writes.at = trio.current_time()

    async def _sync_slices(self, key: str, service: Obj, pods: list[Obj]) -> None:
        if self._stale(key):
            # The change the cache is missing enqueues the Service again; this is a backstop.
            raise machinery.Requeue(STALE_RETRY)
        existing = self._slices.by_index(BY_SERVICE, key)
        plan = plan_slices(service, pods, existing, max_per_slice=self._max_per_slice)
        if plan.empty:
            return
        meta = objects.meta(service)
        tenant = _tenant(service)
        namespace = meta.get("namespace")
        moment = trigger_time(service, pods)
        try:
            for doomed in plan.delete:
                try:
                    await self._api.delete(
                        ENDPOINT_SLICES,
                        _name(doomed),
                        namespace=namespace,
                        tenant=tenant,
                        preconditions={"uid": objects.meta(doomed).get("uid")},
                    )
                except errors.NotFound:
                    continue
                self._note_delete(key, doomed)
            for updated in plan.update:
                _stamp(updated, moment)
                written = await self._api.replace(ENDPOINT_SLICES, updated, tenant=tenant)
                self._note_write(key, written)
            for created in plan.create:
                _stamp(created, moment)
                written = await self._api.create(
                    ENDPOINT_SLICES, created, namespace=namespace, tenant=tenant
                )
                self._note_write(key, written)
        except errors.Forbidden as exc:
            logger.debug("endpoint slices of %s not written: %s", key, exc)
            return
        except errors.NotFound:
            raise machinery.Requeue() from None
        except (errors.Conflict, errors.AlreadyExists):
            raise
        except errors.StatusError as exc:
            self._recorder.event(
                service,
                machinery.EventType.WARNING,
                reason=Reason.FAILED_TO_UPDATE_SLICE,
                message=f"Error updating Endpoint Slices for Service "
                f"{namespace}/{meta.get('name')}: {exc}",
            )
            raise
        logger.debug(
            "slices of %s: %d created, %d updated, %d deleted",
            key,
            len(plan.create),
            len(plan.update),
            len(plan.delete),
        )


def _first_failure(failures: Sequence[Exception]) -> Exception:
    """What to raise for a sync that partly failed: an error (logged, retried with
    backoff) before a requeue; a requeue after a set time before one left to backoff."""
    for failure in failures:
        if not isinstance(failure, machinery.Requeue):
            return failure
    delays = [f.after for f in failures if isinstance(f, machinery.Requeue) and f.after]
    return machinery.Requeue(min(delays) if delays else None)


def _stamp(slice_: Obj, moment: str | None) -> None:
    annotations = dict(slice_["metadata"].get("annotations") or {})
    if moment is not None:
        annotations[TRIGGER_TIME_ANNOTATION] = moment
    else:
        annotations.pop(TRIGGER_TIME_ANNOTATION, None)
    if annotations:
        slice_["metadata"]["annotations"] = annotations
    else:
        slice_["metadata"].pop("annotations", None)


def _endpoint_view(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    """What of a pod its endpoints depend on: a change elsewhere concerns no Service."""
    spec = objects.spec(pod)
    status = objects.status(pod)
    container_ports = [
        (c or {}).get("ports") for c in spec.get("containers") or () if isinstance(c, Mapping)
    ]
    return (
        objects.meta(pod).get("labels"),
        bool(objects.meta(pod).get("deletionTimestamp")),
        is_ready(pod),
        _pod_trigger_time(pod),
        tuple(pod_ips(pod)),
        status.get("phase") in ("Succeeded", "Failed"),
        spec.get("nodeName"),
        spec.get("hostname"),
        spec.get("subdomain"),
        container_ports,
    )
