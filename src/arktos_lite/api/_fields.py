"""Field validation: which fields of an object, or of a patch, its kind's schema does not know.

kube-apiserver decodes every body into its Go type and reports the fields that had nowhere
to go (`fieldValidation=Strict` rejects them, `Warn` warns about them). Here the schemas
of `_schema.definitions()` play the Go types: a field is unknown when an object schema
with `properties` does not name it. Maps (`additionalProperties`) take any key; free-form
objects (no properties, such as `RawExtension` and `FieldsV1`) and anything marked
`x-kubernetes-preserve-unknown-fields` take anything; int-or-string and quantities are
scalars. Kinds without a schema have no unknown fields.

Paths read as kube-apiserver writes them: `spec.template.spec.containers[0].foo`; a map's
key is a path step like a field (`metadata.labels.app`). Wrong types are not reported
here: they are validation's business.

Patches are checked for the fields they would add, before anything is stored: a merge or
strategic merge patch as a partial object (directives such as `$patch` and
`$setElementOrder/...` are not fields; `null`, which removes, adds nothing), a JSON patch
by the `path` of its `add`, `replace`, `copy` and `move` operations and the values it adds.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any, Final

from arktos_lite.api import _schema as schema

_REF_PREFIX: Final = "#/$defs/"
_PRESERVE: Final = "x-kubernetes-preserve-unknown-fields"
# Values with nothing below them: the walk does not descend into them.
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
# Schema nodes (they live as long as the definitions) -> what their `$ref`s lead to.
_RESOLVED: dict[int, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}


class Body(enum.StrEnum):
    """What a request body is: a whole object, or one of the patches (by content type)."""

    OBJECT = "object"
    """A whole object, as created or updated."""
    APPLY = "application/apply-patch+yaml"
    """A server-side apply patch: a whole object too, of the fields the manager owns."""
    JSON_PATCH = "application/json-patch+json"
    MERGE_PATCH = "application/merge-patch+json"
    STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


@dataclasses.dataclass(frozen=True, slots=True)
class Unknown:
    """The unknown fields of one request body, and how kube-apiserver words them."""

    group: str
    version: str
    kind: str
    body: Body
    paths: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.paths)

    def warnings(self) -> list[str]:
        """One warning per field, as `fieldValidation=Warn` sends them."""
        return [f'unknown field "{path}"' for path in self.paths]

    def error_message(self) -> str:
        """The message of the 400 that `fieldValidation=Strict` answers with."""
        if self.body is Body.APPLY:
            # Server-side apply reports fields the way structured-merge-diff does.
            errors = [f".{path}: field not declared in schema" for path in self.paths]
            listed = errors[0] if len(errors) == 1 else "errors:\n  " + "\n  ".join(errors)
            gv = f"{self.group}/{self.version}"
            return f"failed to create typed patch object ({gv}, Kind={self.kind}): {listed}"
        strict = "strict decoding error: " + ", ".join(self.warnings())
        if self.body is Body.OBJECT:
            return (
                f'{self.kind} in version "{self.version}" cannot be handled as a '
                f"{self.kind}: {strict}"
            )
        return strict


def check(group: str, version: str, kind: str, value: Any, *, body: Body) -> Unknown:
    """The unknown fields of a request body of type `body` for group/version/kind."""
    if body in (Body.OBJECT, Body.APPLY):
        paths = unknown_fields(group, version, kind, value)
    else:
        paths = unknown_patch_fields(group, version, kind, value, body=body)
    return Unknown(group, version, kind, body, tuple(paths))


def unknown_fields(group: str, version: str, kind: str, obj: Any) -> list[str]:
    """The paths of the fields in `obj` that the schema of group/version/kind lacks."""
    root = _root(group, version, kind)
    if root is None:
        return []
    walker = _Walker(patch=False, directives=False)
    walker.walk(obj, root, "")
    return walker.found()


def unknown_patch_fields(
    group: str, version: str, kind: str, patch: Any, *, body: Body
) -> list[str]:
    """The paths of the unknown fields that a patch would add to an object of the kind."""
    root = _root(group, version, kind)
    if root is None:
        return []
    walker = _Walker(patch=True, directives=body is Body.STRATEGIC_MERGE_PATCH)
    if body is Body.JSON_PATCH:
        if isinstance(patch, list):
            for operation in patch:
                walker.operation(operation, root)
    else:
        walker.walk(patch, root, "")
    return walker.found()


def _root(group: str, version: str, kind: str) -> Mapping[str, Any] | None:
    name = schema.definition_for(group, version, kind)
    return None if name is None else schema.definitions()[name]


def _resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow `$ref`s; of the referring schema's own keys only preserve-unknown matters."""
    cached = _RESOLVED.get(id(node))
    # The entry holds its node, so the id cannot have been reused by another object.
    if cached is not None and cached[0] is node:
        return cached[1]
    resolved = _follow(node)
    _RESOLVED[id(node)] = (node, resolved)
    return resolved


