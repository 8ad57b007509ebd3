"""OpenAPI v3 documents of the served resources, as kube-apiserver publishes them for kubectl.

`GET /openapi/v3` lists one document per group version (`api/v1`, `apis/apps/v1`) with
a `serverRelativeURL` carrying the document's hash; `GET /openapi/v3/<group version>` is
an OpenAPI 3.0 document: `paths` with an operation for every verb of every resource of
the registry (each marked with `x-kubernetes-group-version-kind` and
`x-kubernetes-action`; writes take `dryRun`, `fieldManager` and `fieldValidation`, which
tells kubectl to leave field validation to the server), in Kubernetes' short URL form and
Arktos's tenant-prefixed form; and `components.schemas` with every definition those
operations reach, converted from `_schema.definitions()` to OpenAPI's dialect as
kube-openapi writes it (`$ref` to `#/components/schemas/...`, wrapped in `allOf` when it
has siblings; `type` without `"null"`; int-or-string and quantities as strings).

Custom resources (a tenant's registry, with its CustomResourceDefinitions) get documents of
their own group versions, as apiextensions-apiserver publishes them: the kind's schema is
its version's structural schema with `apiVersion`, `kind` and `metadata` (ObjectMeta)
added, named after the reversed group (`com.example.stable.v1.CronTab`), with its list
kind; the scale subresource takes and returns `autoscaling/v1` Scale.

kubectl reads these for `create`/`apply` (field validation, strategic merge patches) and
`explain`. Nothing is built at import or startup: the built-in documents are built once,
on first request, then served from memory and shared by every registry; a registry's
custom documents are built on its first request and kept while that registry object
lives (`Documents.for_registry`). A document's hash (upper-case hex SHA-512 of its bytes,
as kube-apiserver's) is its ETag; at the hashed URL it may be cached forever, and a stale
hash is redirected to the current one.

There is no `/openapi/v2`: kubectl 1.32 falls back to it only when v3 is missing, and
otherwise asks for it only for `explain --output=plaintext-openapiv2`, in protobuf.
"""

from __future__ import annotations

import dataclasses
import datetime
import email.utils
import hashlib
import weakref
from collections.abc import Mapping
from typing import Any, Final

import orjson

from arktos_lite.api import (
    _errors as errors,
    _partitions as partitions,
    _resources as resources,
    _schema as schema,
)

Obj = dict[str, Any]

_DEFS_REF: Final = "#/$defs/"
_COMPONENTS_REF: Final = "#/components/schemas/"
_META: Final = "io.k8s.apimachinery.pkg.apis.meta.v1."
_STATUS: Final = _META + "Status"
_DELETE_OPTIONS: Final = _META + "DeleteOptions"
_WATCH_EVENT: Final = _META + "WatchEvent"
_PATCH: Final = _META + "Patch"
# kube-apiserver documents a delete's answer as the object only where its store says it
# returns it; namespaces (and Arktos's tenants), served through a wrapper of the store,
# are documented with a Status although they answer with the object.
_DELETE_RETURNS_OBJECT: Final = frozenset({("", "Pod"), ("", "Service"), ("", "ServiceAccount")})

# Free-form schemas kube-openapi writes as strings (their JSON schemas are `oneOf`).
_STRING_TYPES: Final[Mapping[str, Obj]] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "description": "IntOrString is a type that can hold an int32 or a string.",
        "type": "string",
        "format": "int-or-string",
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "description": "Quantity is a fixed-point representation of a number, such as "
        '"100m", "1Gi" or "2".',
        "type": "string",
    },
}

_JSON: Final = "application/json"
_YAML: Final = "application/yaml"
_PATCH_TYPES: Final = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
_STRATEGIC: Final = "application/strategic-merge-patch+json"

_SUBRESOURCE_VERBS: Final[Mapping[str, tuple[str, ...]]] = {
    "status": ("get", "update", "patch"),
    "scale": ("get", "update", "patch"),
    "finalize": ("update",),
    "binding": ("create",),
    "action": ("create",),
}
_SUBRESOURCE_KINDS: Final[Mapping[str, tuple[str, str, str]]] = {
    "scale": ("autoscaling", "v1", "Scale"),
    "binding": ("", "v1", "Binding"),
    "action": ("", "v1", "CustomAction"),
}


# --- Parameters ----------------------------------------------------------------------------


def _query(name: str, kind: str, description: str) -> Obj:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": kind, "uniqueItems": True},
    }


