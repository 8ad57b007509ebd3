"""Kubeconfig files: what arktos writes, kubectl-style reading of what anyone wrote."""

from __future__ import annotations

import base64
import pathlib
import stat

import pytest
import yaml

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

    config = kubeconfig.read_kubeconfig(path)
    assert config.server == "https://127.0.0.1:6443"
    assert config.context == "arktos-lite"
    assert config.namespace == "default"
    assert config.ca_data == pki.ca_cert.read_bytes()
    assert config.token == pki.admin_token
    assert config.client_cert_data is None
    assert not config.insecure_skip_tls_verify
    assert pki.admin_token not in repr(config)


def test_admin_kubeconfig_with_client_cert(tmp_path: pathlib.Path, pki: pki_.Pki) -> None:
    path = tmp_path / "kubeconfig"
    kubeconfig.write_kubeconfig(
        path, server="https://localhost:6443", pki=pki, embed_client_cert=True
    )
    config = kubeconfig.read_kubeconfig(path)
    assert config.client_cert_data == pki.admin_cert.read_bytes()
    assert config.client_key_data == pki.admin_key.read_bytes()


def test_plain_http_kubeconfig_has_no_ca(tmp_path: pathlib.Path, pki: pki_.Pki) -> None:
    path = tmp_path / "kubeconfig"
    kubeconfig.write_kubeconfig(path, server="http://127.0.0.1:8080", pki=pki)
    assert "certificate-authority" not in path.read_text()
    assert kubeconfig.read_kubeconfig(path).ca_data is None


def test_rewriting_replaces_the_file(tmp_path: pathlib.Path, pki: pki_.Pki) -> None:
    path = tmp_path / "kubeconfig"
    kubeconfig.write_kubeconfig(path, server="https://127.0.0.1:1", pki=pki)
    kubeconfig.write_kubeconfig(path, server="https://127.0.0.1:2", pki=pki)
    assert kubeconfig.read_kubeconfig(path).server == "https://127.0.0.1:2"
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
    config = kubeconfig.read_kubeconfig(with_cert)
    assert config.context == "alice@t1"
    assert config.client_cert_data == issued.cert_pem
    assert config.client_key_data == issued.key_pem
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
    config = kubeconfig.read_kubeconfig(with_token)
    assert (config.token, config.namespace, config.client_cert_data) == (
        "alice-secret",
        "web",
        None,
    )

    with pytest.raises(ValueError, match="token or a client certificate"):
        kubeconfig.write_user_kubeconfig(
            tmp_path / "x", server="https://h", ca_pem=None, user="a", tenant="t"
        )


def _write(path: pathlib.Path, document: object) -> pathlib.Path:
    path.write_text(yaml.safe_dump(document))
    return path


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_reading_file_forms_relative_to_the_kubeconfig(tmp_path: pathlib.Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_bytes(b"CA")
    (tmp_path / "certs" / "me.pem").write_bytes(b"CERT")
    (tmp_path / "me.key").write_bytes(b"KEY")
    (tmp_path / "token").write_text("file-token\n")
    path = _write(
        tmp_path / "config",
        {
            "clusters": [
                {
                    "name": "c",
                    "cluster": {
                        "server": "https://h:1",
                        "certificate-authority": "certs/ca.pem",
                        "tls-server-name": "kubernetes",
                    },
                }
            ],
            "users": [
                {
                    "name": "u",
                    "user": {
                        "tokenFile": "token",
                        "client-certificate": "certs/me.pem",
                        "client-key": str(tmp_path / "me.key"),
                    },
                }
            ],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        },
    )
    config = kubeconfig.read_kubeconfig(path)
    assert config == kubeconfig.ClientConfig(
        server="https://h:1",
        context="x",
        namespace="default",
        ca_data=b"CA",
        tls_server_name="kubernetes",
        token="file-token",
        client_cert_data=b"CERT",
        client_key_data=b"KEY",
    )


def _two_contexts(tmp_path: pathlib.Path) -> pathlib.Path:
    return _write(
        tmp_path / "config",
        {
            "clusters": [
                {
                    "name": "one",
                    "cluster": {
                        "server": "https://one",
                        "certificate-authority-data": _b64(b"CA1"),
                    },
                },
                {
                    "name": "two",
                    "cluster": {"server": "https://two", "insecure-skip-tls-verify": True},
                },
            ],
            "users": [
                {"name": "a", "user": {"token": "ta", "tokenFile": "ignored-when-token-is-set"}},
                {
                    "name": "b",
                    "user": {"client-certificate-data": _b64(b"C"), "client-key-data": _b64(b"K")},
                },
            ],
            "contexts": [
                {"name": "first", "context": {"cluster": "one", "user": "a", "namespace": "ns1"}},
                {"name": "second", "context": {"cluster": "two", "user": "b"}},
                {"name": "anonymous", "context": {"cluster": "one"}},
            ],
            "current-context": "first",
        },
    )


def test_context_selection(tmp_path: pathlib.Path) -> None:
    path = _two_contexts(tmp_path)
    first = kubeconfig.read_kubeconfig(path)
    assert (first.server, first.ca_data, first.token, first.namespace) == (
        "https://one",
        b"CA1",
        "ta",
        "ns1",
    )
    second = kubeconfig.read_kubeconfig(path, context="second")
    assert second.insecure_skip_tls_verify
    assert (second.ca_data, second.token, second.client_cert_data, second.client_key_data) == (
        None,
        None,
        b"C",
        b"K",
    )
    anonymous = kubeconfig.read_kubeconfig(path, context="anonymous")
    assert (anonymous.token, anonymous.client_cert_data) == (None, None)


@pytest.mark.parametrize(
    ("change", "context", "problem"),
    [
        ({"current-context": ""}, None, "no current-context"),
        ({}, "third", "no context named 'third'"),
        ({"clusters": []}, None, "no cluster named 'one'"),
        (
            {"users": [{"name": "a", "user": {"token-data": 1, "token": 5}}]},
            None,
            "token must be a string",
        ),
        (
            {
                "clusters": [
                    {
                        "name": "one",
                        "cluster": {"server": "https://one", "certificate-authority-data": "@@"},
                    }
                ]
            },
            None,
            "not base64",
        ),
        (
            {
                "clusters": [
                    {
                        "name": "one",
                        "cluster": {
                            "server": "https://one",
                            "certificate-authority-data": _b64(b"x"),
                            "insecure-skip-tls-verify": True,
                        },
                    }
                ]
            },
            None,
            "insecure-skip-tls-verify is not allowed",
        ),
        ({"clusters": [{"name": "one", "cluster": {}}]}, None, "has no server"),
        ({"users": [{"name": "a", "user": {"tokenFile": "absent"}}]}, None, "cannot read"),
    ],
)
def test_unusable_kubeconfigs_say_what_is_wrong(
    tmp_path: pathlib.Path, change: dict[str, object], context: str | None, problem: str
) -> None:
    path = _two_contexts(tmp_path)
    document = yaml.safe_load(path.read_text())
    document.update(change)
    _write(path, document)
    with pytest.raises(kubeconfig.KubeconfigError, match=problem):
        kubeconfig.read_kubeconfig(path, context=context)


def test_missing_kubeconfig(tmp_path: pathlib.Path) -> None:
    with pytest.raises(kubeconfig.KubeconfigError, match="cannot read kubeconfig"):
        kubeconfig.read_kubeconfig(tmp_path / "absent")
