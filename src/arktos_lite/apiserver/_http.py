"""The HTTP face of the API server: the Kubernetes REST API as an ASGI application.

Requests for objects (every read, write and watch) are answered straight over ASGI by
`serve`; the rest (discovery, OpenAPI, health, logs, exec, actions) by a QuartTrio app.

Every request is authenticated (bearer token or client certificate) and bound to the
caller's tenant; a tenant user reaches only its own tenant, and is served the resources
its tenant has (the built-ins and its custom resources). Errors, whatever raised
them, leave as `Status` objects from one place (`_failed`). Reads send the
watch cache's stored JSON as it is. Watches stream newline-delimited JSON events straight
from the watch cache's log, each event encoded once for all watchers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any, Protocol, TypeVar

import orjson
import quart
import trio
import werkzeug.datastructures
import werkzeug.exceptions
import yaml
from quart_trio import QuartTrio

from arktos_lite import client, storage
from arktos_lite.api import (
    _errors as errors,
    _fields as fields,
    _managed as managed,
    _patch as patching,
    _resources as resources,
    _selectors as selectors,
)
from arktos_lite.apiserver import (
    _authn as authn,
    _crds as crds,
    _discovery as discovery,
    _openapi as openapi,
    _paths as paths,
    _rest as rest,
    _strategy as strategy,
    _watch as watching,
)

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
T = TypeVar("T")

JSON = "application/json"
YAML = "application/yaml"
# Decoded by `_protobuf`, imported with the first such body (kubectl's typed commands).
PROTOBUF = "application/vnd.kubernetes.protobuf"
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
_BOOKMARK_INTERVAL = 5.0
# The endpoint of resource requests, which `serve` answers without Quart.
_RESOURCE = "resource"
# Watches without timeoutSeconds end after a while, as kube-apiserver's do.
_DEFAULT_WATCH_TIMEOUT = 1800.0


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int = 3 * 1024 * 1024
    max_watches_per_user: int = 200
    # A request body must arrive within this many seconds (Quart's BODY_TIMEOUT).
    body_timeout: float = 60.0


class Api:
    """What the HTTP handlers need: the REST layer, the watch cache and identities."""

    def __init__(
        self,
        *,
        rest_api: rest.Rest,
        watch_cache: watching.WatchCache,
        authenticator: authn.Authenticator,
        limits: Limits | None = None,
        server_address: str = "127.0.0.1:6443",
    ) -> None:
        self.rest = rest_api
        self.registry = rest_api.registry
        self.watch_cache = watch_cache
        self.authenticator = authenticator
        self.limits = limits or Limits()
        self.server_address = server_address
        self.openapi = openapi.Documents(self.registry)
        self.crds = crds.CustomResources(builtins=self.registry, cache=watch_cache, api=rest_api)
        self.ready: Callable[[], bool] = lambda: True
        # On a partition without cluster-scoped objects: the designated partition's server,
        # for the Nodes that pods' log and exec go through (set while the server runs).
        self.designated: client.Client | None = None
        self._watches: dict[str, int] = {}


def create_app(api: Api) -> QuartTrio:
    app = QuartTrio("arktos_lite.apiserver")
    # No limit of Quart's: `_raw_body` applies `api.limits.max_body_bytes` itself.
    app.config["MAX_CONTENT_LENGTH"] = None
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False

    @app.errorhandler(errors.StatusError)
    async def _status_error(error: errors.StatusError) -> quart.Response:
        return await _quart_failed(error)

    @app.errorhandler(werkzeug.exceptions.HTTPException)
    async def _http_error(error: werkzeug.exceptions.HTTPException) -> quart.Response:
        return await _quart_failed(_from_http_exception(error))

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> quart.Response:
        return await _quart_failed(_internal(error))

    @app.get("/version")
    async def _version() -> quart.Response:
        return _quart(_json(discovery.version_info()))

    @app.get("/healthz")
    @app.get("/livez")
    async def _alive() -> quart.Response:
        return quart.Response("ok", content_type="text/plain; charset=utf-8")

    @app.get("/readyz")
    async def _ready() -> quart.Response:
        if api.ready():
            return quart.Response("ok", content_type="text/plain; charset=utf-8")
        return quart.Response("not ready", status=503, content_type="text/plain; charset=utf-8")

    @app.get("/api")
    async def _api() -> quart.Response:
        await _user(api, _current())
        return _quart(_json(discovery.api_versions(api.server_address)))

    @app.get("/apis")
    async def _apis() -> quart.Response:
        user = await _user(api, _current())
        return _quart(_json(discovery.api_group_list(api.crds.registry_for(user.tenant))))

    @app.get("/apis/<group>")
    async def _api_group(group: str) -> quart.Response:
        user = await _user(api, _current())

        def find() -> Obj | None:
            return discovery.api_group(api.crds.registry_for(user.tenant), group)

        return _quart(_json(await _find(api, find, group=group)))

    @app.get("/api/<version>")
    @app.get("/apis/<group>/<version>")
    async def _resource_list(version: str, group: str = "") -> quart.Response:
        user = await _user(api, _current())

        def find() -> Obj | None:
            registry = api.crds.registry_for(user.tenant)
            return discovery.resource_list(registry, group, version, system_user=_is_system(user))

        return _quart(_json(await _find(api, find, group=group)))

    def openapi_of(user: authn.User) -> openapi.View:
        """The OpenAPI documents of what `user`'s tenant is served."""
        return api.openapi.for_registry(api.crds.registry_for(user.tenant))

    @app.get("/openapi/v3")
    async def _openapi_index() -> quart.Response:
        user = await _user(api, _current())
        return _openapi_response(openapi_of(user).index())

    @app.get("/openapi/v3/<path:group_version>")
    async def _openapi_document(group_version: str) -> quart.Response:
        user = await _user(api, _current())

        def find() -> openapi.Document | None:
            return openapi_of(user).group_version(group_version)

        return _openapi_response(await _find(api, find, group=group_version))

    # Resource requests are served by `serve` below without going through Quart; these
    # rules place them among the other routes (the more specific ones win).
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]

    @app.route("/api/<version>/<path:rest_path>", methods=methods, endpoint=_RESOURCE)
    @app.route("/apis/<group>/<version>/<path:rest_path>", methods=methods, endpoint=_RESOURCE)
    async def _resource(version: str, rest_path: str, group: str = "") -> quart.Response:
        reply = await _resource_reply(
            api, _current(), version=version, rest_path=rest_path, group=group
        )
        return _quart(reply)

    return app


