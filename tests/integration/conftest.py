"""Fixtures shared by the integration tests: a real etcd, and a real Neutron, for those
that ask for one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from _etcd_fixtures import etcd_server as etcd_server, etcd_store as etcd_store

from .controllers import _neutron

# The nodes the Neutron tests bind ports to (an Open vSwitch agent is registered for each).
NEUTRON_HOSTS = ("node-1", "n1")


@pytest.fixture(scope="session")
def shared_neutron(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_neutron.NeutronServer]:
    """One Neutron for the session (it takes seconds to start), with network `vpc-1` and
    its subnets `sub-a` (10.10.0.0/24) and `sub-b` (10.20.0.0/24). A test that stops it
    leaves it to the next one to start it again (see `neutron_server`)."""
    running = _neutron.NeutronServer(
        _neutron.neutron_python(), tmp_path_factory.mktemp("neutron"), hosts=NEUTRON_HOSTS
    )
    running.start()
    try:
        running.make_network("vpc-1", subnets={"sub-a": "10.10.0.0/24", "sub-b": "10.20.0.0/24"})
        yield running
    finally:
        running.stop()


@pytest.fixture
def neutron_server(shared_neutron: _neutron.NeutronServer) -> _neutron.NeutronServer:
    """The session's Neutron, running (a test may have left it stopped)."""
    if not shared_neutron.running:
        shared_neutron.start()
    return shared_neutron
