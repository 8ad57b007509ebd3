"""Kubernetes protobuf request bodies, read into the JSON form of the same object.

kubectl's typed commands (`kubectl create namespace|configmap|secret|serviceaccount|service|
deployment|job|cronjob|quota`) send `application/vnd.kubernetes.protobuf` bodies and have no
JSON fallback. `decode` turns such a body into the dict kube-apiserver would have got had
the client sent the object as JSON: camelCase names, Go's `omitempty` rules (zero values
left out, but structs kept, `creationTimestamp: null`, `resources: {}`), pointers kept
exactly when set, int-or-string as a number or a string, quantities as strings, times as
RFC 3339, bytes as base64 and protobuf maps as objects.

The body is the envelope of `k8s.io/apimachinery/pkg/runtime/serializer/protobuf`: the magic
`k8s\\x00`, then a `runtime.Unknown` holding the type, the raw message and its encoding. A
small wire-format reader walks the messages; `_TABLE` declares, like generated.proto does,
every field of the messages these commands produce (field numbers as in Kubernetes 1.32).

Nothing is dropped silently: a field number or a message type the table does not know is
an `UnsupportedMediaType` that names it and tells the user to send JSON instead; bytes that
are not protobuf are a `BadRequest`.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from arktos_lite.api import _errors as errors

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_SEND_JSON = (
    "send the object as JSON instead, for example: "
    "kubectl create ... --dry-run=client -o yaml | kubectl create -f -"
)


# The wire format.


class WireType(enum.IntEnum):
    VARINT = 0
    I64 = 1
    LEN = 2
    I32 = 5


@dataclasses.dataclass(frozen=True, slots=True)
class WireField:
    """One field as it sits on the wire: an unsigned integer, or the bytes of a LEN field."""

    number: int
    wire_type: WireType
    value: int | bytes


def _malformed(why: str) -> errors.BadRequest:
    return errors.BadRequest(f"the protobuf body is malformed: {why}")


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The unsigned varint at `pos` and the position after it."""
    value = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise _malformed("a varint runs past the end of the data")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift >= 70:
            raise _malformed("a varint is longer than 10 bytes")
    if value >= 1 << 64:
        raise _malformed("a varint does not fit in 64 bits")
    return value, pos


def iter_fields(data: bytes) -> Iterator[WireField]:
    """Every field of one message, in wire order."""
    pos = 0
    end = len(data)
    while pos < end:
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if not 0 < number < 1 << 29:
            raise _malformed(f"field number {number} is out of range")
        value: int | bytes
        if wire == WireType.VARINT:
            value, pos = read_varint(data, pos)
        elif wire in (WireType.I64, WireType.I32):
            size = 8 if wire == WireType.I64 else 4
            if pos + size > end:
                raise _malformed(f"field {number} runs past the end of the data")
            value = int.from_bytes(data[pos : pos + size], "little")
            pos += size
        elif wire == WireType.LEN:
            length, pos = read_varint(data, pos)
            if length > end - pos:
                raise _malformed(f"field {number} runs past the end of the data")
            value = data[pos : pos + length]
            pos += length
        else:
            # Groups (3 and 4) are not used by Kubernetes; 6 and 7 do not exist.
            raise _malformed(f"field {number} has wire type {wire}")
        yield WireField(number, WireType(wire), value)


def _iter_packed(data: bytes) -> Iterator[int]:
    pos = 0
    while pos < len(data):
        value, pos = read_varint(data, pos)
        yield value


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


# The table of messages.


class Kind(enum.Enum):
    STRING = "string"
    BYTES = "bytes"
    BOOL = "bool"
    INT32 = "int32"
    INT64 = "int64"
    MESSAGE = "message"


class Presence(enum.Enum):
    """How Go's encoding/json writes the field, which decides what `decode` returns."""

    OMITEMPTY = "omitempty"  # left out when zero; a struct is still written (`{}`)
    ALWAYS = "always"  # no omitempty: zero scalars written, empty lists and maps as null
    POINTER = "pointer"  # a Go pointer: written exactly when the body sets it
    INLINE = "inline"  # an embedded struct whose fields sit in the parent object


_SCALARS = {kind.value: kind for kind in Kind if kind is not Kind.MESSAGE}
_VARINT_KINDS = frozenset({Kind.BOOL, Kind.INT32, Kind.INT64})


@dataclasses.dataclass(frozen=True, slots=True)
class Field:
    number: int
    name: str
    kind: Kind
    message: str = ""  # the message type, for Kind.MESSAGE
    repeated: bool = False
    map: bool = False  # map<string, kind/message>
    presence: Presence = Presence.OMITEMPTY


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    name: str
    package: str
    fields: tuple[Field, ...]
    by_number: Mapping[int, Field] = dataclasses.field(compare=False, repr=False)

    @property
    def full_name(self) -> str:
        return f"{self.package}.{self.name}"