def _path_parameter(name: str, description: str) -> Obj:
    return {
        "name": name,
        "in": "path",
        "description": description,
        "required": True,
        "schema": {"type": "string", "uniqueItems": True},
    }


_PATH_PARAMETERS: Final[Mapping[str, Obj]] = {
    "tenant": _path_parameter("tenant", "the tenant (Arktos) that owns the object"),
    "namespace": _path_parameter(
        "namespace", "object name and auth scope, such as for teams and projects"
    ),
    "name": _path_parameter("name", "name of the object"),
}
_PRETTY: Final = _query("pretty", "string", "If 'true', then the output is pretty printed.")

_PARAMETERS: Final[Mapping[str, Obj]] = {
    parameter["name"]: parameter
    for parameter in (
        _query(
            "allowWatchBookmarks",
            "boolean",
            'allowWatchBookmarks requests watch events with type "BOOKMARK".',
        ),
        _query("continue", "string", "The continue option, from a previous list call."),
        _query(
            "dryRun",
            "string",
            "When present, indicates that modifications should not be persisted. "
            "Valid values are: - All: all dry run stages will be processed",
        ),
        _query(
            "fieldManager",
            "string",
            "fieldManager is a name associated with the actor or entity that is making "
            "these changes.",
        ),
        _query(
            "fieldSelector",
            "string",
            "A selector to restrict the list of returned objects by their fields.",
        ),
        _query(
            "fieldValidation",
            "string",
            "fieldValidation instructs the server on how to handle objects in the request "
            "containing unknown or duplicate fields. Valid values are: - Ignore: silently "
            "drops unknown fields - Warn: sends a warning for each unknown field (the "
            "default) - Strict: fails the request on unknown fields.",
        ),
        _query(
            "force",
            "boolean",
            'Force is going to "force" Apply requests. It must be unset for non-apply '
            "patch requests.",
        ),
        _query(
            "gracePeriodSeconds",
            "integer",
            "The duration in seconds before the object should be deleted.",
        ),
        _query(
            "labelSelector",
            "string",
            "A selector to restrict the list of returned objects by their labels.",
        ),
        _query("limit", "integer", "limit is the maximum number of responses to return."),
        _query(
            "orphanDependents",
            "boolean",
            "Deprecated: please use the PropagationPolicy. Should the dependent objects be "
            "orphaned.",
        ),
        _query(
            "propagationPolicy",
            "string",
            "Whether and how garbage collection will be performed: 'Orphan', 'Background' "
            "or 'Foreground'.",
        ),
        _query(
            "resourceVersion",
            "string",
            "resourceVersion sets a constraint on what resource versions a request may be "
            "served from.",
        ),
        _query(
            "resourceVersionMatch",
            "string",
            "resourceVersionMatch determines how resourceVersion is applied to list calls.",
        ),
        _query(
            "sendInitialEvents",
            "boolean",
            "`sendInitialEvents=true` may be set together with `watch=true`.",
        ),
        _query(
            "timeoutSeconds",
            "integer",
            "Timeout for the list/watch call, regardless of any activity or inactivity.",
        ),
        _query(
            "watch",
            "boolean",
            "Watch for changes to the described resources and return them as a stream of "
            "add, update, and remove notifications.",
        ),
    )
}

_LIST_PARAMETERS: Final = (
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
)
_WRITE_PARAMETERS: Final = ("dryRun", "fieldManager", "fieldValidation")
_DELETE_PARAMETERS: Final = (
    "dryRun",
    "gracePeriodSeconds",
    "orphanDependents",
    "propagationPolicy",
)

# --- Operations ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Verb:
    """One kind of operation: its HTTP method, x-kubernetes-action and wording."""

    method: str
    action: str
    id_prefix: str
    description: str
    parameters: tuple[str, ...] = ()
    body: str | None = None
    """`object`, `patch` or `delete`: what the request body holds."""
    responses: tuple[str, ...] = ("200",)
    returns: str = "object"
    """`object`, `list`, `status` or `event`."""


