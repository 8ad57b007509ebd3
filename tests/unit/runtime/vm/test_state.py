"""How libvirt's domain states read as CRI container states and Arktos VM states."""

from __future__ import annotations

import pytest

from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.vm._libvirt import DomainState, ShutoffReason
from arktos_lite.runtime.vm._manager import observe
from arktos_lite.runtime.vm._records import VmRecord


def _rec(*, started: bool = True, stop_requested: bool = False) -> VmRecord:
    return VmRecord(
        id="c",
        sandbox_id="s",
        config=cri.ContainerConfig(),
        created_at=1,
        log_path="/l",
        domain="arktos-c",
        uuid="u",
        image_id="sha256:x",
        image_ref="img",
        started=started,
        stop_requested=stop_requested,
    )


@pytest.mark.parametrize(
    ("state", "reason", "expected"),
    [
        (DomainState.RUNNING, 1, (cri.CONTAINER_RUNNING, "active", "running", 0, "")),
        (DomainState.PAUSED, 1, (cri.CONTAINER_RUNNING, "paused", "paused", 0, "")),
        (DomainState.PMSUSPENDED, 0, (cri.CONTAINER_RUNNING, "suspended", "suspended", 0, "")),
        (DomainState.CRASHED, 0, (cri.CONTAINER_EXITED, "error", "crashed", 1, "Crashed")),
        (
            DomainState.SHUTOFF,
            ShutoffReason.SHUTDOWN,
            (cri.CONTAINER_EXITED, "stopped", "shutdown", 0, "Shutdown"),
        ),
        (
            DomainState.SHUTOFF,
            ShutoffReason.FAILED,
            (cri.CONTAINER_EXITED, "stopped", "shutdown", 1, "Crashed"),
        ),
    ],
)
def test_observed_states(state: DomainState, reason: int, expected: tuple[object, ...]) -> None:
    seen = observe(_rec(), (state, reason))
    assert (seen.state, seen.vm_state, seen.power_state, seen.exit_code, seen.reason) == expected


def test_destroyed_is_clean_only_when_asked() -> None:
    destroyed = (DomainState.SHUTOFF, int(ShutoffReason.DESTROYED))
    assert observe(_rec(stop_requested=True), destroyed).reason == "Shutdown"
    assert observe(_rec(), destroyed).reason == "Crashed"


def test_never_started_is_created_and_missing_is_deleted() -> None:
    seen = observe(_rec(started=False), (DomainState.SHUTOFF, 0))
    assert (seen.state, seen.vm_state) == (cri.CONTAINER_CREATED, "building")
    gone = observe(_rec(), None)
    assert (gone.state, gone.vm_state, gone.reason) == (
        cri.CONTAINER_EXITED,
        "deleted",
        "DomainMissing",
    )


def test_record_round_trips() -> None:
    rec = _rec()
    rec.restart_count = 3
    rec.notes.append("n")
    assert VmRecord.from_json(rec.to_json()) == rec
