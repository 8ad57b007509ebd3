"""Reading kubeconfig files: what a client needs, and clear errors when it is not there."""

from __future__ import annotations

import base64
import pathlib
from typing import Any

import pytest
import yaml

from arktos_lite import client

CA_PEM = b"-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(
    *,
    cluster: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    current: str | None = "main",
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": "https://127.0.0.1:6443", **(cluster or {})}},
            {"name": "other", "cluster": {"server": "http://10.0.0.1:8080"}},
        ],
        "users": [{"name": "u", "user": user or {}}],
        "contexts": [
            {"name": "main", "context": {"cluster": "c", "user": "u", **(context or {})}},
            {"name": "plain", "context": {"cluster": "other"}},
        ],
    }
    if current is not None:
        document["current-context"] = current
    return document


def write(path: pathlib.Path, document: object) -> pathlib.Path:
    path.write_text(yaml.safe_dump(document))
    return path


def test_token_and_inline_ca(tmp_path: pathlib.Path) -> None:
    path = write(
        tmp_path / "config",
        kubeconfig(cluster={"certificate-authority-data": b64(CA_PEM)}, user={"token": "s3cret"}),
    )
    config = client.load_kubeconfig(path)
    assert config == client.Config(server="https://127.0.0.1:6443", token="s3cret", ca_data=CA_PEM)
    # The token is a secret: it is not in the repr.
    assert "s3cret" not in repr(config)


