"""CustomResourceDefinitions: their defaults, their validation, their names, and the custom
resources they serve.

A CRD (`apiextensions.k8s.io/v1`) goes through the REST layer as kube-apiserver takes it:

* create: `default_crd`, then `prepare_crd_create` (fresh status, the stored version,
  the cleanup finalizer), then `validate_crd(crd, None)`;
* update: `default_crd`, then `prepare_crd_update(crd, old)` (the status is the stored
  one, plus the new storage version), then `validate_crd(crd, old)`;
* status update: the spec is the stored one, then `validate_crd(crd, old)` again.

Errors are `FieldError`s worded and placed as kube-apiserver's apiextensions validation
words and places them (`spec.versions[0].schema.openAPIV3Schema...`), with the limits of
this server: webhook conversion and CEL validation rules are refused.

Names are reserved per view (a tenant's CRDs plus the shared ones): `name_conflicts`
says, as the NamingConditionController does, why a CRD's names cannot be accepted, and
`accepted_names` is the `status.acceptedNames` to write when they can.

A valid, accepted CRD serves one `resources.Resource` per served version
(`resources_of`); its `CustomKind` does what a custom object needs on the way in and
out: `prepare` (schema defaults, then pruning), `validate` (the schema and the scale
replicas), `unknown_fields` (for `fieldValidation`), `scale_of` and `with_replicas` (the
scale subresource). Everything here is pure: no I/O, and inputs are only changed where a
function says so.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from arktos_lite.api import (
    _errors as errors,
    _fields as fields,
    _jsonpath as jsonpath,
    _resources as resources,
    _structural as structural,
    _validation as validation,
)

__all__ = [
    "CLEANUP_FINALIZER",
    "GROUP",
    "MAX_SELECTABLE_FIELDS",
    "SHARING_LABEL",
    "CustomKind",
    "PrinterColumn",
    "ScaleError",
    "ScalePaths",
    "accepted_names",
    "default_crd",
    "forced_shared",
    "name_conflicts",
    "prepare_crd_create",
    "prepare_crd_update",
    "resources_of",
    "validate_crd",
]

GROUP: Final = "apiextensions.k8s.io"
CLEANUP_FINALIZER: Final = "customresourcecleanup.apiextensions.k8s.io"
"""Held by a CRD until its custom objects are deleted."""
SHARING_LABEL: Final = "arktos.futurewei.com/crd-sharing-policy"
"""On a system tenant's CRD, `forced` serves it to every tenant."""
MAX_SELECTABLE_FIELDS: Final = 8

_C = errors.CauseType
_FieldError = errors.FieldError
_INT32_MAX: Final = 2**31 - 1
_SCOPES: Final = ("Cluster", "Namespaced")
_PRINTER_TYPES: Final = ("boolean", "date", "integer", "number", "string")
_PRINTER_FORMATS: Final = (
    "byte",
    "date",
    "date-time",
    "double",
    "float",
    "int32",
    "int64",
    "password",
)
_IMMUTABLE: Final = "field is immutable"
# What the root of a schema may say when the status subresource is on (kube-apiserver
# names them by their Go field names in the message).
_ROOT_WITH_STATUS: Final = {
    "description": "Description",
    "type": "Type",
    "format": "Format",
    "title": "Title",
    "maximum": "Maximum",
    "exclusiveMaximum": "ExclusiveMaximum",
    "minimum": "Minimum",
    "exclusiveMinimum": "ExclusiveMinimum",
    "maxLength": "MaxLength",
    "minLength": "MinLength",
    "pattern": "Pattern",
    "maxItems": "MaxItems",
    "minItems": "MinItems",
    "uniqueItems": "UniqueItems",
    "multipleOf": "MultipleOf",
    "required": "Required",
    "items": "Items",
    "properties": "Properties",
    "externalDocs": "ExternalDocs",
    "example": "Example",
    "x-kubernetes-preserve-unknown-fields": "XPreserveUnknownFields",
    "x-kubernetes-validations": "XValidations",
}


# ---------------------------------------------------------------------------------------
# Reading JSON that nothing has checked yet


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _spec(crd: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(crd.get("spec"))


def _storage_version(crd: Mapping[str, Any]) -> str | None:
    for version in _list(_spec(crd).get("versions")):
        if isinstance(version, Mapping) and version.get("storage") is True:
            return _text(version.get("name"))
    return None


# ---------------------------------------------------------------------------------------
# Defaults and the steps before validation


def default_crd(crd: dict[str, Any]) -> None:
    """kube-apiserver's defaults for a v1 CRD's spec, in place (create and update).

    `names.singular` is the lower-cased kind, `names.listKind` is the kind + `List`, and
    `conversion` is `{"strategy": "None"}`. Printer columns get no defaults (a column
    without `priority` has priority 0).
    """
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict):
        kind = _text(names.get("kind"))
        if not names.get("singular"):
            names["singular"] = kind.lower()
        if not names.get("listKind") and kind:
            names["listKind"] = kind + "List"
    if spec.get("conversion") is None:
        spec["conversion"] = {"strategy": "None"}


