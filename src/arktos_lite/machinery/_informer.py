"""Shared informers: an indexed in-memory cache of one resource, and handlers told of changes.

An `Informer` runs a reflector into its store and tells its handlers about every change.
Guarantees:

* Handlers see a consistent story per key: an add, then updates, then a delete; never an
  update or delete of an object they were not told about, never the same version twice.
  A re-list (after a 410, or a selector change) delivers only the real differences: adds
  for new objects, updates where the resourceVersion moved, deletes (with the last cached
  object) for those that are gone or no longer match.
* A handler added to a running informer is first told about every cached object as an add.
* Indexes always agree with the cached objects. Each object is held once, as decoded;
  indexes hold only keys. Callers must treat the objects they get as read-only.
* `run` reports `started` once the first list is in the store.
* A `transform` (e.g. `strip_managed_fields`) is applied to every object before it is
  compared, cached or handed to handlers, so the cache holds only what is used.

Over a partitioned cluster (a `client.RoutedClient`), an informer runs one reflector per
partition that holds its objects (`reflector.by_partition`), all feeding the one cache:

* Each partition lists, watches and resumes from its own resourceVersion; a re-list of
  one partition adds, updates and deletes only objects that partition holds.
* A partition whose server is down backs off on its own; the others go on, and handlers
  keep hearing of their changes. When it returns it resumes its watch where it stopped.
* `has_synced` (and `run`'s `started`) once every partition has listed with the
  selectors in force; `listed` is called (for subclasses to hook) each time that holds
  anew.

`InformerFactory` hands out one shared informer per resource, tenant, namespace and
selectors, so that components reading the same objects share one list and one watch.
"""

from __future__ import annotations

import builtins
import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

import trio

from arktos_lite import client
from arktos_lite.api import resources
from arktos_lite.machinery import _reflector as reflector

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], Iterable[str]]
Transform = Callable[[Obj], Obj]
AddHandler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
DeleteHandler = Callable[[Obj], None]


# Keys


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectRef:
    """The parts of an object key; None where the object's scope has no such part."""

    tenant: str | None
    namespace: str | None
    name: str


def object_key(obj: Mapping[str, Any], *, scope: resources.Scope | None = None) -> str:
    """`tenant/namespace/name`, `tenant/name` or `name`, by the object's scope.

    Without `scope`, an object with a namespace is namespaced, one with only a tenant is
    tenant-scoped, and one with neither is cluster-scoped. A missing tenant is `system`.
    """
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    namespace = meta.get("namespace")
    tenant = meta.get("tenant")
    if scope is None:
        if namespace:
            scope = resources.Scope.NAMESPACE
        elif tenant:
            scope = resources.Scope.TENANT
        else:
            scope = resources.Scope.CLUSTER
    if scope is resources.Scope.CLUSTER:
        return name
    tenant = tenant or resources.SYSTEM_TENANT
    if scope is resources.Scope.TENANT:
        return f"{tenant}/{name}"
    return f"{tenant}/{namespace or ''}/{name}"


def split_key(key: str) -> ObjectRef:
    """The inverse of `object_key`."""
    parts = key.split("/")
    if len(parts) == 3:
        return ObjectRef(tenant=parts[0], namespace=parts[1], name=parts[2])
    if len(parts) == 2:
        return ObjectRef(tenant=parts[0], namespace=None, name=parts[1])
    if len(parts) == 1:
        return ObjectRef(tenant=None, namespace=None, name=parts[0])
    raise ValueError(f"not an object key: {key!r}")


# Index functions


def by_namespace(obj: Obj) -> tuple[str, ...]:
    """`tenant/namespace` of a namespaced object."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    if not namespace:
        return ()
    return (f"{meta.get('tenant') or resources.SYSTEM_TENANT}/{namespace}",)


def by_node_name(obj: Obj) -> tuple[str, ...]:
    """`spec.nodeName`, where set (pods bound to a node, actions for one)."""
    node = (obj.get("spec") or {}).get("nodeName")
    return (node,) if node else ()


def by_owner_uid(obj: Obj) -> tuple[str, ...]:
    """The uid of every owner in `metadata.ownerReferences`."""
    owners = (obj.get("metadata") or {}).get("ownerReferences") or ()
    return tuple(uid for owner in owners if (uid := owner.get("uid")))


def by_label(key: str) -> IndexFunc:
    """An index function giving the value of label `key`, where the object has it."""

    def index(obj: Obj) -> tuple[str, ...]:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        value = labels.get(key)
        return (value,) if value is not None else ()

    return index


def strip_managed_fields(obj: Obj) -> Obj:
    """Drop `metadata.managedFields` (in place): controllers never read them, and they
    are about half of a cached object. kube-controller-manager trims them the same way."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


