"""The workload controller manager's configuration: Arktos's JSON, Go durations."""

from __future__ import annotations

import json
import pathlib

import pytest
from hypothesis import given, strategies as st

from arktos_lite.controllers import workload
from arktos_lite.controllers.workload import _manager as manager

ARKTOS = {
    "reportHealthIntervalInSecond": 10,
    "resyncPeriod": "12h0m0s",
    "qps": 20,
    "controllers": [{"type": "replicaset", "workers": 10}, {"type": "deployment", "workers": 5}],
}


def test_arktos_configuration(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(ARKTOS))
    config = workload.load_config(path)
    assert config.report_health_interval == 10.0
    assert config.resync_period == 43200.0
    assert config.qps == 20.0
    assert config.controllers == (
        workload.ControllerConfig("replicaset", 10),
        workload.ControllerConfig("deployment", 5),
    )
    timing = config.timing
    assert (timing.renew_interval, timing.expiry, timing.fence_after) == (10.0, 30.0, 20.0)


def test_defaults_are_arktos_defaults() -> None:
    config = workload.parse_config({})
    assert config == workload.WorkloadConfig()
    assert [c.type for c in config.controllers] == ["replicaset", "deployment"]


def test_types_are_case_insensitive_and_unknown_keys_ignored() -> None:
    config = workload.parse_config(
        {"controllers": [{"type": "ReplicaSet", "workers": 2}], "somethingElse": True}
    )
    assert config.controllers == (workload.ControllerConfig("replicaset", 2),)


@pytest.mark.parametrize(
    "data",
    [
        {"reportHealthIntervalInSecond": 0},
        {"reportHealthIntervalInSecond": "10"},
        {"resyncPeriod": "12 hours"},
        {"resyncPeriod": 5},
        {"resyncPeriod": "-1h"},
        {"qps": -1},
        {"controllers": {"type": "replicaset"}},
        {"controllers": [{"workers": 3}]},
        {"controllers": [{"type": "replicaset", "workers": 0}]},
        {"controllers": [{"type": "replicaset"}, {"type": "ReplicaSet"}]},
    ],
)
def test_bad_configurations_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(workload.ConfigError):
        workload.parse_config(data)


def test_unreadable_files_are_refused(tmp_path: pathlib.Path) -> None:
    with pytest.raises(workload.ConfigError, match="cannot read"):
        workload.load_config(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(workload.ConfigError, match="not JSON"):
        workload.load_config(broken)
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    with pytest.raises(workload.ConfigError):
        workload.load_config(listed)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("12h0m0s", 43200.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("300ms", 0.3),
        ("2m3.5s", 123.5),
        ("10us", 1e-5),
        ("-1m", -60.0),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert workload.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "h", "1", "1d", "1h 2m", "--1s"])
def test_not_go_durations(text: str) -> None:
    with pytest.raises(workload.ConfigError):
        workload.parse_duration(text)


@given(st.integers(0, 1000), st.integers(0, 59), st.integers(0, 59))
def test_go_duration_round_trip(hours: int, minutes: int, seconds: int) -> None:
    text = f"{hours}h{minutes}m{seconds}s"
    assert workload.parse_duration(text) == hours * 3600 + minutes * 60 + seconds


def test_timing_must_leave_room_to_fence() -> None:
    with pytest.raises(ValueError, match="renew_interval"):
        workload.InstanceTiming(renew_interval=10, expiry=20)
    with pytest.raises(ValueError, match="renew_interval"):
        workload.InstanceTiming(renew_interval=0, expiry=20)


def test_the_registry_knows_the_replicaset_controller() -> None:
    registration = workload.CONTROLLERS["replicaset"]
    assert registration.controller_type == "ReplicaSet"
    assert registration.factory is workload.ReplicaSetController


def test_the_deployment_controller_is_found_when_present() -> None:
    found = manager.registration("Deployment")
    if found is not None:
        assert found.controller_type == "Deployment"
    assert manager.registration("statefulset") is None
