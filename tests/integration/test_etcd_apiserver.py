"""`arktos apiserver --store etcd://...` as its own process over a real etcd: objects go
to etcd (under the URL's key prefix, with etcd's revisions as resourceVersions) and are
there again for the next API server."""

from __future__ import annotations

import contextlib
import pathlib
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import orjson
import pytest
import trio

from arktos_lite import client, storage
from arktos_lite.api import resources

pytestmark = pytest.mark.slow

READY_PREFIX = "arktos-lite is ready at "
REGISTRY = resources.Registry()
PODS = REGISTRY.get("", "v1", "pods")
assert PODS is not None


@contextlib.contextmanager
def apiserver(data_dir: pathlib.Path, store: str, port: int) -> Iterator[pathlib.Path]:
    """`arktos apiserver --store STORE` until the block ends; yields its kubeconfig."""
    log_path = data_dir.parent / "apiserver.log"
    with log_path.open("a") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "arktos_lite",
                "apiserver",
                "--data-dir",
                str(data_dir),
                "--store",
                store,
                "--port",
                str(port),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(READY_PREFIX), log_path.read_text()
        yield pathlib.Path(line.split("; kubeconfig: ")[1].strip())
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        assert process.stdout is not None
        process.stdout.close()
    assert process.returncode == 0, log_path.read_text()


def _pod(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }


def test_apiserver_process_keeps_its_objects_in_etcd(
    tmp_path: pathlib.Path, etcd_store: str
) -> None:
    store = f"etcd://{etcd_store}"
    data_dir = tmp_path / "data"
    port = _free_port()

    with apiserver(data_dir, store, port) as kubeconfig:

        async def create_and_list() -> tuple[dict[str, object], list[str], str]:
            async with client.Client.from_kubeconfig(kubeconfig) as api:
                created = await api.create(PODS, _pod("web"), namespace="default")
                listed = await api.list(PODS, namespace="default")
            names = [item["metadata"]["name"] for item in listed["items"]]
            return created, names, listed["metadata"]["resourceVersion"]

        created, names, list_version = trio.run(create_and_list)

    assert names == ["web"]
    assert int(list_version) >= int(created["metadata"]["resourceVersion"])

    async def stored() -> storage.KeyValue:
        async with storage.open_store(store) as backend:
            return await backend.get("/registry/pods/system/default/web")

    kv = trio.run(stored)
    assert str(kv.mod_revision) == created["metadata"]["resourceVersion"]
    assert orjson.loads(kv.value)["metadata"]["uid"] == created["metadata"]["uid"]

    # A new API server process over the same etcd store serves the same pod.
    with apiserver(data_dir, store, port) as kubeconfig:

        async def read_again() -> dict[str, object]:
            async with client.Client.from_kubeconfig(kubeconfig) as api:
                return await api.get(PODS, "web", namespace="default")

        again = trio.run(read_again)
    assert again["metadata"]["uid"] == created["metadata"]["uid"]
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
