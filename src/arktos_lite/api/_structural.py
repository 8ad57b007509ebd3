"""Structural schemas of CustomResourceDefinitions: checking, validating, defaulting, pruning.

A CRD version's `openAPIV3Schema` must be *structural* (Kubernetes' apiextensions rules):
every specified node has a `type` (unless `x-kubernetes-int-or-string` or
`x-kubernetes-preserve-unknown-fields` stands in for it), arrays have `items`, an object has
`properties` or `additionalProperties` but not both, the logical junctors `allOf`, `anyOf`,
`oneOf` and `not` only add value validation to what is specified outside of them, and
`metadata` at the root may only restrict `name` and `generateName`.

`Structural.parse` checks those rules (and that every `default` is valid under its own
schema) and raises `SchemaError` with the `FieldError`s found, worded as kube-apiserver words
them. A parsed schema then serves the three steps a custom object goes through on its way
into storage, in this order: `default` (fill absent fields), `prune` (drop fields the schema
does not know) and `validate` (value validation).

Known limits: `x-kubernetes-validations` (CEL rules) are refused; the number formats
(`int32`, `float`, ...) are not range-checked, as in Kubernetes; unknown formats are ignored.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import datetime
import ipaddress
import json
import math
import re
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

from arktos_lite.api._errors import CauseType, FieldError

ROOT_PATH: Final = "spec.versions[0].schema.openAPIV3Schema"

TYPES: Final = ("array", "boolean", "integer", "number", "object", "string")

_PRESERVE: Final = "x-kubernetes-preserve-unknown-fields"
_EMBEDDED: Final = "x-kubernetes-embedded-resource"
_INT_OR_STRING: Final = "x-kubernetes-int-or-string"
_LIST_TYPE: Final = "x-kubernetes-list-type"
_LIST_MAP_KEYS: Final = "x-kubernetes-list-map-keys"
_MAP_TYPE: Final = "x-kubernetes-map-type"
_JUNCTORS: Final = ("allOf", "anyOf", "oneOf", "not")

_UNSUPPORTED: Final = (
    "id",
    "$schema",
    "$ref",
    "additionalItems",
    "patternProperties",
    "definitions",
    "dependencies",
)
"""JSONSchemaProps fields that a CRD schema must not use."""

_DOCUMENTATION: Final = frozenset({"description", "title", "externalDocs", "example"})

_KEYWORDS: Final = frozenset(
    {
        "type",
        "format",
        "default",
        "nullable",
        "enum",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "multipleOf",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "maxProperties",
        "minProperties",
        "required",
        "items",
        "properties",
        "additionalProperties",
        *_JUNCTORS,
        *_DOCUMENTATION,
        _PRESERVE,
        _EMBEDDED,
        _INT_OR_STRING,
        _LIST_TYPE,
        _LIST_MAP_KEYS,
        _MAP_TYPE,
        "x-kubernetes-validations",
        *_UNSUPPORTED,
    }
)

_OBJECT_META_FIELDS: Final = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "tenant",
        "hashKey",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
"""The fields of ObjectMeta, which pruning keeps in the metadata of embedded resources."""


class SchemaError(ValueError):
    """A CRD schema that is not structural or uses what is not supported."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(map(str, self.errors)))


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Structural:
    """A checked structural schema (the mapping is a private copy; do not change it)."""

    schema: Mapping[str, Any]

    @classmethod
    def parse(cls, schema: Mapping[str, Any], *, path: str = ROOT_PATH) -> Structural:
        """Check `schema`; raise `SchemaError` listing every problem found."""
        if not isinstance(schema, Mapping):
            raise SchemaError([FieldError(CauseType.INVALID, path, "must be an object", schema)])
        found: list[FieldError] = []
        _Checker(found).root(schema, path)
        if found:
            raise SchemaError(found)
        return cls(copy.deepcopy(dict(schema)))

    def validate(self, obj: Any, *, path: str = "", old: Any = None) -> list[FieldError]:
        """Value validation of `obj` (already defaulted and pruned); paths start at `path`.

        For an update, `old` is the object before it: a part of `obj` that is the same as
        where it was in `old` is not checked again (kube-apiserver's validation ratcheting),
        so a stricter schema does not block updates of other fields. Fields correlate by
        name, map keys by key, items of `x-kubernetes-list-type: map` lists by their keys;
        other list items only through their whole list.
        """
        found: list[FieldError] = []
        _validate(self.schema, obj, path, found, root=True, old=_ABSENT if old is None else old)
        return found

    def default(self, obj: Any) -> None:
        """Apply the schema's defaults to `obj` in place, as kube-apiserver does.

        A default fills a field that is absent, or null where the schema does not allow
        null; other nulls of fields that do not allow null are dropped. Defaults apply top
        down, so a defaulted object gets the defaults of its own fields.
        """
        _default(self.schema, obj)

    def prune(self, obj: Any) -> list[str]:
        """Drop, in place, the fields the schema does not specify; return their paths."""
        removed: list[str] = []
        _prune(self.schema, obj, "", removed, root=True)
        return removed


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _key(path: str, key: object) -> str:
    return f"{path}[{key}]"


