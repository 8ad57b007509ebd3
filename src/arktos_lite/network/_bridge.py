"""`BridgeNetwork`: pod networking with the CNI bridge and host-local plugins and nftables.

Each pod gets a network namespace of its own (`ip netns add arktos-<uid>`, its loopback
up) attached by the bridge plugin to its network's bridge (`_model`), with an address
from host-local out of that bridge's slice of the node's pod CIDR. The node's nftables
table (`_nft`) keeps networks apart and translates ClusterIPs. Guarantees:

* Blocking and thread-safe (one lock); the agent calls it from worker threads.
* Persistent: bridges and attachments are recorded in `state.json` under `state_dir`
  (host-local keeps its reservations under `state_dir/ipam`), so a new instance over the
  same directory knows every pod attached before (and puts back guests' bridges a reboot
  of the machine took), and `attach` of a pod already attached returns its attachment
  unchanged.
* `attach_guest` attaches a VM pod without a namespace: its network's bridge is made as
  the bridge plugin makes it (`ip link add … type bridge`, the gateway address with the
  slice's prefix, up, IPv4 forwarding on; the plugin takes such a bridge as its own), an
  address is reserved with host-local alone (CNI ADD with `CNI_NETNS` the node's own
  namespace, where the guest's tap is; host-local never enters it), and the guest's MAC
  address derives from that address (`model.guest_mac`). The VM runtime plugs the guest
  into the bridge; the bridge's rules are every other pod's.
* `detach` runs CNI DEL (the address goes back to host-local), deletes the namespace,
  and deletes the bridge once no pod uses it; it is idempotent.
* A network's slice is the first one neither another of its networks nor any other
  interface of the machine routes (so agents of several clusters on one machine, with
  the same pod CIDR, still get reachable slices).
* `close(keep=False)` detaches whatever is left and deletes the table; `keep=True`
  leaves pods, bridges and rules for the next instance.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from arktos_lite.network import _cni as cni, _model as model, _nft as nft

log = logging.getLogger(__name__)

NETNS_DIR = Path("/run/netns")


class NetworkError(RuntimeError):
    """A pod could not be attached (no pod CIDR yet, no free slice, a plugin failed)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Tools:
    cni_path: str
    ip: str
    nft: str


def detect_tools() -> tuple[Tools | None, str]:
    """The plugins and commands CNI networking needs, or None and why not."""
    if os.geteuid() != 0:
        return None, "not root"
    cni_path = cni.find_plugins()
    if cni_path is None:
        plugins = " and ".join(cni.PLUGINS)
        where = " or ".join(cni.DEFAULT_CNI_PATH)
        return None, f"CNI plugins {plugins} not found in {where}"
    ip, nft_ = shutil.which("ip"), shutil.which("nft")
    if not ip:
        return None, "ip (iproute2) not found"
    if not nft_:
        return None, "nft (nftables) not found"
    return Tools(cni_path, ip, nft_), ""