_LIST = _Verb(
    method="get",
    action="list",
    id_prefix="list",
    description="list or watch objects of kind {kind}",
    parameters=_LIST_PARAMETERS,
    returns="list",
)
_CREATE = _Verb(
    method="post",
    action="post",
    id_prefix="create",
    description="create {a} {kind}",
    parameters=_WRITE_PARAMETERS,
    body="object",
    responses=("200", "201", "202"),
)
_DELETE_COLLECTION = _Verb(
    method="delete",
    action="deletecollection",
    id_prefix="deleteCollection",
    description="delete collection of {kind}",
    parameters=tuple(sorted({*_LIST_PARAMETERS, *_DELETE_PARAMETERS} - {"watch"})),
    body="delete",
    returns="status",
)
_READ = _Verb(method="get", action="get", id_prefix="read", description="read the specified {kind}")
_REPLACE = _Verb(
    method="put",
    action="put",
    id_prefix="replace",
    description="replace the specified {kind}",
    parameters=_WRITE_PARAMETERS,
    body="object",
    responses=("200", "201"),
)
_PATCH_VERB = _Verb(
    method="patch",
    action="patch",
    id_prefix="patch",
    description="partially update the specified {kind}",
    parameters=(*_WRITE_PARAMETERS, "force"),
    body="patch",
    responses=("200", "201"),
)
_DELETE = _Verb(
    method="delete",
    action="delete",
    id_prefix="delete",
    description="delete {a} {kind}",
    parameters=_DELETE_PARAMETERS,
    body="delete",
    responses=("200", "202"),
)
_WATCH_LIST = _Verb(
    method="get",
    action="watchlist",
    id_prefix="watch",
    description="watch individual changes to a list of {kind}. deprecated: use the 'watch' "
    "parameter with a list operation instead.",
    parameters=_LIST_PARAMETERS,
    returns="event",
)
_WATCH = _Verb(
    method="get",
    action="watch",
    id_prefix="watch",
    description="watch changes to an object of kind {kind}. deprecated: use the 'watch' "
    "parameter with a list operation instead, filtered to a single item with the "
    "'fieldSelector' parameter.",
    parameters=_LIST_PARAMETERS,
    returns="event",
)
# Arktos: a CustomAction posted to a pod's `action` makes an Action; the answer is a Status.
_CREATE_ACTION = dataclasses.replace(_CREATE, returns="status")
_SUBRESOURCE_CREATE: Final = {"action": _CREATE_ACTION}
_COLLECTION_VERBS: Final = {
    "list": _LIST,
    "create": _CREATE,
    "deletecollection": _DELETE_COLLECTION,
}
_ITEM_VERBS: Final = {"get": _READ, "update": _REPLACE, "patch": _PATCH_VERB, "delete": _DELETE}


@dataclasses.dataclass(frozen=True, slots=True)
class _Scope:
    """Where a resource's URLs live: a path prefix and its parameters."""

    prefix: str
    parameters: tuple[str, ...]
    tenanted: bool


def _scopes(resource: resources.Resource) -> tuple[_Scope, ...]:
    """Kubernetes' short form (the caller's tenant) first, then Arktos's tenant-prefixed form."""
    if resource.scope is resources.Scope.CLUSTER:
        return (_Scope("", (), tenanted=False),)
    if resource.scope is resources.Scope.TENANT:
        return (
            _Scope("", (), tenanted=False),
            _Scope("/tenants/{tenant}", ("tenant",), tenanted=True),
        )
    return (
        _Scope("/namespaces/{namespace}", ("namespace",), tenanted=False),
        _Scope("/tenants/{tenant}/namespaces/{namespace}", ("tenant", "namespace"), tenanted=True),
    )


def _root_path(group: str, version: str) -> str:
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def _operation_word(text: str, *, capitalize: bool) -> str:
    """apiserver's `ToValidOperationID`: letters, `_` and digits; a dropped character
    capitalizes the next letter (`cert-manager.io` -> `CertManagerIo`)."""
    word: list[str] = []
    upper = capitalize
    for index, char in enumerate(text):
        if char.isalpha() or char == "_" or (index and char.isdigit()):
            word.append(char.upper() if upper else char)
            upper = False
        else:
            upper = True
    return "".join(word)


def _group_name(group: str) -> str:
    return group.removesuffix(".k8s.io") if group else "core"


def _group_word(group: str, version: str) -> str:
    """`CoreV1`, `RbacAuthorizationV1`, `StableExampleComV1`: operation id infix."""
    name = _group_name(group)
    return _operation_word(name, capitalize=True) + _operation_word(version, capitalize=True)


def _tag(group: str, version: str) -> str:
    """`core_v1`, `rbacAuthorization_v1`, `stableExampleCom_v1`."""
    name = _group_name(group)
    return (
        _operation_word(name, capitalize=False) + "_" + _operation_word(version, capitalize=False)
    )


