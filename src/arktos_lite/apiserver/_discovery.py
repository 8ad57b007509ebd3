"""Discovery documents: `/api`, `/apis`, the resource list of each group version, `/version`.

Tenant users do not see the cluster's own resources (nodes, tenants, controller
instances), as in Arktos. Custom resources are described from the registry given (a
tenant's): their groups follow the built-in ones, by name, and list their versions in
Kubernetes' version priority order, the first being the preferred version.
"""

from __future__ import annotations

import re
from typing import Any

import arktos_lite
from arktos_lite.api import _partitions as partitions, _resources as resources

Obj = dict[str, Any]

KUBERNETES_VERSION = (1, 32, 0)

_SUBRESOURCE_VERBS = {
    "status": ("get", "patch", "update"),
    "scale": ("get", "patch", "update"),
    "finalize": ("update",),
    "binding": ("create",),
    "exec": ("create", "get"),
    "action": ("create",),
}
_SUBRESOURCE_KINDS = {
    "scale": ("autoscaling", "v1", "Scale"),
    "binding": ("", "v1", "Binding"),
    "exec": ("", "v1", "PodExecOptions"),
    "action": ("", "v1", "CustomAction"),
}

# Served by the API server itself and never stored (apiserver/_proxy.py), so not in the
# resource table: who a bearer token is, for node agents; only system admins may ask.
_UNSTORED: dict[tuple[str, str], list[Obj]] = {
    ("authentication.k8s.io", "v1"): [
        {
            "name": "tokenreviews",
            "singularName": "tokenreview",
            "namespaced": False,
            "kind": "TokenReview",
            "verbs": ["create"],
        }
    ],
}


# Served by every API server from its own configuration, never stored
# (apiserver/_datapartitions.py): described like the stored resources.
_SERVED: tuple[resources.Resource, ...] = (partitions.DATA_PARTITION_CONFIGS,)


_KUBE_VERSION = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?")
_STABILITY = {"alpha": 0, "beta": 1, None: 2}


def version_priority(version: str) -> tuple[int, int, int, int, str]:
    """A sort key putting versions in Kubernetes' priority order, highest first.

    apimachinery's `CompareKubeAwareVersionStrings`: GA before beta before alpha, then
    the higher major, then the higher minor (`v2`, `v1`, `v2beta1`, `v1beta2`,
    `v1alpha1`); versions not of that form come last, in alphabetical order.
    """
    match = _KUBE_VERSION.fullmatch(version)
    if match is None:
        return (1, 0, 0, 0, version)
    major, stability, minor = match.groups()
    return (0, -_STABILITY[stability], -int(major), -int(minor or 0), "")


def _groups(registry: resources.Registry) -> dict[str, list[str]]:
    """Group -> versions, preferred first: built-in groups in their order, then the groups
    of custom resources by name (kube-aggregator's order for equal group priorities), their
    versions in Kubernetes' version priority order."""
    groups = registry.groups()
    for group, version in (*_UNSTORED, *((r.group, r.version) for r in _SERVED)):
        versions = groups.setdefault(group, [])
        if version not in versions:
            versions.append(version)
    custom = {r.group for r in registry if r.custom is not None}
    custom -= {r.group for r in registry if r.custom is None}
    ordered = {name: versions for name, versions in groups.items() if name not in custom}
    for name in sorted(custom):
        ordered[name] = sorted(groups[name], key=version_priority)
    return ordered


def version_info() -> Obj:
    major, minor, patch = KUBERNETES_VERSION
    return {
        "major": str(major),
        "minor": str(minor),
        "gitVersion": f"v{major}.{minor}.{patch}-arktos-lite.{arktos_lite.__version__}",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "",
        "compiler": "cpython",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(name: str, versions: list[str]) -> Obj:
    listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": listed, "preferredVersion": listed[0]}


def api_group_list(registry: resources.Registry) -> Obj:
    groups = [_group(name, versions) for name, versions in _groups(registry).items() if name]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: resources.Registry, name: str) -> Obj | None:
    versions = _groups(registry).get(name)
    if not name or versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def resource_list(
    registry: resources.Registry, group: str, version: str, *, system_user: bool
) -> Obj | None:
    listed = registry.in_group_version(group, version) + [
        r for r in _SERVED if r.group == group and r.version == version
    ]
    if not listed and (group, version) not in _UNSTORED:
        return None
    entries: list[Obj] = [dict(e) for e in _UNSTORED.get((group, version), ()) if system_user]
    for resource in listed:
        if resource.system_only and not system_user:
            continue
        namespaced = resource.namespaced
        entry: Obj = {
            "name": resource.plural,
            "singularName": resource.singular,
            "namespaced": namespaced,
            "kind": resource.kind,
            "verbs": list(resource.verbs),
        }
        if resource.short_names:
            entry["shortNames"] = list(resource.short_names)
        if resource.categories:
            entry["categories"] = list(resource.categories)
        entries.append(entry)
        for sub in sorted(resource.subresources):
            sub_entry: Obj = {
                "name": f"{resource.plural}/{sub}",
                "singularName": "",
                "namespaced": namespaced,
                "kind": resource.kind,
                "verbs": list(_SUBRESOURCE_VERBS.get(sub, ("get",))),
            }
            if sub in _SUBRESOURCE_KINDS:
                sub_group, sub_version, sub_kind = _SUBRESOURCE_KINDS[sub]
                sub_entry["kind"] = sub_kind
                if sub_group:
                    sub_entry["group"] = sub_group
                    sub_entry["version"] = sub_version
            entries.append(sub_entry)
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }
