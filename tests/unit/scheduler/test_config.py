"""The scheduler's configuration: kube-scheduler's defaults, plugins chosen by name, and
KubeSchedulerConfiguration-style files."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from arktos_lite import scheduler
from arktos_lite.scheduler import _cache as cache, _config as config, _framework as framework

Obj = dict[str, Any]


def _names(plugins: Any) -> list[str]:
    return [p.name for p in plugins]


def _built(cfg: config.SchedulerConfig) -> framework.Framework:
    return config.build_framework(cfg, framework.Handle(snapshot=cache.Cache()))


def test_the_default_profile() -> None:
    built = _built(config.SchedulerConfig())

    assert _names(built.filters) == [
        "NodeUnschedulable",
        "NodeName",
        "NodeRuntimeReady",
        "TaintToleration",
        "NodeAffinity",
        "NodeResourcesFit",
        "PodTopologySpread",
        "InterPodAffinity",
    ]
    assert _names(built.pre_filters) == ["NodeAffinity", "PodTopologySpread", "InterPodAffinity"]
    assert _names(built.post_filters) == ["DefaultPreemption"]
    assert [(s.plugin.name, s.weight) for s in built.scores] == [
        ("TaintToleration", 3),
        ("NodeAffinity", 2),
        ("NodeResourcesFit", 1),
        ("PodTopologySpread", 2),
        ("InterPodAffinity", 2),
        ("NodeResourcesBalancedAllocation", 1),
    ]
    assert built.percentage_of_nodes_to_score is None


def test_a_yaml_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "scheduler.yaml"
    path.write_text(
        """
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
podInitialBackoffSeconds: 2
podMaxBackoffSeconds: 20
profiles:
- schedulerName: arktos-scheduler
  plugins:
    multiPoint:
      enabled:
      - name: NodeResourcesFit
        weight: 5
      disabled:
      - name: InterPodAffinity
    score:
      disabled:
      - name: NodeResourcesBalancedAllocation
    filter:
      disabled:
      - name: NodeRuntimeReady
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
"""
    )

    cfg = scheduler.load_config(path)

    assert cfg.scheduler_name == "arktos-scheduler"
    assert cfg.percentage_of_nodes_to_score == 30
    assert (cfg.pod_initial_backoff, cfg.pod_max_backoff) == (2.0, 20.0)
    built = _built(cfg)
    assert "InterPodAffinity" not in _names(built.filters)
    assert "NodeRuntimeReady" not in _names(built.filters)
    assert [(s.plugin.name, s.weight) for s in built.scores] == [
        ("TaintToleration", 3),
        ("NodeAffinity", 2),
        ("PodTopologySpread", 2),
        ("NodeResourcesFit", 5),
    ]
    fit = next(p for p in cfg.plugins if p.name == "NodeResourcesFit")
    assert fit.args == {"scoringStrategy": {"type": "MostAllocated"}}


def test_a_json_file_disabling_everything_but_a_few(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "scheduler.json"
    document = {
        "profiles": [
            {
                "plugins": {
                    "multiPoint": {
                        "disabled": [{"name": "*"}],
                        "enabled": [{"name": "NodeResourcesFit"}, {"name": "TaintToleration"}],
                    }
                }
            }
        ]
    }
    path.write_text(json.dumps(document))

    built = _built(scheduler.load_config(path))

    assert _names(built.filters) == ["NodeResourcesFit", "TaintToleration"]
    assert built.post_filters == ()


def test_enabling_a_plugin_at_one_point_only() -> None:
    cfg = scheduler.parse_config(
        {
            "profiles": [
                {
                    "plugins": {
                        "multiPoint": {"disabled": [{"name": "NodeResourcesBalancedAllocation"}]},
                        "score": {
                            "enabled": [{"name": "NodeResourcesBalancedAllocation", "weight": 4}]
                        },
                    }
                }
            ]
        }
    )

    built = _built(cfg)
    assert ("NodeResourcesBalancedAllocation", 4) in [
        (s.plugin.name, s.weight) for s in built.scores
    ]


def test_an_empty_file_is_the_default(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")

    assert scheduler.load_config(path) == scheduler.SchedulerConfig()


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ({"apiVersion": "v2"}, "apiVersion"),
        ({"kind": "Pod"}, "kind"),
        ({"percentageOfNodesToScore": 150}, r"\[0, 100\]"),
        ({"percentageOfNodesToScore": "half"}, "integer"),
        ({"podMaxBackoffSeconds": 0}, "backoff"),
        ({"surprise": 1}, "unknown field"),
        ({"profiles": [{}, {}]}, "one profile"),
        ({"profiles": [{"plugins": {"filter": {"disabled": [{"name": "Nope"}]}}}]}, "Nope"),
        ({"profiles": [{"plugins": {"bind": {}}}]}, "unknown field"),
        ({"profiles": [{"pluginConfig": [{"name": "Nope", "args": {}}]}]}, "Nope"),
        ([], "mapping"),
    ],
)
def test_bad_documents_are_refused(document: Any, error: str) -> None:
    with pytest.raises(scheduler.ConfigError, match=error):
        scheduler.parse_config(document)


def test_bad_files_are_refused(tmp_path: pathlib.Path) -> None:
    with pytest.raises(scheduler.ConfigError, match="cannot read"):
        scheduler.load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("profiles: [")
    with pytest.raises(scheduler.ConfigError, match="neither YAML nor JSON"):
        scheduler.load_config(broken)


def test_bad_plugin_arguments_are_refused_when_built() -> None:
    cfg = scheduler.parse_config(
        {
            "profiles": [
                {
                    "pluginConfig": [
                        {"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "X"}}}
                    ]
                }
            ]
        }
    )

    with pytest.raises(scheduler.ConfigError, match="scoring strategy"):
        _built(cfg)


def test_unknown_plugins_in_code_are_refused() -> None:
    with pytest.raises(scheduler.ConfigError, match="unknown plugin"):
        scheduler.SchedulerConfig(plugins=(scheduler.PluginConfig("Teleport"),))
