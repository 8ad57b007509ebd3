"""What pod networking is made of, as plain values: pods' networks, bridges, services.

Pure functions only (no system calls), so that naming, address slicing, CNI configs and
packet-filter rules can be checked without root.

* A pod belongs to the network `(tenant, network)`: its tenant, and the value of its label
  `arktos.futurewei.com/network` ("default" without it).
* Each network on a node has a bridge of its own, named `arktos` + 8 hex digits of a hash
  of the node's identity (its name and state directory), tenant and network
  (14 characters: Linux allows 15), and a slice of the node's pod CIDR (`subnet_slices`).
* A VM pod's guest NIC has a MAC address derived from its address (`guest_mac`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

NETWORK_LABEL = "arktos.futurewei.com/network"
DEFAULT_NETWORK = "default"
BRIDGE_PREFIX = "arktos"
IFNAME = "eth0"


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class NetworkKey:
    """A tenant's network: pods of one key reach each other, no other pod reaches them."""

    tenant: str
    network: str = DEFAULT_NETWORK

    def __str__(self) -> str:
        return f"{self.tenant}/{self.network}"


def network_of(pod: Mapping[str, Any]) -> NetworkKey:
    """The network a pod asks for (its tenant's; the label picks one of the tenant's)."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    return NetworkKey(
        str(meta.get("tenant") or "system"), str(labels.get(NETWORK_LABEL) or DEFAULT_NETWORK)
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    """A pod to attach: its uid (the CNI container id) and names for the plugins' logs."""

    uid: str
    key: NetworkKey
    namespace: str = ""
    name: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Attachment:
    """A pod attached: the network namespace its containers run in, and its addresses.

    A VM pod's (`guest`) has no namespace: its guest's NIC, with MAC address `mac`, is
    plugged into `bridge` by the VM runtime; `subnet` is the bridge's (the guest's prefix
    length and gateway)."""

    uid: str
    key: NetworkKey
    netns: str
    ips: tuple[str, ...]
    bridge: str
    mac: str = ""
    subnet: str = ""

    @property
    def guest(self) -> bool:
        return not self.netns

    @property
    def gateway(self) -> str:
        return str(next(ipaddress.ip_network(self.subnet).hosts())) if self.subnet else ""

    @property
    def address(self) -> str:
        """The first address with the subnet's prefix length (`10.1.2.5/27`)."""
        if not self.ips or not self.subnet:
            return ""
        return f"{self.ips[0]}/{ipaddress.ip_network(self.subnet).prefixlen}"

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "tenant": self.key.tenant,
            "network": self.key.network,
            "netns": self.netns,
            "ips": list(self.ips),
            "bridge": self.bridge,
            "mac": self.mac,
            "subnet": self.subnet,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Attachment:
        return cls(
            uid=str(data["uid"]),
            key=NetworkKey(str(data["tenant"]), str(data["network"])),
            netns=str(data["netns"]),
            ips=tuple(str(ip) for ip in data.get("ips") or ()),
            bridge=str(data["bridge"]),
            mac=str(data.get("mac") or ""),
            subnet=str(data.get("subnet") or ""),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Bridge:
    """One network's bridge on this node and its subnet (the gateway is its first host)."""

    name: str
    key: NetworkKey
    subnet: str

    @property
    def gateway(self) -> str:
        return str(next(ipaddress.ip_network(self.subnet).hosts()))


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    ip: str
    port: int


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class ServicePort:
    """One port of a Service's ClusterIP and the ready endpoints behind it."""

    tenant: str
    cluster_ip: str
    protocol: str  # "tcp" | "udp"
    port: int
    endpoints: tuple[Endpoint, ...]


def short_hash(*parts: str, digits: int = 8) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:digits]


def bridge_name(identity: str, key: NetworkKey) -> str:
    """The bridge of `key` on the node `identity`: stable, at most 15 characters."""
    return BRIDGE_PREFIX + short_hash(identity, key.tenant, key.network)


def guest_mac(ip: str) -> str:
    """The MAC address of a VM pod's NIC with IPv4 address `ip`: `0a:58:` and the
    address's four bytes, as the CNI bridge plugin gave container interfaces. Locally
    administered and unicast; unique on a bridge since the address is, and the same for
    the same address (neighbours' ARP entries stay right when an address is reused)."""
    return "0a:58:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


def netns_name(uid: str) -> str:
    """The `ip netns` name of a pod's network namespace."""
    return f"arktos-{uid}"


def slice_prefix(pod_cidr: str, wanted: int) -> int:
    """The prefix length of the slices: `wanted`, within [the CIDR's prefix, /30]."""
    net = ipaddress.ip_network(pod_cidr)
    return max(net.prefixlen, min(wanted, net.max_prefixlen - 2))


def subnet_slices(pod_cidr: str, prefix: int) -> Iterator[str]:
    """The slices of a node's pod CIDR that networks' bridges get, in order."""
    net = ipaddress.ip_network(pod_cidr)
    for sub in net.subnets(new_prefix=slice_prefix(pod_cidr, prefix)):
        yield str(sub)
