"""Default values for API objects, as kube-apiserver 1.32 and Arktos fill them in.

`apply_defaults(group, kind, obj)` changes a decoded object in place so that it reads as
`kubectl get -o yaml` shows it from a real cluster: a Pod gets its `restartPolicy`,
`dnsPolicy`, `schedulerName`, container `imagePullPolicy` and so on, a Service its `type`
and `targetPort`s, a Deployment its strategy, a Secret's `stringData` is folded into
`data`. Quantities in resource lists are rewritten in canonical form (`0.5` -> `500m`).
Values Go would serialize although nobody set them (`resources: {}`, a pod template's
`creationTimestamp: null`) are written too.

The API server calls this on create and on every update, before validation; so every
default is idempotent, and none undoes what a client or controller set (a namespace keeps
the finalizers it has, even none). Values of the wrong type are left alone for
validation to report. Allocations (cluster IPs), admission plugins (service accounts,
priorities) and initial status are the API server's business, not this module's.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Callable, Iterator
from typing import Any

from arktos_lite.api import _validation as validation

__all__ = ["apply_defaults", "image_pull_policy"]

Obj = dict[str, Any]


def apply_defaults(group: str, kind: str, obj: Obj) -> None:
    """Fill in the defaults of a (group, kind) object in place; unknown kinds get none."""
    defaulter = _DEFAULTERS.get((group, kind))
    if defaulter is not None:
        defaulter(obj)


# --- Images -------------------------------------------------------------------------------

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_REFERENCE_RE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>\w[\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?",
    re.ASCII,
)
_IDENTIFIER_RE = re.compile("[a-f0-9]{64}")


def image_pull_policy(image: str) -> str:
    """`Always` for an image tagged `latest` or not at all, else `IfNotPresent`.

    As Kubernetes reads image references: a digest without a tag counts as pinned, and a
    reference Docker's grammar rejects (`Nginx`, `a b`) gets `IfNotPresent`.
    """
    match = _REFERENCE_RE.fullmatch(image)
    if match is None or len(match["name"]) > 255 or _IDENTIFIER_RE.fullmatch(image):
        return "IfNotPresent"
    tag, digest = match["tag"], match["digest"]
    if tag == "latest" or (tag is None and digest is None):
        return "Always"
    return "IfNotPresent"


# --- Helpers ------------------------------------------------------------------------------


def _mapping(parent: Obj, key: str, *, create: bool = False) -> Obj | None:
    """`parent[key]` if it is an object; created empty if absent (or null) and `create`."""
    value = parent.get(key)
    if isinstance(value, dict):
        return value
    if value is None and create:
        parent[key] = {}
        return parent[key]  # type: ignore[no-any-return]
    return None


def _objects(parent: Obj, key: str) -> Iterator[Obj]:
    value = parent.get(key)
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def _default(parent: Obj, key: str, value: Any) -> None:
    """Set a string or enum field that is absent, null or empty."""
    if parent.get(key) in (None, ""):
        parent[key] = value


def _default_pointer(parent: Obj, key: str, value: Any) -> None:
    """Set an optional field that is absent or null (0 and "" are values of their own)."""
    if parent.get(key) is None:
        parent[key] = value


def _canonical_quantity(value: Any, *, places: int | None) -> Any:
    try:
        quantity = validation.Quantity.from_json(value)
    except (validation.QuantityError, TypeError):
        return value  # left for validation to report
    if places is not None:
        quantity = quantity.round_up(places)
    return str(quantity)


def _canonical_resource_list(parent: Obj, key: str) -> None:
    """Rewrite a ResourceList in canonical form, rounded up to milli-units as Kubernetes does."""
    resource_list = _mapping(parent, key)
    if resource_list is not None:
        for name, value in resource_list.items():
            resource_list[name] = _canonical_quantity(value, places=3)


# --- Pods ---------------------------------------------------------------------------------


def _default_http_get(action: Obj | None) -> None:
    if action is not None:
        _default(action, "path", "/")
        _default(action, "scheme", "HTTP")


def _default_probe(probe: Obj | None) -> None:
    if probe is None:
        return
    for key, value in (
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ):
        if probe.get(key) in (None, 0):
            probe[key] = value
    _default_http_get(_mapping(probe, "httpGet"))


def _default_field_ref(holder: Obj) -> None:
    field_ref = _mapping(holder, "fieldRef")
    if field_ref is not None:
        _default(field_ref, "apiVersion", "v1")


def _default_container(container: Obj) -> None:
    if container.get("imagePullPolicy") in (None, ""):
        image = container.get("image")
        container["imagePullPolicy"] = image_pull_policy(image if isinstance(image, str) else "")
    _default(container, "terminationMessagePath", "/dev/termination-log")
    _default(container, "terminationMessagePolicy", "File")
    resources = _mapping(container, "resources", create=True)
    if resources is not None:
        _canonical_resource_list(resources, "limits")
        _canonical_resource_list(resources, "requests")
    for port in _objects(container, "ports"):
        _default(port, "protocol", "TCP")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(_mapping(container, probe))
    lifecycle = _mapping(container, "lifecycle")
    if lifecycle is not None:
        for hook in ("postStart", "preStop"):
            handler = _mapping(lifecycle, hook)
            if handler is not None:
                _default_http_get(_mapping(handler, "httpGet"))
    for var in _objects(container, "env"):
        source = _mapping(var, "valueFrom")
        if source is not None:
            _default_field_ref(source)
            resource_ref = _mapping(source, "resourceFieldRef")
            if resource_ref is not None:
                resource_ref.setdefault("divisor", "0")


def _default_downward_api_items(source: Obj) -> None:
    for item in _objects(source, "items"):
        _default_field_ref(item)


def _default_volume(volume: Obj) -> None:
    if all(volume.get(source) is None for source in validation.VOLUME_SOURCES):
        volume["emptyDir"] = {}
    for source_name in ("secret", "configMap", "downwardAPI", "projected"):
        source = _mapping(volume, source_name)
        if source is not None:
            _default_pointer(source, "defaultMode", 0o644)
    if (downward := _mapping(volume, "downwardAPI")) is not None:
        _default_downward_api_items(downward)
    if (projected := _mapping(volume, "projected")) is not None:
        for projection in _objects(projected, "sources"):
            token = _mapping(projection, "serviceAccountToken")
            if token is not None:
                _default_pointer(token, "expirationSeconds", 3600)
            if (downward := _mapping(projection, "downwardAPI")) is not None:
                _default_downward_api_items(downward)
    if (host_path := _mapping(volume, "hostPath")) is not None:
        _default_pointer(host_path, "type", "")
    if (empty_dir := _mapping(volume, "emptyDir")) is not None and "sizeLimit" in empty_dir:
        empty_dir["sizeLimit"] = _canonical_quantity(empty_dir["sizeLimit"], places=None)
    if (iscsi := _mapping(volume, "iscsi")) is not None:
        _default(iscsi, "iscsiInterface", "default")
    if (rbd := _mapping(volume, "rbd")) is not None:
        _default(rbd, "pool", "rbd")
        _default(rbd, "user", "admin")
        _default(rbd, "keyring", "/etc/ceph/keyring")
    if (azure_disk := _mapping(volume, "azureDisk")) is not None:
        _default_pointer(azure_disk, "cachingMode", "ReadWrite")
        _default_pointer(azure_disk, "kind", "Shared")
        _default_pointer(azure_disk, "fsType", "ext4")
        _default_pointer(azure_disk, "readOnly", False)
    if (scale_io := _mapping(volume, "scaleIO")) is not None:
        _default(scale_io, "storageMode", "ThinProvisioned")
        _default(scale_io, "fsType", "xfs")
    if (ephemeral := _mapping(volume, "ephemeral")) is not None:
        claim = _mapping(ephemeral, "volumeClaimTemplate")
        claim_spec = _mapping(claim, "spec") if claim is not None else None
        if claim_spec is not None:
            _default_pointer(claim_spec, "volumeMode", "Filesystem")


def _default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec and what lies inside: for pods and pod templates alike."""
    _default(spec, "dnsPolicy", "ClusterFirst")
    _default(spec, "restartPolicy", "Always")
    _default_pointer(spec, "securityContext", {})
    _default_pointer(spec, "terminationGracePeriodSeconds", 30)
    _default(spec, "schedulerName", "default-scheduler")
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for container in _objects(spec, key):
            _default_container(container)
    for volume in _objects(spec, "volumes"):
        _default_volume(volume)
    _canonical_resource_list(spec, "overhead")
    vm = _mapping(spec, "virtualMachine")
    if vm is not None and (resources := _mapping(vm, "resources")) is not None:
        _canonical_resource_list(resources, "limits")
        _canonical_resource_list(resources, "requests")


