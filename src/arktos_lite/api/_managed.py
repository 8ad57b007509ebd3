"""Field ownership and server-side apply: `metadata.managedFields` as kube-apiserver keeps it.

Every write names a field manager. `update` records which fields a create, update or
patch changed (operation `Update`), `apply` is server-side apply
(`application/apply-patch+yaml`, operation `Apply`). Both return the new object with its
`metadata.managedFields`: one entry per (manager, operation, subresource), each with
`apiVersion`, `time`, `fieldsType: FieldsV1` and `fieldsV1`.

Field sets are held in the FieldsV1 form they are stored in: a tree whose keys are path
elements, `f:<name>` for a field or map key, `k:{"name":"c"}` for an item of a keyed list,
`v:"x"` for an item of a set list and `i:<n>` for an item nothing else names. A path in
the set ends at `{}`; `".": {}` marks a node that is in the set together with some of its
descendants. Which lists are keyed (by `x-kubernetes-list-map-keys`, or by the patch merge
key of types that predate list types), sets or atomic, and which objects are atomic
(`x-kubernetes-map-type`), comes from the schemas behind `_schema.PatchMeta`, read the way
structured-merge-diff reads the OpenAPI document; what the schemas do not describe merges
key by key when it is an object and is atomic when it is a list.

Semantics (those of kube-apiserver and structured-merge-diff):

* `update`: the fields the write added or changed move to its manager; fields it removed
  leave every manager. A request that sets `managedFields` to `[]` resets them; one that
  sets valid entries replaces them; anything else keeps the live ones.
* `apply`: the applied configuration is merged into the live object (keyed lists item by
  item). A field the configuration sets to a value other than the live one and that another
  manager owns is a conflict: `errors.Conflict` with a `FieldManagerConflict` cause per
  field, unless `force`, which takes the field over. The applier then owns exactly the
  fields of its configuration; a field it applied before and leaves out now is removed
  from the object unless another manager owns it. `managedFields` in the configuration
  must be nil.
* Server-maintained metadata (`name`, `uid`, `resourceVersion`, `tenant`, `hashKey` ...),
  `apiVersion` and `kind` are nobody's; with a status subresource, writes of the main
  resource do not own `status` and writes of `status` own only it.
* Empty entries disappear; at most ten `Update` entries are kept, the oldest merge into
  `ancient-changes`.

Where it differs from kube-apiserver, and why:

* Objects are JSON, not Go structs, so an `Update` cannot tell a pointer field from a value
  field: a map or list written whole is owned as such (`.`), an object field only through
  its fields. kube-apiserver marks `f:rollingUpdate` (a pointer) but not `f:containers`.
* The schemas here carry no defaults; key fields with one (a port's `protocol`, TCP) are
  listed in `_KEY_DEFAULTS`.
* A list item the applier drops stays when another manager owns part of it; only its
  unowned fields go. structured-merge-diff removes the whole item.
* One version per resource, so entries are never converted between versions.

Everything here is pure: arguments are never changed. Results may share unchanged parts
with `new` or the live object, which callers must treat as read-only.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import orjson

from arktos_lite.api import _errors as errors, _schema as schema

__all__ = [
    "ANCIENT_CHANGES",
    "FIELDS_TYPE",
    "MAX_MANAGER_LENGTH",
    "MAX_UPDATE_MANAGERS",
    "Entry",
    "FieldSet",
    "Operation",
    "apply",
    "entries",
    "extract",
    "fields_of",
    "render_path",
    "update",
]

Obj = dict[str, Any]
Tree = dict[str, Any]
"""A field set in FieldsV1 form; treated as immutable once built."""
Path = tuple[str, ...]
"""A path as FieldsV1 path elements: `("f:spec", "f:containers", 'k:{"name":"c"}')`."""

FIELDS_TYPE: Final = "FieldsV1"
MAX_MANAGER_LENGTH: Final = 128
"""kube-apiserver's limit on the length of `fieldManager`."""
MAX_UPDATE_MANAGERS: Final = 10
ANCIENT_CHANGES: Final = "ancient-changes"
"""The manager that the oldest `Update` entries merge into beyond `MAX_UPDATE_MANAGERS`."""


class Operation(enum.StrEnum):
    APPLY = "Apply"
    UPDATE = "Update"


