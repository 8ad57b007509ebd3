"""The agent's HTTPS server (the kubelet API's part the API server uses): logs and exec.

`GET /containerLogs/{tenant}/{namespace}/{pod}/{container}` streams a container's log
(`follow`, `previous`, `tailLines`, `sinceSeconds`, `sinceTime`, `timestamps`,
`limitBytes`); the websocket `/exec/{tenant}/{namespace}/{pod}/{container}?command=…`
asks the container's runtime for an exec session and relays channel.k8s.io messages (v5
or v4) between the caller and the runtime's streaming server. `/healthz` answers anyone.

Every other request carries a bearer token that the API server vouches for through a
TokenReview (cached for a minute): the API server's own identity (`system:apiserver`) or
a `system:masters` user of the system tenant. The certificate is self-signed, generated
into the root dir on first start; like kube-apiserver without
`--kubelet-certificate-authority`, the API server does not verify it.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import hashlib
import ipaddress
import logging
import os
import pathlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import hypercorn.config
import hypercorn.trio
import orjson
import quart
import trio
import trio_websocket
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from quart_trio import QuartTrio

from arktos_lite import client, runtime
from arktos_lite.agent import _logs as logs
from arktos_lite.runtime import stream
from arktos_lite.runtime.cri import api_pb2 as cri

logger = logging.getLogger(__name__)

APISERVER_USER = "system:apiserver"
MASTERS_GROUP = "system:masters"
SYSTEM_TENANT = "system"
# Where the API server's TokenReview answers put the user's tenant.
TENANT_EXTRA = "arktos.futurewei.com/tenant"
TOKENREVIEWS_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"

_REVIEW_TTL = 60.0
_REVIEW_CACHE_SIZE = 1024
_CERT_DAYS = 365


@dataclasses.dataclass(frozen=True, slots=True)
class LocatedContainer:
    """Where a pod's container lives on this node."""

    runtime: runtime.Runtime
    container_id: str
    log_path: pathlib.Path
    running: bool


