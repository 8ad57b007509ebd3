"""The runtime error classes and their gRPC status codes."""

from __future__ import annotations

import grpc
import pytest

from arktos_lite import runtime
from arktos_lite.runtime import errors

CLASSES = [
    runtime.NotFound,
    runtime.AlreadyExists,
    runtime.InvalidArgument,
    runtime.FailedPrecondition,
    runtime.Unavailable,
    runtime.DeadlineExceeded,
    runtime.Unimplemented,
    runtime.Internal,
]


@pytest.mark.parametrize("cls", CLASSES)
def test_codes_and_classes_are_inverse(cls: type[runtime.CRIError]) -> None:
    error = cls("boom")
    assert isinstance(error, runtime.CRIError)
    assert error.message == str(error) == "boom"
    again = errors.from_status(errors.status_code(error), "boom")
    assert type(again) is cls
    assert again.code is error.code


def test_codes_without_a_class_keep_their_code() -> None:
    error = errors.from_status(grpc.StatusCode.PERMISSION_DENIED, "")
    assert type(error) is runtime.CRIError
    assert error.code is grpc.StatusCode.PERMISSION_DENIED
    assert str(error) == "PERMISSION_DENIED"
    assert errors.status_code(error) is grpc.StatusCode.PERMISSION_DENIED


def test_foreign_exceptions_are_internal_on_the_server() -> None:
    assert errors.status_code(KeyError("x")) is grpc.StatusCode.INTERNAL


def test_ok_is_not_an_error() -> None:
    with pytest.raises(ValueError, match="OK"):
        errors.from_status(grpc.StatusCode.OK, "")
