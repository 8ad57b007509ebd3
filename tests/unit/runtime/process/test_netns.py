"""Containers of a sandbox with a pod network namespace run inside it."""

from __future__ import annotations

from pathlib import Path

from arktos_lite.runtime.process import _launch, _runc


def test_the_wrapper_enters_the_pods_network_namespace(tmp_path: Path) -> None:
    argv = _launch.container_argv(
        ["sleep", "1"],
        workdir="/",
        exit_file=tmp_path / "exit",
        netns=("/usr/bin/nsenter", "/run/netns/arktos-u1"),
    )
    assert argv == ["/bin/sh", str(tmp_path / "start.sh"), "sleep", "1"]
    start = (tmp_path / "start.sh").read_text()
    assert "[ -e /run/netns/arktos-u1 ] ||" in start
    assert (
        f'exec /usr/bin/nsenter --net=/run/netns/arktos-u1 -- /bin/sh {tmp_path}/init.sh "$@"'
        in start
    )


def test_isolated_containers_enter_it_before_unsharing(tmp_path: Path) -> None:
    isolation = _launch.Isolation(
        unshare="/usr/bin/unshare", mount="/bin/mount", hostname="p", mounts=()
    )
    _launch.container_argv(
        ["sleep", "1"],
        workdir="/",
        exit_file=tmp_path / "exit",
        isolation=isolation,
        netns=("/usr/bin/nsenter", "/run/netns/arktos-u1"),
    )
    start = (tmp_path / "start.sh").read_text()
    assert "exec /usr/bin/nsenter --net=/run/netns/arktos-u1 -- /usr/bin/unshare --fork" in start


def test_without_a_namespace_nothing_changes(tmp_path: Path) -> None:
    _launch.container_argv(["true"], workdir="/", exit_file=tmp_path / "exit")
    assert "nsenter" not in (tmp_path / "start.sh").read_text()


def test_runc_joins_the_namespace_by_path() -> None:
    spec = _runc.ProcessSpec(args=["sh"], env={}, cwd="/", uid=0, gid=0, note="")
    config = _runc.bundle_config(
        spec, hostname="p", mounts=[], etc_files={}, cgroups_path="x", netns="/run/netns/n"
    )
    assert {"type": "network", "path": "/run/netns/n"} in config["linux"]["namespaces"]
    plain = _runc.bundle_config(spec, hostname="p", mounts=[], etc_files={}, cgroups_path="x")
    assert all(ns["type"] != "network" for ns in plain["linux"]["namespaces"])
