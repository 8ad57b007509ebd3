"""How the suite spreads over pytest-xdist workers. `nox -s tests` runs `pytest -n 2
--dist loadfile --no-loadscope-reorder`; without xdist nothing here changes a thing.

* A test module is a unit of work: one worker runs all its tests, so a module-scoped
  fixture (a cluster of its own, a booted guest, a Keystone) is set up once.
* The modules of `LONG_RUNNING` tests (minutes, mostly waiting, by requirement; alone in
  their modules) are collected first: one worker starts such a test at once, the other
  runs the rest of the suite in collection order beside it (so the end-to-end tests,
  early in that order, run one after another meanwhile), and later both share what is
  left. Collection order, because of `--no-loadscope-reorder`: by default xdist hands out
  the modules with the most tests first, and a module of one test after them.

Each worker has session fixtures of its own (an etcd, a containerd, a Neutron, an
`arktos up`) in its own temporary directory (`.../popen-gwN/`), on ports the kernel
picked; bridges and nftables tables are named from a hash of the state directory,
network namespaces from pod UIDs, so two workers never share one.
"""

from __future__ import annotations

import pytest

# Node IDs relative to this directory.
LONG_RUNNING = ("e2e/test_hollow_nodes.py::test_hollow_nodes_stay_ready",)


def _long_running(item: pytest.Item) -> bool:
    return item.nodeid.removeprefix("tests/") in LONG_RUNNING


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):
        # A stable sort: everything else keeps its order.
        items.sort(key=lambda item: not _long_running(item))
