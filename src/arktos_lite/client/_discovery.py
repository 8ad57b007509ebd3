"""Which custom resources a tenant is served, from its CustomResourceDefinitions.

The API server answers discovery (`/apis`, `/apis/{group}/{version}`) for the caller's
own tenant, so a component of the system tenant cannot ask it what another tenant has.
It can list CRDs, and the server serves a tenant by rules that need nothing else
(Arktos): the tenant's own CRDs, and the system tenant's CRDs labelled
`arktos.futurewei.com/crd-sharing-policy: forced`, shared ones first.

Guarantees of `custom_resources`: one `Resource` per CRD that can be served to the
tenant, at its storage version (or its first served version when the storage version is
not served), with the scope the server gives it (`Namespaced` is namespace-scoped,
`Cluster` is tenant-scoped); a CRD whose names the server has not accepted
(`NamesAccepted` False), that serves no version, or whose group and plural or kind an
earlier CRD of the view took is left out. A CRD without conditions yet counts, since the
server serves a CRD as soon as its create returns. The resources carry no schema
(`custom` is None): they say where objects live, which is what a client needs to list,
delete or look up objects by kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from arktos_lite.api import resources
from arktos_lite.client import _client as client_

Obj = dict[str, Any]

GROUP: Final = "apiextensions.k8s.io"
KIND: Final = "CustomResourceDefinition"
SHARING_LABEL: Final = "arktos.futurewei.com/crd-sharing-policy"
FORCED: Final = "forced"


def _crd_resource() -> resources.Resource:
    found = resources.Registry().by_kind(GROUP, KIND)
    if found is None:
        raise LookupError("the built-in resources lack CustomResourceDefinitions")
    return found


CRDS: Final = _crd_resource()
"""`customresourcedefinitions.apiextensions.k8s.io`, tenant-scoped."""


def tenant_of(crd: Mapping[str, Any]) -> str:
    return str((crd.get("metadata") or {}).get("tenant") or resources.SYSTEM_TENANT)


def shared(crd: Mapping[str, Any]) -> bool:
    """Whether the CRD is served to every tenant: a system CRD with the forced label."""
    labels = (crd.get("metadata") or {}).get("labels") or {}
    return tenant_of(crd) == resources.SYSTEM_TENANT and labels.get(SHARING_LABEL) == FORCED


def _names_refused(crd: Mapping[str, Any]) -> bool:
    for condition in (crd.get("status") or {}).get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == "NamesAccepted":
            return condition.get("status") == "False"
    return False


def _creation(crd: Mapping[str, Any]) -> tuple[str, str]:
    meta = crd.get("metadata") or {}
    return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")


def resource_of(crd: Mapping[str, Any]) -> resources.Resource | None:
    """Where the objects of one CRD live; None if it serves nothing."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")
    if not (isinstance(group, str) and group and plural and kind):
        return None
    served = [v for v in spec.get("versions") or () if isinstance(v, Mapping) and v.get("served")]
    if not served:
        return None
    version = next((v for v in served if v.get("storage")), served[0])
    subresources = version.get("subresources") or {}
    return resources.Resource(
        group,
        str(version.get("name")),
        str(kind),
        str(plural),
        resources.Scope.NAMESPACE if spec.get("scope") == "Namespaced" else resources.Scope.TENANT,
        short_names=tuple(names.get("shortNames") or ()),
        categories=tuple(names.get("categories") or ()),
        subresources=frozenset(s for s in ("status", "scale") if s in subresources),
        singular_name=str(names.get("singular") or ""),
    )


def custom_resources(crds: Iterable[Mapping[str, Any]], *, tenant: str) -> list[resources.Resource]:
    """The custom resources `tenant` is served, from CRDs of any tenants (see the module
    docs); shared ones first, then the tenant's own in creation order."""
    every = list(crds)
    view = sorted((c for c in every if shared(c)), key=_creation)
    view += sorted((c for c in every if tenant_of(c) == tenant and not shared(c)), key=_creation)
    found: list[resources.Resource] = []
    taken: set[tuple[str, str, str]] = set()
    for crd in view:
        if _names_refused(crd):
            continue
        resource = resource_of(crd)
        if resource is None:
            continue
        keys = {
            ("plural", resource.group, resource.plural),
            ("kind", resource.group, resource.kind),
        }
        if keys & taken:
            continue
        taken |= keys
        found.append(resource)
    return found


async def served_custom_resources(api: client_.Client, *, tenant: str) -> list[resources.Resource]:
    """`custom_resources` of `tenant` from the CRDs the API server holds now.

    Two lists (one for the system tenant): the tenant's CRDs, and the system tenant's
    shared ones.
    """
    crds: list[Obj] = []
    if tenant != resources.SYSTEM_TENANT:
        own = await api.list_all(CRDS, tenant=tenant)
        crds += own.get("items") or []
    system = await api.list_all(
        CRDS,
        tenant=resources.SYSTEM_TENANT,
        label_selector=None if tenant == resources.SYSTEM_TENANT else f"{SHARING_LABEL}={FORCED}",
    )
    crds += system.get("items") or []
    return custom_resources(crds, tenant=tenant)
