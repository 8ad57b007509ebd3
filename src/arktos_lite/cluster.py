"""`arktos up`: the whole cluster in one trio process.

Components start in dependency order, each saying when it is ready: the store opens,
the API server listens (and the admin kubeconfig is written), then the rest. `/readyz`
answers 200 once every component is ready. `stop()` shuts down in reverse order.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib

import trio

from arktos_lite import apiserver, storage

logger = logging.getLogger(__name__)

DEFAULT_DATA_DIR = pathlib.Path.home() / ".arktos"


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
        self._server: apiserver.APIServer | None = None

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
            self._server = server
            async with trio.open_nursery() as nursery:
                bound = await nursery.start(server.run)
                await trio.to_thread.run_sync(
                    lambda: apiserver.write_kubeconfig(
                        options.kubeconfig, server=bound.url, pki=pki
                    )
                )
                self._ready = True
                logger.info("cluster ready at %s", bound.url)
                task_status.started(Started(url=bound.url, kubeconfig=options.kubeconfig))

    def stop(self) -> None:
        """Begin a graceful shutdown; `run` returns when it is done."""
        self._ready = False
        self._stopping = True
        if self._server is not None:
            self._server.stop()
