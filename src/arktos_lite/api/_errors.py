"""Errors as the Kubernetes API states them: `Status` objects with a code and a reason.

The API server raises these and turns them into a `Status` body in one place; the client
turns a `Status` body back into the same class (`StatusError.from_status`). Messages
follow kube-apiserver's wording, because scripts and tests match on them.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


class Reason(enum.StrEnum):
    BAD_REQUEST = "BadRequest"
    UNAUTHORIZED = "Unauthorized"
    FORBIDDEN = "Forbidden"
    NOT_FOUND = "NotFound"
    METHOD_NOT_ALLOWED = "MethodNotAllowed"
    NOT_ACCEPTABLE = "NotAcceptable"
    ALREADY_EXISTS = "AlreadyExists"
    CONFLICT = "Conflict"
    MISDIRECTED_REQUEST = "MisdirectedRequest"
    GONE = "Gone"
    EXPIRED = "Expired"
    REQUEST_ENTITY_TOO_LARGE = "RequestEntityTooLarge"
    UNSUPPORTED_MEDIA_TYPE = "UnsupportedMediaType"
    INVALID = "Invalid"
    TOO_MANY_REQUESTS = "TooManyRequests"
    INTERNAL_ERROR = "InternalError"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"
    TIMEOUT = "Timeout"


class CauseType(enum.StrEnum):
    """Field error types, with the words kube-apiserver prints for them."""

    REQUIRED = "FieldValueRequired"
    INVALID = "FieldValueInvalid"
    NOT_SUPPORTED = "FieldValueNotSupported"
    DUPLICATE = "FieldValueDuplicate"
    FORBIDDEN = "FieldValueForbidden"
    TOO_LONG = "FieldValueTooLong"
    TOO_MANY = "FieldValueTooMany"
    TYPE_INVALID = "FieldValueTypeInvalid"
    NOT_FOUND = "FieldValueNotFound"
    UNKNOWN_FIELD = "FieldValueUnknownField"
    FIELD_MANAGER_CONFLICT = "FieldManagerConflict"
    """Server-side apply: another field manager owns the field (a cause of 409 Conflict)."""

    @property
    def words(self) -> str:
        return _CAUSE_WORDS[self]


_CAUSE_WORDS = {
    CauseType.REQUIRED: "Required value",
    CauseType.INVALID: "Invalid value",
    CauseType.NOT_SUPPORTED: "Unsupported value",
    CauseType.DUPLICATE: "Duplicate value",
    CauseType.FORBIDDEN: "Forbidden",
    CauseType.TOO_LONG: "Too long",
    CauseType.TOO_MANY: "Too many",
    CauseType.TYPE_INVALID: "Invalid value",
    CauseType.NOT_FOUND: "Not found",
    CauseType.UNKNOWN_FIELD: "Unknown field",
    CauseType.FIELD_MANAGER_CONFLICT: "Conflict",
}

_NO_VALUE: Any = object()


@dataclasses.dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field, e.g. `spec.containers[0].name: Required value`."""

    type: CauseType
    field: str
    detail: str = ""
    value: Any = _NO_VALUE

    @property
    def message(self) -> str:
        parts = [self.type.words]
        if self.value is not _NO_VALUE and self.type not in (
            CauseType.REQUIRED,
            CauseType.FORBIDDEN,
            CauseType.TOO_LONG,
            CauseType.TOO_MANY,
            CauseType.UNKNOWN_FIELD,
        ):
            parts[0] += f": {_render(self.value)}"
        if self.detail:
            parts.append(self.detail)
        return ": ".join(parts)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def cause(self) -> dict[str, str]:
        return {"reason": self.type.value, "message": self.message, "field": self.field}