_SELF: Final = "."
_IGNORED: Final = frozenset({"apiVersion", "kind"})
# Metadata the server keeps (kube-apiserver strips the same, plus Arktos's own fields).
_IGNORED_META: Final = frozenset(
    {
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "generation",
        "managedFields",
        "resourceVersion",
        "tenant",
        "hashKey",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)
# Key fields the OpenAPI document of kube-apiserver gives a default (the schemas here lack
# defaults): a port without a protocol is keyed as TCP, as the server will store it.
_KEY_DEFAULTS: Final[Mapping[str, Mapping[str, Any]]] = {
    "io.k8s.api.core.v1.ContainerPort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.ServicePort": {"protocol": "TCP"},
}
_ELEMENT_RANK: Final = {"f": 0, "k": 1, "v": 2, "i": 3}


# --- Types --------------------------------------------------------------------------------


class _Kind(enum.Enum):
    LEAF = enum.auto()
    """Scalars, atomic lists and atomic objects: owned whole."""
    STRUCT = enum.auto()
    """An object with known fields."""
    MAP = enum.auto()
    """An object with any keys, each owned on its own."""
    KEYED = enum.auto()
    """A list whose items are identified by key fields."""
    SET = enum.auto()
    """A list of distinct scalars."""
    UNKNOWN = enum.auto()
    """Not described: objects are maps of unknowns, lists are atomic."""


_OBJECTS: Final = (_Kind.STRUCT, _Kind.MAP, _Kind.UNKNOWN)
_CONTAINERS: Final = (dict, list)
_LISTS: Final = (_Kind.KEYED, _Kind.SET)


class _Type:
    """How field management sees one value's schema; children are resolved on first use."""

    __slots__ = ("_fields", "_items", "_meta", "key_defaults", "keys", "kind", "lists", "objects")

    def __init__(self, meta: schema.PatchMeta) -> None:
        self._meta = meta
        self.kind, self.keys = _kind_of(meta)
        self.objects = self.kind in _OBJECTS
        self.lists = self.kind in _LISTS
        self.key_defaults: Mapping[str, Any] = {}
        if self.kind is _Kind.KEYED:
            self.key_defaults = _KEY_DEFAULTS.get(meta.items().definition or "", {})
        self._fields: dict[str, _Type] = {}
        self._items: _Type | None = None

    def field(self, name: str) -> _Type:
        """The type of a field (of a struct) or of any value (of a map)."""
        if self.kind is _Kind.UNKNOWN:
            return self
        if self.kind is _Kind.MAP:
            return self.items()
        found = self._fields.get(name)
        if found is None:
            meta = self._meta.field(name)
            if meta is schema.UNKNOWN:
                return _UNKNOWN
            found = self._fields[name] = _Type(meta)
        return found

    def items(self) -> _Type:
        """The type of a list's items, or of a map's values."""
        if self.kind is _Kind.UNKNOWN:
            return self
        if self._items is None:
            meta = self._meta.field("") if self.kind is _Kind.MAP else self._meta.items()
            self._items = _UNKNOWN if meta is schema.UNKNOWN else _Type(meta)
        return self._items


def _kind_of(meta: schema.PatchMeta) -> tuple[_Kind, tuple[str, ...]]:
    shape = meta.shape
    if shape is schema.Shape.OBJECT or shape is schema.Shape.MAP:
        if meta.map_type == "atomic":
            return _Kind.LEAF, ()
        return (_Kind.STRUCT if shape is schema.Shape.OBJECT else _Kind.MAP), ()
    if shape is schema.Shape.LIST:
        list_type = meta.list_type
        if list_type == "map" and meta.list_map_keys:
            return _Kind.KEYED, meta.list_map_keys
        if list_type == "set":
            return _Kind.SET, ()
        if list_type is None and meta.merges:
            if meta.merge_key:
                return _Kind.KEYED, (meta.merge_key,)
            return _Kind.SET, ()
        return _Kind.LEAF, ()
    if shape is schema.Shape.UNKNOWN:
        return _Kind.UNKNOWN, ()
    return _Kind.LEAF, ()


_UNKNOWN: Final = _Type(schema.UNKNOWN)


@functools.cache
def _root(definition: str | None) -> _Type:
    return _UNKNOWN if definition is None else _Type(schema.patch_meta(definition))


def _type_of(obj: Mapping[str, Any]) -> _Type:
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return _UNKNOWN
    group, _, version = api_version.rpartition("/")
    return _root(schema.definition_for(group, version, kind))


# --- Path elements ------------------------------------------------------------------------


class _Untyped(ValueError):
    """An applied configuration that field management cannot read (a key is missing ...)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.at: list[str] = []


def _element(item: Any, t: _Type, index: int, *, strict: bool) -> str:
    """The path element of a list item: `k:{...}`, `v:...`, or `i:<index>` when neither fits."""
    if t.kind is _Kind.KEYED:
        if isinstance(item, dict):
            key: dict[str, Any] = {}
            for name in t.keys:
                value = item.get(name)
                if value is None:
                    value = t.key_defaults.get(name)
                    if value is None:
                        if strict:
                            raise _Untyped(
                                f"element {index}: associative list with keys has an element "
                                f'that omits key field "{name}" (and doesn\'t have default value)'
                            )
                        return f"i:{index}"
                key[name] = value
            return "k:" + orjson.dumps(key, option=orjson.OPT_SORT_KEYS).decode()
        if strict:
            raise _Untyped(f"element {index}: expected a map in an associative list with keys")
    elif isinstance(item, str | int | float):
        return "v:" + orjson.dumps(item).decode()
    elif strict:
        raise _Untyped(
            f"element {index}: associative list without keys has an element that's not a scalar"
        )
    return f"i:{index}"


def render_path(path: Sequence[str]) -> str:
    """A path as kube-apiserver prints it: `.spec.containers[name="c"].image`."""
    parts = []
    for element in path:
        kind, body = element[0], element[2:]
        if kind == "f":
            parts.append("." + body)
        elif kind == "k":
            key = json.loads(body)
            parts.append("[" + ",".join(f"{k}={_go_value(v)}" for k, v in key.items()) + "]")
        elif kind == "v":
            parts.append(f"[={_go_value(json.loads(body))}]")
        else:
            parts.append(f"[{body}]")
    return "".join(parts)


def _go_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- Field sets as trees ------------------------------------------------------------------


def _member(node: Tree) -> bool:
    return not node or _SELF in node


def _node(member: bool, children: Tree) -> Tree | None:
    """A tree node from its membership and children (None: nothing is left of it)."""
    if not children:
        return {} if member else None
    if member:
        return {_SELF: {}, **children}
    return children


def _union(a: Tree, b: Tree) -> Tree:
    if a is b or not b:
        return a if a or not _member(b) else b
    if not a:
        # `a` is a leaf member: the union is `b` with `b`'s root a member.
        return b if _member(b) else {_SELF: {}, **b}
    children: Tree = {}
    for element, sub in a.items():
        if element == _SELF:
            continue
        other = b.get(element)
        children[element] = sub if other is None else _union(sub, other)
    for element, sub in b.items():
        if element != _SELF and element not in a:
            children[element] = sub
    node = _node(_member(a) or _member(b), children)
    assert node is not None
    return node


def _difference(a: Tree, b: Tree | None) -> Tree | None:
    """`a` without the paths in `b`; None if nothing is left."""
    if b is None:
        return a
    children: Tree = {}
    for element, sub in a.items():
        if element == _SELF:
            continue
        other = b.get(element)
        if other is None:
            children[element] = sub
        else:
            left = _difference(sub, other)
            if left is not None:
                children[element] = left
    return _node(_member(a) and not _member(b), children)


def _intersection(a: Tree, b: Tree) -> Tree | None:
    children: Tree = {}
    for element, sub in a.items():
        if element == _SELF:
            continue
        other = b.get(element)
        if other is not None:
            both = _intersection(sub, other)
            if both is not None:
                children[element] = both
    return _node(_member(a) and _member(b), children)


def _union_roots(a: Tree, b: Tree) -> Tree:
    """The union of two whole sets (whose roots are never members themselves)."""
    if not a:
        return b
    if not b:
        return a
    return _union(a, b)


def _union_all(trees: Iterable[Tree | None]) -> Tree | None:
    result: Tree | None = None
    for tree in trees:
        if tree:
            result = tree if result is None else _union(result, tree)
    return result


def _paths(tree: Tree, prefix: Path = ()) -> Iterator[Path]:
    """The paths in the set, in FieldsV1 order."""
    for element in sorted((e for e in tree if e != _SELF), key=_element_order):
        sub = tree[element]
        path = (*prefix, element)
        if _member(sub):
            yield path
        yield from _paths(sub, path)


def _element_order(element: str) -> tuple[int, str]:
    return _ELEMENT_RANK.get(element[:1], 4), element


def _canonical(tree: Tree) -> Tree:
    """A copy of a tree in kube-apiserver's order: `.` first, then the path elements sorted.

    Plain string order is that order: `.` sorts before `f:`, and the elements of one node
    are all fields or all items.
    """
    return {element: _canonical(sub) if (sub := tree[element]) else {} for element in sorted(tree)}


def _checked(raw: Any) -> Tree:
    """A FieldsV1 value from a request, checked and normalized; ValueError if malformed."""
    if not isinstance(raw, dict):
        raise ValueError("a FieldsV1 node must be an object")
    out: Tree = {}
    member = False
    for element, sub in raw.items():
        if element == _SELF:
            if sub != {}:
                raise ValueError('"." must map to {}')
            member = True
            continue
        if not isinstance(element, str) or element[:2] not in ("f:", "k:", "v:", "i:"):
            raise ValueError(f"invalid path element {element!r}")
        if element[0] in "kv":
            try:
                key = json.loads(element[2:])
            except ValueError:
                raise ValueError(f"invalid path element {element!r}") from None
            if element[0] == "k" and not isinstance(key, dict):
                raise ValueError(f"invalid path element {element!r}")
        elif element[0] == "i" and not element[2:].isdigit():
            raise ValueError(f"invalid path element {element!r}")
        out[element] = _checked(sub)
    node = _node(member, out)
    return {} if node is None else node


class FieldSet:
    """A set of field paths, held in FieldsV1 form. Immutable; `|`, `&`, `-` combine sets."""

    __slots__ = ("_ordered", "_tree")

    def __init__(self, tree: Tree | None = None, *, ordered: bool = False) -> None:
        self._tree: Tree = tree or {}
        # Already in kube-apiserver's order, so encoding needs no sorting.
        self._ordered = ordered

    @classmethod
    def from_fields_v1(cls, raw: Any) -> FieldSet:
        """A set from its FieldsV1 form; `ValueError` if malformed."""
        return cls(_checked(raw))

    @classmethod
    def from_paths(cls, paths: Iterable[Sequence[str]]) -> FieldSet:
        tree: Tree | None = None
        for path in paths:
            node: Tree = {}
            for element in reversed(path):
                node = {element: node}
            if path:
                tree = node if tree is None else _union_roots(tree, node)
        return cls(tree)

    def to_fields_v1(self) -> Tree:
        """The FieldsV1 form, in kube-apiserver's order (a new value)."""
        return _canonical(self._tree)

    def _encoded(self) -> Tree:
        """The FieldsV1 form, in order; possibly the tree itself (to be treated read-only)."""
        return self._tree if self._ordered else _canonical(self._tree)

    def paths(self) -> list[Path]:
        return list(_paths(self._tree))

    def rendered(self) -> list[str]:
        """The paths as kube-apiserver prints them (`.spec.replicas`)."""
        return [render_path(path) for path in _paths(self._tree)]

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, tuple) or not path:
            return False
        node: Tree | None = self._tree
        for element in path:
            node = None if node is None else node.get(element)
        return node is not None and _member(node)

    def __or__(self, other: FieldSet) -> FieldSet:
        if not other._tree:
            return self
        if not self._tree:
            return other
        return FieldSet(_union(self._tree, other._tree))

    def __and__(self, other: FieldSet) -> FieldSet:
        if not other._tree:
            return other
        return FieldSet(_intersection(self._tree, other._tree), ordered=self._ordered)

    def __sub__(self, other: FieldSet) -> FieldSet:
        if not other._tree:
            return self
        return FieldSet(_difference(self._tree, other._tree), ordered=self._ordered)

    def __bool__(self) -> bool:
        return bool(self._tree)

    def __len__(self) -> int:
        return sum(1 for _ in _paths(self._tree))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSet) and self._tree == other._tree

    def __hash__(self) -> int:
        return hash(orjson.dumps(self.to_fields_v1()))

    def __repr__(self) -> str:
        return f"FieldSet({self.rendered()!r})"


