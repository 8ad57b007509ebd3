"""A real Keystone for tests, in a process of its own (`_keystone_server.py`).

Keystone (from PyPI) is installed into the Neutron virtualenv (`_neutron.neutron_python()`;
`.ci/run` installs both) and never imported here; without it a test skips, or fails under
`CI`.

`KeystoneServer.start()` runs it on a free loopback port and returns once it answers;
`url` is its v3 endpoint. `launch()` and `wait()` are its two halves: `url` is known after
`launch()` (something else may start meanwhile), Keystone answers after `wait()`. The user
`admin` (password `ADMIN_PASSWORD`) has the role `admin` in the project `admin`.
`request()` calls Keystone's API with an admin token; the helpers below make projects and
users, change a password, and check or revoke a token.
"""

from __future__ import annotations

import functools
import os
import pathlib
import subprocess
import time
from typing import Any

import httpx
import pytest

from . import _neutron

SCRIPT = pathlib.Path(__file__).with_name("_keystone_server.py")
ADMIN_PASSWORD = "admin-secret"
STARTUP_TIMEOUT = 90.0


@functools.cache
def _missing(python: str) -> str | None:
    check = subprocess.run(
        [python, "-c", "import keystone.server.wsgi"], capture_output=True, text=True, check=False
    )
    if check.returncode != 0:
        return f"{python} cannot import keystone: {check.stderr.strip()[-300:]}"
    return None


def keystone_python() -> str:
    """The interpreter with Keystone (and Neutron) installed; skips (fails under CI)
    without one."""
    python = _neutron.neutron_python()
    reason = _missing(python)
    if reason is None:
        return python
    if os.environ.get("CI"):
        pytest.fail(reason + " (CI installs it: pip install keystone into the Neutron venv)")
    pytest.skip(reason)


def password_request(user: str, password: str, project: str) -> dict[str, Any]:
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"id": "default"}, "password": password}
                },
            },
            "scope": {"project": {"name": project, "domain": {"id": "default"}}},
        }
    }


class KeystoneServer:
    admin_password = ADMIN_PASSWORD

    def __init__(self, python: str, state: pathlib.Path) -> None:
        self._python = python
        self._state = state
        self._process: subprocess.Popen[str] | None = None
        self._admin_token: str | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v3"

    def start(self) -> None:
        self.launch()
        self.wait()

    def launch(self) -> None:
        args = [self._python, str(SCRIPT)]
        if self.port:
            args += ["--port", str(self.port)]
        self._process, self.port = _neutron.spawn(
            [*args, str(self._state)],
            log=self._state / "keystone.log",
            what="Keystone",
            env={**os.environ, "KEYSTONE_ADMIN_PASSWORD": ADMIN_PASSWORD},
        )

    def wait(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"Keystone exited\n{self._log_tail()}")
            try:
                httpx.get(self.url, timeout=STARTUP_TIMEOUT).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"Keystone did not answer\n{self._log_tail()}")

    def _log_tail(self) -> str:
        return (self._state / "keystone.log").read_text()[-2000:]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            _neutron.end(process)

    def token(self, user: str, password: str, project: str) -> str:
        """A project-scoped token for the user (raises for refused credentials)."""
        answer = httpx.post(
            f"{self.url}/auth/tokens",
            json=password_request(user, password, project),
            timeout=10.0,
        )
        answer.raise_for_status()
        return answer.headers["X-Subject-Token"]

    def admin_token(self) -> str:
        if self._admin_token is None:
            self._admin_token = self.token("admin", ADMIN_PASSWORD, "admin")
        return self._admin_token

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Keystone's answer to an admin's request (not checked)."""
        return httpx.request(
            method,
            f"{self.url}/{path}",
            json=body,
            headers={"X-Auth-Token": self.admin_token(), **(headers or {})},
            timeout=10.0,
        )

    def _made(self, path: str, key: str, body: dict[str, Any]) -> str:
        answer = self.request("POST", path, {key: body})
        answer.raise_for_status()
        return str(answer.json()[key]["id"])

    def role_id(self, name: str) -> str:
        answer = self.request("GET", f"roles?name={name}")
        answer.raise_for_status()
        return str(answer.json()["roles"][0]["id"])

    def make_user(self, name: str, password: str, *, project: str, role: str) -> str:
        """A user of the default domain with `role` in `project` (made when missing)."""
        found = self.request("GET", f"projects?name={project}").json()["projects"]
        project_id = (
            found[0]["id"]
            if found
            else self._made("projects", "project", {"name": project, "domain_id": "default"})
        )
        user_id = self._made(
            "users", "user", {"name": name, "password": password, "domain_id": "default"}
        )
        self.request(
            "PUT", f"projects/{project_id}/users/{user_id}/roles/{self.role_id(role)}"
        ).raise_for_status()
        return user_id

    def project_id(self, name: str) -> str:
        return str(self.request("GET", f"projects?name={name}").json()["projects"][0]["id"])

    def set_password(self, user_id: str, password: str) -> None:
        self.request(
            "PATCH", f"users/{user_id}", {"user": {"password": password}}
        ).raise_for_status()

    def valid(self, token: str) -> bool:
        """Whether Keystone still takes the token (GET /v3/auth/tokens)."""
        answer = self.request("GET", "auth/tokens", headers={"X-Subject-Token": token})
        if answer.status_code == 404:
            return False
        answer.raise_for_status()
        return True

    def revoke(self, token: str) -> None:
        """Revoke the token (DELETE /v3/auth/tokens)."""
        answer = self.request("DELETE", "auth/tokens", headers={"X-Subject-Token": token})
        answer.raise_for_status()
