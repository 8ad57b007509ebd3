"""`python -m bench vm`: VM pods on a real guest under QEMU/TCG.

`arktos up --vm-runtime-uri qemu:///embed?root=…` (one node, the VM runtime in process)
and the tiny guest of the e2e tests (tests/e2e/_guest.py: Debian's cloud kernel and a
busybox initramfs that prints a boot marker, then a counter, on its serial console),
imported as a kernel image. Measured from the client's side, polling every 50 ms:

* VM pod create → Running (phase seen by a GET) and create → boot marker in the pod's log
  (the serial console), one pod at a time, each deleted before the next (median of 3; the
  first also pays libvirt's QEMU capability probe).
* Actions on one running VM pod: reboot (POST …/pods/{name}/action → Action complete, and
  → the boot marker seen again), snapshot (memory and disk), restore to it (POST →
  complete). Goals: create → Running under 5 s, each action completes under 5 s (the
  anchor: Arktos issues report 30-40 s to deploy a VM from a local image).

`--quick` runs one of each. Skips (with the reason) where libvirt, QEMU or the guest is
not available.
"""

from __future__ import annotations

import functools
import os
import pathlib
import shutil
import statistics
import subprocess
import tempfile
import time
from typing import Any

import trio
from tests.e2e import _guest

from arktos_lite import client
from arktos_lite.api import errors, resources
from arktos_lite.runtime import vm
from bench import _cluster as cluster, _report as report

REGISTRY = resources.Registry()
PODS = REGISTRY.get("", "v1", "pods")
ACTIONS = REGISTRY.get("", "v1", "actions")
assert PODS
assert ACTIONS

POLL = 0.05
TIMEOUT = 120.0
GOAL_SECONDS = 5.0
NAMESPACE = "default"

Obj = dict[str, Any]


def _vm_pod(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "virtualMachine": {
                "name": name,
                "image": "guest",
                "publicKey": "ssh-ed25519 AAAA bench",  # required, unused by a kernel image
                "resources": {"requests": {"cpu": "1", "memory": "256Mi"}},
            }
        },
    }


async def _until(what: str, check: Any) -> float:
    """Poll the async `check` until it is true; the monotonic time it first was."""
    with trio.move_on_after(TIMEOUT):
        # The server is polled over HTTP: there is no event to wait on.
        while not await check():  # noqa: ASYNC110
            await trio.sleep(POLL)
        return time.monotonic()
    raise RuntimeError(f"not within {TIMEOUT:g} s: {what}")


async def _console(api: client.Client, name: str) -> str:
    try:
        text = await api.request(
            "GET", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}/log", params={"container": name}
        )
    except errors.StatusError:
        return ""  # not started yet
    return text if isinstance(text, str) else ""


async def _boots(api: client.Client, name: str) -> int:
    return (await _console(api, name)).count(_guest.BOOT_MARKER)


async def _create(api: client.Client, name: str) -> tuple[float, float]:
    """Create a VM pod; seconds to Running, and to the boot marker in its log."""

    async def running() -> bool:
        pod = await api.get(PODS, name, namespace=NAMESPACE)
        return (pod.get("status") or {}).get("phase") == "Running"

    async def booted() -> bool:
        return await _boots(api, name) >= 1

    started = time.monotonic()
    await api.create(PODS, _vm_pod(name))
    at_running = await _until(f"{name} Running", running)
    at_marker = await _until(f"{name}'s boot marker", booted)
    return at_running - started, at_marker - started


async def _delete(api: client.Client, name: str) -> None:
    await api.delete(PODS, name, namespace=NAMESPACE, grace_period_seconds=2)

    async def gone() -> bool:
        try:
            await api.get(PODS, name, namespace=NAMESPACE)
        except errors.NotFound:
            return True
        return False

    await _until(f"{name} deleted", gone)


async def _action(api: client.Client, pod: str, body: Obj) -> float:
    """POST a CustomAction; seconds until its Action is complete (an error raises)."""
    started = time.monotonic()
    custom = {"apiVersion": "v1", "kind": "CustomAction", **body}
    answer = await api.post_subresource(PODS, pod, "action", custom, namespace=NAMESPACE)
    name = (answer.get("details") or {}).get("name")
    if not name:
        raise RuntimeError(f"the action answer names no Action: {answer}")
    status: Obj = {}

    async def complete() -> bool:
        nonlocal status
        status = (await api.get(ACTIONS, name, namespace=NAMESPACE)).get("status") or {}
        return bool(status.get("complete"))

    done = await _until(f"action {name} complete", complete)
    if status.get("error"):
        raise RuntimeError(f"action {body['operation']} failed: {status['error']}")
    return done - started


