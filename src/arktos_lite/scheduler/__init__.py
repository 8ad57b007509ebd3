"""The unified scheduler: container pods and VM pods through one kube-scheduler pipeline.

`Scheduler` watches every tenant's pending pods and every node through the API (never
the store), and binds each pod to a node through `pods/{name}/binding`, counting it on
the node at once so that no node is overcommitted while bindings are in flight. Plugins
follow kube-scheduler's framework (PreFilter, Filter, PostFilter, PreScore, Score with
normalization; a per-cycle `CycleState`) and its names, reasons and messages, plus
Arktos's `NodeRuntimeReady`. `SchedulerConfig` chooses them by name; `load_config` reads
a KubeSchedulerConfiguration-style file. Tenants take turns in the queue.
"""

from arktos_lite.scheduler._config import (
    DEFAULT_PLUGINS as DEFAULT_PLUGINS,
    REGISTRY as REGISTRY,
    ConfigError as ConfigError,
    ExtensionPoint as ExtensionPoint,
    PluginConfig as PluginConfig,
    SchedulerConfig as SchedulerConfig,
    load_config as load_config,
    parse_config as parse_config,
)
from arktos_lite.scheduler._framework import (
    MAX_NODE_SCORE as MAX_NODE_SCORE,
    BatchFilterPlugin as BatchFilterPlugin,
    BatchScorePlugin as BatchScorePlugin,
    Code as Code,
    CycleState as CycleState,
    FilterPlugin as FilterPlugin,
    FitError as FitError,
    Handle as Handle,
    PostFilterPlugin as PostFilterPlugin,
    PreFilterPlugin as PreFilterPlugin,
    PreScorePlugin as PreScorePlugin,
    ScorePlugin as ScorePlugin,
    Snapshot as Snapshot,
    Status as Status,
)
from arktos_lite.scheduler._nodes import NodeInfo as NodeInfo
from arktos_lite.scheduler._pods import PodInfo as PodInfo
from arktos_lite.scheduler._scheduler import (
    Reason as Reason,
    Scheduler as Scheduler,
    SchedulerStats as SchedulerStats,
)

__all__ = [
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
]
