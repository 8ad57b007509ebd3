"""The async client every component uses to reach the API server.

One `Client` holds one HTTP/1.1 keep-alive connection pool and one rate limiter; the
views `with_tenant` makes share both. Guarantees:

* Each typed method sends one request to the path `_paths` builds for it and returns
  the decoded JSON object the server answered with.
* The tenant a request addresses is the `tenant` argument, else (for `create` and
  `replace`) the object's `metadata.tenant`, else the client's `config.tenant`; with none
  the request takes Kubernetes' short path and the server applies the caller's tenant.
  Cluster-scoped resources have no tenant.
* Every attempt of a request takes a token from the rate limiter first; a watch takes one
  to start and none while it streams.
* Failed requests are retried as `_retry` says, waiting on trio's clock. When the retries
  run out, a network failure raises `Unreachable` and an error answer raises its
  `api.errors.StatusError`.

A `Client` talks to one API server. `RoutedClient` (in `_routed`) is a `Client` over the
servers of a partitioned cluster; `from_kubeconfig` makes one from a kubeconfig whose
current context addresses a partition. `partitions_for` says which single-server clients
hold a listing, so that informers can follow each server on its own; `clients_for` which
ones a request path goes to.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import random
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Self

import httpx
import orjson
import trio

from arktos_lite.api import errors, objects, partitions as partitions_, resources
from arktos_lite.client import (
    _config as config_,
    _errors as client_errors,
    _paths as paths,
    _ratelimit as ratelimit,
    _retry as retry,
    _tls as tls,
    _watch as watching,
)

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

JSON = "application/json"
PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
# Idle connections kept open for reuse; busy ones (watches among them) are not limited,
# so that many long watches never starve short requests of a connection.
_KEEPALIVE_CONNECTIONS = 32


@dataclasses.dataclass(frozen=True, slots=True)
class _Shared:
    """What every view of one client shares."""

    http: httpx.AsyncClient
    bucket: ratelimit.TokenBucket
    backoff: retry.Backoff
    attempts: int
    timeout: float
    rng: random.Random
    # httpcore's per-request options; `sni_hostname` is kubectl's tls-server-name.
    extensions: Mapping[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class PartitionClient:
    """One server of a cluster and the single-server client that reaches it.

    `partition` is None for a cluster that is not partitioned (one server holds it all).
    """

    partition: partitions_.Partition | None
    client: Client

    @property
    def name(self) -> str:
        return self.partition.name if self.partition is not None else ""


class Client:
    """A connection to one API server; see the module docs for what it guarantees.

    `retries` is the number of attempts a retryable request gets in all (at least one).
    `transport` replaces the network (tests pass an `httpx.MockTransport`).
    """

    config: config_.Config

    def __init__(
        self,
        config: config_.Config,
        *,
        qps: float = 50.0,
        burst: int = 100,
        retries: int = 5,
        backoff_base: float = 0.1,
        backoff_max: float = 5.0,
        timeout: float = 30.0,
        user_agent: str = "arktos-lite",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        # Everything that can refuse its settings comes before the pool, which needs closing.
        bucket = ratelimit.TokenBucket(qps=qps, burst=burst)
        backoff = retry.Backoff(base=backoff_base, cap=backoff_max)
        if transport is None:
            # A plain-http server never uses the context: a bare one (verifying, with no CA)
            # spares loading the certifi bundle into every client's own context.
            verify = (
                tls.ssl_context(config) if config.tls else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            )
            transport = httpx.AsyncHTTPTransport(
                verify=verify,
                uds=config.unix_socket,
                http1=True,
                http2=False,
                retries=0,
                limits=httpx.Limits(
                    max_connections=None, max_keepalive_connections=_KEEPALIVE_CONNECTIONS
                ),
            )
        headers = {"User-Agent": user_agent, "Accept": JSON}
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        http = httpx.AsyncClient(
            base_url=config.server,
            headers=headers,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
            # Proxies, CA bundles and .netrc from the environment would bypass the config.
            trust_env=False,
        )
        self.config = config
        self._shared = _Shared(
            http=http,
            bucket=bucket,
            backoff=backoff,
            attempts=max(1, retries),
            timeout=timeout,
            rng=random.Random(),
            extensions=(
                {"sni_hostname": config.tls_server_name}
                if config.tls and config.tls_server_name
                else {}
            ),
        )
        self._owner = True

    @classmethod
    def from_kubeconfig(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        context: str | None = None,
        tenant: str | None = None,
        **kwargs: Any,
    ) -> Client:
        """A client for the kubeconfig's context; `tenant` overrides the context's.

        Without `context`, when the current context addresses a partition (it carries the
        `arktos.futurewei.com/partition` extension), the client is a `RoutedClient` over
        every context of the file that addresses one. `kwargs` go to each server's client.
        """
        if context is None:
            partitioned = config_.load_partitioned_kubeconfig(path)
            if partitioned is not None:
                # `_routed` builds on this module, so it is imported only when needed.
                from arktos_lite.client import _routed

                return _routed.RoutedClient(
                    partitioned.partitions,
                    tenant=tenant if tenant is not None else partitioned.current.tenant,
                    **kwargs,
                )
        config = config_.load_kubeconfig(path, context=context)
        if tenant is not None:
            config = dataclasses.replace(config, tenant=tenant)
        return Client(config, **kwargs)

    @property
    def partitions(self) -> tuple[PartitionClient, ...]:
        """The partitions of a partitioned cluster, each with its own client; () for one server."""
        return ()

    def partitions_for(
        self, resource: resources.Resource, *, tenant: str | None
    ) -> tuple[PartitionClient, ...]:
        """The servers that hold the objects a list of `resource` in `tenant` returns.

        `tenant` is as for `list` (`all` for every tenant). One server: this client.
        """
        return (PartitionClient(None, self),)

    def clients_for(self, path: str, *, method: str = "GET") -> tuple[Client, ...]:
        """The single-server clients a request for `path` goes to: several for a list
        across the partitions of a partitioned cluster, whose answers a caller that asks
        each (for a Table, say) puts together itself. One server: this client."""
        return (self,)

    def path_of(
        self,
        resource: resources.Resource,
        *,
        tenant: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """The path the typed methods use for these arguments (the client's tenant by default)."""
        return self._path(
            resource, tenant=tenant, namespace=namespace, name=name, subresource=subresource
        )

    def with_tenant(self, tenant: str | None) -> Client:
        """A view addressing `tenant` by default, over this client's pool and rate limiter.

        Closing a view closes nothing; the pool closes with the client that made it.
        """
        view = object.__new__(type(self))
        view.config = dataclasses.replace(self.config, tenant=tenant)
        view._shared = self._shared
        view._owner = False
        return view

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owner:
            await self._shared.http.aclose()

    def __repr__(self) -> str:
        return f"Client({self.config.server!r}, tenant={self.config.tenant!r})"

    # Reads

    async def get(
        self,
        resource: resources.Resource,
        name: str,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        path = self._path(
            resource, tenant=tenant, namespace=namespace, name=name, subresource=subresource
        )
        return await self._object("GET", path)

    async def list(
        self,
        resource: resources.Resource,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> Obj:
        """One page: the `…List` object, with `metadata.continue` if more follow."""
        path = self._path(resource, tenant=tenant, namespace=namespace)
        params = {
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "limit": limit,
            "continue": continue_,
            "resourceVersion": resource_version,
            "resourceVersionMatch": resource_version_match,
        }
        return await self._object("GET", path, params=params)

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
        """Every page of a consistent list, as one `…List` object.

        The items are those of the snapshot the first page was read at, and the result's
        resourceVersion is that snapshot's. If the snapshot is compacted away between
        pages, the list starts over in one unpaged request, as client-go's pager does.
        """
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, not {page_size!r}")
        options: dict[str, Any] = {
            "namespace": namespace,
            "tenant": tenant,
            "label_selector": label_selector,
            "field_selector": field_selector,
        }
        first: Obj | None = None
        items: list[Obj] = []
        token: str | None = None
        while True:
            try:
                page = await self.list(resource, limit=page_size, continue_=token, **options)
            except errors.Gone:
                if token is None:
                    raise
                logger.debug("paged list of %s expired; listing it whole", resource.plural)
                return await self.list(resource, **options)
            if first is None:
                first = page
            items.extend(page.get("items") or ())
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                break
        metadata = {"resourceVersion": (first.get("metadata") or {}).get("resourceVersion", "")}
        return {**first, "metadata": metadata, "items": items}

    # Writes

    async def create(
        self,
        resource: resources.Resource,
        obj: Obj,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> Obj:
        """Create `obj`; its namespace and tenant default to those in its metadata."""
        meta = objects.meta(obj)
        tenant = self._tenant(resource, tenant, meta)
        if tenant == resources.ALL_TENANTS:
            raise ValueError(f"tenant {resources.ALL_TENANTS!r} cannot hold a new object")
        if resource.namespaced:
            namespace = namespace or meta.get("namespace") or None
            if namespace is None:
                raise ValueError(f"{resource.plural} are namespaced: say in which namespace")
        path = paths.resource_path(resource, tenant=tenant, namespace=namespace)
        params = _write_params(dry_run=dry_run, field_manager=field_manager)
        return await self._object("POST", path, params=params, body=obj)

    async def replace(
        self,
        resource: resources.Resource,
        obj: Obj,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        subresource: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> Obj:
        """PUT `obj` (or its `subresource`) where its metadata says it is.

        `namespace` and `tenant` default to the object's own, as for `create`.
        """
        meta = objects.meta(obj)
        name = meta.get("name")
        if not name:
            raise ValueError("replace needs an object with metadata.name")
        path = paths.resource_path(
            resource,
            tenant=self._tenant(resource, tenant, meta),
            namespace=namespace or meta.get("namespace"),
            name=name,
            subresource=subresource,
        )
        params = _write_params(dry_run=dry_run, field_manager=field_manager)
        return await self._object("PUT", path, params=params, body=obj)

    async def patch(
        self,
        resource: resources.Resource,
        name: str,
        body: Any,
        *,
        patch_type: str = "merge",
        namespace: str | None = None,
        tenant: str | None = None,
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Patch one object: `merge`, `json`, `strategic` or server-side `apply`.

        A body that is `str` or `bytes` is sent as it is (YAML for apply); anything else
        is encoded as JSON. `force` belongs to apply; the server refuses it elsewhere.
        """
        content_type = PATCH_CONTENT_TYPES.get(patch_type)
        if content_type is None:
            raise ValueError(
                f"patch_type {patch_type!r} is not one of {', '.join(PATCH_CONTENT_TYPES)}"
            )
        path = self._path(
            resource, tenant=tenant, namespace=namespace, name=name, subresource=subresource
        )
        params = _write_params(dry_run=dry_run, field_manager=field_manager)
        if force is not None:
            params["force"] = "true" if force else "false"
        return await self._object(
            "PATCH", path, params=params, body=body, content_type=content_type
        )

    async def delete(
        self,
        resource: resources.Resource,
        name: str,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Delete one object; the answer is the object (still there or gone) or a Status."""
        path = self._path(resource, tenant=tenant, namespace=namespace, name=name)
        options = _delete_options(
            propagation_policy=propagation_policy,
            grace_period_seconds=grace_period_seconds,
            preconditions=preconditions,
        )
        params = _write_params(dry_run=dry_run, field_manager=None)
        return await self._object("DELETE", path, params=params, body=options)

    async def delete_collection(
        self,
        resource: resources.Resource,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        propagation_policy: str | None = None,
    ) -> Obj:
        path = self._path(resource, tenant=tenant, namespace=namespace)
        params = {"labelSelector": label_selector, "fieldSelector": field_selector}
        options = _delete_options(propagation_policy=propagation_policy)
        return await self._object("DELETE", path, params=params, body=options)

    async def post_subresource(
        self,
        resource: resources.Resource,
        name: str,
        subresource: str,
        body: Obj,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
    ) -> Obj:
        """POST to a subresource of one object, such as `pods/binding` or `pods/action`."""
        path = self._path(
            resource, tenant=tenant, namespace=namespace, name=name, subresource=subresource
        )
        return await self._object("POST", path, body=body)

    # Watch

    def watch(
        self,
        resource: resources.Resource,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
    ) -> AbstractAsyncContextManager[AsyncIterator[watching.WatchEvent]]:
        """The changes of a collection: `async with client.watch(...) as events:`.

        Without `resource_version` (or with "0") the server first sends the current
        objects as ADDED. See `_watch` for how the stream ends.
        """
        path = self._path(resource, tenant=tenant, namespace=namespace)
        params = {
            "watch": "1",
            "allowWatchBookmarks": "true" if allow_bookmarks else None,
            "resourceVersion": resource_version,
            "timeoutSeconds": timeout_seconds,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
        }
        # The server ends the stream at timeoutSeconds; only silence well past that is a
        # dead connection. Without one, a quiet watch may legitimately say nothing.
        read_timeout = None
        if timeout_seconds is not None:
            read_timeout = timeout_seconds + self._shared.timeout
        return self._watch(path, params, read_timeout=read_timeout)

    def _watch(
        self, path: str, params: Mapping[str, Any], *, read_timeout: float | None
    ) -> AbstractAsyncContextManager[AsyncIterator[watching.WatchEvent]]:
        return self._open_watch(path, params, read_timeout=read_timeout)

    @contextlib.asynccontextmanager
    async def _open_watch(
        self, path: str, params: Mapping[str, Any], *, read_timeout: float | None
    ) -> AsyncIterator[AsyncIterator[watching.WatchEvent]]:
        timeouts = httpx.Timeout(self._shared.timeout, read=read_timeout)
        response = await self._send("GET", path, params=params, stream=True, timeouts=timeouts)
        events = watching.EventStream(response, where=path)
        try:
            yield events
        finally:
            await events.aclose()

    # Other

    async def version(self) -> Obj:
        """The server's version (`GET /version`)."""
        return await self._object("GET", "/version")

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
        """Any request, retried and rate limited like the others: the decoded JSON answer.

        `path` is a path on the server, never a whole URL: the credentials go only there.
        An answer that is not JSON comes back as text; an empty one as None.
        """
        if not path.startswith("/") or path.startswith("//"):
            raise ValueError(f"path {path!r} must be an absolute path on the server")
        if json is not None and content is not None:
            raise ValueError("send json or content, not both")
        body: bytes | None
        if json is not None:
            body = orjson.dumps(json)
            headers = {"Content-Type": JSON, **(headers or {})}
        else:
            body = content.encode() if isinstance(content, str) else content
        response = await self._send(
            method.upper(), path, params=params or {}, content=body, headers=headers
        )
        if not response.content:
            return None
        if _is_json(response):
            return _loads(response, method=method, path=path)
        return response.text

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """A response body as it arrives, such as a followed log:
        `async with client.stream("GET", path) as chunks:`. It may stay silent for as long
        as it likes (no read timeout); leaving the block closes it."""
        if not path.startswith("/") or path.startswith("//"):
            raise ValueError(f"path {path!r} must be an absolute path on the server")
        timeouts = httpx.Timeout(self._shared.timeout, read=None)
        response = await self._send(
            method.upper(), path, params=params or {}, stream=True, timeouts=timeouts
        )
        try:
            yield response.aiter_raw()
        finally:
            await response.aclose()

    # Plumbing

    def _tenant(
        self,
        resource: resources.Resource,
        tenant: str | None,
        meta: Mapping[str, Any] | None = None,
    ) -> str | None:
        if resource.scope is resources.Scope.CLUSTER:
            return None
        if tenant:
            return tenant
        if meta is not None and meta.get("tenant"):
            return str(meta["tenant"])
        return self.config.tenant or None

    def _path(
        self,
        resource: resources.Resource,
        *,
        tenant: str | None,
        namespace: str | None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        return paths.resource_path(
            resource,
            tenant=self._tenant(resource, tenant),
            namespace=namespace,
            name=name,
            subresource=subresource,
        )

    async def _object(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = JSON,
    ) -> Obj:
        content: bytes | None = None
        headers: dict[str, str] | None = None
        if body is not None:
            if isinstance(body, bytes):
                content = body
            elif isinstance(body, str):
                content = body.encode()
            else:
                content = orjson.dumps(body)
            headers = {"Content-Type": content_type}
        response = await self._send(
            method, path, params=params or {}, content=content, headers=headers
        )
        decoded = _loads(response, method=method, path=path)
        if not isinstance(decoded, dict):
            raise errors.InternalError(
                f"{method} {path}: the server answered {response.text[:200]!r}, not an object"
            )
        return decoded

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
        """One request with rate limiting and retries: a successful response, or raise.

        A `stream` response is open; the caller closes it.
        """
        shared = self._shared
        query = {key: _param(value) for key, value in params.items() if value is not None}
        failures = 0
        while True:
            await shared.bucket.acquire()
            request = shared.http.build_request(
                method,
                path,
                params=query,
                content=content,
                headers=headers,
                timeout=timeouts if timeouts is not None else httpx.USE_CLIENT_DEFAULT,
                extensions=shared.extensions,
            )
            started = trio.current_time()
            try:
                response = await shared.http.send(request, stream=stream)
                if stream and not response.is_success:
                    try:
                        await response.aread()
                    finally:
                        await response.aclose()
            except retry.NETWORK_ERRORS as error:
                failures += 1
                if failures >= shared.attempts or not retry.may_retry_failure(method, error):
                    raise client_errors.Unreachable(
                        f"{method} {request.url}: {client_errors.describe(error)} "
                        f"(attempt {failures} of {shared.attempts})"
                    ) from error
                delay = shared.backoff.delay(failures, shared.rng)
                logger.debug(
                    "%s %s failed (%s); retry %d in %.3fs",
                    method,
                    request.url,
                    client_errors.describe(error),
                    failures,
                    delay,
                )
                await trio.sleep(delay)
                continue
            logger.debug(
                "%s %s -> %d (%.3fs)",
                method,
                request.url,
                response.status_code,
                trio.current_time() - started,
            )
            if response.is_success:
                return response
            failures += 1
            wait = retry.retry_after(response.headers)
            if failures < shared.attempts and retry.may_retry_status(
                method, response.status_code, retry_after=wait
            ):
                if wait is None:
                    wait = shared.backoff.delay(failures, shared.rng)
                logger.debug(
                    "%s %s answered %d; retry %d in %.3fs",
                    method,
                    request.url,
                    response.status_code,
                    failures,
                    wait,
                )
                await trio.sleep(wait)
                continue
            raise client_errors.status_error(response.status_code, response.content)


def _write_params(*, dry_run: bool, field_manager: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if dry_run:
        params["dryRun"] = "All"
    if field_manager is not None:
        params["fieldManager"] = field_manager
    return params


def _delete_options(
    *,
    propagation_policy: str | None = None,
    grace_period_seconds: int | None = None,
    preconditions: Mapping[str, Any] | None = None,
) -> Obj | None:
    """The `DeleteOptions` body; None when it would say nothing."""
    options: Obj = {}
    if propagation_policy is not None:
        options["propagationPolicy"] = propagation_policy
    if grace_period_seconds is not None:
        options["gracePeriodSeconds"] = grace_period_seconds
    if preconditions:
        options["preconditions"] = dict(preconditions)
    if not options:
        return None
    return {"kind": "DeleteOptions", "apiVersion": "v1", **options}


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_json(response: httpx.Response) -> bool:
    media_type: str = response.headers.get("Content-Type", "")
    media_type = media_type.split(";")[0].strip().lower()
    return media_type == JSON or media_type.endswith("+json")


def _loads(response: httpx.Response, *, method: str, path: str) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise errors.InternalError(
            f"{method} {path}: the server answered {response.text[:200]!r}, not JSON"
        ) from None
