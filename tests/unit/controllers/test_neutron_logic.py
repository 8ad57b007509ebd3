"""The Neutron controller's pure parts: port requests, NIC/port matching, what is written
back into the pod, its NIC statuses and condition, which ports are orphans; its
configuration; and Keystone password auth as a client sees it."""

from __future__ import annotations

import datetime
import json
import pathlib
from typing import Any

import httpx
import pytest

from arktos_lite.controllers import _neutron as neutron

Obj = dict[str, Any]
UID = "6d2c0c4e-0000-4000-8000-000000000001"
NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


def pod(nics: list[Obj], *, node: str | None = None, **meta: Any) -> Obj:
    spec: Obj = {"virtualMachine": {"name": "vm"}, "nics": nics, "vpc": "vpc-1"}
    if node:
        spec["nodeName"] = node
    return {
        "metadata": {"name": "p", "namespace": "ns", "tenant": "t1", "uid": UID, **meta},
        "spec": spec,
    }


def port(nic: str, *, id_: str | None = None, host: str = "", vif: str = "unbound") -> Obj:
    return {
        "id": id_ or f"port-{nic}",
        "name": f"arktos-{UID}-{nic}",
        "device_id": UID,
        "device_owner": neutron.DEVICE_OWNER,
        "mac_address": "fa:16:3e:00:00:01",
        "fixed_ips": [{"subnet_id": "s", "ip_address": "10.0.0.7"}],
        "binding:host_id": host,
        "binding:vif_type": vif,
    }


def test_a_port_request_names_the_pod_and_carries_the_fixed_ip_node_and_project() -> None:
    body = neutron.port_request(
        pod([{"name": "eth0", "ipAddress": "10.0.0.9"}], node="n1"),
        {"name": "eth0", "ipAddress": "10.0.0.9"},
        network_id="net",
        subnet_id="sub",
        project_id="proj",
    )
    assert body == {
        "port": {
            "name": f"arktos-{UID}-eth0",
            "network_id": "net",
            "device_id": UID,
            "device_owner": "compute:arktos",
            "description": "arktos pod t1/ns/p nic eth0",
            "fixed_ips": [{"subnet_id": "sub", "ip_address": "10.0.0.9"}],
            "binding:host_id": "n1",
            "project_id": "proj",
        }
    }
    bare = neutron.port_request(
        pod([{"name": "eth0"}]), {"name": "eth0"}, network_id="net", subnet_id=None, project_id=None
    )["port"]
    assert "fixed_ips" not in bare
    assert "binding:host_id" not in bare
    assert "project_id" not in bare


def test_only_vm_pods_with_nics_want_ports() -> None:
    assert neutron.wants_ports(pod([{"name": "eth0"}]))
    assert not neutron.wants_ports(pod([]))
    container_pod = pod([{"name": "eth0"}])
    del container_pod["spec"]["virtualMachine"]
    assert not neutron.wants_ports(container_pod)


def test_nics_match_their_own_port_or_the_one_made_for_them() -> None:
    the_pod = pod([{"name": "eth0"}, {"name": "eth1", "portId": "given"}, {"name": "eth2"}])
    ports = [port("eth0"), port("x", id_="given"), port("eth1", id_="stray")]
    matched = neutron.match_ports(the_pod, ports)
    assert {k: v["id"] for k, v in matched.items()} == {"eth0": "port-eth0", "eth1": "given"}


def test_port_ids_and_addresses_are_written_back_without_touching_given_ones() -> None:
    the_pod = pod([{"name": "eth0"}, {"name": "eth1", "ipAddress": "10.0.0.50"}])
    nics = neutron.written_back(the_pod, {"eth0": port("eth0"), "eth1": port("eth1")})
    assert nics == [
        {"name": "eth0", "portId": "port-eth0", "ipAddress": "10.0.0.7"},
        {"name": "eth1", "portId": "port-eth1", "ipAddress": "10.0.0.50"},
    ]


