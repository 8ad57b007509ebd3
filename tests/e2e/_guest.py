"""A tiny real guest for the VM runtime: Debian's cloud kernel and a busybox initramfs.

`build_guest(directory)` leaves `vmlinuz` and `initrd.gz` in `directory` (built once: a
finished build is reused) and returns them with the seconds the build took. The kernel
comes from Debian's `linux-image-<version>-cloud-amd64` package (`apt-get download`,
`dpkg -x`, nothing installed); the initramfs (newc cpio via `busybox cpio`, gzip) holds
busybox-static, the virtio (block and net) and ACPI button modules of the same kernel,
and an `/init` that starts `acpid` (so ACPI reboot and shutdown work), configures the
NIC the kernel's `ip=` parameter names (static address, default route; `NET_MARKER`
then says which), prints `BOOT_MARKER` and then `COUNTER_PREFIX<n>` every 0.5 s on the
serial console (ttyS0). A build is reused while its recipe (init, modules) is the same.

`GuestUnavailable` says why the guest cannot be built here (no apt, no network, no
busybox-static); tests skip on it outside CI and fail in CI.
"""

from __future__ import annotations

import dataclasses
import fcntl
import gzip
import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

BOOT_MARKER = "ARKTOS-GUEST-BOOTED"
NET_MARKER = "ARKTOS-GUEST-NET "
COUNTER_PREFIX = "ARKTOS-GUEST-COUNT "
BUSYBOX = pathlib.Path("/bin/busybox")
# The kernel command line to import the guest with: `quiet`, since every console line
# costs time under TCG.
CMDLINE = "console=ttyS0 quiet"

# Load order matters: each module after the ones it needs.
_MODULES = (
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "drivers/block/virtio_blk.ko",
    # virtio_net needs net_failover, which needs failover (`modinfo -F depends`).
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
    "drivers/input/evdev.ko",
    "drivers/acpi/button.ko",
)

_INIT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in {" ".join("/lib/modules/" + pathlib.PurePath(m).name for m in _MODULES)}; do
  insmod "$m" 2>/dev/null
done
# busybox acpid reads the power button from /dev/input/event* (evdev) and runs
# /etc/acpi/PWRF/00000080; without a log target it ignores the button. libvirt's ACPI
# reboot is a power-off that it turns into a reset, so the handler powers off.
acpid -l /dev/console
# The pod network's address, from the kernel's ip=<addr>::<gw>:<netmask>::<dev>:off
# (Debian's kernel has no IP autoconfiguration: this is its initramfs's job).
for word in $(cat /proc/cmdline); do
  case "$word" in ip=*)
    IFS=: read -r addr _ gw mask _ dev _ <<EOF
${{word#ip=}}
EOF
    dev=${{dev:-eth0}}
    ifconfig "$dev" "$addr" netmask "$mask" up
    [ -n "$gw" ] && route add default gw "$gw"
    echo "{NET_MARKER}$dev $addr"
  ;;
  esac
done
echo {BOOT_MARKER}
n=0
while true; do
  echo "{COUNTER_PREFIX}$n"
  n=$((n + 1))
  sleep 0.5
done
"""


class GuestUnavailable(Exception):
    """The guest cannot be built on this machine (the message says why)."""


@dataclasses.dataclass(frozen=True)
class Guest:
    kernel: pathlib.Path
    initrd: pathlib.Path
    # Seconds the build took; 0.0 when a previous build was reused.
    build_seconds: float


def _run(*argv: str, cwd: pathlib.Path | None = None) -> str:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise GuestUnavailable(
            f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()[-500:]}"
        )
    return result.stdout


def kernel_package() -> str:
    """The versioned package `linux-image-cloud-amd64` currently depends on."""
    if shutil.which("apt-cache") is None or shutil.which("apt-get") is None:
        raise GuestUnavailable("apt is not available to fetch Debian's cloud kernel")
    for line in _run("apt-cache", "depends", "linux-image-cloud-amd64").splitlines():
        name = line.strip().removeprefix("Depends:").strip()
        if line.strip().startswith("Depends:") and name.startswith("linux-image-"):
            return name
    raise GuestUnavailable("apt-cache knows no linux-image-cloud-amd64 (no Debian sources?)")


def _initramfs(tree: pathlib.Path, modules: pathlib.Path, target: pathlib.Path) -> None:
    root = tree / "initramfs"
    for sub in ("bin", "dev", "proc", "sys", "lib/modules", "etc/acpi/PWRF"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for module in _MODULES:
        shutil.copy2(modules / "kernel" / module, root / "lib" / "modules")
    power = root / "etc" / "acpi" / "PWRF" / "00000080"
    power.write_text("#!/bin/busybox sh\n/bin/busybox poweroff -f\n")
    power.chmod(0o755)
    init = root / "init"
    init.write_text(_INIT)
    init.chmod(0o755)
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    cpio = subprocess.run(
        [str(BUSYBOX), "cpio", "-o", "-H", "newc"],
        cwd=root,
        input="\n".join(names).encode() + b"\n",
        capture_output=True,
        check=False,
    )
    if cpio.returncode != 0:
        raise GuestUnavailable(f"busybox cpio failed: {cpio.stderr.decode(errors='replace')}")
    with gzip.open(target, "wb", compresslevel=6) as out:
        out.write(cpio.stdout)


def build_guest(directory: pathlib.Path) -> Guest:
    """The guest's kernel and initrd in `directory`, built unless a finished build is there."""
    directory.mkdir(parents=True, exist_ok=True)
    kernel, initrd = directory / "vmlinuz", directory / "initrd.gz"
    # A lock, since xdist workers or parallel sessions may share the cache directory.
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # A build of another recipe (an older /init, other modules) is built again.
        recipe = directory / "recipe"
        stamp = hashlib.sha256(repr((_INIT, _MODULES)).encode()).hexdigest()
        current = recipe.read_text() if recipe.exists() else ""
        if kernel.exists() and initrd.exists() and current == stamp:
            return Guest(kernel, initrd, 0.0)
        kernel.unlink(missing_ok=True)
        if not BUSYBOX.exists():
            raise GuestUnavailable(f"{BUSYBOX} is missing (install busybox-static)")
        started = time.monotonic()
        package = kernel_package()
        with tempfile.TemporaryDirectory(prefix="arktos-guest-") as tmp:
            tree = pathlib.Path(tmp)
            _run("apt-get", "download", package, cwd=tree)
            debs = sorted(tree.glob(f"{package}_*.deb"))
            if not debs:
                raise GuestUnavailable(f"apt-get download {package} left no .deb")
            _run("dpkg", "-x", str(debs[0]), str(tree / "x"))
            vmlinuz = sorted((tree / "x" / "boot").glob("vmlinuz-*"))
            module_dirs = sorted((tree / "x" / "lib" / "modules").iterdir())
            if not vmlinuz or not module_dirs:
                raise GuestUnavailable(f"{package} holds no kernel or modules")
            _initramfs(tree, module_dirs[0], tree / "initrd.gz")
            # Renamed last: the kernel's presence marks a finished build.
            os.replace(tree / "initrd.gz", initrd)
            shutil.copyfile(vmlinuz[0], directory / "vmlinuz.tmp")
            os.replace(directory / "vmlinuz.tmp", kernel)
            recipe.write_text(stamp)
        return Guest(kernel, initrd, time.monotonic() - started)
