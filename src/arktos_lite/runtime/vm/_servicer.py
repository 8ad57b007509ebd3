"""The CRI RuntimeService (with Arktos' VM calls) and ImageService of the VM runtime.

Handlers run in gRPC's worker threads, so every libvirt call they make through the
`VmManager` is off trio's thread. They only translate; the sandbox and container lifecycle
is the shared `runtime._servicer.RuntimeServicer`, this module adds what is particular to
VMs. A `runtime` error becomes the call's status via `context.abort` (NotFound,
FailedPrecondition, ...); anything else is a bug, logged and answered INTERNAL. Calls a VM
cannot serve (exec, attach, port-forward) answer UNIMPLEMENTED with the reason.
"""

from __future__ import annotations

import grpc

from arktos_lite.runtime import _protocol, _servicer as base
from arktos_lite.runtime.cri import api_pb2 as cri, api_pb2_grpc
from arktos_lite.runtime.vm import _libvirt
from arktos_lite.runtime.vm._images import ImageKind, VmImage
from arktos_lite.runtime.vm._manager import VmManager

RUNTIME_NAME = "arktos-vm"


class RuntimeServicer(base.RuntimeServicer[VmManager]):
    """runtime.v1.RuntimeService for libvirt VMs."""

    runtime_name = RUNTIME_NAME

    def Status(
        self, request: cri.StatusRequest, context: grpc.ServicerContext
    ) -> cri.StatusResponse:
        ready, why = self.backend.ready()
        config = self.backend.config
        no_bridge = config.bridge_missing()
        # Guests the node attaches to a pod network get a NIC on that network's bridge
        # whatever the runtime's own bridge is.
        if not config.bridge:
            network = cri.RuntimeCondition(
                type="NetworkReady",
                status=True,
                reason="NoNetwork",
                message="guests have no network device unless the node attaches them to a "
                "pod network (no bridge configured)",
            )
        elif no_bridge is not None:
            network = cri.RuntimeCondition(
                type="NetworkReady",
                status=False,
                reason="BridgeNotFound",
                message=f"{no_bridge}: new guests get no network device but a pod network's",
            )
        else:
            network = cri.RuntimeCondition(
                type="NetworkReady",
                status=True,
                reason="Bridge",
                message=f"guests attach to bridge {config.bridge}; guests on a pod network "
                "attach to its bridge instead",
            )
        response = cri.StatusResponse(
            status=cri.RuntimeStatus(
                conditions=[
                    cri.RuntimeCondition(
                        type="RuntimeReady",
                        status=ready,
                        reason="" if ready else "LibvirtUnavailable",
                        message=why,
                    ),
                    network,
                ]
            ),
            runtime_handlers=[cri.RuntimeHandler(name="")],
        )
        if request.verbose:
            response.info["uri"] = self.backend.config.libvirt_uri
            response.info["root_dir"] = str(self.backend.root)
            response.info["isolation"] = "vm"
            # Sandboxes with `runtime.POD_NIC` get their guests a NIC on the pod network.
            response.info[_protocol.POD_NIC_INFO] = "true"
            response.info["forkSafe"] = "yes" if _libvirt.fork_safe() else "no"
            # Only once libvirt is open: the status must not be what opens it.
            if ready and self.backend.connected:
                response.info["libvirt"] = base.call(
                    context, "Status", lambda: self.backend.conn.version()
                )
        return response

    def UpdateContainerResources(
        self, request: cri.UpdateContainerResourcesRequest, context: grpc.ServicerContext
    ) -> cri.UpdateContainerResourcesResponse:
        base.call(
            context,
            "UpdateContainerResources",
            lambda: self.backend.update_resources(
                request.container_id,
                request.linux if request.HasField("linux") else None,
                request.annotations,
            ),
        )
        return cri.UpdateContainerResourcesResponse()

    def ExecSync(
        self, request: cri.ExecSyncRequest, context: grpc.ServicerContext
    ) -> cri.ExecSyncResponse:
        base.unimplemented(
            context, "the VM runtime cannot run commands in a guest (no guest agent)"
        )

    def Exec(self, request: cri.ExecRequest, context: grpc.ServicerContext) -> cri.ExecResponse:
        base.unimplemented(
            context, "the VM runtime cannot run commands in a guest (no guest agent)"
        )

    def Attach(
        self, request: cri.AttachRequest, context: grpc.ServicerContext
    ) -> cri.AttachResponse:
        base.unimplemented(context, "the VM runtime does not attach to serial consoles yet")

    def PortForward(
        self, request: cri.PortForwardRequest, context: grpc.ServicerContext
    ) -> cri.PortForwardResponse:
        base.unimplemented(context, "the VM runtime does not forward ports")

    def ContainerStats(
        self, request: cri.ContainerStatsRequest, context: grpc.ServicerContext
    ) -> cri.ContainerStatsResponse:
        base.call(
            context, "ContainerStats", lambda: self.backend.container_status(request.container_id)
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
        base.call(
            context,
            "RebootVM",
            lambda: self.backend.reboot_vm(
                request.vm_id, delay=float(spec.delayInSeconds), flags=int(spec.domainRebootFlag)
            ),
        )
        return cri.RebootVMResponse()

    def CreateSnapshot(
        self, request: cri.CreateSnapshotRequest, context: grpc.ServicerContext
    ) -> cri.CreateSnapshotResponse:
        base.call(
            context,
            "CreateSnapshot",
            lambda: self.backend.create_snapshot(request.vmID, request.snapshotID),
        )
        return cri.CreateSnapshotResponse()

    def RestoreToSnapshot(
        self, request: cri.RestoreToSnapshotRequest, context: grpc.ServicerContext
    ) -> cri.RestoreToSnapshotResponse:
        base.call(
            context,
            "RestoreToSnapshot",
            lambda: self.backend.restore_to_snapshot(request.vmID, request.snapshotID),
        )
        return cri.RestoreToSnapshotResponse()

    def PauseVM(
        self, request: cri.PauseVMRequest, context: grpc.ServicerContext
    ) -> cri.PauseVMResponse:
        base.call(context, "PauseVM", lambda: self.backend.pause_vm(request.vm_id))
        return cri.PauseVMResponse()

    def ResumeVM(
        self, request: cri.ResumeVMRequest, context: grpc.ServicerContext
    ) -> cri.ResumeVMResponse:
        base.call(context, "ResumeVM", lambda: self.backend.resume_vm(request.vm_id))
        return cri.ResumeVMResponse()

    def SuspendVM(
        self, request: cri.SuspendVMRequest, context: grpc.ServicerContext
    ) -> cri.SuspendVMResponse:
        base.call(context, "SuspendVM", lambda: self.backend.suspend_vm(request.vm_id))
        return cri.SuspendVMResponse()


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
        images = base.call(context, "ListImages", self.manager.images.list)
        wanted = request.filter.image.image if request.HasField("filter") else ""
        if wanted:
            images = [i for i in images if wanted in (i.id, *i.names)]
        return cri.ListImagesResponse(images=[image_message(i) for i in images])

    def ImageStatus(
        self, request: cri.ImageStatusRequest, context: grpc.ServicerContext
    ) -> cri.ImageStatusResponse:
        image = base.call(
            context, "ImageStatus", lambda: self.manager.images.find(request.image.image)
        )
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
        image = base.call(
            context, "PullImage", lambda: self.manager.images.pull(request.image.image)
        )
        return cri.PullImageResponse(image_ref=image.id)

    def RemoveImage(
        self, request: cri.RemoveImageRequest, context: grpc.ServicerContext
    ) -> cri.RemoveImageResponse:
        def remove() -> None:
            found = self.manager.images.find(request.image.image)
            if found is not None:
                in_use = found.id in self.manager.images_in_use()
                self.manager.images.remove(found.id, in_use=in_use)

        base.call(context, "RemoveImage", remove)
        return cri.RemoveImageResponse()

    def ImageFsInfo(
        self, request: cri.ImageFsInfoRequest, context: grpc.ServicerContext
    ) -> cri.ImageFsInfoResponse:
        images = self.manager.images
        used = sum(i.size for i in images.list())
        return base.filesystem_info(str(images.store), used_bytes=used)
