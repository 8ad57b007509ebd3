"""Kubeconfig files: written for the admin and for tenant users, read back by clients.

Written files have one cluster (`arktos-lite`), one user and one context, which is the
current context with namespace `default`; they embed the CA and credentials, so they work on
their own, and are replaced atomically with mode 0600 (they hold secrets).

`read_kubeconfig` resolves the parts of a kubeconfig a client needs to connect, the way
kubectl does: the current context or a named one, `*-data` or file forms (relative paths
are relative to the kubeconfig's directory), `token` or `tokenFile`, and
`insecure-skip-tls-verify`. Any problem is a `KubeconfigError` that says what to fix.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import yaml

from arktos_lite.apiserver import _files as files, _pki as pki_

CLUSTER_NAME = "arktos-lite"
ADMIN_CONTEXT = "arktos-lite"


class KubeconfigError(ValueError):
    """A kubeconfig that cannot be used to connect."""


@dataclasses.dataclass(frozen=True, slots=True)
class ClientConfig:
    """How to reach the API server as the kubeconfig's user."""

    server: str
    context: str
    namespace: str = "default"
    ca_data: bytes | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    token: str | None = dataclasses.field(default=None, repr=False)
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = dataclasses.field(default=None, repr=False)


# Writing


def write_kubeconfig(
    path: pathlib.Path,
    *,
    server: str,
    pki: pki_.Pki,
    namespace: str = "default",
    embed_client_cert: bool = False,
) -> None:
    """Write the admin's kubeconfig: the admin token (and, if asked, client certificate).

    The CA goes in only for an https server; plain http has no use for it.
    """
    client_cert = None
    if embed_client_cert:
        client_cert = pki_.ClientCertificate(
            cert_pem=pki.admin_cert.read_bytes(), key_pem=pki.admin_key.read_bytes()
        )
    _write(
        path,
        render_kubeconfig(
            server=server,
            ca_pem=pki.ca_pem() if _is_https(server) else None,
            user=pki_.ADMIN_USER,
            context=ADMIN_CONTEXT,
            namespace=namespace,
            token=pki.admin_token,
            client_cert=client_cert,
        ),
    )


def write_user_kubeconfig(
    path: pathlib.Path,
    *,
    server: str,
    ca_pem: bytes | None,
    user: str,
    tenant: str,
    token: str | None = None,
    client_cert: pki_.ClientCertificate | None = None,
    namespace: str = "default",
) -> None:
    """Write a kubeconfig for a user of a tenant, with a bearer token or a client cert."""
    if token is None and client_cert is None:
        raise ValueError("a user's kubeconfig needs a token or a client certificate")
    name = f"{user}@{tenant}"
    _write(
        path,
        render_kubeconfig(
            server=server,
            ca_pem=ca_pem if _is_https(server) else None,
            user=name,
            context=name,
            namespace=namespace,
            token=token,
            client_cert=client_cert,
        ),
    )


def render_kubeconfig(
    *,
    server: str,
    ca_pem: bytes | None,
    user: str,
    context: str,
    namespace: str = "default",
    token: str | None = None,
    client_cert: pki_.ClientCertificate | None = None,
) -> dict[str, Any]:
    """The kubeconfig document (a dict ready for YAML) for one cluster, user and context."""
    cluster: dict[str, Any] = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = _b64(ca_pem)
    credentials: dict[str, Any] = {}
    if token is not None:
        credentials["token"] = token
    if client_cert is not None:
        credentials["client-certificate-data"] = _b64(client_cert.cert_pem)
        credentials["client-key-data"] = _b64(client_cert.key_pem)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER_NAME, "cluster": cluster}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": CLUSTER_NAME, "user": user, "namespace": namespace},
            }
        ],
        "current-context": context,
        "preferences": {},
    }


