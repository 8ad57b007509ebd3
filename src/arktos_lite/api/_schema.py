"""Schemas of the Kubernetes built-in types, with Arktos's fields layered on top.

The definitions are the JSON schemas that the `kubernetes-validate` package ships for
Kubernetes v1.32.0 (the version this server reports), read once on first use. Each one is
named as in the OpenAPI document (`io.k8s.api.core.v1.PodSpec`) and refers to the others
with `$ref: "#/$defs/<name>"`. They carry the extensions that strategic merge patch reads:
`x-kubernetes-patch-strategy` (`merge`, `retainKeys`, `merge,retainKeys`, `replace`) and
`x-kubernetes-patch-merge-key`; and those that server-side apply reads (`_managed`):
`x-kubernetes-list-type`, `x-kubernetes-list-map-keys` and `x-kubernetes-map-type`.

Arktos's additions (`ARKTOS_OVERLAY`) are plain data in the same shape, deep-merged over
the upstream definitions by `layered`; extending the model means adding entries there.

`PatchMeta` answers what strategic merge patch needs to know about one value: is it an
object with known fields, a map, a list (merged by key, or replaced), or a scalar, and how
to descend into it. Anything the schemas do not describe is `Shape.UNKNOWN`: maps of it
merge key by key, lists of it are replaced.

The mappings returned here are shared; callers must not change them.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib.util
import json
import pathlib
import types
from collections.abc import Mapping, Sequence
from typing import Any, Final

from arktos_lite.api import _arktos_schema as arktos_schema

KUBERNETES_VERSION: Final = "v1.32.0"
"""The Kubernetes release whose schemas are loaded; matches the version the server reports."""

_PACKAGE: Final = "kubernetes_validate"
_DEFINITIONS_FILE: Final = f"kubernetes-json-schema/{KUBERNETES_VERSION}-local/_definitions.json"
_REF_PREFIX: Final = "#/$defs/"

ARKTOS_OVERLAY: Final[Mapping[str, Mapping[str, Any]]] = {
    **arktos_schema.DEFINITIONS,
    **arktos_schema.POD_OVERLAY,
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
        "properties": {
            "tenant": {
                "description": "Arktos: the tenant the object belongs to.",
                "type": ["string", "null"],
            },
            "hashKey": {
                "description": "Arktos: the object's hash key, for partitioned controllers.",
                "type": ["integer", "null"],
                "format": "int64",
            },
        },
    },
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference": {
        "properties": {
            "hashKey": {
                "description": "Arktos: the owner's hash key.",
                "type": ["integer", "null"],
                "format": "int64",
            },
        },
    },
}
"""Arktos's kinds and fields, deep-merged over the upstream definitions (new names are added).

The kinds (Tenant, ControllerInstance, Action) and the pod fields live in `_arktos_schema`.
"""


def layered(base: Mapping[str, Any], overlay: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """`base` with `overlay` deep-merged on top: objects merge, anything else replaces.

    Neither argument is changed; untouched definitions are shared with `base`.
    """
    result = dict(base)
    for name, addition in overlay.items():
        current = result.get(name)
        result[name] = _deep_merge(current, addition) if isinstance(current, Mapping) else addition
    return result


def _deep_merge(base: Mapping[str, Any], addition: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in addition.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = _deep_merge(current, value)
        else:
            merged[key] = value
    return merged


@functools.cache
def _upstream() -> Mapping[str, Any]:
    # Found, not imported: the package's own validator would load jsonschema for nothing.
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"No module named {_PACKAGE!r}", name=_PACKAGE)
    path = pathlib.Path(spec.submodule_search_locations[0], _DEFINITIONS_FILE)
    text = path.read_text("utf-8")
    document = json.loads(text)
    defs: Mapping[str, Any] = document["$defs"]
    return defs


@functools.cache
def definitions() -> Mapping[str, Any]:
    """Every definition by name: the Kubernetes v1.32.0 types with Arktos's overlay."""
    return types.MappingProxyType(layered(_upstream(), ARKTOS_OVERLAY))