def fields_of(obj: Obj) -> FieldSet:
    """The fields an applied configuration sets, as its manager will own them.

    Raises `errors.BadRequest` for a configuration whose keyed lists cannot be read (an
    item without its key fields, two items with one key).
    """
    return FieldSet(_config_fields(obj, _type_of(obj), _Scope()))


def extract(obj: Obj, fields: FieldSet) -> Obj:
    """The part of `obj` that `fields` names: what a manager owns of it (a new value)."""
    picked = _extract(obj, fields._tree, _type_of(obj))
    return picked if isinstance(picked, dict) else {}


def _extract(value: Any, tree: Tree, t: _Type) -> Any:
    if _member(tree) and not (tree and isinstance(value, dict | list)):
        return _copy(value)
    if isinstance(value, dict) and t.kind in _OBJECTS:
        return {
            name: _extract(child, tree[f"f:{name}"], t.field(name))
            for name, child in value.items()
            if f"f:{name}" in tree
        }
    if isinstance(value, list) and t.kind in _LISTS:
        items = t.items()
        return [
            _extract(item, tree[element], items)
            for index, item in enumerate(value)
            if (element := _element(item, t, index, strict=False)) in tree
        ]
    return _copy(value)


# --- Field sets of objects ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Scope:
    """The top-level fields one write may own (with a status subresource, status is apart)."""

    only: str | None = None
    skip: frozenset[str] = frozenset()

    def __contains__(self, name: str) -> bool:
        if name in _IGNORED or name in self.skip:
            return False
        return self.only is None or name == self.only


