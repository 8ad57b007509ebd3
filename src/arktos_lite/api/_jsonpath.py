"""The JSONPath of Kubernetes (client-go's `util/jsonpath`), the part CRDs use.

CustomResourceDefinitions name fields with it: `additionalPrinterColumns[].jsonPath`,
`selectableFields[].jsonPath` and the scale subresource's replica paths. `parse` reads one
expression and raises `JSONPathError` (a `ValueError`) saying what is wrong and where;
`Path.find` evaluates it against a JSON value.

Supported, as client-go reads it:

* an optional `{...}` around the whole expression and an optional leading `$`;
* fields: `.spec.replicas`, with `\\` escaping a character that would end the name
  (`.metadata.labels.app\\.kubernetes\\.io/name`), or quoted: `['a.b']`, `["a"]`;
* `.*` and `[*]`: every element of a list, every value of an object;
* `[n]` (negative counts from the end) and slices `[start:end]`, `[start:end:step]`;
* filters over a list: `[?(@.type=="Ready")]` with `==`, `!=`, `<`, `<=`, `>`, `>=`
  between `@`-relative paths and string, number or boolean literals, and existence
  `[?(@.port)]`.

Not supported: recursive descent `..`, unions `[a,b]`, `range`/`end` templates and text
around the expression.

`find` behaves as client-go with missing keys allowed (as kube-apiserver evaluates printer
columns): whatever is absent, out of range or of the wrong type yields nothing rather than
an error. A field whose value is JSON null is found (its value is None); stepping into it
finds nothing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

_TERMINATORS: Final = frozenset(" \t\r\n.,[]$@{}")
_FILTER_TERMINATORS: Final = _TERMINATORS | frozenset("=!<>()")
_OPERATORS: Final = ("==", "!=", "<=", ">=", "<", ">")


class JSONPathError(ValueError):
    """A JSONPath expression that cannot be parsed."""


# --- Steps ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    name: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Wildcard:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class _Index:
    index: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Slice:
    start: int | None
    end: int | None
    step: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class _Literal:
    value: str | int | float | bool


@dataclasses.dataclass(frozen=True, slots=True)
class _Filter:
    left: _Operand
    operator: str  # "" for an existence test
    right: _Operand | None


_Step = _Field | _Wildcard | _Index | _Slice | _Filter


@dataclasses.dataclass(frozen=True, slots=True)
class _Relative:
    """`@.a.b` (relative to the element being filtered) or `$.a.b` (to the root)."""

    steps: tuple[_Step, ...]
    from_root: bool = False


_Operand = _Relative | _Literal


# --- Evaluation ----------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(left: Any, operator: str, right: Any) -> bool:
    if operator in ("==", "!="):
        same_kind = (
            (_is_number(left) and _is_number(right))
            or (isinstance(left, str) and isinstance(right, str))
            or (isinstance(left, bool) and isinstance(right, bool))
            or (left is None and right is None)
        )
        equal = same_kind and left == right
        return equal if operator == "==" else not equal
    if not (
        (_is_number(left) and _is_number(right))
        or (isinstance(left, str) and isinstance(right, str))
    ):
        return False
    if operator == "<":
        return bool(left < right)
    if operator == "<=":
        return bool(left <= right)
    if operator == ">":
        return bool(left > right)
    return bool(left >= right)


def _operand_values(operand: _Operand, element: Any, root: Any) -> list[Any]:
    if isinstance(operand, _Literal):
        return [operand.value]
    return _evaluate(operand.steps, [root if operand.from_root else element], root)


def _passes(step: _Filter, element: Any, root: Any) -> bool:
    lefts = _operand_values(step.left, element, root)
    if step.right is None:
        return bool(lefts)
    rights = _operand_values(step.right, element, root)
    if len(lefts) != 1 or len(rights) != 1:
        return False
    return _compare(lefts[0], step.operator, rights[0])


def _slice(values: Sequence[Any], step: _Slice) -> list[Any]:
    if step.step is not None and step.step <= 0:
        return []
    return list(values[step.start : step.end : step.step])


def _apply(step: _Step, value: Any, root: Any) -> Iterator[Any]:
    if isinstance(step, _Field):
        if isinstance(value, Mapping) and step.name in value:
            yield value[step.name]
    elif isinstance(step, _Wildcard):
        if isinstance(value, Mapping):
            yield from value.values()
        elif isinstance(value, list | tuple):
            yield from value
    elif isinstance(step, _Index):
        if isinstance(value, list | tuple) and -len(value) <= step.index < len(value):
            yield value[step.index]
    elif isinstance(step, _Slice):
        if isinstance(value, list | tuple):
            yield from _slice(value, step)
    elif isinstance(value, list | tuple):
        yield from (element for element in value if _passes(step, element, root))


def _evaluate(steps: Sequence[_Step], values: list[Any], root: Any) -> list[Any]:
    for step in steps:
        values = [found for value in values for found in _apply(step, value, root)]
        if not values:
            break
    return values


@dataclasses.dataclass(frozen=True, slots=True)
class Path:
    """A parsed JSONPath expression."""

    text: str
    _steps: tuple[_Step, ...] = dataclasses.field(repr=False, compare=False)

    def find(self, obj: Any) -> list[Any]:
        """Every value the expression selects in `obj`, in document order; [] if none."""
        return _evaluate(self._steps, [obj], obj)

    @property
    def fields(self) -> tuple[str, ...] | None:
        """The field names of a plain field path (`.spec.replicas` -> spec, replicas).

        None if the expression has anything but fields (indexes, wildcards, filters).
        """
        if all(isinstance(step, _Field) for step in self._steps):
            return tuple(step.name for step in self._steps if isinstance(step, _Field))
        return None

    def __str__(self) -> str:
        return self.text


# --- Parsing -------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, source: str, offset: int) -> None:
        self.text = text
        self.source = source
        self.offset = offset
        self.pos = 0

    def error(self, message: str, at: int | None = None) -> JSONPathError:
        where = self.offset + (self.pos if at is None else at)
        return JSONPathError(f"invalid JSONPath {self.source!r}: {message} at position {where}")

    def peek(self, ahead: int = 0) -> str:
        at = self.pos + ahead
        return self.text[at] if at < len(self.text) else ""

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_spaces(self) -> None:
        while self.peek() in (" ", "\t"):
            self.pos += 1

    def steps(self, *, in_filter: bool) -> tuple[_Step, ...]:
        """Steps until the end of the text (or, in a filter operand, of the path)."""
        steps: list[_Step] = []
        while not self.at_end():
            char = self.peek()
            if char == ".":
                if self.peek(1) == ".":
                    raise self.error("recursive descent '..' is not supported")
                self.pos += 1
                if self.at_end() or self.peek() in ("[", " "):
                    continue  # "." alone is the current value
                terminators = _FILTER_TERMINATORS if in_filter else _TERMINATORS
                if self.peek() == "*" and (self.peek(1) or " ") in terminators:
                    # Only a bare "*" is the wildcard ("*0" is a field, as in kubectl).
                    self.pos += 1
                    steps.append(_Wildcard())
                else:
                    steps.append(_Field(self.name(in_filter=in_filter)))
            elif char == "[":
                steps.append(self.bracket())
            elif in_filter:
                break
            elif not self.text[self.pos :].strip():
                self.pos = len(self.text)
            else:
                raise self.error(f"unexpected {char!r}")
        return tuple(steps)

    def name(self, *, in_filter: bool) -> str:
        terminators = _FILTER_TERMINATORS if in_filter else _TERMINATORS
        chars: list[str] = []
        while not self.at_end() and self.peek() not in terminators:
            char = self.peek()
            if char == "\\":
                self.pos += 1
                if self.at_end():
                    raise self.error("a backslash ends the expression")
                char = self.peek()
            chars.append(char)
            self.pos += 1
        if not chars:
            raise self.error("expected a field name")
        return "".join(chars)

    def quoted(self) -> str:
        quote = self.peek()
        start = self.pos
        self.pos += 1
        chars: list[str] = []
        while True:
            if self.at_end():
                raise self.error("unterminated quoted string", start)
            char = self.peek()
            self.pos += 1
            if char == quote:
                return "".join(chars)
            if char == "\\":
                if self.at_end():
                    raise self.error("unterminated quoted string", start)
                char = self.peek()
                self.pos += 1
            chars.append(char)

    def expect(self, char: str) -> None:
        if self.peek() != char:
            found = repr(self.peek()) if self.peek() else "the end"
            raise self.error(f"expected {char!r}, found {found}")
        self.pos += 1

    def bracket(self) -> _Step:
        start = self.pos
        self.pos += 1
        self.skip_spaces()
        char = self.peek()
        step: _Step
        if char == "*":
            self.pos += 1
            step = _Wildcard()
        elif char in ("'", '"'):
            step = _Field(self.quoted())
        elif char == "?":
            self.pos += 1
            self.expect("(")
            step = self.filter()
            self.expect(")")
        elif char == "":
            raise self.error("unclosed '['", start)
        else:
            step = self.index(start)
        self.skip_spaces()
        if self.peek() == ",":
            raise self.error("unions '[a,b]' are not supported")
        if self.peek() != "]":
            raise self.error("unclosed '['", start)
        self.pos += 1
        return step

    def integer(self) -> int | None:
        self.skip_spaces()
        start = self.pos
        if self.peek() == "-":
            self.pos += 1
        while self.peek().isdigit() and self.peek().isascii():
            self.pos += 1
        digits = self.text[start : self.pos]
        self.skip_spaces()
        if digits in ("", "-"):
            if digits:
                raise self.error("expected a number after '-'", start)
            return None
        return int(digits)

    def index(self, start: int) -> _Step:
        parts = [self.integer()]
        while self.peek() == ":" and len(parts) < 3:
            self.pos += 1
            parts.append(self.integer())
        if self.at_end():
            raise self.error("unclosed '['", start)
        if self.peek() not in ("]", ","):
            found = repr(self.peek()) if self.peek() else "the end"
            raise self.error(
                f"expected an index, a slice, '*', a quoted name or a filter, found {found}"
            )
        if len(parts) == 1:
            if parts[0] is None:
                raise self.error("empty '[]'", start)
            return _Index(parts[0])
        while len(parts) < 3:
            parts.append(None)
        if parts[2] == 0:
            raise self.error("a slice step cannot be 0", start)
        return _Slice(parts[0], parts[1], parts[2])

    def operand(self) -> _Operand:
        self.skip_spaces()
        char = self.peek()
        if char in ("@", "$"):
            self.pos += 1
            return _Relative(self.steps(in_filter=True), from_root=char == "$")
        if char in ("'", '"'):
            return _Literal(self.quoted())
        start = self.pos
        while not self.at_end() and self.peek() not in " \t)=!<>":
            self.pos += 1
        word = self.text[start : self.pos]
        if word in ("true", "false"):
            return _Literal(word == "true")
        try:
            return _Literal(int(word))
        except ValueError:
            pass
        try:
            number = float(word)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            found = repr(word) if word else "nothing"
            raise self.error(
                f"expected '@', a quoted string, a number or a boolean in the filter, "
                f"found {found}",
                start,
            )
        return _Literal(number)

    def filter(self) -> _Filter:
        left = self.operand()
        self.skip_spaces()
        operator = next((op for op in _OPERATORS if self.text.startswith(op, self.pos)), "")
        if not operator:
            if not isinstance(left, _Relative):
                raise self.error("a filter without an operator must test a path")
            self.skip_spaces()
            return _Filter(left, "", None)
        self.pos += len(operator)
        right = self.operand()
        self.skip_spaces()
        return _Filter(left, operator, right)


def parse(text: str) -> Path:
    """Parse one JSONPath expression; `JSONPathError` says what is wrong."""
    body = text.lstrip()
    offset = len(text) - len(body)
    if body.startswith("{"):
        body = body.rstrip()
        if not body.endswith("}"):
            raise JSONPathError(f"invalid JSONPath {text!r}: unclosed '{{'")
        body = body[1:-1]
        offset += 1
        if "}" in _outside_quotes(body) or "{" in _outside_quotes(body):
            raise JSONPathError(
                f"invalid JSONPath {text!r}: only one expression is supported, "
                "with nothing around it"
            )
        stripped = body.lstrip()
        offset += len(body) - len(stripped)
        body = stripped
    if not body.strip():
        raise JSONPathError(f"invalid JSONPath {text!r}: empty expression")
    parser = _Parser(body, text, offset)
    if parser.peek() == "$":
        parser.pos += 1
    elif parser.peek() not in (".", "["):
        raise parser.error("the expression must start with '.', '[' or '$'")
    return Path(text, parser.steps(in_filter=False))


def _outside_quotes(text: str) -> str:
    """`text` without its quoted strings, to look for structure characters."""
    kept: list[str] = []
    quote = ""
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quote:
            if char == quote:
                quote = ""
        elif char in ("'", '"'):
            quote = char
        else:
            kept.append(char)
    return "".join(kept)
