"""The cluster's certificate authority and the admin's credentials, one set per data directory.

`ensure_pki(data_dir)` creates, on the first start, under `<data_dir>/pki/`: a CA (EC P-256,
10 years), the API server's serving certificate signed by it (1 year), the admin's client
certificate (CN=admin, O=system:masters) and a random admin bearer token. Later starts reuse
all of it; the serving and admin certificates are reissued when they expire within 30 days,
were signed by another CA, or (serving) lack a requested subject alternative name. The CA is
never replaced behind the user's back: a CA that cannot be read is an error, not a reason to
mint a new one and invalidate every kubeconfig.

Private keys and the token are written 0600, each file atomically, in a 0700 directory.
`issue_client_cert` signs a certificate for a user of a tenant (O=tenant:<name>).
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import logging
import pathlib
import secrets
import socket
from collections.abc import Iterable, Sequence

from cryptography import exceptions as crypto_exceptions, x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from arktos_lite.api import _resources as resources
from arktos_lite.apiserver import _authn as authn, _files as files

logger = logging.getLogger(__name__)

CA_VALIDITY = datetime.timedelta(days=3650)
CERT_VALIDITY = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=30)
# Tolerates clocks of clients that run a little behind the server's.
_BACKDATE = datetime.timedelta(minutes=5)

ADMIN_USER = "admin"
ADMIN_GROUP = "system:masters"

_DEFAULT_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
_DEFAULT_IPS = ("127.0.0.1", "::1")

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PkiError(Exception):
    """The data directory's certificates cannot be used and must not be silently replaced."""


@dataclasses.dataclass(frozen=True, slots=True)
class Pki:
    """Where the cluster's certificates live, and the admin token they were made with."""

    directory: pathlib.Path
    admin_token: str = dataclasses.field(repr=False)

    @property
    def ca_cert(self) -> pathlib.Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> pathlib.Path:
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> pathlib.Path:
        return self.directory / "apiserver.crt"

    @property
    def server_key(self) -> pathlib.Path:
        return self.directory / "apiserver.key"

    @property
    def admin_cert(self) -> pathlib.Path:
        return self.directory / "admin.crt"

    @property
    def admin_key(self) -> pathlib.Path:
        return self.directory / "admin.key"

    @property
    def admin_token_file(self) -> pathlib.Path:
        return self.directory / "admin.token"

    def ca_pem(self) -> bytes:
        return self.ca_cert.read_bytes()


@dataclasses.dataclass(frozen=True, slots=True)
class ClientCertificate:
    """A PEM certificate and its PEM (PKCS#8, unencrypted) private key."""

    cert_pem: bytes
    key_pem: bytes = dataclasses.field(repr=False)


def ensure_pki(
    data_dir: pathlib.Path,
    *,
    extra_sans: Sequence[str] = (),
    now: datetime.datetime | None = None,
) -> Pki:
    """Create what is missing under `<data_dir>/pki`, renew what is due, and describe it.

    `extra_sans` are host names or IP addresses the serving certificate must also cover
    (e.g. the address the server binds). Blocking: call it from a worker thread.
    """
    now = _utc(now)
    directory = data_dir / "pki"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    pki = Pki(directory=directory, admin_token=_ensure_token(directory / "admin.token"))
    ca_cert, ca_key = _ensure_ca(pki, now=now)
    _ensure_server_cert(pki, ca_cert=ca_cert, ca_key=ca_key, extra_sans=extra_sans, now=now)
    _ensure_admin_cert(pki, ca_cert=ca_cert, ca_key=ca_key, now=now)
    return pki


def issue_client_cert(
    pki: Pki,
    *,
    user: str,
    tenant: str = resources.SYSTEM_TENANT,
    groups: Iterable[str] = (),
    valid_for: datetime.timedelta = CERT_VALIDITY,
    now: datetime.datetime | None = None,
) -> ClientCertificate:
    """Sign a client certificate: CN=user, one O per group, and O=tenant:<tenant>.

    Users of the system tenant get no tenant entry (that is what its absence means).
    """
    if not user:
        raise ValueError("a client certificate needs a user name")
    tenant = authn.check_tenant_name(tenant)
    ca_cert, ca_key = _load_ca(pki)
    organizations = list(groups)
    if tenant != resources.SYSTEM_TENANT:
        organizations.append(authn.TENANT_ORGANIZATION_PREFIX + tenant)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _client_cert(
        key,
        user=user,
        organizations=organizations,
        ca_cert=ca_cert,
        ca_key=ca_key,
        now=_utc(now),
        valid_for=valid_for,
    )
    return ClientCertificate(cert_pem=_cert_pem(cert), key_pem=_key_pem(key))


# The pieces of ensure_pki


def _ensure_token(path: pathlib.Path) -> str:
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    files.write_atomic(path, token.encode() + b"\n", mode=0o600)
    logger.info("generated the admin bearer token in %s", path)
    return token