# The store


class Store:
    """Objects by key, with indexes of keys by indexed value."""

    __slots__ = ("_indexers", "_indices", "_items")

    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self.add_indexers(indexers or {})

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add indexes, built at once over what is cached. A name may not change function."""
        for name, function in indexers.items():
            known = self._indexers.get(name)
            if known is function:
                continue
            if known is not None:
                raise ValueError(f"index {name!r} already exists with another function")
            self._indexers[name] = function
            index: dict[str, set[str]] = {}
            for key, obj in self._items.items():
                for value in function(obj):
                    index.setdefault(value, set()).add(key)
            self._indices[name] = index

    @property
    def indexers(self) -> Mapping[str, IndexFunc]:
        return dict(self._indexers)

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def list(self) -> builtins.list[Obj]:
        return list(self._items.values())

    def keys(self) -> builtins.list[str]:
        return list(self._items)

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        return [self._items[key] for key in self.index_keys(name, value)]

    def index_keys(self, name: str, value: str) -> builtins.list[str]:
        try:
            index = self._indices[name]
        except KeyError:
            raise KeyError(f"no index named {name!r}") from None
        return sorted(index.get(value, ()))

    def index_values(self, name: str) -> builtins.list[str]:
        """Every value of index `name` that some cached object has."""
        return sorted(self._indices[name])

    def put(self, key: str, obj: Obj) -> Obj | None:
        """Cache `obj` under `key`; returns what was there."""
        old = self._items.get(key)
        self._items[key] = obj
        for name, function in self._indexers.items():
            before = set(function(old)) if old is not None else set()
            after = set(function(obj))
            if before != after:
                index = self._indices[name]
                for value in before - after:
                    self._unindex(index, value, key)
                for value in after - before:
                    index.setdefault(value, set()).add(key)
        return old

    def remove(self, key: str) -> Obj | None:
        """Drop `key`; returns what was there."""
        old = self._items.pop(key, None)
        if old is not None:
            for name, function in self._indexers.items():
                index = self._indices[name]
                for value in set(function(old)):
                    self._unindex(index, value, key)
        return old

    @staticmethod
    def _unindex(index: dict[str, set[str]], value: str, key: str) -> None:
        keys = index.get(value)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del index[value]


# The informer


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class HandlerRegistration:
    """Callbacks told of changes (they should only enqueue keys), as added to an informer."""

    on_add: AddHandler | None = None
    on_update: UpdateHandler | None = None
    on_delete: DeleteHandler | None = None


def _version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _is_newer(new: Obj, old: Obj) -> bool:
    """Whether `new` is a later state than `old` (versions are store revisions)."""
    new_version, old_version = _version(new), _version(old)
    try:
        return int(new_version) > int(old_version)
    except ValueError:
        return new_version != old_version


class _Partition:
    """The reflector of one partition and the keys of the cached objects it holds (kept
    only when there are several partitions)."""

    __slots__ = ("_informer", "keys", "name", "reflector")

    def __init__(self, informer: Informer, name: str, lw: reflector.ListerWatcher) -> None:
        self._informer = informer
        self.name = name
        self.keys: set[str] = set()
        self.reflector = reflector.Reflector(lw, self, partition=name)

    # The reflector's sink

    def replace(self, objects: Sequence[Obj], *, resource_version: str) -> None:
        self._informer._replace_partition(self, objects, resource_version=resource_version)

    def apply(self, type_: str, obj: Obj) -> None:
        self._informer._apply_partition(self, type_, obj)


class Informer:
    """A cache of one resource kept by reflectors, with handlers. See the module docs."""

    def __init__(
        self,
        lw: reflector.ListerWatcher,
        *,
        indexers: Mapping[str, IndexFunc] | None = None,
        transform: Transform | None = None,
    ) -> None:
        self._scope = lw.resource.scope
        self.resource = lw.resource
        self._store = Store(indexers)
        self._transform = transform
        self._handlers: builtins.list[HandlerRegistration] = []
        self._synced = trio.Event()
        self._partitions = [
            _Partition(self, name, part) for name, part in reflector.by_partition(lw)
        ]

    # Reading the cache

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    @property
    def resource_version(self) -> str:
        """The last version the informer has seen; "" over several partitions, whose
        versions are revisions of different stores (see `resource_versions`)."""
        if len(self._partitions) != 1:
            return ""
        return self._partitions[0].reflector.resource_version

    @property
    def resource_versions(self) -> dict[str, str]:
        """The last version seen in each partition, by partition name ("" for one server)."""
        return {part.name: part.reflector.resource_version for part in self._partitions}

    def key(self, obj: Obj) -> str:
        return object_key(obj, scope=self._scope)

    def get(self, key: str) -> Obj | None:
        return self._store.get(key)

    def list(self) -> builtins.list[Obj]:
        return self._store.list()

    def keys(self) -> builtins.list[str]:
        return self._store.keys()

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, key: object) -> bool:
        return key in self._store

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        """The cached objects whose index function `name` gives `value`."""
        return self._store.by_index(name, value)

    def index_keys(self, name: str, value: str) -> builtins.list[str]:
        return self._store.index_keys(name, value)

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        self._store.add_indexers(indexers)

    @property
    def indexers(self) -> Mapping[str, IndexFunc]:
        return self._store.indexers

    # Handlers

    def add_handler(
        self,
        *,
        on_add: AddHandler | None = None,
        on_update: UpdateHandler | None = None,
        on_delete: DeleteHandler | None = None,
    ) -> HandlerRegistration:
        """Tell these callbacks of every change from now on, starting with an add for
        every object already cached."""
        handler = HandlerRegistration(on_add=on_add, on_update=on_update, on_delete=on_delete)
        # Copy on write: a handler may add or remove handlers while it is being called.
        self._handlers = [*self._handlers, handler]
        if on_add is not None:
            for obj in self._store.list():
                self._call(on_add, obj)
        return handler

    def remove_handler(self, handler: HandlerRegistration) -> None:
        self._handlers = [h for h in self._handlers if h is not handler]

    # Selectors

    def set_field_selector(self, selector: str | None) -> None:
        """Cache only objects matching `selector` from now on: the informer lists again,
        objects no longer matching leave as deletes, newly matching ones arrive as adds.

        A shared informer changes for everyone who holds it.
        """
        for part in self._partitions:
            part.reflector.set_field_selector(selector)

    def set_label_selector(self, selector: str | None) -> None:
        """Like `set_field_selector`, for the label selector."""
        for part in self._partitions:
            part.reflector.set_label_selector(selector)

    @property
    def selectors(self) -> reflector.Selectors:
        return self._partitions[0].reflector.selectors

    # Running

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Run the reflectors; `started` once every partition has listed."""
        if len(self._partitions) == 1:
            await self._partitions[0].reflector.run(task_status=task_status)
        async with trio.open_nursery() as nursery:
            # Each on its own: a partition that cannot be reached holds up no other.
            for part in self._partitions:
                nursery.start_soon(part.reflector.run)
            await self._synced.wait()
            task_status.started()
            await trio.sleep_forever()
        raise AssertionError("the reflectors never return")

    # The sink of the whole list

    def replace(self, objects: Sequence[Obj], *, resource_version: str) -> None:
        """The cache holds `objects` from now on (adds, updates, deletes told to handlers)."""
        transform = self._transform
        self._merge_list([transform(obj) for obj in objects] if transform else objects)
        self._synced.set()
        self.listed()

    def listed(self) -> None:
        """Called each time the cache holds a whole list made with the selectors in force
        (in every partition): a hook for subclasses."""

    def apply(self, type_: str, obj: Obj) -> None:
        """One change: `ADDED`, `MODIFIED` or `DELETED`."""
        if self._transform is not None:
            obj = self._transform(obj)
        self._apply(type_, obj)

    # The partitions' sinks

    def _replace_partition(
        self, part: _Partition, objects: Sequence[Obj], *, resource_version: str
    ) -> None:
        transform = self._transform
        listed = [transform(obj) for obj in objects] if transform else list(objects)
        held: builtins.list[Obj] = []
        # One server holds everything: no keys to track, nothing held elsewhere.
        if len(self._partitions) > 1:
            keys = {self.key(obj) for obj in listed}
            held = [
                obj
                for key, obj in self._items()
                if key not in keys and key not in part.keys and self._owner(key) is not None
            ]
            for other in self._partitions:
                if other is not part:
                    other.keys -= keys
            part.keys = keys
        self._merge_list([*listed, *held])
        current = self.selectors
        if all(other.reflector.listed_with == current for other in self._partitions):
            self._synced.set()
            self.listed()

    def _apply_partition(self, part: _Partition, type_: str, obj: Obj) -> None:
        if self._transform is not None:
            obj = self._transform(obj)
        if len(self._partitions) == 1:
            self._apply(type_, obj)
            return
        key = self.key(obj)
        owner = self._owner(key)
        if type_ == "DELETED":
            # Another partition's object of the same key is not this partition's to delete.
            if owner is part or owner is None:
                part.keys.discard(key)
                self._apply(type_, obj)
            return
        moved = owner is not None and owner is not part
        if moved:
            assert owner is not None
            # Versions of different stores do not compare: the latest arrival wins.
            owner.keys.discard(key)
        part.keys.add(key)
        self._apply(type_, obj, newer=moved)

    def _owner(self, key: str) -> _Partition | None:
        for part in self._partitions:
            if key in part.keys:
                return part
        return None

    def _items(self) -> builtins.list[tuple[str, Obj]]:
        return [(key, obj) for key in self._store if (obj := self._store.get(key)) is not None]

    # Changing the cache

    def _merge_list(self, objects: Iterable[Obj]) -> None:
        listed: set[str] = set()
        for obj in objects:
            key = self.key(obj)
            listed.add(key)
            old = self._store.get(key)
            if old is not None and _version(old) == _version(obj):
                continue
            self._store.put(key, obj)
            self._notify(old, obj)
        for key in [key for key in self._store if key not in listed]:
            gone = self._store.remove(key)
            assert gone is not None
            self._notify_delete(gone)

    def _apply(self, type_: str, obj: Obj, *, newer: bool = False) -> None:
        key = self.key(obj)
        old = self._store.get(key)
        if type_ == "DELETED":
            if old is not None:
                self._store.remove(key)
                self._notify_delete(obj)
            return
        if old is not None and not newer and not _is_newer(obj, old):
            return
        self._store.put(key, obj)
        self._notify(old, obj)

    def _notify(self, old: Obj | None, new: Obj) -> None:
        for handler in self._handlers:
            if old is None:
                if handler.on_add is not None:
                    self._call(handler.on_add, new)
            elif handler.on_update is not None:
                self._call(handler.on_update, old, new)

    def _notify_delete(self, obj: Obj) -> None:
        for handler in self._handlers:
            if handler.on_delete is not None:
                self._call(handler.on_delete, obj)

    def _call(self, callback: Callable[..., None], *args: Obj) -> None:
        # One faulty handler must not starve the others or stop the cache.
        try:
            callback(*args)
        except Exception:
            logger.exception("an event handler of the %s informer failed", self.resource.qualified)


