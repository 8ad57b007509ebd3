"""Container images without a registry: OCI image archives of a static busybox, built locally.

`build_busybox_image` writes an OCI image layout as one tar archive (``oci-layout``,
``index.json``, ``blobs/sha256/…``) holding a single-layer image: ``/bin/busybox``, a
symlink per common applet (``sh``, ``echo``, ``sleep``, ``wget``, …), a minimal ``/etc``
and the usual empty mount points. ``ctr images import`` (containerd) accepts it and names
the image from the index's ``io.containerd.image.name`` annotation, e.g.
``docker.io/library/busybox:latest``; the process runtime can unpack it for runc.
`build_pause_image` writes the same layer with an entrypoint that blocks forever: the
sandbox ("pause") image containerd's CRI plugin needs for every pod, so no registry is
needed at all.

They serve the project's tests (a real containerd on a machine with no network) and
``arktos image import``.

Guarantees: the archive is a pure function of the busybox binary, the image name and the
entrypoint/command: fixed mtimes, owners and ordering, an uncompressed layer, so the
image's digest is stable from one build to the next. The archive is written to a
temporary name and renamed, so a reader never sees half of one. A busybox that is not
statically linked is refused (`ValueError`): it could not run inside the image.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import platform
import struct
import tarfile
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "APPLETS",
    "BUSYBOX_IMAGE",
    "PAUSE_IMAGE",
    "ImageArchive",
    "build_busybox_image",
    "build_pause_image",
]

logger = logging.getLogger(__name__)

BUSYBOX_IMAGE = "docker.io/library/busybox:latest"
# A name of our own (not registry.k8s.io/pause) so nobody mistakes it for the real pause
# binary: it is busybox `sleep`, which does not reap zombies of a shared PID namespace.
PAUSE_IMAGE = "localhost/arktos/pause:busybox"

# The applets a workload or a test commonly calls; each becomes /bin/<name> -> busybox.
# A fixed list (rather than `busybox --list`) keeps the build free of running the binary.
APPLETS: tuple[str, ...] = (
    "ash", "awk", "base64", "basename", "cat", "chmod", "chown", "cp", "cut", "date",
    "dd", "df", "dirname", "du", "echo", "env", "expr", "false", "find", "grep", "head",
    "hostname", "id", "ifconfig", "ip", "kill", "ln", "ls", "md5sum", "mkdir", "mktemp",
    "mv", "nc", "netstat", "nslookup", "ping", "printenv", "printf", "ps", "pwd",
    "readlink", "rm", "rmdir", "sed", "seq", "sh", "sha256sum", "sleep", "sort", "stat",
    "tail", "tar", "tee", "test", "timeout", "top", "touch", "tr", "true", "uname",
    "uniq", "uptime", "vi", "watch", "wc", "wget", "which", "whoami", "xargs", "yes",
)  # fmt: skip

_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_EPOCH = "1970-01-01T00:00:00Z"
_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
# Uncompressed on purpose: gzip output depends on the zlib build, a plain tar does not.
_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
_ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
_ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"

_PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
_GROUP = "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"


@dataclasses.dataclass(frozen=True, slots=True)
class ImageArchive:
    """What was written: where, under which name, and the digests that identify it."""

    path: Path
    name: str
    manifest_digest: str  # "sha256:…", what `ctr images ls` and ImageStatus.repo_digests show
    config_digest: str  # "sha256:…", the image ID containerd's CRI plugin reports


def build_busybox_image(
    dest: Path, *, name: str = BUSYBOX_IMAGE, busybox: Path = Path("/bin/busybox")
) -> Path:
    """Write a busybox image (Cmd ``["sh"]``) as an OCI archive; return the archive's path.

    ``dest`` is the archive file, or an existing directory to write ``<image>.oci.tar`` in.
    """
    return build_image(dest, name=name, busybox=busybox, cmd=("sh",)).path


def build_pause_image(
    dest: Path, *, name: str = PAUSE_IMAGE, busybox: Path = Path("/bin/busybox")
) -> Path:
    """Write a sandbox image whose entrypoint blocks until killed; return the archive's path.

    containerd stops a sandbox's pause container with SIGKILL, so a PID 1 that ignores
    SIGTERM (as ``sleep`` does) is fine.
    """
    return build_image(
        dest, name=name, busybox=busybox, entrypoint=("/bin/busybox", "sleep", "2147483647")
    ).path


def build_image(
    dest: Path,
    *,
    name: str,
    busybox: Path = Path("/bin/busybox"),
    entrypoint: Sequence[str] = (),
    cmd: Sequence[str] = (),
) -> ImageArchive:
    """Write a single-layer busybox image with this entrypoint and command as an OCI archive."""
    if dest.is_dir():
        dest = dest / f"{_file_stem(name)}.oci.tar"
    binary = busybox.read_bytes()
    if not _is_static_elf(binary):
        # A dynamic busybox would fail inside the image with a baffling "no such file".
        raise ValueError(f"{busybox} is not a statically linked executable (busybox-static)")
    layer = _layer(binary)
    layer_digest = _digest(layer)
    container_config: dict[str, object] = {"Env": [_PATH], "WorkingDir": "/"}
    if entrypoint:
        container_config["Entrypoint"] = list(entrypoint)
    if cmd:
        container_config["Cmd"] = list(cmd)
    config = _json(
        {
            "architecture": _architecture(),
            "os": "linux",
            "created": _EPOCH,
            "config": container_config,
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "history": [{"created": _EPOCH, "created_by": "arktos-lite runtime._oci"}],
        }
    )
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": _OCI_MANIFEST,
            "config": {"mediaType": _OCI_CONFIG, "digest": _digest(config), "size": len(config)},
            "layers": [{"mediaType": _OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
        }
    )
    index = _json(
        {
            "schemaVersion": 2,
            "mediaType": _OCI_INDEX,
            "manifests": [
                {
                    "mediaType": _OCI_MANIFEST,
                    "digest": _digest(manifest),
                    "size": len(manifest),
                    "annotations": {
                        # containerd names the imported image from this one; other tools
                        # (skopeo, podman) read the OCI ref name, which holds only the tag.
                        _ANNOTATION_CONTAINERD_NAME: name,
                        _ANNOTATION_REF_NAME: _tag(name),
                    },
                }
            ],
        }
    )
    members: list[tuple[str, bytes]] = [
        ("oci-layout", _json({"imageLayoutVersion": "1.0.0"})),
        ("index.json", index),
    ]
    members += sorted((f"blobs/sha256/{_hex(blob)}", blob) for blob in (layer, config, manifest))

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        _add_dir(archive, "blobs", 0o755)
        _add_dir(archive, "blobs/sha256", 0o755)
        for member_name, data in members:
            _add_file(archive, member_name, data, 0o644)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial")
    partial.write_bytes(buffer.getvalue())
    os.replace(partial, dest)
    logger.debug("wrote image %s to %s", name, dest)
    return ImageArchive(
        path=dest, name=name, manifest_digest=_digest(manifest), config_digest=_digest(config)
    )


def _layer(busybox: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as layer:
        for directory, mode in (
            ("bin", 0o755),
            ("dev", 0o755),
            ("etc", 0o755),
            ("proc", 0o555),
            ("root", 0o700),
            ("sys", 0o555),
            ("tmp", 0o1777),
            ("usr", 0o755),
            ("usr/bin", 0o755),
            ("usr/sbin", 0o755),
            ("var", 0o755),
            ("var/run", 0o755),
        ):
            _add_dir(layer, directory, mode)
        _add_file(layer, "bin/busybox", busybox, 0o755)
        for applet in sorted(APPLETS):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            link.mode = 0o777
            layer.addfile(_fixed(link))
        _add_file(layer, "etc/passwd", _PASSWD.encode(), 0o644)
        _add_file(layer, "etc/group", _GROUP.encode(), 0o644)
    return buffer.getvalue()


def _is_static_elf(binary: bytes) -> bool:
    """Whether this is an ELF executable without a program interpreter (PT_INTERP)."""
    if binary[:4] != b"\x7fELF" or binary[4] not in (1, 2) or binary[5] not in (1, 2):
        return False
    order = "<" if binary[5] == 1 else ">"
    if binary[4] == 2:  # 64-bit
        (phoff,) = struct.unpack_from(order + "Q", binary, 0x20)
        phentsize, phnum = struct.unpack_from(order + "HH", binary, 0x36)
    else:
        (phoff,) = struct.unpack_from(order + "I", binary, 0x1C)
        phentsize, phnum = struct.unpack_from(order + "HH", binary, 0x2A)
    pt_interp = 3
    return all(
        struct.unpack_from(order + "I", binary, phoff + i * phentsize)[0] != pt_interp
        for i in range(phnum)
    )


def _add_dir(archive: tarfile.TarFile, name: str, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    archive.addfile(_fixed(info))


def _add_file(archive: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    archive.addfile(_fixed(info), io.BytesIO(data))


def _fixed(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _hex(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def _digest(blob: bytes) -> str:
    return f"sha256:{_hex(blob)}"


def _architecture() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine
    )


def _tag(name: str) -> str:
    """The tag of a reference (``latest`` when it has none, as registries assume)."""
    last = name.rsplit("/", 1)[-1].split("@", 1)[0]
    return last.split(":", 1)[1] if ":" in last else "latest"


def _file_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
