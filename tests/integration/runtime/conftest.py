"""A private containerd for the tests that ask for one, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import _containerd


@pytest.fixture(scope="session")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_containerd.Containerd]:
    _containerd.require_containerd()
    with _containerd.running_containerd(tmp_path_factory.mktemp("containerd")) as daemon:
        yield daemon
