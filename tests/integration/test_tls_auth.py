"""TLS client certificates and bearer tokens through a real hypercorn (trio worker).

The server runs with the certificates `_pki` generates and accepts, but does not require,
client certificates of the cluster CA; httpx is the client. The app sees the verified
client certificate through `peer_certificate(scope)`, and only on the connection that
presented it.
"""

from __future__ import annotations

import functools
import json
import pathlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import hypercorn.trio
import pytest
import quart
import quart_trio
import trio

from arktos_lite import client as client_
from arktos_lite.apiserver import _authn as authn, _kubeconfig as kubeconfig, _pki as pki_

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def _whoami(user: authn.User | None) -> tuple[int, bytes]:
    if user is None:
        return 401, b'{"reason":"Unauthorized"}'
    body = {"name": user.name, "tenant": user.tenant, "groups": list(user.groups)}
    return 200, json.dumps(body).encode()


def asgi_app(authenticator: authn.Authenticator) -> App:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization")
        user = authenticator.authenticate(
            authorization.decode() if authorization is not None else None,
            authn.peer_certificate(scope),
        )
        status, body = _whoami(user)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def quart_app(authenticator: authn.Authenticator) -> App:
    app = quart_trio.QuartTrio(__name__)

    @app.route("/")
    async def whoami() -> quart.Response:
        request = quart.request
        user = authenticator.authenticate(
            request.headers.get("Authorization"), authn.peer_certificate(request.scope)
        )
        status, body = _whoami(user)
        return quart.Response(body, status=status, content_type="application/json")

    return app


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> pki_.Pki:
    return pki_.ensure_pki(tmp_path_factory.mktemp("data"))


@pytest.fixture(params=["asgi", "quart-trio"])
async def server(request: pytest.FixtureRequest, pki: pki_.Pki) -> AsyncIterator[str]:
    authenticator = authn.Authenticator(admin_token=pki.admin_token)
    app = asgi_app(authenticator) if request.param == "asgi" else quart_app(authenticator)
    config = authn.ClientCertConfig()
    config.bind = ["127.0.0.1:0"]
    config.certfile = str(pki.server_cert)
    config.keyfile = str(pki.server_key)
    config.ca_certs = str(pki.ca_cert)
    config.verify_mode = ssl.CERT_OPTIONAL
    config.accesslog = None
    config.graceful_timeout = 1.0
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        serve = functools.partial(hypercorn.trio.serve, app, config, shutdown_trigger=stop.wait)
        binds: list[str] = await nursery.start(serve)
        try:
            yield binds[0]
        finally:
            stop.set()


def _context(
    ca_pem: bytes, client: tuple[pathlib.Path, pathlib.Path] | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca_pem.decode())
    if client is not None:
        context.load_cert_chain(certfile=client[0], keyfile=client[1])
    return context


def _save(
    tmp_path: pathlib.Path, issued: pki_.ClientCertificate
) -> tuple[pathlib.Path, pathlib.Path]:
    cert, key = tmp_path / "client.crt", tmp_path / "client.key"
    cert.write_bytes(issued.cert_pem)
    key.write_bytes(issued.key_pem)
    return cert, key


@pytest.mark.parametrize("http2", [False, True])
async def test_the_app_sees_the_user_of_the_client_certificate(
    server: str, pki: pki_.Pki, tmp_path: pathlib.Path, http2: bool
) -> None:
    issued = pki_.issue_client_cert(pki, user="alice", tenant="t1", groups=["dev"])
    context = _context(pki.ca_pem(), _save(tmp_path, issued))
    async with httpx.AsyncClient(base_url=server, verify=context, http2=http2) as client:
        for _ in range(2):  # the second request reuses the connection
            response = await client.get("/")
            assert response.status_code == 200
            assert response.json() == {"name": "alice", "tenant": "t1", "groups": ["dev"]}
        assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")


async def test_a_connection_without_a_certificate_is_anonymous(
    server: str, pki: pki_.Pki, tmp_path: pathlib.Path
) -> None:
    issued = pki_.issue_client_cert(pki, user="alice", tenant="t1")
    with_cert = _context(pki.ca_pem(), _save(tmp_path, issued))
    async with (
        httpx.AsyncClient(base_url=server, verify=with_cert) as alice,
        httpx.AsyncClient(base_url=server, verify=_context(pki.ca_pem())) as anonymous,
    ):
        assert (await alice.get("/")).status_code == 200
        assert (await anonymous.get("/")).status_code == 401
        assert (await alice.get("/")).status_code == 200


async def test_admin_token_over_tls_with_the_kubeconfig_ca(
    server: str, pki: pki_.Pki, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "kubeconfig"
    kubeconfig.write_kubeconfig(path, server=server, pki=pki)
    config = client_.load_kubeconfig(path)
    assert config.ca_data is not None
    assert config.token is not None
    async with httpx.AsyncClient(verify=_context(config.ca_data)) as client:
        response = await client.get(
            config.server + "/", headers={"Authorization": f"Bearer {config.token}"}
        )
        assert response.json() == {
            "name": "admin",
            "tenant": "system",
            "groups": ["system:masters"],
        }
        wrong = await client.get(config.server + "/", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401


async def test_a_certificate_of_another_ca_is_refused(
    server: str, pki: pki_.Pki, tmp_path: pathlib.Path
) -> None:
    other = pki_.ensure_pki(tmp_path / "other")
    forged = pki_.issue_client_cert(other, user="mallory", groups=["system:masters"])
    context = _context(pki.ca_pem(), _save(tmp_path, forged))
    async with httpx.AsyncClient(base_url=server, verify=context) as client:
        with pytest.raises(httpx.TransportError):
            await client.get("/")
