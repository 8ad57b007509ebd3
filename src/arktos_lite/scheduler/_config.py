"""The scheduler's configuration: which plugins run, their weights and arguments, and the
queue's timings; readable from a KubeSchedulerConfiguration-style YAML or JSON file.

Plugins are chosen by name from an explicit registry (`REGISTRY`). A plugin takes part
in every extension point it implements, in the order the plugins are listed, unless it
is disabled at that point. Guarantees:

* `SchedulerConfig()` is kube-scheduler's default profile (with Arktos's
  `NodeRuntimeReady`): the same plugins, order and score weights.
* `load_config` accepts the subset of `kubescheduler.config.k8s.io/v1` that applies here
  and raises `ConfigError` for anything it does not understand (an unknown plugin or
  field, a bad value) rather than ignoring it:

      apiVersion: kubescheduler.config.k8s.io/v1
      kind: KubeSchedulerConfiguration
      percentageOfNodesToScore: 50
      podInitialBackoffSeconds: 1
      podMaxBackoffSeconds: 10
      profiles:
      - schedulerName: default-scheduler
        plugins:
          multiPoint:
            enabled: [{name: NodeResourcesFit, weight: 2}]
            disabled: [{name: InterPodAffinity}]
          score:
            disabled: [{name: NodeResourcesBalancedAllocation}]
        pluginConfig:
        - name: NodeResourcesFit
          args: {scoringStrategy: {type: MostAllocated}}

  `multiPoint.disabled` (and `"*"`) removes plugins everywhere; a disabled list under an
  extension point (`preFilter`, `filter`, `postFilter`, `preScore`, `score`) removes them
  there only; `enabled` adds plugins (at the end) or sets their weights.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import random
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from arktos_lite.scheduler import (
    _framework as framework,
    _interpod as interpod,
    _plugins as plugins,
    _pods as pods,
    _spread as spread,
)


class ConfigError(ValueError):
    """A scheduler configuration that cannot be used."""


class ExtensionPoint(enum.StrEnum):
    PRE_FILTER = "preFilter"
    FILTER = "filter"
    POST_FILTER = "postFilter"
    PRE_SCORE = "preScore"
    SCORE = "score"


REGISTRY: Mapping[str, framework.PluginFactory] = {
    "NodeUnschedulable": plugins.NodeUnschedulable,
    "NodeName": plugins.NodeName,
    "NodeRuntimeReady": plugins.NodeRuntimeReady,
    "TaintToleration": plugins.TaintToleration,
    "NodeAffinity": plugins.NodeAffinity,
    "NodeResourcesFit": plugins.NodeResourcesFit,
    "PodTopologySpread": spread.PodTopologySpread,
    "InterPodAffinity": interpod.InterPodAffinity,
    "DefaultPreemption": plugins.DefaultPreemption,
    "NodeResourcesBalancedAllocation": plugins.NodeResourcesBalancedAllocation,
}


@dataclasses.dataclass(frozen=True, slots=True)
class PluginConfig:
    """One plugin: its score `weight`, its `args`, and the points it is disabled at."""

    name: str
    weight: int = 1
    args: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    disabled: frozenset[ExtensionPoint] = frozenset()


DEFAULT_PLUGINS: tuple[PluginConfig, ...] = (
    PluginConfig("NodeUnschedulable"),
    PluginConfig("NodeName"),
    PluginConfig("NodeRuntimeReady"),
    PluginConfig("TaintToleration", weight=3),
    PluginConfig("NodeAffinity", weight=2),
    PluginConfig("NodeResourcesFit", weight=1),
    PluginConfig("PodTopologySpread", weight=2),
    PluginConfig("InterPodAffinity", weight=2),
    PluginConfig("DefaultPreemption"),
    PluginConfig("NodeResourcesBalancedAllocation", weight=1),
)


@dataclasses.dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """Everything tunable; the defaults are kube-scheduler's."""

    scheduler_name: str = pods.DEFAULT_SCHEDULER
    plugins: tuple[PluginConfig, ...] = DEFAULT_PLUGINS
    # None (or 0): adaptive, 50% minus 1% per 125 nodes, at least 5% and 100 nodes.
    percentage_of_nodes_to_score: int | None = None
    pod_initial_backoff: float = 1.0
    pod_max_backoff: float = 10.0
    # An unschedulable pod is tried again at least this often, whatever happens.
    max_unschedulable_duration: float = 300.0
    # Bindings (and status updates) in flight at once. More is not faster: on a few cores
    # each request in flight costs the client and the server CPU (16 measured best).
    bind_workers: int = 16
    status_workers: int = 4

    def __post_init__(self) -> None:
        names = [p.name for p in self.plugins]
        unknown = [name for name in names if name not in REGISTRY]
        if unknown:
            raise ConfigError(
                f"unknown plugin(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}"
            )
        if len(set(names)) != len(names):
            raise ConfigError("a plugin is listed twice")
        percentage = self.percentage_of_nodes_to_score
        if percentage is not None and not 0 <= percentage <= 100:
            raise ConfigError(f"percentageOfNodesToScore must be in [0, 100], not {percentage}")
        if self.pod_initial_backoff <= 0 or self.pod_max_backoff < self.pod_initial_backoff:
            raise ConfigError("backoffs must be positive, the maximum at least the initial one")
        if self.bind_workers < 1 or self.status_workers < 1:
            raise ConfigError("at least one bind and one status worker are needed")
        for plugin in self.plugins:
            if plugin.weight < 0:
                raise ConfigError(f"plugin {plugin.name}: a weight cannot be negative")


