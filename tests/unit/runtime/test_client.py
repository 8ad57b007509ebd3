"""`RuntimeClient` against a real gRPC server on a unix socket.

The server is grpcio's own, serving a small in-memory runtime built on the generated
servicers, so every call crosses the wire with runtime.v1 method names.
"""

from __future__ import annotations

import concurrent.futures
import pathlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
import trio

from arktos_lite import runtime
from arktos_lite.runtime import errors
from arktos_lite.runtime.cri import api_pb2 as cri, api_pb2_grpc


class _Recorder(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self) -> None:
        self.methods: list[str] = []

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        self.methods.append(details.method)
        return continuation(details)


class _Runtime(api_pb2_grpc.RuntimeServiceServicer, api_pb2_grpc.ImageServiceServicer):  # type: ignore[misc]
    """Just enough of a runtime: sandboxes and containers in dicts, images in a set."""

    def __init__(self) -> None:
        self.sandboxes: dict[str, cri.PodSandboxConfig] = {}
        self.containers: dict[str, cri.ContainerStatus] = {}
        self.images: set[str] = set()
        self.calls: list[tuple[str, Any]] = []
        self.release = threading.Event()
        self.cancelled = threading.Event()

    def _fail(self, context: grpc.ServicerContext, error: errors.CRIError) -> None:
        context.abort(errors.status_code(error), error.message)

    def Version(self, request: cri.VersionRequest, context: Any) -> cri.VersionResponse:
        return cri.VersionResponse(
            version=request.version, runtime_name="fake", runtime_api_version="v1"
        )

    def Status(self, request: cri.StatusRequest, context: Any) -> cri.StatusResponse:
        status = cri.RuntimeStatus(
            conditions=[cri.RuntimeCondition(type="RuntimeReady", status=True)]
        )
        info = {"isolation": "none"} if request.verbose else {}
        return cri.StatusResponse(status=status, info=info)

    def RunPodSandbox(
        self, request: cri.RunPodSandboxRequest, context: Any
    ) -> cri.RunPodSandboxResponse:
        sandbox_id = f"sb-{len(self.sandboxes)}"
        self.sandboxes[sandbox_id] = request.config
        return cri.RunPodSandboxResponse(pod_sandbox_id=sandbox_id)

    def ListPodSandbox(
        self, request: cri.ListPodSandboxRequest, context: Any
    ) -> cri.ListPodSandboxResponse:
        selector = dict(request.filter.label_selector)
        return cri.ListPodSandboxResponse(
            items=[
                cri.PodSandbox(id=sandbox_id, metadata=config.metadata, labels=config.labels)
                for sandbox_id, config in self.sandboxes.items()
                if selector.items() <= dict(config.labels).items()
            ]
        )

    def CreateContainer(
        self, request: cri.CreateContainerRequest, context: Any
    ) -> cri.CreateContainerResponse:
        if request.pod_sandbox_id not in self.sandboxes:
            self._fail(context, errors.NotFound(f"sandbox {request.pod_sandbox_id} not found"))
        container_id = f"c-{len(self.containers)}"
        self.containers[container_id] = cri.ContainerStatus(
            id=container_id,
            metadata=request.config.metadata,
            state=cri.CONTAINER_CREATED,
            labels=request.config.labels,
        )
        return cri.CreateContainerResponse(container_id=container_id)

    def StartContainer(
        self, request: cri.StartContainerRequest, context: Any
    ) -> cri.StartContainerResponse:
        self.containers[request.container_id].state = cri.CONTAINER_RUNNING
        return cri.StartContainerResponse()

    def StopContainer(
        self, request: cri.StopContainerRequest, context: Any
    ) -> cri.StopContainerResponse:
        self.calls.append(("StopContainer", request.timeout))
        self.release.wait(0.5)  # a container taking its grace period to exit
        self.containers[request.container_id].state = cri.CONTAINER_EXITED
        return cri.StopContainerResponse()

    def ContainerStatus(
        self, request: cri.ContainerStatusRequest, context: Any
    ) -> cri.ContainerStatusResponse:
        if request.container_id not in self.containers:
            self._fail(context, errors.NotFound(f"container {request.container_id} not found"))
        return cri.ContainerStatusResponse(status=self.containers[request.container_id])

    def RemoveContainer(
        self, request: cri.RemoveContainerRequest, context: Any
    ) -> cri.RemoveContainerResponse:
        # The id names the error to fail with, so one method exercises every code.
        error_class = getattr(errors, request.container_id, None)
        if error_class is not None:
            self._fail(context, error_class(f"{request.container_id} from the server"))
        self.containers.pop(request.container_id, None)
        return cri.RemoveContainerResponse()

    def ExecSync(self, request: cri.ExecSyncRequest, context: Any) -> cri.ExecSyncResponse:
        if request.cmd[0] == "hang":
            context.add_callback(self.cancelled.set)
            self.release.wait(10)
            return cri.ExecSyncResponse()
        return cri.ExecSyncResponse(
            stdout=" ".join(request.cmd).encode(), stderr=b"warn", exit_code=request.timeout
        )

    def Exec(self, request: cri.ExecRequest, context: Any) -> cri.ExecResponse:
        return cri.ExecResponse(url=f"http://127.0.0.1:1/exec/{request.container_id}")

    def RebootVM(self, request: cri.RebootVMRequest, context: Any) -> cri.RebootVMResponse:
        self.calls.append(("RebootVM", request))
        return cri.RebootVMResponse()

    def CreateSnapshot(
        self, request: cri.CreateSnapshotRequest, context: Any
    ) -> cri.CreateSnapshotResponse:
        self.calls.append(("CreateSnapshot", request))
        return cri.CreateSnapshotResponse()

    def PullImage(self, request: cri.PullImageRequest, context: Any) -> cri.PullImageResponse:
        self.images.add(request.image.image)
        return cri.PullImageResponse(image_ref=f"sha256:{request.image.image}")

    def ImageStatus(self, request: cri.ImageStatusRequest, context: Any) -> cri.ImageStatusResponse:
        if request.image.image not in self.images:
            return cri.ImageStatusResponse()
        return cri.ImageStatusResponse(
            image=cri.Image(id=f"sha256:{request.image.image}", repo_tags=[request.image.image])
        )

    def ListImages(self, request: cri.ListImagesRequest, context: Any) -> cri.ListImagesResponse:
        return cri.ListImagesResponse(images=[cri.Image(id=image) for image in self.images])