# Shared informers


@dataclasses.dataclass(frozen=True, slots=True)
class _InformerKey:
    resource: resources.Resource
    tenant: str
    namespace: str | None
    label_selector: str | None
    field_selector: str | None


class InformerFactory:
    """One shared informer per resource, tenant, namespace and selectors.

    Its informers cache objects without `metadata.managedFields` unless given another
    `transform` (None keeps objects as the server sends them).

    Components ask for informers first, then the factory starts them all and waits until
    each has synced: `await nursery.start(factory.run)`. An informer asked for after that
    starts at once; `await informer.wait_synced()` before trusting its cache.
    """

    def __init__(
        self, api: client.Client, *, transform: Transform | None = strip_managed_fields
    ) -> None:
        self._client = api
        self._transform = transform
        self._informers: dict[_InformerKey, Informer] = {}
        self._started: set[_InformerKey] = set()
        self._nursery: trio.Nursery | None = None

    def informer(
        self,
        resource: resources.Resource,
        *,
        tenant: str = resources.ALL_TENANTS,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
    ) -> Informer:
        """The shared informer for these objects; `indexers` are added to it."""
        key = _InformerKey(resource, tenant, namespace, label_selector, field_selector)
        informer = self._informers.get(key)
        if informer is None:
            lw = reflector.list_watch(
                self._client,
                resource,
                tenant=tenant,
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
            )
            informer = self._informers[key] = Informer(
                lw, indexers=indexers, transform=self._transform
            )
        elif indexers:
            informer.add_indexers(indexers)
        if self._nursery is not None:
            self._start(key, self._nursery)
        return informer

    @property
    def informers(self) -> builtins.list[Informer]:
        return list(self._informers.values())

    def start(self, nursery: trio.Nursery) -> None:
        """Start, in `nursery`, every informer not started yet."""
        for key in self._informers:
            self._start(key, nursery)

    def _start(self, key: _InformerKey, nursery: trio.Nursery) -> None:
        if key not in self._started:
            self._started.add(key)
            nursery.start_soon(self._informers[key].run)

    async def wait_for_sync(self) -> None:
        """Until every informer handed out so far has its first list."""
        for informer in list(self._informers.values()):
            await informer.wait_synced()

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Run every informer (also those asked for later); `started` once all have synced."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                self.start(nursery)
                await self.wait_for_sync()
                logger.info("informers synced: %d", len(self._informers))
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._nursery = None