def _article(kind: str) -> str:
    return "an" if kind[:1] in "AEIOU" else "a"


_Operation = tuple[_Verb, Obj, str]
"""A verb, the group/version/kind it takes or returns, and the rest of its operation id."""


def _subresource(resource: resources.Resource, sub: str, word: str) -> list[_Operation]:
    group, version, kind = _SUBRESOURCE_KINDS.get(
        sub, (resource.group, resource.version, resource.kind)
    )
    gvk = {"group": group, "version": version, "kind": kind}
    verbs = {**_ITEM_VERBS, "create": _SUBRESOURCE_CREATE.get(sub, _CREATE)}
    sub_word = word.replace(resource.kind, resource.kind + sub.capitalize(), 1)
    return [(verbs[v], gvk, sub_word) for v in _SUBRESOURCE_VERBS.get(sub, ("get",))]


_CustomNames = Mapping[tuple[str, str, str], tuple[str, str]]
"""Group, version and kind of a custom resource -> its definition's and its list's names."""


class _PathBuilder:
    """The `paths` of one group version."""

    def __init__(self, group: str, version: str, *, custom: _CustomNames | None = None) -> None:
        self.group = group
        self.version = version
        self.root = _root_path(group, version)
        self.paths: dict[str, Obj] = {}
        self.custom: _CustomNames = custom or {}

    def add_resource(self, resource: resources.Resource) -> None:
        verbs = set(resource.verbs)
        gvk = {"group": resource.group, "version": resource.version, "kind": resource.kind}
        plural = resource.plural
        for scope in _scopes(resource):
            suffix = "WithTenant" if scope.tenanted else ""
            word = ("Namespaced" if resource.namespaced else "") + resource.kind + suffix
            collection = f"{scope.prefix}/{plural}"
            item = f"{collection}/{{name}}"
            item_parameters = (*scope.parameters, "name")
            self._add(
                collection,
                scope.parameters,
                [(v, gvk, word) for k, v in _COLLECTION_VERBS.items() if k in verbs],
            )
            self._add(
                item,
                item_parameters,
                [(v, gvk, word) for k, v in _ITEM_VERBS.items() if k in verbs],
            )
            if "watch" in verbs:
                list_word = word.removesuffix(suffix) + "List" + suffix
                self._add(f"/watch{collection}", scope.parameters, [(_WATCH_LIST, gvk, list_word)])
                self._add(f"/watch{item}", item_parameters, [(_WATCH, gvk, word)])
            for sub in sorted(resource.subresources):
                self._add(f"{item}/{sub}", item_parameters, _subresource(resource, sub, word))
            if resource.namespaced and "list" in verbs:
                # Every namespace (of the caller's tenant, or of the named one).
                across = scope.prefix.removesuffix("/namespaces/{namespace}") + f"/{plural}"
                parameters = scope.parameters[:-1]
                all_word = f"{resource.kind}ForAllNamespaces{suffix}"
                self._add(across, parameters, [(_LIST, gvk, all_word)])
                if "watch" in verbs:
                    watch_word = f"{resource.kind}ListForAllNamespaces{suffix}"
                    self._add(f"/watch{across}", parameters, [(_WATCH_LIST, gvk, watch_word)])

    def _add(self, path: str, parameters: tuple[str, ...], operations: list[_Operation]) -> None:
        if not operations:
            return
        entry = self.paths.setdefault(self.root + path, {})
        for verb, gvk, word in operations:
            entry[verb.method] = self._operation(verb, gvk, word)
        entry["parameters"] = [*(_PATH_PARAMETERS[p] for p in parameters), _PRETTY]

    def _operation(self, verb: _Verb, gvk: Obj, word: str) -> Obj:
        kind = gvk["kind"]
        returned = _returned(verb, gvk, self.custom)
        media = (
            (f"{_JSON};stream=watch", _JSON, _YAML) if verb.returns == "event" else (_JSON, _YAML)
        )
        content = {m: {"schema": _ref(returned)} for m in media}
        responses: Obj = {
            code: {"description": _STATUS_WORDS[code], "content": content}
            for code in verb.responses
        }
        responses["401"] = {"description": "Unauthorized"}
        operation: Obj = {
            "tags": [_tag(self.group, self.version)],
            "description": verb.description.format(kind=kind, a=_article(kind)),
            "operationId": verb.id_prefix + _group_word(self.group, self.version) + word,
        }
        if verb.parameters:
            operation["parameters"] = [_PARAMETERS[p] for p in verb.parameters]
        body = _request_body(verb, gvk, self.custom)
        if body is not None:
            operation["requestBody"] = body
        operation["responses"] = responses
        operation["x-kubernetes-action"] = verb.action
        operation["x-kubernetes-group-version-kind"] = dict(gvk)
        return operation


