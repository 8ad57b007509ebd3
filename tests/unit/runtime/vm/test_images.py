"""The VM image store: imports, format detection, lookups, removal and URL pulls."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from arktos_lite import runtime
from arktos_lite.runtime.vm import ImageError, ImageKind, import_vm_image
from arktos_lite.runtime.vm._images import VmImages, detect_format

needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")


def _qcow2(path: Path, *, backing: Path | None = None) -> Path:
    args = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if backing is not None:
        args += ["-F", "raw", "-b", str(backing)]
    subprocess.run([*args, str(path), "8M"], check=True)
    return path


def test_import_raw_disk(tmp_path: Path) -> None:
    src = tmp_path / "disk.img"
    src.write_bytes(b"\1" * 4096)
    image = import_vm_image(tmp_path / "root", src, name="raw-disk")
    assert image.id == "sha256:" + hashlib.sha256(src.read_bytes()).hexdigest()
    assert (image.kind, image.format, image.size) == (ImageKind.DISK, "raw", 4096)
    assert image.disk.read_bytes() == src.read_bytes()
    store = VmImages(tmp_path / "root")
    found = store.find("raw-disk")
    assert found is not None
    assert found.id == image.id
    assert store.find(image.id) == found
    assert store.find("other") is None


@needs_qemu_img
def test_qcow2_detected_and_overlays_refused(tmp_path: Path) -> None:
    base = _qcow2(tmp_path / "base.qcow2")
    assert detect_format(base) == "qcow2"
    image = import_vm_image(tmp_path / "root", base, name="q")
    assert image.format == "qcow2"
    raw = tmp_path / "raw.img"
    raw.write_bytes(b"\0" * 4096)
    overlay = _qcow2(tmp_path / "overlay.qcow2", backing=raw)
    with pytest.raises(ImageError, match="overlay"):
        import_vm_image(tmp_path / "root", overlay, name="o")


def test_kernel_image(tmp_path: Path) -> None:
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"kernel")
    initrd = tmp_path / "initrd.gz"
    initrd.write_bytes(b"initrd")
    image = import_vm_image(
        tmp_path / "root", kernel, name="tiny", kind="kernel", initrd=initrd, cmdline="quiet"
    )
    assert image.kind is ImageKind.KERNEL
    assert image.kernel.read_bytes() == b"kernel"
    assert image.initrd is not None
    assert image.initrd.read_bytes() == b"initrd"
    found = VmImages(tmp_path / "root").find("tiny")
    assert found is not None
    assert (found.cmdline, found.has_initrd) == ("quiet", True)


def test_bad_imports(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not a file"):
        import_vm_image(tmp_path / "root", tmp_path / "missing", name="x")
    disk = tmp_path / "d"
    disk.write_bytes(b"x")
    with pytest.raises(ImageError, match="kernel images"):
        import_vm_image(tmp_path / "root", disk, name="x", cmdline="quiet")
    with pytest.raises(ImageError, match="needs a name"):
        import_vm_image(tmp_path / "root", disk, name="")


def test_two_names_one_image_and_removal(tmp_path: Path) -> None:
    disk = tmp_path / "d"
    disk.write_bytes(b"same")
    a = import_vm_image(tmp_path / "root", disk, name="a")
    import_vm_image(tmp_path / "root", disk, name="b")
    store = VmImages(tmp_path / "root")
    [listed] = store.list()
    assert listed.names == ("a", "b")
    store.remove("a", in_use=True)
    assert store.list() == []
    assert a.disk.exists()  # kept while a VM's overlay needs it
    import_vm_image(tmp_path / "root", disk, name="c")
    store.remove("c", in_use=False)
    assert not a.directory.exists()


def test_pull_of_an_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(runtime.NotFound, match="not in the store"):
        VmImages(tmp_path).pull("nope")
    with pytest.raises(runtime.InvalidArgument):
        VmImages(tmp_path).pull("")


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    served = tmp_path / "www"
    served.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(served), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served, requests
    finally:
        server.shutdown()
        server.server_close()


def test_pull_downloads_a_url_once(tmp_path: Path, http_dir: tuple[str, Path, list[str]]) -> None:
    base, served, requests = http_dir
    (served / "disk.img").write_bytes(b"\2" * 2048)
    digest = hashlib.sha256(b"\2" * 2048).hexdigest()
    store = VmImages(tmp_path / "root")
    url = f"{base}/disk.img#sha256={digest}"
    image = store.pull(url)
    assert image.id == f"sha256:{digest}"
    assert image.disk.read_bytes() == b"\2" * 2048
    assert store.pull(url) == image
    assert len(requests) == 1
    with pytest.raises(runtime.InvalidArgument, match="expected"):
        store.pull(f"{base}/disk.img#sha256={'0' * 64}")
    with pytest.raises(runtime.Unavailable):
        store.pull(f"{base}/missing.img")
