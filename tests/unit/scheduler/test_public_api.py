"""The public face of the scheduler package."""

from __future__ import annotations

from arktos_lite import scheduler


def test_public_api() -> None:
    public = {name for name in dir(scheduler) if not name.startswith("_")}

    assert public == set(scheduler.__all__)
    assert public == {
        "DEFAULT_PLUGINS",
        "MAX_NODE_SCORE",
        "REGISTRY",
        "BatchFilterPlugin",
        "BatchScorePlugin",
        "Code",
        "ConfigError",
        "CycleState",
        "ExtensionPoint",
        "FilterPlugin",
        "FitError",
        "Handle",
        "NodeInfo",
        "PluginConfig",
        "PodInfo",
        "PostFilterPlugin",
        "PreFilterPlugin",
        "PreScorePlugin",
        "Reason",
        "Scheduler",
        "SchedulerConfig",
        "SchedulerStats",
        "ScorePlugin",
        "Snapshot",
        "Status",
        "load_config",
        "parse_config",
    }
