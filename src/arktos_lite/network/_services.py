"""Services and their Endpoints, as the ClusterIP ports the node translates.

`service_ports` pairs each Service having a ClusterIP with the Endpoints object of the
same tenant, namespace and name: a Service port maps to the endpoint port of the same
name (or the only one) and to every ready address of the subsets that have it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from arktos_lite.network import _model as model


def _key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (
        str(meta.get("tenant") or "system"),
        str(meta.get("namespace") or "default"),
        str(meta.get("name") or ""),
    )


def _is_ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def service_ports(
    services: Iterable[Mapping[str, Any]], endpoints: Iterable[Mapping[str, Any]]
) -> list[model.ServicePort]:
    by_key = {_key(e): e for e in endpoints}
    result = []
    for service in services:
        spec = service.get("spec") or {}
        cluster_ip = str(spec.get("clusterIP") or "")
        if not _is_ipv4(cluster_ip):
            continue
        tenant = _key(service)[0]
        subsets = (by_key.get(_key(service)) or {}).get("subsets") or []
        for port in spec.get("ports") or ():
            protocol = str(port.get("protocol") or "TCP").lower()
            name = str(port.get("name") or "")
            eps: set[model.Endpoint] = set()
            for subset in subsets:
                ports = [
                    p
                    for p in subset.get("ports") or ()
                    if str(p.get("protocol") or "TCP").lower() == protocol
                ]
                match = [p for p in ports if str(p.get("name") or "") == name]
                if not match and len(ports) == 1 and not name:
                    match = ports
                if not match:
                    continue
                target = int(match[0].get("port") or 0)
                for address in subset.get("addresses") or ():
                    ip = str(address.get("ip") or "")
                    if _is_ipv4(ip) and target:
                        eps.add(model.Endpoint(ip, target))
            result.append(
                model.ServicePort(
                    tenant=tenant,
                    cluster_ip=cluster_ip,
                    protocol=protocol,
                    port=int(port.get("port") or 0),
                    endpoints=tuple(sorted(eps)),
                )
            )
    return result
