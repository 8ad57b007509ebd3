"""The public face of `arktos_lite.runtime.vm`: what the CLI and `arktos up` code against."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

from arktos_lite import runtime
from arktos_lite.runtime import vm


def test_the_public_names() -> None:
    public = sorted(n for n in dir(vm) if not n.startswith("_") and n != "annotations")
    assert public == [
        "ImageError",
        "ImageKind",
        "VIRTUAL_MACHINE",
        "VM_ID",
        "VM_POWER_STATE",
        "VM_RESTART_COUNT",
        "VM_STATE",
        "VmImage",
        "VmRuntime",
        "VmRuntimeConfig",
        "import_vm_image",
        "libvirt_missing",
    ]


def test_annotation_keys_are_the_protocol_s() -> None:
    assert vm.VM_ID == runtime.VM_ID
    assert vm.VM_STATE == runtime.VM_STATE
    assert vm.VM_POWER_STATE == runtime.VM_POWER_STATE
    assert vm.VM_RESTART_COUNT == runtime.VM_RESTART_COUNT
    assert vm.VIRTUAL_MACHINE == "arktos.futurewei.com/virtual-machine"


def test_config_defaults() -> None:
    config = vm.VmRuntimeConfig(Path("/r"), Path("/s.sock"))
    assert config.libvirt_uri == "qemu:///embed?root=/r/libvirt"
    assert vm.VmRuntimeConfig(Path("/r"), Path("/s"), uri="test:///default").libvirt_uri == (
        "test:///default"
    )
    fields = {f.name: f for f in dataclasses.fields(vm.VmRuntimeConfig)}
    assert all(f.kw_only for name, f in fields.items() if name not in {"root_dir", "socket_path"})


def test_signatures() -> None:
    params = inspect.signature(vm.import_vm_image).parameters
    assert list(params) == ["root_dir", "path", "name", "kind", "initrd", "cmdline"]
    assert params["name"].kind is inspect.Parameter.KEYWORD_ONLY
    assert list(inspect.signature(vm.VmRuntime.run).parameters) == ["self", "task_status"]
