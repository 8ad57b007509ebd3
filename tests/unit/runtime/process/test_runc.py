"""What a runc container runs (Kubernetes semantics over the image config) and its spec."""

from __future__ import annotations

import pytest

from arktos_lite.runtime import errors
from arktos_lite.runtime.process._launch import BindMount
from arktos_lite.runtime.process._runc import bundle_config, cgroups_path, process_for
from arktos_lite.runtime.process._store import ImageConfig

IMAGE = ImageConfig(
    env=("PATH=/bin", "LANG=C"),
    entrypoint=("/entry",),
    cmd=("default",),
    working_dir="/app",
    user="1000:2000",
)


@pytest.mark.parametrize(
    ("command", "args", "argv"),
    [
        ([], [], ["/entry", "default"]),
        ([], ["given"], ["/entry", "given"]),
        (["sh", "-c"], [], ["sh", "-c"]),  # a command drops the image's Cmd too
        (["sh", "-c"], ["echo"], ["sh", "-c", "echo"]),
    ],
)
def test_command_replaces_entrypoint_and_args_replace_cmd(
    command: list[str], args: list[str], argv: list[str]
) -> None:
    spec = process_for(IMAGE, command=command, args=args, envs={}, working_dir="")
    assert spec.args == argv


def test_env_cwd_and_user() -> None:
    spec = process_for(IMAGE, command=[], args=[], envs={"LANG": "de", "X": "1"}, working_dir="")
    assert spec.env == {"PATH": "/bin", "LANG": "de", "X": "1"}
    assert (spec.cwd, spec.uid, spec.gid) == ("/app", 1000, 2000)
    bare = process_for(ImageConfig(cmd=("sh",)), command=[], args=[], envs={}, working_dir="/w")
    assert bare.env["PATH"].endswith("/bin")
    assert (bare.cwd, bare.uid, bare.gid) == ("/w", 0, 0)
    named = process_for(
        ImageConfig(cmd=("sh",), user="nobody"), command=[], args=[], envs={}, working_dir=""
    )
    assert named.uid == 0
    assert "not numeric" in named.note


def test_nothing_to_run() -> None:
    with pytest.raises(errors.InvalidArgument, match="no Entrypoint or Cmd"):
        process_for(ImageConfig(), command=[], args=[], envs={}, working_dir="")


def test_bundle_config() -> None:
    spec = process_for(IMAGE, command=[], args=[], envs={}, working_dir="")
    config = bundle_config(
        spec,
        hostname="web-1",
        mounts=[BindMount("/host/data", "/data", True), BindMount("/h/hosts", "/etc/hosts", False)],
        etc_files={"/etc/hosts": "/etc/hosts", "/etc/hostname": "/c/hostname"},
        cgroups_path=cgroups_path("arktos", "abc"),
    )
    assert config["hostname"] == "web-1"
    assert config["process"]["args"] == ["/entry", "default"]
    assert config["process"]["user"] == {"uid": 1000, "gid": 2000}
    assert config["process"]["terminal"] is False
    assert config["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    assert {n["type"] for n in config["linux"]["namespaces"]} == {"pid", "ipc", "uts", "mount"}
    assert config["linux"]["cgroupsPath"] == "arktos/abc/runc"
    binds = {m["destination"]: m for m in config["mounts"] if m["type"] == "bind"}
    # The container's own /etc/hosts mount wins over the host's.
    assert binds["/etc/hosts"]["source"] == "/h/hosts"
    assert binds["/etc/hostname"]["source"] == "/c/hostname"
    assert "ro" in binds["/data"]["options"]
    assert {"/proc", "/dev", "/dev/pts", "/dev/shm", "/sys"} <= {
        m["destination"] for m in config["mounts"]
    }
