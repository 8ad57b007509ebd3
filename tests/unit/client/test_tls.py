"""The TLS context a client builds from its config, with certificates of a real CA."""

from __future__ import annotations

import os
import pathlib
import ssl
import tempfile

import pytest

from arktos_lite import client
from arktos_lite.apiserver import _pki as pki_
from arktos_lite.client import _tls as tls


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> pki_.Pki:
    return pki_.ensure_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def alice(pki: pki_.Pki) -> pki_.ClientCertificate:
    return pki_.issue_client_cert(pki, user="alice", tenant="t1")


def _subjects(context: ssl.SSLContext) -> list[object]:
    return [cert["subject"] for cert in context.get_ca_certs()]


def test_only_the_configured_ca_is_trusted(pki: pki_.Pki) -> None:
    from_data = tls.ssl_context(client.Config("https://h", ca_data=pki.ca_pem()))
    from_file = tls.ssl_context(client.Config("https://h", ca_file=str(pki.ca_cert)))
    assert len(from_data.get_ca_certs()) == 1
    assert _subjects(from_data) == _subjects(from_file)
    assert from_data.verify_mode is ssl.CERT_REQUIRED
    assert from_data.check_hostname


def test_insecure_verifies_nothing() -> None:
    context = tls.ssl_context(client.Config("https://h", insecure=True))
    assert context.verify_mode is ssl.CERT_NONE
    assert not context.check_hostname


def test_a_bad_ca_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="certificate authority cannot be loaded"):
        tls.ssl_context(client.Config("https://h", ca_data=b"garbage"))


def test_client_certificate_from_files(
    pki: pki_.Pki, alice: pki_.ClientCertificate, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "c.crt").write_bytes(alice.cert_pem)
    (tmp_path / "c.key").write_bytes(alice.key_pem)
    config = client.Config(
        "https://h",
        ca_data=pki.ca_pem(),
        cert_file=str(tmp_path / "c.crt"),
        key_file=str(tmp_path / "c.key"),
    )
    tls.ssl_context(config)


def _spy_on_temporary_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> pathlib.Path:
    spot = tmp_path / "tmp"
    spot.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spot))
    return spot


def test_client_certificate_data_in_memory(
    pki: pki_.Pki,
    alice: pki_.ClientCertificate,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not hasattr(os, "memfd_create"):
        pytest.skip("no anonymous memory files here")
    spot = _spy_on_temporary_files(monkeypatch, tmp_path)
    written: list[str] = []
    real_open = os.open

    def spy(path: str | os.PathLike[str], *args: int) -> int:
        written.append(str(path))
        return real_open(path, *args)

    monkeypatch.setattr(os, "open", spy)
    config = client.Config(
        "https://h", ca_data=pki.ca_pem(), cert_data=alice.cert_pem, key_data=alice.key_pem
    )
    tls.ssl_context(config)
    assert written == []
    assert list(spot.iterdir()) == []


def test_client_certificate_data_without_memory_files(
    pki: pki_.Pki,
    alice: pki_.ClientCertificate,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(os, "memfd_create", raising=False)
    spot = _spy_on_temporary_files(monkeypatch, tmp_path)
    config = client.Config(
        "https://h", ca_data=pki.ca_pem(), cert_data=alice.cert_pem, key_data=alice.key_pem
    )
    tls.ssl_context(config)
    # The key passed through a private file, removed before the context was returned.
    assert list(spot.iterdir()) == []


def test_a_key_that_does_not_match_is_a_clear_error(
    pki: pki_.Pki, alice: pki_.ClientCertificate
) -> None:
    bob = pki_.issue_client_cert(pki, user="bob", tenant="t2")
    config = client.Config("https://h", cert_data=alice.cert_pem, key_data=bob.key_pem)
    with pytest.raises(ValueError, match="client certificate cannot be loaded"):
        tls.ssl_context(config)