_STATUS_WORDS: Final = {"200": "OK", "201": "Created", "202": "Accepted"}


def _definition(gvk: Mapping[str, str], custom: _CustomNames, *, of_list: bool = False) -> str:
    key = (gvk["group"], gvk["version"], gvk["kind"])
    if key in custom:
        return custom[key][1 if of_list else 0]
    suffix = "List" if of_list else ""
    name = schema.definition_for(gvk["group"], gvk["version"], gvk["kind"] + suffix)
    if name is None:
        raise LookupError(f"no schema for {gvk['kind']}{suffix} in {gvk['group']}/{gvk['version']}")
    return name


def _returned(verb: _Verb, gvk: Mapping[str, str], custom: _CustomNames) -> str:
    if verb.returns == "list":
        return _definition(gvk, custom, of_list=True)
    if verb.returns == "status":
        return _STATUS
    if verb.returns == "event":
        return _WATCH_EVENT
    if verb.action == "delete" and (gvk["group"], gvk["kind"]) not in _DELETE_RETURNS_OBJECT:
        return _STATUS
    return _definition(gvk, custom)


def _request_body(verb: _Verb, gvk: Mapping[str, str], custom: _CustomNames) -> Obj | None:
    if verb.body == "object":
        body = _ref(_definition(gvk, custom))
        return {"content": {"*/*": {"schema": body}}, "required": True}
    if verb.body == "patch":
        # Custom resources take no strategic merge patch; kubectl reads this to choose.
        is_custom = (gvk["group"], gvk["version"], gvk["kind"]) in custom
        media_types = [m for m in _PATCH_TYPES if not (is_custom and m == _STRATEGIC)]
        return {
            "content": {media: {"schema": _ref(_PATCH)} for media in media_types},
            "required": True,
        }
    if verb.body == "delete":
        return {"content": {"*/*": {"schema": _ref(_DELETE_OPTIONS)}}}
    return None


def _ref(name: str) -> Obj:
    return {"$ref": _COMPONENTS_REF + name}


# --- Schemas -------------------------------------------------------------------------------

# Keywords whose value is a schema, a list of schemas, or a map of names to schemas.
_SCHEMA_KEYWORDS: Final = ("items", "additionalProperties", "not")
_SCHEMA_LIST_KEYWORDS: Final = ("allOf", "anyOf", "oneOf")
_SCHEMA_MAP_KEYWORDS: Final = ("properties", "patternProperties", "definitions")


def convert_schema(node: Mapping[str, Any]) -> Obj:
    """One JSON schema of `_schema` in the OpenAPI 3.0 dialect kube-openapi writes."""
    converted: Obj = {}
    for key, value in node.items():
        if key == "$ref":
            continue
        if key == "type" and isinstance(value, list):
            kinds = [kind for kind in value if kind != "null"]
            if len(kinds) == 1:
                converted["type"] = kinds[0]
            elif kinds:
                converted["type"] = kinds
        elif key == "required" and not value:
            continue
        elif key in _SCHEMA_KEYWORDS and isinstance(value, Mapping):
            converted[key] = convert_schema(value)
        elif key in _SCHEMA_LIST_KEYWORDS and isinstance(value, list):
            converted[key] = [convert_schema(v) if isinstance(v, Mapping) else v for v in value]
        elif key in _SCHEMA_MAP_KEYWORDS and isinstance(value, Mapping):
            converted[key] = {
                name: convert_schema(v) if isinstance(v, Mapping) else v
                for name, v in value.items()
            }
        else:
            converted[key] = value
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = _ref(ref.removeprefix(_DEFS_REF))
        # OpenAPI 3.0 ignores a $ref's siblings; kube-openapi wraps the $ref in allOf.
        return {"allOf": [target], **converted} if converted else target
    return converted