# Each message lists its fields in generated.proto's order, which is the Go struct's order
# and so the order of the JSON form: `number name type [repeated|map] [presence]`.
_TABLE = """
package k8s.io.apimachinery.pkg.runtime

Unknown
  1  typeMeta                        TypeMeta
  2  raw                             bytes
  3  contentEncoding                 string
  4  contentType                     string

TypeMeta
  1  apiVersion                      string
  2  kind                            string

package k8s.io.apimachinery.pkg.util.intstr

IntOrString
  1  type                            int64
  2  intVal                          int32
  3  strVal                          string

package k8s.io.apimachinery.pkg.api.resource

Quantity
  1  string                          string

package k8s.io.apimachinery.pkg.apis.meta.v1

Time
  1  seconds                         int64
  2  nanos                           int32

FieldsV1
  1  Raw                             bytes

ObjectMeta
  1  name                            string
  2  generateName                    string
  3  namespace                       string
  4  selfLink                        string
  5  uid                             string
  6  resourceVersion                 string
  7  generation                      int64
  8  creationTimestamp               Time
  9  deletionTimestamp               Time             pointer
  10 deletionGracePeriodSeconds      int64            pointer
  11 labels                          string           map
  12 annotations                     string           map
  13 ownerReferences                 OwnerReference   repeated
  14 finalizers                      string           repeated
  17 managedFields                   ManagedFieldsEntry repeated

OwnerReference
  5  apiVersion                      string           always
  1  kind                            string           always
  3  name                            string           always
  4  uid                             string           always
  6  controller                      bool             pointer
  7  blockOwnerDeletion              bool             pointer

ManagedFieldsEntry
  1  manager                         string
  2  operation                       string
  3  apiVersion                      string
  4  time                            Time             pointer
  6  fieldsType                      string
  7  fieldsV1                        FieldsV1         pointer
  8  subresource                     string

LabelSelector
  1  matchLabels                     string           map
  2  matchExpressions                LabelSelectorRequirement repeated

LabelSelectorRequirement
  1  key                             string           always
  2  operator                        string           always
  3  values                          string           repeated

Condition
  1  type                            string           always
  2  status                          string           always
  3  observedGeneration              int64
  4  lastTransitionTime              Time             always
  5  reason                          string           always
  6  message                         string           always

package k8s.io.api.core.v1

Namespace
  1  metadata                        ObjectMeta
  2  spec                            NamespaceSpec
  3  status                          NamespaceStatus

NamespaceSpec
  1  finalizers                      string           repeated

NamespaceStatus
  1  phase                           string
  2  conditions                      NamespaceCondition repeated

NamespaceCondition
  1  type                            string           always
  2  status                          string           always
  4  lastTransitionTime              Time
  5  reason                          string
  6  message                         string

ConfigMap
  1  metadata                        ObjectMeta
  4  immutable                       bool             pointer
  2  data                            string           map
  3  binaryData                      bytes            map

Secret
  1  metadata                        ObjectMeta
  5  immutable                       bool             pointer
  2  data                            bytes            map
  4  stringData                      string           map
  3  type                            string

ServiceAccount
  1  metadata                        ObjectMeta
  2  secrets                         ObjectReference  repeated
  3  imagePullSecrets                LocalObjectReference repeated
  4  automountServiceAccountToken    bool             pointer

ObjectReference
  1  kind                            string
  2  namespace                       string
  3  name                            string
  4  uid                             string
  5  apiVersion                      string
  6  resourceVersion                 string
  7  fieldPath                       string

LocalObjectReference
  1  name                            string

ResourceQuota
  1  metadata                        ObjectMeta
  2  spec                            ResourceQuotaSpec
  3  status                          ResourceQuotaStatus

ResourceQuotaSpec
  1  hard                            Quantity         map
  2  scopes                          string           repeated
  3  scopeSelector                   ScopeSelector    pointer

ResourceQuotaStatus
  1  hard                            Quantity         map
  2  used                            Quantity         map

ScopeSelector
  1  matchExpressions                ScopedResourceSelectorRequirement repeated

ScopedResourceSelectorRequirement
  1  scopeName                       string           always
  2  operator                        string           always
  3  values                          string           repeated

Service
  1  metadata                        ObjectMeta
  2  spec                            ServiceSpec
  3  status                          ServiceStatus

ServiceSpec
  1  ports                           ServicePort      repeated
  2  selector                        string           map
  3  clusterIP                       string
  18 clusterIPs                      string           repeated
  4  type                            string
  5  externalIPs                     string           repeated
  7  sessionAffinity                 string
  8  loadBalancerIP                  string
  9  loadBalancerSourceRanges        string           repeated
  10 externalName                    string
  11 externalTrafficPolicy           string
  12 healthCheckNodePort             int32
  13 publishNotReadyAddresses        bool
  14 sessionAffinityConfig           SessionAffinityConfig pointer
  19 ipFamilies                      string           repeated
  17 ipFamilyPolicy                  string           pointer
  20 allocateLoadBalancerNodePorts   bool             pointer
  21 loadBalancerClass               string           pointer
  22 internalTrafficPolicy           string           pointer
  23 trafficDistribution             string           pointer

ServicePort
  1  name                            string
  2  protocol                        string
  6  appProtocol                     string           pointer
  3  port                            int32            always
  4  targetPort                      IntOrString
  5  nodePort                        int32

SessionAffinityConfig
  1  clientIP                        ClientIPConfig   pointer

ClientIPConfig
  1  timeoutSeconds                  int32            pointer

ServiceStatus
  1  loadBalancer                    LoadBalancerStatus
  2  conditions                      Condition        repeated

LoadBalancerStatus
  1  ingress                         LoadBalancerIngress repeated

LoadBalancerIngress
  1  ip                              string
  2  hostname                        string
  3  ipMode                          string           pointer
  4  ports                           PortStatus       repeated

PortStatus
  1  port                            int32            always
  2  protocol                        string           always
  3  error                           string           pointer

PodTemplateSpec
  1  metadata                        ObjectMeta
  2  spec                            PodSpec

PodSpec
  1  volumes                         Volume           repeated
  20 initContainers                  Container        repeated
  2  containers                      Container        repeated always
  34 ephemeralContainers             EphemeralContainer repeated
  3  restartPolicy                   string
  4  terminationGracePeriodSeconds   int64            pointer
  5  activeDeadlineSeconds           int64            pointer
  6  dnsPolicy                       string
  7  nodeSelector                    string           map
  8  serviceAccountName              string
  9  serviceAccount                  string
  21 automountServiceAccountToken    bool             pointer
  10 nodeName                        string
  11 hostNetwork                     bool
  12 hostPID                         bool
  13 hostIPC                         bool
  27 shareProcessNamespace           bool             pointer
  14 securityContext                 PodSecurityContext pointer
  15 imagePullSecrets                LocalObjectReference repeated
  16 hostname                        string
  17 subdomain                       string
  18 affinity                        Affinity         pointer
  19 schedulerName                   string
  22 tolerations                     Toleration       repeated
  23 hostAliases                     HostAlias        repeated
  24 priorityClassName               string
  25 priority                        int32            pointer
  26 dnsConfig                       PodDNSConfig     pointer
  28 readinessGates                  PodReadinessGate repeated
  29 runtimeClassName                string           pointer
  30 enableServiceLinks              bool             pointer
  31 preemptionPolicy                string           pointer
  32 overhead                        Quantity         map
  33 topologySpreadConstraints       TopologySpreadConstraint repeated
  35 setHostnameAsFQDN               bool             pointer
  36 os                              PodOS            pointer
  37 hostUsers                       bool             pointer
  38 schedulingGates                 PodSchedulingGate repeated
  39 resourceClaims                  PodResourceClaim repeated
  40 resources                       ResourceRequirements pointer

Container
  1  name                            string           always
  2  image                           string
  3  command                         string           repeated
  4  args                            string           repeated
  5  workingDir                      string
  6  ports                           ContainerPort    repeated
  19 envFrom                         EnvFromSource    repeated
  7  env                             EnvVar           repeated
  8  resources                       ResourceRequirements
  23 resizePolicy                    ContainerResizePolicy repeated
  24 restartPolicy                   string           pointer
  9  volumeMounts                    VolumeMount      repeated
  21 volumeDevices                   VolumeDevice     repeated
  10 livenessProbe                   Probe            pointer
  11 readinessProbe                  Probe            pointer
  22 startupProbe                    Probe            pointer
  12 lifecycle                       Lifecycle        pointer
  13 terminationMessagePath          string
  20 terminationMessagePolicy        string
  14 imagePullPolicy                 string
  15 securityContext                 SecurityContext  pointer
  16 stdin                           bool
  17 stdinOnce                       bool
  18 tty                             bool

ContainerPort
  1  name                            string
  2  hostPort                        int32
  3  containerPort                   int32            always
  4  protocol                        string
  5  hostIP                          string

ContainerResizePolicy
  1  resourceName                    string           always
  2  restartPolicy                   string           always

EnvFromSource
  1  prefix                          string
  2  configMapRef                    ConfigMapEnvSource pointer
  3  secretRef                       SecretEnvSource  pointer

ConfigMapEnvSource
  1  localObjectReference            LocalObjectReference inline
  2  optional                        bool             pointer

SecretEnvSource
  1  localObjectReference            LocalObjectReference inline
  2  optional                        bool             pointer

EnvVar
  1  name                            string           always
  2  value                           string
  3  valueFrom                       EnvVarSource     pointer

EnvVarSource
  1  fieldRef                        ObjectFieldSelector pointer
  2  resourceFieldRef                ResourceFieldSelector pointer
  3  configMapKeyRef                 ConfigMapKeySelector pointer
  4  secretKeyRef                    SecretKeySelector pointer

ObjectFieldSelector
  1  apiVersion                      string
  2  fieldPath                       string           always

ResourceFieldSelector
  1  containerName                   string
  2  resource                        string           always
  3  divisor                         Quantity

ConfigMapKeySelector
  1  localObjectReference            LocalObjectReference inline
  2  key                             string           always
  3  optional                        bool             pointer

SecretKeySelector
  1  localObjectReference            LocalObjectReference inline
  2  key                             string           always
  3  optional                        bool             pointer

ResourceRequirements
  1  limits                          Quantity         map
  2  requests                        Quantity         map
  3  claims                          ResourceClaim    repeated

ResourceClaim
  1  name                            string           always
  2  request                         string

VolumeMount
  1  name                            string           always
  2  readOnly                        bool
  7  recursiveReadOnly               string           pointer
  3  mountPath                       string           always
  4  subPath                         string
  5  mountPropagation                string           pointer
  6  subPathExpr                     string

Volume
  1  name                            string           always
  2  volumeSource                    VolumeSource     inline

VolumeSource
  1  hostPath                        HostPathVolumeSource pointer
  2  emptyDir                        EmptyDirVolumeSource pointer
  3  gcePersistentDisk               GCEPersistentDiskVolumeSource pointer
  4  awsElasticBlockStore            AWSElasticBlockStoreVolumeSource pointer
  5  gitRepo                         GitRepoVolumeSource pointer
  6  secret                          SecretVolumeSource pointer
  7  nfs                             NFSVolumeSource  pointer
  8  iscsi                           ISCSIVolumeSource pointer
  9  glusterfs                       GlusterfsVolumeSource pointer
  10 persistentVolumeClaim           PersistentVolumeClaimVolumeSource pointer
  11 rbd                             RBDVolumeSource  pointer
  12 flexVolume                      FlexVolumeSource pointer
  13 cinder                          CinderVolumeSource pointer
  14 cephfs                          CephFSVolumeSource pointer
  15 flocker                         FlockerVolumeSource pointer
  16 downwardAPI                     DownwardAPIVolumeSource pointer
  17 fc                              FCVolumeSource   pointer
  18 azureFile                       AzureFileVolumeSource pointer
  19 configMap                       ConfigMapVolumeSource pointer
  20 vsphereVolume                   VsphereVirtualDiskVolumeSource pointer
  21 quobyte                         QuobyteVolumeSource pointer
  22 azureDisk                       AzureDiskVolumeSource pointer
  23 photonPersistentDisk            PhotonPersistentDiskVolumeSource pointer
  26 projected                       ProjectedVolumeSource pointer
  24 portworxVolume                  PortworxVolumeSource pointer
  25 scaleIO                         ScaleIOVolumeSource pointer
  27 storageos                       StorageOSVolumeSource pointer
  28 csi                             CSIVolumeSource  pointer
  29 ephemeral                       EphemeralVolumeSource pointer
  30 image                           ImageVolumeSource pointer

HostPathVolumeSource
  1  path                            string           always
  2  type                            string           pointer

EmptyDirVolumeSource
  1  medium                          string
  2  sizeLimit                       Quantity         pointer

SecretVolumeSource
  1  secretName                      string
  2  items                           KeyToPath        repeated
  3  defaultMode                     int32            pointer
  4  optional                        bool             pointer

ConfigMapVolumeSource
  1  localObjectReference            LocalObjectReference inline
  2  items                           KeyToPath        repeated
  3  defaultMode                     int32            pointer
  4  optional                        bool             pointer

KeyToPath
  1  key                             string           always
  2  path                            string           always
  3  mode                            int32            pointer

PersistentVolumeClaimVolumeSource
  1  claimName                       string           always
  2  readOnly                        bool

DownwardAPIVolumeSource
  1  items                           DownwardAPIVolumeFile repeated
  2  defaultMode                     int32            pointer

DownwardAPIVolumeFile
  1  path                            string           always
  2  fieldRef                        ObjectFieldSelector pointer
  3  resourceFieldRef                ResourceFieldSelector pointer
  4  mode                            int32            pointer

Probe
  1  handler                         ProbeHandler     inline
  2  initialDelaySeconds             int32
  3  timeoutSeconds                  int32
  4  periodSeconds                   int32
  5  successThreshold                int32
  6  failureThreshold                int32
  7  terminationGracePeriodSeconds   int64            pointer

ProbeHandler
  1  exec                            ExecAction       pointer
  2  httpGet                         HTTPGetAction    pointer
  3  tcpSocket                       TCPSocketAction  pointer
  4  grpc                            GRPCAction       pointer

ExecAction
  1  command                         string           repeated

HTTPGetAction
  1  path                            string
  2  port                            IntOrString      always
  3  host                            string
  4  scheme                          string
  5  httpHeaders                     HTTPHeader       repeated

HTTPHeader
  1  name                            string           always
  2  value                           string           always

TCPSocketAction
  1  port                            IntOrString      always
  2  host                            string

GRPCAction
  1  port                            int32            always
  2  service                         string           pointer

Lifecycle
  1  postStart                       LifecycleHandler pointer
  2  preStop                         LifecycleHandler pointer

LifecycleHandler
  1  exec                            ExecAction       pointer
  2  httpGet                         HTTPGetAction    pointer
  3  tcpSocket                       TCPSocketAction  pointer
  4  sleep                           SleepAction      pointer

SleepAction
  1  seconds                         int64            always

SecurityContext
  1  capabilities                    Capabilities     pointer
  2  privileged                      bool             pointer
  3  seLinuxOptions                  SELinuxOptions   pointer
  10 windowsOptions                  WindowsSecurityContextOptions pointer
  4  runAsUser                       int64            pointer
  8  runAsGroup                      int64            pointer
  5  runAsNonRoot                    bool             pointer
  6  readOnlyRootFilesystem          bool             pointer
  7  allowPrivilegeEscalation        bool             pointer
  9  procMount                       string           pointer
  11 seccompProfile                  SeccompProfile   pointer
  12 appArmorProfile                 AppArmorProfile  pointer

PodSecurityContext
  1  seLinuxOptions                  SELinuxOptions   pointer
  8  windowsOptions                  WindowsSecurityContextOptions pointer
  2  runAsUser                       int64            pointer
  6  runAsGroup                      int64            pointer
  3  runAsNonRoot                    bool             pointer
  4  supplementalGroups              int64            repeated
  12 supplementalGroupsPolicy        string           pointer
  5  fsGroup                         int64            pointer
  7  sysctls                         Sysctl           repeated
  9  fsGroupChangePolicy             string           pointer
  10 seccompProfile                  SeccompProfile   pointer
  11 appArmorProfile                 AppArmorProfile  pointer
  13 seLinuxChangePolicy             string           pointer

Capabilities
  1  add                             string           repeated
  2  drop                            string           repeated

SELinuxOptions
  1  user                            string
  2  role                            string
  3  type                            string
  4  level                           string

WindowsSecurityContextOptions
  1  gmsaCredentialSpecName          string           pointer
  2  gmsaCredentialSpec              string           pointer
  3  runAsUserName                   string           pointer
  4  hostProcess                     bool             pointer

SeccompProfile
  1  type                            string           always
  2  localhostProfile                string           pointer

AppArmorProfile
  1  type                            string           always
  2  localhostProfile                string           pointer

Sysctl
  1  name                            string           always
  2  value                           string           always

Toleration
  1  key                             string
  2  operator                        string
  3  value                           string
  4  effect                          string
  5  tolerationSeconds               int64            pointer

package k8s.io.api.apps.v1

Deployment
  1  metadata                        ObjectMeta
  2  spec                            DeploymentSpec
  3  status                          DeploymentStatus

DeploymentSpec
  1  replicas                        int32            pointer
  2  selector                        LabelSelector    pointer
  3  template                        PodTemplateSpec  always
  4  strategy                        DeploymentStrategy
  5  minReadySeconds                 int32
  6  revisionHistoryLimit            int32            pointer
  7  paused                          bool
  9  progressDeadlineSeconds         int32            pointer

DeploymentStrategy
  1  type                            string
  2  rollingUpdate                   RollingUpdateDeployment pointer

RollingUpdateDeployment
  1  maxUnavailable                  IntOrString      pointer
  2  maxSurge                        IntOrString      pointer

DeploymentStatus
  1  observedGeneration              int64
  2  replicas                        int32
  3  updatedReplicas                 int32
  7  readyReplicas                   int32
  4  availableReplicas               int32
  5  unavailableReplicas             int32
  6  conditions                      DeploymentCondition repeated
  8  collisionCount                  int32            pointer

DeploymentCondition
  1  type                            string           always
  2  status                          string           always
  6  lastUpdateTime                  Time
  7  lastTransitionTime              Time
  4  reason                          string
  5  message                         string

package k8s.io.api.batch.v1

Job
  1  metadata                        ObjectMeta
  2  spec                            JobSpec
  3  status                          JobStatus

JobSpec
  1  parallelism                     int32            pointer
  2  completions                     int32            pointer
  3  activeDeadlineSeconds           int64            pointer
  11 podFailurePolicy                PodFailurePolicy pointer
  16 successPolicy                   SuccessPolicy    pointer
  7  backoffLimit                    int32            pointer
  12 backoffLimitPerIndex            int32            pointer
  13 maxFailedIndexes                int32            pointer
  4  selector                        LabelSelector    pointer
  5  manualSelector                  bool             pointer
  6  template                        PodTemplateSpec  always
  8  ttlSecondsAfterFinished         int32            pointer
  9  completionMode                  string           pointer
  10 suspend                         bool             pointer
  14 podReplacementPolicy            string           pointer
  15 managedBy                       string           pointer

JobStatus
  1  conditions                      JobCondition     repeated
  2  startTime                       Time             pointer
  3  completionTime                  Time             pointer
  4  active                          int32
  5  succeeded                       int32
  6  failed                          int32
  11 terminating                     int32            pointer
  7  completedIndexes                string
  10 failedIndexes                   string           pointer
  8  uncountedTerminatedPods         UncountedTerminatedPods pointer
  9  ready                           int32            pointer

JobCondition
  1  type                            string           always
  2  status                          string           always
  3  lastProbeTime                   Time
  4  lastTransitionTime              Time
  5  reason                          string
  6  message                         string

UncountedTerminatedPods
  1  succeeded                       string           repeated
  2  failed                          string           repeated

CronJob
  1  metadata                        ObjectMeta
  2  spec                            CronJobSpec
  3  status                          CronJobStatus

CronJobSpec
  1  schedule                        string           always
  8  timeZone                        string           pointer
  2  startingDeadlineSeconds         int64            pointer
  3  concurrencyPolicy               string
  4  suspend                         bool             pointer
  5  jobTemplate                     JobTemplateSpec  always
  6  successfulJobsHistoryLimit      int32            pointer
  7  failedJobsHistoryLimit          int32            pointer

CronJobStatus
  1  active                          ObjectReference  repeated
  4  lastScheduleTime                Time             pointer
  5  lastSuccessfulTime              Time             pointer

JobTemplateSpec
  1  metadata                        ObjectMeta
  2  spec                            JobSpec
"""

