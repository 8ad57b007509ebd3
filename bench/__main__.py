"""`python -m bench [group ...] [--quick]`: run benchmark groups, each printing its figures.

Without a group name, every group runs. `api:SECTION,...` runs only those sections of the
api group (`get`, `creates`, `list`, `watch`, `startup`). `--quick` scales each group down
about tenfold for a smoke run. Groups are imported only when they run, so one group's
dependencies never stop another from running.
"""

from __future__ import annotations

import argparse
import sys
from typing import Protocol


class Group(Protocol):
    def __call__(self, *, quick: bool) -> None: ...


def _storage(*, quick: bool) -> None:
    from bench import storage

    storage.main(quick=quick)


def _api(*, quick: bool, only: frozenset[str] | None = None) -> None:
    from bench import api

    api.main(quick=quick, only=only)


def _controllers(*, quick: bool) -> None:
    from bench import controllers

    controllers.main(quick=quick)


def _scheduler(*, quick: bool) -> None:
    from bench import scheduler

    scheduler.main(quick=quick)


def _workload(*, quick: bool) -> None:
    from bench import workload

    workload.main(quick=quick)


def _agent(*, quick: bool) -> None:
    from bench import agent

    agent.main(quick=quick)


def _vm(*, quick: bool) -> None:
    from bench import vm

    vm.main(quick=quick)


def _etcd(*, quick: bool) -> None:
    from bench import etcd

    etcd.main(quick=quick)


GROUPS: dict[str, Group] = {
    "storage": _storage,
    "api": _api,
    "controllers": _controllers,
    "scheduler": _scheduler,
    "workload": _workload,
    "agent": _agent,
    "vm": _vm,
    "etcd": _etcd,
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("groups", nargs="*", metavar="group", help=", ".join(GROUPS))
    parser.add_argument("--quick", action="store_true", help="scale down ~10x (smoke run)")
    args = parser.parse_args(argv)
    sections: frozenset[str] | None = None
    for index, name in enumerate(args.groups):
        if name.startswith("api:"):
            sections = frozenset(name.removeprefix("api:").split(","))
            args.groups[index] = "api"
    unknown = [name for name in args.groups if name not in GROUPS]
    if unknown:
        print(
            f"unknown benchmark group(s): {', '.join(unknown)}; groups: {', '.join(GROUPS)}",
            file=sys.stderr,
        )
        return 2
    for name in args.groups or list(GROUPS):
        if name == "api":
            _api(quick=args.quick, only=sections)
        else:
            GROUPS[name](quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