@functools.cache
def _by_kind() -> Mapping[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            index.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
    return types.MappingProxyType(index)


def definition_for(group: str, version: str, kind: str) -> str | None:
    """The definition name of a kind (`""`, `"v1"`, `"Pod"` → `io.k8s.api.core.v1.Pod`)."""
    return _by_kind().get((group, version, kind))


class Shape(enum.StrEnum):
    OBJECT = "object"
    """Known fields (`properties`)."""
    MAP = "map"
    """Any keys, every value of one schema (`additionalProperties`)."""
    LIST = "list"
    SCALAR = "scalar"
    UNKNOWN = "unknown"
    """Not described: a free-form object, or a field the schema does not have."""


@dataclasses.dataclass(frozen=True, slots=True)
class PatchMeta:
    """What strategic merge patch needs to know about one value, and how to go deeper."""

    shape: Shape
    strategies: frozenset[str] = frozenset()
    """`x-kubernetes-patch-strategy`, split at commas."""
    merge_key: str | None = None
    """`x-kubernetes-patch-merge-key`: the field that identifies a list's items."""
    list_type: str | None = None
    """`x-kubernetes-list-type`: `atomic`, `set` or `map`."""
    list_map_keys: tuple[str, ...] = ()
    map_type: str | None = None
    """`x-kubernetes-map-type`: `atomic` for an object or map that is only ever set whole."""
    definition: str | None = None
    """The definition the value's schema refers to, if it refers to one."""
    _schema: Mapping[str, Any] = dataclasses.field(
        default_factory=dict, repr=False, compare=False, hash=False
    )
    _definitions: Mapping[str, Any] = dataclasses.field(
        default_factory=dict, repr=False, compare=False, hash=False
    )

    @property
    def merges(self) -> bool:
        """A list whose items are merged (by `merge_key`, or as a set of primitives)."""
        return self.shape is Shape.LIST and "merge" in self.strategies

    @property
    def retains_keys(self) -> bool:
        """Patches clear the fields they leave out (`$retainKeys`, sent by kubectl)."""
        return "retainKeys" in self.strategies

    @property
    def replaces(self) -> bool:
        """An object or map that a patch replaces whole instead of merging."""
        return "replace" in self.strategies

    def field(self, name: str) -> PatchMeta:
        """The value under `name`: a field of an object or any value of a map."""
        if self.shape is Shape.OBJECT:
            schema = self._schema["properties"].get(name)
            return UNKNOWN if schema is None else _meta(schema, self._definitions)
        if self.shape is Shape.MAP:
            return _meta(self._schema["additionalProperties"], self._definitions)
        return UNKNOWN

    def items(self) -> PatchMeta:
        """The items of a list."""
        if self.shape is Shape.LIST and isinstance(self._schema.get("items"), Mapping):
            return _meta(self._schema["items"], self._definitions)
        return UNKNOWN

    def at(self, path: Sequence[str]) -> PatchMeta:
        """Follow field names (and map keys) from here, stepping into list items on the way."""
        meta = self
        for name in path:
            if meta.shape is Shape.LIST:
                meta = meta.items()
            meta = meta.field(name)
        return meta


UNKNOWN: Final = PatchMeta(Shape.UNKNOWN)


def patch_meta(
    definition: str, path: Sequence[str] = (), *, defs: Mapping[str, Any] | None = None
) -> PatchMeta:
    """The `PatchMeta` of a definition, or of the value at `path` inside it.

    `path` holds field names and map keys; lists are stepped through to their items, so
    `("spec", "containers", "ports")` is the ports list of any container. `defs` defaults
    to `definitions()`. An unknown definition name raises `KeyError`.
    """
    defs = definitions() if defs is None else defs
    if definition not in defs:
        raise KeyError(definition)
    return _meta({"$ref": _REF_PREFIX + definition}, defs).at(path)


def _resolve(
    schema: Mapping[str, Any], defs: Mapping[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """Follow `$ref`s; the referring schema's own keys (a patch strategy) win."""
    resolved = dict(schema)
    name = None
    seen: set[str] = set()
    while isinstance(ref := resolved.pop("$ref", None), str):
        if not ref.startswith(_REF_PREFIX):
            raise ValueError(f"unsupported $ref {ref!r}")
        name = ref.removeprefix(_REF_PREFIX)
        if name in seen:
            raise ValueError(f"$ref cycle through {name!r}")
        seen.add(name)
        resolved = {**defs[name], **resolved}
    return resolved, name


def _meta(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> PatchMeta:
    resolved, name = _resolve(schema, defs)
    raw_type = resolved.get("type", ())
    type_names = {raw_type} if isinstance(raw_type, str) else set(raw_type)
    if isinstance(resolved.get("properties"), Mapping):
        shape = Shape.OBJECT
    elif isinstance(resolved.get("additionalProperties"), Mapping):
        shape = Shape.MAP
    elif "array" in type_names:
        shape = Shape.LIST
    elif "object" in type_names:
        shape = Shape.UNKNOWN
    elif type_names & {"string", "integer", "number", "boolean"} or "oneOf" in resolved:
        shape = Shape.SCALAR
    else:
        shape = Shape.UNKNOWN
    strategy = resolved.get("x-kubernetes-patch-strategy", "")
    return PatchMeta(
        shape=shape,
        strategies=frozenset(s.strip() for s in strategy.split(",") if s.strip()),
        merge_key=resolved.get("x-kubernetes-patch-merge-key"),
        list_type=resolved.get("x-kubernetes-list-type"),
        list_map_keys=tuple(resolved.get("x-kubernetes-list-map-keys", ())),
        map_type=resolved.get("x-kubernetes-map-type"),
        definition=name,
        _schema=resolved,
        _definitions=defs,
    )