def _scope(subresource: str, separate_status: bool) -> _Scope:
    if subresource == "status":
        return _Scope(only="status")
    if separate_status:
        return _Scope(skip=frozenset({"status"}))
    return _Scope()


def _tree(value: Any, t: _Type, *, member: bool, whole: bool, strict: bool) -> Tree:
    """The nodes of `value` as a FieldsV1 node.

    Leaves (scalars, atomic values, empty objects and lists, nulls) are members. Items of
    lists and entries of maps are members. With `whole` (a value added or removed as a
    whole), maps and lists are members too, structs only through their fields. The tree
    comes in kube-apiserver's order.
    """
    return _walk(value, t, member, whole, strict)


def _walk(value: Any, t: _Type, member: bool, whole: bool, strict: bool) -> Tree:
    # `_tree`, with positional arguments: it runs for every node of every object written.
    if t.objects:
        if value.__class__ is not dict or not value:
            return {}
        struct = t.kind is _Kind.STRUCT
        out: Tree = {_SELF: {}} if member or (whole and not struct) else {}
        fields = t._fields
        for name in sorted(value):
            child = value[name]
            if not isinstance(child, _CONTAINERS):
                out["f:" + name] = {}  # a scalar or null: a leaf, whatever its type says
                continue
            try:
                out["f:" + name] = _walk(
                    child, fields.get(name) or t.field(name), not struct, whole, strict
                )
            except _Untyped as error:
                error.at.insert(0, "f:" + name)
                raise
        return out
    if t.lists:
        if value.__class__ is not list or not value:
            return {}
        out = {_SELF: {}} if member or whole else {}
        items = t.items()
        for index, item in enumerate(value):
            element = _element(item, t, index, strict=strict)
            try:
                sub = _walk(item, items, True, whole, strict)
            except _Untyped as error:
                error.at.insert(0, element)
                raise
            if element in out:
                if strict:
                    raise _Untyped(f"duplicate entries for key {render_path([element])}")
                sub = _union(out[element], sub)
            out[element] = sub
        return dict(sorted(out.items())) if len(value) > 1 else out
    return {}


