"""Three `arktos workload-controller-manager` processes beside `arktos up
--workload-controllers 0`, with ReplicaSets and Deployments in two tenants: they split the
work; when one is killed (`kill -9`) the others take its range over and scale-ups still
converge; a new one joins and the ranges are split again. At no sampled moment does a
ReplicaSet have more pods than it asked for, or a pod two controllers."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from arktos_lite import client
from arktos_lite.api import resources

pytestmark = pytest.mark.slow

READY_PREFIX = "arktos-lite is ready at "
REGISTRY = resources.Registry()
REPLICASETS = REGISTRY.get("apps", "v1", "replicasets")
DEPLOYMENTS = REGISTRY.get("apps", "v1", "deployments")
TENANTS = REGISTRY.get("", "v1", "tenants")
NAMESPACES = REGISTRY.get("", "v1", "namespaces")
PODS = REGISTRY.get("", "v1", "pods")
INSTANCES = REGISTRY.get("", "v1", "controllerinstances")
assert REPLICASETS is not None
assert PODS is not None
assert INSTANCES is not None
assert DEPLOYMENTS is not None
assert TENANTS is not None
assert NAMESPACES is not None
TENANT_NAMES = ("system", "team")

# Renewals every second: a killed instance is dead after three seconds.
CONFIG = {
    "reportHealthIntervalInSecond": 1,
    "resyncPeriod": "12h0m0s",
    "qps": 500,
    "controllers": [{"type": "replicaset", "workers": 5}, {"type": "deployment", "workers": 2}],
}


@contextlib.contextmanager
def process(command: list[str], log: pathlib.Path, **env: str) -> Iterator[subprocess.Popen[str]]:
    with log.open("w") as log_file:
        running = subprocess.Popen(
            [sys.executable, "-m", "arktos_lite", *command],
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            env={**os.environ, **env},
        )
    try:
        yield running
    finally:
        if running.poll() is None:
            running.send_signal(signal.SIGTERM)
            try:
                running.wait(timeout=15)
            except subprocess.TimeoutExpired:
                running.kill()
                running.wait()
        assert running.stdout is not None
        running.stdout.close()


def workload(kind: str, name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


class Sampler:
    """Counts each ReplicaSet's live pods; records any moment the promises break."""

    def __init__(self, api: client.Client) -> None:
        self.api = api
        self.broken: list[str] = []
        self.pods: dict[str, int] = {}

    async def sample(self) -> None:
        # Pods first, sets second: sets only ever grow here, so a set read after its pods
        # never wants fewer than it did when they were counted.
        pods = (await self.api.list_all(PODS, tenant=resources.ALL_TENANTS))["items"]
        sets = (await self.api.list_all(REPLICASETS, tenant=resources.ALL_TENANTS))["items"]
        wanted = {
            f"{rs['metadata']['tenant']}/{rs['metadata']['name']}": rs["spec"]["replicas"]
            for rs in sets
        }
        counts: dict[str, int] = {}
        for pod in pods:
            meta = pod["metadata"]
            controllers = [o for o in meta.get("ownerReferences") or [] if o.get("controller")]
            if len(controllers) > 1:
                self.broken.append(f"pod {meta['name']} has controllers {controllers}")
            if controllers and not meta.get("deletionTimestamp"):
                key = f"{meta['tenant']}/{controllers[0]['name']}"
                counts[key] = counts.get(key, 0) + 1
        self.broken.extend(
            f"{key} has {count} pods, wants {wanted[key]}"
            for key, count in counts.items()
            if key in wanted and count > wanted[key]
        )
        self.pods = counts

    async def run(self) -> None:
        while True:
            await self.sample()
            await trio.sleep(0.3)


async def converged(sampler: Sampler, expected: dict[str, int]) -> None:
    with trio.fail_after(40):
        while True:
            if all(sampler.pods.get(key) == count for key, count in expected.items()):
                return
            await trio.sleep(0.2)


