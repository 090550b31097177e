#!/usr/bin/env python3
"""The sandbox's one simulated step: what EC2 boot plus kubelet do for an instance Karpenter launched in the emulator.

Karpenter's AWS provider launches instances with CreateFleet; in the sandbox they exist only in moto. This process
watches them and registers each one as a Kubernetes Node the way its kubelet would (and removes the Node when the
instance goes away, as the cloud controller manager would). KWOK then runs the Node (annotation
``kwok.x-k8s.io/node: fake``: heartbeats, Ready, pods Running, evictions) and Karpenter finds it by providerID.

Loop (every ``--interval`` seconds, one DescribeInstances per tick):

* Instances are those Karpenter itself lists (``pkg/providers/instance``): tags ``karpenter.sh/nodepool`` and
  ``karpenter.k8s.aws/ec2nodeclass`` present and ``eks:eks-cluster-name`` = ``--cluster-name`` (the server-side
  filter is the cluster tag plus the nodepool tag key, because moto keeps only the last of repeated ``tag-key``
  filters; the node class tag is checked client-side), in states pending/running/stopping/stopped.
* A pending/running instance without a Node is joined once (kubelet registers once; a Node deleted later is not
  re-created while this process runs): DescribeInstanceAttribute ``userData`` is decoded and parsed as the AMI
  would (below), and the Node is created with

  - name = the instance's private DNS name, ``spec.providerID`` = ``aws:///<zone>/<instance-id>``;
  - labels: kubelet's (``kubernetes.io/hostname``, ``kubernetes.io/os``, ``kubernetes.io/arch`` and the
    ``beta.kubernetes.io/`` os/arch), then the user data's node labels, then the cloud controller's
    (``node.kubernetes.io/instance-type``, ``topology.kubernetes.io/zone``/``region``, ``topology.k8s.aws/zone-id``);
  - taints = the user data's registerWithTaints / ``--register-with-taints`` / ``node-taints``. Karpenter always
    puts ``karpenter.sh/unregistered:NoExecute`` there; it is never added here (a missing one is a warning, and
    Karpenter will complain, as with a real node);
  - annotations ``kwok.x-k8s.io/node: fake`` and ``node-join.sandbox.local/instance-id: <id>`` (how a restarted
    node-join recognises its own Nodes);
  - ``status.capacity``/``allocatable`` from DescribeInstanceTypes (cached per type) and the user data's kubelet
    settings, computed like kubelet (see ``node_resources``), and ``status.nodeInfo`` architecture/OS. Node
    creation keeps the status; if an apiserver dropped it, the status subresource is patched.

* A Node this process created (or adopted at start-up: kwok annotation, our instance-id annotation and the matching
  providerID) is deleted when its instance is shutting-down, terminated or gone. No other Node is ever touched.

User data formats (what the instance's boot would hand to kubelet):

* AL2023 / nodeadm: MIME multipart with ``application/node.eks.aws`` parts (``node.eks.aws/v1alpha1 NodeConfig``),
  or a bare NodeConfig YAML. Several NodeConfigs merge as nodeadm merges them: ``spec.kubelet.config`` deep-merged
  (later wins), ``spec.kubelet.flags`` appended. Used: ``config.registerWithTaints``, ``maxPods``, ``podsPerCore``,
  ``kubeReserved``, ``systemReserved``, ``evictionHard``; flags ``--node-labels``, ``--register-with-taints``,
  ``--max-pods``, ``--pods-per-core``, ``--kube-reserved``, ``--system-reserved``, ``--eviction-hard`` (a flag
  wins over the config, as in kubelet).
* Bottlerocket TOML: ``settings.kubernetes`` ``node-labels``, ``node-taints`` (``key = ["value:Effect"]``),
  ``max-pods``, ``kube-reserved``, ``system-reserved``, ``eviction-hard``.
* AL2 (and Custom AMIs using it): a shell script, plain or in MIME parts, running ``/etc/eks/bootstrap.sh`` with
  ``--use-max-pods`` and ``--kubelet-extra-args '...'`` (the kubelet flags above). The last invocation counts.
* Anything else (empty, other scripts): the Node gets the kubelet/cloud labels only, and a log line says so.

What kubelet refuses (``--node-labels`` in ``kubernetes.io``/``k8s.io`` namespaces it may not set, a taint with an
unknown effect, a NodeConfig that is not YAML, a malformed quantity) leaves the instance without a Node, logged
once, as a kubelet that does not start would.

Capacity/allocatable (``node_resources``): cpu = vCPUs; memory = MiB (less 64 MiB on Graviton) less the VM
overhead (``--vm-memory-overhead-percent``, Karpenter's ``VM_MEMORY_OVERHEAD_PERCENT``, default 0.075, rounded up
to MiB: what Karpenter expects and records in its discovered-capacity cache); pods = the user data's max pods,
else 110 for AL2 with ``--use-max-pods false``, else the ENI limit ``ENIs * (IPv4 per ENI - 1) + 2``, capped by
pods-per-core; ephemeral-storage = the size of the volume on ``/dev/xvda`` (Bottlerocket: ``/dev/xvdb``) if the
instance has one, else 20Gi; nonzero ``nvidia.com/gpu``, ``amd.com/gpu``, ``aws.amazon.com/neuron``,
``aws.amazon.com/neuroncore``, ``habana.ai/gaudi``, ``vpc.amazonaws.com/efa``. Allocatable subtracts kube-reserved
(defaults as nodeadm/bootstrap.sh/Bottlerocket and Karpenter compute them: CPU 6/1/0.5/0.25 % ranges, memory
``11 * pods + 255`` Mi with the ENI-limited pods, Bottlerocket its max pods, ephemeral-storage 1Gi), merged with the
user data's, system-reserved, and the hard eviction thresholds (memory.available 100Mi and nodefs.available 10 %
unless set). With Karpenter's defaults the result equals what Karpenter expects.

Not modelled: the cloud controller's ``node.cloudprovider.kubernetes.io/uninitialized`` taint, node addresses
(KWOK sets 127.0.0.1, which keeps ``kubectl logs`` on loopback), ``vpc.amazonaws.com/pod-eni`` and other device
plugins' resources, stopped instances (their Nodes stay), Windows, kubelet re-registration after a Node is deleted.

CLI::

    python sandbox/node_join.py --kubeconfig PATH --aws-endpoint http://127.0.0.1:5055 --region us-east-1 \\
        --cluster-name sandbox [--interval 0.5] [--ready-file F] [--vm-memory-overhead-percent 0.075] [--once]

AWS credentials come from the environment. The AWS endpoint and the kubeconfig's server must be loopback
addresses. Runs until SIGTERM/SIGINT; the ready file (JSON ``{"pid", "aws_endpoint", "cluster_name"}``) is
written once the first reconcile (Node list + DescribeInstances) succeeded. ``--once`` runs one reconcile and exits
(status 1 if it failed). One line per join/removal (and per problem) goes to stdout.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import email
import email.policy
import gzip
import http.client
import ipaddress
import json
import math
import os
import re
import shlex
import signal
import ssl
import sys
import tempfile
import threading
import time
import tomllib
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import yaml
from procfiles import write_atomic

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_VALUE = "fake"
INSTANCE_ANNOTATION = "node-join.sandbox.local/instance-id"
UNREGISTERED_TAINT_KEY = "karpenter.sh/unregistered"
NODEPOOL_TAG = "karpenter.sh/nodepool"
NODECLASS_TAG = "karpenter.k8s.aws/ec2nodeclass"
CLUSTER_NAME_TAG = "eks:eks-cluster-name"
NODECONFIG_CONTENT_TYPE = "application/node.eks.aws"
NODECONFIG_API_VERSION = "node.eks.aws/v1alpha1"
LIVE_STATES = ("pending", "running", "stopping", "stopped")
JOIN_STATES = frozenset({"pending", "running"})
TAINT_EFFECTS = frozenset({"NoSchedule", "PreferNoSchedule", "NoExecute"})
DEFAULT_EPHEMERAL_BYTES = 20 * 1024**3
DEFAULT_VM_MEMORY_OVERHEAD = 0.075
KUBELET_DEFAULT_MAX_PODS = 110
MAX_BACKOFF_SECONDS = 30.0

Ki, Mi, Gi = 1024, 1024**2, 1024**3

# Karpenter's names for the extended resources of an instance type (pkg/apis/v1/labels.go).
GPU_RESOURCES = {"NVIDIA": "nvidia.com/gpu", "AMD": "amd.com/gpu", "Habana": "habana.ai/gaudi"}
OS_IMAGES = {"al2023": "Amazon Linux 2023", "al2": "Amazon Linux 2", "bottlerocket": "Bottlerocket OS"}

# kubelet refuses --node-labels in these namespaces unless the label is one of its own (k8s.io/kubelet/pkg/apis).
KUBELET_LABELS = frozenset(
    {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
    }
)
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


def log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} node-join: {msg}", flush=True)


class UserDataError(ValueError):
    """User data that kubelet (or nodeadm, bootstrap.sh, Bottlerocket) would refuse: the node never registers."""


# ---------------------------------------------------------------------------------------------------------------
# Quantities


_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?)$")
_SUFFIX = {
    None: Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(Ki),
    "Mi": Fraction(Mi),
    "Gi": Fraction(Gi),
    "Ti": Fraction(1024**4),
    "Pi": Fraction(1024**5),
    "Ei": Fraction(1024**6),
}


def parse_quantity(value: str | int | float) -> Fraction:
    """A Kubernetes resource quantity (``100Mi``, ``1.5Gi``, ``250m``, ``2``, ``1e3``) as an exact number."""
    text = str(value).strip()
    m = _QUANTITY.match(text)
    if not m:
        raise UserDataError(f"invalid quantity {value!r}")
    number, exponent, suffix = m.groups()
    base = Fraction(number)
    if exponent:
        return base * Fraction(10) ** int(exponent[1:])
    return base * _SUFFIX[suffix]


def format_quantity(value: Fraction | int, resource: str) -> str:
    """How kubelet would print it: CPU in cores or millicores, bytes in Ki where exact, counts as integers."""
    value = Fraction(value)
    if resource == "cpu":
        milli = value * 1000
        if milli.denominator == 1 and milli.numerator % 1000 == 0:
            return str(milli.numerator // 1000)
        return f"{math.floor(milli)}m"
    if value.denominator != 1:
        return f"{math.floor(value * 1000)}m"
    n = value.numerator
    if resource in ("memory", "ephemeral-storage") and n and n % Ki == 0:
        return f"{n // Ki}Ki"
    return str(n)


# ---------------------------------------------------------------------------------------------------------------
# User data


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str
    value: str = ""

    def to_dict(self) -> dict[str, str]:
        d = {"key": self.key, "effect": self.effect}
        if self.value:
            d["value"] = self.value
        return d

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"


@dataclass
class BootConfig:
    """What the instance's boot hands to kubelet, as far as the Node object is concerned."""

    family: str = "unknown"  # al2023 | bottlerocket | al2 | unknown
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[Taint] | None = None  # None: nothing registers taints
    max_pods: int | None = None
    pods_per_core: int | None = None
    use_max_pods: bool = True  # AL2 bootstrap.sh --use-max-pods
    # Entries merged over the family's defaults ...
    kube_reserved: dict[str, str] = field(default_factory=dict)
    system_reserved: dict[str, str] = field(default_factory=dict)
    eviction_hard: dict[str, str] = field(default_factory=dict)
    # ... unless a kubelet flag set the whole map (a flag replaces the config file's map, defaults included).
    kube_reserved_replaced: bool = False
    eviction_hard_replaced: bool = False
    notes: list[str] = field(default_factory=list)