def serve(app: QuartTrio, api: Api) -> Any:
    """The ASGI application to serve: `app`, except for resource requests, which are the
    bulk of the traffic (every read, write and watch of an object) and are answered here
    straight over ASGI. Quart's request and response machinery costs about as much as
    serving a simple read itself.
    """

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            route = _resource_route(app, scope)
            if route is not None:
                request = _AsgiRequest(scope, receive, body_timeout=api.limits.body_timeout)
                await _serve_resource(api, request, send, route)
                return
        await app(scope, receive, send)

    return asgi


async def _resource_reply(
    api: Api, request: Incoming, *, version: str, rest_path: str, group: str = ""
) -> Reply:
    user = await _user(api, request)

    def registry_for(tenant: str | None) -> resources.Registry:
        return api.crds.registry_for(tenant or user.tenant)

    def find() -> paths.Target | None:
        try:
            return paths.parse(registry_for, group=group, version=version, rest=rest_path)
        except errors.NotFound:
            return None

    target = await _find(api, find, group=group)
    return await _Request(api, request, user, target).dispatch()


# Identity and access


async def _user(api: Api, request: Incoming) -> authn.User:
    user = api.authenticator.authenticate(
        request.headers.get("Authorization"), authn.peer_certificate(request.scope)
    )
    if user is None:
        raise errors.Unauthorized()
    return user


def _openapi_response(document: openapi.Document) -> quart.Response:
    request = quart.request
    reply = openapi.reply(
        document,
        path=request.path,
        hash=request.args.get("hash"),
        accept=request.headers.get("Accept"),
        if_none_match=request.headers.get("If-None-Match"),
    )
    return quart.Response(reply.body, status=reply.status, headers=reply.headers, content_type=JSON)


async def _find(api: Api, find: Callable[[], T | None], *, group: str) -> T:
    """What `find` finds, else 404.

    A miss in a group a CRD may define (its name has a dot) is looked up again once the
    watch cache holds every CRD written before now: a kind defined just now is found.
    """
    found = find()
    if found is None and "." in group:
        await api.crds.caught_up()
        found = find()
    if found is None:
        raise _not_found()
    return found


def _is_system(user: authn.User) -> bool:
    return user.tenant == resources.SYSTEM_TENANT


def _not_found() -> errors.NotFound:
    return errors.NotFound("the server could not find the requested resource")


