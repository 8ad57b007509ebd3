"""Fixtures for the storage contract: every test runs once per backend URL.

`BACKEND_URLS` is the list of backends under test; `DURABLE_URLS` the ones whose data
outlives a close (reopen tests run on those only). A URL template may name `tmp_path` or
any other synchronous fixture in braces (`etcd://{etcd_store}`: a store of its own on the
session's etcd, see `tests/_etcd_fixtures.py`); the fixture's value is filled in.
"""

from __future__ import annotations

import contextlib
import string
from collections.abc import AsyncIterator, Callable

import pytest

from _etcd_fixtures import etcd_server as etcd_server, etcd_store as etcd_store
from arktos_lite import storage

BACKEND_URLS: list[pytest.ParameterSet] = [
    pytest.param("sqlite://", id="sqlite-memory"),
    pytest.param("sqlite:///{tmp_path}/state.db", id="sqlite-file"),
    pytest.param("etcd://{etcd_store}", id="etcd"),
]

DURABLE_URLS: list[pytest.ParameterSet] = [
    pytest.param("sqlite:///{tmp_path}/state.db", id="sqlite-file"),
    pytest.param("etcd://{etcd_store}", id="etcd"),
]

OpenStore = Callable[..., contextlib.AbstractAsyncContextManager[storage.Backend]]


def _fill(template: str, request: pytest.FixtureRequest) -> str:
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    return template.format(**{name: request.getfixturevalue(name) for name in names})


@pytest.fixture(params=BACKEND_URLS)
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh store of one backend."""
    return _fill(request.param, request)


@pytest.fixture(params=DURABLE_URLS)
def durable_store_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh store whose data survives closing and reopening it."""
    return _fill(request.param, request)


@pytest.fixture
def open_store(store_url: str) -> OpenStore:
    """Open the test's store with custom `storage.Options`: `async with open_store(opts)`."""

    def opener(
        options: storage.Options | None = None,
    ) -> contextlib.AbstractAsyncContextManager[storage.Backend]:
        return storage.open_store(store_url, options)

    return opener


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[storage.Backend]:
    """A fresh store of one backend with default options, closed after the test."""
    async with storage.open_store(store_url) as opened:
        yield opened
