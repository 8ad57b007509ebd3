"""Kubeconfig files: what arktos writes, and that the client reads it back."""

from __future__ import annotations

import pathlib
import stat

import pytest
import yaml

from arktos_lite import client
from arktos_lite.apiserver import _kubeconfig as kubeconfig, _pki as pki_


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> pki_.Pki:
    return pki_.ensure_pki(tmp_path_factory.mktemp("data"))


def test_admin_kubeconfig_round_trip(tmp_path: pathlib.Path, pki: pki_.Pki) -> None:
    path = tmp_path / "home" / ".arktos" / "kubeconfig"
    kubeconfig.write_kubeconfig(path, server="https://127.0.0.1:6443", pki=pki)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = yaml.safe_load(path.read_text())
    assert document["current-context"] == "arktos-lite"
    assert document["contexts"] == [
        {
            "name": "arktos-lite",
            "context": {"cluster": "arktos-lite", "user": "admin", "namespace": "default"},
        }
    ]
    assert document["clusters"][0]["name"] == "arktos-lite"

    config = client.load_kubeconfig(path)
    assert config == client.Config(
        server="https://127.0.0.1:6443", token=pki.admin_token, ca_data=pki.ca_cert.read_bytes()
    )
    assert pki.admin_token not in repr(config)


def test_admin_kubeconfig_with_client_cert(tmp_path: pathlib.Path, pki: pki_.Pki) -> None:
    path = tmp_path / "kubeconfig"
    kubeconfig.write_kubeconfig(
        path, server="https://localhost:6443", pki=pki, embed_client_cert=True
    )
    config = client.load_kubeconfig(path)
    assert config.cert_data == pki.admin_cert.read_bytes()
    assert config.key_data == pki.admin_key.read_bytes()


def test_plain_http_kubeconfig_has_no_ca(tmp_path: pathlib.Path, pki: pki_.Pki) -> None:
    path = tmp_path / "kubeconfig"
    kubeconfig.write_kubeconfig(path, server="http://127.0.0.1:8080", pki=pki)
    assert "certificate-authority" not in path.read_text()
    assert client.load_kubeconfig(path) == client.Config(
        server="http://127.0.0.1:8080", token=pki.admin_token
    )


def test_rewriting_replaces_the_file(tmp_path: pathlib.Path, pki: pki_.Pki) -> None:
    path = tmp_path / "kubeconfig"
    kubeconfig.write_kubeconfig(path, server="https://127.0.0.1:1", pki=pki)
    kubeconfig.write_kubeconfig(path, server="https://127.0.0.1:2", pki=pki)
    assert client.load_kubeconfig(path).server == "https://127.0.0.1:2"
    assert [p.name for p in tmp_path.iterdir()] == ["kubeconfig"]


def test_tenant_user_kubeconfigs(tmp_path: pathlib.Path, pki: pki_.Pki) -> None:
    issued = pki_.issue_client_cert(pki, user="alice", tenant="t1")
    with_cert = tmp_path / "alice-cert"
    kubeconfig.write_user_kubeconfig(
        with_cert,
        server="https://127.0.0.1:6443",
        ca_pem=pki.ca_pem(),
        user="alice",
        tenant="t1",
        client_cert=issued,
    )
    assert yaml.safe_load(with_cert.read_text())["current-context"] == "alice@t1"
    config = client.load_kubeconfig(with_cert)
    assert config.cert_data == issued.cert_pem
    assert config.key_data == issued.key_pem
    assert config.token is None
    assert config.ca_data == pki.ca_pem()

    with_token = tmp_path / "alice-token"
    kubeconfig.write_user_kubeconfig(
        with_token,
        server="https://127.0.0.1:6443",
        ca_pem=pki.ca_pem(),
        user="alice",
        tenant="t1",
        token="alice-secret",
        namespace="web",
    )
    context = yaml.safe_load(with_token.read_text())["contexts"][0]["context"]
    assert context["namespace"] == "web"
    config = client.load_kubeconfig(with_token)
    assert (config.token, config.cert_data) == ("alice-secret", None)

    with pytest.raises(ValueError, match="token or a client certificate"):
        kubeconfig.write_user_kubeconfig(
            tmp_path / "x", server="https://h", ca_pem=None, user="a", tenant="t"
        )