def _convert_definition(name: str, node: Mapping[str, Any]) -> Obj:
    if name in _STRING_TYPES:
        return dict(_STRING_TYPES[name])
    converted = convert_schema(node)
    properties = converted.get("properties")
    if "x-kubernetes-group-version-kind" in converted and isinstance(properties, dict):
        # The JSON schemas pin apiVersion and kind to one value; the kinds' own don't.
        for field in ("apiVersion", "kind"):
            if isinstance(properties.get(field), dict):
                properties[field] = {k: v for k, v in properties[field].items() if k != "enum"}
    return converted


def _references(value: Any, found: set[str]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str) and item.startswith(_COMPONENTS_REF):
                found.add(item.removeprefix(_COMPONENTS_REF))
            else:
                _references(item, found)
    elif isinstance(value, list):
        for item in value:
            _references(item, found)


# --- Custom kinds' schemas, as apiextensions-apiserver publishes them ------------------------

_OBJECT_META: Final = _META + "ObjectMeta"
_LIST_META: Final = _META + "ListMeta"
_API_VERSION_WORDS: Final = (
    "APIVersion defines the versioned schema of this representation of an object. Servers "
    "should convert recognized schemas to the latest internal value, and may reject "
    "unrecognized values. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
)
_KIND_WORDS: Final = (
    "Kind is a string value representing the REST resource this object represents. Servers "
    "may infer this from the endpoint the client submits requests to. Cannot be updated. In "
    "CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
    "#types-kinds"
)
_EMBEDDED_API_VERSION_WORDS: Final = "apiVersion" + _API_VERSION_WORDS.removeprefix("APIVersion")
_EMBEDDED_KIND_WORDS: Final = (
    "kind is a string value representing the type of this object. Servers may infer this "
    "from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More "
    "info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
    "#types-kinds"
)
_OBJECT_META_WORDS: Final = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
_LIST_META_WORDS: Final = (
    "Standard list metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
    "#types-kinds"
)


def custom_definition_name(group: str, version: str, kind: str) -> str:
    """`com.example.stable.v1.CronTab`: the group reversed, as kube-apiserver names it."""
    return ".".join([*reversed(group.split(".")), version, kind])


def _described_ref(name: str, description: str) -> Obj:
    return {"allOf": [_ref(name)], "description": description}


def _type_meta(api_version_words: str, kind_words: str) -> Obj:
    return {
        "apiVersion": {"description": api_version_words, "type": "string"},
        "kind": {"description": kind_words, "type": "string"},
    }


def _add_embedded(node: Obj) -> None:
    """`x-kubernetes-embedded-resource` objects get apiVersion, kind and metadata."""
    children = node.get("properties")
    if isinstance(children, dict):
        for child in children.values():
            if isinstance(child, dict):
                _add_embedded(child)
    for key in ("items", "additionalProperties"):
        child = node.get(key)
        if isinstance(child, dict):
            _add_embedded(child)
    if node.get("x-kubernetes-embedded-resource") is True:
        properties = node.setdefault("properties", {})
        properties.update(_type_meta(_EMBEDDED_API_VERSION_WORDS, _EMBEDDED_KIND_WORDS))
        properties["metadata"] = _described_ref(_OBJECT_META, _OBJECT_META_WORDS)
        required = list(node.get("required", ()))
        node["required"] = required + [f for f in ("kind", "apiVersion") if f not in required]


def custom_schema(resource: resources.Resource) -> Obj:
    """A custom kind's component schema: its version's structural schema with apiVersion,
    kind and metadata (a reference to ObjectMeta) as Kubernetes adds them."""
    if resource.custom is None:
        raise ValueError(f"{resource.qualified} is not a custom resource")
    converted = convert_schema(resource.custom.schema.schema)
    converted.setdefault("type", "object")
    _add_embedded(converted)
    properties = converted.get("properties")
    converted["properties"] = {
        **_type_meta(_API_VERSION_WORDS, _KIND_WORDS),
        "metadata": _described_ref(_OBJECT_META, _OBJECT_META_WORDS),
        **{
            name: value
            for name, value in (properties if isinstance(properties, dict) else {}).items()
            if name not in ("apiVersion", "kind", "metadata")
        },
    }
    converted["x-kubernetes-group-version-kind"] = [
        {"group": resource.group, "kind": resource.kind, "version": resource.version}
    ]
    return converted


