# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""EC2NodeClass ``spec.kubelet`` checks of Karpenter v1.15's controller, offline.

Since karpenter-provider-aws v1.15 ``spec.kubelet`` is an open map (``x-kubernetes-preserve-unknown-fields``):
the apiserver stores anything, and the EC2NodeClass controller validates it afterwards, marking the
class ``ValidationSucceeded=False`` (no node launches) when it refuses it. This module ports those checks
so that a kubelet block the controller would refuse is rejected before it is written:

* ``ValidateKubeletConfig`` (``pkg/apis/v1/kubeletconfiguration_validation.go``): a strict decode into the
  upstream ``KubeletConfiguration`` of the ``k8s.io/kubelet`` version Karpenter is built with - unknown
  fields (case-sensitive), wrong JSON types, durations/quantities the Go types cannot parse - modelled by
  the generated ``crds/kubelet_v1beta1`` data, then the semantic rules (eviction signals and thresholds,
  soft/grace-period pairing, reservable resources, ranges, image GC thresholds, Karpenter-owned fields);
* ``validateKubeletFieldsSupported`` (``pkg/controllers/nodeclass/validation.go``): fields the class' AMI
  family would silently drop (only AL2023 renders the raw config; the others apply Karpenter's own
  subset, Bottlerocket without podsPerCore) and several clusterDNS entries where only one is used.

Differences from the controller, on purpose: every decode problem is reported (the Go decoder stops at
the first type error and then drops the unknown-field errors), a field already reported as unknown is
not reported again as unsupported by the AMI family, and the AMI-family check runs even when the decode
found errors (the controller reports it only once the rest passes). CEL expressions (a string maxPods,
a kubeReserved/systemReserved value that is not a quantity) are parsed with cel-python: one that is not
valid CEL or uses a variable Karpenter does not declare is an error (refused with or without the
NodeClassCEL feature gate); any other expression gets a warning, as Karpenter accepts expressions only
with that gate (off by default) and their result type and values are not checked offline.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Collection
from typing import Any

from . import cel as cel_mod
from . import golang
from .crds import kubelet_v1beta1
from .issues import ERROR, WARNING, Issue, join_path, key

KUBELET_PATH = "spec.kubelet"
TYPES: dict[str, Any] = kubelet_v1beta1.TYPES
ROOT = kubelet_v1beta1.ROOT
MANAGED_FIELDS = frozenset(kubelet_v1beta1.MANAGED_FIELDS)
KUBELET_VERSION = kubelet_v1beta1.VERSION

# kubeletconfiguration_validation.go
EVICTION_SIGNALS = (
    "memory.available",
    "nodefs.available",
    "nodefs.inodesFree",
    "imagefs.available",
    "imagefs.inodesFree",
    "pid.available",
)
RESERVED_RESOURCES = ("cpu", "memory", "ephemeral-storage", "pid")
KARPENTER_OWNED_FIELDS = {
    "registerWithTaints": "Karpenter sets it from the NodeClaim's taints so the node registers unschedulable "
    "until it's ready",
}
EVICTION_MAPS = ("evictionHard", "evictionSoft", "evictionSoftGracePeriod", "evictionMinimumReclaim")

# AMI families (pkg/apis/v1 AMIFamily*) and their amifamily FeatureFlags
AMI_FAMILIES = ("AL2", "AL2023", "Bottlerocket", "Windows2019", "Windows2022", "Windows2025")
CUSTOM_FAMILY = "Custom"
ARBITRARY_KUBELET_CONFIG_FAMILIES = frozenset({"AL2023"})  # SupportsArbitraryKubeletConfig
NO_PODS_PER_CORE_FAMILIES = frozenset({"Bottlerocket"})  # PodsPerCoreEnabled false

EXPRESSION_FIELDS = ("maxPods", "kubeReserved", "systemReserved")

_INT_BOUNDS = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint8": (0, 2**8 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}
_FLOAT32_MAX = 3.4028234663852886e38


