"""Validation of API objects, worded as kube-apiserver 1.32 and Arktos word it.

`validate(group, kind, obj, old)` returns every problem with an object as
`errors.FieldError`s: the path in Kubernetes notation (`spec.containers[0].image`,
`metadata.labels`, `data[key]`), the cause type and the detail kube-apiserver prints, so
that scripts and clients matching on messages keep working. The API server turns a
non-empty list into `errors.Invalid`. On updates `old` is the stored object, and the
fields Kubernetes keeps immutable are checked against it.

Objects are JSON as decoded from a request and already defaulted (`_defaults`). Nothing
here trusts their shape: a value of the wrong JSON type is reported, never raised on.
Validation is pure; it never changes an object.

Quantities (`500m`, `1Gi`, `2e3`) are parsed as apimachinery parses them and printed in
the same canonical form (`Quantity`), which `_defaults` writes back into objects.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import decimal
import enum
import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeGuard

from arktos_lite.api import (
    _errors as errors,
    _resources as resources,
    _selectors as selectors,
)

__all__ = [
    "Quantity",
    "QuantityError",
    "QuantityFormat",
    "VOLUME_SOURCES",
    "dns1035_label_problems",
    "dns1123_label_problems",
    "dns1123_subdomain_problems",
    "parse_quantity",
    "validate",
]

_C = errors.CauseType
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1


# --- Quantities (apimachinery/pkg/api/resource) -----------------------------------------


class QuantityFormat(enum.StrEnum):
    """The notation a quantity was written in, which its canonical form keeps."""

    DECIMAL_SI = "DecimalSI"  # 12M = 12 * 10^6, 500m
    BINARY_SI = "BinarySI"  # 12Mi = 12 * 2^20
    DECIMAL_EXPONENT = "DecimalExponent"  # 12e6


class QuantityError(ValueError):
    """Text that is not a quantity; the message is apimachinery's."""


QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY_FORMAT_ERROR = f"quantities must match the regular expression '{QUANTITY_PATTERN}'"
_QUANTITY_SUFFIX_ERROR = "unable to parse quantity's suffix"

_DIGITS = frozenset("0123456789")
_SUFFIX_LETTERS = frozenset("eEinumkKMGTP")
_DECIMAL_SUFFIXES = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_DECIMAL_SUFFIX_BY_EXPONENT = {e: s for s, e in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BINARY_SUFFIX_BY_POWER = {0: "", **{e // 10: s for s, e in _BINARY_SUFFIXES.items()}}
_EXPONENT_RE = re.compile(r"[+-]?[0-9]+")
_NANO_PLACES = 9


@dataclasses.dataclass(frozen=True, slots=True)
class Quantity:
    """A resource quantity: an exact value and the notation it was written in.

    `str()` is the canonical form kube-apiserver serializes: no fractional digits, the
    largest suffix that loses nothing (`1.5` -> `1500m`, `1.5Gi` -> `1536Mi`, `2000` ->
    `2k`, `1e3` -> `1e3`). Binary SI falls back to decimal SI below 1024 or where it would
    round. Parsing keeps apimachinery's limits: values are rounded up (away from zero) to
    nano precision and binary SI values are capped at 2^63-1.
    """

    value: Decimal
    format: QuantityFormat = QuantityFormat.DECIMAL_SI

    @classmethod
    def parse(cls, text: str) -> Quantity:
        """Parse `text` (surrounding whitespace allowed, as in JSON); `QuantityError` if bad."""
        return _parse_quantity(text)

    @classmethod
    def from_json(cls, value: Any) -> Quantity:
        """A quantity from JSON, where clients may also send `2` or `0.5` as numbers.

        Raises `QuantityError` for bad text and `TypeError` for other JSON types.
        """
        if isinstance(value, str):
            return _parse_quantity(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _parse_quantity(repr(value))
        raise TypeError(f"a quantity must be a string or a number, not {type(value).__name__}")

    def round_up(self, places: int) -> Quantity:
        """This quantity rounded away from zero to `places` decimal places."""
        if _exponent(self.value) >= -places:
            return self
        context = _exact_context(len(self.value.as_tuple().digits) + places + 2)
        rounded = self.value.quantize(
            Decimal(1).scaleb(-places), rounding=decimal.ROUND_UP, context=context
        )
        return Quantity(rounded, self.format)

    def __str__(self) -> str:
        return _quantity_text(self.value, self.format)


# Objects repeat a few quantities (`250m`, `256Mi`) over and over: each is read once.
@functools.lru_cache(maxsize=1024)
def _parse_quantity(text: str) -> Quantity:
    text = text.strip()
    if not text:
        raise QuantityError(_QUANTITY_FORMAT_ERROR)
    negative, whole, fraction, suffix = _scan_quantity(text)
    base, exponent, notation = _interpret_suffix(suffix)
    context = _exact_context(len(text) + 40)
    magnitude = Decimal(f"{whole}.{fraction or '0'}")
    if base == 10:
        magnitude = magnitude.scaleb(exponent, context)
    else:
        magnitude = context.multiply(magnitude, Decimal(2**exponent))
    if magnitude and _exponent(magnitude) < -_NANO_PLACES:
        magnitude = magnitude.quantize(
            Decimal(1).scaleb(-_NANO_PLACES), rounding=decimal.ROUND_UP, context=context
        )
    if notation is QuantityFormat.BINARY_SI:
        magnitude = min(magnitude, Decimal(_INT64_MAX))
        if 0 < magnitude < 1:
            notation = QuantityFormat.DECIMAL_SI
    return Quantity(-magnitude if negative else magnitude, notation)


@functools.lru_cache(maxsize=1024)
def _quantity_text(value: Decimal, notation: QuantityFormat) -> str:
    if not value:
        return "0"
    if notation is QuantityFormat.BINARY_SI:
        if -1024 < value < 1024 or value != value.to_integral_value():
            notation = QuantityFormat.DECIMAL_SI
        else:
            number, power = int(value), 0
            while number % 1024 == 0 and power < 6:
                number //= 1024
                power += 1
            return f"{number}{_BINARY_SUFFIX_BY_POWER[power]}"
    sign, digits, _ = value.as_tuple()
    exponent = _exponent(value)
    coefficient = int("".join(map(str, digits)))
    while coefficient % 10 == 0:
        coefficient //= 10
        exponent += 1
    while exponent % 3:
        coefficient *= 10
        exponent -= 1
    if notation is QuantityFormat.DECIMAL_SI and exponent in _DECIMAL_SUFFIX_BY_EXPONENT:
        suffix = _DECIMAL_SUFFIX_BY_EXPONENT[exponent]
    else:
        suffix = f"e{exponent}" if exponent else ""
    return f"{'-' if sign else ''}{coefficient}{suffix}"


def parse_quantity(text: str) -> Decimal:
    """The exact value of a Kubernetes quantity such as `250m`, `1.5Gi` or `2e3`.

    Raises `QuantityError` with apimachinery's message for anything else.
    """
    return Quantity.parse(text).value


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int), "quantities are finite"
    return exponent


def _exact_context(precision: int) -> decimal.Context:
    return decimal.Context(
        prec=max(precision, 28), Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[]
    )


def _scan_quantity(text: str) -> tuple[bool, str, str, str]:
    """Split `text` as apimachinery's scanner does: sign, digits, fraction, suffix."""
    end = len(text)
    pos = 0
    negative = False
    if text[0] in "+-":
        negative = text[0] == "-"
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return negative, "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    whole = text[start:pos] or "0"
    fraction = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        fraction = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_LETTERS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise QuantityError(_QUANTITY_FORMAT_ERROR)
    return negative, whole, fraction, text[suffix_start:]


def _interpret_suffix(suffix: str) -> tuple[int, int, QuantityFormat]:
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], QuantityFormat.DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], QuantityFormat.BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE" and _EXPONENT_RE.fullmatch(suffix[1:]):
        exponent = int(suffix[1:])
        if -(2**63) <= exponent <= _INT64_MAX:
            # apimachinery keeps the exponent in an int32, wrapping around as Go does.
            return 10, (exponent + 2**31) % 2**32 - 2**31, QuantityFormat.DECIMAL_EXPONENT
    raise QuantityError(_QUANTITY_SUFFIX_ERROR)


# --- String formats (apimachinery/pkg/util/validation) ----------------------------------


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    # apimachinery's RegexError, odd spacing included: clients match on it.
    if not examples:
        return f"{message} (regex used for validation is '{fmt}')"
    shown = "".join(("" if i == 0 else " or ") + f"'{e}', " for i, e in enumerate(examples))
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len(limit: int) -> str:
    return f"must be no more than {limit} characters"


def _range_error(low: int, high: int) -> str:
    return f"must be between {low} and {high}, inclusive"


def _size(text: str) -> int:
    """Length in bytes, as Go's len() counts a string."""
    return len(text.encode("utf-8", "surrogatepass"))


_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_FMT = f"{_DNS1123_LABEL_FMT}(\\.{_DNS1123_LABEL_FMT})*"
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
    "with an alphabetic character, and end with an alphanumeric character"
)
_ENV_VAR_NAME_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_ENV_VAR_NAME_MSG = (
    "a valid environment variable name must consist of alphabetic characters, digits, "
    "'_', '-', or '.', and must not start with a digit"
)
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
_PERCENT_FMT = "[0-9]+%"
_PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%'"

_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)
_ENV_VAR_NAME_RE = re.compile(_ENV_VAR_NAME_FMT)
_CONFIG_KEY_RE = re.compile(_CONFIG_KEY_FMT)
_PERCENT_RE = re.compile(_PERCENT_FMT)
_PORT_NAME_CHARS_RE = re.compile("[-a-z0-9]+")
_IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
_IMMUTABLE = "field is immutable"
_NONNEGATIVE = "must be greater than or equal to 0"


def dns1123_label_problems(value: str) -> list[str]:
    """Why `value` is not a lowercase RFC 1123 label (namespace names); [] if it is."""
    problems = []
    if _size(value) > 63:
        problems.append(_max_len(63))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            problems.append("must not contain dots")
        else:
            problems.append(
                _regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc")
            )
    return problems


def dns1123_subdomain_problems(value: str) -> list[str]:
    """Why `value` is not a lowercase RFC 1123 subdomain (most names); [] if it is."""
    problems = []
    if _size(value) > 253:
        problems.append(_max_len(253))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        problems.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return problems


