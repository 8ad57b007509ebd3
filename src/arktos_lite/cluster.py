"""`arktos up`: the whole cluster in one trio process.

Components start in dependency order, each saying when it is ready: the store opens,
the API server listens (and the admin kubeconfig is written), then the controllers, which
reach the API server through the client exactly as separate processes would. `/readyz`
answers 200 once every component is ready. `stop()` shuts down in reverse order: the
controllers first, then the API server, then the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import pathlib

import trio

import arktos_lite
from arktos_lite import apiserver, client, controllers, scheduler, storage
from arktos_lite.controllers import workload

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


def user_agent(component: str) -> str:
    """`arktos-<component>/<version>`: how a component names itself to the API server,
    which records it as the field manager of what it writes."""
    return f"arktos-{component}/{arktos_lite.__version__}"


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
                config = client.Config(
                    server=bound.url,
                    token=pki.admin_token,
                    ca_file=None if options.plain_http else str(pki.ca_cert),
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