def decode_user_data(value: str | bytes | None) -> str:
    """The instance's user data as text: DescribeInstanceAttribute returns it base64-encoded.

    A second base64 layer (a launch path that encoded twice) and gzip (cloud-init accepts it) are undone too.
    """
    if not value:
        return ""
    raw = value.encode() if isinstance(value, str) else value
    try:
        data = base64.b64decode(raw.replace(b"\r", b"").replace(b"\n", b""), validate=True)
    except (binascii.Error, ValueError):
        data = raw  # not base64: take it as the text itself
    else:
        if data[:2] != b"\x1f\x8b" and not _is_utf8(data) and _is_utf8(raw):
            data = raw  # text that merely happens to be valid base64
    for _ in range(2):
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
            continue
        compact = data.strip().replace(b"\r", b"").replace(b"\n", b"")
        if compact and re.fullmatch(rb"[A-Za-z0-9+/=]+", compact) and len(compact) % 4 == 0:
            try:
                inner = base64.b64decode(compact, validate=True)
            except (binascii.Error, ValueError):
                break
            if _looks_like_user_data(inner):
                data = inner
                continue
        break
    return data.decode("utf-8", errors="replace")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _looks_like_user_data(data: bytes) -> bool:
    head = data.lstrip()[:64]
    return head[:2] == b"\x1f\x8b" or head.startswith(
        (b"MIME-Version", b"Content-Type", b"#!", b"[settings", b"apiVersion", b"settings", b"kind")
    )


