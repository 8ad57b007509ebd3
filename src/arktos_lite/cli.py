"""The `arktos` command line: `arktos up`, one command per component, and tools."""

from __future__ import annotations

import enum
import functools
import gc
import ipaddress
import logging
import pathlib
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated

import trio
import typer

import arktos_lite
from arktos_lite import (
    _get as getting,
    _podlogs as podlogs,
    agent as agent_,
    apiserver as apiserver_,
    client,
    cluster,
    controllers,
    runtime,
    scheduler,
    storage,
    topology,
)
from arktos_lite.api import errors, partitions, resources
from arktos_lite.controllers import workload
from arktos_lite.runtime import process, vm

app = typer.Typer(no_args_is_help=True, add_completion=False)

DataDir = Annotated[
    pathlib.Path,
    typer.Option(help="Holds the store, certificates and the admin kubeconfig."),
]
Port = Annotated[int, typer.Option(help="HTTPS port of the API server (0: any free port).")]
Host = Annotated[str, typer.Option(help="Address the API server listens on.")]
Store = Annotated[
    str | None,
    typer.Option(help="Store URL (default: sqlite:///DATA_DIR/state.db)."),
]
TokenFile = Annotated[
    pathlib.Path | None,
    typer.Option(
        help='Extra users, lines `token,user,uid,"group1,group2",tenant` (empty tenant: system).',
        exists=True,
        dir_okay=False,
    ),
]
PlainHttp = Annotated[
    bool, typer.Option(help="Serve plain HTTP instead of HTTPS (tokens then travel in clear).")
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")]
NodeName = Annotated[str | None, typer.Option(help="Name of this node (default: the host name).")]
RuntimeEndpoints = Annotated[
    str,
    typer.Option(
        "--runtime-endpoint",
        help="CRI runtimes, `name,workloadType,endpoint;…` (workloadType container or vm; "
        "the first of each type is its default). Empty: the embedded process runtime.",
    ),
]
VmRuntimeUri = Annotated[
    str,
    typer.Option(
        help="Run the VM runtime in this process over this libvirt URI (e.g. "
        "qemu:///embed?root=DIR, qemu:///system, test:///default); empty: none."
    ),
]
VmBridge = Annotated[
    str,
    typer.Option(
        help="A network bridge (e.g. br0) the embedded VM runtime attaches guests to "
        "(a virtio NIC; guests on a pod network get its bridge instead); empty: guests "
        "have no network device but the pod network's."
    ),
]
KeepPods = Annotated[
    bool,
    typer.Option(help="On stop, leave pods running for the next start to adopt."),
]
ClusterCidr = Annotated[
    str,
    typer.Option(
        help="CIDR that Nodes' pod CIDRs are allocated from (comma-separated: one IPv4 and "
        "one IPv6 for dual stack); empty: none are allocated."
    ),
]
NodeCidrMaskSizeIpv4 = Annotated[
    int, typer.Option("--node-cidr-mask-size-ipv4", help="Prefix length of a Node's IPv4 pod CIDR.")
]
NodeCidrMaskSizeIpv6 = Annotated[
    int, typer.Option("--node-cidr-mask-size-ipv6", help="Prefix length of a Node's IPv6 pod CIDR.")
]
NeutronConfigFile = Annotated[
    pathlib.Path | None,
    typer.Option(
        "--neutron-config",
        help="YAML of the Neutron network controller: url, auth, projectId, keystone: {url, "
        "username, password, projectName, userDomain, projectDomain}; flags win.",
        exists=True,
        dir_okay=False,
    ),
]
NeutronUrl = Annotated[
    str,
    typer.Option(
        help="Neutron's endpoint: VM pods' NICs get Neutron ports (empty, without "
        "--neutron-config or --neutron-auth: no Neutron network controller)."
    ),
]
NeutronAuthOption = Annotated[
    controllers.NeutronAuth | None,
    typer.Option("--neutron-auth", help="noauth (with --neutron-project-id) or password."),
]
NeutronProjectId = Annotated[str, typer.Option(help="The Neutron project of noauth.")]
KeystoneUrl = Annotated[
    str,
    typer.Option(envvar="OS_AUTH_URL", help="Keystone's endpoint, for --neutron-auth password."),
]
OsUsername = Annotated[str, typer.Option(envvar="OS_USERNAME", help="Keystone user.")]
OsPassword = Annotated[
    str, typer.Option(envvar="OS_PASSWORD", help="Keystone password (better: $OS_PASSWORD).")
]
OsProjectName = Annotated[str, typer.Option(envvar="OS_PROJECT_NAME", help="Keystone project.")]
OsUserDomain = Annotated[
    str, typer.Option(envvar="OS_USER_DOMAIN_NAME", help="The Keystone user's domain.")
]
OsProjectDomain = Annotated[
    str, typer.Option(envvar="OS_PROJECT_DOMAIN_NAME", help="The Keystone project's domain.")
]
Kubeconfig = Annotated[
    pathlib.Path | None,
    typer.Option(
        help="How to reach the API server (default: $KUBECONFIG, then ~/.arktos/kubeconfig)."
    ),
]


CONTAINERD_SOCKET = "unix:///run/containerd/containerd.sock"
DEFAULT_CLUSTER_CIDR = "10.244.0.0/16"


class ContainerRuntime(enum.StrEnum):
    PROCESS = "process"
    CONTAINERD = "containerd"


class PodNetworkMode(enum.StrEnum):
    AUTO = "auto"
    ON = "on"
    OFF = "off"


PodNetwork = Annotated[
    PodNetworkMode,
    typer.Option(
        help="Pods of the process runtime in network namespaces of their own (CNI bridge + "
        "host-local from /usr/lib/cni, a bridge per tenant network, nftables isolation and "
        "ClusterIPs), addressed from the Node's podCIDR. auto: when root with the CNI "
        "plugins and nft; off: pods share the node's network."
    ),
]
_POD_NETWORK = {PodNetworkMode.AUTO: None, PodNetworkMode.ON: True, PodNetworkMode.OFF: False}


def _checked_manager(
    options: controllers.ControllerManagerOptions,
) -> controllers.ControllerManagerOptions:
    try:
        options.ipam()
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--cluster-cidr") from None
    return options


def _neutron_config(
    config_file: pathlib.Path | None,
    *,
    url: str,
    auth: controllers.NeutronAuth | None,
    project_id: str,
    keystone_url: str,
    username: str,
    password: str,
    project_name: str,
    user_domain: str,
    project_domain: str,
) -> controllers.NeutronConfig | None:
    """The Neutron network controller's configuration; None when none is asked for."""
    if config_file is None and not url and auth is None:
        return None
    given = {
        "url": url,
        "auth": auth.value if auth else "",
        "project_id": project_id,
        "keystone_url": keystone_url,
        "username": username,
        "password": password,
        "project_name": project_name,
        "user_domain": user_domain,
        "project_domain": project_domain,
    }
    try:
        config = controllers.NeutronConfig.from_file(config_file, **given)
        config.check()
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--neutron-config/--neutron-*") from None
    return config


def _checked_endpoints(text: str) -> str:
    if text:
        try:
            runtime.parse_endpoints(text)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--runtime-endpoint") from None
    return text


@app.callback()
def root() -> None:
    """arktos-lite: a Kubernetes-compatible cluster with Arktos multi-tenancy."""


@app.command()
def version() -> None:
    """Print the arktos-lite version."""
    typer.echo(arktos_lite.__version__)


@app.command("up")
def up(
    data_dir: DataDir = cluster.DEFAULT_DATA_DIR,
    port: Port = 6443,
    host: Host = "127.0.0.1",
    store: Store = None,
    token_auth_file: TokenFile = None,
    plain_http: PlainHttp = False,
    workload_controllers: Annotated[
        int,
        typer.Option(
            min=0,
            help="Instances of the workload controller manager in this process "
            "(0: none, so that separate processes take the work).",
        ),
    ] = 1,
    node_name: NodeName = None,
    container_runtime: Annotated[
        ContainerRuntime,
        typer.Option(
            help="Where container pods run: the embedded process runtime, or containerd "
            "at --containerd-endpoint."
        ),
    ] = ContainerRuntime.PROCESS,
    containerd_endpoint: Annotated[
        str, typer.Option(help="containerd's CRI socket, for --container-runtime containerd.")
    ] = CONTAINERD_SOCKET,
    runtime_endpoint: RuntimeEndpoints = "",
    vm_runtime_uri: Annotated[
        str,
        typer.Option(
            help="Run the VM runtime over this libvirt URI (e.g. qemu:///system, "
            "test:///default) instead of the default one."
        ),
    ] = "",
    vm_runtime: Annotated[
        bool,
        typer.Option(
            help="Run the VM runtime in this process; by default over QEMU embedded through "
            "libvirt (qemu:///embed?root=DATA_DIR/agent/vm/libvirt, no daemon), where "
            "libvirt-python and QEMU are installed."
        ),
    ] = True,
    vm_bridge: VmBridge = "",
    keep_pods: KeepPods = False,
    pod_network: PodNetwork = PodNetworkMode.AUTO,
    agent: Annotated[
        bool, typer.Option(help="Run a node agent (off: a control plane without a node).")
    ] = True,
    partitions: Annotated[
        int,
        typer.Option(
            min=0,
            help="Run a partitioned cluster instead: this many API servers (partition i on "
            "port+i, each over its own store; --store etcd: an etcd each), and every other "
            "component, as separate processes. 0: everything in this process.",
        ),
    ] = 0,
    cluster_cidr: ClusterCidr = DEFAULT_CLUSTER_CIDR,
    node_cidr_mask_size_ipv4: NodeCidrMaskSizeIpv4 = 24,
    node_cidr_mask_size_ipv6: NodeCidrMaskSizeIpv6 = 64,
    neutron_config: NeutronConfigFile = None,
    neutron_url: NeutronUrl = "",
    neutron_auth: NeutronAuthOption = None,
    neutron_project_id: NeutronProjectId = "",
    keystone_url: KeystoneUrl = "",
    os_username: OsUsername = "",
    os_password: OsPassword = "",
    os_project_name: OsProjectName = "",
    os_user_domain: OsUserDomain = "Default",
    os_project_domain: OsProjectDomain = "Default",
    verbose: Verbose = False,
) -> None:
    """Start the whole cluster in this process; Ctrl-C stops it cleanly."""
    manager = _checked_manager(
        controllers.ControllerManagerOptions(
            cluster_cidr=cluster_cidr,
            node_cidr_mask_size_ipv4=node_cidr_mask_size_ipv4,
            node_cidr_mask_size_ipv6=node_cidr_mask_size_ipv6,
            neutron_config=_neutron_config(
                neutron_config,
                url=neutron_url,
                auth=neutron_auth,
                project_id=neutron_project_id,
                keystone_url=keystone_url,
                username=os_username,
                password=os_password,
                project_name=os_project_name,
                user_domain=os_user_domain,
                project_domain=os_project_domain,
            ),
        )
    )
    if vm_runtime_uri and not vm_runtime:
        raise typer.BadParameter(
            "give --vm-runtime-uri or --no-vm-runtime, not both", param_hint="--vm-runtime-uri"
        )
    if not runtime_endpoint and container_runtime is ContainerRuntime.CONTAINERD:
        runtime_endpoint = f"containerd,container,{containerd_endpoint}"
    if partitions:
        agent_args = ["--root-dir", str(data_dir / "agent"), "--port", "0"]
        if keep_pods:
            agent_args.append("--keep-pods")
        agent_args += ["--pod-network", pod_network.value]
        if runtime_endpoint:
            agent_args += ["--runtime-endpoint", _checked_endpoints(runtime_endpoint)]
        if vm_runtime_uri:
            agent_args += ["--vm-runtime-uri", vm_runtime_uri]
        elif vm_runtime:
            agent_args.append("--vm-runtime")
        if vm_bridge:
            agent_args += ["--vm-bridge", vm_bridge]
        try:
            spread = topology.TopologyOptions(
                data_dir=data_dir,
                partitions=partitions,
                host=host,
                port=port,
                store=store,
                token_auth_file=token_auth_file,
                plain_http=plain_http,
                workload_controllers=workload_controllers,
                agent_args=tuple(agent_args) if agent else None,
                node_name=node_name or socket.gethostname(),
                verbose=verbose,
                controller_manager=manager,
            )
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--store") from None
        _configure_process(verbose=verbose)
        trio.run(_serve_topology, spread)
        return
    node = cluster.AgentOptions(
        agent_.AgentConfig(
            node_name=node_name or socket.gethostname(),
            root_dir=data_dir / "agent",
            # Any free port: the API server finds the agent through its Node.
            port=0,
            keep_pods=keep_pods,
            pod_network=_POD_NETWORK[pod_network],
        ),
        runtime_endpoints=_checked_endpoints(runtime_endpoint),
        vm_runtime_uri=vm_runtime_uri,
        default_vm_runtime=vm_runtime,
        vm_bridge=vm_bridge,
    )
    options = cluster.ClusterOptions(
        data_dir=data_dir,
        host=host,
        port=port,
        store=store,
        token_auth_file=token_auth_file,
        plain_http=plain_http,
        workload_controllers=workload_controllers,
        agent=node if agent else None,
        controller_manager=manager,
    )
    _run_cluster(options, verbose=verbose)


@app.command("apiserver")
def apiserver(
    data_dir: DataDir = cluster.DEFAULT_DATA_DIR,
    port: Port = 6443,
    host: Host = "127.0.0.1",
    store: Store = None,
    token_auth_file: TokenFile = None,
    plain_http: PlainHttp = False,
    partition_config: Annotated[
        pathlib.Path | None,
        typer.Option(
            help="Serve one data partition: the tenants of the range this file gives, in "
            "lines `keyPrefix, rangeStart, rangeEnd` (end exclusive, empty: unbounded). "
            "Requests for other tenants are answered 421 MisdirectedRequest.",
            dir_okay=False,
        ),
    ] = None,
    service_group_id: Annotated[
        str, typer.Option(help="The partition's name (its DataPartitionConfig's serviceGroupId).")
    ] = "0",
    service_cluster_ip_range: Annotated[
        str,
        typer.Option(
            help="CIDR that Services' cluster IPs are allocated from; partitions need "
            "ranges that do not overlap."
        ),
    ] = "10.96.0.0/16",
    cluster_kubeconfig: Annotated[
        pathlib.Path | None,
        typer.Option(
            help="With --partition-config: the partitioned cluster's kubeconfig, one context "
            "per partition (as `arktos up --partitions` writes it). A misdirected request is "
            "told which partition's server holds what it asked for, and a partition without "
            "tenant system reaches the designated one through it (with its token) for the "
            "Nodes that pods' log and exec go through.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Run the API server alone; the other components connect to it with a kubeconfig."""
    partition = None
    if partition_config is not None:
        try:
            partition = partitions.load_partition_config(partition_config, name=service_group_id)
        except partitions.PartitionConfigError as error:
            raise typer.BadParameter(str(error), param_hint="--partition-config") from None
    designated: client.Config | None = None
    peers: tuple[tuple[partitions.Partition, str], ...] = ()
    if cluster_kubeconfig is not None:
        designated, peers = _cluster_kubeconfig(cluster_kubeconfig)
    try:
        ipaddress.ip_network(service_cluster_ip_range)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--service-cluster-ip-range") from None
    options = cluster.ClusterOptions(
        data_dir=data_dir,
        host=host,
        port=port,
        store=store,
        token_auth_file=token_auth_file,
        plain_http=plain_http,
        partition=partition,
        service_cidr=service_cluster_ip_range,
        designated=designated,
        cluster=peers,
        controller_manager=None,
        scheduler=None,
        workload_controllers=0,
    )
    _run_cluster(options, verbose=verbose)


def _cluster_kubeconfig(
    path: pathlib.Path,
) -> tuple[client.Config, tuple[tuple[partitions.Partition, str], ...]]:
    """The designated partition's config and every partition's server, from a partitioned
    cluster's kubeconfig."""
    hint = "--cluster-kubeconfig"
    try:
        found = client.load_partitioned_kubeconfig(path)
    except client.KubeconfigError as error:
        raise typer.BadParameter(str(error), param_hint=hint) from None
    if found is None:
        raise typer.BadParameter(
            f"{path}: its current context addresses no partition "
            "(no arktos.futurewei.com/partition extension)",
            param_hint=hint,
        )
    designated = next(config for p, config in found.partitions if p.tenants.designated)
    if not designated.token:
        raise typer.BadParameter(
            "the designated partition's context has no token (node agents check the token "
            "the API server presents)",
            param_hint=hint,
        )
    return designated, tuple((p, config.server) for p, config in found.partitions)


@app.command("controller-manager")
def controller_manager(
    kubeconfig: Kubeconfig = None,
    node_monitor_grace_period: Annotated[
        float, typer.Option(help="Seconds a node may be silent before it is marked unknown.")
    ] = 40.0,
    pod_eviction_timeout: Annotated[
        float,
        typer.Option(help="Seconds pods without their own toleration stay on a lost node."),
    ] = 300.0,
    kube_api_qps: Annotated[
        float, typer.Option(help="Requests per second to the API server.")
    ] = cluster.COMPONENT_QPS,
    kube_api_burst: Annotated[
        int, typer.Option(help="Requests allowed at once above the QPS.")
    ] = cluster.COMPONENT_BURST,
    cluster_cidr: ClusterCidr = DEFAULT_CLUSTER_CIDR,
    node_cidr_mask_size_ipv4: NodeCidrMaskSizeIpv4 = 24,
    node_cidr_mask_size_ipv6: NodeCidrMaskSizeIpv6 = 64,
    neutron_config: NeutronConfigFile = None,
    neutron_url: NeutronUrl = "",
    neutron_auth: NeutronAuthOption = None,
    neutron_project_id: NeutronProjectId = "",
    keystone_url: KeystoneUrl = "",
    os_username: OsUsername = "",
    os_password: OsPassword = "",
    os_project_name: OsProjectName = "",
    os_user_domain: OsUserDomain = "Default",
    os_project_domain: OsProjectDomain = "Default",
    verbose: Verbose = False,
) -> None:
    """Run the core controllers (tenant, namespace, garbage collector, node lifecycle,
    endpoints, node IPAM; Neutron ports for VM pods' NICs when given Neutron)."""
    options = _checked_manager(
        controllers.ControllerManagerOptions(
            node_monitor_grace_period=node_monitor_grace_period,
            pod_eviction_timeout=pod_eviction_timeout,
            cluster_cidr=cluster_cidr,
            node_cidr_mask_size_ipv4=node_cidr_mask_size_ipv4,
            node_cidr_mask_size_ipv6=node_cidr_mask_size_ipv6,
            neutron_config=_neutron_config(
                neutron_config,
                url=neutron_url,
                auth=neutron_auth,
                project_id=neutron_project_id,
                keystone_url=keystone_url,
                username=os_username,
                password=os_password,
                project_name=os_project_name,
                user_domain=os_user_domain,
                project_domain=os_project_domain,
            ),
        )
    )
    _configure_process(verbose=verbose)

    async def run() -> None:
        async with client.Client.from_kubeconfig(
            kubeconfig,
            qps=kube_api_qps,
            burst=kube_api_burst,
            user_agent=cluster.user_agent("controller-manager"),
        ) as api:
            await _run_until_signalled(controllers.ControllerManager(api, options=options).run)

    trio.run(run)


@app.command("workload-controller-manager")
def workload_controller_manager(
    config: Annotated[
        pathlib.Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Arktos's JSON configuration (report interval, resync period, qps, "
            "controllers and their workers).",
        ),
    ] = None,
    kubeconfig: Kubeconfig = None,
    verbose: Verbose = False,
) -> None:
    """Run one partitioned instance of the ReplicaSet and Deployment controllers."""
    _configure_process(verbose=verbose)
    try:
        settings = workload.load_config(config) if config is not None else workload.WorkloadConfig()
    except workload.ConfigError as error:
        raise typer.BadParameter(str(error), param_hint="--config") from None

    async def run() -> None:
        qps = settings.qps
        async with client.Client.from_kubeconfig(
            kubeconfig,
            qps=qps,
            burst=int(qps * 2),
            user_agent=cluster.user_agent("workload-controller-manager"),
        ) as api:
            manager = workload.WorkloadControllerManager(api, config=settings)
            await _run_until_signalled(manager.run)

    trio.run(run)


@app.command("scheduler")
def run_scheduler(
    config: Annotated[
        pathlib.Path | None,
        typer.Option(exists=True, dir_okay=False, help="A KubeSchedulerConfiguration file."),
    ] = None,
    kubeconfig: Kubeconfig = None,
    verbose: Verbose = False,
) -> None:
    """Run the scheduler of container and VM pods."""
    _configure_process(verbose=verbose)
    try:
        settings = scheduler.load_config(config) if config is not None else None
    except scheduler.ConfigError as error:
        raise typer.BadParameter(str(error), param_hint="--config") from None

    async def run() -> None:
        async with client.Client.from_kubeconfig(
            kubeconfig,
            qps=cluster.SCHEDULER_QPS,
            burst=cluster.SCHEDULER_BURST,
            user_agent=cluster.user_agent("scheduler"),
        ) as api:
            await _run_until_signalled(scheduler.Scheduler(api, config=settings).run)

    trio.run(run)


@app.command("agent")
def run_agent(
    kubeconfig: Kubeconfig = None,
    node_name: NodeName = None,
    root_dir: Annotated[
        pathlib.Path,
        typer.Option(help="Holds the agent's state, pod volumes and logs."),
    ] = cluster.DEFAULT_DATA_DIR / "agent",
    runtime_endpoint: RuntimeEndpoints = "",
    vm_runtime_uri: VmRuntimeUri = "",
    vm_runtime: Annotated[
        bool,
        typer.Option(
            help="Without --vm-runtime-uri: run the VM runtime in this process over QEMU "
            "embedded through libvirt, where installed (as `arktos up` does by default)."
        ),
    ] = False,
    vm_bridge: VmBridge = "",
    address: Annotated[
        str, typer.Option(help="Address of the agent's server (logs, exec).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the agent's server (0: any).")] = 10250,
    node_ip: Annotated[
        str, typer.Option(help="The node's address, as the API server reaches it.")
    ] = "127.0.0.1",
    max_pods: Annotated[int, typer.Option(min=1, help="Pods this node takes at most.")] = 110,
    keep_pods: KeepPods = False,
    pod_network: PodNetwork = PodNetworkMode.AUTO,
    hollow: Annotated[
        int,
        typer.Option(
            min=0,
            help="Run this many simulated nodes (fake runtime, real Leases and status) "
            "instead of a real one, for scale tests.",
        ),
    ] = 0,
    verbose: Verbose = False,
) -> None:
    """Run the node agent: registers the node and runs its pods over CRI runtimes."""
    _configure_process(verbose=verbose)
    options = cluster.AgentOptions(
        agent_.AgentConfig(
            node_name=node_name or socket.gethostname(),
            root_dir=root_dir,
            address=address,
            port=port,
            node_ip=node_ip,
            keep_pods=keep_pods,
            max_pods=max_pods,
            pod_network=_POD_NETWORK[pod_network],
        ),
        runtime_endpoints=_checked_endpoints(runtime_endpoint),
        vm_runtime_uri=vm_runtime_uri,
        default_vm_runtime=vm_runtime,
        vm_bridge=vm_bridge,
    )

    async def run() -> None:
        async with client.Client.from_kubeconfig(
            kubeconfig,
            qps=cluster.COMPONENT_QPS,
            burst=cluster.COMPONENT_BURST,
            user_agent=cluster.user_agent("agent"),
        ) as api:
            if hollow:
                nodes = agent_.HollowNodes(
                    api, count=hollow, name_prefix=f"{options.config.node_name}-"
                )
                await _run_until_signalled(nodes.run)
            else:
                await _run_until_signalled(
                    functools.partial(cluster.run_agent, api, options=options)
                )

    trio.run(run)


@app.command("process-runtime")
def process_runtime(
    root_dir: Annotated[
        pathlib.Path, typer.Option(help="Holds the runtime's state and its containers' files.")
    ] = cluster.DEFAULT_DATA_DIR / "agent" / "runtime",
    socket_path: Annotated[
        pathlib.Path, typer.Option("--socket", help="The CRI unix socket to serve.")
    ] = cluster.DEFAULT_DATA_DIR / "agent" / "runtime.sock",
    verbose: Verbose = False,
) -> None:
    """Serve the process runtime (CRI over a unix socket) on its own."""
    _configure_process(verbose=verbose)
    config = process.ProcessRuntimeConfig(root_dir=root_dir, socket_path=socket_path)
    trio.run(_run_until_signalled, process.ProcessRuntime(config).run)


image_app = typer.Typer(no_args_is_help=True, help="Images of the embedded process runtime.")
app.add_typer(image_app, name="image")


@image_app.command("import")
def image_import(
    archive: Annotated[
        pathlib.Path,
        typer.Argument(
            exists=True,
            help="An OCI image archive (tar, tar.gz) or layout directory; with --vm a qcow2 "
            "or raw disk, with --kernel a kernel.",
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option(help="The image's name (default: the one an OCI archive gives)."),
    ] = None,
    vm_image: Annotated[
        bool, typer.Option("--vm", help="A disk image for VM pods (qcow2 or raw).")
    ] = False,
    kernel: Annotated[
        bool, typer.Option(help="A kernel for VM pods, booted directly (see --initrd).")
    ] = False,
    initrd: Annotated[
        pathlib.Path | None, typer.Option(exists=True, help="The kernel's initrd.")
    ] = None,
    cmdline: Annotated[str, typer.Option(help="The kernel's command line.")] = "",
    root_dir: Annotated[
        pathlib.Path | None,
        typer.Option(
            help="The runtime's root (default: ~/.arktos/agent/runtime, or "
            "~/.arktos/agent/vm for VM images, as `arktos up` has them)."
        ),
    ] = None,
) -> None:
    """Store an image on this node: for the process runtime (whose pods then run in it, with
    runc as root), or with --vm/--kernel for the VM runtime."""
    agent_dir = cluster.DEFAULT_DATA_DIR / "agent"
    try:
        if vm_image or kernel:
            if not name:
                raise typer.BadParameter("a VM image needs a name", param_hint="--name")
            stored = vm.import_vm_image(
                root_dir or agent_dir / "vm",
                archive,
                name=name,
                kind=vm.ImageKind.KERNEL if kernel else vm.ImageKind.DISK,
                initrd=initrd,
                cmdline=cmdline,
            )
            typer.echo(f"{name} {stored.id} ({stored.size:,} bytes)")
            return
        imported = process.import_image(root_dir or agent_dir / "runtime", archive, name=name)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="ARCHIVE") from None
    typer.echo(f"{imported.name or '<unnamed>'} {imported.digest} ({imported.size:,} bytes)")


@app.command("vm-runtime")
def vm_runtime(
    root_dir: Annotated[
        pathlib.Path, typer.Option(help="Holds the runtime's VMs, disks and images.")
    ] = cluster.DEFAULT_DATA_DIR / "agent" / "vm",
    socket_path: Annotated[
        pathlib.Path, typer.Option("--socket", help="The CRI unix socket to serve.")
    ] = cluster.DEFAULT_DATA_DIR / "agent" / "vm.sock",
    uri: Annotated[
        str | None,
        typer.Option(help="libvirt URI (default: qemu:///embed?root=ROOT_DIR/libvirt)."),
    ] = None,
    bridge: Annotated[
        str,
        typer.Option(
            help="A network bridge (e.g. br0) guests get a virtio NIC on; while it does not "
            "exist, new guests get none and the runtime's status says so."
        ),
    ] = "",
    verbose: Verbose = False,
) -> None:
    """Serve the VM runtime (CRI with Arktos' VM calls, over libvirt) on a unix socket."""
    _configure_process(verbose=verbose)
    missing = vm.libvirt_missing()
    if missing:
        raise typer.BadParameter(missing, param_hint="libvirt")
    config = vm.VmRuntimeConfig(root_dir=root_dir, socket_path=socket_path, uri=uri, bridge=bridge)
    trio.run(_run_until_signalled, vm.VmRuntime(config).run)


action_app = typer.Typer(
    no_args_is_help=True, help="Actions on VM pods: reboot, snapshot, restore (Arktos)."
)
app.add_typer(action_app, name="action")

PodName = Annotated[str, typer.Argument(help="The VM pod.")]
Namespace = Annotated[str, typer.Option("--namespace", "-n", help="The pod's namespace.")]
Tenant = Annotated[
    str | None, typer.Option(help="The pod's tenant (default: the kubeconfig user's).")
]
Wait = Annotated[
    bool, typer.Option(help="Wait until the agent completed the action; fail if it failed.")
]
WaitTimeout = Annotated[float, typer.Option(help="Seconds --wait waits at most.")]


@action_app.command("reboot")
def action_reboot(
    pod: PodName,
    delay: Annotated[int, typer.Option(min=0, help="Seconds before the reboot.")] = 0,
    namespace: Namespace = "default",
    tenant: Tenant = None,
    wait: Wait = False,
    timeout: WaitTimeout = 300.0,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Reboot a VM pod's virtual machine."""
    body = {"operation": "reboot", "rebootParams": {"delayInSeconds": delay}}
    _action(body, pod, namespace=namespace, tenant=tenant, wait=wait, timeout=timeout,
            kubeconfig=kubeconfig)  # fmt: skip


@action_app.command("snapshot")
def action_snapshot(
    pod: PodName,
    name: Annotated[str, typer.Option("--name", help="The snapshot's name.")],
    namespace: Namespace = "default",
    tenant: Tenant = None,
    wait: Wait = False,
    timeout: WaitTimeout = 300.0,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Snapshot a VM pod's virtual machine (memory and disk)."""
    body = {"operation": "snapshot", "snapshotParams": {"snapshotName": name}}
    _action(body, pod, namespace=namespace, tenant=tenant, wait=wait, timeout=timeout,
            kubeconfig=kubeconfig)  # fmt: skip


@action_app.command("restore")
def action_restore(
    pod: PodName,
    snapshot: Annotated[str, typer.Option("--snapshot", help="The snapshot to restore.")],
    namespace: Namespace = "default",
    tenant: Tenant = None,
    wait: Wait = False,
    timeout: WaitTimeout = 300.0,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Restore a VM pod's virtual machine to a snapshot."""
    body = {"operation": "restore", "restoreParams": {"snapshotID": snapshot}}
    _action(body, pod, namespace=namespace, tenant=tenant, wait=wait, timeout=timeout,
            kubeconfig=kubeconfig)  # fmt: skip


def _action(
    body: Mapping[str, object],
    pod: str,
    *,
    namespace: str,
    tenant: str | None,
    wait: bool,
    timeout: float,
    kubeconfig: pathlib.Path | None,
) -> None:
    """POST a CustomAction to the pod; with `wait`, follow the Action it made to its end."""
    registry = resources.Registry()
    pods, actions = registry.get("", "v1", "pods"), registry.get("", "v1", "actions")
    assert pods is not None
    assert actions is not None
    custom = {"apiVersion": "v1", "kind": "CustomAction", **body}

    async def run() -> dict[str, object] | None:
        async with client.Client.from_kubeconfig(kubeconfig, tenant=tenant) as api:
            answer = await api.post_subresource(pods, pod, "action", custom, namespace=namespace)
            typer.echo(answer.get("message") or answer)
            name = (answer.get("details") or {}).get("name")
            if not wait or not name:
                return None
            with trio.move_on_after(timeout):
                while True:
                    action = await api.get(actions, name, namespace=namespace)
                    status = action.get("status") or {}
                    if status.get("complete"):
                        return dict(status)
                    await trio.sleep(0.5)
            typer.echo(f"action {name} did not complete within {timeout:g} s", err=True)
            raise typer.Exit(1)

    try:
        status = trio.run(run)
    except errors.StatusError as error:
        typer.echo(f"Error from server ({error.reason}): {error.message}", err=True)
        raise typer.Exit(1) from None
    if status is not None:
        if status.get("error"):
            typer.echo(f"action failed: {status['error']}", err=True)
            raise typer.Exit(1)
        typer.echo("action complete")


@app.command("logs")
def logs(
    pod: Annotated[str, typer.Argument(help="The pod (a container pod or a VM pod).")],
    container: Annotated[
        str | None,
        typer.Option("--container", "-c", help="The container (default: the pod's only one)."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep writing the log as it grows.")
    ] = False,
    tail: Annotated[int, typer.Option(help="Lines from the end to show (-1: all of them).")] = -1,
    since: Annotated[
        str | None,
        typer.Option(help="Only what was written in this last while (e.g. 30s, 5m, 1h)."),
    ] = None,
    since_time: Annotated[
        str | None, typer.Option(help="Only what was written after this RFC 3339 time.")
    ] = None,
    timestamps: Annotated[bool, typer.Option(help="Start each line with its time.")] = False,
    previous: Annotated[
        bool,
        typer.Option("--previous", "-p", help="The log of the previous run of the container."),
    ] = False,
    namespace: Namespace = "default",
    tenant: Tenant = None,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Print a pod's log; for a VM pod, its serial console (which `kubectl logs` refuses)."""
    if since is not None and since_time is not None:
        raise typer.BadParameter("give --since or --since-time, not both", param_hint="--since")
    try:
        since_seconds = podlogs.parse_duration(since) if since is not None else None
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--since") from None
    options = podlogs.LogOptions(
        container=container,
        follow=follow,
        tail=tail,
        since_seconds=since_seconds,
        since_time=since_time,
        timestamps=timestamps,
        previous=previous,
    )

    def out(chunk: bytes) -> None:
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()

    async def run() -> None:
        async with client.Client.from_kubeconfig(kubeconfig, tenant=tenant) as api:
            await podlogs.write_log(
                api, pod, namespace=namespace, tenant=tenant, options=options, out=out
            )

    try:
        trio.run(run)
    except errors.StatusError as error:
        typer.echo(f"Error from server ({error.reason}): {error.message}", err=True)
        raise typer.Exit(1) from None
    except client.Unreachable as error:
        typer.echo(f"Unable to connect to the server: {error}", err=True)
        raise typer.Exit(1) from None
    except ValueError as error:  # a name that cannot be part of a URL path
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except BrokenPipeError:
        # Read by a pager or `head` that stopped reading.
        raise typer.Exit(0) from None


@app.command("get")
def get(
    kind: Annotated[str, typer.Argument(help="The resource: pods, po, deployments.apps, …")],
    names: Annotated[list[str] | None, typer.Argument(help="Objects by name.")] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="The namespace (default: default).")
    ] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Every namespace of the tenant.")
    ] = False,
    tenant: Annotated[
        str | None, typer.Option(help="The tenant (default: the kubeconfig user's).")
    ] = None,
    all_tenants: Annotated[
        bool,
        typer.Option(help="Every tenant (system users), of every partition of the cluster."),
    ] = False,
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="A label selector.")
    ] = None,
    field_selector: Annotated[str | None, typer.Option(help="A field selector.")] = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="wide, json, yaml or name (default: a table).")
    ] = "",
    kubeconfig: Kubeconfig = None,
) -> None:
    """List or show objects as kubectl does, across tenants and partitions too."""
    try:
        query = getting.Query(
            getting.find_resource(kind),
            names=tuple(names or ()),
            namespace=namespace,
            all_namespaces=all_namespaces,
            tenant=tenant,
            all_tenants=all_tenants,
            label_selector=selector,
            field_selector=field_selector,
            output=output,
        )
    except (LookupError, ValueError) as error:
        typer.echo(f"error: {error.args[0]}", err=True)
        raise typer.Exit(1) from None

    async def run() -> str:
        async with client.Client.from_kubeconfig(kubeconfig, tenant=tenant) as api:
            return await getting.get(api, query)

    try:
        printed = trio.run(run)
    except errors.StatusError as error:
        typer.echo(f"Error from server ({error.reason}): {error.message}", err=True)
        raise typer.Exit(1) from None
    except client.Unreachable as error:
        typer.echo(f"Unable to connect to the server: {error}", err=True)
        raise typer.Exit(1) from None
    except ValueError as error:  # a name that cannot be part of a URL path
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    if printed:
        typer.echo(printed)


store_app = typer.Typer(no_args_is_help=True, help="Tools for the API server's store.")
app.add_typer(store_app, name="store")


@store_app.command("migrate")
def store_migrate(
    source: Annotated[
        str, typer.Option("--from", help="The store to copy from, e.g. sqlite:///PATH.")
    ],
    target: Annotated[
        str, typer.Option("--to", help="The store to copy into, e.g. etcd://HOST:PORT.")
    ],
    force: Annotated[
        bool,
        typer.Option(help="Copy into a store that is not empty (its keys take the source's)."),
    ] = False,
) -> None:
    """Copy every current object (not history) from one store to another, one way.

    Refuses while an API server has either store open, and refuses a target that holds
    anything unless --force. Stop the API servers first; start them on the new store after.
    """
    _configure_process(verbose=False)
    try:
        result = trio.run(functools.partial(apiserver_.migrate, source, target, force=force))
    except (apiserver_.TargetNotEmpty, storage.StorageError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"copied {result.copied} objects (revision {result.source_revision} of {source}) "
        f"to {target}" + (f"; {result.overwritten} overwritten" if result.overwritten else "")
    )


def _configure_process(*, verbose: bool) -> None:
    """Logging, and the garbage collector's thresholds, for every component process."""
    # Lists and informers' first lists decode thousands of objects at once; with the
    # default thresholds the collector ran over and over during them (a 10,000-pod list
    # took 2-3x longer to serve, and 2.7x longer to decode in an informer).
    gc.set_threshold(50_000, 20, 100)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("hypercorn", "sqlalchemy", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _run_cluster(options: cluster.ClusterOptions, *, verbose: bool) -> None:
    _configure_process(verbose=verbose)
    try:
        trio.run(_serve, options)
    except* (storage.Unavailable, storage.StoreInUse) as group:
        # A store that cannot be opened is the user's to fix, not a crash.
        for error in _leaves(group):
            typer.echo(f"error: store {options.store_url}: {error}", err=True)
        raise typer.Exit(1) from None


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for error in group.exceptions:
        found += _leaves(error) if isinstance(error, BaseExceptionGroup) else [error]
    return found


async def _run_until_signalled(component: Callable[..., Awaitable[object]]) -> None:
    """Run one component until SIGINT or SIGTERM, which cancel it."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(component)
            async for _signal in signals:
                nursery.cancel_scope.cancel()
                break


async def _serve(options: cluster.ClusterOptions) -> None:
    running = cluster.Cluster(options)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signals() -> None:
                async for _signal in signals:
                    if running.stopping:
                        nursery.cancel_scope.cancel()  # a second signal: stop now
                    running.stop()

            async def run(*, task_status: trio.TaskStatus[cluster.Started]) -> None:
                await running.run(task_status=task_status)
                nursery.cancel_scope.cancel()

            nursery.start_soon(stop_on_signals)
            started = await nursery.start(run)
            gc.freeze()  # what start-up allocated lives on; keep it out of collections
            print(
                f"arktos-lite is ready at {started.url}; kubeconfig: {started.kubeconfig}",
                flush=True,
            )


async def _serve_topology(options: topology.TopologyOptions) -> None:
    spread = topology.Topology(options)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                async for _signal in signals:
                    # The topology stops its processes in order as it is cancelled.
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(stop_on_signal)
            started = await nursery.start(spread.run)
            print(
                f"arktos-lite is ready at {started.url}; kubeconfig: {started.kubeconfig}",
                flush=True,
            )


def main() -> None:
    app()
