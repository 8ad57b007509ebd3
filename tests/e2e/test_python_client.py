"""The official `kubernetes` Python client against `arktos up`, configured from its kubeconfig."""

from __future__ import annotations

from collections.abc import Iterator

import kubernetes
import pytest
from kubernetes.client.rest import ApiException

from .conftest import Cluster

pytestmark = pytest.mark.slow


@pytest.fixture
def core(cluster: Cluster) -> Iterator[kubernetes.client.CoreV1Api]:
    config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(
        config_file=str(cluster.kubeconfig), client_configuration=config
    )
    with kubernetes.client.ApiClient(config) as client:
        yield kubernetes.client.CoreV1Api(client)


def _pod(name: str, labels: dict[str, str]) -> kubernetes.client.V1Pod:
    return kubernetes.client.V1Pod(
        metadata=kubernetes.client.V1ObjectMeta(name=name, labels=labels),
        spec=kubernetes.client.V1PodSpec(
            containers=[kubernetes.client.V1Container(name="c", image="busybox")]
        ),
    )


def test_crud(core: kubernetes.client.CoreV1Api) -> None:
    created = core.create_namespaced_pod("default", _pod("py1", {"app": "py"}))
    assert created.metadata.uid
    assert created.status.phase == "Pending"
    read = core.read_namespaced_pod("py1", "default")
    # The scheduler may have bound it since: the same pod, perhaps at a later version.
    assert read.metadata.uid == created.metadata.uid
    assert int(read.metadata.resource_version) >= int(created.metadata.resource_version)
    patched = core.patch_namespaced_pod("py1", "default", {"metadata": {"labels": {"x": "1"}}})
    assert patched.metadata.labels == {"app": "py", "x": "1"}
    json_patched = core.patch_namespaced_pod(
        "py1", "default", [{"op": "remove", "path": "/metadata/labels/x"}]
    )
    assert json_patched.metadata.labels == {"app": "py"}
    read.metadata.annotations = {"note": "stale"}
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_pod("py1", "default", read)
    assert conflict.value.status == 409
    # The pod runs on the cluster's node: only a zero grace period removes it at once.
    core.delete_namespaced_pod("py1", "default", grace_period_seconds=0)
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod("py1", "default")
    assert missing.value.status == 404


def test_list_with_selectors_and_paging(core: kubernetes.client.CoreV1Api) -> None:
    for i in range(7):
        core.create_namespaced_config_map(
            "default",
            kubernetes.client.V1ConfigMap(
                metadata=kubernetes.client.V1ObjectMeta(
                    name=f"page-{i}", labels={"set": "paging", "odd": str(i % 2)}
                ),
                data={"i": str(i)},
            ),
        )
    names: list[str] = []
    token = None
    while True:
        page = core.list_namespaced_config_map(
            "default", label_selector="set=paging", limit=3, _continue=token
        )
        names += [item.metadata.name for item in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert names == [f"page-{i}" for i in range(7)]
    odd = core.list_namespaced_config_map("default", label_selector="set=paging,odd=1")
    assert [item.metadata.name for item in odd.items] == ["page-1", "page-3", "page-5"]
    by_name = core.list_namespaced_config_map("default", field_selector="metadata.name=page-4")
    assert [item.metadata.name for item in by_name.items] == ["page-4"]
    core.delete_collection_namespaced_config_map("default", label_selector="set=paging")
    assert not core.list_namespaced_config_map("default", label_selector="set=paging").items


def test_watch_from_resource_version(core: kubernetes.client.CoreV1Api) -> None:
    listed = core.list_namespaced_config_map("default")
    core.create_namespaced_config_map(
        "default",
        kubernetes.client.V1ConfigMap(metadata=kubernetes.client.V1ObjectMeta(name="watched-py")),
    )
    core.delete_namespaced_config_map("watched-py", "default")
    watch = kubernetes.watch.Watch()
    seen = [
        (event["type"], event["object"].metadata.name)
        for event in watch.stream(
            core.list_namespaced_config_map,
            "default",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=1,
        )
    ]
    assert seen == [("ADDED", "watched-py"), ("DELETED", "watched-py")]
