"""Kubeconfig files written for the admin and for tenant users.

Written files have one cluster (`arktos-lite`), one user and one context, which is the
current context with namespace `default` (a partitioned cluster's: one cluster and context
per partition); they embed the CA and credentials, so they work on
their own, and are replaced atomically with mode 0600 (they hold secrets). Reading them is
the client's job: `arktos_lite.client.load_kubeconfig`.
"""

from __future__ import annotations

import base64
import pathlib
from collections.abc import Sequence
from typing import Any

import yaml

from arktos_lite.api import partitions as api_partitions
from arktos_lite.apiserver import _files as files, _pki as pki_

CLUSTER_NAME = "arktos-lite"
ADMIN_CONTEXT = "arktos-lite"


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


def write_partitioned_kubeconfig(
    path: pathlib.Path,
    *,
    partitions: Sequence[tuple[api_partitions.Partition, str]],
    pki: pki_.Pki,
    namespace: str = "default",
) -> None:
    """Write the admin's kubeconfig of a partitioned cluster: one cluster and one context
    per partition (named after it), each context carrying the partition's
    `DataPartitionConfig` as an extension so that clients can route by tenant. The
    current context is the designated partition's."""
    clusters, contexts = [], []
    current = ""
    for partition, server in partitions:
        cluster: dict[str, Any] = {"server": server}
        if _is_https(server):
            cluster["certificate-authority-data"] = _b64(pki.ca_pem())
        clusters.append({"name": partition.name, "cluster": cluster})
        contexts.append(
            {
                "name": partition.name,
                "context": {
                    "cluster": partition.name,
                    "user": pki_.ADMIN_USER,
                    "namespace": namespace,
                    "extensions": [
                        {
                            "name": api_partitions.KUBECONFIG_EXTENSION,
                            "extension": partition.data_partition_config(),
                        }
                    ],
                },
            }
        )
        if partition.tenants.designated:
            current = partition.name
    _write(
        path,
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": clusters,
            "users": [{"name": pki_.ADMIN_USER, "user": {"token": pki.admin_token}}],
            "contexts": contexts,
            "current-context": current,
            "preferences": {},
        },
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
