"""The three PATCH bodies of the Kubernetes API, applied to JSON values.

* `merge_patch`: RFC 7386 JSON merge patch (`application/merge-patch+json`).
* `json_patch`: RFC 6902 JSON patch (`application/json-patch+json`).
* `strategic_merge_patch`: Kubernetes strategic merge patch
  (`application/strategic-merge-patch+json`), driven by the schemas in `_schema`.

All three are pure: they never change their arguments and return a new value that shares
nothing mutable with them.

Errors are the `Status` errors kube-apiserver's patch handler answers with:

* A JSON patch that is not a list of operation objects, or whose `op`, `path` or `from`
  is not a string, is `errors.BadRequest` (400). More than 10,000 operations is
  `errors.RequestEntityTooLarge` (413).
* A JSON patch that cannot be applied (unknown `op`, a missing member, a path that does
  not exist, an index out of range, a failed `test`) is `errors.Invalid` (422) with
  kube-apiserver's fixed message "the server rejected our request due to an error in our
  request": the handler wraps the failure in `NewGenericServerResponse(422, ...)`, which
  drops the detail. Here the detail is kept as the error's `__cause__`, for logs.
* A strategic merge patch with a malformed directive, a list item without its merge key
  or an unknown `$patch` value is `errors.BadRequest` (400); a list of lists is
  `errors.Invalid` (422) with the same fixed message. (kube-apiserver answers 400 and 422
  for these too, except the few it leaves as bare Go errors, which become 500; those are
  the client's mistakes, so they are 400 here.)
* Strategic merge patch needs a schema: with `definition` None (a custom resource, or any
  kind without one) it raises `errors.UnsupportedMediaType` (415), as kube-apiserver does
  for custom resources, so the caller can offer merge patch instead.

Where kube-apiserver leaves a patch's leftovers in the object, these functions clean them:
a value that lands where there was nothing to merge with (a new field, a new list item, a
`$patch: replace`) is itself applied as a patch to an empty value, so nulls and
directives inside it do not end up stored. `$deleteFromPrimitiveList/<f>` on a list that
does not exist changes nothing (kube-apiserver would create the list from it). `$patch:
merge` is accepted as the default it names (kube-apiserver rejects it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Final

from arktos_lite.api import _errors as errors, _schema as schema

REJECTED: Final = "the server rejected our request due to an error in our request"
"""kube-apiserver's message for a patch that is well formed but cannot be applied (422)."""

SMP_UNSUPPORTED: Final = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)
"""kube-apiserver's message when strategic merge patch is sent for a custom resource."""

MAX_JSON_PATCH_OPERATIONS: Final = 10_000

_DIRECTIVE: Final = "$patch"
_RETAIN_KEYS: Final = "$retainKeys"
_DELETE_FROM_PRIMITIVE_LIST: Final = "$deleteFromPrimitiveList"
_SET_ELEMENT_ORDER: Final = "$setElementOrder"


class PatchApplyError(ValueError):
    """Why a well-formed patch could not be applied; the `__cause__` of `errors.Invalid`."""


