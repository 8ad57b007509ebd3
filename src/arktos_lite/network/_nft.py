"""The node's packet filter and service rules, as one nftables table (text).

`ruleset` renders the whole table of a node from its bridges and services; applying it
(`apply_script`) replaces the previous table atomically. What the rules guarantee:

* Pods of one network share a bridge and reach each other directly (layer 2).
* A packet routed from one network's bridge to another `arktos*` bridge is dropped: pods
  of different tenants (or networks) never reach each other through the node.
* A Service's ClusterIP:port is translated (DNAT, kube-proxy style, a random ready
  endpoint) for packets from the bridges of the Service's tenant and from the node itself;
  a packet from any other bridge to a ClusterIP is dropped. Translated packets leaving
  on a bridge are masqueraded, so that replies return through the node even when client
  and endpoint share the bridge.
* Pods reach beyond the node with the node's address (masquerade).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence

from arktos_lite.network import _model as model


def table_name(node: str) -> str:
    return "arktos_" + model.short_hash(node)


def _quote(name: str) -> str:
    return '"' + name.replace('"', "") + '"'


def _dnat(endpoints: Sequence[model.Endpoint]) -> str:
    if len(endpoints) == 1:
        return f"dnat ip to {endpoints[0].ip}:{endpoints[0].port}"
    entries = ", ".join(f"{i} : {e.ip} . {e.port}" for i, e in enumerate(endpoints))
    return f"dnat ip to numgen random mod {len(endpoints)} map {{ {entries} }}"


def ruleset(
    node: str, bridges: Iterable[model.Bridge], services: Iterable[model.ServicePort]
) -> str:
    """The node's table, as `nft -f` reads it."""
    bridges = sorted(bridges, key=lambda b: b.name)
    by_tenant: dict[str, list[str]] = collections.defaultdict(list)
    for b in bridges:
        by_tenant[b.key.tenant].append(b.name)
    services = sorted(s for s in services if s.protocol in ("tcp", "udp") and s.cluster_ip)
    any_bridge = _quote(model.BRIDGE_PREFIX + "*")
    cluster_ips = sorted({s.cluster_ip for s in services})
    lines = [f"table inet {table_name(node)} {{"]
    lines.append("  set clusterips {")
    lines.append("    type ipv4_addr")
    if cluster_ips:
        lines.append("    elements = { " + ", ".join(cluster_ips) + " }")
    lines.append("  }")
    lines.append("  chain forward {")
    lines.append("    type filter hook forward priority filter; policy accept;")
    for b in bridges:
        name = _quote(b.name)
        lines.append(f"    iifname {name} oifname {any_bridge} oifname != {name} drop")
    lines.append(f"    iifname {any_bridge} ip daddr @clusterips drop")
    lines.append("  }")
    prerouting, output = [], []
    for s in services:
        if not s.endpoints:
            continue
        match = f"ip daddr {s.cluster_ip} {s.protocol} dport {s.port} {_dnat(s.endpoints)}"
        output.append(f"    {match}")
        names = by_tenant.get(s.tenant)
        if names:
            prerouting.append(f"    iifname {{ {', '.join(map(_quote, names))} }} {match}")
    lines.append("  chain prerouting {")
    lines.append("    type nat hook prerouting priority dstnat; policy accept;")
    lines += prerouting
    lines.append("  }")
    lines.append("  chain output {")
    lines.append("    type nat hook output priority -100; policy accept;")
    lines += output
    lines.append("  }")
    lines.append("  chain postrouting {")
    lines.append("    type nat hook postrouting priority srcnat; policy accept;")
    lines.append(f"    ct status dnat oifname {any_bridge} masquerade")
    for b in bridges:
        lines.append(f'    ip saddr {b.subnet} oifname != {any_bridge} oifname != "lo" masquerade')
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def apply_script(node: str, table: str) -> str:
    """`nft -f` input that replaces the node's table in one transaction."""
    name = table_name(node)
    return f"add table inet {name}\ndelete table inet {name}\n{table}"


def delete_script(node: str) -> str:
    name = table_name(node)
    return f"add table inet {name}\ndelete table inet {name}\n"
