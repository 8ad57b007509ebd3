"""Custom resources: what each tenant is served, and the CustomResourceDefinitions' upkeep.

Arktos makes CRDs tenant-scoped: a tenant is served the built-in resources, the custom
resources of its own CRDs, and those of the system tenant's CRDs labelled
`arktos.futurewei.com/crd-sharing-policy: forced` (shared with every tenant; the objects
still belong to each tenant). `CustomResources.registry_for(tenant)` is derived from the
CRDs in the watch cache and rebuilt only when one changes. Within a tenant's view, shared
CRDs come first, then the tenant's own: those whose names were accepted before, then the
others by age; a CRD whose names clash with one before it is not served (`NamesAccepted`
False), so a tenant cannot shadow a shared kind.

`run` keeps every CRD's status true to that (`NamesAccepted`, `Established`,
`acceptedNames`, `storedVersions`) and, for a CRD being deleted, deletes its objects
(honouring their finalizers) before it removes the finalizer
`customresourcecleanup.apiextensions.k8s.io`, as kube-apiserver's apiextensions
controllers do. While a CRD is terminating its objects can be read and deleted, not created.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any, Final, NoReturn

import trio

from arktos_lite import storage
from arktos_lite.api import (
    _customresources as crdmodel,
    _errors as errors,
    _resources as resources,
    _timestamps as timestamps,
)
from arktos_lite.apiserver import _rest as rest, _strategy as strategy, _watch as watching

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

PREFIX: Final = strategy.CRD_PREFIX

# How often the cleanup of a terminating CRD looks again at the objects it deletes.
CLEANUP_INTERVAL: Final = 1.0


def _tenant(crd: Mapping[str, Any]) -> str:
    return str(crd["metadata"].get("tenant") or resources.SYSTEM_TENANT)


def _shared(crd: Mapping[str, Any]) -> bool:
    return _tenant(crd) == resources.SYSTEM_TENANT and crdmodel.forced_shared(crd)


def _order(crd: Mapping[str, Any]) -> tuple[bool, str, str]:
    """First come, first served: CRDs whose names were accepted keep them, then by age."""
    meta = crd["metadata"]
    conditions = (crd.get("status") or {}).get("conditions") or []
    held = any(c.get("type") == "NamesAccepted" and c.get("status") == "True" for c in conditions)
    return not held, str(meta.get("creationTimestamp", "")), str(meta["name"])


@dataclasses.dataclass(frozen=True, slots=True)
class _View:
    """What one tenant is served."""

    registry: resources.Registry
    # Why a CRD of this tenant (by name) is not served; absent when it is.
    conflicts: Mapping[str, str]


class CustomResources:
    """The registry each tenant is served, from the CRDs in the watch cache."""

    def __init__(
        self, *, builtins: resources.Registry, cache: watching.WatchCache, api: rest.Rest
    ) -> None:
        self._builtins = builtins
        self._cache = cache
        self._api = api
        self._version = -2
        self._crds: dict[str, list[Obj]] = {}
        self._views: dict[str, _View] = {}

    # Views

    def _refresh(self) -> None:
        version = self._cache.version(PREFIX)
        if version == self._version:
            return
        crds: dict[str, list[Obj]] = {}
        for stored in self._cache.list(PREFIX):
            crd = stored.object()
            crds.setdefault(_tenant(crd), []).append(crd)
        for own in crds.values():
            own.sort(key=_order)
        self._version = version
        self._crds = crds
        self._views = {}

    def _view(self, tenant: str) -> _View:
        self._refresh()
        if tenant not in self._crds and tenant != resources.ALL_TENANTS:
            # Every tenant without CRDs of its own (any name a URL may hold) shares one.
            tenant = ""
        view = self._views.get(tenant)
        if view is None:
            view = self._views[tenant] = self._build(tenant)
        return view

    def _build(self, tenant: str) -> _View:
        if tenant == resources.ALL_TENANTS:
            return self._build_all()
        system = self._crds.get(resources.SYSTEM_TENANT, [])
        shared = [crd for crd in system if _shared(crd)]
        own = self._crds.get(tenant, [])
        if tenant == resources.SYSTEM_TENANT:
            own = [crd for crd in own if not _shared(crd)]
        accepted: list[Obj] = []
        conflicts: dict[str, str] = {}
        served: list[resources.Resource] = []
        shared_names = {crd["metadata"]["name"] for crd in shared}
        for crd in [*shared, *own]:
            name = crd["metadata"]["name"]
            if not _shared(crd) and name in shared_names:
                conflicts[name] = f'"{name}" is defined by the system tenant for every tenant'
                continue
            conflict = crdmodel.name_conflicts(crd, accepted)
            if conflict is not None:
                conflicts[name] = conflict
                continue
            # Accepted in order: the names it reserves are its own, whatever its status says.
            accepted.append({**crd, "status": {"acceptedNames": crdmodel.accepted_names(crd)}})
            served.extend(crdmodel.resources_of(crd, tenant=_tenant(crd)))
        return _View(resources.Registry([*self._builtins, *served]), conflicts)

    def _build_all(self) -> _View:
        """Lists across tenants: every kind some tenant is served, the system's first."""
        seen: set[tuple[str, str, str]] = set()
        served: list[resources.Resource] = []
        for tenant in [resources.SYSTEM_TENANT, *sorted(self._crds)]:
            for resource in self._view(tenant).registry:
                path = (resource.group, resource.version, resource.plural)
                if resource.custom is not None and path not in seen:
                    seen.add(path)
                    served.append(resource)
        return _View(resources.Registry([*self._builtins, *served]), {})

    def registry_for(self, tenant: str) -> resources.Registry:
        """The resources served to `tenant` (`all`: to lists across tenants)."""
        return self._view(tenant).registry

    async def caught_up(self) -> None:
        """Wait until the views include every CRD written before now."""
        await self._cache.current()

    def terminating(self, resource: resources.Resource) -> bool:
        """Whether the CRD that defines `resource` is being deleted."""
        custom = resource.custom
        if custom is None:
            return False
        key = f"{PREFIX}{custom.tenant}/{custom.crd_name}"
        stored = self._cache.get(key)
        return stored is None or b'"deletionTimestamp"' in stored.json

    # Upkeep

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Keep every CRD's status and cleanup going, as CRDs change."""
        task_status.started()
        while True:
            try:
                await self._follow()
            except (watching.TooSlow, storage.Compacted):
                logger.debug("CRD upkeep fell behind; starting over")
            await trio.lowlevel.checkpoint()

    async def _follow(self) -> None:
        after = await self._cache.current() or await self._api.backend.current_revision()
        async with self._cache.watch(prefix=PREFIX, after=after) as feed:
            while True:
                cleaning = await self._reconcile()
                if self._cache.ended:
                    await trio.sleep_forever()  # the server is stopping
                wait = CLEANUP_INTERVAL if cleaning else math.inf
                await feed.next(trio.current_time() + wait)

    async def _reconcile(self) -> bool:
        """Bring every CRD's status up to date; return whether a cleanup is under way."""
        await self._cache.current()
        self._refresh()
        cleaning = False
        for tenant, crds in list(self._crds.items()):
            view = self._view(tenant)
            for crd in crds:
                try:
                    crd = await self._update_status(
                        crd, view.conflicts.get(crd["metadata"]["name"])
                    )
                    if crd["metadata"].get("deletionTimestamp"):
                        cleaning |= await self._clean_up(crd)
                except (errors.NotFound, errors.Conflict):
                    cleaning = True  # changed meanwhile: the next round sees it
        return cleaning

    async def _update_status(self, crd: Obj, conflict: str | None) -> Obj:
        """Write the CRD's status if it is not what it should be; return the CRD as it is."""
        current = crd.get("status") or {}
        status = _desired_status(crd, conflict, now=timestamps.rfc3339(self._api.now()))
        if status == current:
            return crd
        where = rest.Where(tenant=_tenant(crd))
        updated = {**crd, "status": status}
        return await self._api.update(
            self._crd_resource(), where, crd["metadata"]["name"], updated, subresource="status"
        )

    def _crd_resource(self) -> resources.Resource:
        found = self._builtins.by_kind(strategy.CRD_GROUP, strategy.CRD_KIND)
        assert found is not None
        return found

    async def _clean_up(self, crd: Obj) -> bool:
        """Delete the objects of a terminating CRD; drop its finalizer once they are gone.

        Return whether objects remain.
        """
        meta = crd["metadata"]
        if crdmodel.CLEANUP_FINALIZER not in (meta.get("finalizers") or []):
            return False
        tenant = _tenant(crd)
        kinds = crdmodel.resources_of(crd, tenant=tenant)
        remaining = 0
        if kinds:
            resource = kinds[0]
            prefix = resource.prefix(tenant=None if _shared(crd) else tenant)
            remaining = await self._delete_all(resource, self._cache.list(prefix))
        if remaining:
            return True
        finalizers = [f for f in meta["finalizers"] if f != crdmodel.CLEANUP_FINALIZER]
        updated = {**crd, "metadata": {**meta, "finalizers": finalizers}}
        await self._api.update(
            self._crd_resource(), rest.Where(tenant=tenant), meta["name"], updated
        )
        logger.info("deleted the custom resources of %s/%s", tenant, meta["name"])
        return False

    async def _delete_all(self, resource: resources.Resource, items: Iterable[rest.Stored]) -> int:
        remaining = 0
        for stored in items:
            remaining += 1
            obj = stored.object()
            meta = obj["metadata"]
            if meta.get("deletionTimestamp"):
                continue  # waits for its finalizers
            where = rest.Where(tenant=str(meta.get("tenant")), namespace=meta.get("namespace"))
            try:
                await self._api.delete(resource, where, meta["name"], rest.DeleteOptions())
            except errors.NotFound:
                remaining -= 1
        return remaining


