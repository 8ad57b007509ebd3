"""Stock kubectl 1.32's `logs` and `exec` (its websocket protocol) through the API server
to an agent, over TLS, as a tenant user and as another tenant's user."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
from collections.abc import AsyncIterator

import pytest
import trio

from arktos_lite import apiserver
from arktos_lite.apiserver import _kubeconfig as kubeconfig, _pki as pki

from .conftest import ALICE_TOKEN, BOB_TOKEN
from .test_proxy import Setup, open_setup


@pytest.fixture
async def setup(tmp_path: pathlib.Path) -> AsyncIterator[Setup]:
    if shutil.which("kubectl") is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl is not installed (CI must install it)")
        pytest.skip("kubectl is not installed on this machine")
    keys = await trio.to_thread.run_sync(pki.ensure_pki, tmp_path)
    tls = apiserver.TLSFiles(cert=keys.server_cert, key=keys.server_key, client_ca=keys.ca_cert)
    async with open_setup(tmp_path, tls=tls, ca_pem=keys.ca_pem()) as started:
        # The cluster admin's kubeconfig authenticates with the admin client certificate.
        kubeconfig.write_kubeconfig(
            tmp_path / "kubeconfig-admin",
            server=started.server.url,
            pki=keys,
            embed_client_cert=True,
        )
        yield started


async def kubectl(
    setup: Setup, tmp_path: pathlib.Path, token: str, *args: str, stdin: bytes | None = None
) -> tuple[int, str, str]:
    config = tmp_path / f"kubeconfig-{token}"
    if not config.exists():
        kubeconfig.write_user_kubeconfig(
            config,
            server=setup.server.url,
            ca_pem=setup.ca_pem,
            user=token,
            tenant="t",
            token=token,
        )
    env = {**os.environ, "KUBECONFIG": str(config)}
    with trio.fail_after(30):
        result = await trio.run_process(
            ["kubectl", *args],
            env=env,
            stdin=stdin or b"",
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def test_kubectl_logs(setup: Setup, tmp_path: pathlib.Path) -> None:
    code, out, err = await kubectl(setup, tmp_path, ALICE_TOKEN, "logs", "web")
    assert (code, out) == (0, "hello\nworld\n"), err
    code, out, err = await kubectl(setup, tmp_path, ALICE_TOKEN, "logs", "web", "--tail=1")
    assert (code, out) == (0, "world\n"), err
    code, out, err = await kubectl(setup, tmp_path, ALICE_TOKEN, "logs", "two", "-c", "x")
    assert code != 0
    assert "container x is not valid for pod two" in err


async def test_kubectl_exec(setup: Setup, tmp_path: pathlib.Path) -> None:
    code, out, err = await kubectl(
        setup, tmp_path, ALICE_TOKEN, "exec", "web", "--", "sh", "-c", "echo hi; exit 3"
    )
    assert out == "hi\n", err
    assert code == 3, err
    code, out, err = await kubectl(setup, tmp_path, ALICE_TOKEN, "exec", "web", "--", "echo", "ok")
    assert (code, out) == (0, "ok\n"), err
    code, out, err = await kubectl(
        setup, tmp_path, ALICE_TOKEN, "exec", "-i", "web", "--", "cat", stdin=b"piped\n"
    )
    assert (code, out) == (0, "piped\n"), err


async def test_kubectl_exec_into_another_tenant_fails(setup: Setup, tmp_path: pathlib.Path) -> None:
    code, _out, err = await kubectl(setup, tmp_path, BOB_TOKEN, "exec", "web", "--", "true")
    assert code != 0
    assert "not found" in err


async def test_kubectl_logs_previous_and_follow(setup: Setup, tmp_path: pathlib.Path) -> None:
    code, out, err = await kubectl(setup, tmp_path, ALICE_TOKEN, "logs", "web", "--previous")
    assert (code, out) == (0, "crashed\n"), err
    followed: list[tuple[int, str, str]] = []

    async def follow() -> None:
        followed.append(await kubectl(setup, tmp_path, ALICE_TOKEN, "logs", "-f", "web"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow)
        await trio.sleep(0.5)
        with setup.log_path.open("a") as log:
            log.write("2026-01-02T03:04:09.000000000Z stdout F later\n")
        await trio.sleep(0.5)
        key = ("t1", "default", "web", "app", False)
        setup.locator.containers[key] = dataclasses.replace(
            setup.locator.containers[key], running=False
        )
    assert followed == [(0, "hello\nworld\nlater\n", "")]


async def test_kubectl_exec_with_a_client_certificate(setup: Setup, tmp_path: pathlib.Path) -> None:
    code, out, err = await kubectl(setup, tmp_path, "admin", "exec", "sys", "--", "echo", "cert")
    assert (code, out) == (0, "cert\n"), err
    code, out, err = await kubectl(setup, tmp_path, "admin", "logs", "sys")
    assert (code, out) == (0, "hello\nworld\n"), err