# Message types the table's fields name but does not describe: a body that sets one of
# those fields is refused (as UnsupportedMediaType) rather than read half-way.
_NOT_DESCRIBED = frozenset(
    {
        "AWSElasticBlockStoreVolumeSource",
        "Affinity",
        "AzureDiskVolumeSource",
        "AzureFileVolumeSource",
        "CSIVolumeSource",
        "CephFSVolumeSource",
        "CinderVolumeSource",
        "EphemeralContainer",
        "EphemeralVolumeSource",
        "FCVolumeSource",
        "FlexVolumeSource",
        "FlockerVolumeSource",
        "GCEPersistentDiskVolumeSource",
        "GitRepoVolumeSource",
        "GlusterfsVolumeSource",
        "HostAlias",
        "ISCSIVolumeSource",
        "ImageVolumeSource",
        "NFSVolumeSource",
        "PhotonPersistentDiskVolumeSource",
        "PodDNSConfig",
        "PodFailurePolicy",
        "PodOS",
        "PodReadinessGate",
        "PodResourceClaim",
        "PodSchedulingGate",
        "PortworxVolumeSource",
        "ProjectedVolumeSource",
        "QuobyteVolumeSource",
        "RBDVolumeSource",
        "ScaleIOVolumeSource",
        "StorageOSVolumeSource",
        "SuccessPolicy",
        "TopologySpreadConstraint",
        "VolumeDevice",
        "VsphereVirtualDiskVolumeSource",
    }
)

