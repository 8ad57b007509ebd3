"""HTTP/2 clients (kubectl speaks it over TLS) get early errors without harm to the server.

An error answered before the request body has arrived closes the stream while its data is
still on the wire; the server must read on, not fail the connection or the process.
"""

from __future__ import annotations

import httpx

from .conftest import ADMIN_TOKEN, Server, make_tenant


async def test_early_errors_with_a_body_in_flight(server: Server) -> None:
    body = b'{"metadata": {"name": "x"}, "data": {"big": "' + b"x" * 400_000 + b'"}}'
    async with httpx.AsyncClient(
        base_url=server.url, http1=False, http2=True, timeout=10
    ) as client:
        for _ in range(5):
            # 401 before anything is read; then 404 for a tenant that does not exist, and
            # 415 for a patch type that is refused before its body is read.
            unauthenticated = await client.post(
                "/api/v1/namespaces/default/configmaps", content=body
            )
            assert unauthenticated.status_code == 401
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            refused = await client.patch(
                "/api/v1/namespaces/default/configmaps/x",
                content=body,
                headers={**headers, "Content-Type": "text/plain"},
            )
            assert refused.status_code == 415
        assert (await client.get("/api/v1/namespaces", headers=headers)).status_code == 200
    async with server.client() as admin:
        await make_tenant(admin, "still-serving")


async def test_an_oversize_body_over_http2(server: Server) -> None:
    body = b"x" * (4 * 1024 * 1024)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(
        base_url=server.url, http1=False, http2=True, timeout=10, headers=headers
    ) as client:
        too_big = await client.post("/api/v1/namespaces/default/configmaps", content=body)
        assert too_big.status_code == 413
    async with server.client() as admin:
        await make_tenant(admin, "still-serving")
