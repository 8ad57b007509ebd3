"""Label and field selectors, parsed and matched as Kubernetes and Arktos do.

Label selectors follow `k8s.io/apimachinery/pkg/labels`: the same grammar, the same key
and value validation, the same matching (`!=` and `notin` match objects without the
label; `>`/`<` compare integers and never match a non-integer label). Field selectors
follow `k8s.io/apimachinery/pkg/fields` with the Arktos extensions: `;` is OR between
comma groups, and `=gt:N`, `=gte:N`, `=lt:N`, `=lte:N` compare int64 values.

Errors follow one rule: text from a request (`LabelSelector.parse`, `FieldSelector.parse`,
`FieldSelector.validate`) raises `errors.BadRequest`, which the API server answers with
400 as it stands. Everything built from structured data (a `metav1.LabelSelector` inside
an object, or values constructed in code) raises `SelectorError`, a `ValueError` that
carries `errors.FieldError`s so that object validation can turn them into `Invalid`
causes under the path it passes in.

Selectors are frozen values with a canonical order: two selectors that say the same
thing in a different order compare equal, and `parse(str(selector)) == selector`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from arktos_lite.api import _errors as errors

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

HASHKEY_FIELD = "metadata.hashkey"
"""Arktos's field label for `metadata.hashKey`."""

OWNER_HASHKEY_PREFIX = "metadata.ownerReferences.hashkey."
"""Prefix of Arktos's owner-hash field labels; the owner's kind follows it."""


class SelectorError(ValueError):
    """A selector built from structured data is invalid.

    `field_errors` name the offending fields under the path given to the constructor that
    raised, ready for `errors.Invalid.for_object`.
    """

    def __init__(self, field_errors: Sequence[errors.FieldError]) -> None:
        self.field_errors = tuple(field_errors)
        super().__init__(_aggregate(self.field_errors))


def _aggregate(field_errors: Sequence[errors.FieldError]) -> str:
    # apimachinery's aggregate error: one error bare, several in brackets.
    if len(field_errors) == 1:
        return str(field_errors[0])
    return "[" + ", ".join(map(str, field_errors)) + "]"


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# --- Validation of label keys and values (apimachinery/pkg/util/validation) -----------

_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_QUALIFIED_NAME_MAX = 63
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = f"{_DNS1123_LABEL_FMT}(\\.{_DNS1123_LABEL_FMT})*"
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MAX = 253
_LABEL_VALUE_FMT = f"({_QUALIFIED_NAME_FMT})?"
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, "
    "'-', '_' or '.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE_MAX = 63

_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    # Worded as apimachinery's RegexError, spacing included: clients match on it.
    shown = "".join(("" if i == 0 else " or ") + f"'{e}', " for i, e in enumerate(examples))
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len(limit: int) -> str:
    return f"must be no more than {limit} characters"


