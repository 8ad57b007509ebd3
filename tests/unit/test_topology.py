"""The controller manager's command in `arktos up --partitions`: the cluster CIDR and node
mask sizes reach it as flags; its Neutron configuration, password included, reaches it
through a file only its owner reads, never through its command line, and no `OS_*`
variable of the supervisor's overrides that file."""

from __future__ import annotations

import pathlib
import stat

import pytest

from arktos_lite import controllers, topology

KEYSTONE = controllers.NeutronConfig(
    url="http://neutron:9696",
    auth=controllers.NeutronAuth.PASSWORD,
    keystone_url="http://keystone:5000/v3",
    username="arktos",
    password="s3cret",
    project_name="service",
    user_domain="users",
    project_domain="projects",
)


def command(
    data_dir: pathlib.Path, manager: controllers.ControllerManagerOptions
) -> tuple[list[str], dict[str, str]]:
    options = topology.TopologyOptions(data_dir=data_dir, partitions=2, controller_manager=manager)
    return topology.Topology(options).controller_manager_command()


def flag(args: list[str], name: str) -> str:
    [value] = [a.split("=", 1)[1] for a in args if a.startswith(f"{name}=")]
    return value


def test_cluster_cidr_and_masks_reach_the_controller_manager(tmp_path: pathlib.Path) -> None:
    manager = controllers.ControllerManagerOptions(
        cluster_cidr="10.77.0.0/16,fd00:77::/48",
        node_cidr_mask_size_ipv4=26,
        node_cidr_mask_size_ipv6=80,
        pod_eviction_timeout=12.0,
    )
    args, _env = command(tmp_path, manager)
    assert args[0] == "controller-manager"
    assert flag(args, "--cluster-cidr") == "10.77.0.0/16,fd00:77::/48"
    assert flag(args, "--node-cidr-mask-size-ipv4") == "26"
    assert flag(args, "--node-cidr-mask-size-ipv6") == "80"
    assert float(flag(args, "--pod-eviction-timeout")) == 12.0
    assert "--neutron-config" not in args
    assert not (tmp_path / topology.NEUTRON_CONFIG).exists()


def test_node_ipam_off_reaches_it_too(tmp_path: pathlib.Path) -> None:
    args, _env = command(tmp_path, controllers.ControllerManagerOptions(cluster_cidr=""))
    assert flag(args, "--cluster-cidr") == ""


def test_neutron_goes_through_an_owner_only_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OS_PASSWORD", "from-the-environment")
    monkeypatch.setenv("OS_USERNAME", "someone-else")
    monkeypatch.setenv("ARKTOS_TEST_KEPT", "1")
    # A file left by an earlier run, readable by all: it is made owner-only again.
    path = tmp_path / topology.NEUTRON_CONFIG
    path.write_text("url: old\n")
    path.chmod(0o644)

    args, env = command(tmp_path, controllers.ControllerManagerOptions(neutron_config=KEYSTONE))

    assert args[args.index("--neutron-config") + 1] == str(path)
    assert not any("s3cret" in a for a in args)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert controllers.NeutronConfig.from_file(path) == KEYSTONE
    assert "OS_PASSWORD" not in env
    assert "OS_USERNAME" not in env
    assert env["ARKTOS_TEST_KEPT"] == "1"


def test_noauth_neutron_round_trips(tmp_path: pathlib.Path) -> None:
    noauth = controllers.NeutronConfig(url="http://neutron:9696", project_id="p1")
    args, _env = command(tmp_path, controllers.ControllerManagerOptions(neutron_config=noauth))
    path = pathlib.Path(args[args.index("--neutron-config") + 1])
    assert controllers.NeutronConfig.from_file(path) == noauth
    # Without Neutron again, the file goes.
    command(tmp_path, controllers.ControllerManagerOptions())
    assert not path.exists()
