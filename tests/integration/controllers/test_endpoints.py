"""The endpoints controller against a real API server: Services get the Endpoints and
EndpointSlices of their tenant's ready pods, kept in step as pods come, change and go."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import trio

from arktos_lite import client, machinery
from arktos_lite.api import errors
from arktos_lite.controllers import _endpoints as ep, _gc as gc

from .conftest import (
    ENDPOINTS,
    NAMESPACES,
    PODS,
    SERVICES,
    TENANTS,
    Controllers,
    eventually,
    exists,
    resource,
)

Obj = dict[str, Any]

SLICES = resource("endpointslices", "discovery.k8s.io")
NS = "default"


@pytest.fixture
async def running(
    api: client.Client,
    informers: machinery.InformerFactory,
    recorder: machinery.EventRecorder,
    controllers: Controllers,
) -> Controllers:
    for tenant in ("t1", "t2"):
        await api.create(TENANTS, {"metadata": {"name": tenant}})
        with contextlib.suppress(errors.AlreadyExists):
            await api.create(NAMESPACES, {"metadata": {"name": NS}}, tenant=tenant)
    await controllers.start(
        ep.EndpointsController(api, informers, recorder=recorder),
        gc.GarbageCollector(api, informers, recorder=recorder),
    )
    return controllers


async def make_service(
    api: client.Client,
    name: str = "web",
    *,
    tenant: str = "t1",
    selector: dict[str, str] | None = None,
    ports: list[Obj] | None = None,
) -> Obj:
    spec: Obj = {"ports": ports or [{"name": "http", "port": 80, "targetPort": "http"}]}
    if selector is not None:
        spec["selector"] = selector
    body = {"metadata": {"name": name, "labels": {"team": "blue"}}, "spec": spec}
    return await api.create(SERVICES, body, namespace=NS, tenant=tenant)


async def make_pod(
    api: client.Client,
    name: str,
    ip: str,
    *,
    tenant: str = "t1",
    ready: bool = True,
    labels: dict[str, str] | None = None,
) -> Obj:
    body = {
        "metadata": {"name": name, "labels": labels or {"app": "web"}},
        "spec": {
            "nodeName": "node-1",
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "ports": [{"name": "http", "containerPort": 8080}],
                }
            ],
        },
    }
    await api.create(PODS, body, namespace=NS, tenant=tenant)
    return await set_status(api, name, ip, tenant=tenant, ready=ready)


async def set_status(
    api: client.Client, name: str, ip: str, *, tenant: str = "t1", ready: bool = True
) -> Obj:
    status = {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    return await api.patch(
        PODS, name, {"status": status}, namespace=NS, tenant=tenant, subresource="status"
    )


async def endpoints(api: client.Client, name: str = "web", *, tenant: str = "t1") -> Obj | None:
    return await exists(api, ENDPOINTS, name, tenant=tenant, namespace=NS)


async def slices(api: client.Client, service: str = "web", *, tenant: str = "t1") -> list[Obj]:
    listed = await api.list_all(
        SLICES,
        namespace=NS,
        tenant=tenant,
        label_selector=f"{ep.SERVICE_NAME_LABEL}={service}",
    )
    return list(listed["items"])


def ips(found: Obj | None, field: str = "addresses") -> list[str]:
    if found is None:
        return []
    return [a["ip"] for s in found.get("subsets") or () for a in s.get(field) or ()]


def slice_ips(found: list[Obj]) -> list[str]:
    return sorted(a for s in found for e in s.get("endpoints") or () for a in e["addresses"])


async def test_a_service_gets_the_endpoints_and_a_slice_of_its_pods(
    api: client.Client, running: Controllers
) -> None:
    service = await make_service(api, selector={"app": "web"})
    await make_pod(api, "a", "10.244.0.5")
    await make_pod(api, "b", "10.244.0.6", ready=False)
    await make_pod(api, "other", "10.244.0.7", labels={"app": "db"})

    async def both_seen() -> Obj | None:
        found = await endpoints(api)
        ok = ips(found) == ["10.244.0.5"] and ips(found, "notReadyAddresses") == ["10.244.0.6"]
        return found if ok else None

    found = await eventually(both_seen)
    [subset] = found["subsets"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    address = subset["addresses"][0]
    assert address["nodeName"] == "node-1"
    assert address["targetRef"]["kind"] == "Pod"
    assert address["targetRef"]["name"] == "a"
    assert address["targetRef"]["tenant"] == "t1"
    assert found["metadata"]["labels"] == {
        "team": "blue",
        "endpoints.kubernetes.io/managed-by": "endpoint-controller",
    }
    assert ep.TRIGGER_TIME_ANNOTATION in found["metadata"]["annotations"]

    async def one_slice() -> list[Obj] | None:
        found = await slices(api)
        return found if slice_ips(found) == ["10.244.0.5", "10.244.0.6"] else None

    [slice_] = await eventually(one_slice)
    assert slice_["addressType"] == "IPv4"
    assert slice_["metadata"]["name"].startswith("web-")
    assert slice_["metadata"]["labels"][ep.MANAGED_BY_LABEL] == ep.CONTROLLER_NAME
    assert slice_["metadata"]["ownerReferences"][0]["uid"] == service["metadata"]["uid"]
    conditions = {e["targetRef"]["name"]: e["conditions"] for e in slice_["endpoints"]}
    assert conditions["a"] == {"ready": True, "serving": True, "terminating": False}
    assert conditions["b"]["ready"] is False
    assert slice_["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]

    # b turns ready, a goes: both follow, and the slice is updated where it is.
    await set_status(api, "b", "10.244.0.6", ready=True)
    await api.delete(PODS, "a", namespace=NS, tenant="t1", grace_period_seconds=0)

    async def only_b() -> Obj | None:
        found = await endpoints(api)
        return (
            found if ips(found) == ["10.244.0.6"] and not ips(found, "notReadyAddresses") else None
        )

    await eventually(only_b)

    async def slice_only_b() -> list[Obj] | None:
        found = await slices(api)
        return found if slice_ips(found) == ["10.244.0.6"] else None

    [kept] = await eventually(slice_only_b)
    assert kept["metadata"]["name"] == slice_["metadata"]["name"]
    assert kept["endpoints"][0]["conditions"]["ready"] is True


async def test_pods_of_another_tenant_never_count(api: client.Client, running: Controllers) -> None:
    await make_service(api, selector={"app": "web"}, tenant="t1")
    await make_service(api, selector={"app": "web"}, tenant="t2")
    await make_pod(api, "mine", "10.244.0.5", tenant="t1")
    await make_pod(api, "theirs", "10.244.1.5", tenant="t2")

    async def settled() -> bool:
        return ips(await endpoints(api, tenant="t1")) == ["10.244.0.5"] and ips(
            await endpoints(api, tenant="t2")
        ) == ["10.244.1.5"]

    await eventually(settled)

    async def sliced() -> bool:
        return slice_ips(await slices(api, tenant="t1")) == ["10.244.0.5"] and slice_ips(
            await slices(api, tenant="t2")
        ) == ["10.244.1.5"]

    # A slice may exist, still empty, before the pods' addresses are in it.
    await eventually(sliced)


async def test_a_service_without_selector_keeps_the_endpoints_users_give_it(
    api: client.Client, running: Controllers
) -> None:
    await make_service(api, "external")
    mine = {
        "metadata": {"name": "external"},
        "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"name": "http", "port": 80}]}],
    }
    created = await api.create(ENDPOINTS, mine, namespace=NS, tenant="t1")
    # A selected service and a pod that would match, to be sure the controller is busy.
    await make_service(api, selector={"app": "web"})
    await make_pod(api, "a", "10.244.0.5")
    await eventually(lambda: _has_ips(api, ["10.244.0.5"]))
    kept = await endpoints(api, "external")
    assert kept is not None
    assert kept["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert await slices(api, "external") == []


async def _has_ips(api: client.Client, wanted: list[str]) -> bool:
    return ips(await endpoints(api)) == wanted


async def test_the_endpoints_and_slices_of_a_deleted_service_go(
    api: client.Client, running: Controllers
) -> None:
    await make_service(api, selector={"app": "web"})
    await make_pod(api, "a", "10.244.0.5")
    await eventually(lambda: _has_ips(api, ["10.244.0.5"]))
    await eventually(lambda: slices(api))
    await api.delete(SERVICES, "web", namespace=NS, tenant="t1")

    async def gone() -> bool:
        return await endpoints(api) is None and await slices(api) == []

    await eventually(gone)


async def test_a_service_without_pods_has_empty_endpoints_and_one_empty_slice(
    api: client.Client, running: Controllers
) -> None:
    await make_service(api, selector={"app": "none"})
    found = await eventually(lambda: endpoints(api))
    assert found.get("subsets") in (None, [])
    [slice_] = await eventually(lambda: slices(api))
    assert slice_["endpoints"] in (None, [])


async def test_endpoints_left_by_a_service_gone_while_the_controller_was_down_go(
    api: client.Client,
    informers: machinery.InformerFactory,
    recorder: machinery.EventRecorder,
    controllers: Controllers,
) -> None:
    await api.create(
        ENDPOINTS,
        {"metadata": {"name": "stale"}, "subsets": [{"addresses": [{"ip": "10.244.0.9"}]}]},
        namespace=NS,
    )
    await controllers.start(ep.EndpointsController(api, informers, recorder=recorder))

    async def gone() -> bool:
        return await exists(api, ENDPOINTS, "stale", namespace=NS) is None

    await eventually(gone)
    # The API server's own Service keeps its Endpoints.
    assert await exists(api, ENDPOINTS, "kubernetes", namespace=NS) is not None


async def test_nothing_is_written_while_nothing_that_matters_changes(
    api: client.Client, running: Controllers
) -> None:
    await make_service(api, selector={"app": "web"})
    await make_pod(api, "a", "10.244.0.5")
    await eventually(lambda: _has_ips(api, ["10.244.0.5"]))

    async def sliced() -> bool:
        return slice_ips(await slices(api)) == ["10.244.0.5"]

    await eventually(sliced)
    found = await endpoints(api)
    assert found is not None
    [slice_] = await slices(api)
    # A change to the pod that concerns no endpoint, and one to a pod of no Service.
    await api.patch(PODS, "a", {"metadata": {"annotations": {"x": "y"}}}, namespace=NS, tenant="t1")
    await make_pod(api, "other", "10.244.0.6", labels={"app": "db"})
    await trio.sleep(0.5)
    again = await endpoints(api)
    assert again is not None
    assert again["metadata"]["resourceVersion"] == found["metadata"]["resourceVersion"]
    [slice_again] = await slices(api)
    assert slice_again["metadata"]["resourceVersion"] == slice_["metadata"]["resourceVersion"]
