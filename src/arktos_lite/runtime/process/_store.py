"""The process runtime's image store: OCI images imported from archives, unpacked on disk.

`import_image(root_dir, archive)` reads an OCI image layout (a tar archive, possibly
gzipped, or an unpacked directory: ``oci-layout``, ``index.json``, ``blobs/sha256/…``),
and stores the image under ``<root_dir>/images/<config digest hex>/``: ``rootfs/`` (the
layers applied in order), ``config.json`` (the image config blob) and ``image.json``
(written last: an image directory without it is incomplete and ignored).
``<root_dir>/images/index.json`` maps names to image ids (the config digest).

Guarantees:

* Every blob read (manifest, config, layers) is checked against its digest and size
  before anything is unpacked, and each layer's uncompressed content against the
  config's ``diff_ids``; a mismatch raises `ImageError` and leaves the store unchanged.
* A layer entry with an absolute path or a ``..`` component is refused; entries are
  written through symlinks only as resolved inside the rootfs (never outside it).
  Whiteouts (``.wh.<name>``) and opaque directories (``.wh..wh..opq``) are applied as the
  OCI spec says. As root, files keep the owners the layer gives them.
* The index is written atomically (temporary file + rename) under an exclusive lock, so
  imports may run while a runtime reads the store: `LocalImages` re-reads the index when
  it changed on disk.
* Names are normalized as containerd does: ``busybox`` -> ``docker.io/library/busybox:latest``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import gzip
import hashlib
import io
import json
import logging
import os
import platform
import re
import shutil
import stat
import tarfile
import threading
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

DEFAULT_DOMAIN = "docker.io"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
_INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_HEX = re.compile(r"[0-9a-f]{64}")
_COPY_CHUNK = 1024 * 1024
# Symlinks followed while resolving one path, as the kernel's MAXSYMLINKS.
_MAX_LINKS = 40


class ImageError(ValueError):
    """An archive that cannot be imported (malformed, corrupted or unsafe)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ImportedImage:
    """What `import_image` stored: the image's name ("" when it has none), its manifest
    digest, its size (the content's bytes) and its id (the config digest)."""

    name: str
    digest: str
    size: int
    id: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class ImageConfig:
    """The parts of an image config a container's process is built from."""

    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""

    @classmethod
    def from_blob(cls, data: dict[str, Any]) -> ImageConfig:
        c = data.get("config") or {}

        def strings(key: str) -> tuple[str, ...]:
            value = c.get(key) or ()
            return tuple(str(v) for v in value)

        return cls(
            env=strings("Env"),
            entrypoint=strings("Entrypoint"),
            cmd=strings("Cmd"),
            working_dir=str(c.get("WorkingDir") or ""),
            user=str(c.get("User") or ""),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class StoredImage:
    """One image in the store."""

    id: str  # "sha256:<config digest>"
    names: tuple[str, ...]
    manifest_digest: str
    size: int
    directory: Path
    config: ImageConfig

    @property
    def rootfs(self) -> Path:
        return self.directory / "rootfs"


# ---------------------------------------------------------------------------- names


def normalize(name: str) -> str:
    """A reference as containerd spells it (ValueError when it is not one)."""
    ref = name.strip()
    if not ref or any(c.isspace() for c in ref):
        raise ValueError(f"invalid image reference {name!r}")
    repo, at, digest = ref.partition("@")
    tag = ""
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = repo.rsplit(":", 1)
    first, slash, rest = repo.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, repo
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = "library/" + path
    if not path or path != path.lower() or "//" in path or path.endswith("/"):
        raise ValueError(f"invalid image reference {name!r}: repository must be lowercase")
    out = f"{domain}/{path}"
    if tag:
        out += ":" + tag
    if at:
        if not digest.startswith("sha256:") or not _HEX.fullmatch(digest[7:]):
            raise ValueError(f"invalid image reference {name!r}: bad digest")
        return out + "@" + digest
    return out if tag else out + ":latest"


def _repository(name: str) -> str:
    """`name` without tag or digest."""
    repo = name.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    return repo.rsplit(":", 1)[0] if ":" in last else repo


# ---------------------------------------------------------------------------- sources


class _Source:
    """Blobs of an OCI layout, from a directory or a tar archive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        if path.is_dir():
            return
        try:
            self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 (closed by close())
        except (tarfile.TarError, OSError) as e:
            raise ImageError(f"{path} is neither an OCI layout directory nor a tar: {e}") from e
        for m in self._tar.getmembers():
            name = m.name
            while name.startswith("./"):
                name = name[2:]
            if m.isfile():
                self._members[name] = m

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()

    def open(self, name: str) -> IO[bytes]:
        if self._tar is None:
            try:
                return open(self.path / name, "rb")
            except FileNotFoundError:
                raise ImageError(f"{name} missing from {self.path}") from None
        member = self._members.get(name)
        f = self._tar.extractfile(member) if member is not None else None
        if f is None:
            raise ImageError(f"{name} missing from {self.path}")
        return f

    def read_json(self, name: str) -> dict[str, Any]:
        with self.open(name) as f:
            return _parse(f.read(), name)

    def blob_name(self, digest: str) -> str:
        algorithm, _, hexpart = digest.partition(":")
        if algorithm != "sha256" or not _HEX.fullmatch(hexpart):
            raise ImageError(f"unsupported or malformed digest {digest!r}")
        return f"blobs/sha256/{hexpart}"

    def verify(self, descriptor: dict[str, Any]) -> None:
        """Check a blob against its descriptor's digest and size (streaming)."""
        digest = str(descriptor.get("digest", ""))
        h = hashlib.sha256()
        size = 0
        with self.open(self.blob_name(digest)) as f:
            while chunk := f.read(_COPY_CHUNK):
                h.update(chunk)
                size += len(chunk)
        if "sha256:" + h.hexdigest() != digest:
            raise ImageError(f"blob {digest} is corrupted (its content has another digest)")
        expected = descriptor.get("size")
        if isinstance(expected, int) and expected != size:
            raise ImageError(f"blob {digest} has {size} bytes, the descriptor says {expected}")

    def read_blob_json(self, descriptor: dict[str, Any]) -> dict[str, Any]:
        self.verify(descriptor)
        digest = str(descriptor["digest"])
        with self.open(self.blob_name(digest)) as f:
            return _parse(f.read(), digest)


def _parse(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as e:
        raise ImageError(f"{what} is not JSON: {e}") from e
    if not isinstance(value, dict):
        raise ImageError(f"{what} is not a JSON object")
    return value


def _architecture() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine
    )


def _annotated_name(descriptor: dict[str, Any]) -> str:
    annotations = descriptor.get("annotations") or {}
    name = str(annotations.get(ANNOTATION_CONTAINERD_NAME, ""))
    if name:
        return name
    ref = str(annotations.get(ANNOTATION_REF_NAME, ""))
    # The OCI ref name may be only a tag ("latest"): that names no repository.
    return ref if "/" in ref or ":" in ref else ""


def _pick_manifest(
    source: _Source, index: dict[str, Any], name: str | None
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(manifest descriptor, manifest, annotated name) for this platform (and name)."""
    manifests = [m for m in index.get("manifests") or [] if isinstance(m, dict)]
    if not manifests:
        raise ImageError("the archive's index.json lists no manifests")
    if len(manifests) > 1 and name:
        wanted = normalize(name)
        named = [m for m in manifests if _normalized_or_empty(_annotated_name(m)) == wanted]
        manifests = named or manifests
    if len(manifests) > 1:
        platformed = [m for m in manifests if _platform_ok(m)]
        manifests = platformed or manifests
    if len(manifests) > 1:
        raise ImageError(f"the archive holds {len(manifests)} images: pass the name of one")
    descriptor = manifests[0]
    annotated = _annotated_name(descriptor)
    manifest = source.read_blob_json(descriptor)
    for _ in range(4):
        if descriptor.get("mediaType") not in _INDEX_TYPES and "manifests" not in manifest:
            return descriptor, manifest, annotated
        children = [m for m in manifest.get("manifests") or [] if isinstance(m, dict)]
        matching = [m for m in children if _platform_ok(m)]
        if not matching:
            raise ImageError(f"no manifest for linux/{_architecture()} in the image index")
        descriptor = matching[0]
        manifest = source.read_blob_json(descriptor)
    raise ImageError("image indexes nested too deeply")


def _normalized_or_empty(name: str) -> str:
    try:
        return normalize(name) if name else ""
    except ValueError:
        return ""


def _platform_ok(descriptor: dict[str, Any]) -> bool:
    p = descriptor.get("platform")
    if not isinstance(p, dict):
        return True
    return p.get("os", "linux") == "linux" and p.get("architecture", "") in ("", _architecture())


# ---------------------------------------------------------------------------- layers


class _HashingReader(io.RawIOBase):
    """Passes reads through while hashing them (for a layer's diff id)."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        self.hash.update(data)
        return len(data)


def _clean_name(name: str) -> str:
    """A layer entry's path relative to the rootfs; ImageError when it is unsafe."""
    if name.startswith("/"):
        raise ImageError(f"layer entry {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ImageError(f"layer entry {name!r} escapes the rootfs with '..'")
    return "/".join(parts)


def _resolve(root: Path, rel: str) -> Path:
    """`rel` inside `root`, following symlinks as if `root` were `/` (never leaving it)."""
    pending = [p for p in rel.split("/") if p not in ("", ".")]
    pending.reverse()
    current: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if current:
                current.pop()
            continue
        candidate = root.joinpath(*current, part)
        if candidate.is_symlink():
            links += 1
            if links > _MAX_LINKS:
                raise ImageError(f"too many levels of symlinks resolving {rel!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = []
            more = [p for p in target.split("/") if p not in ("", ".")]
            pending.extend(reversed(more))
            continue
        current.append(part)
    return root.joinpath(*current)


def resolve_in(root: Path, path: str) -> Path:
    """`path` (absolute or relative) inside `root`, symlinks resolved within `root`."""
    return _resolve(root, path.lstrip("/"))


def _remove(path: Path) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        path.unlink()


class _LayerWriter:
    """Applies one layer's entries to a rootfs (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.as_root = os.geteuid() == 0
        self.written: set[Path] = set()
        self.dirs: list[tuple[Path, tarfile.TarInfo]] = []
        self.opaque: list[Path] = []

    def parent_of(self, rel: str) -> tuple[Path, str]:
        head, _, base = rel.rpartition("/")
        parent = _resolve(self.root, head) if head else self.root
        if not parent.is_dir():
            _remove(parent)
            parent.mkdir(mode=0o755, parents=True)
        return parent, base

    def apply(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        rel = _clean_name(member.name)
        if not rel:
            return  # the root itself
        parent, base = self.parent_of(rel)
        if base == _OPAQUE:
            self.opaque.append(parent)
            return
        if base.startswith(_WHITEOUT):
            _remove(parent / base[len(_WHITEOUT) :])
            return
        target = parent / base
        self.written.add(target)
        if member.isdir():
            if target.is_symlink() or (target.exists() and not target.is_dir()):
                _remove(target)
            target.mkdir(mode=0o700, exist_ok=True)
            self.dirs.append((target, member))
            return
        _remove(target)
        if member.isfile():
            source = tar.extractfile(member)
            assert source is not None
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(source, out, _COPY_CHUNK)
        elif member.issym():
            os.symlink(member.linkname, target)
        elif member.islnk():
            source_path = _resolve(self.root, _clean_name(member.linkname))
            if not os.path.lexists(source_path):
                raise ImageError(f"hard link {rel!r} to missing {member.linkname!r}")
            os.link(source_path, target, follow_symlinks=False)
            return  # a hard link shares its source's attributes
        elif member.ischr() or member.isblk() or member.isfifo():
            if not self.as_root and not member.isfifo():
                log.debug("skipping device %s: not root", rel)
                self.written.discard(target)
                return
            kind = (
                stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
            )
            os.mknod(target, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        else:
            log.debug("skipping %s: unsupported entry type %r", rel, member.type)
            self.written.discard(target)
            return
        self._attributes(target, member)

    def _attributes(self, target: Path, member: tarfile.TarInfo) -> None:
        if self.as_root:
            os.lchown(target, member.uid, member.gid)
        if not member.issym():
            # After chown, which clears set-id bits.
            os.chmod(target, member.mode & 0o7777)
        os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)

    def finish(self) -> None:
        for directory in self.opaque:
            # Opaque: what lower layers put in the directory is hidden; this layer's stays.
            for child in list(directory.iterdir()):
                if child not in self.written and not any(
                    w.is_relative_to(child) for w in self.written
                ):
                    _remove(child)
        # Directories last (as tar does), so a read-only one did not block its entries.
        for target, member in reversed(self.dirs):
            self._attributes(target, member)


def _open_layer(raw: IO[bytes], media_type: str) -> IO[bytes]:
    head = raw.read(4)
    raw.seek(0)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if head == b"\x28\xb5\x2f\xfd" or media_type.endswith("+zstd"):
        raise ImageError("zstd-compressed layers are not supported; use gzip or plain tar")
    return raw


def _apply_layer(source: _Source, descriptor: dict[str, Any], rootfs: Path, diff_id: str) -> None:
    media_type = str(descriptor.get("mediaType", ""))
    with source.open(source.blob_name(str(descriptor["digest"]))) as raw:
        hashing = _HashingReader(_open_layer(raw, media_type))
        reader = io.BufferedReader(hashing, _COPY_CHUNK)
        writer = _LayerWriter(rootfs)
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                for member in tar:
                    writer.apply(member, tar)
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise ImageError(f"layer {descriptor['digest']} is not a valid tar: {e}") from e
        writer.finish()
        # What the buffer and tarfile did not consume (end-of-archive padding) counts too.
        while reader.read(_COPY_CHUNK):
            pass
        computed = "sha256:" + hashing.hash.hexdigest()
    if diff_id and computed != diff_id:
        raise ImageError(
            f"layer {descriptor['digest']} unpacks to {computed}, the config says {diff_id}"
        )


# ---------------------------------------------------------------------------- the store


def images_dir(root_dir: Path) -> Path:
    return root_dir / "images"


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read_index(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / "index.json").read_text())
    except FileNotFoundError:
        data = {}
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable image index in %s: %s", directory, e)
        data = {}
    names = data.get("names") if isinstance(data, dict) else None
    return {"names": dict(names) if isinstance(names, dict) else {}}


def _write_index(directory: Path, index: dict[str, Any]) -> None:
    tmp = directory / f".index.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
    os.replace(tmp, directory / "index.json")


def import_image(root_dir: Path, archive: Path, *, name: str | None = None) -> ImportedImage:
    """Import an OCI image archive or layout directory into `<root_dir>/images/` (blocking).

    Raises `ImageError` (a ValueError) for an archive that is malformed, corrupted or
    unsafe, and ValueError for an invalid `name`.
    """
    wanted = normalize(name) if name else None
    directory = images_dir(root_dir)
    directory.mkdir(parents=True, exist_ok=True)
    source = _Source(archive)
    try:
        with source.open("oci-layout") as marker:
            if not marker.read(1 << 16):
                raise ImageError("oci-layout is empty")
        index = source.read_json("index.json")
        descriptor, manifest, annotated = _pick_manifest(source, index, wanted)
        config_descriptor = manifest.get("config")
        layers = manifest.get("layers") or []
        if not isinstance(config_descriptor, dict) or not isinstance(layers, list):
            raise ImageError(f"manifest {descriptor['digest']} has no config or layers")
        config_blob = source.read_blob_json(config_descriptor)
        for layer in layers:
            source.verify(layer)
        diff_ids = list((config_blob.get("rootfs") or {}).get("diff_ids") or [])
        if diff_ids and len(diff_ids) != len(layers):
            raise ImageError(f"config lists {len(diff_ids)} diff ids for {len(layers)} layers")
        image_id = str(config_descriptor["digest"])
        final = directory / image_id.partition(":")[2]
        size = int(config_descriptor.get("size") or 0) + sum(
            int(layer.get("size") or 0) for layer in layers
        )
        if not (final / "image.json").exists():
            tmp = directory / f".import-{uuid.uuid4().hex}"
            try:
                rootfs = tmp / "rootfs"
                rootfs.mkdir(parents=True, mode=0o755)
                for i, layer in enumerate(layers):
                    _apply_layer(source, layer, rootfs, str(diff_ids[i]) if diff_ids else "")
                (tmp / "config.json").write_text(json.dumps(config_blob))
                (tmp / "image.json").write_text(
                    json.dumps({"manifest_digest": descriptor["digest"], "size": size})
                )
                with _locked(directory):
                    if (final / "image.json").exists():
                        pass  # imported meanwhile by someone else
                    else:
                        _remove(final)  # an incomplete leftover
                        os.rename(tmp, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        source.close()
    image_name = wanted or _normalized_or_empty(annotated)
    if image_name:
        with _locked(directory):
            index_data = _read_index(directory)
            index_data["names"][image_name] = image_id
            _write_index(directory, index_data)
    log.info("imported image %s (%s) from %s", image_name or "<unnamed>", image_id, archive)
    return ImportedImage(name=image_name, digest=str(descriptor["digest"]), size=size, id=image_id)


class LocalImages:
    """The images in one store, as a runtime sees them. Thread-safe.

    The index is re-read whenever it changed on disk (an import by `arktos image import`
    while the runtime runs is seen at the next lookup).
    """

    def __init__(self, root_dir: Path) -> None:
        self.directory = images_dir(root_dir)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._loaded = False
        self._images: dict[str, StoredImage] = {}

    def _refresh(self) -> None:
        """Reload the index if it changed (lock held)."""
        try:
            st = (self.directory / "index.json").stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if self._loaded and stamp == self._stamp:
            return
        self._stamp = stamp
        self._loaded = True
        names: dict[str, list[str]] = {}
        for n, image_id in _read_index(self.directory)["names"].items():
            names.setdefault(str(image_id), []).append(str(n))
        images: dict[str, StoredImage] = {}
        for image_id, image_names in names.items():
            image = self._load(image_id, tuple(sorted(image_names)))
            if image is not None:
                images[image_id] = image
        self._images = images

    def _load(self, image_id: str, names: tuple[str, ...]) -> StoredImage | None:
        d = self.directory / image_id.partition(":")[2]
        try:
            meta = json.loads((d / "image.json").read_text())
            config = json.loads((d / "config.json").read_text())
        except (OSError, ValueError):
            return None
        return StoredImage(
            id=image_id,
            names=names,
            manifest_digest=str(meta.get("manifest_digest", "")),
            size=int(meta.get("size", 0)),
            directory=d,
            config=ImageConfig.from_blob(config),
        )

    def list(self) -> list[StoredImage]:
        with self._lock:
            self._refresh()
            return list(self._images.values())

    def find(self, ref: str) -> StoredImage | None:
        """The image a reference names: by name, id (full or hex) or manifest digest."""
        if not ref:
            return None
        with self._lock:
            self._refresh()
            return self._match(ref)

    def _match(self, ref: str) -> StoredImage | None:
        if ref in self._images:
            return self._images[ref]
        if _HEX.fullmatch(ref) and "sha256:" + ref in self._images:
            return self._images["sha256:" + ref]
        normalized = _normalized_or_empty(ref)
        for image in self._images.values():
            if normalized in image.names or ref == image.manifest_digest:
                return image
            if "@" in normalized:
                repo, _, digest = normalized.partition("@")
                if digest == image.manifest_digest and any(
                    _repository(n) == _repository(repo) for n in image.names
                ):
                    return image
        return None

    def rootfs_of(self, image_id: str) -> Path | None:
        """The rootfs of an image by id, even one removed from the index (kept in use)."""
        hexpart = image_id.partition(":")[2]
        d = self.directory / hexpart
        if not _HEX.fullmatch(hexpart) or not (d / "image.json").exists():
            return None
        return d / "rootfs"

    def remove(self, ref: str, *, keep_content: bool = False) -> StoredImage | None:
        """Forget an image's names; delete its files unless `keep_content` (in use)."""
        with self._lock:
            self._refresh()
            image = self._match(ref)
            if image is None:
                return None
            with _locked(self.directory):
                index = _read_index(self.directory)
                index["names"] = {n: i for n, i in index["names"].items() if i != image.id}
                _write_index(self.directory, index)
                if not keep_content:
                    shutil.rmtree(image.directory, ignore_errors=True)
            self._loaded = False
            self._images.pop(image.id, None)
            return image


def repo_digests(image: StoredImage) -> list[str]:
    return sorted({f"{_repository(n)}@{image.manifest_digest}" for n in image.names})