class _Request:
    """One resource request: authorize, decode, call the REST layer, encode."""

    def __init__(self, api: Api, request: Incoming, user: authn.User, target: paths.Target) -> None:
        self.api = api
        self.request = request
        self.user = user
        self.target = target
        self.resource = target.resource
        self.args = request.args
        tenant = target.tenant or user.tenant
        if self.resource.scope is resources.Scope.CLUSTER:
            tenant = resources.SYSTEM_TENANT
        self.where = rest.Where(tenant=tenant, namespace=target.namespace)
        # Warning headers for the response (unknown fields with fieldValidation=Warn).
        self.warnings: list[str] = []

    async def dispatch(self) -> Reply:
        reply = await self._dispatch()
        reply.headers.extend(("Warning", _warning_header(warning)) for warning in self.warnings)
        return reply

    async def _dispatch(self) -> Reply:
        method = self.request.method
        target = self.target
        sub = target.subresource
        if method == "GET" and target.collection:
            watch = target.watch or _flag(self.args.get("watch"))
            self._authorize("watch" if watch else "list")
            return await (self._watch() if watch else self._list())
        if target.watch:
            raise errors.MethodNotAllowed("watch is only possible on collections")
        if method == "GET":
            self._authorize("get")
            if sub == "scale":
                return _json(await self._scale())
            return self._stored(await self._read())
        if method == "POST" and target.collection:
            self._authorize("create")
            if self.api.crds.terminating(self.resource):
                raise errors.MethodNotAllowed(
                    "create not allowed while custom resource definition is terminating"
                )
            return await self._create()
        if method == "POST" and sub == "binding":
            self._authorize("create")
            return await self._bind()
        if method == "PUT" and not target.collection:
            self._authorize("update")
            if sub == "scale":
                return _json(await self._put_scale())
            return await self._update()
        if method == "PATCH" and not target.collection:
            self._authorize("patch")
            if sub == "scale":
                return _json(await self._patch_scale())
            return await self._patch()
        if method == "DELETE" and sub is None:
            self._authorize("deletecollection" if target.collection else "delete")
            return await (self._delete_collection() if target.collection else self._delete())
        raise errors.MethodNotAllowed(
            f"the server does not allow this method on the requested resource ({method})"
        )

    def _authorize(self, verb: str) -> None:
        """Tenant users stay in their tenant; system users may go everywhere. Then the
        request must be for data this server's partition holds (else 421)."""
        self._authorize_user(verb)
        self.api.rest.check_partition(self.resource, self.where, self.target.name)

    def _authorize_user(self, verb: str) -> None:
        user = self.user
        if _is_system(user):
            return
        resource = self.resource
        allowed = True
        if resource.scope is resources.Scope.CLUSTER:
            # A tenant user may read its own tenant object, nothing else cluster-wide.
            allowed = (
                resource.kind == "Tenant"
                and verb == "get"
                and self.target.name == user.tenant
                and self.target.subresource is None
            )
            place = ""
        else:
            allowed = self.where.tenant == user.tenant
            place = f' in the tenant "{self.where.tenant}"'
        if not allowed:
            raise errors.Forbidden.for_resource(
                resource.plural,
                self.target.name or "",
                group=resource.group,
                why=f'User "{user.name}" cannot {verb} resource "{resource.plural}" in API '
                f'group "{resource.group}"{place}',
            )

    # Reads

    async def _read(self) -> rest.Stored:
        assert self.target.name is not None
        return await self.api.rest.read(
            self.resource,
            self.where,
            self.target.name,
            resource_version=self.args.get("resourceVersion", ""),
        )

    async def _get(self) -> Obj:
        return (await self._read()).object()

    def _list_options(self) -> rest.ListOptions:
        args = self.args
        return rest.ListOptions(
            label_selector=args.get("labelSelector", ""),
            field_selector=args.get("fieldSelector", ""),
            resource_version=args.get("resourceVersion", ""),
            resource_version_match=args.get("resourceVersionMatch", ""),
            limit=_int(args.get("limit"), "limit", default=0),
            continue_token=args.get("continue", ""),
        )

    async def _list(self) -> Reply:
        result = await self.api.rest.list(self.resource, self.where, self._list_options())
        rv = str(result.resource_version)
        if _wants_table(self.request):
            from arktos_lite.apiserver import _tables as tables

            return _json(
                tables.table(
                    self.resource,
                    [stored.object() for stored in result.items],
                    include_object=self.args.get("includeObject", "Metadata"),
                    all_tenants=self.where.tenant == resources.ALL_TENANTS,
                    resource_version=rv,
                    continue_token=result.continue_token,
                )
            )
        metadata: Obj = {"resourceVersion": rv}
        if result.continue_token:
            metadata["continue"] = result.continue_token
        return self._list_of(result.items, metadata)

    def _list_of(self, items: list[rest.Stored], metadata: Obj) -> Reply:
        """A `...List` of stored objects; their JSON is sent as it is."""
        head = {
            "kind": self.resource.list_kind,
            "apiVersion": self.resource.api_version,
            "metadata": metadata,
        }
        if _converts(self.resource):
            items = [_converted(self.resource, stored) for stored in items]
        if _wants_yaml(self.request):
            return _encode(self.request, {**head, "items": [stored.object() for stored in items]})
        # `orjson.dumps` of the whole list, without decoding and encoding every item.
        body = b"".join(
            (
                orjson.dumps(head)[:-1],
                b',"items":[',
                b",".join([stored.json for stored in items]),
                b"]}",
            )
        )
        return Reply(body)

    async def _watch(self) -> Reply:
        api = self.api
        user = self.user.name
        if api._watches.get(user, 0) >= api.limits.max_watches_per_user:
            raise errors.TooManyRequests(
                f"too many watches for user {user!r} (at most "
                f"{api.limits.max_watches_per_user} at once)"
            )
        options = self._list_options()
        matcher = rest.Matcher.parse(
            self.resource,
            label=options.label_selector,
            field=options.field_selector,
            where=self.where,
        )
        timeout = float(_int(self.args.get("timeoutSeconds"), "timeoutSeconds", default=0))
        stream = _WatchStream(
            api,
            self.resource,
            self.where,
            user=user,
            matcher=matcher,
            resource_version=options.resource_version,
            timeout=timeout or _DEFAULT_WATCH_TIMEOUT,
            bookmarks=_flag(self.args.get("allowWatchBookmarks")),
            table=_wants_table(self.request),
            include_object=self.args.get("includeObject", "Metadata"),
        )
        # The body takes its slot when it starts, and a client that goes away cancels it.
        return Reply(stream.body(), headers=[("Cache-Control", "no-cache")])

    # Writes

    def _dry_run(self) -> bool:
        values = self.args.getlist("dryRun")
        for value in values:
            if value != "All":
                raise errors.BadRequest(
                    f'dryRun: Unsupported value: "{value}": supported values: "All"'
                )
        return bool(values)

    async def _body(self) -> Any:
        raw = await _raw_body(self.request, self.api.limits.max_body_bytes)
        content_type = (self.request.mimetype or JSON).lower()
        return _parse_body(raw, content_type)

    async def _create(self) -> Reply:
        manager = self._manager("CreateOptions")
        body = await self._body()
        if not isinstance(body, dict):
            raise errors.BadRequest("the request body must be a JSON or YAML object")
        self._check_fields(body)
        created = await self.api.rest.create(
            self.resource,
            self.where,
            body,
            dry_run=self._dry_run(),
            manager=manager,
            handed_over=True,
        )
        return self._object(created, status=201)

    async def _update(self) -> Reply:
        assert self.target.name is not None
        manager = self._manager("UpdateOptions")
        body = await self._body()
        if not isinstance(body, dict):
            raise errors.BadRequest("the request body must be a JSON or YAML object")
        self._check_fields(body)
        updated = await self.api.rest.update(
            self.resource,
            self.where,
            self.target.name,
            body,
            subresource=self.target.subresource,
            dry_run=self._dry_run(),
            manager=manager,
        )
        return self._object(updated)

    async def _patch(self) -> Reply:
        assert self.target.name is not None
        content_type = (self.request.mimetype or "").lower()
        if content_type not in PATCH_TYPES:
            raise errors.UnsupportedMediaType(
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(PATCH_TYPES)}"
            )
        if content_type == "application/apply-patch+yaml":
            return await self._apply()
        if content_type == fields.Body.STRATEGIC_MERGE_PATCH and self.resource.custom is not None:
            accepted = [t for t in PATCH_TYPES if t != content_type]
            raise errors.UnsupportedMediaType(
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(accepted)}"
            )
        manager = self._manager("PatchOptions")
        patch = await self._body()
        self._check_fields(patch, fields.Body(content_type))
        patched = await self.api.rest.patch(
            self.resource,
            self.where,
            self.target.name,
            patch,
            content_type=content_type,
            subresource=self.target.subresource,
            dry_run=self._dry_run(),
            manager=manager,
        )
        return self._object(patched)

    async def _apply(self) -> Reply:
        """Server-side apply; an apply to a missing object creates it (201)."""
        assert self.target.name is not None
        manager = self._manager("PatchOptions", apply=True)
        force = _bool(self.args.get("force", "false"), "force")
        patch = await self._body()
        if not isinstance(patch, dict):
            raise errors.BadRequest("an apply patch must be an object")
        self._check_fields(patch, fields.Body.APPLY)
        applied, created = await self.api.rest.apply(
            self.resource,
            self.where,
            self.target.name,
            patch,
            manager=manager,
            force=force,
            subresource=self.target.subresource,
            dry_run=self._dry_run(),
        )
        return self._object(applied, status=201 if created else 200)

    def _manager(self, options: str, *, apply: bool = False) -> str:
        """The write's field manager: `fieldManager`, else the User-Agent before its first "/".

        `options` names the kind of options kube-apiserver reports invalid ones for
        (`CreateOptions`, `UpdateOptions`, `PatchOptions`). `force` belongs to apply only.
        """
        if not apply and "force" in self.args:
            raise errors.BadRequest("force: Forbidden: may not be specified for non-apply patch")
        manager = self.args.get("fieldManager", "")
        problems: list[errors.FieldError] = []
        if apply and not manager:
            problems.append(
                errors.FieldError(
                    errors.CauseType.REQUIRED, "fieldManager", "is required for apply patch"
                )
            )
        if len(manager.encode()) > managed.MAX_MANAGER_LENGTH:
            problems.append(
                errors.FieldError(
                    errors.CauseType.TOO_LONG,
                    "fieldManager",
                    f"may not be more than {managed.MAX_MANAGER_LENGTH} bytes",
                )
            )
        for position, char in enumerate(manager):
            if not char.isprintable():
                problems.append(
                    errors.FieldError(
                        errors.CauseType.INVALID,
                        "fieldManager",
                        f"invalid character U+{ord(char):04X} (at position "
                        f"{len(manager[:position].encode())})",
                        manager,
                    )
                )
        if problems:
            raise errors.Invalid.for_object(options, "", problems, group="meta.k8s.io")
        return manager or _manager_from_user_agent(self.request.headers.get("User-Agent", ""))

    async def _delete(self) -> Reply:
        assert self.target.name is not None
        options = await self._delete_options()
        obj, gone = await self.api.rest.delete(self.resource, self.where, self.target.name, options)
        if gone:
            answer = strategy.deleted_answer(self.resource, obj)
            return self._object(obj) if answer is obj else _encode(self.request, answer)
        # Waiting for finalizers or a grace period is 200 OK too; 202 Accepted only when
        # asked for with `orphanDependents: false` (kube-apiserver's handlers/delete.go).
        return self._object(obj, status=202 if options.orphan_dependents is False else 200)

    async def _delete_collection(self) -> Reply:
        options = await self._delete_options()
        result = await self.api.rest.delete_collection(
            self.resource, self.where, self._list_options(), options
        )
        return self._list_of(result.items, {"resourceVersion": str(result.resource_version)})

    async def _delete_options(self) -> rest.DeleteOptions:
        raw = await _raw_body(self.request, self.api.limits.max_body_bytes)
        body: Obj = {}
        if raw.strip():
            parsed = _parse_body(raw, (self.request.mimetype or JSON).lower())
            if not isinstance(parsed, dict):
                raise errors.BadRequest("DeleteOptions must be an object")
            body = parsed
        args = self.args
        grace = body.get("gracePeriodSeconds")
        if "gracePeriodSeconds" in args:
            grace = _int(args.get("gracePeriodSeconds"), "gracePeriodSeconds", default=0)
        policy = body.get("propagationPolicy") or args.get("propagationPolicy")
        orphan = body.get("orphanDependents")
        if "orphanDependents" in args:
            orphan = _flag(args.get("orphanDependents"))
        if orphan is not None and not isinstance(orphan, bool):
            raise errors.BadRequest(f"invalid orphanDependents: {orphan!r}")
        preconditions = body.get("preconditions") or {}
        dry_run = self._dry_run() or bool(body.get("dryRun"))
        if grace is not None and (not isinstance(grace, int) or grace < 0):
            raise errors.BadRequest(f"invalid gracePeriodSeconds: {grace!r}")
        return rest.DeleteOptions(
            grace_period_seconds=grace,
            propagation_policy=policy,
            precondition_uid=preconditions.get("uid"),
            precondition_resource_version=preconditions.get("resourceVersion"),
            dry_run=dry_run,
            orphan_dependents=orphan,
        )

    # Subresources

    async def _bind(self) -> Reply:
        assert self.target.name is not None
        body = await self._body()
        if not isinstance(body, dict):
            raise errors.BadRequest("a Binding must be an object")
        await self.api.rest.bind(self.where, self.target.name, body)
        return _json(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "code": 201,
            },
            status=201,
        )

    async def _scale(self) -> Obj:
        return self._scale_of(await self._get())

    def _scale_of(self, obj: Obj) -> Obj:
        custom = self.resource.custom
        return _scale_of(obj) if custom is None else custom.scale_of(obj)

    async def _put_scale(self) -> Obj:
        manager = self._manager("UpdateOptions")
        body = await self._body()
        if not isinstance(body, dict):
            raise errors.BadRequest("a Scale must be an object")
        return await self._set_replicas(body, manager=manager)

    async def _patch_scale(self) -> Obj:
        content_type = (self.request.mimetype or "").lower()
        if content_type == "application/apply-patch+yaml":
            manager = self._manager("PatchOptions", apply=True)
            force = _bool(self.args.get("force", "false"), "force")
            applied = await self._body()
            if not isinstance(applied, dict):
                raise errors.BadRequest("an apply patch must be an object")
            return await self._set_replicas(applied, manager=manager, force=force)
        manager = self._manager("PatchOptions")
        patch = await self._body()
        current = await self._scale()
        if content_type == "application/json-patch+json":
            scale = patching.json_patch(current, patch)
        elif content_type in PATCH_TYPES:
            scale = patching.merge_patch(current, patch)
        else:
            raise errors.UnsupportedMediaType(f"the media type {content_type!r} is not supported")
        return await self._set_replicas(scale, manager=manager)

    async def _set_replicas(self, scale: Obj, *, manager: str, force: bool | None = None) -> Obj:
        """Write `spec.replicas` of the parent; an apply (`force` set) owns just that field."""
        assert self.target.name is not None
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.Invalid.for_object(
                "Scale",
                self.target.name,
                [
                    errors.FieldError(
                        errors.CauseType.INVALID,
                        "spec.replicas",
                        "must be greater than or equal to 0",
                        replicas,
                    )
                ],
                group="autoscaling",
            )
        custom = self.resource.custom
        patch: Obj = (
            {"spec": {"replicas": replicas}}
            if custom is None
            else custom.with_replicas({}, replicas)
        )
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv:
            patch["metadata"] = {"resourceVersion": rv}
        if force is not None:
            resource = self.resource
            config = {
                "apiVersion": resource.api_version,
                "kind": resource.kind,
                **patch,
                "metadata": {"name": self.target.name, **patch.get("metadata", {})},
            }
            updated, _created = await self.api.rest.apply(
                resource,
                self.where,
                self.target.name,
                config,
                manager=manager,
                force=force,
                subresource="scale",
                dry_run=self._dry_run(),
            )
            return self._scale_of(updated)
        updated = await self.api.rest.patch(
            self.resource,
            self.where,
            self.target.name,
            patch,
            content_type="application/merge-patch+json",
            subresource="scale",
            dry_run=self._dry_run(),
            manager=manager,
        )
        return self._scale_of(updated)

    # Encoding

    def _check_fields(self, body: Any, body_type: fields.Body = fields.Body.OBJECT) -> None:
        """fieldValidation: Strict rejects unknown fields, Warn (default) warns, Ignore doesn't.

        A patch is checked for the fields it adds, before anything is stored.
        """
        mode = self.args.get("fieldValidation", "Warn")
        if mode not in ("Strict", "Warn", "Ignore"):
            raise errors.BadRequest(
                f'fieldValidation: Unsupported value: "{mode}": supported values: '
                '"Ignore", "Strict", "Warn"'
            )
        if mode == "Ignore":
            return
        resource = self.resource
        if resource.custom is None:
            unknown = fields.check(
                resource.group, resource.version, resource.kind, body, body=body_type
            )
        else:
            paths_found = resource.custom.unknown_fields(body, body_type=body_type)
            unknown = fields.Unknown(
                resource.group, resource.version, resource.kind, body_type, tuple(paths_found)
            )
        if unknown and mode == "Strict":
            raise errors.BadRequest(unknown.error_message())
        self.warnings.extend(unknown.warnings())

    def _stored(self, stored: rest.Stored) -> Reply:
        """A read's answer: the stored JSON as it is, unless another form was asked for."""
        if _wants_table(self.request) or _wants_yaml(self.request) or _converts(self.resource):
            return self._object(stored.object())
        return Reply(stored.json)

    def _object(self, obj: Obj, *, status: int = 200) -> Reply:
        if _converts(self.resource):
            obj["apiVersion"] = self.resource.api_version
        if _wants_table(self.request):
            from arktos_lite.apiserver import _tables as tables

            return _json(
                tables.table(
                    self.resource,
                    [obj],
                    include_object=self.args.get("includeObject", "Metadata"),
                    resource_version=obj["metadata"].get("resourceVersion", ""),
                ),
                status=status,
            )
        return _encode(self.request, obj, status=status)


