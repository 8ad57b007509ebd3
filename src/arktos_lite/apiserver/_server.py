"""The API server component: the HTTP app on hypercorn's trio worker, over one store.

`APIServer.run` bootstraps the system tenant, starts the watch cache and the upkeep of
CustomResourceDefinitions, then listens (HTTPS by default, plain HTTP when asked, and a
unix socket for local clients) and reports the addresses it bound. `stop()` stops
accepting, lets requests in flight finish within a deadline, then ends the watches.

With `ServeOptions.partition` the server serves one data partition (its store holds only
that partition's tenants): requests for anything else are 421 `MisdirectedRequest`. Only
the designated partition (the one holding tenant `system`) creates the system tenant, its
namespaces and the `kubernetes` Service; the others create nothing at start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import pathlib
import ssl

import hypercorn.config
import hypercorn.trio
import trio

from arktos_lite import client, storage
from arktos_lite.api import (
    _errors as errors,
    _partitions as partitions,
    _resources as resources,
)
from arktos_lite.apiserver import (
    _actions as actions,
    _authn as authn,
    _datapartitions as datapartitions,
    _http as http,
    _proxy as proxy,
    _rest as rest,
    _watch as watching,
)

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class TLSFiles:
    cert: pathlib.Path
    key: pathlib.Path
    # CA whose client certificates are accepted (optional client authentication).
    client_ca: pathlib.Path | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 6443
    tls: TLSFiles | None = None
    unix_socket: pathlib.Path | None = None
    limits: http.Limits = dataclasses.field(default_factory=http.Limits)
    graceful_timeout: float = 5.0
    # The data partition this server serves; None: every tenant, as one server.
    partition: partitions.Partition | None = None
    # Cluster IPs of Services are allocated from it; partitions need disjoint ranges.
    service_cidr: str = "10.96.0.0/16"
    # How a partition without the cluster-scoped objects reaches the designated one: it
    # reads the Node of a pod there for the pod's log and exec, and presents this
    # config's bearer token to the node's agent (which checks it at the designated one).
    designated: client.Config | None = None
    # Every partition of the cluster and its server's URL: a misdirected request is told
    # which one holds what it asked for.
    cluster: tuple[tuple[partitions.Partition, str], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Bound:
    """Where the server listens once started."""

    url: str
    addresses: tuple[str, ...]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


class APIServer:
    def __init__(
        self,
        backend: storage.Backend,
        *,
        authenticator: authn.Authenticator,
        options: ServeOptions,
        registry: resources.Registry | None = None,
    ) -> None:
        self._options = options
        self.registry = registry or resources.Registry()
        self.watch_cache = watching.WatchCache(backend, self.registry)
        self.partition = options.partition
        self.rest = rest.Rest(
            backend,
            registry=self.registry,
            cache=self.watch_cache,
            service_cidr=options.service_cidr,
            partition=options.partition,
            cluster=options.cluster,
        )
        self.api = http.Api(
            rest_api=self.rest,
            watch_cache=self.watch_cache,
            authenticator=authenticator,
            limits=options.limits,
        )
        self.app = http.create_app(self.api)
        proxy.install(self.app, self.api)
        actions.install(self.app, self.api)
        datapartitions.install(self.app, self.api, options.partition)
        self._stopping = trio.Event()

    def _config(self) -> hypercorn.config.Config:
        options = self._options
        config = authn.ClientCertConfig()
        host = f"[{options.host}]" if ":" in options.host else options.host
        config.bind = [f"{host}:{options.port}"]
        if options.tls is not None:
            config.certfile = str(options.tls.cert)
            config.keyfile = str(options.tls.key)
            if options.tls.client_ca is not None:
                config.ca_certs = str(options.tls.client_ca)
                config.verify_mode = ssl.CERT_OPTIONAL
        if options.unix_socket is not None:
            options.unix_socket.unlink(missing_ok=True)
            # hypercorn serves insecure_bind only beside TLS binds.
            if options.tls is not None:
                config.insecure_bind = [f"unix:{options.unix_socket}"]
            else:
                config.bind.append(f"unix:{options.unix_socket}")
        config.graceful_timeout = options.graceful_timeout
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        config.keep_alive_timeout = 60
        return config

    async def run(self, *, task_status: trio.TaskStatus[Bound] = trio.TASK_STATUS_IGNORED) -> None:
        await bootstrap(self.rest)
        served = trio.Event()
        async with contextlib.AsyncExitStack() as stack, trio.open_nursery() as nursery:
            designated = self._options.designated
            if designated is not None and not _designated(self.partition):
                self.api.designated = await stack.enter_async_context(
                    client.Client(designated, user_agent="arktos-apiserver")
                )
            await nursery.start(self.watch_cache.run)
            await nursery.start(self.api.crds.run)
            addresses = await nursery.start(self._serve, served)
            bound = self._bound(addresses)
            if _designated(self.partition):
                await publish_api_service(self.rest, host=self._options.host, port=bound.port)
            if self.partition is not None:
                logger.info(
                    "API server serves partition %r (%s%s)",
                    self.partition.name,
                    self.partition.tenants,
                    ", designated" if self.partition.tenants.designated else "",
                )
            logger.info("API server listening on %s", ", ".join(addresses))
            task_status.started(bound)
            await self._stopping.wait()
            # Watches end first, so their connections can close within the grace period.
            self.watch_cache.end_watches()
            await served.wait()
            nursery.cancel_scope.cancel()
        logger.info("API server stopped")

    def _bound(self, addresses: list[str]) -> Bound:
        scheme = "https" if self._options.tls is not None else "http"
        tcp = next(a for a in addresses if not a.startswith("unix:"))
        port = tcp.rsplit(":", 1)[1]
        host = self._options.host
        url_host = f"[{host}]" if ":" in host else host
        return Bound(url=f"{scheme}://{url_host}:{port}", addresses=tuple(addresses))

    async def _serve(
        self,
        served: trio.Event,
        *,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            await hypercorn.trio.serve(
                http.serve(self.app, self.api),
                self._config(),
                shutdown_trigger=self._stopping.wait,
                task_status=task_status,
            )
        finally:
            served.set()

    def stop(self) -> None:
        """Stop accepting requests; in-flight ones get `graceful_timeout` to finish."""
        self._stopping.set()


def _designated(partition: partitions.Partition | None) -> bool:
    """Whether this server holds the system tenant (every unpartitioned server does)."""
    return partition is None or partition.tenants.designated


async def bootstrap(api: rest.Rest) -> None:
    """The system tenant, its default namespaces and the nodes' lease namespace exist.

    A partition that does not hold the system tenant has nothing to create.
    """
    if not _designated(api.partition):
        return
    registry = api.registry
    tenants = registry.get("", "v1", "tenants")
    namespaces = registry.get("", "v1", "namespaces")
    assert tenants is not None
    assert namespaces is not None
    system = rest.Where(tenant=resources.SYSTEM_TENANT)
    wanted = [(tenants, {"metadata": {"name": resources.SYSTEM_TENANT}})] + [
        (namespaces, {"metadata": {"name": name}})
        for name in ("default", "kube-system", "kube-public", "kube-node-lease")
    ]
    for resource, body in wanted:
        try:
            await api.create(resource, system, body)
        except errors.AlreadyExists:
            continue
        logger.info("created %s %s", resource.singular, body["metadata"]["name"])


async def publish_api_service(api: rest.Rest, *, host: str, port: int) -> None:
    """The `kubernetes` Service and its Endpoints in the system tenant's `default` namespace.

    In-cluster clients find the API server through them, as in Kubernetes. The Endpoints
    follow the port this start bound, which may differ from the last start's.
    """
    services = api.registry.get("", "v1", "services")
    endpoints = api.registry.get("", "v1", "endpoints")
    assert services is not None
    assert endpoints is not None
    where = rest.Where(tenant=resources.SYSTEM_TENANT, namespace="default")
    labels = {"component": "apiserver", "provider": "kubernetes"}
    ports = [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]
    service = {
        "metadata": {"name": "kubernetes", "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": api.api_service_ip,
            "ports": ports,
            "sessionAffinity": "None",
        },
    }
    address = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    subsets = [
        {
            "addresses": [{"ip": address}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }
    ]
    # Look before creating: like kube-apiserver, a create reserves the cluster IP first and
    # would report it taken rather than the Service existing.
    try:
        current = await api.get(services, where, "kubernetes")
    except errors.NotFound:
        await api.create(services, where, service)
    else:
        if current["spec"].get("ports") != ports:
            current["spec"]["ports"] = ports
            await api.update(services, where, "kubernetes", current)
    try:
        current = await api.get(endpoints, where, "kubernetes")
    except errors.NotFound:
        metadata = {"name": "kubernetes", "labels": labels}
        await api.create(endpoints, where, {"metadata": metadata, "subsets": subsets})
    else:
        if current.get("subsets") != subsets:
            current["subsets"] = subsets
            await api.update(endpoints, where, "kubernetes", current)
