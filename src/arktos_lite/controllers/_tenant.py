"""The tenant controller: a tenant has what it needs while it lives, and nothing once it goes.

Guarantees:

* Tenant `system` exists: the controller creates it when it is missing.
* Every Active tenant has the namespaces `default`, `kube-system` and `kube-public`, and
  every Active tenant but `system` has the ClusterRole `admin-role` (everything allowed)
  and the ClusterRoleBinding `admin-role-binding` granting it to the tenant's user
  `admin`. One that goes missing is created again; existing ones are left as they are,
  so that a tenant's admin may narrow them.
* A tenant being deleted (deletionTimestamp set, phase Terminating, `arktos` in
  `spec.finalizers`) loses everything it holds: every namespaced and tenant-scoped
  resource of the registry, and every custom resource the tenant is served (asked of the
  API server's CustomResourceDefinitions on each round), is deleted across the tenant,
  namespaces last (the namespace controller empties and finalizes each). The tenant's
  own CRDs go with the rest, and the API server deletes their objects with them. Only
  once listing every such resource in the tenant finds nothing is `arktos` removed from
  `spec.finalizers` through the `finalize` subresource, upon which the API server
  deletes the tenant.
* The work is idempotent and driven by keys (tenant names): a key is handled again after
  a delay until the tenant is gone, and an unreachable API server only delays it.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from typing import Any

import trio

from arktos_lite import client, machinery
from arktos_lite.api import errors, resources
from arktos_lite.controllers import _common as common, _namespace as namespaces

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

FINALIZER = "arktos"
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public")
ADMIN_USER = "admin"
ADMIN_ROLE = "admin-role"
ADMIN_ROLE_BINDING = "admin-role-binding"
RBAC_GROUP = "rbac.authorization.k8s.io"
# How long a tenant whose content is still going waits before it is looked at again
# (doubling up to the longest while content stays).
RECHECK_INTERVAL = 1.0
RECHECK_MAX = 10.0


class Reason(enum.StrEnum):
    NAMESPACE_CREATED = "NamespaceCreated"
    ADMIN_ROLE_CREATED = "AdminRoleCreated"
    TENANT_DELETED = "TenantDeleted"
    DELETION_FAILED = "TenantDeletionFailed"


def admin_role() -> Obj:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": ADMIN_ROLE},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    }


def admin_role_binding() -> Obj:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": ADMIN_ROLE_BINDING},
        "subjects": [{"kind": "User", "name": ADMIN_USER, "apiGroup": RBAC_GROUP}],
        "roleRef": {"kind": "ClusterRole", "name": ADMIN_ROLE, "apiGroup": RBAC_GROUP},
    }


def deletion_order(held: Iterable[resources.Resource]) -> list[resources.Resource]:
    """Everything a tenant holds, in the order it is deleted.

    Namespaced resources first, then tenant-scoped ones, namespaces last: a namespace
    deleted early would have the namespace controller racing this one for its content.
    Within each, the order of `held`.
    """
    held = list(held)
    namespaced = [r for r in held if r.scope is resources.Scope.NAMESPACE]
    tenant_scoped = [r for r in held if r.scope is resources.Scope.TENANT]
    is_namespaces = [r.group == "" and r.plural == "namespaces" for r in tenant_scoped]
    return (
        namespaced
        + [r for r, last in zip(tenant_scoped, is_namespaces, strict=True) if not last]
        + [r for r, last in zip(tenant_scoped, is_namespaces, strict=True) if last]
    )


# The index of namespaces by their tenant's name.
BY_TENANT = "tenant"


def _tenant_of(obj: Obj) -> tuple[str, ...]:
    tenant = (obj.get("metadata") or {}).get("tenant")
    return (tenant,) if tenant else ()


class TenantController:
    """See the module docs. Construct before the informer factory starts; then `run`."""

    def __init__(
        self,
        api: client.Client,
        informers: machinery.InformerFactory,
        *,
        recorder: machinery.EventRecorder,
        workers: int = 2,
        registry: resources.Registry | None = None,
        recheck_interval: float = RECHECK_INTERVAL,
        recheck_max: float = RECHECK_MAX,
    ) -> None:
        registry = registry or resources.Registry()
        self._api = api
        self._recorder = recorder
        self._workers = workers
        self._recheck_interval = recheck_interval
        self._rechecks = namespaces.Rechecks(base=recheck_interval, cap=recheck_max)
        self._tenants_resource = namespaces.find_resource(registry, "", "tenants")
        self._namespaces_resource = namespaces.find_resource(registry, "", "namespaces")
        self._roles_resource = namespaces.find_resource(registry, RBAC_GROUP, "clusterroles")
        self._bindings_resource = namespaces.find_resource(
            registry, RBAC_GROUP, "clusterrolebindings"
        )
        self._builtins = list(registry)
        self._queue: machinery.WorkQueue[str] = machinery.WorkQueue()

        self._tenants = informers.informer(self._tenants_resource)
        self._tenants.add_handler(
            on_add=self._enqueue_tenant,
            on_update=lambda _old, new: self._enqueue_tenant(new),
            on_delete=self._enqueue_tenant,
        )
        # What a tenant must hold: when one of these goes, its tenant is looked at again
        # (to create it anew, or to see whether a terminating tenant is empty now).
        self._namespaces = informers.informer(
            self._namespaces_resource, indexers={BY_TENANT: _tenant_of}
        )
        self._roles = informers.informer(self._roles_resource)
        self._bindings = informers.informer(self._bindings_resource)
        for informer in (self._namespaces, self._roles, self._bindings):
            informer.add_handler(on_delete=self._enqueue_owner)

    def _enqueue_tenant(self, tenant: Obj) -> None:
        self._queue.add(self._tenants.key(tenant))

    def _enqueue_owner(self, obj: Obj) -> None:
        tenant = (obj.get("metadata") or {}).get("tenant")
        if tenant:
            self._queue.add(tenant)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # The system tenant is looked at even when the cache holds none.
        self._queue.add(resources.SYSTEM_TENANT)
        await common.work(
            self._queue,
            self._sync,
            workers=self._workers,
            what="tenant",
            logger=logger,
            task_status=task_status,
        )

    async def _sync(self, name: str) -> None:
        tenant = self._tenants.get(name)
        if tenant is None:
            self._rechecks.forget(name)
            if name == resources.SYSTEM_TENANT:
                await self._create_system_tenant()
            return
        if tenant["metadata"].get("deletionTimestamp"):
            await self._finish(tenant)
            return
        if namespaces.terminating(tenant):
            return
        await self._ensure_namespaces(tenant)
        if name != resources.SYSTEM_TENANT:
            await self._ensure_admin_role(tenant)

    async def _create_system_tenant(self) -> None:
        body = {"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": resources.SYSTEM_TENANT}}
        try:
            await self._api.create(self._tenants_resource, body)
        except errors.AlreadyExists:
            return
        logger.debug("created tenant %s", resources.SYSTEM_TENANT)

    async def _ensure_namespaces(self, tenant: Obj) -> None:
        name = tenant["metadata"]["name"]
        for namespace in DEFAULT_NAMESPACES:
            if self._namespaces.get(f"{name}/{namespace}") is not None:
                continue
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            if await self._create(self._namespaces_resource, body, tenant=name):
                logger.debug("created namespace %s/%s", name, namespace)
                self._recorder.event(
                    tenant,
                    machinery.EventType.NORMAL,
                    reason=Reason.NAMESPACE_CREATED,
                    message=f"Created namespace {namespace}",
                )

    async def _ensure_admin_role(self, tenant: Obj) -> None:
        name = tenant["metadata"]["name"]
        created = False
        if self._roles.get(f"{name}/{ADMIN_ROLE}") is None:
            created |= await self._create(self._roles_resource, admin_role(), tenant=name)
        if self._bindings.get(f"{name}/{ADMIN_ROLE_BINDING}") is None:
            created |= await self._create(
                self._bindings_resource, admin_role_binding(), tenant=name
            )
        if created:
            logger.debug("created the admin role of tenant %s", name)
            self._recorder.event(
                tenant,
                machinery.EventType.NORMAL,
                reason=Reason.ADMIN_ROLE_CREATED,
                message=f"Granted cluster role {ADMIN_ROLE} to user {ADMIN_USER}",
            )

    async def _create(self, resource: resources.Resource, body: Obj, *, tenant: str) -> bool:
        """Create a named object in `tenant`; whether this call created it.

        The objects have fixed names, so a cache lagging behind an earlier create only
        costs an AlreadyExists, never a duplicate.
        """
        try:
            await self._api.create(resource, body, tenant=tenant)
        except errors.AlreadyExists:
            return False
        except (errors.NotFound, errors.Forbidden) as exc:
            # The tenant went, or began terminating, since the cache showed it Active.
            logger.debug("not creating %s in tenant %s: %s", resource.plural, tenant, exc)
            return False
        return True

    async def _finish(self, tenant: Obj) -> None:
        name = tenant["metadata"]["name"]
        if FINALIZER not in namespaces.spec_finalizers(tenant):
            self._rechecks.forget(name)
            return
        held = self._namespaces.by_index(BY_TENANT, name)
        if held and all(namespaces.terminating(ns) for ns in held):
            # Their own controller empties and removes them; a pass over everything now
            # would only find them again. The last one to go brings the tenant back here.
            logger.debug("tenant %s waits for %d terminating namespaces", name, len(held))
            raise machinery.Requeue(self._recheck_interval)
        # A tenant goes once, so it can afford to list everything it might hold.
        custom = await client.served_custom_resources(self._api, tenant=name)
        content = await namespaces.delete_content(
            self._api, deletion_order([*custom, *self._builtins]), tenant=name, verify_all=True
        )
        if not content.gone:
            logger.debug("tenant %s is not empty yet: %s", name, content.describe())
            if content.failures:
                self._recorder.event(
                    tenant,
                    machinery.EventType.WARNING,
                    reason=Reason.DELETION_FAILED,
                    message=f"Failed to delete the content of the tenant: {content.describe()}",
                )
            raise machinery.Requeue(self._rechecks.delay(name))
        finalized = await common.finalize(
            self._api, self._tenants_resource, namespaces.without_finalizer(tenant, FINALIZER)
        )
        self._rechecks.forget(name)
        if not finalized:
            return
        logger.debug("finalized tenant %s", name)
        self._recorder.event(
            tenant,
            machinery.EventType.NORMAL,
            reason=Reason.TENANT_DELETED,
            message=f"Deleted everything tenant {name} held",
        )
