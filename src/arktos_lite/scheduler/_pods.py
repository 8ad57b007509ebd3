"""What the scheduler reads from a pod, parsed once per pod version into frozen values.

`PodInfo.parse` turns a pod object into the values every plugin needs: its resource
requests, tolerations, node selector and node affinity, pod (anti-)affinity terms and
topology spread constraints. Guarantees:

* Requests are kube-scheduler's: the larger of the sum of the app containers (sidecars,
  i.e. restartable init containers, included) and the largest init container (plus the
  sidecars started before it), plus `spec.overhead`. A VM pod's requests are those of
  `spec.virtualMachine.resources`: Arktos schedules a VM and containers alike. A resource
  given only as a limit counts as requested at its limit, as API defaulting makes it.
* cpu is counted in millicores and every other resource in whole units, rounded up, as
  apimachinery's `MilliValue` and `Value` do.
* For scoring, a workload that requests no cpu counts as 100m and one that requests no
  memory as 200Mi (kube-scheduler's non-zero defaults), so empty pods still spread.
* A pod whose fields cannot be read (a quantity or selector the API server would have
  refused) gets `error` set instead of raising: the scheduler reports it on the pod.
* Affinity terms only ever match pods of the same tenant: a tenant's placement rules can
  neither see nor be steered by another tenant's pods.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
from collections.abc import Mapping
from typing import Any

# Quantities are parsed by the API's own parser, which `arktos_lite.api` does not export
# by name: the module is imported whole, so that both read `250m` alike.
from arktos_lite.api import _validation as validation, resources, selectors

Obj = dict[str, Any]

DEFAULT_SCHEDULER = "default-scheduler"

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL_STORAGE = "ephemeral-storage"
PODS = "pods"

# kube-scheduler's defaults for workloads that request nothing (scoring only).
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024


class PodParseError(ValueError):
    """A pod field the scheduler needs cannot be read."""


# Quantities


@functools.lru_cache(maxsize=4096)
def _quantity(text: str, milli: bool) -> int:
    try:
        value = validation.parse_quantity(text)
    except validation.QuantityError as exc:
        raise PodParseError(f"quantity {text!r}: {exc}") from None
    return math.ceil(value * 1000) if milli else math.ceil(value)


def quantity(value: Any, *, milli: bool = False) -> int:
    """A quantity from JSON (`"250m"`, `"1Gi"`, or a number) as an int, rounded up."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PodParseError(f"quantity {value!r} is not a string or a number")
    return _quantity(value if isinstance(value, str) else repr(value), milli)


@dataclasses.dataclass(frozen=True, slots=True)
class Resources:
    """Amounts of resources: cpu in millicores, the rest in units; `scalar` holds the
    others (extended resources, hugepages) as sorted `(name, amount)` pairs."""

    milli_cpu: int = 0
    memory: int = 0
    ephemeral_storage: int = 0
    scalar: tuple[tuple[str, int], ...] = ()

    @property
    def is_zero(self) -> bool:
        return not (
            self.milli_cpu
            or self.memory
            or self.ephemeral_storage
            or any(amount for _, amount in self.scalar)
        )

    @classmethod
    def from_list(cls, listed: Mapping[str, Any] | None) -> Resources:
        """From a `ResourceList` (`{"cpu": "1", "memory": "1Gi", ...}`); `pods` is left out."""
        return _Sum().add(listed).freeze()


class _Sum:
    """A mutable accumulator of resources, frozen into `Resources` at the end."""

    __slots__ = ("cpu", "eph", "mem", "scalar")

    def __init__(self) -> None:
        self.cpu = 0
        self.mem = 0
        self.eph = 0
        self.scalar: dict[str, int] = {}

    def add(self, listed: Mapping[str, Any] | None) -> _Sum:
        for name, value in (listed or {}).items():
            if name == CPU:
                self.cpu += quantity(value, milli=True)
            elif name == MEMORY:
                self.mem += quantity(value)
            elif name == EPHEMERAL_STORAGE:
                self.eph += quantity(value)
            elif name != PODS:
                self.scalar[name] = self.scalar.get(name, 0) + quantity(value)
        return self

    def add_sum(self, other: _Sum) -> None:
        self.cpu += other.cpu
        self.mem += other.mem
        self.eph += other.eph
        for name, amount in other.scalar.items():
            self.scalar[name] = self.scalar.get(name, 0) + amount

    def max_with(self, other: _Sum) -> None:
        self.cpu = max(self.cpu, other.cpu)
        self.mem = max(self.mem, other.mem)
        self.eph = max(self.eph, other.eph)
        for name, amount in other.scalar.items():
            self.scalar[name] = max(self.scalar.get(name, 0), amount)

    def copy(self) -> _Sum:
        copied = _Sum()
        copied.add_sum(self)
        return copied

    def freeze(self) -> Resources:
        return Resources(
            milli_cpu=self.cpu,
            memory=self.mem,
            ephemeral_storage=self.eph,
            scalar=tuple(sorted(self.scalar.items())),
        )


