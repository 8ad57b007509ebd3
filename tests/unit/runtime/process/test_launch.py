"""The container wrapper: the workload gets SIGTERM with default semantics, its status is kept."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from arktos_lite.runtime.process import _launch, _procfs


def start(tmp_path: Path, program: list[str], **kw: object) -> tuple[subprocess.Popen[bytes], Path]:
    exit_file = tmp_path / "exit"
    argv = _launch.container_argv(program, workdir=str(tmp_path), exit_file=exit_file, **kw)  # type: ignore[arg-type]
    proc = subprocess.Popen(argv, env={"PATH": "/usr/bin:/bin"}, start_new_session=True)
    return proc, exit_file


def wait_for_workload(pgid: int, name: str) -> None:
    """Until the wrapper's child runs `name`: a signal that reaches the child between its
    fork and its exec still finds the wrapper's no-op trap, and is lost."""
    deadline = time.monotonic() + 5
    while not any(_command(member.pid) == name for member in _procfs.group_members(pgid)):
        assert time.monotonic() < deadline
        time.sleep(0.01)


def _command(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def test_exit_code_is_written(tmp_path: Path) -> None:
    proc, exit_file = start(tmp_path, ["sh", "-c", "exit 42"])
    assert proc.wait(5) == 42
    assert exit_file.read_text().strip() == "42"


def test_sigterm_to_the_group_reaches_the_workload(tmp_path: Path) -> None:
    proc, exit_file = start(tmp_path, ["sleep", "30"])
    wait_for_workload(proc.pid, "sleep")
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(5) == 128 + signal.SIGTERM
    assert exit_file.read_text().strip() == str(128 + signal.SIGTERM)


def test_sigkill_of_the_wrapper_leaves_no_exit_file(tmp_path: Path) -> None:
    proc, exit_file = start(tmp_path, ["sleep", "30"])
    wait_for_workload(proc.pid, "sleep")
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(5) == -signal.SIGKILL
    assert not exit_file.exists()


def test_a_missing_working_directory_fails_setup(tmp_path: Path) -> None:
    exit_file = tmp_path / "exit"
    argv = _launch.container_argv(["true"], workdir=str(tmp_path / "nope"), exit_file=exit_file)
    result = subprocess.run(argv, env={"PATH": "/usr/bin:/bin"}, capture_output=True, check=False)
    assert result.returncode == _launch.SETUP_FAILED
    assert b"cannot enter working directory" in result.stderr
    assert exit_file.read_text().strip() == str(_launch.SETUP_FAILED)


def test_arguments_pass_through_unchanged(tmp_path: Path) -> None:
    exit_file = tmp_path / "exit"
    argv = _launch.container_argv(
        ["printf", "%s|", "a b", "$HOME", "'q'"], workdir=str(tmp_path), exit_file=exit_file
    )
    result = subprocess.run(argv, env={"PATH": "/usr/bin:/bin"}, capture_output=True, check=True)
    assert result.stdout == b"a b|$HOME|'q'|"