def _follow(node: Mapping[str, Any]) -> Mapping[str, Any]:
    defs = schema.definitions()
    hops = 0
    while isinstance(ref := node.get("$ref"), str) and not node.get(_PRESERVE):
        hops += 1
        if hops > 32 or not ref.startswith(_REF_PREFIX):
            raise ValueError(f"unsupported $ref {ref!r}")
        node = defs[ref.removeprefix(_REF_PREFIX)]
    return node


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _pointer(text: Any) -> list[str] | None:
    """RFC 6901 reference tokens, or None if `text` is not a JSON pointer."""
    if not isinstance(text, str) or (text and not text.startswith("/")):
        return None
    if not text:
        return []
    return [token.replace("~1", "/").replace("~0", "~") for token in text[1:].split("/")]


class _Walker:
    """Collects unknown paths. `patch`: nulls delete; `directives`: `$` keys are not fields."""

    def __init__(self, *, patch: bool, directives: bool) -> None:
        self.patch = patch
        self.directives = directives
        self._found: dict[str, None] = {}

    def found(self) -> list[str]:
        return list(self._found)

    def walk(self, value: Any, node: Mapping[str, Any], path: str) -> None:
        # Runs for every map and list of every body checked: scalars are skipped before
        # the call, and a path is built only for a field that is descended into.
        if value.__class__ in _SCALARS:
            return
        node = _resolve(node)
        if node.get(_PRESERVE):
            return
        if isinstance(value, Mapping):
            properties = node.get("properties")
            values = node.get("additionalProperties")
            if isinstance(properties, Mapping):
                directives, patch, found = self.directives, self.patch, self._found
                for key, item in value.items():
                    if not isinstance(key, str) or (directives and key.startswith("$")):
                        continue
                    if patch and item is None:
                        continue
                    field = properties.get(key)
                    if field is None:
                        found[_join(path, key)] = None
                    elif item.__class__ not in _SCALARS:
                        self.walk(item, field, _join(path, key))
            elif isinstance(values, Mapping):
                for key, item in value.items():
                    if not isinstance(key, str) or (self.directives and key.startswith("$")):
                        continue
                    if item.__class__ not in _SCALARS:
                        self.walk(item, values, _join(path, key))
        elif isinstance(value, list):
            items = node.get("items")
            if isinstance(items, Mapping):
                for index, item in enumerate(value):
                    if item.__class__ not in _SCALARS:
                        self.walk(item, items, f"{path}[{index}]")

    def operation(self, operation: Any, root: Mapping[str, Any]) -> None:
        """One JSON patch operation: where it writes, and for add and replace what."""
        if not isinstance(operation, Mapping):
            return
        op = operation.get("op")
        if op not in ("add", "replace", "copy", "move"):
            return
        tokens = _pointer(operation.get("path"))
        if tokens is None:
            return
        node, path = root, ""
        for token in tokens:
            node = _resolve(node)
            if node.get(_PRESERVE):
                return
            properties = node.get("properties")
            values = node.get("additionalProperties")
            items = node.get("items")
            if isinstance(properties, Mapping):
                path = _join(path, token)
                if token not in properties:
                    self._found[path] = None
                    return
                node = properties[token]
            elif isinstance(values, Mapping):
                path, node = _join(path, token), values
            elif isinstance(items, Mapping):
                path, node = f"{path}[{token}]", items
            else:
                return
        if op in ("add", "replace"):
            self.walk(operation.get("value"), node, path)
