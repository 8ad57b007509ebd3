"""The CRI RuntimeService and ImageService of the process runtime, over its `Supervisor`.

Handlers run in gRPC's worker threads and only translate: request messages in, supervisor
calls, response messages out. The sandbox and container lifecycle is the shared
`runtime._servicer.RuntimeServicer`; this module adds what is particular to processes on
the host (status, exec and attach through the streaming server, stats, resources). A
`runtime` error becomes the call's status (NotFound for an unknown id, FailedPrecondition
for a wrong state, ...) via `context.abort`; anything else is a bug, logged and answered
INTERNAL.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import grpc

from arktos_lite.runtime import _protocol as protocol, _servicer as base
from arktos_lite.runtime.cri import api_pb2 as cri, api_pb2_grpc
from arktos_lite.runtime.process._supervisor import Supervisor

RUNTIME_NAME = "arktos-process"

# Given a request, the URL on the streaming server that serves it.
UrlFor = Callable[[cri.ExecRequest], str]
AttachUrlFor = Callable[[cri.AttachRequest], str]


class RuntimeServicer(base.RuntimeServicer[Supervisor]):
    """runtime.v1.RuntimeService for processes on this host."""

    runtime_name = RUNTIME_NAME

    def __init__(
        self,
        supervisor: Supervisor,
        *,
        exec_url: UrlFor | None = None,
        attach_url: AttachUrlFor | None = None,
    ) -> None:
        super().__init__(supervisor)
        self.exec_url = exec_url
        self.attach_url = attach_url

    def sandbox_info(self, sandbox_id: str) -> dict[str, str]:
        return {"isolation": self.backend.isolation.description}

    def container_info(self, context: grpc.ServicerContext, container_id: str) -> dict[str, str]:
        # Outside `call`, as this servicer always answered: a container removed between the
        # status and this lookup fails the call as gRPC's UNKNOWN.
        return self.backend.container_info(container_id)

    # ------------------------------------------------------------------ runtime

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
                        message="containers share the host's network, or the pod "
                        "network namespace their sandbox names",
                    ),
                ]
            ),
            runtime_handlers=[cri.RuntimeHandler(name="")],
        )
        if request.verbose:
            response.info["isolation"] = self.backend.isolation.description
            response.info["root_dir"] = str(self.backend.root)
            response.info["streaming"] = "yes" if self.exec_url is not None else "no"
            # Sandboxes with `runtime.POD_NETNS` run their containers in that namespace.
            can_enter = bool(self.backend.isolation.nsenter) and os.geteuid() == 0
            response.info[protocol.POD_NETWORK_INFO] = "true" if can_enter else "false"
        return response

    # ------------------------------------------------------------------ containers

    def UpdateContainerResources(
        self, request: cri.UpdateContainerResourcesRequest, context: grpc.ServicerContext
    ) -> cri.UpdateContainerResourcesResponse:
        base.call(
            context,
            "UpdateContainerResources",
            lambda: self.backend.update_container_resources(request.container_id, request.linux),
        )
        return cri.UpdateContainerResourcesResponse()

    # ------------------------------------------------------------------ exec

    def ExecSync(
        self, request: cri.ExecSyncRequest, context: grpc.ServicerContext
    ) -> cri.ExecSyncResponse:
        out, err, code = base.call(
            context,
            "ExecSync",
            lambda: self.backend.exec_sync(
                request.container_id, request.cmd, timeout=float(request.timeout)
            ),
        )
        return cri.ExecSyncResponse(stdout=out, stderr=err, exit_code=code)

    def Exec(self, request: cri.ExecRequest, context: grpc.ServicerContext) -> cri.ExecResponse:
        exec_url = self.exec_url
        if exec_url is None:
            base.unimplemented(
                context, "the process runtime's streaming server is not available; use ExecSync"
            )

        def url() -> str:
            # Fail now (not when the client connects) for unknown or stopped containers.
            self.backend.exec_spec(request.container_id, request.cmd)
            return exec_url(request)

        return cri.ExecResponse(url=base.call(context, "Exec", url))

    def Attach(
        self, request: cri.AttachRequest, context: grpc.ServicerContext
    ) -> cri.AttachResponse:
        attach_url = self.attach_url
        if attach_url is None:
            base.unimplemented(context, "the process runtime does not support attach")
        return cri.AttachResponse(url=base.call(context, "Attach", lambda: attach_url(request)))

    def PortForward(
        self, request: cri.PortForwardRequest, context: grpc.ServicerContext
    ) -> cri.PortForwardResponse:
        base.unimplemented(
            context,
            "containers of the process runtime use the host network: connect to the port directly",
        )

    # ------------------------------------------------------------------ stats

    def ContainerStats(
        self, request: cri.ContainerStatsRequest, context: grpc.ServicerContext
    ) -> cri.ContainerStatsResponse:
        cid = request.container_id
        stats = base.call(context, "ContainerStats", lambda: self.backend.container_stats(cid))
        return cri.ContainerStatsResponse(stats=stats)

    def ListContainerStats(
        self, request: cri.ListContainerStatsRequest, context: grpc.ServicerContext
    ) -> cri.ListContainerStatsResponse:
        flt = request.filter if request.HasField("filter") else None
        stats = base.call(
            context, "ListContainerStats", lambda: self.backend.list_container_stats(flt)
        )
        return cri.ListContainerStatsResponse(stats=stats)

    # ------------------------------------------------------------------ VM calls

    def RebootVM(
        self, request: cri.RebootVMRequest, context: grpc.ServicerContext
    ) -> cri.RebootVMResponse:
        base.unimplemented(context, "the process runtime runs no VMs")

    def CreateSnapshot(
        self, request: cri.CreateSnapshotRequest, context: grpc.ServicerContext
    ) -> cri.CreateSnapshotResponse:
        base.unimplemented(context, "the process runtime runs no VMs")

    def RestoreToSnapshot(
        self, request: cri.RestoreToSnapshotRequest, context: grpc.ServicerContext
    ) -> cri.RestoreToSnapshotResponse:
        base.unimplemented(context, "the process runtime runs no VMs")


class ImageServicer(api_pb2_grpc.ImageServiceServicer):
    """runtime.v1.ImageService: images imported into the store (`_store`), and nominal
    references: pulling a reference that is not in the store fetches nothing, it is
    recorded and its containers run host commands (see `_images`)."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def ListImages(
        self, request: cri.ListImagesRequest, context: grpc.ServicerContext
    ) -> cri.ListImagesResponse:
        images = base.call(context, "ListImages", self.supervisor.list_images)
        wanted = request.filter.image.image if request.HasField("filter") else ""
        if wanted:
            images = [i for i in images if wanted in (i.id, *i.repo_tags)]
        return cri.ListImagesResponse(images=images)

    def ImageStatus(
        self, request: cri.ImageStatusRequest, context: grpc.ServicerContext
    ) -> cri.ImageStatusResponse:
        ref = request.image.image
        image = base.call(context, "ImageStatus", lambda: self.supervisor.image_status(ref))
        response = cri.ImageStatusResponse()
        if image is not None:
            response.image.CopyFrom(image)
            if request.verbose:
                response.info["note"] = self.supervisor.image_note(ref)
        return response

    def PullImage(
        self, request: cri.PullImageRequest, context: grpc.ServicerContext
    ) -> cri.PullImageResponse:
        ref = request.image.image
        return cri.PullImageResponse(
            image_ref=base.call(context, "PullImage", lambda: self.supervisor.pull_image(ref))
        )

    def RemoveImage(
        self, request: cri.RemoveImageRequest, context: grpc.ServicerContext
    ) -> cri.RemoveImageResponse:
        ref = request.image.image
        base.call(context, "RemoveImage", lambda: self.supervisor.remove_image(ref))
        return cri.RemoveImageResponse()

    def ImageFsInfo(
        self, request: cri.ImageFsInfoRequest, context: grpc.ServicerContext
    ) -> cri.ImageFsInfoResponse:
        return base.filesystem_info(str(self.supervisor.root), used_bytes=0)