def _converts(resource: resources.Resource) -> bool:
    """Whether objects of `resource` are stored in another version than it serves.

    Custom resources convert with the `None` strategy: only `apiVersion` changes.
    """
    custom = resource.custom
    return custom is not None and custom.storage_version != resource.version


def _converted(resource: resources.Resource, stored: rest.Stored) -> rest.Stored:
    obj = stored.object()
    obj["apiVersion"] = resource.api_version
    return rest.Stored(stored.key, stored.revision, orjson.dumps(obj))


def _scale_of(obj: Obj) -> Obj:
    meta = obj["metadata"]
    selector = (obj.get("spec") or {}).get("selector") or {}
    try:
        selector_text = str(selectors.LabelSelector.from_dict(selector))
    except (ValueError, errors.StatusError):
        selector_text = ""
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            key: meta[key]
            for key in (
                "name",
                "namespace",
                "tenant",
                "uid",
                "resourceVersion",
                "creationTimestamp",
            )
            if key in meta
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": selector_text,
        },
    }


class _WatchStream:
    """One watch response body: initial state if asked, then events, bookmarks, end.

    Every wake-up sends all the events that arrived since as one chunk, each event's JSON
    shared with the other watchers. No cancel scope spans a `yield` of the body: the
    stream waits for changes in `_next_chunk`, and the watch cache wakes it to look at the
    time now and then.
    """

    def __init__(
        self,
        api: Api,
        resource: resources.Resource,
        where: rest.Where,
        *,
        user: str,
        matcher: rest.Matcher,
        resource_version: str,
        timeout: float,
        bookmarks: bool,
        table: bool,
        include_object: str,
    ) -> None:
        self.api = api
        self.resource = resource
        self.where = where
        self.user = user
        self.matcher = matcher
        self.resource_version = resource_version
        self.timeout = timeout
        self.bookmarks = bookmarks
        self.table = table
        self.include_object = include_object
        self._first_table = True
        # Every change as it is: the event lines other such watchers share.
        self._plain = matcher.everything and not table and not _converts(resource)
        # The revision of the last change seen, and of the last bookmark sent.
        self._progress = 0
        self._bookmarked = 0
        self._deadline = math.inf
        self._next_bookmark = math.inf

    async def body(self) -> AsyncGenerator[bytes, None]:
        """The response body; it holds one of the user's watch slots while it runs."""
        api = self.api
        api._watches[self.user] = api._watches.get(self.user, 0) + 1
        try:
            now = trio.current_time()
            self._deadline = now + self.timeout
            self._next_bookmark = now + _BOOKMARK_INTERVAL
            rv = self.resource_version
            if rv in ("", "0"):
                listed = await api.rest.list(self.resource, self.where, rest.ListOptions())
                after = listed.resource_version
                parts: list[bytes] = []
                for stored in listed.items:
                    self._add(watching.Change(watching.ADDED, stored, None), parts)
                if parts:
                    yield b"".join(parts)
            else:
                try:
                    after = int(rv)
                except ValueError:
                    raise errors.BadRequest(f"invalid resourceVersion: {rv!r}") from None
            self._progress = self._bookmarked = after
            prefix = api.rest._prefix(self.resource, self.where)
            try:
                async with api.watch_cache.watch(prefix=prefix, after=after) as feed:
                    while chunk := await self._next_chunk(feed):
                        yield chunk
            except storage.Compacted as error:
                raise errors.Gone.too_old(error.requested - 1, error.compact_revision) from None
        except watching.TooSlow:
            logger.debug("a watch of %s fell behind and was ended", self.resource.plural)
        except errors.StatusError as error:
            yield orjson.dumps({"type": "ERROR", "object": error.status()}) + b"\n"
        except Exception:
            logger.exception("a watch of %s failed", self.resource.plural)
        finally:
            api._watches[self.user] -= 1

    async def _next_chunk(self, feed: watching.Feed) -> bytes:
        """The events (and bookmark) to send next; empty once the stream is over."""
        cache = self.api.watch_cache
        now = trio.current_time()
        while not cache.ended and now < self._deadline:
            until = min(self._deadline, self._next_bookmark) if self.bookmarks else self._deadline
            changes = await feed.next(until)
            now = trio.current_time()
            parts: list[bytes] = []
            for change in changes:
                self._progress = change.revision
                self._add(change, parts)
            if self.bookmarks and now >= self._next_bookmark:
                while self._next_bookmark <= now:
                    self._next_bookmark += _BOOKMARK_INTERVAL
                if self._progress > self._bookmarked:
                    self._bookmarked = self._progress
                    parts.append(self._bookmark())
            if parts:
                return b"".join(parts)
        return b""

    def _add(self, change: watching.Change, parts: list[bytes]) -> None:
        """Append the line of `change`'s event, if this watcher sees one."""
        if self._plain:
            parts.append(change.line)
            return
        event = watching.event_for(change, self.matcher)
        if event is None:
            return
        kind, stored = event
        if _converts(self.resource):
            stored = _converted(self.resource, stored)
        if not self.table:
            parts.append(watching.line(kind, stored))
            return
        from arktos_lite.apiserver import _tables as tables

        obj = stored.object()
        table = tables.table(
            self.resource,
            [obj],
            include_object=self.include_object,
            resource_version=obj["metadata"].get("resourceVersion", ""),
            column_definitions=self._first_table,
        )
        self._first_table = False
        parts.append(orjson.dumps({"type": kind, "object": table}) + b"\n")

    def _bookmark(self) -> bytes:
        bookmark = {
            "kind": self.resource.kind,
            "apiVersion": self.resource.api_version,
            "metadata": {"resourceVersion": str(self._bookmarked)},
        }
        return orjson.dumps({"type": "BOOKMARK", "object": bookmark}) + b"\n"