class ContainerLocator(Protocol):
    async def locate(
        self, *, tenant: str, namespace: str, pod: str, container: str, previous: bool
    ) -> LocatedContainer:
        """The container (its previous attempt with `previous`); LookupError if none."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class ReviewedUser:
    username: str
    groups: tuple[str, ...]
    tenant: str

    @property
    def allowed(self) -> bool:
        return self.username == APISERVER_USER or (
            self.tenant == SYSTEM_TENANT and MASTERS_GROUP in self.groups
        )


class _ReviewFailed(Exception):
    """The API server could not be asked about a token."""


class TokenReviewer:
    """Asks the API server who a bearer token is; answers are cached (LRU, a minute)."""

    def __init__(self, api: client.Client, *, ttl: float = _REVIEW_TTL) -> None:
        self._api = api
        self._ttl = ttl
        self._cache: collections.OrderedDict[bytes, tuple[float, ReviewedUser | None]] = (
            collections.OrderedDict()
        )

    async def review(self, token: str) -> ReviewedUser | None:
        key = hashlib.sha256(token.encode()).digest()
        now = trio.current_time()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(key)
            return cached[1]
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        try:
            answer = await self._api.request("POST", TOKENREVIEWS_PATH, json=body)
        except Exception as error:
            raise _ReviewFailed(str(error)) from error
        status = answer.get("status") if isinstance(answer, dict) else None
        user: ReviewedUser | None = None
        if isinstance(status, dict) and status.get("authenticated"):
            info = status.get("user") or {}
            extra = info.get("extra") or {}
            tenants = extra.get(TENANT_EXTRA) or [SYSTEM_TENANT]
            user = ReviewedUser(
                username=str(info.get("username", "")),
                groups=tuple(str(g) for g in info.get("groups") or ()),
                tenant=str(tenants[0]),
            )
        self._cache[key] = (now + self._ttl, user)
        self._cache.move_to_end(key)
        while len(self._cache) > _REVIEW_CACHE_SIZE:
            self._cache.popitem(last=False)
        return user


class AgentServer:
    """Serves logs and exec for the pods of this node; see the module docs."""

    def __init__(
        self,
        api: client.Client,
        *,
        locator: ContainerLocator,
        root_dir: pathlib.Path,
        host: str = "127.0.0.1",
        port: int = 10250,
    ) -> None:
        self._locator = locator
        self._root_dir = root_dir
        self._host = host
        self._port = port
        self.reviewer = TokenReviewer(api)
        self.app = self._create_app()

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; reports the bound port."""
        cert, key = await trio.to_thread.run_sync(
            ensure_certificate, self._root_dir / "pki", self._host
        )
        config = hypercorn.config.Config()
        host = f"[{self._host}]" if ":" in self._host else self._host
        config.bind = [f"{host}:{self._port}"]
        config.certfile = str(cert)
        config.keyfile = str(key)
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        config.graceful_timeout = 1.0
        async with trio.open_nursery() as nursery:
            bound: list[str] = await nursery.start(
                lambda task_status: hypercorn.trio.serve(
                    self.app,
                    config,
                    shutdown_trigger=trio.sleep_forever,
                    task_status=task_status,
                )
            )
            port = int(bound[0].rsplit(":", 1)[1])
            logger.info("agent server listening on https://%s:%d", host, port)
            task_status.started(port)

    # The app

    def _create_app(self) -> QuartTrio:
        app = QuartTrio("arktos_lite.agent")
        app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False

        @app.errorhandler(_Refused)
        async def _refused(error: _Refused) -> quart.Response:
            return error.response()

        @app.get("/healthz")
        async def _healthz() -> quart.Response:
            return quart.Response("ok", content_type="text/plain; charset=utf-8")

        @app.get("/containerLogs/<tenant>/<namespace>/<pod>/<container>")
        async def _container_logs(
            tenant: str, namespace: str, pod: str, container: str
        ) -> quart.Response:
            await self._authenticate(quart.request.headers.get("Authorization"))
            args = {k: v for k, v in quart.request.args.items()}
            try:
                options = logs.LogOptions.from_query(args, now_ns=time.time_ns())
            except logs.LogOptionsError as error:
                raise _Refused(400, "BadRequest", str(error)) from None
            located = await self._locate(
                tenant=tenant,
                namespace=namespace,
                pod=pod,
                container=container,
                previous=options.previous,
            )
            running = self._running_check(tenant, namespace, pod, container, located)
            body = logs.read_logs(located.log_path, options, running=running)
            response = quart.Response(
                body, content_type="text/plain", headers={"Cache-Control": "no-cache"}
            )
            response.timeout = None
            return response

        @app.websocket("/exec/<tenant>/<namespace>/<pod>/<container>")
        async def _exec(tenant: str, namespace: str, pod: str, container: str) -> Any:
            ws = quart.websocket
            await self._authenticate(ws.headers.get("Authorization"))
            request = _exec_request(ws.args)
            subprotocol = stream.choose_subprotocol(ws.requested_subprotocols)
            if subprotocol is None:
                raise _Refused(
                    400,
                    "BadRequest",
                    f"websocket subprotocols {ws.requested_subprotocols} not supported; "
                    f"use one of {list(stream.SUBPROTOCOLS)}",
                )
            located = await self._locate(
                tenant=tenant, namespace=namespace, pod=pod, container=container, previous=False
            )
            if not located.running:
                raise _Refused(
                    400, "BadRequest", f"container {container} is not running in pod {pod}"
                )
            request.container_id = located.container_id
            try:
                url = await located.runtime.exec(request)
            except runtime.CRIError as error:
                raise _Refused(500, "InternalError", f"exec failed: {error}") from None
            # containerd 1.6's streaming server speaks v4 at most. v4 cannot say "stdin
            # ended", so a v5 caller's close frames stop here.
            offered = [subprotocol, stream.V4] if subprotocol == stream.V5 else [subprotocol]
            try:
                async with stream.connect(url, subprotocols=offered) as upstream:
                    await ws.accept(subprotocol=subprotocol)
                    receive: Callable[[], Awaitable[bytes | str]] = ws.receive
                    if not stream.supports_close(upstream.subprotocol or subprotocol):
                        receive = _without_close(ws.receive)
                    await stream.relay(upstream, receive=receive, send=ws.send)
            except (OSError, trio_websocket.HandshakeError) as error:
                raise _Refused(
                    500, "InternalError", f"cannot reach the runtime's streaming server: {error}"
                ) from None
            return None

        return app

    async def _authenticate(self, authorization: str | None) -> None:
        token = _bearer(authorization)
        if token is None:
            raise _Refused(401, "Unauthorized", "Unauthorized")
        try:
            user = await self.reviewer.review(token)
        except _ReviewFailed as error:
            logger.warning("token review failed: %s", error)
            raise _Refused(503, "ServiceUnavailable", f"cannot review the token: {error}") from None
        if user is None:
            raise _Refused(401, "Unauthorized", "Unauthorized")
        if not user.allowed:
            raise _Refused(
                403,
                "Forbidden",
                f'user "{user.username}" may not use the node agent\'s API',
            )

    async def _locate(
        self, *, tenant: str, namespace: str, pod: str, container: str, previous: bool
    ) -> LocatedContainer:
        try:
            return await self._locator.locate(
                tenant=tenant,
                namespace=namespace,
                pod=pod,
                container=container,
                previous=previous,
            )
        except LookupError as error:
            message = error.args[0] if error.args else str(error)
            raise _Refused(404, "NotFound", str(message)) from None

    def _running_check(
        self, tenant: str, namespace: str, pod: str, container: str, located: LocatedContainer
    ) -> logs.Running:
        async def running() -> bool:
            if not located.running:
                return False
            try:
                now = await self._locator.locate(
                    tenant=tenant,
                    namespace=namespace,
                    pod=pod,
                    container=container,
                    previous=False,
                )
            except LookupError:
                return False
            # A restarted container writes another file: this one is finished.
            return now.running and now.container_id == located.container_id

        return running


