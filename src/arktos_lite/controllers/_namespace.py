"""The namespace controller: a namespace is usable while it lives and empty before it goes.

Guarantees:

* Every Active namespace of a live tenant has a `default` ServiceAccount; one that is
  deleted comes back.
* A namespace being deleted (it has a deletionTimestamp, phase Terminating, and
  `kubernetes` in `spec.finalizers`) loses everything in it: every namespaced resource of
  the registry, and every namespaced custom resource its tenant is served (asked of the
  API server's CustomResourceDefinitions on each round, custom ones first), is deleted
  collection by collection. Objects that wait for something (a pod's graceful deletion
  on its node, a finalizer) are waited for. Only once nothing is left (every collection
  whose delete found something is listed again; the others stay empty, since nothing
  new may be created in a terminating namespace) is `kubernetes` removed from
  `spec.finalizers` through the `finalize` subresource, upon which the API server
  deletes the namespace.
* While content remains, the namespace's status says why, with the conditions
  Kubernetes uses (`NamespaceContentRemaining`, `NamespaceFinalizersRemaining`,
  `NamespaceDeletionContentFailure`, …).
* The work is idempotent and driven by keys: a key is handled again after a delay until
  the namespace is gone, and an unreachable API server only delays it.

The tenant's default namespaces may not be deleted while the tenant lives; the API
server refuses that, so there is nothing for this controller to guard.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import enum
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import trio

from arktos_lite import client, machinery
from arktos_lite.api import errors, resources, timestamps
from arktos_lite.controllers import _common as common

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

FINALIZER = "kubernetes"
DEFAULT_SERVICE_ACCOUNT = "default"
# How long a namespace whose content is still going waits before it is looked at again:
# the first wait, doubling on each further look, up to the longest.
RECHECK_INTERVAL = 1.0
RECHECK_MAX = 10.0


class ConditionType(enum.StrEnum):
    DISCOVERY_FAILURE = "NamespaceDeletionDiscoveryFailure"
    GROUP_VERSION_PARSING_FAILURE = "NamespaceDeletionGroupVersionParsingFailure"
    CONTENT_FAILURE = "NamespaceDeletionContentFailure"
    CONTENT_REMAINING = "NamespaceContentRemaining"
    FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"


class Reason(enum.StrEnum):
    RESOURCES_DISCOVERED = "ResourcesDiscovered"
    PARSED_GROUP_VERSIONS = "ParsedGroupVersions"
    CONTENT_DELETED = "ContentDeleted"
    CONTENT_DELETION_FAILED = "ContentDeletionFailed"
    CONTENT_REMOVED = "ContentRemoved"
    SOME_RESOURCES_REMAIN = "SomeResourcesRemain"
    CONTENT_HAS_NO_FINALIZERS = "ContentHasNoFinalizers"
    SOME_FINALIZERS_REMAIN = "SomeFinalizersRemain"
    # Events
    DELETION_FAILED = "NamespaceDeletionFailed"


def find_resource(registry: resources.Registry, group: str, plural: str) -> resources.Resource:
    """A v1 resource the controllers cannot do without."""
    found = registry.get(group, "v1", plural)
    if found is None:
        raise LookupError(f"the registry does not serve {plural}")
    return found


# Pure helpers, shared with the tenant controller


def terminating(obj: Mapping[str, Any]) -> bool:
    """Whether a namespace or tenant is being deleted."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    return bool(meta.get("deletionTimestamp")) or status.get("phase") == "Terminating"


def spec_finalizers(obj: Mapping[str, Any]) -> list[str]:
    return list((obj.get("spec") or {}).get("finalizers") or [])


def without_finalizer(obj: Mapping[str, Any], finalizer: str) -> Obj:
    """A copy of a namespace or tenant with `finalizer` gone from its spec, for `finalize`."""
    finalized: Obj = copy.deepcopy(dict(obj))
    spec = finalized.setdefault("spec", {})
    spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != finalizer]
    return finalized


def group_resource(resource: resources.Resource) -> str:
    """`pods.`, `deployments.apps`: how Kubernetes names a group-resource in conditions."""
    return f"{resource.plural}.{resource.group}"


