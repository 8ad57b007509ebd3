"""The process runtime's image store: imports of OCI archives, checked and unpacked."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from arktos_lite.runtime import _oci
from arktos_lite.runtime.process import ImportedImage, import_image
from arktos_lite.runtime.process._store import ImageError, LocalImages, normalize

Entry = tuple[str, str, bytes | str]  # (kind: file/dir/symlink/hardlink, name, content/target)


def layer(entries: Sequence[Entry], *, compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, content in entries:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if kind == "dir" else 0o644
            data = b""
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, str(content)
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, str(content)
            else:
                data = content if isinstance(content, bytes) else content.encode()
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    return gzip.compress(raw, mtime=0) if compress else raw


def _digest(blob: bytes) -> str:
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def write_layout(
    directory: Path,
    layers: Sequence[bytes],
    *,
    name: str = "localhost/test/image:1",
    config: dict[str, object] | None = None,
) -> Path:
    """An unpacked OCI layout holding one image with these layers."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(blob: bytes) -> dict[str, object]:
        (blobs / hashlib.sha256(blob).hexdigest()).write_bytes(blob)
        return {"digest": _digest(blob), "size": len(blob)}

    diff_ids = [
        _digest(gzip.decompress(b) if b[:2] == b"\x1f\x8b" else b)
        for b in layers  # diff ids are of the uncompressed tars
    ]
    config_blob = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": config or {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(config_blob)},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", **put(b)} for b in layers
            ],
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **put(manifest),
                "annotations": {"io.containerd.image.name": name},
            }
        ],
    }
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (directory / "index.json").write_text(json.dumps(index))
    return directory


def tar_of(directory: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w") as tar:
        for child in sorted(directory.iterdir()):
            tar.add(child, arcname=child.name)
    return dest


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("foo:1", "docker.io/library/foo:1"),
        ("team/tool", "docker.io/team/tool:latest"),
        ("docker.io/busybox:1.36", "docker.io/library/busybox:1.36"),
        ("quay.io/org/app:v2", "quay.io/org/app:v2"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("localhost/arktos/pause:busybox", "localhost/arktos/pause:busybox"),
        ("busybox@sha256:" + "a" * 64, "docker.io/library/busybox@sha256:" + "a" * 64),
    ],
)
def test_names_are_normalized_as_containerd_does(name: str, normalized: str) -> None:
    assert normalize(name) == normalized


