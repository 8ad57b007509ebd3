"""Developer and CI tasks. `nox` alone runs the test suite, lint and type checks."""

from __future__ import annotations

import shutil
import subprocess

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


def _has_libvirt() -> bool:
    """Whether libvirt-python can build here: it compiles against the system's libvirt."""
    pkg_config = shutil.which("pkg-config")
    return (
        pkg_config is not None
        and subprocess.run([pkg_config, "--exists", "libvirt"], check=False).returncode == 0
    )


# Without libvirt's headers (CI installs them) the VM runtime's tests skip, saying why.
TEST_DEPS = ["-e", ".[test,vm]" if _has_libvirt() else ".[test]"]

# Two pytest-xdist workers (CI has two cores): the minutes-long soak runs on one while the
# other runs the rest. Which tests stay together, and which goes first: tests/conftest.py.
PARALLEL = ["-n", "2", "--dist", "loadfile", "--no-loadscope-reorder"]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (slow tests included); pass pytest arguments after `--`
    (`-n 0` runs it in one process)."""
    session.install(*TEST_DEPS)
    session.run("pytest", *PARALLEL, *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, and the import-linter contract that keeps ARCHITECTURE.md's layers true."""
    session.install("ruff", "import-linter", "-e", ".")
    session.run("ruff", "check", "src", "tests", "bench", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "bench", "examples", "noxfile.py")
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src."""
    session.install("mypy", *TEST_DEPS)
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks that print figures: `nox -s bench -- storage` runs one group."""
    session.install(*TEST_DEPS)
    session.run("python", "-m", "bench", *session.posargs)


@nox.session
def protos(session: nox.Session) -> None:
    """Regenerate the checked-in gRPC modules: CRI (runtime/cri), etcd (storage/etcd) and
    Mizar (network/mizar)."""
    # Pinned to the minor release the checked-in code came from, so regenerating without
    # a proto change gives no diff; bump it together with grpcio/protobuf in pyproject.
    session.install("grpcio-tools==1.85.1")
    session.run(
        "python",
        "-m",
        "grpc_tools.protoc",
        "-I",
        "src",
        "--python_out=src",
        "--pyi_out=src",
        "--grpc_python_out=src",
        "src/arktos_lite/runtime/cri/api.proto",
        "src/arktos_lite/storage/etcd/kv.proto",
        "src/arktos_lite/storage/etcd/rpc.proto",
        "src/arktos_lite/network/mizar/builtins.proto",
    )