# The kinds a body may carry, by (apiVersion, kind), and the message of each.
KINDS: Mapping[tuple[str, str], str] = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Secret"): "Secret",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("v1", "Service"): "Service",
    ("v1", "ResourceQuota"): "ResourceQuota",
    ("apps/v1", "Deployment"): "Deployment",
    ("batch/v1", "Job"): "Job",
    ("batch/v1", "CronJob"): "CronJob",
}


def _parse_table(text: str) -> dict[str, Message]:
    """The messages of `_TABLE`; a mistake in it fails the import, not a request."""
    flags_known = {"repeated", "map"} | {p.value for p in Presence}
    tables: dict[str, tuple[str, list[Field]]] = {}
    package = ""
    fields: list[Field] = []
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "package":
            package = words[1]
        elif not words[0].isdigit():
            fields = []
            tables[words[0]] = (package, fields)
        else:
            number, name, type_name, *flags = words
            if unknown := set(flags) - flags_known:
                raise RuntimeError(f"{line.strip()}: unknown flags {sorted(unknown)}")
            kind = _SCALARS.get(type_name, Kind.MESSAGE)
            fields.append(
                Field(
                    int(number),
                    name,
                    kind,
                    message=type_name if kind is Kind.MESSAGE else "",
                    repeated="repeated" in flags,
                    map="map" in flags,
                    presence=next((p for p in Presence if p.value in flags), Presence.OMITEMPTY),
                )
            )
    known = set(tables) | _NOT_DESCRIBED
    messages: dict[str, Message] = {}
    for name, (package, fields) in tables.items():
        for f in fields:
            if f.message and f.message not in known:
                raise RuntimeError(f"{name}.{f.name}: no message {f.message}")
        by_number = {f.number: f for f in fields}
        if len(by_number) != len(fields):
            raise RuntimeError(f"{name}: a field number is declared twice")
        messages[name] = Message(name, package, tuple(fields), by_number)
    return messages