def build_framework(
    config: SchedulerConfig, handle: framework.Handle, *, rng: random.Random | None = None
) -> framework.Framework:
    """The framework of `config`'s plugins, each built once with its arguments."""
    pre_filters: list[framework.PreFilterPlugin] = []
    filters: list[framework.FilterPlugin] = []
    post_filters: list[framework.PostFilterPlugin] = []
    pre_scores: list[framework.PreScorePlugin] = []
    scores: list[framework.WeightedScore] = []
    for spec in config.plugins:
        try:
            plugin = REGISTRY[spec.name](spec.args, handle)
        except (TypeError, ValueError, KeyError) as exc:
            raise ConfigError(f"plugin {spec.name}: {exc}") from exc
        off = spec.disabled
        if ExtensionPoint.PRE_FILTER not in off and isinstance(plugin, framework.PreFilterPlugin):
            pre_filters.append(plugin)
        if ExtensionPoint.FILTER not in off and isinstance(plugin, framework.FilterPlugin):
            filters.append(plugin)
        if ExtensionPoint.POST_FILTER not in off and isinstance(plugin, framework.PostFilterPlugin):
            post_filters.append(plugin)
        scoring = ExtensionPoint.SCORE not in off and spec.weight > 0
        if scoring and isinstance(plugin, framework.ScorePlugin):
            scores.append(framework.WeightedScore(plugin, spec.weight))
            if ExtensionPoint.PRE_SCORE not in off and isinstance(plugin, framework.PreScorePlugin):
                pre_scores.append(plugin)
    return framework.Framework(
        pre_filters=pre_filters,
        filters=filters,
        post_filters=post_filters,
        pre_scores=pre_scores,
        scores=scores,
        percentage_of_nodes_to_score=config.percentage_of_nodes_to_score,
        rng=rng,
    )


# Files

_TOP_FIELDS = {
    "apiVersion",
    "kind",
    "percentageOfNodesToScore",
    "podInitialBackoffSeconds",
    "podMaxBackoffSeconds",
    "profiles",
}
_PROFILE_FIELDS = {"schedulerName", "plugins", "pluginConfig", "percentageOfNodesToScore"}
_API_VERSION = "kubescheduler.config.k8s.io/v1"
_KIND = "KubeSchedulerConfiguration"