def _seconds(samples: list[float]) -> str:
    return ", ".join(f"{s:.2f}" for s in samples)


def _row(label: str, samples: list[float], *, goal: bool) -> None:
    median = statistics.median(samples)
    verdict = report.goal(median < GOAL_SECONDS, f"< {GOAL_SECONDS:g} s") if goal else ""
    report.row(label, f"{median:.2f} s", verdict, f"samples {_seconds(samples)}")


async def _measure(kubeconfig: pathlib.Path, *, iterations: int) -> None:
    async with client.Client.from_kubeconfig(kubeconfig) as api:
        to_running: list[float] = []
        to_marker: list[float] = []
        for index in range(iterations):
            name = f"bench-vm-{index}"
            running, marker = await _create(api, name)
            to_running.append(running)
            to_marker.append(marker)
            if index < iterations - 1:
                await _delete(api, name)  # one guest at a time
        _row("VM pod create -> Running (median)", to_running, goal=True)
        _row("VM pod create -> boot marker in the log (median)", to_marker, goal=True)

        pod = f"bench-vm-{iterations - 1}"
        reboot: list[float] = []
        reboot_marker: list[float] = []
        snapshot: list[float] = []
        restore: list[float] = []
        for index in range(iterations):
            seen = await _boots(api, pod)
            started = time.monotonic()
            reboot.append(await _action(api, pod, {"operation": "reboot", "rebootParams": {}}))

            async def booted_again(seen: int = seen) -> bool:
                return await _boots(api, pod) > seen

            reboot_marker.append(
                await _until("the marker after the reboot", booted_again) - started
            )
            snap = f"s{index}"
            snapshot.append(
                await _action(
                    api, pod, {"operation": "snapshot", "snapshotParams": {"snapshotName": snap}}
                )
            )
            await trio.sleep(1.0)  # let the guest move on from the snapshot
            restore.append(
                await _action(
                    api, pod, {"operation": "restore", "restoreParams": {"snapshotID": snap}}
                )
            )
        _row("reboot action: POST -> complete (median)", reboot, goal=True)
        _row("reboot action: POST -> boot marker again (median)", reboot_marker, goal=False)
        _row("snapshot action (memory + disk): POST -> complete (median)", snapshot, goal=True)
        _row("restore action: POST -> complete (median)", restore, goal=True)
        await _delete(api, pod)


def _unavailable() -> str:
    """Why this machine cannot run the guest ("" when it can)."""
    missing = vm.libvirt_missing()
    if missing:
        return missing
    for tool in ("qemu-system-x86_64", "qemu-img"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return ""


def main(*, quick: bool) -> None:
    iterations = 1 if quick else 3
    report.title(f"VM pods on a real guest under QEMU/TCG (256 MiB, 1 vCPU; {iterations}x)")
    why = _unavailable()
    if why:
        report.note(f"skipped: {why}")
        return
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache"))
    try:
        guest = _guest.build_guest(cache / "arktos-lite" / "guest")
    except _guest.GuestUnavailable as e:
        report.note(f"skipped: cannot build the guest: {e}")
        return
    if guest.build_seconds:
        report.row(
            "guest build (kernel package download, initramfs)", f"{guest.build_seconds:.1f} s"
        )
    else:
        report.note(f"guest reused from {guest.kernel.parent}")
    with tempfile.TemporaryDirectory(prefix="bench-vm-") as tmp:
        workdir = pathlib.Path(tmp)
        uri = f"qemu:///embed?root={workdir / 'up' / 'libvirt'}"
        with cluster.arktos(workdir, "up", "--vm-runtime-uri", uri) as (_process, kubeconfig):
            subprocess.run(
                [*cluster.ARKTOS, "image", "import", str(guest.kernel), "--kernel",
                 "--initrd", str(guest.initrd), "--cmdline", _guest.CMDLINE, "--name", "guest",
                 "--root-dir", str(workdir / "up" / "agent" / "vm")],
                check=True, capture_output=True,
            )  # fmt: skip
            try:
                trio.run(functools.partial(_measure, kubeconfig, iterations=iterations))
            except BaseException as e:
                # The work dir goes away with the block: show the cluster's last words.
                report.note(f"failed: {'; '.join(report.leaves(e))}")
                for line in (workdir / "up.log").read_text().splitlines()[-20:]:
                    report.note(f"  {line}")
                raise