# ---------------------------------------------------------------------------------------
# Checking a schema


_Kind = Callable[[Any], bool]


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


_SCALAR_KEYWORDS: Final[dict[str, tuple[_Kind, str]]] = {
    "format": (_is_string, "must be a string"),
    "nullable": (_is_bool, "must be a boolean"),
    "maximum": (_is_number, "must be a number"),
    "minimum": (_is_number, "must be a number"),
    "exclusiveMaximum": (_is_bool, "must be a boolean"),
    "exclusiveMinimum": (_is_bool, "must be a boolean"),
    "multipleOf": (lambda v: _is_number(v) and v > 0, "must be greater than zero"),
    "maxLength": (_is_count, "must be a non-negative integer"),
    "minLength": (_is_count, "must be a non-negative integer"),
    "maxItems": (_is_count, "must be a non-negative integer"),
    "minItems": (_is_count, "must be a non-negative integer"),
    "maxProperties": (_is_count, "must be a non-negative integer"),
    "minProperties": (_is_count, "must be a non-negative integer"),
    "uniqueItems": (_is_bool, "must be a boolean"),
    "description": (_is_string, "must be a string"),
    "title": (_is_string, "must be a string"),
    _PRESERVE: (_is_bool, "must be a boolean"),
    _EMBEDDED: (_is_bool, "must be a boolean"),
    _INT_OR_STRING: (_is_bool, "must be a boolean"),
}

_FORBIDDEN_IN_JUNCTORS: Final = (
    ("description", "must be empty to be structural"),
    ("type", "must be empty to be structural"),
    ("default", "must be undefined to be structural"),
    ("additionalProperties", "must be undefined to be structural"),
    ("nullable", "must be false to be structural"),
    (_PRESERVE, "must be false to be structural"),
    (_EMBEDDED, "must be false to be structural"),
    (_INT_OR_STRING, "must be false to be structural"),
    (_LIST_TYPE, "must be undefined to be structural"),
    (_LIST_MAP_KEYS, "must be undefined to be structural"),
    (_MAP_TYPE, "must be undefined to be structural"),
)


