"""The container wrapper: the workload gets SIGTERM with default semantics, its status is kept."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from arktos_lite.runtime.process import _launch


def start(tmp_path: Path, program: list[str], **kw: object) -> tuple[subprocess.Popen[bytes], Path]:
    exit_file = tmp_path / "exit"
    argv = _launch.container_argv(program, workdir=str(tmp_path), exit_file=exit_file, **kw)  # type: ignore[arg-type]
    proc = subprocess.Popen(argv, env={"PATH": "/usr/bin:/bin"}, start_new_session=True)
    return proc, exit_file


def wait_started(exit_file: Path) -> None:
    """Until the wrapper says the workload's signals are its own, as the runtime waits."""
    started = exit_file.with_name(_launch.STARTED)
    deadline = time.monotonic() + 5
    while not started.exists():
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_exit_code_is_written(tmp_path: Path) -> None:
    proc, exit_file = start(tmp_path, ["sh", "-c", "exit 42"])
    assert proc.wait(5) == 42
    assert exit_file.read_text().strip() == "42"


def test_sigterm_to_the_group_reaches_the_workload(tmp_path: Path) -> None:
    # At once after `started`, again and again: before it, the wrapper's trap (in the
    # wrapper, or in its fresh fork) would take the signal, and the workload run on.
    for attempt in range(30):
        run = tmp_path / str(attempt)
        run.mkdir()
        proc, exit_file = start(run, ["sleep", "30"])
        wait_started(exit_file)
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(5) == 128 + signal.SIGTERM
        assert exit_file.read_text().strip() == str(128 + signal.SIGTERM)


def test_sigkill_of_the_wrapper_leaves_no_exit_file(tmp_path: Path) -> None:
    proc, exit_file = start(tmp_path, ["sleep", "30"])
    wait_started(exit_file)
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
