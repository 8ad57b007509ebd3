"""Two partitions' API servers, each over its own SQLite file: tenants "" to "n" on one and
"n" on (with `system`: the designated one) on the other, over real HTTP and kubectl."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio

from arktos_lite import apiserver, client, storage
from arktos_lite.agent import _server as agent_server
from arktos_lite.api import errors, partitions
from arktos_lite.apiserver import _kubeconfig as kubeconfig, _pki as pki

from .conftest import (
    ADMIN_TOKEN,
    ALICE_TOKEN,
    Server,
    created,
    make_tenant,
    names,
    next_event,
    pod,
    take,
    watching,
)
from .test_proxy import Located, T

LOW = partitions.Partition("p0", partitions.TenantRange("", "n"))
HIGH = partitions.Partition("p1", partitions.TenantRange("n", ""))

Obj = dict[str, Any]


class PartitionServer(Server):
    """The test server, serving one partition."""

    partition: partitions.Partition
    designated: client.Config | None = None

    async def start(self) -> None:
        assert self._api is None, "the server is running"
        options = apiserver.ServeOptions(
            port=self.port,
            tls=self._tls,
            graceful_timeout=self._graceful_timeout,
            partition=self.partition,
            service_cidr="10.96.0.0/16" if self.partition.tenants.designated else "10.97.0.0/16",
            designated=self.designated,
        )
        api = apiserver.APIServer(self.backend, authenticator=self._auth, options=options)
        stopped = trio.Event()

        async def serve(*, task_status: trio.TaskStatus[apiserver.Bound]) -> None:
            try:
                await api.run(task_status=task_status)
            finally:
                stopped.set()

        bound: apiserver.Bound = await self._nursery.start(serve)
        self._api, self._stopped = api, stopped
        self.url, self.port = bound.url, bound.port


@contextlib.asynccontextmanager
async def partition_server(
    partition: partitions.Partition,
    store: pathlib.Path,
    *,
    tls: apiserver.TLSFiles | None = None,
    designated: client.Config | None = None,
) -> AsyncIterator[PartitionServer]:
    async with (
        storage.open_store(f"sqlite:///{store}") as backend,
        trio.open_nursery() as nursery,
    ):
        server = PartitionServer(backend=backend, nursery=nursery, tls=tls)
        server.partition = partition
        server.designated = designated
        await server.start()
        try:
            yield server
        finally:
            await server.stop()


@pytest.fixture
async def servers(tmp_path: pathlib.Path) -> AsyncIterator[tuple[PartitionServer, PartitionServer]]:
    async with (
        partition_server(LOW, tmp_path / "p0.db") as low,
        partition_server(HIGH, tmp_path / "p1.db") as high,
    ):
        yield low, high


def misdirected(response: httpx.Response, message: str) -> None:
    assert response.status_code == 421, response.text
    status = response.json()
    assert status["kind"] == "Status"
    assert status["reason"] == "MisdirectedRequest"
    assert status["code"] == 421
    assert message in status["message"]


ALPHA_ELSEWHERE = 'tenant "alpha" is not served by this API server: it serves partition "p1"'
ZETA_ELSEWHERE = 'tenant "zeta" is not served by this API server: it serves partition "p0"'
NODES_ELSEWHERE = 'nodes are cluster-scoped and live in the partition that holds tenant "system"'


async def test_each_partition_holds_its_own_tenants(
    servers: tuple[PartitionServer, PartitionServer],
) -> None:
    low, high = servers
    async with low.client() as a, high.client() as z:
        await make_tenant(a, "alpha")
        await make_tenant(z, "zeta")
        for client, tenant in ((a, "alpha"), (z, "zeta")):
            for name in ("web", "db"):
                await created(
                    client, f"/api/v1/tenants/{tenant}/namespaces/default/pods", pod(name)
                )
        assert await names(a, "/api/v1/tenants/alpha/namespaces/default/pods") == ["db", "web"]
        assert await names(z, "/api/v1/tenants/zeta/namespaces/default/pods") == ["db", "web"]
        # Lists across tenants answer with what the partition holds.
        assert await names(a, "/api/v1/tenants") == ["alpha"]
        assert await names(z, "/api/v1/tenants") == ["system", "zeta"]
        all_pods = await a.get("/api/v1/tenants/all/pods")
        assert {p["metadata"]["tenant"] for p in all_pods.json()["items"]} == {"alpha"}
        assert await names(z, "/api/v1/pods") == []  # the admin's own (system) tenant
        async with watching(a, "/api/v1/tenants/all/pods", watch="true") as events:
            assert await next_event(events) == {"status": 200}
            initial = await take(events, 2)
            assert {e["object"]["metadata"]["tenant"] for e in initial} == {"alpha"}
            await created(z, "/api/v1/tenants/zeta/namespaces/default/pods", pod("x"))
            await created(a, "/api/v1/tenants/alpha/namespaces/default/pods", pod("y"))
            added = await next_event(events)
            assert (added["type"], added["object"]["metadata"]["name"]) == ("ADDED", "y")


async def test_the_other_partitions_tenant_is_421_whatever_the_verb(
    servers: tuple[PartitionServer, PartitionServer],
) -> None:
    low, high = servers
    async with low.client() as a, high.client() as z:
        await make_tenant(a, "alpha")
        revision = await high.backend.current_revision()
        base = "/api/v1/tenants/alpha"
        pods = f"{base}/namespaces/default/pods"
        merge = {"Content-Type": "application/merge-patch+json"}
        requests = [
            z.post("/api/v1/tenants", json={"metadata": {"name": "alpha"}}),
            z.post("/api/v1/tenants?dryRun=All", json={"metadata": {"name": "alpha"}}),
            z.get(base),
            z.put(base, json={"metadata": {"name": "alpha"}}),
            z.patch(base, content=b"{}", headers=merge),
            z.delete(base),
            z.get(f"{base}/status"),
            z.get(f"{base}/namespaces"),
            z.post(f"{base}/namespaces", json={"metadata": {"name": "x"}}),
            z.get(pods),
            z.get(pods, params={"watch": "true"}),
            z.get("/api/v1/watch/tenants/alpha/namespaces/default/pods"),
            z.post(pods, json=pod("web")),
            z.post(f"{pods}?dryRun=All", json=pod("web")),
            z.get(f"{pods}/web"),
            z.put(f"{pods}/web", json=pod("web")),
            z.patch(f"{pods}/web", content=b'{"metadata":{"labels":{"a":"b"}}}', headers=merge),
            z.delete(f"{pods}/web"),
            z.delete(pods),
            z.get(f"{pods}/web/status"),
            z.post(f"{pods}/web/binding", json={"target": {"name": "n1"}}),
            z.get(f"{pods}/web/log"),
            z.get(f"{pods}/web/exec", params={"command": "ls"}),
            z.post(
                f"{pods}/web/action",
                json={"apiVersion": "v1", "kind": "CustomAction", "operation": "reboot"},
            ),
            z.get("/apis/apps/v1/tenants/alpha/namespaces/default/deployments/d/scale"),
        ]
        for request in requests:
            misdirected(await request, ALPHA_ELSEWHERE)
        assert await high.backend.current_revision() == revision
        misdirected(await a.get("/api/v1/tenants/zeta/namespaces"), ZETA_ELSEWHERE)


async def test_short_paths_resolve_to_the_callers_tenant_first(
    servers: tuple[PartitionServer, PartitionServer],
) -> None:
    low, high = servers
    # alice is a user of tenant t1, which sorts after "n": partition p1 holds it.
    async with high.client() as z:
        await make_tenant(z, "t1")
    async with low.client(ALICE_TOKEN) as alice_low, high.client(ALICE_TOKEN) as alice_high:
        await created(alice_high, "/api/v1/namespaces/default/pods", pod("web"))
        assert await names(alice_high, "/api/v1/namespaces/default/pods") == ["web"]
        misdirected(
            await alice_low.get("/api/v1/namespaces/default/pods"),
            'tenant "t1" is not served by this API server: it serves partition "p0"',
        )
        misdirected(
            await alice_low.post("/api/v1/namespaces/default/configmaps", json={}),
            'tenant "t1" is not served',
        )
        # Her own Tenant object, by its name.
        misdirected(await alice_low.get("/api/v1/tenants/t1"), 'tenant "t1"')
        assert (await alice_high.get("/api/v1/tenants/t1")).status_code == 200
        # Another tenant's data stays forbidden to her, wherever she asks.
        assert (await alice_high.get("/api/v1/tenants/zeta/pods")).status_code == 403
    async with low.client() as a:
        # The admin's short paths are the system tenant's, on the designated partition.
        misdirected(await a.get("/api/v1/namespaces"), 'tenant "system" is not served')


async def test_cluster_scoped_objects_live_on_the_designated_partition(
    servers: tuple[PartitionServer, PartitionServer],
) -> None:
    low, high = servers
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    async with low.client() as a, high.client() as z:
        misdirected(await a.post("/api/v1/nodes", json=node), NODES_ELSEWHERE)
        misdirected(await a.get("/api/v1/nodes"), NODES_ELSEWHERE)
        misdirected(await a.get("/api/v1/nodes/n1"), NODES_ELSEWHERE)
        misdirected(await a.get("/api/v1/controllerinstances"), "controllerinstances are")
        assert (await z.post("/api/v1/nodes", json=node)).status_code == 201
        assert await names(z, "/api/v1/nodes") == ["n1"]


async def test_only_the_designated_partition_bootstraps_the_system_tenant(
    servers: tuple[PartitionServer, PartitionServer],
) -> None:
    low, high = servers
    assert await low.backend.current_revision() == 0
    async with low.client() as a, high.client() as z:
        misdirected(await a.get("/api/v1/tenants/system"), 'tenant "system"')
        assert (await z.get("/api/v1/tenants/system")).status_code == 200
        service = await z.get("/api/v1/namespaces/default/services/kubernetes")
        assert service.status_code == 200, service.text
        # Health does not depend on the partition.
        assert (await a.get("/readyz")).text == "ok"
        assert (await z.get("/readyz")).text == "ok"


async def test_data_partition_configs_describe_each_server(
    servers: tuple[PartitionServer, PartitionServer],
) -> None:
    low, high = servers
    async with low.client() as a, high.client() as z:
        for client, partition in ((a, LOW), (z, HIGH)):
            listed = await client.get("/api/v1/datapartitionconfigs")
            assert listed.status_code == 200, listed.text
            assert listed.json()["kind"] == "DataPartitionConfigList"
            assert listed.json()["items"] == [partition.data_partition_config()]
            one = await client.get(f"/api/v1/datapartitionconfigs/{partition.name}")
            assert one.json() == partition.data_partition_config()
            assert partitions.Partition.from_data_partition_config(one.json()) == partition
        missing = await a.get("/api/v1/datapartitionconfigs/p1")
        assert missing.status_code == 404
        assert missing.json()["reason"] == "NotFound"
        body = LOW.data_partition_config()
        for response in (
            await a.post("/api/v1/datapartitionconfigs", json=body),
            await a.put("/api/v1/datapartitionconfigs/p0", json=body),
            await a.delete("/api/v1/datapartitionconfigs/p0"),
            await a.get("/api/v1/datapartitionconfigs", params={"watch": "true"}),
        ):
            assert response.status_code == 405, response.text
            assert response.json()["reason"] == "MethodNotAllowed"
        table = await a.get(
            "/api/v1/datapartitionconfigs",
            headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
        )
        assert [c["name"] for c in table.json()["columnDefinitions"]] == [
            "Name",
            "Range Start",
            "Range End",
            "Service Group",
        ]
        assert [r["cells"] for r in table.json()["rows"]] == [["p0", "<unbounded>", "n", "p0"]]
    async with low.client(ALICE_TOKEN) as alice:
        assert (await alice.get("/api/v1/datapartitionconfigs")).status_code == 403


async def test_discovery_lists_data_partition_configs(
    servers: tuple[PartitionServer, PartitionServer],
) -> None:
    low, _high = servers
    async with low.client() as a:
        listed = (await a.get("/api/v1")).json()["resources"]
    entry = next(r for r in listed if r["name"] == "datapartitionconfigs")
    assert entry["kind"] == "DataPartitionConfig"
    assert entry["namespaced"] is False
    assert sorted(entry["verbs"]) == ["get", "list"]


async def test_without_a_partition_there_is_no_data_partition_config() -> None:
    async with Server.open() as server, server.client() as admin:
        listed = await admin.get("/api/v1/datapartitionconfigs")
        assert listed.status_code == 200
        assert listed.json()["items"] == []


# --- Pods' log through a partition without the nodes --------------------------------------


async def test_logs_of_a_pod_whose_node_is_kept_by_the_designated_partition(
    tmp_path: pathlib.Path,
) -> None:
    log_path = tmp_path / "0.log"
    log_path.write_text(f"{T.format(1)} stdout F hello\n{T.format(2)} stderr F world\n")
    located = agent_server.LocatedContainer(
        runtime=None,  # type: ignore[arg-type]
        container_id="c1",
        log_path=log_path,
        running=True,
    )
    locator = Located({("alpha", "default", "web", "app", False): located})
    async with partition_server(HIGH, tmp_path / "p1.db") as high:
        designated = client.Config(server=high.url, token=ADMIN_TOKEN)
        async with (
            partition_server(LOW, tmp_path / "p0.db", designated=designated) as low,
            partition_server(LOW, tmp_path / "p0-alone.db") as alone,
            client.Client(designated) as agent_api,
            trio.open_nursery() as nursery,
        ):
            # The agent checks tokens at the designated partition, as a routed client does.
            agent = agent_server.AgentServer(
                agent_api, locator=locator, root_dir=tmp_path / "agent", port=0
            )
            port = await nursery.start(agent.run)
            async with high.client() as z, low.client() as a, alone.client() as a_alone:
                await created(z, "/api/v1/nodes", {"metadata": {"name": "n1"}})
                node = (await z.get("/api/v1/nodes/n1")).json()
                node["status"] = {
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
                }
                assert (await z.put("/api/v1/nodes/n1/status", json=node)).status_code == 200
                web = {
                    "metadata": {"name": "web"},
                    "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "x"}]},
                }
                for client_ in (a, a_alone):
                    await make_tenant(client_, "alpha")
                    await created(client_, "/api/v1/tenants/alpha/namespaces/default/pods", web)
                url = "/api/v1/tenants/alpha/namespaces/default/pods/web/log"
                log = await a.get(url)
                assert log.status_code == 200, log.text
                assert log.text == "hello\nworld\n"
                unreachable = await a_alone.get(url)
                assert unreachable.status_code == 503
                assert "node n1 is kept by the designated partition" in unreachable.text
            nursery.cancel_scope.cancel()


# --- kubectl ------------------------------------------------------------------------------

KUBECTL = shutil.which("kubectl")


async def kubectl(kubeconfig: pathlib.Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    assert KUBECTL is not None
    done = await trio.run_process(
        [KUBECTL, *args], capture_stdout=True, capture_stderr=True, check=False, env=env
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


@pytest.fixture
def need_kubectl() -> None:
    if KUBECTL is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl is not installed")
        pytest.skip("kubectl is not installed")


@pytest.mark.usefixtures("need_kubectl")
async def test_kubectl_shows_partitions_and_misdirected_requests(tmp_path: pathlib.Path) -> None:
    # Both partitions share one CA, as `arktos up --partitions` sets them up.
    keys = await trio.to_thread.run_sync(pki.ensure_pki, tmp_path)
    tls = apiserver.TLSFiles(cert=keys.server_cert, key=keys.server_key, client_ca=keys.ca_cert)
    async with (
        partition_server(LOW, tmp_path / "p0.db", tls=tls) as low,
        partition_server(HIGH, tmp_path / "p1.db", tls=tls) as high,
    ):
        low_config, high_config = tmp_path / "low" / "config", tmp_path / "high" / "config"
        for path, server in ((low_config, low), (high_config, high)):
            path.parent.mkdir()
            kubeconfig.write_kubeconfig(path, server=server.url, pki=keys, embed_client_cert=True)
        await kubectl_checks(low_config, high_config)


async def kubectl_checks(low_config: pathlib.Path, high_config: pathlib.Path) -> None:
    code, out, err = await kubectl(low_config, "get", "datapartitionconfigs")
    assert code == 0, err
    lines = [line.split() for line in out.splitlines()]
    assert lines == [
        ["NAME", "RANGE", "START", "RANGE", "END", "SERVICE", "GROUP"],
        ["p0", "<unbounded>", "n", "p0"],
    ]
    code, out, err = await kubectl(high_config, "get", "datapartitionconfigs", "p1", "-o", "json")
    assert code == 0, err
    assert json.loads(out) == HIGH.data_partition_config()
    code, out, err = await kubectl(low_config, "explain", "datapartitionconfigs.rangeEnd")
    assert code == 0, err
    assert "The tenant name where the partition ends (exclusive)." in out
    code, out, err = await kubectl(low_config, "get", "nodes")
    assert code != 0
    assert f"Error from server (MisdirectedRequest): {NODES_ELSEWHERE}" in err
    # The admin's short paths are the system tenant's, which p0 does not hold.
    code, out, err = await kubectl(low_config, "get", "pods", "-n", "default")
    assert code != 0
    assert 'tenant "system" is not served by this API server: it serves partition "p0"' in err
    code, out, err = await kubectl(
        low_config, "get", "--raw", "/api/v1/tenants/zeta/namespaces/default/pods"
    )
    assert code != 0
    assert ZETA_ELSEWHERE in err


# --- `arktos apiserver --partition-config` as a process -----------------------------------

ARKTOS = [sys.executable, "-m", "arktos_lite"]


async def test_a_bad_partition_config_stops_the_start_with_the_reason(
    tmp_path: pathlib.Path,
) -> None:
    config = tmp_path / "partition.conf"
    config.write_text("/registry/, a, m\n/registry/pods/, a, n\n")
    command = [*ARKTOS, "apiserver", "--data-dir", str(tmp_path / "data"), "--port", "0"]
    done = await trio.run_process(
        [*command, "--partition-config", str(config)],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env={**os.environ, "COLUMNS": "1000"},  # the message on one line
    )
    err = " ".join(done.stderr.decode().replace("│", " ").split())
    assert done.returncode == 2
    assert "Traceback" not in err
    assert f"{config}, line 2: range ['a', 'n') differs from the file's earlier lines" in err
    assert not (tmp_path / "data").exists()


async def test_the_apiserver_process_serves_its_partition(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "partition.conf"
    config.write_text("# tenants up to n\n/registry/, , n\n")
    data = tmp_path / "data"
    command = [*ARKTOS, "apiserver", "--data-dir", str(data), "--port", "0", "--plain-http"]
    command += ["--partition-config", str(config), "--service-group-id", "p0"]
    process = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        ready = b""
        with trio.fail_after(60):
            while b"\n" not in ready:
                chunk = await process.stdout.receive_some()
                assert chunk, "the API server exited before it was ready"
                ready += chunk
        url = ready.decode().split(" is ready at ")[1].split(";")[0]
        async with client.Client.from_kubeconfig(data / "kubeconfig") as api:
            assert api.config.server == url
            listed = await api.request("GET", "/api/v1/datapartitionconfigs")
            assert listed["items"] == [LOW.data_partition_config()]
            with pytest.raises(errors.StatusError) as raised:
                await api.request("GET", "/api/v1/namespaces")
            assert raised.value.code == 421
            assert 'tenant "system" is not served' in str(raised.value)
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            await process.wait()
        if process.stdout is not None:
            await process.stdout.aclose()
    assert process.returncode == 0
