"""A client of a partitioned cluster: one `Client` per API server, each request routed.

`RoutedClient` is a `Client`, so every component takes it as it takes a client of one
server. It holds one single-server `Client` per partition, each with its own connection
pool, rate limiter and retries: a server that is slow or down spends only its own budget,
and the rate limit a component is given is what it may ask of each server. Guarantees:

* Every request, whichever method makes it (typed methods, `request`, `watch`,
  subresources), goes where `_routing.route` says its path belongs; a new tenant goes to
  the partition its name falls in.
* A list across tenants asks every partition at once and answers with their items
  merged, in partition order, without a resourceVersion (see `_routing`); if any
  partition fails, the list fails with its error rather than answer with a part. With
  `limit`, pages go through the partitions one after the other under a `continue` token
  of this client's own. `list_all` of every tenant is each partition's consistent
  `list_all`, merged.
* A watch across tenants follows every partition's watch from now (`resource_version`
  None or "0", which first sends the current objects as ADDED), as one stream: events of
  one partition stay in order; bookmarks are dropped, since no one version of the merged
  stream could resume it. The stream ends when any partition's stream ends, and raises
  what any partition's stream raises. Informers do not use it: they follow each
  partition on its own (`partitions_for`), resuming each from its own version.
* `partitions` are the partitions, in ascending tenant order, with their clients;
  `partitions_for` those a listing spans, so that machinery can follow each on its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar, cast

import httpx
import trio

from arktos_lite.api import partitions as partitions_, resources
from arktos_lite.client import (
    _client as client_,
    _config as config_,
    _paths as paths,
    _routing as routing,
    _watch as watching,
)

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
T = TypeVar("T")
# Versions a watch across partitions may start from: none of them names a store revision.
_FROM_NOW = (None, "", "0")


class RoutedClient(client_.Client):
    """A `Client` over every server of a partitioned cluster; see the module docs.

    `partitions` pairs each partition with the `Config` that reaches its server; their
    ranges must hold every tenant exactly once (ValueError otherwise). `tenant` is the
    client's default tenant (each `Config`'s own is not used). `options` are `Client`'s
    keyword arguments, given to the client of each server.
    """

    _map: routing.PartitionMap
    _clients: tuple[client_.PartitionClient, ...]
    _by_name: Mapping[str, client_.PartitionClient]

    def __init__(
        self,
        partitions: Sequence[tuple[partitions_.Partition, config_.Config]],
        *,
        tenant: str | None = None,
        **options: Any,
    ) -> None:
        mapping = routing.PartitionMap(partition for partition, _ in partitions)
        configs = {partition.name: config for partition, config in partitions}
        clients = tuple(
            client_.PartitionClient(
                partition,
                client_.Client(
                    dataclasses.replace(configs[partition.name], tenant=tenant), **options
                ),
            )
            for partition in mapping.partitions
        )
        designated = clients[mapping.index(mapping.designated)].client
        # Settings every view reads (the timeouts) come from the designated server's client;
        # requests never go through `_shared` but through the client of their partition.
        self.config = designated.config
        self._shared = designated._shared
        self._owner = True
        self._map = mapping
        self._clients = clients
        self._by_name = {pc.name: pc for pc in clients}

    def with_tenant(self, tenant: str | None) -> RoutedClient:
        view = object.__new__(RoutedClient)
        view.config = dataclasses.replace(self.config, tenant=tenant)
        view._shared = self._shared
        view._owner = False
        view._map = self._map
        view._clients = tuple(
            client_.PartitionClient(pc.partition, pc.client.with_tenant(tenant))
            for pc in self._clients
        )
        view._by_name = {pc.name: pc for pc in view._clients}
        return view

    async def aclose(self) -> None:
        if not self._owner:
            return
        for pc in self._clients:
            await pc.client.aclose()

    def __repr__(self) -> str:
        servers = ", ".join(f"{pc.name}: {pc.client.config.server}" for pc in self._clients)
        return f"RoutedClient({{{servers}}}, tenant={self.config.tenant!r})"

    @property
    def partitions(self) -> tuple[client_.PartitionClient, ...]:
        return self._clients

    def partitions_for(
        self, resource: resources.Resource, *, tenant: str | None
    ) -> tuple[client_.PartitionClient, ...]:
        path = paths.resource_path(resource, tenant=self._tenant(resource, tenant))
        return self._targets("GET", path, None)

    def clients_for(self, path: str, *, method: str = "GET") -> tuple[client_.Client, ...]:
        return tuple(target.client for target in self._targets(method, path, None))

    # Routing

    def _targets(self, method: str, path: str, body: object) -> tuple[client_.PartitionClient, ...]:
        default = self.config.tenant or resources.SYSTEM_TENANT
        where = routing.route(method, path, default_tenant=default)
        match where.target:
            case routing.Target.EVERYWHERE:
                return self._clients
            case routing.Target.TENANT:
                assert where.tenant is not None
                return (self._by_name[self._map.holding(where.tenant).name],)
            case routing.Target.NEW_TENANT:
                name = routing.new_tenant_name(body)
                return (self._by_name[self._map.holding(name).name],)
            case routing.Target.PARTITION:
                named = self._by_name.get(where.tenant or "")
                if named is not None:
                    return (named,)
        return (self._by_name[self._map.designated.name],)

    # What every request goes through

    async def _object(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = client_.JSON,
    ) -> Obj:
        targets = self._targets(method, path, body)

        async def send(api: client_.Client, query: Mapping[str, Any]) -> Obj:
            return await api._object(
                method, path, params=query, body=body, content_type=content_type
            )

        if len(targets) == 1:
            return await send(targets[0].client, params or {})
        merged: Obj = await self._fan_out(method, targets, params or {}, send)
        return merged

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        targets = self._targets(method, path, json if json is not None else content)

        async def send(api: client_.Client, query: Mapping[str, Any]) -> Any:
            return await api.request(
                method, path, params=query, json=json, content=content, headers=headers
            )

        if len(targets) == 1:
            return await send(targets[0].client, params or {})
        return await self._fan_out(method.upper(), targets, params or {}, send)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any],
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        timeouts: httpx.Timeout | None = None,
    ) -> httpx.Response:
        targets = self._targets(method, path, content)
        if len(targets) != 1:
            raise ValueError(f"{method} {path} spans partitions: it has no single answer")
        return await targets[0].client._send(
            method,
            path,
            params=params,
            content=content,
            headers=headers,
            stream=stream,
            timeouts=timeouts,
        )

    async def list_all(
        self,
        resource: resources.Resource,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> Obj:
        """Every page of a list; across partitions, each partition's consistent list."""
        targets = self.partitions_for(resource, tenant=tenant)
        tenant = self._tenant(resource, tenant)

        async def one(api: client_.Client) -> Obj:
            return await api.list_all(
                resource,
                namespace=namespace,
                tenant=tenant,
                label_selector=label_selector,
                field_selector=field_selector,
                page_size=page_size,
            )

        if len(targets) == 1:
            return await one(targets[0].client)
        merged: Obj = routing.merge(await _each(targets, one))
        return merged

    def _watch(
        self, path: str, params: Mapping[str, Any], *, read_timeout: float | None
    ) -> AbstractAsyncContextManager[AsyncIterator[watching.WatchEvent]]:
        targets = self._targets("GET", path, None)
        if len(targets) == 1:
            return targets[0].client._watch(path, params, read_timeout=read_timeout)
        return _merged_watch(targets, path, params, read_timeout=read_timeout)

    # Across partitions

    async def _fan_out(
        self,
        method: str,
        targets: tuple[client_.PartitionClient, ...],
        params: Mapping[str, Any],
        send: Callable[[client_.Client, Mapping[str, Any]], Awaitable[Any]],
    ) -> Any:
        if method == "GET":
            version = params.get("resourceVersion")
            if version not in _FROM_NOW:
                raise ValueError(
                    f"resourceVersion {version!r} names a revision of one partition's store; "
                    "a list across partitions cannot be read at it"
                )
            if params.get("limit") is not None or params.get("continue"):
                return await _paged(targets, params, send)
        answers = await _each(targets, lambda api: send(api, params))
        return routing.merge(answers)


