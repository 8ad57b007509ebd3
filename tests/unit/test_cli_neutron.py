"""The Neutron flags of `arktos up` and `arktos controller-manager`: they (and a
`--neutron-config` file, which flags override) reach the controller manager's options;
without them there is no Neutron controller; missing credentials are refused; `up
--partitions` hands them (and the cluster CIDR) to its controller manager process."""

from __future__ import annotations

import pathlib

import pytest
import typer.testing

from arktos_lite import cli, cluster, controllers, topology


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[cluster.ClusterOptions]:
    runs: list[cluster.ClusterOptions] = []

    def run_cluster(options: cluster.ClusterOptions, *, verbose: bool) -> None:
        runs.append(options)

    monkeypatch.setattr(cli, "_run_cluster", run_cluster)
    for name in ("OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME"):
        monkeypatch.delenv(name, raising=False)
    return runs


def neutron_of(options: cluster.ClusterOptions) -> controllers.NeutronConfig | None:
    assert options.controller_manager is not None
    return options.controller_manager.neutron_config


def test_no_neutron_flags_no_neutron_controller(started: list[cluster.ClusterOptions]) -> None:
    result = typer.testing.CliRunner().invoke(cli.app, ["up"])
    assert result.exit_code == 0, result.output
    assert neutron_of(started[0]) is None


def test_noauth_flags_reach_the_controller_manager(started: list[cluster.ClusterOptions]) -> None:
    args = ["up", "--neutron-url", "http://127.0.0.1:9696", "--neutron-project-id", "p1"]
    result = typer.testing.CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert neutron_of(started[0]) == controllers.NeutronConfig(
        url="http://127.0.0.1:9696", project_id="p1"
    )


def test_a_config_file_gives_password_auth_and_flags_win(
    started: list[cluster.ClusterOptions], tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "neutron.yaml"
    path.write_text(
        "auth: password\nurl: http://neutron:9696\n"
        "keystone: {url: 'http://keystone:5000/v3', username: u, projectName: p}\n"
    )
    result = typer.testing.CliRunner().invoke(
        cli.app,
        ["up", "--neutron-config", str(path), "--os-username", "admin"],
        env={"OS_PASSWORD": "secret"},
    )
    assert result.exit_code == 0, result.output
    assert neutron_of(started[0]) == controllers.NeutronConfig(
        url="http://neutron:9696",
        auth=controllers.NeutronAuth.PASSWORD,
        keystone_url="http://keystone:5000/v3",
        username="admin",
        password="secret",
        project_name="p",
    )


@pytest.mark.parametrize("command", ["up", "controller-manager"])
def test_missing_credentials_are_refused(
    command: str, started: list[cluster.ClusterOptions]
) -> None:
    result = typer.testing.CliRunner().invoke(cli.app, [command, "--neutron-url", "http://n"])
    assert result.exit_code == 2
    assert "project id" in result.output
    assert started == []


def test_partitioned_up_passes_neutron_and_the_cluster_cidr_on(
    started: list[cluster.ClusterOptions], monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    spread: list[topology.TopologyOptions] = []

    async def serve_topology(options: topology.TopologyOptions) -> None:
        spread.append(options)

    monkeypatch.setattr(cli, "_serve_topology", serve_topology)
    monkeypatch.setattr(cli, "_configure_process", lambda *, verbose: None)
    args = ["up", "--partitions", "2", "--data-dir", str(tmp_path), "--no-agent"]
    args += ["--cluster-cidr", "10.77.0.0/16", "--neutron-auth", "password"]
    args += ["--keystone-url", "http://keystone:5000/v3", "--os-username", "arktos"]
    args += ["--os-project-name", "service"]
    result = typer.testing.CliRunner().invoke(cli.app, args, env={"OS_PASSWORD": "secret"})
    assert result.exit_code == 0, result.output
    assert started == []
    [options] = spread
    assert options.controller_manager.cluster_cidr == "10.77.0.0/16"
    assert options.controller_manager.neutron_config == controllers.NeutronConfig(
        auth=controllers.NeutronAuth.PASSWORD,
        keystone_url="http://keystone:5000/v3",
        username="arktos",
        password="secret",
        project_name="service",
    )