def parse_user_data(text: str) -> BootConfig:
    """Parse user data as the AMI's boot would. Raises UserDataError for what would keep kubelet from starting."""
    stripped = text.strip()
    if not stripped:
        return BootConfig(notes=["empty user data: cloud labels only"])
    if stripped.startswith(("MIME-Version:", "Content-Type:")):
        return _parse_mime(text)
    if stripped.startswith("#!") or "bootstrap.sh" in stripped:
        return _parse_shell_parts([stripped])
    try:
        doc = tomllib.loads(stripped)
    except tomllib.TOMLDecodeError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("settings"), dict):
        return parse_bottlerocket(doc)
    try:
        docs = [d for d in yaml.safe_load_all(stripped) if d is not None]
    except yaml.YAMLError:
        docs = []
    if docs and all(isinstance(d, dict) and d.get("kind") == "NodeConfig" for d in docs):
        return parse_nodeconfigs(docs)
    return BootConfig(
        notes=["user data is neither a NodeConfig, Bottlerocket TOML nor bootstrap.sh: cloud labels only"]
    )


def _parse_mime(text: str) -> BootConfig:
    msg = email.message_from_string(text.replace("\r\n", "\n"), policy=email.policy.compat32)
    nodeconfigs: list[dict] = []
    scripts: list[str] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else str(part.get_payload())
        if ctype == NODECONFIG_CONTENT_TYPE:
            try:
                docs = [d for d in yaml.safe_load_all(content) if d is not None]
            except yaml.YAMLError as e:
                raise UserDataError(f"nodeadm: a NodeConfig part is not YAML: {e}") from e
            for d in docs:
                if not isinstance(d, dict) or d.get("kind") != "NodeConfig":
                    raise UserDataError(f"nodeadm: a {NODECONFIG_CONTENT_TYPE} part holds no NodeConfig")
                nodeconfigs.append(d)
        elif ctype == "text/x-shellscript":
            scripts.append(content)
    if nodeconfigs:
        return parse_nodeconfigs(nodeconfigs)
    return _parse_shell_parts(scripts)


def _deep_merge(dst: dict, src: dict) -> dict:
    out = dict(dst)
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_nodeconfigs(docs: list[dict]) -> BootConfig:
    """AL2023: merge NodeConfigs as nodeadm does (kubelet config deep-merged, later wins; flags appended)."""
    config: dict[str, Any] = {}
    flags: list[str] = []
    for doc in docs:
        api_version = doc.get("apiVersion")
        if api_version != NODECONFIG_API_VERSION:
            raise UserDataError(f"nodeadm: unsupported NodeConfig apiVersion {api_version!r}")
        kubelet = ((doc.get("spec") or {}).get("kubelet")) or {}
        cfg = kubelet.get("config") or {}
        if not isinstance(cfg, dict):
            raise UserDataError("nodeadm: spec.kubelet.config is not a mapping")
        config = _deep_merge(config, cfg)
        extra = kubelet.get("flags") or []
        if not isinstance(extra, list):
            raise UserDataError("nodeadm: spec.kubelet.flags is not a list")
        flags.extend(str(f) for f in extra)
    boot = BootConfig(family="al2023")
    _apply_kubelet_config(boot, config)
    tokens: list[str] = []
    for f in flags:
        try:
            tokens.extend(shlex.split(f))
        except ValueError as e:
            raise UserDataError(f"nodeadm: kubelet flag {f!r}: {e}") from e
    _apply_kubelet_flags(boot, tokens)
    return boot