# Bodies, parameters and responses


# Requests and replies


class Incoming(Protocol):
    """What the handlers read of a request: Quart's request, or `_AsgiRequest`."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def args(self) -> werkzeug.datastructures.MultiDict[str, str]: ...
    @property
    def headers(self) -> werkzeug.datastructures.Headers: ...
    @property
    def mimetype(self) -> str: ...
    @property
    def content_length(self) -> int | None: ...
    @property
    def http_version(self) -> str: ...
    @property
    def scope(self) -> Any: ...
    @property
    def body(self) -> AsyncIterator[bytes]: ...


@dataclasses.dataclass(slots=True)
class Reply:
    """An answer before it is sent: a body (bytes, or chunks as they come) and its head."""

    body: bytes | AsyncGenerator[bytes, None]
    status: int = 200
    content_type: str = JSON
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)


class _ClientGone(Exception):
    """The client went away before its request body had arrived."""


class _AsgiRequest:
    """A request as the ASGI scope and messages give it, read no further than asked."""

    def __init__(self, scope: Any, receive: Any, *, body_timeout: float) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.http_version: str = scope["http_version"]
        self._receive = receive
        self._body_timeout = body_timeout
        self._more_body = True
        # The body stopped coming: what is left of it will not be read.
        self.abandoned = False
        self._args: werkzeug.datastructures.MultiDict[str, str] | None = None
        self.headers = werkzeug.datastructures.Headers(
            [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
        )

    @property
    def args(self) -> werkzeug.datastructures.MultiDict[str, str]:
        if self._args is None:
            query = self.scope["query_string"].decode("utf-8", "replace")
            self._args = werkzeug.datastructures.MultiDict(
                urllib.parse.parse_qsl(query, keep_blank_values=True)
            )
        return self._args

    @property
    def mimetype(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value and value.isdigit() else None

    @property
    def body(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        """The body's chunks not read yet; each must come within the body timeout."""
        while self._more_body:
            with trio.move_on_after(self._body_timeout) as waited:
                message = await self._receive()
            if waited.cancelled_caught:
                self._more_body = False
                self.abandoned = True
                raise errors.Timeout(
                    f"the request body did not arrive within {self._body_timeout:g} seconds"
                )
            if message["type"] == "http.disconnect":
                self._more_body = False
                raise _ClientGone()
            self._more_body = message.get("more_body", False)
            yield message.get("body", b"")

    async def disconnected(self) -> None:
        """Return once the client has gone away (any body left unread is dropped)."""
        while (await self._receive())["type"] != "http.disconnect":
            pass