class _Server:
    def __init__(self, address: str, servicer: _Runtime, recorder: _Recorder) -> None:
        self.address = address
        self.servicer = servicer
        self.recorder = recorder


@pytest.fixture
def server(tmp_path: pathlib.Path) -> Iterator[_Server]:
    servicer = _Runtime()
    recorder = _Recorder()
    grpc_server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=8), interceptors=[recorder]
    )
    api_pb2_grpc.add_RuntimeServiceServicer_to_server(servicer, grpc_server)
    api_pb2_grpc.add_ImageServiceServicer_to_server(servicer, grpc_server)
    socket = tmp_path / "cri.sock"
    grpc_server.add_insecure_port(f"unix://{socket}")
    grpc_server.start()
    try:
        yield _Server(f"unix://{socket}", servicer, recorder)
    finally:
        servicer.release.set()
        grpc_server.stop(None).wait()


async def test_calls_round_trip_with_runtime_v1_names(server: _Server) -> None:
    async with runtime.RuntimeClient.connect(server.address) as rc:
        version = await rc.version()
        assert (version.runtime_name, version.version) == ("fake", "0.1.0")
        status = await rc.status(verbose=True)
        assert status.status.conditions[0].type == "RuntimeReady"
        assert status.info["isolation"] == "none"

        sandbox_config = cri.PodSandboxConfig(
            metadata=cri.PodSandboxMetadata(name="p", uid="u1", namespace="ns", tenant="t"),
            labels={"io.kubernetes.pod.uid": "u1"},
        )
        sandbox_id = await rc.run_pod_sandbox(sandbox_config)
        listed = await rc.list_pod_sandbox(
            cri.PodSandboxFilter(label_selector={"io.kubernetes.pod.uid": "u1"})
        )
        assert [s.id for s in listed] == [sandbox_id]
        assert listed[0].metadata.tenant == "t"
        assert await rc.list_pod_sandbox(cri.PodSandboxFilter(label_selector={"x": "y"})) == []

        config = cri.ContainerConfig(metadata=cri.ContainerMetadata(name="web"))
        container_id = await rc.create_container(sandbox_id, config, sandbox_config)
        await rc.start_container(container_id)
        assert (await rc.container_status(container_id)).state == cri.CONTAINER_RUNNING

        result = await rc.exec_sync(container_id, ["echo", "hi"], timeout=2.5)
        assert result == runtime.ExecResult(stdout=b"echo hi", stderr=b"warn", exit_code=3)
        url = await rc.exec(cri.ExecRequest(container_id=container_id, cmd=["sh"], stdout=True))
        assert url.endswith(f"/exec/{container_id}")

        assert await rc.image_status("busybox") is None
        assert await rc.pull_image("busybox") == "sha256:busybox"
        image = await rc.image_status("busybox")
        assert image is not None
        assert image.repo_tags == ["busybox"]
        assert [i.id for i in await rc.list_images()] == ["busybox"]

        await rc.reboot_vm("vm-1", delay_seconds=5)
        await rc.create_snapshot("vm-1", "snap-1")
    reboot = dict(server.servicer.calls)["RebootVM"]
    assert (reboot.vm_id, reboot.rebootSpec.delayInSeconds) == ("vm-1", 5)
    assert dict(server.servicer.calls)["CreateSnapshot"].snapshotID == "snap-1"
    assert "/runtime.v1.RuntimeService/RunPodSandbox" in server.recorder.methods
    assert "/runtime.v1.ImageService/PullImage" in server.recorder.methods
    assert "/runtime.v1.RuntimeService/RebootVM" in server.recorder.methods