# --- RFC 7386 merge patch -----------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """`target` with RFC 7386 merge `patch` applied.

    Objects merge key by key, `null` removes a key, anything else (arrays included)
    replaces the target value.
    """
    return _merge(_copy(target), patch)


def _merge(owned: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return _copy(patch)
    result = owned if isinstance(owned, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


# --- RFC 6902 JSON patch ------------------------------------------------------------------


def json_patch(target: Any, operations: Any) -> Any:
    """`target` with the RFC 6902 `operations` applied in order, all or nothing.

    Raises `errors.BadRequest` for a malformed operation list, `errors.RequestEntityTooLarge`
    for more than 10,000 operations and `errors.Invalid` for one that cannot be applied.
    """
    ops = _decode_operations(operations)
    document = _copy(target)
    for index, op in enumerate(ops):
        try:
            document = _apply_operation(document, op)
        except PatchApplyError as error:
            raise errors.Invalid(REJECTED) from PatchApplyError(f"operation {index}: {error}")
    return document


_GO_TYPE_NAMES: Final = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "bool",
    type(None): "null",
}


def _json_type(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number"
    return _GO_TYPE_NAMES.get(type(value), type(value).__name__)


def _decode_operations(operations: Any) -> list[Mapping[str, Any]]:
    """Check what kube-apiserver checks while decoding, before applying anything."""
    if operations is None:
        return []
    if not isinstance(operations, list):
        raise errors.BadRequest(
            f"json: cannot unmarshal {_json_type(operations)} into Go value of type jsonpatch.Patch"
        )
    for op in operations:
        if not isinstance(op, dict):
            raise errors.BadRequest(
                f"json: cannot unmarshal {_json_type(op)} into Go value of type jsonpatch.Operation"
            )
        for member in ("op", "path", "from"):
            value = op.get(member)
            if value is not None and not isinstance(value, str):
                raise errors.BadRequest(
                    f"error decoding patch: json: cannot unmarshal {_json_type(value)} into "
                    f"Go struct field jsonPatchOp.{member} of type string"
                )
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise errors.RequestEntityTooLarge(
            "Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(operations)}"
        )
    return operations


_BAD_ESCAPE: Final = re.compile(r"~(?![01])")
_ARRAY_INDEX: Final = re.compile(r"0|[1-9][0-9]*")


def _pointer(text: str) -> list[str]:
    """RFC 6901: `""` is the whole document, `/a/b` two tokens, `~1` is `/`, `~0` is `~`."""
    if text == "":
        return []
    if not text.startswith("/"):
        raise PatchApplyError(f"JSON pointer {text!r} does not start with '/'")
    if _BAD_ESCAPE.search(text):
        raise PatchApplyError(f"JSON pointer {text!r} has an invalid '~' escape")
    return [token.replace("~1", "/").replace("~0", "~") for token in text[1:].split("/")]


def _member(op: Mapping[str, Any], name: str) -> Any:
    if name not in op or (name != "value" and op[name] is None):
        raise PatchApplyError(f"{op.get('op')} operation is missing {name!r}")
    return op[name]


def _apply_operation(document: Any, op: Mapping[str, Any]) -> Any:
    kind = op.get("op")
    path = _pointer(_member(op, "path"))
    if kind == "add":
        return _add(document, path, value=_copy(_member(op, "value")))
    if kind == "remove":
        _remove(document, path)
        return document
    if kind == "replace":
        value = _copy(_member(op, "value"))
        if not path:
            return value
        parent, token = _parent(document, path)
        _set_existing(parent, token, value=value, path=path)
        return document
    if kind == "move":
        source = _pointer(_member(op, "from"))
        if source == path:
            _get(document, source)
            return document
        if path[: len(source)] == source:
            raise PatchApplyError("a value cannot be moved into one of its children")
        return _add(document, path, value=_remove(document, source))
    if kind == "copy":
        source = _pointer(_member(op, "from"))
        return _add(document, path, value=_copy(_get(document, source)))
    if kind == "test":
        expected = _member(op, "value")
        actual = _get(document, path)
        if not json_equal(actual, expected):
            raise PatchApplyError(f"test failed: value at {op['path']!r} is not {expected!r}")
        return document
    raise PatchApplyError(f"unexpected operation {kind!r}")


def _display(path: Sequence[str]) -> str:
    return "".join("/" + token.replace("~", "~0").replace("/", "~1") for token in path)


def _index(container: list[Any], token: str, *, path: Sequence[str], extra: int = 0) -> int:
    """A list index from a token; `extra=1` allows one past the end (for `add`)."""
    if not _ARRAY_INDEX.fullmatch(token):
        raise PatchApplyError(f"{_display(path)}: {token!r} is not an array index")
    index = int(token)
    if index >= len(container) + extra:
        raise PatchApplyError(f"{_display(path)}: index {index} is out of range")
    return index


def _get(document: Any, path: Sequence[str]) -> Any:
    value = document
    for depth, token in enumerate(path):
        if isinstance(value, dict):
            if token not in value:
                raise PatchApplyError(f"{_display(path[: depth + 1])} does not exist")
            value = value[token]
        elif isinstance(value, list):
            value = value[_index(value, token, path=path[: depth + 1])]
        else:
            raise PatchApplyError(f"{_display(path[:depth])} is not an object or an array")
    return value


def _parent(document: Any, path: Sequence[str]) -> tuple[Any, str]:
    parent = _get(document, path[:-1])
    if not isinstance(parent, dict | list):
        raise PatchApplyError(f"{_display(path[:-1])} is not an object or an array")
    return parent, path[-1]


def _add(document: Any, path: Sequence[str], *, value: Any) -> Any:
    if not path:
        return value
    parent, token = _parent(document, path)
    if isinstance(parent, dict):
        parent[token] = value
    elif token == "-":
        parent.append(value)
    else:
        parent.insert(_index(parent, token, path=path, extra=1), value)
    return document


def _set_existing(parent: Any, token: str, *, value: Any, path: Sequence[str]) -> None:
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchApplyError(f"{_display(path)} does not exist")
        parent[token] = value
    else:
        parent[_index(parent, token, path=path)] = value


def _remove(document: Any, path: Sequence[str]) -> Any:
    if not path:
        raise PatchApplyError("the whole document cannot be removed")
    parent, token = _parent(document, path)
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchApplyError(f"{_display(path)} does not exist")
        return parent.pop(token)
    return parent.pop(_index(parent, token, path=path))


def json_equal(left: Any, right: Any) -> bool:
    """JSON equality as RFC 6902 `test` defines it: numbers by value, booleans apart."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(v, right[k]) for k, v in left.items())
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    return type(left) is type(right) and bool(left == right)


