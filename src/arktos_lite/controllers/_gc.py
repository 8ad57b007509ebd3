"""The garbage collector: owned objects follow their owners, in every tenant.

Kubernetes semantics over `metadata.ownerReferences`. Owners and dependents share a
tenant, and a namespace when both are namespaced; an owner may also be cluster-scoped.
Guarantees:

* Nothing with a live owner is ever collected. An owner counts as absent only when a live
  GET at the dependent's coordinates finds nothing, or finds an object with another uid;
  the informer caches are never trusted to say that something is gone. Deletes carry the
  dependent's uid and resourceVersion as preconditions, so a dependent that gained an
  owner since it was judged is judged again instead of deleted.
* A dependent whose owners are all absent is deleted (Background, or with the
  propagation its own finalizers ask for). References to absent owners beside a live
  one are removed.
* `Background`: the owner is gone at once, and then its dependents, level by level.
* `Foreground` (the owner carries `foregroundDeletion` and a deletionTimestamp): its
  dependents are deleted first, those with dependents of their own in the foreground
  too; once no dependent with `blockOwnerDeletion: true` is left the finalizer goes and
  with it the owner.
* `Orphan` (the owner carries `orphan`): every dependent loses its reference to the
  owner, then the finalizer goes.
* Before letting an owner go, the dependents are listed from the API (by the owner's
  hash key), so a dependent the cache has not seen yet is neither left blocking-free nor
  left holding a reference to a vanished owner.
* An owner reference that cannot be resolved (an unknown kind, or a namespaced owner
  of an object that is not namespaced) never gets its dependent collected; the latter
  is reported with an `OwnerRefInvalidNamespace` warning event, as Kubernetes does.
* Custom resources take part like built-in ones: the kinds each tenant is served are
  read from the CustomResourceDefinitions in the collector's cache (its own tenant's and
  the system tenant's shared ones, `client.custom_resources`), so a reference to a
  custom owner resolves in the dependent's tenant, and each custom resource has an
  informer across tenants from the moment its CRD appears until it is gone. A custom
  kind whose CRD the cache does not hold yet is an unknown kind: kept, never collected.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import trio

from arktos_lite import client, machinery
from arktos_lite.api import errors, hash_key, resources, selectors

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

FOREGROUND = "foregroundDeletion"
CRD_GROUP = "apiextensions.k8s.io"
CRD_KIND = "CustomResourceDefinition"
ORPHAN = "orphan"

# Events are the one built-in kind left out, as kube-controller-manager's collector does:
# they are the most numerous and busiest objects, nobody owns them or is owned by them,
# and watching them would cost more than everything else together.
IGNORED = frozenset({("", "Event")})

# How often one dependent is re-read and retried when its writes keep losing races.
_WRITE_ATTEMPTS = 5
# When the API shows a blocking dependent the cache does not hold yet, look again after
# this long (its arrival in the cache also brings the owner back).
_RECHECK_AFTER = 1.0


def watched(registry: Iterable[resources.Resource] | None = None) -> list[resources.Resource]:
    """The resources whose objects can be owners or dependents."""
    return [
        r
        for r in (registry if registry is not None else resources.Registry())
        if (r.group, r.kind) not in IGNORED
        and {"list", "watch", "get", "delete", "patch"} <= set(r.verbs)
    ]


# Values


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """One object, where it lives: enough to get, patch or delete exactly that object."""

    resource: resources.Resource
    tenant: str | None
    namespace: str | None
    name: str
    uid: str

    @classmethod
    def of(cls, resource: resources.Resource, obj: Mapping[str, Any]) -> Identity:
        meta: Mapping[str, Any] = obj.get("metadata") or {}
        tenant = None
        if resource.scope is not resources.Scope.CLUSTER:
            tenant = meta.get("tenant") or resources.SYSTEM_TENANT
        return cls(
            resource=resource,
            tenant=tenant,
            namespace=meta.get("namespace") if resource.namespaced else None,
            name=str(meta.get("name") or ""),
            uid=str(meta.get("uid") or ""),
        )

    @property
    def key(self) -> str:
        """The object's key in its informer."""
        if self.resource.scope is resources.Scope.CLUSTER:
            return self.name
        if self.resource.scope is resources.Scope.TENANT:
            return f"{self.tenant}/{self.name}"
        return f"{self.tenant}/{self.namespace}/{self.name}"

    def same_object(self, other: Identity) -> bool:
        """Whether both name one object (the uid aside), at whatever version."""
        return (
            _same_resource(self.resource, other.resource)
            and self.tenant == other.tenant
            and self.namespace == other.namespace
            and self.name == other.name
        )

    def __str__(self) -> str:
        return f"{self.resource.qualified} {self.key} ({self.uid})"