def _int_setting(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UserDataError(f"{what}: not an integer: {value!r}")
    try:
        n = int(value)
    except ValueError as e:
        raise UserDataError(f"{what}: not an integer: {value!r}") from e
    if n < 0:
        raise UserDataError(f"{what}: negative: {n}")
    return n


def _str_map(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise UserDataError(f"{what}: not a mapping")
    out = {str(k): str(v) for k, v in value.items()}
    return out


def _apply_kubelet_config(boot: BootConfig, config: dict[str, Any]) -> None:
    """Fields of a KubeletConfiguration (camelCase, as in a NodeConfig's spec.kubelet.config)."""
    if "registerWithTaints" in config:
        taints = config["registerWithTaints"] or []
        if not isinstance(taints, list):
            raise UserDataError("registerWithTaints is not a list")
        boot.taints = [_taint_from_dict(t) for t in taints]
    if config.get("maxPods") is not None:
        boot.max_pods = _int_setting(config["maxPods"], "maxPods")
    if config.get("podsPerCore") is not None:
        boot.pods_per_core = _int_setting(config["podsPerCore"], "podsPerCore")
    for key, attr in (
        ("kubeReserved", "kube_reserved"),
        ("systemReserved", "system_reserved"),
        ("evictionHard", "eviction_hard"),
    ):
        if config.get(key) is not None:
            setattr(boot, attr, getattr(boot, attr) | _str_map(config[key], key))


def _taint_from_dict(t: Any) -> Taint:
    if not isinstance(t, dict) or not t.get("key"):
        raise UserDataError(f"registerWithTaints: invalid taint {t!r}")
    taint = Taint(key=str(t["key"]), value=str(t.get("value") or ""), effect=str(t.get("effect") or ""))
    _check_taint(taint)
    return taint


def _check_taint(t: Taint) -> None:
    if t.effect not in TAINT_EFFECTS:
        raise UserDataError(f"taint {t}: invalid effect {t.effect!r} (kubelet would not start)")


def parse_taints(spec: str) -> list[Taint]:
    """``--register-with-taints``: ``key=value:Effect`` or ``key:Effect``, comma-separated."""
    taints = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        kv, sep, effect = item.rpartition(":")
        if not sep or not kv:
            raise UserDataError(f"invalid taint {item!r} (want key[=value]:Effect)")
        key, _, value = kv.partition("=")
        t = Taint(key=key, value=value, effect=effect)
        _check_taint(t)
        taints.append(t)
    return taints


def parse_map(spec: str, sep: str = "=") -> dict[str, str]:
    """``k=v,k2=v2`` (``--node-labels``, ``--kube-reserved``) or ``k<v,...`` (``--eviction-hard``)."""
    out: dict[str, str] = {}
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        k, found, v = item.partition(sep)
        if not found:
            raise UserDataError(f"invalid {sep!r}-separated entry {item!r}")
        out[k.strip()] = v.strip()
    return out


_VALUE_FLAGS = frozenset(
    {
        "node-labels",
        "register-with-taints",
        "max-pods",
        "pods-per-core",
        "kube-reserved",
        "system-reserved",
        "eviction-hard",
    }
)


def _apply_kubelet_flags(boot: BootConfig, tokens: list[str]) -> None:
    """kubelet command-line flags (pflag: ``--name=value`` or ``--name value``); a flag wins over the config file."""
    labels_from_flags: dict[str, str] = {}
    kube_reserved: dict[str, str] | None = None
    system_reserved: dict[str, str] | None = None
    eviction_hard: dict[str, str] | None = None
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if not tok.startswith("--"):
            continue
        name, has_value, value = tok[2:].partition("=")
        if name not in _VALUE_FLAGS:
            continue
        if not has_value:
            if i >= len(tokens):
                raise UserDataError(f"kubelet flag --{name} needs a value")
            value = tokens[i]
            i += 1
        if name == "node-labels":  # a map flag: occurrences merge
            labels_from_flags |= parse_map(value)
        elif name == "register-with-taints":  # replaces
            boot.taints = parse_taints(value)
        elif name == "max-pods":
            boot.max_pods = _int_setting(value, "--max-pods")
        elif name == "pods-per-core":
            boot.pods_per_core = _int_setting(value, "--pods-per-core")
        elif name == "kube-reserved":
            kube_reserved = (kube_reserved or {}) | parse_map(value)
        elif name == "system-reserved":
            system_reserved = (system_reserved or {}) | parse_map(value)
        elif name == "eviction-hard":
            eviction_hard = (eviction_hard or {}) | parse_map(value, "<")
    boot.labels |= labels_from_flags
    if kube_reserved is not None:
        boot.kube_reserved, boot.kube_reserved_replaced = kube_reserved, True
    if system_reserved is not None:
        boot.system_reserved = system_reserved
    if eviction_hard is not None:
        boot.eviction_hard, boot.eviction_hard_replaced = eviction_hard, True


def _parse_shell_parts(scripts: list[str]) -> BootConfig:
    invocation: list[str] | None = None
    for script in scripts:
        found = find_bootstrap_invocation(script)
        if found is not None:
            invocation = found
    if invocation is None:
        return BootConfig(
            notes=["no NodeConfig, Bottlerocket settings or /etc/eks/bootstrap.sh call: cloud labels only"]
        )
    return parse_bootstrap_args(invocation)


def find_bootstrap_invocation(script: str) -> list[str] | None:
    """The arguments of the last ``/etc/eks/bootstrap.sh`` call in a shell script (line continuations joined)."""
    joined = re.sub(r"\\\r?\n", " ", script)
    found = None
    for line in joined.splitlines():
        if "bootstrap.sh" not in line or line.lstrip().startswith("#"):
            continue
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue
        for idx, tok in enumerate(tokens):
            if tok.endswith("/bootstrap.sh") or tok == "bootstrap.sh":
                found = tokens[idx + 1 :]
                break
    return found


def parse_bootstrap_args(args: list[str]) -> BootConfig:
    """AL2 ``bootstrap.sh <cluster> [--use-max-pods true|false] [--kubelet-extra-args '...'] ...``."""
    boot = BootConfig(family="al2")
    extra = ""
    i = 0
    while i < len(args):
        tok = args[i]
        i += 1
        if not tok.startswith("--"):
            continue
        name, has_value, value = tok[2:].partition("=")
        if not has_value:
            value = args[i] if i < len(args) else ""
            i += 1
        if name == "use-max-pods":
            boot.use_max_pods = value.strip().lower() != "false"
        elif name == "kubelet-extra-args":
            extra = value
    if extra:
        try:
            tokens = shlex.split(extra)
        except ValueError as e:
            raise UserDataError(f"bootstrap.sh --kubelet-extra-args: {e}") from e
        _apply_kubelet_flags(boot, tokens)
    return boot


def parse_bottlerocket(doc: dict) -> BootConfig:
    """Bottlerocket ``[settings.kubernetes]``: node-labels, node-taints, max-pods, kube/system-reserved, eviction-hard."""
    k8s = (doc.get("settings") or {}).get("kubernetes") or {}
    if not isinstance(k8s, dict):
        raise UserDataError("Bottlerocket: settings.kubernetes is not a table")
    boot = BootConfig(family="bottlerocket")
    boot.labels = _str_map(k8s.get("node-labels") or {}, "settings.kubernetes.node-labels")
    if "node-taints" in k8s:
        taints: list[Taint] = []
        table = k8s.get("node-taints") or {}
        if not isinstance(table, dict):
            raise UserDataError("Bottlerocket: settings.kubernetes.node-taints is not a table")
        for key, values in table.items():
            for v in values if isinstance(values, list) else [values]:
                value, sep, effect = str(v).rpartition(":")
                if not sep:
                    raise UserDataError(f"Bottlerocket: node-taints.{key}: {v!r} is not 'value:Effect'")
                t = Taint(key=str(key), value=value, effect=effect)
                _check_taint(t)
                taints.append(t)
        boot.taints = taints
    if k8s.get("max-pods") is not None:
        boot.max_pods = _int_setting(k8s["max-pods"], "settings.kubernetes.max-pods")
    # Per-key defaults for the reservations; an eviction-hard table replaces Bottlerocket's default thresholds.
    for key, attr in (
        ("kube-reserved", "kube_reserved"),
        ("system-reserved", "system_reserved"),
        ("eviction-hard", "eviction_hard"),
    ):
        if k8s.get(key) is not None:
            setattr(boot, attr, _str_map(k8s[key], f"settings.kubernetes.{key}"))
    boot.eviction_hard_replaced = k8s.get("eviction-hard") is not None
    return boot


def check_kubelet_labels(labels: dict[str, str]) -> None:
    """kubelet exits on --node-labels in the kubernetes.io/k8s.io namespaces that are not its own."""
    bad = []
    for key in labels:
        ns = key.rpartition("/")[0] if "/" in key else ""
        k8s_ns = ns in ("kubernetes.io", "k8s.io") or ns.endswith((".kubernetes.io", ".k8s.io"))
        if not k8s_ns or key in KUBELET_LABELS:
            continue
        if any(ns == a or ns.endswith("." + a) for a in KUBELET_LABEL_NAMESPACES):
            continue
        bad.append(key)
    if bad:
        raise UserDataError(f"unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: {sorted(bad)}")


# ---------------------------------------------------------------------------------------------------------------
# Capacity and allocatable


def kube_arch(instance_type: dict) -> str:
    """Karpenter's getArchitecture: the first supported architecture it knows (x86_64 -> amd64, arm64)."""
    for a in (instance_type.get("ProcessorInfo") or {}).get("SupportedArchitectures") or []:
        if a == "x86_64":
            return "amd64"
        if a == "arm64":
            return "arm64"
    return "amd64"


def eni_limited_pods(instance_type: dict, reserved_enis: int = 0) -> int:
    """``ENIs of the default network card * (IPv4 per ENI - 1) + 2`` (Karpenter's ENILimitedPods, eni-max-pods.txt)."""
    net = instance_type.get("NetworkInfo") or {}
    cards = net.get("NetworkCards") or []
    idx = net.get("DefaultNetworkCardIndex") or 0
    enis = None
    for card in cards:
        if card.get("NetworkCardIndex", 0) == idx:
            enis = card.get("MaximumNetworkInterfaces")
    if enis is None:
        enis = net.get("MaximumNetworkInterfaces") or 0
    usable = max(int(enis) - reserved_enis, 0)
    if usable == 0:
        return 0
    return usable * (int(net.get("Ipv4AddressesPerInterface") or 1) - 1) + 2


def memory_capacity_bytes(instance_type: dict, vm_overhead: float = DEFAULT_VM_MEMORY_OVERHEAD) -> int:
    """Karpenter's memory(): MiB (less 64 MiB CMA on Graviton) less the VM overhead, rounded up to whole MiB."""
    mib = int((instance_type.get("MemoryInfo") or {}).get("SizeInMiB") or 0)
    archs = (instance_type.get("ProcessorInfo") or {}).get("SupportedArchitectures") or []
    if archs and archs[0] == "arm64":
        mib -= 64
    total = mib * Mi
    overhead_mib = math.ceil(float(total) * vm_overhead / 1024 / 1024)
    return total - overhead_mib * Mi


def extended_resources(instance_type: dict) -> dict[str, int]:
    """The nonzero extended resources Karpenter advertises for the type (what the device plugins would register)."""
    out: dict[str, int] = {}
    for gpu in (instance_type.get("GpuInfo") or {}).get("Gpus") or []:
        name = GPU_RESOURCES.get(gpu.get("Manufacturer"))
        if name:
            out[name] = out.get(name, 0) + int(gpu.get("Count") or 0)
    devices = (instance_type.get("NeuronInfo") or {}).get("NeuronDevices") or []
    if devices:
        out["aws.amazon.com/neuron"] = sum(int(d.get("Count") or 0) for d in devices)
        first = devices[0]
        out["aws.amazon.com/neuroncore"] = int(first.get("Count") or 0) * int(
            (first.get("CoreInfo") or {}).get("Count") or 0
        )
    efa = ((instance_type.get("NetworkInfo") or {}).get("EfaInfo") or {}).get("MaximumEfaInterfaces")
    if efa:
        out["vpc.amazonaws.com/efa"] = int(efa)
    return {k: v for k, v in out.items() if v > 0}


def default_cpu_reserved_millis(vcpus: int) -> int:
    """kube-reserved CPU: 6 % of the first core, 1 % of the second, 0.5 % of cores 3-4, 0.25 % above (Karpenter's float math)."""
    cpu = vcpus * 1000
    total = 0
    for start, end, pct in ((0, 1000, 0.06), (1000, 2000, 0.01), (2000, 4000, 0.005), (4000, 1 << 31, 0.0025)):
        if cpu >= start:
            total += int(float(min(cpu, end) - start) * pct)
    return total


def _eviction_amount(capacity: Fraction, signal: str) -> Fraction:
    if signal.endswith("%"):
        try:
            p = float(signal[:-1])
        except ValueError as e:
            raise UserDataError(f"eviction threshold {signal!r}: {e}") from e
        if p == 100:
            p = 0
        return Fraction(math.ceil(float(capacity) / 100 * p))
    return parse_quantity(signal)


def node_resources(
    instance_type: dict,
    boot: BootConfig,
    ephemeral_bytes: int = DEFAULT_EPHEMERAL_BYTES,
    vm_overhead: float = DEFAULT_VM_MEMORY_OVERHEAD,
) -> tuple[dict[str, str], dict[str, str]]:
    """``(status.capacity, status.allocatable)`` as kubelet would report them for this instance and boot config."""
    vcpus = int((instance_type.get("VCpuInfo") or {}).get("DefaultVCpus") or 0)
    memory = Fraction(memory_capacity_bytes(instance_type, vm_overhead))
    storage = Fraction(ephemeral_bytes)
    eni_pods = eni_limited_pods(instance_type)
    if boot.max_pods is not None:
        pods = boot.max_pods
    elif boot.family == "al2" and not boot.use_max_pods:
        pods = KUBELET_DEFAULT_MAX_PODS
    else:
        pods = eni_pods
    if boot.pods_per_core and boot.family != "bottlerocket":
        pods = min(pods, boot.pods_per_core * vcpus)

    # kube-reserved defaults: nodeadm, bootstrap.sh and Karpenter base memory on the ENI-limited pods; Bottlerocket
    # (and Karpenter for it) on its max pods.
    memory_pods = pods if boot.family == "bottlerocket" else eni_pods
    kube_reserved: dict[str, Fraction] = {}
    if not boot.kube_reserved_replaced:
        kube_reserved = {
            "cpu": Fraction(default_cpu_reserved_millis(vcpus), 1000),
            "memory": Fraction((11 * memory_pods + 255) * Mi),
            "ephemeral-storage": Fraction(Gi),
        }
    kube_reserved |= {k: parse_quantity(v) for k, v in boot.kube_reserved.items()}
    system_reserved = {k: parse_quantity(v) for k, v in boot.system_reserved.items()}
    signals = {} if boot.eviction_hard_replaced else {"memory.available": "100Mi", "nodefs.available": "10%"}
    signals |= boot.eviction_hard
    eviction = {
        "memory": _eviction_amount(memory, signals["memory.available"])
        if "memory.available" in signals
        else Fraction(0),
        "ephemeral-storage": _eviction_amount(storage, signals["nodefs.available"])
        if "nodefs.available" in signals
        else Fraction(0),
    }

    capacity: dict[str, Fraction] = {
        "cpu": Fraction(vcpus),
        "memory": memory,
        "ephemeral-storage": storage,
        "pods": Fraction(pods),
    }
    capacity |= {k: Fraction(v) for k, v in extended_resources(instance_type).items()}
    allocatable = dict(capacity)
    for res in ("cpu", "memory", "ephemeral-storage"):
        reserved = kube_reserved.get(res, 0) + system_reserved.get(res, 0) + eviction.get(res, 0)
        allocatable[res] = max(capacity[res] - reserved, Fraction(0))
    return (
        {k: format_quantity(v, k) for k, v in capacity.items()},
        {k: format_quantity(v, k) for k, v in allocatable.items()},
    )


# ---------------------------------------------------------------------------------------------------------------
# The Node


def provider_id(zone: str, instance_id: str) -> str:
    return f"aws:///{zone}/{instance_id}"


def build_node(
    instance: dict,
    instance_type: dict,
    boot: BootConfig,
    *,
    region: str,
    zone_id: str | None = None,
    ephemeral_bytes: int = DEFAULT_EPHEMERAL_BYTES,
    vm_overhead: float = DEFAULT_VM_MEMORY_OVERHEAD,
) -> dict:
    """The Node kubelet (+ the cloud controller) would register for this instance."""
    check_kubelet_labels(boot.labels)
    name = (instance.get("PrivateDnsName") or "").lower()
    zone = instance["Placement"]["AvailabilityZone"]
    arch = kube_arch(instance_type)
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch,
    }
    labels |= boot.labels
    labels |= {
        "node.kubernetes.io/instance-type": instance["InstanceType"],
        "topology.kubernetes.io/zone": zone,
        "topology.kubernetes.io/region": region,
    }
    if zone_id:
        labels["topology.k8s.aws/zone-id"] = zone_id
    capacity, allocatable = node_resources(instance_type, boot, ephemeral_bytes, vm_overhead)
    spec: dict[str, Any] = {"providerID": provider_id(zone, instance["InstanceId"])}
    if boot.taints:
        spec["taints"] = [t.to_dict() for t in boot.taints]
    node_info = {"architecture": arch, "operatingSystem": "linux"}
    if boot.family in OS_IMAGES:
        node_info["osImage"] = OS_IMAGES[boot.family]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                KWOK_ANNOTATION: KWOK_VALUE,
                INSTANCE_ANNOTATION: instance["InstanceId"],
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
        "status": {"capacity": capacity, "allocatable": allocatable, "nodeInfo": node_info},
    }


