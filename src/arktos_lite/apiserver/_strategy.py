"""What differs between kinds in create, update and delete, beyond validation.

Kubernetes calls these "strategies": the status an object starts with, which kinds
count `metadata.generation`, which namespaces and tenants are protected, the QoS class of
a pod. Everything here is a pure function of the objects involved.
"""

from __future__ import annotations

import copy
from typing import Any

from arktos_lite.api import _resources as resources

Obj = dict[str, Any]

# Kinds whose metadata.generation counts changes of everything but metadata and status.
# Custom resources count it too.
GENERATION_KINDS = frozenset(
    {
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
    }
)

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public")

CRD_GROUP = "apiextensions.k8s.io"
CRD_KIND = "CustomResourceDefinition"
CRD_PREFIX = "/registry/customresourcedefinitions/"


def is_crd(resource: resources.Resource) -> bool:
    return (resource.group, resource.kind) == (CRD_GROUP, CRD_KIND)


def tracks_generation(resource: resources.Resource) -> bool:
    return resource.custom is not None or (resource.group, resource.kind) in GENERATION_KINDS


def initial_status(resource: resources.Resource, obj: Obj) -> Obj | None:
    """The status a new object starts with; None keeps what the client sent."""
    match (resource.group, resource.kind):
        case ("", "Pod"):
            return {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}
        case ("", "Namespace") | ("", "Tenant"):
            return {"phase": "Active"}
        case ("apps", "Deployment") | ("apps", "ReplicaSet"):
            return {}
        case ("", "Service"):
            return {"loadBalancer": {}}
        case ("", "Action") | ("arktos.futurewei.com", "Network"):
            return {}
    return None


def qos_class(spec: Obj) -> str:
    """Guaranteed, Burstable or BestEffort, as the kubelet and the API server compute it."""
    workloads = [*spec.get("initContainers", []), *spec.get("containers", [])]
    if spec.get("virtualMachine"):
        workloads.append(spec["virtualMachine"])
    requests: dict[str, set[str]] = {}
    limits: dict[str, set[str]] = {}
    guaranteed = bool(workloads)
    for workload in workloads:
        res = workload.get("resources") or {}
        req = res.get("requests") or {}
        lim = res.get("limits") or {}
        for name, value in req.items():
            requests.setdefault(name, set()).add(str(value))
        for name, value in lim.items():
            limits.setdefault(name, set()).add(str(value))
        # Requests default to limits; guaranteed needs cpu and memory limits everywhere.
        if not {"cpu", "memory"} <= lim.keys() or any(
            str(req.get(name, lim[name])) != str(lim[name]) for name in ("cpu", "memory")
        ):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def generation_changed(resource: resources.Resource, old: Obj, new: Obj) -> bool:
    """Whether `new` is a new generation of `old`: anything but metadata and status changed.

    A custom resource without a status subresource counts its status changes too.
    """
    if not tracks_generation(resource):
        return False
    if resource.custom is not None and "status" not in resource.subresources:
        return _changed(old, new, ignored=("metadata", "apiVersion", "kind"))
    return spec_changed(old, new)


def spec_changed(old: Obj, new: Obj) -> bool:
    """Whether anything but metadata and status differs."""
    return _changed(old, new, ignored=("metadata", "status", "apiVersion", "kind"))


def _changed(old: Obj, new: Obj, *, ignored: tuple[str, ...]) -> bool:
    return {k: v for k, v in old.items() if k not in ignored} != {
        k: v for k, v in new.items() if k not in ignored
    }


def keep_allocated(resource: resources.Resource, old: Obj, new: Obj) -> None:
    """Keep what the server allocated when an update leaves it out (`kubectl replace`).

    A Service's cluster IPs, as kube-apiserver's service registry does.
    """
    if (resource.group, resource.kind) != ("", "Service"):
        return
    old_spec = old.get("spec") or {}
    new_spec = new.get("spec")
    if not isinstance(new_spec, dict) or "ExternalName" in (
        old_spec.get("type"),
        new_spec.get("type"),
    ):
        return
    for field in ("clusterIP", "clusterIPs"):
        if not new_spec.get(field) and old_spec.get(field):
            new_spec[field] = copy.deepcopy(old_spec[field])


def deletion_forbidden(
    resource: resources.Resource, obj: Obj, *, tenant_terminating: bool
) -> str | None:
    """Why this object may not be deleted, or None."""
    name = obj["metadata"]["name"]
    if resource.kind == "Tenant" and resource.group == "" and name == resources.SYSTEM_TENANT:
        return "this tenant may not be deleted"
    if (
        resource.kind == "Namespace"
        and resource.group == ""
        and name in DEFAULT_NAMESPACES
        and not tenant_terminating
    ):
        return "this namespace may not be deleted"
    return None


# Kinds whose delete answers with the object even when it is gone at once (their stores'
# `ReturnDeletedObject` in kube-apiserver, and Arktos's for tenants).
RETURNS_DELETED_OBJECT = frozenset(
    {("", "Pod"), ("", "Namespace"), ("", "Service"), ("", "ServiceAccount"), ("", "Tenant")}
)


def deleted_answer(resource: resources.Resource, obj: Obj) -> Obj:
    """What a delete that removed `obj` at once answers: the object for the kinds above,
    else a success Status naming it (kube-apiserver's `finalizeDelete`, whose
    `details.kind` is the resource's plural)."""
    if (resource.group, resource.kind) in RETURNS_DELETED_OBJECT:
        return obj
    meta = obj["metadata"]
    details: Obj = {"name": meta["name"]}
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.plural
    if meta.get("uid"):
        details["uid"] = meta["uid"]
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def uses_spec_finalizers(resource: resources.Resource) -> bool:
    """Namespaces and tenants keep their finalizers in spec and become Terminating."""
    return resource.group == "" and resource.kind in ("Namespace", "Tenant")


def mark_terminating(obj: Obj) -> Obj:
    terminating = copy.deepcopy(obj)
    terminating.setdefault("status", {})["phase"] = "Terminating"
    return terminating


def graceful_pod_delete(obj: Obj, grace_period: int | None) -> int | None:
    """The grace period a pod delete waits for its node, or None to delete at once.

    Only a pod bound to a node and not yet finished waits: its node agent stops the
    workloads and then deletes it for good.
    """
    spec = obj.get("spec") or {}
    phase = (obj.get("status") or {}).get("phase")
    if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
        return None
    if grace_period is None:
        grace_period = int(spec.get("terminationGracePeriodSeconds", 30))
    return grace_period if grace_period > 0 else None