def _render(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool | int | float) or value is None:
        return json.dumps(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class StatusError(Exception):
    """An error the API answers with a `Status` object."""

    code: ClassVar[int] = 500
    reason: ClassVar[Reason] = Reason.INTERNAL_ERROR
    _by_reason: ClassVar[dict[tuple[int, str], type[StatusError]]] = {}

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details) if details else None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        StatusError._by_reason.setdefault((cls.code, cls.reason.value), cls)

    def status(self) -> dict[str, Any]:
        """The `Status` object for this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason.value,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body

    @classmethod
    def from_status(cls, status: Mapping[str, Any], *, code: int | None = None) -> StatusError:
        """Rebuild the error a server described in a `Status` object."""
        status_code = int(status.get("code") or code or 500)
        reason = str(status.get("reason") or "")
        error_class = StatusError._by_reason.get((status_code, reason))
        if error_class is None:
            error_class = next(
                (c for (k, _), c in StatusError._by_reason.items() if k == status_code),
                StatusError,
            )
        error = StatusError.__new__(error_class)
        StatusError.__init__(
            error, str(status.get("message") or reason), details=status.get("details")
        )
        return error


def _details(resource: str, name: str, *, group: str = "", **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"kind": resource}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details.update(extra)
    return details


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


class BadRequest(StatusError):
    code = 400
    reason = Reason.BAD_REQUEST


class Unauthorized(StatusError):
    code = 401
    reason = Reason.UNAUTHORIZED

    def __init__(self, message: str = "Unauthorized") -> None:
        super().__init__(message)


class Forbidden(StatusError):
    code = 403
    reason = Reason.FORBIDDEN

    @classmethod
    def for_resource(cls, resource: str, name: str, *, group: str = "", why: str) -> Forbidden:
        target = f'{_qualified(resource, group)} "{name}"' if name else _qualified(resource, group)
        return cls(f"{target} is forbidden: {why}", details=_details(resource, name, group=group))


class NotFound(StatusError):
    code = 404
    reason = Reason.NOT_FOUND

    @classmethod
    def for_resource(cls, resource: str, name: str, *, group: str = "") -> NotFound:
        return cls(
            f'{_qualified(resource, group)} "{name}" not found',
            details=_details(resource, name, group=group),
        )


class MethodNotAllowed(StatusError):
    code = 405
    reason = Reason.METHOD_NOT_ALLOWED


class NotAcceptable(StatusError):
    code = 406
    reason = Reason.NOT_ACCEPTABLE


class AlreadyExists(StatusError):
    code = 409
    reason = Reason.ALREADY_EXISTS

    @classmethod
    def for_resource(cls, resource: str, name: str, *, group: str = "") -> AlreadyExists:
        return cls(
            f'{_qualified(resource, group)} "{name}" already exists',
            details=_details(resource, name, group=group),
        )


class Conflict(StatusError):
    code = 409
    reason = Reason.CONFLICT

    @classmethod
    def for_resource(
        cls,
        resource: str,
        name: str,
        *,
        group: str = "",
        why: str = "the object has been modified; please apply your changes to the "
        "latest version and try again",
    ) -> Conflict:
        return cls(
            f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
            details=_details(resource, name, group=group),
        )


class Gone(StatusError):
    """A watch asked for a resourceVersion that has been compacted away."""

    code = 410
    reason = Reason.EXPIRED

    @classmethod
    def too_old(cls, requested: int, oldest: int) -> Gone:
        return cls(f"too old resource version: {requested} ({oldest})")


class Expired(Gone):
    """A continue token whose snapshot is no longer available."""

    @classmethod
    def continue_token(cls) -> Expired:
        return cls(
            "The provided continue parameter is too old to display a consistent list result. "
            "You can start a new list without the continue parameter, or use the continue "
            "token in this response to retrieve the remainder of the results. Continuing with "
            "the provided token results in an inconsistent list - objects that were created, "
            "modified, or deleted between the time the first chunk was returned and now may "
            "show up in the list."
        )


class RequestEntityTooLarge(StatusError):
    code = 413
    reason = Reason.REQUEST_ENTITY_TOO_LARGE


class UnsupportedMediaType(StatusError):
    code = 415
    reason = Reason.UNSUPPORTED_MEDIA_TYPE


class Invalid(StatusError):
    """The object breaks validation; each `FieldError` becomes a cause."""

    code = 422
    reason = Reason.INVALID

    @classmethod
    def for_object(
        cls, kind: str, name: str, errors: Sequence[FieldError], *, group: str = ""
    ) -> Invalid:
        joined = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(map(str, errors)) + "]"
        details = _details(kind, name, group=group, causes=[e.cause() for e in errors])
        error = cls(f'{kind} "{name}" is invalid: {joined}', details=details)
        error.errors = tuple(errors)
        return error

    errors: tuple[FieldError, ...] = ()


class TooManyRequests(StatusError):
    code = 429
    reason = Reason.TOO_MANY_REQUESTS


class InternalError(StatusError):
    code = 500
    reason = Reason.INTERNAL_ERROR


class ServiceUnavailable(StatusError):
    code = 503
    reason = Reason.SERVICE_UNAVAILABLE


class Timeout(StatusError):
    code = 504
    reason = Reason.TIMEOUT
