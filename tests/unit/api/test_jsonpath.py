"""The JSONPath subset of CRDs: printer columns, selectable fields, scale paths."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, strategies as st

from arktos_lite.api import _jsonpath as jsonpath

POD: dict[str, Any] = {
    "metadata": {
        "name": "web",
        "labels": {"app.kubernetes.io/name": "web", "tier": "front"},
    },
    "spec": {"replicas": 3, "paused": False, "nothing": None, "ports": [80, 443, 8080]},
    "status": {
        "conditions": [
            {"type": "Ready", "status": "True", "count": 2},
            {"type": "Progressing", "status": "False", "count": 5},
            {"type": "Available", "status": "True"},
        ]
    },
}


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (".spec.replicas", [3]),
        ("{.spec.replicas}", [3]),
        ("{ .spec.replicas }", [3]),
        ("$.spec.replicas", [3]),
        ("{$.spec.replicas}", [3]),
        (".spec.paused", [False]),
        (".spec.nothing", [None]),
        (".spec.nothing.deeper", []),
        (".spec.missing", []),
        (".spec.replicas.deeper", []),
        (".metadata.labels['app.kubernetes.io/name']", ["web"]),
        ('.metadata.labels["app.kubernetes.io/name"]', ["web"]),
        (r".metadata.labels.app\.kubernetes\.io/name", ["web"]),
        ("['metadata']['name']", ["web"]),
        (".spec.ports[0]", [80]),
        (".spec.ports[-1]", [8080]),
        (".spec.ports[-3]", [80]),
        (".spec.ports[3]", []),
        (".spec.ports[-4]", []),
        (".spec.ports[*]", [80, 443, 8080]),
        (".spec.ports[1:]", [443, 8080]),
        (".spec.ports[:2]", [80, 443]),
        (".spec.ports[::2]", [80, 8080]),
        (".spec.ports[-2:]", [443, 8080]),
        (".metadata.labels.*", ["web", "front"]),
        (".metadata.labels[*]", ["web", "front"]),
        (".status.conditions[*].type", ["Ready", "Progressing", "Available"]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        (".status.conditions[?(@.type=='Ready')].status", ["True"]),
        ('.status.conditions[?(@.type == "Ready")].status', ["True"]),
        ('{.status.conditions[?(@.type=="Ready")].status}', ["True"]),
        ('.status.conditions[?(@.status!="True")].type', ["Progressing"]),
        ('.status.conditions[?(@.type=="Gone")].status', []),
        (".status.conditions[?(@.count==5)].type", ["Progressing"]),
        # An element without the field is left out whatever the operator.
        (".status.conditions[?(@.count!=5)].type", ["Ready"]),
        (".status.conditions[?(@.count>2)].type", ["Progressing"]),
        (".status.conditions[?(@.count<=2)].type", ["Ready"]),
        (".status.conditions[?(@.count==5.0)].type", ["Progressing"]),
        (".status.conditions[?(@.count)].type", ["Ready", "Progressing"]),
        # A string never equals a number.
        ('.status.conditions[?(@.count=="5")].type', []),
        (".spec.ports[?(@ > 100)]", [443, 8080]),
        (".", [POD]),
        # Filters apply to lists only.
        ('.metadata[?(@.name=="web")]', []),
    ],
)
def test_find(text: str, found: list[Any]) -> None:
    assert jsonpath.parse(text).find(POD) == found


def test_booleans_are_not_numbers() -> None:
    items = {"items": [{"v": True}, {"v": 1}, {"v": False}, {"v": 0}]}
    assert jsonpath.parse(".items[?(@.v==true)].v").find(items) == [True]
    assert jsonpath.parse(".items[?(@.v==1)].v").find(items) == [1]
    assert jsonpath.parse(".items[?(@.v!=false)].v").find(items) == [True, 1, 0]


def test_filter_may_compare_with_the_root() -> None:
    obj = {"want": "b", "items": [{"n": "a"}, {"n": "b"}]}
    assert jsonpath.parse(".items[?(@.n==$.want)].n").find(obj) == ["b"]


def test_quoted_names_take_escapes() -> None:
    obj = {"it's": 1, 'say "hi"': 2, "back\\slash": 3}
    assert jsonpath.parse(r"['it\'s']").find(obj) == [1]
    assert jsonpath.parse('["it\'s"]').find(obj) == [1]
    assert jsonpath.parse(r'["say \"hi\""]').find(obj) == [2]
    assert jsonpath.parse(r"['back\\slash']").find(obj) == [3]


def test_fields_of_plain_paths() -> None:
    assert jsonpath.parse(".spec.replicas").fields == ("spec", "replicas")
    assert jsonpath.parse("{.metadata.labels['a.b']}").fields == ("metadata", "labels", "a.b")
    assert jsonpath.parse(".").fields == ()
    assert jsonpath.parse(".spec.ports[0]").fields is None
    assert jsonpath.parse(".spec.*").fields is None
    assert jsonpath.parse('.a[?(@.b=="c")]').fields is None


def test_text_is_kept() -> None:
    path = jsonpath.parse("{.spec.replicas}")
    assert path.text == str(path) == "{.spec.replicas}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty expression"),
        ("{}", "empty expression"),
        ("spec.replicas", "must start with '.', '[' or '$' at position 0"),
        (".spec..replicas", "recursive descent '..' is not supported at position 5"),
        (".spec[", "unclosed '[' at position 5"),
        (".spec[0", "unclosed '[' at position 5"),
        (".spec[]", "empty '[]' at position 5"),
        (".spec[a]", "expected an index, a slice, '*', a quoted name or a filter, found 'a'"),
        (".spec[0,1]", "unions '[a,b]' are not supported"),
        (".spec[::0]", "a slice step cannot be 0"),
        (".spec['a]", "unterminated quoted string at position 6"),
        ("{.spec", "unclosed '{'"),
        ("{.a}{.b}", "only one expression is supported"),
        ("x{.a}", "must start with"),
        (".a b", "unexpected ' ' at position 2"),
        (".a\\", "a backslash ends the expression"),
        (".a[?(@.b==)]", "found nothing"),
        (".a[?(x)]", "found 'x'"),
        (".a[?('x')]", "a filter without an operator must test a path"),
        (".a[?(@.b=='x']", "expected ')'"),
        (".a[-]", "expected a number after '-'"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(jsonpath.JSONPathError) as raised:
        jsonpath.parse(text)
    assert isinstance(raised.value, ValueError)
    assert message in str(raised.value)
    assert repr(text) in str(raised.value)


# --- Properties ---------------------------------------------------------------------------

_PLAIN = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters=" \t\r\n.,[]$@{}\\'\"="),
    min_size=1,
    max_size=8,
).filter(lambda key: key != "*")  # `.*` is the wildcard
_ANY_KEY = st.text(min_size=1, max_size=8)
_LEAF = st.none() | st.booleans() | st.integers() | st.text(max_size=5)


def _escape_dotted(key: str) -> str:
    if key == "*":
        return "\\*"  # a bare "*" is the wildcard
    return "".join("\\" + c if c in " \t\r\n.,[]$@{}\\" else c for c in key)


def _quote(key: str) -> str:
    return "'" + key.replace("\\", "\\\\").replace("'", "\\'") + "'"


@st.composite
def _nested(draw: st.DrawFn, keys: st.SearchStrategy[str]) -> tuple[dict[str, Any], list[str]]:
    """A nested object, a path of keys into it and the value at its end."""
    path = draw(st.lists(keys, min_size=1, max_size=5))
    value: Any = draw(_LEAF)
    for key in reversed(path):
        siblings = draw(st.dictionaries(keys, _LEAF, max_size=3))
        siblings[key] = value
        value = siblings
    return value, path


@given(_nested(_PLAIN))
def test_dotted_paths_find_exactly_the_value(case: tuple[dict[str, Any], list[str]]) -> None:
    obj, keys = case
    expected: Any = obj
    for key in keys:
        expected = expected[key]
    path = jsonpath.parse("." + ".".join(keys))
    assert path.find(obj) == [expected]
    assert path.fields == tuple(keys)
    assert jsonpath.parse("{." + ".".join(keys) + "}").find(obj) == [expected]


@given(_nested(_ANY_KEY))
def test_any_key_can_be_reached(case: tuple[dict[str, Any], list[str]]) -> None:
    obj, keys = case
    expected: Any = obj
    for key in keys:
        expected = expected[key]
    bracketed = jsonpath.parse("".join(f"[{_quote(k)}]" for k in keys))
    assert bracketed.find(obj) == [expected]
    assert bracketed.fields == tuple(keys)
    dotted = jsonpath.parse("".join("." + _escape_dotted(k) for k in keys))
    assert dotted.find(obj) == [expected]


@given(st.lists(st.integers(), max_size=6), st.integers(-8, 8))
def test_indexes_as_python_but_missing_instead_of_errors(items: list[int], index: int) -> None:
    found = jsonpath.parse(f".items[{index}]").find({"items": items})
    assert found == ([items[index]] if -len(items) <= index < len(items) else [])


@given(
    st.lists(st.integers(), max_size=6),
    st.none() | st.integers(-8, 8),
    st.none() | st.integers(-8, 8),
)
def test_slices_as_python(items: list[int], start: int | None, end: int | None) -> None:
    text = f".items[{'' if start is None else start}:{'' if end is None else end}]"
    assert jsonpath.parse(text).find({"items": items}) == items[start:end]


@given(st.lists(st.sampled_from(["Ready", "Other", "ready", 1]), max_size=6))
def test_filter_keeps_exactly_the_matching_elements(types: list[Any]) -> None:
    obj = {"conditions": [{"type": t, "i": i} for i, t in enumerate(types)]}
    found = jsonpath.parse('.conditions[?(@.type=="Ready")].i').find(obj)
    assert found == [i for i, t in enumerate(types) if t == "Ready"]


@given(st.text(max_size=30))
def test_parse_either_succeeds_or_raises_jsonpath_error(text: str) -> None:
    try:
        path = jsonpath.parse(text)
    except jsonpath.JSONPathError:
        return
    path.find(POD)