def qualified_name_problems(value: str) -> list[str]:
    """Why `value` is not a qualified name (a label key): `[prefix/]name`; [] if it is."""
    problems: list[str] = []
    parts = value.split("/")
    if len(parts) > 2:
        return [
            "a qualified name "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            problems.append("prefix part must be non-empty")
        else:
            if len(prefix) > _DNS1123_SUBDOMAIN_MAX:
                problems.append("prefix part " + _max_len(_DNS1123_SUBDOMAIN_MAX))
            if not _DNS1123_SUBDOMAIN_RE.fullmatch(prefix):
                problems.append(
                    "prefix part "
                    + _regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com")
                )
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > _QUALIFIED_NAME_MAX:
        problems.append("name part " + _max_len(_QUALIFIED_NAME_MAX))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        problems.append(
            "name part "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return problems


def label_value_problems(value: str) -> list[str]:
    """Why `value` is not a valid label value; [] if it is."""
    problems: list[str] = []
    if len(value) > _LABEL_VALUE_MAX:
        problems.append(_max_len(_LABEL_VALUE_MAX))
    if not _LABEL_VALUE_RE.fullmatch(value):
        problems.append(
            _regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
        )
    return problems


_INT_RE = re.compile(r"[+-]?[0-9]+")


def _parse_int64(text: str) -> int | None:
    """`text` as Go's `strconv.ParseInt(text, 10, 64)` reads it, or None."""
    if not _INT_RE.fullmatch(text):
        return None
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else None


# --- Label selectors -------------------------------------------------------------------


class LabelOperator(enum.StrEnum):
    """Label requirement operators, spelled as apimachinery's `selection.Operator`."""

    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_ONE_VALUE = frozenset(
    {
        LabelOperator.EQUALS,
        LabelOperator.NOT_EQUALS,
        LabelOperator.GREATER_THAN,
        LabelOperator.LESS_THAN,
    }
)


def _requirement_problems(
    key: str, operator: LabelOperator, values: Sequence[str]
) -> list[errors.FieldError]:
    # The checks (and words) of apimachinery's labels.NewRequirement.
    found: list[errors.FieldError] = []
    invalid = errors.CauseType.INVALID
    if problems := qualified_name_problems(key):
        found.append(errors.FieldError(invalid, "key", "; ".join(problems), key))
    if operator in (LabelOperator.IN, LabelOperator.NOT_IN):
        if not values:
            found.append(
                errors.FieldError(
                    invalid,
                    "values",
                    "for 'in', 'notin' operators, values set can't be empty",
                    list(values),
                )
            )
    elif operator in (LabelOperator.EQUALS, LabelOperator.NOT_EQUALS):
        if len(values) != 1:
            found.append(
                errors.FieldError(
                    invalid,
                    "values",
                    "exact-match compatibility requires one single value",
                    list(values),
                )
            )
    elif operator in (LabelOperator.EXISTS, LabelOperator.DOES_NOT_EXIST):
        if values:
            found.append(
                errors.FieldError(
                    invalid,
                    "values",
                    "values set must be empty for exists and does not exist",
                    list(values),
                )
            )
    else:
        if len(values) != 1:
            found.append(
                errors.FieldError(
                    invalid,
                    "values",
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                    list(values),
                )
            )
        for i, value in enumerate(values):
            if _parse_int64(value) is None:
                found.append(
                    errors.FieldError(
                        invalid,
                        f"values[{i}]",
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                        value,
                    )
                )
    for i, value in enumerate(values):
        if problems := label_value_problems(value):
            found.append(
                errors.FieldError(invalid, f"values[{i}][{key}]", "; ".join(problems), value)
            )
    return found


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class LabelRequirement:
    """One condition on one label, e.g. `tier in (web,db)`.

    Constructing one validates it (raising `SelectorError`) and keeps `values` sorted and
    without duplicates, since they are a set. `==` is spelled `EQUALS`; both mean the same.
    """

    key: str
    operator: LabelOperator
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.values, str):
            raise TypeError("values must be a sequence of strings, not a string")
        operator = LabelOperator(self.operator)
        values = tuple(sorted(set(self.values)))
        if operator in _ONE_VALUE and len(self.values) != len(values):
            values = tuple(self.values)  # let the count check below report it
        object.__setattr__(self, "operator", operator)
        object.__setattr__(self, "values", values)
        if found := _requirement_problems(self.key, operator, values):
            raise SelectorError(found)

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op is LabelOperator.EXISTS:
            return self.key in labels
        if op is LabelOperator.DOES_NOT_EXIST:
            return self.key not in labels
        if op in (LabelOperator.EQUALS, LabelOperator.IN):
            return self.key in labels and labels[self.key] in self.values
        if op in (LabelOperator.NOT_EQUALS, LabelOperator.NOT_IN):
            return self.key not in labels or labels[self.key] not in self.values
        # Gt and Lt: the label must be an int64; otherwise there is nothing to compare.
        if self.key not in labels:
            return False
        actual = _parse_int64(labels[self.key])
        bound = _parse_int64(self.values[0])
        if actual is None or bound is None:
            return False
        return actual > bound if op is LabelOperator.GREATER_THAN else actual < bound

    def __str__(self) -> str:
        op = self.operator
        if op is LabelOperator.EXISTS:
            return self.key
        if op is LabelOperator.DOES_NOT_EXIST:
            return f"!{self.key}"
        if op in (LabelOperator.IN, LabelOperator.NOT_IN):
            return f"{self.key} {op.value} ({','.join(self.values)})"
        symbol = {LabelOperator.GREATER_THAN: ">", LabelOperator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{self.values[0]}"


@dataclasses.dataclass(frozen=True, slots=True)
class LabelSelector:
    """The AND of label requirements; with none it matches everything.

    A missing (`None`) structured selector is not representable here on purpose: whether
    it means "everything" or "nothing" depends on the field that holds it (a Service
    without a selector selects no pods, a nil PodDisruptionBudget selector matches
    nothing, an empty `{}` selector matches everything), so the caller decides.
    """

    requirements: tuple[LabelRequirement, ...] = ()

    def __post_init__(self) -> None:
        # Sorted by key as apimachinery sorts them, then by the rest for a total order.
        object.__setattr__(self, "requirements", tuple(sorted(self.requirements)))

    @property
    def empty(self) -> bool:
        """True if the selector matches every set of labels."""
        return not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(map(str, self.requirements))

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Parse the `labelSelector` query parameter form; raises `errors.BadRequest`."""
        return cls(tuple(_LabelParser(text).parse()))

    @classmethod
    def from_labels(cls, labels: Mapping[str, str], *, path: str = "") -> LabelSelector:
        """The selector requiring every label in `labels` (a Service's `spec.selector`).

        Empty `labels` give the empty selector. Raises `SelectorError`.
        """
        return cls.from_dict({"matchLabels": labels}, path=path)

    @classmethod
    def from_dict(cls, selector: Mapping[str, Any], *, path: str = "") -> LabelSelector:
        """Read a structured `metav1.LabelSelector` (`matchLabels`, `matchExpressions`).

        Validates as kube-apiserver validates a selector inside an object and raises
        `SelectorError` with every problem, its fields under `path` (e.g. `spec.selector`).
        """
        found: list[errors.FieldError] = []
        requirements: list[LabelRequirement] = []
        if not isinstance(selector, Mapping):
            raise SelectorError([_type_error(path, "must be an object")])
        match_labels = _or_default(selector.get("matchLabels"), {})
        labels_path = _child(path, "matchLabels")
        if not isinstance(match_labels, Mapping):
            found.append(_type_error(labels_path, "must be an object"))
            match_labels = {}
        for key, value in match_labels.items():
            if not isinstance(key, str) or not isinstance(value, str):
                found.append(_type_error(labels_path, "keys and values must be strings"))
                continue
            problems = [
                errors.FieldError(errors.CauseType.INVALID, labels_path, problem, key)
                for problem in qualified_name_problems(key)
            ] + [
                errors.FieldError(errors.CauseType.INVALID, labels_path, problem, value)
                for problem in label_value_problems(value)
            ]
            if problems:
                found.extend(problems)
            else:
                requirements.append(LabelRequirement(key, LabelOperator.EQUALS, (value,)))
        expressions = _or_default(selector.get("matchExpressions"), [])
        expressions_path = _child(path, "matchExpressions")
        if not isinstance(expressions, list):
            found.append(_type_error(expressions_path, "must be a list"))
            expressions = []
        for i, expression in enumerate(expressions):
            requirement = _read_expression(expression, f"{expressions_path}[{i}]", found)
            if requirement is not None:
                requirements.append(requirement)
        if found:
            raise SelectorError(found)
        return cls(tuple(requirements))


def _or_default(value: Any, default: Any) -> Any:
    return default if value is None else value


def _type_error(path: str, detail: str) -> errors.FieldError:
    return errors.FieldError(errors.CauseType.TYPE_INVALID, path, detail)


_STRUCTURED_OPERATORS = {
    "In": LabelOperator.IN,
    "NotIn": LabelOperator.NOT_IN,
    "Exists": LabelOperator.EXISTS,
    "DoesNotExist": LabelOperator.DOES_NOT_EXIST,
}


def _read_expression(
    expression: Any, path: str, found: list[errors.FieldError]
) -> LabelRequirement | None:
    # Appends what is wrong to `found`; returns the requirement when nothing is.
    if not isinstance(expression, Mapping):
        found.append(_type_error(path, "must be an object"))
        return None
    before = len(found)
    key = expression.get("key")
    key_path = f"{path}.key"
    if not isinstance(key, str):
        found.append(_type_error(key_path, "must be a string"))
    else:
        found.extend(
            errors.FieldError(errors.CauseType.INVALID, key_path, problem, key)
            for problem in qualified_name_problems(key)
        )
    raw_operator = expression.get("operator")
    operator = _STRUCTURED_OPERATORS.get(raw_operator) if isinstance(raw_operator, str) else None
    if operator is None:
        found.append(
            errors.FieldError(
                errors.CauseType.INVALID,
                f"{path}.operator",
                "not a valid selector operator",
                raw_operator,
            )
        )
    values = _or_default(expression.get("values"), [])
    values_path = f"{path}.values"
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        found.append(_type_error(values_path, "must be a list of strings"))
        values = []
    if operator in (LabelOperator.IN, LabelOperator.NOT_IN) and not values:
        found.append(
            errors.FieldError(
                errors.CauseType.REQUIRED,
                values_path,
                "must be specified when `operator` is 'In' or 'NotIn'",
            )
        )
    if operator in (LabelOperator.EXISTS, LabelOperator.DOES_NOT_EXIST) and values:
        found.append(
            errors.FieldError(
                errors.CauseType.FORBIDDEN,
                values_path,
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )
        )
    for i, value in enumerate(values):
        found.extend(
            errors.FieldError(errors.CauseType.INVALID, f"{values_path}[{i}]", problem, value)
            for problem in label_value_problems(value)
        )
    if len(found) > before or operator is None or not isinstance(key, str):
        return None
    return LabelRequirement(key, operator, tuple(values))


class _Token(enum.Enum):
    END = "end of string"
    IDENTIFIER = "identifier"
    OPEN = "("
    CLOSE = ")"
    COMMA = ","
    NOT = "!"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    GREATER = ">"
    LESS = "<"
    IN = "in"
    NOT_IN = "notin"


_SYMBOLS = {
    t.value: t
    for t in (
        _Token.OPEN,
        _Token.CLOSE,
        _Token.COMMA,
        _Token.NOT,
        _Token.EQUALS,
        _Token.DOUBLE_EQUALS,
        _Token.NOT_EQUALS,
        _Token.GREATER,
        _Token.LESS,
    )
}
_SPECIAL = frozenset("=!(),<>")
_WHITESPACE = frozenset(" \t\r\n")
_OPERATOR_TOKENS = {
    _Token.IN: LabelOperator.IN,
    _Token.NOT_IN: LabelOperator.NOT_IN,
    _Token.EQUALS: LabelOperator.EQUALS,
    _Token.DOUBLE_EQUALS: LabelOperator.EQUALS,
    _Token.NOT_EQUALS: LabelOperator.NOT_EQUALS,
    _Token.GREATER: LabelOperator.GREATER_THAN,
    _Token.LESS: LabelOperator.LESS_THAN,
}


def _lex(text: str) -> list[tuple[_Token, str]]:
    """Tokens as apimachinery's label lexer produces them, ending with END."""
    tokens: list[tuple[_Token, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WHITESPACE:
            i += 1
        if i == n:
            tokens.append((_Token.END, ""))
            return tokens
        if text[i] in _SPECIAL:
            # The longest symbol wins; only `==` and `!=` are longer than one character.
            pair = text[i : i + 2]
            literal = pair if pair in _SYMBOLS else text[i]
            tokens.append((_SYMBOLS[literal], literal))
            i += len(literal)
            continue
        start = i
        while i < n and text[i] not in _SPECIAL and text[i] not in _WHITESPACE:
            i += 1
        word = text[start:i]
        kind = {"in": _Token.IN, "notin": _Token.NOT_IN}.get(word, _Token.IDENTIFIER)
        tokens.append((kind, word))


class _LabelParser:
    """apimachinery's recursive-descent label selector parser, with its error words.

    Where the grammar expects a key or a value, the words `in` and `notin` are ordinary
    identifiers (`in=notin` is a valid selector); only where an operator is expected
    are they keywords.
    """

    def __init__(self, text: str) -> None:
        self._tokens = _lex(text)
        self._position = 0

    def _peek(self) -> tuple[_Token, str]:
        token, literal = self._tokens[self._position]
        if token in (_Token.IN, _Token.NOT_IN):
            token = _Token.IDENTIFIER
        return token, literal

    def _next(self, *, keywords: bool = False) -> tuple[_Token, str]:
        token, literal = self._tokens[self._position]
        if self._position < len(self._tokens) - 1:
            self._position += 1
        if not keywords and token in (_Token.IN, _Token.NOT_IN):
            token = _Token.IDENTIFIER
        return token, literal

    def parse(self) -> list[LabelRequirement]:
        requirements: list[LabelRequirement] = []
        while True:
            token, literal = self._peek()
            if token is _Token.END:
                return requirements
            if token not in (_Token.IDENTIFIER, _Token.NOT):
                raise errors.BadRequest(
                    f"found '{literal}', expected: !, identifier, or 'end of string'"
                )
            try:
                requirements.append(self._requirement())
            except _RequirementError as e:
                raise errors.BadRequest(f"unable to parse requirement: {e}") from None
            token, literal = self._next()
            if token is _Token.END:
                return requirements
            if token is not _Token.COMMA:
                raise errors.BadRequest(f"found '{literal}', expected: ',' or 'end of string'")
            token, literal = self._peek()
            if token not in (_Token.IDENTIFIER, _Token.NOT):
                raise errors.BadRequest(f"found '{literal}', expected: identifier after ','")

    def _requirement(self) -> LabelRequirement:
        token, literal = self._next()
        negated = token is _Token.NOT
        if negated:
            token, literal = self._next()
        if token is not _Token.IDENTIFIER:
            raise _RequirementError(f"found '{literal}', expected: identifier")
        key = literal
        if problems := qualified_name_problems(key):
            raise _RequirementError(
                str(errors.FieldError(errors.CauseType.INVALID, "key", "; ".join(problems), key))
            )
        if negated:
            return self._build(key, LabelOperator.DOES_NOT_EXIST, ())
        if self._peek()[0] in (_Token.END, _Token.COMMA):
            return self._build(key, LabelOperator.EXISTS, ())
        token, literal = self._next(keywords=True)
        operator = _OPERATOR_TOKENS.get(token)
        if operator is None:
            raise _RequirementError(f"found '{literal}', expected: in, notin, =, ==, !=, gt, lt")
        if operator in (LabelOperator.IN, LabelOperator.NOT_IN):
            values = self._value_set()
        else:
            values = (self._exact_value(),)
        return self._build(key, operator, values)

    @staticmethod
    def _build(key: str, operator: LabelOperator, values: Sequence[str]) -> LabelRequirement:
        try:
            return LabelRequirement(key, operator, tuple(values))
        except SelectorError as e:
            raise _RequirementError(str(e)) from None

    def _exact_value(self) -> str:
        token, literal = self._peek()
        if token in (_Token.END, _Token.COMMA):
            return ""
        token, literal = self._next()
        if token is not _Token.IDENTIFIER:
            raise _RequirementError(f"found '{literal}', expected: identifier")
        return literal

    def _value_set(self) -> tuple[str, ...]:
        token, literal = self._next()
        if token is not _Token.OPEN:
            raise _RequirementError(f"found '{literal}' expected: '('")
        token, literal = self._peek()
        if token is _Token.CLOSE:
            self._next()
            return ("",)
        if token not in (_Token.IDENTIFIER, _Token.COMMA):
            raise _RequirementError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self._value_list()
        token, literal = self._next()
        if token is not _Token.CLOSE:
            raise _RequirementError(f"found '{literal}', expected: ')'")
        return values

    def _value_list(self) -> tuple[str, ...]:
        # Empty places between commas, as in `(,a)` or `(a,)`, are the empty value.
        values: set[str] = set()
        while True:
            token, literal = self._next()
            if token is _Token.IDENTIFIER:
                values.add(literal)
                after, after_literal = self._peek()
                if after is _Token.CLOSE:
                    return tuple(values)
                if after is not _Token.COMMA:
                    raise _RequirementError(f"found '{after_literal}', expected: ',' or ')'")
            elif token is _Token.COMMA:
                if not values:
                    values.add("")
                after, _ = self._peek()
                if after is _Token.CLOSE:
                    values.add("")
                    return tuple(values)
                if after is _Token.COMMA:
                    self._next()
                    values.add("")
            else:
                raise _RequirementError(f"found '{literal}', expected: ',', or identifier")


class _RequirementError(Exception):
    """A requirement did not parse; the parser prefixes the message."""


# --- Field selectors -------------------------------------------------------------------


class FieldOperator(enum.StrEnum):
    """Field requirement operators: Kubernetes's `=` and `!=`, Arktos's int64 ranges."""

    EQUALS = "="
    NOT_EQUALS = "!="
    GREATER_THAN = "gt"
    GREATER_THAN_OR_EQUAL = "gte"
    LESS_THAN = "lt"
    LESS_THAN_OR_EQUAL = "lte"


_RANGE_OPERATORS = frozenset(
    {
        FieldOperator.GREATER_THAN,
        FieldOperator.GREATER_THAN_OR_EQUAL,
        FieldOperator.LESS_THAN,
        FieldOperator.LESS_THAN_OR_EQUAL,
    }
)

# Tried in this order at each position of a term, so that `=lte:` wins over `=lt:` and
# both over `=`, and `==` over `=` (Arktos's order).
_TERM_OPERATORS = (
    ("=lte:", FieldOperator.LESS_THAN_OR_EQUAL),
    ("=gte:", FieldOperator.GREATER_THAN_OR_EQUAL),
    ("=lt:", FieldOperator.LESS_THAN),
    ("=gt:", FieldOperator.GREATER_THAN),
    ("!=", FieldOperator.NOT_EQUALS),
    ("==", FieldOperator.EQUALS),
    ("=", FieldOperator.EQUALS),
)
_RANGE_PREFIXES = ("lte:", "gte:", "lt:", "gt:")
_FORBIDDEN_IN_FIELD = frozenset("\\,;=")


def escape_field_value(value: str) -> str:
    """Escape `\\`, `,`, `;` and `=` so `value` can stand in a field selector."""
    return "".join("\\" + c if c in "\\,;=" else c for c in value)


def unescape_field_value(text: str) -> str:
    """Undo `escape_field_value`; raises `errors.BadRequest` as Kubernetes does."""
    out: list[str] = []
    escaped = False
    for c in text:
        if escaped:
            if c not in "\\,;=":
                raise errors.BadRequest(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c in ",;=":
            raise errors.BadRequest(f"invalid field selector: unescaped character in value: {c!r}")
        else:
            out.append(c)
    if escaped:
        raise errors.BadRequest("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


@dataclasses.dataclass(frozen=True, slots=True)
class FieldRequirement:
    """One condition on one field: `field=value`, `field!=value` or `field=gt:N` and kin.

    For the range operators `value` is the bound written in canonical decimal form; the
    field's value must read as an int64 to match. `field` may not contain `\\ , ; =` or
    end in `!`, which no field label does and which would not read back. Raises
    `SelectorError`.
    """

    field: str
    operator: FieldOperator
    value: str = ""

    def __post_init__(self) -> None:
        operator = FieldOperator(self.operator)
        object.__setattr__(self, "operator", operator)
        found: list[errors.FieldError] = []
        if _FORBIDDEN_IN_FIELD.intersection(self.field) or self.field.endswith("!"):
            found.append(
                errors.FieldError(
                    errors.CauseType.INVALID,
                    "field",
                    "may not contain '\\', ',', ';' or '=', nor end in '!'",
                    self.field,
                )
            )
        if operator in _RANGE_OPERATORS:
            bound = _parse_int64(self.value)
            if bound is None:
                found.append(
                    errors.FieldError(
                        errors.CauseType.INVALID,
                        "value",
                        f"the operator {operator.value} needs a decimal int64",
                        self.value,
                    )
                )
            else:
                object.__setattr__(self, "value", str(bound))
        if found:
            raise SelectorError(found)

    @property
    def bound(self) -> int | None:
        """The int64 bound of a range operator, else None."""
        return int(self.value) if self.operator in _RANGE_OPERATORS else None

    def test(self, value: str) -> bool:
        """Whether one value of the field satisfies this requirement."""
        op = self.operator
        if op is FieldOperator.EQUALS:
            return value == self.value
        if op is FieldOperator.NOT_EQUALS:
            return value != self.value
        actual = _parse_int64(value)
        if actual is None:
            return False
        bound = int(self.value)
        if op is FieldOperator.GREATER_THAN:
            return actual > bound
        if op is FieldOperator.GREATER_THAN_OR_EQUAL:
            return actual >= bound
        if op is FieldOperator.LESS_THAN:
            return actual < bound
        return actual <= bound

    def __str__(self) -> str:
        if self.operator in _RANGE_OPERATORS:
            return f"{self.field}={self.operator.value}:{self.value}"
        value = escape_field_value(self.value)
        if self.operator is FieldOperator.NOT_EQUALS:
            return f"{self.field}!={value}"
        # `f=gt:1` would read back as a range; `==` keeps such a value literal.
        symbol = "==" if value.startswith(_RANGE_PREFIXES) else "="
        return f"{self.field}{symbol}{value}"


FieldLookup = Callable[[str], str | Sequence[str]]
"""A field's value(s) by field label: one string, or several (a sequence of strings).

No values, a missing field, reads as the single value "" (Kubernetes: `spec.nodeName=`
selects unscheduled pods).
"""


def _branch_key(branch: Sequence[FieldRequirement]) -> str:
    return ",".join(map(str, branch))


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSelector:
    """An OR (`;`) of ANDs (`,`) of field requirements; with no branches it matches all.

    `matches` reads an object's fields with `field_values`; `matches_fields` takes a
    field set or a lookup instead. A field may have several values (an object may have
    several owners of one kind): a branch matches if, for every field it names, one
    value satisfies all of the branch's requirements on that field at once.
    So `…hashkey.ReplicaSet=gt:10,…hashkey.ReplicaSet=lte:20` asks for one ReplicaSet
    owner inside (10, 20], not one owner above 10 and maybe another at most 20. For a
    single-valued field this is the plain AND.

    A branch without requirements would match everything, so a selector holding one is
    the empty selector. (`parse` drops empty groups such as the one in `a=1;` first, as
    Arktos does.)
    """

    branches: tuple[tuple[FieldRequirement, ...], ...] = ()

    def __post_init__(self) -> None:
        branches = [tuple(sorted(branch, key=str)) for branch in self.branches]
        if any(not branch for branch in branches):
            branches = []
        object.__setattr__(self, "branches", tuple(sorted(branches, key=_branch_key)))

    @classmethod
    def parse(cls, text: str) -> FieldSelector:
        """Parse the `fieldSelector` query parameter form; raises `errors.BadRequest`."""
        branches: list[tuple[FieldRequirement, ...]] = []
        for group in _split_unescaped(text, ";"):
            terms = [term for term in _split_unescaped(group, ",") if term]
            if terms:
                branches.append(tuple(_parse_term(text, term) for term in terms))
        return cls(tuple(branches))

    @property
    def empty(self) -> bool:
        """True if the selector matches everything."""
        return not self.branches

    @property
    def fields(self) -> frozenset[str]:
        """The field labels the selector reads."""
        return frozenset(r.field for branch in self.branches for r in branch)

    def validate(self, supported: Collection[str]) -> None:
        """Raise `errors.BadRequest` unless every field used is in `supported`.

        An entry ending in `*` admits every longer label with that prefix, e.g.
        `metadata.ownerReferences.hashkey.*` for the owner hashes of any kind.
        """
        prefixes = [entry[:-1] for entry in supported if entry.endswith("*")]
        for name in sorted(self.fields):
            if name in supported:
                continue
            if any(name.startswith(p) and len(name) > len(p) for p in prefixes):
                continue
            raise errors.BadRequest(f"field label not supported: {name}")

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Match an API object, reading its fields with `field_values`."""
        return self.matches_fields(lambda name: field_values(obj, name))

    def matches_fields(self, fields: Mapping[str, str] | FieldLookup) -> bool:
        """Match a field set by label (missing labels read as "") or a `FieldLookup`.

        For resources whose field labels are not paths into the object, and for tests.
        """
        if not self.branches:
            return True
        lookup = _mapping_lookup(fields) if isinstance(fields, Mapping) else fields
        cache: dict[str, tuple[str, ...]] = {}

        def values_of(name: str) -> tuple[str, ...]:
            if name not in cache:
                found = lookup(name)
                values = (found,) if isinstance(found, str) else tuple(found)
                cache[name] = values or ("",)
            return cache[name]

        return any(_branch_matches(branch, values_of) for branch in self.branches)

    def requires_exact(self, field: str) -> str | None:
        """The value every match has in `field`, if every branch pins it with `=`.

        The API server turns `metadata.name=x` into a get and `spec.nodeName=n` into an
        index lookup with it. None when some branch leaves the field open or the branches
        disagree.
        """
        pinned: set[str] = set()
        for branch in self.branches:
            values = {
                r.value for r in branch if r.field == field and r.operator is FieldOperator.EQUALS
            }
            if len(values) != 1:
                # Unpinned, or pinned to two values at once (then nothing matches: no help).
                return None
            pinned |= values
        return pinned.pop() if len(pinned) == 1 else None

    def hash_ranges(self, field: str) -> list[tuple[int, int]] | None:
        """Inclusive int64 intervals outside which `field` cannot lie in a match.

        A sorted, merged union over the branches of each branch's range and integer `=`
        terms on `field` (`!=` is ignored, so this may be a superset: still call
        `matches`). None when some branch does not bound the field, i.e. no pre-filter is
        possible; [] when nothing can match.
        """
        if not self.branches:
            return None
        intervals: list[tuple[int, int]] = []
        for branch in self.branches:
            terms = [r for r in branch if r.field == field]
            lo, hi = INT64_MIN, INT64_MAX
            bounded = False
            for r in terms:
                if r.operator is FieldOperator.NOT_EQUALS:
                    continue
                bounded = True
                if r.operator is FieldOperator.EQUALS:
                    pinned = _parse_int64(r.value)
                    if pinned is None:
                        lo, hi = 1, 0
                    else:
                        lo, hi = max(lo, pinned), min(hi, pinned)
                    continue
                bound = int(r.value)
                if r.operator is FieldOperator.GREATER_THAN:
                    lo = max(lo, bound + 1)
                elif r.operator is FieldOperator.GREATER_THAN_OR_EQUAL:
                    lo = max(lo, bound)
                elif r.operator is FieldOperator.LESS_THAN:
                    hi = min(hi, bound - 1)
                else:
                    hi = min(hi, bound)
            if not bounded:
                return None
            if lo <= hi:
                intervals.append((lo, hi))
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(intervals):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        return merged

    def __str__(self) -> str:
        return ";".join(map(_branch_key, self.branches))


def _mapping_lookup(fields: Mapping[str, str]) -> FieldLookup:
    def lookup(name: str) -> str:
        return fields.get(name, "")

    return lookup


def _branch_matches(
    branch: Sequence[FieldRequirement], values_of: Callable[[str], tuple[str, ...]]
) -> bool:
    by_field: dict[str, list[FieldRequirement]] = {}
    for r in branch:
        by_field.setdefault(r.field, []).append(r)
    return all(
        any(all(r.test(value) for r in terms) for value in values_of(name))
        for name, terms in by_field.items()
    )


def _split_unescaped(text: str, separator: str) -> Iterable[str]:
    # A backslash protects the next character, whatever it is, from being a separator.
    start = 0
    escaped = False
    for i, c in enumerate(text):
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == separator:
            yield text[start:i]
            start = i + 1
    if text:
        yield text[start:]


def _parse_term(selector: str, term: str) -> FieldRequirement:
    not_understood = f"invalid selector: '{selector}'; can't understand '{term}'"
    for i in range(len(term)):
        for symbol, operator in _TERM_OPERATORS:
            if term.startswith(symbol, i):
                value = unescape_field_value(term[i + len(symbol) :])
                try:
                    return FieldRequirement(term[:i], operator, value)
                except SelectorError as e:
                    details = "; ".join(fe.message for fe in e.field_errors)
                    raise errors.BadRequest(f"{not_understood}: {details}") from None
    raise errors.BadRequest(not_understood)


def _render_field(value: Any) -> str | None:
    if value is None or isinstance(value, Mapping | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


def field_values(obj: Mapping[str, Any], field: str) -> tuple[str, ...]:
    """The values of the field label `field` in the API object `obj`.

    `metadata.hashkey` is `metadata.hashKey`; `metadata.ownerReferences.hashkey.<Kind>` is
    the hashKeys of the owner references of that kind (possibly several, possibly none);
    any other label is a dotted path into the object (`metadata.name`, `spec.nodeName`,
    `status.complete`). Booleans read `true`/`false`, numbers in decimal; a missing or
    non-scalar value reads as no value, which matching treats as "".
    """
    if field == HASHKEY_FIELD:
        field = "metadata.hashKey"
    elif field.startswith(OWNER_HASHKEY_PREFIX):
        kind = field[len(OWNER_HASHKEY_PREFIX) :]
        metadata = obj.get("metadata")
        owners = metadata.get("ownerReferences") if isinstance(metadata, Mapping) else None
        if not isinstance(owners, list):
            return ()
        return tuple(
            _render_field(owner.get("hashKey")) or ""
            for owner in owners
            if isinstance(owner, Mapping) and owner.get("kind") == kind
        )
    node: Any = obj
    for part in field.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return ()
        node = node[part]
    rendered = _render_field(node)
    return () if rendered is None else (rendered,)