def _workload_requests(workload: Mapping[str, Any], *, non_zero: bool) -> _Sum:
    res = workload.get("resources") or {}
    # Requests default to limits (API defaulting does this for containers; a VM, or an
    # object that never went through the API, is read the same way).
    listed = {**(res.get("limits") or {}), **(res.get("requests") or {})}
    if non_zero:
        listed.setdefault(CPU, f"{DEFAULT_MILLI_CPU_REQUEST}m")
        listed.setdefault(MEMORY, str(DEFAULT_MEMORY_REQUEST))
    return _Sum().add(listed)


def _pod_requests(spec: Mapping[str, Any], *, non_zero: bool) -> _Sum:
    """kube's `PodRequests`; with `non_zero`, a workload missing a cpu or memory request
    counts the default instead."""
    vm = spec.get("virtualMachine")
    total = _Sum()
    for workload in [vm] if vm else spec.get("containers") or ():
        total.add_sum(_workload_requests(workload, non_zero=non_zero))
    sidecars = _Sum()
    init_max = _Sum()
    for container in spec.get("initContainers") or ():
        one = _workload_requests(container, non_zero=non_zero)
        if container.get("restartPolicy") == "Always":
            # A sidecar runs beside the app containers from its start on.
            total.add_sum(one)
            sidecars.add_sum(one)
            during = sidecars.copy()
        else:
            during = one
            during.add_sum(sidecars)
        init_max.max_with(during)
    total.max_with(init_max)
    total.add(spec.get("overhead"))
    return total


def _requests(spec: Mapping[str, Any]) -> tuple[Resources, int, int]:
    """(requests, non-zero milli cpu, non-zero memory) of a pod spec."""
    non_zero = _pod_requests(spec, non_zero=True)
    return _pod_requests(spec, non_zero=False).freeze(), non_zero.cpu, non_zero.mem


# Taints and tolerations