def is_ours(node: dict) -> str | None:
    """The instance id of a Node node-join registered (kwok annotation, our annotation, matching providerID)."""
    meta = node.get("metadata") or {}
    ann = meta.get("annotations") or {}
    iid = ann.get(INSTANCE_ANNOTATION)
    if not iid or ann.get(KWOK_ANNOTATION) != KWOK_VALUE:
        return None
    pid = (node.get("spec") or {}).get("providerID") or ""
    if not re.fullmatch(rf"aws:///[a-z0-9-]+/{re.escape(iid)}", pid):
        return None
    return iid


# ---------------------------------------------------------------------------------------------------------------
# Kubernetes


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class NodeAPI(Protocol):
    """The Kubernetes calls the reconciler makes (a recording fake replaces it in unit tests)."""

    def list_nodes(self) -> list[dict]: ...

    def get_node(self, name: str) -> dict | None: ...

    def create_node(self, node: dict) -> dict: ...  # raises ApiError(409) if the name is taken

    def patch_node_status(self, name: str, status: dict) -> dict: ...

    def delete_node(self, name: str, uid: str) -> bool: ...  # False: gone already or not that uid


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_loopback_url(url: str, what: str) -> urllib.parse.SplitResult:
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or not is_loopback_host(u.hostname):
        raise SystemExit(f"node-join: refusing {what} {url!r}: only http(s) on a loopback address is allowed")
    return u


