"""The CRI RuntimeService (with Arktos' VM calls) and ImageService of the VM runtime.

Handlers run in gRPC's worker threads, so every libvirt call they make through the
`VmManager` is off trio's thread. They only translate: a `runtime` error becomes the call's
status via `context.abort` (NotFound, FailedPrecondition, ...); anything else is a bug,
logged and answered INTERNAL. Calls a VM cannot serve (exec, attach, port-forward) answer
UNIMPLEMENTED with the reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NoReturn, TypeVar

import grpc

from arktos_lite.runtime import _errors as errors
from arktos_lite.runtime.cri import api_pb2 as cri, api_pb2_grpc
from arktos_lite.runtime.vm import _libvirt
from arktos_lite.runtime.vm._images import ImageKind, VmImage
from arktos_lite.runtime.vm._manager import VmManager

log = logging.getLogger(__name__)

RUNTIME_NAME = "arktos-vm"
RUNTIME_API_VERSION = "v1"
RUNTIME_VERSION = "0.1.0"
_T = TypeVar("_T")


def _call(context: grpc.ServicerContext, what: str, fn: Callable[[], _T]) -> _T:
    try:
        return fn()
    except errors.CRIError as e:
        context.abort(errors.status_code(e), e.message)
    except Exception as e:
        log.exception("%s failed", what)
        context.abort(grpc.StatusCode.INTERNAL, f"{what} failed: {e}")


def _unimplemented(context: grpc.ServicerContext, why: str) -> NoReturn:
    context.abort(grpc.StatusCode.UNIMPLEMENTED, why)
    raise AssertionError("abort returned")  # pragma: no cover


class RuntimeServicer(api_pb2_grpc.RuntimeServiceServicer):
    """runtime.v1.RuntimeService for libvirt VMs."""

    def __init__(self, manager: VmManager) -> None:
        self.manager = manager

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
        ready, why = self.manager.ready()
        response = cri.StatusResponse(
            status=cri.RuntimeStatus(
                conditions=[
                    cri.RuntimeCondition(
                        type="RuntimeReady",
                        status=ready,
                        reason="" if ready else "LibvirtUnavailable",
                        message=why,
                    ),
                    cri.RuntimeCondition(
                        type="NetworkReady",
                        status=True,
                        reason="Bridge" if self.manager.config.bridge else "NoNetwork",
                        message=(
                            f"guests attach to bridge {self.manager.config.bridge}"
                            if self.manager.config.bridge
                            else "guests have no network device"
                        ),
                    ),
                ]
            ),
            runtime_handlers=[cri.RuntimeHandler(name="")],
        )
        if request.verbose:
            response.info["uri"] = self.manager.config.libvirt_uri
            response.info["root_dir"] = str(self.manager.root)
            response.info["isolation"] = "vm"
            response.info["forkSafe"] = "yes" if _libvirt.fork_safe() else "no"
            if ready:
                response.info["libvirt"] = _call(
                    context, "Status", lambda: self.manager.conn.version()
                )
        return response

    def UpdateRuntimeConfig(
        self, request: cri.UpdateRuntimeConfigRequest, context: grpc.ServicerContext
    ) -> cri.UpdateRuntimeConfigResponse:
        return cri.UpdateRuntimeConfigResponse()

    # ------------------------------------------------------------------ sandboxes

    def RunPodSandbox(
        self, request: cri.RunPodSandboxRequest, context: grpc.ServicerContext
    ) -> cri.RunPodSandboxResponse:
        sid = _call(
            context,
            "RunPodSandbox",
            lambda: self.manager.run_pod_sandbox(
                request.config, runtime_handler=request.runtime_handler
            ),
        )
        return cri.RunPodSandboxResponse(pod_sandbox_id=sid)

    def StopPodSandbox(
        self, request: cri.StopPodSandboxRequest, context: grpc.ServicerContext
    ) -> cri.StopPodSandboxResponse:
        _call(
            context, "StopPodSandbox", lambda: self.manager.stop_pod_sandbox(request.pod_sandbox_id)
        )
        return cri.StopPodSandboxResponse()

    def RemovePodSandbox(
        self, request: cri.RemovePodSandboxRequest, context: grpc.ServicerContext
    ) -> cri.RemovePodSandboxResponse:
        _call(
            context,
            "RemovePodSandbox",
            lambda: self.manager.remove_pod_sandbox(request.pod_sandbox_id),
        )
        return cri.RemovePodSandboxResponse()

    def PodSandboxStatus(
        self, request: cri.PodSandboxStatusRequest, context: grpc.ServicerContext
    ) -> cri.PodSandboxStatusResponse:
        status = _call(
            context,
            "PodSandboxStatus",
            lambda: self.manager.pod_sandbox_status(request.pod_sandbox_id),
        )
        return cri.PodSandboxStatusResponse(status=status)

    def ListPodSandbox(
        self, request: cri.ListPodSandboxRequest, context: grpc.ServicerContext
    ) -> cri.ListPodSandboxResponse:
        flt = request.filter if request.HasField("filter") else None
        items = _call(context, "ListPodSandbox", lambda: self.manager.list_pod_sandbox(flt))
        return cri.ListPodSandboxResponse(items=items)

    # ------------------------------------------------------------------ containers

    def CreateContainer(
        self, request: cri.CreateContainerRequest, context: grpc.ServicerContext
    ) -> cri.CreateContainerResponse:
        cid = _call(
            context,
            "CreateContainer",
            lambda: self.manager.create_container(
                request.pod_sandbox_id, request.config, request.sandbox_config
            ),
        )
        return cri.CreateContainerResponse(container_id=cid)

    def StartContainer(
        self, request: cri.StartContainerRequest, context: grpc.ServicerContext
    ) -> cri.StartContainerResponse:
        _call(context, "StartContainer", lambda: self.manager.start_container(request.container_id))
        return cri.StartContainerResponse()

    def StopContainer(
        self, request: cri.StopContainerRequest, context: grpc.ServicerContext
    ) -> cri.StopContainerResponse:
        _call(
            context,
            "StopContainer",
            lambda: self.manager.stop_container(
                request.container_id, timeout=float(request.timeout)
            ),
        )
        return cri.StopContainerResponse()

    def RemoveContainer(
        self, request: cri.RemoveContainerRequest, context: grpc.ServicerContext
    ) -> cri.RemoveContainerResponse:
        _call(
            context, "RemoveContainer", lambda: self.manager.remove_container(request.container_id)
        )
        return cri.RemoveContainerResponse()

    def ListContainers(
        self, request: cri.ListContainersRequest, context: grpc.ServicerContext
    ) -> cri.ListContainersResponse:
        flt = request.filter if request.HasField("filter") else None
        items = _call(context, "ListContainers", lambda: self.manager.list_containers(flt))
        return cri.ListContainersResponse(containers=items)

    def ContainerStatus(
        self, request: cri.ContainerStatusRequest, context: grpc.ServicerContext
    ) -> cri.ContainerStatusResponse:
        status = _call(
            context,
            "ContainerStatus",
            lambda: self.manager.container_status(request.container_id),
        )
        response = cri.ContainerStatusResponse(status=status)
        if request.verbose:
            response.info.update(
                _call(
                    context,
                    "ContainerStatus",
                    lambda: self.manager.container_info(request.container_id),
                )
            )
        return response

    def UpdateContainerResources(
        self, request: cri.UpdateContainerResourcesRequest, context: grpc.ServicerContext
    ) -> cri.UpdateContainerResourcesResponse:
        _unimplemented(
            context, "the VM runtime cannot resize a VM yet: recreate the pod to change resources"
        )

    def ReopenContainerLog(
        self, request: cri.ReopenContainerLogRequest, context: grpc.ServicerContext
    ) -> cri.ReopenContainerLogResponse:
        _call(
            context,
            "ReopenContainerLog",
            lambda: self.manager.reopen_container_log(request.container_id),
        )
        return cri.ReopenContainerLogResponse()

    def ExecSync(
        self, request: cri.ExecSyncRequest, context: grpc.ServicerContext
    ) -> cri.ExecSyncResponse:
        _unimplemented(context, "the VM runtime cannot run commands in a guest (no guest agent)")

    def Exec(self, request: cri.ExecRequest, context: grpc.ServicerContext) -> cri.ExecResponse:
        _unimplemented(context, "the VM runtime cannot run commands in a guest (no guest agent)")

    def Attach(
        self, request: cri.AttachRequest, context: grpc.ServicerContext
    ) -> cri.AttachResponse:
        _unimplemented(context, "the VM runtime does not attach to serial consoles yet")

    def PortForward(
        self, request: cri.PortForwardRequest, context: grpc.ServicerContext
    ) -> cri.PortForwardResponse:
        _unimplemented(context, "the VM runtime does not forward ports")

    def ContainerStats(
        self, request: cri.ContainerStatsRequest, context: grpc.ServicerContext
    ) -> cri.ContainerStatsResponse:
        _call(
            context, "ContainerStats", lambda: self.manager.container_status(request.container_id)
        )
        return cri.ContainerStatsResponse(
            stats=cri.ContainerStats(attributes=cri.ContainerAttributes(id=request.container_id))
        )

    def ListContainerStats(
        self, request: cri.ListContainerStatsRequest, context: grpc.ServicerContext
    ) -> cri.ListContainerStatsResponse:
        return cri.ListContainerStatsResponse()

    # ------------------------------------------------------------------ VM calls

    def RebootVM(
        self, request: cri.RebootVMRequest, context: grpc.ServicerContext
    ) -> cri.RebootVMResponse:
        spec = request.rebootSpec
        _call(
            context,
            "RebootVM",
            lambda: self.manager.reboot_vm(
                request.vm_id, delay=float(spec.delayInSeconds), flags=int(spec.domainRebootFlag)
            ),
        )
        return cri.RebootVMResponse()

    def CreateSnapshot(
        self, request: cri.CreateSnapshotRequest, context: grpc.ServicerContext
    ) -> cri.CreateSnapshotResponse:
        _call(
            context,
            "CreateSnapshot",
            lambda: self.manager.create_snapshot(request.vmID, request.snapshotID),
        )
        return cri.CreateSnapshotResponse()

    def RestoreToSnapshot(
        self, request: cri.RestoreToSnapshotRequest, context: grpc.ServicerContext
    ) -> cri.RestoreToSnapshotResponse:
        _call(
            context,
            "RestoreToSnapshot",
            lambda: self.manager.restore_to_snapshot(request.vmID, request.snapshotID),
        )
        return cri.RestoreToSnapshotResponse()


def image_message(image: VmImage) -> cri.Image:
    annotations = {"arktos.futurewei.com/vm-image-kind": image.kind.value}
    if image.format:
        annotations["arktos.futurewei.com/vm-image-format"] = image.format
    if image.kind is ImageKind.KERNEL and image.cmdline:
        annotations["arktos.futurewei.com/vm-kernel-cmdline"] = image.cmdline
    return cri.Image(
        id=image.id,
        repo_tags=list(image.names),
        size=image.size,
        spec=cri.ImageSpec(
            image=image.names[0] if image.names else image.id, annotations=annotations
        ),
    )


class ImageServicer(api_pb2_grpc.ImageServiceServicer):
    """runtime.v1.ImageService over the VM image store (`_images`)."""

    def __init__(self, manager: VmManager) -> None:
        self.manager = manager

    def ListImages(
        self, request: cri.ListImagesRequest, context: grpc.ServicerContext
    ) -> cri.ListImagesResponse:
        images = _call(context, "ListImages", self.manager.images.list)
        wanted = request.filter.image.image if request.HasField("filter") else ""
        if wanted:
            images = [i for i in images if wanted in (i.id, *i.names)]
        return cri.ListImagesResponse(images=[image_message(i) for i in images])

    def ImageStatus(
        self, request: cri.ImageStatusRequest, context: grpc.ServicerContext
    ) -> cri.ImageStatusResponse:
        image = _call(context, "ImageStatus", lambda: self.manager.images.find(request.image.image))
        response = cri.ImageStatusResponse()
        if image is not None:
            response.image.CopyFrom(image_message(image))
            if request.verbose:
                response.info["directory"] = str(image.directory)
                response.info["source"] = image.source
        return response

    def PullImage(
        self, request: cri.PullImageRequest, context: grpc.ServicerContext
    ) -> cri.PullImageResponse:
        image = _call(context, "PullImage", lambda: self.manager.images.pull(request.image.image))
        return cri.PullImageResponse(image_ref=image.id)

    def RemoveImage(
        self, request: cri.RemoveImageRequest, context: grpc.ServicerContext
    ) -> cri.RemoveImageResponse:
        def remove() -> None:
            found = self.manager.images.find(request.image.image)
            if found is not None:
                in_use = found.id in self.manager.images_in_use()
                self.manager.images.remove(found.id, in_use=in_use)

        _call(context, "RemoveImage", remove)
        return cri.RemoveImageResponse()

    def ImageFsInfo(
        self, request: cri.ImageFsInfoRequest, context: grpc.ServicerContext
    ) -> cri.ImageFsInfoResponse:
        usage = cri.FilesystemUsage(
            timestamp=time.time_ns(),
            fs_id=cri.FilesystemIdentifier(mountpoint=str(self.manager.images.store)),
            used_bytes=cri.UInt64Value(value=sum(i.size for i in self.manager.images.list())),
            inodes_used=cri.UInt64Value(value=0),
        )
        return cri.ImageFsInfoResponse(image_filesystems=[usage], container_filesystems=[usage])
