"""Parsing resource URLs, in Arktos's tenant-prefixed form and Kubernetes' short form.

`/api/v1/tenants/t1/namespaces/ns/pods/web/status` and, for a caller of tenant t1,
`/api/v1/namespaces/ns/pods/web/status` name the same thing. `tenants/t1` alone, and its
`status` and `finalize`, are the tenant object itself; anything longer is a resource
inside the tenant. The tenant `all` lists across tenants.

Which resources a URL may name depends on the tenant: each has the built-in ones and the
custom resources its CustomResourceDefinitions (and the system tenant's shared ones) define.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from arktos_lite.api import _errors as errors, _resources as resources

_OWN_SUBRESOURCES = ("status", "finalize")


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """What one request URL addresses."""

    resource: resources.Resource
    # The tenant named in the path; None means the caller's own (short form).
    tenant: str | None
    namespace: str | None
    name: str | None
    subresource: str | None
    watch: bool

    @property
    def collection(self) -> bool:
        return self.name is None


def _not_found() -> errors.NotFound:
    return errors.NotFound("the server could not find the requested resource")


RegistryFor = Callable[[str | None], resources.Registry]
"""The resources served to a tenant; None: the caller's own tenant."""


def parse(registry_for: RegistryFor, *, group: str, version: str, rest: str) -> Target:
    """Parse the part of a URL after `/api/v1/` or `/apis/{group}/{version}/`."""
    parts = rest.strip("/").split("/") if rest.strip("/") else []
    watch = bool(parts) and parts[0] == "watch"
    if watch:
        parts = parts[1:]
    if not parts or any(not part for part in parts):
        raise _not_found()
    tenant: str | None = None
    namespace: str | None = None
    if _is_scope_prefix(parts, "tenants", group=group):
        tenant, parts = parts[1], parts[2:]
    if _is_scope_prefix(parts, "namespaces", group=group):
        namespace, parts = parts[1], parts[2:]
    return _target(
        registry_for(tenant),
        group=group,
        version=version,
        plural=parts[0],
        tenant=tenant,
        namespace=namespace,
        tail=parts[1:],
        watch=watch,
    )


def _is_scope_prefix(parts: list[str], owner: str, *, group: str) -> bool:
    """Whether `owner/x/...` scopes what follows, rather than naming the object x."""
    if len(parts) < 3 or parts[0] != owner:
        return False
    # tenants/x/status and namespaces/x/finalize are the object's own subresources.
    return not (group == "" and len(parts) == 3 and parts[2] in _OWN_SUBRESOURCES)


def _target(
    registry: resources.Registry,
    *,
    group: str,
    version: str,
    plural: str,
    tenant: str | None,
    namespace: str | None,
    tail: list[str],
    watch: bool,
) -> Target:
    resource = registry.get(group, version, plural)
    if resource is None or len(tail) > 2:
        raise _not_found()
    name = tail[0] if tail else None
    subresource = tail[1] if len(tail) == 2 else None
    if subresource is not None and subresource not in resource.subresources:
        raise _not_found()
    scope = resource.scope
    if scope is resources.Scope.CLUSTER and (tenant is not None or namespace is not None):
        raise _not_found()
    if scope is resources.Scope.TENANT and namespace is not None:
        raise _not_found()
    if scope is resources.Scope.NAMESPACE and namespace is None and name is not None:
        raise _not_found()
    if tenant == resources.ALL_TENANTS and name is not None:
        raise _not_found()
    return Target(
        resource=resource,
        tenant=tenant,
        namespace=namespace,
        name=name,
        subresource=subresource,
        watch=watch,
    )
