"""What a container of the process runtime runs, and the image references it records."""

from __future__ import annotations

from pathlib import Path

import pytest

from arktos_lite.runtime import errors
from arktos_lite.runtime.process._images import ImageStore, base_name, image_id, program_for

PATH = "/usr/bin:/bin"


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("busybox", "busybox"),
        ("busybox:1.36", "busybox"),
        ("docker.io/library/busybox:latest", "busybox"),
        ("localhost:5000/team/tool@sha256:abc", "tool"),
    ],
)
def test_base_name(ref: str, name: str) -> None:
    assert base_name(ref) == name


def test_command_then_args() -> None:
    assert program_for(command=["sh", "-c"], args=["echo"], image="x", path=PATH) == [
        "sh",
        "-c",
        "echo",
    ]


def test_first_arg_is_the_program_without_a_command() -> None:
    assert program_for(command=[], args=["sh", "-c", "true"], image="busybox", path=PATH) == [
        "sh",
        "-c",
        "true",
    ]


def test_the_image_name_when_it_is_a_program() -> None:
    assert program_for(command=[], args=[], image="library/sh:1", path=PATH) == ["sh"]
    with pytest.raises(errors.InvalidArgument, match="not a program on PATH"):
        program_for(command=[], args=[], image="nginx:1.27", path=PATH)


def test_store_survives_a_restart(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images.json")
    ref = store.pull("busybox:1.36")
    assert ref == image_id("busybox:1.36")
    again = ImageStore(tmp_path / "images.json")
    image = again.status("busybox:1.36")
    assert image is not None
    assert list(image.repo_tags) == ["busybox:1.36"]
    assert again.status(ref) == image
    again.remove(ref)
    assert again.list() == []
    assert ImageStore(tmp_path / "images.json").status("busybox:1.36") is None