def _current() -> Incoming:
    """The request Quart is serving."""
    return quart.request


def _quart(reply: Reply) -> quart.Response:
    response = quart.Response(reply.body, status=reply.status, content_type=reply.content_type)
    for name, value in reply.headers:
        response.headers.add(name, value)
    if not isinstance(reply.body, bytes):
        # A stream (a watch) ends at its own timeout, not at Quart's response timeout.
        response.timeout = None
    return response


def _resource_route(app: QuartTrio, scope: Any) -> Mapping[str, Any] | None:
    """The resource route's arguments, if Quart would route this request to it."""
    adapter = app.url_map.bind("localhost")
    try:
        endpoint, values = adapter.match(scope["path"], method=scope["method"])
    except werkzeug.exceptions.HTTPException:  # 404, 405 and redirects: Quart answers
        return None
    return values if endpoint == _RESOURCE else None


async def _serve_resource(
    api: Api, request: _AsgiRequest, send: Any, route: Mapping[str, Any]
) -> None:
    try:
        reply = await _resource_reply(api, request, **route)
    except _ClientGone:
        return
    except errors.StatusError as error:
        reply = await _failed(request, error)
    except Exception as error:
        reply = await _failed(request, _internal(error))
    if request.abandoned:
        # The rest of the body may still come: this connection cannot go on.
        reply.headers.append(("Connection", "close"))
    headers = [(b"content-type", reply.content_type.encode())]
    headers += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers]
    body = reply.body
    if isinstance(body, bytes):
        headers.append((b"content-length", b"%d" % len(body)))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    # A stream goes on until it ends or its client goes away, whichever comes first.
    async with trio.open_nursery() as nursery, contextlib.aclosing(body):
        nursery.start_soon(_cancel_when_gone, request, nursery.cancel_scope)
        async for chunk in body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        nursery.cancel_scope.cancel()


