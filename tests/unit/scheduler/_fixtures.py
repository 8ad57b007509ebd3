"""Fake pods and nodes for the scheduler's unit tests, and a cache to hold them."""

from __future__ import annotations

import itertools
from typing import Any

from arktos_lite.scheduler import _cache as cache, _nodes as nodes, _pods as pods

Obj = dict[str, Any]

_uids = itertools.count(1)


def node_obj(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods_allowed: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
    unschedulable: bool = False,
    container_ready: bool | None = True,
    vm_ready: bool | None = True,
    extra: dict[str, str] | None = None,
) -> Obj:
    conditions = [{"type": "Ready", "status": "True"}]
    for type_, ready in (("ContainerRuntimeReady", container_ready), ("VmRuntimeReady", vm_ready)):
        if ready is not None:
            conditions.append({"type": type_, "status": "True" if ready else "False"})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods_allowed, **(extra or {})},
            "conditions": conditions,
        },
    }


def node(name: str = "n1", **kwargs: Any) -> nodes.NodeInfo:
    info = nodes.NodeInfo(name)
    info.set_facts(nodes.NodeFacts.parse(node_obj(name, **kwargs)))
    return info


def pod_obj(
    name: str = "p",
    *,
    cpu: str | None = None,
    memory: str | None = None,
    namespace: str = "default",
    tenant: str = "system",
    labels: dict[str, str] | None = None,
    node_name: str | None = None,
    **spec: Any,
) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    body: Obj = {
        "containers": [{"name": "c", "image": "busybox", "resources": {"requests": requests}}],
        **spec,
    }
    if node_name is not None:
        body["nodeName"] = node_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "tenant": tenant,
            "uid": f"uid-{next(_uids)}",
            "resourceVersion": "1",
            "labels": labels or {},
        },
        "spec": body,
    }


def pod(name: str = "p", **kwargs: Any) -> pods.PodInfo:
    return pods.PodInfo.parse(pod_obj(name, **kwargs))


def vm_pod_obj(
    name: str = "vm", *, cpu: str = "1", memory: str = "1Gi", limits_only: bool = False
) -> Obj:
    amounts = {"cpu": cpu, "memory": memory}
    resources = {"limits": amounts} if limits_only else {"requests": amounts}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "tenant": "system", "uid": name},
        "spec": {
            "virtualMachine": {
                "name": "vm",
                "image": "cirros",
                "keyPairName": "key",
                "resources": resources,
            }
        },
    }


def vm_pod(name: str = "vm", **kwargs: Any) -> pods.PodInfo:
    return pods.PodInfo.parse(vm_pod_obj(name, **kwargs))


def placed(info: nodes.NodeInfo, *placed_pods: pods.PodInfo) -> nodes.NodeInfo:
    for placed_pod in placed_pods:
        info.add_pod(placed_pod)
    return info


def cluster(*node_objs: Obj, bound: tuple[Obj, ...] = ()) -> cache.Cache:
    """A cache holding these nodes and these bound pods."""
    held = cache.Cache()
    for obj in node_objs:
        held.add_node(obj)
    for obj in bound:
        held.add_pod(pods.PodInfo.parse(obj))
    return held