def custom_list_schema(resource: resources.Resource, *, item: str) -> Obj:
    """The list kind of a custom kind whose schema is called `item`."""
    return {
        "description": f"{resource.list_kind} is a list of {resource.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            **_type_meta(_API_VERSION_WORDS, _KIND_WORDS),
            "items": {
                "description": f"List of {resource.plural}. More info: "
                "https://git.k8s.io/community/contributors/devel/sig-architecture/"
                "api-conventions.md",
                "type": "array",
                "items": _ref(item),
            },
            "metadata": _described_ref(_LIST_META, _LIST_META_WORDS),
        },
        "x-kubernetes-group-version-kind": [
            {"group": resource.group, "kind": resource.list_kind, "version": resource.version}
        ],
    }


def _with_references(converted: Obj) -> tuple[Obj, frozenset[str]]:
    refs: set[str] = set()
    _references(converted, refs)
    return converted, frozenset(refs)


class _Components:
    """Converted definitions, each with the names it refers to; converted on first use.

    `extra` holds definitions already converted (custom kinds') and looked up first;
    `base` is another instance whose conversions are shared.
    """

    def __init__(
        self, *, base: _Components | None = None, extra: Mapping[str, Obj] | None = None
    ) -> None:
        self._definitions = schema.definitions()
        self._base = base
        self._converted: dict[str, tuple[Obj, frozenset[str]]] = {
            name: _with_references(value) for name, value in (extra or {}).items()
        }

    def _get(self, name: str) -> tuple[Obj, frozenset[str]]:
        entry = self._converted.get(name)
        if entry is not None:
            return entry
        if self._base is not None:
            return self._base._get(name)
        entry = self._converted[name] = _with_references(
            _convert_definition(name, self._definitions[name])
        )
        return entry

    def closure(self, roots: set[str]) -> dict[str, Obj]:
        """Every definition reachable from `roots`, by name, sorted."""
        seen: dict[str, Obj] = {}
        pending = sorted(roots)
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            converted, refs = self._get(name)
            seen[name] = converted
            pending.extend(ref for ref in refs if ref not in seen)
        return dict(sorted(seen.items()))


# --- Documents -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Document:
    """A serialized document and its hash (its ETag)."""

    body: bytes
    hash: str

    @classmethod
    def of(cls, value: Obj) -> Document:
        body = orjson.dumps(value)
        return cls(body=body, hash=hashlib.sha512(body).hexdigest().upper())


def group_version_path(group: str, version: str) -> str:
    """`api/v1`, `apis/apps/v1`: a group version's name in `/openapi/v3`."""
    return _root_path(group, version).lstrip("/")


def build_document(registry: resources.Registry, group: str, version: str) -> Obj:
    """The OpenAPI v3 document of one group version of `registry`, custom kinds included."""
    return _build_with_custom(registry, group, version, _Components())


def _build_with_custom(
    registry: resources.Registry, group: str, version: str, components: _Components
) -> Obj:
    names: dict[tuple[str, str, str], tuple[str, str]] = {}
    definitions: dict[str, Obj] = {}
    for resource in registry.in_group_version(group, version):
        if resource.custom is None:
            continue
        name = custom_definition_name(resource.group, resource.version, resource.kind)
        list_name = custom_definition_name(resource.group, resource.version, resource.list_kind)
        names[resource.group, resource.version, resource.kind] = (name, list_name)
        definitions[name] = custom_schema(resource)
        definitions[list_name] = custom_list_schema(resource, item=name)
    if definitions:
        components = _Components(base=components, extra=definitions)
    return _build(registry, group, version, components, custom=names)


def _build(
    registry: resources.Registry,
    group: str,
    version: str,
    components: _Components,
    *,
    custom: _CustomNames | None = None,
) -> Obj:
    paths = _PathBuilder(group, version, custom=custom)
    served = partitions.DATA_PARTITION_CONFIGS
    extra = [served] if (served.group, served.version) == (group, version) else []
    for resource in [*registry.in_group_version(group, version), *extra]:
        paths.add_resource(resource)
    roots: set[str] = set()
    _references(paths.paths, roots)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": schema.KUBERNETES_VERSION},
        "paths": dict(sorted(paths.paths.items())),
        "components": {
            "schemas": components.closure(roots),
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "description": "Bearer Token authentication",
                    "name": "authorization",
                    "in": "header",
                }
            },
        },
        "security": [{"BearerToken": []}],
    }


