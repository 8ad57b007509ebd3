"""The VM runtime's image store: disk images and kernel images, imported or downloaded once.

Layout under ``<root_dir>/images/``: one directory per image, named by the hex sha256 of
its main file (the disk, or the kernel), holding that file (``disk`` or ``kernel``), the
``initrd`` of a kernel image, and ``image.json`` (written last: a directory without it is
an incomplete import and ignored). ``index.json`` maps names to image ids.

Guarantees:

* An image's id is ``sha256:<hex>`` of its main file's content, checked while copying.
* A disk's format (qcow2 or raw) is detected with ``qemu-img info`` when installed, else
  from the qcow2 magic; a qcow2 image with a backing file is refused (it is not self-
  contained).
* The index is written atomically (temporary file + rename) under a lock file, so an
  import may run while a runtime reads the store: `VmImages` re-reads it when it changed.
* An http(s) URL given to `pull` is downloaded once (name = the URL); a ``#sha256=<hex>``
  fragment is checked against the content and a mismatch stores nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from arktos_lite.runtime import _errors as errors

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
_QCOW2_MAGIC = b"QFI\xfb"
_DOWNLOAD_TIMEOUT = 60.0


class ImageKind(enum.StrEnum):
    DISK = "disk"
    KERNEL = "kernel"


class ImageError(ValueError):
    """A file that cannot be imported as a VM image."""


@dataclasses.dataclass(frozen=True, slots=True)
class VmImage:
    """One image in the store."""

    id: str  # "sha256:<hex>"
    names: tuple[str, ...]
    kind: ImageKind
    # The disk's format ("qcow2" or "raw"); "" for a kernel image.
    format: str
    size: int
    directory: Path
    cmdline: str = ""
    has_initrd: bool = False
    source: str = ""

    @property
    def disk(self) -> Path:
        return self.directory / "disk"

    @property
    def kernel(self) -> Path:
        return self.directory / "kernel"

    @property
    def initrd(self) -> Path | None:
        return self.directory / "initrd" if self.has_initrd else None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "format": self.format,
            "size": self.size,
            "cmdline": self.cmdline,
            "has_initrd": self.has_initrd,
            "source": self.source,
        }


def images_dir(root_dir: Path) -> Path:
    return root_dir / "images"


def detect_format(path: Path) -> str:
    """ "qcow2" or "raw"; ImageError for a qcow2 image that needs a backing file."""
    if shutil.which("qemu-img") is not None:
        result = subprocess.run(
            ["qemu-img", "info", "--output=json", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ImageError(f"qemu-img cannot read {path}: {result.stderr.strip()}")
        info = json.loads(result.stdout)
        if info.get("backing-filename"):
            raise ImageError(
                f"{path} is a qcow2 overlay of {info['backing-filename']}: import a "
                "self-contained image (qemu-img convert)"
            )
        fmt = str(info.get("format", "raw"))
        if fmt not in ("qcow2", "raw"):
            raise ImageError(f"{path} is a {fmt} image; only qcow2 and raw are supported")
        return fmt
    with open(path, "rb") as f:
        return "qcow2" if f.read(4) == _QCOW2_MAGIC else "raw"


def _copy_hashed(src: IO[bytes], dst: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(dst, "wb") as out:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@contextlib.contextmanager
def _index_lock(store: Path) -> Iterator[None]:
    store.mkdir(parents=True, exist_ok=True)
    with open(store / "index.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read_index(store: Path) -> dict[str, str]:
    try:
        data = json.loads((store / "index.json").read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_index(store: Path, index: dict[str, str]) -> None:
    tmp = store / f"index.json.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
    os.replace(tmp, store / "index.json")


def _store_files(
    root_dir: Path,
    *,
    main: IO[bytes],
    name: str,
    kind: ImageKind,
    initrd: Path | None,
    cmdline: str,
    source: str,
    expect_sha256: str = "",
) -> VmImage:
    if not name:
        raise ImageError("a VM image needs a name")
    store = images_dir(root_dir)
    store.mkdir(parents=True, exist_ok=True)
    staging = store / f".import-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        main_name = "disk" if kind is ImageKind.DISK else "kernel"
        hexdigest, size = _copy_hashed(main, staging / main_name)
        if expect_sha256 and hexdigest != expect_sha256.lower():
            raise ImageError(f"{source}: sha256 is {hexdigest}, expected {expect_sha256}")
        fmt = detect_format(staging / "disk") if kind is ImageKind.DISK else ""
        if initrd is not None:
            with open(initrd, "rb") as f:
                size += _copy_hashed(f, staging / "initrd")[1]
        image = VmImage(
            id=f"sha256:{hexdigest}",
            names=(name,),
            kind=kind,
            format=fmt,
            size=size,
            directory=store / hexdigest,
            cmdline=cmdline,
            has_initrd=initrd is not None,
            source=source,
        )
        (staging / "image.json").write_text(json.dumps(image.to_json()))
        with _index_lock(store):
            if not (store / hexdigest / "image.json").exists():
                shutil.rmtree(store / hexdigest, ignore_errors=True)
                os.replace(staging, store / hexdigest)
            index = _read_index(store)
            index[name] = image.id
            _write_index(store, index)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("VM image %s stored as %s (%s)", name, image.id, kind.value)
    return image


def import_vm_image(
    root_dir: Path,
    path: Path,
    *,
    name: str,
    kind: ImageKind | str = ImageKind.DISK,
    initrd: Path | None = None,
    cmdline: str = "",
) -> VmImage:
    """Copy a disk image (qcow2/raw) or a kernel (+ initrd, cmdline) into the store of the
    VM runtime whose root is `root_dir`, under `name`. ImageError when it cannot be."""
    kind = ImageKind(kind)
    if kind is ImageKind.DISK and (initrd is not None or cmdline):
        raise ImageError("initrd and cmdline belong to kernel images")
    for p in (path, initrd):
        if p is not None and not Path(p).is_file():
            raise ImageError(f"{p} is not a file")
    with open(path, "rb") as f:
        return _store_files(
            root_dir,
            main=f,
            name=name,
            kind=kind,
            initrd=Path(initrd) if initrd is not None else None,
            cmdline=cmdline,
            source=str(Path(path).resolve()),
        )


def is_url(ref: str) -> bool:
    return ref.startswith(("http://", "https://"))


class VmImages:
    """The store as one runtime reads it. Thread-safe; re-reads the index when it changed."""

    def __init__(self, root_dir: Path) -> None:
        self.root_dir = root_dir
        self.store = images_dir(root_dir)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._index: dict[str, str] = {}

    def _refresh(self) -> dict[str, str]:
        try:
            st = (self.store / "index.json").stat()
            stamp = (st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._index = _read_index(self.store)
                self._stamp = stamp
            return dict(self._index)

    def _load(self, image_id: str, names: tuple[str, ...]) -> VmImage | None:
        hexdigest = image_id.removeprefix("sha256:")
        directory = self.store / hexdigest
        try:
            data = json.loads((directory / "image.json").read_text())
        except (OSError, ValueError):
            return None
        return VmImage(
            id=image_id,
            names=names,
            kind=ImageKind(data.get("kind", "disk")),
            format=str(data.get("format", "")),
            size=int(data.get("size", 0)),
            directory=directory,
            cmdline=str(data.get("cmdline", "")),
            has_initrd=bool(data.get("has_initrd", False)),
            source=str(data.get("source", "")),
        )

    def list(self) -> list[VmImage]:
        index = self._refresh()
        by_id: dict[str, list[str]] = {}
        for name, image_id in sorted(index.items()):
            by_id.setdefault(image_id, []).append(name)
        out = []
        for image_id, names in by_id.items():
            image = self._load(image_id, tuple(names))
            if image is not None:
                out.append(image)
        return out

    def find(self, ref: str) -> VmImage | None:
        """By name, by id, or by a URL already downloaded."""
        if not ref:
            return None
        index = self._refresh()
        if ref in index:
            image_id = index[ref]
        elif ref.startswith("sha256:") and ref in index.values():
            image_id = ref
        else:
            return None
        names = tuple(sorted(n for n, i in index.items() if i == image_id))
        return self._load(image_id, names)

    def pull(self, ref: str) -> VmImage:
        """A stored image, or an http(s) URL downloaded into the store once."""
        if not ref:
            raise errors.InvalidArgument("an image reference is required")
        found = self.find(ref)
        if found is not None:
            return found
        if not is_url(ref):
            raise errors.NotFound(
                f"VM image {ref!r} is not in the store; import it with "
                "`arktos image import FILE --name NAME` or pull an http(s) URL"
            )
        url, _, fragment = ref.partition("#")
        expect = fragment.removeprefix("sha256=") if fragment.startswith("sha256=") else ""
        log.info("downloading VM image %s", url)
        try:
            with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as response:
                return _store_files(
                    self.root_dir,
                    main=response,
                    name=ref,
                    kind=ImageKind.DISK,
                    initrd=None,
                    cmdline="",
                    source=url,
                    expect_sha256=expect,
                )
        except ImageError as e:
            raise errors.InvalidArgument(str(e)) from e
        except OSError as e:
            raise errors.Unavailable(f"cannot download {url}: {e}") from e

    def remove(self, ref: str, *, in_use: bool) -> None:
        """Forget every name of the image; its files stay while a VM uses them."""
        found = self.find(ref)
        if found is None:
            return
        with _index_lock(self.store):
            index = _read_index(self.store)
            index = {n: i for n, i in index.items() if i != found.id}
            _write_index(self.store, index)
        if not in_use:
            shutil.rmtree(found.directory, ignore_errors=True)
