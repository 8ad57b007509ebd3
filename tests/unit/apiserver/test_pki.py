"""The data directory's CA, serving and admin certificates: made once, reused, renewed."""

from __future__ import annotations

import datetime
import ipaddress
import pathlib
import socket
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from arktos_lite.apiserver import _authn as authn, _pki as pki_


def _load(path: pathlib.Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(path: pathlib.Path) -> tuple[set[str], set[str]]:
    san = _load(path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        set(san.get_values_for_type(x509.DNSName)),
        {str(ip) for ip in san.get_values_for_type(x509.IPAddress)},
    )


def _mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_start_creates_a_ca_a_server_cert_and_admin_credentials(
    tmp_path: pathlib.Path,
) -> None:
    pki = pki_.ensure_pki(tmp_path)

    ca = _load(pki.ca_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > datetime.timedelta(days=3649)

    server = _load(pki.server_cert)
    server.verify_directly_issued_by(ca)
    dns, ips = _sans(pki.server_cert)
    assert {"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"} <= dns
    assert socket.gethostname().lower() in dns
    assert {"127.0.0.1", "::1"} <= ips
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    assert server.not_valid_after_utc - server.not_valid_before_utc < datetime.timedelta(days=366)

    admin = _load(pki.admin_cert)
    admin.verify_directly_issued_by(ca)
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    assert [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:masters"
    ]
    assert authn.user_from_certificate(admin) == authn.User(
        name="admin", groups=("system:masters",), tenant="system"
    )

    assert len(pki.admin_token) >= 32
    assert pki.admin_token_file.read_text().strip() == pki.admin_token
    assert pki.admin_token not in repr(pki)


def test_secrets_are_private_and_no_temporary_files_remain(tmp_path: pathlib.Path) -> None:
    pki = pki_.ensure_pki(tmp_path)
    assert _mode(pki.directory) == 0o700
    for secret in (pki.ca_key, pki.server_key, pki.admin_key, pki.admin_token_file):
        assert _mode(secret) == 0o600, secret
    assert sorted(p.name for p in pki.directory.iterdir()) == [
        "admin.crt",
        "admin.key",
        "admin.token",
        "apiserver.crt",
        "apiserver.key",
        "ca.crt",
        "ca.key",
    ]


def test_a_second_start_reuses_everything(tmp_path: pathlib.Path) -> None:
    first = pki_.ensure_pki(tmp_path)
    before = {p.name: p.read_bytes() for p in first.directory.iterdir()}
    second = pki_.ensure_pki(tmp_path)
    assert second == first
    assert {p.name: p.read_bytes() for p in second.directory.iterdir()} == before


def test_a_new_san_reissues_the_server_cert_under_the_same_ca(tmp_path: pathlib.Path) -> None:
    first = pki_.ensure_pki(tmp_path)
    ca = first.ca_cert.read_bytes()
    old_server = first.server_cert.read_bytes()
    admin = first.admin_cert.read_bytes()

    second = pki_.ensure_pki(tmp_path, extra_sans=["api.example.test", "10.1.2.3", "[fd00::7]"])

    assert second.ca_cert.read_bytes() == ca
    assert second.admin_cert.read_bytes() == admin
    assert second.server_cert.read_bytes() != old_server
    dns, ips = _sans(second.server_cert)
    assert "api.example.test" in dns
    assert {"10.1.2.3", "fd00::7", "127.0.0.1"} <= ips
    _load(second.server_cert).verify_directly_issued_by(_load(second.ca_cert))

    # Asking for a subset of what the certificate covers keeps it.
    pki_.ensure_pki(tmp_path, extra_sans=["10.1.2.3"])
    assert second.server_cert.read_bytes() == pki_.ensure_pki(tmp_path).server_cert.read_bytes()


def test_certificates_near_expiry_are_renewed_but_not_the_ca(tmp_path: pathlib.Path) -> None:
    start = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    pki = pki_.ensure_pki(tmp_path, now=start)
    ca = pki.ca_cert.read_bytes()
    server = pki.server_cert.read_bytes()

    pki_.ensure_pki(tmp_path, now=start + datetime.timedelta(days=300))
    assert pki.server_cert.read_bytes() == server

    later = start + datetime.timedelta(days=340)
    pki_.ensure_pki(tmp_path, now=later)
    assert pki.ca_cert.read_bytes() == ca
    assert pki.server_cert.read_bytes() != server
    assert _load(pki.server_cert).not_valid_after_utc > later + datetime.timedelta(days=300)
    assert _load(pki.admin_cert).not_valid_after_utc > later + datetime.timedelta(days=300)


def test_certificates_of_another_ca_are_reissued(tmp_path: pathlib.Path) -> None:
    pki = pki_.ensure_pki(tmp_path)
    other = pki_.ensure_pki(tmp_path / "other")
    pki.server_cert.write_bytes(other.server_cert.read_bytes())
    pki.server_key.write_bytes(other.server_key.read_bytes())
    pki_.ensure_pki(tmp_path)
    _load(pki.server_cert).verify_directly_issued_by(_load(pki.ca_cert))


def test_a_ca_without_its_key_is_an_error_not_a_new_ca(tmp_path: pathlib.Path) -> None:
    pki = pki_.ensure_pki(tmp_path)
    ca = pki.ca_cert.read_bytes()
    pki.ca_key.unlink()
    with pytest.raises(pki_.PkiError, match=r"ca\.key"):
        pki_.ensure_pki(tmp_path)
    assert pki.ca_cert.read_bytes() == ca


def test_a_ca_with_the_wrong_key_is_an_error(tmp_path: pathlib.Path) -> None:
    pki = pki_.ensure_pki(tmp_path)
    pki.ca_key.write_bytes(pki.server_key.read_bytes())
    with pytest.raises(pki_.PkiError, match="not the private key"):
        pki_.ensure_pki(tmp_path)


def test_issued_client_cert_maps_to_the_user_of_its_tenant(tmp_path: pathlib.Path) -> None:
    pki = pki_.ensure_pki(tmp_path)
    issued = pki_.issue_client_cert(pki, user="alice", tenant="T1", groups=["dev", "ops"])
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    cert.verify_directly_issued_by(_load(pki.ca_cert))
    organizations = [
        a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    ]
    assert organizations == ["dev", "ops", "tenant:t1"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usage
    assert authn.user_from_certificate(cert) == authn.User(
        name="alice", groups=("dev", "ops"), tenant="t1"
    )
    assert b"PRIVATE KEY" in issued.key_pem
    assert "PRIVATE" not in repr(issued)


@pytest.mark.parametrize("tenant", ["all", "a/b", "", "-x"])
def test_issue_refuses_a_bad_tenant_name(tmp_path: pathlib.Path, tenant: str) -> None:
    pki = pki_.ensure_pki(tmp_path)
    with pytest.raises(ValueError, match="invalid tenant name"):
        pki_.issue_client_cert(pki, user="alice", tenant=tenant)


def test_extra_sans_are_normalised_and_not_repeated(tmp_path: pathlib.Path) -> None:
    pki = pki_.ensure_pki(tmp_path, extra_sans=["LOCALHOST", "127.0.0.1", "Node-1.", " "])
    san = _load(pki.server_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    dns = san.value.get_values_for_type(x509.DNSName)
    ips = san.value.get_values_for_type(x509.IPAddress)
    assert dns.count("localhost") == 1
    assert "node-1" in dns
    assert ips.count(ipaddress.ip_address("127.0.0.1")) == 1
