"""A pod's volumes on disk (kubelet's layout), its container mounts, and their cleanup."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
import trio

from arktos_lite.agent import _env as env, _volumes as volumes
from arktos_lite.runtime.cri import api_pb2 as cri

from .test_env import FakeReader, b64, config_map, secret


def pod_with(*pod_volumes: dict[str, Any], containers: list[dict[str, Any]] | None = None):
    return {
        "metadata": {
            "name": "web-1",
            "namespace": "ns",
            "tenant": "t1",
            "uid": "u1",
            "labels": {"app": "web"},
        },
        "spec": {
            "volumes": list(pod_volumes),
            "containers": containers
            or [{"name": "c", "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}}}],
        },
    }


def lexists(path: Path) -> bool:
    return os.path.lexists(path)


def is_mount(path: Path) -> bool:
    """Whether `path` is a mount point (bind mounts included, unlike `os.path.ismount`)."""
    return _mount_options(path) != ""


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def prepare(tmp_path: Path, *pod_volumes: dict[str, Any], reader: FakeReader | None = None):
    return await volumes.prepare_volumes(
        pod=pod_with(*pod_volumes), pod_dir=tmp_path / "pod", reader=reader or FakeReader({})
    )


async def test_empty_dir_is_a_writable_directory_that_keeps_its_contents(tmp_path: Path) -> None:
    result = await prepare(tmp_path, {"name": "scratch", "emptyDir": {}})
    path = result["scratch"]
    assert path == tmp_path / "pod/volumes/kubernetes.io~empty-dir/scratch"
    assert path.is_dir()
    assert mode_of(path) == 0o777
    (path / "kept").write_text("x")
    again = await prepare(tmp_path, {"name": "scratch", "emptyDir": {}})
    assert (again["scratch"] / "kept").read_text() == "x"


@pytest.mark.skipif(os.geteuid() != 0, reason="tmpfs needs root")
async def test_memory_empty_dir_is_tmpfs_and_cleanup_unmounts_it(tmp_path: Path) -> None:
    result = await prepare(
        tmp_path, {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
    )
    path = result["mem"]
    if not is_mount(path):
        pytest.skip("mount is not permitted here")
    assert "size=1024k" in _mount_options(path)
    (path / "f").write_text("in memory")
    await prepare(tmp_path, {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}})
    assert (path / "f").read_text() == "in memory"
    await volumes.cleanup_volumes(tmp_path / "pod")
    assert not is_mount(path)
    assert not (tmp_path / "pod").exists()


def _mount_options(path: Path) -> str:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(path):
            return line
    return ""


async def test_config_map_all_keys_binary_data_and_default_mode(tmp_path: Path) -> None:
    reader = FakeReader(config_map("cfg", {"app.conf": "a=1\n", "other": "o"}))
    reader.objects[("configmaps", "t1", "ns", "cfg")]["binaryData"] = {"blob": b64("\x00\x01")}
    result = await prepare(tmp_path, {"name": "c", "configMap": {"name": "cfg"}}, reader=reader)
    path = result["c"]
    assert path == tmp_path / "pod/volumes/kubernetes.io~configmap/c"
    assert (path / "app.conf").read_text() == "a=1\n"
    assert (path / "blob").read_bytes() == b"\x00\x01"
    assert mode_of(path / "app.conf") == 0o644
    # kubelet's atomic layout: top-level names link through `..data`.
    assert os.readlink(path / "app.conf") == "..data/app.conf"
    assert (path / "..data").is_symlink()
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith("..")) == [
        "app.conf",
        "blob",
        "other",
    ]


async def test_config_map_items_paths_and_modes(tmp_path: Path) -> None:
    reader = FakeReader(config_map("cfg", {"a": "A", "b": "B", "c": "C"}))
    source = {
        "name": "cfg",
        "defaultMode": 0o600,
        "items": [{"key": "a", "path": "conf/a.txt", "mode": 0o400}, {"key": "b", "path": "b"}],
    }
    result = await prepare(tmp_path, {"name": "v", "configMap": source}, reader=reader)
    path = result["v"]
    assert (path / "conf/a.txt").read_text() == "A"
    assert mode_of(path / "conf/a.txt") == 0o400
    assert mode_of(path / "b") == 0o600
    assert not (path / "c").exists()
    assert os.readlink(path / "conf") == "..data/conf"


async def test_config_map_update_swaps_atomically_and_drops_removed_keys(tmp_path: Path) -> None:
    reader = FakeReader(config_map("cfg", {"a": "1", "b": "2"}))
    volume = {"name": "v", "configMap": {"name": "cfg"}}
    path = (await prepare(tmp_path, volume, reader=reader))["v"]
    first = os.readlink(path / "..data")
    # Unchanged contents: nothing is rewritten.
    await prepare(tmp_path, volume, reader=reader)
    assert os.readlink(path / "..data") == first
    reader.objects[("configmaps", "t1", "ns", "cfg")]["data"] = {"a": "one", "c": "3"}
    await prepare(tmp_path, volume, reader=reader)
    assert os.readlink(path / "..data") != first
    assert (path / "a").read_text() == "one"
    assert (path / "c").read_text() == "3"
    assert not lexists(path / "b")
    assert not (path / first).exists()
    hidden = [p.name for p in path.iterdir() if p.name.startswith("..")]
    assert len(hidden) == 2  # `..data` and the one timestamped directory


async def test_secret_is_decoded_with_mode_0644_and_optional(tmp_path: Path) -> None:
    reader = FakeReader(secret("creds", {"password": "s3cr3t", "user": "admin"}))
    result = await prepare(
        tmp_path,
        {"name": "s", "secret": {"secretName": "creds"}},
        {"name": "maybe", "secret": {"secretName": "absent", "optional": True}},
        reader=reader,
    )
    path = result["s"]
    assert path == tmp_path / "pod/volumes/kubernetes.io~secret/s"
    assert (path / "password").read_text() == "s3cr3t"
    assert mode_of(path / "password") == 0o644
    assert [p.name for p in result["maybe"].iterdir() if not p.name.startswith("..")] == []


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        (
            {"name": "v", "configMap": {"name": "absent"}},
            'MountVolume.SetUp failed for volume "v" : configmap "absent" not found',
        ),
        (
            {"name": "v", "secret": {"secretName": "absent"}},
            'MountVolume.SetUp failed for volume "v" : secret "absent" not found',
        ),
        (
            {"name": "v", "configMap": {"name": "cfg", "items": [{"key": "zz", "path": "z"}]}},
            'MountVolume.SetUp failed for volume "v" : '
            "configmap references non-existent config key: zz",
        ),
        (
            {"name": "v", "secret": {"secretName": "s", "items": [{"key": "zz", "path": "z"}]}},
            'MountVolume.SetUp failed for volume "v" : '
            "secret references non-existent secret key: zz",
        ),
        (
            {"name": "v", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "../x"}]}},
            'MountVolume.SetUp failed for volume "v" : '
            "invalid path '../x': must not contain '..'",
        ),
        (
            {"name": "v", "persistentVolumeClaim": {"claimName": "data"}},
            'MountVolume.SetUp failed for volume "v" : persistentVolumeClaim volumes are not '
            "supported by this node agent (use emptyDir or hostPath)",
        ),
        (
            {"name": "v", "nfs": {"server": "x", "path": "/"}},
            'MountVolume.SetUp failed for volume "v" : nfs volumes are not supported by this '
            "node agent",
        ),
        (
            {"name": "v", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
            'MountVolume.SetUp failed for volume "v" : '
            "serviceAccountToken projections are not supported",
        ),
    ],
)
async def test_volume_errors(tmp_path: Path, volume: dict[str, Any], message: str) -> None:
    reader = FakeReader(config_map("cfg", {"a": "1"}) | secret("s", {"b": "2"}))
    with pytest.raises(env.ContainerConfigError) as raised:
        await prepare(tmp_path, volume, reader=reader)
    assert str(raised.value) == message


async def test_optional_items_skip_missing_keys(tmp_path: Path) -> None:
    reader = FakeReader(config_map("cfg", {"a": "1"}))
    source = {
        "name": "cfg",
        "optional": True,
        "items": [{"key": "a", "path": "a"}, {"key": "zz", "path": "z"}],
    }
    path = (await prepare(tmp_path, {"name": "v", "configMap": source}, reader=reader))["v"]
    assert (path / "a").read_text() == "1"
    assert not lexists(path / "z")


async def test_downward_api_and_projected(tmp_path: Path) -> None:
    reader = FakeReader(config_map("cfg", {"a": "1"}) | secret("s", {"b": "2"}))
    items = [
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {
            "path": "mem",
            "resourceFieldRef": {
                "containerName": "c",
                "resource": "limits.memory",
                "divisor": "1Mi",
            },
            "mode": 0o400,
        },
    ]
    result = await prepare(
        tmp_path,
        {"name": "d", "downwardAPI": {"items": items}},
        {
            "name": "p",
            "projected": {
                "defaultMode": 0o440,
                "sources": [
                    {"configMap": {"name": "cfg"}},
                    {"secret": {"name": "s", "items": [{"key": "b", "path": "sec/b"}]}},
                    {"downwardAPI": {"items": items[:1]}},
                    {"configMap": {"name": "gone", "optional": True}},
                ],
            },
        },
        reader=reader,
    )
    downward = result["d"]
    assert downward == tmp_path / "pod/volumes/kubernetes.io~downward-api/d"
    assert (downward / "name").read_text() == "web-1"
    assert (downward / "labels").read_text() == 'app="web"'
    assert (downward / "mem").read_text() == "64"
    assert mode_of(downward / "mem") == 0o400
    projected = result["p"]
    assert projected == tmp_path / "pod/volumes/kubernetes.io~projected/p"
    assert (projected / "a").read_text() == "1"
    assert (projected / "sec/b").read_text() == "2"
    assert (projected / "name").read_text() == "web-1"
    assert mode_of(projected / "a") == 0o440


async def test_host_path_types(tmp_path: Path) -> None:
    existing_dir = tmp_path / "dir"
    existing_dir.mkdir()
    existing_file = tmp_path / "file"
    existing_file.write_text("x")
    created_dir = tmp_path / "new/deep/dir"
    created_file = tmp_path / "newfile"
    sock_path = tmp_path / "s.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(sock_path))
    try:
        result = await prepare(
            tmp_path,
            {"name": "a", "hostPath": {"path": str(existing_dir), "type": "Directory"}},
            {"name": "b", "hostPath": {"path": str(existing_file), "type": "File"}},
            {"name": "c", "hostPath": {"path": str(created_dir), "type": "DirectoryOrCreate"}},
            {"name": "d", "hostPath": {"path": str(created_file), "type": "FileOrCreate"}},
            {"name": "e", "hostPath": {"path": str(sock_path), "type": "Socket"}},
            {"name": "f", "hostPath": {"path": "/dev/null", "type": "CharDevice"}},
            {"name": "g", "hostPath": {"path": str(tmp_path / "whatever"), "type": ""}},
        )
    finally:
        listener.close()
    assert result["a"] == existing_dir
    assert result["c"] == created_dir
    assert created_dir.is_dir()
    assert created_file.is_file()
    assert mode_of(created_file) & 0o777 == 0o644 & ~_umask()
    assert result["g"] == tmp_path / "whatever"
    assert not (tmp_path / "whatever").exists()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@pytest.mark.parametrize(
    ("kind", "target", "message"),
    [
        ("Directory", "file", "{path} is not a directory"),
        ("Directory", "absent", "{path} is not a directory"),
        ("DirectoryOrCreate", "file", "{path} is not a directory"),
        ("File", "dir", "{path} is not a file"),
        ("FileOrCreate", "dir", "{path} is not a file"),
        ("Socket", "file", "{path} is not a socket file"),
        ("CharDevice", "file", "{path} is not a character device"),
        ("BlockDevice", "file", "{path} is not a block device"),
    ],
)
async def test_host_path_type_check_failures(
    tmp_path: Path, kind: str, target: str, message: str
) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    path = str(tmp_path / target)
    with pytest.raises(env.ContainerConfigError) as raised:
        await prepare(tmp_path, {"name": "h", "hostPath": {"path": path, "type": kind}})
    assert str(raised.value) == (
        'MountVolume.SetUp failed for volume "h" : hostPath type check failed: '
        + message.format(path=path)
    )


async def test_host_path_bad_type(tmp_path: Path) -> None:
    with pytest.raises(env.ContainerConfigError, match="Weird is an invalid volume type"):
        await prepare(tmp_path, {"name": "h", "hostPath": {"path": "/tmp", "type": "Weird"}})


async def test_mounts_read_only_sub_path_and_unknown_volume(tmp_path: Path) -> None:
    reader = FakeReader(config_map("cfg", {"app.conf": "x"}))
    host = tmp_path / "host"
    host.mkdir()
    prepared = await prepare(
        tmp_path,
        {"name": "scratch", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "cfg"}},
        {"name": "host", "hostPath": {"path": str(host)}},
        reader=reader,
    )
    container = {
        "name": "c",
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/data"},
            {"name": "scratch", "mountPath": "/logs", "subPath": "logs/app"},
            {"name": "cfg", "mountPath": "/etc/app"},
            {"name": "host", "mountPath": "/host", "readOnly": True},
            {"name": "host", "mountPath": "/shared", "mountPropagation": "HostToContainer"},
        ],
    }
    result = volumes.mounts(container, prepared)
    assert [(m.container_path, m.host_path, m.readonly) for m in result] == [
        ("/data", str(prepared["scratch"]), False),
        ("/logs", str(prepared["scratch"] / "logs/app"), False),
        ("/etc/app", str(prepared["cfg"]), True),
        ("/host", str(host), True),
        ("/shared", str(host), False),
    ]
    assert (prepared["scratch"] / "logs/app").is_dir()
    assert result[4].propagation == cri.PROPAGATION_HOST_TO_CONTAINER
    assert result[0].propagation == cri.PROPAGATION_PRIVATE

    with pytest.raises(env.ContainerConfigError) as raised:
        volumes.mounts({"name": "c", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}, prepared)
    assert str(raised.value) == 'cannot find volume "x" to mount into container "c"'


@pytest.mark.parametrize(
    ("sub_path", "message"),
    [
        ("../escape", "unable to provision SubPath `../escape`: must not contain '..'"),
        ("a/../../b", "unable to provision SubPath `a/../../b`: must not contain '..'"),
        ("/abs", "error SubPath `/abs` must not be an absolute path"),
        ("out/inner", "subPath `out/inner` of volume 'scratch' leaves the volume"),
    ],
)
async def test_sub_path_cannot_leave_the_volume(
    tmp_path: Path, sub_path: str, message: str
) -> None:
    prepared = await prepare(tmp_path, {"name": "scratch", "emptyDir": {}})
    outside = tmp_path / "outside"
    outside.mkdir()
    # A container could plant a symlink out of its volume.
    (prepared["scratch"] / "out").symlink_to(outside)
    container = {
        "name": "c",
        "volumeMounts": [{"name": "scratch", "mountPath": "/x", "subPath": sub_path}],
    }
    with pytest.raises(env.ContainerConfigError) as raised:
        volumes.mounts(container, prepared)
    assert str(raised.value) == message
    assert list(outside.iterdir()) == []


async def test_cleanup_never_follows_symlinks_out(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("keep")
    precious_file = tmp_path / "precious.txt"
    precious_file.write_text("keep")
    reader = FakeReader(config_map("cfg", {"a": "1"}))
    prepared = await prepare(
        tmp_path,
        {"name": "scratch", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "cfg"}},
        {"name": "host", "hostPath": {"path": str(precious)}},
        reader=reader,
    )
    scratch = prepared["scratch"]
    (scratch / "to-dir").symlink_to(precious)
    (scratch / "to-file").symlink_to(precious_file)
    (scratch / "nested/deeper").mkdir(parents=True)
    (scratch / "nested/deeper/link").symlink_to(precious)
    await volumes.cleanup_volumes(tmp_path / "pod")
    assert not (tmp_path / "pod").exists()
    assert (precious / "keep.txt").read_text() == "keep"
    assert precious_file.read_text() == "keep"
    # Cleaning up twice (or a pod that never had volumes) is fine.
    await volumes.cleanup_volumes(tmp_path / "pod")


async def test_cleanup_of_a_symlinked_pod_dir_removes_only_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "volumes").mkdir(parents=True)
    (real / "volumes/file").write_text("x")
    (tmp_path / "pod").symlink_to(real)
    await volumes.cleanup_volumes(tmp_path / "pod")
    assert not lexists(tmp_path / "pod")
    assert (real / "volumes/file").read_text() == "x"


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
async def test_cleanup_does_not_descend_into_foreign_mounts(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("keep")
    prepared = await prepare(tmp_path, {"name": "scratch", "emptyDir": {}})
    target = prepared["scratch"] / "bound"
    target.mkdir()
    done = await trio.run_process(
        ["mount", "--bind", str(precious), str(target)],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("bind mounts are not permitted here")
    try:
        await volumes.cleanup_volumes(tmp_path / "pod")
        assert (precious / "keep.txt").read_text() == "keep"
        assert is_mount(target)
    finally:
        await trio.run_process(["umount", str(target)])
    await volumes.cleanup_volumes(tmp_path / "pod")
    assert not (tmp_path / "pod").exists()
