"""Helpers of the pod-networking tests: skipping without root/plugins, servers in netns."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from arktos_lite import network

_FETCH = (
    "import sys, urllib.request; "
    "body = urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).read(); "
    "sys.stdout.write(body.decode())"
)


def require_cni() -> network.Tools:
    tools, reason = network.detect_tools()
    if tools is None or shutil.which("busybox") is None:
        why = reason or "busybox not found"
        if os.environ.get("CI"):
            pytest.fail(
                f"pod networking needs it: {why} (CI must run as root with "
                "containernetworking-plugins, nftables and busybox-static)"
            )
        pytest.skip(f"pod networking needs root, the CNI plugins and nft: {why}")
    return tools


def free_pod_cidr() -> str:
    """A /24 no other test run on this machine is likely to use at the same time."""
    return f"10.{random.randint(160, 230)}.{random.randint(0, 255)}.0/24"


@contextmanager
def http_server(netns: str, port: int, body: str, directory: Path) -> Iterator[None]:
    """busybox httpd serving `body` at / inside the named network namespace."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "index.html").write_text(body)
    proc = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            netns,
            "busybox",
            "httpd",
            "-f",
            "-p",
            str(port),
            "-h",
            str(directory),
        ],
    )
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(5)


def fetch(url: str, *, netns: str | None = None, timeout: int = 1) -> str | None:
    """The body at `url` (from inside `netns`, or the node), or None when unreachable."""
    # busybox's static wget crashes here; a python one-liner is the client.
    argv = [sys.executable, "-c", _FETCH, url, str(timeout)]
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10, check=False)
    return done.stdout if done.returncode == 0 else None


def eventually_fetch(url: str, *, netns: str | None = None, wait: float = 5.0) -> str | None:
    deadline = time.monotonic() + wait
    while True:
        body = fetch(url, netns=netns)
        if body is not None or time.monotonic() > deadline:
            return body
        time.sleep(0.1)