async def test_missing_objects_are_not_found(server: _Server) -> None:
    async with runtime.RuntimeClient.connect(server.address) as rc:
        with pytest.raises(runtime.NotFound, match="container nope not found") as info:
            await rc.container_status("nope")
    assert info.value.code is grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "name",
    [
        "NotFound",
        "AlreadyExists",
        "InvalidArgument",
        "FailedPrecondition",
        "Unavailable",
        "DeadlineExceeded",
        "Unimplemented",
        "Internal",
    ],
)
async def test_every_error_class_crosses_the_wire(server: _Server, name: str) -> None:
    async with runtime.RuntimeClient.connect(server.address) as rc:
        with pytest.raises(getattr(runtime, name), match=f"{name} from the server"):
            await rc.remove_container(name)


async def test_unimplemented_calls_say_so(server: _Server) -> None:
    async with runtime.RuntimeClient.connect(server.address) as rc:
        with pytest.raises(runtime.Unimplemented):
            await rc.restore_to_snapshot("vm-1", "snap-1")


async def test_absent_socket_is_unavailable_at_once(tmp_path: pathlib.Path) -> None:
    async with runtime.RuntimeClient.connect(str(tmp_path / "absent.sock")) as rc:
        with trio.fail_after(5):
            with pytest.raises(runtime.Unavailable):
                await rc.version()


async def test_a_runtime_overrunning_the_deadline_fails_the_call(server: _Server) -> None:
    async with runtime.RuntimeClient.connect(server.address, request_timeout=0.2) as rc:
        # The deadline is the exec timeout (1 s) plus the request timeout; the server hangs.
        with trio.fail_after(5), pytest.raises(runtime.DeadlineExceeded):
            await rc.exec_sync("c", ["hang"], timeout=1)
        # A call without a wait of its own gets the request timeout alone.
        with trio.fail_after(5), pytest.raises(runtime.DeadlineExceeded):
            await rc.stop_container("c", timeout=0)


async def test_stop_waits_out_the_grace_period(server: _Server) -> None:
    async with runtime.RuntimeClient.connect(server.address, request_timeout=0.2) as rc:
        sandbox_id = await rc.run_pod_sandbox(cri.PodSandboxConfig())
        container_id = await rc.create_container(
            sandbox_id, cri.ContainerConfig(), cri.PodSandboxConfig()
        )
        # The server takes 0.5 s, longer than the request timeout but within the grace.
        await rc.stop_container(container_id, timeout=2)
        assert (await rc.container_status(container_id)).state == cri.CONTAINER_EXITED
    assert server.servicer.calls == [("StopContainer", 2)]


async def test_cancelling_the_caller_cancels_the_rpc(server: _Server) -> None:
    async with runtime.RuntimeClient.connect(server.address) as rc:
        with trio.move_on_after(0.2) as scope:
            await rc.exec_sync("c", ["hang"], timeout=30)
        assert scope.cancelled_caught
        # The server learns the call was cancelled without waiting for its handler.
        assert await trio.to_thread.run_sync(server.servicer.cancelled.wait, 5)
        # The client is still usable.
        assert (await rc.version()).runtime_name == "fake"


async def test_bad_addresses_fail_before_dialing() -> None:
    with pytest.raises(ValueError, match="absolute path"):
        runtime.RuntimeClient("unix://relative.sock")
