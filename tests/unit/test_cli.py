"""`arktos up` and `arktos apiserver`: what each starts, from the options they share;
the component commands refuse a bad configuration file."""

from __future__ import annotations

import os
import pathlib
import socket

import pytest
import typer.testing

from arktos_lite import agent, cli, cluster, controllers
from arktos_lite.runtime import _oci


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[cluster.ClusterOptions, bool]]:
    runs: list[tuple[cluster.ClusterOptions, bool]] = []

    def run_cluster(options: cluster.ClusterOptions, *, verbose: bool) -> None:
        runs.append((options, verbose))

    monkeypatch.setattr(cli, "_run_cluster", run_cluster)
    return runs


def invoke(*args: str) -> None:
    result = typer.testing.CliRunner().invoke(cli.app, list(args))
    assert result.exit_code == 0, result.output


def test_up_runs_the_whole_cluster_with_the_defaults(
    started: list[tuple[cluster.ClusterOptions, bool]],
) -> None:
    invoke("up")
    node = cluster.AgentOptions(
        agent.AgentConfig(
            node_name=socket.gethostname(),
            root_dir=cluster.DEFAULT_DATA_DIR / "agent",
            port=0,
            # `up` gives pods networks of their own where the machine allows.
            pod_network=None,
        ),
        default_vm_runtime=True,
    )
    assert started == [(cluster.ClusterOptions(agent=node), False)]
    options = started[0][0]
    assert options.controller_manager == controllers.ControllerManagerOptions()
    assert options.scheduler is not None
    assert options.workload_controllers == 1


def test_up_runs_its_node_on_the_runtime_asked_for(
    started: list[tuple[cluster.ClusterOptions, bool]],
) -> None:
    invoke("up", "--container-runtime", "containerd", "--keep-pods", "--node-name", "n1")
    invoke("up", "--runtime-endpoint", "proc,container,unix:///p.sock;vm,vm,unix:///v.sock")
    invoke("up", "--no-agent")
    first, second, third = (options.agent for options, _ in started)
    assert first is not None
    assert first.runtime_endpoints == "containerd,container,unix:///run/containerd/containerd.sock"
    assert (first.config.keep_pods, first.config.node_name) == (True, "n1")
    assert second is not None
    assert second.runtime_endpoints == "proc,container,unix:///p.sock;vm,vm,unix:///v.sock"
    assert third is None


def test_up_runs_the_vm_runtime_asked_for(
    started: list[tuple[cluster.ClusterOptions, bool]],
) -> None:
    invoke("up", "--vm-runtime-uri", "test:///default")
    invoke("up", "--no-vm-runtime")
    nodes = [options.agent for options, _ in started]
    assert [(n.vm_runtime_uri, n.default_vm_runtime) for n in nodes if n is not None] == [
        ("test:///default", True),
        ("", False),
    ]
    both = ["up", "--no-vm-runtime", "--vm-runtime-uri", "test:///default"]
    result = typer.testing.CliRunner().invoke(cli.app, both)
    assert result.exit_code == 2
    assert "not both" in result.output


@pytest.mark.parametrize("command", ["up", "agent"])
def test_a_bad_runtime_endpoint_is_refused(command: str) -> None:
    result = typer.testing.CliRunner().invoke(cli.app, [command, "--runtime-endpoint", "only,two"])
    assert result.exit_code == 2
    assert "--runtime-endpoint" in result.output


def test_up_runs_as_many_workload_controller_managers_as_asked(
    started: list[tuple[cluster.ClusterOptions, bool]],
) -> None:
    invoke("up", "--workload-controllers", "0")
    invoke("up", "--workload-controllers", "3")
    assert [options.workload_controllers for options, _ in started] == [0, 3]


def test_apiserver_runs_the_api_server_alone(
    started: list[tuple[cluster.ClusterOptions, bool]], tmp_path: pathlib.Path
) -> None:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("t,alice,1,,t1\n")
    invoke(
        "apiserver",
        "--data-dir",
        str(tmp_path),
        "--port",
        "0",
        "--host",
        "0.0.0.0",
        "--store",
        "sqlite:///x.db",
        "--token-auth-file",
        str(tokens),
        "--plain-http",
        "-v",
    )
    expected = cluster.ClusterOptions(
        data_dir=tmp_path,
        host="0.0.0.0",
        port=0,
        store="sqlite:///x.db",
        token_auth_file=tokens,
        plain_http=True,
        controller_manager=None,
        scheduler=None,
        workload_controllers=0,
    )
    assert started == [(expected, True)]


@pytest.mark.parametrize("command", ["up", "apiserver"])
def test_both_take_the_same_options(command: str) -> None:
    result = typer.testing.CliRunner().invoke(cli.app, [command, "--help"])
    assert result.exit_code == 0
    for option in ("--data-dir", "--port", "--host", "--store", "--token-auth-file"):
        assert option in result.output


@pytest.mark.parametrize("command", ["scheduler", "workload-controller-manager"])
def test_component_commands_refuse_a_bad_config(command: str, tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "config"
    bad.write_text("[not, a, mapping]")
    result = typer.testing.CliRunner().invoke(cli.app, [command, "--config", str(bad)])
    assert result.exit_code == 2
    assert "--config" in result.output


def test_image_import_stores_an_image_for_the_process_runtime(tmp_path: pathlib.Path) -> None:
    try:
        archive = _oci.build_busybox_image(tmp_path / "busybox.tar", name="busybox:1.36")
    except (OSError, ValueError) as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no static busybox to build an image of (install busybox-static): {error}")
    root = tmp_path / "runtime"
    result = typer.testing.CliRunner().invoke(
        cli.app, ["image", "import", str(archive), "--root-dir", str(root)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("docker.io/library/busybox:1.36 sha256:")
    broken = tmp_path / "broken.tar"
    broken.write_bytes(b"not an archive")
    result = typer.testing.CliRunner().invoke(
        cli.app, ["image", "import", str(broken), "--root-dir", str(root)]
    )
    assert result.exit_code == 2
    assert "ARCHIVE" in result.output


def test_up_and_the_vm_runtime_take_a_bridge(
    started: list[tuple[cluster.ClusterOptions, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke("up", "--vm-bridge", "br0")
    node = started[0][0].agent
    assert node is not None
    assert node.vm_bridge == "br0"
    if cli.vm.libvirt_missing():
        pytest.skip("arktos vm-runtime needs libvirt-python")
    served: list[object] = []
    monkeypatch.setattr(cli.trio, "run", lambda _main, run: served.append(run.__self__.config))
    invoke("vm-runtime", "--bridge", "br1", "--uri", "test:///default")
    [config] = served
    assert (config.bridge, config.uri) == ("br1", "test:///default")  # type: ignore[attr-defined]