async def _cancel_when_gone(request: _AsgiRequest, scope: trio.CancelScope) -> None:
    await request.disconnected()
    scope.cancel()


async def _failed(request: Incoming, error: errors.StatusError) -> Reply:
    """The Status answer of `error`, once the request body is out of the way."""
    reply = _error_reply(error)
    if error.code == 413 and request.http_version != "2":
        # The unread body is still on the wire: this connection cannot go on.
        reply.headers.append(("Connection", "close"))
    else:
        await _drain_body(request)
    return reply


async def _quart_failed(error: errors.StatusError) -> quart.Response:
    if not quart.has_request_context():
        return _quart(_error_reply(error))  # a websocket's error
    return _quart(await _failed(_current(), error))


def _internal(error: Exception) -> errors.StatusError:
    logger.exception("request failed: %s", error)
    return errors.InternalError(f"an internal error occurred: {error}")


async def _drain_body(request: Incoming) -> None:
    """Read (and drop) the rest of the request body before an error answers early.

    Over HTTP/2 (kubectl's protocol over TLS), hypercorn fails the whole server when body
    data arrives for a stream that has been answered already.
    """
    with contextlib.suppress(_ClientGone, errors.Timeout):
        async for _chunk in request.body:
            pass


async def _raw_body(request: Incoming, limit: int) -> bytes:
    """The request body, at most `limit` bytes (413 beyond).

    Over HTTP/1.1 an oversize body is refused at once and its connection closed; over
    HTTP/2 it is read to its end first (see `_drain_body`), keeping only `limit` bytes.
    """
    http2 = request.http_version == "2"
    too_big = (request.content_length or 0) > limit
    if too_big and not http2:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.body:
        size += len(chunk)
        if size > limit:
            too_big = True
            if not http2:
                break
        if not too_big:
            chunks.append(chunk)
    if too_big:
        raise _too_large(limit)
    return b"".join(chunks)