@dataclasses.dataclass(frozen=True, slots=True)
class Content:
    """What was left of a namespace's (or tenant's) content after a round of deletes.

    `remaining` counts objects by group-resource, `finalizers` counts the objects that
    hold each finalizer, `failures` holds the error of each resource whose delete or list
    failed.
    """

    remaining: Mapping[str, int] = dataclasses.field(default_factory=dict)
    finalizers: Mapping[str, int] = dataclasses.field(default_factory=dict)
    failures: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def gone(self) -> bool:
        return not self.remaining and not self.failures

    def describe(self) -> str:
        """One line for logs and events."""
        parts = [f"{name}: {count}" for name, count in sorted(self.remaining.items())]
        parts += [f"{name} failed: {error}" for name, error in sorted(self.failures.items())]
        return ", ".join(parts) or "nothing"


def summarize(
    listed: Mapping[resources.Resource, Sequence[Mapping[str, Any]]],
    *,
    failures: Mapping[str, str] | None = None,
) -> Content:
    """The `Content` that these lists (one per resource) show."""
    remaining: dict[str, int] = {}
    finalizers: dict[str, int] = {}
    for resource, items in listed.items():
        if items:
            remaining[group_resource(resource)] = len(items)
        for item in items:
            for finalizer in (item.get("metadata") or {}).get("finalizers") or []:
                finalizers[finalizer] = finalizers.get(finalizer, 0) + 1
    return Content(remaining=remaining, finalizers=finalizers, failures=dict(failures or {}))


def deletion_conditions(content: Content) -> list[Obj]:
    """The namespace conditions Kubernetes shows while it empties a namespace.

    Without `lastTransitionTime`: `merge_conditions` stamps it.
    """

    def condition(type_: ConditionType, true: bool, reason: Reason, message: str) -> Obj:
        return {
            "type": type_.value,
            "status": "True" if true else "False",
            "reason": reason.value,
            "message": message,
        }

    failures = content.failures
    remaining = content.remaining
    finalizers = content.finalizers
    return [
        condition(
            ConditionType.DISCOVERY_FAILURE,
            False,
            Reason.RESOURCES_DISCOVERED,
            "All resources successfully discovered",
        ),
        condition(
            ConditionType.GROUP_VERSION_PARSING_FAILURE,
            False,
            Reason.PARSED_GROUP_VERSIONS,
            "All legacy kube types successfully parsed",
        ),
        condition(
            ConditionType.CONTENT_FAILURE,
            True,
            Reason.CONTENT_DELETION_FAILED,
            f"Failed to delete all resource types, {len(failures)} remaining: "
            + ", ".join(f"{name}: {error}" for name, error in sorted(failures.items())),
        )
        if failures
        else condition(
            ConditionType.CONTENT_FAILURE,
            False,
            Reason.CONTENT_DELETED,
            "All content successfully deleted, may be waiting on finalization",
        ),
        condition(
            ConditionType.CONTENT_REMAINING,
            True,
            Reason.SOME_RESOURCES_REMAIN,
            "Some resources are remaining: "
            + ", ".join(
                f"{name} has {count} resource instances"
                for name, count in sorted(remaining.items())
            ),
        )
        if remaining
        else condition(
            ConditionType.CONTENT_REMAINING,
            False,
            Reason.CONTENT_REMOVED,
            "All content successfully removed",
        ),
        condition(
            ConditionType.FINALIZERS_REMAINING,
            True,
            Reason.SOME_FINALIZERS_REMAIN,
            "Some content in the namespace has finalizers remaining: "
            + ", ".join(
                f"{name} in {count} resource instances"
                for name, count in sorted(finalizers.items())
            ),
        )
        if finalizers
        else condition(
            ConditionType.FINALIZERS_REMAINING,
            False,
            Reason.CONTENT_HAS_NO_FINALIZERS,
            "All content-preserving finalizers finished",
        ),
    ]


def merge_conditions(
    current: Iterable[Mapping[str, Any]], wanted: Iterable[Mapping[str, Any]], *, now: str
) -> list[Obj]:
    """`current` with `wanted` conditions put in place.

    A condition whose status stays keeps its `lastTransitionTime`; conditions of other
    types are kept as they are.
    """
    by_type = {c.get("type"): dict(c) for c in current}
    merged = dict(by_type)
    for new in wanted:
        old = by_type.get(new["type"])
        stamped = dict(new)
        if old is not None and old.get("status") == new["status"] and old.get("lastTransitionTime"):
            stamped["lastTransitionTime"] = old["lastTransitionTime"]
        else:
            stamped["lastTransitionTime"] = now
        merged[new["type"]] = stamped
    return list(merged.values())