MESSAGES: Mapping[str, Message] = _parse_table(_TABLE)


# Decoding.


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of the object in a `application/vnd.kubernetes.protobuf` body.

    Raises `BadRequest` for bytes that are not such a body, `UnsupportedMediaType` for a kind,
    message or field number this server does not read from protobuf.
    """
    if not body.startswith(MAGIC):
        raise errors.BadRequest(
            "the body is not a Kubernetes protobuf message: it does not start with "
            f"the bytes {list(MAGIC)}"
        )
    envelope = _collect(MESSAGES["Unknown"], body[len(MAGIC) :])
    type_meta = _collect(MESSAGES["TypeMeta"], _joined(envelope.get(1, [])))
    api_version = _string_of(type_meta.get(1))
    kind = _string_of(type_meta.get(2))
    encoding = _string_of(envelope.get(3))
    content_type = _string_of(envelope.get(4))
    if not kind or not api_version:
        raise errors.BadRequest("the protobuf body does not say the apiVersion and kind")
    if encoding:
        raise errors.UnsupportedMediaType(
            f"the protobuf body is encoded as {encoding!r}, which this server cannot read; "
            + _SEND_JSON
        )
    if content_type not in ("", MEDIA_TYPE):
        raise errors.UnsupportedMediaType(
            f"the protobuf envelope holds {content_type!r}, which this server cannot read; "
            + _SEND_JSON
        )
    message = KINDS.get((api_version, kind))
    if message is None:
        raise errors.UnsupportedMediaType(
            f"this server cannot read {kind} ({api_version}) objects sent as protobuf; "
            + _SEND_JSON
        )
    obj = _decode_message(MESSAGES[message], _joined(envelope.get(2, [])))
    return {"kind": kind, "apiVersion": api_version, **obj}


_Seen = dict[int, list[WireField]]


def _collect(message: Message, data: bytes) -> _Seen:
    """The message's fields by number, each checked against the table."""
    seen: _Seen = {}
    for wire in iter_fields(data):
        field = message.by_number.get(wire.number)
        if field is None:
            raise errors.UnsupportedMediaType(
                f"the protobuf body sets field {wire.number} of {message.full_name}, "
                f"which this server does not read; {_SEND_JSON}"
            )
        varint = field.kind in _VARINT_KINDS
        expected = WireType.VARINT if varint else WireType.LEN
        packed = varint and field.repeated and wire.wire_type == WireType.LEN
        if wire.wire_type != expected and not packed:
            raise _malformed(
                f"field {wire.number} ({field.name}) of {message.full_name} "
                f"has wire type {wire.wire_type.value}"
            )
        seen.setdefault(wire.number, []).append(wire)
    return seen