def test_nic_statuses_and_the_condition_follow_the_binding() -> None:
    unscheduled = pod([{"name": "eth0"}, {"name": "eth1"}])
    statuses = neutron.nic_statuses(unscheduled, {"eth0": port("eth0")})
    assert [(s["name"], s["state"], s["reason"]) for s in statuses] == [
        ("eth0", "Pending", neutron.WAITING_FOR_NODE),
        ("eth1", "Pending", "NoPort"),
    ]
    assert statuses[0]["macAddress"] == "fa:16:3e:00:00:01"
    assert neutron.network_condition(statuses)[:2] == (False, neutron.WAITING_FOR_NODE)

    placed = pod([{"name": "eth0"}, {"name": "eth1"}], node="n1")
    ports = {"eth0": port("eth0", host="n1", vif="ovs"), "eth1": port("eth1", host="n1", vif="ovs")}
    statuses = neutron.nic_statuses(placed, ports)
    assert {s["state"] for s in statuses} == {"Ready"}
    assert neutron.network_condition(statuses) == (True, "PortsReady", "2 Neutron ports bound")

    ports["eth1"] = port("eth1", host="n1", vif="binding_failed")
    ready, reason, message = neutron.network_condition(neutron.nic_statuses(placed, ports))
    assert (ready, reason) == (False, neutron.BINDING_FAILED)
    assert "eth1" in message


def test_the_condition_is_written_only_when_it_changes() -> None:
    first = neutron.with_condition(
        [{"type": "Ready", "status": "False"}], ready=False, reason="R", message="m", now="t0"
    )
    assert first is not None
    assert first[1] == {
        "type": "NetworkReady",
        "status": "False",
        "reason": "R",
        "message": "m",
        "lastProbeTime": None,
        "lastTransitionTime": "t0",
    }
    assert neutron.with_condition(first, ready=False, reason="R", message="m", now="t1") is None
    other = neutron.with_condition(first, ready=False, reason="S", message="m", now="t1")
    assert other is not None
    assert other[1]["lastTransitionTime"] == "t0"
    flipped = neutron.with_condition(first, ready=True, reason="OK", message="m", now="t2")
    assert flipped is not None
    assert flipped[1]["lastTransitionTime"] == "t2"
    assert flipped[0] == {"type": "Ready", "status": "False"}


def test_a_deleted_pod_releases_its_ports_once_it_no_longer_runs() -> None:
    assert neutron.releasable(pod([], deletionTimestamp="x"))
    running = pod([], node="n1", deletionTimestamp="x", deletionGracePeriodSeconds=30)
    assert not neutron.releasable(running)
    running["metadata"]["deletionGracePeriodSeconds"] = 0
    assert neutron.releasable(running)


def test_overdue_counts_from_the_deletion_deadline() -> None:
    the_pod = pod([], deletionTimestamp="2026-01-01T11:55:00Z")
    assert neutron.overdue(the_pod, now=NOW, timeout=300)
    assert not neutron.overdue(the_pod, now=NOW, timeout=301)
    assert not neutron.overdue(pod([]), now=NOW, timeout=0)


def test_orphans_are_old_ports_of_ours_whose_pod_is_gone() -> None:
    old = "2026-01-01T11:00:00Z"
    ports = [
        {**port("a", id_="live"), "created_at": old},
        {**port("b", id_="orphan"), "device_id": "gone", "created_at": old},
        {**port("c", id_="young"), "device_id": "gone", "created_at": "2026-01-01T11:59:50Z"},
        {**port("d", id_="foreign"), "device_id": "gone", "device_owner": "compute:nova"},
    ]
    assert neutron.orphans(ports, {UID}, now=NOW, grace=60) == ["orphan"]


def test_config_needs_what_its_auth_needs(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="project id"):
        neutron.NeutronConfig(url="http://n").check()
    with pytest.raises(ValueError, match="keystone URL, user name, password"):
        neutron.NeutronConfig(auth=neutron.Auth.PASSWORD, project_name="p").check()
    path = tmp_path / "neutron.yaml"
    path.write_text(
        "auth: password\n"
        "keystone: {url: 'http://k:5000/v3', username: u, password: pw, projectName: p}\n"
    )
    config = neutron.NeutronConfig.from_file(path, url="http://n:9696", username="")
    assert config.auth is neutron.Auth.PASSWORD
    assert (config.url, config.keystone_url, config.username) == (
        "http://n:9696",
        "http://k:5000/v3",
        "u",
    )
    assert config.user_domain == "Default"
    config.check()
    path.write_text("auth: kerberos\n")
    with pytest.raises(ValueError, match="noauth or password"):
        neutron.NeutronConfig.from_file(path)