def prepare_crd_create(crd: dict[str, Any]) -> None:
    """What a create sets besides defaults, in place: the status and the finalizer.

    The status starts with no conditions, empty accepted names and the storage version
    as the one stored version (as kube-apiserver's create strategy sets it). The cleanup
    finalizer is held from the start, so that deleting the CRD waits for its objects.
    """
    stored = _storage_version(crd)
    crd["status"] = {
        "conditions": [],
        "acceptedNames": {"plural": "", "kind": ""},
        "storedVersions": [stored] if stored else [],
    }
    meta = crd.setdefault("metadata", {})
    if isinstance(meta, dict):
        finalizers = meta.get("finalizers")
        if not isinstance(finalizers, list):
            finalizers = meta["finalizers"] = []
        if CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CLEANUP_FINALIZER)


def prepare_crd_update(crd: dict[str, Any], old: Mapping[str, Any]) -> None:
    """What an update of the spec keeps, in place: the stored status, plus the (possibly
    new) storage version in `status.storedVersions`, as kube-apiserver's strategy does."""
    status = copy.deepcopy(dict(_mapping(old.get("status"))))
    stored = _list(status.get("storedVersions"))
    storage = _storage_version(crd)
    if storage and storage not in stored:
        status["storedVersions"] = [*stored, storage]
    crd["status"] = status


# ---------------------------------------------------------------------------------------
# Validation