def _same_resource(a: resources.Resource, b: resources.Resource) -> bool:
    # Two tenants' CRDs may describe one custom resource differently (versions, short
    # names); the objects are the same ones wherever the group and plural are.
    return a == b or (a.group, a.plural, a.scope) == (b.group, b.plural, b.scope)


@dataclasses.dataclass(frozen=True, slots=True)
class OwnerRef:
    """One entry of `metadata.ownerReferences`."""

    api_version: str
    kind: str
    name: str
    uid: str
    block_owner_deletion: bool = False

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @classmethod
    def all_of(cls, obj: Mapping[str, Any]) -> tuple[OwnerRef, ...]:
        """The owner references of `obj`; malformed ones (no uid, kind or name) are
        skipped, since they could never be resolved."""
        refs = (obj.get("metadata") or {}).get("ownerReferences") or ()
        found: list[OwnerRef] = []
        for ref in refs:
            if not isinstance(ref, Mapping):
                continue
            uid, kind, name = ref.get("uid"), ref.get("kind"), ref.get("name")
            if not (isinstance(uid, str) and uid and kind and name):
                continue
            found.append(
                cls(
                    api_version=str(ref.get("apiVersion") or ""),
                    kind=str(kind),
                    name=str(name),
                    uid=uid,
                    block_owner_deletion=ref.get("blockOwnerDeletion") is True,
                )
            )
        return tuple(found)


class Unresolvable(enum.StrEnum):
    """Why an owner reference names no object the collector can look up."""

    UNKNOWN_KIND = "unknown kind"
    INVALID_SCOPE = "invalid scope"


def locate_owner(
    dependent: Identity, ref: OwnerRef, registry: resources.Registry
) -> Identity | Unresolvable:
    """Where the owner `ref` of `dependent` must live for the reference to hold.

    Namespaced owners live in the dependent's namespace, tenant-scoped ones in its
    tenant, cluster-scoped ones anywhere. The apiVersion's version does not matter, as in
    Kubernetes' REST mapping by group and kind.
    """
    resource = registry.by_kind(ref.group, ref.kind)
    if resource is None or (resource.group, resource.kind) in IGNORED:
        return Unresolvable.UNKNOWN_KIND
    if resource.scope is resources.Scope.CLUSTER:
        return Identity(resource, None, None, ref.name, ref.uid)
    if resource.scope is resources.Scope.TENANT:
        if dependent.tenant is None:
            return Unresolvable.INVALID_SCOPE
        return Identity(resource, dependent.tenant, None, ref.name, ref.uid)
    if dependent.namespace is None:
        return Unresolvable.INVALID_SCOPE
    return Identity(resource, dependent.tenant, dependent.namespace, ref.name, ref.uid)


# The graph


@dataclasses.dataclass(frozen=True, slots=True)
class _Dependent:
    identity: Identity
    owners: tuple[OwnerRef, ...]