class View:
    """The OpenAPI v3 index and group-version documents one registry serves."""

    def __init__(self, index: Document, documents: Mapping[str, Document]) -> None:
        self._index = index
        self._documents = dict(documents)

    @classmethod
    def of(cls, documents: Mapping[str, Document]) -> View:
        index = {
            "paths": {
                path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={document.hash}"}
                for path, document in documents.items()
            }
        }
        return cls(Document.of(index), documents)

    def index(self) -> Document:
        """`/openapi/v3`: where each group version's document is."""
        return self._index

    def group_version(self, path: str) -> Document | None:
        """`/openapi/v3/<path>`, or None if no group version is called `path`."""
        return self._documents.get(path.strip("/"))


class Documents:
    """OpenAPI v3 documents: of the built-in registry, and of registries with custom kinds.

    The built-in registry's documents are built on first use, once. `for_registry` gives
    another registry's documents (a tenant's, with its CustomResourceDefinitions): every
    group version whose resources are the same as the built-in registry's reuses that
    document; the others (custom group versions) are built for it, and kept for as long as
    that registry object lives.
    """

    def __init__(self, registry: resources.Registry) -> None:
        self._registry = registry
        self._components = _Components()
        self._built: View | None = None
        self._served: dict[str, tuple[resources.Resource, ...]] = {}
        self._views: weakref.WeakKeyDictionary[resources.Registry, View] = (
            weakref.WeakKeyDictionary()
        )

    def _base(self) -> View:
        # Building takes some tens of milliseconds, once; not worth a thread.
        if self._built is None:
            documents: dict[str, Document] = {}
            for group, versions in self._registry.groups().items():
                for version in versions:
                    path = group_version_path(group, version)
                    value = _build_with_custom(self._registry, group, version, self._components)
                    documents[path] = Document.of(value)
                    self._served[path] = tuple(self._registry.in_group_version(group, version))
            self._built = View.of(documents)
        return self._built

    @property
    def built(self) -> bool:
        return self._built is not None

    def index(self) -> Document:
        """`/openapi/v3` of the built-in registry."""
        return self._base().index()

    def group_version(self, path: str) -> Document | None:
        """`/openapi/v3/<path>` of the built-in registry, or None if there is none."""
        return self._base().group_version(path)

    def for_registry(self, registry: resources.Registry) -> View:
        """The documents `registry` serves; the same View while `registry` is in use."""
        base = self._base()
        if registry is self._registry:
            return base
        view = self._views.get(registry)
        if view is None:
            view = self._views[registry] = self._view(registry, base)
        return view

    def _view(self, registry: resources.Registry, base: View) -> View:
        documents: dict[str, Document] = {}
        reused = 0
        for group, versions in registry.groups().items():
            for version in versions:
                path = group_version_path(group, version)
                listed = tuple(registry.in_group_version(group, version))
                known = base.group_version(path)
                if known is not None and self._served.get(path) == listed:
                    documents[path] = known
                    reused += 1
                    continue
                value = _build_with_custom(registry, group, version, self._components)
                documents[path] = Document.of(value)
        if reused == len(documents) == len(self._served):
            return base
        return View.of(documents)


# --- Serving --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes = b""


_ACCEPTED: Final = ("application/json", "application/*", "*/*")


def reply(
    document: Document,
    *,
    path: str,
    hash: str | None,
    accept: str | None,
    if_none_match: str | None,
    now: datetime.datetime | None = None,
) -> Reply:
    """How kube-apiserver answers a GET of an OpenAPI document.

    JSON only (a client that accepts nothing else gets 406). At a URL with the current
    hash the document may be cached forever; a stale hash redirects to the current one.
    A matching `If-None-Match` is answered 304.
    """
    if accept and not any(
        entry.split(";")[0].strip().lower() in _ACCEPTED for entry in accept.split(",")
    ):
        raise errors.NotAcceptable(
            f"the server can only serve the OpenAPI document as {_JSON}, not {accept}"
        )
    etag = f'"{document.hash}"'
    headers = {"ETag": etag, "Content-Type": _JSON}
    if hash is not None:
        if hash != document.hash:
            return Reply(301, {"Location": f"{path}?hash={document.hash}"})
        expires = (now or datetime.datetime.now(datetime.UTC)) + datetime.timedelta(days=365)
        headers["Cache-Control"] = "public, immutable"
        headers["Expires"] = email.utils.format_datetime(expires, usegmt=True)
        headers["Vary"] = "Accept"
    else:
        headers["Cache-Control"] = "no-cache, private"
    if if_none_match and etag in (tag.strip() for tag in if_none_match.split(",")):
        return Reply(304, headers)
    return Reply(200, headers, document.body)