class _Found:
    """Collects field errors, one method per cause type."""

    def __init__(self) -> None:
        self.errors: list[errors.FieldError] = []

    def required(self, path: str, detail: str = "") -> None:
        self.errors.append(_FieldError(_C.REQUIRED, path, detail))

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.errors.append(_FieldError(_C.INVALID, path, detail, value))

    def forbidden(self, path: str, detail: str) -> None:
        self.errors.append(_FieldError(_C.FORBIDDEN, path, detail))

    def not_supported(self, path: str, value: Any, supported: Sequence[str], why: str = "") -> None:
        detail = "supported values: " + ", ".join(json.dumps(s) for s in supported)
        self.errors.append(
            _FieldError(_C.NOT_SUPPORTED, path, f"{why}; {detail}" if why else detail, value)
        )

    def duplicate(self, path: str, value: Any) -> None:
        self.errors.append(_FieldError(_C.DUPLICATE, path, "", value))

    def wrong_type(self, path: str, value: Any, expected: str) -> None:
        self.errors.append(_FieldError(_C.TYPE_INVALID, path, f"must be of type {expected}", value))

    def string(self, parent: Mapping[str, Any], key: str, path: str) -> str:
        """The string at `key` ("" if absent or null); a wrong type is reported."""
        value = parent.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.wrong_type(path, value, "string")
            return ""
        return value

    def object(self, parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.wrong_type(path, value, "object")
            return None
        return value

    def array(self, parent: Mapping[str, Any], key: str, path: str) -> list[Any]:
        value = parent.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.wrong_type(path, value, "array")
            return []
        return value


def validate_crd(crd: Mapping[str, Any], old: Mapping[str, Any] | None) -> list[errors.FieldError]:
    """Every problem with a (defaulted, prepared) CRD, an update of `old` if given.

    Generic metadata is `validation.validate`'s business; this adds what a CRD's name must
    be, and everything about its spec and status.
    """
    found = _Found()
    spec = crd.get("spec")
    if spec is not None and not isinstance(spec, Mapping):
        found.wrong_type("spec", spec, "object")
        return found.errors
    spec = _mapping(spec)
    group = found.string(spec, "group", "spec.group")
    names = found.object(spec, "names", "spec.names") or {}
    plural = _text(names.get("plural"))
    name = _text(_mapping(crd.get("metadata")).get("name"))
    if name and name != f"{plural}.{group}":
        found.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group')
    _check_spec(found, spec, group)
    if old is not None:
        _check_spec_update(found, spec, old)
    status = _mapping(crd.get("status"))
    _check_names(found, _mapping(status.get("acceptedNames")), "status.acceptedNames")
    _check_stored_versions(found, spec, status)
    return found.errors


def _check_spec(found: _Found, spec: Mapping[str, Any], group: str) -> None:
    if not group:
        found.required("spec.group")
    elif problems := validation.dns1123_subdomain_problems(group):
        found.invalid("spec.group", group, ",".join(problems))
    elif "." not in group:
        found.invalid("spec.group", group, "should be a domain with at least one dot")
    scope = found.string(spec, "scope", "spec.scope")
    if not scope:
        found.required("spec.scope")
    elif scope not in _SCOPES:
        found.not_supported("spec.scope", scope, _SCOPES)
    if spec.get("preserveUnknownFields") is True:
        found.invalid(
            "spec.preserveUnknownFields",
            True,
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in "
            "spec.versions[*].schema instead",
        )
    _check_versions(found, spec)
    names = _mapping(spec.get("names"))
    for key in ("plural", "singular", "kind", "listKind"):
        if not names.get(key):
            found.required(f"spec.names.{key}")
    _check_names(found, names, "spec.names")
    _check_conversion(found, spec)


def _check_names(found: _Found, names: Mapping[str, Any], path: str) -> None:
    for key in ("plural", "singular"):
        value = found.string(names, key, f"{path}.{key}")
        if value and (problems := validation.dns1035_label_problems(value)):
            found.invalid(f"{path}.{key}", value, ",".join(problems))
    kind = found.string(names, "kind", f"{path}.kind")
    list_kind = found.string(names, "listKind", f"{path}.listKind")
    for key, value in (("kind", kind), ("listKind", list_kind)):
        if value and (problems := validation.dns1035_label_problems(value.lower())):
            detail = "may have mixed case, but should otherwise match: " + ",".join(problems)
            found.invalid(f"{path}.{key}", value, detail)
    for key in ("shortNames", "categories"):
        for index, value in enumerate(found.array(names, key, f"{path}.{key}")):
            item_path = f"{path}.{key}[{index}]"
            if not isinstance(value, str):
                found.wrong_type(item_path, value, "string")
            elif problems := validation.dns1035_label_problems(value):
                found.invalid(item_path, value, ",".join(problems))
    if kind and kind == list_kind:
        found.invalid(f"{path}.listKind", list_kind, "kind and listKind may not be the same")


def _check_versions(found: _Found, spec: Mapping[str, Any]) -> None:
    versions = found.array(spec, "versions", "spec.versions")
    if not versions:
        found.required("spec.versions")
    storage_count = 0
    seen: set[str] = set()
    unique = True
    for index, version in enumerate(versions):
        path = f"spec.versions[{index}]"
        if not isinstance(version, Mapping):
            found.wrong_type(path, version, "object")
            continue
        name = found.string(version, "name", f"{path}.name")
        if name in seen:
            unique = False
        seen.add(name)
        if problems := validation.dns1035_label_problems(name):
            found.invalid(f"{path}.name", name, ",".join(problems))
        for flag in ("served", "storage"):
            value = version.get(flag)
            if value is None and flag == "served":
                found.required(f"{path}.served")
            elif value is not None and not isinstance(value, bool):
                found.wrong_type(f"{path}.{flag}", value, "boolean")
        if version.get("storage") is True:
            storage_count += 1
        _check_version(found, version, path)
    if not unique:
        found.invalid("spec.versions", versions, "must contain unique version names")
    if storage_count != 1:
        found.invalid(
            "spec.versions", versions, "must have exactly one version marked as storage version"
        )


def _check_version(found: _Found, version: Mapping[str, Any], path: str) -> None:
    schema_path = f"{path}.schema.openAPIV3Schema"
    schema_holder = found.object(version, "schema", f"{path}.schema") or {}
    raw = schema_holder.get("openAPIV3Schema")
    subresources = found.object(version, "subresources", f"{path}.subresources") or {}
    parsed: structural.Structural | None = None
    if raw is None:
        found.required(schema_path)
    else:
        if isinstance(raw, Mapping):
            _check_schema_root(
                found, raw, schema_path, status=subresources.get("status") is not None
            )
        try:
            parsed = structural.Structural.parse(raw, path=schema_path)
        except structural.SchemaError as error:
            found.errors.extend(error.errors)
    _check_subresources(found, subresources, f"{path}.subresources", parsed)
    _check_printer_columns(found, version, f"{path}.additionalPrinterColumns")
    selectable = found.array(version, "selectableFields", f"{path}.selectableFields")
    if selectable:
        if raw is None:
            detail = "may only be set when `version.schema.openAPIV3Schema` is not included"
            found.invalid(f"{path}.selectableFields", "", detail)
        elif parsed is not None:
            _check_selectable_fields(found, selectable, parsed.schema, f"{path}.selectableFields")


def _check_schema_root(
    found: _Found, schema: Mapping[str, Any], path: str, *, status: bool
) -> None:
    if status:
        if schema.get("type", "object") != "object":
            detail = 'only "object" is allowed as the type at the root of the schema if the '
            detail += "status subresource is enabled"
            found.invalid(f"{path}.type", schema["type"], detail)
        elif any(key not in _ROOT_WITH_STATUS for key in schema):
            allowed = " ".join(_ROOT_WITH_STATUS.values())
            detail = f"only [{allowed}] fields are allowed at the root of the schema if the "
            detail += "status subresource is enabled"
            found.invalid(path, schema, detail)
    if schema.get("nullable") is True:
        found.forbidden(f"{path}.nullable", "nullable cannot be true at the root")


def _simple_json_path(found: _Found, value: str, path: str) -> bool:
    if not value:
        found.invalid(path, value, "must not be empty")
        return False
    if not value.startswith("."):
        found.invalid(path, value, "must be a simple json path starting with .")
        return False
    return True


def _check_subresources(
    found: _Found,
    subresources: Mapping[str, Any],
    path: str,
    schema: structural.Structural | None,
) -> None:
    status = subresources.get("status")
    if status is not None and status != {}:
        found.invalid(f"{path}.status", status, "must be an empty object")
    scale = found.object(subresources, "scale", f"{path}.scale")
    if scale is None:
        return
    for key, prefixes, where in (
        ("specReplicasPath", (".spec.",), ".spec"),
        ("statusReplicasPath", (".status.",), ".status"),
        ("labelSelectorPath", (".spec.", ".status."), "either .spec or .status"),
    ):
        key_path = f"{path}.scale.{key}"
        value = found.string(scale, key, key_path)
        if not value:
            if key != "labelSelectorPath":
                found.required(key_path)
            continue
        if not _simple_json_path(found, value, key_path):
            continue
        if not value.startswith(prefixes):
            found.invalid(key_path, value, f"should be a json path under {where}")
        elif key == "specReplicasPath" and schema is not None:
            node = _schema_at(schema.schema, value[1:].split("."))
            if node is not None and node.get("type") not in (None, "integer"):
                detail = "must point to a field of type integer in the schema"
                found.invalid(key_path, value, detail)


def _schema_at(schema: Mapping[str, Any], steps: Sequence[str]) -> Mapping[str, Any] | None:
    """The schema of the field at `steps`, or None where the schema does not say."""
    node = schema
    for step in steps:
        properties = _mapping(node.get("properties"))
        if step in properties:
            node = _mapping(properties[step])
        elif isinstance(node.get("additionalProperties"), Mapping):
            node = node["additionalProperties"]
        else:
            return None
    return node


def _check_printer_columns(found: _Found, version: Mapping[str, Any], path: str) -> None:
    seen: set[str] = set()
    for index, column in enumerate(found.array(version, "additionalPrinterColumns", path)):
        column_path = f"{path}[{index}]"
        if not isinstance(column, Mapping):
            found.wrong_type(column_path, column, "object")
            continue
        name = found.string(column, "name", f"{column_path}.name")
        if not name:
            found.required(f"{column_path}.name")
        elif name in seen:
            found.duplicate(f"{column_path}.name", name)
        seen.add(name)
        type_ = found.string(column, "type", f"{column_path}.type")
        must = "must be one of " + ",".join(_PRINTER_TYPES)
        if not type_:
            found.required(f"{column_path}.type", must)
        elif type_ not in _PRINTER_TYPES:
            found.invalid(f"{column_path}.type", type_, must)
        format_ = found.string(column, "format", f"{column_path}.format")
        if format_ and format_ not in _PRINTER_FORMATS:
            found.invalid(
                f"{column_path}.format", format_, "must be one of " + ",".join(_PRINTER_FORMATS)
            )
        priority = column.get("priority")
        if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)):
            found.wrong_type(f"{column_path}.priority", priority, "integer")
        json_path = found.string(column, "jsonPath", f"{column_path}.jsonPath")
        # kube-apiserver names the field by its Go name here.
        where = f"{column_path}.JSONPath"
        if not json_path:
            found.required(where)
        elif _simple_json_path(found, json_path, where):
            try:
                jsonpath.parse(json_path)
            except jsonpath.JSONPathError as error:
                found.invalid(where, json_path, f"is an invalid JSONPath: {error}")


