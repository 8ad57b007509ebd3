"""A single etcd member on loopback, started as a child process: for tests, benchmarks and
a whole cluster on one machine.

`LocalEtcd(data_dir).start()` picks free ports (or takes the given ones), runs `etcd`
with its data in `data_dir` and its output in `data_dir`'s sibling `.log` file, and
returns once etcd answers a status request (FileNotFoundError without an `etcd` binary).
`stop()` ends it with SIGTERM, `kill()` with SIGKILL; `start()` again brings it back on
the same ports over the same data. With `EtcdTLS` its client port speaks TLS and requires
client certificates. Blocking calls: from trio, run them in a worker thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import IO

import grpc

from arktos_lite.storage.etcd import rpc_pb2, rpc_pb2_grpc

BINARY = "etcd"
_READY_POLL = 0.05


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclasses.dataclass(frozen=True, slots=True)
class EtcdTLS:
    """PEM files for TLS on the client port: the serving certificate and key (covering
    127.0.0.1), the CA that signs the client certificates etcd then requires, and one such
    client identity (the readiness check and `LocalEtcd.url` use it)."""

    ca: pathlib.Path
    cert: pathlib.Path
    key: pathlib.Path
    client_cert: pathlib.Path
    client_key: pathlib.Path


class LocalEtcd:
    """One etcd member with its data in `data_dir`, serving clients on 127.0.0.1."""

    def __init__(
        self,
        data_dir: pathlib.Path,
        *,
        client_port: int = 0,
        peer_port: int = 0,
        name: str = "arktos",
        binary: str = BINARY,
        tls: EtcdTLS | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.client_port = client_port
        self.peer_port = peer_port
        self.name = name
        self.log_path = data_dir.with_name(data_dir.name + ".log")
        self._binary = binary
        self.tls = tls
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """`host:port` of the client listener."""
        return f"127.0.0.1:{self.client_port}"

    @property
    def url(self) -> str:
        """The store URL of the whole etcd (no key prefix); with TLS, without its query."""
        return f"etcd{'+https' if self.tls else ''}://{self.endpoint}"

    @property
    def url_query(self) -> str:
        """What follows the path in a store URL: the TLS files, if any (`?cacert=...`)."""
        if self.tls is None:
            return ""
        tls = self.tls
        return f"?cacert={tls.ca}&cert={tls.client_cert}&key={tls.client_key}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        """The `etcd` command line of this member (picking its free ports if not given)."""
        binary = shutil.which(self._binary)
        if binary is None:
            raise FileNotFoundError(
                f"{self._binary!r} is not installed (Debian: apt-get install etcd-server)"
            )
        self.client_port = self.client_port or free_port()
        self.peer_port = self.peer_port or free_port()
        client = f"http{'s' if self.tls else ''}://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        command = [
            binary,
            "--name",
            self.name,
            "--data-dir",
            str(self.data_dir),
            "--listen-client-urls",
            client,
            "--advertise-client-urls",
            client,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"{self.name}={peer}",
            "--log-level",
            "warn",
        ]
        if self.tls is not None:
            command += [
                "--cert-file",
                str(self.tls.cert),
                "--key-file",
                str(self.tls.key),
                "--trusted-ca-file",
                str(self.tls.ca),
                "--client-cert-auth",
            ]
        return command

    def start(self, *, timeout: float = 15.0) -> None:
        """Start etcd and wait until it serves; raise RuntimeError if it does not."""
        if self.running:
            raise RuntimeError(f"etcd {self.endpoint} is already running")
        command = self.command()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        # Its own session: a Ctrl-C meant for the parent does not reach etcd first.
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise

    def wait_ready(self, timeout: float) -> None:
        """Until etcd answers a status request; RuntimeError after `timeout` seconds (or
        at once if the etcd `start` started has exited). Also for an etcd that another
        supervisor runs with `command()`."""
        deadline = time.monotonic() + timeout
        if self.tls is None:
            channel = grpc.insecure_channel(self.endpoint)
        else:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=self.tls.ca.read_bytes(),
                private_key=self.tls.client_key.read_bytes(),
                certificate_chain=self.tls.client_cert.read_bytes(),
            )
            channel = grpc.secure_channel(self.endpoint, credentials)
        with channel:
            maintenance = rpc_pb2_grpc.MaintenanceStub(channel)  # type: ignore[no-untyped-call]
            while True:
                process = self._process
                if process is not None and process.poll() is not None:
                    raise RuntimeError(
                        f"etcd exited during start-up; see {self.log_path}:\n{self._log_tail()}"
                    )
                try:
                    maintenance.Status(rpc_pb2.StatusRequest(), timeout=1.0)
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"etcd did not serve within {timeout} s; see {self.log_path}"
                        ) from None
                    time.sleep(_READY_POLL)
                else:
                    return

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-2000:]
        return ""

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._reap()

    def kill(self) -> None:
        """SIGKILL: the process dies at once, with whatever it had not yet written."""
        process = self._process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        self._reap()

    def _reap(self) -> None:
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None


@contextlib.contextmanager
def running_etcd(data_dir: pathlib.Path) -> Iterator[LocalEtcd]:
    """A started `LocalEtcd` over `data_dir`, stopped on exit."""
    etcd = LocalEtcd(data_dir)
    etcd.start()
    try:
        yield etcd
    finally:
        etcd.stop()