class Graph:
    """Which objects own which, by uid; only objects with owner references are held.

    Owners need no entry: whether an owner exists is a question for the caches and, in
    the end, the API. The two maps are always exact inverses.
    """

    def __init__(self) -> None:
        self._dependents: dict[str, _Dependent] = {}
        # owner uid -> dependent uid -> the dependent's reference to that owner
        self._by_owner: dict[str, dict[str, OwnerRef]] = {}

    def __len__(self) -> int:
        return len(self._dependents)

    def set_owners(self, dependent: Identity, owners: Iterable[OwnerRef]) -> list[OwnerRef]:
        """Record `dependent` with these owners (none: forget it).

        Returns the references that appeared, vanished or changed, old or new: their
        owners' sets of (blocking) dependents changed.
        """
        # Two references to one uid make no sense; the first one counts.
        new: dict[str, OwnerRef] = {}
        for ref in owners:
            new.setdefault(ref.uid, ref)
        entry = self._dependents.get(dependent.uid)
        old = {ref.uid: ref for ref in entry.owners} if entry is not None else {}
        changed = [ref for uid, ref in old.items() if new.get(uid) != ref]
        changed += [ref for uid, ref in new.items() if uid not in old]
        for uid in old.keys() - new.keys():
            dependents = self._by_owner[uid]
            del dependents[dependent.uid]
            if not dependents:
                del self._by_owner[uid]
        for uid, ref in new.items():
            self._by_owner.setdefault(uid, {})[dependent.uid] = ref
        if new:
            self._dependents[dependent.uid] = _Dependent(dependent, tuple(new.values()))
        else:
            self._dependents.pop(dependent.uid, None)
        return changed

    def remove(self, uid: str) -> list[OwnerRef]:
        """Forget the dependent `uid`; returns its references."""
        entry = self._dependents.get(uid)
        if entry is None:
            return []
        return self.set_owners(entry.identity, ())

    def owners(self, uid: str) -> tuple[OwnerRef, ...]:
        entry = self._dependents.get(uid)
        return entry.owners if entry is not None else ()

    def identity(self, uid: str) -> Identity | None:
        entry = self._dependents.get(uid)
        return entry.identity if entry is not None else None

    def dependents(self, owner_uid: str) -> list[tuple[Identity, OwnerRef]]:
        """Each dependent that names `owner_uid`, with its reference to it."""
        return [
            (self._dependents[uid].identity, ref)
            for uid, ref in self._by_owner.get(owner_uid, {}).items()
        ]

    def has_dependents(self, owner_uid: str) -> bool:
        return owner_uid in self._by_owner

    def owner_uids(self) -> Iterator[str]:
        return iter(self._by_owner)


# Decisions


class OwnerState(enum.StrEnum):
    SOLID = "solid"  # exists and is not waiting for its dependents (or cannot be looked up)
    DANGLING = "dangling"  # absent: not found, or found with another uid
    WAITING = "waiting"  # being deleted in the foreground: its dependents go first


class Action(enum.StrEnum):
    KEEP = "keep"
    DROP_REFERENCES = "drop references"
    DELETE = "delete"


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    # The owner uids whose references go (DROP_REFERENCES).
    drop: frozenset[str] = frozenset()
    # The propagation policy of the delete (DELETE).
    policy: str | None = None
    # Make the dependent's references non-blocking before deleting it (DELETE): it is
    # itself waiting for a dependent that waits, and a cycle must not deadlock.
    unblock: bool = False


def judge(
    states: Mapping[str, OwnerState],
    *,
    finalizers: Iterable[str] = (),
    has_dependents: bool = False,
    dependent_waits: bool = False,
) -> Verdict:
    """What to do with a dependent whose owners (by uid) are in `states`.

    `has_dependents`: the dependent owns objects itself; `dependent_waits`: one of them is
    being deleted in the foreground. Kubernetes' attemptToDeleteItem decision.
    """
    if not states:
        return Verdict(Action.KEEP)
    solid = [uid for uid, state in states.items() if state is OwnerState.SOLID]
    gone = frozenset(uid for uid, state in states.items() if state is not OwnerState.SOLID)
    if solid:
        if gone:
            return Verdict(Action.DROP_REFERENCES, drop=gone)
        return Verdict(Action.KEEP)
    if OwnerState.WAITING in states.values() and has_dependents:
        # Its owner waits for it, and it has dependents: they go first, in the foreground.
        return Verdict(Action.DELETE, policy="Foreground", unblock=dependent_waits)
    finalizers = set(finalizers)
    if ORPHAN in finalizers:
        policy = "Orphan"
    elif FOREGROUND in finalizers:
        policy = "Foreground"
    else:
        policy = "Background"
    return Verdict(Action.DELETE, policy=policy)


def waits_for_dependents(obj: Mapping[str, Any]) -> bool:
    """Being deleted in the foreground: its dependents go first."""
    meta = obj.get("metadata") or {}
    return bool(meta.get("deletionTimestamp")) and FOREGROUND in (meta.get("finalizers") or ())