# --------------------------------------------------------------------------------------------
# Go parsers: time.ParseDuration, resource.ParseQuantity, strconv.ParseFloat


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _quote(text: str) -> str:
    """``strconv.Quote``: printable characters as they are, the others escaped."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch == " " or (ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF):
            out.append(ch)
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append("\\x%02x" % ord(ch))
        elif ord(ch) < 0x10000:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append("\\U%08x" % ord(ch))
    out.append('"')
    return "".join(out)


def _time_quote(text: str) -> str:
    """The ``quote`` of Go's time package: printable ASCII as it is, every other byte as ``\\xHH``."""
    out = ['"']
    for byte in text.encode("utf-8", "surrogatepass"):
        ch = chr(byte)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append("\\x%02x" % byte)
    out.append('"')
    return "".join(out)


_DURATION_UNITS = {
    "ns": 1,
    "us": 10**3,
    "\u00b5s": 10**3,
    "\u03bcs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def parse_go_duration(text: str) -> int:
    """Nanoseconds of a Go duration string (``time.ParseDuration``); ValueError with Go's message."""
    orig, s = text, text
    invalid = ValueError("time: invalid duration " + _time_quote(orig))
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise invalid
    total = 0
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            raise invalid
        i = 0
        while i < len(s) and "0" <= s[i] <= "9":
            i += 1
        pre = i > 0
        whole = int(s[:i]) if pre else 0
        if whole > 2**63:
            raise invalid
        s = s[i:]
        frac, scale, post = 0, 1, False
        if s.startswith("."):
            s = s[1:]
            i = 0
            while i < len(s) and "0" <= s[i] <= "9":
                if frac <= (2**63 - 1 - 9) // 10:  # Go stops accumulating (keeps the scale) on overflow
                    frac = frac * 10 + int(s[i])
                    scale *= 10
                i += 1
            post = i > 0
            s = s[i:]
        if not pre and not post:
            raise invalid
        i = 0
        while i < len(s) and s[i] != "." and not "0" <= s[i] <= "9":
            i += 1
        if i == 0:
            raise ValueError("time: missing unit in duration " + _time_quote(orig))
        unit_name, s = s[:i], s[i:]
        unit = _DURATION_UNITS.get(unit_name)
        if unit is None:
            raise ValueError("time: unknown unit %s in duration %s" % (_time_quote(unit_name), _time_quote(orig)))
        if whole > 2**63 // unit:
            raise invalid
        value = whole * unit
        if frac:
            value += int(frac * (unit / scale))
            if value > 2**63:
                raise invalid
        total += value
        if total > 2**63:
            raise invalid
    if neg:
        return -total
    if total > 2**63 - 1:
        raise invalid
    return total


QUANTITY_FORMAT_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
QUANTITY_SUFFIX_ERROR = "unable to parse quantity's suffix"
_QUANTITY_PARTS = re.compile(r"([+-]?)([0-9]*)(?:(\.)([0-9]*))?([eEinumkKMGTP]*[-+]?[0-9]*)\Z")
_QUANTITY_SUFFIXES = frozenset(("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"))
_EXPONENT = re.compile(r"[eE][+-]?[0-9]+\Z")


def parse_go_quantity_sign(text: str) -> int:
    """Sign (-1, 0, 1) of ``resource.ParseQuantity(text)``; ValueError with its message when it fails.

    Unlike ``quantity.parse_quantity`` nothing is trimmed: ParseQuantity refuses surrounding spaces.
    """
    if not text:
        raise ValueError(QUANTITY_FORMAT_ERROR)
    m = _QUANTITY_PARTS.match(text)
    if not m:
        raise ValueError(QUANTITY_FORMAT_ERROR)
    sign, num, dot, denom, suffix = m.groups()
    if not num.strip("0") and not dot and not suffix:
        return 0  # "", "-", "+0", "000": ParseQuantity returns zero before reading a suffix
    if suffix not in _QUANTITY_SUFFIXES:
        if not _EXPONENT.match(suffix) or len(suffix) > 20:
            raise ValueError(QUANTITY_SUFFIX_ERROR)
    if not (num + (denom or "")).strip("0"):
        return 0
    return -1 if sign == "-" else 1


_GO_DECIMAL_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_GO_HEX_FLOAT = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+\Z")
_GO_SPECIAL_FLOAT = re.compile(r"[+-]?(?:inf|infinity|nan)\Z", re.I | re.ASCII)  # no dotless i for an i


def parse_go_float(text: str) -> float:
    """``strconv.ParseFloat(text, 64)``; ValueError on a syntax error or when out of range."""
    if _GO_SPECIAL_FLOAT.match(text):
        return float(text.lower().replace("infinity", "inf"))
    if _GO_DECIMAL_FLOAT.match(text):
        value = float(text)
    elif _GO_HEX_FLOAT.match(text):
        value = float.fromhex(text)
    else:
        raise ValueError("invalid syntax")
    if value in (float("inf"), float("-inf")):
        raise ValueError("value out of range")
    return value


# --------------------------------------------------------------------------------------------
# the strict decode into KubeletConfiguration (sigs.k8s.io/json UnmarshalStrict)


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _go_number_literal(value: int | float) -> str:
    """The JSON text the apiserver hands the controller for a number (Go's float formatting)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def _as_int(value: Any) -> int | None:
    """The integer a JSON number decodes to (an integral float too, as the apiserver re-encodes it), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    return None


class _Decode:
    """Walks a value against a node of TYPES, collecting ``(segments, rule, message)``."""

    def __init__(self) -> None:
        self.found: list[tuple[tuple, str, str]] = []

    def type_error(self, segs, what, node, struct, stack):
        gotype = node["go"]
        if struct:
            msg = "json: cannot unmarshal %s into Go struct field %s.%s of type %s" % (
                what,
                struct,
                ".".join(stack),
                gotype,
            )
        else:
            msg = "json: cannot unmarshal %s into Go value of type %s" % (what, gotype)
        self.found.append((segs, "kubelet-type", msg))

    def value_error(self, segs, message):
        self.found.append((segs, "kubelet-value", message))

    def value(self, value, node, segs, struct, stack, strict):
        kind = node["t"]
        if value is None:
            if kind == "duration" and not node.get("ptr"):
                self.value_error(segs, 'time: invalid duration ""')
            return  # null leaves any other Go value as it is
        jkind = _json_kind(value)
        if kind == "any":
            return
        if kind == "struct":
            if jkind != "object":
                self.type_error(segs, jkind, node, struct, stack)
                return
            self.struct(value, TYPES[node["ref"]], segs, stack, strict)
        elif kind == "slice":
            if jkind != "array":
                self.type_error(segs, jkind, node, struct, stack)
                return
            for i, item in enumerate(value):
                self.value(item, node["elem"], segs + (i,), struct, stack, "%s[%d]" % (strict, i))
        elif kind == "map":
            if jkind != "object":
                self.type_error(segs, jkind, node, struct, stack)
                return
            for k in sorted(value, key=str):
                if node["key"] != "string" and _as_int(_parse_int(k)) is None:
                    self.type_error(segs, "number " + str(k), {"go": node["key"]}, struct, stack)
                    continue
                self.value(value[k], node["elem"], segs + (key(k),), struct, stack, _strict_join(strict, str(k)))
        elif kind == "bool":
            if jkind != "bool":
                self.type_error(segs, jkind, node, struct, stack)
        elif kind == "string":
            if jkind != "string":
                self.type_error(segs, jkind, node, struct, stack)
        elif kind in _INT_BOUNDS:
            if jkind != "number":
                self.type_error(segs, jkind, node, struct, stack)
                return
            n = _as_int(value)
            lo, hi = _INT_BOUNDS[kind]
            if n is None or not lo <= n <= hi:
                self.type_error(segs, "number " + _go_number_literal(value), node, struct, stack)
        elif kind in ("float32", "float64"):
            if jkind != "number":
                self.type_error(segs, jkind, node, struct, stack)
            elif kind == "float32" and abs(value) > _FLOAT32_MAX:
                self.type_error(segs, "number " + _go_number_literal(value), node, struct, stack)
        elif kind == "bytes":
            if jkind != "string":
                self.type_error(segs, jkind, node, struct, stack)
            else:
                try:
                    base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    self.value_error(segs, "illegal base64 data")
        elif kind == "duration":
            if jkind != "string":  # metav1.Duration decodes a string first
                self.type_error(segs, jkind, {"go": "string"}, struct, stack)
                return
            try:
                parse_go_duration(value)
            except ValueError as exc:
                self.value_error(segs, str(exc))
        elif kind == "duration-or-nanoseconds":
            if jkind == "string":
                try:
                    parse_go_duration(value)
                except ValueError as exc:
                    self.value_error(segs, str(exc))
            else:
                n = _as_int(value) if jkind == "number" else None
                if n is None or not _INT_BOUNDS["int64"][0] <= n <= _INT_BOUNDS["int64"][1]:
                    text = _go_number_literal(value) if jkind == "number" else json.dumps(value)
                    what = "number " + text if jkind == "number" else jkind
                    self.value_error(
                        segs,
                        "invalid duration %s: json: cannot unmarshal %s into Go value of type time.Duration"
                        % (_quote(text), what),
                    )
        elif kind == "quantity":
            if jkind in ("object", "array"):
                self.value_error(segs, QUANTITY_FORMAT_ERROR)
                return
            text = value.strip() if jkind == "string" else json.dumps(value) if jkind == "bool" else None
            if text is None:
                text = _go_number_literal(value)
            try:
                parse_go_quantity_sign(text)
            except ValueError as exc:
                self.value_error(segs, str(exc))
        elif kind == "time":
            if jkind != "string":
                self.type_error(segs, jkind, {"go": "string"}, struct, stack)
            elif not golang.parse_rfc3339(value):
                self.value_error(segs, "parsing time %s as RFC 3339 (2006-01-02T15:04:05Z07:00) failed" % _quote(value))
        else:  # pragma: no cover - the generator emits only the kinds above
            raise ValueError("unknown kubelet type kind %r" % kind)

    def struct(self, value, struct_type, segs, stack, strict):
        fields = struct_type["fields"]
        name = struct_type["go"].rsplit(".", 1)[-1]
        for k in sorted(value, key=str):
            field = fields.get(k) if isinstance(k, str) else None
            sub_strict = _strict_join(strict, str(k))
            if field is None:
                self.found.append((segs + (str(k),), "kubelet-unknown-field", "unknown field %s" % _quote(sub_strict)))
                continue
            self.value(value[k], field, segs + (k,), name, stack + tuple(field.get("via", ())) + (k,), sub_strict)


def _strict_join(strict, segment):
    return segment if not strict else strict + "." + segment


def _parse_int(text):
    """A map key of an integer Go type is decoded with ``strconv.ParseInt(key, 10, 64)``."""
    try:
        return golang.parse_int(text)
    except ValueError:
        return None


def decode_issues(kubelet: dict) -> list[tuple[tuple, str, str]]:
    """``(path segments under spec.kubelet, rule, message)`` of the strict decode into KubeletConfiguration.

    A string maxPods is a CEL expression: its shape is checked with a placeholder, like the controller.
    """
    decoder = _Decode()
    value = kubelet
    if isinstance(kubelet.get("maxPods"), str):
        value = dict(kubelet, maxPods=0)
    decoder.struct(value, TYPES[ROOT], (), (), "")
    return decoder.found


# --------------------------------------------------------------------------------------------
# validateKubeletSemantics


def _string_map(kubelet, field):
    """``decodeStringMap``: the map when the field is an object of strings (null counts as ""), else None."""
    value = kubelet.get(field)
    if field not in kubelet:
        return None
    if value is None:
        return {}
    if not isinstance(value, dict):
        return None
    out = {}
    for k, v in value.items():
        if v is None:
            v = ""
        if not isinstance(v, str) or not isinstance(k, str):
            return None
        out[k] = v
    return out


def _int_field(kubelet, field):
    """``decodeInt``: the integer when the field holds one (null counts as 0), else None."""
    if field not in kubelet:
        return None
    value = kubelet[field]
    if value is None:
        return 0
    n = _as_int(value)
    if n is None or not _INT_BOUNDS["int64"][0] <= n <= _INT_BOUNDS["int64"][1]:
        return None
    return n


def _eviction_threshold(value):
    """``validateEvictionThreshold``: None when valid, else the message."""
    if value.endswith("%"):
        try:
            pct = parse_go_float(value[:-1])
        except ValueError:
            pct = None
        if pct is None or pct < 0 or pct > 100:
            return "%s must be a percentage or a resource quantity" % _quote(value)
        return None
    try:
        sign = parse_go_quantity_sign(value)
    except ValueError:
        return "%s must be a percentage or a resource quantity" % _quote(value)
    if sign < 0:
        return "%s can't be a negative resource quantity" % _quote(value)
    return None


def _eviction_grace_period(value):
    """``validateEvictionGracePeriod``: None when valid, else the message."""
    try:
        duration = parse_go_duration(value)
    except ValueError:
        return "%s must be a duration" % _quote(value)
    if duration < 0:
        return "%s can't be a negative duration" % _quote(value)
    return None


def semantic_issues(kubelet: dict) -> list[tuple[tuple, str, str]]:
    """``(path segments under spec.kubelet, rule, message)`` of ``validateKubeletSemantics``."""
    out = []
    for field in sorted(KARPENTER_OWNED_FIELDS):
        if field in kubelet:
            out.append(((field,), "kubelet-owned-field", "can't be set, %s" % KARPENTER_OWNED_FIELDS[field]))

    for field in EVICTION_MAPS:
        signals = _string_map(kubelet, field)
        if signals is None:
            continue
        for signal in sorted(signals):
            if signal not in EVICTION_SIGNALS:
                out.append(
                    (
                        (field, key(signal)),
                        "kubelet-eviction-signal",
                        "%s isn't a valid eviction signal, must be one of %s"
                        % (_quote(signal), ", ".join(EVICTION_SIGNALS)),
                    )
                )
            if field == "evictionSoftGracePeriod":
                problem = _eviction_grace_period(signals[signal])
                rule = "kubelet-eviction-grace-period"
            else:
                problem = _eviction_threshold(signals[signal])
                rule = "kubelet-eviction-threshold"
            if problem:
                out.append(((field, key(signal)), rule, problem))

    soft = _string_map(kubelet, "evictionSoft") or {}
    grace = _string_map(kubelet, "evictionSoftGracePeriod") or {}
    for signal in sorted(soft):
        if signal not in grace:
            out.append(
                (("evictionSoft", key(signal)), "kubelet-eviction-pairing", "has no matching evictionSoftGracePeriod")
            )
    for signal in sorted(grace):
        if signal not in soft:
            out.append(
                (("evictionSoftGracePeriod", key(signal)), "kubelet-eviction-pairing", "has no matching evictionSoft")
            )

    for field in ("kubeReserved", "systemReserved"):
        reserved = _string_map(kubelet, field)
        if reserved is None:
            continue
        for resource in sorted(reserved):
            if resource not in RESERVED_RESOURCES:
                out.append(
                    (
                        (field, key(resource)),
                        "kubelet-reserved-resource",
                        "%s isn't a reservable resource, must be one of %s"
                        % (_quote(resource), ", ".join(RESERVED_RESOURCES)),
                    )
                )
            if reserved[resource].startswith("-"):
                out.append(
                    (
                        (field, key(resource)),
                        "kubelet-negative",
                        "%s can't be a negative resource quantity" % _quote(reserved[resource]),
                    )
                )

    for field in ("imageGCHighThresholdPercent", "imageGCLowThresholdPercent"):
        value = _int_field(kubelet, field)
        if value is not None and not 0 <= value <= 100:
            out.append(((field,), "kubelet-percent", "%d must be between 0 and 100" % value))
    for field in ("podsPerCore", "evictionMaxPodGracePeriod"):
        value = _int_field(kubelet, field)
        if value is not None and value < 0:
            out.append(((field,), "kubelet-negative", "%d can't be negative" % value))
    if "maxPods" in kubelet and not isinstance(kubelet["maxPods"], str):
        value = _int_field(kubelet, "maxPods")
        if value is not None and value < 0:
            out.append((("maxPods",), "kubelet-negative", "%d can't be negative" % value))

    high = _int_field(kubelet, "imageGCHighThresholdPercent")
    low = _int_field(kubelet, "imageGCLowThresholdPercent")
    if high is not None and low is not None and high <= low:
        out.append(
            (
                (),
                "kubelet-image-gc-thresholds",
                "imageGCHighThresholdPercent (%d) must be greater than imageGCLowThresholdPercent (%d)" % (high, low),
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# the AMI family and what it applies


def ami_family(spec: dict) -> str | None:
    """``EC2NodeClass.AMIFamily()`` of a (defaulted) spec: amiFamily, else the first alias' family, else
    Custom; None when the alias names no family (the CRD's CEL rules reject it)."""
    family = spec.get("amiFamily")
    if isinstance(family, str) and family:
        return family
    terms = spec.get("amiSelectorTerms")
    for term in terms if isinstance(terms, list) else ():  # a wrong type is the schema's error, not a crash here
        alias = term.get("alias") if isinstance(term, dict) else None
        if isinstance(alias, str) and alias:
            name, sep, _version = alias.partition("@")
            if not sep or "@" in _version:
                return None
            return next((f for f in AMI_FAMILIES if f.lower() == name), None)
    return CUSTOM_FAMILY


def ami_family_issues(kubelet: dict, family: str | None, skip: Collection[str] = ()) -> list[tuple[tuple, str, str]]:
    """``validateKubeletFieldsSupported``: fields the family would silently drop, several clusterDNS entries.

    ``skip``: fields already reported otherwise (unknown to the upstream type).
    """
    if not kubelet or family is None or family == CUSTOM_FAMILY or family in ARBITRARY_KUBELET_CONFIG_FAMILIES:
        return []
    out = []
    unsupported = {k for k in kubelet if isinstance(k, str) and k not in MANAGED_FIELDS and k not in skip}
    if family in NO_PODS_PER_CORE_FAMILIES and kubelet.get("podsPerCore") is not None:
        unsupported.add("podsPerCore")
    for field in sorted(unsupported):
        out.append(
            (
                (field,),
                "kubelet-ami-family",
                "not applied by the %s AMI family, it would be silently dropped (Karpenter passes the raw kubelet "
                "configuration through only for %s)" % (family, ", ".join(sorted(ARBITRARY_KUBELET_CONFIG_FAMILIES))),
            )
        )
    dns = kubelet.get("clusterDNS")
    if isinstance(dns, list) and len(dns) > 1 and all(isinstance(d, str) or d is None for d in dns):
        out.append(
            (
                ("clusterDNS",),
                "kubelet-ami-family",
                "the %s AMI family doesn't accept multiple entries, only one, but %d were set" % (family, len(dns)),
            )
        )
    return out


# the variables of Karpenter's kubelet CEL environment (pkg/cel/environment.go celVars)
CEL_VARIABLES = ("vcpus", "memory_mib", "default_enis", "ips_per_eni", "max_pods", "instance_type")


def expression_problem(expression: str) -> str | None:
    """Why Karpenter could not compile a kubelet CEL expression (a syntax error, an undeclared variable),
    or None when cel-python finds nothing (or is not installed); the result type is not checked."""
    if not cel_mod.HAS_CELPY:
        return None
    try:
        tree = cel_mod.environment().compile(expression)
    except Exception as exc:  # celpy's CELParseError, or an error of its lark parser
        column = getattr(exc, "column", None)
        return "not valid CEL (a syntax error%s)" % (" at column %s" % column if column else "")
    for sub in tree.iter_subtrees():
        if sub.data == "ident":
            name = str(sub.children[0])
            if name not in CEL_VARIABLES:
                return "undeclared reference to %s (the variables are %s)" % (_quote(name), ", ".join(CEL_VARIABLES))
    return None


def expression_fields(kubelet: dict) -> list[tuple]:
    """Path segments of the values Karpenter treats as CEL expressions (``HasExpressions``)."""
    out = []
    if isinstance(kubelet.get("maxPods"), str):
        out.append(("maxPods",))
    for field in ("kubeReserved", "systemReserved"):
        reserved = _string_map(kubelet, field)
        for resource in sorted(reserved or {}):
            try:
                parse_go_quantity_sign(reserved[resource])
            except ValueError:
                out.append((field, key(resource)))
    return out


def upstream_kubelet_fields() -> frozenset[str]:
    """The top-level field names of the upstream KubeletConfiguration."""
    return frozenset(TYPES[ROOT]["fields"])


# maps Karpenter reads as quantities (or a percentage / CEL expression, which compare as text)
QUANTITY_MAPS = ("kubeReserved", "systemReserved", "evictionHard", "evictionSoft", "evictionMinimumReclaim")
QUANTITY_MARK = "x-karpenter-quantity"


def _openapi(node: dict) -> dict:
    kind = node["t"]
    if kind == "struct":
        fields = TYPES[node["ref"]]["fields"]
        return {"type": "object", "properties": {k: _openapi(v) for k, v in fields.items()}}
    if kind == "map":
        return {"type": "object", "additionalProperties": _openapi(node["elem"])}
    if kind == "slice":
        return {"type": "array", "items": _openapi(node["elem"])}
    if kind == "quantity":
        return {"type": "string", QUANTITY_MARK: True}
    if kind in _INT_BOUNDS:
        return {"type": "integer"}
    if kind in ("float32", "float64"):
        return {"type": "number"}
    if kind == "bool":
        return {"type": "boolean"}
    if kind == "any":
        return {}
    return {"type": "string"}


def openapi_schema() -> dict:
    """``spec.kubelet`` as an OpenAPI-like schema built from the upstream type (the CRD's node is open):
    structs are objects with properties, maps objects with additionalProperties; quantities carry
    ``x-karpenter-quantity``, as do the values of QUANTITY_MAPS. Used to compare desired and live."""
    schema = _openapi({"t": "struct", "ref": ROOT})
    for field in QUANTITY_MAPS:
        sub = schema["properties"].get(field)
        if sub is not None and isinstance(sub.get("additionalProperties"), dict):
            sub["additionalProperties"] = dict(sub["additionalProperties"], **{QUANTITY_MARK: True})
    return schema


# --------------------------------------------------------------------------------------------
# entry point


def _path(base, segs):
    path = base
    for seg in segs:
        path = join_path(path, seg)
    return path


def validate_kubelet(kubelet: Any, family: str | None = None, ref: str = "", base: str = KUBELET_PATH) -> list[Issue]:
    """The issues (source ``runtime``) Karpenter's EC2NodeClass controller has with ``spec.kubelet``.

    ``family`` is the class' AMI family (:func:`ami_family`); None skips the AMI-family check.
    """
    if not isinstance(kubelet, dict) or not kubelet:
        return []
    found = decode_issues(kubelet)
    unknown = {segs[0] for segs, rule, _msg in found if rule == "kubelet-unknown-field" and len(segs) == 1}
    found += semantic_issues(kubelet)
    found += ami_family_issues(kubelet, family, skip=unknown)
    applied = sorted(MANAGED_FIELDS - ({"podsPerCore"} if family in NO_PODS_PER_CORE_FAMILIES else set()))
    family_hint = "use AL2023, or keep to the fields Karpenter applies on %s: %s" % (family, ", ".join(applied))
    issues = [
        Issue(
            ref,
            _path(base, segs),
            rule,
            message,
            ERROR,
            "runtime",
            family_hint if rule == "kubelet-ami-family" and segs != ("clusterDNS",) else None,
        )
        for segs, rule, message in found
    ]
    for segs in expression_fields(kubelet):
        # a reservation's value as the controller decodes it (decodeStringMap: null counts as "")
        value = kubelet[segs[0]] if len(segs) == 1 else _string_map(kubelet, segs[0])[segs[1][1]]
        problem = expression_problem(value)
        if problem:
            issues.append(
                Issue(
                    ref,
                    _path(base, segs),
                    "kubelet-expression",
                    "%s is neither a resource quantity nor a CEL expression Karpenter can compile: %s; the "
                    "EC2NodeClass is not ready either way (KubeletExpressionsDisabled, or KubeletExpressionInvalid "
                    "with the NodeClassCEL feature gate)" % (_quote(value), problem),
                    ERROR,
                    "runtime",
                )
            )
            continue
        issues.append(
            Issue(
                ref,
                _path(base, segs),
                "kubelet-expression",
                "a CEL expression (evaluated per instance type): Karpenter accepts it only with the NodeClassCEL "
                "feature gate (AWS_FEATURE_GATES, off by default), else the EC2NodeClass is not ready "
                "(KubeletExpressionsDisabled); its result type and value are not checked offline",
                WARNING,
                "runtime",
            )
        )
    return issues
