"""In-memory stand-ins for the API: a cluster of one resource with revisions and history,
watches that can be scripted to fail, and a client over it.

`FakeCluster` behaves like the API server where reflectors care: consistent paged lists
at a revision, watches from a revision (410 once compacted), selector watches that turn
objects starting or stopping to match into ADDED and DELETED, bookmarks, timeouts.
`Recorder` is a handler that checks the story it is told and keeps the picture it implies.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import trio

from arktos_lite import client
from arktos_lite.api import errors, resources, selectors as sel
from arktos_lite.machinery import _informer as informer, _reflector as reflector

Obj = dict[str, Any]

REGISTRY = resources.Registry()
PODS = REGISTRY.get("", "v1", "pods")
NODES = REGISTRY.get("", "v1", "nodes")
NAMESPACES = REGISTRY.get("", "v1", "namespaces")
assert PODS is not None
assert NODES is not None
assert NAMESPACES is not None


@dataclasses.dataclass(frozen=True, slots=True)
class ListCall:
    selectors: reflector.Selectors
    limit: int | None
    continue_: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class WatchCall:
    selectors: reflector.Selectors
    resource_version: str
    timeout_seconds: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class Fault:
    """What goes wrong with the next watch: after `after` events, raise `error` (or end
    the stream normally when None); `after=0` with an error fails the watch as it opens."""

    after: int = 0
    error: BaseException | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    revision: int
    type: str
    object: Obj
    previous: Obj | None


@dataclasses.dataclass(slots=True, eq=False)
class _Stream:
    error: BaseException | None = None
    ended: bool = False


def _matches(obj: Obj, selectors: reflector.Selectors) -> bool:
    if selectors.label:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if not sel.LabelSelector.parse(selectors.label).matches(labels):
            return False
    return not selectors.field or sel.FieldSelector.parse(selectors.field).matches(obj)


class FakeCluster:
    """One resource's objects, with a global revision and full history."""

    def __init__(self, resource: resources.Resource = PODS) -> None:
        self.resource = resource
        self.revision = 1
        self.objects: dict[str, Obj] = {}
        self.history: list[_Entry] = []
        self.compacted = 0
        self.lists: list[ListCall] = []
        self.watches: list[WatchCall] = []
        self.faults: collections.deque[Fault] = collections.deque()
        # Lists that fail with these errors before one succeeds.
        self.list_faults: collections.deque[BaseException] = collections.deque()
        self._streams: set[_Stream] = set()
        self._changed = trio.Event()
        self._held: trio.Event | None = None
        self._pages: dict[str, tuple[int, list[Obj]]] = {}

    # Changes

    def put(
        self,
        name: str,
        *,
        namespace: str = "default",
        tenant: str = "t1",
        labels: dict[str, str] | None = None,
        node: str | None = None,
        owners: tuple[str, ...] = (),
    ) -> Obj:
        """Create the object, or replace it with these labels, node and owners."""
        self.revision += 1
        meta: Obj = {"name": name, "uid": f"uid-{name}", "resourceVersion": str(self.revision)}
        if self.resource.scope is not resources.Scope.CLUSTER:
            meta["tenant"] = tenant
        if self.resource.namespaced:
            meta["namespace"] = namespace
        if labels:
            meta["labels"] = dict(labels)
        if owners:
            meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": o, "uid": o} for o in owners]
        obj: Obj = {
            "apiVersion": self.resource.api_version,
            "kind": self.resource.kind,
            "metadata": meta,
            "spec": {"nodeName": node} if node else {},
        }
        key = informer.object_key(obj, scope=self.resource.scope)
        previous = self.objects.get(key)
        self.objects[key] = obj
        self._record(_Entry(self.revision, "MODIFIED" if previous else "ADDED", obj, previous))
        return obj

    def delete(self, key: str) -> None:
        self.revision += 1
        previous = self.objects.pop(key)
        gone = {**previous, "metadata": {**previous["metadata"]}}
        gone["metadata"]["resourceVersion"] = str(self.revision)
        self._record(_Entry(self.revision, "DELETED", gone, previous))

    def compact(self) -> None:
        self.compacted = self.revision

    def bookmark(self) -> None:
        """Send every open watch a bookmark at the current revision."""
        marker = {"kind": self.resource.kind, "metadata": {"resourceVersion": str(self.revision)}}
        self._record(_Entry(self.revision, "BOOKMARK", marker, None))

    def _record(self, entry: _Entry) -> None:
        self.history.append(entry)
        self._changed.set()
        self._changed = trio.Event()

    # Trouble

    def drop_watches(self, error: BaseException | None = None) -> None:
        """Open watches fail with `error` (or end normally, without one)."""
        for stream in self._streams:
            stream.error = error
            stream.ended = True
        self._changed.set()
        self._changed = trio.Event()

    def hold_watches(self) -> None:
        """New watches wait until `release_watches`."""
        self._held = trio.Event()

    def release_watches(self) -> None:
        if self._held is not None:
            self._held.set()
            self._held = None

    @property
    def open_watches(self) -> int:
        return len(self._streams)

    # The API

    def lister_watcher(
        self, *, label_selector: str | None = None, field_selector: str | None = None
    ) -> FakeListerWatcher:
        return FakeListerWatcher(self, reflector.Selectors(label_selector, field_selector))

    async def list(
        self, *, selectors: reflector.Selectors, limit: int | None, continue_: str | None
    ) -> Obj:
        await trio.lowlevel.checkpoint()
        self.lists.append(ListCall(selectors, limit, continue_))
        if self.list_faults:
            raise self.list_faults.popleft()
        if continue_:
            if continue_ not in self._pages:
                raise errors.Expired.continue_token()
            revision, rest = self._pages.pop(continue_)
        else:
            revision = self.revision
            rest = sorted(
                (o for o in self.objects.values() if _matches(o, selectors)),
                key=lambda o: informer.object_key(o, scope=self.resource.scope),
            )
        page, rest = (rest[:limit], rest[limit:]) if limit else (rest, [])
        metadata: Obj = {"resourceVersion": str(revision)}
        if rest:
            token = f"page-{len(self.lists)}"
            self._pages[token] = (revision, rest)
            metadata["continue"] = token
        # Fresh copies, as decoded from a response; without kind and apiVersion, as the
        # Kubernetes API may leave them out of list items.
        items = [
            {k: copy.deepcopy(v) for k, v in o.items() if k not in ("kind", "apiVersion")}
            for o in page
        ]
        return {"kind": self.resource.list_kind, "metadata": metadata, "items": items}

    def expire_pages(self) -> None:
        """Continue tokens handed out so far stop working (410)."""
        self._pages.clear()

    @contextlib.asynccontextmanager
    async def watch(
        self,
        *,
        selectors: reflector.Selectors,
        resource_version: str,
        timeout_seconds: int | None,
    ) -> AsyncIterator[AsyncIterator[client.WatchEvent]]:
        self.watches.append(WatchCall(selectors, resource_version, timeout_seconds))
        if self._held is not None:
            await self._held.wait()
        fault = self.faults.popleft() if self.faults else Fault(after=-1)
        if fault.after == 0 and fault.error is not None:
            raise fault.error
        after = int(resource_version)
        if after < self.compacted:
            raise errors.Gone.too_old(after, self.compacted)
        stream = _Stream()
        self._streams.add(stream)
        try:
            yield self._events(stream, after, selectors, timeout_seconds, fault)
        finally:
            self._streams.discard(stream)

    async def _events(
        self,
        stream: _Stream,
        after: int,
        selectors: reflector.Selectors,
        timeout_seconds: int | None,
        fault: Fault,
    ) -> AsyncIterator[client.WatchEvent]:
        position = next(
            (i for i, e in enumerate(self.history) if e.revision > after), len(self.history)
        )
        sent = 0
        deadline = (
            trio.current_time() + timeout_seconds if timeout_seconds is not None else math.inf
        )
        while True:
            while position < len(self.history) and not stream.ended:
                if sent == fault.after:
                    if fault.error is not None:
                        raise fault.error
                    return
                entry = self.history[position]
                position += 1
                event = _translate(entry, selectors)
                if event is not None:
                    sent += 1
                    yield event
            if stream.ended:
                if stream.error is not None:
                    raise stream.error
                return
            # No yield inside a cancel scope: the scope only wraps the wait.
            with trio.move_on_at(deadline):
                await self._changed.wait()
            if trio.current_time() >= deadline:
                return


