"""Service cluster IPs over HTTP: allocated from the service network, unique, kept on
update, released on delete; a requested IP is honoured once."""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
import trio

from arktos_lite import apiserver, storage

from .conftest import ADMIN_TOKEN, Server, authenticator, created

SERVICES = "/api/v1/namespaces/default/services"
NETWORK = ipaddress.ip_network("10.96.0.0/16")


def service(name: str, *, cluster_ip: str | None = None, port: int = 80) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"app": name}, "ports": [{"port": port}]}
    if cluster_ip is not None:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


async def test_cluster_ips_are_allocated_and_unique(admin: httpx.AsyncClient) -> None:
    addresses = []
    for i in range(10):
        body = await created(admin, SERVICES, service(f"s{i}"))
        spec = body["spec"]
        assert ipaddress.ip_address(spec["clusterIP"]) in NETWORK
        assert spec["clusterIPs"] == [spec["clusterIP"]]
        assert spec["type"] == "ClusterIP"
        addresses.append(spec["clusterIP"])
    assert len(set(addresses)) == 10


async def test_a_requested_ip_is_taken_once(admin: httpx.AsyncClient) -> None:
    body = await created(admin, SERVICES, service("a", cluster_ip="10.96.1.1"))
    assert body["spec"]["clusterIP"] == "10.96.1.1"
    refused = await admin.post(SERVICES, json=service("b", cluster_ip="10.96.1.1"))
    assert refused.status_code == 422
    status = refused.json()
    assert status["reason"] == "Invalid"
    assert status["message"] == (
        'Service "b" is invalid: spec.clusterIPs: Invalid value: ["10.96.1.1"]: failed to '
        "allocate IP 10.96.1.1: provided IP is already allocated"
    )
    assert (await admin.get(f"{SERVICES}/b")).status_code == 404
    outside = await admin.post(SERVICES, json=service("c", cluster_ip="192.168.0.1"))
    assert outside.status_code == 422
    assert "is not in the valid range" in outside.json()["message"]


async def test_a_deleted_services_ip_is_released(admin: httpx.AsyncClient) -> None:
    await created(admin, SERVICES, service("a", cluster_ip="10.96.2.2"))
    assert (await admin.delete(f"{SERVICES}/a")).status_code == 200
    again = await created(admin, SERVICES, service("b", cluster_ip="10.96.2.2"))
    assert again["spec"]["clusterIP"] == "10.96.2.2"
    await admin.delete(SERVICES)
    assert (await created(admin, SERVICES, service("c", cluster_ip="10.96.2.2")))["spec"][
        "clusterIP"
    ] == "10.96.2.2"


async def test_failed_creates_keep_no_ip(admin: httpx.AsyncClient) -> None:
    invalid = await admin.post(SERVICES, json=service("a", cluster_ip="10.96.3.3", port=70000))
    assert invalid.status_code == 422
    assert invalid.json()["details"]["causes"][0]["field"] == "spec.ports[0].port"
    await created(admin, SERVICES, service("taken"))
    duplicate = await admin.post(SERVICES, json=service("taken", cluster_ip="10.96.3.4"))
    assert duplicate.status_code == 409
    dry = await admin.post(
        SERVICES, json=service("dry", cluster_ip="10.96.3.5"), params={"dryRun": "All"}
    )
    assert dry.status_code == 201
    for name, address in (("b", "10.96.3.3"), ("c", "10.96.3.4"), ("d", "10.96.3.5")):
        body = await created(admin, SERVICES, service(name, cluster_ip=address))
        assert body["spec"]["clusterIP"] == address


async def test_the_ip_survives_updates(admin: httpx.AsyncClient) -> None:
    body = await created(admin, SERVICES, service("a"))
    address = body["spec"]["clusterIP"]
    # A replace without the allocated fields (kubectl replace of the original file).
    replaced = service("a", port=8080)
    replaced["metadata"]["resourceVersion"] = body["metadata"]["resourceVersion"]
    updated = await admin.put(f"{SERVICES}/a", json=replaced)
    assert updated.status_code == 200, updated.text
    assert updated.json()["spec"]["clusterIP"] == address
    assert updated.json()["spec"]["ports"][0]["port"] == 8080
    moved = updated.json()
    moved["spec"]["clusterIP"] = "10.96.9.9"
    moved["spec"]["clusterIPs"] = ["10.96.9.9"]
    refused = await admin.put(f"{SERVICES}/a", json=moved)
    assert refused.status_code == 422
    assert (await admin.get(f"{SERVICES}/a")).json()["spec"]["clusterIP"] == address


async def test_headless_and_external_name_services_get_no_ip(admin: httpx.AsyncClient) -> None:
    headless = await created(admin, SERVICES, service("h", cluster_ip="None"))
    assert headless["spec"]["clusterIP"] == "None"
    external = await created(
        admin,
        SERVICES,
        {
            "metadata": {"name": "e"},
            "spec": {"type": "ExternalName", "externalName": "example.com"},
        },
    )
    assert "clusterIP" not in external["spec"]


async def test_the_api_server_publishes_itself_as_the_kubernetes_service(
    server: Server, admin: httpx.AsyncClient
) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    spec = (await admin.get(f"{SERVICES}/kubernetes")).json()["spec"]
    assert spec["clusterIP"] == "10.96.0.1"
    assert spec["ports"] == [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]
    endpoints = (await admin.get("/api/v1/namespaces/default/endpoints/kubernetes")).json()
    assert endpoints["subsets"] == [
        {
            "addresses": [{"ip": "127.0.0.1"}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }
    ]
    taken = await admin.post(SERVICES, json=service("mine", cluster_ip="10.96.0.1"))
    assert taken.status_code == 422


async def test_a_restarted_server_keeps_its_service_and_moves_its_endpoints() -> None:
    async with storage.open_store("sqlite://") as backend:
        for _start in range(2):
            async with trio.open_nursery() as nursery:
                api = apiserver.APIServer(
                    backend,
                    authenticator=authenticator(),
                    options=apiserver.ServeOptions(port=0, graceful_timeout=1.0),
                )
                bound = await nursery.start(api.run)
                async with httpx.AsyncClient(
                    base_url=bound.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
                ) as admin:
                    spec = (await admin.get(f"{SERVICES}/kubernetes")).json()["spec"]
                    assert spec["clusterIP"] == "10.96.0.1"
                    assert spec["ports"][0]["targetPort"] == bound.port
                    subsets = (
                        await admin.get("/api/v1/namespaces/default/endpoints/kubernetes")
                    ).json()["subsets"]
                    assert subsets[0]["ports"][0]["port"] == bound.port
                api.stop()