def _wall_clock() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Rechecks:
    """How long each key whose content is still going waits before its next look.

    `base` seconds at first, doubling with each look that finds content left, up to
    `cap`: content that waits for a pod's grace period or a finalizer is polled without
    spending the client's rate limit on it. `forget` starts a key afresh.
    """

    def __init__(self, *, base: float = RECHECK_INTERVAL, cap: float = RECHECK_MAX) -> None:
        self._base = base
        self._cap = cap
        self._looks: dict[str, int] = {}

    def delay(self, key: str) -> float:
        looks = self._looks.get(key, 0)
        self._looks[key] = looks + 1
        return min(self._cap, self._base * 2.0 ** min(looks, 32))

    def forget(self, key: str) -> None:
        self._looks.pop(key, None)

    def __len__(self) -> int:
        return len(self._looks)


# Deleting content, shared with the tenant controller


async def delete_content(
    api: client.Client,
    targets: Sequence[resources.Resource],
    *,
    tenant: str,
    namespace: str | None = None,
    verify_all: bool = False,
) -> Content:
    """Delete every object of `targets` in the namespace (or the whole tenant), in order,
    then say what is left.

    Objects that wait for a graceful deletion or a finalizer are marked and stay until
    whatever holds them lets go; calling this again is harmless. Unless `verify_all`,
    only resources whose delete found something are listed again: the namespace (or
    tenant) is terminating, so the API server lets nothing new be created in it, and an
    empty collection stays empty. That halves the requests for the many empty
    namespaces a dying tenant has.
    """
    failures: dict[str, str] = {}
    found: list[resources.Resource] = []
    for resource in targets:
        try:
            deleted = await _delete_all(api, resource, tenant=tenant, namespace=namespace)
            if deleted or verify_all:
                found.append(resource)
        except errors.NotFound:
            # The namespace (or tenant) is gone already: nothing of it can be left.
            continue
        except errors.StatusError as exc:
            logger.debug("deleting %s in %s/%s failed: %s", resource.plural, tenant, namespace, exc)
            failures[group_resource(resource)] = str(exc)
            found.append(resource)
    listed: dict[resources.Resource, list[Obj]] = {}
    for resource in found:
        try:
            remaining = await api.list_all(resource, namespace=namespace, tenant=tenant)
        except errors.NotFound:
            continue
        except errors.StatusError as exc:
            failures.setdefault(group_resource(resource), str(exc))
        else:
            listed[resource] = remaining.get("items") or []
    return summarize(listed, failures=failures)


async def _delete_all(
    api: client.Client, resource: resources.Resource, *, tenant: str, namespace: str | None
) -> int:
    """Delete (or mark for deletion) every object of `resource`; how many there were."""
    if "deletecollection" in resource.verbs:
        answer = await api.delete_collection(resource, namespace=namespace, tenant=tenant)
        return len(answer.get("items") or [])
    listed = await api.list_all(resource, namespace=namespace, tenant=tenant)
    items = listed.get("items") or []
    for item in items:
        meta = item["metadata"]
        if meta.get("deletionTimestamp"):
            continue
        try:
            await api.delete(resource, meta["name"], namespace=meta.get("namespace"), tenant=tenant)
        except errors.NotFound:
            continue
    return len(items)


# The controller


