"""The reflector: keeps a local picture of one resource in step with the API server.

It lists (in pages of 500, following `continue`), hands the whole list to its sink, then
watches from the list's resourceVersion with bookmarks and a randomized timeout of 5 to
10 minutes, as client-go does. Guarantees:

* The sink sees a list, then every change after it, in order: after a watch ends or its
  connection drops, the reflector watches again from the last version it saw (bookmarks
  included), so nothing is skipped and nothing is seen twice.
* When that version is gone (410), or a selector changes, it lists again; the sink
  compares the new list with what it holds.
* Failures back off exponentially with jitter on trio's clock, from 0.8 s to 30 s, and
  start afresh once the reflector makes progress again. A reflector never gives up.

A cluster of several API servers (partitions, each holding some tenants) is followed by
one reflector per server: `by_partition` splits a lister-watcher into one per partition
that holds what it lists, each of which lists, watches and resumes on its own.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, NoReturn, Protocol

import trio

from arktos_lite import client
from arktos_lite.api import errors, resources

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

PAGE_SIZE = 500
# client-go's minWatchTimeout: each watch asks for 5 to 10 minutes, so that a fleet of
# watchers does not reconnect in lockstep.
MIN_WATCH_TIMEOUT = 300
# The server ends the watch at its timeout; this much later the reflector gives up on a
# connection that went silent without closing.
WATCH_DEADLINE_SLACK = 30.0
# A watch that ends this soon without delivering anything counts as a failure (backoff),
# so that a server closing streams at once is not hammered.
SHORT_WATCH = 1.0
BACKOFF_INITIAL = 0.8
BACKOFF_CAP = 30.0


class WatchEvent(Protocol):
    """One event of a watch stream (`client.WatchEvent` is one)."""

    @property
    def type(self) -> str: ...

    @property
    def object(self) -> Obj: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Selectors:
    """A label and a field selector, in their URL form; None selects everything."""

    label: str | None = None
    field: str | None = None


class ListerWatcher(Protocol):
    """Lists and watches one resource (in one tenant or all, one namespace or all)."""

    @property
    def resource(self) -> resources.Resource: ...

    @property
    def selectors(self) -> Selectors:
        """The selectors a reflector starts with."""
        ...

    async def list(
        self, *, selectors: Selectors, limit: int | None = None, continue_: str | None = None
    ) -> Obj:
        """One page of a consistent list: a `…List` object with `items` and `metadata`."""
        ...

    def watch(
        self, *, selectors: Selectors, resource_version: str, timeout_seconds: int | None
    ) -> AbstractAsyncContextManager[AsyncIterator[WatchEvent]]:
        """Changes after `resource_version`, with bookmarks."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class ClientListerWatcher:
    """A `ListerWatcher` over an `arktos_lite.client.Client`."""

    client: client.Client
    resource: resources.Resource
    tenant: str | None
    namespace: str | None
    selectors: Selectors

    async def list(
        self, *, selectors: Selectors, limit: int | None = None, continue_: str | None = None
    ) -> Obj:
        return await self.client.list(
            self.resource,
            namespace=self.namespace,
            tenant=self.tenant,
            label_selector=selectors.label,
            field_selector=selectors.field,
            limit=limit,
            continue_=continue_,
        )

    def watch(
        self, *, selectors: Selectors, resource_version: str, timeout_seconds: int | None
    ) -> AbstractAsyncContextManager[AsyncIterator[WatchEvent]]:
        return self.client.watch(
            self.resource,
            namespace=self.namespace,
            tenant=self.tenant,
            resource_version=resource_version,
            label_selector=selectors.label,
            field_selector=selectors.field,
            timeout_seconds=timeout_seconds,
            allow_bookmarks=True,
        )

    def by_partition(self) -> tuple[tuple[str, ClientListerWatcher], ...]:
        """One lister-watcher per server holding these objects, by partition name ("" for
        a cluster of one server): every partition for every tenant and for Tenants, the
        designated one for other cluster-scoped resources, the tenant's for one tenant."""
        partitions_for = getattr(self.client, "partitions_for", None)
        if partitions_for is None:
            # A stand-in for a client (in tests) that knows nothing of partitions: one server.
            return (("", self),)
        return tuple(
            (target.name, dataclasses.replace(self, client=target.client))
            for target in partitions_for(self.resource, tenant=self.tenant)
        )


def by_partition(lw: ListerWatcher) -> list[tuple[str, ListerWatcher]]:
    """`lw` split by partition where it can say how (a `by_partition` method, as
    `ClientListerWatcher`'s), else `[("", lw)]`."""
    split = getattr(lw, "by_partition", None)
    if split is None:
        return [("", lw)]
    parts: list[tuple[str, ListerWatcher]] = list(split())
    return parts


def list_watch(
    api: client.Client,
    resource: resources.Resource,
    *,
    tenant: str = resources.ALL_TENANTS,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
) -> ClientListerWatcher:
    """List and watch `resource` through `api`; every tenant unless told otherwise."""
    return ClientListerWatcher(
        client=api,
        resource=resource,
        # Cluster-scoped objects belong to no tenant.
        tenant=None if resource.scope is resources.Scope.CLUSTER else tenant,
        namespace=namespace if resource.namespaced else None,
        selectors=Selectors(label=label_selector, field=field_selector),
    )


class Sink(Protocol):
    """What a reflector feeds: a whole list, then each change."""

    def replace(self, objects: Sequence[Obj], *, resource_version: str) -> None: ...

    def apply(self, type_: str, obj: Obj) -> None:
        """One watch event: `ADDED`, `MODIFIED` or `DELETED`."""
        ...


