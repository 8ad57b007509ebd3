"""The built-in resources: their group/version/kind, URL names, scope and storage keys.

One table, read by the API server (routing, discovery, OpenAPI, tables) and by clients
(which URL serves a kind). Scopes follow Arktos: cluster, tenant, or namespace within a
tenant. Storage keys follow Arktos too:
`/registry/{plural}/{tenant}/{namespace}/{name}` for namespaced objects,
`/registry/{plural}/{tenant}/{name}` for tenant-scoped ones, `/registry/{plural}/{name}`
for cluster-scoped ones. Custom resources (served from CustomResourceDefinitions, see
`_customresources`) keep their group in the key, as in Kubernetes:
`/registry/{group}/{plural}/{tenant}/...`; a CRD's group always has a dot and no
built-in plural has one, so the two never meet.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from arktos_lite.api._customresources import CustomKind

SYSTEM_TENANT = "system"
ALL_TENANTS = "all"


class Scope(enum.StrEnum):
    CLUSTER = "Cluster"
    TENANT = "Tenant"
    NAMESPACE = "Namespace"


# Verbs as discovery names them.
READ_VERBS = ("get", "list", "watch")
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclasses.dataclass(frozen=True, slots=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    scope: Scope
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    # Field selector labels besides metadata.name, metadata.namespace and the hash keys.
    field_labels: frozenset[str] = frozenset()
    # Hidden from tenant users in discovery (Arktos: nodes, tenants).
    system_only: bool = False
    verbs: tuple[str, ...] = ALL_VERBS
    # What a CustomResourceDefinition says of a custom resource; None for built-ins.
    custom: CustomKind | None = None
    # A CRD's `names.singular`; empty for the lower-cased kind (every built-in's).
    singular_name: str = ""

    @property
    def singular(self) -> str:
        """The singular name discovery publishes (`pod`, `endpointslice`, a CRD's own)."""
        return self.singular_name or self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.custom.list_kind if self.custom is not None else self.kind + "List"

    @property
    def namespaced(self) -> bool:
        return self.scope is Scope.NAMESPACE

    @property
    def qualified(self) -> str:
        """`pods`, `deployments.apps`: how kube-apiserver names it in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def key(self, *, tenant: str, namespace: str, name: str) -> str:
        """The storage key of one object."""
        return self.prefix(tenant=tenant, namespace=namespace) + name

    def prefix(self, *, tenant: str | None = None, namespace: str | None = None) -> str:
        """The storage key prefix of every object in `tenant` (and `namespace`).

        Leave out the tenant (or the namespace) for every tenant (every namespace).
        """
        parts = ["", "registry", self.plural]
        if self.custom is not None:
            parts[2:2] = [self.group]
        if self.scope is not Scope.CLUSTER and tenant is not None:
            parts.append(tenant)
            if self.scope is Scope.NAMESPACE and namespace is not None:
                parts.append(namespace)
        return "/".join(parts) + "/"

    def field_label_supported(self, label: str) -> bool:
        return (
            label in ("metadata.name", "metadata.namespace", "metadata.hashkey")
            or label in self.field_labels
            or label.startswith("metadata.ownerReferences.hashkey.")
        )


_NS = Scope.NAMESPACE

RESOURCES: tuple[Resource, ...] = (
    Resource(
        "",
        "v1",
        "Tenant",
        "tenants",
        Scope.CLUSTER,
        subresources=frozenset({"status", "finalize"}),
        field_labels=frozenset({"status.phase"}),
        system_only=True,
    ),
    Resource(
        "",
        "v1",
        "Namespace",
        "namespaces",
        Scope.TENANT,
        short_names=("ns",),
        subresources=frozenset({"status", "finalize"}),
        field_labels=frozenset({"status.phase"}),
    ),
    Resource(
        "",
        "v1",
        "Pod",
        "pods",
        _NS,
        short_names=("po",),
        categories=("all",),
        # log and exec are served by the node agent, through the API server's proxy;
        # action (Arktos: a CustomAction for a VM pod) creates an Action for its node.
        subresources=frozenset({"status", "binding", "log", "exec", "action"}),
        field_labels=frozenset(
            {
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            }
        ),
    ),
    Resource(
        "",
        "v1",
        "Node",
        "nodes",
        Scope.CLUSTER,
        short_names=("no",),
        subresources=frozenset({"status"}),
        field_labels=frozenset({"spec.unschedulable"}),
        system_only=True,
    ),
    Resource("", "v1", "ConfigMap", "configmaps", _NS, short_names=("cm",)),
    Resource("", "v1", "Secret", "secrets", _NS, field_labels=frozenset({"type"})),
    Resource(
        "",
        "v1",
        "Service",
        "services",
        _NS,
        short_names=("svc",),
        categories=("all",),
        subresources=frozenset({"status"}),
    ),
    Resource("", "v1", "Endpoints", "endpoints", _NS, short_names=("ep",)),
    Resource(
        "",
        "v1",
        "Event",
        "events",
        _NS,
        short_names=("ev",),
        field_labels=frozenset(
            {
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            }
        ),
    ),
    Resource("", "v1", "ServiceAccount", "serviceaccounts", _NS, short_names=("sa",)),
    Resource(
        "",
        "v1",
        "ControllerInstance",
        "controllerinstances",
        Scope.CLUSTER,
        short_names=("co",),
        system_only=True,
    ),
    Resource(
        "",
        "v1",
        "Action",
        "actions",
        _NS,
        subresources=frozenset({"status"}),
        field_labels=frozenset({"spec.nodeName", "spec.podName", "status.complete"}),
    ),
    Resource(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        _NS,
        short_names=("rs",),
        categories=("all",),
        subresources=frozenset({"status", "scale"}),
        field_labels=frozenset({"status.replicas"}),
    ),
    Resource(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        _NS,
        short_names=("deploy",),
        categories=("all",),
        subresources=frozenset({"status", "scale"}),
    ),
    Resource(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        _NS,
        field_labels=frozenset({"addressType"}),
    ),
    Resource("coordination.k8s.io", "v1", "Lease", "leases", _NS),
    # RBAC objects are stored and served; Arktos keeps cluster roles and their bindings
    # per tenant. Authorization itself is by tenant (see the API server's authentication).
    Resource("rbac.authorization.k8s.io", "v1", "Role", "roles", _NS),
    Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", _NS),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", Scope.TENANT),
    Resource(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        Scope.TENANT,
    ),
    # Arktos: every tenant defines its own; the system tenant's may be shared with all.
    Resource(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        Scope.TENANT,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        subresources=frozenset({"status"}),
    ),
    # Arktos: a tenant's network (flat, vpc or mizar); pods choose one by label.
    Resource(
        "arktos.futurewei.com",
        "v1",
        "Network",
        "networks",
        Scope.TENANT,
        short_names=("ne", "net"),
        subresources=frozenset({"status"}),
    ),
)


class Registry:
    """Look-ups over a set of resources: by URL names, by kind, by group."""

    def __init__(self, resources: Iterable[Resource] = RESOURCES) -> None:
        resources = tuple(resources)
        self._resources = resources
        self._by_path = {(r.group, r.version, r.plural): r for r in resources}
        self._by_kind = {(r.group, r.kind): r for r in resources}

    def __iter__(self) -> Iterator[Resource]:
        return iter(self._resources)

    def get(self, group: str, version: str, plural: str) -> Resource | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, kind: str) -> Resource | None:
        return self._by_kind.get((group, kind))

    def groups(self) -> dict[str, list[str]]:
        """Group name -> its versions, in first-seen order; "" is the core group."""
        groups: dict[str, list[str]] = {}
        for resource in self._resources:
            versions = groups.setdefault(resource.group, [])
            if resource.version not in versions:
                versions.append(resource.version)
        return groups

    def in_group_version(self, group: str, version: str) -> list[Resource]:
        return [r for r in self._resources if r.group == group and r.version == version]