def _joined(occurrences: list[WireField]) -> bytes:
    # A message field that occurs more than once is merged, as if its bytes were one.
    return b"".join(o.value for o in occurrences if isinstance(o.value, bytes))


def _string_of(occurrences: list[WireField] | None) -> str:
    if not occurrences or not isinstance(occurrences[-1].value, bytes):
        return ""
    return occurrences[-1].value.decode("utf-8", errors="replace")


_OMIT: Any = object()


def _decode_message(message: Message, data: bytes) -> dict[str, Any]:
    seen = _collect(message, data)
    obj: dict[str, Any] = {}
    for field in message.fields:
        occurrences = seen.get(field.number, [])
        if not occurrences and field.presence is Presence.POINTER:
            continue
        value = _field_value(message, field, occurrences=occurrences)
        if value is _OMIT:
            continue
        if field.presence is Presence.INLINE:
            obj.update(value)
        else:
            obj[field.name] = value
    return obj


def _field_value(message: Message, field: Field, *, occurrences: list[WireField]) -> Any:
    """The field's JSON value by Go's encoding/json rules, or _OMIT to leave it out."""
    always = field.presence is Presence.ALWAYS
    if field.map or field.repeated:
        if field.map:
            items: Any = dict(_map_entry(message, field, entry=o) for o in occurrences)
        else:
            items = [item for o in occurrences for item in _items(message, field, wire=o)]
        if items:
            return items
        return None if always else _OMIT
    if field.kind is Kind.MESSAGE:
        # A struct is written even when empty (omitempty leaves only zero scalars out).
        return _typed_value(message, field, data=_joined(occurrences))
    value = _scalar(field.kind, occurrences[-1].value) if occurrences else _zero(field.kind)
    if field.presence is Presence.OMITEMPTY and value in ("", 0, False):
        return _OMIT
    return value