async def test_password_auth_takes_a_token_and_the_catalogs_endpoint() -> None:
    seen: list[tuple[str, str, str | None]] = []
    tokens = iter(["tok-1", "tok-2"])
    expired = {"tok-1"}

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, str(request.url), request.headers.get("X-Auth-Token")))
        if request.url.path == "/v3/auth/tokens":
            body = json.loads(request.content)
            assert body == neutron.keystone_request(config)
            catalog = [
                {
                    "type": "network",
                    "endpoints": [
                        {"interface": "internal", "url": "http://internal:9696"},
                        {"interface": "public", "url": "http://neutron:9696/"},
                    ],
                }
            ]
            token = {"expires_at": "2999-01-01T00:00:00.000000Z", "catalog": catalog}
            return httpx.Response(
                201, json={"token": token}, headers={"X-Subject-Token": next(tokens)}
            )
        if request.headers.get("X-Auth-Token") in expired:
            expired.clear()
            return httpx.Response(401, json={"error": "expired"})
        return httpx.Response(200, json={"networks": [{"id": "n1", "name": "vpc-1"}]})

    config = neutron.NeutronConfig(
        auth=neutron.Auth.PASSWORD,
        keystone_url="http://keystone:5000",
        username="u",
        password="pw",
        project_name="p",
    )
    api = neutron.NeutronClient(config, transport=httpx.MockTransport(handle))
    try:
        network = await api.network("vpc-1")
    finally:
        await api.aclose()
    assert network["id"] == "n1"
    assert api.project_id is None
    assert seen == [
        ("POST", "http://keystone:5000/v3/auth/tokens", None),
        ("GET", "http://neutron:9696/v2.0/networks?name=vpc-1", "tok-1"),
        ("POST", "http://keystone:5000/v3/auth/tokens", None),
        ("GET", "http://neutron:9696/v2.0/networks?name=vpc-1", "tok-2"),
    ]


async def test_neutron_errors_carry_their_reason() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/subnets"):
            return httpx.Response(200, json={"subnets": []})
        if request.method == "DELETE":
            return httpx.Response(404, json={"NeutronError": {"message": "Port x not found"}})
        return httpx.Response(
            503, json={"NeutronError": {"message": "busy", "type": "ServiceUnavailable"}}
        )

    config = neutron.NeutronConfig(url="http://neutron:9696", project_id="proj")
    api = neutron.NeutronClient(config, transport=httpx.MockTransport(handle))
    try:
        with pytest.raises(neutron.NeutronError, match="503 busy") as unavailable:
            await api.find("networks")
        assert unavailable.value.reason == neutron.NEUTRON_UNAVAILABLE
        with pytest.raises(neutron.NeutronError, match="no subnet 'sub'") as missing:
            await api.subnet("net", "sub")
        assert missing.value.reason == neutron.SUBNET_NOT_FOUND
        await api.delete_port("x")  # already gone: fine
    finally:
        await api.aclose()


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (401, neutron.AUTHENTICATION_FAILED),
        (403, neutron.AUTHENTICATION_FAILED),
        (503, neutron.NEUTRON_UNAVAILABLE),
        (400, neutron.NEUTRON_ERROR),
    ],
)
async def test_keystone_refusals_carry_their_reason_and_never_the_password(
    status: int, reason: str
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"code": status, "message": "no way"}})

    config = neutron.NeutronConfig(
        url="http://neutron:9696",
        auth=neutron.Auth.PASSWORD,
        keystone_url="http://keystone:5000/v3",
        username="u",
        password="pw-secret",
        project_name="p",
    )
    api = neutron.NeutronClient(config, transport=httpx.MockTransport(handle))
    try:
        with pytest.raises(neutron.NeutronError, match=f"{status}.*no way") as refused:
            await api.find("networks")
    finally:
        await api.aclose()
    assert refused.value.reason == reason
    assert "pw-secret" not in str(refused.value)


def test_a_config_written_as_yaml_reads_back(tmp_path: pathlib.Path) -> None:
    config = neutron.NeutronConfig(
        auth=neutron.Auth.PASSWORD,
        keystone_url="http://keystone:5000/v3",
        username="u",
        password="p: w#'\"",
        project_name="p",
        user_domain="ud",
        project_domain="pd",
    )
    path = tmp_path / "neutron.yaml"
    path.write_text(config.to_yaml())
    assert neutron.NeutronConfig.from_file(path) == config
