"""The Mizar client against a BuiltinsService on loopback: what a call's outcome is
(OK, temporary, permanent), what a pod's message carries, and where Mizar is."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from arktos_lite.network import mizar
from arktos_lite.network.mizar import builtins_pb2 as pb, builtins_pb2_grpc as pb_grpc


class Scripted(pb_grpc.BuiltinsServiceServicer):
    """Answers every pod call with `self.answer`; keeps the messages it got."""

    def __init__(self) -> None:
        self.answer = "ok"
        self.got: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def _reply(self, method: str, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self.got.append((method, request))
        match self.answer:
            case "temp":
                return pb.ReturnCode(code=pb.TEMP_ERROR, message="busy")
            case "perm":
                return pb.ReturnCode(code=pb.PERM_ERROR, message="no vpc")
            case "unknown-code":
                return pb.ReturnCode(code=7, message="?")  # type: ignore[arg-type]
            case "invalid":
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad pod")
            case "slow":
                time.sleep(1.0)
        return pb.ReturnCode(code=pb.OK)

    def CreatePod(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._reply("CreatePod", request, context)

    def UpdatePod(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._reply("UpdatePod", request, context)

    def DeletePod(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._reply("DeletePod", request, context)


@pytest.fixture
def service() -> Iterator[tuple[Scripted, str]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = Scripted()
    pb_grpc.add_BuiltinsServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        server.stop(None)


POD = {
    "metadata": {
        "name": "web",
        "namespace": "ns",
        "tenant": "t1",
        "labels": {"app": "web", "arktos.futurewei.com/network": "m"},
        "annotations": {"mizar.com/vpc": "vpc0", "mizar.com/subnet": "vpc0-subnet"},
    },
    "status": {"phase": "Running", "hostIP": "192.0.2.7"},
}


async def test_ok_calls_reach_mizar_with_the_pod(service: tuple[Scripted, str]) -> None:
    servicer, target = service
    client = mizar.MizarClient(target)
    try:
        await client.create_pod(POD)
        await client.update_pod(POD)
        await client.delete_pod(POD)
    finally:
        client.close()
    assert [m for m, _ in servicer.got] == ["CreatePod", "UpdatePod", "DeletePod"]
    message = servicer.got[0][1]
    assert (message.name, message.namespace, message.tenant) == ("web", "ns", "t1")
    assert (message.host_ip, message.phase, message.arktos_network) == (
        "192.0.2.7",
        "Running",
        "m",
    )
    assert dict(message.annotations) == {"mizar.com/vpc": "vpc0", "mizar.com/subnet": "vpc0-subnet"}


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        ("temp", mizar.TemporaryError, "TEMP_ERROR: busy"),
        ("perm", mizar.PermanentError, "PERM_ERROR: no vpc"),
        ("unknown-code", mizar.PermanentError, "code 7"),
        ("invalid", mizar.PermanentError, "INVALID_ARGUMENT"),
        ("slow", mizar.TemporaryError, "DEADLINE_EXCEEDED"),
    ],
)
async def test_failures_are_temporary_or_permanent(
    service: tuple[Scripted, str], answer: str, error: type[mizar.MizarError], words: str
) -> None:
    servicer, target = service
    servicer.answer = answer
    client = mizar.MizarClient(target, timeout=0.3)
    try:
        with pytest.raises(error, match=words):
            await client.create_pod(POD)
    finally:
        client.close()


async def test_an_unreachable_mizar_is_a_temporary_error() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")  # bound, never started: nobody answers
    client = mizar.MizarClient(f"127.0.0.1:{port}", timeout=0.5)
    try:
        with pytest.raises(mizar.TemporaryError, match=r"UNAVAILABLE|DEADLINE_EXCEEDED"):
            await client.delete_pod(POD)
    finally:
        client.close()
        server.stop(None)


def test_a_pod_without_labels_sends_empty_labels() -> None:
    message = mizar.pod_message({"metadata": {"name": "p"}})
    assert (message.labels, message.arktos_network, message.host_ip) == ("", "", "")
    labelled = mizar.pod_message({"metadata": {"name": "p", "labels": {"b": "2", "a": "1"}}})
    assert labelled.labels == '{"a": "1", "b": "2"}'


@pytest.mark.parametrize(
    ("host", "target"),
    [
        ("10.0.0.5", "10.0.0.5:50052"),
        ("mizar.example", "mizar.example:50052"),
        ("127.0.0.1:7000", "127.0.0.1:7000"),
        ("fd00::5", "[fd00::5]:50052"),
        ("[fd00::5]", "[fd00::5]:50052"),
        ("[fd00::5]:7000", "[fd00::5]:7000"),
        (" ", None),
        ("", None),
    ],
)
def test_the_target_comes_from_the_configmaps_host(host: str, target: str | None) -> None:
    assert mizar.target_of({"host": host}) == target
    assert mizar.target_of({}) is None


def test_the_wire_format_is_mizars() -> None:
    service = pb.DESCRIPTOR.services_by_name["BuiltinsService"]
    assert service.full_name == "mizar.BuiltinsService"
    assert {"CreatePod", "UpdatePod", "DeletePod", "ResumePod"} <= set(service.methods_by_name)
    fields = {f.name: f.number for f in pb.BuiltinsPodMessage.DESCRIPTOR.fields}
    assert fields == {
        "name": 1,
        "host_ip": 2,
        "namespace": 3,
        "tenant": 4,
        "labels": 5,
        "arktos_network": 6,
        "phase": 7,
        "interfaces": 8,
        "annotations": 9,
    }
    assert {f.name: f.number for f in pb.ReturnCode.DESCRIPTOR.fields} == {"code": 1, "message": 2}
    assert dict(pb.CodeType.items()) == {"OK": 0, "TEMP_ERROR": 1, "PERM_ERROR": 2}