def _object_tree(obj: Obj, t: _Type, scope: _Scope, *, whole: bool, strict: bool) -> Tree:
    out: Tree = {}
    for name in sorted(obj):
        if name not in scope:
            continue
        value = obj[name]
        field = t.field(name)
        if name == "metadata" and isinstance(value, dict):
            meta: Tree = {}
            for key in sorted(value):
                child = value[key]
                if key not in _IGNORED_META:
                    try:
                        meta["f:" + key] = _tree(
                            child, field.field(key), member=False, whole=whole, strict=strict
                        )
                    except _Untyped as error:
                        error.at[:0] = ["f:metadata", "f:" + key]
                        raise
            if meta:
                out["f:metadata"] = meta
            continue
        try:
            out["f:" + name] = _tree(value, field, member=False, whole=whole, strict=strict)
        except _Untyped as error:
            error.at.insert(0, "f:" + name)
            raise
    return out


def _config_fields(config: Obj, t: _Type, scope: _Scope) -> Tree:
    try:
        return _object_tree(config, t, scope, whole=False, strict=True)
    except _Untyped as error:
        where = render_path(error.at)
        api_version = config.get("apiVersion", "")
        gv = api_version if "/" in api_version else f"/{api_version}"
        raise errors.BadRequest(
            f"failed to create typed patch object ({gv}, Kind={config.get('kind', '')}): "
            f"{where}: {error.detail}"
        ) from None


# --- Comparing objects --------------------------------------------------------------------

_Diff = tuple[Tree | None, Tree | None, Tree | None]
_SAME: Final[_Diff] = (None, None, None)
_CHANGED_LEAF: Final[_Diff] = (None, {}, None)


def _same(a: Any, b: Any) -> bool:
    return a is b or (type(a) is type(b) and a == b)


def _diff(lhs: Any, rhs: Any, t: _Type) -> _Diff:
    """(added, modified, removed) below one node present on both sides."""
    kind = t.kind
    if lhs or rhs:
        if kind in _OBJECTS and isinstance(lhs, dict) and isinstance(rhs, dict):
            return _diff_fields(lhs, rhs, t)
        if kind in _LISTS and isinstance(lhs, list) and isinstance(rhs, list):
            return _diff_items(lhs, rhs, t)
    return _SAME if _same(lhs, rhs) else _CHANGED_LEAF


def _diff_fields(lhs: Obj, rhs: Obj, t: _Type, skip: Container[str] | None = None) -> _Diff:
    added: Tree = {}
    modified: Tree = {}
    removed: Tree = {}
    entries = t.kind is not _Kind.STRUCT
    for name, left in lhs.items():
        if skip is not None and name in skip:
            continue
        element = "f:" + name
        if name in rhs:
            right = rhs[name]
            if _same(left, right):
                continue
            _place(element, _diff(left, right, t.field(name)), added, modified, removed)
        else:
            removed[element] = _tree(left, t.field(name), member=entries, whole=True, strict=False)
    for name, right in rhs.items():
        if name not in lhs and (skip is None or name not in skip):
            added["f:" + name] = _tree(
                right, t.field(name), member=entries, whole=True, strict=False
            )
    return added or None, modified or None, removed or None


def _diff_items(lhs: list[Any], rhs: list[Any], t: _Type) -> _Diff:
    added: Tree = {}
    modified: Tree = {}
    removed: Tree = {}
    items = t.items()
    left = _index(lhs, t)
    right = _index(rhs, t)
    for element, old in left.items():
        new = right.get(element, _MISSING)
        if new is _MISSING:
            removed[element] = _tree(old, items, member=True, whole=True, strict=False)
        elif not _same(old, new):
            _place(element, _diff(old, new, items), added, modified, removed)
    for element, new in right.items():
        if element not in left:
            added[element] = _tree(new, items, member=True, whole=True, strict=False)
    return added or None, modified or None, removed or None


def _place(element: str, diff: _Diff, added: Tree, modified: Tree, removed: Tree) -> None:
    a, m, r = diff
    if a is not None:
        added[element] = a
    if m is not None:
        modified[element] = m
    if r is not None:
        removed[element] = r


def _index(items: list[Any], t: _Type) -> dict[str, Any]:
    index: dict[str, Any] = {}
    for position, item in enumerate(items):
        index.setdefault(_element(item, t, position, strict=False), item)
    return index


class _Skip:
    """The top-level names a comparison leaves out: metadata (compared on its own) and
    whatever the write may not own."""

    __slots__ = ("scope",)

    def __init__(self, scope: _Scope) -> None:
        self.scope = scope

    def __contains__(self, name: object) -> bool:
        return name == "metadata" or not isinstance(name, str) or name not in self.scope


