"""The VM runtime: CRI (with Arktos' VM calls) over a unix socket, VMs as libvirt domains."""

from __future__ import annotations

from arktos_lite.runtime.vm._config import VmRuntimeConfig as VmRuntimeConfig
from arktos_lite.runtime.vm._images import (
    ImageError as ImageError,
    ImageKind as ImageKind,
    VmImage as VmImage,
    import_vm_image as import_vm_image,
)
from arktos_lite.runtime.vm._manager import (
    VIRTUAL_MACHINE as VIRTUAL_MACHINE,
    VM_ID as VM_ID,
    VM_POWER_STATE as VM_POWER_STATE,
    VM_RESTART_COUNT as VM_RESTART_COUNT,
    VM_STATE as VM_STATE,
)
from arktos_lite.runtime.vm._runtime import (
    VmRuntime as VmRuntime,
    libvirt_missing as libvirt_missing,
)
