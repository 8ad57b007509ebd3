"""The scheduler against a real API server, reached only through the client.

* `api`: an admin client (system tenant, may go everywhere) of an API server on a free
  loopback port over an in-memory store.
* `start_scheduler(config=None)`: runs a `Scheduler` in the test's nursery until the test
  ends; returns it once its caches have synced.
* `node(name, ...)`, `pod(name, ...)`, `vm_pod(name, ...)`: fake objects; nodes are plain
  Node objects with allocatable, runtime conditions, labels and taints (no agent).
* `make_tenant(api, name)`: a tenant with its `default` namespace.
* `eventually(predicate, timeout)`: polls a (sync or async) predicate until it gives
  something truthy, and returns that.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trio

from arktos_lite import apiserver, client, scheduler, storage
from arktos_lite.api import errors, resources

ADMIN_TOKEN = "admin-token"

Obj = dict[str, Any]

_REGISTRY = resources.Registry()


def resource(plural: str, group: str = "") -> resources.Resource:
    found = _REGISTRY.get(group, "v1", plural)
    assert found is not None, plural
    return found


PODS = resource("pods")
NODES = resource("nodes")
EVENTS = resource("events")
TENANTS = resource("tenants")
NAMESPACES = resource("namespaces")


async def eventually(
    predicate: Callable[[], Any],
    timeout: float = 10.0,  # noqa: ASYNC109
    *,
    interval: float = 0.05,
) -> Any:
    """The first truthy value of `predicate`, polled every `interval` seconds."""
    last: Any = None
    try:
        with trio.fail_after(timeout):
            while True:
                result = predicate()
                if inspect.isawaitable(result):
                    result = await result
                last = result
                if result:
                    return result
                await trio.sleep(interval)
    except trio.TooSlowError:
        raise AssertionError(f"not true within {timeout} s; last value: {last!r}") from None


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
    unschedulable: bool = False,
    container_ready: bool = True,
    vm_ready: bool = True,
    extra: dict[str, str] | None = None,
) -> Obj:
    def condition(type_: str, ready: bool) -> Obj:
        return {"type": type_, "status": "True" if ready else "False"}

    allocatable = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, **(labels or {})},
        },
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {
            "capacity": allocatable,
            "allocatable": allocatable,
            "conditions": [
                condition("Ready", True),
                condition("ContainerRuntimeReady", container_ready),
                condition("VmRuntimeReady", vm_ready),
            ],
        },
    }


def pod(
    name: str,
    *,
    cpu: str | None = None,
    memory: str | None = None,
    namespace: str = "default",
    tenant: str | None = None,
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    metadata: Obj = {"name": name, "namespace": namespace, "labels": labels or {}}
    if tenant is not None:
        metadata["tenant"] = tenant
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "containers": [{"name": "c", "image": "busybox", "resources": {"requests": requests}}],
            **spec,
        },
    }


def vm_pod(name: str, *, cpu: str = "1", memory: str = "1Gi", **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "virtualMachine": {
                "name": "vm",
                "image": "cirros",
                "keyPairName": "key",
                "resources": {"requests": {"cpu": cpu, "memory": memory}},
            },
            **spec,
        },
    }


async def make_tenant(api: client.Client, name: str) -> None:
    await api.create(TENANTS, {"metadata": {"name": name}})
    await api.create(NAMESPACES, {"metadata": {"name": "default"}}, tenant=name)


async def bound_node(
    api: client.Client, name: str, *, namespace: str = "default", tenant: str | None = None
) -> str | None:
    got = await api.get(PODS, name, namespace=namespace, tenant=tenant)
    node_name: str | None = (got.get("spec") or {}).get("nodeName")
    return node_name


async def scheduled_condition(
    api: client.Client, name: str, *, namespace: str = "default", tenant: str | None = None
) -> Obj | None:
    got = await api.get(PODS, name, namespace=namespace, tenant=tenant)
    for condition in (got.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "PodScheduled":
            return dict(condition)
    return None


async def events_of(
    api: client.Client, name: str, *, namespace: str = "default", tenant: str | None = None
) -> list[Obj]:
    listed = await api.list(
        EVENTS,
        namespace=namespace,
        tenant=tenant,
        field_selector=f"involvedObject.name={name}",
    )
    items: list[Obj] = listed.get("items") or []
    return items


@pytest.fixture
async def api() -> AsyncIterator[client.Client]:
    async with storage.open_store("sqlite://") as backend, trio.open_nursery() as nursery:
        options = apiserver.ServeOptions(port=0, graceful_timeout=1.0)
        server = apiserver.APIServer(
            backend,
            authenticator=apiserver.Authenticator(admin_token=ADMIN_TOKEN),
            options=options,
        )
        bound: apiserver.Bound = await nursery.start(server.run)
        config = client.Config(server=bound.url, token=ADMIN_TOKEN)
        async with client.Client(config, qps=5000, burst=5000) as connected:
            yield connected
        server.stop()


StartScheduler = Callable[..., Awaitable[scheduler.Scheduler]]


@pytest.fixture
async def start_scheduler(api: client.Client) -> AsyncIterator[StartScheduler]:
    async with trio.open_nursery() as nursery:

        async def start(config: scheduler.SchedulerConfig | None = None) -> scheduler.Scheduler:
            started = scheduler.Scheduler(api, config=config)
            await nursery.start(started.run)
            return started

        yield start
        nursery.cancel_scope.cancel()


async def create_all(api: client.Client, objects: list[Obj], *, concurrency: int = 16) -> None:
    """Create `objects` (pods or nodes) with a few requests at a time."""
    send, receive = trio.open_memory_channel[Obj](len(objects))
    for obj in objects:
        send.send_nowait(obj)
    send.close()

    async def worker() -> None:
        async for obj in receive:
            kind = NODES if obj["kind"] == "Node" else PODS
            with contextlib.suppress(errors.AlreadyExists):
                await api.create(kind, obj)

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