class _PathError(ValueError):
    pass


def _field_steps(text: str) -> list[str]:
    """The field names of a selectable field's path (`.spec.color`), as kube-apiserver
    reads them when array notation is not allowed."""
    tokens = _tokens(text)
    steps: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "[":
            raise _PathError("array notation is not allowed")
        if token != ".":
            raise _PathError(f"expected [ or . but got: {token}")
        if index + 1 >= len(tokens):
            raise _PathError("unexpected end of JSON path")
        steps.append(tokens[index + 1])
        index += 2
    return steps


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    current = ""
    for char in text:
        if char in ".[]":
            if current:
                tokens.append(current)
                current = ""
            tokens.append(char)
        else:
            current += char
    if current:
        tokens.append(current)
    return tokens


def _check_selectable_fields(
    found: _Found, selectable: list[Any], schema: Mapping[str, Any], path: str
) -> None:
    unique: set[str] = set()
    for index, entry in enumerate(selectable):
        where = f"{path}[{index}].jsonPath"
        text = found.string(_mapping(entry), "jsonPath", where)
        if not text:
            found.required(where)
            continue
        try:
            steps = _field_steps(text)
            node = _selectable_schema(schema, steps)
        except _PathError as error:
            found.invalid(where, text, f"is an invalid path: {error}")
            continue
        if steps and steps[0] == "metadata":
            found.invalid(where, text, "must not point to fields in metadata")
        if node.get("type") not in ("string", "boolean", "integer"):
            detail = "must point to a field of type string, boolean or integer. Enum string "
            detail += "fields and strings with formats are allowed."
            found.invalid(where, text, detail)
        key = ".".join(steps)
        if key in unique:
            found.duplicate(where, text)
        unique.add(key)
    if len(unique) > MAX_SELECTABLE_FIELDS:
        detail = f"must have at most {MAX_SELECTABLE_FIELDS} items"
        found.errors.append(_FieldError(_C.TOO_MANY, path, detail, len(unique)))