def _ensure_ca(
    pki: Pki, *, now: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if pki.ca_cert.exists():
        ca_cert, ca_key = _load_ca(pki)
        if ca_cert.not_valid_after_utc <= now:
            raise PkiError(
                f"the cluster CA {pki.ca_cert} expired on {ca_cert.not_valid_after_utc:%Y-%m-%d};"
                " remove the pki directory to create a new one (and hand out new kubeconfigs)"
            )
        return ca_cert, ca_key
    # No CA certificate: nothing can have been issued by a key left without one.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"arktos-lite-ca@{int(now.timestamp())}")]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(key_cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    files.write_atomic(pki.ca_key, _key_pem(key), mode=0o600)
    files.write_atomic(pki.ca_cert, _cert_pem(cert), mode=0o644)
    logger.info("generated the cluster CA in %s", pki.ca_cert)
    return cert, key


def _load_ca(pki: Pki) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if not pki.ca_key.exists():
        raise PkiError(
            f"{pki.ca_cert} exists but its key {pki.ca_key} does not; restore the key, or"
            " remove the pki directory to create a new CA (and hand out new kubeconfigs)"
        )
    try:
        cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    except ValueError as error:
        raise PkiError(f"cannot read the cluster CA in {pki.directory}: {error}") from error
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not _same_key(cert, key):
        raise PkiError(f"{pki.ca_key} is not the private key of {pki.ca_cert}")
    return cert, key


def _ensure_server_cert(
    pki: Pki,
    *,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    extra_sans: Sequence[str],
    now: datetime.datetime,
) -> None:
    dns_names, ips = _subject_alt_names(extra_sans)
    current = _usable_cert(pki.server_cert, pki.server_key, ca_cert=ca_cert, now=now)
    if current is not None:
        try:
            san = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            san = x509.SubjectAlternativeName([])
        have_dns = set(san.get_values_for_type(x509.DNSName))
        have_ips = set(san.get_values_for_type(x509.IPAddress))
        if have_dns >= set(dns_names) and have_ips >= set(ips):
            return
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ip) for ip in ips]
    cert = (
        _leaf_builder(key, ca_cert=ca_cert, now=now, valid_for=CERT_VALIDITY)
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files.write_atomic(pki.server_key, _key_pem(key), mode=0o600)
    files.write_atomic(pki.server_cert, _cert_pem(cert), mode=0o644)
    logger.info("issued the API server certificate %s", pki.server_cert)


def _ensure_admin_cert(
    pki: Pki,
    *,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
) -> None:
    if _usable_cert(pki.admin_cert, pki.admin_key, ca_cert=ca_cert, now=now) is not None:
        return
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _client_cert(
        key,
        user=ADMIN_USER,
        organizations=[ADMIN_GROUP],
        ca_cert=ca_cert,
        ca_key=ca_key,
        now=now,
        valid_for=CERT_VALIDITY,
    )
    files.write_atomic(pki.admin_key, _key_pem(key), mode=0o600)
    files.write_atomic(pki.admin_cert, _cert_pem(cert), mode=0o644)
    logger.info("issued the admin client certificate %s", pki.admin_cert)


def _usable_cert(
    cert_path: pathlib.Path,
    key_path: pathlib.Path,
    *,
    ca_cert: x509.Certificate,
    now: datetime.datetime,
) -> x509.Certificate | None:
    """The certificate at `cert_path` if it can be kept, else None (it will be reissued)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not _same_key(cert, key):
        return None
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, crypto_exceptions.InvalidSignature):
        return None
    if cert.not_valid_after_utc - now <= RENEW_BEFORE:
        return None
    return cert


# Certificate building


def _client_cert(
    key: ec.EllipticCurvePrivateKey,
    *,
    user: str,
    organizations: Sequence[str],
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
    valid_for: datetime.timedelta,
) -> x509.Certificate:
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
    return (
        _leaf_builder(key, ca_cert=ca_cert, now=now, valid_for=valid_for)
        .subject_name(x509.Name(subject))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _leaf_builder(
    key: ec.EllipticCurvePrivateKey,
    *,
    ca_cert: x509.Certificate,
    now: datetime.datetime,
    valid_for: datetime.timedelta,
) -> x509.CertificateBuilder:
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(min(now + valid_for, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(key_cert_sign=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
    )


def _key_usage(*, key_cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _subject_alt_names(extra: Sequence[str]) -> tuple[list[str], list[_IPAddress]]:
    """DNS names and IP addresses, defaults first, without duplicates."""
    dns_names: list[str] = []
    ips: list[_IPAddress] = []
    for raw in (*_DEFAULT_DNS_NAMES, *_DEFAULT_IPS, socket.gethostname(), *extra):
        value = raw.strip().strip("[]")
        if not value:
            continue
        try:
            ip = ipaddress.ip_address(value)
        except ValueError:
            name = value.lower().rstrip(".")
            if not name.isascii():
                logger.warning("left %r out of the server certificate: not an ASCII name", value)
            elif name not in dns_names:
                dns_names.append(name)
        else:
            if ip not in ips:
                ips.append(ip)
    return dns_names, ips


def _same_key(cert: x509.Certificate, key: object) -> bool:
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return False
    return cert.public_key() == key.public_key()


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _utc(now: datetime.datetime | None) -> datetime.datetime:
    if now is None:
        return datetime.datetime.now(datetime.UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(datetime.UTC)