def _condition(type_: str, status: bool, reason: str, message: str, now: str) -> Obj:
    return {
        "type": type_,
        "status": "True" if status else "False",
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def _desired_status(crd: Obj, conflict: str | None, *, now: str) -> Obj:
    """The status the CRD should have; conditions that hold keep their transition time."""
    current: Obj = crd.get("status") or {}
    previous = {c.get("type"): c for c in current.get("conditions") or []}
    accepted = conflict is None
    wanted = [
        _condition(
            "NamesAccepted",
            accepted,
            "NoConflicts" if accepted else "NameConflict",
            "no conflicts found" if accepted else conflict or "",
            now,
        )
    ]
    established = previous.get("Established", {}).get("status") == "True"
    if accepted or established:
        wanted.append(
            _condition(
                "Established",
                True,
                "InitialNamesAccepted",
                "the initial names have been accepted",
                now,
            )
        )
    else:
        wanted.append(
            _condition("Established", False, "NotAccepted", "not all names are accepted", now)
        )
    if crd["metadata"].get("deletionTimestamp"):
        wanted.append(
            _condition(
                "Terminating",
                True,
                "InstanceDeletionInProgress",
                "CustomResource deletion is in progress",
                now,
            )
        )
    conditions = []
    for condition in wanted:
        old = previous.get(condition["type"])
        if old is not None and all(
            old.get(field) == condition[field] for field in ("status", "reason", "message")
        ):
            condition = old
        conditions.append(condition)
    status = dict(current)
    status["conditions"] = conditions
    if accepted:
        status["acceptedNames"] = crdmodel.accepted_names(crd)
    stored_versions = list(current.get("storedVersions") or [])
    storage_version = next(
        (v["name"] for v in crd["spec"].get("versions") or [] if v.get("storage")), None
    )
    if storage_version is not None and storage_version not in stored_versions:
        stored_versions.append(storage_version)
    status["storedVersions"] = stored_versions
    return status