def _selectable_schema(schema: Mapping[str, Any], steps: Sequence[str]) -> Mapping[str, Any]:
    node = schema
    for step in steps:
        properties = node.get("properties")
        additional = node.get("additionalProperties")
        if isinstance(properties, Mapping):
            if step not in properties:
                raise _PathError("does not refer to a valid field")
            node = properties[step]
        elif isinstance(additional, Mapping):
            node = additional
        else:
            raise _PathError("does not refer to a valid field")
    return node


def _check_conversion(found: _Found, spec: Mapping[str, Any]) -> None:
    conversion = found.object(spec, "conversion", "spec.conversion")
    if conversion is None:
        return
    strategy = found.string(conversion, "strategy", "spec.conversion.strategy")
    if not strategy:
        found.required("spec.conversion.strategy")
    elif strategy == "Webhook":
        why = "webhook conversion is not supported by this server"
        found.not_supported("spec.conversion.strategy", strategy, ["None"], why)
    elif strategy != "None":
        found.not_supported("spec.conversion.strategy", strategy, ["None", "Webhook"])
    if strategy != "Webhook" and conversion.get("webhook") is not None:
        detail = "should not be set when strategy is not set to Webhook"
        found.forbidden("spec.conversion.webhook", detail)


def _established(crd: Mapping[str, Any]) -> bool:
    conditions = _list(_mapping(crd.get("status")).get("conditions"))
    return any(
        isinstance(c, Mapping) and c.get("type") == "Established" and c.get("status") == "True"
        for c in conditions
    )


def _check_spec_update(found: _Found, spec: Mapping[str, Any], old: Mapping[str, Any]) -> None:
    old_spec = _spec(old)
    names, old_names = _mapping(spec.get("names")), _mapping(old_spec.get("names"))
    immutable: list[tuple[str, Any, Any]] = [
        ("spec.group", spec.get("group"), old_spec.get("group")),
        ("spec.names.plural", names.get("plural"), old_names.get("plural")),
    ]
    if _established(old):
        # These decide where and how the objects are stored.
        immutable[:0] = [
            ("spec.scope", spec.get("scope"), old_spec.get("scope")),
            ("spec.names.kind", names.get("kind"), old_names.get("kind")),
        ]
    for path, value, old_value in immutable:
        if value != old_value:
            found.invalid(path, value, _IMMUTABLE)


def _check_stored_versions(
    found: _Found, spec: Mapping[str, Any], status: Mapping[str, Any]
) -> None:
    path = "status.storedVersions"
    stored = [v for v in _list(status.get("storedVersions")) if isinstance(v, str)]
    if not stored:
        found.invalid(path, stored, "must have at least one stored version")
        return
    versions = [v for v in _list(spec.get("versions")) if isinstance(v, Mapping)]
    names = {_text(v.get("name")) for v in versions}
    for version in versions:
        name = _text(version.get("name"))
        if version.get("storage") is True and name not in stored:
            found.invalid(path, stored, f"must have the storage version {name}")
    for index, name in enumerate(stored):
        if name not in names:
            detail = (
                f"missing from spec.versions; {name} was previously a storage version, and must "
                f"remain in spec.versions until a storage migration ensures no data remains "
                f"persisted in {name} and removes {name} from status.storedVersions"
            )
            found.invalid(f"{path}[{index}]", name, detail)


# ---------------------------------------------------------------------------------------
# Sharing and names


def forced_shared(crd: Mapping[str, Any]) -> bool:
    """Whether the CRD asks to be served to every tenant (only the system tenant's may)."""
    labels = _mapping(_mapping(crd.get("metadata")).get("labels"))
    return labels.get(SHARING_LABEL) == "forced"


def accepted_names(crd: Mapping[str, Any]) -> dict[str, Any]:
    """The `status.acceptedNames` of a (defaulted) CRD whose names are accepted."""
    names = _mapping(_spec(crd).get("names"))
    accepted: dict[str, Any] = {
        "plural": _text(names.get("plural")),
        "singular": _text(names.get("singular")),
    }
    short_names = [n for n in _list(names.get("shortNames")) if isinstance(n, str)]
    if short_names:
        accepted["shortNames"] = short_names
    accepted["kind"] = _text(names.get("kind"))
    accepted["listKind"] = _text(names.get("listKind"))
    categories = [c for c in _list(names.get("categories")) if isinstance(c, str)]
    if categories:
        accepted["categories"] = categories
    return accepted


def _identity(crd: Mapping[str, Any]) -> tuple[str, str]:
    meta = _mapping(crd.get("metadata"))
    return _text(meta.get("tenant")), _text(meta.get("name"))