def load_config(path: str | os.PathLike[str]) -> SchedulerConfig:
    """Read a configuration file (YAML, of which JSON is a subset); see the module docs."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {os.fspath(path)}: {exc}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{os.fspath(path)} is neither YAML nor JSON: {exc}") from exc
    return parse_config(document)


def parse_config(document: Any) -> SchedulerConfig:
    """A configuration from its decoded form; see the module docs."""
    if document is None:
        return SchedulerConfig()
    top = _mapping(document, "the configuration")
    _known(top, _TOP_FIELDS, "the configuration")
    if top.get("apiVersion", _API_VERSION) != _API_VERSION:
        raise ConfigError(f"apiVersion must be {_API_VERSION}, not {top['apiVersion']!r}")
    if top.get("kind", _KIND) != _KIND:
        raise ConfigError(f"kind must be {_KIND}, not {top['kind']!r}")
    options: dict[str, Any] = {}
    if "percentageOfNodesToScore" in top:
        options["percentage_of_nodes_to_score"] = _int(top, "percentageOfNodesToScore")
    if "podInitialBackoffSeconds" in top:
        options["pod_initial_backoff"] = float(_int(top, "podInitialBackoffSeconds"))
    if "podMaxBackoffSeconds" in top:
        options["pod_max_backoff"] = float(_int(top, "podMaxBackoffSeconds"))
    profiles = top.get("profiles") or []
    if not isinstance(profiles, list) or len(profiles) > 1:
        raise ConfigError("profiles must be a list of one profile (one scheduler name)")
    if profiles:
        profile = _mapping(profiles[0], "profiles[0]")
        _known(profile, _PROFILE_FIELDS, "profiles[0]")
        if "schedulerName" in profile:
            options["scheduler_name"] = str(profile["schedulerName"])
        if "percentageOfNodesToScore" in profile:
            options["percentage_of_nodes_to_score"] = _int(profile, "percentageOfNodesToScore")
        options["plugins"] = _plugins(
            profile.get("plugins") or {}, profile.get("pluginConfig") or []
        )
    try:
        return SchedulerConfig(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc


def _plugins(section: Any, plugin_config: Any) -> tuple[PluginConfig, ...]:
    section = _mapping(section, "plugins")
    points = {p.value: p for p in ExtensionPoint}
    _known(section, {"multiPoint", *points}, "plugins")
    listed: dict[str, PluginConfig] = {p.name: p for p in DEFAULT_PLUGINS}
    multi = _mapping(section.get("multiPoint") or {}, "plugins.multiPoint")
    for name in _names(multi.get("disabled"), "plugins.multiPoint.disabled"):
        if name == "*":
            listed.clear()
        else:
            listed.pop(name, None)
    for entry in _entries(multi.get("enabled"), "plugins.multiPoint.enabled"):
        name = entry["name"]
        previous = listed.pop(name, None) or PluginConfig(name)
        weight = int(entry.get("weight") or previous.weight)
        listed[name] = dataclasses.replace(previous, weight=weight)
    for key, point in points.items():
        part = _mapping(section.get(key) or {}, f"plugins.{key}")
        _known(part, {"enabled", "disabled"}, f"plugins.{key}")
        disabled = _names(part.get("disabled"), f"plugins.{key}.disabled")
        for name, plugin in list(listed.items()):
            if "*" in disabled or name in disabled:
                listed[name] = dataclasses.replace(plugin, disabled=plugin.disabled | {point})
        for entry in _entries(part.get("enabled"), f"plugins.{key}.enabled"):
            name = entry["name"]
            plugin = listed.get(name) or PluginConfig(name, disabled=frozenset(points.values()))
            weight = plugin.weight
            if key == ExtensionPoint.SCORE and "weight" in entry:
                weight = int(entry["weight"])
            listed[name] = dataclasses.replace(
                plugin, disabled=plugin.disabled - {point}, weight=weight
            )
    if not isinstance(plugin_config, list):
        raise ConfigError("pluginConfig must be a list")
    for i, item in enumerate(plugin_config):
        item = _mapping(item, f"pluginConfig[{i}]")
        name = str(item.get("name") or "")
        if name not in REGISTRY:
            raise ConfigError(f"pluginConfig[{i}]: unknown plugin {name!r}")
        args = _mapping(item.get("args") or {}, f"pluginConfig[{i}].args")
        if name in listed:
            listed[name] = dataclasses.replace(listed[name], args=json.loads(json.dumps(args)))
    return tuple(listed.values())


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping")
    return value


def _known(value: Mapping[str, Any], fields: set[str], where: str) -> None:
    unknown = sorted(set(value) - fields)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}")


def _int(value: Mapping[str, Any], key: str) -> int:
    found = value[key]
    if isinstance(found, bool) or not isinstance(found, int):
        raise ConfigError(f"{key} must be an integer, not {found!r}")
    return found


def _entries(value: Any, where: str) -> Sequence[Mapping[str, Any]]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list")
    entries = []
    for i, entry in enumerate(value):
        entry = _mapping(entry, f"{where}[{i}]")
        name = entry.get("name")
        if name != "*" and name not in REGISTRY:
            raise ConfigError(f"{where}[{i}]: unknown plugin {name!r}")
        entries.append(entry)
    return entries


def _names(value: Any, where: str) -> set[str]:
    return {str(entry["name"]) for entry in _entries(value, where)}
