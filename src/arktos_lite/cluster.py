"""`arktos up`: the whole cluster in one trio process.

Components start in dependency order, each saying when it is ready: the store opens,
the API server listens (and the admin kubeconfig is written), then the controllers, the
scheduler and the node agent, which reach the API server through the client exactly as
separate processes would. The cluster is ready once its node is: `/readyz` answers 200
from then on. `stop()` shuts down in reverse order: the agent stops its pods (unless told
to keep them), the controllers stop, then the embedded runtime, the API server and the
store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import pathlib
import platform
import shutil

import trio

import arktos_lite
from arktos_lite import agent, apiserver, client, controllers, runtime, scheduler, storage
from arktos_lite.api import partitions
from arktos_lite.controllers import workload
from arktos_lite.runtime import process, vm

logger = logging.getLogger(__name__)

DEFAULT_DATA_DIR = pathlib.Path.home() / ".arktos"

# Client-side rate limits of the components' connection to the API server. The limit
# guards the server against a runaway loop; at client-go's defaults (20-50/s) deleting a
# tenant of 5,000 objects took 16 s, at these 3 s.
COMPONENT_QPS = 500.0
COMPONENT_BURST = 1000
# The scheduler writes a binding and an event per pod; its limit must not be what caps it.
SCHEDULER_QPS = 5000.0
SCHEDULER_BURST = 10000


def default_vm_runtime_missing() -> str | None:
    """None when the default VM runtime (QEMU embedded through libvirt) can run here, else
    why not."""
    missing = vm.libvirt_missing()
    if missing is not None:
        return missing
    qemu = f"qemu-system-{platform.machine()}"
    if shutil.which(qemu) is None:
        return f"{qemu} is not installed"
    return None


def user_agent(component: str) -> str:
    """`arktos-<component>/<version>`: how a component names itself to the API server,
    which records it as the field manager of what it writes."""
    return f"arktos-{component}/{arktos_lite.__version__}"


@dataclasses.dataclass(frozen=True, slots=True)
class AgentOptions:
    """The node agent and its runtimes, in `arktos up` or as `arktos agent`."""

    config: agent.AgentConfig
    # `name,workloadType,endpoint;…`; empty: the embedded process runtime, in this process.
    runtime_endpoints: str = ""
    # A libvirt URI: the embedded VM runtime serves VM pods over it, in this process.
    vm_runtime_uri: str = ""
    # Without a URI: the embedded VM runtime over a QEMU driver embedded in this process
    # (`qemu:///embed`, no daemon) where libvirt-python and QEMU are installed; where they
    # are not, or where it fails to start, the node runs without a VM runtime. It opens
    # libvirt with the first VM (or at start, where VMs exist already); a failure then
    # makes it not ready (`VmRuntimeReady=False`, saying why).
    default_vm_runtime: bool = False
    # A network bridge the embedded VM runtime attaches guests to ("" : guests get no NIC).
    vm_bridge: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class ClusterOptions:
    data_dir: pathlib.Path = DEFAULT_DATA_DIR
    host: str = "127.0.0.1"
    port: int = 6443
    # Default: sqlite:///{data_dir}/state.db
    store: str | None = None
    token_auth_file: pathlib.Path | None = None
    plain_http: bool = False
    limits: apiserver.Limits = dataclasses.field(default_factory=apiserver.Limits)
    # The API server's data partition (`arktos apiserver --partition-config`); None: all.
    partition: partitions.Partition | None = None
    # Where Services' cluster IPs come from; each partition needs a range of its own.
    service_cidr: str = "10.96.0.0/16"
    # A non-designated partition's way to the designated one (Nodes for pods' log/exec).
    designated: client.Config | None = None
    # Every partition and its server's URL, for misdirected requests to be pointed on.
    cluster: tuple[tuple[partitions.Partition, str], ...] = ()
    # A component set to None (or 0 instances) does not run; `arktos apiserver` runs none.
    controller_manager: controllers.ControllerManagerOptions | None = dataclasses.field(
        default_factory=controllers.ControllerManagerOptions
    )
    scheduler: scheduler.SchedulerConfig | None = dataclasses.field(
        default_factory=scheduler.SchedulerConfig
    )
    # Instances of the partitioned workload controller manager in this process.
    workload_controllers: int = 1
    workload: workload.WorkloadConfig = dataclasses.field(default_factory=workload.WorkloadConfig)
    # The node agent; its root dir defaults to DATA_DIR/agent.
    agent: AgentOptions | None = None

    @property
    def store_url(self) -> str:
        return self.store or f"sqlite:///{self.data_dir.resolve() / 'state.db'}"

    @property
    def kubeconfig(self) -> pathlib.Path:
        return self.data_dir / "kubeconfig"


@dataclasses.dataclass(frozen=True, slots=True)
class Started:
    url: str
    kubeconfig: pathlib.Path


class Cluster:
    def __init__(self, options: ClusterOptions) -> None:
        self.options = options
        self._ready = False
        self._stopping = False
        self._stop_requested = trio.Event()

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def run(
        self, *, task_status: trio.TaskStatus[Started] = trio.TASK_STATUS_IGNORED
    ) -> None:
        options = self.options
        data_dir = options.data_dir
        await trio.to_thread.run_sync(lambda: data_dir.mkdir(parents=True, exist_ok=True))
        pki = await trio.to_thread.run_sync(apiserver.ensure_pki, data_dir)
        tokens = (
            await trio.to_thread.run_sync(apiserver.load_token_file, options.token_auth_file)
            if options.token_auth_file is not None
            else ()
        )
        authenticator = apiserver.Authenticator(admin_token=pki.admin_token, tokens=tokens)
        tls = (
            None
            if options.plain_http
            else apiserver.TLSFiles(pki.server_cert, pki.server_key, pki.ca_cert)
        )
        serve = apiserver.ServeOptions(
            host=options.host,
            port=options.port,
            tls=tls,
            unix_socket=data_dir / "apiserver.sock",
            limits=options.limits,
            partition=options.partition,
            service_cidr=options.service_cidr,
            designated=options.designated,
            cluster=options.cluster,
        )
        async with storage.open_store(options.store_url) as backend:
            server = apiserver.APIServer(backend, authenticator=authenticator, options=serve)
            server.api.ready = lambda: self._ready
            async with trio.open_nursery() as nursery:
                bound = await nursery.start(server.run)
                await trio.to_thread.run_sync(
                    lambda: apiserver.write_kubeconfig(
                        options.kubeconfig, server=bound.url, pki=pki
                    )
                )
                # The components reach the API server through its unix socket: the same
                # HTTP API, without TLS to pay for on every connection.
                config = client.Config(
                    server="http://localhost",
                    token=pki.admin_token,
                    unix_socket=str(serve.unix_socket),
                )
                async with (
                    contextlib.AsyncExitStack() as clients,
                    trio.open_nursery() as components,
                ):
                    components.start_soon(self._cancel_on_stop, components.cancel_scope)

                    async def connected(
                        component: str, qps: float = COMPONENT_QPS, burst: int = COMPONENT_BURST
                    ) -> client.Client:
                        return await clients.enter_async_context(
                            client.Client(
                                config, qps=qps, burst=burst, user_agent=user_agent(component)
                            )
                        )

                    if options.controller_manager is not None:
                        manager = controllers.ControllerManager(
                            await connected("controller-manager"),
                            options=options.controller_manager,
                        )
                        await components.start(manager.run)
                    for _instance in range(options.workload_controllers):
                        # Each instance its own connection, as separate processes would have.
                        workloads = workload.WorkloadControllerManager(
                            await connected("workload-controller-manager"),
                            config=options.workload,
                        )
                        await components.start(workloads.run)
                    if options.scheduler is not None:
                        pods = scheduler.Scheduler(
                            await connected("scheduler", SCHEDULER_QPS, SCHEDULER_BURST),
                            config=options.scheduler,
                        )
                        await components.start(pods.run)
                    if options.agent is not None:
                        await components.start(
                            functools.partial(
                                run_agent, await connected("agent"), options=options.agent
                            )
                        )
                    self._ready = True
                    logger.info("cluster ready at %s", bound.url)
                    task_status.started(Started(url=bound.url, kubeconfig=options.kubeconfig))
                server.stop()

    async def _cancel_on_stop(self, scope: trio.CancelScope) -> None:
        await self._stop_requested.wait()
        scope.cancel()

    def stop(self) -> None:
        """Begin a graceful shutdown; `run` returns when it is done."""
        self._ready = False
        self._stopping = True
        self._stop_requested.set()


async def run_agent(
    api: client.Client,
    *,
    options: AgentOptions,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The node agent over its runtimes, until cancelled.

    Without runtime endpoints the embedded process runtime serves in this process, on a
    unix socket under the agent's root dir; with a VM runtime URI (or `default_vm_runtime`
    where it can run), the embedded VM runtime too. They outlive the agent: the agent stops
    its pods through them while shutting down, and only then do they stop.
    """
    config = options.config
    endpoints = (
        runtime.parse_endpoints(options.runtime_endpoints) if options.runtime_endpoints else ()
    )
    embedded: list[tuple[str, str, process.ProcessRuntime | vm.VmRuntime]] = []
    if not endpoints:
        embedded.append(
            (
                "process",
                "container",
                process.ProcessRuntime(
                    process.ProcessRuntimeConfig(
                        root_dir=config.root_dir / "runtime",
                        socket_path=config.root_dir / "runtime.sock",
                        host_ip=config.node_ip,
                    )
                ),
            )
        )
    optional_vm = False
    absent: dict[agent.WorkloadType, str] = {}
    if options.vm_runtime_uri:
        settings = vm.VmRuntimeConfig(
            root_dir=config.root_dir / "vm",
            socket_path=config.root_dir / "vm.sock",
            uri=options.vm_runtime_uri,
            bridge=options.vm_bridge,
        )
        embedded.append(("vm", "vm", vm.VmRuntime(settings)))
    elif options.default_vm_runtime:
        missing = await trio.to_thread.run_sync(default_vm_runtime_missing)
        if missing is None:
            settings = vm.VmRuntimeConfig(
                # Absolute: the embedded driver's root is part of the libvirt URI.
                root_dir=(config.root_dir / "vm").resolve(),
                socket_path=config.root_dir / "vm.sock",
                bridge=options.vm_bridge,
                # A node that runs no VM does without libvirt's ~15 MB.
                connect_on_demand=True,
            )
            embedded.append(("vm", "vm", vm.VmRuntime(settings)))
            optional_vm = True
        else:
            logger.info("no VM runtime on this node: %s", missing)
            absent[agent.WorkloadType.VM] = missing
    async with contextlib.AsyncExitStack() as stack, trio.open_nursery() as nursery:
        scopes: list[trio.CancelScope] = []

        async def serve(
            server: process.ProcessRuntime | vm.VmRuntime,
            *,
            task_status: trio.TaskStatus[pathlib.Path],
        ) -> None:
            with trio.CancelScope(shield=True) as scope:
                scopes.append(scope)
                await server.run(task_status=task_status)

        try:
            for name, workload_type, server in embedded:
                try:
                    socket_path = await nursery.start(serve, server)
                except Exception as error:
                    if not (optional_vm and isinstance(server, vm.VmRuntime)):
                        raise
                    logger.warning("no VM runtime on this node: it did not start: %s", error)
                    absent[agent.WorkloadType.VM] = f"it did not start: {error}"
                    continue
                endpoints += (runtime.Endpoint(name, workload_type, f"unix://{socket_path}"),)
            named = []
            for endpoint in endpoints:
                connection = await stack.enter_async_context(
                    runtime.RuntimeClient.connect(endpoint.address)
                )
                named.append(
                    agent.NamedRuntime(
                        endpoint.name, agent.WorkloadType(endpoint.workload_type), connection
                    )
                )
            node = agent.Agent(
                api, config=config, runtimes=agent.RuntimeSet(tuple(named), absent=absent)
            )
            await node.run(task_status=task_status)
        finally:
            for scope in scopes:
                scope.cancel()
