"""The pure parts of pod networking: names, slices, CNI configs, rules, service ports."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from arktos_lite import network
from arktos_lite.network import _nft as nft


@given(st.text(min_size=1), st.text(min_size=1), st.text(min_size=1))
def test_bridge_names_fit_linux_and_are_stable(node: str, tenant: str, net: str) -> None:
    key = network.NetworkKey(tenant, net)
    name = network.bridge_name(node, key)
    assert len(name) <= 15
    assert name.startswith(network.BRIDGE_PREFIX)
    assert name.isascii()
    assert name == network.bridge_name(node, network.NetworkKey(tenant, net))


def test_bridge_names_differ_per_tenant_network_and_node() -> None:
    names = {
        network.bridge_name(node, network.NetworkKey(tenant, net))
        for node in ("n1", "n2")
        for tenant in ("a", "b")
        for net in ("default", "blue")
    }
    assert len(names) == 8


def test_a_pods_network_is_its_tenants_and_label_picks_one() -> None:
    pod = {"metadata": {"tenant": "acme", "labels": {}}}
    assert network.network_of(pod) == network.NetworkKey("acme", "default")
    pod["metadata"]["labels"] = {network.NETWORK_LABEL: "blue"}
    assert network.network_of(pod) == network.NetworkKey("acme", "blue")
    assert network.network_of({"metadata": {}}) == network.NetworkKey("system", "default")


def test_slices_cover_the_pod_cidr_without_overlap() -> None:
    slices = list(network.subnet_slices("10.244.3.0/24", 27))
    assert slices[0] == "10.244.3.0/27"
    assert len(slices) == 8
    nets = [ipaddress.ip_network(s) for s in slices]
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    # A pod CIDR smaller than a slice is one slice; slices never go below /30.
    assert list(network.subnet_slices("10.0.0.0/28", 27)) == ["10.0.0.0/28"]
    assert network.slice_prefix("10.0.0.0/24", 32) == 30


def test_bridge_config_is_cni_bridge_with_host_local(tmp_path: Path) -> None:
    bridge = network.Bridge("arktos12345678", network.NetworkKey("a"), "10.244.0.32/27")
    config = network.bridge_config(bridge, ipam_dir=tmp_path)
    assert config["cniVersion"] == network.CNI_VERSION == "1.0.0"
    assert config["type"] == "bridge"
    assert config["bridge"] == config["name"] == "arktos12345678"
    assert config["isGateway"] is True
    assert config["ipMasq"] is False
    assert config["ipam"] == {
        "type": "host-local",
        "ranges": [[{"subnet": "10.244.0.32/27", "gateway": "10.244.0.33"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": str(tmp_path),
    }
    json.dumps(config)


def test_ipam_config_is_host_local_alone_over_the_bridges_pool(tmp_path: Path) -> None:
    bridge = network.Bridge("arktos12345678", network.NetworkKey("a"), "10.244.0.32/27")
    config = network.ipam_config(bridge, ipam_dir=tmp_path)
    full = network.bridge_config(bridge, ipam_dir=tmp_path)
    assert config["type"] == config["ipam"]["type"] == "host-local"
    # The same name and IPAM: host-local's reservations (dataDir/name/ip) are one pool.
    assert (config["name"], config["ipam"]) == (full["name"], full["ipam"])
    assert config["cniVersion"] == network.CNI_VERSION


@given(st.ip_addresses(v=4))
def test_a_guests_mac_is_locally_administered_unicast_and_follows_its_address(
    ip: ipaddress.IPv4Address,
) -> None:
    mac = network.guest_mac(str(ip))
    octets = [int(o, 16) for o in mac.split(":")]
    assert len(octets) == 6
    assert octets[0] & 0b10
    assert not octets[0] & 0b01
    assert bytes(octets[2:]) == ip.packed
    assert network.guest_mac("10.160.0.5") == "0a:58:0a:a0:00:05"


def test_a_guest_attachment_round_trips_and_knows_its_prefix_and_gateway() -> None:
    guest = network.Attachment(
        "u1",
        network.NetworkKey("t", "blue"),
        "",
        ("10.160.0.5",),
        "arktos12345678",
        mac="0a:58:0a:a0:00:05",
        subnet="10.160.0.0/27",
    )
    assert guest.guest
    assert (guest.address, guest.gateway) == ("10.160.0.5/27", "10.160.0.1")
    assert network.Attachment.from_json(json.loads(json.dumps(guest.to_json()))) == guest
    # A state file written before guests existed still reads.
    old = {"uid": "u2", "tenant": "t", "network": "default", "netns": "/run/netns/x",
           "ips": ["10.0.0.2"], "bridge": "b"}  # fmt: skip
    pod = network.Attachment.from_json(old)
    assert not pod.guest
    assert (pod.mac, pod.subnet, pod.address, pod.gateway) == ("", "", "", "")


def test_result_ips_strip_the_prefix() -> None:
    result = {"ips": [{"interface": 2, "address": "10.244.0.34/27", "gateway": "10.244.0.33"}]}
    assert network.result_ips(result) == ("10.244.0.34",)
    assert network.result_ips({}) == ()


def test_a_failing_plugin_reports_its_own_message(tmp_path: Path) -> None:
    plugin = tmp_path / "bridge"
    plugin.write_text(
        "#!/bin/sh\ncat > /dev/null\n"
        'echo \'{"cniVersion":"1.0.0","code":11,"msg":"no luck","details":"at all"}\'\n'
        "exit 1\n"
    )
    plugin.chmod(0o755)
    bridge = network.Bridge("arktos00000000", network.NetworkKey("a"), "10.0.0.0/27")
    config = network.bridge_config(bridge, ipam_dir=tmp_path)
    with pytest.raises(network.CNIError, match=r"^bridge ADD: no luck: at all \(code 11\)$"):
        network.invoke("ADD", config, cni_path=str(tmp_path), container_id="c", netns="/x")


def test_a_plugin_gets_the_cni_environment_and_config(tmp_path: Path) -> None:
    plugin = tmp_path / "bridge"
    plugin.write_text(
        "#!/bin/sh\n"
        f"cat > {tmp_path}/stdin\n"
        f"env > {tmp_path}/env\n"
        'echo \'{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/27"}]}\'\n'
    )
    plugin.chmod(0o755)
    bridge = network.Bridge("arktos00000000", network.NetworkKey("a"), "10.0.0.0/27")
    config = network.bridge_config(bridge, ipam_dir=tmp_path)
    result = network.invoke(
        "ADD", config, cni_path=str(tmp_path), container_id="uid-1", netns="/run/netns/p"
    )
    assert network.result_ips(result) == ("10.0.0.2",)
    assert json.loads((tmp_path / "stdin").read_text()) == config
    env = dict(
        line.split("=", 1) for line in (tmp_path / "env").read_text().splitlines() if "=" in line
    )
    assert env["CNI_COMMAND"] == "ADD"
    assert env["CNI_CONTAINERID"] == "uid-1"
    assert env["CNI_NETNS"] == "/run/netns/p"
    assert env["CNI_IFNAME"] == "eth0"
    assert env["CNI_PATH"] == str(tmp_path)


A = network.Bridge("arktosaaaaaaaa", network.NetworkKey("alpha"), "10.244.0.0/27")
A2 = network.Bridge("arktosa2a2a2a2", network.NetworkKey("alpha", "blue"), "10.244.0.64/27")
B = network.Bridge("arktosbbbbbbbb", network.NetworkKey("beta"), "10.244.0.32/27")


def test_rules_keep_bridges_apart() -> None:
    table = network.ruleset("n1", [A, B], [])
    assert table.startswith(f"table inet {network.table_name('n1')} {{")
    assert 'iifname "arktosaaaaaaaa" oifname "arktos*" oifname != "arktosaaaaaaaa" drop' in table
    assert 'iifname "arktosbbbbbbbb" oifname "arktos*" oifname != "arktosbbbbbbbb" drop' in table
    assert 'iifname "arktos*" ip daddr @clusterips drop' in table
    assert 'ip saddr 10.244.0.0/27 oifname != "arktos*" oifname != "lo" masquerade' in table


def test_a_service_is_translated_for_its_tenants_bridges_and_the_node_only() -> None:
    one = network.ServicePort(
        "alpha", "10.96.0.10", "tcp", 80, (network.Endpoint("10.244.0.2", 8080),)
    )
    table = network.ruleset("n1", [A, A2, B], [one])
    rule = "ip daddr 10.96.0.10 tcp dport 80 dnat ip to 10.244.0.2:8080"
    prerouting = table.split("chain prerouting")[1].split("}\n")[0]
    output = table.split("chain output")[1].split("}\n")[0]
    assert f'iifname {{ "arktosa2a2a2a2", "arktosaaaaaaaa" }} {rule}' in prerouting
    assert "arktosbbbbbbbb" not in prerouting
    assert f"    {rule}" in output
    assert "elements = { 10.96.0.10 }" in table


def test_several_endpoints_are_picked_at_random_and_none_means_no_translation() -> None:
    two = network.ServicePort(
        "alpha",
        "10.96.0.11",
        "udp",
        53,
        (network.Endpoint("10.244.0.2", 5353), network.Endpoint("10.244.0.3", 5353)),
    )
    empty = network.ServicePort("alpha", "10.96.0.12", "tcp", 80, ())
    table = network.ruleset("n1", [A], [two, empty])
    assert (
        "udp dport 53 dnat ip to numgen random mod 2 map "
        "{ 0 : 10.244.0.2 . 5353, 1 : 10.244.0.3 . 5353 }"
    ) in table
    assert "10.96.0.12 tcp" not in table
    # Still dropped from pods: a ClusterIP without endpoints reaches nothing.
    assert "elements = { 10.96.0.11, 10.96.0.12 }" in table


def test_the_table_is_replaced_atomically() -> None:
    script = network.apply_script("n1", "table inet x {}\n")
    name = network.table_name("n1")
    assert script == f"add table inet {name}\ndelete table inet {name}\ntable inet x {{}}\n"
    assert nft.delete_script("n1") == f"add table inet {name}\ndelete table inet {name}\n"


def _svc(tenant: str, ports: list[dict[str, object]], ip: str = "10.96.0.10") -> dict:
    return {
        "metadata": {"tenant": tenant, "namespace": "default", "name": "web"},
        "spec": {"clusterIP": ip, "ports": ports},
    }


def _eps(tenant: str, subsets: list[dict[str, object]]) -> dict:
    return {
        "metadata": {"tenant": tenant, "namespace": "default", "name": "web"},
        "subsets": subsets,
    }


def test_service_ports_pair_services_with_their_tenants_endpoints() -> None:
    services = [
        _svc(
            "alpha", [{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]
        ),
        _svc("beta", [{"port": 80}], ip="10.96.0.20"),
        _svc("gamma", [{"port": 80}], ip="None"),
    ]
    endpoints = [
        _eps(
            "alpha",
            [
                {
                    "addresses": [{"ip": "10.244.0.3"}, {"ip": "10.244.0.2"}],
                    "ports": [
                        {"name": "http", "port": 8080, "protocol": "TCP"},
                        {"name": "dns", "port": 5353, "protocol": "UDP"},
                    ],
                }
            ],
        ),
        _eps("beta", [{"addresses": [{"ip": "10.244.0.40"}], "ports": [{"port": 9000}]}]),
    ]
    ports = network.service_ports(services, endpoints)
    assert ports == [
        network.ServicePort(
            "alpha",
            "10.96.0.10",
            "tcp",
            80,
            (network.Endpoint("10.244.0.2", 8080), network.Endpoint("10.244.0.3", 8080)),
        ),
        network.ServicePort(
            "alpha",
            "10.96.0.10",
            "udp",
            53,
            (network.Endpoint("10.244.0.2", 5353), network.Endpoint("10.244.0.3", 5353)),
        ),
        network.ServicePort(
            "beta", "10.96.0.20", "tcp", 80, (network.Endpoint("10.244.0.40", 9000),)
        ),
    ]


def test_a_service_without_endpoints_has_a_port_with_none() -> None:
    ports = network.service_ports([_svc("alpha", [{"port": 80}])], [])
    assert ports == [network.ServicePort("alpha", "10.96.0.10", "tcp", 80, ())]