def _diff_object(old: Obj, new: Obj, t: _Type, scope: _Scope) -> _Diff:
    """What a write changed, leaving out what nobody owns."""
    diff = _diff_fields(old, new, t, skip=_Skip(scope))
    if "metadata" not in scope:
        return diff
    old_meta = old.get("metadata")
    new_meta = new.get("metadata")
    meta = _diff_fields(
        old_meta if isinstance(old_meta, dict) else {},
        new_meta if isinstance(new_meta, dict) else {},
        t.field("metadata"),
        skip=_IGNORED_META,
    )
    result: list[Tree | None] = []
    for tree, part in zip(diff, meta, strict=True):
        if part is not None:
            tree = tree if tree is not None else {}
            tree["f:metadata"] = part
        result.append(tree)
    return result[0], result[1], result[2]


# --- Merging an applied configuration -----------------------------------------------------


class _Unset:
    """A null in an applied configuration: the field goes away once ownership is settled."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Final = _Unset()
_MISSING: Final[Any] = object()


def _merge(lhs: Any, rhs: Any, t: _Type) -> Any:
    """`rhs` (applied) merged over `lhs` (live), as a new value."""
    kind = t.kind
    if kind in _OBJECTS and isinstance(lhs, dict) and isinstance(rhs, dict):
        out: Obj = {}
        for name, left in lhs.items():
            right = rhs.get(name, _MISSING)
            out[name] = _copy(left) if right is _MISSING else _merge(left, right, t.field(name))
        for name, right in rhs.items():
            if name not in lhs:
                out[name] = _fresh(right)
        return out
    if kind in _LISTS and isinstance(lhs, list) and isinstance(rhs, list):
        return _merge_items(lhs, rhs, t)
    return _fresh(rhs)


def _merge_items(lhs: list[Any], rhs: list[Any], t: _Type) -> list[Any]:
    """Keyed lists merged item by item, in structured-merge-diff's order: the applied items
    in their order, live-only items where they stood among them."""
    items = t.items()
    left = [_element(item, t, i, strict=False) for i, item in enumerate(lhs)]
    right = [_element(item, t, i, strict=False) for i, item in enumerate(rhs)]
    live: dict[str, Any] = {}
    for element, item in zip(left, lhs, strict=True):
        live.setdefault(element, item)
    applied = dict(zip(right, rhs, strict=True))
    shared = iter([element for element in right if element in live])
    next_shared = next(shared, None)
    out: list[Any] = []
    merged: set[str] = set()
    li = ri = 0
    while li < len(left) or ri < len(right):
        if li < len(left) and ri < len(right):
            element = left[li]
            if element == right[ri]:
                merged.add(element)
                out.append(_merge(live[element], applied[element], items))
                li += 1
                ri += 1
                next_shared = next(shared, None)
                continue
            if element in applied and next_shared is not None and next_shared != element:
                li += 1
                continue
        if li < len(left):
            element = left[li]
            if element not in applied:
                out.append(_copy(lhs[li]))
                li += 1
                continue
            if element in merged:
                li += 1
                continue
        if ri < len(right):
            element = right[ri]
            merged.add(element)
            old = live.get(element, _MISSING)
            new = applied[element]
            out.append(_fresh(new) if old is _MISSING else _merge(old, new, items))
            ri += 1
            if next_shared == element:
                next_shared = next(shared, None)
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _fresh(value: Any) -> Any:
    """A copy of an applied value, its nulls marked to go."""
    if value is None:
        return _UNSET
    if isinstance(value, dict):
        return {key: _fresh(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_fresh(item) if isinstance(item, dict) else _copy(item) for item in value]
    return value


def _strip_unset(value: Any) -> None:
    if isinstance(value, dict):
        for key in [key for key, item in value.items() if item is _UNSET]:
            del value[key]
        for item in value.values():
            _strip_unset(item)
    elif isinstance(value, list):
        for item in value:
            _strip_unset(item)


def _prune(value: Any, removal: Tree, keep: Tree | None, t: _Type) -> None:
    """Remove from `value` (owned) the paths of `removal` that nothing in `keep` needs.

    A removed list item or map entry goes whole, unless `keep` still holds part of it; then
    only its unowned parts go (never its key fields). A map or list that becomes empty goes
    too when nothing keeps it.
    """
    if isinstance(value, dict) and t.kind in _OBJECTS:
        for element, sub in removal.items():
            if element[:2] != "f:":
                continue
            name = element[2:]
            child = value.get(name, _MISSING)
            if child is _MISSING:
                continue
            kept = None if keep is None else keep.get(element)
            if kept is None and _member(sub):
                del value[name]
                continue
            if isinstance(child, dict | list) and child:
                _prune(child, sub, kept, t.field(name))
                if not child and kept is None:
                    del value[name]
    elif isinstance(value, list) and t.kind in _LISTS:
        items = t.items()
        gone: set[int] = set()
        for index, item in enumerate(value):
            element = _element(item, t, index, strict=False)
            sub = removal.get(element)
            if sub is None:
                continue
            kept = None if keep is None else keep.get(element)
            if kept is None and _member(sub):
                gone.add(index)
            elif isinstance(item, dict):
                own_keys = {f"f:{key}" for key in t.keys}
                _prune(item, {e: s for e, s in sub.items() if e not in own_keys}, kept, items)
        if gone:
            value[:] = [item for index, item in enumerate(value) if index not in gone]


# --- managedFields entries ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One `metadata.managedFields` entry."""

    manager: str
    operation: Operation
    api_version: str
    fields: FieldSet
    time: str | None = None
    subresource: str = ""

    @property
    def identity(self) -> tuple[str, str, str]:
        """What entries merge by: (manager, operation, subresource)."""
        return self.manager, self.operation.value, self.subresource

    def describe(self) -> str:
        """The manager as a conflict message names it."""
        text = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation is Operation.UPDATE:
            text += f" using {self.api_version}"
        return text

    def to_json(self) -> Obj:
        encoded: Obj = {
            "manager": self.manager,
            "operation": self.operation.value,
            "apiVersion": self.api_version,
        }
        if self.time is not None:
            encoded["time"] = self.time
        encoded["fieldsType"] = FIELDS_TYPE
        encoded["fieldsV1"] = self.fields._encoded()
        if self.subresource:
            encoded["subresource"] = self.subresource
        return encoded


