"""Decode Kubernetes protobuf request bodies into the JSON dict kubectl would have sent.

kubectl >= 1.32 sends `kubectl create <generator>` bodies (deployment, service, configmap, namespace,
ingress, ...) as `application/vnd.kubernetes.protobuf` and never falls back to JSON. Such a body is the
4-byte magic `k8s\\x00` followed by a `runtime.Unknown` message: typeMeta(1) = {apiVersion(1), kind(2)},
raw(2) = the object encoded per `k8s.io/api/<group>/<version>/generated.proto`, contentEncoding(3),
contentType(4).

The decoder is driven by `SCHEMAS`, a table of the messages reachable from the kinds in `KINDS`. Its field
numbers, JSON names and Go pointer/`omitempty` facts come from Kubernetes' `generated.proto` files and the
`protobuf:`/`json:` struct tags in `types.go` (k8s.io/api and k8s.io/apimachinery). Fields that are not in
the table (newer API versions, or messages we do not model) are skipped, as Go skips unknown fields.

The output follows Go's `encoding/json` rendering of the same object:
- gogo writes every non-pointer field, even when empty, so zero strings, numbers and `false` are dropped
  unless the Go field is a pointer or has no `omitempty` (`Field.keep_zero`): `replicas: 0` survives;
- nested messages present on the wire are always emitted, possibly as `{}` (Go never omits a struct);
- `meta.v1.Time` becomes an RFC 3339 string in UTC, or None when unset (`creationTimestamp: null`);
  `MicroTime` keeps microseconds; `IntOrString` becomes an int or a str; `Quantity` its string;
  `bytes` (ConfigMap `binaryData`) standard base64.
Empty lists and maps are absent rather than `null`.

Pure: no I/O. Input is bounded by its length and nesting by `max_depth`, so garbage raises
`ProtobufError` instead of hanging or recursing without limit.
"""

from __future__ import annotations

import base64
import datetime
import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
MAX_DEPTH = 64

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_U64 = (1 << 64) - 1
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_GO_ZERO_TIME = datetime.datetime(1, 1, 1, tzinfo=datetime.UTC)


class ProtobufError(ValueError):
    """A body that is not a well-formed Kubernetes protobuf object of a kind we decode."""


class Kind(enum.Enum):
    """How a field's wire value becomes JSON."""

    STRING = "string"
    INT32 = "int32"
    INT64 = "int64"
    BOOL = "bool"
    BYTES = "bytes"  # base64 text, as Go's encoding/json writes []byte
    MESSAGE = "message"
    MAP = "map"  # proto2 map: repeated entry messages {key=1, value=2}; keys are strings
    TIME = "time"  # meta.v1.Time {seconds=1, nanos=2}; Kubernetes keeps seconds only
    MICRO_TIME = "micro_time"  # meta.v1.MicroTime, same wire form, microsecond precision
    INT_OR_STRING = "int_or_string"  # intstr.IntOrString {type=1, intVal=2, strVal=3}
    QUANTITY = "quantity"  # resource.Quantity {string=1}


