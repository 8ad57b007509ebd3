"""The agent server's pieces: who may call it (TokenReview, cached), exec query parsing and
its self-signed certificate."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import trio
import trio.testing
from cryptography import x509
from werkzeug.datastructures import MultiDict

from arktos_lite.agent import _server as server


class FakeApi:
    """Answers TokenReviews from a table of tokens; counts the questions."""

    def __init__(self, users: dict[str, dict[str, Any]]) -> None:
        self.users = users
        self.asked: list[str] = []
        self.fail = False

    async def request(self, method: str, path: str, *, json: Any = None) -> Any:
        assert (method, path) == ("POST", server.TOKENREVIEWS_PATH)
        if self.fail:
            raise OSError("connection refused")
        token = json["spec"]["token"]
        self.asked.append(token)
        user = self.users.get(token)
        if user is None:
            return {"status": {"authenticated": False}}
        return {"status": {"authenticated": True, "user": user}}


def reviewer(api: FakeApi) -> server.TokenReviewer:
    return server.TokenReviewer(api)  # type: ignore[arg-type]


USERS = {
    "apiserver": {"username": "system:apiserver", "groups": ["system:masters"]},
    "admin": {
        "username": "admin",
        "groups": ["system:masters"],
        "extra": {server.TENANT_EXTRA: ["system"]},
    },
    "tenant-admin": {
        "username": "root",
        "groups": ["system:masters"],
        "extra": {server.TENANT_EXTRA: ["t1"]},
    },
    "alice": {"username": "alice", "groups": [], "extra": {server.TENANT_EXTRA: ["t1"]}},
}


async def test_who_may_call_the_agent() -> None:
    review = reviewer(FakeApi(USERS))
    allowed = {token: (await review.review(token)) for token in [*USERS, "nobody"]}
    assert {t: (u.allowed if u else None) for t, u in allowed.items()} == {
        "apiserver": True,
        "admin": True,
        "tenant-admin": False,
        "alice": False,
        "nobody": None,
    }


async def test_answers_are_cached_for_a_minute(autojump_clock: trio.testing.MockClock) -> None:
    api = FakeApi(USERS)
    review = reviewer(api)
    await review.review("admin")
    await review.review("nobody")
    await trio.sleep(59)
    await review.review("admin")
    await review.review("nobody")
    assert api.asked == ["admin", "nobody"]
    await trio.sleep(2)
    await review.review("admin")
    assert api.asked == ["admin", "nobody", "admin"]


async def test_a_review_that_cannot_be_made_is_an_error() -> None:
    api = FakeApi(USERS)
    api.fail = True
    with pytest.raises(server._ReviewFailed, match="refused"):
        await reviewer(api).review("admin")


def test_exec_query() -> None:
    query = MultiDict(
        [
            ("command", "sh"),
            ("command", "-c"),
            ("command", "echo hi"),
            ("stdout", "true"),
            ("stdin", "1"),
            ("tty", "true"),
            ("stderr", "true"),
        ]
    )
    request = server._exec_request(query)
    assert list(request.cmd) == ["sh", "-c", "echo hi"]
    assert (request.stdin, request.stdout, request.stderr, request.tty) == (True, True, False, True)
    with pytest.raises(server._Refused, match="at least 1 command"):
        server._exec_request(MultiDict([("stdout", "1")]))
    with pytest.raises(server._Refused, match="stdin, stdout, stderr"):
        server._exec_request(MultiDict([("command", "true")]))


def test_certificate_is_made_once(tmp_path: pathlib.Path) -> None:
    cert, key = server.ensure_certificate(tmp_path, "10.0.0.7")
    first = cert.read_bytes()
    assert (key.stat().st_mode & 0o777) == 0o600
    names = x509.load_pem_x509_certificate(first).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert "10.0.0.7" in [str(a) for a in names.value.get_values_for_type(x509.IPAddress)]
    assert server.ensure_certificate(tmp_path, "10.0.0.7")[0].read_bytes() == first
