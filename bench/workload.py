"""`python -m bench workload`: partitioned workload controller managers, 1, 2 and 3 of them.

1,000 ReplicaSets of 5 replicas each, spread over two tenants (the admin's own and a second
one), are created against `arktos up --workload-controllers 0` while no workload controller
runs; then K `arktos workload-controller-manager` processes start, each running the
ReplicaSet controller with 10 workers, and the clock runs from their start until every
ReplicaSet reports `status.replicas == 5`. The pods are only created (no nodes, nothing
schedules or runs them). Each K gets a fresh cluster.

Beside the time, the table shows the CPU seconds over the window of the API server (which
holds the store) and of the managers (from /proc; a manager's figure includes its start),
so that the note can say what limits the speed-up: on a 2-core machine the API server, the
managers and this poller share two CPUs. Goal: 2 processes at least 1.6x faster than 1.
`--quick` runs 100 ReplicaSets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import pathlib
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import trio

from arktos_lite import client
from arktos_lite.api import errors, resources
from bench import _cluster as cluster, _report as report

CONVERGE_TIMEOUT = 900.0
POLL_INTERVAL = 0.25

REPLICAS = 5
SECOND_TENANT = "second"
MANAGER_COUNTS = (1, 2, 3)
MANAGER_CONFIG = {
    "reportHealthIntervalInSecond": 10,
    "resyncPeriod": "12h0m0s",
    "qps": 500,
    "controllers": [{"type": "replicaset", "workers": 10}],
}

REGISTRY = resources.Registry()


def _resource(group: str, plural: str) -> resources.Resource:
    found = REGISTRY.get(group, "v1", plural)
    assert found is not None
    return found


TENANTS = _resource("", "tenants")
NAMESPACES = _resource("", "namespaces")
PODS = _resource("", "pods")
INSTANCES = _resource("", "controllerinstances")
REPLICASETS = _resource("apps", "replicasets")

Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Machine:
    """Whole-machine CPU time over a window, from /proc/stat, in seconds of one CPU."""

    busy: float
    iowait: float
    steal: float
    total: float


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    managers: int
    seconds: float
    registered: float
    """Seconds until every manager had registered its ControllerInstance."""
    server_cpu: float
    server_cpu_registered: float
    """The API server's CPU seconds until every manager had registered."""
    manager_cpu: tuple[float, ...]
    poller_cpu: float
    polls: int
    list_cpu: float
    """The API server's CPU seconds for one poll, measured before the window."""
    machine: Machine
    pods: int
    unschedulable: int
    """Pods the scheduler inside `arktos up` marked Unschedulable (a status write each)."""

    @property
    def poll_cpu(self) -> float:
        """The API server's CPU seconds spent serving the poller, estimated."""
        return self.polls * self.list_cpu

    @property
    def other_cpu(self) -> float:
        """CPU seconds the machine spent on anything but the server, managers and poller."""
        ours = self.server_cpu + sum(self.manager_cpu) + self.poller_cpu
        return max(0.0, self.machine.busy - ours)

    @property
    def server_share_working(self) -> float:
        """The API server's share of one core once every manager had registered."""
        working = self.seconds - self.registered
        if working <= 0:
            return 0.0
        return (self.server_cpu - self.server_cpu_registered) / working