async def _each(
    targets: Sequence[client_.PartitionClient],
    call: Callable[[client_.Client], Awaitable[T]],
) -> list[T]:
    """`call` on every partition's client at once: the answers in order, or the first
    partition's failure (the others are cancelled)."""
    answers: list[T | None] = [None] * len(targets)
    failures: list[Exception | None] = [None] * len(targets)

    async with trio.open_nursery() as nursery:

        async def one(index: int, api: client_.Client) -> None:
            try:
                answers[index] = await call(api)
            except Exception as error:
                failures[index] = error
                nursery.cancel_scope.cancel()

        for index, target in enumerate(targets):
            nursery.start_soon(one, index, target.client)
    for failure in failures:
        if failure is not None:
            raise failure
    return cast(list[T], answers)


async def _paged(
    targets: Sequence[client_.PartitionClient],
    params: Mapping[str, Any],
    send: Callable[[client_.Client, Mapping[str, Any]], Awaitable[Any]],
) -> Any:
    """One page of a list across partitions: up to `limit` items, from the partition and
    position the `continue` token names on."""
    names = [target.name for target in targets]
    start, token = 0, None
    if params.get("continue"):
        place = routing.Continue.decode(str(params["continue"]), known=names)
        start, token = names.index(place.partition), place.token
    limit = params.get("limit")
    remaining = int(limit) if limit is not None else None
    pages: list[Any] = []
    following: str | None = None
    for index in range(start, len(targets)):
        query = {**params, "continue": token, "limit": remaining}
        page = await send(targets[index].client, query)
        if not isinstance(page, dict):
            return page
        pages.append(page)
        token = (page.get("metadata") or {}).get("continue") or None
        if token is not None:
            following = routing.Continue(names[index], token).encode()
            break
        if remaining is not None:
            remaining -= len(page.get("items") or ())
            if remaining <= 0:
                if index + 1 < len(targets):
                    following = routing.Continue(names[index + 1], None).encode()
                break
    return routing.merge(pages, continue_=following)