def _items(message: Message, field: Field, *, wire: WireField) -> Iterator[Any]:
    if field.kind is Kind.MESSAGE:
        assert isinstance(wire.value, bytes)
        yield _typed_value(message, field, data=wire.value)
    elif field.kind in _VARINT_KINDS and isinstance(wire.value, bytes):
        for raw in _iter_packed(wire.value):
            yield _scalar(field.kind, raw)
    else:
        yield _scalar(field.kind, wire.value)


def _map_entry(message: Message, field: Field, *, entry: WireField) -> tuple[str, Any]:
    assert isinstance(entry.value, bytes)
    key = ""
    value: Any = _OMIT
    for wire in iter_fields(entry.value):
        if wire.number not in (1, 2) or not isinstance(wire.value, bytes):
            raise _malformed(f"an entry of {message.full_name}.{field.name} is not a map entry")
        if wire.number == 1:
            key = wire.value.decode("utf-8", errors="replace")
        elif field.kind is Kind.MESSAGE:
            value = _typed_value(message, field, data=wire.value)
        else:
            value = _scalar(field.kind, wire.value)
    if value is _OMIT:
        value = _typed_value(message, field, data=b"") if field.kind is Kind.MESSAGE else ""
    return key, value


def _typed_value(owner: Message, field: Field, *, data: bytes) -> Any:
    target = MESSAGES.get(field.message)
    if target is None:
        raise errors.UnsupportedMediaType(
            f"the protobuf body sets {owner.full_name}.{field.name} ({field.message}), "
            f"which this server does not read; {_SEND_JSON}"
        )
    special = _SPECIAL.get(target.name)
    if special is not None:
        return special(target, data)
    return _decode_message(target, data)