_VARINT_KINDS = frozenset({Kind.INT32, Kind.INT64, Kind.BOOL})
_SCALAR_KINDS = _VARINT_KINDS | {Kind.STRING, Kind.BYTES}


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a Kubernetes message, named as its JSON form names it.

    `name` is the JSON name, or None for a Go embedded struct (`json:",inline"`) whose fields join the
    parent's. `message` names the schema of a MESSAGE field; `value` is the value kind of a MAP.
    `keep_zero` keeps "", 0 and false: set where the Go field is a pointer (on the wire only when set)
    or has no `omitempty`; otherwise a zero scalar is dropped, as `omitempty` would drop it.
    """

    name: str | None
    kind: Kind
    repeated: bool = False
    message: str = ""
    value: Kind | None = None
    keep_zero: bool = False


def _str(name: str, *, keep_zero: bool = False) -> Field:
    return Field(name, Kind.STRING, keep_zero=keep_zero)


def _strs(name: str) -> Field:
    return Field(name, Kind.STRING, repeated=True)


def _int32(name: str, *, keep_zero: bool = False) -> Field:
    return Field(name, Kind.INT32, keep_zero=keep_zero)


def _int64(name: str, *, keep_zero: bool = False) -> Field:
    return Field(name, Kind.INT64, keep_zero=keep_zero)


def _bool(name: str, *, keep_zero: bool = False) -> Field:
    return Field(name, Kind.BOOL, keep_zero=keep_zero)


def _map(name: str, value: Kind = Kind.STRING) -> Field:
    return Field(name, Kind.MAP, repeated=True, value=value)


def _message(name: str, message: str) -> Field:
    return Field(name, Kind.MESSAGE, message=message)


def _messages(name: str, message: str) -> Field:
    return Field(name, Kind.MESSAGE, repeated=True, message=message)


def _inline(message: str) -> Field:
    return Field(None, Kind.MESSAGE, message=message)


def _time(name: str) -> Field:
    return Field(name, Kind.TIME)


def _micro_time(name: str) -> Field:
    return Field(name, Kind.MICRO_TIME)


def _int_or_string(name: str) -> Field:
    return Field(name, Kind.INT_OR_STRING)


def _quantity(name: str) -> Field:
    return Field(name, Kind.QUANTITY)


# Message schemas by short name ("<group>.<version>.<Message>"); field number -> Field, in number order.
# A trailing `# *T` comment marks a Go pointer field (the reason for keep_zero=True on scalars); other
# keep_zero=True fields have no `omitempty`. Deliberately left out (skipped on the wire): managedFields,
# security contexts, affinity, DNS config, topology spread, ephemeral containers, resource claims and
# every volume source but hostPath, emptyDir, secret and configMap.
SCHEMAS: dict[str, dict[int, Field]] = {
    "meta.v1.ObjectMeta": {
        1: _str("name"),
        2: _str("generateName"),
        3: _str("namespace"),
        4: _str("selfLink"),
        5: _str("uid"),
        6: _str("resourceVersion"),
        7: _int64("generation"),
        8: _time("creationTimestamp"),
        9: _time("deletionTimestamp"),  # *Time
        10: _int64("deletionGracePeriodSeconds", keep_zero=True),  # *int64
        11: _map("labels"),
        12: _map("annotations"),
        13: _messages("ownerReferences", "meta.v1.OwnerReference"),
        14: _strs("finalizers"),
    },
    "meta.v1.OwnerReference": {
        1: _str("kind", keep_zero=True),
        3: _str("name", keep_zero=True),
        4: _str("uid", keep_zero=True),
        5: _str("apiVersion", keep_zero=True),
        6: _bool("controller", keep_zero=True),  # *bool
        7: _bool("blockOwnerDeletion", keep_zero=True),  # *bool
    },
    "meta.v1.LabelSelector": {
        1: _map("matchLabels"),
        2: _messages("matchExpressions", "meta.v1.LabelSelectorRequirement"),
    },
    "meta.v1.LabelSelectorRequirement": {
        1: _str("key", keep_zero=True),
        2: _str("operator", keep_zero=True),
        3: _strs("values"),
    },
    "meta.v1.Condition": {
        1: _str("type", keep_zero=True),
        2: _str("status", keep_zero=True),
        3: _int64("observedGeneration"),
        4: _time("lastTransitionTime"),
        5: _str("reason", keep_zero=True),
        6: _str("message", keep_zero=True),
    },
    "core.v1.Pod": {
        1: _message("metadata", "meta.v1.ObjectMeta"),
        2: _message("spec", "core.v1.PodSpec"),
        3: _message("status", "core.v1.PodStatus"),
    },
    "core.v1.PodSpec": {
        1: _messages("volumes", "core.v1.Volume"),
        2: _messages("containers", "core.v1.Container"),
        3: _str("restartPolicy"),
        4: _int64("terminationGracePeriodSeconds", keep_zero=True),  # *int64
        5: _int64("activeDeadlineSeconds", keep_zero=True),  # *int64
        6: _str("dnsPolicy"),
        7: _map("nodeSelector"),
        8: _str("serviceAccountName"),
        9: _str("serviceAccount"),
        10: _str("nodeName"),
        11: _bool("hostNetwork"),
        12: _bool("hostPID"),
        13: _bool("hostIPC"),
        15: _messages("imagePullSecrets", "core.v1.LocalObjectReference"),
        16: _str("hostname"),
        17: _str("subdomain"),
        19: _str("schedulerName"),
        20: _messages("initContainers", "core.v1.Container"),
        21: _bool("automountServiceAccountToken", keep_zero=True),  # *bool
        22: _messages("tolerations", "core.v1.Toleration"),
        24: _str("priorityClassName"),
        25: _int32("priority", keep_zero=True),  # *int32
        27: _bool("shareProcessNamespace", keep_zero=True),  # *bool
        29: _str("runtimeClassName", keep_zero=True),  # *string
        30: _bool("enableServiceLinks", keep_zero=True),  # *bool
        31: _str("preemptionPolicy", keep_zero=True),  # *PreemptionPolicy
        32: _map("overhead", Kind.QUANTITY),
        35: _bool("setHostnameAsFQDN", keep_zero=True),  # *bool
        37: _bool("hostUsers", keep_zero=True),  # *bool
        40: _message("resources", "core.v1.ResourceRequirements"),  # *ResourceRequirements
        41: _str("hostnameOverride", keep_zero=True),  # *string
    },
    "core.v1.PodStatus": {
        1: _str("phase"),
        2: _messages("conditions", "core.v1.PodCondition"),
        3: _str("message"),
        4: _str("reason"),
        5: _str("hostIP"),
        6: _str("podIP"),
        7: _time("startTime"),  # *metav1.Time
        8: _messages("containerStatuses", "core.v1.ContainerStatus"),
        9: _str("qosClass"),
        10: _messages("initContainerStatuses", "core.v1.ContainerStatus"),
        11: _str("nominatedNodeName"),
        12: _messages("podIPs", "core.v1.PodIP"),
        13: _messages("ephemeralContainerStatuses", "core.v1.ContainerStatus"),
        14: _str("resize"),
        16: _messages("hostIPs", "core.v1.HostIP"),
        17: _int64("observedGeneration"),
        19: _map("allocatedResources", Kind.QUANTITY),
        20: _message("resources", "core.v1.ResourceRequirements"),  # *ResourceRequirements
    },
    "core.v1.PodCondition": {
        1: _str("type", keep_zero=True),
        2: _str("status", keep_zero=True),
        3: _time("lastProbeTime"),
        4: _time("lastTransitionTime"),
        5: _str("reason"),
        6: _str("message"),
        7: _int64("observedGeneration"),
    },
    "core.v1.ContainerStatus": {
        1: _str("name", keep_zero=True),
        2: _message("state", "core.v1.ContainerState"),
        3: _message("lastState", "core.v1.ContainerState"),
        4: _bool("ready", keep_zero=True),
        5: _int32("restartCount", keep_zero=True),
        6: _str("image", keep_zero=True),
        7: _str("imageID", keep_zero=True),
        8: _str("containerID"),
        9: _bool("started", keep_zero=True),  # *bool
        10: _map("allocatedResources", Kind.QUANTITY),
        11: _message("resources", "core.v1.ResourceRequirements"),  # *ResourceRequirements
        15: _str("stopSignal", keep_zero=True),  # *Signal
    },
    "core.v1.ContainerState": {
        1: _message("waiting", "core.v1.ContainerStateWaiting"),  # *ContainerStateWaiting
        2: _message("running", "core.v1.ContainerStateRunning"),  # *ContainerStateRunning
        3: _message("terminated", "core.v1.ContainerStateTerminated"),  # *ContainerStateTerminated
    },
    "core.v1.ContainerStateWaiting": {
        1: _str("reason"),
        2: _str("message"),
    },
    "core.v1.ContainerStateRunning": {
        1: _time("startedAt"),
    },
    "core.v1.ContainerStateTerminated": {
        1: _int32("exitCode", keep_zero=True),
        2: _int32("signal"),
        3: _str("reason"),
        4: _str("message"),
        5: _time("startedAt"),
        6: _time("finishedAt"),
        7: _str("containerID"),
    },
    "core.v1.PodIP": {
        1: _str("ip", keep_zero=True),
    },
    "core.v1.HostIP": {
        1: _str("ip", keep_zero=True),
    },
    "core.v1.PodTemplateSpec": {
        1: _message("metadata", "meta.v1.ObjectMeta"),
        2: _message("spec", "core.v1.PodSpec"),
    },
    "core.v1.Container": {
        1: _str("name", keep_zero=True),
        2: _str("image"),
        3: _strs("command"),
        4: _strs("args"),
        5: _str("workingDir"),
        6: _messages("ports", "core.v1.ContainerPort"),
        7: _messages("env", "core.v1.EnvVar"),
        8: _message("resources", "core.v1.ResourceRequirements"),
        9: _messages("volumeMounts", "core.v1.VolumeMount"),
        10: _message("livenessProbe", "core.v1.Probe"),  # *Probe
        11: _message("readinessProbe", "core.v1.Probe"),  # *Probe
        12: _message("lifecycle", "core.v1.Lifecycle"),  # *Lifecycle
        13: _str("terminationMessagePath"),
        14: _str("imagePullPolicy"),
        16: _bool("stdin"),
        17: _bool("stdinOnce"),
        18: _bool("tty"),
        19: _messages("envFrom", "core.v1.EnvFromSource"),
        20: _str("terminationMessagePolicy"),
        22: _message("startupProbe", "core.v1.Probe"),  # *Probe
        24: _str("restartPolicy", keep_zero=True),  # *ContainerRestartPolicy
    },
    "core.v1.ContainerPort": {
        1: _str("name"),
        2: _int32("hostPort"),
        3: _int32("containerPort", keep_zero=True),
        4: _str("protocol"),
        5: _str("hostIP"),
    },
    "core.v1.EnvVar": {
        1: _str("name", keep_zero=True),
        2: _str("value"),
        3: _message("valueFrom", "core.v1.EnvVarSource"),  # *EnvVarSource
    },
    "core.v1.EnvVarSource": {
        1: _message("fieldRef", "core.v1.ObjectFieldSelector"),  # *ObjectFieldSelector
        2: _message("resourceFieldRef", "core.v1.ResourceFieldSelector"),  # *ResourceFieldSelector
        3: _message("configMapKeyRef", "core.v1.ConfigMapKeySelector"),  # *ConfigMapKeySelector
        4: _message("secretKeyRef", "core.v1.SecretKeySelector"),  # *SecretKeySelector
    },
    "core.v1.ObjectFieldSelector": {
        1: _str("apiVersion"),
        2: _str("fieldPath", keep_zero=True),
    },
    "core.v1.ResourceFieldSelector": {
        1: _str("containerName"),
        2: _str("resource", keep_zero=True),
        3: _quantity("divisor"),
    },
    "core.v1.ConfigMapKeySelector": {
        1: _inline("core.v1.LocalObjectReference"),
        2: _str("key", keep_zero=True),
        3: _bool("optional", keep_zero=True),  # *bool
    },
    "core.v1.SecretKeySelector": {
        1: _inline("core.v1.LocalObjectReference"),
        2: _str("key", keep_zero=True),
        3: _bool("optional", keep_zero=True),  # *bool
    },
    "core.v1.EnvFromSource": {
        1: _str("prefix"),
        2: _message("configMapRef", "core.v1.ConfigMapEnvSource"),  # *ConfigMapEnvSource
        3: _message("secretRef", "core.v1.SecretEnvSource"),  # *SecretEnvSource
    },
    "core.v1.ConfigMapEnvSource": {
        1: _inline("core.v1.LocalObjectReference"),
        2: _bool("optional", keep_zero=True),  # *bool
    },
    "core.v1.SecretEnvSource": {
        1: _inline("core.v1.LocalObjectReference"),
        2: _bool("optional", keep_zero=True),  # *bool
    },
    "core.v1.LocalObjectReference": {
        1: _str("name"),
    },
    "core.v1.ResourceRequirements": {
        1: _map("limits", Kind.QUANTITY),
        2: _map("requests", Kind.QUANTITY),
        3: _messages("claims", "core.v1.ResourceClaim"),
    },
    "core.v1.ResourceClaim": {
        1: _str("name", keep_zero=True),
        2: _str("request"),
    },
    "core.v1.VolumeMount": {
        1: _str("name", keep_zero=True),
        2: _bool("readOnly"),
        3: _str("mountPath", keep_zero=True),
        4: _str("subPath"),
        5: _str("mountPropagation", keep_zero=True),  # *MountPropagationMode
        6: _str("subPathExpr"),
        7: _str("recursiveReadOnly", keep_zero=True),  # *RecursiveReadOnlyMode
        8: _strs("bindMountOptions"),
    },
    "core.v1.Volume": {
        1: _str("name", keep_zero=True),
        2: _inline("core.v1.VolumeSource"),
    },
    "core.v1.VolumeSource": {
        1: _message("hostPath", "core.v1.HostPathVolumeSource"),  # *HostPathVolumeSource
        2: _message("emptyDir", "core.v1.EmptyDirVolumeSource"),  # *EmptyDirVolumeSource
        6: _message("secret", "core.v1.SecretVolumeSource"),  # *SecretVolumeSource
        19: _message("configMap", "core.v1.ConfigMapVolumeSource"),  # *ConfigMapVolumeSource
    },
    "core.v1.EmptyDirVolumeSource": {
        1: _str("medium"),
        2: _quantity("sizeLimit"),  # *resource.Quantity
        3: _int32("mode", keep_zero=True),  # *int32
    },
    "core.v1.ConfigMapVolumeSource": {
        1: _inline("core.v1.LocalObjectReference"),
        2: _messages("items", "core.v1.KeyToPath"),
        3: _int32("defaultMode", keep_zero=True),  # *int32
        4: _bool("optional", keep_zero=True),  # *bool
        5: _int64("defaultUser", keep_zero=True),  # *int64
    },
    "core.v1.SecretVolumeSource": {
        1: _str("secretName"),
        2: _messages("items", "core.v1.KeyToPath"),
        3: _int32("defaultMode", keep_zero=True),  # *int32
        4: _bool("optional", keep_zero=True),  # *bool
        5: _int64("defaultUser", keep_zero=True),  # *int64
    },
    "core.v1.HostPathVolumeSource": {
        1: _str("path", keep_zero=True),
        2: _str("type", keep_zero=True),  # *HostPathType
    },
    "core.v1.KeyToPath": {
        1: _str("key", keep_zero=True),
        2: _str("path", keep_zero=True),
        3: _int32("mode", keep_zero=True),  # *int32
        4: _int64("user", keep_zero=True),  # *int64
    },
    "core.v1.Probe": {
        1: _inline("core.v1.ProbeHandler"),
        2: _int32("initialDelaySeconds"),
        3: _int32("timeoutSeconds"),
        4: _int32("periodSeconds"),
        5: _int32("successThreshold"),
        6: _int32("failureThreshold"),
        7: _int64("terminationGracePeriodSeconds", keep_zero=True),  # *int64
    },
    "core.v1.ProbeHandler": {
        1: _message("exec", "core.v1.ExecAction"),  # *ExecAction
        2: _message("httpGet", "core.v1.HTTPGetAction"),  # *HTTPGetAction
        3: _message("tcpSocket", "core.v1.TCPSocketAction"),  # *TCPSocketAction
        4: _message("grpc", "core.v1.GRPCAction"),  # *GRPCAction
    },
    "core.v1.ExecAction": {
        1: _strs("command"),
    },
    "core.v1.HTTPGetAction": {
        1: _str("path"),
        2: _int_or_string("port"),
        3: _str("host"),
        4: _str("scheme"),
        5: _messages("httpHeaders", "core.v1.HTTPHeader"),
        6: _str("protocol", keep_zero=True),  # *HTTPProtocol
    },
    "core.v1.HTTPHeader": {
        1: _str("name", keep_zero=True),
        2: _str("value", keep_zero=True),
    },
    "core.v1.TCPSocketAction": {
        1: _int_or_string("port"),
        2: _str("host"),
    },
    "core.v1.GRPCAction": {
        1: _int32("port", keep_zero=True),
        2: _str("service", keep_zero=True),  # *string
        3: _str("mode", keep_zero=True),  # *GRPCProbeMode
    },
    "core.v1.Lifecycle": {
        1: _message("postStart", "core.v1.LifecycleHandler"),  # *LifecycleHandler
        2: _message("preStop", "core.v1.LifecycleHandler"),  # *LifecycleHandler
        3: _str("stopSignal", keep_zero=True),  # *Signal
    },
    "core.v1.LifecycleHandler": {
        1: _message("exec", "core.v1.ExecAction"),  # *ExecAction
        2: _message("httpGet", "core.v1.HTTPGetAction"),  # *HTTPGetAction
        3: _message("tcpSocket", "core.v1.TCPSocketAction"),  # *TCPSocketAction
        4: _message("sleep", "core.v1.SleepAction"),  # *SleepAction
    },
    "core.v1.SleepAction": {
        1: _int64("seconds", keep_zero=True),
    },
    "core.v1.Toleration": {
        1: _str("key"),
        2: _str("operator"),
        3: _str("value"),
        4: _str("effect"),
        5: _int64("tolerationSeconds", keep_zero=True),  # *int64
    },
    "core.v1.Service": {
        1: _message("metadata", "meta.v1.ObjectMeta"),
        2: _message("spec", "core.v1.ServiceSpec"),
        3: _message("status", "core.v1.ServiceStatus"),
    },
    "core.v1.ServiceSpec": {
        1: _messages("ports", "core.v1.ServicePort"),
        2: _map("selector"),
        3: _str("clusterIP"),
        4: _str("type"),
        5: _strs("externalIPs"),
        7: _str("sessionAffinity"),
        8: _str("loadBalancerIP"),
        9: _strs("loadBalancerSourceRanges"),
        10: _str("externalName"),
        11: _str("externalTrafficPolicy"),
        12: _int32("healthCheckNodePort"),
        13: _bool("publishNotReadyAddresses"),
        14: _message("sessionAffinityConfig", "core.v1.SessionAffinityConfig"),  # *SessionAffinityConfig
        17: _str("ipFamilyPolicy", keep_zero=True),  # *IPFamilyPolicy
        18: _strs("clusterIPs"),
        19: _strs("ipFamilies"),
        20: _bool("allocateLoadBalancerNodePorts", keep_zero=True),  # *bool
        21: _str("loadBalancerClass", keep_zero=True),  # *string
        22: _str("internalTrafficPolicy", keep_zero=True),  # *ServiceInternalTrafficPolicy
        23: _str("trafficDistribution", keep_zero=True),  # *string
    },
    "core.v1.ServicePort": {
        1: _str("name"),
        2: _str("protocol"),
        3: _int32("port", keep_zero=True),
        4: _int_or_string("targetPort"),
        5: _int32("nodePort"),
        6: _str("appProtocol", keep_zero=True),  # *string
    },
    "core.v1.ServiceStatus": {
        1: _message("loadBalancer", "core.v1.LoadBalancerStatus"),
        2: _messages("conditions", "meta.v1.Condition"),
    },
    "core.v1.LoadBalancerStatus": {
        1: _messages("ingress", "core.v1.LoadBalancerIngress"),
    },
    "core.v1.LoadBalancerIngress": {
        1: _str("ip"),
        2: _str("hostname"),
        3: _str("ipMode", keep_zero=True),  # *LoadBalancerIPMode
        4: _messages("ports", "core.v1.PortStatus"),
    },
    "core.v1.PortStatus": {
        1: _int32("port", keep_zero=True),
        2: _str("protocol", keep_zero=True),
        3: _str("error", keep_zero=True),  # *string
    },
    "core.v1.SessionAffinityConfig": {
        1: _message("clientIP", "core.v1.ClientIPConfig"),  # *ClientIPConfig
    },
    "core.v1.ClientIPConfig": {
        1: _int32("timeoutSeconds", keep_zero=True),  # *int32
    },
    "core.v1.ConfigMap": {
        1: _message("metadata", "meta.v1.ObjectMeta"),
        2: _map("data"),
        3: _map("binaryData", Kind.BYTES),
        4: _bool("immutable", keep_zero=True),  # *bool
    },
    "core.v1.Namespace": {
        1: _message("metadata", "meta.v1.ObjectMeta"),
        2: _message("spec", "core.v1.NamespaceSpec"),
        3: _message("status", "core.v1.NamespaceStatus"),
    },
    "core.v1.NamespaceSpec": {
        1: _strs("finalizers"),
    },
    "core.v1.NamespaceStatus": {
        1: _str("phase"),
        2: _messages("conditions", "core.v1.NamespaceCondition"),
    },
    "core.v1.NamespaceCondition": {
        1: _str("type", keep_zero=True),
        2: _str("status", keep_zero=True),
        4: _time("lastTransitionTime"),
        5: _str("reason"),
        6: _str("message"),
    },
    "core.v1.Node": {
        1: _message("metadata", "meta.v1.ObjectMeta"),
        2: _message("spec", "core.v1.NodeSpec"),
        3: _message("status", "core.v1.NodeStatus"),
    },
    "core.v1.NodeSpec": {
        1: _str("podCIDR"),
        2: _str("externalID"),
        3: _str("providerID"),
        4: _bool("unschedulable"),
        5: _messages("taints", "core.v1.Taint"),
        7: _strs("podCIDRs"),
    },
    "core.v1.Taint": {
        1: _str("key", keep_zero=True),
        2: _str("value"),
        3: _str("effect", keep_zero=True),
        4: _time("timeAdded"),  # *metav1.Time
    },
    "core.v1.NodeStatus": {
        1: _map("capacity", Kind.QUANTITY),
        2: _map("allocatable", Kind.QUANTITY),
        3: _str("phase"),
        4: _messages("conditions", "core.v1.NodeCondition"),
        5: _messages("addresses", "core.v1.NodeAddress"),
        6: _message("daemonEndpoints", "core.v1.NodeDaemonEndpoints"),
        7: _message("nodeInfo", "core.v1.NodeSystemInfo"),
        8: _messages("images", "core.v1.ContainerImage"),
        9: _strs("volumesInUse"),
        14: _strs("declaredFeatures"),
    },
    "core.v1.NodeAddress": {
        1: _str("type", keep_zero=True),
        2: _str("address", keep_zero=True),
    },
    "core.v1.NodeCondition": {
        1: _str("type", keep_zero=True),
        2: _str("status", keep_zero=True),
        3: _time("lastHeartbeatTime"),
        4: _time("lastTransitionTime"),
        5: _str("reason"),
        6: _str("message"),
    },
    "core.v1.NodeDaemonEndpoints": {
        1: _message("kubeletEndpoint", "core.v1.DaemonEndpoint"),
    },
    "core.v1.DaemonEndpoint": {
        1: _int32("Port", keep_zero=True),
    },
    "core.v1.NodeSystemInfo": {
        1: _str("machineID", keep_zero=True),
        2: _str("systemUUID", keep_zero=True),
        3: _str("bootID", keep_zero=True),
        4: _str("kernelVersion", keep_zero=True),
        5: _str("osImage", keep_zero=True),
        6: _str("containerRuntimeVersion", keep_zero=True),
        7: _str("kubeletVersion", keep_zero=True),
        8: _str("kubeProxyVersion", keep_zero=True),
        9: _str("operatingSystem", keep_zero=True),
        10: _str("architecture", keep_zero=True),
    },
    "core.v1.ContainerImage": {
        1: _strs("names"),
        2: _int64("sizeBytes"),
    },
    "core.v1.Event": {
        1: _message("metadata", "meta.v1.ObjectMeta"),
        2: _message("involvedObject", "core.v1.ObjectReference"),
        3: _str("reason"),
        4: _str("message"),
        5: _message("source", "core.v1.EventSource"),
        6: _time("firstTimestamp"),
        7: _time("lastTimestamp"),
        8: _int32("count"),
        9: _str("type"),
        10: _micro_time("eventTime"),
        11: _message("series", "core.v1.EventSeries"),  # *EventSeries
        12: _str("action"),
        13: _message("related", "core.v1.ObjectReference"),  # *ObjectReference
        14: _str("reportingComponent", keep_zero=True),
        15: _str("reportingInstance", keep_zero=True),
    },
    "core.v1.ObjectReference": {
        1: _str("kind"),
        2: _str("namespace"),
        3: _str("name"),
        4: _str("uid"),
        5: _str("apiVersion"),
        6: _str("resourceVersion"),
        7: _str("fieldPath"),
    },
    "core.v1.EventSource": {
        1: _str("component"),
        2: _str("host"),
    },
    "core.v1.EventSeries": {
        1: _int32("count"),
        2: _micro_time("lastObservedTime"),
    },
    "core.v1.TypedLocalObjectReference": {
        1: _str("apiGroup", keep_zero=True),  # *string
        2: _str("kind", keep_zero=True),
        3: _str("name", keep_zero=True),
    },
    "apps.v1.Deployment": {
        1: _message("metadata", "meta.v1.ObjectMeta"),
        2: _message("spec", "apps.v1.DeploymentSpec"),
        3: _message("status", "apps.v1.DeploymentStatus"),
    },
    "apps.v1.DeploymentSpec": {
        1: _int32("replicas", keep_zero=True),  # *int32
        2: _message("selector", "meta.v1.LabelSelector"),  # *metav1.LabelSelector
        3: _message("template", "core.v1.PodTemplateSpec"),
        4: _message("strategy", "apps.v1.DeploymentStrategy"),
        5: _int32("minReadySeconds"),
        6: _int32("revisionHistoryLimit", keep_zero=True),  # *int32
        7: _bool("paused"),
        9: _int32("progressDeadlineSeconds", keep_zero=True),  # *int32
    },
    "apps.v1.DeploymentStrategy": {
        1: _str("type"),
        2: _message("rollingUpdate", "apps.v1.RollingUpdateDeployment"),  # *RollingUpdateDeployment
    },
    "apps.v1.RollingUpdateDeployment": {
        1: _int_or_string("maxUnavailable"),  # *intstr.IntOrString
        2: _int_or_string("maxSurge"),  # *intstr.IntOrString
    },
    "apps.v1.DeploymentStatus": {
        1: _int64("observedGeneration"),
        2: _int32("replicas"),
        3: _int32("updatedReplicas"),
        4: _int32("availableReplicas"),
        5: _int32("unavailableReplicas"),
        6: _messages("conditions", "apps.v1.DeploymentCondition"),
        7: _int32("readyReplicas"),
        8: _int32("collisionCount", keep_zero=True),  # *int32
        9: _int32("terminatingReplicas", keep_zero=True),  # *int32
    },
    "apps.v1.DeploymentCondition": {
        1: _str("type", keep_zero=True),
        2: _str("status", keep_zero=True),
        4: _str("reason"),
        5: _str("message"),
        6: _time("lastUpdateTime"),
        7: _time("lastTransitionTime"),
    },
    "apps.v1.ReplicaSet": {
        1: _message("metadata", "meta.v1.ObjectMeta"),
        2: _message("spec", "apps.v1.ReplicaSetSpec"),
        3: _message("status", "apps.v1.ReplicaSetStatus"),
    },
    "apps.v1.ReplicaSetSpec": {
        1: _int32("replicas", keep_zero=True),  # *int32
        2: _message("selector", "meta.v1.LabelSelector"),  # *metav1.LabelSelector
        3: _message("template", "core.v1.PodTemplateSpec"),
        4: _int32("minReadySeconds"),
    },
    "apps.v1.ReplicaSetStatus": {
        1: _int32("replicas", keep_zero=True),
        2: _int32("fullyLabeledReplicas"),
        3: _int64("observedGeneration"),
        4: _int32("readyReplicas"),
        5: _int32("availableReplicas"),
        6: _messages("conditions", "apps.v1.ReplicaSetCondition"),
        7: _int32("terminatingReplicas", keep_zero=True),  # *int32
    },
    "apps.v1.ReplicaSetCondition": {
        1: _str("type", keep_zero=True),
        2: _str("status", keep_zero=True),
        3: _time("lastTransitionTime"),
        4: _str("reason"),
        5: _str("message"),
    },
    "networking.v1.Ingress": {
        1: _message("metadata", "meta.v1.ObjectMeta"),
        2: _message("spec", "networking.v1.IngressSpec"),
        3: _message("status", "networking.v1.IngressStatus"),
    },
    "networking.v1.IngressSpec": {
        1: _message("defaultBackend", "networking.v1.IngressBackend"),  # *IngressBackend
        2: _messages("tls", "networking.v1.IngressTLS"),
        3: _messages("rules", "networking.v1.IngressRule"),
        4: _str("ingressClassName", keep_zero=True),  # *string
    },
    "networking.v1.IngressBackend": {
        3: _message("resource", "core.v1.TypedLocalObjectReference"),  # *v1.TypedLocalObjectReference
        4: _message("service", "networking.v1.IngressServiceBackend"),  # *IngressServiceBackend
    },
    "networking.v1.IngressServiceBackend": {
        1: _str("name", keep_zero=True),
        2: _message("port", "networking.v1.ServiceBackendPort"),
    },
    "networking.v1.ServiceBackendPort": {
        1: _str("name"),
        2: _int32("number"),
    },
    "networking.v1.IngressTLS": {
        1: _strs("hosts"),
        2: _str("secretName"),
    },
    "networking.v1.IngressRule": {
        1: _str("host"),
        2: _inline("networking.v1.IngressRuleValue"),
    },
    "networking.v1.IngressRuleValue": {
        1: _message("http", "networking.v1.HTTPIngressRuleValue"),  # *HTTPIngressRuleValue
    },
    "networking.v1.HTTPIngressRuleValue": {
        1: _messages("paths", "networking.v1.HTTPIngressPath"),
    },
    "networking.v1.HTTPIngressPath": {
        1: _str("path"),
        2: _message("backend", "networking.v1.IngressBackend"),
        3: _str("pathType", keep_zero=True),  # *PathType
    },
    "networking.v1.IngressStatus": {
        1: _message("loadBalancer", "networking.v1.IngressLoadBalancerStatus"),
    },
    "networking.v1.IngressLoadBalancerStatus": {
        1: _messages("ingress", "networking.v1.IngressLoadBalancerIngress"),
    },
    "networking.v1.IngressLoadBalancerIngress": {
        1: _str("ip"),
        2: _str("hostname"),
        4: _messages("ports", "networking.v1.IngressPortStatus"),
    },
    "networking.v1.IngressPortStatus": {
        1: _int32("port", keep_zero=True),
        2: _str("protocol", keep_zero=True),
        3: _str("error", keep_zero=True),  # *string
    },
    # authorization/v1: what `kubectl auth can-i` sends.
    "authorization.v1.SelfSubjectAccessReview": {
        1: _message("metadata", "meta.v1.ObjectMeta"),
        2: _message("spec", "authorization.v1.SelfSubjectAccessReviewSpec"),
        3: _message("status", "authorization.v1.SubjectAccessReviewStatus"),
    },
    "authorization.v1.SelfSubjectAccessReviewSpec": {
        1: _message("resourceAttributes", "authorization.v1.ResourceAttributes"),
        2: _message("nonResourceAttributes", "authorization.v1.NonResourceAttributes"),
    },
    "authorization.v1.ResourceAttributes": {
        1: _str("namespace"),
        2: _str("verb"),
        3: _str("group"),
        4: _str("version"),
        5: _str("resource"),
        6: _str("subresource"),
        7: _str("name"),
    },
    "authorization.v1.NonResourceAttributes": {
        1: _str("path"),
        2: _str("verb"),
    },
    "authorization.v1.SubjectAccessReviewStatus": {
        1: _bool("allowed", keep_zero=True),
        4: _bool("denied"),
        2: _str("reason"),
        3: _str("evaluationError"),
    },
}

# (apiVersion, kind) from the envelope's typeMeta -> the schema of `raw`.
KINDS: dict[tuple[str, str], str] = {
    ("apps/v1", "Deployment"): "apps.v1.Deployment",
    ("apps/v1", "ReplicaSet"): "apps.v1.ReplicaSet",
    ("v1", "Pod"): "core.v1.Pod",
    ("v1", "Service"): "core.v1.Service",
    ("v1", "ConfigMap"): "core.v1.ConfigMap",
    ("v1", "Namespace"): "core.v1.Namespace",
    ("v1", "Node"): "core.v1.Node",
    ("v1", "Event"): "core.v1.Event",
    ("networking.k8s.io/v1", "Ingress"): "networking.v1.Ingress",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "authorization.v1.SelfSubjectAccessReview",
}


def is_protobuf(content_type: str) -> bool:
    """Whether a Content-Type header names the Kubernetes protobuf encoding (parameters ignored)."""
    return content_type.split(";", 1)[0].strip().lower() == MEDIA_TYPE


def decode(body: bytes, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """The JSON form of a Kubernetes protobuf body: `kind` and `apiVersion` from its typeMeta, then the
    object's fields. Raises ProtobufError (one line) for a missing magic, malformed wire data, a kind not
    in `KINDS`, a compressed payload, or messages nested deeper than `max_depth`.
    """
    data = memoryview(body)
    if data[: len(MAGIC)] != MAGIC:
        raise ProtobufError("not a Kubernetes protobuf body: missing the k8s\\x00 magic")
    api_version, kind, raw = _decode_envelope(data[len(MAGIC) :])
    schema = KINDS.get((api_version, kind))
    if schema is None:
        raise ProtobufError(f"unsupported kind {kind!r} in apiVersion {api_version!r}")
    return {"kind": kind, "apiVersion": api_version, **_decode_message(raw, schema, 1, max_depth)}


def _decode_envelope(data: memoryview) -> tuple[str, str, memoryview]:
    """(apiVersion, kind, raw) of a runtime.Unknown message."""
    api_version = kind = ""
    raw = memoryview(b"")
    for number, wire, value in _iter_fields(data):
        if number == 1:
            for inner, inner_wire, inner_value in _iter_fields(_expect_len("typeMeta", wire, value)):
                if inner == 1:
                    api_version = _text(_expect_len("typeMeta.apiVersion", inner_wire, inner_value))
                elif inner == 2:
                    kind = _text(_expect_len("typeMeta.kind", inner_wire, inner_value))
        elif number == 2:
            raw = _expect_len("raw", wire, value)
        elif number == 3:
            encoding = _text(_expect_len("contentEncoding", wire, value))
            if encoding:
                raise ProtobufError(f"unsupported contentEncoding {encoding!r}")
    return api_version, kind, raw


def _decode_message(data: memoryview, schema: str, depth: int, max_depth: int) -> dict[str, Any]:
    """The JSON dict of one message of `schema`, `depth` levels below the envelope."""
    if depth > max_depth:
        raise ProtobufError(f"messages nested deeper than {max_depth} levels")
    fields = SCHEMAS[schema]
    out: dict[str, Any] = {}
    for number, wire, value in _iter_fields(data):
        field = fields.get(number)
        if field is not None:  # unknown numbers (newer API fields, unmodelled ones) are skipped
            _set_field(out, field, f"{schema}.{number}", wire, value, depth, max_depth)
    return out


def _set_field(
    out: dict[str, Any],
    field: Field,
    where: str,
    wire: int,
    value: int | memoryview,
    depth: int,
    max_depth: int,
) -> None:
    """Put one wire occurrence of `field` into `out`: the last scalar wins, repeated fields append,
    a message seen twice merges (as in proto2), an embedded struct's fields join `out`.
    """
    if field.name is None:
        out.update(_decode_message(_expect_len(where, wire, value), field.message, depth + 1, max_depth))
        return
    name = field.name
    if field.kind is Kind.MAP:
        key, item = _decode_map_entry(_expect_len(where, wire, value), field.value or Kind.STRING, where)
        out.setdefault(name, {})[key] = item
        return
    decoded = _decode_value(field, where, wire, value, depth, max_depth)
    if field.repeated:
        out.setdefault(name, []).append(decoded)
    elif field.kind is Kind.MESSAGE and isinstance(out.get(name), dict):
        out[name].update(decoded)
    elif field.kind in _SCALAR_KINDS and not decoded and not field.keep_zero:
        out.pop(name, None)  # what `omitempty` drops
    else:
        out[name] = decoded  # includes empty structs: encoding/json never omits a struct


def _decode_value(
    field: Field, where: str, wire: int, value: int | memoryview, depth: int, max_depth: int
) -> Any:
    """The JSON value of one wire occurrence of a non-map field."""
    if field.kind in _VARINT_KINDS:
        if not isinstance(value, int) or wire != _VARINT:
            raise ProtobufError(f"field {where}: wire type {wire}, want {_VARINT}")
        if field.kind is Kind.BOOL:
            return value != 0
        return _signed(value, 32 if field.kind is Kind.INT32 else 64)
    data = _expect_len(where, wire, value)
    if field.kind is Kind.MESSAGE:
        return _decode_message(data, field.message, depth + 1, max_depth)
    if field.kind is Kind.STRING:
        return _text(data)
    if field.kind is Kind.BYTES:
        return base64.b64encode(data).decode("ascii")
    if field.kind in (Kind.TIME, Kind.MICRO_TIME):
        return _decode_time(data, where, micro=field.kind is Kind.MICRO_TIME)
    if field.kind is Kind.INT_OR_STRING:
        return _decode_int_or_string(data, where)
    return _decode_quantity(data, where)


def _decode_map_entry(data: memoryview, value_kind: Kind, where: str) -> tuple[str, Any]:
    key = ""
    value: Any = {Kind.STRING: "", Kind.BYTES: "", Kind.QUANTITY: "0"}.get(value_kind, "")
    for number, wire, item in _iter_fields(data):
        if number == 1:
            key = _text(_expect_len(f"{where} key", wire, item))
        elif number == 2:
            raw = _expect_len(f"{where} value", wire, item)
            if value_kind is Kind.BYTES:
                value = base64.b64encode(raw).decode("ascii")
            elif value_kind is Kind.QUANTITY:
                value = _decode_quantity(raw, where)
            else:
                value = _text(raw)
    return key, value


def _decode_time(data: memoryview, where: str, *, micro: bool) -> str | None:
    """RFC 3339 in UTC, or None for Go's zero time (an empty message)."""
    if not data:
        return None
    seconds = nanos = 0
    for number, wire, value in _iter_fields(data):
        if number in (1, 2):
            if not isinstance(value, int) or wire != _VARINT:
                raise ProtobufError(f"field {where}: time wire type {wire}, want {_VARINT}")
            if number == 1:
                seconds = _signed(value, 64)
            else:
                nanos = _signed(value, 32)
    micros = int(nanos / 1000) if micro else 0  # MicroTime truncates toward zero; Time drops nanos
    try:
        moment = _EPOCH + datetime.timedelta(seconds=seconds, microseconds=micros)
    except OverflowError:
        raise ProtobufError(f"field {where}: time {seconds}s out of range") from None
    if moment == _GO_ZERO_TIME:
        return None
    text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"
    return f"{text}.{moment.microsecond:06d}Z" if micro else f"{text}Z"


