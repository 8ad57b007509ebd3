"""Kubernetes REST semantics over the revisioned store, independent of HTTP.

Create, get, list, update, patch and delete for every built-in resource, with Arktos's
tenancy: uid, timestamps, `metadata.tenant` and `metadata.hashKey` (also in owner
references), generation, resourceVersion preconditions, status subresources that touch
only status, finalizers and graceful deletion, `generateName`, dry run, selectors and
consistent paging. Writes that name a field manager record it in `metadata.managedFields`;
`apply` is server-side apply (`api.managed`). Every failure is an `api.errors.StatusError`.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import datetime
import ipaddress
import logging
import secrets
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, cast

import orjson
import trio

from arktos_lite import storage
from arktos_lite.api import (
    _customresources as crdmodel,
    _defaults as defaults,
    _errors as errors,
    _hashkey as hashkey,
    _managed as managed,
    _partitions as partitions,
    _patch as patching,
    _resources as resources,
    _schema as schema,
    _selectors as selectors,
    _timestamps as timestamps,
    _validation as validation,
)
from arktos_lite.apiserver import _strategy as strategy

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_GENERATE_NAME_ATTEMPTS = 8
# Store rows a list reads per round while filling a page with selector matches.
_LIST_CHUNK = 500
# How long a read that names a future resourceVersion waits for the store to reach it.
_FUTURE_WAIT = 3.0
_IP_KEY_PREFIX = "/registry/serviceips/"
_PROPAGATION_POLICIES = ("Foreground", "Background", "Orphan")
# The garbage collector's finalizers, which deletes add and remove as they ask.
_ORPHAN = "orphan"
_FOREGROUND = "foregroundDeletion"


def now_rfc3339(clock: Callable[[], datetime.datetime]) -> str:
    return timestamps.rfc3339(clock())


def encode(obj: Obj) -> bytes:
    """The stored form: the object without its resourceVersion (the store assigns it)."""
    meta = obj["metadata"]
    if "resourceVersion" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
    return orjson.dumps(obj)


_SCALARS = (str, int, float, bool, type(None))
_T = TypeVar("_T")


def copy_json(value: _T) -> _T:
    """A deep copy of a JSON-like value (dicts, lists, scalars) that shares nothing with it.

    Several times faster than `copy.deepcopy` on decoded JSON; anything else in it (a date
    from YAML, say) is copied with `copy.deepcopy`.
    """
    return cast(_T, _copy(value))


def _copy(value: Any) -> Any:
    kind = value.__class__
    if kind is dict:
        return {key: _copy(item) for key, item in value.items()}
    if kind is list:
        return [_copy(item) for item in value]
    if kind in _SCALARS:
        return value
    return copy.deepcopy(value)


def decode(kv: storage.KeyValue) -> Obj:
    obj: Obj = orjson.loads(kv.value)
    obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
    return obj


@dataclasses.dataclass(frozen=True, slots=True)
class Stored:
    """One object at one revision, as the JSON a read answers with (resourceVersion set)."""

    key: str
    revision: int
    json: bytes

    @classmethod
    def of(cls, kv: storage.KeyValue) -> Stored:
        return cls(kv.key, kv.mod_revision, orjson.dumps(decode(kv)))

    @classmethod
    def decoded(cls, kv: storage.KeyValue) -> tuple[Stored, Obj]:
        """`of(kv)`, and the object it holds as decoded on the way (the caller's)."""
        obj = decode(kv)
        return cls(kv.key, kv.mod_revision, orjson.dumps(obj)), obj

    @classmethod
    def of_object(cls, key: str, obj: Obj) -> Stored:
        return cls(key, int(obj["metadata"]["resourceVersion"]), orjson.dumps(obj))

    def object(self) -> Obj:
        """A fresh decoded copy, the caller's to change."""
        obj: Obj = orjson.loads(self.json)
        return obj


class Cache(Protocol):
    """Objects in memory that agree with the store: the API server's watch cache."""

    async def current(self) -> int | None:
        """Wait until the cache holds the store's current revision and return it.

        None if the cache cannot serve now (not loaded yet, or reloading); read the store.
        Reads that follow without a checkpoint see exactly that revision.
        """
        ...

    def get(self, key: str) -> Stored | None:
        """The object under a resource's `key`, if any."""
        ...

    def list(self, prefix: str) -> list[Stored]:
        """The objects under a resource's key `prefix`, in key order."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class Where:
    """The tenant (or `all`) and namespace (or None: all) a request addresses."""

    tenant: str
    namespace: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ListOptions:
    label_selector: str = ""
    field_selector: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    limit: int = 0
    continue_token: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class ListResult:
    items: list[Stored]
    resource_version: int
    continue_token: str


@dataclasses.dataclass(frozen=True, slots=True)
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None
    precondition_uid: str | None = None
    precondition_resource_version: str | None = None
    dry_run: bool = False
    # The deprecated `orphanDependents` as given (None when not); it may not come with a
    # `propagation_policy`. An explicit False asks for 202 Accepted while the object waits
    # (kube-apiserver's handlers/delete.go).
    orphan_dependents: bool | None = None

    def check(self) -> None:
        """422 for options kube-apiserver refuses (its ValidateDeleteOptions)."""
        policy = self.propagation_policy
        problems = []
        if self.orphan_dependents is not None and policy is not None:
            problems.append(
                errors.FieldError(
                    errors.CauseType.INVALID,
                    "propagationPolicy",
                    "orphanDependents and deletionPropagation cannot be both set",
                    policy,
                )
            )
        if policy is not None and policy not in _PROPAGATION_POLICIES:
            problems.append(
                errors.FieldError(
                    errors.CauseType.NOT_SUPPORTED,
                    "propagationPolicy",
                    'supported values: "Foreground", "Background", "Orphan", "nil"',
                    policy,
                )
            )
        if problems:
            raise errors.Invalid.for_object("DeleteOptions", "", problems, group="meta.k8s.io")

    def garbage_collection_finalizers(self, finalizers: list[str]) -> list[str]:
        """`finalizers` after this delete: the collector's `orphan` and `foregroundDeletion`
        as the options ask, else as the object has them (kube-apiserver's
        deletionFinalizersForGarbageCollection). Unchanged, they keep their order."""
        if self.orphan_dependents is not None:
            orphan, foreground = self.orphan_dependents, False
        elif self.propagation_policy is not None:
            orphan = self.propagation_policy == "Orphan"
            foreground = self.propagation_policy == "Foreground"
        else:
            orphan, foreground = _ORPHAN in finalizers, _FOREGROUND in finalizers
        wanted = [f for f in finalizers if f not in (_ORPHAN, _FOREGROUND)]
        wanted += [_ORPHAN] * orphan + [_FOREGROUND] * foreground
        return finalizers if set(wanted) == set(finalizers) else wanted


@dataclasses.dataclass(frozen=True, slots=True)
class Matcher:
    """Label and field selectors of one list or watch, already parsed and checked."""

    labels: selectors.LabelSelector
    fields: selectors.FieldSelector
    # Across tenants (`tenants/all/namespaces/x`) no key prefix pins the namespace.
    namespace: str | None = None

    @classmethod
    def parse(
        cls,
        resource: resources.Resource,
        *,
        label: str,
        field: str,
        where: Where | None = None,
    ) -> Matcher:
        fields = selectors.FieldSelector.parse(field)
        for name in fields.fields:
            if not resource.field_label_supported(name):
                raise errors.BadRequest(f"field label not supported: {name}")
        namespace = None
        if where is not None and where.tenant == resources.ALL_TENANTS:
            namespace = where.namespace
        return cls(labels=selectors.LabelSelector.parse(label), fields=fields, namespace=namespace)

    @property
    def everything(self) -> bool:
        return self.labels.empty and self.fields.empty and self.namespace is None

    def matches(self, obj: Obj) -> bool:
        meta = obj["metadata"]
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return self.labels.matches(meta.get("labels") or {}) and self.fields.matches(obj)


def encode_continue(revision: int, key: str) -> str:
    token = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": key})
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def decode_continue(token: str, prefix: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        revision, key = int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise errors.BadRequest(f"invalid continue token {token!r}") from None
    if not key.startswith(prefix) or revision < 1:
        raise errors.BadRequest(f"invalid continue token {token!r}")
    return revision, key


def _check_list_options(options: ListOptions) -> None:
    """The combinations of list parameters kube-apiserver refuses before reading."""
    if options.continue_token and options.resource_version not in ("", "0"):
        raise errors.BadRequest("specifying resource version is not allowed when using continue")
    match = options.resource_version_match
    if not match:
        return
    path = "resourceVersionMatch"
    problems: list[errors.FieldError] = []
    if not options.resource_version:
        problems.append(
            errors.FieldError(
                errors.CauseType.FORBIDDEN,
                path,
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            )
        )
    if options.continue_token:
        problems.append(
            errors.FieldError(
                errors.CauseType.FORBIDDEN,
                path,
                "resourceVersionMatch is forbidden when continue is provided",
            )
        )
    if match not in ("Exact", "NotOlderThan"):
        problems.append(
            errors.FieldError(
                errors.CauseType.NOT_SUPPORTED,
                path,
                'supported values: "Exact", "NotOlderThan", ""',
                match,
            )
        )
    if match == "Exact" and options.resource_version == "0":
        problems.append(
            errors.FieldError(
                errors.CauseType.FORBIDDEN,
                path,
                'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
            )
        )
    if problems:
        raise errors.Invalid.for_object("ListOptions", "", problems, group="meta.k8s.io")


def _page(entries: list[Stored], matcher: Matcher, limit: int, revision: int) -> ListResult:
    """A list from the cache's `entries` at `revision`, paged as the store pages it."""
    if matcher.everything:
        items = entries[:limit] if limit else entries
    else:
        items = []
        for stored in entries:
            if matcher.matches(stored.object()):
                items.append(stored)
                if len(items) == limit:
                    break
    token = ""
    if limit and len(items) == limit and items[-1] is not entries[-1]:
        token = encode_continue(revision, items[-1].key + "\x00")
    return ListResult(items=items, resource_version=revision, continue_token=token)


def _parse_rv(value: str, *, what: str = "resourceVersion") -> int:
    try:
        revision = int(value)
    except ValueError:
        raise errors.BadRequest(f"invalid {what}: {value!r}") from None
    if revision < 0:
        raise errors.BadRequest(f"invalid {what}: {value!r}")
    return revision


class Rest:
    """Kubernetes REST operations for every resource in `registry`, on one store.

    Reads of the present come from `cache` once it holds the store's current revision,
    and from the store otherwise (before the cache is loaded, or while it reloads).

    With a `partition`, the store holds that partition's data only: every operation on
    an object or collection the partition does not hold (`Partition.misdirected`) raises
    `MisdirectedRequest` before anything is read or written. A list across all tenants
    answers with this partition's share.
    """

    def __init__(
        self,
        backend: storage.Backend,
        *,
        registry: resources.Registry,
        cache: Cache | None = None,
        clock: Callable[[], datetime.datetime] | None = None,
        service_cidr: str = "10.96.0.0/16",
        partition: partitions.Partition | None = None,
        cluster: Sequence[tuple[partitions.Partition, str]] = (),
    ) -> None:
        self.backend = backend
        self.registry = registry
        self.cache = cache
        self.partition = partition
        self._cluster = tuple(cluster)
        self._clock = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self._service_network = ipaddress.ip_network(service_cidr)

    def check_partition(
        self, resource: resources.Resource, where: Where, name: str | None = None
    ) -> None:
        """Raise `MisdirectedRequest` unless this server's partition holds the addressed data."""
        if self.partition is None:
            return
        error = self.partition.misdirected(
            resource, tenant=where.tenant, name=name, cluster=self._cluster
        )
        if error is not None:
            raise error

    def now(self) -> datetime.datetime:
        return self._clock()

    @property
    def api_service_ip(self) -> str:
        """The service network's first host: the `kubernetes` Service's cluster IP."""
        return str(self._service_network.network_address + 1)

    # Reads

    async def get(
        self, resource: resources.Resource, where: Where, name: str, *, resource_version: str = ""
    ) -> Obj:
        stored = await self.read(resource, where, name, resource_version=resource_version)
        return stored.object()

    async def read(
        self, resource: resources.Resource, where: Where, name: str, *, resource_version: str = ""
    ) -> Stored:
        """The object as a GET sends it; every resourceVersion is served the present."""
        key = self._key(resource, where, name)
        if resource_version not in ("", "0"):
            await self._wait_for(_parse_rv(resource_version))
        return await self._read(resource, key, name)

    async def list(
        self, resource: resources.Resource, where: Where, options: ListOptions
    ) -> ListResult:
        prefix = self._prefix(resource, where)
        matcher = Matcher.parse(
            resource, label=options.label_selector, field=options.field_selector, where=where
        )
        _check_list_options(options)
        revision: int | None = None
        start: str | None = None
        if options.continue_token:
            revision, start = decode_continue(options.continue_token, prefix)
        elif options.resource_version_match == "Exact":
            revision = _parse_rv(options.resource_version)
        elif options.resource_version not in ("", "0"):
            await self._wait_for(_parse_rv(options.resource_version))
        if options.limit < 0:
            raise errors.BadRequest(f"invalid limit: {options.limit}")
        if revision is None and self.cache is not None:
            # The present (any version, or not older than one the store has reached).
            current = await self.cache.current()
            if current is not None:
                return _page(self.cache.list(prefix), matcher, options.limit, current)
        items: list[Stored] = []
        more = False
        while True:
            # Without selectors a page of the store is a page of the answer; with them,
            # read on in chunks until the page is full or the prefix is exhausted.
            wanted = options.limit - len(items) if options.limit else 0
            chunk = wanted if matcher.everything else _LIST_CHUNK
            try:
                page = await self.backend.list(
                    prefix, revision=revision, limit=chunk, continue_key=start
                )
            except storage.Compacted as error:
                if options.continue_token:
                    raise errors.Expired.continue_token() from None
                raise errors.Gone.too_old(error.requested, error.compact_revision) from None
            except storage.FutureRevision as error:
                raise errors.Timeout(
                    f"Too large resource version: {error.requested}, current: {error.current}"
                ) from None
            revision = page.revision
            for index, kv in enumerate(page.items):
                if matcher.everything:
                    items.append(Stored.of(kv))
                else:
                    obj = decode(kv)
                    if not matcher.matches(obj):
                        continue
                    items.append(Stored.of_object(kv.key, obj))
                if options.limit and len(items) == options.limit:
                    start = kv.key + "\x00"
                    more = index + 1 < len(page.items) or page.continue_key is not None
                    break
            else:
                if page.continue_key is not None:
                    start = page.continue_key
                    continue
            break
        token = encode_continue(revision, start) if more and start is not None else ""
        return ListResult(items=items, resource_version=revision, continue_token=token)

    async def _wait_for(self, revision: int) -> None:
        """Return once the store has reached `revision`, or answer 504 as Kubernetes does."""
        if await self.backend.current_revision() >= revision:
            return
        with trio.move_on_after(_FUTURE_WAIT):
            # The first change at or after `revision` shows that the store got there.
            async with self.backend.watch("", from_revision=revision) as changes:
                async for _change in changes:
                    return
        current = await self.backend.current_revision()
        raise errors.Timeout(f"Too large resource version: {revision}, current: {current}")

    # Writes

    async def create(
        self,
        resource: resources.Resource,
        where: Where,
        body: Obj,
        *,
        dry_run: bool = False,
        manager: str | None = None,
        handed_over: bool = False,
    ) -> Obj:
        """Create an object; `manager` (None: an internal write) comes to own its fields.

        `body` is copied, unless `handed_over` (the caller's freshly decoded request body,
        which it does not use again): then it becomes the created object as it is.
        """
        self._check_type(resource, body)
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.BadRequest("metadata must be an object")
        self._check_placement(resource, where, meta)
        self.check_partition(resource, where, meta.get("name") or None)
        if not meta.get("name") and not meta.get("generateName"):
            raise errors.Invalid.for_object(
                resource.kind,
                "",
                [
                    errors.FieldError(
                        errors.CauseType.REQUIRED,
                        "metadata.name",
                        "name or generateName is required",
                    )
                ],
                group=resource.group,
            )
        await self._check_parents(resource, where)
        obj = body if handed_over else copy_json(body)
        meta = obj["metadata"]
        for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(field, None)
        uid = str(uuid.uuid4())
        meta["uid"] = uid
        meta["creationTimestamp"] = now_rfc3339(self._clock)
        meta["hashKey"] = hashkey.hash_key(uid)
        if resource.scope is not resources.Scope.CLUSTER:
            meta["tenant"] = where.tenant
        if resource.namespaced:
            meta["namespace"] = where.namespace
        if strategy.tracks_generation(resource):
            meta["generation"] = 1
        _fill_owner_hash_keys(meta)
        status = strategy.initial_status(resource, obj)
        if resource.custom is not None and "status" in resource.subresources:
            obj.pop("status", None)  # written through the status subresource only
        if strategy.is_crd(resource):
            await self._check_crd_name(where, obj)
            crdmodel.prepare_crd_create(obj)
        self._default(resource, obj)
        if status is not None:
            obj["status"] = status
        if manager is not None:
            obj = managed.update(
                None,
                obj,
                manager=manager,
                now=meta["creationTimestamp"],
                separate_status="status" in resource.subresources,
            )
            meta = obj["metadata"]
        generate = not meta.get("name")
        for _attempt in range(_GENERATE_NAME_ATTEMPTS if generate else 1):
            if generate:
                meta["name"] = meta["generateName"] + "".join(
                    secrets.choice(_NAME_SUFFIX_ALPHABET) for _ in range(5)
                )
            self._validate(resource, obj, None)
            # Also for a dry run: a generated name may fall outside the partition.
            key = self._key(resource, where, meta["name"])
            if dry_run:
                return obj
            if resource.kind == "Service" and resource.group == "":
                await self._allocate_cluster_ip(obj)
            try:
                kv = await self.backend.create(key, encode(obj))
            except storage.KeyExists:
                await self._release_cluster_ip(obj)
                if generate:
                    continue
                raise errors.AlreadyExists.for_resource(
                    resource.plural, meta["name"], group=resource.group
                ) from None
            obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
            return obj
        raise errors.AlreadyExists(
            f"{resource.qualified} with generateName {meta['generateName']!r} could not be "
            "given a unique name; try again"
        )

    async def update(
        self,
        resource: resources.Resource,
        where: Where,
        name: str,
        body: Obj,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        manager: str | None = None,
    ) -> Obj:
        self._check_type(resource, body)
        meta = body.get("metadata")
        if not isinstance(meta, dict):
            raise errors.BadRequest("metadata must be an object")
        if meta.get("name", name) != name:
            raise errors.BadRequest(
                f"the name of the object ({meta.get('name')}) does not match the name on "
                f"the URL ({name})"
            )
        self._check_placement(resource, where, meta)
        precondition = meta.get("resourceVersion") or None
        expected = _parse_rv(precondition) if precondition else None

        def change(current: Obj) -> Obj:
            new = self._merge_update(resource, current, body, subresource=subresource)
            return self._track(resource, current, new, manager=manager, subresource=subresource)

        return await self._guaranteed_update(
            resource, where, name, change, expected=expected, dry_run=dry_run
        )

    async def patch(
        self,
        resource: resources.Resource,
        where: Where,
        name: str,
        patch: Any,
        *,
        content_type: str,
        subresource: str | None = None,
        dry_run: bool = False,
        manager: str | None = None,
    ) -> Obj:
        expected: int | None = None
        if isinstance(patch, dict):
            patch_meta = patch.get("metadata")
            if isinstance(patch_meta, dict) and patch_meta.get("resourceVersion"):
                expected = _parse_rv(str(patch_meta["resourceVersion"]))

        def change(current: Obj) -> Obj:
            patched = self._apply_patch(resource, _served(resource, current), patch, content_type)
            if not isinstance(patched, dict):
                raise errors.BadRequest("the patch must produce an object")
            self._check_type(resource, patched)
            patched_meta = patched.get("metadata")
            if not isinstance(patched_meta, dict) or patched_meta.get("name") != name:
                raise errors.BadRequest("a patch may not change metadata.name")
            # A resourceVersion the patch puts in place (in any patch form) is a precondition.
            patched_rv = patched_meta.get("resourceVersion")
            if patched_rv and str(patched_rv) != current["metadata"]["resourceVersion"]:
                raise errors.Conflict.for_resource(resource.plural, name, group=resource.group)
            new = self._merge_update(resource, current, patched, subresource=subresource)
            return self._track(resource, current, new, manager=manager, subresource=subresource)

        return await self._guaranteed_update(
            resource, where, name, change, expected=expected, dry_run=dry_run
        )

    async def apply(
        self,
        resource: resources.Resource,
        where: Where,
        name: str,
        applied: Any,
        *,
        manager: str,
        force: bool = False,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """Server-side apply by `manager`; return the object and whether it was created.

        An apply to a missing object creates it. Conflicts with other managers' fields are
        409s unless `force`.
        """
        if not isinstance(applied, dict):
            raise errors.BadRequest("an apply patch must be an object")
        api_version = applied.get("apiVersion")
        if isinstance(api_version, str) and api_version and api_version != resource.api_version:
            raise errors.BadRequest(
                "Incorrect version specified in apply patch. Specified patch version: "
                f"{api_version}, expected: {resource.api_version}"
            )
        kind = applied.get("kind")
        if isinstance(kind, str) and kind and kind != resource.kind:
            raise errors.BadRequest(
                f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})"
            )
        meta = applied.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise errors.BadRequest("metadata must be an object")
        meta = meta or {}
        if meta.get("name", name) != name:
            raise errors.BadRequest(
                f"the name of the object ({meta.get('name')}) does not match the name on "
                f"the URL ({name})"
            )
        self._check_placement(resource, where, meta)
        precondition = meta.get("resourceVersion") or None
        expected = _parse_rv(str(precondition)) if precondition else None

        def merged_into(live: Obj | None) -> Obj:
            return managed.apply(
                None if live is None else _served(resource, live),
                applied,
                manager=manager,
                force=force,
                now=now_rfc3339(self._clock),
                subresource=subresource or "",
                separate_status="status" in resource.subresources,
            )

        def change(current: Obj) -> Obj:
            merged = merged_into(current)
            new = self._merge_update(resource, current, merged, subresource=subresource)
            fields = merged["metadata"].get("managedFields")
            if fields is None:
                new["metadata"].pop("managedFields", None)
            else:
                new["metadata"]["managedFields"] = fields
            return new

        while True:
            try:
                updated = await self._guaranteed_update(
                    resource, where, name, change, expected=expected, dry_run=dry_run
                )
            except errors.NotFound:
                if subresource:
                    raise
            else:
                return updated, False
            body = merged_into(None)
            body["metadata"]["name"] = name
            try:
                return await self.create(resource, where, body, dry_run=dry_run), True
            except errors.AlreadyExists:
                continue  # created meanwhile: apply to it

    def _apply_patch(
        self, resource: resources.Resource, current: Obj, patch: Any, content_type: str
    ) -> Any:
        if content_type == "application/json-patch+json":
            if not isinstance(patch, list):
                raise errors.BadRequest("a JSON patch must be a list of operations")
            return patching.json_patch(current, patch)
        if not isinstance(patch, dict):
            raise errors.BadRequest("a merge patch must be a JSON object")
        if content_type == "application/merge-patch+json":
            return patching.merge_patch(current, patch)
        if content_type == "application/strategic-merge-patch+json" and resource.custom is None:
            definition = schema.definition_for(resource.group, resource.version, resource.kind)
            return patching.strategic_merge_patch(current, patch, definition)
        raise errors.UnsupportedMediaType(f"the media type {content_type!r} is not supported")

    async def _guaranteed_update(
        self,
        resource: resources.Resource,
        where: Where,
        name: str,
        change: Callable[[Obj], Obj],
        *,
        expected: int | None,
        dry_run: bool,
    ) -> Obj:
        """Read, change, compare-and-swap; retry on a lost race unless a version was named."""
        key = self._key(resource, where, name)
        while True:
            stored = await self._read(resource, key, name)
            if expected is not None and expected != stored.revision:
                raise errors.Conflict.for_resource(resource.plural, name, group=resource.group)
            current = stored.object()
            new = change(stored.object())
            self._validate(resource, new, current)
            if new == current:
                return current
            if dry_run:
                return new
            meta = new["metadata"]
            if (
                meta.get("deletionTimestamp")
                and not meta.get("finalizers")
                and not (
                    strategy.uses_spec_finalizers(resource)
                    and (new.get("spec") or {}).get("finalizers")
                )
            ):
                # The last finalizer is gone: the object goes away now.
                try:
                    await self.backend.delete(key, expected_revision=stored.revision)
                except storage.Conflict:
                    if expected is not None:
                        raise errors.Conflict.for_resource(
                            resource.plural, name, group=resource.group
                        ) from None
                    continue
                except storage.NotFound:
                    continue
                await self._after_delete(resource, new)
                return new
            try:
                written = await self.backend.update(
                    key, encode(new), expected_revision=stored.revision
                )
            except (storage.Conflict, storage.NotFound):
                if expected is not None:
                    raise errors.Conflict.for_resource(
                        resource.plural, name, group=resource.group
                    ) from None
                continue
            meta["resourceVersion"] = str(written.mod_revision)
            return new

    def _merge_update(
        self, resource: resources.Resource, current: Obj, body: Obj, *, subresource: str | None
    ) -> Obj:
        """The object an update of `current` with `body` stores (before validation)."""
        old_meta = current["metadata"]
        if subresource == "status":
            new = copy_json(current)
            new["status"] = copy_json(body.get("status", {}))
            if resource.custom is not None:
                self._default(resource, new)
            return new
        if subresource == "finalize":
            new = copy_json(current)
            new.setdefault("spec", {})["finalizers"] = list(
                (body.get("spec") or {}).get("finalizers") or []
            )
            return new
        new = copy_json(body)
        meta = new.setdefault("metadata", {})
        for field in (
            "name",
            "namespace",
            "tenant",
            "uid",
            "creationTimestamp",
            "hashKey",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        _fill_owner_hash_keys(meta)
        strategy.keep_allocated(resource, current, new)
        if "status" in resource.subresources:
            # Status changes go through the status subresource only.
            if "status" in current:
                new["status"] = copy_json(current["status"])
            else:
                new.pop("status", None)
        self._default(resource, new)
        if strategy.is_crd(resource):
            crdmodel.prepare_crd_update(new, current)
        if strategy.generation_changed(resource, current, new):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if meta.get("deletionTimestamp"):
            # A terminating object may lose finalizers but not gain new ones.
            old_finalizers = set(old_meta.get("finalizers") or [])
            added = [f for f in meta.get("finalizers") or [] if f not in old_finalizers]
            if added:
                found = " ".join(f'"{finalizer}"' for finalizer in added)
                raise errors.Invalid.for_object(
                    resource.kind,
                    meta["name"],
                    [
                        errors.FieldError(
                            errors.CauseType.FORBIDDEN,
                            "metadata.finalizers",
                            "no new finalizers can be added if the object is being deleted, "
                            f"found new finalizers [{found}]",
                        )
                    ],
                    group=resource.group,
                )
        return new

    def _track(
        self,
        resource: resources.Resource,
        current: Obj,
        new: Obj,
        *,
        manager: str | None,
        subresource: str | None,
    ) -> Obj:
        """`new` with managedFields that record this write by `manager`.

        Without a manager (the server's own writes) the live entries stay as they are.
        """
        if manager is None:
            fields = current["metadata"].get("managedFields")
            if fields is not None and subresource is None:
                new["metadata"].setdefault("managedFields", fields)
            return new
        return managed.update(
            current,
            new,
            manager=manager,
            now=now_rfc3339(self._clock),
            subresource=subresource or "",
            separate_status="status" in resource.subresources,
        )

    async def delete(
        self,
        resource: resources.Resource,
        where: Where,
        name: str,
        options: DeleteOptions,
    ) -> tuple[Obj, bool]:
        """Delete now, or mark for deletion; return the object and whether it is gone."""
        options.check()
        key = self._key(resource, where, name)
        while True:
            stored = await self._read(resource, key, name)
            current = stored.object()
            meta = current["metadata"]
            if options.precondition_uid and options.precondition_uid != meta.get("uid"):
                raise errors.Conflict.for_resource(
                    resource.plural,
                    name,
                    group=resource.group,
                    why=f"Precondition failed: UID in precondition: {options.precondition_uid}, "
                    f"UID in object meta: {meta.get('uid')}",
                )
            if (
                options.precondition_resource_version
                and options.precondition_resource_version != meta["resourceVersion"]
            ):
                raise errors.Conflict.for_resource(
                    resource.plural,
                    name,
                    group=resource.group,
                    why="Precondition failed: ResourceVersion in precondition: "
                    f"{options.precondition_resource_version}, ResourceVersion in object meta: "
                    f"{meta['resourceVersion']}",
                )
            why = strategy.deletion_forbidden(
                resource, current, tenant_terminating=await self._tenant_terminating(current)
            )
            if why is not None:
                raise errors.Forbidden.for_resource(
                    resource.plural, name, group=resource.group, why=why
                )
            pending = self._pending_deletion(resource, current, options)
            if options.dry_run:
                return (current, True) if pending is None else (pending, False)
            if pending is not None:
                if pending == current:
                    return current, False
                try:
                    written = await self.backend.update(
                        key, encode(pending), expected_revision=stored.revision
                    )
                except (storage.Conflict, storage.NotFound):
                    continue
                pending["metadata"]["resourceVersion"] = str(written.mod_revision)
                return pending, False
            try:
                await self.backend.delete(key, expected_revision=stored.revision)
            except (storage.Conflict, storage.NotFound):
                continue
            await self._after_delete(resource, current)
            return current, True

    def _pending_deletion(
        self, resource: resources.Resource, current: Obj, options: DeleteOptions
    ) -> Obj | None:
        """The object marked for deletion, if something must happen before it goes."""
        meta = current["metadata"]
        finalizers = options.garbage_collection_finalizers(list(meta.get("finalizers") or []))
        grace: int | None = None
        if resource.kind == "Pod" and resource.group == "":
            grace = strategy.graceful_pod_delete(current, options.grace_period_seconds)
        spec_finalizers = strategy.uses_spec_finalizers(resource) and bool(
            (current.get("spec") or {}).get("finalizers")
        )
        if not finalizers and grace is None and not spec_finalizers:
            return None
        pending = copy_json(current)
        pending_meta = pending["metadata"]
        if finalizers:
            pending_meta["finalizers"] = finalizers
        else:
            pending_meta.pop("finalizers", None)
        # Objects that only wait for finalizers have a grace period of 0.
        period = grace or 0
        deadline = self._clock() + datetime.timedelta(seconds=period)
        existing = pending_meta.get("deletionTimestamp")
        # A second delete may shorten the grace period, never extend it.
        if not existing or _rfc3339(existing) > deadline:
            pending_meta["deletionTimestamp"] = deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
            pending_meta["deletionGracePeriodSeconds"] = period
        if spec_finalizers:
            pending = strategy.mark_terminating(pending)
        return pending

    async def delete_collection(
        self,
        resource: resources.Resource,
        where: Where,
        list_options: ListOptions,
        options: DeleteOptions,
    ) -> ListResult:
        """Delete every listed object; the answer lists them as they were listed (as
        kube-apiserver's store does), whether gone now or marked for deletion."""
        listed = await self.list(resource, where, list_options)
        deleted: list[Stored] = []
        for stored in listed.items:
            meta = stored.object()["metadata"]
            target = Where(tenant=meta.get("tenant", where.tenant), namespace=meta.get("namespace"))
            try:
                await self.delete(resource, target, meta["name"], options)
            except errors.NotFound:
                continue
            deleted.append(stored)
        return dataclasses.replace(listed, items=deleted)

    # Pods' binding subresource

    async def bind(self, where: Where, name: str, binding: Obj) -> None:
        pods = self.registry.get("", "v1", "pods")
        assert pods is not None
        target = binding.get("target") or {}
        node = target.get("name")
        if not node:
            raise errors.Invalid.for_object(
                "Binding",
                name,
                [errors.FieldError(errors.CauseType.REQUIRED, "target.name")],
            )

        def change(current: Obj) -> Obj:
            spec = current.setdefault("spec", {})
            if spec.get("nodeName"):
                raise errors.Conflict.for_resource(
                    "pods",
                    name,
                    why=f'pod {name} is already assigned to node "{spec["nodeName"]}"',
                )
            if current["metadata"].get("deletionTimestamp"):
                raise errors.Conflict.for_resource(
                    "pods", name, why=f"pod {name} is being deleted, cannot be assigned to a host"
                )
            spec["nodeName"] = node
            status = current.setdefault("status", {})
            conditions = [
                c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"
            ]
            conditions.append(
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": now_rfc3339(self._clock),
                }
            )
            status["conditions"] = conditions
            return current

        await self._guaranteed_update(pods, where, name, change, expected=None, dry_run=False)

    # Helpers

    def _key(self, resource: resources.Resource, where: Where, name: str) -> str:
        self.check_partition(resource, where, name)
        return resource.key(tenant=where.tenant, namespace=where.namespace or "", name=name)

    def _prefix(self, resource: resources.Resource, where: Where) -> str:
        self.check_partition(resource, where)
        tenant = None if where.tenant == resources.ALL_TENANTS else where.tenant
        return resource.prefix(tenant=tenant, namespace=where.namespace)

    def _check_type(self, resource: resources.Resource, body: Obj) -> None:
        kind = body.get("kind")
        api_version = body.get("apiVersion")
        if kind is not None and kind != resource.kind:
            raise errors.BadRequest(
                f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})"
            )
        if api_version is not None and api_version != resource.api_version:
            raise errors.BadRequest(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({resource.api_version})"
            )
        body["kind"] = resource.kind
        body["apiVersion"] = resource.api_version

    def _check_placement(self, resource: resources.Resource, where: Where, meta: Obj) -> None:
        if resource.namespaced:
            namespace = meta.get("namespace")
            if namespace and namespace != where.namespace:
                raise errors.BadRequest(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
        if resource.scope is not resources.Scope.CLUSTER:
            tenant = meta.get("tenant")
            if tenant and tenant != where.tenant:
                raise errors.BadRequest(
                    "the tenant of the provided object does not match the tenant sent on the "
                    "request"
                )

    async def _check_parents(self, resource: resources.Resource, where: Where) -> None:
        """The tenant (and namespace) must exist and not be terminating."""
        if resource.scope is resources.Scope.CLUSTER:
            return
        parents = [("tenants", where.tenant, f"/registry/tenants/{where.tenant}")]
        if resource.namespaced:
            assert where.namespace is not None
            parents.append(
                (
                    "namespaces",
                    where.namespace,
                    f"/registry/namespaces/{where.tenant}/{where.namespace}",
                )
            )
        for plural, name, key in parents:
            parent = await self._lookup(key)
            if parent is None:
                raise errors.NotFound.for_resource(plural, name)
            if _terminating(parent):
                raise errors.Forbidden.for_resource(
                    resource.plural,
                    "",
                    group=resource.group,
                    why=f"unable to create new content in {plural[:-1]} {name} because it is "
                    "being terminated",
                )

    async def _read(self, resource: resources.Resource, key: str, name: str) -> Stored:
        """The stored object, or 404 in kube-apiserver's words."""
        stored = await self._stored(key)
        if stored is None:
            raise errors.NotFound.for_resource(resource.plural, name, group=resource.group)
        return stored

    async def _stored(self, key: str) -> Stored | None:
        """The object under `key` now."""
        if self.cache is not None and await self.cache.current() is not None:
            return self.cache.get(key)
        try:
            return Stored.of(await self.backend.get(key))
        except storage.NotFound:
            return None

    async def _lookup(self, key: str) -> Obj | None:
        stored = await self._stored(key)
        return None if stored is None else stored.object()

    async def _tenant_terminating(self, obj: Obj) -> bool:
        tenant_name = obj["metadata"].get("tenant")
        if not tenant_name:
            return False
        tenant = await self._lookup(f"/registry/tenants/{tenant_name}")
        return tenant is None or _terminating(tenant)

    def _default(self, resource: resources.Resource, obj: Obj) -> None:
        """Fill in defaults; a custom object is also pruned and put in its storage version."""
        custom = resource.custom
        if custom is None:
            defaults.apply_defaults(resource.group, resource.kind, obj)
            if strategy.is_crd(resource):
                crdmodel.default_crd(obj)
            return
        custom.prepare(obj)
        obj["apiVersion"] = f"{resource.group}/{custom.storage_version}"

    async def _check_crd_name(self, where: Where, crd: Obj) -> None:
        """A tenant may not define a CRD of the name of one the system tenant shares."""
        name = crd["metadata"].get("name")
        if where.tenant == resources.SYSTEM_TENANT or not name:
            return
        shared = await self._lookup(f"{strategy.CRD_PREFIX}{resources.SYSTEM_TENANT}/{name}")
        if shared is not None and crdmodel.forced_shared(shared):
            raise errors.AlreadyExists(
                f'customresourcedefinitions.apiextensions.k8s.io "{name}" already exists: '
                "the system tenant shares it with every tenant",
                details={
                    "name": name,
                    "group": strategy.CRD_GROUP,
                    "kind": "customresourcedefinitions",
                },
            )

    def _validate(self, resource: resources.Resource, obj: Obj, old: Obj | None) -> None:
        if resource.custom is not None:
            problems = validation.validate_metadata(obj, old, scope=resource.scope)
            problems += resource.custom.validate(obj, old)
        else:
            problems = validation.validate(resource.group, resource.kind, obj, old)
            if strategy.is_crd(resource):
                problems += crdmodel.validate_crd(obj, old)
        if problems:
            raise errors.Invalid.for_object(
                resource.kind, obj["metadata"].get("name", ""), problems, group=resource.group
            )

    async def _allocate_cluster_ip(self, service: Obj) -> None:
        """Reserve the service's cluster IP (or a free one) through a store key."""
        spec = service.setdefault("spec", {})
        if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
            return
        requested = spec.get("clusterIP")
        if requested:
            try:
                address = ipaddress.ip_address(requested)
            except ValueError:
                return  # validation has reported it
            if address not in self._service_network:
                raise errors.Invalid.for_object(
                    "Service",
                    service["metadata"]["name"],
                    [
                        errors.FieldError(
                            errors.CauseType.INVALID,
                            "spec.clusterIP",
                            f"the provided IP ({requested}) is not in the valid range. The "
                            f"range of valid IPs is {self._service_network}",
                            requested,
                        )
                    ],
                )
            try:
                await self.backend.create(_IP_KEY_PREFIX + requested, b"")
            except storage.KeyExists:
                raise errors.Invalid.for_object(
                    "Service",
                    service["metadata"]["name"],
                    [
                        errors.FieldError(
                            errors.CauseType.INVALID,
                            "spec.clusterIPs",
                            f"failed to allocate IP {requested}: provided IP is already allocated",
                            [requested],
                        )
                    ],
                ) from None
            spec["clusterIPs"] = [requested]
            return
        network = self._service_network
        size = network.num_addresses - 2
        start = secrets.randbelow(size)
        for offset in range(size):
            # Skip the network address and the first host, kept for the API service.
            address = network.network_address + 2 + (start + offset) % size
            if address == network.broadcast_address:
                continue
            try:
                await self.backend.create(_IP_KEY_PREFIX + str(address), b"")
            except storage.KeyExists:
                continue
            spec["clusterIP"] = str(address)
            spec["clusterIPs"] = [str(address)]
            return
        raise errors.InternalError(f"the service network {network} has no free address left")

    async def _release_cluster_ip(self, service: Obj) -> None:
        address = (service.get("spec") or {}).get("clusterIP")
        if address and address != "None":
            with contextlib.suppress(storage.NotFound):
                await self.backend.delete(_IP_KEY_PREFIX + address)

    async def _after_delete(self, resource: resources.Resource, obj: Obj) -> None:
        if resource.kind == "Service" and resource.group == "":
            await self._release_cluster_ip(obj)


def _served(resource: resources.Resource, obj: Obj) -> Obj:
    """`obj` (as stored) in the version `resource` serves: custom objects convert."""
    if resource.custom is not None:
        return {**obj, "apiVersion": resource.api_version}
    return obj


def _terminating(obj: Obj) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp")) or (
        (obj.get("status") or {}).get("phase") == "Terminating"
    )


def _fill_owner_hash_keys(meta: Obj) -> None:
    """Owner references carry their owner's hashKey, derived from the owner's uid."""
    for ref in meta.get("ownerReferences") or []:
        if isinstance(ref, dict) and isinstance(ref.get("uid"), str):
            ref["hashKey"] = hashkey.hash_key(ref["uid"])


def _rfc3339(value: str) -> datetime.datetime:
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
