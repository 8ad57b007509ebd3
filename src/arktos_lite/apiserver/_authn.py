"""Who is calling: bearer tokens and TLS client certificates, each bound to a tenant.

Tokens come from a file in Kubernetes' static token CSV format with Arktos' tenant column,
`token,user,uid,"group1,group2",tenant` (no tenant: `system`). A client certificate verified
against the cluster CA names the user in its CN and the groups in its O entries; an
`O=tenant:<name>` entry names the tenant (none: `system`). A certificate wins over a token,
as in Kubernetes. Tokens are looked up by their SHA-256 digest and confirmed with a
constant-time comparison, so the time to answer says nothing about the token.

hypercorn 0.18 does not fill the ASGI `tls` scope extension, so `ClientCertConfig` makes
its TLS connections remember the verified client certificate at the end of the handshake
(in a context variable of the connection's task, which the request tasks inherit), and
`peer_certificate(scope)` reads it back; it prefers the standard extension when a server
provides one.
"""

from __future__ import annotations

import contextvars
import csv
import dataclasses
import hashlib
import hmac
import logging
import os
import re
import secrets
import ssl
from collections.abc import Iterable, Mapping

import hypercorn.config
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from arktos_lite.api import _resources as resources

logger = logging.getLogger(__name__)

TENANT_ORGANIZATION_PREFIX = "tenant:"
ADMIN_USER = "admin"
MASTERS_GROUP = "system:masters"
# The API server's own identity toward node agents (pods' logs and exec).
APISERVER_USER = "system:apiserver"

_TENANT_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_TENANT_MAX = 63


@dataclasses.dataclass(frozen=True, slots=True)
class User:
    """An authenticated caller."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    tenant: str = resources.SYSTEM_TENANT


@dataclasses.dataclass(frozen=True, slots=True)
class TokenEntry:
    """One line of a token file: a bearer token and whom it stands for."""

    token: str = dataclasses.field(repr=False)
    user: User


class TokenFileError(ValueError):
    """A token file that cannot be used; the message names the file and the line."""

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        where = source if line is None else f"{source}, line {line}"
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.line = line
        self.problem = problem


def check_tenant_name(name: str) -> str:
    """The tenant name, lowercased; ValueError unless it is a DNS label naming one tenant."""
    tenant = name.strip().lower()
    if len(tenant) > _TENANT_MAX or not _TENANT_RE.fullmatch(tenant):
        raise ValueError(
            f"invalid tenant name {name!r}: must be a DNS label (lowercase letters, digits"
            f" and '-', starting and ending with a letter or digit, at most {_TENANT_MAX})"
        )
    if tenant == resources.ALL_TENANTS:
        raise ValueError(f"invalid tenant name {name!r}: it means every tenant")
    return tenant


# Token file


def load_token_file(path: str | os.PathLike[str]) -> tuple[TokenEntry, ...]:
    """Read and check a token file; `TokenFileError` names the file and line of a problem."""
    source = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            text = stream.read()
    except OSError as error:
        raise TokenFileError(source, None, f"cannot read the token file: {error}") from error
    except UnicodeDecodeError as error:
        raise TokenFileError(source, None, f"not UTF-8 text: {error}") from error
    return parse_token_file(text, source=source)


def parse_token_file(text: str, *, source: str = "<token file>") -> tuple[TokenEntry, ...]:
    entries: list[TokenEntry] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            entry = _parse_token_line(stripped)
        except ValueError as error:
            raise TokenFileError(source, number, str(error)) from None
        if entry.token in first_line:
            raise TokenFileError(
                source, number, f"the token of line {first_line[entry.token]} again"
            )
        first_line[entry.token] = number
        entries.append(entry)
    return tuple(entries)


def _parse_token_line(line: str) -> TokenEntry:
    try:
        fields = [f.strip() for f in next(csv.reader([line], skipinitialspace=True, strict=True))]
    except csv.Error as error:
        raise ValueError(f"not a CSV record: {error}") from None
    if not 3 <= len(fields) <= 5:
        raise ValueError(
            f'expected token,user,uid[,"group1,group2"[,tenant]], got {len(fields)} fields'
        )
    token, name, uid = fields[0], fields[1], fields[2]
    if not token:
        raise ValueError("empty token")
    if any(c.isspace() for c in token):
        raise ValueError("the token contains whitespace (a bearer token cannot)")
    if not name:
        raise ValueError("empty user name")
    groups: tuple[str, ...] = ()
    if len(fields) >= 4:
        groups = tuple(g.strip() for g in fields[3].split(",") if g.strip())
    tenant = resources.SYSTEM_TENANT
    if len(fields) == 5 and fields[4]:
        tenant = check_tenant_name(fields[4])
    return TokenEntry(token=token, user=User(name=name, uid=uid, groups=groups, tenant=tenant))


# Client certificates


def user_from_certificate(certificate: x509.Certificate | bytes) -> User | None:
    """The user a verified client certificate (object or DER) names, or None if it names none.

    The certificate must already have been verified against the cluster CA (the TLS
    handshake does that); this only reads its subject.
    """
    cert = (
        certificate
        if isinstance(certificate, x509.Certificate)
        else x509.load_der_x509_certificate(certificate)
    )
    names = [_text(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if not names or not names[0]:
        return None
    groups: list[str] = []
    tenants: set[str] = set()
    for attribute in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME):
        value = _text(attribute.value)
        if value.startswith(TENANT_ORGANIZATION_PREFIX):
            try:
                tenants.add(check_tenant_name(value.removeprefix(TENANT_ORGANIZATION_PREFIX)))
            except ValueError as error:
                logger.warning("client certificate of %r rejected: %s", names[0], error)
                return None
        else:
            groups.append(value)
    if len(tenants) > 1:
        logger.warning("client certificate of %r rejected: more than one tenant", names[0])
        return None
    tenant = tenants.pop() if tenants else resources.SYSTEM_TENANT
    return User(name=names[0], groups=tuple(groups), tenant=tenant)


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


# The authenticator


class Authenticator:
    """Maps a request's credentials to a `User`; None means 401 Unauthorized."""

    def __init__(
        self, *, admin_token: str | None = None, tokens: Iterable[TokenEntry] = ()
    ) -> None:
        self._by_digest: dict[bytes, TokenEntry] = {}
        entries = list(tokens)
        # Known only to this process: the API server presents it to node agents, which
        # ask back (TokenReview) who it is.
        self.loopback_token = secrets.token_urlsafe(32)
        loopback = User(name=APISERVER_USER, uid=APISERVER_USER, groups=(MASTERS_GROUP,))
        entries.insert(0, TokenEntry(token=self.loopback_token, user=loopback))
        if admin_token:
            admin = User(name=ADMIN_USER, groups=(MASTERS_GROUP,))
            entries.insert(0, TokenEntry(token=admin_token, user=admin))
        for entry in entries:
            digest = _digest(entry.token)
            if digest in self._by_digest:
                # Two identities behind one token would make the tenant a coin toss.
                raise ValueError(f"the token of user {entry.user.name!r} is already in use")
            self._by_digest[digest] = entry

    def authenticate(
        self, authorization_header: str | None, peer_cert_der: bytes | None
    ) -> User | None:
        if peer_cert_der is not None:
            user = user_from_certificate(peer_cert_der)
            if user is not None:
                return user
        token = bearer_token(authorization_header)
        if token is None:
            return None
        return self.authenticate_token(token)

    def authenticate_token(self, token: str) -> User | None:
        entry = self._by_digest.get(_digest(token))
        # Found by digest, so the lookup's timing depends on the digest alone; comparing
        # the tokens themselves (in constant time) rules out a digest collision.
        if entry is None or not hmac.compare_digest(entry.token.encode(), token.encode()):
            return None
        return entry.user