def _scalar(kind: Kind, raw: int | bytes) -> Any:
    if isinstance(raw, bytes):
        if kind is Kind.BYTES:
            return base64.b64encode(raw).decode("ascii")
        # Go's encoding/json writes invalid UTF-8 as U+FFFD, and so does this.
        return raw.decode("utf-8", errors="replace")
    if kind is Kind.BOOL:
        return raw != 0
    return _signed(raw, 32 if kind is Kind.INT32 else 64)


def _zero(kind: Kind) -> Any:
    if kind in (Kind.STRING, Kind.BYTES):
        return ""
    return False if kind is Kind.BOOL else 0


# The messages with a JSON form of their own.


def _scalars(message: Message, data: bytes) -> dict[str, Any]:
    """The last value of each scalar field that is set, by field name."""
    seen = _collect(message, data)
    return {
        field.name: _scalar(field.kind, seen[field.number][-1].value)
        for field in message.fields
        if field.number in seen
    }


def _time(message: Message, data: bytes) -> str | None:
    # metav1.Time keeps whole seconds; an empty message is the zero time, written as null.
    if not data:
        return None
    seconds = _scalars(message, data).get("seconds", 0)
    try:
        moment = _EPOCH + datetime.timedelta(seconds=seconds)
    except OverflowError:
        raise _malformed(f"the time {seconds}s after the epoch is out of range") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _quantity(message: Message, data: bytes) -> str:
    # Go's zero Quantity is written "0".
    return str(_scalars(message, data).get("string") or "0")


def _int_or_string(message: Message, data: bytes) -> int | str:
    values = _scalars(message, data)
    kind = values.get("type", 0)
    if kind == 0:
        return int(values.get("intVal", 0))
    if kind == 1:
        return str(values.get("strVal", ""))
    raise _malformed(f"an IntOrString has type {kind}")


def _fields_v1(message: Message, data: bytes) -> Any:
    # FieldsV1 is JSON already, and written as it is.
    raw = _collect(message, data).get(1)
    if not raw or not isinstance(raw[-1].value, bytes):
        return None
    try:
        return json.loads(raw[-1].value)
    except ValueError:
        raise _malformed("a managedFields entry's fieldsV1 is not JSON") from None


_SPECIAL: Mapping[str, Callable[[Message, bytes], Any]] = {
    "Time": _time,
    "Quantity": _quantity,
    "IntOrString": _int_or_string,
    "FieldsV1": _fields_v1,
}