async def ranges(api: client.Client, kind: str) -> list[str]:
    listed = (await api.list(INSTANCES))["items"]
    return sorted(
        (item["metadata"].get("annotations") or {}).get(
            "controllers.arktos.futurewei.com/range", ""
        )
        for item in listed
        if item["controllerType"] == kind
    )


async def split_among(api: client.Client, count: int) -> None:
    """Until each controller type has `count` live instances that together hold it all."""
    with trio.fail_after(40):
        while True:
            held = [await ranges(api, kind) for kind in ("ReplicaSet", "Deployment")]
            if all(
                len(found) == count and all(r and r != "(empty)" for r in found) for found in held
            ):
                return
            await trio.sleep(0.2)


async def tenant_ready(api: client.Client, tenant: str) -> None:
    """Until the tenant controller has made the tenant's namespaces."""
    with trio.fail_after(20):
        while True:
            if (await api.list(NAMESPACES, tenant=tenant))["items"]:
                return
            await trio.sleep(0.1)


def test_manager_processes_share_hand_over_and_re_split(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "wcm.json"
    config.write_text(json.dumps(CONFIG))
    up = ["up", "--data-dir", str(tmp_path / "data"), "--port", "0", "--workload-controllers", "0"]
    with process(up, tmp_path / "up.log") as cluster:
        assert cluster.stdout is not None
        line = cluster.stdout.readline()
        assert line.startswith(READY_PREFIX), (tmp_path / "up.log").read_text()
        kubeconfig = line.split("; kubeconfig: ")[1].strip()
        manager = ["workload-controller-manager", "--config", str(config)]

        def start(number: int) -> contextlib.AbstractContextManager[subprocess.Popen[str]]:
            return process(manager, tmp_path / f"wcm-{number}.log", KUBECONFIG=kubeconfig)

        with start(1) as first, start(2), start(3):

            async def scenario() -> None:
                async with client.Client.from_kubeconfig(kubeconfig, qps=1000, burst=1000) as api:
                    await api.create(TENANTS, {"metadata": {"name": "team"}})
                    await tenant_ready(api, "team")
                    await split_among(api, 3)
                    sampler = Sampler(api)
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(sampler.run)
                        expected: dict[str, int] = {}
                        for tenant in TENANT_NAMES:
                            for i in range(50):
                                await api.create(
                                    REPLICASETS, workload("ReplicaSet", f"rs-{i}", 2), tenant=tenant
                                )
                                expected[f"{tenant}/rs-{i}"] = 2
                            for i in range(10):
                                await api.create(
                                    DEPLOYMENTS,
                                    workload("Deployment", f"web-{i}", 2),
                                    tenant=tenant,
                                )
                        await converged(sampler, expected)
                        first.kill()  # SIGKILL: no chance to hand anything over
                        for key in expected:
                            tenant, name = key.split("/")
                            await api.patch(
                                REPLICASETS,
                                name,
                                {"spec": {"replicas": 3}},
                                namespace="default",
                                tenant=tenant,
                            )
                            expected[key] = 3
                        await converged(sampler, expected)
                        await split_among(api, 2)
                        # Every Deployment made its ReplicaSet, whose pods are all there.
                        for tenant in TENANT_NAMES:
                            sets = (await api.list(REPLICASETS, tenant=tenant))["items"]
                            owned = [s for s in sets if s["metadata"].get("ownerReferences")]
                            assert len(owned) == 10
                            for owned_set in owned:
                                key = f"{tenant}/{owned_set['metadata']['name']}"
                                expected[key] = 2
                        await converged(sampler, expected)
                        with start(4):
                            await split_among(api, 3)
                            for key in list(expected)[:10]:
                                tenant, name = key.split("/")
                                await api.patch(
                                    REPLICASETS,
                                    name,
                                    {"spec": {"replicas": 4}},
                                    namespace="default",
                                    tenant=tenant,
                                )
                                expected[key] = 4
                            await converged(sampler, expected)
                        nursery.cancel_scope.cancel()
                    assert sampler.broken == []

            trio.run(scenario)
