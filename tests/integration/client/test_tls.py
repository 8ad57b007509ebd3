"""The client over TLS, configured from the kubeconfig files the API server writes."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest
import trio
import yaml

from arktos_lite import apiserver, client
from arktos_lite.api import errors
from arktos_lite.apiserver import _authn as authn, _kubeconfig as kubeconfig, _pki as pki_

from .conftest import CONFIGMAPS, NAMESPACES, TENANTS, Cluster, configmap


@pytest.fixture
def pki(tmp_path: pathlib.Path) -> pki_.Pki:
    return pki_.ensure_pki(tmp_path / "pki")


@pytest.fixture
async def tls_cluster(pki: pki_.Pki) -> AsyncIterator[Cluster]:
    tls = apiserver.TLSFiles(cert=pki.server_cert, key=pki.server_key, client_ca=pki.ca_cert)
    auth = authn.Authenticator(admin_token=pki.admin_token)
    async with Cluster.open(auth=auth, tls=tls) as started:
        yield started


async def test_the_admin_kubeconfig(
    tls_cluster: Cluster, pki: pki_.Pki, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "kubeconfig"
    kubeconfig.write_kubeconfig(path, server=tls_cluster.url, pki=pki)
    assert tls_cluster.url.startswith("https://")
    async with client.Client.from_kubeconfig(path) as admin:
        assert admin.config.ca_data == pki.ca_pem()
        await admin.create(TENANTS, {"metadata": {"name": "t1"}})
        await admin.create(NAMESPACES, {"metadata": {"name": "default"}}, tenant="t1")
        created = await admin.create(CONFIGMAPS, configmap("a"), tenant="t1")
        assert created["metadata"]["tenant"] == "t1"


async def test_a_tenant_users_client_certificate_from_its_kubeconfig(
    tls_cluster: Cluster, pki: pki_.Pki, tmp_path: pathlib.Path
) -> None:
    admin_path = tmp_path / "admin"
    kubeconfig.write_kubeconfig(admin_path, server=tls_cluster.url, pki=pki)
    async with client.Client.from_kubeconfig(admin_path) as admin:
        for tenant in ("t1", "t2"):
            await admin.create(TENANTS, {"metadata": {"name": tenant}})
            await admin.create(NAMESPACES, {"metadata": {"name": "default"}}, tenant=tenant)
    path = tmp_path / "alice"
    kubeconfig.write_user_kubeconfig(
        path,
        server=tls_cluster.url,
        ca_pem=pki.ca_pem(),
        user="alice",
        tenant="t1",
        client_cert=pki_.issue_client_cert(pki, user="alice", tenant="t1"),
    )
    async with client.Client.from_kubeconfig(path) as alice:
        assert alice.config.token is None
        assert alice.config.cert_data is not None
        created = await alice.create(CONFIGMAPS, configmap("mine"))
        assert created["metadata"]["tenant"] == "t1"
        with pytest.raises(errors.Forbidden):
            await alice.list(CONFIGMAPS, tenant="t2")
    # Nothing of the certificate was left on disk beside the kubeconfigs.
    assert sorted(p.name for p in await trio.Path(tmp_path).iterdir()) == ["admin", "alice", "pki"]


async def test_a_server_the_ca_does_not_vouch_for_is_unreachable(
    tls_cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    other = pki_.ensure_pki(tmp_path / "other")
    config = client.Config(tls_cluster.url, token=other.admin_token, ca_data=other.ca_pem())
    async with client.Client(config, retries=1) as stranger:
        with pytest.raises(client.Unreachable, match="CERTIFICATE_VERIFY_FAILED"):
            await stranger.version()


async def test_insecure_skips_verification(tls_cluster: Cluster, pki: pki_.Pki) -> None:
    config = client.Config(tls_cluster.url, token=pki.admin_token, insecure=True)
    async with client.Client(config) as admin:
        assert (await admin.version())["major"] == "1"


async def test_the_tls_server_name_of_the_kubeconfig(
    tls_cluster: Cluster, pki: pki_.Pki, tmp_path: pathlib.Path
) -> None:
    # As kubectl: the certificate is checked against tls-server-name, not the URL's host.
    path = tmp_path / "kubeconfig"
    kubeconfig.write_kubeconfig(path, server=tls_cluster.url, pki=pki)
    document = yaml.safe_load(path.read_text())
    for name, works in (("kubernetes.default.svc", True), ("elsewhere.example", False)):
        document["clusters"][0]["cluster"]["tls-server-name"] = name
        path.write_text(yaml.safe_dump(document))
        async with client.Client.from_kubeconfig(path, retries=1) as admin:
            assert admin.config.tls_server_name == name
            if works:
                assert (await admin.version())["major"] == "1"
            else:
                with pytest.raises(client.Unreachable, match="Hostname mismatch"):
                    await admin.version()


async def test_a_local_client_through_the_unix_socket(
    pki: pki_.Pki, tmp_path: pathlib.Path
) -> None:
    """The components of `arktos up` reach their API server this way: no TLS to pay for."""
    tls = apiserver.TLSFiles(cert=pki.server_cert, key=pki.server_key, client_ca=pki.ca_cert)
    auth = authn.Authenticator(admin_token=pki.admin_token)
    socket = tmp_path / "apiserver.sock"
    async with Cluster.open(auth=auth, tls=tls, unix_socket=socket):
        config = client.Config(
            server="http://localhost", token=pki.admin_token, unix_socket=str(socket)
        )
        async with client.Client(config) as local:
            await local.create(TENANTS, {"metadata": {"name": "t1"}})
            assert (await local.get(TENANTS, "t1"))["metadata"]["name"] == "t1"
        anonymous = client.Config(server="http://localhost", unix_socket=str(socket))
        async with client.Client(anonymous) as stranger:
            with pytest.raises(errors.Unauthorized):
                await stranger.get(TENANTS, "t1")
    with pytest.raises(ValueError, match="plain HTTP"):
        client.Config(server="https://localhost", unix_socket=str(socket))
