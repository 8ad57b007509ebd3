"""`--pod-network auto|on|off` of `arktos up` reaches the agent's config."""

from __future__ import annotations

import pytest
import typer.testing

from arktos_lite import cli, cluster


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[cluster.ClusterOptions]:
    runs: list[cluster.ClusterOptions] = []

    def run_cluster(options: cluster.ClusterOptions, *, verbose: bool) -> None:
        runs.append(options)

    monkeypatch.setattr(cli, "_run_cluster", run_cluster)
    return runs


@pytest.mark.parametrize(
    ("args", "expected"),
    [([], None), (["--pod-network", "on"], True), (["--pod-network", "off"], False)],
)
def test_up_hands_the_mode_to_the_agent(
    started: list[cluster.ClusterOptions], args: list[str], expected: bool | None
) -> None:
    result = typer.testing.CliRunner().invoke(cli.app, ["up", *args])
    assert result.exit_code == 0, result.output
    agent = started[0].agent
    assert agent is not None
    assert agent.config.pod_network is expected


def test_an_unknown_mode_is_refused(started: list[cluster.ClusterOptions]) -> None:
    result = typer.testing.CliRunner().invoke(cli.app, ["up", "--pod-network", "maybe"])
    assert result.exit_code != 0
    assert not started