# A watch across partitions


@dataclasses.dataclass(frozen=True, slots=True)
class _Ended:
    partition: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Failed:
    error: Exception


class _MergedEvents:
    """The events of several watches as one iterator; see the module docs."""

    def __init__(self, receive: trio.MemoryReceiveChannel[object]) -> None:
        self._receive = receive
        self._done = False

    def __aiter__(self) -> _MergedEvents:
        return self

    async def __anext__(self) -> watching.WatchEvent:
        while not self._done:
            item = await self._receive.receive()
            if isinstance(item, watching.WatchEvent):
                if item.type == watching.BOOKMARK:
                    continue
                return item
            self._done = True
            if isinstance(item, _Failed):
                raise item.error
            assert isinstance(item, _Ended)
            logger.debug("watch of partition %s ended; the merged watch ends", item.partition)
        raise StopAsyncIteration


@contextlib.asynccontextmanager
async def _merged_watch(
    targets: Sequence[client_.PartitionClient],
    path: str,
    params: Mapping[str, Any],
    *,
    read_timeout: float | None,
) -> AsyncIterator[AsyncIterator[watching.WatchEvent]]:
    version = params.get("resourceVersion")
    if version not in _FROM_NOW:
        raise ValueError(
            f"resourceVersion {version!r} names a revision of one partition's store; a watch "
            "across partitions starts from now (informers follow each partition on its own)"
        )
    send, receive = trio.open_memory_channel[object](0)

    async def pump(name: str, events: AsyncIterator[watching.WatchEvent]) -> None:
        try:
            async for event in events:
                await send.send(event)
        except Exception as error:
            await send.send(_Failed(error))
        else:
            await send.send(_Ended(name))

    async with contextlib.AsyncExitStack() as streams:
        opened = [
            (
                target.name,
                await streams.enter_async_context(
                    target.client._watch(path, params, read_timeout=read_timeout)
                ),
            )
            for target in targets
        ]
        body_error: BaseException | None = None
        unwrapped: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                for name, events in opened:
                    nursery.start_soon(pump, name, events)
                try:
                    yield _MergedEvents(receive)
                except BaseException as error:
                    body_error = error
                    raise
                finally:
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The pumps never raise, so the group holds what the caller's block raised:
            # that goes on as it was, not wrapped (and raised outside this handler, so
            # that the group does not become its context).
            if body_error is None or group.exceptions != (body_error,):
                raise
            unwrapped = body_error
        if unwrapped is not None:
            raise unwrapped