def _decode_int_or_string(data: memoryview, where: str) -> int | str:
    kind = int_value = 0
    str_value = ""
    for number, wire, value in _iter_fields(data):
        if number in (1, 2):
            if not isinstance(value, int) or wire != _VARINT:
                raise ProtobufError(f"field {where}: IntOrString wire type {wire}, want {_VARINT}")
            if number == 1:
                kind = _signed(value, 64)
            else:
                int_value = _signed(value, 32)
        elif number == 3:
            str_value = _text(_expect_len(where, wire, value))
    if kind == 0:
        return int_value
    if kind == 1:
        return str_value
    raise ProtobufError(f"field {where}: IntOrString type {kind}, want 0 (int) or 1 (string)")


def _decode_quantity(data: memoryview, where: str) -> str:
    text = "0"  # the zero Quantity
    for number, wire, value in _iter_fields(data):
        if number == 1:
            text = _text(_expect_len(where, wire, value))
    return text


def _iter_fields(data: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) for each field of one message: an int for varint and fixed
    wire types, a slice of `data` for length-delimited ones. Each step consumes at least one byte.
    """
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError(f"invalid field number 0 at byte {pos}")
        value: int | memoryview
        if wire == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            if end - pos < size:
                raise ProtobufError(f"field {number}: truncated fixed{size * 8} value")
            value, pos = int.from_bytes(data[pos : pos + size], "little"), pos + size
        elif wire == _LEN:
            length, pos = _read_varint(data, pos)
            if length > end - pos:
                raise ProtobufError(
                    f"field {number}: length {length} runs past the end ({end - pos} bytes left)"
                )
            value, pos = data[pos : pos + length], pos + length
        else:
            raise ProtobufError(f"field {number}: unsupported wire type {wire}")
        yield number, wire, value


def _read_varint(data: memoryview, pos: int) -> tuple[int, int]:
    """(value as uint64, next position); at most 10 bytes, as Go reads them."""
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        if shift >= 64:
            raise ProtobufError("varint longer than 10 bytes")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _U64, pos
        shift += 7


def _signed(value: int, bits: int) -> int:
    """Two's complement reading of the low `bits` bits, as Go's int32/int64 conversion does."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _expect_len(where: str, wire: int, value: int | memoryview) -> memoryview:
    if not isinstance(value, memoryview) or wire != _LEN:
        raise ProtobufError(f"field {where}: wire type {wire}, want {_LEN}")
    return value


def _text(data: memoryview) -> str:
    # Go strings may hold any bytes; encoding/json replaces invalid UTF-8 with U+FFFD, so do we.
    return bytes(data).decode("utf-8", errors="replace")