def test_token_file_relative_to_the_kubeconfig(tmp_path: pathlib.Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("from-a-file\n")
    path = write(tmp_path / "config", kubeconfig(user={"tokenFile": "secrets/token"}))
    assert client.load_kubeconfig(path).token == "from-a-file"


def test_an_inline_token_wins_over_a_token_file(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path / "config", kubeconfig(user={"token": "t", "tokenFile": "missing"}))
    assert client.load_kubeconfig(path).token == "t"


def test_files_become_absolute_paths(tmp_path: pathlib.Path) -> None:
    for name in ("ca.crt", "client.crt", "client.key"):
        (tmp_path / name).write_bytes(b"pem")
    path = write(
        tmp_path / "config",
        kubeconfig(
            cluster={"certificate-authority": "ca.crt"},
            user={"client-certificate": "client.crt", "client-key": str(tmp_path / "client.key")},
        ),
    )
    config = client.load_kubeconfig(path)
    assert config.ca_file == str(tmp_path / "ca.crt")
    assert config.cert_file == str(tmp_path / "client.crt")
    assert config.key_file == str(tmp_path / "client.key")
    assert config.token is None


def test_client_certificate_data_stays_in_memory(tmp_path: pathlib.Path) -> None:
    path = write(
        tmp_path / "config",
        kubeconfig(user={"client-certificate-data": b64(b"CERT"), "client-key-data": b64(b"KEY")}),
    )
    config = client.load_kubeconfig(path)
    assert (config.cert_data, config.key_data) == (b"CERT", b"KEY")
    assert (config.cert_file, config.key_file) == (None, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]


def test_the_tenant_of_the_context(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path / "config", kubeconfig(context={"tenant": "t1", "namespace": "ns"}))
    assert client.load_kubeconfig(path).tenant == "t1"
    assert client.load_kubeconfig(path, context="plain").tenant is None


def test_a_named_context(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path / "config", kubeconfig(user={"token": "t"}))
    config = client.load_kubeconfig(str(path), context="plain")
    assert config == client.Config(server="http://10.0.0.1:8080")


def test_tls_server_name(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path / "config", kubeconfig(cluster={"tls-server-name": "kubernetes"}))
    assert client.load_kubeconfig(path).tls_server_name == "kubernetes"
    assert client.load_kubeconfig(path, context="plain").tls_server_name is None


def test_insecure_skip_tls_verify(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path / "config", kubeconfig(cluster={"insecure-skip-tls-verify": True}))
    assert client.load_kubeconfig(path).insecure


def test_kubeconfig_variable_first_entry(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write(tmp_path / "first", kubeconfig(user={"token": "first"}))
    second = write(tmp_path / "second", kubeconfig(user={"token": "second"}))
    monkeypatch.setenv("KUBECONFIG", f":{first}:{second}")
    assert client.default_kubeconfig_path() == first
    assert client.load_kubeconfig().token == "first"


def test_default_path_without_the_variable(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert client.default_kubeconfig_path() == tmp_path / ".arktos" / "kubeconfig"
    with pytest.raises(
        client.KubeconfigError, match=r"cannot read kubeconfig .*\.arktos/kubeconfig"
    ):
        client.load_kubeconfig()


def test_a_client_from_the_kubeconfig_with_another_tenant(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path / "config", kubeconfig(context={"tenant": "t1"}, current="plain"))
    api = client.Client.from_kubeconfig(path, context="main", tenant="t2", qps=5)
    assert api.config.tenant == "t2"
    assert api.config.server == "https://127.0.0.1:6443"


@pytest.mark.parametrize(
    ("document", "context", "words"),
    [
        (kubeconfig(current=None), None, "has no current-context"),
        (kubeconfig(), "missing", "has no context named 'missing'"),
        (kubeconfig(context={"cluster": "gone"}), None, "has no cluster named 'gone'"),
        (kubeconfig(context={"user": "nobody"}), None, "has no user named 'nobody'"),
        (kubeconfig(cluster={"server": ""}), None, "cluster 'c' .* has no server"),
        (kubeconfig(cluster={"server": "ftp://x"}), None, "must be an http:// or https:// URL"),
        (
            kubeconfig(cluster={"certificate-authority-data": "%%%"}),
            None,
            "certificate-authority-data is not base64",
        ),
        (
            kubeconfig(cluster={"certificate-authority": "nowhere.crt"}),
            None,
            "certificate-authority .*nowhere.crt is not a readable file",
        ),
        (kubeconfig(user={"tokenFile": "nowhere"}), None, "tokenFile .* cannot read"),
        (
            kubeconfig(
                cluster={
                    "insecure-skip-tls-verify": True,
                    "certificate-authority-data": b64(CA_PEM),
                }
            ),
            None,
            "together with insecure-skip-tls-verify",
        ),
        (
            kubeconfig(cluster={"insecure-skip-tls-verify": "yes"}),
            None,
            "must be true or false",
        ),
        (
            kubeconfig(user={"client-certificate-data": b64(b"CERT")}),
            None,
            "its key go together",
        ),
        (kubeconfig(user={"exec": {"command": "aws"}}), None, "exec credential plugin"),
        (kubeconfig(user={"token": 42}), None, "token must be a string"),
        (kubeconfig(cluster={"tls-server-name": 1}), None, "tls-server-name must be a string"),
        ({**kubeconfig(), "clusters": {"c": {}}}, None, "clusters must be a list"),
        (["not", "a", "mapping"], None, "the document must be a mapping"),
    ],
)
def test_clear_errors(
    tmp_path: pathlib.Path, document: object, context: str | None, words: str
) -> None:
    path = write(tmp_path / "config", document)
    with pytest.raises(client.KubeconfigError, match=words) as raised:
        client.load_kubeconfig(path, context=context)
    assert str(path) in str(raised.value)


def test_a_missing_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(client.KubeconfigError, match="No such file"):
        client.load_kubeconfig(tmp_path / "nope")


def test_not_yaml(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config"
    path.write_text("clusters: [\n")
    with pytest.raises(client.KubeconfigError, match="not valid YAML"):
        client.load_kubeconfig(path)


def test_an_empty_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config"
    path.write_text("")
    with pytest.raises(client.KubeconfigError, match="no current-context"):
        client.load_kubeconfig(path)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"server": "127.0.0.1:6443"}, "http:// or https://"),
        ({"server": "http://x", "cert_file": "c"}, "go together"),
        ({"server": "http://x", "key_data": b"k"}, "go together"),
        (
            {"server": "http://x", "cert_file": "c", "cert_data": b"c", "key_file": "k"},
            "a file or as data",
        ),
    ],
)
def test_config_checks_itself(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        client.Config(**kwargs)