def _run(argv: list[str], *, input: str | None = None) -> None:
    done = subprocess.run(argv, input=input, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetworkError(f"{' '.join(argv[:4])}: {(done.stderr or done.stdout).strip()}")


class BridgeNetwork:
    """See the module docs. `slice_prefix` is the prefix length of each network's subnet."""

    def __init__(
        self, state_dir: Path, *, node_name: str, tools: Tools, slice_prefix: int = 27
    ) -> None:
        self.state_dir = state_dir
        self.node_name = node_name
        # Bridge and table names hash this: agents over other state directories on the
        # same machine (several clusters, tests) never share a bridge or a table.
        self.identity = f"{node_name}@{state_dir.resolve()}"
        self.tools = tools
        self.slice_prefix = slice_prefix
        self._lock = threading.Lock()
        self._pod_cidr = ""
        self._bridges: dict[str, model.Bridge] = {}
        self._pods: dict[str, model.Attachment] = {}
        self._services: tuple[model.ServicePort, ...] = ()
        self._applied = ""

    @property
    def description(self) -> str:
        cidr = self._pod_cidr or "the node's pod CIDR (not assigned yet)"
        return (
            f"CNI bridge+host-local from {self.tools.cni_path}: a bridge per tenant network "
            f"(VM guests' NICs on it too), addresses from {cidr}, nftables isolation and "
            "ClusterIPs"
        )

    @property
    def pod_cidr(self) -> str:
        return self._pod_cidr

    # ------------------------------------------------------------------ state

    @property
    def _state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def _ipam_dir(self) -> Path:
        return self.state_dir / "ipam"

    def start(self) -> None:
        """Load the state and put the node's table in place."""
        with self._lock:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                data = json.loads(self._state_file.read_text())
                self._pod_cidr = str(data.get("pod_cidr") or "")
                for name, b in (data.get("bridges") or {}).items():
                    key = model.NetworkKey(b["tenant"], b["network"])
                    self._bridges[name] = model.Bridge(name, key, b["subnet"])
                for uid, a in (data.get("pods") or {}).items():
                    self._pods[uid] = model.Attachment.from_json(a)
            # Guests' bridges outlive a reboot of the machine only here: a VM started
            # again (power on, reboot) needs its bridge, and no CNI ADD remakes it.
            for name in sorted({a.bridge for a in self._pods.values() if a.guest}):
                bridge = self._bridges.get(name)
                if bridge is not None:
                    try:
                        self._ensure_bridge(bridge)
                    except NetworkError as e:
                        log.warning("bridge %s of VM pods: %s", name, e)
            self._apply()

    def _save(self) -> None:
        data = {
            "pod_cidr": self._pod_cidr,
            "bridges": {
                b.name: {"tenant": b.key.tenant, "network": b.key.network, "subnet": b.subnet}
                for b in self._bridges.values()
            },
            "pods": {uid: a.to_json() for uid, a in self._pods.items()},
        }
        tmp = self._state_file.with_name("state.json.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self._state_file)

    def _apply(self) -> None:
        table = nft.ruleset(self.identity, self._bridges.values(), self._services)
        if table != self._applied:
            _run([self.tools.nft, "-f", "-"], input=nft.apply_script(self.identity, table))
            self._applied = table

    # ------------------------------------------------------------------ API

    def set_pod_cidr(self, cidr: str) -> None:
        with self._lock:
            if cidr != self._pod_cidr:
                log.info("pod networking of node %s: pod CIDR %s", self.node_name, cidr)
                self._pod_cidr = cidr
                self._save()

    def attachments(self) -> Mapping[str, model.Attachment]:
        with self._lock:
            return dict(self._pods)

    def bridges(self) -> Mapping[str, model.Bridge]:
        with self._lock:
            return dict(self._bridges)

    def set_services(self, services: Iterable[model.ServicePort]) -> None:
        with self._lock:
            self._services = tuple(sorted(services))
            self._apply()

    def attach(self, member: model.Member) -> model.Attachment:
        """The pod's network namespace, attached (NetworkError when it cannot be)."""
        with self._lock:
            known = self._pods.get(member.uid)
            if known is not None and known.netns and Path(known.netns).exists():
                return known
            bridge = self._bridge_for(member.key)
            name = model.netns_name(member.uid)
            netns = str(NETNS_DIR / name)
            if not Path(netns).exists():
                _run([self.tools.ip, "netns", "add", name])
            _run([self.tools.ip, "-n", name, "link", "set", "lo", "up"])
            config = cni.bridge_config(bridge, ipam_dir=self._ipam_dir)
            try:
                result = cni.invoke(
                    "ADD",
                    config,
                    cni_path=self.tools.cni_path,
                    container_id=member.uid,
                    netns=netns,
                    args=_cni_args(member),
                )
            except cni.CNIError as e:
                with contextlib.suppress(NetworkError):
                    _run([self.tools.ip, "netns", "delete", name])
                if not any(a.bridge == bridge.name for a in self._pods.values()):
                    self._bridges.pop(bridge.name, None)
                raise NetworkError(str(e)) from e
            ips = cni.result_ips(result)
            attachment = model.Attachment(
                member.uid, member.key, netns, ips, bridge.name, subnet=bridge.subnet
            )
            self._pods[member.uid] = attachment
            self._save()
            self._apply()
            log.info(
                "pod %s/%s attached to %s (%s)",
                member.namespace,
                member.name,
                bridge.name,
                ", ".join(ips),
            )
            return attachment

    def attach_guest(self, member: model.Member) -> model.Attachment:
        """A VM pod's address and MAC address on its network's bridge, which exists when
        this returns (NetworkError when it cannot be attached)."""
        with self._lock:
            bridge = self._bridge_for(member.key)
            known = self._pods.get(member.uid)
            if known is not None and known.guest:
                # The bridge may be gone with a reboot of the machine; the state is not.
                self._ensure_bridge(bridge)
                return known
            fresh = not Path("/sys/class/net", bridge.name).exists()
            try:
                self._ensure_bridge(bridge)
                result = cni.invoke(
                    "ADD",
                    cni.ipam_config(bridge, ipam_dir=self._ipam_dir),
                    cni_path=self.tools.cni_path,
                    container_id=member.uid,
                    netns=f"/proc/{os.getpid()}/ns/net",
                    args=_cni_args(member),
                )
                ips = cni.result_ips(result)
                if not ips:
                    raise NetworkError(f"host-local gave pod {member.uid} no address")
            except (cni.CNIError, NetworkError) as e:
                if not any(a.bridge == bridge.name for a in self._pods.values()):
                    if fresh:
                        self._delete_bridge(bridge)
                    self._bridges.pop(bridge.name, None)
                raise NetworkError(str(e)) from e
            attachment = model.Attachment(
                member.uid,
                member.key,
                "",
                ips,
                bridge.name,
                mac=model.guest_mac(ips[0]),
                subnet=bridge.subnet,
            )
            self._pods[member.uid] = attachment
            self._save()
            self._apply()
            log.info(
                "VM pod %s/%s attached to %s (%s, %s)",
                member.namespace,
                member.name,
                bridge.name,
                ", ".join(ips),
                attachment.mac,
            )
            return attachment

    def detach(self, uid: str) -> None:
        """Release the pod's address and delete its namespace (idempotent)."""
        with self._lock:
            attachment = self._pods.get(uid)
            if attachment is None:
                return
            bridge = self._bridges.get(attachment.bridge)
            has_netns = bool(attachment.netns) and Path(attachment.netns).exists()
            if bridge is not None:
                if attachment.guest:
                    config = cni.ipam_config(bridge, ipam_dir=self._ipam_dir)
                else:
                    config = cni.bridge_config(bridge, ipam_dir=self._ipam_dir)
                try:
                    cni.invoke(
                        "DEL",
                        config,
                        cni_path=self.tools.cni_path,
                        container_id=uid,
                        netns=attachment.netns if has_netns else "",
                    )
                except cni.CNIError as e:
                    log.warning("CNI DEL of pod %s: %s", uid, e)
            if has_netns:
                try:
                    _run([self.tools.ip, "netns", "delete", Path(attachment.netns).name])
                except NetworkError as e:
                    log.warning("deleting network namespace of pod %s: %s", uid, e)
            del self._pods[uid]
            if bridge is not None and not any(a.bridge == bridge.name for a in self._pods.values()):
                self._delete_bridge(bridge)
            self._save()
            self._apply()

    def close(self, *, keep: bool = False) -> None:
        if keep:
            return
        for uid in list(self.attachments()):
            self.detach(uid)
        with self._lock:
            for bridge in list(self._bridges.values()):
                self._delete_bridge(bridge)
            self._save()
            with contextlib.suppress(NetworkError):
                _run([self.tools.nft, "-f", "-"], input=nft.delete_script(self.identity))
            self._applied = ""

    # ------------------------------------------------------------------ internals

    def _bridge_for(self, key: model.NetworkKey) -> model.Bridge:
        name = model.bridge_name(self.identity, key)
        bridge = self._bridges.get(name)
        if bridge is not None:
            return bridge
        if not self._pod_cidr:
            raise NetworkError(f"node {self.node_name} has no pod CIDR yet")
        used = {b.subnet for b in self._bridges.values()}
        subnet = next(
            (
                s
                for s in model.subnet_slices(self._pod_cidr, self.slice_prefix)
                if s not in used and not self._routed_elsewhere(s, name)
            ),
            None,
        )
        if subnet is None:
            raise NetworkError(
                f"no free /{self.slice_prefix} left in {self._pod_cidr} for network {key}"
            )
        bridge = model.Bridge(name, key, subnet)
        self._bridges[name] = bridge
        log.info("network %s gets bridge %s with %s", key, name, subnet)
        return bridge

    def _routed_elsewhere(self, subnet: str, bridge: str) -> bool:
        """Whether the machine routes part of `subnet` through another interface (another
        cluster's node on the same machine, say): that slice would not be reachable."""
        done = subprocess.run(
            [self.tools.ip, "-4", "-o", "route", "show", "root", subnet],
            capture_output=True,
            text=True,
            check=False,
        )
        for line in done.stdout.splitlines():
            words = line.split()
            dev = words[words.index("dev") + 1] if "dev" in words[:-1] else ""
            if dev != bridge:
                return True
        return False

    def _ensure_bridge(self, bridge: model.Bridge) -> None:
        """The bridge, up with its gateway address, as the bridge plugin would leave it."""
        name = bridge.name
        if not Path("/sys/class/net", name, "bridge").is_dir():
            _run([self.tools.ip, "link", "add", name, "type", "bridge"])
        prefix = ipaddress.ip_network(bridge.subnet).prefixlen
        _run([self.tools.ip, "addr", "replace", f"{bridge.gateway}/{prefix}", "dev", name])
        _run([self.tools.ip, "link", "set", name, "up"])
        # The plugin's isGateway does the same: guests reach beyond their bridge.
        forwarding = Path("/proc/sys/net/ipv4/ip_forward")
        try:
            if forwarding.read_text().strip() != "1":
                forwarding.write_text("1")
        except OSError as e:
            raise NetworkError(f"cannot turn on IPv4 forwarding: {e}") from e

    def _delete_bridge(self, bridge: model.Bridge) -> None:
        # DEL leaves the bridge behind; it goes with its network's last pod.
        if Path("/sys/class/net", bridge.name).exists():
            try:
                _run([self.tools.ip, "link", "delete", bridge.name])
            except NetworkError as e:
                log.warning("deleting bridge %s: %s", bridge.name, e)
        self._bridges.pop(bridge.name, None)
        shutil.rmtree(self._ipam_dir / bridge.name, ignore_errors=True)


def _cni_args(member: model.Member) -> str:
    return (
        f"IgnoreUnknown=1;K8S_POD_NAMESPACE={member.namespace};K8S_POD_NAME={member.name};"
        f"K8S_POD_INFRA_CONTAINER_ID={member.uid}"
    )
