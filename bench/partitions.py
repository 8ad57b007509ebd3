"""API creates/s of a partitioned cluster: `arktos up --partitions 1` against `--partitions 2`.

Each run starts `arktos up --partitions N --no-agent --plain-http` (a SQLite file per
partition, every component its own process) on a fresh data dir. The load is the same in
both: config maps of about 1 KB in two tenants, `alpha` (before "n") and `omega` (from "n"
on), POSTed for a fixed time over keep-alive connections, half of them per tenant, each to
the API server of its tenant's partition: by one wrk per tenant when wrk is installed
(apt-get install wrk), else by `bench.api`'s cheap raw-HTTP client in this process. With
one partition both tenants are served by one API server process; with two, each by its
own. Figures: creates/s (median of the runs), the ratio of two partitions to one, and the
API servers' CPU. The machine's cores are shared by the API servers, the other components
and the load generator.
"""

from __future__ import annotations

import pathlib
import shutil
import socket
import statistics
import time
import urllib.parse
import uuid

import orjson
import trio

from arktos_lite import client
from arktos_lite.api import errors, resources
from bench import _cluster
from bench._report import note, row, title
from bench.api import _WRK_CREATE, CONNECTIONS, _Connection, _wrk_script

TENANTS = ("alpha", "omega")
_REGISTRY = resources.Registry()


def _resource(plural: str) -> resources.Resource:
    found = _REGISTRY.get("", "v1", plural)
    assert found is not None
    return found


NAMESPACES = _resource("namespaces")
TENANT_KIND = _resource("tenants")


def api_creates(workdir: pathlib.Path, *, seconds: int, runs: int) -> None:
    """Print creates/s with 1 and 2 partitions and their ratio."""
    wrk = shutil.which("wrk")
    title(f"API creates/s, 1 vs 2 partitions ({CONNECTIONS} connections, config maps of ~1 KB)")
    note(f"load generator: {'wrk, one per tenant' if wrk else 'Python raw HTTP (no wrk)'}")
    rates: dict[int, float] = {}
    for count in (1, 2):
        scratch = workdir / f"partitions-{count}"
        scratch.mkdir()
        command = ("up", "--partitions", str(count), "--no-agent", "--plain-http")
        with _cluster.arktos(scratch, *command) as (_process, kubeconfig):
            pids = _children(scratch / "up")
            before = {group: _cpu(found) for group, found in pids.items()}
            measured = trio.run(_measure, kubeconfig, seconds, runs, wrk, scratch)
            cpu = {
                group: (_cpu(found) - before[group]) / (seconds * runs)
                for group, found in pids.items()
            }
        rates[count] = statistics.median(measured)
        row(
            f"{count} partition{'s' if count > 1 else ''}",
            f"{rates[count]:,.0f}/s",
            detail=f"runs {', '.join(f'{r:,.0f}' for r in measured)}; "
            f"CPU: API servers {cpu['apiservers']:.0%}, other components {cpu['others']:.0%} "
            "of one core",
        )
    row("ratio of 2 partitions to 1", f"{rates[2] / rates[1]:.2f}x")


async def _measure(
    kubeconfig: pathlib.Path, seconds: int, runs: int, wrk: str | None, scratch: pathlib.Path
) -> list[float]:
    async with client.Client.from_kubeconfig(kubeconfig) as api:
        for tenant in TENANTS:
            await api.create(TENANT_KIND, {"metadata": {"name": tenant}})
        for tenant in TENANTS:
            await _wait_namespace(api, tenant)
        servers = {tenant: _server_of(api, tenant) for tenant in TENANTS}
    token = client.load_kubeconfig(kubeconfig).token or ""
    rates = []
    for run in range(runs):
        tag = f"r{run}-{uuid.uuid4().hex[:6]}"
        if wrk is not None:
            created = await _wrk_loads(wrk, servers, token, tag, seconds, scratch)
        else:
            counter = [0]
            deadline = time.perf_counter() + seconds
            async with trio.open_nursery() as nursery:
                for number in range(CONNECTIONS):
                    tenant = TENANTS[number % len(TENANTS)]
                    nursery.start_soon(
                        _post_until,
                        servers[tenant],
                        token,
                        tenant,
                        f"{tag}-{number}",
                        deadline,
                        counter,
                    )
            created = counter[0]
        rates.append(created / seconds)
    return rates


