"""`--cluster-cidr` and the node CIDR masks of `arktos up` and `arktos controller-manager`:
they reach the controller manager's options, and a range that does not fit is refused."""

from __future__ import annotations

import pytest
import typer.testing

from arktos_lite import cli, cluster, controllers


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[cluster.ClusterOptions]:
    runs: list[cluster.ClusterOptions] = []

    def run_cluster(options: cluster.ClusterOptions, *, verbose: bool) -> None:
        runs.append(options)

    monkeypatch.setattr(cli, "_run_cluster", run_cluster)
    return runs


def test_up_hands_the_cluster_cidr_to_the_controller_manager(
    started: list[cluster.ClusterOptions],
) -> None:
    args = ["up", "--cluster-cidr", "10.200.0.0/16,fd00:200::/56"]
    result = typer.testing.CliRunner().invoke(
        cli.app, [*args, "--node-cidr-mask-size-ipv4", "26", "--node-cidr-mask-size-ipv6", "72"]
    )
    assert result.exit_code == 0, result.output
    [options] = started
    assert options.controller_manager == controllers.ControllerManagerOptions(
        cluster_cidr="10.200.0.0/16,fd00:200::/56",
        node_cidr_mask_size_ipv4=26,
        node_cidr_mask_size_ipv6=72,
    )


@pytest.mark.parametrize("command", ["up", "controller-manager"])
@pytest.mark.parametrize(
    "args",
    [
        ["--cluster-cidr", "not-a-cidr"],
        ["--cluster-cidr", "10.0.0.0/24", "--node-cidr-mask-size-ipv4", "16"],
    ],
)
def test_a_cluster_cidr_that_does_not_fit_is_refused(
    command: str, args: list[str], started: list[cluster.ClusterOptions]
) -> None:
    result = typer.testing.CliRunner().invoke(cli.app, [command, *args])
    assert result.exit_code == 2
    assert "--cluster-cidr" in result.output
    assert started == []