def references_without(obj: Mapping[str, Any], uids: Iterable[str]) -> list[Obj]:
    """`obj`'s owner references as JSON, without those to the owners `uids`."""
    drop = set(uids)
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [dict(ref) for ref in refs if not (isinstance(ref, Mapping) and ref.get("uid") in drop)]


def references_unblocked(obj: Mapping[str, Any]) -> list[Obj]:
    """`obj`'s owner references as JSON, none of them blocking its owners' deletion."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [
        {**ref, "blockOwnerDeletion": False} if ref.get("blockOwnerDeletion") else dict(ref)
        for ref in refs
        if isinstance(ref, Mapping)
    ]


def finalizers_without(obj: Mapping[str, Any], finalizer: str) -> list[str]:
    return [f for f in (obj.get("metadata") or {}).get("finalizers") or () if f != finalizer]


# The controller


class GarbageCollector:
    """Deletes objects whose owners are gone and carries out propagation policies."""

    def __init__(
        self,
        api: client.Client,
        informers: machinery.InformerFactory,
        *,
        recorder: machinery.EventRecorder,
        workers: int = 4,
        registry: resources.Registry | None = None,
    ) -> None:
        self._api = api
        self._recorder = recorder
        self._workers = workers
        self._registry = registry or resources.Registry()
        self._graph = Graph()
        self._queue: machinery.WorkQueue[Identity] = machinery.WorkQueue()
        self._informers: dict[resources.Resource, machinery.Informer] = {}
        for resource in watched(self._registry):
            informer = informers.informer(resource)
            self._informers[resource] = informer
            self._handle(resource, informer)
        # Custom resources: the CRDs say which there are, per tenant.
        crds = self._registry.by_kind(CRD_GROUP, CRD_KIND)
        self._crds = informers.informer(crds) if crds is not None else None
        if self._crds is not None:
            self._crds.add_handler(
                on_add=lambda _crd: self._crds_changed(),
                on_update=lambda _old, _new: self._crds_changed(),
                on_delete=lambda _crd: self._crds_changed(),
            )
        self._views: dict[str | None, resources.Registry] = {}
        # (group, plural) -> the informer of that custom resource across tenants, and
        # the scope that stops it.
        self._custom: dict[tuple[str, str], tuple[machinery.Informer, trio.CancelScope]] = {}
        self._nursery: trio.Nursery | None = None

    def _handle(self, resource: resources.Resource, informer: machinery.Informer) -> None:
        informer.add_handler(
            on_add=functools.partial(self._observed, resource, None),
            on_update=functools.partial(self._observed, resource),
            on_delete=functools.partial(self._gone, resource),
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        logger.info(
            "garbage collector starting: %d resources, %d workers",
            len(self._informers),
            self._workers,
        )
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._crds_changed()
                await nursery.start(
                    functools.partial(
                        machinery.run_workers, self._queue, self._process, workers=self._workers
                    )
                )
                task_status.started()
        finally:
            self._nursery = None
            self._queue.shutdown()
            logger.info("garbage collector stopped")

    # Custom resources

    def _registry_for(self, tenant: str | None) -> resources.Registry:
        """The kinds an object of `tenant` may name as owners (None: cluster-scoped)."""
        if tenant is None or self._crds is None:
            return self._registry
        view = self._views.get(tenant)
        if view is None:
            custom = client.custom_resources(self._crds.list(), tenant=tenant)
            view = self._views[tenant] = resources.Registry([*self._registry, *custom])
        return view

    def _crds_changed(self) -> None:
        """Forget the views; start and stop custom informers to match the CRDs."""
        self._views.clear()
        nursery = self._nursery
        if nursery is None or self._crds is None:
            return  # `run` calls again once it can start informers
        crds = self._crds.list()
        tenants = {
            (crd.get("metadata") or {}).get("tenant") or resources.SYSTEM_TENANT for crd in crds
        } - {resources.SYSTEM_TENANT}
        wanted: dict[tuple[str, str], resources.Resource] = {}
        for tenant in [resources.SYSTEM_TENANT, *sorted(tenants)]:
            for resource in client.custom_resources(crds, tenant=tenant):
                wanted.setdefault((resource.group, resource.plural), resource)
        for key, (informer, scope) in list(self._custom.items()):
            if key not in wanted or not _same_resource(wanted[key], informer.resource):
                del self._custom[key]
                scope.cancel()
                # Its CRD is gone, and its objects with it.
                for obj in informer.list():
                    self._gone(informer.resource, obj)
        for key, resource in wanted.items():
            if key not in self._custom:
                informer = machinery.Informer(
                    machinery.list_watch(self._api, resource),
                    transform=machinery.strip_managed_fields,
                )
                self._handle(resource, informer)
                scope = trio.CancelScope()
                self._custom[key] = (informer, scope)
                nursery.start_soon(_run_informer, informer, scope)
                logger.debug("watching custom resource %s", resource.qualified)

    def _informer_of(self, resource: resources.Resource) -> machinery.Informer | None:
        informer = self._informers.get(resource)
        if informer is None:
            custom = self._custom.get((resource.group, resource.plural))
            informer = custom[0] if custom is not None else None
        return informer

    def _watched(self) -> list[resources.Resource]:
        return [*self._informers, *(informer.resource for informer, _ in self._custom.values())]

    # Event handlers: keep the graph, enqueue what may need work.

    def _observed(self, resource: resources.Resource, old: Obj | None, new: Obj) -> None:
        identity = Identity.of(resource, new)
        owners = OwnerRef.all_of(new)
        changed = self._graph.set_owners(identity, owners)
        if owners and (old is None or changed):
            self._queue.add(identity)
        self._wake_waiting_owners(identity, changed)
        meta = new.get("metadata") or {}
        finalizers = meta.get("finalizers") or ()
        if meta.get("deletionTimestamp") and (FOREGROUND in finalizers or ORPHAN in finalizers):
            self._queue.add(identity)

    def _gone(self, resource: resources.Resource, obj: Obj) -> None:
        identity = Identity.of(resource, obj)
        self._wake_waiting_owners(identity, self._graph.remove(identity.uid))
        # Its dependents may have lost their last owner.
        for dependent, _ref in self._graph.dependents(identity.uid):
            self._queue.add(dependent)

    def _wake_waiting_owners(self, dependent: Identity, refs: Iterable[OwnerRef]) -> None:
        """Owners waiting in the foreground whose blocking dependents may have changed."""
        for ref in refs:
            owner = locate_owner(dependent, ref, self._registry_for(dependent.tenant))
            if isinstance(owner, Identity):
                cached = self._cached(owner)
                if cached is not None and waits_for_dependents(cached):
                    self._queue.add(owner)

    # Work

    async def _process(self, identity: Identity) -> None:
        obj = self._cached(identity)
        if obj is None:
            # Gone (its dependents were queued when it went), or not cached yet (its
            # arrival queues it).
            return
        meta = obj.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            finalizers = meta.get("finalizers") or ()
            if ORPHAN in finalizers:
                await self._orphan_dependents(identity)
            elif FOREGROUND in finalizers:
                await self._delete_dependents_first(identity, obj)
            # Otherwise it is on its way out already.
            return
        if OwnerRef.all_of(obj):
            await self._attempt_to_delete(identity, obj)

    async def _attempt_to_delete(self, identity: Identity, cached: Obj) -> None:
        refs = OwnerRef.all_of(cached)
        if all(self._cached_state(identity, ref) is OwnerState.SOLID for ref in refs):
            return
        # Something looks absent or waiting: judge the object as it is now, on the owners
        # as they are now.
        live = await self._live(identity)
        if live is None:
            return
        refs = OwnerRef.all_of(live)
        states = {ref.uid: await self._owner_state(identity, ref) for ref in refs}
        own_dependents = [
            dependent
            for dependent, _ref in self._graph.dependents(identity.uid)
            if self._located(dependent, identity)
        ]
        verdict = judge(
            states,
            finalizers=(live.get("metadata") or {}).get("finalizers") or (),
            has_dependents=bool(own_dependents),
            dependent_waits=any(
                (obj := self._cached(dependent)) is not None and waits_for_dependents(obj)
                for dependent in own_dependents
            ),
        )
        logger.debug("%s: owners %s: %s", identity, dict(states), verdict)
        if verdict.action is Action.KEEP:
            return
        if verdict.action is Action.DROP_REFERENCES:
            await self._write_references(identity, live, references_without(live, verdict.drop))
            return
        if verdict.unblock:
            patched = await self._write_references(identity, live, references_unblocked(live))
            if patched is None:
                return
            live = patched
        await self._delete(identity, live, policy=verdict.policy)

    async def _delete_dependents_first(self, owner: Identity, cached: Obj) -> None:
        blocking = False
        for dependent, ref in self._graph.dependents(owner.uid):
            if not self._located(dependent, owner):
                continue
            blocking = blocking or ref.block_owner_deletion
            obj = self._cached(dependent)
            if obj is not None and not waits_for_dependents(obj):
                self._queue.add(dependent)
        if blocking:
            # Each blocking dependent that goes brings the owner back here.
            return
        live_blocking = [
            dependent
            for dependent, ref in await self._live_dependents(owner)
            if ref.block_owner_deletion
        ]
        if live_blocking:
            logger.debug("%s waits for %d dependents not cached yet", owner, len(live_blocking))
            raise machinery.Requeue(after=_RECHECK_AFTER)
        await self._remove_finalizer(owner, FOREGROUND)

    async def _orphan_dependents(self, owner: Identity) -> None:
        # The API, not the cache, says who the dependents are: one the cache has not seen
        # yet would otherwise keep a reference to an owner about to vanish, and be
        # collected.
        for dependent, _ref in await self._live_dependents(owner):
            await self._drop_reference(dependent, owner.uid)
        await self._remove_finalizer(owner, ORPHAN)

    # Looking things up

    def _cached(self, identity: Identity) -> Obj | None:
        informer = self._informer_of(identity.resource)
        obj = informer.get(identity.key) if informer is not None else None
        if obj is None or (obj.get("metadata") or {}).get("uid") != identity.uid:
            return None
        return obj

    def _located(self, dependent: Identity, owner: Identity) -> bool:
        """Whether `dependent`'s reference to `owner.uid` really points at `owner`."""
        for ref in self._graph.owners(dependent.uid):
            if ref.uid == owner.uid:
                located = locate_owner(dependent, ref, self._registry_for(dependent.tenant))
                return isinstance(located, Identity) and located.same_object(owner)
        return False

    def _cached_state(self, dependent: Identity, ref: OwnerRef) -> OwnerState | None:
        """SOLID where the cache shows the owner alive, or it cannot be looked up at all;
        otherwise None: only the API can tell."""
        owner = locate_owner(dependent, ref, self._registry_for(dependent.tenant))
        if not isinstance(owner, Identity):
            return OwnerState.SOLID
        obj = self._cached(owner)
        if obj is not None and not waits_for_dependents(obj):
            return OwnerState.SOLID
        return None

    async def _owner_state(self, dependent: Identity, ref: OwnerRef) -> OwnerState:
        owner = locate_owner(dependent, ref, self._registry_for(dependent.tenant))
        if owner is Unresolvable.INVALID_SCOPE:
            self._report_invalid(dependent, ref)
            return OwnerState.SOLID
        if not isinstance(owner, Identity):
            logger.debug("%s: owner %s/%s cannot be looked up", dependent, ref.kind, ref.name)
            return OwnerState.SOLID
        live = await self._live(owner)
        if live is None:
            return OwnerState.DANGLING
        return OwnerState.WAITING if waits_for_dependents(live) else OwnerState.SOLID

    def _report_invalid(self, dependent: Identity, ref: OwnerRef) -> None:
        cached = self._cached(dependent)
        if cached is not None:
            self._recorder.event(
                cached,
                machinery.EventType.WARNING,
                reason="OwnerRefInvalidNamespace",
                message=f"ownerRef [{ref.api_version}/{ref.kind}, name: {ref.name}, "
                f"uid: {ref.uid}] cannot own a {dependent.resource.scope.lower()}-scoped "
                "object",
            )

    async def _live(self, identity: Identity) -> Obj | None:
        """The object as the API has it now; None if it is gone (or another has its name)."""
        try:
            obj = await self._api.get(
                identity.resource,
                identity.name,
                namespace=identity.namespace,
                tenant=identity.tenant,
            )
        except errors.NotFound:
            return None
        if (obj.get("metadata") or {}).get("uid") != identity.uid:
            return None
        return obj

    async def _live_dependents(self, owner: Identity) -> list[tuple[Identity, OwnerRef]]:
        """Every object the API holds that names `owner` as an owner, at its coordinates."""
        selector = f"{selectors.OWNER_HASHKEY_PREFIX}{owner.resource.kind}={hash_key(owner.uid)}"
        found: list[tuple[Identity, OwnerRef]] = []
        for resource in self._watched():
            where = _dependents_where(owner, resource)
            if where is None:
                continue
            tenant, namespace = where
            try:
                listed = await self._api.list(
                    resource, namespace=namespace, tenant=tenant, field_selector=selector
                )
            except errors.NotFound:
                # A custom resource this tenant is not served (or whose CRD just went).
                if resource.group in self._registry.groups():
                    raise
                continue
            for item in listed.get("items") or ():
                dependent = Identity.of(resource, item)
                for ref in OwnerRef.all_of(item):
                    located = locate_owner(dependent, ref, self._registry_for(dependent.tenant))
                    if (
                        ref.uid == owner.uid
                        and isinstance(located, Identity)
                        and located.same_object(owner)
                    ):
                        found.append((dependent, ref))
                        break
        return found

    # Writing

    async def _delete(self, identity: Identity, live: Obj, *, policy: str | None) -> None:
        meta = live["metadata"]
        try:
            await self._api.delete(
                identity.resource,
                identity.name,
                namespace=identity.namespace,
                tenant=identity.tenant,
                propagation_policy=policy,
                preconditions={"uid": identity.uid, "resourceVersion": meta["resourceVersion"]},
            )
        except errors.NotFound:
            return
        except errors.Conflict:
            # It changed since it was judged: judge it again.
            raise machinery.Requeue() from None
        logger.debug("deleted %s (%s)", identity, policy)

    async def _write_references(
        self, identity: Identity, live: Obj, references: list[Obj]
    ) -> Obj | None:
        """Replace `live`'s owner references unless it changed since; None if it is gone."""
        try:
            return await self._api.patch(
                identity.resource,
                identity.name,
                {
                    "metadata": {
                        "ownerReferences": references or None,
                        "resourceVersion": live["metadata"]["resourceVersion"],
                    }
                },
                namespace=identity.namespace,
                tenant=identity.tenant,
            )
        except errors.NotFound:
            return None
        except errors.Conflict:
            raise machinery.Requeue() from None

    async def _drop_reference(self, dependent: Identity, owner_uid: str) -> None:
        for _attempt in range(_WRITE_ATTEMPTS):
            live = await self._live(dependent)
            if live is None or not any(ref.uid == owner_uid for ref in OwnerRef.all_of(live)):
                return
            try:
                await self._write_references(
                    dependent, live, references_without(live, (owner_uid,))
                )
            except machinery.Requeue:
                continue
            return
        raise machinery.Requeue()

    async def _remove_finalizer(self, identity: Identity, finalizer: str) -> None:
        for _attempt in range(_WRITE_ATTEMPTS):
            live = await self._live(identity)
            if live is None or finalizer not in (live["metadata"].get("finalizers") or ()):
                return
            try:
                await self._api.patch(
                    identity.resource,
                    identity.name,
                    {
                        "metadata": {
                            "finalizers": finalizers_without(live, finalizer),
                            "resourceVersion": live["metadata"]["resourceVersion"],
                        }
                    },
                    namespace=identity.namespace,
                    tenant=identity.tenant,
                )
            except errors.NotFound:
                return
            except errors.Conflict:
                continue
            logger.debug("removed %s from %s", finalizer, identity)
            return
        raise machinery.Requeue()


async def _run_informer(informer: machinery.Informer, scope: trio.CancelScope) -> None:
    with scope:
        await informer.run()


def _dependents_where(
    owner: Identity, resource: resources.Resource
) -> tuple[str | None, str | None] | None:
    """The tenant and namespace to list `resource` in for dependents of `owner`; None
    when no object of `resource` can be owned by it."""
    if owner.resource.scope is resources.Scope.CLUSTER:
        tenant = None if resource.scope is resources.Scope.CLUSTER else resources.ALL_TENANTS
        return tenant, None
    if resource.scope is resources.Scope.CLUSTER:
        return None
    if owner.resource.scope is resources.Scope.TENANT:
        return owner.tenant, None
    if not resource.namespaced:
        return None
    return owner.tenant, owner.namespace