# --- Strategic merge patch ----------------------------------------------------------------


def strategic_merge_patch(
    target: Any,
    patch: Any,
    definition: str | None,
    *,
    defs: Mapping[str, Any] | None = None,
) -> Any:
    """`target` with Kubernetes strategic merge `patch` applied, for the schema `definition`.

    `definition` names a schema in `defs` (by default `_schema.definitions()`; see
    `_schema.definition_for`). `None` raises `errors.UnsupportedMediaType`; an unknown
    name is a programming error and raises `KeyError`.
    """
    if definition is None:
        raise errors.UnsupportedMediaType(SMP_UNSUPPORTED)
    meta = schema.patch_meta(definition, defs=defs)
    if patch is None:
        patch = {}  # as for kube-apiserver, whose decoder leaves the patch map empty
    if not isinstance(patch, dict):
        raise errors.BadRequest(
            f"json: cannot unmarshal {_json_type(patch)} into Go value of type "
            "map[string]interface {}"
        )
    owned = _copy(target)
    return _smp_map(owned if isinstance(owned, dict) else {}, patch, meta=meta)


def _bad(message: str) -> errors.BadRequest:
    return errors.BadRequest(message)


def _render(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _field_of(key: str, prefix: str, *, message: str) -> str:
    head, slash, field = key.partition("/")
    if head != prefix or not slash:
        raise _bad(message)
    return field


def _smp_map(
    original: dict[str, Any], patch: Mapping[str, Any], *, meta: schema.PatchMeta
) -> dict[str, Any]:
    """Merge `patch` into `original`, which this call owns and may change."""
    if _DIRECTIVE in patch:
        directive = patch[_DIRECTIVE]
        rest = {k: v for k, v in patch.items() if k != _DIRECTIVE}
        if directive == "replace":
            return _smp_map({}, rest, meta=meta)
        if directive == "delete":
            return {}
        if directive != "merge":
            raise _bad(f"unknown patch type: {directive} in map: {_render(patch)}")
        patch = rest

    if _RETAIN_KEYS in patch:
        _retain_keys(original, patch)

    ordered: set[str] = set()
    for key, order in patch.items():
        if key.startswith(_SET_ELEMENT_ORDER):
            field = _field_of(
                key, _SET_ELEMENT_ORDER, message="invalid patch format of setElementOrder list"
            )
            if _set_element_order(
                original, patch, field=field, order=order, meta=meta.field(field)
            ):
                ordered.add(field)

    deletions: list[tuple[str, Any]] = []
    for key, value in patch.items():
        if key in (_RETAIN_KEYS, _DIRECTIVE) or key.startswith(_SET_ELEMENT_ORDER):
            continue
        if key.startswith(_DELETE_FROM_PRIMITIVE_LIST):
            field = _field_of(
                key, _DELETE_FROM_PRIMITIVE_LIST, message="invalid patch format of primitive list"
            )
            deletions.append((field, value))
            continue
        if key in ordered:
            continue
        if value is None:
            original.pop(key, None)
            continue
        field_meta = meta.field(key)
        current = original.get(key)
        if isinstance(current, dict) and isinstance(value, dict) and not field_meta.replaces:
            original[key] = _smp_map(current, value, meta=field_meta)
        elif isinstance(current, list) and isinstance(value, list):
            original[key] = _merge_list(current, value, meta=field_meta)[0]
        else:
            original[key] = _fresh(value, field_meta)

    for field, values in deletions:
        _delete_from_primitive_list(original, field=field, values=values)
    return original


def _retain_keys(original: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """Clear the fields `$retainKeys` leaves out; the patch may only set listed fields."""
    retained = patch[_RETAIN_KEYS]
    if not isinstance(retained, list):
        raise _bad("invalid patch format of retainKeys")
    keep = {key for key in retained if isinstance(key, str)}
    for key, value in patch.items():
        if value is None or key.startswith("$"):
            continue
        if key not in keep:
            raise _bad("invalid patch format of retainKeys")
    for key in [key for key in original if key not in keep]:
        del original[key]


def _fresh(value: Any, meta: schema.PatchMeta) -> Any:
    """A patch value that has nothing to merge with, cleaned of nulls and directives."""
    if isinstance(value, dict):
        return _smp_map({}, value, meta=meta)
    if isinstance(value, list):
        items = meta.items()
        fresh = []
        for item in value:
            if meta.merges and isinstance(item, dict) and _DIRECTIVE in item:
                directive = item[_DIRECTIVE]
                if directive in ("delete", "replace") or (directive == "merge" and len(item) == 1):
                    continue  # nothing to delete from; a bare marker carries no item
                if directive != "merge":
                    raise _bad(f"unknown patch type: {directive} in map: {_render(item)}")
            fresh.append(_fresh(item, items))
        return fresh
    return value


def _element_kind(*lists: Iterable[Any]) -> str | None:
    """`"map"` or `"scalar"` for the items of merging lists, which must agree."""
    kinds = set()
    for items in lists:
        for item in items:
            if isinstance(item, list):
                raise errors.Invalid(REJECTED) from PatchApplyError(
                    "lists of lists are not supported"
                )
            kinds.add("map" if isinstance(item, dict) else "scalar")
    if len(kinds) > 1:
        raise _bad(f"list element types are not identical: {_render(list(lists))}")
    return kinds.pop() if kinds else None


def _key(value: Any) -> Hashable:
    """Identity of a scalar (or merge key value) as Go's `==` on decoded JSON sees it."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z", None)
    return ("j", _render(value))


def _keyed(merge_key: str | None) -> Callable[[Any], Hashable | None]:
    """How to identify list items: by the merge key of maps, else by value."""

    def key_of(item: Any) -> Hashable | None:
        if merge_key and isinstance(item, dict):
            return _key(item[merge_key]) if merge_key in item else None
        return _key(item)

    return key_of


def _merge_list(
    original: list[Any], patch: list[Any], *, meta: schema.PatchMeta
) -> tuple[list[Any], list[Any]]:
    """`patch` merged into `original` (owned) as the list's patch strategy says; and what
    kube-apiserver's copy of `original` holds afterwards.

    kube-apiserver removes `$patch: delete` items from the live list in place and appends
    new items into the room that frees, so the live list it later orders by (for
    `$setElementOrder`) has changed: the second value reproduces that, as ordering
    depends on it when a patch both deletes and adds items.
    """
    items = meta.items()
    if not meta.merges:
        return [_fresh(item, items) for item in patch], original
    kind = _element_kind(original, patch)
    if kind is None:
        return original, original
    if kind == "scalar":
        merged = _dedupe([*original, *patch], _key)
        return _ordered(merged, patch_order=patch, server_order=original, key_of=_key), original

    merge_key = meta.merge_key
    if not merge_key:
        raise _bad("cannot merge lists without merge key")
    key_of = _keyed(merge_key)
    live = list(original)
    length = len(live)
    plain: list[Mapping[str, Any]] = []
    replace = False
    for item in patch:
        if _DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[_DIRECTIVE]
        if directive == "delete":
            gone = key_of(_with_merge_key(item, merge_key))
            original = [kept for kept in original if key_of(kept) != gone]
            while (at := _find(live[:length], gone, key_of=key_of)) is not None:
                live[at : length - 1] = live[at + 1 : length]
                length -= 1
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            if len(item) > 1:
                plain.append({k: v for k, v in item.items() if k != _DIRECTIVE})
        else:
            raise _bad(f"unknown patch type: {directive} in map: {_render(item)}")
    if replace:
        return [_fresh(item, items) for item in plain], live

    server_order = list(original)
    for item in plain:
        at = _find(original, key_of(_with_merge_key(item, merge_key)), key_of=key_of)
        if at is not None:
            original[at] = _smp_map(original[at], item, meta=items)
            continue
        original.append(_fresh(item, items))
        if length < len(live):
            live[length] = original[-1]
        length += 1
    merged = _ordered(original, patch_order=plain, server_order=server_order, key_of=key_of)
    return merged, live


def _find(
    items: Sequence[Any], wanted: Hashable | None, *, key_of: Callable[[Any], Hashable | None]
) -> int | None:
    return next((i for i, item in enumerate(items) if key_of(item) == wanted), None)


def _with_merge_key(item: Mapping[str, Any], merge_key: str) -> Mapping[str, Any]:
    if merge_key not in item:
        raise _bad(f"map: {_render(item)} does not contain declared merge key: {merge_key}")
    return item


def _dedupe(items: Iterable[Any], key_of: Callable[[Any], Hashable | None]) -> list[Any]:
    seen: set[Hashable | None] = set()
    unique = []
    for item in items:
        key = key_of(item)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def _positions(order: Sequence[Any], key_of: Callable[[Any], Hashable | None]) -> dict[Any, int]:
    positions: dict[Any, int] = {}
    for index, item in enumerate(order):
        key = key_of(item)
        if key is not None:
            positions.setdefault(key, index)
    return positions


def _ordered(
    merged: Sequence[Any],
    *,
    patch_order: Sequence[Any],
    server_order: Sequence[Any],
    key_of: Callable[[Any], Hashable | None],
) -> list[Any]:
    """Order a merged list as kube-apiserver does.

    Items named in `patch_order` keep that order; the others ("server-only") keep their
    order in `server_order`. The two runs are then interleaved: a server-only item goes
    first while it stood before the next patch item in `server_order`; a patch item that
    was not in `server_order` goes as soon as it is reached. So a new item added by a
    patch without `$setElementOrder` lands before the server-only items that follow it.
    """
    in_patch = _positions(patch_order, key_of)
    patch_items = [item for item in merged if key_of(item) in in_patch]
    server_only = [item for item in merged if key_of(item) not in in_patch]
    patch_items.sort(key=lambda item: in_patch[key_of(item)])
    in_server = _positions(server_order, key_of)
    server_only.sort(key=lambda item: in_server.get(key_of(item), len(server_order)))

    result: list[Any] = []
    left = right = 0
    while left < len(server_only) and right < len(patch_items):
        li = in_server.get(key_of(server_only[left]))
        ri = in_server.get(key_of(patch_items[right]))
        if li is not None and ri is not None and li < ri:
            result.append(server_only[left])
            left += 1
        else:
            result.append(patch_items[right])
            right += 1
    result.extend(server_only[left:])
    result.extend(patch_items[right:])
    return result


def _set_element_order(
    original: dict[str, Any],
    patch: Mapping[str, Any],
    *,
    field: str,
    order: Any,
    meta: schema.PatchMeta,
) -> bool:
    """Merge `patch[field]` into `original[field]` and order it as `order` says.

    Returns whether the field's patch list was merged here (so it is not merged again).
    """
    if not isinstance(order, list):
        raise _bad("invalid patch format of setElementOrder list")
    current = original.get(field)
    wanted = patch.get(field)
    if current is not None and not isinstance(current, list):
        raise _bad(f"expected a list for {field}, but received {_json_type(current)}")
    if wanted is not None and not isinstance(wanted, list):
        raise _bad(f"expected a list for {field}, but received {_json_type(wanted)}")
    merge_key = meta.merge_key
    _check_order(wanted or [], order, merge_key=merge_key)
    if current is None and wanted is None:
        return False
    live = current or []
    if wanted is None:
        merged = live
    elif current is None:
        merged = _fresh(wanted, meta)
    else:
        merged, live = _merge_list(list(live), wanted, meta=meta)
    key_of = _keyed(merge_key)
    original[field] = _ordered(merged, patch_order=order, server_order=live, key_of=key_of)
    return wanted is not None


def _check_order(patch_list: list[Any], order: list[Any], *, merge_key: str | None) -> None:
    """The patch list's items must appear in `order`, in the same relative order."""
    if not patch_list or not order:
        return
    items = [item for item in patch_list if not (isinstance(item, dict) and _DIRECTIVE in item)]

    def key_of(item: Any) -> Hashable:
        if merge_key:
            if not isinstance(item, dict):
                raise _bad(f"expected a map, but received {_json_type(item)}")
            return _key(_with_merge_key(item, merge_key)[merge_key])
        return _key(item)

    at = 0
    for expected in order:
        if at < len(items) and key_of(items[at]) == key_of(expected):
            at += 1
    if at < len(items):
        raise _bad(
            f"The order in patch list:\n{_render(patch_list)}\n doesn't match "
            f"{_SET_ELEMENT_ORDER} list:\n{_render(order)}\n"
        )


def _delete_from_primitive_list(original: dict[str, Any], *, field: str, values: Any) -> None:
    if not isinstance(values, list):
        raise _bad("invalid patch format of primitive list")
    current = original.get(field)
    if current is None:
        return
    if not isinstance(current, list):
        raise _bad(f"expected a list for {field}, but received {_json_type(current)}")
    gone = {_key(value) for value in values}
    original[field] = [item for item in current if _key(item) not in gone]


# --- JSON values --------------------------------------------------------------------------


def _copy(value: Any) -> Any:
    """A deep copy of a JSON value (dicts and lists are new; scalars are immutable)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
