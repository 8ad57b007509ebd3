"""`python -m bench controllers`: the core controllers and the informer machinery.

* Deleting a tenant that holds 50 namespaces of 100 config maps each: time from the
  DELETE until the tenant is gone, which the tenant controller allows only once nothing
  of it is left (goal: under 10 s).
* Informer cold start over 10,000 pods: time from `run()` to synced (goal: under 1 s),
  and the memory each cached pod costs, measured with tracemalloc.

Each measurement runs against a real `arktos up` (or `arktos apiserver`) subprocess on a
fresh data dir and a free loopback port; the benchmark itself is a client like any other.
"""

from __future__ import annotations

import gc
import pathlib
import statistics
import tempfile
import time
import tracemalloc

import trio

from arktos_lite import client, machinery
from arktos_lite.api import errors, resources
from bench import _cluster as cluster, _report as report

REGISTRY = resources.Registry()


def _core(plural: str) -> resources.Resource:
    found = REGISTRY.get("", "v1", plural)
    assert found is not None
    return found


TENANTS, NAMESPACES, CONFIGMAPS, PODS = map(_core, ("tenants", "namespaces", "configmaps", "pods"))


def _ns(tenant: str, name: str) -> dict:
    return {"metadata": {"name": name, "tenant": tenant}}


def _configmap(tenant: str, namespace: str, index: int) -> dict:
    return {
        "metadata": {"name": f"cm-{index}", "namespace": namespace, "tenant": tenant},
        "data": {"key": "value " * 20},
    }


async def _tenant_deletion(kubeconfig: pathlib.Path, *, namespaces: int, per: int) -> float:
    async with client.Client.from_kubeconfig(kubeconfig, qps=5000, burst=5000) as api:
        await api.create(TENANTS, {"metadata": {"name": "big"}})
        # The tenant controller creates the default namespace; wait for it to be usable.
        with trio.fail_after(10):
            while True:
                try:
                    await api.get(NAMESPACES, "default", tenant="big")
                    break
                except errors.NotFound:
                    await trio.sleep(0.05)
        await cluster.create_all(
            api, [(NAMESPACES, _ns("big", f"ns-{n}")) for n in range(namespaces)]
        )
        await cluster.create_all(
            api,
            [
                (CONFIGMAPS, _configmap("big", f"ns-{n}", i))
                for n in range(namespaces)
                for i in range(per)
            ],
        )
        started = time.perf_counter()
        await api.delete(TENANTS, "big")
        with trio.fail_after(120):
            while True:
                try:
                    await api.get(TENANTS, "big")
                except errors.NotFound:
                    return time.perf_counter() - started
                await trio.sleep(0.02)


def _pod(index: int) -> dict:
    return {
        "metadata": {
            "name": f"pod-{index}",
            "namespace": "default",
            "labels": {"app": "web", "tier": "frontend", "index": str(index % 100)},
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "nginx:1.27",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                    "env": [{"name": "MODE", "value": "production"}],
                }
            ],
        },
    }


async def _sync_informer(api: client.Client, pods: int) -> tuple[float, machinery.Informer]:
    """Seconds from a fresh pod informer's start until it has synced, and the informer."""
    informer = machinery.InformerFactory(api).informer(PODS)
    async with trio.open_nursery() as nursery:
        started = time.perf_counter()
        nursery.start_soon(informer.run)
        await informer.wait_synced()
        took = time.perf_counter() - started
        nursery.cancel_scope.cancel()
    assert len(informer.list()) == pods
    return took, informer


async def _informer_cold_start(
    kubeconfig: pathlib.Path, *, pods: int, runs: int
) -> tuple[list[float], float]:
    """(seconds to sync per run, bytes per cached pod) for fresh pod informers.

    Memory is measured in a run of its own: tracemalloc slows allocation severalfold.
    """
    async with client.Client.from_kubeconfig(kubeconfig, qps=5000, burst=5000) as api:
        await cluster.create_all(api, [(PODS, _pod(i)) for i in range(pods)])
        times = [(await _sync_informer(api, pods))[0] for _ in range(runs)]
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        # The informer is kept (bound here) until its memory has been measured.
        _took, _informer = await _sync_informer(api, pods)
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        return times, held / pods


def main(*, quick: bool) -> None:
    # The benchmark stands in for a component process: the same collector thresholds.
    gc.set_threshold(50_000, 20, 100)
    namespaces, per, pods, runs = (5, 100, 1_000, 1) if quick else (50, 100, 10_000, 3)
    report.title("controllers")
    with tempfile.TemporaryDirectory(prefix="arktos-bench-") as tmp:
        workdir = pathlib.Path(tmp)
        deletions = []
        for run in range(runs):
            with cluster.arktos(workdir / f"deletion-{run}", "up") as (_up, kubeconfig):
                deletions.append(
                    trio.run(lambda: _tenant_deletion(kubeconfig, namespaces=namespaces, per=per))
                )
        median = statistics.median(deletions)
        report.row(
            f"delete a tenant of {namespaces} namespaces x {per} config maps",
            f"{median:.2f} s",
            report.goal(median < 10, "< 10 s") if not quick else "",
            "runs: " + ", ".join(f"{d:.2f}" for d in deletions),
        )
        with cluster.arktos(workdir / "informer", "apiserver") as (_server, kubeconfig):
            times, per_pod = trio.run(
                lambda: _informer_cold_start(kubeconfig, pods=pods, runs=runs)
            )
        took = statistics.median(times)
        report.row(
            f"informer cold start, {pods} pods",
            f"{took * 1000:.0f} ms",
            report.goal(took < 1, "< 1 s") if not quick else "",
            "runs: " + ", ".join(f"{t * 1000:.0f}" for t in times),
        )
        report.row("memory per cached pod (tracemalloc)", f"{per_pod / 1024:.1f} KiB")