def _requests_from_limits(container: Obj) -> None:
    resources = _mapping(container, "resources")
    limits = _mapping(resources, "limits") if resources is not None else None
    if resources is None or limits is None:
        return
    requests = _mapping(resources, "requests", create=True)
    if requests is not None:
        for name, value in limits.items():
            requests.setdefault(name, copy.deepcopy(value))


def _default_pod(obj: Obj) -> None:
    spec = _mapping(obj, "spec", create=True)
    if spec is None:
        return
    # SetDefaults_Pod: only pods, never templates, get these.
    for key in ("containers", "initContainers"):
        for container in _objects(spec, key):
            _requests_from_limits(container)
    _default_pointer(spec, "enableServiceLinks", True)
    if spec.get("hostNetwork") is True:
        for key in ("containers", "initContainers"):
            for container in _objects(spec, key):
                for port in _objects(container, "ports"):
                    if port.get("hostPort") in (None, 0):
                        port["hostPort"] = port.get("containerPort")
    vm = _mapping(spec, "virtualMachine")
    if vm is not None:
        # Arktos: a VM's image is pulled once, whatever its tag.
        _default(vm, "imagePullPolicy", "IfNotPresent")
        _default(vm, "shutdownBehavior", "stop")
        _default(vm, "powerSpec", "Running")
        _mapping(vm, "resources", create=True)
    _default_pod_spec(spec)


