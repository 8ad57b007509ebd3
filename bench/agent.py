"""`python -m bench agent`: the node agent, real and hollow.

* Pod startup latency, as Kubernetes' pod startup SLO measures it: 100 pods (one container
  running `sleep`) are created against `arktos up` (embedded process runtime, one node);
  each pod's latency runs from just before its create request until a watch shows it
  `Running`. Paced at 10 pods/s, as the SLO is measured at a steady creation rate (goal:
  p99 under 1 s; Kubernetes' SLO: p99 <= 5 s), and all at once, 20 creates in flight
  (saturation: the latency then is mostly the queue).
* Hollow nodes: `arktos up --no-agent` and `arktos agent --hollow 1000` in two processes;
  30 pods per node are created and scheduled onto them; once every pod is Running, CPU
  (share of one core) and RSS of the agent process and of the API server (which also runs
  the controllers and the scheduler) over a steady minute, and whether every node stayed
  Ready. Goal: the cluster stays Ready on 2 cores.

`--quick` runs 20 pods and 100 hollow nodes for 20 s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import pathlib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import trio

from arktos_lite import client
from arktos_lite.api import resources
from bench import _cluster as cluster, _report as report

REGISTRY = resources.Registry()
PODS = REGISTRY.get("", "v1", "pods")
NODES = REGISTRY.get("", "v1", "nodes")
assert PODS
assert NODES

STARTUP_CONCURRENCY = 20
STARTUP_RATE = 10.0
RUNNING_TIMEOUT = 900.0
HOLLOW_PODS_PER_NODE = 30

Obj = dict[str, Any]


def _pod(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}],
        },
    }


async def _startup_latencies(
    kubeconfig: pathlib.Path, count: int, *, rate: float | None, prefix: str
) -> list[float]:
    """Create `count` pods, `rate` per second or all at once (`STARTUP_CONCURRENCY` in
    flight); the latency of each, from its create request to Running seen by a watch."""
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    names = [f"{prefix}-{index}" for index in range(count)]
    async with client.Client.from_kubeconfig(kubeconfig, qps=5000, burst=10000) as api:
        listed = await api.list(PODS, namespace="default")
        version = listed["metadata"]["resourceVersion"]
        all_running = trio.Event()

        def seen(pod: Obj) -> None:
            name = pod["metadata"].get("name")
            if (
                name in created
                and name not in running
                and ((pod.get("status") or {}).get("phase") == "Running")
            ):
                running[name] = time.perf_counter()
                if len(running) == count:
                    all_running.set()

        async def watch() -> None:
            async with api.watch(PODS, namespace="default", resource_version=version) as events:
                async for event in events:
                    seen(event.object)

        async def create(name: str) -> None:
            created[name] = time.perf_counter()
            await api.create(PODS, _pod(name))

        async def create_all() -> None:
            if rate is None:
                await cluster.create_all(api, [(PODS, _pod(name)) for name in names])
                return
            start = trio.current_time()
            async with trio.open_nursery() as creators:
                for index, name in enumerate(names):
                    await trio.sleep_until(start + index / rate)
                    creators.start_soon(create, name)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            if rate is None:
                # create_all sends them as fast as it can; each clock starts at once.
                now = time.perf_counter()
                created.update(dict.fromkeys(names, now))
            await create_all()
            with trio.fail_after(RUNNING_TIMEOUT):
                await all_running.wait()
            nursery.cancel_scope.cancel()
        await api.delete_collection(PODS, namespace="default")
        # The next run starts on an idle node.
        with trio.fail_after(RUNNING_TIMEOUT):
            while (await api.list(PODS, namespace="default"))["items"]:  # noqa: ASYNC110
                await trio.sleep(0.5)
    return sorted(running[name] - created[name] for name in names)


def startup(*, quick: bool) -> None:
    count = 20 if quick else 100
    report.title(f"pod startup latency, process runtime, {count} pods on one node")
    with (
        tempfile.TemporaryDirectory() as workdir,
        cluster.arktos(pathlib.Path(workdir), "up") as (
            _process,
            kubeconfig,
        ),
    ):
        paced = trio.run(
            functools.partial(
                _startup_latencies, kubeconfig, count, rate=STARTUP_RATE, prefix="paced"
            )
        )
        burst = trio.run(
            functools.partial(_startup_latencies, kubeconfig, count, rate=None, prefix="burst")
        )
    p99 = report.percentile(paced, 0.99)
    report.row(
        f"paced, {STARTUP_RATE:g} pods/s: p50", f"{report.percentile(paced, 0.5) * 1000:,.0f} ms"
    )
    report.row(
        f"paced, {STARTUP_RATE:g} pods/s: p99",
        f"{p99 * 1000:,.0f} ms",
        report.goal(p99 < 1.0, "p99 < 1 s"),
    )
    report.row("all at once: p50", f"{report.percentile(burst, 0.5) * 1000:,.0f} ms")
    report.row("all at once: p99", f"{report.percentile(burst, 0.99) * 1000:,.0f} ms")


@dataclasses.dataclass(frozen=True, slots=True)
class _Sample:
    agent_cpu: float
    server_cpu: float
    agent_rss_mb: float
    server_rss_mb: float
    ready_nodes: int
    nodes: int


def _rss_mb(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _ready(node: Obj) -> bool:
    return any(
        condition.get("type") == "Ready" and condition.get("status") == "True"
        for condition in (node.get("status") or {}).get("conditions") or []
    )


@contextlib.contextmanager
def _hollow_agent(
    workdir: pathlib.Path, kubeconfig: pathlib.Path, count: int
) -> Iterator[subprocess.Popen[bytes]]:
    log = workdir / "agent.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [
                *cluster.ARKTOS,
                "agent",
                "--hollow",
                str(count),
                "--node-name",
                "hollow",
                "--kubeconfig",
                str(kubeconfig),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
        )
    try:
        yield process
    finally:
        cluster.stop(process)


async def _hollow_run(
    kubeconfig: pathlib.Path, *, agent_pid: int, server_pid: int, nodes: int, window: float
) -> tuple[float, _Sample]:
    async with client.Client.from_kubeconfig(kubeconfig, qps=5000, burst=10000) as api:
        with trio.fail_after(RUNNING_TIMEOUT):
            while sum(map(_ready, (await api.list(NODES))["items"])) < nodes:  # noqa: ASYNC110
                await trio.sleep(1)
        started = time.perf_counter()
        pods = [(PODS, _pod(f"hollow-{index}")) for index in range(nodes * HOLLOW_PODS_PER_NODE)]
        await cluster.create_all(api, pods)
        with trio.fail_after(RUNNING_TIMEOUT):
            while True:
                listed = (await api.list(PODS, namespace="default"))["items"]
                if sum(
                    (pod.get("status") or {}).get("phase") == "Running" for pod in listed
                ) == len(pods):
                    break
                await trio.sleep(2)
        all_running = time.perf_counter() - started
        agent_cpu, server_cpu = cluster.process_cpu(agent_pid), cluster.process_cpu(server_pid)
        await trio.sleep(window)
        ready = sum(map(_ready, (await api.list(NODES))["items"]))
        sample = _Sample(
            agent_cpu=(cluster.process_cpu(agent_pid) - agent_cpu) / window,
            server_cpu=(cluster.process_cpu(server_pid) - server_cpu) / window,
            agent_rss_mb=_rss_mb(agent_pid),
            server_rss_mb=_rss_mb(server_pid),
            ready_nodes=ready,
            nodes=nodes,
        )
        return all_running, sample


def hollow(*, quick: bool) -> None:
    nodes = 100 if quick else 1_000
    window = 20.0 if quick else 60.0
    report.title(f"hollow nodes: {nodes} nodes x {HOLLOW_PODS_PER_NODE} pods")
    with tempfile.TemporaryDirectory() as workdir:
        work = pathlib.Path(workdir)
        with (
            cluster.arktos(work, "up", "--no-agent") as (server, kubeconfig),
            _hollow_agent(work, kubeconfig, nodes) as agent,
        ):
            all_running, sample = trio.run(
                lambda: _hollow_run(
                    kubeconfig,
                    agent_pid=agent.pid,
                    server_pid=server.pid,
                    nodes=nodes,
                    window=window,
                )
            )
    report.row("pods created -> all Running", f"{all_running:,.1f} s")
    report.row(
        f"nodes Ready after a steady {window:g} s",
        f"{sample.ready_nodes} / {sample.nodes}",
        report.goal(sample.ready_nodes == sample.nodes, "all Ready"),
    )
    report.row(
        "agent process: CPU (cores), RSS", f"{sample.agent_cpu:.2f}, {sample.agent_rss_mb:,.0f} MB"
    )
    report.row(
        "API server process: CPU (cores), RSS",
        f"{sample.server_cpu:.2f}, {sample.server_rss_mb:,.0f} MB",
    )
    report.note(f"{os.cpu_count()} CPUs shared by the API server, the agent and this poller")


def main(*, quick: bool) -> None:
    startup(quick=quick)
    hollow(quick=quick)
