"""A real Neutron API server for tests, in a process of its own.

Neutron (from PyPI) lives in a virtualenv of its own and is never imported here: its
interpreter is `$ARKTOS_NEUTRON_PYTHON`, else `/opt/arktos-neutron/bin/python` (`.ci/run`
makes it). Without it a test skips, or fails under `CI`.

`NeutronServer.start()` runs `_neutron_server.py` on a free loopback port (the same port
again after `stop()`, over the same SQLite database) and returns once it answers; `url`
is its endpoint. `make_network(name, subnets={name: cidr})` makes a network and subnets
in `PROJECT` (or `project=`) through Neutron's API; `ports(device_id=...)` lists ports.
With `keystone=` (a `_keystone.KeystoneServer`, running) Neutron checks tokens with that
Keystone (`auth_strategy` keystone) and these helpers send its admin's token.
"""

from __future__ import annotations

import functools
import os
import pathlib
import subprocess
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from ._keystone import KeystoneServer

DEFAULT_PYTHON = "/opt/arktos-neutron/bin/python"
SCRIPT = pathlib.Path(__file__).with_name("_neutron_server.py")
PROJECT = "0123456789abcdef0123456789abcdef"
STARTUP_TIMEOUT = 60.0


@functools.cache
def _missing(python: str) -> str | None:
    if not os.access(python, os.X_OK):
        return f"no Neutron virtualenv interpreter at {python} (set ARKTOS_NEUTRON_PYTHON)"
    check = subprocess.run(
        [python, "-c", "import neutron.wsgi"], capture_output=True, text=True, check=False
    )
    if check.returncode != 0:
        return f"{python} cannot import neutron: {check.stderr.strip()[-300:]}"
    return None


def spawn(
    argv: list[str], *, log: pathlib.Path, what: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], int]:
    """A server script in a process of its own (stderr appended to `log`), and the port
    it says it listens on (its first line, `PORT N`)."""
    with log.open("a") as stderr:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("PORT "):
        end(process)
        raise RuntimeError(f"{what} did not start: {line!r}\n{log.read_text()[-2000:]}")
    return process, int(line.split()[1])


def end(process: subprocess.Popen[str]) -> None:
    """Stop a process `spawn` started: SIGTERM, then SIGKILL after 10 s."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


def neutron_python() -> str:
    """The interpreter with Neutron installed; skips (fails under CI) without one."""
    python = os.environ.get("ARKTOS_NEUTRON_PYTHON") or DEFAULT_PYTHON
    reason = _missing(python)
    if reason is None:
        return python
    if os.environ.get("CI"):
        pytest.fail(reason + " (CI makes it: python3 -m venv /opt/arktos-neutron ...)")
    pytest.skip(reason)


class NeutronServer:
    def __init__(
        self,
        python: str,
        state: pathlib.Path,
        *,
        hosts: tuple[str, ...],
        keystone: KeystoneServer | None = None,
    ) -> None:
        self._python = python
        self._state = state
        self._hosts = hosts
        self._keystone = keystone
        self._process: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def running(self) -> bool:
        return self._process is not None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [self._python, str(SCRIPT)]
        if self.port:
            args += ["--port", str(self.port)]
        env = None
        if self._keystone is not None:
            args += ["--keystone", self._keystone.url]
            env = {**os.environ, "KEYSTONE_ADMIN_PASSWORD": self._keystone.admin_password}
        deadline = time.monotonic() + STARTUP_TIMEOUT
        self._process, self.port = spawn(
            [*args, str(self._state), *self._hosts],
            log=self._state / "server.log",
            what="Neutron",
            env=env,
        )
        # Behind Keystone, the API's root (versions, no token) says Neutron is up: Keystone
        # may still be starting.
        probe = f"{self.url}/" if self._keystone else f"{self.url}/v2.0/networks"
        while time.monotonic() < deadline:
            try:
                httpx.get(probe, timeout=2.0).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("Neutron did not answer")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            end(process)

    def _headers(self) -> dict[str, str]:
        if self._keystone is None:
            return {}
        return {"X-Auth-Token": self._keystone.admin_token()}

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = httpx.request(
            method, f"{self.url}/v2.0/{path}", json=body, headers=self._headers(), timeout=10.0
        )
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def make_network(
        self, name: str, *, subnets: dict[str, str], project: str = PROJECT
    ) -> dict[str, Any]:
        network = self.request(
            "POST", "networks", {"network": {"name": name, "project_id": project}}
        )["network"]
        for subnet, cidr in subnets.items():
            self.request(
                "POST",
                "subnets",
                {
                    "subnet": {
                        "name": subnet,
                        "network_id": network["id"],
                        "ip_version": 4,
                        "cidr": cidr,
                        "project_id": project,
                    }
                },
            )
        return dict(network)

    def ports(self, **filters: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        return list(self.request("GET", f"ports?{query}")["ports"])
