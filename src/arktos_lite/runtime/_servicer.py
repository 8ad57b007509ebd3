"""What the CRI servers of this package share: one error mapping and the calls that only
translate.

`RuntimeServicer` answers the runtime.v1 calls that mean the same for every runtime here
(Version, UpdateRuntimeConfig, the sandbox and container lifecycle, listing, status, log
reopening) over a `Backend`: request in, one backend call, response out. A runtime's
servicer subclasses it and answers the rest (Status, exec, stats, resources, VM calls),
which depend on what it runs.

Handlers run in gRPC's worker threads. `call` guarantees the error mapping: a `runtime`
error becomes the call's status via `context.abort` (NotFound for an unknown id,
FailedPrecondition for a wrong state, ...); anything else is a bug, logged and answered
INTERNAL as "<call> failed: <error>".
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import time
from collections.abc import AsyncIterator, Callable
from concurrent import futures
from typing import Any, ClassVar, Generic, NoReturn, Protocol, TypeVar

import grpc
import trio

from arktos_lite.runtime import _errors as errors
from arktos_lite.runtime.cri import api_pb2 as cri, api_pb2_grpc

log = logging.getLogger(__name__)

RUNTIME_API_VERSION = "v1"
RUNTIME_VERSION = "0.1.0"

_T = TypeVar("_T")

# Calls in flight get this long to finish when a runtime stops serving.
_STOP_GRACE = 1.0
# Longest unix socket path the kernel accepts (sun_path minus its NUL).
MAX_SOCKET_PATH = 107
_MAX_MESSAGE = 16 * 1024 * 1024


@contextlib.asynccontextmanager
async def serving(
    socket_path: pathlib.Path,
    *,
    runtime: api_pb2_grpc.RuntimeServiceServicer,
    images: api_pb2_grpc.ImageServiceServicer,
    workers: int,
    thread_name: str,
) -> AsyncIterator[None]:
    """Serve both CRI services on `socket_path` (a stale socket file replaced) with
    `workers` handler threads, until the block ends; then stop, giving calls in flight a
    short grace, and remove the socket file."""
    if len(str(socket_path)) > MAX_SOCKET_PATH:
        raise ValueError(
            f"unix socket path too long ({len(str(socket_path))} bytes): {socket_path}"
        )

    def start() -> grpc.Server:
        socket_path.parent.mkdir(parents=True, exist_ok=True)
        # A socket file left by a runtime that died would make the bind fail.
        socket_path.unlink(missing_ok=True)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_name),
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.max_send_message_length", _MAX_MESSAGE),
            ],
        )
        # Referenced, not called, so this stays typed whether or not the stubs are.
        register: list[tuple[Callable[[Any, grpc.Server], None], object]] = [
            (api_pb2_grpc.add_RuntimeServiceServicer_to_server, runtime),
            (api_pb2_grpc.add_ImageServiceServicer_to_server, images),
        ]
        for add, servicer in register:
            add(servicer, server)
        if server.add_insecure_port(f"unix:{socket_path}") == 0:
            raise OSError(f"cannot listen on unix socket {socket_path}")
        server.start()
        return server

    def stop(server: grpc.Server) -> None:
        server.stop(_STOP_GRACE).wait()
        socket_path.unlink(missing_ok=True)

    server = await trio.to_thread.run_sync(start)
    try:
        yield
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(stop, server)


class Backend(Protocol):
    """The blocking sandbox and container calls a runtime's servicer translates to.

    Raises `runtime.errors` for what the caller got wrong (unknown ids, wrong states).
    """

    def run_pod_sandbox(
        self, config: cri.PodSandboxConfig, *, runtime_handler: str = ""
    ) -> str: ...

    def stop_pod_sandbox(self, sandbox_id: str) -> None: ...

    def remove_pod_sandbox(self, sandbox_id: str) -> None: ...

    def pod_sandbox_status(self, sandbox_id: str) -> cri.PodSandboxStatus: ...

    def list_pod_sandbox(
        self, filter: cri.PodSandboxFilter | None = None
    ) -> list[cri.PodSandbox]: ...

    def create_container(
        self,
        sandbox_id: str,
        config: cri.ContainerConfig,
        sandbox_config: cri.PodSandboxConfig | None = None,
    ) -> str: ...

    def start_container(self, container_id: str) -> None: ...

    def stop_container(self, container_id: str, *, timeout: float) -> None: ...

    def remove_container(self, container_id: str) -> None: ...

    def container_status(self, container_id: str) -> cri.ContainerStatus: ...

    # The `info` of a verbose ContainerStatus.
    def container_info(self, container_id: str) -> dict[str, str]: ...

    def list_containers(self, filter: cri.ContainerFilter | None = None) -> list[cri.Container]: ...

    def reopen_container_log(self, container_id: str) -> None: ...


_B = TypeVar("_B", bound=Backend)


def call(context: grpc.ServicerContext, what: str, fn: Callable[[], _T]) -> _T:
    """`fn()`, or the call aborted with the status its error maps to."""
    try:
        return fn()
    except errors.CRIError as e:
        context.abort(errors.status_code(e), e.message)
    except Exception as e:
        log.exception("%s failed", what)
        context.abort(grpc.StatusCode.INTERNAL, f"{what} failed: {e}")


def unimplemented(context: grpc.ServicerContext, why: str) -> NoReturn:
    context.abort(grpc.StatusCode.UNIMPLEMENTED, why)


def filesystem_info(mountpoint: str, *, used_bytes: int) -> cri.ImageFsInfoResponse:
    """An ImageFsInfo answer where images and containers share one filesystem."""
    usage = cri.FilesystemUsage(
        timestamp=time.time_ns(),
        fs_id=cri.FilesystemIdentifier(mountpoint=mountpoint),
        used_bytes=cri.UInt64Value(value=used_bytes),
        inodes_used=cri.UInt64Value(value=0),
    )
    return cri.ImageFsInfoResponse(image_filesystems=[usage], container_filesystems=[usage])


class RuntimeServicer(api_pb2_grpc.RuntimeServiceServicer, Generic[_B]):
    """The backend-neutral part of runtime.v1.RuntimeService; subclasses add the rest."""

    runtime_name: ClassVar[str]

    def __init__(self, backend: _B) -> None:
        self.backend = backend

    def sandbox_info(self, sandbox_id: str) -> dict[str, str]:
        """The `info` of a verbose PodSandboxStatus: none unless a subclass says more."""
        return {}

    def container_info(self, context: grpc.ServicerContext, container_id: str) -> dict[str, str]:
        """The `info` of a verbose ContainerStatus."""
        return call(context, "ContainerStatus", lambda: self.backend.container_info(container_id))

    # ------------------------------------------------------------------ runtime

    def Version(
        self, request: cri.VersionRequest, context: grpc.ServicerContext
    ) -> cri.VersionResponse:
        return cri.VersionResponse(
            version=RUNTIME_VERSION,
            runtime_name=self.runtime_name,
            runtime_version=RUNTIME_VERSION,
            runtime_api_version=RUNTIME_API_VERSION,
        )

    def UpdateRuntimeConfig(
        self, request: cri.UpdateRuntimeConfigRequest, context: grpc.ServicerContext
    ) -> cri.UpdateRuntimeConfigResponse:
        # Neither runtime here has a pod CIDR to apply (host network, or a bridge as given).
        return cri.UpdateRuntimeConfigResponse()

    # ------------------------------------------------------------------ sandboxes

    def RunPodSandbox(
        self, request: cri.RunPodSandboxRequest, context: grpc.ServicerContext
    ) -> cri.RunPodSandboxResponse:
        sid = call(
            context,
            "RunPodSandbox",
            lambda: self.backend.run_pod_sandbox(
                request.config, runtime_handler=request.runtime_handler
            ),
        )
        return cri.RunPodSandboxResponse(pod_sandbox_id=sid)

    def StopPodSandbox(
        self, request: cri.StopPodSandboxRequest, context: grpc.ServicerContext
    ) -> cri.StopPodSandboxResponse:
        sid = request.pod_sandbox_id
        call(context, "StopPodSandbox", lambda: self.backend.stop_pod_sandbox(sid))
        return cri.StopPodSandboxResponse()

    def RemovePodSandbox(
        self, request: cri.RemovePodSandboxRequest, context: grpc.ServicerContext
    ) -> cri.RemovePodSandboxResponse:
        sid = request.pod_sandbox_id
        call(context, "RemovePodSandbox", lambda: self.backend.remove_pod_sandbox(sid))
        return cri.RemovePodSandboxResponse()

    def PodSandboxStatus(
        self, request: cri.PodSandboxStatusRequest, context: grpc.ServicerContext
    ) -> cri.PodSandboxStatusResponse:
        sid = request.pod_sandbox_id
        status = call(context, "PodSandboxStatus", lambda: self.backend.pod_sandbox_status(sid))
        response = cri.PodSandboxStatusResponse(status=status)
        if request.verbose:
            response.info.update(self.sandbox_info(sid))
        return response

    def ListPodSandbox(
        self, request: cri.ListPodSandboxRequest, context: grpc.ServicerContext
    ) -> cri.ListPodSandboxResponse:
        flt = request.filter if request.HasField("filter") else None
        items = call(context, "ListPodSandbox", lambda: self.backend.list_pod_sandbox(flt))
        return cri.ListPodSandboxResponse(items=items)

    # ------------------------------------------------------------------ containers

    def CreateContainer(
        self, request: cri.CreateContainerRequest, context: grpc.ServicerContext
    ) -> cri.CreateContainerResponse:
        cid = call(
            context,
            "CreateContainer",
            lambda: self.backend.create_container(
                request.pod_sandbox_id, request.config, request.sandbox_config
            ),
        )
        return cri.CreateContainerResponse(container_id=cid)

    def StartContainer(
        self, request: cri.StartContainerRequest, context: grpc.ServicerContext
    ) -> cri.StartContainerResponse:
        cid = request.container_id
        call(context, "StartContainer", lambda: self.backend.start_container(cid))
        return cri.StartContainerResponse()

    def StopContainer(
        self, request: cri.StopContainerRequest, context: grpc.ServicerContext
    ) -> cri.StopContainerResponse:
        cid, timeout = request.container_id, float(request.timeout)
        call(context, "StopContainer", lambda: self.backend.stop_container(cid, timeout=timeout))
        return cri.StopContainerResponse()

    def RemoveContainer(
        self, request: cri.RemoveContainerRequest, context: grpc.ServicerContext
    ) -> cri.RemoveContainerResponse:
        cid = request.container_id
        call(context, "RemoveContainer", lambda: self.backend.remove_container(cid))
        return cri.RemoveContainerResponse()

    def ListContainers(
        self, request: cri.ListContainersRequest, context: grpc.ServicerContext
    ) -> cri.ListContainersResponse:
        flt = request.filter if request.HasField("filter") else None
        items = call(context, "ListContainers", lambda: self.backend.list_containers(flt))
        return cri.ListContainersResponse(containers=items)

    def ContainerStatus(
        self, request: cri.ContainerStatusRequest, context: grpc.ServicerContext
    ) -> cri.ContainerStatusResponse:
        cid = request.container_id
        status = call(context, "ContainerStatus", lambda: self.backend.container_status(cid))
        response = cri.ContainerStatusResponse(status=status)
        if request.verbose:
            response.info.update(self.container_info(context, cid))
        return response

    def ReopenContainerLog(
        self, request: cri.ReopenContainerLogRequest, context: grpc.ServicerContext
    ) -> cri.ReopenContainerLogResponse:
        cid = request.container_id
        call(context, "ReopenContainerLog", lambda: self.backend.reopen_container_log(cid))
        return cri.ReopenContainerLogResponse()