def _default_template(spec: Obj) -> None:
    template = _mapping(spec, "template", create=True)
    if template is None:
        return
    meta = _mapping(template, "metadata", create=True)
    if meta is not None:
        # A template's empty timestamp: Go serializes it as null.
        meta.setdefault("creationTimestamp", None)
    pod_spec = _mapping(template, "spec", create=True)
    if pod_spec is not None:
        _default_pod_spec(pod_spec)


# --- Workloads ----------------------------------------------------------------------------


def _default_deployment(obj: Obj) -> None:
    spec = _mapping(obj, "spec", create=True)
    if spec is None:
        return
    _default_pointer(spec, "replicas", 1)
    strategy = _mapping(spec, "strategy", create=True)
    if strategy is not None:
        _default(strategy, "type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = _mapping(strategy, "rollingUpdate", create=True)
            if rolling is not None:
                _default_pointer(rolling, "maxUnavailable", "25%")
                _default_pointer(rolling, "maxSurge", "25%")
    _default_pointer(spec, "revisionHistoryLimit", 10)
    _default_pointer(spec, "progressDeadlineSeconds", 600)
    _default_template(spec)


def _default_replica_set(obj: Obj) -> None:
    spec = _mapping(obj, "spec", create=True)
    if spec is None:
        return
    _default_pointer(spec, "replicas", 1)
    _default_template(spec)


# --- Services and endpoints ---------------------------------------------------------------


def _default_service(obj: Obj) -> None:
    spec = _mapping(obj, "spec", create=True)
    if spec is None:
        return
    _default(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.get("sessionAffinityConfig")
        client_ip = config.get("clientIP") if isinstance(config, dict) else None
        if not isinstance(client_ip, dict) or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    _default(spec, "type", "ClusterIP")
    kind = spec["type"]
    for port in _objects(spec, "ports"):
        _default(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    externally_accessible = kind in ("NodePort", "LoadBalancer") or (
        kind == "ClusterIP" and bool(spec.get("externalIPs"))
    )
    if externally_accessible:
        _default(spec, "externalTrafficPolicy", "Cluster")
    if kind in ("ClusterIP", "NodePort", "LoadBalancer"):
        _default_pointer(spec, "internalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        _default_pointer(spec, "allocateLoadBalancerNodePorts", True)
    if kind != "ExternalName":
        # What the service registry fills in on a single-stack cluster.
        headless_without_selector = spec.get("clusterIP") == "None" and not spec.get("selector")
        if spec.get("ipFamilyPolicy") is None and not spec.get("ipFamilies"):
            spec["ipFamilyPolicy"] = (
                "RequireDualStack" if headless_without_selector else "SingleStack"
            )
        if not spec.get("ipFamilies"):
            address = spec.get("clusterIP")
            spec["ipFamilies"] = ["IPv6" if isinstance(address, str) and ":" in address else "IPv4"]


def _default_endpoints(obj: Obj) -> None:
    for subset in _objects(obj, "subsets"):
        for port in _objects(subset, "ports"):
            _default(port, "protocol", "TCP")


# --- Configuration ------------------------------------------------------------------------


def _default_secret(obj: Obj) -> None:
    _default(obj, "type", "Opaque")
    string_data = obj.get("stringData")
    if string_data is None:
        obj.pop("stringData", None)
        return
    if not isinstance(string_data, dict) or not all(
        isinstance(v, str) for v in string_data.values()
    ):
        return  # left for validation to report
    data = obj.get("data")
    if data is None and string_data:
        data = obj["data"] = {}
    if isinstance(data, dict):
        # stringData is write-only: merged into data (winning over it) and dropped.
        for key, value in string_data.items():
            data[key] = base64.b64encode(value.encode()).decode("ascii")
        del obj["stringData"]


# --- Cluster objects ----------------------------------------------------------------------


def _default_namespace(obj: Obj) -> None:
    meta = _mapping(obj, "metadata")
    name = meta.get("name") if meta is not None else None
    if meta is not None and isinstance(name, str) and name:
        labels = _mapping(meta, "labels", create=True)
        if labels is not None:
            labels["kubernetes.io/metadata.name"] = name
    spec = _mapping(obj, "spec", create=True)
    if spec is not None:
        _default_pointer(spec, "finalizers", ["kubernetes"])


def _default_tenant(obj: Obj) -> None:
    spec = _mapping(obj, "spec", create=True)
    if spec is not None:
        _default_pointer(spec, "finalizers", ["arktos"])
        _default(spec, "storageClusterId", "0")


def _default_node(obj: Obj) -> None:
    status = _mapping(obj, "status")
    if status is None:
        return
    capacity = _mapping(status, "capacity")
    if capacity is not None and status.get("allocatable") is None:
        status["allocatable"] = copy.deepcopy(capacity)
    _canonical_resource_list(status, "capacity")
    _canonical_resource_list(status, "allocatable")


# --- Events and Arktos objects -------------------------------------------------------------


def _default_event(obj: Obj) -> None:
    # Fields Go serializes although nobody set them.
    obj.setdefault("reportingComponent", "")
    obj.setdefault("reportingInstance", "")
    obj.setdefault("eventTime", None)
    _mapping(obj, "source", create=True)


def _default_controller_instance(obj: Obj) -> None:
    _default_pointer(obj, "controllerKey", 0)
    _default_pointer(obj, "workloadNum", 0)
    _default_pointer(obj, "isLocked", False)


_DEFAULTERS: dict[tuple[str, str], Callable[[Obj], None]] = {
    ("", "Pod"): _default_pod,
    ("", "Service"): _default_service,
    ("", "Endpoints"): _default_endpoints,
    ("", "Secret"): _default_secret,
    ("", "Namespace"): _default_namespace,
    ("", "Tenant"): _default_tenant,
    ("", "Node"): _default_node,
    ("", "Event"): _default_event,
    ("", "ControllerInstance"): _default_controller_instance,
    ("apps", "Deployment"): _default_deployment,
    ("apps", "ReplicaSet"): _default_replica_set,
}
