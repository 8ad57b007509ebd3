"""The public face of `arktos_lite.agent`: the names and signatures others code against."""

from __future__ import annotations

import dataclasses
import inspect
import pathlib

from arktos_lite import agent


def test_the_public_names() -> None:
    assert sorted(agent.__all__) == [
        "Agent",
        "AgentConfig",
        "HOLLOW_LABEL",
        "HollowNodes",
        "ISOLATION_ANNOTATION",
        "NODE_LEASE_NAMESPACE",
        "NamedRuntime",
        "NodeReporter",
        "RuntimeSet",
        "WorkloadType",
        "workload_type",
    ]
    for name in agent.__all__:
        assert getattr(agent, name) is not None


def test_agent_config_fields_and_defaults() -> None:
    config = agent.AgentConfig(node_name="n1", root_dir=pathlib.Path("/var/lib/agent"))
    assert dataclasses.is_dataclass(config)
    assert {f.name: getattr(config, f.name) for f in dataclasses.fields(config)} == {
        "node_name": "n1",
        "root_dir": pathlib.Path("/var/lib/agent"),
        "address": "127.0.0.1",
        "port": 10250,
        "node_ip": "127.0.0.1",
        "lease_duration_seconds": 40,
        "lease_renew_interval": 10.0,
        "status_update_interval": 10.0,
        "node_status_report": 60.0,
        "max_pods": 110,
        "keep_pods": False,
        "labels": {},
        "shutdown_timeout": 30.0,
        "pod_network": False,
    }


def test_signatures() -> None:
    agent_params = inspect.signature(agent.Agent).parameters
    assert list(agent_params) == ["api", "config", "runtimes"]
    assert agent_params["config"].kind is inspect.Parameter.KEYWORD_ONLY
    hollow = inspect.signature(agent.HollowNodes).parameters
    assert hollow["count"].kind is inspect.Parameter.KEYWORD_ONLY
    assert hollow["name_prefix"].default == "hollow-node-"
    for runnable in (agent.Agent.run, agent.HollowNodes.run, agent.NodeReporter.run):
        assert inspect.iscoroutinefunction(runnable)
        assert "task_status" in inspect.signature(runnable).parameters
    assert agent.ISOLATION_ANNOTATION == "arktos.futurewei.com/runtime-isolation"
    assert agent.NODE_LEASE_NAMESPACE == "kube-node-lease"