class KubeClient:
    """A minimal Node client over one keep-alive connection, from a kubeconfig (client certificate or token)."""

    def __init__(self, kubeconfig: str | Path, timeout: float = 10.0):
        path = Path(kubeconfig)
        cfg = yaml.safe_load(path.read_text()) or {}
        ctx_name = cfg.get("current-context")
        contexts = {c["name"]: c.get("context") or {} for c in cfg.get("contexts") or []}
        if ctx_name not in contexts:
            if len(contexts) != 1:
                raise SystemExit(f"node-join: kubeconfig {path}: no usable current-context")
            ctx_name = next(iter(contexts))
        ctx = contexts[ctx_name]
        cluster = next(
            (c.get("cluster") or {} for c in cfg.get("clusters") or [] if c.get("name") == ctx.get("cluster")), None
        )
        user = next((u.get("user") or {} for u in cfg.get("users") or [] if u.get("name") == ctx.get("user")), {})
        if cluster is None:
            raise SystemExit(f"node-join: kubeconfig {path}: cluster {ctx.get('cluster')!r} not found")
        u = require_loopback_url(cluster.get("server") or "", "apiserver")
        self.scheme, self.host, self.port = (
            u.scheme,
            u.hostname or "127.0.0.1",
            u.port or (443 if u.scheme == "https" else 80),
        )
        self.prefix = u.path.rstrip("/")
        self.timeout = timeout
        self.headers = {"Accept": "application/json", "User-Agent": "sandbox-node-join"}
        base = path.parent
        token = user.get("token")
        if not token and user.get("tokenFile"):
            token = (base / user["tokenFile"]).read_text().strip()
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        if user.get("exec") or user.get("auth-provider"):
            raise SystemExit(
                "node-join: kubeconfig users with exec/auth-provider are not supported; use a client certificate"
            )
        self.ssl_context: ssl.SSLContext | None = None
        if self.scheme == "https":
            self.ssl_context = self._ssl_context(cluster, user, base)
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _ssl_context(cluster: dict, user: dict, base: Path) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if cluster.get("insecure-skip-tls-verify"):
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            ctx.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        elif cluster.get("certificate-authority"):
            ctx.load_verify_locations(cafile=str(base / cluster["certificate-authority"]))
        cert_data, key_data = user.get("client-certificate-data"), user.get("client-key-data")
        if cert_data and key_data:
            # load_cert_chain wants files: a private directory, removed once loaded.
            with tempfile.TemporaryDirectory(prefix="node-join-") as d:
                cert, key = Path(d) / "client.crt", Path(d) / "client.key"
                for p, data in ((cert, cert_data), (key, key_data)):
                    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(base64.b64decode(data))
                ctx.load_cert_chain(str(cert), str(key))
        elif user.get("client-certificate") and user.get("client-key"):
            ctx.load_cert_chain(str(base / user["client-certificate"]), str(base / user["client-key"]))
        return ctx

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.scheme == "https":
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self.ssl_context
                )
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def request(
        self, method: str, path: str, body: dict | None = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = content_type
        with self._lock:
            for attempt in (1, 2):
                conn = self._connect()
                try:
                    conn.request(method, self.prefix + path, body=data, headers=headers)
                    resp = conn.getresponse()
                    raw = resp.read()
                    break
                except (http.client.HTTPException, ConnectionError, OSError):
                    conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        return resp.status, payload

    def _check(self, status: int, payload: Any, ok: Iterable[int] = (200, 201)) -> Any:
        if status not in ok:
            msg = payload.get("message") if isinstance(payload, dict) else str(payload)[:200]
            raise ApiError(status, msg or "")
        return payload

    def list_nodes(self) -> list[dict]:
        status, payload = self.request("GET", "/api/v1/nodes")
        return self._check(status, payload).get("items") or []

    def get_node(self, name: str) -> dict | None:
        status, payload = self.request("GET", f"/api/v1/nodes/{urllib.parse.quote(name)}")
        if status == 404:
            return None
        return self._check(status, payload)

    def create_node(self, node: dict) -> dict:
        status, payload = self.request("POST", "/api/v1/nodes", node)
        return self._check(status, payload)

    def patch_node_status(self, name: str, status_body: dict) -> dict:
        status, payload = self.request(
            "PATCH",
            f"/api/v1/nodes/{urllib.parse.quote(name)}/status",
            {"status": status_body},
            "application/merge-patch+json",
        )
        return self._check(status, payload)

    def delete_node(self, name: str, uid: str) -> bool:
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": uid}}
        status, payload = self.request("DELETE", f"/api/v1/nodes/{urllib.parse.quote(name)}", body)
        if status in (404, 409):  # gone, or a different Node of that name now (the uid precondition failed)
            return False
        self._check(status, payload, (200, 202))
        return True


# ---------------------------------------------------------------------------------------------------------------
# Reconciler


@dataclass
class Joined:
    name: str
    uid: str


@dataclass
class Retry:
    attempts: int = 0
    next_at: float = 0.0
    permanent: bool = False
    last_error: str = ""


class Reconciler:
    """Joins Karpenter's instances as Nodes and removes the Nodes of instances that are gone."""

    def __init__(
        self,
        ec2: Any,
        nodes: NodeAPI,
        *,
        cluster_name: str,
        region: str,
        vm_overhead: float = DEFAULT_VM_MEMORY_OVERHEAD,
        logger: Callable[[str], None] = log,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 0.5,
    ):
        self.ec2 = ec2
        self.nodes = nodes
        self.cluster_name = cluster_name
        self.region = region
        self.vm_overhead = vm_overhead
        self.log = logger
        self.clock = clock
        self.interval = interval
        self.joined: dict[str, Joined] = {}
        self.retry: dict[str, Retry] = {}
        self.instance_types: dict[str, dict] = {}
        self.zone_ids: dict[str, str] | None = None
        self.started = False

    # -- start-up: adopt the Nodes a previous run registered
    def start(self) -> None:
        for node in self.nodes.list_nodes():
            iid = is_ours(node)
            if iid:
                meta = node["metadata"]
                self.joined[iid] = Joined(meta["name"], meta.get("uid", ""))
        self.started = True
        if self.joined:
            self.log(f"adopted {len(self.joined)} node(s) registered earlier")

    def list_instances(self) -> list[dict]:
        filters = [
            {"Name": f"tag:{CLUSTER_NAME_TAG}", "Values": [self.cluster_name]},
            {"Name": "tag-key", "Values": [NODEPOOL_TAG]},
            {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
        ]
        out: list[dict] = []
        token = None
        while True:
            kwargs: dict[str, Any] = {"Filters": filters}
            if token:
                kwargs["NextToken"] = token
            resp = self.ec2.describe_instances(**kwargs)
            for res in resp.get("Reservations") or []:
                for inst in res.get("Instances") or []:
                    tags = {t["Key"]: t.get("Value", "") for t in inst.get("Tags") or []}
                    if (
                        tags.get(CLUSTER_NAME_TAG) == self.cluster_name
                        and NODEPOOL_TAG in tags
                        and NODECLASS_TAG in tags
                        and (inst.get("State") or {}).get("Name") in LIVE_STATES
                    ):
                        out.append(inst)
            token = resp.get("NextToken")
            if not token:
                return out

    def reconcile(self) -> dict[str, int]:
        """One tick. Raises on a failed DescribeInstances/Node list (nothing is removed then)."""
        if not self.started:
            self.start()
        instances = self.list_instances()
        live = {i["InstanceId"]: i for i in instances}
        joined = removed = 0
        now = self.clock()
        for iid, inst in live.items():
            if iid in self.joined or inst["State"]["Name"] not in JOIN_STATES:
                continue
            r = self.retry.get(iid)
            if r and (r.permanent or now < r.next_at):
                continue
            if self._join(inst):
                joined += 1
        for iid in [i for i in self.joined if i not in live]:
            j = self.joined.pop(iid)
            try:
                deleted = self.nodes.delete_node(j.name, j.uid)
            except Exception as e:  # keep it for the next tick
                self.joined[iid] = j
                self.log(f"deleting node {j.name} ({iid}) failed: {e}")
                continue
            removed += 1
            self.log(
                f"removed node {j.name} ({iid} is shutting-down, terminated or gone)"
                if deleted
                else f"node {j.name} ({iid} gone) was already deleted"
            )
        for iid in [i for i in self.retry if i not in live]:
            del self.retry[iid]
        return {"instances": len(live), "joined": joined, "removed": removed}

    def _fail(self, iid: str, msg: str, permanent: bool = False) -> None:
        r = self.retry.setdefault(iid, Retry())
        r.attempts += 1
        r.permanent = permanent
        r.next_at = self.clock() + min(MAX_BACKOFF_SECONDS, self.interval * 2**r.attempts)
        if msg != r.last_error:
            self.log(f"{iid}: {msg}" + ("" if permanent else " (will retry)"))
            r.last_error = msg

    def _instance_type(self, name: str) -> dict:
        if name not in self.instance_types:
            resp = self.ec2.describe_instance_types(InstanceTypes=[name])
            types = resp.get("InstanceTypes") or []
            if not types:
                raise LookupError(f"DescribeInstanceTypes knows no {name}")
            self.instance_types[name] = types[0]
        return self.instance_types[name]

    def _zone_id(self, zone: str) -> str | None:
        if self.zone_ids is None:
            try:
                azs = self.ec2.describe_availability_zones(AllAvailabilityZones=True).get("AvailabilityZones") or []
                self.zone_ids = {a["ZoneName"]: a.get("ZoneId", "") for a in azs}
            except Exception as e:
                self.log(f"DescribeAvailabilityZones failed ({e}): no topology.k8s.aws/zone-id labels")
                self.zone_ids = {}
        return self.zone_ids.get(zone) or None

    def _ephemeral_bytes(self, inst: dict, family: str) -> int:
        """The volume kubelet's ephemeral storage lives on, as Karpenter assumes it: /dev/xvda (Bottlerocket /dev/xvdb)."""
        device = "/dev/xvdb" if family == "bottlerocket" else "/dev/xvda"
        for bdm in inst.get("BlockDeviceMappings") or []:
            vol = (bdm.get("Ebs") or {}).get("VolumeId")
            if bdm.get("DeviceName") == device and vol:
                try:
                    vols = self.ec2.describe_volumes(VolumeIds=[vol]).get("Volumes") or []
                except Exception as e:
                    self.log(f"{inst['InstanceId']}: DescribeVolumes {vol} failed ({e}): ephemeral-storage 20Gi")
                    break
                if vols and vols[0].get("Size"):
                    return int(vols[0]["Size"]) * Gi
        return DEFAULT_EPHEMERAL_BYTES

    def _join(self, inst: dict) -> bool:
        iid = inst["InstanceId"]
        t0 = time.monotonic()
        name = (inst.get("PrivateDnsName") or "").lower()
        if not name:
            self._fail(iid, "no private DNS name yet")
            return False
        try:
            attr = self.ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")
            raw = (attr.get("UserData") or {}).get("Value")
            boot = parse_user_data(decode_user_data(raw))
            node = build_node(
                inst,
                self._instance_type(inst["InstanceType"]),
                boot,
                region=self.region,
                zone_id=self._zone_id(inst["Placement"]["AvailabilityZone"]),
                ephemeral_bytes=self._ephemeral_bytes(inst, boot.family),
                vm_overhead=self.vm_overhead,
            )
        except UserDataError as e:
            self._fail(iid, f"not joining, kubelet would not start: {e}", permanent=True)
            return False
        except Exception as e:
            self._fail(iid, f"preparing the node failed: {e}")
            return False
        for note in boot.notes:
            self.log(f"{iid}: {note}")
        if not any(t.key == UNREGISTERED_TAINT_KEY for t in boot.taints or []):
            self.log(
                f"{iid}: warning: the user data registers no {UNREGISTERED_TAINT_KEY}:NoExecute taint; registering without it"
            )
        try:
            created = self.nodes.create_node(node)
        except ApiError as e:
            if e.status == 422:  # invalid (e.g. a label value): kubelet's registration would fail the same way
                self._fail(iid, f"the apiserver refuses node {name}: {e}", permanent=True)
                return False
            if e.status != 409:
                self._fail(iid, f"creating node {name} failed: {e}")
                return False
            return self._adopt_existing(iid, name)
        except Exception as e:
            self._fail(iid, f"creating node {name} failed: {e}")
            return False
        uid = (created.get("metadata") or {}).get("uid", "")
        self.joined[iid] = Joined(name, uid)
        self.retry.pop(iid, None)
        if not (created.get("status") or {}).get("capacity"):
            try:
                self.nodes.patch_node_status(name, node["status"])
            except Exception as e:
                self.log(f"{iid}: patching the status of node {name} failed: {e}")
        cap = node["status"]["capacity"]
        taints = ",".join(str(t) for t in boot.taints or []) or "none"
        self.log(
            f"joined {iid} as node {name} ({inst['InstanceType']}, {inst['Placement']['AvailabilityZone']}, "
            f"{boot.family} user data, {len(boot.labels)} labels, taints {taints}, cpu {cap['cpu']}, "
            f"pods {cap['pods']}) in {time.monotonic() - t0:.2f}s"
        )
        return True

    def _adopt_existing(self, iid: str, name: str) -> bool:
        try:
            existing = self.nodes.get_node(name)
        except Exception as e:
            self._fail(iid, f"node {name} exists and reading it failed: {e}")
            return False
        if existing is not None and is_ours(existing) == iid:
            self.joined[iid] = Joined(name, existing["metadata"].get("uid", ""))
            self.retry.pop(iid, None)
            self.log(f"adopted existing node {name} for {iid}")
            return True
        if existing is not None and (existing["metadata"].get("deletionTimestamp") or is_ours(existing)):
            # EC2 (and the emulator) reuse the private IP, so the name, of a terminated instance: kubelet keeps
            # retrying its registration until the old Node is gone, and so does this.
            self._fail(iid, f"node name {name} still belongs to a node of another instance that is going away")
            self.retry[iid].next_at = self.clock() + 2 * self.interval  # no growing backoff: it is gone in seconds
            return False
        self._fail(
            iid, f"node name {name} is taken by a node that is not this instance's; not touching it", permanent=True
        )
        return False


# ---------------------------------------------------------------------------------------------------------------
# Process


def make_ec2_client(endpoint: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "ec2",
        region_name=region,
        endpoint_url=endpoint,
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=3, read_timeout=15),
    )


def _keep_local() -> None:
    """Never leave loopback: no IMDS lookups for credentials/region, no proxies for 127.0.0.1."""
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    for var in ("NO_PROXY", "no_proxy"):
        have = [h for h in os.environ.get(var, "").split(",") if h]
        os.environ[var] = ",".join(dict.fromkeys([*have, "127.0.0.1", "localhost", "::1"]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Register the sandbox's EC2 instances (moto) as KWOK Nodes, as kubelet would."
    )
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--aws-endpoint", required=True, help="the AWS emulator, e.g. http://127.0.0.1:5055")
    ap.add_argument("--region", default=os.environ.get("AWS_REGION") or "us-east-1")
    ap.add_argument("--cluster-name", required=True)
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between DescribeInstances calls")
    ap.add_argument(
        "--ready-file", help="JSON {pid, aws_endpoint, cluster_name}, written after the first good reconcile"
    )
    ap.add_argument(
        "--vm-memory-overhead-percent",
        type=float,
        default=DEFAULT_VM_MEMORY_OVERHEAD,
        help="as Karpenter's VM_MEMORY_OVERHEAD_PERCENT (memory capacity = MiB less this share)",
    )
    ap.add_argument("--once", action="store_true", help="one reconcile, then exit")
    args = ap.parse_args(argv)
    if args.interval <= 0:
        ap.error("--interval must be positive")

    require_loopback_url(args.aws_endpoint, "--aws-endpoint")
    _keep_local()
    kube = KubeClient(args.kubeconfig)
    ec2 = make_ec2_client(args.aws_endpoint, args.region)
    rec = Reconciler(
        ec2,
        kube,
        cluster_name=args.cluster_name,
        region=args.region,
        vm_overhead=args.vm_memory_overhead_percent,
        interval=args.interval,
    )

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log(
        f"watching instances of cluster {args.cluster_name} at {args.aws_endpoint} every {args.interval}s (pid {os.getpid()})"
    )
    ready = False
    last_error = ""
    last_error_at = 0.0
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            rec.reconcile()
        except Exception as e:
            msg = f"{type(e).__name__}: {e}"
            if msg != last_error or t0 - last_error_at > 30:
                log(f"reconcile failed: {msg}")
                last_error, last_error_at = msg, t0
            if args.once:
                return 1
        else:
            if last_error:
                log("reconcile works again")
                last_error = ""
            if not ready:
                ready = True
                if args.ready_file:
                    info = {"pid": os.getpid(), "aws_endpoint": args.aws_endpoint, "cluster_name": args.cluster_name}
                    write_atomic(Path(args.ready_file), json.dumps(info) + "\n")
                log(f"ready ({len(rec.joined)} node(s) known)")
            if args.once:
                return 0
        stop.wait(max(0.0, args.interval - (time.monotonic() - t0)))
    log("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