class TaintEffect(enum.StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


@dataclasses.dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str

    @classmethod
    def parse(cls, taint: Mapping[str, Any]) -> Taint:
        return cls(
            key=str(taint.get("key") or ""),
            value=str(taint.get("value") or ""),
            effect=str(taint.get("effect") or ""),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Toleration:
    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    @classmethod
    def parse(cls, toleration: Mapping[str, Any]) -> Toleration:
        return cls(
            key=str(toleration.get("key") or ""),
            operator=str(toleration.get("operator") or "Equal"),
            value=str(toleration.get("value") or ""),
            effect=str(toleration.get("effect") or ""),
        )

    def tolerates(self, taint: Taint) -> bool:
        """As `v1.Toleration.ToleratesTaint`: an empty key with `Exists` tolerates all."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.operator == "Equal" and self.value == taint.value


def tolerated(tolerations: tuple[Toleration, ...], taint: Taint) -> bool:
    return any(toleration.tolerates(taint) for toleration in tolerations)


# Node selectors

_NODE_OPERATORS = {
    "In": selectors.LabelOperator.IN,
    "NotIn": selectors.LabelOperator.NOT_IN,
    "Exists": selectors.LabelOperator.EXISTS,
    "DoesNotExist": selectors.LabelOperator.DOES_NOT_EXIST,
    "Gt": selectors.LabelOperator.GREATER_THAN,
    "Lt": selectors.LabelOperator.LESS_THAN,
}
NODE_NAME_FIELD = "metadata.name"


def _requirement(expression: Mapping[str, Any]) -> selectors.LabelRequirement:
    operator = _NODE_OPERATORS.get(str(expression.get("operator")))
    if operator is None:
        raise PodParseError(f"node selector operator {expression.get('operator')!r}")
    try:
        return selectors.LabelRequirement(
            str(expression.get("key") or ""), operator, tuple(expression.get("values") or ())
        )
    except (selectors.SelectorError, TypeError) as exc:
        raise PodParseError(f"node selector requirement: {exc}") from None


@dataclasses.dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """The AND of label requirements and field requirements (only `metadata.name`)."""

    labels: tuple[selectors.LabelRequirement, ...] = ()
    fields: tuple[selectors.LabelRequirement, ...] = ()

    @classmethod
    def parse(cls, term: Mapping[str, Any]) -> NodeSelectorTerm:
        fields = tuple(_requirement(e) for e in term.get("matchFields") or ())
        if any(f.key != NODE_NAME_FIELD for f in fields):
            raise PodParseError(f"node field selectors support only {NODE_NAME_FIELD}")
        return cls(
            labels=tuple(_requirement(e) for e in term.get("matchExpressions") or ()), fields=fields
        )

    def matches(self, labels: Mapping[str, str], name: str) -> bool:
        # A term that says nothing selects nothing (as in Kubernetes).
        if not self.labels and not self.fields:
            return False
        if not all(r.matches(labels) for r in self.labels):
            return False
        return not self.fields or all(r.matches({NODE_NAME_FIELD: name}) for r in self.fields)

    def node_names(self) -> frozenset[str] | None:
        """The only node names the term can match, when an `In` on the name pins them."""
        names: frozenset[str] | None = None
        for field in self.fields:
            if field.operator is selectors.LabelOperator.IN:
                values = frozenset(field.values)
                names = values if names is None else names & values
        return names


@dataclasses.dataclass(frozen=True, slots=True)
class NodeSelector:
    """The OR of terms: `requiredDuringSchedulingIgnoredDuringExecution`."""

    terms: tuple[NodeSelectorTerm, ...]

    def matches(self, labels: Mapping[str, str], name: str) -> bool:
        return any(term.matches(labels, name) for term in self.terms)

    def node_names(self) -> frozenset[str] | None:
        """Node names outside which no term matches, if every term pins names."""
        names: set[str] = set()
        for term in self.terms:
            pinned = term.node_names()
            if pinned is None:
                return None
            names |= pinned
        return frozenset(names)


@dataclasses.dataclass(frozen=True, slots=True)
class PreferredNodeTerm:
    weight: int
    term: NodeSelectorTerm


# Pod affinity


@dataclasses.dataclass(frozen=True, slots=True)
class AffinityTerm:
    """A pod (anti-)affinity term of a pod in `tenant`.

    `namespaces` None means every namespace of the tenant (`namespaceSelector: {}`);
    `namespace_selector` is matched against the labels of the other pod's namespace.
    """

    tenant: str
    selector: selectors.LabelSelector | None
    namespaces: frozenset[str] | None
    namespace_selector: selectors.LabelSelector | None
    topology_key: str
    weight: int = 1

    def matches(self, pod: PodInfo, namespace_labels: Mapping[str, str] | None = None) -> bool:
        """Whether `pod` is one this term speaks of."""
        if pod.tenant != self.tenant or self.selector is None:
            return False
        in_namespace = self.namespaces is not None and pod.namespace in self.namespaces
        if not in_namespace:
            if self.namespace_selector is None:
                if self.namespaces is not None:
                    return False
            elif namespace_labels is None or not self.namespace_selector.matches(namespace_labels):
                return False
        return self.selector.matches(pod.labels)


def _label_selector(value: Any) -> selectors.LabelSelector | None:
    if value is None:
        return None
    try:
        return selectors.LabelSelector.from_dict(value)
    except selectors.SelectorError as exc:
        raise PodParseError(f"label selector: {exc}") from None


def _affinity_term(
    term: Mapping[str, Any], *, tenant: str, namespace: str, weight: int = 1
) -> AffinityTerm:
    listed = frozenset(str(n) for n in term.get("namespaces") or ())
    namespace_selector = _label_selector(term.get("namespaceSelector"))
    namespaces: frozenset[str] | None
    if namespace_selector is not None and namespace_selector.empty:
        # `{}` selects every namespace (of the tenant).
        namespaces, namespace_selector = None, None
    elif listed or namespace_selector is not None:
        namespaces = listed
    else:
        namespaces = frozenset({namespace})
    return AffinityTerm(
        tenant=tenant,
        selector=_label_selector(term.get("labelSelector")),
        namespaces=namespaces,
        namespace_selector=namespace_selector,
        topology_key=str(term.get("topologyKey") or ""),
        weight=weight,
    )


def _affinity_terms(
    affinity: Mapping[str, Any] | None, *, tenant: str, namespace: str
) -> tuple[tuple[AffinityTerm, ...], tuple[AffinityTerm, ...]]:
    """(required, preferred) terms of a `podAffinity` or `podAntiAffinity`."""
    if not affinity:
        return (), ()
    required = tuple(
        _affinity_term(t, tenant=tenant, namespace=namespace)
        for t in affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or ()
    )
    preferred = tuple(
        _affinity_term(
            w.get("podAffinityTerm") or {},
            tenant=tenant,
            namespace=namespace,
            weight=int(w.get("weight") or 0),
        )
        for w in affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
    )
    return required, preferred


# Topology spread


@dataclasses.dataclass(frozen=True, slots=True)
class SpreadConstraint:
    max_skew: int
    topology_key: str
    when_unsatisfiable: str
    selector: selectors.LabelSelector | None
    min_domains: int = 1
    # Whether the pod's node selector and affinity narrow the domains counted (Honor).
    honor_node_affinity: bool = True
    # Whether nodes with taints the pod does not tolerate are left out (Honor).
    honor_node_taints: bool = False

    @property
    def hard(self) -> bool:
        return self.when_unsatisfiable == "DoNotSchedule"


def _spread_constraints(
    spec: Mapping[str, Any], labels: Mapping[str, str]
) -> tuple[SpreadConstraint, ...]:
    found = []
    for raw in spec.get("topologySpreadConstraints") or ():
        selector = _label_selector(raw.get("labelSelector"))
        match_keys = raw.get("matchLabelKeys") or ()
        if selector is not None and match_keys:
            # matchLabelKeys adds `key in (the pod's value)` for each key the pod has.
            extra = tuple(
                selectors.LabelRequirement(k, selectors.LabelOperator.IN, (labels[k],))
                for k in match_keys
                if k in labels
            )
            selector = selectors.LabelSelector(selector.requirements + extra)
        found.append(
            SpreadConstraint(
                max_skew=int(raw.get("maxSkew") or 1),
                topology_key=str(raw.get("topologyKey") or ""),
                when_unsatisfiable=str(raw.get("whenUnsatisfiable") or "DoNotSchedule"),
                selector=selector,
                min_domains=int(raw.get("minDomains") or 1),
                honor_node_affinity=raw.get("nodeAffinityPolicy", "Honor") == "Honor",
                honor_node_taints=raw.get("nodeTaintsPolicy", "Ignore") == "Honor",
            )
        )
    return tuple(found)


# The pod


def pod_key(obj: Mapping[str, Any]) -> str:
    """`tenant/namespace/name`, the key informers give pods."""
    meta = obj.get("metadata") or {}
    tenant = meta.get("tenant") or resources.SYSTEM_TENANT
    return f"{tenant}/{meta.get('namespace') or ''}/{meta.get('name') or ''}"


_TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


@dataclasses.dataclass(frozen=True, slots=True)
class PodInfo:
    """One version of a pod as the scheduler reads it. See the module docs."""

    key: str
    uid: str
    tenant: str
    namespace: str
    name: str
    obj: Obj
    labels: Mapping[str, str]
    scheduler_name: str
    node_name: str
    priority: int
    terminating: bool
    terminal: bool
    is_vm: bool
    requests: Resources
    non_zero_milli_cpu: int
    non_zero_memory: int
    tolerations: tuple[Toleration, ...]
    node_selector: Mapping[str, str]
    required_node_affinity: NodeSelector | None
    preferred_node_affinity: tuple[PreferredNodeTerm, ...]
    required_affinity: tuple[AffinityTerm, ...]
    preferred_affinity: tuple[AffinityTerm, ...]
    required_anti_affinity: tuple[AffinityTerm, ...]
    preferred_anti_affinity: tuple[AffinityTerm, ...]
    spread_constraints: tuple[SpreadConstraint, ...]
    error: str | None = None

    @property
    def resource_version(self) -> str:
        return str((self.obj.get("metadata") or {}).get("resourceVersion") or "")

    @property
    def has_affinity(self) -> bool:
        """Whether the pod has pod affinity or anti-affinity of any kind."""
        return bool(
            self.required_affinity
            or self.preferred_affinity
            or self.required_anti_affinity
            or self.preferred_anti_affinity
        )

    @classmethod
    def parse(cls, obj: Obj) -> PodInfo:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        tenant = str(meta.get("tenant") or resources.SYSTEM_TENANT)
        namespace = str(meta.get("namespace") or "")
        labels = meta.get("labels") or {}
        error = None
        try:
            parts = _parse_spec(spec, labels, tenant=tenant, namespace=namespace)
        except (PodParseError, TypeError, ValueError, AttributeError) as exc:
            parts, error = _SpecParts(), str(exc)
        return cls(
            key=pod_key(obj),
            uid=str(meta.get("uid") or ""),
            tenant=tenant,
            namespace=namespace,
            name=str(meta.get("name") or ""),
            obj=obj,
            labels=labels,
            scheduler_name=str(spec.get("schedulerName") or DEFAULT_SCHEDULER),
            node_name=str(spec.get("nodeName") or ""),
            priority=_int(spec.get("priority")),
            terminating=bool(meta.get("deletionTimestamp")),
            terminal=status.get("phase") in _TERMINAL_PHASES,
            is_vm=bool(spec.get("virtualMachine")),
            requests=parts.requests,
            non_zero_milli_cpu=parts.non_zero_milli_cpu,
            non_zero_memory=parts.non_zero_memory,
            tolerations=parts.tolerations,
            node_selector=parts.node_selector,
            required_node_affinity=parts.required_node_affinity,
            preferred_node_affinity=parts.preferred_node_affinity,
            required_affinity=parts.required_affinity,
            preferred_affinity=parts.preferred_affinity,
            required_anti_affinity=parts.required_anti_affinity,
            preferred_anti_affinity=parts.preferred_anti_affinity,
            spread_constraints=parts.spread_constraints,
            error=error,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class _SpecParts:
    requests: Resources = Resources()
    non_zero_milli_cpu: int = 0
    non_zero_memory: int = 0
    tolerations: tuple[Toleration, ...] = ()
    node_selector: Mapping[str, str] = dataclasses.field(default_factory=dict)
    required_node_affinity: NodeSelector | None = None
    preferred_node_affinity: tuple[PreferredNodeTerm, ...] = ()
    required_affinity: tuple[AffinityTerm, ...] = ()
    preferred_affinity: tuple[AffinityTerm, ...] = ()
    required_anti_affinity: tuple[AffinityTerm, ...] = ()
    preferred_anti_affinity: tuple[AffinityTerm, ...] = ()
    spread_constraints: tuple[SpreadConstraint, ...] = ()


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _parse_spec(
    spec: Mapping[str, Any], labels: Mapping[str, str], *, tenant: str, namespace: str
) -> _SpecParts:
    requests, nz_cpu, nz_mem = _requests(spec)
    affinity = spec.get("affinity") or {}
    node_affinity = affinity.get("nodeAffinity") or {}
    required_nodes = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    required_node_affinity = None
    if required_nodes is not None:
        required_node_affinity = NodeSelector(
            tuple(NodeSelectorTerm.parse(t) for t in required_nodes.get("nodeSelectorTerms") or ())
        )
    preferred_nodes = tuple(
        PreferredNodeTerm(
            weight=int(p.get("weight") or 0), term=NodeSelectorTerm.parse(p.get("preference") or {})
        )
        for p in node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
    )
    required_affinity, preferred_affinity = _affinity_terms(
        affinity.get("podAffinity"), tenant=tenant, namespace=namespace
    )
    required_anti, preferred_anti = _affinity_terms(
        affinity.get("podAntiAffinity"), tenant=tenant, namespace=namespace
    )
    return _SpecParts(
        requests=requests,
        non_zero_milli_cpu=nz_cpu,
        non_zero_memory=nz_mem,
        tolerations=tuple(Toleration.parse(t) for t in spec.get("tolerations") or ()),
        node_selector={str(k): str(v) for k, v in (spec.get("nodeSelector") or {}).items()},
        required_node_affinity=required_node_affinity,
        preferred_node_affinity=preferred_nodes,
        required_affinity=required_affinity,
        preferred_affinity=preferred_affinity,
        required_anti_affinity=required_anti,
        preferred_anti_affinity=preferred_anti,
        spread_constraints=_spread_constraints(spec, labels),
    )