async def _wrk_loads(
    wrk: str,
    servers: dict[str, str],
    token: str,
    tag: str,
    seconds: int,
    scratch: pathlib.Path,
) -> int:
    """One wrk per tenant at once, each with half the connections; the creates they made."""
    head = b'{"metadata":{"name":"cm-'
    tail = b'"},"data":{"payload":"' + b"x" * 1_000 + b'"}}'
    script = _wrk_script(
        scratch / "create.lua", _WRK_CREATE.format(head=head.decode(), tail=tail.decode())
    )
    outputs: list[str] = []

    async def one(tenant: str) -> None:
        path = f"/api/v1/tenants/{tenant}/namespaces/default/configmaps"
        result = await trio.run_process(
            [
                wrk,
                "-t1",
                f"-c{CONNECTIONS // len(servers)}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                "-H",
                f"Authorization: Bearer {token}",
                servers[tenant] + path,
                "--",
                f"{tag}-{tenant}",
            ],
            capture_stdout=True,
            capture_stderr=True,
        )
        outputs.append(result.stdout.decode())

    async with trio.open_nursery() as nursery:
        for tenant in servers:
            nursery.start_soon(one, tenant)
    created = 0
    for output in outputs:
        report = {line.split()[0]: line.split()[1:] for line in output.splitlines() if line}
        requests, _duration, status_errors, socket_errors, _p50 = map(int, report["BENCH"])
        if status_errors or socket_errors:
            raise RuntimeError(f"wrk saw {status_errors + socket_errors} failed creates")
        created += requests
    return created


async def _post_until(
    server: str, token: str, tenant: str, prefix: str, deadline: float, created: list[int]
) -> None:
    url = urllib.parse.urlsplit(server)
    assert url.hostname is not None
    assert url.port is not None
    stream = await trio.open_tcp_stream(url.hostname, url.port)
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
    path = f"/api/v1/tenants/{tenant}/namespaces/default/configmaps"
    async with _Connection(stream, host=url.netloc, token=token) as connection:
        sent = 0
        while time.perf_counter() < deadline:
            body = {"metadata": {"name": f"cm-{prefix}-{sent}"}, "data": {"payload": "x" * 1_000}}
            status, reply = await connection.request("POST", path, orjson.dumps(body))
            if status != 201:
                raise RuntimeError(f"POST {path} answered {status}: {reply[:300]!r}")
            sent += 1
            created[0] += 1


def _cpu(pids: list[int]) -> float:
    return sum(_cluster.process_cpu(pid) for pid in pids)


def _server_of(api: client.Client, tenant: str) -> str:
    """The URL of the API server whose partition holds `tenant`."""
    for held in api.partitions:
        if held.partition is not None and tenant in held.partition.tenants:
            return held.client.config.server
    raise LookupError(f"no partition holds tenant {tenant!r}")


async def _wait_namespace(api: client.Client, tenant: str) -> None:
    with trio.fail_after(30):
        while True:
            try:
                await api.get(NAMESPACES, "default", tenant=tenant)
                return
            except errors.NotFound:
                await trio.sleep(0.05)


def _children(data_dir: pathlib.Path) -> dict[str, list[int]]:
    """The pids of the cluster's processes under `data_dir`: API servers and the others."""
    wanted = str(data_dir).encode()
    found: dict[str, list[int]] = {"apiservers": [], "others": []}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"up" in argv or not any(arg.startswith(wanted) for arg in argv):
            continue
        found["apiservers" if b"apiserver" in argv else "others"].append(int(entry.name))
    return found