@dataclasses.dataclass(slots=True)
class _Checker:
    found: list[FieldError]

    def error(self, kind: CauseType, path: str, detail: str = "", *value: Any) -> None:
        if value:
            self.found.append(FieldError(kind, path, detail, value[0]))
        else:
            self.found.append(FieldError(kind, path, detail))

    def root(self, schema: Mapping[str, Any], path: str) -> None:
        self.node(schema, path, where="at the root")
        if not self.found and schema.get("type") != "object":
            type_ = schema.get("type", "")
            self.error(CauseType.INVALID, _child(path, "type"), "must be object at the root", type_)
        if "default" in schema:
            self.error(CauseType.FORBIDDEN, _child(path, "default"), "must not be set at the root")
        properties = schema.get("properties")
        if isinstance(properties, Mapping) and "metadata" in properties:
            self.metadata(properties["metadata"], f"{path}.properties[metadata]")
        if not self.found:
            self.defaults(schema, path)

    def metadata(self, schema: Any, path: str) -> None:
        if not isinstance(schema, Mapping):
            return
        implicit = "must not specify anything other than name and generateName, but metadata "
        implicit += "is implicitly specified"
        if schema.get("type") not in (None, "object"):
            self.error(CauseType.INVALID, _child(path, "type"), "must be object", schema["type"])
        for keyword in schema:
            if keyword not in ("type", "properties", *_DOCUMENTATION):
                self.error(CauseType.FORBIDDEN, _child(path, keyword), implicit)
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return
        for name, field in properties.items():
            field_path = f"{path}.properties[{name}]"
            if name not in ("name", "generateName"):
                self.error(CauseType.FORBIDDEN, field_path, implicit)
                continue
            if not isinstance(field, Mapping):
                continue
            if field.get("type") != "string":
                detail = "must be string"
                self.error(CauseType.INVALID, _child(field_path, "type"), detail, field.get("type"))
            if "default" in field:
                detail = "must not be set inside metadata"
                self.error(CauseType.FORBIDDEN, _child(field_path, "default"), detail)

    def node(
        self,
        schema: Mapping[str, Any],
        path: str,
        *,
        where: str = "",
        junctor: bool = False,
        int_or_string_pattern: bool = False,
    ) -> None:
        """Check one node; `where` is set for the nodes that must have a type."""
        if not self._keywords(schema, path):
            return
        if junctor:
            self._junctor_node(schema, path, int_or_string_pattern=int_or_string_pattern)
        type_ = schema.get("type", "")
        preserve = schema.get(_PRESERVE) is True
        int_or_string = schema.get(_INT_OR_STRING) is True
        if _PRESERVE in schema and schema[_PRESERVE] is False:
            detail = "must be true or undefined"
            self.error(CauseType.INVALID, _child(path, _PRESERVE), detail, False)
        if type_ == "null":
            detail = "type cannot be set to null, use nullable as an alternative"
            self.error(CauseType.FORBIDDEN, _child(path, "type"), detail)
        elif type_ and type_ not in TYPES:
            detail = "supported values: " + ", ".join(json.dumps(t) for t in TYPES)
            self.error(CauseType.NOT_SUPPORTED, _child(path, "type"), detail, type_)
        if int_or_string and type_ and not junctor:
            detail = "must be empty if x-kubernetes-int-or-string is true"
            self.error(CauseType.INVALID, _child(path, "type"), detail, type_)
        if where and not type_ and not int_or_string and not preserve:
            self.error(CauseType.REQUIRED, _child(path, "type"), f"must not be empty {where}")
        if schema.get(_EMBEDDED) is True:
            self._embedded(schema, path, type_, preserve, int_or_string)
        if "properties" in schema and schema.get("additionalProperties", True) is not True:
            detail = "additionalProperties and properties are mutual exclusive"
            self.error(CauseType.FORBIDDEN, _child(path, "additionalProperties"), detail)
        if type_ == "array" and "items" not in schema and not junctor:
            self.error(CauseType.REQUIRED, _child(path, "items"), "must be specified")
        if schema.get("uniqueItems") is True:
            detail = "uniqueItems cannot be set to true since the runtime complexity becomes "
            detail += "quadratic"
            self.error(CauseType.FORBIDDEN, _child(path, "uniqueItems"), detail)
        if "x-kubernetes-validations" in schema:
            detail = "validation rules (CEL) are not supported by this server"
            self.error(CauseType.FORBIDDEN, _child(path, "x-kubernetes-validations"), detail)
        if "pattern" in schema:
            try:
                re.compile(schema["pattern"])
            except (re.error, TypeError):
                detail = "must be a valid regular expression"
                self.error(CauseType.INVALID, _child(path, "pattern"), detail, schema["pattern"])
        self._lists_and_maps(schema, path, type_, junctor=junctor)
        self._children(schema, path, junctor=junctor)

    def _keywords(self, schema: Mapping[str, Any], path: str) -> bool:
        ok = True
        for keyword, value in schema.items():
            keyword_path = _child(path, keyword)
            if keyword not in _KEYWORDS:
                self.error(CauseType.UNKNOWN_FIELD, keyword_path)
                ok = False
            elif keyword in _UNSUPPORTED:
                self.error(CauseType.FORBIDDEN, keyword_path, f"{keyword} is not supported")
                ok = False
            elif keyword in _SCALAR_KEYWORDS:
                kind, detail = _SCALAR_KEYWORDS[keyword]
                if not kind(value):
                    self.error(CauseType.INVALID, keyword_path, detail, value)
                    ok = False
        for keyword in ("type", "pattern"):
            if keyword in schema and not isinstance(schema[keyword], str):
                detail = "must be a string"
                self.error(CauseType.INVALID, _child(path, keyword), detail, schema[keyword])
                ok = False
        for keyword in ("properties",):
            if keyword in schema and not _is_schema_map(schema[keyword]):
                detail = "must be a map of schemas"
                self.error(CauseType.INVALID, _child(path, keyword), detail, schema[keyword])
                ok = False
        if "items" in schema and not isinstance(schema["items"], Mapping):
            detail = "items must be a schema object and not an array"
            self.error(CauseType.FORBIDDEN, _child(path, "items"), detail)
            ok = False
        additional = schema.get("additionalProperties", True)
        if not isinstance(additional, bool | Mapping):
            detail = "must be a boolean or a schema"
            self.error(CauseType.INVALID, _child(path, "additionalProperties"), detail, additional)
            ok = False
        for keyword in ("allOf", "anyOf", "oneOf"):
            value = schema.get(keyword, [])
            if not isinstance(value, list) or not all(isinstance(s, Mapping) for s in value):
                detail = "must be a list of schemas"
                self.error(CauseType.INVALID, _child(path, keyword), detail, value)
                ok = False
        if "not" in schema and not isinstance(schema["not"], Mapping):
            detail = "must be a schema"
            self.error(CauseType.INVALID, _child(path, "not"), detail, schema["not"])
            ok = False
        for keyword in ("enum", "required", _LIST_MAP_KEYS):
            value = schema.get(keyword, [])
            if not isinstance(value, list) or (
                keyword != "enum" and not all(isinstance(v, str) for v in value)
            ):
                detail = "must be a list" if keyword == "enum" else "must be a list of strings"
                self.error(CauseType.INVALID, _child(path, keyword), detail, value)
                ok = False
        return ok

    def _junctor_node(
        self, schema: Mapping[str, Any], path: str, *, int_or_string_pattern: bool
    ) -> None:
        for keyword, detail in _FORBIDDEN_IN_JUNCTORS:
            if keyword not in schema:
                continue
            if (
                int_or_string_pattern
                and keyword == "type"
                and schema["type"]
                in (
                    "integer",
                    "string",
                )
            ):
                continue
            if schema[keyword] is False and detail.startswith("must be false"):
                continue
            self.error(CauseType.FORBIDDEN, _child(path, keyword), detail)

    def _embedded(
        self,
        schema: Mapping[str, Any],
        path: str,
        type_: str,
        preserve: bool,
        int_or_string: bool,
    ) -> None:
        if type_ != "object":
            detail = "must be object if x-kubernetes-embedded-resource is true"
            self.error(CauseType.INVALID, _child(path, "type"), detail, type_)
        if not preserve and not schema.get("properties"):
            detail = "must not be empty if x-kubernetes-embedded-resource is true without "
            detail += "x-kubernetes-preserve-unknown-fields"
            self.error(CauseType.REQUIRED, _child(path, "properties"), detail)
        if int_or_string:
            detail = "must be false if x-kubernetes-embedded-resource is true"
            self.error(CauseType.FORBIDDEN, _child(path, _INT_OR_STRING), detail)

    def _lists_and_maps(
        self, schema: Mapping[str, Any], path: str, type_: str, *, junctor: bool
    ) -> None:
        list_type = schema.get(_LIST_TYPE)
        keys = schema.get(_LIST_MAP_KEYS)
        if list_type is not None:
            if list_type not in ("atomic", "set", "map"):
                detail = 'supported values: "atomic", "map", "set"'
                self.error(CauseType.NOT_SUPPORTED, _child(path, _LIST_TYPE), detail, list_type)
            elif type_ != "array" and not junctor:
                detail = "must only be used if type is array"
                self.error(CauseType.INVALID, _child(path, _LIST_TYPE), detail, list_type)
        if list_type == "map" and not keys:
            detail = "must not be empty if x-kubernetes-list-type is map"
            self.error(CauseType.REQUIRED, _child(path, _LIST_MAP_KEYS), detail)
        if keys and list_type != "map":
            detail = "must be empty if x-kubernetes-list-type is not map"
            self.error(CauseType.FORBIDDEN, _child(path, _LIST_MAP_KEYS), detail)
        items = schema.get("items")
        if list_type == "map" and keys and isinstance(items, Mapping):
            if items.get("type") != "object":
                detail = "must be object if parent array's x-kubernetes-list-type is map"
                self.error(CauseType.INVALID, f"{path}.items.type", detail, items.get("type", ""))
            properties = items.get("properties") or {}
            required = items.get("required") or []
            for key in keys:
                if key not in properties:
                    detail = "entries for x-kubernetes-list-map-keys must be properties"
                    self.error(CauseType.REQUIRED, f"{path}.items.properties[{key}]", detail)
                elif key not in required and "default" not in properties[key]:
                    detail = "entries for x-kubernetes-list-map-keys must be required or have a "
                    detail += "default value"
                    self.error(CauseType.REQUIRED, f"{path}.items.properties[{key}]", detail)
        if list_type == "set" and isinstance(items, Mapping):
            self._set_items(items, path)
        map_type = schema.get(_MAP_TYPE)
        if map_type is not None:
            if map_type not in ("atomic", "granular"):
                detail = 'supported values: "atomic", "granular"'
                self.error(CauseType.NOT_SUPPORTED, _child(path, _MAP_TYPE), detail, map_type)
            elif type_ != "object" and not junctor:
                detail = "must only be used if type is object"
                self.error(CauseType.INVALID, _child(path, _MAP_TYPE), detail, map_type)

    def _set_items(self, items: Mapping[str, Any], path: str) -> None:
        detail = "must be atomic as item of a list with x-kubernetes-list-type=set"
        if items.get("type") == "object" and items.get(_MAP_TYPE) != "atomic":
            value = items.get(_MAP_TYPE, "")
            self.error(CauseType.INVALID, f"{path}.items.{_MAP_TYPE}", detail, value)
        elif items.get("type") == "array" and items.get(_LIST_TYPE, "atomic") != "atomic":
            value = items.get(_LIST_TYPE)
            self.error(CauseType.INVALID, f"{path}.items.{_LIST_TYPE}", detail, value)

    def _children(self, schema: Mapping[str, Any], path: str, *, junctor: bool) -> None:
        where_field = "" if junctor else "for specified object fields"
        for name, field in (schema.get("properties") or {}).items():
            self.node(field, f"{path}.properties[{name}]", where=where_field, junctor=junctor)
        additional = schema.get("additionalProperties")
        if isinstance(additional, Mapping):
            self.node(additional, _child(path, "additionalProperties"), where=where_field)
        items = schema.get("items")
        if isinstance(items, Mapping):
            where = "" if junctor else "for specified array items"
            self.node(items, _child(path, "items"), where=where, junctor=junctor)
        int_or_string = schema.get(_INT_OR_STRING) is True
        for keyword in ("allOf", "anyOf", "oneOf"):
            for index, sub in enumerate(schema.get(keyword) or []):
                sub_path = f"{path}.{keyword}[{index}]"
                pattern = int_or_string and keyword == "anyOf"
                self.node(sub, sub_path, junctor=True, int_or_string_pattern=pattern)
                if keyword == "allOf" and int_or_string:
                    for inner, inner_sub in enumerate(sub.get("anyOf") or []):
                        if isinstance(inner_sub, Mapping) and inner_sub.get("type") in (
                            "integer",
                            "string",
                        ):
                            self._drop_type_error(f"{sub_path}.anyOf[{inner}].type")
                self._specified_outside(schema, sub, sub_path)
        if isinstance(schema.get("not"), Mapping):
            self.node(schema["not"], _child(path, "not"), junctor=True)
            self._specified_outside(schema, schema["not"], _child(path, "not"))

    def _drop_type_error(self, path: str) -> None:
        self.found[:] = [e for e in self.found if e.field != path]

    def _specified_outside(
        self, outside: Mapping[str, Any], inside: Mapping[str, Any], path: str
    ) -> None:
        """Fields and items a junctor talks about must be specified outside of it too."""
        properties = outside.get("properties") or {}
        additional = outside.get("additionalProperties")
        detail = "must have a corresponding property outside of the value validation"
        for name, sub in (inside.get("properties") or {}).items():
            if name in properties:
                if isinstance(sub, Mapping) and isinstance(properties[name], Mapping):
                    self._specified_outside(properties[name], sub, f"{path}.properties[{name}]")
            elif isinstance(additional, Mapping):
                if isinstance(sub, Mapping):
                    self._specified_outside(additional, sub, f"{path}.properties[{name}]")
            elif outside.get(_PRESERVE) is not True and additional is not True:
                self.error(CauseType.REQUIRED, f"{path}.properties[{name}]", detail)
        inside_items = inside.get("items")
        if isinstance(inside_items, Mapping):
            outside_items = outside.get("items")
            if isinstance(outside_items, Mapping):
                self._specified_outside(outside_items, inside_items, _child(path, "items"))
            elif outside.get(_PRESERVE) is not True:
                detail = "must have a corresponding items outside of the value validation"
                self.error(CauseType.REQUIRED, _child(path, "items"), detail)
        for keyword in ("allOf", "anyOf", "oneOf"):
            for index, sub in enumerate(inside.get(keyword) or []):
                if isinstance(sub, Mapping):
                    self._specified_outside(outside, sub, f"{path}.{keyword}[{index}]")
        if isinstance(inside.get("not"), Mapping):
            self._specified_outside(outside, inside["not"], _child(path, "not"))

    def defaults(self, schema: Mapping[str, Any], path: str) -> None:
        """Each default must be pruned already and valid under its own schema."""
        for sub, sub_path in _structural_nodes(schema, path):
            if "default" not in sub:
                continue
            value = copy.deepcopy(sub["default"])
            default_path = _child(sub_path, "default")
            if _prune(sub, value, default_path, [], root=False):
                detail = "must not have unknown fields"
                self.error(CauseType.INVALID, default_path, detail, value)
                continue
            self.found.extend(_validate_all(sub, value, default_path))


