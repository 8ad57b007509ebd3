"""A real API server per test and an admin client without a rate limit in the way."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from arktos_lite import client

from .._server import ADMIN_TOKEN, Server


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with Server.open() as running:
        yield running


@pytest.fixture
async def api(server: Server) -> AsyncIterator[client.Client]:
    config = client.Config(server=server.url, token=ADMIN_TOKEN)
    async with client.Client(config, qps=5000, burst=5000) as connected:
        yield connected