def _translate(entry: _Entry, selectors: reflector.Selectors) -> client.WatchEvent | None:
    event = _select(entry, selectors)
    # Each watcher gets objects of its own, as decoded from its stream.
    return None if event is None else client.WatchEvent(event, copy.deepcopy(entry.object))


def _select(entry: _Entry, selectors: reflector.Selectors) -> str | None:
    if entry.type == "BOOKMARK":
        return "BOOKMARK"
    now = entry.type != "DELETED" and _matches(entry.object, selectors)
    before = entry.previous is not None and _matches(entry.previous, selectors)
    if entry.type == "DELETED":
        return "DELETED" if before else None
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    if before:
        return "DELETED"
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class FakeListerWatcher:
    cluster: FakeCluster
    selectors: reflector.Selectors

    @property
    def resource(self) -> resources.Resource:
        return self.cluster.resource

    async def list(
        self,
        *,
        selectors: reflector.Selectors,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> Obj:
        return await self.cluster.list(selectors=selectors, limit=limit, continue_=continue_)

    def watch(
        self,
        *,
        selectors: reflector.Selectors,
        resource_version: str,
        timeout_seconds: int | None,
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[reflector.WatchEvent]]:
        return self.cluster.watch(
            selectors=selectors,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
        )


class Recorder:
    """A handler that insists on a consistent story and keeps the picture it tells.

    Every add must be of an object it does not hold, every update of one it holds and to
    a later version, every delete of one it holds; anything else lands in `violations`
    (informers swallow what handlers raise). `picture` maps key to version.
    """

    def __init__(self, key: Callable[[Obj], str] = informer.object_key) -> None:
        self._key = key
        self.picture: dict[str, str] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.violations: list[str] = []

    def attach(self, target: informer.Informer) -> informer.HandlerRegistration:
        return target.add_handler(
            on_add=self.on_add, on_update=self.on_update, on_delete=self.on_delete
        )

    def on_add(self, obj: Obj) -> None:
        key = self._key(obj)
        if key in self.picture:
            self.violations.append(f"add of {key}, which is already there")
        self.picture[key] = _rv(obj)
        self.calls.append(("add", key, _rv(obj)))

    def on_update(self, old: Obj, new: Obj) -> None:
        key = self._key(new)
        if self._key(old) != key:
            self.violations.append(f"update from {self._key(old)} to {key}")
        if self.picture.get(key) != _rv(old):
            self.violations.append(f"update of {key} from a version not told")
        if int(_rv(new)) <= int(_rv(old)):
            self.violations.append(f"update of {key} to no newer version")
        self.picture[key] = _rv(new)
        self.calls.append(("update", key, _rv(new)))

    def on_delete(self, obj: Obj) -> None:
        key = self._key(obj)
        if key not in self.picture:
            self.violations.append(f"delete of {key}, which was never there")
        self.picture.pop(key, None)
        self.calls.append(("delete", key, _rv(obj)))


def _rv(obj: Obj) -> str:
    return str(obj["metadata"]["resourceVersion"])


def versions(cluster: FakeCluster) -> dict[str, str]:
    """What a consistent picture of the cluster holds: key to version."""
    return {key: _rv(obj) for key, obj in cluster.objects.items()}


async def until(condition: Callable[[], bool], *, within: float = 3600.0) -> None:
    """Wait (in trio time, meant for an autojump clock) until `condition` holds."""
    with trio.fail_after(within):
        # Conditions span the cache, handlers and the fake: polling is the plain way.
        while not condition():  # noqa: ASYNC110
            await trio.sleep(0.5)


class FakeClient:
    """Enough of `client.Client` for list_watch, the informer factory and the recorder."""

    def __init__(self, clusters: dict[resources.Resource, FakeCluster] | None = None) -> None:
        self.clusters = clusters or {}
        self.list_calls: list[Obj] = []
        self.watch_calls: list[Obj] = []
        self.writes: list[tuple[str, Obj]] = []
        self.events: dict[tuple[str, str, str], Obj] = {}
        self.write_faults: collections.deque[BaseException] = collections.deque()

    def partitions_for(
        self, resource: resources.Resource, *, tenant: str | None
    ) -> tuple[client.PartitionClient, ...]:
        # One server, as `client.Client` of one server says.
        return (client.PartitionClient(None, self),)  # type: ignore[arg-type]

    async def list(self, resource: resources.Resource, **options: Any) -> Obj:
        self.list_calls.append(options)
        return await self.clusters[resource].list(
            selectors=reflector.Selectors(options["label_selector"], options["field_selector"]),
            limit=options["limit"],
            continue_=options["continue_"],
        )

    def watch(
        self, resource: resources.Resource, **options: Any
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[client.WatchEvent]]:
        self.watch_calls.append(options)
        assert options["allow_bookmarks"] is True
        return self.clusters[resource].watch(
            selectors=reflector.Selectors(options["label_selector"], options["field_selector"]),
            resource_version=options["resource_version"],
            timeout_seconds=options["timeout_seconds"],
        )

    async def create(
        self,
        resource: resources.Resource,
        body: Obj,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
    ) -> Obj:
        await trio.lowlevel.checkpoint()
        if self.write_faults:
            raise self.write_faults.popleft()
        assert namespace is not None
        assert tenant is not None
        self.writes.append(("create", body))
        key = (tenant, namespace, body["metadata"]["name"])
        if key in self.events:
            raise errors.AlreadyExists.for_resource(resource.plural, key[2])
        self.events[key] = body
        return body

    async def patch(
        self,
        resource: resources.Resource,
        name: str,
        body: Obj,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
    ) -> Obj:
        await trio.lowlevel.checkpoint()
        if self.write_faults:
            raise self.write_faults.popleft()
        assert namespace is not None
        assert tenant is not None
        self.writes.append(("patch", body))
        key = (tenant, namespace, name)
        if key not in self.events:
            raise errors.NotFound.for_resource(resource.plural, name)
        self.events[key] = {**self.events[key], **body}
        return self.events[key]
