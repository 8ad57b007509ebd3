"""`RuntimeClient`: the `Runtime` protocol over gRPC, to any CRI runtime's socket.

It speaks runtime.v1 as containerd, CRI-O and arktos-lite's embedded runtimes serve it,
plus Arktos' VM calls (`reboot_vm`, `create_snapshot`, `restore_to_snapshot`) and the
power calls (`pause_vm`, `resume_vm`, `suspend_vm`) for VM runtimes. Guarantees:

* Every call has a deadline (`request_timeout`, by default two minutes like kubelet's;
  calls that wait on purpose, stop and exec, get their own wait on top, and pulls their
  own `pull_timeout`) and fails with `DeadlineExceeded` when it passes.
* Failures are `runtime` errors (`NotFound`, `Unavailable`, ...), never `grpc.RpcError`.
  A runtime that is not listening fails fast with `Unavailable`; connecting is lazy, so a
  client for a runtime that starts later works once it is up.
* Cancelling the calling trio task cancels the RPC on the wire (the runtime sees
  CANCELLED) and returns at once. Calls use gRPC's own futures, so no trio worker thread
  is parked per call; at most `max_concurrency` calls are in flight at a time.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, TypeVar, cast

import grpc
import trio
from google.protobuf import message

from arktos_lite.runtime import _errors as errors
from arktos_lite.runtime._endpoints import grpc_target
from arktos_lite.runtime._protocol import ExecResult
from arktos_lite.runtime.cri import api_pb2 as cri, api_pb2_grpc

logger = logging.getLogger(__name__)

_Response = TypeVar("_Response", bound=message.Message)

# The CRI version string kubelet sends in VersionRequest.
_KUBELET_CRI_VERSION = "0.1.0"
# As kubelet: ExecSync output is capped at 16 MiB per stream, so responses stay under it.
_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class RuntimeClient:
    """One CRI runtime (RuntimeService and ImageService) behind one gRPC channel.

    `async with RuntimeClient.connect(address) as rc:` closes the channel on exit; or
    construct it and `await rc.aclose()`. Addresses are those `Endpoint` accepts.
    """

    def __init__(
        self,
        address: str,
        *,
        request_timeout: float = 120.0,
        pull_timeout: float = 900.0,
        max_concurrency: int = 64,
    ) -> None:
        self.address = address
        self._timeout = request_timeout
        self._pull_timeout = pull_timeout
        self._channel = grpc.insecure_channel(
            grpc_target(address),
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            ],
        )
        # The generated stubs are untyped; `_call` restores the response types.
        self._runtime = api_pb2_grpc.RuntimeServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._images = api_pb2_grpc.ImageServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._limiter = trio.CapacityLimiter(max_concurrency)
        logger.debug("CRI client for %s", address)

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        address: str,
        *,
        request_timeout: float = 120.0,
        pull_timeout: float = 900.0,
        max_concurrency: int = 64,
    ) -> AsyncIterator[RuntimeClient]:
        client = cls(
            address,
            request_timeout=request_timeout,
            pull_timeout=pull_timeout,
            max_concurrency=max_concurrency,
        )
        try:
            yield client
        finally:
            await client.aclose()

    async def aclose(self) -> None:
        """Close the channel; calls still in flight fail."""
        self._channel.close()
        logger.debug("CRI client for %s closed", self.address)
        await trio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        return f"RuntimeClient({self.address!r})"

    async def _call(
        self,
        method: Any,
        request: message.Message,
        response_type: type[_Response],
        *,
        deadline: float | None = None,
    ) -> _Response:
        """Run one unary RPC as a trio call: deadline, cancellation and error mapping.

        `deadline` (seconds) defaults to the client's request timeout; `math.inf` means
        none at all. `response_type` only tells the type checker what `method` returns.
        """
        seconds = self._timeout if deadline is None else deadline
        timeout = None if math.isinf(seconds) else seconds
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        def wake(_: object) -> None:
            # Runs on a gRPC thread (or right here when the call already ended).
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        async with self._limiter:
            future = method.future(request, timeout=timeout)
            try:
                future.add_done_callback(wake)
                await done.wait()
            except BaseException:
                future.cancel()
                raise
            try:
                response = future.result()
            except grpc.RpcError as error:
                raise _mapped(error) from None
            except grpc.FutureCancelledError:
                raise errors.CRIError(
                    "the call was cancelled", code=grpc.StatusCode.CANCELLED
                ) from None
        return cast(_Response, response)

    # ---------------------------------------------------------------- runtime

    async def version(self) -> cri.VersionResponse:
        return await self._call(
            self._runtime.Version,
            cri.VersionRequest(version=_KUBELET_CRI_VERSION),
            cri.VersionResponse,
        )

    async def status(self, *, verbose: bool = False) -> cri.StatusResponse:
        return await self._call(
            self._runtime.Status, cri.StatusRequest(verbose=verbose), cri.StatusResponse
        )

    async def update_runtime_config(self, *, pod_cidr: str) -> None:
        await self._call(
            self._runtime.UpdateRuntimeConfig,
            cri.UpdateRuntimeConfigRequest(
                runtime_config=cri.RuntimeConfig(
                    network_config=cri.NetworkConfig(pod_cidr=pod_cidr)
                )
            ),
            cri.UpdateRuntimeConfigResponse,
        )

    # ---------------------------------------------------------------- sandboxes

    async def run_pod_sandbox(
        self, config: cri.PodSandboxConfig, *, runtime_handler: str = ""
    ) -> str:
        response = await self._call(
            self._runtime.RunPodSandbox,
            cri.RunPodSandboxRequest(config=config, runtime_handler=runtime_handler),
            cri.RunPodSandboxResponse,
        )
        return response.pod_sandbox_id

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        await self._call(
            self._runtime.StopPodSandbox,
            cri.StopPodSandboxRequest(pod_sandbox_id=sandbox_id),
            cri.StopPodSandboxResponse,
        )

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        await self._call(
            self._runtime.RemovePodSandbox,
            cri.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id),
            cri.RemovePodSandboxResponse,
        )

    async def pod_sandbox_status(self, sandbox_id: str) -> cri.PodSandboxStatus:
        response = await self._call(
            self._runtime.PodSandboxStatus,
            cri.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id),
            cri.PodSandboxStatusResponse,
        )
        return response.status

    async def list_pod_sandbox(
        self, filter: cri.PodSandboxFilter | None = None
    ) -> Sequence[cri.PodSandbox]:
        response = await self._call(
            self._runtime.ListPodSandbox,
            cri.ListPodSandboxRequest(filter=filter),
            cri.ListPodSandboxResponse,
        )
        return list(response.items)

    async def pod_sandbox_stats(self, sandbox_id: str) -> cri.PodSandboxStats:
        response = await self._call(
            self._runtime.PodSandboxStats,
            cri.PodSandboxStatsRequest(pod_sandbox_id=sandbox_id),
            cri.PodSandboxStatsResponse,
        )
        return response.stats

    async def port_forward(self, request: cri.PortForwardRequest) -> str:
        """The streaming URL that serves this port-forward."""
        response = await self._call(self._runtime.PortForward, request, cri.PortForwardResponse)
        return response.url

    # ---------------------------------------------------------------- containers

    async def create_container(
        self,
        sandbox_id: str,
        config: cri.ContainerConfig,
        sandbox_config: cri.PodSandboxConfig,
    ) -> str:
        response = await self._call(
            self._runtime.CreateContainer,
            cri.CreateContainerRequest(
                pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config
            ),
            cri.CreateContainerResponse,
        )
        return response.container_id

    async def start_container(self, container_id: str) -> None:
        await self._call(
            self._runtime.StartContainer,
            cri.StartContainerRequest(container_id=container_id),
            cri.StartContainerResponse,
        )

    async def stop_container(self, container_id: str, *, timeout: int) -> None:  # noqa: ASYNC109
        """Stop the container, killing it after `timeout` seconds (0: at once).

        `timeout` is the grace period the runtime gives the container, as in CRI; the call
        itself may take that long plus the client's usual deadline.
        """
        await self._call(
            self._runtime.StopContainer,
            cri.StopContainerRequest(container_id=container_id, timeout=max(timeout, 0)),
            cri.StopContainerResponse,
            deadline=self._timeout + max(timeout, 0),
        )

    async def remove_container(self, container_id: str) -> None:
        await self._call(
            self._runtime.RemoveContainer,
            cri.RemoveContainerRequest(container_id=container_id),
            cri.RemoveContainerResponse,
        )

    async def list_containers(
        self, filter: cri.ContainerFilter | None = None
    ) -> Sequence[cri.Container]:
        response = await self._call(
            self._runtime.ListContainers,
            cri.ListContainersRequest(filter=filter),
            cri.ListContainersResponse,
        )
        return list(response.containers)

    async def container_status(self, container_id: str) -> cri.ContainerStatus:
        response = await self._call(
            self._runtime.ContainerStatus,
            cri.ContainerStatusRequest(container_id=container_id),
            cri.ContainerStatusResponse,
        )
        return response.status

    async def update_container_resources(
        self,
        container_id: str,
        resources: cri.LinuxContainerResources,
        *,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        await self._call(
            self._runtime.UpdateContainerResources,
            cri.UpdateContainerResourcesRequest(
                container_id=container_id, linux=resources, annotations=annotations or {}
            ),
            cri.UpdateContainerResourcesResponse,
        )

    async def reopen_container_log(self, container_id: str) -> None:
        await self._call(
            self._runtime.ReopenContainerLog,
            cri.ReopenContainerLogRequest(container_id=container_id),
            cri.ReopenContainerLogResponse,
        )

    async def exec_sync(
        self,
        container_id: str,
        cmd: Sequence[str],
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> ExecResult:
        """Run `cmd` in the container and wait for it; `timeout` seconds, 0 for no limit.

        The runtime enforces `timeout` (in whole seconds, rounded up); the RPC's own
        deadline is that plus the client's usual one, so a runtime that overruns it still
        ends in `DeadlineExceeded`.
        """
        seconds = math.ceil(timeout) if timeout > 0 else 0
        response = await self._call(
            self._runtime.ExecSync,
            cri.ExecSyncRequest(container_id=container_id, cmd=list(cmd), timeout=seconds),
            cri.ExecSyncResponse,
            deadline=self._timeout + seconds if seconds else math.inf,
        )
        return ExecResult(
            stdout=response.stdout, stderr=response.stderr, exit_code=response.exit_code
        )

    async def exec(self, request: cri.ExecRequest) -> str:
        """The streaming URL that serves this exec (channel.k8s.io over websocket)."""
        response = await self._call(self._runtime.Exec, request, cri.ExecResponse)
        return response.url

    async def attach(self, request: cri.AttachRequest) -> str:
        """The streaming URL that attaches to the container's own stdio."""
        response = await self._call(self._runtime.Attach, request, cri.AttachResponse)
        return response.url

    async def container_stats(self, container_id: str) -> cri.ContainerStats:
        response = await self._call(
            self._runtime.ContainerStats,
            cri.ContainerStatsRequest(container_id=container_id),
            cri.ContainerStatsResponse,
        )
        return response.stats

    async def list_container_stats(
        self, filter: cri.ContainerStatsFilter | None = None
    ) -> Sequence[cri.ContainerStats]:
        response = await self._call(
            self._runtime.ListContainerStats,
            cri.ListContainerStatsRequest(filter=filter),
            cri.ListContainerStatsResponse,
        )
        return list(response.stats)

    # ---------------------------------------------------------------- VMs (Arktos)

    async def reboot_vm(
        self, vm_id: str, *, delay_seconds: int = 0, domain_reboot_flag: int = 0
    ) -> None:
        await self._call(
            self._runtime.RebootVM,
            cri.RebootVMRequest(
                vm_id=vm_id,
                rebootSpec=cri.VmRebootSpec(
                    delayInSeconds=delay_seconds, domainRebootFlag=domain_reboot_flag
                ),
            ),
            cri.RebootVMResponse,
        )

    async def create_snapshot(self, vm_id: str, snapshot_id: str, *, flags: int = 0) -> None:
        await self._call(
            self._runtime.CreateSnapshot,
            cri.CreateSnapshotRequest(vmID=vm_id, snapshotID=snapshot_id, flags=flags),
            cri.CreateSnapshotResponse,
        )

    async def restore_to_snapshot(self, vm_id: str, snapshot_id: str, *, flags: int = 0) -> None:
        await self._call(
            self._runtime.RestoreToSnapshot,
            cri.RestoreToSnapshotRequest(vmID=vm_id, snapshotID=snapshot_id, flags=flags),
            cri.RestoreToSnapshotResponse,
        )

    async def pause_vm(self, vm_id: str) -> None:
        await self._call(
            self._runtime.PauseVM, cri.PauseVMRequest(vm_id=vm_id), cri.PauseVMResponse
        )

    async def resume_vm(self, vm_id: str) -> None:
        await self._call(
            self._runtime.ResumeVM, cri.ResumeVMRequest(vm_id=vm_id), cri.ResumeVMResponse
        )

    async def suspend_vm(self, vm_id: str) -> None:
        await self._call(
            self._runtime.SuspendVM, cri.SuspendVMRequest(vm_id=vm_id), cri.SuspendVMResponse
        )

    # ---------------------------------------------------------------- images

    async def pull_image(
        self, image: str, *, sandbox_config: cri.PodSandboxConfig | None = None
    ) -> str:
        """Pull `image` and return the runtime's reference to it (an ID or digest)."""
        response = await self._call(
            self._images.PullImage,
            cri.PullImageRequest(image=cri.ImageSpec(image=image), sandbox_config=sandbox_config),
            cri.PullImageResponse,
            deadline=self._pull_timeout,
        )
        return response.image_ref

    async def image_status(self, image: str) -> cri.Image | None:
        """The image, or None when the runtime does not have it."""
        response = await self._call(
            self._images.ImageStatus,
            cri.ImageStatusRequest(image=cri.ImageSpec(image=image)),
            cri.ImageStatusResponse,
        )
        return response.image if response.HasField("image") else None

    async def list_images(self) -> Sequence[cri.Image]:
        response = await self._call(
            self._images.ListImages, cri.ListImagesRequest(), cri.ListImagesResponse
        )
        return list(response.images)

    async def remove_image(self, image: str) -> None:
        await self._call(
            self._images.RemoveImage,
            cri.RemoveImageRequest(image=cri.ImageSpec(image=image)),
            cri.RemoveImageResponse,
        )

    async def image_fs_info(self) -> cri.ImageFsInfoResponse:
        return await self._call(
            self._images.ImageFsInfo, cri.ImageFsInfoRequest(), cri.ImageFsInfoResponse
        )


def _mapped(error: grpc.RpcError) -> errors.CRIError:
    if isinstance(error, grpc.Call):
        return errors.from_status(error.code(), error.details() or "")
    return errors.CRIError(str(error))