def dns1035_label_problems(value: str) -> list[str]:
    """Why `value` is not a DNS-1035 label (service names); [] if it is."""
    problems = []
    if _size(value) > 63:
        problems.append(_max_len(63))
    if not _DNS1035_LABEL_RE.fullmatch(value):
        problems.append(_regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return problems


def _tenant_name_problems(value: str) -> list[str]:
    if value == resources.ALL_TENANTS:
        return ["is not an acceptable tenant name"]
    return dns1123_label_problems(value)


def _port_name_problems(value: str) -> list[str]:
    """An IANA_SVC_NAME: at most 15 of [-a-z0-9], a letter, no '--', no '-' at the ends."""
    problems = []
    if len(value) > 15:
        problems.append(_max_len(15))
    if not _PORT_NAME_CHARS_RE.fullmatch(value):
        problems.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        problems.append("must contain at least one letter (a-z)")
    if "--" in value:
        problems.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        problems.append("must not begin or end with a hyphen")
    return problems


def _relative_dir_problems(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def _env_var_name_problems(value: str) -> list[str]:
    problems = []
    if not _ENV_VAR_NAME_RE.fullmatch(value):
        problems.append(
            _regex_error(
                _ENV_VAR_NAME_MSG, _ENV_VAR_NAME_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1"
            )
        )
    return problems + _relative_dir_problems(value)


def _config_key_problems(value: str) -> list[str]:
    problems = []
    if _size(value) > 253:
        problems.append(_max_len(253))
    if not _CONFIG_KEY_RE.fullmatch(value):
        problems.append(
            _regex_error(_CONFIG_KEY_MSG, _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name")
        )
    return problems + _relative_dir_problems(value)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _mask_trailing_dash(name: str) -> str:
    # apimachinery's maskTrailingDash for generateName prefixes, quirk included.
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


_BASE64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _base64_problem(text: str) -> str | None:
    """Go's error for `text` as a JSON `[]byte` (padded standard base64); None if fine."""
    chars = [(i, ch) for i, ch in enumerate(text) if ch not in "\r\n"]
    for start in range(0, len(chars), 4):
        quantum = chars[start : start + 4]
        for j, (index, ch) in enumerate(quantum):
            if ch == "=":
                if j < 2 or (j == 2 and (len(quantum) < 4 or quantum[3][1] != "=")):
                    return f"illegal base64 data at input byte {index}"
                rest = chars[start + 4 :]
                if rest:
                    return f"illegal base64 data at input byte {rest[0][0]}"
                return None
            if ch not in _BASE64_ALPHABET:
                return f"illegal base64 data at input byte {index}"
        if len(quantum) < 4:
            return f"illegal base64 data at input byte {quantum[0][0]}"
    return None


def _decoded(text: str) -> bytes:
    return base64.b64decode("".join(ch for ch in text if ch not in "\r\n"))


# --- Collecting errors --------------------------------------------------------------------


def _join(path: str, child: str) -> str:
    return f"{path}.{child}" if path else child


class _Checker:
    """Collects field errors while walking an object, tolerating any JSON shape.

    The readers (`mapping`, `sequence`, `string`, ...) return a field's value when it has
    the expected JSON type, None when it is absent or null, and report a
    `FieldValueTypeInvalid` error (returning None) when it has another type.
    """

    def __init__(self) -> None:
        self.found: list[errors.FieldError] = []

    # Problems, one method per cause type, as apimachinery's field package builds them.

    def required(self, path: str, detail: str = "") -> None:
        self.found.append(errors.FieldError(_C.REQUIRED, path, detail))

    def forbidden(self, path: str, detail: str) -> None:
        self.found.append(errors.FieldError(_C.FORBIDDEN, path, detail))

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.found.append(errors.FieldError(_C.INVALID, path, detail, value))

    def invalid_unshown(self, path: str, detail: str) -> None:
        """An invalid value too large or too secret to print."""
        self.found.append(errors.FieldError(_C.INVALID, path, detail))

    def not_supported(self, path: str, value: Any, supported: Iterable[str]) -> None:
        detail = "supported values: " + ", ".join(json.dumps(s) for s in supported)
        self.found.append(errors.FieldError(_C.NOT_SUPPORTED, path, detail, value))

    def duplicate(self, path: str, value: Any, detail: str = "") -> None:
        self.found.append(errors.FieldError(_C.DUPLICATE, path, detail, value))

    def not_found(self, path: str, value: Any) -> None:
        self.found.append(errors.FieldError(_C.NOT_FOUND, path, "", value))

    def too_long(self, path: str, limit: int) -> None:
        unit = "byte" if limit == 1 else "bytes"
        self.found.append(
            errors.FieldError(_C.TOO_LONG, path, f"may not be more than {limit} {unit}")
        )

    def wrong_type(self, path: str, value: Any, expected: str) -> None:
        self.found.append(
            errors.FieldError(_C.TYPE_INVALID, path, f"must be of type {expected}", value)
        )

    def problems(self, path: str, value: str, problems: Iterable[str]) -> bool:
        """Report each problem as an invalid value; True if there were none."""
        count = len(self.found)
        for problem in problems:
            self.invalid(path, value, problem)
        return len(self.found) == count

    # Readers.

    def mapping(self, parent: Mapping[str, Any], key: str, path: str) -> dict[str, Any] | None:
        value = parent.get(key)
        if value is None or isinstance(value, dict):
            return value
        self.wrong_type(path, value, "object")
        return None

    def sequence(self, parent: Mapping[str, Any], key: str, path: str) -> list[Any] | None:
        value = parent.get(key)
        if value is None or isinstance(value, list):
            return value
        self.wrong_type(path, value, "array")
        return None

    def string(self, parent: Mapping[str, Any], key: str, path: str) -> str | None:
        value = parent.get(key)
        if value is None or isinstance(value, str):
            return value
        self.wrong_type(path, value, "string")
        return None

    def integer(self, parent: Mapping[str, Any], key: str, path: str) -> int | None:
        value = parent.get(key)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        self.wrong_type(path, value, "integer")
        return None

    def boolean(self, parent: Mapping[str, Any], key: str, path: str) -> bool | None:
        value = parent.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.wrong_type(path, value, "boolean")
        return None

    def string_map(self, parent: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
        """A map of strings; entries of another type are reported and left out."""
        value = self.mapping(parent, key, path)
        if not value:
            return {}
        result = {}
        for k, v in value.items():
            if isinstance(v, str):
                result[k] = v
            else:
                self.wrong_type(f"{path}[{k}]", v, "string")
        return result

    def objects(
        self, parent: Mapping[str, Any], key: str, path: str
    ) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """(index, path, item) for each object in a list; other items are reported."""
        for i, item in enumerate(self.sequence(parent, key, path) or ()):
            item_path = f"{path}[{i}]"
            if isinstance(item, dict):
                yield i, item_path, item
            else:
                self.wrong_type(item_path, item, "object")

    def strings(self, parent: Mapping[str, Any], key: str, path: str) -> list[tuple[int, str]]:
        """(index, item) for each string in a list; other items are reported."""
        found = []
        for i, item in enumerate(self.sequence(parent, key, path) or ()):
            if isinstance(item, str):
                found.append((i, item))
            else:
                self.wrong_type(f"{path}[{i}]", item, "string")
        return found

    def enum(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        supported: Sequence[str],
        *,
        required: bool = True,
    ) -> str | None:
        """A field with a fixed set of values; "" or absent is Required when `required`."""
        value = self.string(parent, key, path)
        if not value:
            if required and (key not in parent or parent[key] in ("", None)):
                self.required(path)
            return None
        if value not in supported:
            self.not_supported(path, value, supported)
            return None
        return value

    def nonnegative(self, parent: Mapping[str, Any], key: str, path: str) -> int | None:
        value = self.integer(parent, key, path)
        if value is not None and value < 0:
            self.invalid(path, value, _NONNEGATIVE)
        return value


def _unique(found: list[errors.FieldError]) -> list[errors.FieldError]:
    # apimachinery's aggregate drops errors whose text repeats.
    seen: set[str] = set()
    result = []
    for error in found:
        text = str(error)
        if text not in seen:
            seen.add(text)
            result.append(error)
    return result


# --- Object metadata (apimachinery/pkg/api/validation/objectmeta.go) ----------------------

NameRule = Callable[[str], list[str]]

_ANNOTATIONS_LIMIT = 256 * 1024
# Kubernetes' own, Arktos's tenant finalizer, and the one CRDs hold for their objects.
_STANDARD_FINALIZERS = frozenset(
    {
        "kubernetes",
        "orphan",
        "foregroundDeletion",
        "arktos",
        "customresourcecleanup.apiextensions.k8s.io",
    }
)
_BANNED_OWNERS = frozenset({("v1", "Event")})
_IMMUTABLE_META = (
    "name",
    "namespace",
    "tenant",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "hashKey",
)


def _check_labels(c: _Checker, labels: Mapping[str, str], path: str) -> None:
    for key, value in labels.items():
        c.problems(path, key, selectors.qualified_name_problems(key))
        c.problems(path, value, selectors.label_value_problems(value))


def _check_annotations(c: _Checker, annotations: Mapping[str, str], path: str) -> None:
    total = 0
    for key, value in annotations.items():
        # Annotation keys are qualified names compared without regard to case.
        c.problems(path, key, selectors.qualified_name_problems(key.lower()))
        total += _size(key) + _size(value)
    if total > _ANNOTATIONS_LIMIT:
        c.too_long(path, _ANNOTATIONS_LIMIT)


def _check_finalizer(c: _Checker, name: str, path: str, *, indexed_path: str) -> None:
    c.problems(path, name, selectors.qualified_name_problems(name))
    if "/" not in name and name not in _STANDARD_FINALIZERS:
        c.invalid(
            indexed_path,
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
        )


def _check_owner_references(c: _Checker, meta: Mapping[str, Any], path: str) -> None:
    controller = ""
    references = c.sequence(meta, "ownerReferences", path) or []
    for _i, _item_path, ref in c.objects(meta, "ownerReferences", path):
        api_version = c.string(ref, "apiVersion", f"{path}.apiVersion") or ""
        kind = c.string(ref, "kind", f"{path}.kind") or ""
        name = c.string(ref, "name", f"{path}.name") or ""
        uid = c.string(ref, "uid", f"{path}.uid") or ""
        parts = api_version.split("/")
        version = parts[-1] if len(parts) <= 2 else ""
        group = parts[0] if len(parts) == 2 else ""
        # apimachinery reports these on the list's path, not the entry's.
        if not version:
            c.invalid(f"{path}.apiVersion", api_version, "version must not be empty")
        if not kind:
            c.invalid(f"{path}.kind", kind, "kind must not be empty")
        if not name:
            c.invalid(f"{path}.name", name, "name must not be empty")
        if not uid:
            c.invalid(f"{path}.uid", uid, "uid must not be empty")
        if not group and (version, kind) in _BANNED_OWNERS:
            c.invalid(path, ref, f"/{version}, Kind={kind} is disallowed from being an owner")
        if c.boolean(ref, "controller", f"{path}.controller"):
            if controller:
                c.invalid(
                    path,
                    references,
                    'Only one reference can have Controller set to true. Found "true" in '
                    f"references for {controller} and {name}",
                )
            else:
                controller = name


def _check_metadata(
    c: _Checker,
    obj: Mapping[str, Any],
    *,
    name_rule: NameRule,
    namespaced: bool,
    tenanted: bool,
) -> None:
    meta = c.mapping(obj, "metadata", "metadata")
    if meta is None:
        c.required("metadata.name", "name or generateName is required")
        return
    generate = c.string(meta, "generateName", "metadata.generateName")
    if generate:
        c.problems("metadata.generateName", generate, name_rule(_mask_trailing_dash(generate)))
    name = c.string(meta, "name", "metadata.name")
    if not name:
        c.required("metadata.name", "name or generateName is required")
    else:
        c.problems("metadata.name", name, name_rule(name))
    if namespaced:
        namespace = c.string(meta, "namespace", "metadata.namespace")
        if not namespace:
            c.required("metadata.namespace")
        else:
            c.problems("metadata.namespace", namespace, dns1123_label_problems(namespace))
    if tenanted:
        tenant = c.string(meta, "tenant", "metadata.tenant")
        if not tenant:
            c.required("metadata.tenant")
        else:
            c.problems("metadata.tenant", tenant, _tenant_name_problems(tenant))
    c.nonnegative(meta, "generation", "metadata.generation")
    _check_labels(c, c.string_map(meta, "labels", "metadata.labels"), "metadata.labels")
    _check_annotations(
        c, c.string_map(meta, "annotations", "metadata.annotations"), "metadata.annotations"
    )
    _check_owner_references(c, meta, "metadata.ownerReferences")
    finalizers = c.strings(meta, "finalizers", "metadata.finalizers")
    for i, finalizer in finalizers:
        _check_finalizer(
            c, finalizer, "metadata.finalizers", indexed_path=f"metadata.finalizers[{i}]"
        )
    names = {f for _, f in finalizers}
    if {"orphan", "foregroundDeletion"} <= names:
        c.invalid(
            "metadata.finalizers",
            [f for _, f in finalizers],
            "finalizer orphan and foregroundDeletion cannot be both set",
        )


def _check_metadata_update(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any]) -> None:
    meta = obj.get("metadata")
    old_meta = old.get("metadata")
    if not isinstance(meta, dict) or not isinstance(old_meta, dict):
        return
    for field in _IMMUTABLE_META:
        if meta.get(field) != old_meta.get(field):
            c.invalid(f"metadata.{field}", meta.get(field), _IMMUTABLE)
    generation, old_generation = meta.get("generation"), old_meta.get("generation")
    if _is_int(generation) and _is_int(old_generation) and generation < old_generation:
        c.invalid("metadata.generation", generation, "must not be decremented")


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --- Resource requirements ----------------------------------------------------------------

_STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
_STANDARD_RESOURCES = _STANDARD_CONTAINER_RESOURCES | frozenset(
    {
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "storage",
        "requests.storage",
        "services.nodeports",
        "services.loadbalancers",
    }
)


def _is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def _is_native_resource(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _is_extended_resource(name: str) -> bool:
    if _is_native_resource(name) or name.startswith("requests."):
        return False
    return not selectors.qualified_name_problems("requests." + name)


def _container_resource_name_problems(name: str) -> list[str]:
    problems = selectors.qualified_name_problems(name)
    if problems:
        return problems
    if "/" not in name:
        if name not in _STANDARD_RESOURCES and not _is_hugepages(name):
            problems.append("must be a standard resource type or fully qualified")
        if name not in _STANDARD_CONTAINER_RESOURCES and not _is_hugepages(name):
            problems.append("must be a standard resource for containers")
    elif not _is_native_resource(name) and not _is_extended_resource(name):
        problems.append("doesn't follow extended resource name standard")
    return problems


def _resource_list(
    c: _Checker, parent: Mapping[str, Any], key: str, path: str
) -> dict[str, tuple[str, Quantity]]:
    """name -> (path, quantity) for each entry that parses; the others are reported."""
    entries = c.mapping(parent, key, path) or {}
    parsed: dict[str, tuple[str, Quantity]] = {}
    for name, raw in entries.items():
        entry_path = f"{path}[{name}]"
        try:
            parsed[name] = (entry_path, Quantity.from_json(raw))
        except QuantityError as error:
            c.invalid(entry_path, raw, str(error))
        except TypeError:
            c.wrong_type(entry_path, raw, "string")
    return parsed


def _check_quantity_value(c: _Checker, name: str, quantity: Quantity, path: str) -> None:
    if quantity.value < 0:
        c.invalid(path, str(quantity), _NONNEGATIVE)
    if _is_extended_resource(name):
        milli = (quantity.value * 1000).to_integral_value(rounding=decimal.ROUND_CEILING)
        if milli % 1000:
            c.invalid(path, str(quantity), "must be an integer")


def _check_resources(c: _Checker, parent: Mapping[str, Any], path: str) -> None:
    requirements = c.mapping(parent, "resources", path)
    if requirements is None:
        return
    limits_path, requests_path = f"{path}.limits", f"{path}.requests"
    limits = _resource_list(c, requirements, "limits", limits_path)
    requests = _resource_list(c, requirements, "requests", requests_path)
    compute = huge = False
    for name, (entry_path, quantity) in limits.items():
        c.problems(entry_path, name, _container_resource_name_problems(name))
        _check_quantity_value(c, name, quantity, entry_path)
        huge = huge or _is_hugepages(name)
        compute = compute or name in ("cpu", "memory")
    for name, (entry_path, quantity) in requests.items():
        c.problems(entry_path, name, _container_resource_name_problems(name))
        _check_quantity_value(c, name, quantity, entry_path)
        overcommit = _is_native_resource(name) and not _is_hugepages(name)
        if name in limits:
            limit = limits[name][1]
            if quantity.value != limit.value and not overcommit:
                c.invalid(
                    requests_path,
                    str(quantity),
                    f"must be equal to {name} limit of {limit}",
                )
            elif quantity.value > limit.value:
                c.invalid(
                    requests_path,
                    str(quantity),
                    f"must be less than or equal to {name} limit of {limit}",
                )
        elif not overcommit:
            c.required(limits_path, "Limit must be set for non overcommitable resources")
        huge = huge or _is_hugepages(name)
        compute = compute or name in ("cpu", "memory")
    if huge and not compute:
        c.forbidden(path, "HugePages require cpu or memory")


# --- Pod specs (pkg/apis/core/validation, with Arktos's unified pods) -----------------

_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_POWER_SPECS = ("Running", "Paused", "Shutdown", "Suspended")
VOLUME_SOURCES = (
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
)
"""The fields of a volume that name its source; a volume has exactly one."""
# A required name in each volume source that has one, as Kubernetes requires it.
_VOLUME_SOURCE_NAMES = {
    "secret": "secretName",
    "configMap": "name",
    "persistentVolumeClaim": "claimName",
    "hostPath": "path",
}
_ENV_SOURCES = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_UPDATABLE_POD_FIELDS = ",".join(
    (
        "`spec.containers[*].image`",
        "`spec.initContainers[*].image`",
        "`spec.activeDeadlineSeconds`",
        "`spec.tolerations` (only additions to existing tolerations)",
        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
        "negative)",
        "`spec.virtualMachine.powerSpec`",
        "`spec.virtualMachine.resources`",
        "`spec.nics`",
    )
)


def _check_volumes(c: _Checker, spec: Mapping[str, Any], path: str) -> set[str]:
    """Validate `volumes`; the names of the valid ones, which mounts may refer to."""
    names: set[str] = set()
    for _i, item_path, volume in c.objects(spec, "volumes", f"{path}.volumes"):
        count = len(c.found)
        sources = [s for s in VOLUME_SOURCES if volume.get(s) is not None]
        if not sources:
            c.required(item_path, "must specify a volume type")
        for extra in sources[1:]:
            c.forbidden(f"{item_path}.{extra}", "may not specify more than 1 volume type")
        if sources:
            source_path = f"{item_path}.{sources[0]}"
            source = c.mapping(volume, sources[0], source_path)
            required = _VOLUME_SOURCE_NAMES.get(sources[0])
            if (
                source is not None
                and required
                and not c.string(source, required, f"{source_path}.{required}")
            ):
                c.required(f"{source_path}.{required}")
        name_path = f"{item_path}.name"
        name = c.string(volume, "name", name_path)
        if not name:
            c.required(name_path)
        else:
            c.problems(name_path, name, dns1123_label_problems(name))
            if name in names:
                c.duplicate(name_path, name)
        if name and len(c.found) == count:
            names.add(name)
    return names


def _check_volume_mounts(
    c: _Checker, parent: Mapping[str, Any], path: str, volumes: set[str]
) -> None:
    mount_points: set[str] = set()
    for _i, item_path, mount in c.objects(parent, "volumeMounts", path):
        name = c.string(mount, "name", f"{item_path}.name") or ""
        if not name:
            c.required(f"{item_path}.name")
        if name not in volumes:
            c.not_found(f"{item_path}.name", name)
        mount_path = c.string(mount, "mountPath", f"{item_path}.mountPath") or ""
        if not mount_path:
            c.required(f"{item_path}.mountPath")
        elif mount_path in mount_points:
            c.invalid(f"{item_path}.mountPath", mount_path, "must be unique")
        mount_points.add(mount_path)
        sub_path = c.string(mount, "subPath", f"{item_path}.subPath")
        if sub_path:
            if sub_path.startswith("/"):
                c.invalid(f"{item_path}.subPath", sub_path, "must be a relative path")
            if ".." in sub_path.split("/"):
                c.invalid(f"{item_path}.subPath", sub_path, "must not contain '..'")


def _check_container_ports(c: _Checker, container: Mapping[str, Any], path: str) -> None:
    names: set[str] = set()
    for _i, item_path, port in c.objects(container, "ports", path):
        name = c.string(port, "name", f"{item_path}.name")
        if name and c.problems(f"{item_path}.name", name, _port_name_problems(name)):
            if name in names:
                c.duplicate(f"{item_path}.name", name)
            names.add(name)
        number = c.integer(port, "containerPort", f"{item_path}.containerPort")
        if not number:
            if port.get("containerPort") in (None, 0):
                c.required(f"{item_path}.containerPort")
        elif not 1 <= number <= 65535:
            c.invalid(f"{item_path}.containerPort", number, _range_error(1, 65535))
        host = c.integer(port, "hostPort", f"{item_path}.hostPort")
        if host and not 1 <= host <= 65535:
            c.invalid(f"{item_path}.hostPort", host, _range_error(1, 65535))
        c.enum(port, "protocol", f"{item_path}.protocol", _PROTOCOLS)


def _check_env(c: _Checker, container: Mapping[str, Any], path: str) -> None:
    for _i, item_path, var in c.objects(container, "env", path):
        name = c.string(var, "name", f"{item_path}.name")
        if not name:
            c.required(f"{item_path}.name")
        else:
            c.problems(f"{item_path}.name", name, _env_var_name_problems(name))
        source_path = f"{item_path}.valueFrom"
        source = c.mapping(var, "valueFrom", source_path)
        if source is None:
            continue
        kinds = [k for k in _ENV_SOURCES if source.get(k) is not None]
        if not kinds:
            c.invalid(
                source_path,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
                "`secretKeyRef`",
            )
        elif var.get("value"):
            c.invalid(source_path, "", "may not be specified when `value` is not empty")
        elif len(kinds) > 1:
            c.invalid(source_path, "", "may not have more than one field specified at a time")
        for key_ref in ("configMapKeyRef", "secretKeyRef"):
            ref = c.mapping(source, key_ref, f"{source_path}.{key_ref}")
            if ref is None:
                continue
            key_path = f"{source_path}.{key_ref}.key"
            key = c.string(ref, "key", key_path)
            if not key:
                c.required(key_path)
            else:
                c.problems(key_path, key, _config_key_problems(key))
        field_ref = c.mapping(source, "fieldRef", f"{source_path}.fieldRef")
        if field_ref is not None:
            for required in ("apiVersion", "fieldPath"):
                if not c.string(field_ref, required, f"{source_path}.fieldRef.{required}"):
                    c.required(f"{source_path}.fieldRef.{required}")


def _check_port_number(c: _Checker, port: Mapping[str, Any], path: str) -> int | None:
    """A required `port` in 1..65535 (absent counts as 0, as in Go)."""
    number = c.integer(port, "port", path)
    if number is None and "port" in port:
        return None
    if not 1 <= (number or 0) <= 65535:
        c.invalid(path, number or 0, _range_error(1, 65535))
    return number


def _check_port_number_or_name(c: _Checker, value: Any, path: str) -> None:
    if isinstance(value, str):
        c.problems(path, value, _port_name_problems(value))
    elif _is_int(value):
        if not 1 <= value <= 65535:
            c.invalid(path, value, _range_error(1, 65535))
    else:
        c.wrong_type(path, value, "integer or string")


def _check_probe(c: _Checker, container: Mapping[str, Any], key: str, path: str) -> None:
    probe = c.mapping(container, key, path)
    if probe is None:
        return
    handlers = [h for h in _PROBE_HANDLERS if probe.get(h) is not None]
    if not handlers:
        c.required(path, "must specify a handler type")
    for extra in handlers[1:]:
        c.forbidden(f"{path}.{extra}", "may not specify more than 1 handler type")
    for handler in ("httpGet", "tcpSocket"):
        action = c.mapping(probe, handler, f"{path}.{handler}")
        if action is not None:
            _check_port_number_or_name(c, action.get("port"), f"{path}.{handler}.port")
    for field in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        c.nonnegative(probe, field, f"{path}.{field}")
    if key in ("livenessProbe", "startupProbe"):
        threshold = probe.get("successThreshold")
        if _is_int(threshold) and threshold != 1:
            c.invalid(f"{path}.successThreshold", threshold, "must be 1")


def _check_container(
    c: _Checker,
    container: Mapping[str, Any],
    path: str,
    *,
    volumes: set[str],
    names: set[str],
    init: bool,
    template: bool,
) -> None:
    name = c.string(container, "name", f"{path}.name")
    if not name:
        c.required(f"{path}.name")
    else:
        c.problems(f"{path}.name", name, dns1123_label_problems(name))
    if name is not None:
        if name in names:
            c.duplicate(f"{path}.name", name)
        names.add(name)
    image = c.string(container, "image", f"{path}.image")
    if not image:
        c.required(f"{path}.image")
    elif not template and image != image.strip():
        c.invalid(f"{path}.image", image, "must not have leading or trailing whitespace")
    c.enum(container, "imagePullPolicy", f"{path}.imagePullPolicy", _PULL_POLICIES)
    policy_path = f"{path}.terminationMessagePolicy"
    policy = c.string(container, "terminationMessagePolicy", policy_path)
    if not policy:
        c.required(policy_path, "must be 'File' or 'FallbackToLogsOnError'")
    elif policy not in ("File", "FallbackToLogsOnError"):
        c.invalid(policy_path, policy, "must be 'File' or 'FallbackToLogsOnError'")
    _check_container_ports(c, container, f"{path}.ports")
    _check_env(c, container, f"{path}.env")
    _check_volume_mounts(c, container, f"{path}.volumeMounts", volumes)
    _check_resources(c, container, f"{path}.resources")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _check_probe(c, container, probe, f"{path}.{probe}")
    restart_path = f"{path}.restartPolicy"
    restart = c.string(container, "restartPolicy", restart_path)
    if not init:
        if restart is not None:
            c.forbidden(restart_path, "may not be set for non-init containers")
        return
    if restart is not None and restart != "Always":
        c.not_supported(restart_path, restart, ["Always"])
    if restart != "Always":
        # Only restartable (sidecar) init containers may have probes and hooks.
        for field in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
            if container.get(field) is not None:
                c.invalid(
                    f"{path}.{field}", container[field], "must not be set for init containers"
                )


def _check_virtual_machine(
    c: _Checker, spec: Mapping[str, Any], path: str, volumes: set[str]
) -> None:
    vm = c.mapping(spec, "virtualMachine", path)
    if vm is None:
        return
    name = c.string(vm, "name", f"{path}.name")
    if not name:
        c.required(f"{path}.name", "virtual machine name cannot be empty")
    else:
        c.problems(f"{path}.name", name, dns1123_label_problems(name))
    if not c.string(vm, "image", f"{path}.image"):
        c.required(f"{path}.image")
    c.enum(vm, "imagePullPolicy", f"{path}.imagePullPolicy", _PULL_POLICIES)
    key_pair = c.string(vm, "keyPairName", f"{path}.keyPairName")
    public_key = c.string(vm, "publicKey", f"{path}.publicKey")
    if not key_pair and not public_key:
        c.required(f"{path}.keyPairName", "KeyPairName and PublicKey can't be both empty")
    user_data = c.string(vm, "userData", f"{path}.userData")
    if user_data:
        problem = _base64_problem(user_data)
        if problem:
            c.invalid_unshown(f"{path}.userData", problem)
        elif len(_decoded(user_data)) > 65535:
            c.too_long(f"{path}.userData", 65535)
    c.enum(vm, "powerSpec", f"{path}.powerSpec", _POWER_SPECS, required=False)
    _check_resources(c, vm, f"{path}.resources")
    _check_volume_mounts(c, vm, f"{path}.volumeMounts", volumes)


def _check_nics(c: _Checker, spec: Mapping[str, Any], path: str) -> None:
    names: set[str] = set()
    for _i, item_path, nic in c.objects(spec, "nics", path):
        name = c.string(nic, "name", f"{item_path}.name")
        if name:
            if name in names:
                c.duplicate(f"{item_path}.name", name)
            names.add(name)
        address = c.string(nic, "ipAddress", f"{item_path}.ipAddress")
        if address and not _is_ip(address):
            c.invalid(f"{item_path}.ipAddress", address, _IP_MSG)


def _check_tolerations(c: _Checker, spec: Mapping[str, Any], path: str) -> None:
    for _i, item_path, toleration in c.objects(spec, "tolerations", path):
        key = c.string(toleration, "key", f"{item_path}.key") or ""
        operator = c.string(toleration, "operator", f"{item_path}.operator") or ""
        value = c.string(toleration, "value", f"{item_path}.value") or ""
        effect = c.string(toleration, "effect", f"{item_path}.effect") or ""
        seconds = c.integer(toleration, "tolerationSeconds", f"{item_path}.tolerationSeconds")
        if key:
            c.problems(f"{item_path}.key", key, selectors.qualified_name_problems(key))
        if not key and operator != "Exists":
            c.invalid(
                f"{item_path}.operator",
                operator,
                'operator must be Exists when `key` is empty, which means "match all values '
                'and all keys"',
            )
        if seconds is not None and effect != "NoExecute":
            c.invalid(
                f"{item_path}.effect",
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            )
        if operator in ("Equal", ""):
            problems = selectors.label_value_problems(value)
            if problems:
                c.invalid(f"{item_path}.operator", value, ";".join(problems))
        elif operator == "Exists":
            if value:
                c.invalid(
                    f"{item_path}.operator",
                    toleration,
                    "value must be empty when `operator` is 'Exists'",
                )
        else:
            c.not_supported(f"{item_path}.operator", operator, ["Equal", "Exists"])
        if effect and effect not in _TAINT_EFFECTS:
            c.not_supported(f"{item_path}.effect", effect, _TAINT_EFFECTS)


def _check_pod_spec(c: _Checker, spec: Mapping[str, Any], path: str, *, template: bool) -> None:
    """ValidatePodSpec with Arktos's rule: one VM, or one or more containers."""
    containers_path = f"{path}.containers"
    has_vm = spec.get("virtualMachine") is not None
    containers = spec.get("containers")
    if has_vm and isinstance(containers, list) and containers:
        c.forbidden(path, "containers and virtualMachine workloads in same pod")
    volumes = _check_volumes(c, spec, path)
    names: set[str] = set()
    if not has_vm and containers in (None, []):
        c.required(containers_path)
    for _i, item_path, container in c.objects(spec, "containers", containers_path):
        _check_container(
            c, container, item_path, volumes=volumes, names=names, init=False, template=template
        )
    for _i, item_path, container in c.objects(spec, "initContainers", f"{path}.initContainers"):
        _check_container(
            c, container, item_path, volumes=volumes, names=names, init=True, template=template
        )
    _check_virtual_machine(c, spec, f"{path}.virtualMachine", volumes)
    _check_nics(c, spec, f"{path}.nics")
    c.enum(spec, "restartPolicy", f"{path}.restartPolicy", _RESTART_POLICIES)
    dns_policy = c.enum(spec, "dnsPolicy", f"{path}.dnsPolicy", _DNS_POLICIES)
    dns_config = c.mapping(spec, "dnsConfig", f"{path}.dnsConfig")
    if dns_policy == "None":
        if dns_config is None:
            c.required(f"{path}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None")
        elif not dns_config.get("nameservers"):
            c.required(
                f"{path}.dnsConfig.nameservers",
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            )
    if dns_config is not None:
        servers_path = f"{path}.dnsConfig.nameservers"
        for i, server in c.strings(dns_config, "nameservers", servers_path):
            if not _is_ip(server):
                c.invalid(f"{servers_path}[{i}]", server, "must be valid IP address")
    _check_labels(
        c, c.string_map(spec, "nodeSelector", f"{path}.nodeSelector"), f"{path}.nodeSelector"
    )
    for field, rule in (
        ("serviceAccountName", dns1123_subdomain_problems),
        ("nodeName", dns1123_subdomain_problems),
        ("priorityClassName", dns1123_subdomain_problems),
        ("hostname", dns1123_label_problems),
        ("subdomain", dns1123_label_problems),
    ):
        value = c.string(spec, field, f"{path}.{field}")
        if value:
            c.problems(f"{path}.{field}", value, rule(value))
    deadline = c.integer(spec, "activeDeadlineSeconds", f"{path}.activeDeadlineSeconds")
    if deadline is not None and not 1 <= deadline <= _INT32_MAX:
        c.invalid(f"{path}.activeDeadlineSeconds", deadline, _range_error(1, _INT32_MAX))
    c.nonnegative(spec, "terminationGracePeriodSeconds", f"{path}.terminationGracePeriodSeconds")
    _check_tolerations(c, spec, f"{path}.tolerations")
    if c.boolean(spec, "hostNetwork", f"{path}.hostNetwork"):
        for _i, item_path, container in c.objects(spec, "containers", containers_path):
            for _j, port_path, port in c.objects(container, "ports", f"{item_path}.ports"):
                if port.get("hostPort") != port.get("containerPort"):
                    c.invalid(
                        f"{port_path}.containerPort",
                        port.get("containerPort"),
                        "must match `hostPort` when `hostNetwork` is true",
                    )


def _spec(c: _Checker, obj: Mapping[str, Any], path: str = "spec") -> dict[str, Any]:
    return c.mapping(obj, "spec", path) or {}


def _check_pod(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    spec = _spec(c, obj)
    _check_pod_spec(c, spec, "spec", template=False)
    if old is not None:
        old_spec = old.get("spec")
        if isinstance(old_spec, dict):
            _check_pod_update(c, spec, old_spec)


def _check_pod_update(c: _Checker, spec: Mapping[str, Any], old: Mapping[str, Any]) -> None:
    """ValidatePodUpdate as Arktos has it: the VM and the NICs may change as well."""
    for key, path in (("containers", "spec.containers"), ("initContainers", "spec.initContainers")):
        new_list, old_list = spec.get(key) or [], old.get(key) or []
        if not isinstance(new_list, list) or not isinstance(old_list, list):
            continue
        if len(new_list) != len(old_list):
            c.forbidden(path, "pod updates may not add or remove containers")
            return
    deadline, old_deadline = spec.get("activeDeadlineSeconds"), old.get("activeDeadlineSeconds")
    if _is_int(deadline):
        if not 0 <= deadline <= _INT32_MAX:
            c.invalid("spec.activeDeadlineSeconds", deadline, _range_error(0, _INT32_MAX))
        elif _is_int(old_deadline) and old_deadline < deadline:
            c.invalid(
                "spec.activeDeadlineSeconds",
                deadline,
                "must be less than or equal to previous value",
            )
    elif deadline is None and old_deadline is not None:
        c.invalid(
            "spec.activeDeadlineSeconds",
            None,
            "must not update from a positive integer to nil value",
        )
    _check_nic_update(c, spec, old)
    old_tolerations = [_without_seconds(t) for t in _list(old.get("tolerations"))]
    new_tolerations = [_without_seconds(t) for t in _list(spec.get("tolerations"))]
    if any(t not in new_tolerations for t in old_tolerations):
        c.forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds",
        )

    if spec == old:
        return  # unchanged (a status or metadata write): nothing below could differ
    munged = copy.deepcopy(dict(spec))
    for key in ("containers", "initContainers"):
        for new_container, old_container in zip(
            _list(munged.get(key)), _list(old.get(key)), strict=False
        ):
            if isinstance(new_container, dict) and isinstance(old_container, dict):
                _restore(new_container, old_container, "image")
    for key in ("activeDeadlineSeconds", "tolerations", "nics"):
        _restore(munged, old, key)
    # A VM is powered and resized in place; what it boots from stays as created.
    new_vm, old_vm = munged.get("virtualMachine"), old.get("virtualMachine")
    if isinstance(new_vm, dict) and isinstance(old_vm, dict):
        for key in ("powerSpec", "resources"):
            new_vm.pop(key, None)
            _restore(new_vm, old_vm, key)
    grace, old_grace = (
        spec.get("terminationGracePeriodSeconds"),
        old.get("terminationGracePeriodSeconds"),
    )
    if grace == 1 and _is_int(old_grace) and old_grace < 0:
        munged["terminationGracePeriodSeconds"] = old_grace
    if not old.get("nodeName"):
        # The API server binds pods through an update; a pod is bound only once.
        _restore(munged, old, "nodeName")
    if munged != old:
        c.forbidden(
            "spec",
            f"pod updates may not change fields other than {_UPDATABLE_POD_FIELDS}\n"
            + _spec_diff(old, munged),
        )


def _without_seconds(toleration: Any) -> Any:
    if isinstance(toleration, dict):
        return {k: v for k, v in toleration.items() if k != "tolerationSeconds"}
    return toleration


def _restore(target: dict[str, Any], source: Mapping[str, Any], key: str) -> None:
    if key in source:
        target[key] = copy.deepcopy(source[key])
    else:
        target.pop(key, None)


def _check_nic_update(c: _Checker, spec: Mapping[str, Any], old: Mapping[str, Any]) -> None:
    new_nics = [n for n in _list(spec.get("nics")) if isinstance(n, dict)]
    old_nics = [n for n in _list(old.get("nics")) if isinstance(n, dict)]
    old_ports = {n.get("name"): n.get("portId") for n in old_nics}
    for nic in new_nics:
        port = nic.get("portId")
        previous = old_ports.get(nic.get("name"))
        if port and previous and previous != port:
            c.forbidden("spec", f"pod updates may not modify {nic.get('name')} portId")
    if any(n.get("name") == "eth0" for n in old_nics) and not any(
        n.get("name") == "eth0" for n in new_nics
    ):
        c.forbidden("spec", "pod updates may not delete primary nic eth0")


def _spec_diff(old: Any, new: Any, path: str = "spec") -> str:
    """The changed leaves, one `-`/`+` pair per field, for the forbidden-update message."""
    lines: list[str] = []

    def walk(a: Any, b: Any, at: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(a.keys() | b.keys()):
                walk(a.get(key), b.get(key), f"{at}.{key}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{at}[{i}]")
        elif a != b:
            lines.append(f"- {at}: {json.dumps(a, sort_keys=True)}")
            lines.append(f"+ {at}: {json.dumps(b, sort_keys=True)}")

    walk(old, new, path)
    return "\n".join(lines)


# --- Label selectors and workloads (apps/v1) ----------------------------------------------

_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _check_label_selector(c: _Checker, selector: Mapping[str, Any], path: str) -> bool:
    """metav1 ValidateLabelSelector; True if the selector is usable."""
    count = len(c.found)
    labels = c.string_map(selector, "matchLabels", f"{path}.matchLabels")
    _check_labels(c, labels, f"{path}.matchLabels")
    for _i, item_path, requirement in c.objects(
        selector, "matchExpressions", f"{path}.matchExpressions"
    ):
        operator = c.string(requirement, "operator", f"{item_path}.operator")
        values = c.strings(requirement, "values", f"{item_path}.values")
        if operator in ("In", "NotIn"):
            if not values:
                c.required(
                    f"{item_path}.values", "must be specified when `operator` is 'In' or 'NotIn'"
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                c.forbidden(
                    f"{item_path}.values",
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
        else:
            c.invalid(f"{item_path}.operator", operator, "not a valid selector operator")
        key = c.string(requirement, "key", f"{item_path}.key") or ""
        c.problems(f"{item_path}.key", key, selectors.qualified_name_problems(key))
        for j, value in values:
            c.problems(f"{item_path}.values[{j}]", value, selectors.label_value_problems(value))
    return len(c.found) == count


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """A valid metav1.LabelSelector against a set of labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for requirement in selector.get("matchExpressions") or []:
        key, operator = requirement["key"], requirement["operator"]
        values = requirement.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _check_int_or_percent(c: _Checker, value: Any, path: str) -> int | None:
    """A non-negative int or a percent string; its number, or None if invalid."""
    if isinstance(value, str):
        if not _PERCENT_RE.fullmatch(value):
            c.invalid(path, value, _regex_error(_PERCENT_MSG, _PERCENT_FMT, "1%", "93%"))
            return None
        return int(value[:-1])
    if _is_int(value):
        if value < 0:
            c.invalid(path, value, _NONNEGATIVE)
            return None
        return int(value)
    c.invalid(path, value, "must be an integer or percentage (e.g '5%')")
    return None


def _check_strategy(c: _Checker, spec: Mapping[str, Any]) -> None:
    strategy = c.mapping(spec, "strategy", "spec.strategy") or {}
    kind = strategy.get("type")
    rolling = c.mapping(strategy, "rollingUpdate", "spec.strategy.rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            c.forbidden(
                "spec.strategy.rollingUpdate",
                "may not be specified when strategy `type` is 'Recreate'",
            )
    elif kind == "RollingUpdate":
        if rolling is None:
            c.required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil")
            return
        path = "spec.strategy.rollingUpdate"
        unavailable = _check_int_or_percent(
            c, rolling.get("maxUnavailable"), f"{path}.maxUnavailable"
        )
        surge = _check_int_or_percent(c, rolling.get("maxSurge"), f"{path}.maxSurge")
        if unavailable == 0 and surge == 0:
            c.invalid(
                f"{path}.maxUnavailable",
                rolling.get("maxUnavailable"),
                "may not be 0 when `maxSurge` is 0",
            )
        if (
            isinstance(rolling.get("maxUnavailable"), str)
            and unavailable is not None
            and unavailable > 100
        ):
            c.invalid(
                f"{path}.maxUnavailable",
                rolling.get("maxUnavailable"),
                "must not be greater than 100%",
            )
    else:
        c.not_supported("spec.strategy", strategy, ["Recreate", "RollingUpdate"])


def _check_workload(
    c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None, *, deployment: bool
) -> None:
    """Deployment and ReplicaSet specs: selector, template, replicas (and strategy)."""
    spec = _spec(c, obj)
    c.nonnegative(spec, "replicas", "spec.replicas")
    min_ready = c.nonnegative(spec, "minReadySeconds", "spec.minReadySeconds")
    selector = c.mapping(spec, "selector", "spec.selector")
    usable = False
    if selector is None:
        c.required("spec.selector")
    else:
        usable = _check_label_selector(c, selector, "spec.selector")
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            c.invalid("spec.selector", selector, "empty selector is invalid for deployment")
            usable = False
    template = c.mapping(spec, "template", "spec.template")
    if template is None:
        c.required("spec.template")
    else:
        meta = c.mapping(template, "metadata", "spec.template.metadata") or {}
        labels = c.string_map(meta, "labels", "spec.template.metadata.labels")
        _check_labels(c, labels, "spec.template.metadata.labels")
        annotations = c.string_map(meta, "annotations", "spec.template.metadata.annotations")
        _check_annotations(c, annotations, "spec.template.metadata.annotations")
        if usable and selector is not None and not _selector_matches(selector, labels):
            c.invalid(
                "spec.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            )
        pod_spec = _spec(c, template, "spec.template.spec")
        _check_pod_spec(c, pod_spec, "spec.template.spec", template=True)
        restart = pod_spec.get("restartPolicy")
        if isinstance(restart, str) and restart != "Always":
            c.not_supported("spec.template.spec.restartPolicy", restart, ["Always"])
        if pod_spec.get("activeDeadlineSeconds") is not None:
            kind = "Deployment" if deployment else "ReplicaSet"
            c.forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                f"activeDeadlineSeconds in {kind} is not Supported",
            )
    if deployment:
        _check_strategy(c, spec)
        c.nonnegative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit")
        deadline = c.integer(spec, "progressDeadlineSeconds", "spec.progressDeadlineSeconds")
        if deadline is not None and deadline <= (min_ready or 0):
            c.invalid(
                "spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"
            )
    if old is not None:
        old_spec = old.get("spec")
        if isinstance(old_spec, dict) and spec.get("selector") != old_spec.get("selector"):
            c.invalid("spec.selector", spec.get("selector"), _IMMUTABLE)


def _check_deployment(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    _check_workload(c, obj, old, deployment=True)


def _check_replica_set(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    _check_workload(c, obj, old, deployment=False)


# --- Services and endpoints ---------------------------------------------------------------

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
_NODE_PORT_RANGE = (30000, 32767)
_KUBELET_PORT = 10250


def _service_cluster_ips(spec: Mapping[str, Any]) -> list[Any]:
    ips = spec.get("clusterIPs")
    if isinstance(ips, list) and ips:
        return ips
    ip = spec.get("clusterIP")
    return [ip] if ip else []


def _check_service(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    spec = _spec(c, obj)
    kind = c.enum(spec, "type", "spec.type", _SERVICE_TYPES)
    ips = _service_cluster_ips(spec)
    headless = bool(ips) and ips[0] == "None"
    external_name = kind == "ExternalName"
    ports = list(c.objects(spec, "ports", "spec.ports"))
    if not spec.get("ports") and not headless and not external_name:
        c.required("spec.ports")
    if kind in ("LoadBalancer", "NodePort") and headless:
        c.invalid("spec.clusterIPs[0]", ips[0], f"may not be set to 'None' for {kind} services")
    if kind == "LoadBalancer":
        for _i, item_path, port in ports:
            if port.get("port") == _KUBELET_PORT:
                c.invalid(
                    item_path,
                    _KUBELET_PORT,
                    f"may not expose port {_KUBELET_PORT} externally since it is used by kubelet",
                )
    if external_name:
        if ips:
            c.forbidden("spec.clusterIPs", "may not be set for ExternalName services")
        for field in ("ipFamilies", "ipFamilyPolicy"):
            if spec.get(field) is not None:
                c.forbidden(f"spec.{field}", "may not be set for ExternalName services")
        cname = (c.string(spec, "externalName", "spec.externalName") or "").removesuffix(".")
        if cname:
            c.problems("spec.externalName", cname, dns1123_subdomain_problems(cname))
        else:
            c.required("spec.externalName")
    else:
        _check_cluster_ips(c, spec)

    names: set[str] = set()
    node_ports: set[tuple[Any, int]] = set()
    seen: set[tuple[Any, Any]] = set()
    for _i, item_path, port in ports:
        name = c.string(port, "name", f"{item_path}.name")
        if not name and len(ports) > 1:
            c.required(f"{item_path}.name")
        elif name:
            c.problems(f"{item_path}.name", name, dns1123_label_problems(name))
            if name in names:
                c.duplicate(f"{item_path}.name", name)
            names.add(name)
        number = _check_port_number(c, port, f"{item_path}.port")
        protocol = c.enum(port, "protocol", f"{item_path}.protocol", _PROTOCOLS)
        if "targetPort" in port:
            _check_port_number_or_name(c, port["targetPort"], f"{item_path}.targetPort")
        node_port = c.integer(port, "nodePort", f"{item_path}.nodePort")
        if node_port:
            if kind == "ClusterIP":
                c.forbidden(f"{item_path}.nodePort", "may not be used when `type` is 'ClusterIP'")
            elif not _NODE_PORT_RANGE[0] <= node_port <= _NODE_PORT_RANGE[1]:
                c.invalid(
                    f"{item_path}.nodePort",
                    node_port,
                    "provided port is not in the valid range. The range of valid ports is "
                    f"{_NODE_PORT_RANGE[0]}-{_NODE_PORT_RANGE[1]}",
                )
            if (protocol, node_port) in node_ports:
                c.duplicate(f"{item_path}.nodePort", node_port)
            node_ports.add((protocol, node_port))
        key = (number, protocol)
        if key in seen:
            c.duplicate(item_path, {"port": number, "protocol": protocol})
        seen.add(key)

    _check_labels(c, c.string_map(spec, "selector", "spec.selector"), "spec.selector")
    affinity = c.enum(spec, "sessionAffinity", "spec.sessionAffinity", ("ClientIP", "None"))
    config = c.mapping(spec, "sessionAffinityConfig", "spec.sessionAffinityConfig")
    if affinity == "None" and config is not None:
        c.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")
    elif affinity == "ClientIP":
        _check_client_ip_config(c, config)
    for i, ip in c.strings(spec, "externalIPs", "spec.externalIPs"):
        if not _is_ip(ip):
            c.invalid(f"spec.externalIPs[{i}]", ip, _IP_MSG)
    externally_accessible = kind in ("LoadBalancer", "NodePort") or (
        kind == "ClusterIP" and bool(spec.get("externalIPs"))
    )
    policy = spec.get("externalTrafficPolicy")
    if not externally_accessible:
        if policy:
            c.invalid(
                "spec.externalTrafficPolicy",
                policy,
                "may only be set for externally-accessible services",
            )
    else:
        c.enum(spec, "externalTrafficPolicy", "spec.externalTrafficPolicy", ("Cluster", "Local"))
    c.enum(
        spec,
        "internalTrafficPolicy",
        "spec.internalTrafficPolicy",
        ("Cluster", "Local"),
        required=False,
    )
    if old is not None:
        _check_service_update(c, spec, old)


def _check_cluster_ips(c: _Checker, spec: Mapping[str, Any]) -> None:
    cluster_ip = spec.get("clusterIP")
    listed = spec.get("clusterIPs")
    if isinstance(listed, list) and listed and cluster_ip and listed[0] != cluster_ip:
        c.invalid("spec.clusterIPs", listed, "first value must match `clusterIP`")
    ips = _service_cluster_ips(spec)
    for i, ip in enumerate(ips):
        path = f"spec.clusterIPs[{i}]"
        if i == 0 and ip == "None":
            if len(ips) > 1:
                c.invalid("spec.clusterIPs", ips, "'None' must be the first and only value")
        elif not isinstance(ip, str):
            c.wrong_type(path, ip, "string")
        elif not _is_ip(ip):
            c.invalid(path, ip, _IP_MSG)
    policies = ("SingleStack", "PreferDualStack", "RequireDualStack")
    c.enum(spec, "ipFamilyPolicy", "spec.ipFamilyPolicy", policies, required=False)
    for i, family in c.strings(spec, "ipFamilies", "spec.ipFamilies"):
        if family not in ("IPv4", "IPv6"):
            c.not_supported(f"spec.ipFamilies[{i}]", family, ["IPv4", "IPv6"])


def _check_client_ip_config(c: _Checker, config: Mapping[str, Any] | None) -> None:
    path = "spec.sessionAffinityConfig"
    detail = "when session affinity type is ClientIP"
    if config is None:
        c.required(path, detail)
        return
    client_ip = c.mapping(config, "clientIP", f"{path}.clientIP")
    if client_ip is None:
        c.required(f"{path}.clientIP", detail)
        return
    timeout = c.integer(client_ip, "timeoutSeconds", f"{path}.clientIP.timeoutSeconds")
    if timeout is None:
        c.required(f"{path}.clientIP.timeoutSeconds", detail)
    elif not 0 < timeout <= 86400:
        c.invalid(
            f"{path}.clientIP.timeoutSeconds",
            timeout,
            "must be greater than 0 and less than 86400",
        )


def _check_service_update(c: _Checker, spec: Mapping[str, Any], old: Mapping[str, Any]) -> None:
    old_spec = old.get("spec")
    if not isinstance(old_spec, dict):
        return
    if "ExternalName" in (spec.get("type"), old_spec.get("type")):
        return
    new_ips, old_ips = _service_cluster_ips(spec), _service_cluster_ips(old_spec)
    if new_ips[:1] == ["None"] and old_ips[:1] == ["None"]:
        return
    if old_ips and not new_ips:
        c.invalid("spec.clusterIPs[0]", new_ips, "primary clusterIP can not be unset")
    elif old_ips and new_ips[0] != old_ips[0]:
        c.invalid("spec.clusterIPs[0]", new_ips, "may not change once set")


def _check_endpoints(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    for _i, subset_path, subset in c.objects(obj, "subsets", "subsets"):
        if not subset.get("addresses") and not subset.get("notReadyAddresses"):
            c.required(subset_path, "must specify `addresses` or `notReadyAddresses`")
        for key in ("addresses", "notReadyAddresses"):
            for _j, address_path, address in c.objects(subset, key, f"{subset_path}.{key}"):
                ip = c.string(address, "ip", f"{address_path}.ip") or ""
                if not _is_ip(ip):
                    c.invalid(f"{address_path}.ip", ip, _IP_MSG)
                hostname = c.string(address, "hostname", f"{address_path}.hostname")
                if hostname:
                    c.problems(
                        f"{address_path}.hostname", hostname, dns1123_label_problems(hostname)
                    )
                node = c.string(address, "nodeName", f"{address_path}.nodeName")
                if node is not None:
                    c.problems(f"{address_path}.nodeName", node, dns1123_subdomain_problems(node))
        ports = list(c.objects(subset, "ports", f"{subset_path}.ports"))
        for _j, port_path, port in ports:
            name = c.string(port, "name", f"{port_path}.name")
            if not name and len(ports) > 1:
                c.required(f"{port_path}.name")
            elif name:
                c.problems(f"{port_path}.name", name, dns1123_label_problems(name))
            _check_port_number(c, port, f"{port_path}.port")
            c.enum(port, "protocol", f"{port_path}.protocol", _PROTOCOLS)


# --- Configuration: config maps, secrets, service accounts -----------------------------

_MAX_DATA_SIZE = 1024 * 1024
_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def _binary_map(c: _Checker, obj: Mapping[str, Any], key: str) -> dict[str, bytes]:
    """A map of base64 values, decoded; keys and values that are not valid are reported."""
    decoded = {}
    for name, value in c.string_map(obj, key, key).items():
        path = f"{key}[{name}]"
        c.problems(path, name, _config_key_problems(name))
        problem = _base64_problem(value)
        if problem:
            c.invalid_unshown(path, problem)
        else:
            decoded[name] = _decoded(value)
    return decoded


def _check_immutable_data(
    c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None, fields: Sequence[str]
) -> None:
    if old is None or old.get("immutable") is not True:
        return
    if obj.get("immutable") is not True:
        c.forbidden("immutable", "field is immutable when `immutable` is set")
    for field in fields:
        if obj.get(field) != old.get(field):
            c.forbidden(field, "field is immutable when `immutable` is set")


def _check_config_map(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    data = c.string_map(obj, "data", "data")
    binary = _binary_map(c, obj, "binaryData")
    total = 0
    for name, value in data.items():
        c.problems(f"data[{name}]", name, _config_key_problems(name))
        if name in binary:
            c.invalid(f"data[{name}]", name, "duplicate of key present in binaryData")
        total += _size(value)
    total += sum(len(value) for value in binary.values())
    if total > _MAX_DATA_SIZE:
        c.too_long("", _MAX_DATA_SIZE)
    c.boolean(obj, "immutable", "immutable")
    _check_immutable_data(c, obj, old, ("data", "binaryData"))


def _check_secret(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    data = _binary_map(c, obj, "data")
    if sum(len(value) for value in data.values()) > _MAX_DATA_SIZE:
        c.too_long("data", _MAX_DATA_SIZE)
    c.string_map(obj, "stringData", "stringData")
    kind = c.string(obj, "type", "type") or ""
    if kind == "kubernetes.io/service-account-token":
        meta = obj.get("metadata")
        annotations = meta.get("annotations") if isinstance(meta, dict) else None
        if not isinstance(annotations, dict) or not annotations.get(
            "kubernetes.io/service-account.name"
        ):
            c.required("metadata.annotations[kubernetes.io/service-account.name]")
    elif kind == "kubernetes.io/basic-auth" and "username" not in data and "password" not in data:
        c.required("data[username]")
        c.required("data[password]")
    for key in _SECRET_REQUIRED_KEYS.get(kind, ()):
        if key not in data or (key == "ssh-privatekey" and not data[key]):
            c.required(f"data[{key}]")
        elif key.startswith(".docker"):
            try:
                json.loads(data[key])
            except ValueError as error:
                c.invalid(f"data[{key}]", "<secret contents redacted>", str(error))
    c.boolean(obj, "immutable", "immutable")
    if old is not None and obj.get("type") != old.get("type"):
        c.invalid("type", obj.get("type"), _IMMUTABLE)
    _check_immutable_data(c, obj, old, ("data",))


def _check_service_account(
    c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None
) -> None:
    c.boolean(obj, "automountServiceAccountToken", "automountServiceAccountToken")
    for key in ("secrets", "imagePullSecrets"):
        for _i, item_path, ref in c.objects(obj, key, key):
            c.string(ref, "name", f"{item_path}.name")


# --- Cluster objects: namespaces, tenants, nodes ------------------------------------------


def _check_spec_finalizers(c: _Checker, obj: Mapping[str, Any]) -> None:
    spec = _spec(c, obj)
    for _i, finalizer in c.strings(spec, "finalizers", "spec.finalizers"):
        _check_finalizer(c, finalizer, "spec.finalizers", indexed_path="spec.finalizers")


def _check_namespace(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    _check_spec_finalizers(c, obj)


def _check_tenant(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    _check_spec_finalizers(c, obj)
    spec = _spec(c, obj)
    cluster = c.string(spec, "storageClusterId", "spec.storageClusterId")
    if cluster is None:
        if "storageClusterId" not in spec:
            c.required("spec.storageClusterId")
    elif not (cluster.isascii() and cluster.isdigit() and int(cluster) <= 63):
        c.invalid("spec.storageClusterId", cluster, _range_error(0, 63))


def _check_node(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    spec = _spec(c, obj)
    unique: set[tuple[str, str]] = set()
    for _i, item_path, taint in c.objects(spec, "taints", "spec.taints"):
        key = c.string(taint, "key", f"{item_path}.key") or ""
        c.problems(f"{item_path}.key", key, selectors.qualified_name_problems(key))
        value = c.string(taint, "value", f"{item_path}.value") or ""
        problems = selectors.label_value_problems(value)
        if problems:
            c.invalid(f"{item_path}.value", value, ";".join(problems))
        effect = c.enum(taint, "effect", f"{item_path}.effect", _TAINT_EFFECTS) or ""
        if (key, effect) in unique:
            c.duplicate(item_path, taint, "taints must be unique by key and effect pair")
        unique.add((key, effect))
    cidr = c.string(spec, "podCIDR", "spec.podCIDR")
    if cidr:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            c.invalid("spec.podCIDR", cidr, "not a valid CIDR")
    status = c.mapping(obj, "status", "status") or {}
    for key in ("capacity", "allocatable"):
        for name, (entry_path, quantity) in _resource_list(c, status, key, f"status.{key}").items():
            _check_quantity_value(c, name, quantity, entry_path)
    if old is not None:
        old_spec = old.get("spec")
        old_spec = old_spec if isinstance(old_spec, dict) else {}
        for field in ("podCIDR", "providerID"):
            previous = old_spec.get(field)
            if previous and spec.get(field) != previous:
                c.forbidden(
                    f"spec.{field}",
                    f'node updates may not change {field} except from "" to valid',
                )


# --- Events, leases, Arktos controller instances and actions ----------------------------


def _check_event(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    involved = c.mapping(obj, "involvedObject", "involvedObject")
    if not involved:
        c.required("involvedObject")
        involved = {}
    meta = obj.get("metadata")
    namespace = (meta.get("namespace") or "") if isinstance(meta, dict) else ""
    involved_namespace = c.string(involved, "namespace", "involvedObject.namespace") or ""
    if not obj.get("eventTime"):
        if involved_namespace:
            mismatch = namespace != involved_namespace
        else:
            mismatch = namespace not in ("", "default")
    else:
        mismatch = not involved_namespace and namespace not in ("default", "kube-system")
        for field in ("reportingComponent", "reportingInstance", "action", "reason"):
            if not obj.get(field):
                c.required(field)
    if mismatch:
        c.invalid("involvedObject.namespace", involved_namespace, "does not match event.namespace")
    c.integer(obj, "count", "count")
    for field in ("type", "reason", "message"):
        c.string(obj, field, field)


def _check_lease(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    spec = _spec(c, obj)
    c.string(spec, "holderIdentity", "spec.holderIdentity")
    duration = c.integer(spec, "leaseDurationSeconds", "spec.leaseDurationSeconds")
    if duration is not None and duration <= 0:
        c.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
    transitions = c.integer(spec, "leaseTransitions", "spec.leaseTransitions")
    if transitions is not None and transitions < 0:
        c.invalid("spec.leaseTransitions", transitions, _NONNEGATIVE)
    for field in ("acquireTime", "renewTime"):
        c.string(spec, field, f"spec.{field}")


def _check_controller_instance(
    c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None
) -> None:
    if not c.string(obj, "controllerType", "controllerType"):
        c.required("controllerType")
    key = c.nonnegative(obj, "controllerKey", "controllerKey")
    if key is not None and key > _INT64_MAX:
        c.invalid("controllerKey", key, _range_error(0, _INT64_MAX))
    c.nonnegative(obj, "workloadNum", "workloadNum")
    c.boolean(obj, "isLocked", "isLocked")


_ACTIONS = {
    "rebootAction": None,
    "snapshotAction": "snapshotName",
    "restoreAction": "snapshotID",
}


def _check_action(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    spec = _spec(c, obj)
    pod = c.string(spec, "podName", "spec.podName")
    if not pod:
        c.required("spec.podName")
    else:
        c.problems("spec.podName", pod, dns1123_subdomain_problems(pod))
    node = c.string(spec, "nodeName", "spec.nodeName")
    if node:
        c.problems("spec.nodeName", node, dns1123_subdomain_problems(node))
    present = [key for key in _ACTIONS if spec.get(key) is not None]
    if not present:
        c.required(
            "spec",
            "must specify one of: `rebootAction`, `snapshotAction` or `restoreAction`",
        )
    elif len(present) > 1:
        c.invalid("spec", present, "may not have more than one field specified at a time")
    for key, required in _ACTIONS.items():
        action = c.mapping(spec, key, f"spec.{key}")
        if action is None:
            continue
        if required and not c.string(action, required, f"spec.{key}.{required}"):
            c.required(f"spec.{key}.{required}")
        c.nonnegative(action, "delayInSeconds", f"spec.{key}.delayInSeconds")


# --- RBAC (rbac.authorization.k8s.io/v1) ----------------------------------------------------

_RBAC_GROUP = "rbac.authorization.k8s.io"


def _path_segment_problems(value: str) -> list[str]:
    """RBAC names are path segments (`system:admin` is fine), as apimachinery checks them."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in value]


def _check_rules(c: _Checker, obj: Mapping[str, Any], *, namespaced: bool) -> None:
    for _i, path, rule in c.objects(obj, "rules", "rules"):
        if not c.strings(rule, "verbs", f"{path}.verbs"):
            c.required(f"{path}.verbs", "verbs must contain at least one value")
        urls = c.strings(rule, "nonResourceURLs", f"{path}.nonResourceURLs")
        groups = c.strings(rule, "apiGroups", f"{path}.apiGroups")
        kinds = c.strings(rule, "resources", f"{path}.resources")
        c.strings(rule, "resourceNames", f"{path}.resourceNames")
        if urls:
            shown = [url for _j, url in urls]
            if namespaced:
                c.invalid(
                    f"{path}.nonResourceURLs",
                    shown,
                    "namespaced rules cannot apply to non-resource URLs",
                )
            elif groups or kinds:
                c.invalid(
                    f"{path}.nonResourceURLs",
                    shown,
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            continue
        if not groups:
            c.required(f"{path}.apiGroups", "resource rules must supply at least one api group")
        if not kinds:
            c.required(f"{path}.resources", "resource rules must supply at least one resource")


def _check_role(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    _check_rules(c, obj, namespaced=True)


def _check_cluster_role(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    _check_rules(c, obj, namespaced=False)
    aggregation = c.mapping(obj, "aggregationRule", "aggregationRule")
    if aggregation is not None:
        c.sequence(aggregation, "clusterRoleSelectors", "aggregationRule.clusterRoleSelectors")


def _check_binding(
    c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None, *, namespaced: bool
) -> None:
    role_ref = c.mapping(obj, "roleRef", "roleRef")
    if role_ref is None:
        c.required("roleRef")
        role_ref = {}
    if c.string(role_ref, "apiGroup", "roleRef.apiGroup") != _RBAC_GROUP:
        c.not_supported("roleRef.apiGroup", role_ref.get("apiGroup", ""), [_RBAC_GROUP])
    c.enum(
        role_ref,
        "kind",
        "roleRef.kind",
        ("Role", "ClusterRole") if namespaced else ("ClusterRole",),
    )
    role_name = c.string(role_ref, "name", "roleRef.name")
    if not role_name:
        c.required("roleRef.name")
    else:
        c.problems("roleRef.name", role_name, _path_segment_problems(role_name))
    if old is not None and old.get("roleRef") != obj.get("roleRef"):
        c.invalid("roleRef", obj.get("roleRef"), "cannot change roleRef")
    for _i, path, subject in c.objects(obj, "subjects", "subjects"):
        name = c.string(subject, "name", f"{path}.name")
        if not name:
            c.required(f"{path}.name")
        kind = c.enum(subject, "kind", f"{path}.kind", ("ServiceAccount", "User", "Group"))
        group = c.string(subject, "apiGroup", f"{path}.apiGroup") or ""
        if kind == "ServiceAccount":
            if group:
                c.not_supported(f"{path}.apiGroup", group, [""])
            if name:
                c.problems(f"{path}.name", name, dns1123_subdomain_problems(name))
            if not namespaced and not c.string(subject, "namespace", f"{path}.namespace"):
                c.required(f"{path}.namespace")
        elif kind is not None and group != _RBAC_GROUP:
            c.not_supported(f"{path}.apiGroup", group, [_RBAC_GROUP])


def _check_role_binding(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    _check_binding(c, obj, old, namespaced=True)


def _check_cluster_role_binding(
    c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None
) -> None:
    _check_binding(c, obj, old, namespaced=False)


# --- Networks (arktos.futurewei.com/v1) -----------------------------------------------------

NETWORK_TYPES = ("flat", "vpc", "mizar")
NETWORK_IPAMS = ("Kubernetes", "External")
NETWORK_PHASES = ("Pending", "Ready", "Failed", "Terminating", "Unknown")
_CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def _check_network(c: _Checker, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    spec = _spec(c, obj)
    kind = c.enum(spec, "type", "spec.type", NETWORK_TYPES)
    vpc = c.string(spec, "vpcID", "spec.vpcID")
    if kind == "vpc" and not vpc:
        c.required("spec.vpcID", "a network of type vpc names its VPC")
    service = c.mapping(spec, "service", "spec.service") or {}
    c.enum(service, "ipam", "spec.service.ipam", NETWORK_IPAMS, required=False)
    for i, cidr in c.strings(service, "cidrs", "spec.service.cidrs"):
        try:
            ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            c.invalid(f"spec.service.cidrs[{i}]", cidr, _CIDR_MSG)
    status = c.mapping(obj, "status", "status") or {}
    c.enum(status, "phase", "status.phase", NETWORK_PHASES, required=False)
    c.string(status, "message", "status.message")
    dns = c.string(status, "dnsServiceIP", "status.dnsServiceIP")
    if dns and not _is_ip(dns):
        c.invalid("status.dnsServiceIP", dns, _IP_MSG)
    if old is not None:
        old_type = (old.get("spec") or {}).get("type")
        if kind is not None and old_type and kind != old_type:
            c.invalid("spec.type", kind, _IMMUTABLE)


# --- Dispatch -------------------------------------------------------------------------------

_KindCheck = Callable[[_Checker, Mapping[str, Any], Mapping[str, Any] | None], None]


@dataclasses.dataclass(frozen=True, slots=True)
class _Kind:
    name: NameRule = dns1123_subdomain_problems
    check: _KindCheck | None = None
    has_spec: bool = True


_KINDS: dict[tuple[str, str], _Kind] = {
    ("", "Pod"): _Kind(check=_check_pod),
    ("", "Service"): _Kind(dns1035_label_problems, _check_service),
    ("", "Endpoints"): _Kind(check=_check_endpoints, has_spec=False),
    ("", "ConfigMap"): _Kind(check=_check_config_map, has_spec=False),
    ("", "Secret"): _Kind(check=_check_secret, has_spec=False),
    ("", "ServiceAccount"): _Kind(check=_check_service_account, has_spec=False),
    ("", "Namespace"): _Kind(dns1123_label_problems, _check_namespace),
    ("", "Tenant"): _Kind(_tenant_name_problems, _check_tenant),
    ("", "Node"): _Kind(check=_check_node),
    ("", "Event"): _Kind(check=_check_event, has_spec=False),
    ("", "ControllerInstance"): _Kind(
        dns1123_label_problems, _check_controller_instance, has_spec=False
    ),
    ("", "Action"): _Kind(check=_check_action),
    ("arktos.futurewei.com", "Network"): _Kind(check=_check_network),
    ("apps", "Deployment"): _Kind(check=_check_deployment),
    ("apps", "ReplicaSet"): _Kind(check=_check_replica_set),
    ("coordination.k8s.io", "Lease"): _Kind(check=_check_lease),
    (_RBAC_GROUP, "Role"): _Kind(_path_segment_problems, _check_role, has_spec=False),
    (_RBAC_GROUP, "ClusterRole"): _Kind(
        _path_segment_problems, _check_cluster_role, has_spec=False
    ),
    (_RBAC_GROUP, "RoleBinding"): _Kind(
        _path_segment_problems, _check_role_binding, has_spec=False
    ),
    (_RBAC_GROUP, "ClusterRoleBinding"): _Kind(
        _path_segment_problems, _check_cluster_role_binding, has_spec=False
    ),
}
_REGISTRY = resources.Registry()


def validate_metadata(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, *, scope: resources.Scope
) -> list[errors.FieldError]:
    """The metadata problems of an object of a kind this module does not know.

    Custom objects: names are DNS subdomains, as kube-apiserver checks them.
    """
    c = _Checker()
    _check_metadata(
        c,
        obj,
        name_rule=dns1123_subdomain_problems,
        namespaced=scope is resources.Scope.NAMESPACE,
        tenanted=scope is not resources.Scope.CLUSTER,
    )
    if old is not None:
        _check_metadata_update(c, obj, old)
    return _unique(c.found)


def validate(
    group: str, kind: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None
) -> list[errors.FieldError]:
    """Every problem with `obj` (an update of `old` if given); [] if it is valid.

    Kinds this module does not know get their metadata checked only.
    """
    c = _Checker()
    rules = _KINDS.get((group, kind), _Kind())
    resource = _REGISTRY.by_kind(group, kind)
    _check_metadata(
        c,
        obj,
        name_rule=rules.name,
        namespaced=resource is not None and resource.namespaced,
        tenanted=resource is not None and resource.scope is not resources.Scope.CLUSTER,
    )
    if old is not None:
        _check_metadata_update(c, obj, old)
    spec = obj.get("spec")
    if rules.has_spec and spec is not None and not isinstance(spec, dict):
        # Nothing inside a spec of the wrong type can be checked.
        c.wrong_type("spec", spec, "object")
    elif rules.check is not None:
        rules.check(c, obj, old)
    return _unique(c.found)
