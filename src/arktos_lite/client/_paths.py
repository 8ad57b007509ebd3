"""Request paths of resources: Arktos's tenant form, or Kubernetes' short form.

`/api/v1/tenants/t1/namespaces/ns/pods/web` names pod `web` of namespace `ns` in tenant
`t1`; without a tenant the short form `/api/v1/namespaces/ns/pods/web` leaves the tenant
to the server (the caller's own). Cluster-scoped resources have no tenant; the tenant
object itself is `/api/v1/tenants/{name}`. Tenant `all` reads across tenants.

Guarantees: a path names exactly what the arguments say, or a ValueError says why it
cannot. Every segment from the caller is percent-quoted, and segments the server would
read differently once decoded (empty, `.`, `..`, containing `/`) are refused, not sent.
"""

from __future__ import annotations

import urllib.parse

from arktos_lite.api import resources


def api_prefix(resource: resources.Resource) -> str:
    """`/api/v1` for the core group, `/apis/{group}/{version}` for the others."""
    if resource.group:
        return f"/apis/{_segment(resource.group, 'group')}/{_segment(resource.version, 'version')}"
    return f"/api/{_segment(resource.version, 'version')}"


def resource_path(
    resource: resources.Resource,
    *,
    tenant: str | None = None,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """The path of a collection (no `name`), of one object, or of its `subresource`.

    The tenant is ignored for cluster-scoped resources and the namespace for resources
    that are not namespaced. A namespaced collection without a namespace spans every
    namespace (of the tenant, or of every tenant with `all`).
    """
    tenant = tenant or None
    namespace = namespace or None
    if subresource is not None and name is None:
        raise ValueError(f"subresource {subresource!r} needs the name of an object")
    parts = [api_prefix(resource)]
    scope = resource.scope
    if scope is not resources.Scope.CLUSTER and tenant is not None:
        if tenant == resources.ALL_TENANTS and name is not None:
            raise ValueError(
                f"tenant {resources.ALL_TENANTS!r} lists every tenant; one object needs its own"
            )
        parts += ["tenants", _segment(tenant, "tenant")]
    if scope is resources.Scope.NAMESPACE:
        if namespace is not None:
            parts += ["namespaces", _segment(namespace, "namespace")]
        elif name is not None:
            raise ValueError(f"{resource.plural} are namespaced: {name!r} needs a namespace")
    parts.append(_segment(resource.plural, "resource"))
    if name is not None:
        parts.append(_segment(name, "name"))
    if subresource is not None:
        parts.append(_segment(subresource, "subresource"))
    return "/".join(parts)


def _segment(value: str, what: str) -> str:
    if value in ("", ".", "..") or "/" in value:
        raise ValueError(f"{what} {value!r} cannot be part of a URL path")
    return urllib.parse.quote(value, safe="")