class NamespaceController:
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
        wall_clock: Callable[[], datetime.datetime] = _wall_clock,
    ) -> None:
        registry = registry or resources.Registry()
        self._api = api
        self._recorder = recorder
        self._workers = workers
        self._rechecks = Rechecks(base=recheck_interval, cap=recheck_max)
        self._wall_clock = wall_clock
        self._resource = find_resource(registry, "", "namespaces")
        self._service_accounts_resource = find_resource(registry, "", "serviceaccounts")
        # Everything a namespace can hold, in the registry's order.
        self._content = [r for r in registry if r.namespaced]
        self._queue: machinery.WorkQueue[str] = machinery.WorkQueue()
        self._namespaces = informers.informer(self._resource)
        self._namespaces.add_handler(
            on_add=self._enqueue, on_update=lambda _old, new: self._enqueue(new)
        )
        # Only the default accounts matter here, so only they are cached.
        self._service_accounts = informers.informer(
            self._service_accounts_resource,
            field_selector=f"metadata.name={DEFAULT_SERVICE_ACCOUNT}",
        )
        self._service_accounts.add_handler(on_delete=self._service_account_deleted)
        # A dying tenant's namespaces lose their accounts before they turn Terminating
        # themselves; knowing the tenant's phase saves creating them again in vain.
        self._tenants = informers.informer(find_resource(registry, "", "tenants"))

    def _enqueue(self, namespace: Obj) -> None:
        self._queue.add(self._namespaces.key(namespace))

    def _service_account_deleted(self, account: Obj) -> None:
        meta = account.get("metadata") or {}
        if meta.get("name") != DEFAULT_SERVICE_ACCOUNT or not meta.get("namespace"):
            return
        key = f"{meta.get('tenant') or resources.SYSTEM_TENANT}/{meta['namespace']}"
        namespace = self._namespaces.get(key)
        # Accounts of a namespace being emptied go for good; only a live one wants it back.
        if namespace is not None and not terminating(namespace):
            self._queue.add(key)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await common.work(
            self._queue,
            self._sync,
            workers=self._workers,
            what="namespace",
            logger=logger,
            task_status=task_status,
        )

    async def _sync(self, key: str) -> None:
        namespace = self._namespaces.get(key)
        if namespace is None:
            self._rechecks.forget(key)
            return
        if namespace["metadata"].get("deletionTimestamp"):
            await self._finish(key, namespace)
        elif not terminating(namespace) and not self._tenant_terminating(namespace):
            await self._ensure_service_account(namespace)

    def _tenant_terminating(self, namespace: Obj) -> bool:
        tenant = self._tenants.get(namespace["metadata"].get("tenant") or resources.SYSTEM_TENANT)
        # A tenant the cache has not seen yet is a new one, not a dying one.
        return tenant is not None and terminating(tenant)

    async def _ensure_service_account(self, namespace: Obj) -> None:
        meta = namespace["metadata"]
        tenant = meta.get("tenant") or resources.SYSTEM_TENANT
        name = meta["name"]
        if self._service_accounts.get(f"{tenant}/{name}/{DEFAULT_SERVICE_ACCOUNT}") is not None:
            return
        body = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": DEFAULT_SERVICE_ACCOUNT},
        }
        try:
            await self._api.create(
                self._service_accounts_resource, body, namespace=name, tenant=tenant
            )
        except errors.AlreadyExists:
            # The cache lags behind an earlier create; the account is there.
            return
        except (errors.NotFound, errors.Forbidden) as exc:
            # The namespace or its tenant is gone or going: it needs no account any more.
            logger.debug("no default service account for %s/%s: %s", tenant, name, exc)
            return
        logger.debug("created the default service account of %s/%s", tenant, name)

    async def _finish(self, key: str, namespace: Obj) -> None:
        if FINALIZER not in spec_finalizers(namespace):
            self._rechecks.forget(key)
            return
        meta = namespace["metadata"]
        tenant = meta.get("tenant") or resources.SYSTEM_TENANT
        name = meta["name"]
        custom = await client.served_custom_resources(self._api, tenant=tenant)
        content = await delete_content(
            self._api,
            [*(r for r in custom if r.namespaced), *self._content],
            tenant=tenant,
            namespace=name,
        )
        if not content.gone:
            logger.debug("namespace %s/%s is not empty yet: %s", tenant, name, content.describe())
            if content.failures:
                self._recorder.event(
                    namespace,
                    machinery.EventType.WARNING,
                    reason=Reason.DELETION_FAILED,
                    message=f"Failed to delete the content of the namespace: {content.describe()}",
                )
            await self._report(namespace, content)
            raise machinery.Requeue(self._rechecks.delay(key))
        finalized = await common.finalize(
            self._api, self._resource, without_finalizer(namespace, FINALIZER), tenant=tenant
        )
        self._rechecks.forget(key)
        if finalized:
            logger.debug("finalized namespace %s/%s", tenant, name)

    async def _report(self, namespace: Obj, content: Content) -> None:
        """Put the conditions in the namespace's status, if they changed."""
        status = namespace.get("status") or {}
        current = status.get("conditions") or []
        merged = merge_conditions(
            current, deletion_conditions(content), now=timestamps.rfc3339(self._wall_clock())
        )
        if merged == current:
            return
        updated = copy.deepcopy(namespace)
        updated["status"] = {**status, "conditions": merged}
        meta = namespace["metadata"]
        try:
            await self._api.replace(
                self._resource,
                updated,
                tenant=meta.get("tenant") or resources.SYSTEM_TENANT,
                subresource="status",
            )
        except (errors.Conflict, errors.NotFound):
            # Conditions are advice; the next round writes them from a fresher copy.
            return