def _write(path: pathlib.Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    files.write_atomic(path, text.encode(), mode=0o600)


def _is_https(server: str) -> bool:
    return server.lower().startswith("https://")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# Reading


def read_kubeconfig(path: pathlib.Path, *, context: str | None = None) -> ClientConfig:
    """What a client needs from `path`, for `context` (default: the current context)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {error}") from error
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise KubeconfigError(f"kubeconfig {path} is not valid YAML: {error}") from error
    if document is None:
        document = {}
    return _Reader(path, document).resolve(context)


class _Reader:
    def __init__(self, path: pathlib.Path, document: object) -> None:
        self.path = path
        self.base = path.parent
        self.document = self._mapping(document, "the document")

    def resolve(self, context: str | None) -> ClientConfig:
        name = context or self._string(self.document, "current-context", "the document")
        if not name:
            raise KubeconfigError(
                f"kubeconfig {self.path} has no current-context; name a context to use"
            )
        ctx = self._named("contexts", "context", name)
        cluster_name = self._string(ctx, "cluster", f"context {name!r}")
        if not cluster_name:
            raise KubeconfigError(f"context {name!r} in {self.path} names no cluster")
        cluster = self._named("clusters", "cluster", cluster_name)
        user_name = self._string(ctx, "user", f"context {name!r}")
        user = self._named("users", "user", user_name) if user_name else {}
        where = f"cluster {cluster_name!r}"
        server = self._string(cluster, "server", where)
        if not server:
            raise KubeconfigError(f"{where} in {self.path} has no server")
        insecure = cluster.get("insecure-skip-tls-verify", False)
        if not isinstance(insecure, bool):
            raise KubeconfigError(f"{where}: insecure-skip-tls-verify must be true or false")
        ca_data = self._data_or_file(cluster, "certificate-authority", where)
        if insecure and ca_data is not None:
            raise KubeconfigError(
                f"{where} in {self.path}: a certificate authority together with"
                " insecure-skip-tls-verify is not allowed"
            )
        who = f"user {user_name!r}"
        token: str | None = self._string(user, "token", who) or None
        if token is None:
            token_file = self._string(user, "tokenFile", who)
            if token_file:
                token = self._read(token_file, f"{who} tokenFile").decode().strip() or None
        return ClientConfig(
            server=server,
            context=name,
            namespace=self._string(ctx, "namespace", f"context {name!r}") or "default",
            ca_data=ca_data,
            insecure_skip_tls_verify=insecure,
            tls_server_name=self._string(cluster, "tls-server-name", where) or None,
            token=token,
            client_cert_data=self._data_or_file(user, "client-certificate", who),
            client_key_data=self._data_or_file(user, "client-key", who),
        )

    def _named(self, section: str, key: str, name: str) -> Mapping[str, object]:
        entries = self.document.get(section) or []
        if not isinstance(entries, list):
            raise KubeconfigError(f"kubeconfig {self.path}: {section} must be a list")
        for entry in entries:
            entry = self._mapping(entry, f"an entry of {section}")
            if entry.get("name") == name:
                return self._mapping(entry.get(key) or {}, f"{key} {name!r}")
        raise KubeconfigError(f"kubeconfig {self.path} has no {key} named {name!r}")

    def _data_or_file(self, mapping: Mapping[str, object], key: str, where: str) -> bytes | None:
        data = self._string(mapping, f"{key}-data", where)
        if data:
            try:
                return base64.b64decode(data, validate=True)
            except binascii.Error as error:
                raise KubeconfigError(
                    f"{where} in {self.path}: {key}-data is not base64: {error}"
                ) from None
        file_name = self._string(mapping, key, where)
        if file_name:
            return self._read(file_name, f"{where} {key}")
        return None

    def _read(self, file_name: str, what: str) -> bytes:
        # As kubectl: a relative path is relative to the kubeconfig that names it.
        file_path = self.base / os.path.expanduser(file_name)
        try:
            return file_path.read_bytes()
        except OSError as error:
            raise KubeconfigError(
                f"{what} in {self.path}: cannot read {file_path}: {error}"
            ) from None

    def _mapping(self, value: object, what: str) -> Mapping[str, object]:
        if not isinstance(value, Mapping):
            raise KubeconfigError(f"kubeconfig {self.path}: {what} must be a mapping")
        return value

    def _string(self, mapping: Mapping[str, object], key: str, where: str) -> str:
        value = mapping.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise KubeconfigError(f"{where} in {self.path}: {key} must be a string")
        return value
