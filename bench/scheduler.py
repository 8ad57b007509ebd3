"""`python -m bench scheduler`: scheduling throughput, as kube-scheduler's scheduler_perf
measures it.

Each case runs against a fresh `arktos apiserver --plain-http` subprocess on a free
loopback port. Fake nodes (4 cpu, 32Gi, 110 pods, runtimes ready) and pending pods
(100m cpu, 500Mi each, as scheduler_perf's defaults) are created ahead; then a
`Scheduler` starts in this process and the clock runs from its start until the last pod
is bound (the API server acknowledged the binding). Cases:

* SchedulingBasic: 1,000 nodes / 5,000 pods (goal >= 500 pods/s) and 5,000 nodes /
  10,000 pods (goal >= 300 pods/s; kube-scheduler's CI threshold is 680).
* SchedulingPodAntiAffinity: 1,000 nodes, 1,000 pods that each repel every other
  (required anti-affinity on the hostname), so each lands on a node of its own.

Besides pods/s the table shows where the time went: CPU seconds of the scheduler (this
process) and of the API server process over the scheduling window, and the time to
sync the caches. Two baselines bracket the bottleneck: the scheduling cycles alone
(the same plugins over an in-memory cache of the same nodes, no API) and the binding
writes alone (the same number of `pods/binding` POSTs, as many at once as the scheduler
sends, nothing decided). `--quick` runs each case about ten times smaller. Client,
scheduler and server share the machine's CPUs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import tempfile
import time
from typing import Any

import trio

from arktos_lite import client, scheduler
from arktos_lite.api import resources
from arktos_lite.scheduler import (
    _cache as scheduler_cache,
    _config as scheduler_config,
    _framework as scheduler_framework,
    _pods as scheduler_pods,
)
from bench import _cluster as cluster, _report as report

BIND_TIMEOUT = 600.0

REGISTRY = resources.Registry()
PODS = REGISTRY.get("", "v1", "pods")
NODES = REGISTRY.get("", "v1", "nodes")
assert PODS
assert NODES

Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Case:
    name: str
    nodes: int
    pods: int
    anti_affinity: bool = False
    goal: float | None = None


FULL = (
    Case("SchedulingBasic", 1_000, 5_000, goal=500.0),
    Case("SchedulingBasic", 5_000, 10_000, goal=300.0),
    Case("SchedulingPodAntiAffinity", 1_000, 1_000, anti_affinity=True),
)
QUICK = (
    Case("SchedulingBasic", 100, 500),
    Case("SchedulingBasic", 500, 1_000),
    Case("SchedulingPodAntiAffinity", 100, 100, anti_affinity=True),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    seconds: float
    sync_seconds: float
    scheduler_cpu: float
    server_cpu: float
    attempts: int
    bound: int


def _apiserver(tmp: str) -> contextlib.AbstractContextManager[tuple[Any, pathlib.Path]]:
    return cluster.arktos(pathlib.Path(tmp), "apiserver", "--plain-http")


def _node(index: int) -> Obj:
    name = f"node-{index}"
    allocatable = {"cpu": "4", "memory": "32Gi", "pods": "110"}
    return {
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "topology.kubernetes.io/zone": f"zone-{index % 3}",
            },
        },
        "status": {
            "capacity": allocatable,
            "allocatable": allocatable,
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "ContainerRuntimeReady", "status": "True"},
                {"type": "VmRuntimeReady", "status": "True"},
            ],
        },
    }


def _pod(index: int, *, anti_affinity: bool) -> Obj:
    spec: Obj = {
        "containers": [
            {
                "name": "pause",
                "image": "registry.k8s.io/pause:3.10",
                "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}},
            }
        ]
    }
    labels = {"app": "bench"}
    if anti_affinity:
        labels["color"] = "green"
        spec["affinity"] = {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": {"color": "green"}},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        }
    return {
        "metadata": {"name": f"pod-{index}", "namespace": "default", "labels": labels},
        "spec": spec,
    }


async def _run_case(case: Case, kubeconfig: pathlib.Path, server_pid: int) -> Result:
    async with client.Client.from_kubeconfig(kubeconfig, qps=100_000, burst=100_000) as api:
        await cluster.create_all(api, [(NODES, _node(i)) for i in range(case.nodes)])
        await cluster.create_all(
            api,
            [(PODS, _pod(i, anti_affinity=case.anti_affinity)) for i in range(case.pods)],
        )
        # The scheduler gets a client of its own, as a separate component would.
        async with client.Client.from_kubeconfig(
            kubeconfig, qps=100_000, burst=100_000
        ) as scheduler_api:
            placed = scheduler.Scheduler(scheduler_api)
            async with trio.open_nursery() as nursery:
                began = time.perf_counter()
                cpu_began, server_began = cluster.own_cpu(), cluster.process_cpu(server_pid)
                await nursery.start(placed.run)
                synced = time.perf_counter()
                # Polling the scheduler's own counter costs this process next to nothing.
                with trio.fail_after(BIND_TIMEOUT):
                    while placed.stats.bound < case.pods:  # noqa: ASYNC110
                        await trio.sleep(0.005)
                ended = time.perf_counter()
                cpu_ended, server_ended = cluster.own_cpu(), cluster.process_cpu(server_pid)
                stats = placed.stats
                nursery.cancel_scope.cancel()
        listed = await api.list_all(PODS, namespace="default")
        bound = sum(1 for p in listed["items"] if (p.get("spec") or {}).get("nodeName"))
        if bound != case.pods:
            raise RuntimeError(f"{bound} of {case.pods} pods are bound")
        if case.anti_affinity:
            hosts = {p["spec"]["nodeName"] for p in listed["items"]}
            if len(hosts) != case.pods:
                raise RuntimeError("two pods that repel each other share a node")
        return Result(
            seconds=ended - synced,
            sync_seconds=synced - began,
            scheduler_cpu=cpu_ended - cpu_began,
            server_cpu=server_ended - server_began,
            attempts=stats.attempts,
            bound=bound,
        )


def _cycles_alone(case: Case) -> float:
    """Pods/s of the scheduling cycles alone: the default plugins over an in-memory cache."""
    held = scheduler_cache.Cache()
    for i in range(case.nodes):
        held.add_node(_node(i))
    chosen = scheduler_config.build_framework(
        scheduler.SchedulerConfig(), scheduler_framework.Handle(snapshot=held)
    )
    pending = []
    for i in range(case.pods):
        obj = _pod(i, anti_affinity=case.anti_affinity)
        obj["metadata"]["uid"] = f"uid-{i}"
        pending.append(scheduler_pods.PodInfo.parse(obj))
    began = time.process_time()
    for info in pending:
        held.assume_pod(info, chosen.schedule(held, info).node)
    return case.pods / (time.process_time() - began)


async def _binds_alone(case: Case, kubeconfig: pathlib.Path) -> float:
    """Bindings/s of POSTs alone, as many at once as the scheduler sends."""
    async with client.Client.from_kubeconfig(kubeconfig, qps=100_000, burst=100_000) as api:
        names = [f"bind-{i}" for i in range(case.pods)]
        await cluster.create_all(
            api,
            [
                (
                    PODS,
                    {
                        **_pod(i, anti_affinity=False),
                        "metadata": {"name": n, "namespace": "default"},
                    },
                )
                for i, n in enumerate(names)
            ],
        )
        send, receive = trio.open_memory_channel[str](len(names))
        for name in names:
            send.send_nowait(name)
        send.close()

        async def bind() -> None:
            async for name in receive:
                body = {
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": name},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": "node-0"},
                }
                await api.post_subresource(PODS, name, "binding", body, namespace="default")

        began = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(scheduler.SchedulerConfig().bind_workers):
                nursery.start_soon(bind)
        return case.pods / (time.perf_counter() - began)


def main(*, quick: bool) -> None:
    cases = QUICK if quick else FULL
    report.title("scheduler")
    report.note(f"{os.cpu_count()} CPUs shared by the API server, the scheduler and the client")
    for case in cases:
        with (
            tempfile.TemporaryDirectory(prefix="arktos-bench-scheduler-") as tmp,
            _apiserver(tmp) as (process, kubeconfig),
        ):
            try:
                result = trio.run(_run_case, case, kubeconfig, process.pid)
            except Exception as exc:
                report.row(f"{case.name} {case.nodes} nodes / {case.pods} pods", "FAILED")
                report.note("; ".join(report.leaves(exc)))
                continue
        rate = case.pods / result.seconds
        goal = report.goal(rate >= case.goal, f">= {case.goal:.0f}") if case.goal else ""
        report.row(
            f"{case.name}: {case.nodes} nodes, {case.pods} pods",
            f"{rate:.0f} pods/s",
            goal if not quick else "",
            f"{result.seconds:.2f} s",
        )
        report.note(
            f"  cache sync {result.sync_seconds:.2f} s; over the window the scheduler used "
            f"{result.scheduler_cpu:.2f} CPU s ({result.scheduler_cpu / result.seconds:.0%}), "
            f"the API server {result.server_cpu:.2f} CPU s "
            f"({result.server_cpu / result.seconds:.0%}); {result.attempts} attempts"
        )
        report.row(
            "  baseline: scheduling cycles alone (no API)", f"{_cycles_alone(case):.0f} pods/s"
        )
        if not case.anti_affinity:
            with (
                tempfile.TemporaryDirectory(prefix="arktos-bench-scheduler-") as tmp,
                cluster.arktos(pathlib.Path(tmp), "apiserver", "--plain-http") as (
                    process,
                    kubeconfig,
                ),
            ):
                rate = trio.run(_binds_alone, case, kubeconfig)
            report.row("  baseline: binding writes alone (no scheduling)", f"{rate:.0f} binds/s")
