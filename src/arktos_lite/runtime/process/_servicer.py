"""The CRI RuntimeService and ImageService of the process runtime, over its `Supervisor`.

Handlers run in gRPC's worker threads and only translate: request messages in, supervisor
calls, response messages out. A `runtime` error becomes the call's status (NotFound for an
unknown id, FailedPrecondition for a wrong state, ...) via `context.abort`; anything else is
a bug, logged and answered INTERNAL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from arktos_lite.runtime import _errors as errors
from arktos_lite.runtime.cri import api_pb2 as cri, api_pb2_grpc
from arktos_lite.runtime.process._supervisor import Supervisor

log = logging.getLogger(__name__)

RUNTIME_NAME = "arktos-process"
RUNTIME_API_VERSION = "v1"
RUNTIME_VERSION = "0.1.0"
_T = TypeVar("_T")

# Given a request, the URL on the streaming server that serves it.
UrlFor = Callable[[cri.ExecRequest], str]
AttachUrlFor = Callable[[cri.AttachRequest], str]


def _call(context: grpc.ServicerContext, what: str, fn: Callable[[], _T]) -> _T:
    try:
        return fn()
    except errors.CRIError as e:
        context.abort(errors.status_code(e), e.message)
    except Exception as e:
        log.exception("%s failed", what)
        context.abort(grpc.StatusCode.INTERNAL, f"{what} failed: {e}")


class RuntimeServicer(api_pb2_grpc.RuntimeServiceServicer):
    """runtime.v1.RuntimeService for processes on this host."""

    def __init__(
        self,
        supervisor: Supervisor,
        *,
        exec_url: UrlFor | None = None,
        attach_url: AttachUrlFor | None = None,
    ) -> None:
        self.supervisor = supervisor
        self.exec_url = exec_url
        self.attach_url = attach_url

    # ------------------------------------------------------------------ runtime

    def Version(
        self, request: cri.VersionRequest, context: grpc.ServicerContext
    ) -> cri.VersionResponse:
        return cri.VersionResponse(
            version="0.1.0",
            runtime_name=RUNTIME_NAME,
            runtime_version=RUNTIME_VERSION,
            runtime_api_version=RUNTIME_API_VERSION,
        )

    def Status(
        self, request: cri.StatusRequest, context: grpc.ServicerContext
    ) -> cri.StatusResponse:
        response = cri.StatusResponse(
            status=cri.RuntimeStatus(
                conditions=[
                    cri.RuntimeCondition(type="RuntimeReady", status=True),
                    cri.RuntimeCondition(
                        type="NetworkReady",
                        status=True,
                        reason="HostNetwork",
                        message="containers share the host's network",
                    ),
                ]
            ),
            runtime_handlers=[cri.RuntimeHandler(name="")],
        )
        if request.verbose:
            response.info["isolation"] = self.supervisor.isolation.description
            response.info["root_dir"] = str(self.supervisor.root)
            response.info["streaming"] = "yes" if self.exec_url is not None else "no"
        return response

    def UpdateRuntimeConfig(
        self, request: cri.UpdateRuntimeConfigRequest, context: grpc.ServicerContext
    ) -> cri.UpdateRuntimeConfigResponse:
        # Host networking: there is no pod CIDR to apply.
        return cri.UpdateRuntimeConfigResponse()

    # ------------------------------------------------------------------ sandboxes

    def RunPodSandbox(
        self, request: cri.RunPodSandboxRequest, context: grpc.ServicerContext
    ) -> cri.RunPodSandboxResponse:
        sid = _call(
            context,
            "RunPodSandbox",
            lambda: self.supervisor.run_pod_sandbox(
                request.config, runtime_handler=request.runtime_handler
            ),
        )
        return cri.RunPodSandboxResponse(pod_sandbox_id=sid)

    def StopPodSandbox(
        self, request: cri.StopPodSandboxRequest, context: grpc.ServicerContext
    ) -> cri.StopPodSandboxResponse:
        _call(
            context,
            "StopPodSandbox",
            lambda: self.supervisor.stop_pod_sandbox(request.pod_sandbox_id),
        )
        return cri.StopPodSandboxResponse()

    def RemovePodSandbox(
        self, request: cri.RemovePodSandboxRequest, context: grpc.ServicerContext
    ) -> cri.RemovePodSandboxResponse:
        _call(
            context,
            "RemovePodSandbox",
            lambda: self.supervisor.remove_pod_sandbox(request.pod_sandbox_id),
        )
        return cri.RemovePodSandboxResponse()

    def PodSandboxStatus(
        self, request: cri.PodSandboxStatusRequest, context: grpc.ServicerContext
    ) -> cri.PodSandboxStatusResponse:
        status = _call(
            context,
            "PodSandboxStatus",
            lambda: self.supervisor.pod_sandbox_status(request.pod_sandbox_id),
        )
        response = cri.PodSandboxStatusResponse(status=status)
        if request.verbose:
            response.info["isolation"] = self.supervisor.isolation.description
        return response

    def ListPodSandbox(
        self, request: cri.ListPodSandboxRequest, context: grpc.ServicerContext
    ) -> cri.ListPodSandboxResponse:
        flt = request.filter if request.HasField("filter") else None
        items = _call(context, "ListPodSandbox", lambda: self.supervisor.list_pod_sandbox(flt))
        return cri.ListPodSandboxResponse(items=items)

    # ------------------------------------------------------------------ containers

    def CreateContainer(
        self, request: cri.CreateContainerRequest, context: grpc.ServicerContext
    ) -> cri.CreateContainerResponse:
        cid = _call(
            context,
            "CreateContainer",
            lambda: self.supervisor.create_container(
                request.pod_sandbox_id, request.config, request.sandbox_config
            ),
        )
        return cri.CreateContainerResponse(container_id=cid)

    def StartContainer(
        self, request: cri.StartContainerRequest, context: grpc.ServicerContext
    ) -> cri.StartContainerResponse:
        _call(
            context, "StartContainer", lambda: self.supervisor.start_container(request.container_id)
        )
        return cri.StartContainerResponse()

    def StopContainer(
        self, request: cri.StopContainerRequest, context: grpc.ServicerContext
    ) -> cri.StopContainerResponse:
        _call(
            context,
            "StopContainer",
            lambda: self.supervisor.stop_container(
                request.container_id, timeout=float(request.timeout)
            ),
        )
        return cri.StopContainerResponse()

    def RemoveContainer(
        self, request: cri.RemoveContainerRequest, context: grpc.ServicerContext
    ) -> cri.RemoveContainerResponse:
        _call(
            context,
            "RemoveContainer",
            lambda: self.supervisor.remove_container(request.container_id),
        )
        return cri.RemoveContainerResponse()

    def ListContainers(
        self, request: cri.ListContainersRequest, context: grpc.ServicerContext
    ) -> cri.ListContainersResponse:
        flt = request.filter if request.HasField("filter") else None
        items = _call(context, "ListContainers", lambda: self.supervisor.list_containers(flt))
        return cri.ListContainersResponse(containers=items)

    def ContainerStatus(
        self, request: cri.ContainerStatusRequest, context: grpc.ServicerContext
    ) -> cri.ContainerStatusResponse:
        status = _call(
            context,
            "ContainerStatus",
            lambda: self.supervisor.container_status(request.container_id),
        )
        response = cri.ContainerStatusResponse(status=status)
        if request.verbose:
            response.info.update(self.supervisor.container_info(request.container_id))
        return response

    def UpdateContainerResources(
        self, request: cri.UpdateContainerResourcesRequest, context: grpc.ServicerContext
    ) -> cri.UpdateContainerResourcesResponse:
        _call(
            context,
            "UpdateContainerResources",
            lambda: self.supervisor.update_container_resources(request.container_id, request.linux),
        )
        return cri.UpdateContainerResourcesResponse()

    def ReopenContainerLog(
        self, request: cri.ReopenContainerLogRequest, context: grpc.ServicerContext
    ) -> cri.ReopenContainerLogResponse:
        _call(
            context,
            "ReopenContainerLog",
            lambda: self.supervisor.reopen_container_log(request.container_id),
        )
        return cri.ReopenContainerLogResponse()

    # ------------------------------------------------------------------ exec

    def ExecSync(
        self, request: cri.ExecSyncRequest, context: grpc.ServicerContext
    ) -> cri.ExecSyncResponse:
        out, err, code = _call(
            context,
            "ExecSync",
            lambda: self.supervisor.exec_sync(
                request.container_id, request.cmd, timeout=float(request.timeout)
            ),
        )
        return cri.ExecSyncResponse(stdout=out, stderr=err, exit_code=code)

    def Exec(self, request: cri.ExecRequest, context: grpc.ServicerContext) -> cri.ExecResponse:
        exec_url = self.exec_url
        if exec_url is None:
            context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                "the process runtime's streaming server is not available; use ExecSync",
            )

        def url() -> str:
            # Fail now (not when the client connects) for unknown or stopped containers.
            self.supervisor.exec_spec(request.container_id, request.cmd)
            return exec_url(request)

        return cri.ExecResponse(url=_call(context, "Exec", url))

    def Attach(
        self, request: cri.AttachRequest, context: grpc.ServicerContext
    ) -> cri.AttachResponse:
        attach_url = self.attach_url
        if attach_url is None:
            context.abort(
                grpc.StatusCode.UNIMPLEMENTED, "the process runtime does not support attach"
            )
        return cri.AttachResponse(url=_call(context, "Attach", lambda: attach_url(request)))

    def PortForward(
        self, request: cri.PortForwardRequest, context: grpc.ServicerContext
    ) -> cri.PortForwardResponse:
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "containers of the process runtime use the host network: connect to the port directly",
        )

    # ------------------------------------------------------------------ stats

    def ContainerStats(
        self, request: cri.ContainerStatsRequest, context: grpc.ServicerContext
    ) -> cri.ContainerStatsResponse:
        stats = _call(
            context,
            "ContainerStats",
            lambda: self.supervisor.container_stats(request.container_id),
        )
        return cri.ContainerStatsResponse(stats=stats)

    def ListContainerStats(
        self, request: cri.ListContainerStatsRequest, context: grpc.ServicerContext
    ) -> cri.ListContainerStatsResponse:
        flt = request.filter if request.HasField("filter") else None
        stats = _call(
            context, "ListContainerStats", lambda: self.supervisor.list_container_stats(flt)
        )
        return cri.ListContainerStatsResponse(stats=stats)

    # ------------------------------------------------------------------ VM calls

    def _not_a_vm_runtime(self, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the process runtime runs no VMs")

    def RebootVM(
        self, request: cri.RebootVMRequest, context: grpc.ServicerContext
    ) -> cri.RebootVMResponse:
        self._not_a_vm_runtime(context)
        return cri.RebootVMResponse()

    def CreateSnapshot(
        self, request: cri.CreateSnapshotRequest, context: grpc.ServicerContext
    ) -> cri.CreateSnapshotResponse:
        self._not_a_vm_runtime(context)
        return cri.CreateSnapshotResponse()

    def RestoreToSnapshot(
        self, request: cri.RestoreToSnapshotRequest, context: grpc.ServicerContext
    ) -> cri.RestoreToSnapshotResponse:
        self._not_a_vm_runtime(context)
        return cri.RestoreToSnapshotResponse()


class ImageServicer(api_pb2_grpc.ImageServiceServicer):
    """runtime.v1.ImageService: images imported into the store (`_store`), and nominal
    references: pulling a reference that is not in the store fetches nothing, it is
    recorded and its containers run host commands (see `_images`)."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def ListImages(
        self, request: cri.ListImagesRequest, context: grpc.ServicerContext
    ) -> cri.ListImagesResponse:
        images = _call(context, "ListImages", self.supervisor.list_images)
        wanted = request.filter.image.image if request.HasField("filter") else ""
        if wanted:
            images = [i for i in images if wanted in (i.id, *i.repo_tags)]
        return cri.ListImagesResponse(images=images)

    def ImageStatus(
        self, request: cri.ImageStatusRequest, context: grpc.ServicerContext
    ) -> cri.ImageStatusResponse:
        ref = request.image.image
        image = _call(context, "ImageStatus", lambda: self.supervisor.image_status(ref))
        response = cri.ImageStatusResponse()
        if image is not None:
            response.image.CopyFrom(image)
            if request.verbose:
                response.info["note"] = self.supervisor.image_note(ref)
        return response

    def PullImage(
        self, request: cri.PullImageRequest, context: grpc.ServicerContext
    ) -> cri.PullImageResponse:
        ref = _call(context, "PullImage", lambda: self.supervisor.pull_image(request.image.image))
        return cri.PullImageResponse(image_ref=ref)

    def RemoveImage(
        self, request: cri.RemoveImageRequest, context: grpc.ServicerContext
    ) -> cri.RemoveImageResponse:
        _call(context, "RemoveImage", lambda: self.supervisor.remove_image(request.image.image))
        return cri.RemoveImageResponse()

    def ImageFsInfo(
        self, request: cri.ImageFsInfoRequest, context: grpc.ServicerContext
    ) -> cri.ImageFsInfoResponse:
        usage = cri.FilesystemUsage(
            timestamp=time.time_ns(),
            fs_id=cri.FilesystemIdentifier(mountpoint=str(self.supervisor.root)),
            used_bytes=cri.UInt64Value(value=0),
            inodes_used=cri.UInt64Value(value=0),
        )
        return cri.ImageFsInfoResponse(image_filesystems=[usage], container_filesystems=[usage])
