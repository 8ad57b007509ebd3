"""Building and reading ReplicaSets and their pods in the workload controller tests."""

from __future__ import annotations

import datetime
from typing import Any

from arktos_lite import client

from ..conftest import resource

Obj = dict[str, Any]

PODS = resource("pods")
REPLICASETS = resource("replicasets", "apps")
CONTROLLER_INSTANCES = resource("controllerinstances")


def replicaset(
    name: str, *, replicas: int, app: str | None = None, min_ready_seconds: int = 0
) -> Obj:
    app = app or name
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": app}},
        "template": {
            "metadata": {"labels": {"app": app, "tier": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        },
    }
    if min_ready_seconds:
        spec["minReadySeconds"] = min_ready_seconds
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name}, "spec": spec}


def bare_pod(name: str, labels: dict[str, str]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }


def controller_uid(pod: Obj) -> str | None:
    for ref in pod["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref["uid"])
    return None


def controllers_of(pod: Obj) -> int:
    return sum(1 for ref in pod["metadata"].get("ownerReferences") or () if ref.get("controller"))


def active(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


async def pods_of(
    api: client.Client, rs: Obj, *, tenant: str = "system", namespace: str = "default"
) -> list[Obj]:
    """The active pods `rs` controls, read from the API."""
    listed = await api.list(PODS, tenant=tenant, namespace=namespace)
    uid = rs["metadata"]["uid"]
    return [p for p in listed["items"] if controller_uid(p) == uid and active(p)]


async def all_pods(api: client.Client) -> list[Obj]:
    return list((await api.list(PODS, tenant="all"))["items"])


def now_rfc3339(delta: float = 0.0) -> str:
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=delta)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def set_pod_state(
    api: client.Client,
    pod: Obj,
    *,
    node: str | None = None,
    phase: str = "Pending",
    ready: bool = False,
    ready_since: float = -60.0,
    tenant: str = "system",
    namespace: str = "default",
) -> Obj:
    """Bind `pod` to `node` (when given) and give it this phase and readiness."""
    name = pod["metadata"]["name"]
    if node is not None:
        await api.post_subresource(
            PODS,
            name,
            "binding",
            {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name},
                "target": {"kind": "Node", "name": node},
            },
            tenant=tenant,
            namespace=namespace,
        )
    current = await api.get(PODS, name, tenant=tenant, namespace=namespace)
    status = dict(current.get("status") or {})
    status["phase"] = phase
    conditions = [c for c in status.get("conditions") or () if c.get("type") != "Ready"]
    conditions.append(
        {
            "type": "Ready",
            "status": "True" if ready else "False",
            "lastTransitionTime": now_rfc3339(ready_since),
        }
    )
    status["conditions"] = conditions
    return await api.replace(
        PODS,
        {**current, "status": status},
        subresource="status",
        tenant=tenant,
        namespace=namespace,
    )