def entries(obj: Mapping[str, Any]) -> list[Entry]:
    """The managedFields entries of an object; none if they are missing or malformed."""
    meta = obj.get("metadata")
    raw = meta.get("managedFields") if isinstance(meta, dict) else None
    return _decode(raw, trusted=False) or []


def _decode(raw: Any, *, trusted: bool) -> list[Entry] | None:
    """Entries from their JSON form, the later of two with one identity winning; None if
    malformed. `trusted` (stored by this module) skips checking the field sets."""
    if not isinstance(raw, list):
        return None
    found: dict[tuple[str, str, str], Entry] = {}
    for item in raw:
        if not isinstance(item, dict):
            return None
        manager = item.get("manager", "")
        operation = item.get("operation")
        api_version = item.get("apiVersion")
        time = item.get("time")
        subresource = item.get("subresource", "")
        if (
            not isinstance(manager, str)
            or operation not in ("Apply", "Update")
            or not isinstance(api_version, str)
            or not api_version
            or item.get("fieldsType") != FIELDS_TYPE
            or not (time is None or isinstance(time, str))
            or not isinstance(subresource, str)
        ):
            return None
        raw_fields = item.get("fieldsV1", {})
        try:
            if trusted:
                fields = FieldSet(raw_fields, ordered=True)
            else:
                fields = FieldSet.from_fields_v1(raw_fields)
        except ValueError:
            return None
        entry = Entry(manager, Operation(operation), api_version, fields, time, subresource)
        found[entry.identity] = entry
    return list(found.values())


def _encode(found: list[Entry]) -> list[Obj]:
    ordered = sorted(
        found,
        key=lambda e: (e.operation.value, e.time or "", e.manager, e.api_version, e.subresource),
    )
    return [entry.to_json() for entry in ordered]


def _capped(found: list[Entry]) -> list[Entry]:
    """At most `MAX_UPDATE_MANAGERS` Update entries: the oldest merge into ancient-changes."""
    updates = [e for e in found if e.operation is Operation.UPDATE]
    if len(updates) <= MAX_UPDATE_MANAGERS:
        return found
    updates.sort(key=lambda e: (e.manager != ANCIENT_CHANGES, e.time or "", e.manager))
    oldest = updates[: len(updates) - MAX_UPDATE_MANAGERS + 1]
    fields = FieldSet()
    for entry in oldest:
        fields = fields | entry.fields
    latest = max(oldest, key=lambda e: e.time or "")
    bucket = Entry(ANCIENT_CHANGES, Operation.UPDATE, latest.api_version, fields, latest.time)
    dropped = {id(e) for e in oldest}
    return [e for e in found if id(e) not in dropped] + [bucket]


def _with_entries(obj: Obj, found: list[Entry]) -> Obj:
    """`obj` (a shallow copy) with these managedFields, or none when there are none."""
    meta = dict(obj.get("metadata") or {})
    if found:
        meta["managedFields"] = _encode(_capped(found))
    else:
        meta.pop("managedFields", None)
    return {**obj, "metadata": meta}


