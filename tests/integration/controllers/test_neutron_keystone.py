"""The Neutron network controller with Keystone password auth, against a real Keystone
(`_keystone.py`: SQLite, `keystone-manage db_sync` and `bootstrap`, Fernet tokens) and a
real Neutron that checks every token with it (keystonemiddleware's auth_token).

`arktos controller-manager --neutron-auth password`, credentials from the OpenStack
environment variables, finds Neutron in Keystone's catalog and makes, binds and deletes
ports in its project; credentials Keystone refuses show on the pod (Warning event,
condition `NetworkReady` False `AuthenticationFailed`), a pod deleted meanwhile still goes,
and the pod recovers once Keystone takes them; a revoked token is refused by Neutron and
replaced by a new one."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trio
import yaml

from arktos_lite import client
from arktos_lite.controllers import _neutron as neutron

from .._server import ADMIN_TOKEN, Server
from . import _keystone, _neutron as neutron_process
from .conftest import PODS, eventually, exists
from .test_neutron import NODE, NS, bind, condition, controller, ready_pod, reasons, vm_pod

pytestmark = pytest.mark.slow

PROJECT = "service"
USER = "arktos"
PASSWORD = "arktos-secret"
# A user whose password Keystone changes during a test.
ROTATED = "arktos-rotated"


@pytest.fixture(scope="module")
def openstack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[_keystone.KeystoneServer, neutron_process.NeutronServer]]:
    """One Keystone for the module, with the user `arktos` (role admin in `service`), and
    a Neutron behind it, in its catalog (`network`), with network `vpc-1` of `service`.
    Both start at once."""
    keystone = _keystone.KeystoneServer(
        _keystone.keystone_python(), tmp_path_factory.mktemp("keystone")
    )
    state = tmp_path_factory.mktemp("neutron-keystone")
    running = neutron_process.NeutronServer(
        neutron_process.neutron_python(), state, hosts=(NODE,), keystone=keystone
    )
    try:
        keystone.launch()
        running.start()
        keystone.wait()
        keystone.make_user(USER, PASSWORD, project=PROJECT, role="admin")
        service = keystone.request(
            "POST", "services", {"service": {"name": "neutron", "type": "network"}}
        )
        service.raise_for_status()
        keystone.request(
            "POST",
            "endpoints",
            {
                "endpoint": {
                    "service_id": service.json()["service"]["id"],
                    "interface": "public",
                    "region_id": "RegionOne",
                    "url": running.url,
                }
            },
        ).raise_for_status()
        running.make_network(
            "vpc-1",
            subnets={"sub-a": "10.30.0.0/24", "sub-b": "10.40.0.0/24"},
            project=keystone.project_id(PROJECT),
        )
        yield keystone, running
    finally:
        running.stop()
        keystone.stop()


@pytest.fixture
def keystone(
    openstack: tuple[_keystone.KeystoneServer, neutron_process.NeutronServer],
) -> _keystone.KeystoneServer:
    return openstack[0]


@pytest.fixture
def keystone_neutron(
    openstack: tuple[_keystone.KeystoneServer, neutron_process.NeutronServer],
) -> neutron_process.NeutronServer:
    return openstack[1]


async def gone(api: client.Client, name: str) -> bool:
    return await exists(api, PODS, name, namespace=NS) is None


def password_config(
    keystone: _keystone.KeystoneServer, url: str, *, user: str = USER, password: str = PASSWORD
) -> neutron.NeutronConfig:
    return neutron.NeutronConfig(
        url=url,
        auth=neutron.Auth.PASSWORD,
        keystone_url=keystone.url,
        username=user,
        password=password,
        project_name=PROJECT,
        user_domain="Default",
        project_domain="Default",
        timeout=5.0,
    )


def kubeconfig(path: pathlib.Path, url: str) -> pathlib.Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": {"server": url}}],
                "users": [{"name": "admin", "user": {"token": ADMIN_TOKEN}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
                "current-context": "test",
            }
        )
    )
    return path


async def test_controller_manager_with_password_auth_makes_binds_and_deletes_ports(
    server: Server,
    api: client.Client,
    keystone: _keystone.KeystoneServer,
    keystone_neutron: neutron_process.NeutronServer,
    tmp_path: pathlib.Path,
) -> None:
    # The OpenStack environment of an openrc file; no Neutron URL: the catalog has it.
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig(tmp_path / "kubeconfig", server.url)),
        "OS_AUTH_URL": keystone.url,
        "OS_USERNAME": USER,
        "OS_PASSWORD": PASSWORD,
        "OS_PROJECT_NAME": PROJECT,
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
    }
    log = tmp_path / "controller-manager.log"
    command = [sys.executable, "-m", "arktos_lite", "controller-manager"]
    with log.open("w") as out:
        process = await trio.lowlevel.open_process(
            [*command, "--neutron-auth", "password"],
            stdout=subprocess.DEVNULL,
            stderr=out,
            env=env,
        )
    try:
        await api.create(
            PODS,
            vm_pod(
                "vm-1",
                [
                    {"name": "eth0", "subnetName": "sub-a"},
                    {"name": "eth1", "subnetName": "sub-b", "ipAddress": "10.40.0.9"},
                ],
            ),
            namespace=NS,
        )
        await bind(api, "vm-1")
        pod = await eventually(lambda: ready_pod(api, "vm-1"), 30)
        assert process.poll() is None, log.read_text()

        uid = pod["metadata"]["uid"]
        ports = {p["id"]: p for p in keystone_neutron.ports(device_id=uid)}
        nics = {n["name"]: n for n in pod["spec"]["nics"]}
        assert set(ports) == {nics["eth0"]["portId"], nics["eth1"]["portId"]}
        assert nics["eth1"]["ipAddress"] == "10.40.0.9"
        assert nics["eth0"]["ipAddress"].startswith("10.30.0.")
        for port in ports.values():
            # Made in the project of the token, not one named in the request.
            assert port["project_id"] == keystone.project_id(PROJECT)
            assert port["binding:host_id"] == NODE
            assert port["binding:vif_type"] == "ovs"

        await api.delete(PODS, "vm-1", namespace=NS, grace_period_seconds=0)
        await eventually(lambda: not keystone_neutron.ports(device_id=uid), 20)
    finally:
        process.terminate()
        with trio.move_on_after(15):
            await process.wait()
        process.kill()
        await process.wait()
    assert PASSWORD not in log.read_text()


async def test_refused_credentials_show_on_the_pod_until_keystone_takes_them(
    api: client.Client,
    keystone: _keystone.KeystoneServer,
    keystone_neutron: neutron_process.NeutronServer,
) -> None:
    user_id = keystone.make_user(ROTATED, "old-secret", project=PROJECT, role="admin")
    config = password_config(keystone, keystone_neutron.url, user=ROTATED, password="new-secret")
    async with controller(api, keystone_neutron.url, config=config, release_timeout=1.0):
        await api.create(
            PODS, vm_pod("vm-2", [{"name": "eth0", "subnetName": "sub-a"}]), namespace=NS
        )
        await bind(api, "vm-2")

        async def refused() -> dict[str, Any] | None:
            cond = condition(await api.get(PODS, "vm-2", namespace=NS))
            return cond if cond and cond["reason"] == neutron.AUTHENTICATION_FAILED else None

        cond = await eventually(refused, 15)
        assert cond["status"] == "False"
        assert ROTATED in cond["message"]
        assert "401" in cond["message"]
        assert "secret" not in cond["message"]
        assert await eventually(lambda: reasons(api, "vm-2", neutron.AUTHENTICATION_FAILED), 10)

        # A pod deleted meanwhile is not held by the refusal.
        await api.create(PODS, vm_pod("vm-2-gone", [{"name": "eth0"}]), namespace=NS)
        failed = lambda: reasons(api, "vm-2-gone", neutron.AUTHENTICATION_FAILED)  # noqa: E731
        assert await eventually(failed, 10)
        await api.delete(PODS, "vm-2-gone", namespace=NS, grace_period_seconds=0)
        await eventually(lambda: gone(api, "vm-2-gone"), 15)
        assert await eventually(lambda: reasons(api, "vm-2-gone", neutron.PORTS_LEFT_BEHIND), 10)

        # Keystone now takes the configured password: the pod's ports follow.
        await trio.to_thread.run_sync(keystone.set_password, user_id, "new-secret")
        pod = await eventually(lambda: ready_pod(api, "vm-2"), 20)
        [port] = keystone_neutron.ports(device_id=pod["metadata"]["uid"])
        assert port["id"] == pod["spec"]["nics"][0]["portId"]
        assert port["binding:host_id"] == NODE


class Recording(httpx.AsyncBaseTransport):
    """HTTP as usual; remembers each request's path, token and answer's status."""

    def __init__(self) -> None:
        self._http = httpx.AsyncHTTPTransport()
        self.seen: list[tuple[str, str | None, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = await self._http.handle_async_request(request)
        self.seen.append(
            (request.url.path, request.headers.get("X-Auth-Token"), answer.status_code)
        )
        return answer

    async def aclose(self) -> None:
        await self._http.aclose()

    def neutron_tokens(self) -> list[str]:
        """The tokens sent to Neutron, in order, each once."""
        tokens: list[str] = []
        for path, token, _status in self.seen:
            if path.startswith("/v2.0/") and token and token not in tokens:
                tokens.append(token)
        return tokens


async def test_a_revoked_token_is_replaced(
    api: client.Client,
    keystone: _keystone.KeystoneServer,
    keystone_neutron: neutron_process.NeutronServer,
) -> None:
    recording = Recording()
    config = password_config(keystone, keystone_neutron.url)
    async with controller(api, keystone_neutron.url, config=config, transport=recording):
        await api.create(
            PODS, vm_pod("vm-3", [{"name": "eth0", "subnetName": "sub-a"}]), namespace=NS
        )
        await bind(api, "vm-3")
        await eventually(lambda: ready_pod(api, "vm-3"), 20)
        [first] = recording.neutron_tokens()

        await trio.to_thread.run_sync(keystone.revoke, first)
        assert not await trio.to_thread.run_sync(keystone.valid, first)

        await api.create(
            PODS, vm_pod("vm-4", [{"name": "eth0", "subnetName": "sub-b"}]), namespace=NS
        )
        await bind(api, "vm-4")
        pod = await eventually(lambda: ready_pod(api, "vm-4"), 20)
        assert pod["spec"]["nics"][0]["ipAddress"].startswith("10.40.0.")

        tokens = recording.neutron_tokens()
        assert tokens[0] == first
        assert len(tokens) == 2
        assert await trio.to_thread.run_sync(keystone.valid, tokens[1])
        # Neutron refused the revoked token once, and the controller authenticated again.
        assert [s for p, t, s in recording.seen if t == first and p.startswith("/v2.0/")][-1] == 401
        logins = [s for p, _t, s in recording.seen if p.endswith("/auth/tokens")]
        assert logins == [201, 201]
