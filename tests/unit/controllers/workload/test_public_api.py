"""The public face of `arktos_lite.controllers.workload`: what the CLI, the Deployment
controller and tests code against."""

from __future__ import annotations

import inspect

from arktos_lite.controllers import workload


def test_the_public_names() -> None:
    assert sorted(workload.__all__) == sorted(
        [
            "CONTROLLERS",
            "MAX_HASH_KEY",
            "ConfigError",
            "ControllerConfig",
            "ControllerFactory",
            "ControllerOptions",
            "HashRange",
            "Instance",
            "InstanceTiming",
            "PartitionedController",
            "RangeGate",
            "RangeInformer",
            "RangeInformers",
            "Registration",
            "ReplicaSetController",
            "WorkloadConfig",
            "WorkloadControllerManager",
            "controller_keys",
            "load_config",
            "orphan_selector",
            "parse_config",
            "parse_duration",
            "split",
        ]
    )
    for name in workload.__all__:
        value = getattr(workload, name)
        module = getattr(value, "__module__", "arktos_lite.controllers.workload._")
        assert module.startswith("arktos_lite.controllers.workload._")


def _parameters(function: object) -> list[str]:
    return [
        f"*{p.name}" if p.kind is p.KEYWORD_ONLY else p.name
        for p in inspect.signature(function).parameters.values()  # type: ignore[arg-type]
        if p.name != "self"
    ]


def test_the_signatures_others_code_against() -> None:
    assert _parameters(workload.WorkloadControllerManager) == ["api", "*config"]
    assert _parameters(workload.WorkloadControllerManager.run) == ["*task_status"]
    assert _parameters(workload.load_config) == ["path"]
    assert _parameters(workload.PartitionedController.set_range) == ["new"]
    assert _parameters(workload.PartitionedController.run) == ["*task_status"]
    assert workload.MAX_HASH_KEY == 2**63 - 1
