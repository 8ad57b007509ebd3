"""`arktos up --partitions N`: the partitioned cluster, as separate processes on one machine.

What runs, in start order:
* with `--store etcd`, one etcd per partition, on loopback ports chosen once and kept in
  the partition's directory;
* N `arktos apiserver` processes: partition i owns the i-th of N even splits of the
  tenant names (`tenant_ranges`), listens on `port + i` and keeps its data in its own
  store (DATA_DIR/partitions/partition-i);
* the controller manager, the workload controller managers, the scheduler and the node
  agent, each a process whose client routes over every partition through the written
  kubeconfig (DATA_DIR/kubeconfig, one context per partition). The controller manager
  (one process: node IPAM and the Neutron network controller among its controllers) gets
  the cluster CIDR, node CIDR mask sizes, node monitor grace period and pod eviction
  timeout of `controller_manager` as flags; its Neutron configuration, password included,
  goes into DATA_DIR/neutron.yaml (mode 0600, read with `--neutron-config`), never on a
  command line, and the `OS_*` variables that would override that file are not passed on.

Guarantees:
* Every partition shares one CA and one admin token (DATA_DIR/pki).
* `run` reports the cluster started once every API server answers `/readyz` and the
  node (when there is an agent) is Ready.
* A child that exits while the cluster runs is started again after a back-off (1 s,
  doubling to 10 s); each child's output goes to DATA_DIR/logs/<name>.log.
* Stopping stops the children in reverse start order, each with SIGTERM and, after a
  grace period, SIGKILL; the agent first, so that it can still report its pods.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence

import trio

from arktos_lite import apiserver, client, cluster, controllers, storage
from arktos_lite.api import errors, partitions, resources

logger = logging.getLogger(__name__)

GRACE_PERIOD = 30.0
RESTART_DELAY = 1.0
RESTART_DELAY_MAX = 10.0
# A child that ran this long before it exited is restarted without the grown delay.
STABLE_RUN = 60.0
ETCD_STORE = "etcd"
NEUTRON_CONFIG = "neutron.yaml"
# The variables `arktos controller-manager` reads Keystone credentials from.
OPENSTACK_ENV = (
    "OS_AUTH_URL",
    "OS_USERNAME",
    "OS_PASSWORD",
    "OS_PROJECT_NAME",
    "OS_USER_DOMAIN_NAME",
    "OS_PROJECT_DOMAIN_NAME",
)
_FOUND_NODES = resources.Registry().get("", "v1", "nodes")
assert _FOUND_NODES is not None
_NODES: resources.Resource = _FOUND_NODES


def tenant_ranges(count: int) -> list[partitions.TenantRange]:
    """`count` ranges of tenant names, split evenly over the first letter."""
    if count < 1:
        raise ValueError(f"a cluster has at least one partition, not {count}")
    bounds = ["", *(chr(ord("a") + 26 * i // count) for i in range(1, count)), ""]
    return [partitions.TenantRange(bounds[i], bounds[i + 1]) for i in range(count)]


@dataclasses.dataclass(frozen=True, slots=True)
class TopologyOptions:
    data_dir: pathlib.Path
    partitions: int
    host: str = "127.0.0.1"
    # Partition i listens on port + i; 0: each on a free port.
    port: int = 6443
    # "etcd": an etcd per partition; None: a SQLite file per partition.
    store: str | None = None
    token_auth_file: pathlib.Path | None = None
    plain_http: bool = False
    workload_controllers: int = 1
    # `arktos agent` arguments besides the kubeconfig and node name; None: no agent.
    agent_args: tuple[str, ...] | None = ()
    node_name: str = dataclasses.field(default_factory=socket.gethostname)
    verbose: bool = False
    # The controller manager's options (see the module docs for which reach it).
    controller_manager: controllers.ControllerManagerOptions = dataclasses.field(
        default_factory=controllers.ControllerManagerOptions
    )

    def __post_init__(self) -> None:
        if self.store not in (None, ETCD_STORE):
            raise ValueError(
                f"with partitions, the store is {ETCD_STORE!r} (an etcd per partition) or "
                f"left out (a SQLite file per partition), not {self.store!r}"
            )

    @property
    def kubeconfig(self) -> pathlib.Path:
        return self.data_dir / "kubeconfig"


class Child:
    """One supervised process: started, started again when it dies, stopped on request."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: pathlib.Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = tuple(argv)
        # None: this process's environment.
        self.env = dict(env) if env is not None else None
        self.log_path = log_dir / f"{name}.log"
        self.process: trio.Process | None = None
        self._stopping = False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        delay = RESTART_DELAY
        while not self._stopping:
            started_at = trio.current_time()
            with self.log_path.open("ab") as log:
                self.process = await trio.lowlevel.open_process(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    # Terminal signals reach the supervisor alone; it stops children in order.
                    start_new_session=True,
                )
            task_status.started()
            task_status = trio.TASK_STATUS_IGNORED
            code = await self.process.wait()
            if self._stopping:
                return
            if trio.current_time() - started_at > STABLE_RUN:
                delay = RESTART_DELAY
            logger.warning(
                "%s exited with %s; starting it again in %.0f s (log: %s)",
                self.name,
                code,
                delay,
                self.log_path,
            )
            await trio.sleep(delay)
            delay = min(delay * 2, RESTART_DELAY_MAX)

    async def stop(self, *, grace: float = GRACE_PERIOD) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; returns once the process is gone."""
        self._stopping = True
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with trio.move_on_after(grace):
            await process.wait()
            return
        logger.warning("%s did not stop within %.0f s; killing it", self.name, grace)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


class Topology:
    """The partitioned cluster's processes; see the module docs."""

    def __init__(self, options: TopologyOptions) -> None:
        self.options = options
        self.children: list[Child] = []
        self._log_dir = options.data_dir / "logs"

    def partition_dir(self, index: int) -> pathlib.Path:
        return self.options.data_dir / "partitions" / f"partition-{index}"

    async def run(
        self, *, task_status: trio.TaskStatus[cluster.Started] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Start everything, report it started, and keep it running until cancelled."""
        options = self.options
        await trio.to_thread.run_sync(
            lambda: self._log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        )
        pki = await trio.to_thread.run_sync(apiserver.ensure_pki, options.data_dir)
        scheme = "http" if options.plain_http else "https"
        ranges = tenant_ranges(options.partitions)
        ports = [
            options.port + i if options.port else storage.free_port() for i in range(len(ranges))
        ]
        served = [
            (
                partitions.Partition(f"partition-{index}", tenants),
                f"{scheme}://{options.host}:{ports[index]}",
            )
            for index, tenants in enumerate(ranges)
        ]
        await trio.to_thread.run_sync(
            lambda: apiserver.write_partitioned_kubeconfig(
                options.kubeconfig, partitions=served, pki=pki
            )
        )
        try:
            async with trio.open_nursery() as nursery:
                for index, (partition, url) in enumerate(served):
                    store = None
                    if options.store == ETCD_STORE:
                        store = await self._start_etcd(nursery, index)
                    argv = await trio.to_thread.run_sync(
                        self._apiserver_argv, partition, index, store, url
                    )
                    await self._start(nursery, f"apiserver-{index}", argv)
                for _partition, url in served:
                    await _wait_ready(url, pki)
                manager_args, manager_env = await trio.to_thread.run_sync(
                    self.controller_manager_command
                )
                await self._start_component(
                    nursery, "controller-manager", *manager_args, env=manager_env
                )
                for instance in range(options.workload_controllers):
                    await self._start_component(
                        nursery,
                        f"workload-controller-manager-{instance}",
                        "workload-controller-manager",
                    )
                await self._start_component(nursery, "scheduler", "scheduler")
                designated = next(p for p, _ in served if p.tenants.designated)
                if options.agent_args is not None:
                    await self._start_component(
                        nursery,
                        "agent",
                        "agent",
                        "--node-name",
                        options.node_name,
                        *options.agent_args,
                    )
                    await self._wait_node_ready(designated.name)
                url = next(u for p, u in served if p is designated)
                task_status.started(cluster.Started(url=url, kubeconfig=options.kubeconfig))
        finally:
            with trio.CancelScope(shield=True):
                await self.stop()

    async def stop(self) -> None:
        """Stop every child, the last started first."""
        for child in reversed(self.children):
            await child.stop()

    async def _start(
        self,
        nursery: trio.Nursery,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        child = Child(name, argv, log_dir=self._log_dir, env=env)
        self.children.append(child)
        await nursery.start(child.run)

    async def _start_component(
        self,
        nursery: trio.Nursery,
        name: str,
        *args: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        argv = [*_arktos(*args), "--kubeconfig", str(self.options.kubeconfig)]
        if self.options.verbose:
            argv.append("--verbose")
        await self._start(nursery, name, argv, env=env)

    def controller_manager_command(self) -> tuple[list[str], dict[str, str]]:
        """`arktos controller-manager` and its arguments (the kubeconfig aside), and its
        environment; writes DATA_DIR/neutron.yaml when there is Neutron (see the module
        docs)."""
        manager = self.options.controller_manager
        args = [
            "controller-manager",
            f"--cluster-cidr={manager.cluster_cidr}",
            f"--node-cidr-mask-size-ipv4={manager.node_cidr_mask_size_ipv4}",
            f"--node-cidr-mask-size-ipv6={manager.node_cidr_mask_size_ipv6}",
            f"--node-monitor-grace-period={manager.node_monitor_grace_period}",
            f"--pod-eviction-timeout={manager.pod_eviction_timeout}",
        ]
        env = {k: v for k, v in os.environ.items() if k not in OPENSTACK_ENV}
        path = self.options.data_dir / NEUTRON_CONFIG
        if manager.neutron_config is None:
            path.unlink(missing_ok=True)
            return args, env
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        # An older file may have been made with another mode.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(manager.neutron_config.to_yaml())
        return [*args, "--neutron-config", str(path)], env

    def _apiserver_argv(
        self, partition: partitions.Partition, index: int, store: str | None, url: str
    ) -> list[str]:
        """The partition's `arktos apiserver` command; its directory gets the shared PKI."""
        options = self.options
        directory = self.partition_dir(index)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not (directory / "pki").exists():
            shutil.copytree(options.data_dir / "pki", directory / "pki")
        config = directory / "partition.conf"
        tenants = partition.tenants
        config.write_text(f"/registry/, {tenants.start}, {tenants.end}\n", encoding="utf-8")
        argv = _arktos(
            "apiserver",
            "--data-dir",
            str(directory),
            "--host",
            options.host,
            "--port",
            url.rsplit(":", 1)[1],
            "--partition-config",
            str(config),
            "--service-group-id",
            partition.name,
        )
        # Each store allocates Service IPs of its own: the partitions' ranges must not meet.
        argv += ["--service-cluster-ip-range", f"10.{96 + index}.0.0/16"]
        # Where every partition is: for misdirected requests, and for pods' log and exec
        # through a partition that does not keep the Nodes.
        argv += ["--cluster-kubeconfig", str(options.kubeconfig)]
        if store is not None:
            argv += ["--store", store]
        if options.token_auth_file is not None:
            argv += ["--token-auth-file", str(options.token_auth_file)]
        if options.plain_http:
            argv.append("--plain-http")
        if options.verbose:
            argv.append("--verbose")
        return argv

    async def _start_etcd(self, nursery: trio.Nursery, index: int) -> str:
        """Start the partition's etcd and wait until it serves; its store URL."""
        directory = self.partition_dir(index)
        ports = directory / "etcd-ports.json"

        def ports_kept() -> list[int]:
            # etcd remembers its peer URL in its data: a restart must use the same ports.
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not ports.exists():
                chosen = [storage.free_port(), storage.free_port()]
                ports.write_text(json.dumps(chosen), encoding="utf-8")
            return [int(port) for port in json.loads(ports.read_text(encoding="utf-8"))]

        client_port, peer_port = await trio.to_thread.run_sync(ports_kept)
        etcd = storage.LocalEtcd(
            directory / "etcd",
            client_port=client_port,
            peer_port=peer_port,
            name=f"partition-{index}",
        )
        await self._start(nursery, f"etcd-{index}", etcd.command())
        await trio.to_thread.run_sync(etcd.wait_ready, 30.0)
        return etcd.url

    async def _wait_node_ready(self, context: str) -> None:
        async with client.Client.from_kubeconfig(
            self.options.kubeconfig, context=context, retries=1
        ) as api:
            while True:
                if _ready(await _node(api, self.options.node_name)):
                    return
                await trio.sleep(0.1)


def _arktos(*args: str) -> list[str]:
    return [sys.executable, "-m", "arktos_lite", *args]


async def _node(api: client.Client, name: str) -> dict[str, object] | None:
    with contextlib.suppress(client.Unreachable, errors.NotFound):
        return await api.get(_NODES, name)
    return None


def _ready(node: dict[str, object] | None) -> bool:
    status = node.get("status") if node else None
    conditions = status.get("conditions", []) if isinstance(status, dict) else []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def _wait_ready(url: str, pki: apiserver.Pki) -> None:
    """Until the API server at `url` answers `/readyz`."""
    config = client.Config(server=url, token=pki.admin_token, ca_file=str(pki.ca_cert))
    async with client.Client(config, retries=1) as api:
        while True:
            with contextlib.suppress(client.Unreachable, errors.StatusError):
                await api.request("GET", "/readyz")
                return
            await trio.sleep(0.1)