def _too_large(limit: int) -> errors.RequestEntityTooLarge:
    return errors.RequestEntityTooLarge(
        f"the request body is larger than the limit of {limit} bytes"
    )


def _parse_body(raw: bytes, content_type: str) -> Any:
    if not raw.strip():
        raise errors.BadRequest("the request body is empty")
    if content_type == PROTOBUF:
        # kubectl's typed commands (create namespace, create deployment ...) send these.
        from arktos_lite.apiserver import _protobuf as protobuf

        return protobuf.decode(raw)
    if content_type in (YAML, "application/apply-patch+yaml", "application/x-yaml", "text/yaml"):
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise errors.BadRequest(f"the request body is not valid YAML: {error}") from None
    if content_type not in (JSON, *PATCH_TYPES, ""):
        raise errors.UnsupportedMediaType(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{JSON}, {YAML}, {PROTOBUF}"
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise errors.BadRequest(f"the request body is not valid JSON: {error}") from None


def _manager_from_user_agent(user_agent: str) -> str:
    """kube-apiserver's default field manager: the User-Agent up to its first "/", without
    unprintable characters, cut at the length limit (`kubectl/v1.32.0 (linux)` → `kubectl`)."""
    manager = ""
    for char in user_agent.split("/", 1)[0]:
        if not char.isprintable():
            continue
        if len((manager + char).encode()) > managed.MAX_MANAGER_LENGTH:
            break
        manager += char
    return manager


def _bool(value: str, name: str) -> bool:
    """A boolean query parameter as Go's strconv.ParseBool reads it."""
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise errors.BadRequest(
        f'invalid value for {name}: strconv.ParseBool: parsing "{value}": invalid syntax'
    )


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


def _int(value: str | None, name: str, *, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise errors.BadRequest(f"invalid value for {name}: {value!r}") from None


def _wants_table(request: Incoming) -> bool:
    accept = request.headers.get("Accept", "")
    if "Table" not in accept:  # most requests: no need to parse
        return False
    for entry in accept.split(","):
        params = {
            part.split("=", 1)[0].strip(): part.split("=", 1)[1].strip()
            for part in entry.split(";")[1:]
            if "=" in part
        }
        if params.get("as") == "Table" and params.get("g", "meta.k8s.io") == "meta.k8s.io":
            return True
    return False


def _wants_yaml(request: Incoming) -> bool:
    accept = request.headers.get("Accept", "")
    first = accept.split(",")[0].split(";")[0].strip().lower()
    return first in (YAML, "application/x-yaml", "text/yaml")


def _warning_header(text: str) -> str:
    """A `Warning` header as kube-apiserver sends it: code 299, no agent, quoted text."""
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{quoted}"'


def _json(body: Obj, *, status: int = 200) -> Reply:
    return Reply(orjson.dumps(body), status=status)


def _encode(request: Incoming, body: Obj, *, status: int = 200) -> Reply:
    if _wants_yaml(request):
        return Reply(
            yaml.safe_dump(body, sort_keys=False).encode(), status=status, content_type=YAML
        )
    return _json(body, status=status)


def _error_reply(error: errors.StatusError) -> Reply:
    return _json(error.status(), status=error.code)


def _from_http_exception(error: werkzeug.exceptions.HTTPException) -> errors.StatusError:
    code = error.code or 500
    if code == 404:
        return _not_found()
    if code == 405:
        return errors.MethodNotAllowed(
            "the server does not allow this method on the requested resource"
        )
    if code == 400:
        return errors.BadRequest(error.description or "bad request")
    return errors.InternalError(error.description or f"HTTP {code}")


# For the package's other route modules (proxy, actions, data partitions), served by Quart.


async def authenticate(api: Api) -> authn.User:
    return await _user(api, _current())


async def raw_body(limit: int) -> bytes:
    return await _raw_body(_current(), limit)


def parse_body(raw: bytes) -> Any:
    return _parse_body(raw, (_current().mimetype or JSON).lower())


def wants_table() -> bool:
    return _wants_table(_current())


def json_response(body: Obj, *, status: int = 200) -> quart.Response:
    return _quart(_json(body, status=status))


def encode(body: Obj) -> quart.Response:
    return _quart(_encode(_current(), body))


flag = _flag