def name_conflicts(crd: Mapping[str, Any], accepted: Sequence[Mapping[str, Any]]) -> str | None:
    """Why `crd`'s names cannot be accepted next to `accepted` (CRDs of the same view whose
    `status.acceptedNames` are reserved); None if they can.

    Within one group, plural, singular and short names must not be another CRD's plural,
    singular or short name, and kind and list kind not another's kind or list kind. The
    message is the NamingConditionController's (the last conflict found, as it reports).
    `crd` itself may be among `accepted`; it never conflicts with itself.
    """
    spec = _spec(crd)
    group = spec.get("group")
    resource_names: set[str] = set()
    kind_names: set[str] = set()
    me = _identity(crd)
    for other in accepted:
        if _spec(other).get("group") != group or _identity(other) == me:
            continue
        names = _mapping(_mapping(other.get("status")).get("acceptedNames"))
        resource_names.update(
            n
            for n in (names.get("plural"), names.get("singular"), *_list(names.get("shortNames")))
            if isinstance(n, str) and n
        )
        kind_names.update(
            n for n in (names.get("kind"), names.get("listKind")) if isinstance(n, str) and n
        )
    requested = _mapping(spec.get("names"))
    message: str | None = None
    for key in ("plural", "singular"):
        if (value := _text(requested.get(key))) in resource_names:
            message = f"{json.dumps(value)} is already in use"
    clashes = [
        f"{json.dumps(n)} is already in use"
        for n in _list(requested.get("shortNames"))
        if isinstance(n, str) and n in resource_names
    ]
    if clashes:
        message = clashes[0] if len(clashes) == 1 else "[" + ", ".join(clashes) + "]"
    for key in ("kind", "listKind"):
        if (value := _text(requested.get(key))) in kind_names:
            message = f"{json.dumps(value)} is already in use"
    return message


# ---------------------------------------------------------------------------------------
# Custom resources


@dataclasses.dataclass(frozen=True, slots=True)
class PrinterColumn:
    """One `additionalPrinterColumns` entry of a CRD version."""

    name: str
    type: str
    json_path: str
    format: str = ""
    description: str = ""
    priority: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class ScalePaths:
    """Where a custom object keeps what its scale subresource shows (`.spec.replicas`)."""

    spec_replicas: str
    status_replicas: str
    label_selector: str | None = None


