"""A real etcd for the tests that ask for one: started once per session on free loopback
ports in a temporary directory, and stopped at the end.

`etcd_server` is the session's `storage.LocalEtcd`; `etcd_store` names a fresh store on it
(`host:port/prefix`, a key prefix of its own per test, all of one length so that no
prefix is another's). Without an `etcd` binary the tests skip, saying how to install it,
except under `CI`, where they fail: CI installs it (`.ci/run`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

from arktos_lite import storage


def require_etcd() -> None:
    """Skip (fail under CI) when etcd is not installed."""
    if shutil.which("etcd") is None:
        reason = "etcd is not installed (Debian: apt-get install etcd-server etcd-client)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[storage.LocalEtcd]:
    require_etcd()
    etcd = storage.LocalEtcd(tmp_path_factory.mktemp("etcd") / "data")
    etcd.start()
    try:
        yield etcd
    finally:
        etcd.stop()


@pytest.fixture
def etcd_store(etcd_server: storage.LocalEtcd) -> str:
    """`host:port/prefix` of a fresh, empty store on the session's etcd."""
    return f"{etcd_server.endpoint}/test-{uuid.uuid4().hex}"
