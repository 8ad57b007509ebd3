"""Networks (arktos.futurewei.com/v1) over real HTTP: a tenant-scoped kind with a status,
validated, discoverable, described by OpenAPI and kept apart per tenant."""

from __future__ import annotations

from typing import Any

import httpx

from .conftest import ALICE_TOKEN, Server, created, make_tenant, names

Obj = dict[str, Any]

NETWORKS = "/apis/arktos.futurewei.com/v1/networks"


def net(name: str, **spec: Any) -> Obj:
    return {
        "apiVersion": "arktos.futurewei.com/v1",
        "kind": "Network",
        "metadata": {"name": name},
        "spec": spec,
    }


async def test_networks_are_tenant_scoped_and_discoverable(
    server: Server, admin: httpx.AsyncClient
) -> None:
    resources = (await admin.get("/apis/arktos.futurewei.com/v1")).json()["resources"]
    found = next(r for r in resources if r["name"] == "networks")
    assert found["kind"] == "Network"
    assert found["namespaced"] is False
    assert set(found["shortNames"]) == {"ne", "net"}
    assert "networks/status" in {r["name"] for r in resources}

    await make_tenant(admin, "t1")
    obj = await created(
        admin,
        "/apis/arktos.futurewei.com/v1/tenants/t1/networks",
        net("m", type="mizar", vpcID="vpc0", service={"ipam": "External"}),
    )
    assert obj["metadata"]["tenant"] == "t1"
    async with server.client(ALICE_TOKEN) as alice:
        assert await names(alice, NETWORKS) == ["m"]
    assert await names(admin, NETWORKS) == []


async def test_networks_are_validated(admin: httpx.AsyncClient) -> None:
    bad = await admin.post(
        NETWORKS,
        json=net("bad", type="bridge", service={"ipam": "DHCP", "cidrs": ["10.0.0.1/24"]}),
    )
    assert bad.status_code == 422, bad.text
    causes = {c["field"]: c["reason"] for c in bad.json()["details"]["causes"]}
    assert causes == {
        "spec.type": "FieldValueNotSupported",
        "spec.service.ipam": "FieldValueNotSupported",
        "spec.service.cidrs[0]": "FieldValueInvalid",
    }
    no_vpc = await admin.post(NETWORKS, json=net("v", type="vpc"))
    assert no_vpc.status_code == 422
    assert no_vpc.json()["details"]["causes"][0]["field"] == "spec.vpcID"

    await created(admin, NETWORKS, net("n", type="flat", service={"cidrs": ["10.96.0.0/16"]}))
    current = (await admin.get(f"{NETWORKS}/n")).json()
    current["spec"]["type"] = "mizar"
    changed = await admin.put(f"{NETWORKS}/n", json=current)
    assert changed.status_code == 422
    assert "immutable" in changed.text


async def test_status_is_written_through_its_subresource(admin: httpx.AsyncClient) -> None:
    obj = await created(admin, NETWORKS, net("n", type="flat"))
    obj["status"] = {"phase": "Ready", "dnsServiceIP": "10.0.0.10"}
    ignored = await admin.put(f"{NETWORKS}/n", json=obj)
    assert ignored.status_code == 200
    assert not ignored.json().get("status")
    obj = ignored.json()
    obj["status"] = {"phase": "Ready", "dnsServiceIP": "10.0.0.10"}
    written = await admin.put(f"{NETWORKS}/n/status", json=obj)
    assert written.status_code == 200, written.text
    assert written.json()["status"]["phase"] == "Ready"
    obj = written.json()
    obj["status"]["phase"] = "Done"
    refused = await admin.put(f"{NETWORKS}/n/status", json=obj)
    assert refused.status_code == 422


async def test_openapi_describes_networks_and_strict_writes_refuse_unknown_fields(
    admin: httpx.AsyncClient,
) -> None:
    document = (await admin.get("/openapi/v3/apis/arktos.futurewei.com/v1")).json()
    schemas = document["components"]["schemas"]
    network = schemas["io.k8s.arktos-ext.pkg.apis.arktosextensions.v1.Network"]
    assert network["x-kubernetes-group-version-kind"] == [
        {"group": "arktos.futurewei.com", "kind": "Network", "version": "v1"}
    ]
    spec = schemas["io.k8s.arktos-ext.pkg.apis.arktosextensions.v1.NetworkSpec"]
    assert {"type", "vpcID", "service"} <= set(spec["properties"])
    strict = await admin.post(
        NETWORKS,
        params={"fieldValidation": "Strict"},
        json=net("s", type="flat", colour="red"),
    )
    assert strict.status_code == 400, strict.text
    assert "colour" in strict.text