@pytest.mark.parametrize("name", ["", "Busybox", "a b", "busybox@sha256:short"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(ValueError, match="invalid image reference"):
        normalize(name)


def test_import_the_busybox_archive(tmp_path: Path) -> None:
    archive = _oci.build_image(tmp_path / "bb.tar", name="busybox", cmd=("sh",))
    imported = import_image(tmp_path / "root", archive.path)
    assert imported == ImportedImage(
        name="docker.io/library/busybox:latest",
        digest=archive.manifest_digest,
        size=imported.size,
        id=archive.config_digest,
    )
    assert imported.size > 1_000_000
    rootfs = tmp_path / "root" / "images" / archive.config_digest.removeprefix("sha256:") / "rootfs"
    assert (rootfs / "bin" / "busybox").read_bytes() == Path("/bin/busybox").read_bytes()
    assert os.readlink(rootfs / "bin" / "sh") == "busybox"
    assert (rootfs / "tmp").stat().st_mode & 0o7777 == 0o1777

    images = LocalImages(tmp_path / "root")
    for ref in ("busybox", "busybox:latest", archive.config_digest, archive.manifest_digest):
        found = images.find(ref)
        assert found is not None, ref
        assert found.id == archive.config_digest
    assert images.find("busybox:1.36") is None
    found = images.find("busybox")
    assert found is not None
    assert found.config.cmd == ("sh",)
    assert found.config.env == (
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    )


def test_a_given_name_wins_and_an_import_is_seen_by_a_reader(tmp_path: Path) -> None:
    images = LocalImages(tmp_path / "root")
    assert images.list() == []
    archive = _oci.build_busybox_image(tmp_path / "bb.tar")
    imported = import_image(tmp_path / "root", archive, name="tools:1")
    assert imported.name == "docker.io/library/tools:1"
    # The same content again under its own name: unpacked once, two names.
    again = import_image(tmp_path / "root", archive)
    assert again.id == imported.id
    (image,) = images.list()
    assert image.names == ("docker.io/library/busybox:latest", "docker.io/library/tools:1")
    removed = images.remove("tools:1")
    assert removed is not None
    assert images.list() == []
    assert not image.directory.exists()


def test_import_from_a_layout_directory_with_gzip_layers(tmp_path: Path) -> None:
    layers = [
        layer([("dir", "etc", b""), ("file", "etc/motd", "hi\n")], compress=True),
        layer([("file", "etc/motd", "again\n"), ("hardlink", "etc/motd2", "etc/motd")]),
    ]
    layout = write_layout(tmp_path / "layout", layers, config={"Entrypoint": ["/bin/app"]})
    imported = import_image(tmp_path / "root", layout)
    assert imported.name == "localhost/test/image:1"
    image = LocalImages(tmp_path / "root").find("localhost/test/image:1")
    assert image is not None
    assert (image.rootfs / "etc" / "motd").read_text() == "again\n"
    assert (image.rootfs / "etc" / "motd2").stat().st_ino == (
        image.rootfs / "etc/motd"
    ).stat().st_ino
    assert image.config.entrypoint == ("/bin/app",)
    # The same layout as a tar archive imports to the same image.
    assert import_image(tmp_path / "root", tar_of(layout, tmp_path / "l.tar")).id == imported.id


def test_whiteouts_and_opaque_directories(tmp_path: Path) -> None:
    lower = layer(
        [
            ("dir", "a", b""),
            ("file", "a/keep", "k"),
            ("file", "a/gone", "g"),
            ("dir", "d", b""),
            ("file", "d/old", "o"),
            ("dir", "d/sub", b""),
            ("file", "top", "t"),
        ]
    )
    upper = layer(
        [
            ("file", "a/.wh.gone", b""),
            ("file", ".wh.top", b""),
            ("file", "d/new", "n"),
            ("file", "d/.wh..wh..opq", b""),
        ]
    )
    import_image(tmp_path / "root", write_layout(tmp_path / "layout", [lower, upper]))
    image = LocalImages(tmp_path / "root").find("localhost/test/image:1")
    assert image is not None
    root = image.rootfs
    assert sorted(p.name for p in (root / "a").iterdir()) == ["keep"]
    assert sorted(p.name for p in (root / "d").iterdir()) == ["new"]
    assert not (root / "top").exists()
    assert not list(root.rglob(".wh.*"))


def test_a_corrupted_blob_is_refused(tmp_path: Path) -> None:
    layout = write_layout(tmp_path / "layout", [layer([("file", "f", "content")])])
    blobs = sorted((layout / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    for blob in blobs:
        if blob.read_bytes().startswith(b"f\x00") or b"content" in blob.read_bytes():
            data = bytearray(blob.read_bytes())
            data[data.index(b"content")] = ord("C")
            blob.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="corrupted"):
        import_image(tmp_path / "root", layout)
    assert LocalImages(tmp_path / "root").list() == []
    assert [p.name for p in (tmp_path / "root" / "images").iterdir() if p.is_dir()] == []


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("file", "../evil", "x")], "escapes the rootfs"),
        ([("file", "a/../../evil", "x")], "escapes the rootfs"),
        ([("file", "/abs", "x")], "absolute path"),
        ([("file", "f", "x"), ("hardlink", "h", "../../etc/passwd")], "escapes the rootfs"),
    ],
)
def test_paths_leaving_the_rootfs_are_refused(
    tmp_path: Path, entries: list[Entry], message: str
) -> None:
    layout = write_layout(tmp_path / "layout", [layer(entries)])
    with pytest.raises(ImageError, match=message):
        import_image(tmp_path / "root", layout)
    assert not (tmp_path / "evil").exists()
    assert LocalImages(tmp_path / "root").list() == []


def test_symlinks_are_followed_inside_the_rootfs_only(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    layers = [
        layer([("symlink", "abs", str(outside)), ("symlink", "rel", "../../../../../..")]),
        layer([("file", "abs/planted", "x"), ("file", "rel/tmp/planted", "y")]),
    ]
    import_image(tmp_path / "root", write_layout(tmp_path / "layout", layers))
    image = LocalImages(tmp_path / "root").find("localhost/test/image:1")
    assert image is not None
    assert list(outside.iterdir()) == []
    # `abs` -> <rootfs><outside>, `rel` -> <rootfs>/: both resolved as if chrooted.
    assert (image.rootfs / str(outside).lstrip("/") / "planted").read_text() == "x"
    assert (image.rootfs / "tmp" / "planted").read_text() == "y"


def test_an_archive_that_is_not_one(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(ImageError):
        import_image(tmp_path / "root", junk)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageError, match="oci-layout missing"):
        import_image(tmp_path / "root", empty)
