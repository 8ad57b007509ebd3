"""`arktos up` as a real process on a free port, for stock kubectl and the official client.

One cluster serves the whole e2e session (each test works in names of its own). Tools
the machine lacks skip the tests that need them, except in CI (`CI=true`), where a
missing tool is a failure: CI installs everything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

READY_PREFIX = "arktos-lite is ready at "


@dataclasses.dataclass(frozen=True)
class Cluster:
    url: str
    kubeconfig: pathlib.Path
    data_dir: pathlib.Path

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        result = self.run_kubectl(*args, input=input)
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result.stdout

    def run_kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        return subprocess.run(
            ["kubectl", *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )


def require_tool(name: str) -> None:
    if shutil.which(name) is None:
        message = f"{name} is not installed on this machine"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must install it)")
        pytest.skip(message)


@contextlib.contextmanager
def running_cluster(data_dir: pathlib.Path, *args: str) -> Iterator[Cluster]:
    """`arktos up` over `data_dir` until the block ends, then SIGTERM and a clean exit."""
    log = data_dir / "arktos.log"
    with log.open("a") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "arktos_lite",
                "up",
                "--data-dir",
                str(data_dir),
                "--port",
                "0",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
    with process:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith(READY_PREFIX):
            process.kill()
            raise AssertionError(f"arktos up did not become ready: {line!r}\n{log.read_text()}")
        url, kubeconfig = line[len(READY_PREFIX) :].strip().split("; kubeconfig: ")
        try:
            yield Cluster(url=url, kubeconfig=pathlib.Path(kubeconfig), data_dir=data_dir)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
    assert process.returncode == 0, log.read_text()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("arktos")) as running:
        yield running