class _Backoff:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._failures = 0

    def reset(self) -> None:
        self._failures = 0

    async def sleep(self) -> None:
        delay = min(BACKOFF_CAP, BACKOFF_INITIAL * 2.0 ** min(self._failures, 16))
        self._failures += 1
        # Jitter spreads reconnects of many reflectors after the server comes back.
        await trio.sleep(delay * (0.5 + self._rng.random()))


class Reflector:
    """Feeds `sink` from `lw`: list, then watch, forever. See the module docs."""

    def __init__(
        self,
        lw: ListerWatcher,
        sink: Sink,
        *,
        rng: random.Random | None = None,
        partition: str = "",
    ) -> None:
        self._lw = lw
        self._sink = sink
        self._rng = rng or random.Random()
        self._selectors = lw.selectors
        self._listed_with: Selectors | None = None
        self._resource_version = ""
        self._must_list = True
        self._cycle: trio.CancelScope | None = None
        self._name = lw.resource.qualified
        if partition:
            self._name += f" in partition {partition}"

    @property
    def selectors(self) -> Selectors:
        return self._selectors

    @property
    def listed_with(self) -> Selectors | None:
        """The selectors of the last list handed to the sink; None before the first."""
        return self._listed_with

    @property
    def resource_version(self) -> str:
        """The last version seen: of the last list, watch event or bookmark."""
        return self._resource_version

    def set_selectors(self, selectors: Selectors) -> None:
        """Follow other objects from now on: list again with `selectors`."""
        if selectors == self._selectors:
            return
        self._selectors = selectors
        self._must_list = True
        if self._cycle is not None:
            self._cycle.cancel()

    def set_field_selector(self, selector: str | None) -> None:
        self.set_selectors(dataclasses.replace(self._selectors, field=selector))

    def set_label_selector(self, selector: str | None) -> None:
        self.set_selectors(dataclasses.replace(self._selectors, label=selector))

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """List and watch forever; `started` once the first list is in the sink."""
        logger.debug("reflector for %s starting", self._name)
        backoff = _Backoff(self._rng)
        started = False
        try:
            while True:
                listed = False
                with trio.CancelScope() as cycle:
                    self._cycle = cycle
                    if self._must_list:
                        listed = await self._list_or_back_off(backoff)
                    if not self._must_list and not listed:
                        await self._watch_or_back_off(backoff)
                self._cycle = None
                # Reported here, outside the cycle's scope, which a selector change cancels.
                if listed and not started:
                    started = True
                    task_status.started()
        finally:
            logger.debug("reflector for %s stopped", self._name)

    async def _list_or_back_off(self, backoff: _Backoff) -> bool:
        try:
            await self._list()
        except (client.Unreachable, errors.StatusError) as exc:
            logger.warning("listing %s failed: %s", self._name, exc)
            await backoff.sleep()
            return False
        backoff.reset()
        return True

    async def _list(self) -> None:
        selectors = self._selectors
        items: list[Obj] = []
        resource_version = ""
        continue_: str | None = None
        while True:
            try:
                page = await self._lw.list(
                    selectors=selectors, limit=PAGE_SIZE, continue_=continue_
                )
            except errors.Gone:
                if continue_ is None:
                    raise
                # The list's snapshot was compacted between pages: take it whole instead.
                logger.info("paged list of %s expired; listing without pages", self._name)
                items.clear()
                continue_ = None
                page = await self._lw.list(selectors=selectors)
            metadata = page.get("metadata") or {}
            if not resource_version:
                resource_version = str(metadata.get("resourceVersion") or "")
            items.extend(page.get("items") or ())
            continue_ = metadata.get("continue") or None
            if continue_ is None:
                break
        resource = self._lw.resource
        for item in items:
            # List items may leave out what every watch event carries.
            if "kind" not in item:
                item["kind"] = resource.kind
                item["apiVersion"] = resource.api_version
        self._listed_with = selectors
        self._sink.replace(items, resource_version=resource_version)
        self._resource_version = resource_version
        self._must_list = False
        logger.debug("listed %d %s at version %s", len(items), self._name, resource_version)

    async def _watch_or_back_off(self, backoff: _Backoff) -> None:
        started_at = trio.current_time()
        try:
            seen = await self._watch()
        except errors.Gone as exc:
            logger.info("watch of %s expired (%s); listing again", self._name, exc)
            self._must_list = True
            return
        except client.Unreachable as exc:
            logger.warning("watch of %s lost its connection: %s", self._name, exc)
            await backoff.sleep()
            return
        except errors.StatusError as exc:
            logger.warning("watch of %s failed: %s; listing again", self._name, exc)
            self._must_list = True
            await backoff.sleep()
            return
        if seen or trio.current_time() - started_at >= SHORT_WATCH:
            backoff.reset()
        else:
            await backoff.sleep()

    async def _watch(self) -> int:
        """Follow one watch stream until it ends; returns how many events it carried."""
        timeout = self._rng.randrange(MIN_WATCH_TIMEOUT, 2 * MIN_WATCH_TIMEOUT)
        seen = 0
        with trio.move_on_after(timeout + WATCH_DEADLINE_SLACK):
            async with self._lw.watch(
                selectors=self._selectors,
                resource_version=self._resource_version,
                timeout_seconds=timeout,
            ) as events:
                async for event in events:
                    seen += 1
                    self._handle(event)
        return seen

    def _handle(self, event: WatchEvent) -> None:
        type_, obj = event.type, event.object
        if type_ == "ERROR":
            raise errors.StatusError.from_status(obj)
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if type_ in ("ADDED", "MODIFIED", "DELETED"):
            self._sink.apply(type_, obj)
        elif type_ != "BOOKMARK":
            logger.debug("ignoring a %s event in the watch of %s", type_, self._name)
            return
        if version:
            self._resource_version = version
