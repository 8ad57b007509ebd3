"""The REST layer of a partition's API server: what it does not hold is 421, untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from arktos_lite import storage
from arktos_lite.api import partitions, resources
from arktos_lite.apiserver import _openapi as openapi, _rest as rest, _server as server

REGISTRY = resources.Registry()


def core(plural: str) -> resources.Resource:
    resource = REGISTRY.get("", "v1", plural)
    assert resource is not None
    return resource


TENANTS = core("tenants")
NAMESPACES = core("namespaces")
PODS = core("pods")
NODES = core("nodes")
SERVICES = core("services")

LOW = partitions.Partition("p0", partitions.TenantRange("", "n"))
HIGH = partitions.Partition("p1", partitions.TenantRange("n", ""))
SYSTEM = rest.Where(tenant=resources.SYSTEM_TENANT)


def pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "x"}]}}


@pytest.fixture
async def backend() -> AsyncIterator[storage.Backend]:
    async with storage.open_store("sqlite://") as opened:
        yield opened


async def tenant_with_namespace(api: rest.Rest, name: str) -> None:
    await api.create(TENANTS, SYSTEM, {"metadata": {"name": name}})
    await api.create(NAMESPACES, rest.Where(tenant=name), {"metadata": {"name": "default"}})


async def untouched(
    backend: storage.Backend, call: Callable[[], Awaitable[object]], message: str
) -> None:
    """`call` fails with 421 and `message`, and the store has not moved."""
    before = await backend.current_revision()
    with pytest.raises(partitions.MisdirectedRequest) as raised:
        await call()
    assert raised.value.code == 421
    assert message in raised.value.status()["message"]
    assert await backend.current_revision() == before


async def test_a_partition_serves_its_own_tenants(backend: storage.Backend) -> None:
    api = rest.Rest(backend, registry=REGISTRY, partition=LOW)
    await tenant_with_namespace(api, "alpha")
    where = rest.Where(tenant="alpha", namespace="default")
    await api.create(PODS, where, pod("web"))
    assert (await api.get(PODS, where, "web"))["metadata"]["tenant"] == "alpha"
    listed = await api.list(PODS, rest.Where(tenant=resources.ALL_TENANTS), rest.ListOptions())
    assert [s.object()["metadata"]["name"] for s in listed.items] == ["web"]
    tenants = await api.list(TENANTS, SYSTEM, rest.ListOptions())
    assert [s.object()["metadata"]["name"] for s in tenants.items] == ["alpha"]


async def test_every_operation_on_another_partitions_tenant_is_misdirected(
    backend: storage.Backend,
) -> None:
    api = rest.Rest(backend, registry=REGISTRY, partition=LOW)
    where = rest.Where(tenant="zeta", namespace="default")
    said = 'tenant "zeta" is not served by this API server: it serves partition "p0"'
    options = rest.DeleteOptions()
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: api.create(TENANTS, SYSTEM, {"metadata": {"name": "zeta"}}),
        lambda: api.create(TENANTS, SYSTEM, {"metadata": {"name": "zeta"}}, dry_run=True),
        lambda: api.get(TENANTS, SYSTEM, "zeta"),
        lambda: api.delete(TENANTS, SYSTEM, "zeta", options),
        lambda: api.create(NAMESPACES, rest.Where(tenant="zeta"), {"metadata": {"name": "x"}}),
        lambda: api.create(PODS, where, pod("web")),
        lambda: api.create(PODS, where, pod("web"), dry_run=True),
        lambda: api.get(PODS, where, "web"),
        lambda: api.list(PODS, where, rest.ListOptions()),
        lambda: api.list(PODS, rest.Where(tenant="zeta"), rest.ListOptions()),
        lambda: api.update(PODS, where, "web", pod("web")),
        lambda: api.patch(
            PODS,
            where,
            "web",
            {"metadata": {"labels": {"a": "b"}}},
            content_type="application/merge-patch+json",
        ),
        lambda: api.apply(PODS, where, "web", pod("web"), manager="m"),
        lambda: api.delete(PODS, where, "web", options),
        lambda: api.delete_collection(PODS, where, rest.ListOptions(), options),
        lambda: api.bind(where, "web", {"target": {"name": "n1"}}),
    ]
    for call in calls:
        await untouched(backend, call, said)


async def test_cluster_scoped_objects_only_on_the_designated_partition(
    backend: storage.Backend,
) -> None:
    low = rest.Rest(backend, registry=REGISTRY, partition=LOW)
    node = {"metadata": {"name": "n1"}}
    said = 'nodes are cluster-scoped and live in the partition that holds tenant "system"'
    await untouched(backend, lambda: low.create(NODES, SYSTEM, node), said)
    await untouched(backend, lambda: low.get(NODES, SYSTEM, "n1"), said)
    await untouched(backend, lambda: low.list(NODES, SYSTEM, rest.ListOptions()), said)
    high = rest.Rest(backend, registry=REGISTRY, partition=HIGH)
    await high.create(NODES, SYSTEM, node)
    assert (await high.get(NODES, SYSTEM, "n1"))["metadata"]["name"] == "n1"


async def test_without_a_partition_everything_is_served(backend: storage.Backend) -> None:
    api = rest.Rest(backend, registry=REGISTRY)
    await tenant_with_namespace(api, "zeta")
    await api.create(NODES, SYSTEM, {"metadata": {"name": "n1"}})


async def test_services_of_a_partition_take_cluster_ips_from_its_range(
    backend: storage.Backend,
) -> None:
    api = rest.Rest(backend, registry=REGISTRY, partition=LOW, service_cidr="10.97.0.0/24")
    await tenant_with_namespace(api, "alpha")
    service = {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    created = await api.create(SERVICES, rest.Where(tenant="alpha", namespace="default"), service)
    assert created["spec"]["clusterIP"].startswith("10.97.0.")


async def test_bootstrap_of_a_partition_without_the_system_tenant_creates_nothing(
    backend: storage.Backend,
) -> None:
    await server.bootstrap(rest.Rest(backend, registry=REGISTRY, partition=LOW))
    assert await backend.current_revision() == 0
    designated = rest.Rest(backend, registry=REGISTRY, partition=HIGH)
    await server.bootstrap(designated)
    namespaces = await designated.list(NAMESPACES, SYSTEM, rest.ListOptions())
    assert [s.object()["metadata"]["name"] for s in namespaces.items] == [
        "default",
        "kube-node-lease",
        "kube-public",
        "kube-system",
    ]
    assert (await designated.get(TENANTS, SYSTEM, "system"))["metadata"]["name"] == "system"


def test_openapi_describes_data_partition_configs_as_read_only() -> None:
    document = openapi.build_document(REGISTRY, "", "v1")
    collection = document["paths"]["/api/v1/datapartitionconfigs"]
    item = document["paths"]["/api/v1/datapartitionconfigs/{name}"]
    assert {k for k in collection if k != "parameters"} == {"get"}
    assert {k for k in item if k != "parameters"} == {"get"}
    assert collection["get"]["x-kubernetes-group-version-kind"]["kind"] == "DataPartitionConfig"
    assert "/api/v1/tenants/{tenant}/datapartitionconfigs" not in document["paths"]
    schemas = document["components"]["schemas"]
    properties = schemas["io.k8s.api.core.v1.DataPartitionConfig"]["properties"]
    assert {"serviceGroupId", "rangeStart", "isRangeStartValid", "rangeEnd"} <= set(properties)
    assert "io.k8s.api.core.v1.DataPartitionConfigList" in schemas