@contextlib.contextmanager
def _managers(
    workdir: pathlib.Path, kubeconfig: pathlib.Path, count: int
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` workload controller manager processes, started together."""
    config = workdir / "workload-controller-manager.json"
    config.write_text(json.dumps(MANAGER_CONFIG))
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    started: list[subprocess.Popen[bytes]] = []
    try:
        for index in range(count):
            with (workdir / f"manager-{index}.log").open("wb") as log_file:
                started.append(
                    subprocess.Popen(
                        [*cluster.ARKTOS, "workload-controller-manager", "--config", str(config)],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=log_file,
                        env=env,
                    )
                )
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in started:
            cluster.stop(process)


def _machine_ticks() -> list[int]:
    """user nice system idle iowait irq softirq steal, summed over the machine's CPUs."""
    line = pathlib.Path("/proc/stat").read_text().splitlines()[0]
    return [int(field) for field in line.split()[1:9]]


def _machine(began: list[int], ended: list[int]) -> Machine:
    ticks = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq, steal = (
        (b - a) / ticks for a, b in zip(began, ended, strict=True)
    )
    return Machine(
        busy=user + nice + system + irq + softirq,
        iowait=iowait,
        steal=steal,
        total=user + nice + system + idle + iowait + irq + softirq + steal,
    )


def _replica_set(tenant: str, index: int) -> Obj:
    labels = {"app": f"rs-{index}"}
    return {
        "metadata": {"name": f"rs-{index}", "namespace": "default", "tenant": tenant},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.27",
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                        }
                    ]
                },
            },
        },
    }


async def _prepare(kubeconfig: pathlib.Path, sets: int) -> None:
    """The second tenant, then `sets` ReplicaSets split between it and the admin's tenant."""
    async with client.Client.from_kubeconfig(kubeconfig, qps=5000, burst=5000) as api:
        await api.create(TENANTS, {"metadata": {"name": SECOND_TENANT}})
        # The tenant controller makes the tenant's default namespace.
        with trio.fail_after(30):
            while True:
                try:
                    await api.get(NAMESPACES, "default", tenant=SECOND_TENANT)
                    break
                except errors.NotFound:
                    await trio.sleep(0.05)
        own = api.config.tenant or resources.SYSTEM_TENANT
        await cluster.create_all(
            api,
            [
                (REPLICASETS, _replica_set(own if i % 2 == 0 else SECOND_TENANT, i))
                for i in range(sets)
            ],
        )
        listed = await api.list_all(REPLICASETS, tenant=resources.ALL_TENANTS)
        if len(listed["items"]) != sets:
            raise RuntimeError(f"{len(listed['items'])} of {sets} ReplicaSets were created")


async def _list_cost(kubeconfig: pathlib.Path, server_pid: int) -> float:
    """The API server's CPU seconds for one poll of every ReplicaSet (mean of 10)."""
    async with client.Client.from_kubeconfig(kubeconfig, qps=5000, burst=5000) as api:
        began = cluster.process_cpu(server_pid)
        for _ in range(10):
            await api.list_all(REPLICASETS, tenant=resources.ALL_TENANTS)
        return (cluster.process_cpu(server_pid) - began) / 10


def _ready(replica_set: Obj) -> bool:
    return (replica_set.get("status") or {}).get("replicas") == REPLICAS


@dataclasses.dataclass(frozen=True, slots=True)
class Convergence:
    seconds: float
    registered: float
    server_cpu_registered: float
    polls: int


async def _converge(
    kubeconfig: pathlib.Path,
    managers: list[subprocess.Popen[bytes]],
    sets: int,
    *,
    server_pid: int,
    began: float,
    server_began: float,
) -> Convergence:
    """From `began` until every ReplicaSet reports its replicas; also when every manager had
    registered its ControllerInstance, and the API server's CPU seconds by then."""
    registered: tuple[float, float] | None = None
    polls = 0
    async with client.Client.from_kubeconfig(kubeconfig, qps=5000, burst=5000) as api:
        with trio.fail_after(CONVERGE_TIMEOUT):
            while True:
                if registered is None:
                    instances = (await api.list(INSTANCES))["items"]
                    if len(instances) >= len(managers):
                        registered = (
                            time.perf_counter() - began,
                            cluster.process_cpu(server_pid) - server_began,
                        )
                listed = await api.list_all(REPLICASETS, tenant=resources.ALL_TENANTS)
                polls += 1
                if sum(1 for item in listed["items"] if _ready(item)) == sets:
                    ended = time.perf_counter() - began
                    if registered is None:
                        registered = (ended, cluster.process_cpu(server_pid) - server_began)
                    return Convergence(ended, *registered, polls)
                for index, manager in enumerate(managers):
                    if manager.poll() is not None:
                        raise RuntimeError(
                            f"workload controller manager {index} exited with "
                            f"{manager.returncode}; see manager-{index}.log"
                        )
                await trio.sleep(POLL_INTERVAL)


async def _count_pods(kubeconfig: pathlib.Path) -> tuple[int, int]:
    """The live pods, and how many of them the scheduler marked `Unschedulable`."""
    async with client.Client.from_kubeconfig(kubeconfig, qps=5000, burst=5000) as api:
        listed = await api.list_all(PODS, tenant=resources.ALL_TENANTS)
    live = [pod for pod in listed["items"] if not pod["metadata"].get("deletionTimestamp")]
    marked = sum(
        1
        for pod in live
        if any(
            condition.get("type") == "PodScheduled" and condition.get("status") == "False"
            for condition in (pod.get("status") or {}).get("conditions") or ()
        )
    )
    return len(live), marked


def _settle(pid: int, *, timeout: float = 15.0) -> None:
    """Wait until the process uses under a tenth of a core (over half a second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        began = cluster.process_cpu(pid)
        time.sleep(0.5)
        if cluster.process_cpu(pid) - began < 0.05:
            return


def _run(workdir: pathlib.Path, count: int, sets: int) -> Result:
    with cluster.arktos(workdir, "up", "--workload-controllers", "0") as (server, kubeconfig):
        trio.run(_prepare, kubeconfig, sets)
        list_cpu = trio.run(_list_cost, kubeconfig, server.pid)
        _settle(server.pid)
        machine_began = _machine_ticks()
        server_began, poller_began = cluster.process_cpu(server.pid), cluster.own_cpu()
        began = time.perf_counter()
        with _managers(workdir, kubeconfig, count) as managers:
            converged = trio.run(
                functools.partial(
                    _converge,
                    kubeconfig,
                    managers,
                    sets,
                    server_pid=server.pid,
                    began=began,
                    server_began=server_began,
                )
            )
            server_cpu = cluster.process_cpu(server.pid) - server_began
            poller_cpu = cluster.own_cpu() - poller_began
            manager_cpu = tuple(cluster.process_cpu(m.pid) for m in managers)
            machine = _machine(machine_began, _machine_ticks())
        pods, unschedulable = trio.run(_count_pods, kubeconfig)
    return Result(
        managers=count,
        seconds=converged.seconds,
        registered=converged.registered,
        server_cpu=server_cpu,
        server_cpu_registered=converged.server_cpu_registered,
        manager_cpu=manager_cpu,
        poller_cpu=poller_cpu,
        polls=converged.polls,
        list_cpu=list_cpu,
        machine=machine,
        pods=pods,
        unschedulable=unschedulable,
    )


def _label(count: int) -> str:
    return f"{count} manager process{'es' if count > 1 else ''}"


def _median(runs: list[Result]) -> Result:
    """The run of median time (the lower middle one for an even count)."""
    return sorted(runs, key=lambda r: r.seconds)[(len(runs) - 1) // 2]


def _cpu_note(result: Result) -> str:
    each = ", ".join(f"{cpu:.1f}" for cpu in result.manager_cpu)
    machine = result.machine
    return (
        f"all registered after {result.registered:.1f} s; API server "
        f"{result.server_cpu:.1f} CPU s = {result.server_cpu / result.seconds:.0%} of a core "
        f"over the window, {result.server_share_working:.0%} once all had registered "
        f"(~{result.poll_cpu:.2f} CPU s serving {result.polls} polls); managers "
        f"{sum(result.manager_cpu):.1f} CPU s ({each}); poller {result.poller_cpu:.1f}; "
        f"{result.unschedulable} pods marked Unschedulable by the end; "
        f"machine {machine.busy / machine.total:.0%} busy (other processes "
        f"{result.other_cpu:.1f} CPU s), iowait {machine.iowait / machine.total:.0%}, "
        f"steal {machine.steal / machine.total:.0%}"
    )


def _ceiling(medians: dict[int, Result], pods: int) -> None:
    """Say, from the figures, what the speed-up runs into."""
    one = medians.get(1)
    if one is None:
        return
    server = one.server_share_working
    manager = sum(one.manager_cpu) / one.seconds
    per_pod = (one.server_cpu - one.poll_cpu) / pods * 1000
    report.note(
        f"one manager: {pods / one.seconds:.0f} pods/s. The `arktos up` process (API server, "
        "SQLite store, core controllers, and the scheduler, which marks pods Unschedulable "
        f"with one more write each) spent {per_pod:.2f} ms CPU per pod in the window, polls "
        f"excluded: at that cost one core carries ~{1000 / per_pod:.0f} pods/s. It was busy "
        f"{server:.0%} of a core once the manager had registered; the manager {manager:.0%} of "
        "a core."
    )
    more = [r for count, r in medians.items() if count > 1]
    if more and all(
        r.unschedulable < one.unschedulable and r.server_cpu < one.server_cpu for r in more
    ):
        report.note(
            "With more managers the window is shorter and part of the scheduler's work falls "
            "after it (fewer pods marked by the end), so the API server's CPU seconds in the "
            "window drop."
        )
    for count, result in sorted(medians.items()):
        if count > 1:
            report.note(
                f"{count} managers: API server {result.server_share_working:.0%} of a core once "
                f"all had registered ({result.registered:.1f} s in); managers "
                f"{sum(result.manager_cpu) / result.seconds:.0%} of a core together; machine "
                f"{result.machine.busy / result.machine.total:.0%} busy."
            )
    if server >= 0.8:
        report.note(
            "ceiling: the API server process. Its Python runs on one thread (trio; only "
            "SQLite's C code leaves the GIL), so it uses about one of the cores, and one "
            "manager already keeps it near full; more managers add CPU on the other core, "
            "not API server capacity, and each one adds its own start, lists and hand-over."
        )
    elif manager >= 0.8:
        report.note(
            f"ceiling: the single manager ({manager:.0%} of a core); the API server had "
            f"{1 - server:.0%} of a core to spare, which more managers can use."
        )
    else:
        waiting = one.machine.iowait + one.machine.steal
        report.note(
            "ceiling: with one manager neither the API server nor the manager is saturated; "
            f"{one.registered:.1f} s of the {one.seconds:.1f} s pass before the manager has "
            "registered (process start), the rest in round trips "
            f"(iowait + steal {waiting / one.machine.total:.0%} of the machine)."
        )


def main(*, quick: bool) -> None:
    sets, rounds = (100, 1) if quick else (1_000, 3)
    pods = sets * REPLICAS
    report.title("workload")
    report.note(
        f"{sets} ReplicaSets x {REPLICAS} replicas over 2 tenants, created before any manager "
        f"starts; {rounds} run(s) of each count, a fresh cluster each; {os.cpu_count()} CPUs "
        "shared by the API server, the managers and the poller"
    )
    runs: dict[int, list[Result]] = {count: [] for count in MANAGER_COUNTS}
    for round_ in range(rounds):
        for count in MANAGER_COUNTS:
            label = f"{_label(count)}, run {round_ + 1}"
            with tempfile.TemporaryDirectory(prefix="arktos-bench-workload-") as tmp:
                try:
                    result = _run(pathlib.Path(tmp), count, sets)
                except Exception as exc:
                    report.row(label, "FAILED")
                    report.note("; ".join(report.leaves(exc)))
                    continue
            runs[count].append(result)
            report.row(
                label,
                f"{result.seconds:.2f} s",
                "",
                f"{pods / result.seconds:.0f} pods/s; other processes {result.other_cpu:.1f} CPU s",
            )
            if result.pods != pods:
                report.note(f"  expected {pods} pods, found {result.pods}")
    medians = {count: _median(found) for count, found in runs.items() if found}
    report.note(f"time from the managers' start until all {sets} report {REPLICAS} replicas")
    for count, result in medians.items():
        one = medians.get(1)
        detail = "runs: " + ", ".join(f"{r.seconds:.2f}" for r in runs[count])
        versus = f"{one.seconds / result.seconds:.2f}x vs 1" if one and count > 1 else ""
        report.row(f"{_label(count)} (median)", f"{result.seconds:.2f} s", versus, detail)
        report.note(f"  {_cpu_note(result)}")
    one, two = medians.get(1), medians.get(2)
    if one is not None and two is not None:
        speedup = one.seconds / two.seconds
        report.row(
            "2 processes >= 1.6x faster than 1",
            f"{speedup:.2f}x",
            report.goal(speedup >= 1.6, ">= 1.6x") if not quick else "",
        )
    _ceiling(medians, pods)
    disturbed = [
        f"{count} ({r.other_cpu / r.machine.total:.0%})"
        for count, r in medians.items()
        if r.other_cpu > 0.1 * r.machine.total
    ]
    if disturbed:
        report.note(
            "caution: processes outside the benchmark took over a tenth of the machine in the "
            f"median run with manager count(s) {', '.join(disturbed)}; those figures are skewed."
        )