def _without_managed(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def _is_reset(raw: Any) -> bool:
    return isinstance(raw, list) and (raw == [] or raw == [{}])


# --- Update and apply ---------------------------------------------------------------------


def update(
    old: Obj | None,
    new: Obj,
    *,
    manager: str,
    now: str,
    operation: Operation = Operation.UPDATE,
    subresource: str = "",
    separate_status: bool = False,
) -> Obj:
    """`new` with managedFields that record this write of `old` (None: a create) by `manager`.

    `now` is the write's time (RFC 3339); `subresource` the subresource written
    (`status`, `scale`), and `separate_status` says whether the kind has a status
    subresource (then main-resource writes do not own status).
    """
    old_meta = (old or {}).get("metadata") or {}
    new_meta = new.get("metadata") or {}
    old_raw = old_meta.get("managedFields")
    provided = new_meta.get("managedFields")
    base: list[Entry] | None
    live = True
    if subresource or provided is None or provided == old_raw:
        base = None
    elif _is_reset(provided):
        base, live = [], False
    else:
        base = _decode(provided, trusted=False)
        live = not base
    if live:
        base = _decode(old_raw, trusted=True) or []
    assert base is not None

    t = _type_of(new)
    scope = _scope(subresource, separate_status)
    if old is None:
        changed: Tree | None = _object_tree(new, t, scope, whole=True, strict=False) or None
        removed: Tree | None = None
    else:
        added, modified, removed = _diff_object(old, new, t, scope)
        changed = _union_all((added, modified))
    if changed is None and removed is None and live:
        # Nothing of anybody's changed: the live entries stand as they are.
        return _with_raw(new, old_raw)

    taken = _union_all((changed, removed))
    identity = (manager, operation.value, subresource)
    result: list[Entry] = []
    previous: Entry | None = None
    for entry in base:
        fields = entry.fields - FieldSet(taken) if taken is not None else entry.fields
        if entry.identity == identity:
            previous = dataclasses.replace(entry, fields=fields)
        elif fields:
            result.append(dataclasses.replace(entry, fields=fields))
    if changed is not None:
        own = FieldSet(changed, ordered=old is None)
        if previous is not None:
            own = previous.fields | own
        api_version = str(new.get("apiVersion", ""))
        result.append(Entry(manager, operation, api_version, own, now, subresource))
    elif previous is not None and previous.fields:
        result.append(previous)
    return _with_entries(new, result)


def _with_raw(obj: Obj, raw: Any) -> Obj:
    meta = obj.get("metadata") or {}
    if meta.get("managedFields") is raw or (raw is None and "managedFields" not in meta):
        return obj
    meta = dict(meta)
    if raw is None:
        meta.pop("managedFields", None)
    else:
        meta["managedFields"] = raw
    return {**obj, "metadata": meta}


def apply(
    live: Obj | None,
    applied: Obj,
    *,
    manager: str,
    force: bool,
    now: str,
    subresource: str = "",
    separate_status: bool = False,
) -> Obj:
    """Server-side apply of the configuration `applied` by `manager` to `live` (None: create).

    Returns the new object with its managedFields. Raises `errors.BadRequest` for a
    configuration that carries managedFields or cannot be read, and `errors.Conflict` when
    it changes fields other managers own, unless `force`.
    """
    if not isinstance(applied, dict):
        raise errors.BadRequest("an apply patch must be an object")
    meta = applied.get("metadata")
    if isinstance(meta, dict) and meta.get("managedFields") is not None:
        raise errors.BadRequest("metadata.managedFields must be nil")
    api_version = applied.get("apiVersion")
    kind = applied.get("kind")
    if not isinstance(api_version, str) or not api_version:
        raise errors.BadRequest("apiVersion must be set in an applied configuration")
    if not isinstance(kind, str) or not kind:
        raise errors.BadRequest("kind must be set in an applied configuration")

    t = _type_of(applied)
    scope = _scope(subresource, separate_status)
    config = {k: v for k, v in applied.items() if k in scope or k in _IGNORED}
    if "metadata" not in scope and isinstance(meta, dict) and "name" in meta:
        config["metadata"] = {"name": meta["name"]}
    config_fields = _config_fields(config, t, scope)

    current = {} if live is None else _without_managed(live)
    found = [] if live is None else entries(live)
    identity = (manager, Operation.APPLY.value, subresource)
    last = next((e for e in found if e.identity == identity), None)
    others = [e for e in found if e.identity != identity]

    merged: Obj = _merge(current, config, t)
    keep = _union_all([config_fields, *(e.fields._tree for e in others)])
    if last is not None and last.fields:
        removal = _difference(last.fields._tree, keep)
        if removal is not None:
            _prune(merged, removal, keep, t)

    added, modified, removed = _diff_object(current, merged, t, scope)
    changed = _union_all((added, modified))
    if changed is not None:
        conflicts = [
            (entry, FieldSet(clash))
            for entry in others
            if (clash := _intersection(entry.fields._tree, changed)) is not None
        ]
        if conflicts and not force:
            raise _conflict(conflicts)
    taken = FieldSet(_union_all((changed, removed)))
    result = [
        dataclasses.replace(entry, fields=entry.fields - taken)
        for entry in others
        if entry.fields - taken
    ]
    _strip_unset(merged)
    stamp = now if last is None or merged != current else last.time
    if config_fields:
        result.append(
            Entry(
                manager, Operation.APPLY, api_version, FieldSet(config_fields), stamp, subresource
            )
        )
    return _with_entries(merged, result)


def _conflict(conflicts: Sequence[tuple[Entry, FieldSet]]) -> errors.Conflict:
    found = sorted(
        (entry.describe(), render_path(path))
        for entry, fields in conflicts
        for path in fields.paths()
    )
    causes = [
        {
            "reason": errors.CauseType.FIELD_MANAGER_CONFLICT.value,
            "message": f"conflict with {who}",
            "field": path,
        }
        for who, path in found
    ]
    if len(found) == 1:
        who, path = found[0]
        message = f"Apply failed with 1 conflict: conflict with {who}: {path}"
    else:
        lines: list[str] = []
        for who, path in found:
            heading = f"conflicts with {who}:"
            if heading not in lines:
                lines.append(heading)
            lines.append(f"- {path}")
        message = f"Apply failed with {len(found)} conflicts: " + "\n".join(lines)
    return errors.Conflict(message, details={"causes": causes})
