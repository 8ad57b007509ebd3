"""Label and field selectors: Kubernetes's grammar and matching, Arktos's OR and ranges."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, strategies as st

from arktos_lite.api import _errors as errors, _selectors as selectors
from arktos_lite.api._selectors import (
    FieldOperator,
    FieldRequirement,
    FieldSelector,
    LabelOperator,
    LabelRequirement,
    LabelSelector,
    SelectorError,
)

MAX = 2**63 - 1

# --- Label selectors: parsing ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("   ", ""),
        ("a=b", "a=b"),
        ("a==b", "a=b"),
        ("a!=b", "a!=b"),
        ("a in (x,y)", "a in (x,y)"),
        ("a in (y, x, y)", "a in (x,y)"),
        ("a notin (x,y)", "a notin (x,y)"),
        ("a", "a"),
        ("!a", "!a"),
        ("a>5", "a>5"),
        ("a<5", "a<5"),
        ("a=", "a="),
        ("a in ()", "a in ()"),
        ("a in (,x)", "a in (,x)"),
        ("a in (x,)", "a in (,x)"),
        ("a in(x)", "a in (x)"),
        (" a = b , c != d ,\te\n", "a=b,c!=d,e"),
        ("z,y=1,x", "x,y=1,z"),
        ("example.com/name=v", "example.com/name=v"),
        ("in=notin", "in=notin"),
        ("a in (in,notin)", "a in (in,notin)"),
        ("A_b.c-d=V_1.2-3", "A_b.c-d=V_1.2-3"),
    ],
)
def test_label_parse_canonical_form(text: str, canonical: str) -> None:
    selector = LabelSelector.parse(text)
    assert str(selector) == canonical
    assert LabelSelector.parse(canonical) == selector


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a=b,", "found '', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("a,,b", "found ',', expected: identifier after ','"),
        ("a=b=c", "found '=', expected: ',' or 'end of string'"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a in x", "unable to parse requirement: found 'x' expected: '('"),
        ("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'"),
        ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in (,,)", "unable to parse requirement: found ')', expected: ',', or identifier"),
        ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("a=(", "unable to parse requirement: found '(', expected: identifier"),
        ("a>x", "values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators"),
        ("a>", "for 'Gt', 'Lt' operators, the value must be an integer"),
        ("a>99999999999999999999", "the value must be an integer"),
        ("a/b/c", 'key: Invalid value: "a/b/c": a qualified name must consist of'),
        ("/a", "prefix part must be non-empty"),
        ("Example.com/a", "prefix part a lowercase RFC 1123 subdomain"),
        ("a/", "name part must be non-empty"),
        ("-a", "name part must consist of alphanumeric characters"),
        ("a" * 64, "name part must be no more than 63 characters"),
        (("p" * 254) + "/a", "prefix part must be no more than 253 characters"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a=-b", 'values[0][a]: Invalid value: "-b": a valid label must be an empty string'),
        ("a=" + "v" * 64, "must be no more than 63 characters"),
        ("a in (x,-y)", 'Invalid value: "-y"'),
    ],
)
def test_label_parse_errors(text: str, message: str) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        LabelSelector.parse(text)
    assert message in caught.value.message
    assert caught.value.code == 400


def test_label_parse_error_spells_kubernetes_regex_hint() -> None:
    with pytest.raises(errors.BadRequest) as caught:
        LabelSelector.parse("a_=b")
    assert caught.value.message == (
        'unable to parse requirement: key: Invalid value: "a_": name part must consist of '
        "alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
        "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    )


# --- Label selectors: matching ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {}, True),
        ("", {"a": "b"}, True),
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a==b", {"a": "b"}, True),
        ("a!=b", {"a": "c"}, True),
        ("a!=b", {"a": "b"}, False),
        ("a!=b", {}, True),
        ("a in (x,y)", {"a": "y"}, True),
        ("a in (x,y)", {"a": "z"}, False),
        ("a in (x,y)", {}, False),
        ("a notin (x,y)", {"a": "z"}, True),
        ("a notin (x,y)", {"a": "x"}, False),
        ("a notin (x,y)", {}, True),
        ("a", {"a": ""}, True),
        ("a", {}, False),
        ("!a", {}, True),
        ("!a", {"a": "x"}, False),
        ("a=", {"a": ""}, True),
        ("a=", {}, False),
        ("a in ()", {"a": ""}, True),
        ("a>5", {"a": "6"}, True),
        ("a>5", {"a": "5"}, False),
        ("a>5", {"a": "+6"}, True),
        ("a>5", {"a": "x"}, False),
        ("a>5", {"a": "6.0"}, False),
        ("a>5", {"a": " 6"}, False),
        ("a>5", {"a": "1_0"}, False),
        ("a>5", {"a": "٦"}, False),
        ("a>5", {"a": str(2**63)}, False),
        ("a>5", {}, False),
        ("a<5", {"a": "-7"}, True),
        ("a<5", {"a": "5"}, False),
        ("a<5", {"a": "05"}, False),
        ("a<10", {"a": "09"}, True),
        ("a=b,c", {"a": "b", "c": "d"}, True),
        ("a=b,c", {"a": "b"}, False),
        ("a>1,a<3", {"a": "2"}, True),
        ("a>1,a<3", {"a": "3"}, False),
        ("example.com/n=v", {"example.com/n": "v"}, True),
    ],
)
def test_label_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert LabelSelector.parse(text).matches(labels) is expected


def test_empty_label_selector() -> None:
    assert LabelSelector().empty
    assert LabelSelector.parse("").empty
    assert not LabelSelector.parse("a").empty
    assert LabelSelector() == LabelSelector.parse("")


def test_label_requirement_validates_and_normalizes() -> None:
    requirement = LabelRequirement("k", LabelOperator.IN, ("b", "a", "b"))
    assert requirement.values == ("a", "b")
    with pytest.raises(SelectorError, match="values set can't be empty"):
        LabelRequirement("k", LabelOperator.IN, ())
    with pytest.raises(SelectorError, match="exact-match compatibility requires one single"):
        LabelRequirement("k", LabelOperator.EQUALS, ("a", "b"))
    with pytest.raises(SelectorError, match="values set must be empty"):
        LabelRequirement("k", LabelOperator.EXISTS, ("a",))
    with pytest.raises(SelectorError, match="exactly one value is required"):
        LabelRequirement("k", LabelOperator.GREATER_THAN, ())
    with pytest.raises(SelectorError) as caught:
        LabelRequirement("-k", LabelOperator.EQUALS, ("-v",))
    assert [e.field for e in caught.value.field_errors] == ["key", "values[0][-k]"]
    with pytest.raises(TypeError):
        LabelRequirement("k", LabelOperator.IN, "abc")  # type: ignore[arg-type]


# --- Label selectors: structured form --------------------------------------------------


def test_from_dict_combines_match_labels_and_expressions() -> None:
    selector = LabelSelector.from_dict(
        {
            "matchLabels": {"app": "web", "tier": "front"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "NotIn", "values": ["b"]},
                {"key": "team", "operator": "Exists", "values": []},
            ],
        }
    )
    assert str(selector) == "app=web,!canary,env in (prod,staging),team,tier=front,zone notin (b)"
    assert LabelSelector.parse(str(selector)) == selector
    labels = {"app": "web", "tier": "front", "env": "prod", "team": "x", "zone": "a"}
    assert selector.matches(labels)
    assert not selector.matches({**labels, "canary": "1"})
    assert not selector.matches({**labels, "zone": "b"})


@pytest.mark.parametrize("selector", [{}, {"matchLabels": {}}, {"matchExpressions": []}])
def test_from_dict_empty_matches_everything(selector: dict[str, Any]) -> None:
    assert LabelSelector.from_dict(selector).empty


def test_from_labels() -> None:
    selector = LabelSelector.from_labels({"app": "web"})
    assert selector == LabelSelector.parse("app=web")
    assert LabelSelector.from_labels({}).empty


@pytest.mark.parametrize(
    ("selector", "field", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            "spec.selector.matchExpressions[0].values",
            "Required value: must be specified when `operator` is 'In' or 'NotIn'",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]},
            "spec.selector.matchExpressions[0].values",
            "must be specified when `operator` is 'In' or 'NotIn'",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            "spec.selector.matchExpressions[0].values",
            "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "DoesNotExist", "values": ["x"]}]},
            "spec.selector.matchExpressions[0].values",
            "may not be specified",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            "spec.selector.matchExpressions[0].operator",
            'Invalid value: "Gt": not a valid selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a b", "operator": "Exists"}]},
            "spec.selector.matchExpressions[0].key",
            'Invalid value: "a b": name part must consist of',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["x y"]}]},
            "spec.selector.matchExpressions[0].values[0]",
            'Invalid value: "x y": a valid label must be',
        ),
        (
            {"matchLabels": {"a/b/c": "x"}},
            "spec.selector.matchLabels",
            'Invalid value: "a/b/c"',
        ),
        ({"matchLabels": {"a": "-x"}}, "spec.selector.matchLabels", 'Invalid value: "-x"'),
        ({"matchLabels": {"a": 1}}, "spec.selector.matchLabels", "must be strings"),
        ({"matchLabels": ["a"]}, "spec.selector.matchLabels", "must be an object"),
        ({"matchExpressions": {}}, "spec.selector.matchExpressions", "must be a list"),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]},
            "spec.selector.matchExpressions[0].values",
            "must be a list of strings",
        ),
    ],
)
def test_from_dict_errors(selector: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        LabelSelector.from_dict(selector, path="spec.selector")
    assert isinstance(caught.value, ValueError)
    assert any(e.field == field and message in e.message for e in caught.value.field_errors), (
        caught.value.field_errors
    )


def test_from_dict_reports_every_problem() -> None:
    with pytest.raises(SelectorError) as caught:
        LabelSelector.from_dict(
            {
                "matchExpressions": [
                    {"key": "a", "operator": "In"},
                    {"key": "b", "operator": "Exists", "values": ["x"]},
                ]
            }
        )
    assert [e.field for e in caught.value.field_errors] == [
        "matchExpressions[0].values",
        "matchExpressions[1].values",
    ]
    assert str(caught.value).startswith("[matchExpressions[0].values: Required value")


# --- Label selectors: properties -------------------------------------------------------

_names = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,8}[A-Za-z0-9])?", fullmatch=True)
_prefixes = st.from_regex(
    r"[a-z0-9]([-a-z0-9]{0,4}[a-z0-9])?(\.[a-z0-9]{1,4}){0,2}", fullmatch=True
)
_keys = st.one_of(_names, st.builds(lambda p, n: f"{p}/{n}", _prefixes, _names))
_values = st.one_of(st.just(""), _names)
_integers = st.integers(min_value=0, max_value=10**6).map(str)


@st.composite
def _label_requirements(
    draw: st.DrawFn,
    keys: st.SearchStrategy[str] = _keys,
    values: st.SearchStrategy[str] = _values,
) -> Any:
    key = draw(keys)
    operator = draw(st.sampled_from(list(LabelOperator)))
    if operator in (LabelOperator.IN, LabelOperator.NOT_IN):
        chosen = tuple(draw(st.lists(values, min_size=1, max_size=4)))
    elif operator in (LabelOperator.EXISTS, LabelOperator.DOES_NOT_EXIST):
        chosen = ()
    elif operator in (LabelOperator.GREATER_THAN, LabelOperator.LESS_THAN):
        chosen = (draw(_integers),)
    else:
        chosen = (draw(values),)
    return key, operator, chosen


@given(st.lists(_label_requirements(), max_size=6))
def test_label_selector_round_trips(
    specs: list[tuple[str, LabelOperator, tuple[str, ...]]],
) -> None:
    selector = LabelSelector(tuple(LabelRequirement(k, op, v) for k, op, v in specs))
    assert LabelSelector.parse(str(selector)) == selector


def _reference_int64(value: str | None) -> int | None:
    if value is None or not re.fullmatch(r"[+-]?[0-9]+", value):
        return None
    return int(value) if -(2**63) <= int(value) < 2**63 else None


def _reference_label_match(
    labels: Mapping[str, str], specs: list[tuple[str, LabelOperator, tuple[str, ...]]]
) -> bool:
    for key, op, values in specs:
        present = key in labels
        value = labels.get(key)
        if op == LabelOperator.EXISTS:
            ok = present
        elif op == LabelOperator.DOES_NOT_EXIST:
            ok = not present
        elif op in (LabelOperator.EQUALS, LabelOperator.IN):
            ok = present and value in values
        elif op in (LabelOperator.NOT_EQUALS, LabelOperator.NOT_IN):
            ok = not present or value not in values
        else:
            number = _reference_int64(value)
            if number is None:
                ok = False
            elif op == LabelOperator.GREATER_THAN:
                ok = number > int(values[0])
            else:
                ok = number < int(values[0])
        if not ok:
            return False
    return True


def _spell(key: str, op: LabelOperator, values: tuple[str, ...], space: str) -> str:
    """Write a requirement the way a user might, spacing and `==` included."""
    if op == LabelOperator.EXISTS:
        return key
    if op == LabelOperator.DOES_NOT_EXIST:
        return f"!{space}{key}"
    if op in (LabelOperator.IN, LabelOperator.NOT_IN):
        # An empty value may stand in one empty place: `(,x)`; `(,,)` is an error.
        places = f"{space},{space}".join(dict.fromkeys(values))
        return f"{key} {op.value}{space}({space}{places}{space})"
    symbol = {
        LabelOperator.EQUALS: "==" if space else "=",
        LabelOperator.NOT_EQUALS: "!=",
        LabelOperator.GREATER_THAN: ">",
        LabelOperator.LESS_THAN: "<",
    }[op]
    return f"{key}{space}{symbol}{space}{values[0]}"


_small_keys = st.sampled_from(["a", "b", "example.com/c"])
_small_values = st.sampled_from(["", "x", "y", "0", "3", "7", "12", "-1", "+4", "z9"])


@given(
    labels=st.dictionaries(_small_keys, _small_values, max_size=3),
    specs=st.lists(
        _label_requirements(keys=_small_keys, values=_small_values).filter(
            lambda s: not any(v[:1] in "-+" and v for v in s[2])
        ),
        max_size=4,
    ),
    space=st.sampled_from(["", " ", "  \t"]),
)
def test_label_matching_agrees_with_reference(
    labels: dict[str, str],
    specs: list[tuple[str, LabelOperator, tuple[str, ...]]],
    space: str,
) -> None:
    text = f"{space},{space}".join(_spell(k, op, v, space) for k, op, v in specs)
    selector = LabelSelector.parse(text)
    assert selector.matches(labels) == _reference_label_match(labels, specs)


# --- Field selectors: parsing ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        (",", ""),
        (";", ""),
        ("a=1;", "a=1"),
        ("a=1,;b=2", "a=1;b=2"),
        ("metadata.name=x", "metadata.name=x"),
        ("metadata.name==x", "metadata.name=x"),
        ("metadata.name!=x", "metadata.name!=x"),
        ("spec.nodeName=", "spec.nodeName="),
        ("b=2,a=1", "a=1,b=2"),
        ("c=3;b=2,a=1", "a=1,b=2;c=3"),
        ("metadata.hashkey=gt:5", "metadata.hashkey=gt:5"),
        ("metadata.hashkey=gte:+05", "metadata.hashkey=gte:5"),
        ("metadata.hashkey=lt:-3", "metadata.hashkey=lt:-3"),
        ("metadata.hashkey=lte:9223372036854775807", "metadata.hashkey=lte:9223372036854775807"),
        ("a==gt:5", "a==gt:5"),
        ("a!=lt:5", "a!=lt:5"),
        (r"a=x\,y\=z\\w\;v", r"a=x\,y\=z\\w\;v"),
        ("a = b", "a = b"),
        ("=x", "=x"),
    ],
)
def test_field_parse_canonical_form(text: str, canonical: str) -> None:
    selector = FieldSelector.parse(text)
    assert str(selector) == canonical
    assert FieldSelector.parse(canonical) == selector


def test_field_parse_unescapes_values() -> None:
    selector = FieldSelector.parse(r"a=x\,y\=z\\w\;v")
    (branch,) = selector.branches
    assert branch == (FieldRequirement("a", FieldOperator.EQUALS, "x,y=z\\w;v"),)


def test_field_parse_or_of_ands() -> None:
    selector = FieldSelector.parse("a=1,b=2;c=3")
    assert selector.branches == (
        (
            FieldRequirement("a", FieldOperator.EQUALS, "1"),
            FieldRequirement("b", FieldOperator.EQUALS, "2"),
        ),
        (FieldRequirement("c", FieldOperator.EQUALS, "3"),),
    )
    assert selector.fields == {"a", "b", "c"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a", "invalid selector: 'a'; can't understand 'a'"),
        ("a=1,b", "invalid selector: 'a=1,b'; can't understand 'b'"),
        (" ", "invalid selector: ' '; can't understand ' '"),
        ("a=b=c", "invalid field selector: unescaped character in value: '='"),
        (r"a=\q", r"invalid field selector: invalid escape sequence: \q"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
        ("a=gt:x", "can't understand 'a=gt:x': Invalid value: \"x\": the operator gt needs"),
        ("a=gte:", "the operator gte needs a decimal int64"),
        ("a=lt:1.5", "the operator lt needs a decimal int64"),
        ("a=lte:9223372036854775808", "the operator lte needs a decimal int64"),
        ("a=gt: 1", "needs a decimal int64"),
        (r"a\,b=c", "can't understand 'a\\,b=c'"),
    ],
)
def test_field_parse_errors(text: str, message: str) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        FieldSelector.parse(text)
    assert message in caught.value.message


def test_field_requirement_rejects_unwritable_fields() -> None:
    for field in ("a,b", "a;b", "a=b", "a\\b", "a!"):
        with pytest.raises(SelectorError):
            FieldRequirement(field, FieldOperator.EQUALS, "x")
    with pytest.raises(SelectorError, match="needs a decimal int64"):
        FieldRequirement("a", FieldOperator.GREATER_THAN, "x")


def test_field_selector_with_an_empty_branch_matches_everything() -> None:
    selector = FieldSelector(((FieldRequirement("a", FieldOperator.EQUALS, "1"),), ()))
    assert selector.empty
    assert selector.matches_fields({"a": "2"})


# --- Field selectors: matching ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    [
        ("", {}, True),
        ("a=1", {"a": "1"}, True),
        ("a=1", {"a": "2"}, False),
        ("a==1", {"a": "1"}, True),
        ("a!=1", {"a": "2"}, True),
        ("a!=1", {}, True),
        ("a=", {}, True),
        ("a=", {"a": "x"}, False),
        ("a!=", {}, False),
        ("a=1,b=2", {"a": "1", "b": "2"}, True),
        ("a=1,b=2", {"a": "1", "b": "3"}, False),
        ("a=1,b=2;c=3", {"c": "3"}, True),
        ("a=1,b=2;c=3", {"a": "1", "c": "4"}, False),
        ("a=gt:5", {"a": "6"}, True),
        ("a=gt:5", {"a": "5"}, False),
        ("a=gte:5", {"a": "5"}, True),
        ("a=lt:5", {"a": "5"}, False),
        ("a=lt:5", {"a": "-5"}, True),
        ("a=lte:5", {"a": "5"}, True),
        ("a=gt:5", {"a": "x"}, False),
        ("a=lt:5", {"a": "x"}, False),
        ("a=lt:5", {}, False),
        ("a=lt:5", {"a": ""}, False),
        ("a=gt:5", {"a": "9223372036854775808"}, False),
        ("a==gt:5", {"a": "gt:5"}, True),
        (r"a=x\,y", {"a": "x,y"}, True),
    ],
)
def test_field_matches(text: str, fields: dict[str, str], expected: bool) -> None:
    assert FieldSelector.parse(text).matches_fields(fields) is expected


def _pod(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "tenant": "t1",
            "hashKey": 1234,
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": "rs", "hashKey": 500, "controller": True},
                {"kind": "Job", "name": "j", "hashKey": 7},
            ],
        },
        "spec": spec,
        "status": {"phase": "Running"},
    }


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("metadata.name", ("p",)),
        ("metadata.namespace", ("ns",)),
        ("metadata.tenant", ("t1",)),
        ("metadata.hashkey", ("1234",)),
        ("metadata.ownerReferences.hashkey.ReplicaSet", ("500",)),
        ("metadata.ownerReferences.hashkey.Job", ("7",)),
        ("metadata.ownerReferences.hashkey.Deployment", ()),
        ("status.phase", ("Running",)),
        ("spec.nodeName", ()),
        ("spec.restartPolicy.x", ()),
        ("metadata", ()),
        ("spec.hostNetwork", ("false",)),
        ("spec.priority", ("0",)),
    ],
)
def test_field_values(field: str, values: tuple[str, ...]) -> None:
    pod = _pod(hostNetwork=False, priority=0)
    assert selectors.field_values(pod, field) == values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metadata.name=p", True),
        ("metadata.name=q", False),
        ("metadata.name=q;metadata.namespace=ns", True),
        ("spec.nodeName=", True),
        ("spec.nodeName!=", False),
        ("status.phase=Running,metadata.tenant=t1", True),
        ("metadata.hashkey=gt:1000,metadata.hashkey=lte:2000", True),
        ("metadata.hashkey=gt:1234", False),
        ("metadata.hashkey=1234", True),
        ("metadata.ownerReferences.hashkey.ReplicaSet=gt:0,"
         "metadata.ownerReferences.hashkey.ReplicaSet=lte:500", True),
        ("metadata.ownerReferences.hashkey.ReplicaSet=gt:500", False),
        ("metadata.ownerReferences.hashkey.Deployment=gte:0", False),
        ("metadata.ownerReferences.hashkey.Deployment=", True),
    ],
)  # fmt: skip
def test_field_matches_object(text: str, expected: bool) -> None:
    assert FieldSelector.parse(text).matches(_pod()) is expected


def test_boolean_fields_read_true_and_false() -> None:
    action = {"metadata": {"name": "a"}, "spec": {"nodeName": "n1"}, "status": {"complete": True}}
    assert FieldSelector.parse("status.complete=true,spec.nodeName=n1").matches(action)
    assert not FieldSelector.parse("status.complete=false").matches(action)
    assert FieldSelector.parse("status.complete=").matches({"metadata": {}})


def test_one_owner_must_satisfy_every_term_on_its_field() -> None:
    pod = {
        "metadata": {
            "ownerReferences": [
                {"kind": "ReplicaSet", "hashKey": 5},
                {"kind": "ReplicaSet", "hashKey": 100},
            ]
        }
    }
    field = "metadata.ownerReferences.hashkey.ReplicaSet"
    # 100 > 10 and 5 <= 20, but no single owner lies in (10, 20].
    assert not FieldSelector.parse(f"{field}=gt:10,{field}=lte:20").matches(pod)
    assert FieldSelector.parse(f"{field}=gt:50,{field}=lte:200").matches(pod)
    assert FieldSelector.parse(f"{field}=gt:0,{field}=lte:5").matches(pod)


def test_matches_fields_takes_a_lookup_with_several_values() -> None:
    selector = FieldSelector.parse("x=gt:1,x=lt:3")
    assert selector.matches_fields(lambda name: ["0", "2"])
    assert not selector.matches_fields(lambda name: ["0", "4"])
    assert not selector.matches_fields(lambda name: [])
    assert FieldSelector.parse("x=").matches_fields(lambda name: [])
    assert FieldSelector.parse("x=2").matches_fields(lambda name: "2")


# --- Field selectors: helpers for the API server ---------------------------------------


def test_validate_names_the_unsupported_field() -> None:
    supported = {"metadata.name", "metadata.namespace", "metadata.hashkey"}
    FieldSelector.parse("metadata.name=x;metadata.hashkey=gt:1").validate(supported)
    with pytest.raises(errors.BadRequest) as caught:
        FieldSelector.parse("metadata.name=x,spec.foo=y").validate(supported)
    assert caught.value.message == "field label not supported: spec.foo"
    with pytest.raises(errors.BadRequest, match=r"field label not supported: metadata\.name $"):
        FieldSelector.parse("metadata.name =x").validate(supported)


def test_validate_accepts_prefix_entries() -> None:
    supported = {"metadata.ownerReferences.hashkey.*"}
    FieldSelector.parse("metadata.ownerReferences.hashkey.ReplicaSet=gt:1").validate(supported)
    with pytest.raises(errors.BadRequest) as caught:
        FieldSelector.parse("metadata.ownerReferences.hashkey.=1").validate(supported)
    assert caught.value.message == "field label not supported: metadata.ownerReferences.hashkey."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("metadata.name=x", "x"),
        ("metadata.name==x,status.phase=Running", "x"),
        ("metadata.name!=x", None),
        ("metadata.name=x;metadata.name=x,spec.nodeName=n", "x"),
        ("metadata.name=x;metadata.name=y", None),
        ("metadata.name=x;spec.nodeName=n", None),
        ("metadata.name=x,metadata.name=y", None),
        ("spec.nodeName=", ""),
    ],
)
def test_requires_exact(text: str, expected: str | None) -> None:
    assert FieldSelector.parse(text).requires_exact(text.split("=")[0] or "x") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("metadata.name=x", None),
        ("metadata.hashkey=gt:5;metadata.name=x", None),
        ("metadata.hashkey!=5", None),
        ("metadata.hashkey=gt:5", [(6, MAX)]),
        ("metadata.hashkey=gte:0,metadata.hashkey=lte:10", [(0, 10)]),
        ("metadata.hashkey=gt:10,metadata.hashkey=lt:5", []),
        ("metadata.hashkey=7", [(7, 7)]),
        ("metadata.hashkey=x", []),
        ("metadata.hashkey=lt:5;metadata.hashkey=gt:4", [(-(2**63), MAX)]),
        ("metadata.hashkey=lte:5;metadata.hashkey=gt:6", [(-(2**63), 5), (7, MAX)]),
        ("metadata.hashkey=lte:5;metadata.hashkey=gt:5,metadata.hashkey=lte:9", [(-(2**63), 9)]),
        ("metadata.hashkey=gt:9223372036854775807", []),
    ],
)
def test_hash_ranges(text: str, expected: list[tuple[int, int]] | None) -> None:
    assert FieldSelector.parse(text).hash_ranges("metadata.hashkey") == expected


# --- Field selectors: properties -------------------------------------------------------

_field_names = st.text(alphabet="abcXY.:!_ -", min_size=0, max_size=8).filter(
    lambda f: not f.endswith("!")
)
_field_values = st.text(max_size=8)
_bounds = st.integers(min_value=-(2**63), max_value=MAX).map(str)


@st.composite
def _field_requirements(draw: st.DrawFn) -> FieldRequirement:
    operator = draw(st.sampled_from(list(FieldOperator)))
    field = draw(_field_names)
    if operator in (FieldOperator.EQUALS, FieldOperator.NOT_EQUALS):
        return FieldRequirement(field, operator, draw(_field_values))
    return FieldRequirement(field, operator, draw(_bounds))


@given(st.lists(st.lists(_field_requirements(), min_size=1, max_size=4), max_size=4))
def test_field_selector_round_trips(branches: list[list[FieldRequirement]]) -> None:
    selector = FieldSelector(tuple(tuple(b) for b in branches))
    assert FieldSelector.parse(str(selector)) == selector


def _reference_field_match(
    fields: Mapping[str, str], branches: list[list[tuple[str, str, int | str]]]
) -> bool:
    if not branches:
        return True
    for branch in branches:
        ok = True
        for name, op, operand in branch:
            actual = fields.get(name, "")
            if op == "=":
                ok = ok and actual == operand
            elif op == "!=":
                ok = ok and actual != operand
            else:
                number = _reference_int64(actual)
                assert isinstance(operand, int)
                if number is None:
                    ok = False
                elif op == "gt":
                    ok = ok and number > operand
                elif op == "gte":
                    ok = ok and number >= operand
                elif op == "lt":
                    ok = ok and number < operand
                else:
                    ok = ok and number <= operand
        if ok:
            return True
    return False


_small_fields = st.sampled_from(["a", "b.c", "metadata.hashkey"])
_small_field_values = st.sampled_from(["", "1", "2", "10", "-3", "x", "a,b", "a=b"])


@st.composite
def _field_terms(draw: st.DrawFn) -> tuple[str, str, int | str]:
    name = draw(_small_fields)
    op = draw(st.sampled_from(["=", "!=", "gt", "gte", "lt", "lte"]))
    if op in ("=", "!="):
        return name, op, draw(_small_field_values)
    return name, op, draw(st.integers(min_value=-5, max_value=12))


def _write_term(name: str, op: str, operand: int | str) -> str:
    if op in ("=", "!="):
        assert isinstance(operand, str)
        escaped = operand.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        return f"{name}{op}{escaped}"
    return f"{name}={op}:{operand}"


@given(
    fields=st.dictionaries(_small_fields, _small_field_values),
    branches=st.lists(st.lists(_field_terms(), min_size=1, max_size=3), max_size=3),
)
def test_field_matching_agrees_with_reference(
    fields: dict[str, str], branches: list[list[tuple[str, str, int | str]]]
) -> None:
    text = ";".join(",".join(_write_term(*term) for term in branch) for branch in branches)
    assert FieldSelector.parse(text).matches_fields(fields) == _reference_field_match(
        fields, branches
    )


def _instance_keys(count: int) -> list[int]:
    """Arktos's controller keys: (0, 2^63-1] split evenly, each key an inclusive end."""
    return [-(-MAX * (i + 1) // count) for i in range(count)]


def _instance_selectors(count: int) -> list[FieldSelector]:
    keys = _instance_keys(count)
    texts = [f"metadata.hashkey=gte:0,metadata.hashkey=lte:{keys[0]}"] + [
        f"metadata.hashkey=gt:{keys[i - 1]},metadata.hashkey=lte:{keys[i]}" for i in range(1, count)
    ]
    return [FieldSelector.parse(text) for text in texts]


def test_instance_keys_are_arktos_keys() -> None:
    assert _instance_keys(2) == [4611686018427387904, 9223372036854775807]
    assert _instance_keys(3) == [3074457345618258603, 6148914691236517205, 9223372036854775807]


@given(
    count=st.integers(min_value=1, max_value=16),
    hash_key=st.one_of(
        st.integers(min_value=0, max_value=MAX),
        st.sampled_from([0, 1, 4611686018427387904, 4611686018427387905, MAX]),
    ),
)
def test_every_hash_key_belongs_to_exactly_one_instance(count: int, hash_key: int) -> None:
    pod = {"metadata": {"hashKey": hash_key}}
    owned = {"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "hashKey": hash_key}]}}
    instances = _instance_selectors(count)
    assert sum(s.matches(pod) for s in instances) == 1
    owner_field = "metadata.ownerReferences.hashkey.ReplicaSet"
    by_owner = [
        FieldSelector.parse(str(s).replace("metadata.hashkey", owner_field)) for s in instances
    ]
    assert sum(s.matches(owned) for s in by_owner) == 1
    ranges = [s.hash_ranges("metadata.hashkey") for s in instances]
    hits = [r for r in ranges if r and any(lo <= hash_key <= hi for lo, hi in r)]
    assert len(hits) == 1