class ScaleError(ValueError):
    """A custom object's scale paths hold values of the wrong type (kube-apiserver: 500)."""


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class CustomKind:
    """What one served version of a CRD says about its objects."""

    crd_name: str
    tenant: str
    shared: bool
    storage_version: str
    schema: structural.Structural
    printer_columns: tuple[PrinterColumn, ...]
    scale: ScalePaths | None
    list_kind: str

    def prepare(self, obj: dict[str, Any]) -> list[str]:
        """Apply the schema's defaults, then prune unknown fields, in place; return the
        pruned paths as kube-apiserver reports them (`spec.foo`, `spec.items[0].bar`,
        `spec.someMap.key.baz`), sorted. `apiVersion`, `kind` and `metadata` stay."""
        self.schema.default(obj)
        return _reported(self.schema.schema, self.schema.prune(obj))

    def validate(
        self, obj: Mapping[str, Any], old: Mapping[str, Any] | None
    ) -> list[errors.FieldError]:
        """Value validation of a prepared object against the schema (what an update leaves
        as it was in `old` is not checked again), and of its scale replicas; generic
        metadata is not checked here."""
        found = self.schema.validate(obj, old=old)
        if self.scale is not None:
            for path in (self.scale.spec_replicas, self.scale.status_replicas):
                found.extend(_replicas_problems(obj, path))
            if self.scale.label_selector:
                try:
                    _read(obj, self.scale.label_selector, want=str)
                except ScaleError as error:
                    found.append(_FieldError(_C.INVALID, self.scale.label_selector, str(error), ""))
        return found

    def unknown_fields(self, body: Any, *, body_type: fields.Body) -> list[str]:
        """The unknown fields a request body would add (for `fieldValidation`), sorted."""
        if body_type in (fields.Body.OBJECT, fields.Body.APPLY):
            return self._pruned(copy.deepcopy(body))
        if body_type is fields.Body.MERGE_PATCH:
            return self._pruned(_without_nulls(body))
        if body_type is fields.Body.JSON_PATCH:
            found: set[str] = set()
            for operation in _list(body):
                found.update(self._operation_unknowns(operation))
            return sorted(found)
        return []

    def _pruned(self, obj: Any) -> list[str]:
        if not isinstance(obj, dict):
            return []
        return _reported(self.schema.schema, self.schema.prune(obj))

    def _operation_unknowns(self, operation: Any) -> list[str]:
        if not isinstance(operation, Mapping) or operation.get("op") not in (
            "add",
            "replace",
            "copy",
            "move",
        ):
            return []
        pointer = operation.get("path")
        if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
            return []
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
        value = copy.deepcopy(operation.get("value"))
        if not tokens:
            return self._pruned(value) if operation.get("op") in ("add", "replace") else []
        if tokens[0] in ("apiVersion", "kind", "metadata"):
            return []
        node: Mapping[str, Any] = self.schema.schema
        path = ""
        for token in tokens:
            if node.get("x-kubernetes-preserve-unknown-fields") is True:
                return []
            properties = node.get("properties")
            additional = node.get("additionalProperties")
            items = node.get("items")
            if isinstance(properties, Mapping) and token in properties:
                path, node = f"{path}.{token}" if path else token, properties[token]
            elif isinstance(additional, Mapping):
                path, node = f"{path}.{token}", additional
            elif additional is True:
                return []
            elif isinstance(items, Mapping):
                path, node = f"{path}[{token}]", items
            else:
                return [f"{path}.{token}" if path else token]
        if operation.get("op") not in ("add", "replace"):
            return []
        wrapper = structural.Structural({"type": "object", "properties": {"v": node}})
        pruned = _reported(wrapper.schema, wrapper.prune({"v": value}))
        return [path + p[1:] for p in pruned]

    def scale_of(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The `autoscaling/v1` Scale of a custom object, as kube-apiserver serves it.

        Raises `ScaleError` if a path holds a value of the wrong type.
        """
        if self.scale is None:
            raise ScaleError("the kind has no scale subresource")
        meta = _mapping(obj.get("metadata"))
        scale_meta = {
            key: meta[key]
            for key in (
                "name",
                "namespace",
                "tenant",
                "uid",
                "resourceVersion",
                "creationTimestamp",
            )
            if meta.get(key)
        }
        spec_replicas = _read(obj, self.scale.spec_replicas, want=int)
        status_replicas = _read(obj, self.scale.status_replicas, want=int)
        status: dict[str, Any] = {"replicas": status_replicas or 0}
        if self.scale.label_selector:
            selector = _read(obj, self.scale.label_selector, want=str)
            if selector:
                status["selector"] = selector
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": scale_meta,
            "spec": {"replicas": spec_replicas or 0},
            "status": status,
        }

    def with_replicas(self, obj: Mapping[str, Any], replicas: int) -> dict[str, Any]:
        """A deep copy of `obj` with the spec replicas path set to `replicas`.

        Raises `ScaleError` if a step of the path holds something other than an object.
        """
        if self.scale is None:
            raise ScaleError("the kind has no scale subresource")
        updated = copy.deepcopy(dict(obj))
        _write(updated, self.scale.spec_replicas, replicas)
        return updated


def _reported(schema: Mapping[str, Any], paths: Sequence[str]) -> list[str]:
    """Pruned paths as kube-apiserver reports them: a map's key is a step like a field
    (`spec.labels.team`), a list's index stays in brackets; sorted, without repeats."""
    return sorted({_reported_path(schema, path) for path in paths})


def _reported_path(schema: Mapping[str, Any], path: str) -> str:
    node: Mapping[str, Any] = schema
    out = ""
    index = 0
    while index < len(path):
        if path[index] == "[":
            end = path.find("]", index)
            end = len(path) if end < 0 else end
            key = path[index + 1 : end]
            index = end + 1
            if isinstance(node.get("items"), Mapping):
                out, node = f"{out}[{key}]", node["items"]
            elif isinstance(node.get("additionalProperties"), Mapping):
                out, node = f"{out}.{key}", node["additionalProperties"]
            else:
                out, node = f"{out}[{key}]", {}
            continue
        if path[index] == ".":
            index += 1
        end = len(path)
        for stop in (".", "["):
            found = path.find(stop, index)
            if found >= 0:
                end = min(end, found)
        name = path[index:end]
        index = end
        out = f"{out}.{name}" if out else name
        node = _mapping(_mapping(node.get("properties")).get(name))
    return out


def _without_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return copy.deepcopy(value)


def _steps(path: str) -> list[str]:
    """The field names of a simple dotted path: `.spec.replicas` -> [spec, replicas]."""
    return path.removeprefix(".").split(".")


_GO_TYPES: Final = {
    bool: "bool",
    int: "int64",
    float: "float64",
    str: "string",
    dict: "map[string]interface {}",
    list: "[]interface {}",
}


def _go_type(value: Any) -> str:
    if value is None:
        return "<nil>"
    return next((name for kind, name in _GO_TYPES.items() if isinstance(value, kind)), "unknown")


def _go_value(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _read(obj: Mapping[str, Any], path: str, *, want: type) -> Any:
    """The value at a simple dotted path (None if absent), as apimachinery's NestedInt64
    and NestedString read it; a value of the wrong type raises `ScaleError`."""
    steps = _steps(path)
    value: Any = obj
    for index, step in enumerate(steps):
        if not isinstance(value, Mapping):
            where = "." + ".".join(steps[:index])
            raise ScaleError(
                f"{where} accessor error: {_go_value(value)} is of the type {_go_type(value)}, "
                "expected map[string]interface{}"
            )
        if step not in value:
            return None
        value = value[step]
    ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
    if not ok:
        expected = "int64" if want is int else "string"
        raise ScaleError(
            f"{'.' + '.'.join(steps)} accessor error: {_go_value(value)} is of the type "
            f"{_go_type(value)}, expected {expected}"
        )
    return value


def _write(obj: dict[str, Any], path: str, value: Any) -> None:
    steps = _steps(path)
    node = obj
    for index, step in enumerate(steps[:-1]):
        child = node.setdefault(step, {})
        if not isinstance(child, dict):
            where = "." + ".".join(steps[: index + 1])
            raise ScaleError(
                f"value cannot be set because {where} is not a map[string]interface{{}}"
            )
        node = child
    node[steps[-1]] = value


def _replicas_problems(obj: Mapping[str, Any], path: str) -> list[errors.FieldError]:
    try:
        replicas = _read(obj, path, want=int)
    except ScaleError as error:
        return [_FieldError(_C.INVALID, path, str(error), 0)]
    if replicas is None:
        return []
    if replicas < 0:
        return [_FieldError(_C.INVALID, path, "should be a non-negative integer", replicas)]
    if replicas > _INT32_MAX:
        detail = f"should be less than or equal to {_INT32_MAX}"
        return [_FieldError(_C.INVALID, path, detail, replicas)]
    return []


def resources_of(crd: Mapping[str, Any], *, tenant: str) -> tuple[resources.Resource, ...]:
    """The resources a valid CRD of `tenant` serves: one per served version, in spec order.

    Names are the accepted ones (`status.acceptedNames`) once accepted, else the spec's.
    A `Namespaced` CRD serves namespaced objects; a `Cluster` one serves tenant-scoped
    objects (Arktos keeps them per tenant). Raises `structural.SchemaError` if a served
    version's schema is not valid (validate the CRD first).
    """
    spec = _spec(crd)
    group = _text(spec.get("group"))
    names = _mapping(spec.get("names"))
    accepted = _mapping(_mapping(crd.get("status")).get("acceptedNames"))
    if accepted.get("plural") and accepted.get("kind"):
        names = accepted
    kind = _text(names.get("kind"))
    list_kind = _text(names.get("listKind")) or kind + "List"
    scope = (
        resources.Scope.NAMESPACE if spec.get("scope") == "Namespaced" else resources.Scope.TENANT
    )
    storage = _storage_version(crd) or ""
    shared = tenant == resources.SYSTEM_TENANT and forced_shared(crd)
    crd_name = _text(_mapping(crd.get("metadata")).get("name"))
    served: list[resources.Resource] = []
    for index, version in enumerate(_list(spec.get("versions"))):
        if not isinstance(version, Mapping) or version.get("served") is not True:
            continue
        schema_path = f"spec.versions[{index}].schema.openAPIV3Schema"
        raw = _mapping(_mapping(version.get("schema")).get("openAPIV3Schema"))
        subresources = _mapping(version.get("subresources"))
        custom = CustomKind(
            crd_name=crd_name,
            tenant=tenant,
            shared=shared,
            storage_version=storage,
            schema=structural.Structural.parse(raw, path=schema_path),
            printer_columns=tuple(_printer_columns(version)),
            scale=_scale_paths(subresources),
            list_kind=list_kind,
        )
        served.append(
            resources.Resource(
                group,
                _text(version.get("name")),
                kind,
                _text(names.get("plural")),
                scope,
                short_names=tuple(n for n in _list(names.get("shortNames")) if isinstance(n, str)),
                categories=tuple(c for c in _list(names.get("categories")) if isinstance(c, str)),
                subresources=frozenset(
                    s for s in ("status", "scale") if subresources.get(s) is not None
                ),
                field_labels=frozenset(
                    _text(_mapping(f).get("jsonPath")).removeprefix(".")
                    for f in _list(version.get("selectableFields"))
                ),
                custom=custom,
                singular_name=_text(names.get("singular")),
            )
        )
    return tuple(served)


def _printer_columns(version: Mapping[str, Any]) -> Iterator[PrinterColumn]:
    for column in _list(version.get("additionalPrinterColumns")):
        column = _mapping(column)
        priority = column.get("priority")
        yield PrinterColumn(
            name=_text(column.get("name")),
            type=_text(column.get("type")),
            json_path=_text(column.get("jsonPath")),
            format=_text(column.get("format")),
            description=_text(column.get("description")),
            priority=priority
            if isinstance(priority, int) and not isinstance(priority, bool)
            else 0,
        )


def _scale_paths(subresources: Mapping[str, Any]) -> ScalePaths | None:
    scale = subresources.get("scale")
    if not isinstance(scale, Mapping):
        return None
    return ScalePaths(
        spec_replicas=_text(scale.get("specReplicasPath")),
        status_replicas=_text(scale.get("statusReplicasPath")),
        label_selector=_text(scale.get("labelSelectorPath")) or None,
    )