def _is_schema_map(value: Any) -> bool:
    return isinstance(value, Mapping) and all(isinstance(v, Mapping) for v in value.values())


def _structural_nodes(
    schema: Mapping[str, Any], path: str
) -> Iterator[tuple[Mapping[str, Any], str]]:
    """Every node outside of the junctors, with its path."""
    yield schema, path
    for name, field in (schema.get("properties") or {}).items():
        yield from _structural_nodes(field, f"{path}.properties[{name}]")
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        yield from _structural_nodes(additional, _child(path, "additionalProperties"))
    items = schema.get("items")
    if isinstance(items, Mapping):
        yield from _structural_nodes(items, _child(path, "items"))


# ---------------------------------------------------------------------------------------
# Validating values


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _canon(value: Any) -> Any:
    """A hashable form of a JSON value in which equal JSON values are equal."""
    if isinstance(value, bool) or value is None:
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", int(value) if isinstance(value, float) and value.is_integer() else value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, Mapping):
        return ("o", frozenset((k, _canon(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("a", tuple(_canon(v) for v in value))
    return ("?", repr(value))


def _number(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _in_body(path: str) -> str:
    return f"{path} in body" if path else "in body"


# No old value to compare with: a create, or a field, key or item that is new.
_ABSENT: Final = object()


def _same(a: Any, b: Any) -> bool:
    """Whether two JSON values are equal as JSON values (true is not 1; 1 is 1.0)."""
    if isinstance(a, Mapping):
        return (
            isinstance(b, Mapping)
            and a.keys() == b.keys()
            and all(_same(value, b[key]) for key, value in a.items())
        )
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b
    if isinstance(a, int | float):
        return isinstance(b, int | float) and a == b
    return type(a) is type(b) and bool(a == b)


def _validate_all(schema: Mapping[str, Any], value: Any, path: str) -> list[FieldError]:
    found: list[FieldError] = []
    _validate(schema, value, path, found, root=False)
    return found


def _validate(
    schema: Mapping[str, Any],
    value: Any,
    path: str,
    found: list[FieldError],
    *,
    root: bool,
    old: Any = _ABSENT,
) -> None:
    if old is not _ABSENT and _same(value, old):
        return  # unchanged by this update: ratcheted
    if value is None:
        if schema.get("nullable") is True:
            return
        type_ = schema.get("type", "")
        if schema.get(_INT_OR_STRING) is True:
            type_ = "integer,string"
        if type_:
            detail = f'{_in_body(path)} must be of type {type_}: "null"'
            found.append(FieldError(CauseType.INVALID, path, detail, "null"))
            return
    elif not _check_type(schema, value, path, found):
        return
    _check_enum(schema, value, path, found)
    if isinstance(value, str):
        _check_string(schema, value, path, found)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(schema, value, path, found)
    elif isinstance(value, Mapping):
        _check_object(schema, value, path, found, root=root, old=old)
    elif isinstance(value, list):
        _check_array(schema, value, path, found, old=old)
    _check_junctors(schema, value, path, found, root=root, old=old)


def _check_type(schema: Mapping[str, Any], value: Any, path: str, found: list[FieldError]) -> bool:
    actual = _type_name(value)
    if schema.get(_INT_OR_STRING) is True:
        wanted = "integer,string"
        ok = actual in ("integer", "string")
    else:
        wanted = schema.get("type", "")
        ok = not wanted or actual == wanted or (wanted == "number" and actual == "integer")
    if not ok:
        detail = f'{_in_body(path)} must be of type {wanted}: "{actual}"'
        found.append(FieldError(CauseType.INVALID, path, detail, actual))
    return ok


def _check_enum(schema: Mapping[str, Any], value: Any, path: str, found: list[FieldError]) -> None:
    enum = schema.get("enum")
    if enum is None:
        return
    if _canon(value) not in {_canon(v) for v in enum}:
        supported = ", ".join(json.dumps(v, sort_keys=True) for v in enum)
        found.append(
            FieldError(CauseType.NOT_SUPPORTED, path, f"supported values: {supported}", value)
        )


def _check_string(
    schema: Mapping[str, Any], value: str, path: str, found: list[FieldError]
) -> None:
    min_length = schema.get("minLength")
    if min_length is not None and len(value) < min_length:
        detail = f"{_in_body(path)} should be at least {min_length} chars long"
        found.append(FieldError(CauseType.INVALID, path, detail, value))
    max_length = schema.get("maxLength")
    if max_length is not None and len(value) > max_length:
        detail = f"may not be more than {max_length} bytes"
        found.append(FieldError(CauseType.TOO_LONG, path, detail, value))
    pattern = schema.get("pattern")
    if pattern is not None and re.search(pattern, value) is None:
        detail = f"{_in_body(path)} should match '{pattern}'"
        found.append(FieldError(CauseType.INVALID, path, detail, value))
    format_ = schema.get("format")
    check = _FORMATS.get(format_) if isinstance(format_, str) else None
    if check is not None and not check(value):
        detail = f'{_in_body(path)} must be of type {format_}: "{value}"'
        found.append(FieldError(CauseType.INVALID, path, detail, value))


def _check_number(
    schema: Mapping[str, Any], value: float, path: str, found: list[FieldError]
) -> None:
    body = _in_body(path)
    minimum = schema.get("minimum")
    if minimum is not None:
        if schema.get("exclusiveMinimum") is True and value <= minimum:
            detail = f"{body} should be greater than {_number(minimum)}"
            found.append(FieldError(CauseType.INVALID, path, detail, value))
        elif value < minimum:
            detail = f"{body} should be greater than or equal to {_number(minimum)}"
            found.append(FieldError(CauseType.INVALID, path, detail, value))
    maximum = schema.get("maximum")
    if maximum is not None:
        if schema.get("exclusiveMaximum") is True and value >= maximum:
            detail = f"{body} should be less than {_number(maximum)}"
            found.append(FieldError(CauseType.INVALID, path, detail, value))
        elif value > maximum:
            detail = f"{body} should be less than or equal to {_number(maximum)}"
            found.append(FieldError(CauseType.INVALID, path, detail, value))
    multiple_of = schema.get("multipleOf")
    if multiple_of is not None and not _is_multiple(value, multiple_of):
        detail = f"{body} should be a multiple of {_number(multiple_of)}"
        found.append(FieldError(CauseType.INVALID, path, detail, value))


def _is_multiple(value: float, factor: float) -> bool:
    if isinstance(value, int) and isinstance(factor, int):
        return value % factor == 0
    quotient = value / factor
    return math.isfinite(quotient) and abs(quotient - round(quotient)) < 1e-9


def _check_object(
    schema: Mapping[str, Any],
    value: Mapping[str, Any],
    path: str,
    found: list[FieldError],
    *,
    root: bool,
    old: Any,
) -> None:
    body = _in_body(path)
    olds: Mapping[str, Any] = old if isinstance(old, Mapping) else {}
    for name in schema.get("required") or []:
        if name not in value:
            found.append(FieldError(CauseType.REQUIRED, _child(path, name)))
    min_properties = schema.get("minProperties")
    if min_properties is not None and len(value) < min_properties:
        detail = f"{body} should have at least {min_properties} properties"
        found.append(FieldError(CauseType.INVALID, path, detail, len(value)))
    max_properties = schema.get("maxProperties")
    if max_properties is not None and len(value) > max_properties:
        detail = f"{body} should have at most {max_properties} properties"
        found.append(FieldError(CauseType.INVALID, path, detail, len(value)))
    properties = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    for name, field in value.items():
        if root and name in ("apiVersion", "kind") and name not in properties:
            continue
        was = olds.get(name, _ABSENT)
        if name in properties:
            _validate(properties[name], field, _child(path, name), found, root=False, old=was)
        elif isinstance(additional, Mapping):
            _validate(additional, field, _key(path, name), found, root=False, old=was)
        elif additional is False:
            detail = f'{body} has unknown field "{name}"'
            found.append(FieldError(CauseType.FORBIDDEN, _child(path, name), detail))
    if schema.get(_EMBEDDED) is True:
        _check_embedded(value, path, found)


def _check_embedded(value: Mapping[str, Any], path: str, found: list[FieldError]) -> None:
    for name in ("apiVersion", "kind"):
        field = value.get(name)
        if not field:
            found.append(FieldError(CauseType.REQUIRED, _child(path, name), "must not be empty"))
        elif not isinstance(field, str):
            detail = f'{_in_body(_child(path, name))} must be of type string: "{_type_name(field)}"'
            found.append(FieldError(CauseType.INVALID, _child(path, name), detail, field))
    metadata = value.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        meta_path = _child(path, "metadata")
        detail = f'{_in_body(meta_path)} must be of type object: "{_type_name(metadata)}"'
        found.append(FieldError(CauseType.INVALID, meta_path, detail, _type_name(metadata)))


def _check_array(
    schema: Mapping[str, Any], value: list[Any], path: str, found: list[FieldError], *, old: Any
) -> None:
    body = _in_body(path)
    min_items = schema.get("minItems")
    if min_items is not None and len(value) < min_items:
        detail = f"{body} should have at least {min_items} items"
        found.append(FieldError(CauseType.INVALID, path, detail, len(value)))
    max_items = schema.get("maxItems")
    if max_items is not None and len(value) > max_items:
        found.append(
            FieldError(CauseType.TOO_MANY, path, f"must have at most {max_items} items", len(value))
        )
    items = schema.get("items")
    list_type = schema.get(_LIST_TYPE)
    if isinstance(items, Mapping):
        olds = _items_by_key(schema, old) if list_type == "map" else {}
        for index, item in enumerate(value):
            was = olds.get(_map_key(schema, item), _ABSENT)
            _validate(items, item, f"{path}[{index}]", found, root=False, old=was)
    if list_type == "set" or schema.get("uniqueItems") is True:
        seen: set[Any] = set()
        for index, item in enumerate(value):
            key = _canon(item)
            if key in seen:
                found.append(FieldError(CauseType.DUPLICATE, f"{path}[{index}]", "", item))
            seen.add(key)
    elif list_type == "map":
        keys = schema.get(_LIST_MAP_KEYS) or []
        seen = set()
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                continue
            key = _map_key(schema, item)
            if key in seen:
                entry = {k: item.get(k) for k in keys}
                found.append(FieldError(CauseType.DUPLICATE, f"{path}[{index}]", "", entry))
            seen.add(key)


def _map_key(schema: Mapping[str, Any], item: Any) -> Any:
    """An item's key in a `x-kubernetes-list-type: map` list (None for a non-object)."""
    if not isinstance(item, Mapping):
        return None
    return _canon({k: item.get(k) for k in schema.get(_LIST_MAP_KEYS) or []})


def _items_by_key(schema: Mapping[str, Any], old: Any) -> dict[Any, Any]:
    if not isinstance(old, list):
        return {}
    return {_map_key(schema, item): item for item in old if isinstance(item, Mapping)}


def _check_junctors(
    schema: Mapping[str, Any],
    value: Any,
    path: str,
    found: list[FieldError],
    *,
    root: bool,
    old: Any,
) -> None:
    body = _in_body(path)
    for sub in schema.get("allOf") or []:
        _validate(_with_type(schema, sub), value, path, found, root=root, old=old)
    any_of = schema.get("anyOf")
    if any_of:
        passing = [not _sub_errors(schema, sub, value, path, root) for sub in any_of]
        if not any(passing):
            detail = f"{body} must validate at least one schema (anyOf)"
            found.append(FieldError(CauseType.INVALID, path, detail, value))
    one_of = schema.get("oneOf")
    if one_of:
        passing = [not _sub_errors(schema, sub, value, path, root) for sub in one_of]
        if sum(passing) != 1:
            detail = f"{body} must validate one and only one schema (oneOf)"
            found.append(FieldError(CauseType.INVALID, path, detail, value))
    not_ = schema.get("not")
    if isinstance(not_, Mapping) and not _sub_errors(schema, not_, value, path, root):
        detail = f"{body} must not validate the schema (not)"
        found.append(FieldError(CauseType.INVALID, path, detail, value))


def _with_type(outside: Mapping[str, Any], sub: Mapping[str, Any]) -> Mapping[str, Any]:
    """A junctor's schema sees nullable from outside (nulls were accepted there already)."""
    if outside.get("nullable") is True and "nullable" not in sub:
        return {**sub, "nullable": True}
    return sub


def _sub_errors(
    outside: Mapping[str, Any], sub: Mapping[str, Any], value: Any, path: str, root: bool
) -> bool:
    found: list[FieldError] = []
    _validate(_with_type(outside, sub), value, path, found, root=root)
    return bool(found)


def _is_date(value: str) -> bool:
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is not None


_DATE_TIME: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)


def _is_date_time(value: str) -> bool:
    if _DATE_TIME.fullmatch(value) is None:
        return False
    try:
        datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_byte(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _is_uuid(version: int | None) -> Callable[[str], bool]:
    shape = re.compile(
        r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    )

    def check(value: str) -> bool:
        if shape.fullmatch(value) is None:
            return False
        return version is None or uuid.UUID(value).version == version

    return check


def _is_ip(version: int) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            return ipaddress.ip_address(value).version == version
        except ValueError:
            return False

    return check


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


_HOSTNAME: Final = re.compile(
    r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*"
)
_MAC: Final = re.compile(r"([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}")
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_DURATION: Final = re.compile(r"([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h|d|w))+|0")


def _is_uri(value: str) -> bool:
    parsed = urllib.parse.urlparse(value)
    return bool(parsed.scheme) and " " not in value


_FORMATS: Final[dict[str, Callable[[str], bool]]] = {
    "byte": _is_byte,
    "date": _is_date,
    "date-time": _is_date_time,
    "datetime": _is_date_time,
    "duration": lambda v: _DURATION.fullmatch(v.replace(" ", "")) is not None,
    "uuid": _is_uuid(None),
    "uuid3": _is_uuid(3),
    "uuid4": _is_uuid(4),
    "uuid5": _is_uuid(5),
    "ipv4": _is_ip(4),
    "ipv6": _is_ip(6),
    "cidr": _is_cidr,
    "mac": lambda v: _MAC.fullmatch(v) is not None,
    "hostname": lambda v: len(v) <= 253 and _HOSTNAME.fullmatch(v) is not None,
    "email": lambda v: _EMAIL.fullmatch(v) is not None,
    "uri": _is_uri,
}
"""String formats that are checked; the rest (`password`, `int32`, ...) only document."""


# ---------------------------------------------------------------------------------------
# Defaulting and pruning


def _default(schema: Mapping[str, Any], value: Any) -> None:
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name, field in properties.items():
            _default_entry(field, value, name)
        additional = schema.get("additionalProperties")
        if isinstance(additional, Mapping):
            for name in list(value):
                if name not in properties:
                    _default_entry(additional, value, name)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                if item is None and "default" in items and items.get("nullable") is not True:
                    value[index] = copy.deepcopy(items["default"])
                _default(items, value[index])


def _default_entry(field: Mapping[str, Any], value: dict[str, Any], name: str) -> None:
    if name not in value:
        if "default" in field:
            value[name] = copy.deepcopy(field["default"])
    elif value[name] is None and field.get("nullable") is not True:
        if "default" in field:
            value[name] = copy.deepcopy(field["default"])
        else:
            del value[name]
    if name in value:
        _default(field, value[name])


def _prune(
    schema: Mapping[str, Any], value: Any, path: str, removed: list[str], *, root: bool
) -> list[str]:
    if isinstance(value, dict):
        embedded = schema.get(_EMBEDDED) is True
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        keep_unknown = schema.get(_PRESERVE) is True or additional is True
        for name in list(value):
            field_path = _child(path, name)
            if (root or embedded) and name == "metadata":
                if embedded and isinstance(value[name], dict):
                    _prune_metadata(value[name], _child(path, name), removed)
            elif name in properties:
                _prune(properties[name], value[name], field_path, removed, root=False)
            elif (root or embedded) and name in ("apiVersion", "kind"):
                continue
            elif isinstance(additional, Mapping):
                _prune(additional, value[name], _key(path, name), removed, root=False)
            elif not keep_unknown:
                removed.append(_child(path, name))
                del value[name]
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                _prune(items, item, f"{path}[{index}]", removed, root=False)
    return removed


def _prune_metadata(metadata: dict[str, Any], path: str, removed: list[str]) -> None:
    for name in list(metadata):
        if name not in _OBJECT_META_FIELDS:
            removed.append(_child(path, name))
            del metadata[name]