def bearer_token(authorization_header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if not authorization_header:
        return None
    scheme, _, token = authorization_header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# The TLS client certificate of a request


_PEER_CERT: contextvars.ContextVar[bytes | None] = contextvars.ContextVar(
    "arktos_lite_peer_cert", default=None
)


class _PeerCertSSLObject(ssl.SSLObject):
    """Remembers the verified client certificate once the server-side handshake completes.

    trio runs the handshake in the connection's task (hypercorn's TCPServer), and every
    request task hypercorn spawns for that connection copies that task's context.
    """

    def do_handshake(self) -> None:
        super().do_handshake()
        if self.server_side and self.context.verify_mode != ssl.CERT_NONE:
            _PEER_CERT.set(self.getpeercert(binary_form=True))


def capture_peer_certificates(context: ssl.SSLContext) -> None:
    """Make TLS connections served with `context` remember their client certificate."""
    context.sslobject_class = _PeerCertSSLObject


class ClientCertConfig(hypercorn.config.Config):
    """hypercorn's Config whose TLS connections expose the client certificate.

    Set `ca_certs` (the CA that signs client certificates) and
    `verify_mode = ssl.CERT_OPTIONAL` to accept, but not require, client certificates.
    """

    def create_ssl_context(self) -> ssl.SSLContext | None:
        context = super().create_ssl_context()
        if context is not None:
            capture_peer_certificates(context)
        return context


def peer_certificate(scope: Mapping[str, object]) -> bytes | None:
    """The DER client certificate verified on the request's TLS connection, if any."""
    extensions = scope.get("extensions")
    tls = extensions.get("tls") if isinstance(extensions, Mapping) else None
    if isinstance(tls, Mapping):
        # The ASGI TLS extension: PEM strings, the client's own certificate first.
        chain = tls.get("client_cert_chain")
        if tls.get("client_cert_error") is not None or not chain:
            return None
        if not isinstance(chain, list | tuple) or not isinstance(chain[0], str):
            return None
        return _pem_to_der(chain[0])
    if scope.get("scheme") not in ("https", "wss"):
        return None
    return _PEER_CERT.get()


def _pem_to_der(pem: str) -> bytes | None:
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
    return cert.public_bytes(serialization.Encoding.DER)
