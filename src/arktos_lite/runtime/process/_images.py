"""Nominal images: references are recorded, and may name a program.

Images imported into the runtime's store (`_store`, `arktos image import`) are real. Any
other reference names nothing: the process runtime never downloads, so pulling one
fetches nothing and succeeds, its containers run host programs, and the reference
is remembered (in `<root>/images.json`) so ImageStatus and ListImages answer for it as a
real runtime would. `program_for` says what a container without a command runs: its first
arg, or the image's base name (`docker.io/library/busybox:1.36` -> `busybox`) when that is
a program on the container's PATH.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

from arktos_lite.runtime import _errors as errors
from arktos_lite.runtime.cri import api_pb2 as cri

NOTE = (
    "process runtime: no image content is pulled; a container runs its command and args "
    "on the host, or with neither the image's base name when it is a program on PATH"
)


def image_id(ref: str) -> str:
    return "sha256:" + hashlib.sha256(ref.encode()).hexdigest()


def base_name(ref: str) -> str:
    """The repository's last path element without tag or digest."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def program_for(*, command: Sequence[str], args: Sequence[str], image: str, path: str) -> list[str]:
    """The argv a container runs; InvalidArgument when there is nothing to run."""
    if command:
        return [*command, *args]
    if args:
        return list(args)
    name = base_name(image)
    if name and shutil.which(name, path=path):
        return [name]
    raise errors.InvalidArgument(
        f"the process runtime cannot run image {image!r}: the container has no command or "
        f"args, and {name!r} is not a program on PATH {path!r}"
    )


class ImageStore:
    """The references pulled so far. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._refs: list[str] = []
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(path.read_text())
            self._refs = [str(r) for r in loaded]

    def _save(self) -> None:
        tmp = self._path.with_name(self._path.name + ".tmp")
        tmp.write_text(json.dumps(self._refs))
        os.replace(tmp, self._path)

    def pull(self, ref: str) -> str:
        if not ref:
            raise errors.InvalidArgument("an image reference is required")
        with self._lock:
            if ref not in self._refs:
                self._refs.append(ref)
                self._save()
        return image_id(ref)

    def _find(self, ref: str) -> str | None:
        for r in self._refs:
            if ref in (r, image_id(r)):
                return r
        return None

    def status(self, ref: str) -> cri.Image | None:
        with self._lock:
            found = self._find(ref)
        return None if found is None else _image(found)

    def list(self) -> list[cri.Image]:
        with self._lock:
            return [_image(r) for r in self._refs]

    def remove(self, ref: str) -> None:
        with self._lock:
            found = self._find(ref)
            if found is not None:
                self._refs.remove(found)
                self._save()


def _image(ref: str) -> cri.Image:
    return cri.Image(
        id=image_id(ref),
        repo_tags=[ref],
        size=0,
        spec=cri.ImageSpec(image=ref, annotations={"arktos.futurewei.com/note": NOTE}),
    )