class _Refused(Exception):
    """A request answered with a `Status` error instead of what it asked for."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message

    def response(self) -> quart.Response:
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        return quart.Response(
            orjson.dumps(status), status=self.code, content_type="application/json"
        )


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


_TRUE = ("1", "t", "T", "true", "TRUE", "True")


def _exec_request(args: Any) -> cri.ExecRequest:
    """The CRI request of an exec URL's query (the container is filled in later)."""
    commands = [str(c) for c in args.getlist("command")]
    if not commands:
        raise _Refused(400, "BadRequest", "you must specify at least 1 command")
    flags = {name: args.get(name, "") in _TRUE for name in ("stdin", "stdout", "stderr", "tty")}
    if not (flags["stdin"] or flags["stdout"] or flags["stderr"]):
        raise _Refused(400, "BadRequest", "you must specify at least 1 of stdin, stdout, stderr")
    if flags["tty"]:
        # A terminal has one output; kubelet drops stderr the same way.
        flags["stderr"] = False
    return cri.ExecRequest(
        cmd=commands,
        stdin=flags["stdin"],
        stdout=flags["stdout"],
        stderr=flags["stderr"],
        tty=flags["tty"],
    )


def ensure_certificate(directory: pathlib.Path, host: str) -> tuple[pathlib.Path, pathlib.Path]:
    """A self-signed serving certificate and its key in `directory` (made if missing or
    expiring within a day); the certificate names `host`, localhost and the hostname."""
    cert_path, key_path = directory / "agent.crt", directory / "agent.key"
    now = datetime.datetime.now(datetime.UTC)
    if cert_path.exists() and key_path.exists():
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if cert.not_valid_after_utc > now + datetime.timedelta(days=1):
                return cert_path, key_path
        except ValueError:
            logger.warning("replacing the unreadable agent certificate %s", cert_path)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    hostname = os.uname().nodename
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    if hostname and hostname != "localhost":
        names.append(x509.DNSName(hostname))
    for address in {host, "127.0.0.1"}:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            if address not in ("localhost", hostname):
                names.append(x509.DNSName(address))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{hostname}@arktos-agent")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _without_close(
    receive: Callable[[], Awaitable[bytes | str]],
) -> Callable[[], Awaitable[bytes | str]]:
    """`receive`, skipping v5's close frames, for an upstream that speaks v4."""

    async def filtered() -> bytes | str:
        while True:
            message = await receive()
            if not (
                isinstance(message, bytes | bytearray)
                and message[:1] == bytes([stream.Channel.CLOSE])
            ):
                return message

    return filtered
