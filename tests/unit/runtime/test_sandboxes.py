"""The sandbox records the process and VM runtimes share: CRI semantics, kept on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from arktos_lite.runtime import _errors as errors
from arktos_lite.runtime._sandboxes import Sandboxes
from arktos_lite.runtime.cri import api_pb2 as cri


def config(name: str, *, attempt: int = 0, tenant: str = "", **labels: str) -> cri.PodSandboxConfig:
    return cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(
            name=name, uid=f"uid-{name}", namespace="ns", attempt=attempt, tenant=tenant
        ),
        labels=labels,
    )


def test_sandboxes_follow_the_cri_and_survive_a_restart(tmp_path: Path) -> None:
    store = Sandboxes(tmp_path / "sandboxes")
    store.load()
    web = store.create(config("web", app="web"), runtime_handler="h")
    with pytest.raises(errors.AlreadyExists, match="attempt 0 exists already"):
        store.create(config("web"))
    db = store.create(config("db", app="db"))
    store.create(config("web", attempt=1))
    store.create(config("web", tenant="t2"))  # another tenant's pod of the same name
    with pytest.raises(errors.InvalidArgument):
        store.create(cri.PodSandboxConfig(metadata=cri.PodSandboxMetadata(name="x")))
    with pytest.raises(errors.NotFound):
        store.get("nope")
    with pytest.raises(errors.InvalidArgument):
        store.get("")

    store.mark_stopped(db.id)
    store.mark_stopped(db.id)  # idempotent
    store.mark_stopped("nope")
    ready = cri.PodSandboxFilter(state=cri.PodSandboxStateValue(state=cri.SANDBOX_READY))
    assert db.id not in {s.id for s in store.list(ready)}
    assert [s.id for s in store.list(cri.PodSandboxFilter(label_selector={"app": "db"}))] == [db.id]
    assert [s.id for s in store.list(cri.PodSandboxFilter(id=web.id[:12]))] == [web.id]
    status = store.status(web.id, network=cri.PodSandboxNetworkStatus(ip="10.0.0.1"))
    assert (status.state, status.network.ip, status.runtime_handler) == (
        cri.SANDBOX_READY,
        "10.0.0.1",
        "h",
    )

    # A new store over the same directory: the same sandboxes; an unreadable record is
    # skipped, not fatal.
    (tmp_path / "sandboxes" / "broken.json").write_text('{"id": 1}')
    again = Sandboxes(tmp_path / "sandboxes")
    again.load()
    assert len(again) == 4
    assert again.get(db.id).ready is False
    assert again.get(web.id).config == web.config
    again.forget(web.id)
    again.forget(web.id)
    assert not (tmp_path / "sandboxes" / f"{web.id}.json").exists()
    assert again.find(web.id) is None
