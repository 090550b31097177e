# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Conversion of legacy Karpenter objects to v1 (docs/karpenter-v1.md section 3).

``convert(obj_or_list, **options) -> (objects, report)`` converts

* ``karpenter.sh/v1alpha5 Provisioner`` -> ``karpenter.sh/v1 NodePool`` (an inline ``spec.provider``
  becomes an ``EC2NodeClass`` named after the provisioner);
* ``karpenter.k8s.aws/v1alpha1 AWSNodeTemplate`` -> ``karpenter.k8s.aws/v1 EC2NodeClass``;
* ``karpenter.sh/v1beta1 NodePool`` and ``karpenter.k8s.aws/v1beta1 EC2NodeClass`` -> v1;

writing out the old defaults whose v1 default differs (``expireAfter: Never`` when the alpha TTL
was absent, ``consolidationPolicy: WhenEmpty``/``consolidateAfter: Never`` when the alpha
provisioner did not scale in, the implicit alpha requirements, IMDS hop limit 2, ``amiFamily``
AL2), renaming labels/annotations, and moving ``kubeletConfiguration``/``kubelet`` to the
EC2NodeClass (one EC2NodeClass per distinct kubelet configuration). v1 objects and other kinds
pass through unchanged.

``report`` is a list of :class:`~.issues.Issue` (source ``convert``): ``error`` = not converted,
the user must act (``launchTemplate``, Ubuntu without AMIs, missing instance profile, ...);
``warning`` = converted with a loss or a behaviour change (``containerRuntime`` dropped, glob
values translated, ``@latest`` alias, hop limit, ...); ``info`` = defaults made explicit and
renames. By default every converted object is validated and validation errors are reported too.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from typing import Any

from ..cost_data import prices_us_east_1 as _catalogue
from .issues import ERROR, INFO, WARNING, Issue, join_path, key, object_ref
from .kubelet import upstream_kubelet_fields
from .labels import NORMALIZED_LABELS, is_kubernetes_domain_label, is_restricted_tag, is_valid_label_value
from .lint import FAMILY_GLOB, GLOB_CHARS
from .quantity import parse_quantity
from .schema import compile_pattern, matches_type, schema_for, type_name

NODEPOOL_V1 = "karpenter.sh/v1"
NODECLASS_V1 = "karpenter.k8s.aws/v1"
NODECLASS_GROUP = "karpenter.k8s.aws"

ALPHA_PROVISIONER = ("karpenter.sh/v1alpha5", "Provisioner")
ALPHA_NODETEMPLATE = ("karpenter.k8s.aws/v1alpha1", "AWSNodeTemplate")
BETA_NODEPOOL = ("karpenter.sh/v1beta1", "NodePool")
BETA_NODECLASS = ("karpenter.k8s.aws/v1beta1", "EC2NodeClass")
# legacy kinds that are not converted: Karpenter creates them itself (they are not configuration)
NOT_CONVERTED = {
    ("karpenter.sh/v1alpha5", "Machine"): "Karpenter < v0.32 created one Machine per node (v1 creates NodeClaims "
    "itself); left out of the output - let the old Karpenter remove its Machines",
    ("karpenter.sh/v1beta1", "NodeClaim"): "Karpenter creates NodeClaims itself; left out of the output",
}
V1_KINDS = (("karpenter.sh/v1", "NodePool"), ("karpenter.k8s.aws/v1", "EC2NodeClass"), ("karpenter.sh/v1", "NodeClaim"))

ALPHA_METADATA_OPTIONS = {
    "httpEndpoint": "enabled",
    "httpProtocolIPv6": "disabled",
    "httpPutResponseHopLimit": 2,
    "httpTokens": "required",
}
_ALIAS_VERSIONS = {
    "al2": re.compile(r"v[0-9]{8}\Z"),
    "al2023": re.compile(r"v[0-9]{8}\Z"),
    "bottlerocket": re.compile(r"v[0-9]+\.[0-9]+\.[0-9]+\Z"),
}
_ALIAS_VERSION_FORMS = {"al2": "vYYYYMMDD", "al2023": "vYYYYMMDD", "bottlerocket": "vX.Y.Z"}
_MAX_DURATION_SECONDS = (2**63 - 1) // 10**9
UNREGISTERED_TAINT = "karpenter.sh/unregistered:NoExecute"
ALIAS_FAMILIES = {
    "AL2": "al2",
    "AL2023": "al2023",
    "Bottlerocket": "bottlerocket",
    "Windows2019": "windows2019",
    "Windows2022": "windows2022",
    "Windows2025": "windows2025",
}
UBUNTU_BLOCK_DEVICE = {"deviceName": "/dev/sda1", "ebs": {"volumeSize": "20Gi", "volumeType": "gp3", "encrypted": True}}

DROPPED_ANNOTATIONS = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "karpenter.sh/provisioner-hash",
    "karpenter.k8s.aws/nodetemplate-hash",
    "karpenter.sh/nodepool-hash",
    "karpenter.sh/nodepool-hash-version",
    "karpenter.k8s.aws/ec2nodeclass-hash",
    "karpenter.k8s.aws/ec2nodeclass-hash-version",
    "compatibility.karpenter.sh/v1beta1-nodeclass-reference",
    "compatibility.karpenter.sh/v1beta1-kubelet-conversion",
)
RENAMED_ANNOTATIONS = {
    "karpenter.sh/do-not-evict": "karpenter.sh/do-not-disrupt",
    "karpenter.sh/do-not-consolidate": "karpenter.sh/do-not-disrupt",
}
DROPPED_LABEL_KEYS = ("karpenter.k8s.aws/instance-pods", "karpenter.k8s.aws/instance-ami-id")
OBSOLETE_TAGS = ("karpenter.sh/provisioner-name", "karpenter.sh/managed-by")
INSTANCE_SELECTING_KEYS = (
    "node.kubernetes.io/instance-type",
    "karpenter.k8s.aws/instance-family",
    "karpenter.k8s.aws/instance-category",
    "karpenter.k8s.aws/instance-generation",
)


# EC2 instance families known to the pinned Karpenter provider (its generated price table lists every type)
FAMILY_CATALOGUE = "%s (%d families)" % (_catalogue.SOURCE, len({t.split(".")[0] for t in _catalogue.ON_DEMAND}))
_FAMILIES = sorted({t.split(".")[0] for t in _catalogue.ON_DEMAND})


# Karpenter's karpenter.k8s.aws/instance-category: the letters of a family name before its generation (c5 -> c)
_CATEGORIES = sorted({re.match(r"[a-z]+", f).group(0) for f in _FAMILIES if re.match(r"[a-z]+[0-9]", f)})


def _value_text(value):
    """A requirement value as the string kubectl would send from YAML: ``true`` -> ``"true"``, ``1`` -> ``"1"``
    (``str()`` would give ``"True"``); strings unchanged."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return str(value)


def instance_families(prefix: str) -> list[str]:
    """Families meant by an old-style ``<prefix>.*`` glob: ``[prefix]`` when it is a family (``g5``), else the
    families whose name begins with it (``p4`` -> ``p4d``, ``p4de``: there is no ``p4`` family), else []."""
    if prefix in _FAMILIES:
        return [prefix]
    return [f for f in _FAMILIES if f.startswith(prefix)]


# Types of the legacy fields the converter reads (from the v1alpha5/v1alpha1/v1beta1 CRDs). An object
# with a value of another type at one of these paths is not converted: each such value is an error
# naming the field, as the apiserver serving those versions would have reported it.
_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_MAP = {"type": "object"}
_OBJECTS = {"type": "array", "items": _MAP}
_LEGACY_METADATA = {
    "type": "object",
    "properties": {"name": _STR, "generateName": _STR, "labels": _MAP, "annotations": _MAP},
}
_LEGACY_REQUIREMENTS = {
    "type": "array",
    "items": {"type": "object", "properties": {"key": _STR, "operator": _STR, "values": {"type": "array"}}},
}
_LEGACY_BLOCK_DEVICES = {"type": "array", "items": {"type": "object", "properties": {"ebs": _MAP}}}
_LEGACY_NODECLASS_COMMON = {
    "instanceProfile": _STR,
    "amiFamily": _STR,
    "userData": _STR,
    "tags": _MAP,
    "metadataOptions": _MAP,
    "blockDeviceMappings": _LEGACY_BLOCK_DEVICES,
}
_ALPHA_NODETEMPLATE_SPEC = {
    "type": "object",
    "properties": dict(
        _LEGACY_NODECLASS_COMMON,
        amiSelector=_MAP,
        subnetSelector=_MAP,
        securityGroupSelector=_MAP,
        launchTemplate=_STR,
        launchTemplateName=_STR,
    ),
}
_LEGACY_TYPES = {
    ("karpenter.sh/v1alpha5", "Provisioner"): {
        "metadata": _LEGACY_METADATA,
        "spec": {
            "type": "object",
            "properties": {
                "labels": _MAP,
                "annotations": _MAP,
                "taints": _OBJECTS,
                "startupTaints": _OBJECTS,
                "requirements": _LEGACY_REQUIREMENTS,
                "providerRef": {"type": "object", "properties": {"kind": _STR, "name": _STR}},
                "provider": _ALPHA_NODETEMPLATE_SPEC,
                "kubeletConfiguration": _MAP,
                "ttlSecondsUntilExpired": _INT,
                "ttlSecondsAfterEmpty": _INT,
                "consolidation": {"type": "object", "properties": {"enabled": _BOOL}},
                "limits": {"type": "object", "properties": {"resources": _MAP}},
                "weight": _INT,
            },
        },
    },
    ("karpenter.k8s.aws/v1alpha1", "AWSNodeTemplate"): {"metadata": _LEGACY_METADATA, "spec": _ALPHA_NODETEMPLATE_SPEC},
    ("karpenter.sh/v1beta1", "NodePool"): {
        "metadata": _LEGACY_METADATA,
        "spec": {
            "type": "object",
            "properties": {
                "template": {
                    "type": "object",
                    "properties": {
                        "metadata": {"type": "object", "properties": {"labels": _MAP, "annotations": _MAP}},
                        "spec": {
                            "type": "object",
                            "properties": {
                                "nodeClassRef": {
                                    "type": "object",
                                    "properties": {"apiVersion": _STR, "group": _STR, "kind": _STR, "name": _STR},
                                },
                                "requirements": _LEGACY_REQUIREMENTS,
                                "taints": _OBJECTS,
                                "startupTaints": _OBJECTS,
                                "kubelet": _MAP,
                            },
                        },
                    },
                },
                "disruption": {
                    "type": "object",
                    "properties": {"consolidationPolicy": _STR, "consolidateAfter": _STR, "expireAfter": _STR},
                },
                "limits": _MAP,
                "weight": _INT,
            },
        },
    },
    ("karpenter.k8s.aws/v1beta1", "EC2NodeClass"): {
        "metadata": _LEGACY_METADATA,
        "spec": {
            "type": "object",
            "properties": dict(
                _LEGACY_NODECLASS_COMMON,
                role=_STR,
                amiSelectorTerms=_OBJECTS,
                subnetSelectorTerms=_OBJECTS,
                securityGroupSelectorTerms=_OBJECTS,
            ),
        },
    },
}


def legacy_type_errors(obj: dict[str, Any], ref: str = "") -> list[Issue]:
    """Errors for values of a legacy object whose type is not the one its CRD declares (``type`` rule).

    Only the fields the converter reads are checked; null values count as absent (the apiserver
    drops them), except in lists.
    """
    out = []
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    types = _LEGACY_TYPES.get((api_version, kind)) if isinstance(api_version, str) and isinstance(kind, str) else None
    for field, field_schema in sorted((types or {}).items()):
        if obj.get(field) is not None:
            _type_errors(obj[field], field_schema, field, ref, out)
    return out


def _type_errors(value, field_schema, path, ref, out):
    if not matches_type(value, field_schema):
        out.append(
            Issue(
                ref,
                path,
                "type",
                'Invalid value: "%s": must be of type %s; not converted' % (type_name(value), field_schema["type"]),
                ERROR,
                "convert",
            )
        )
        return
    if isinstance(value, dict):
        for k, sub in (field_schema.get("properties") or {}).items():
            if value.get(k) is not None:
                _type_errors(value[k], sub, join_path(path, k), ref, out)
    elif isinstance(value, list) and "items" in field_schema:
        for i, item in enumerate(value):
            _type_errors(item, field_schema["items"], join_path(path, i), ref, out)


def _kubelet_fields():
    """The fields a v1 spec.kubelet may hold: Karpenter v1.15 takes any field of the upstream
    KubeletConfiguration (the validator then checks what the class' AMI family applies)."""
    return upstream_kubelet_fields()


class _Converter:
    def __init__(
        self,
        node_role=None,
        instance_profile=None,
        ami_version="latest",
        ignore_alpha_defaults=False,
        kubernetes_version=None,
    ):
        self.node_role = node_role
        self.instance_profile = instance_profile
        self.ami_version = ami_version or "latest"
        self.ignore_alpha_defaults = ignore_alpha_defaults
        self.kubernetes_version = kubernetes_version
        self.report = []
        self.kubelets = []  # (nodepool dict, nodepool ref, nodeclass name, kubelet dict or None, source path)

    # -- report helpers ----------------------------------------------------------------------
    def _add(self, ref, path, category, message, severity):
        self.report.append(Issue(ref, path, category, message, severity, source="convert"))

    def error(self, ref, path, message, category="unconvertible"):
        self._add(ref, path, category, message, ERROR)

    def warn(self, ref, path, message, category="lossy"):
        self._add(ref, path, category, message, WARNING)

    def info(self, ref, path, message, category="default"):
        self._add(ref, path, category, message, INFO)

    # -- shared pieces -----------------------------------------------------------------------
    def metadata(self, obj, ref):
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        out = {}
        for k in ("name", "generateName", "labels", "annotations"):
            if k in meta and meta[k] not in (None, {}, ""):
                out[k] = copy.deepcopy(meta[k])
        annotations = out.get("annotations")
        if isinstance(annotations, dict):
            for a in DROPPED_ANNOTATIONS:
                annotations.pop(a, None)
            if not annotations:
                del out["annotations"]
        if meta.get("finalizers"):
            self.info(
                ref,
                "metadata.finalizers",
                "finalizers %s dropped (Karpenter v1 adds its own)" % meta["finalizers"],
                "dropped",
            )
        if meta.get("namespace"):
            self.info(ref, "metadata.namespace", "namespace dropped: Karpenter kinds are cluster-scoped", "dropped")
        return out

    def seconds_to_duration(self, value, ref, path):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or int(value) != value:
            self.error(ref, path, "%r is not a whole number of seconds" % (value,))
            return None
        seconds = int(value)
        if seconds > _MAX_DURATION_SECONDS:
            self.warn(
                ref,
                path,
                "%d seconds is past Go's time.Duration (at most %d s, about 292 years): as a duration Karpenter could "
                "not decode the NodePool; written as Never, which is what it meant" % (seconds, _MAX_DURATION_SECONDS),
            )
            return "Never"
        if seconds and seconds % 3600 == 0:
            return "%dh" % (seconds // 3600)
        return "%ds" % seconds

    def labels(self, labels, ref, path):
        out = {}
        for k, v in (labels or {}).items():
            p = join_path(path, key(k))
            nk = NORMALIZED_LABELS.get(k, k)
            if k == "karpenter.sh/provisioner-name":
                self.warn(
                    ref,
                    p,
                    "label karpenter.sh/provisioner-name dropped: Karpenter sets karpenter.sh/nodepool itself and a "
                    "NodePool may not set it",
                    "dropped",
                )
                continue
            if k in DROPPED_LABEL_KEYS:
                self.warn(ref, p, "label %s no longer exists in v1; dropped" % k, "dropped")
                continue
            if nk != k:
                self.info(ref, p, "label %s renamed to %s" % (k, nk), "renamed")
            if is_kubernetes_domain_label(nk):
                self.warn(
                    ref,
                    p,
                    "custom label %s under a Kubernetes-owned domain is rejected by Karpenter < v1.9; use your own "
                    "domain" % nk,
                    "restricted",
                )
            out[nk] = v
        return out

    def annotations(self, annotations, ref, path):
        out = {}
        for k, v in (annotations or {}).items():
            if k in RENAMED_ANNOTATIONS:
                nk = RENAMED_ANNOTATIONS[k]
                self.info(ref, join_path(path, key(k)), "annotation %s renamed to %s" % (k, nk), "renamed")
                out[nk] = v
            else:
                out[k] = v
        return out

    def requirements(self, reqs, ref, path):
        out = []
        for i, req in enumerate(reqs or []):
            p = join_path(path, i)
            if not isinstance(req, dict):
                self.error(ref, p, "requirement is not an object; dropped")
                continue
            req = copy.deepcopy(req)
            rkey = req.get("key")
            if rkey == "karpenter.sh/provisioner-name":
                self.warn(
                    ref,
                    p,
                    "requirement on karpenter.sh/provisioner-name dropped (renamed karpenter.sh/nodepool, which a "
                    "NodePool may not use)",
                    "dropped",
                )
                continue
            if rkey in DROPPED_LABEL_KEYS:
                self.warn(
                    ref,
                    p,
                    "requirement on %s dropped: the label no longer exists in v1 (the pool selects more instance types)"
                    % rkey,
                    "dropped",
                )
                continue
            if rkey == "node.kubernetes.io/instance-family":
                rkey = self._instance_family_key(req, ref, p)
            if rkey in NORMALIZED_LABELS:
                req["key"] = NORMALIZED_LABELS[rkey]
                self.info(ref, join_path(p, "key"), "requirement key %s renamed to %s" % (rkey, req["key"]), "renamed")
                rkey = req["key"]
            if isinstance(rkey, str) and is_kubernetes_domain_label(rkey):
                self.warn(
                    ref,
                    join_path(p, "key"),
                    "custom requirement key %s under a Kubernetes-owned domain is rejected by Karpenter < v1.9" % rkey,
                    "restricted",
                )
            values = req.get("values")
            if isinstance(values, list) and values:
                req = self._fix_values(req, ref, p)
                if req is None:
                    continue
            out.append(req)
        return out

    def _instance_family_key(self, req, ref, path):
        """``node.kubernetes.io/instance-family`` is no Karpenter label: the requirement moves to
        ``karpenter.k8s.aws/instance-family`` only when its values are EC2 families, to
        ``karpenter.k8s.aws/instance-category`` when they are categories (``c``, ``m``, ``r``); otherwise the
        key stays (a custom label Karpenter puts on the nodes, which selects no instance type) and is reported."""
        old = "node.kubernetes.io/instance-family"
        values = req.get("values") if isinstance(req.get("values"), list) else []
        texts = [v for v in values if isinstance(v, str)]
        target = None
        if len(texts) == len(values):
            if all(v in _FAMILIES for v in texts):
                target = "karpenter.k8s.aws/instance-family"
            elif texts and all(v in _CATEGORIES for v in texts):
                target = "karpenter.k8s.aws/instance-category"
        if target is None:
            self.warn(
                ref,
                join_path(path, "key"),
                "%s is not a Karpenter label and its values %s are neither EC2 instance families nor instance "
                "categories (catalogue: %s): key kept, so it selects no instance type (Karpenter only labels the "
                "nodes with it); use karpenter.k8s.aws/instance-family or instance-category"
                % (old, values, FAMILY_CATALOGUE),
                "kept",
            )
            return old
        req["key"] = target
        self.info(
            ref,
            join_path(path, "key"),
            "%s is not a Karpenter label; values %s are instance %s: using %s"
            % (old, values, "families" if target.endswith("family") else "categories", target),
            "renamed",
        )
        return target

    def _fix_values(self, req, ref, path):
        values = [_value_text(v) for v in req["values"]]
        for i, (v, text) in enumerate(zip(req["values"], values, strict=True)):
            if not isinstance(v, str):
                self.info(
                    ref,
                    join_path(join_path(path, "values"), i),
                    "value %s (a YAML %s) written as the string %s" % (json.dumps(v), type_name(v), json.dumps(text)),
                    "translated",
                )
        op = req.get("operator")
        bad = [v for v in values if GLOB_CHARS.search(v) or is_valid_label_value(v)]
        if not bad:
            req["values"] = values
            return req
        if (
            req.get("key") == "node.kubernetes.io/instance-type"
            and op in ("In", "NotIn")
            and all(FAMILY_GLOB.match(v) for v in values)
        ):
            families, notes, unknown = [], [], []
            for v in values:
                prefix = FAMILY_GLOB.match(v).group(1)
                found = instance_families(prefix)
                if not found:
                    unknown.append(v)
                    continue
                if found != [prefix]:
                    notes.append(
                        "%s is not an EC2 instance family; %s %s (the families whose name begins with %s)"
                        % (prefix, "using" if op == "In" else "excluding", found, prefix)
                    )
                families.extend(f for f in found if f not in families)
            if unknown:
                self.error(
                    ref,
                    join_path(path, "values"),
                    "instance-type glob(s) %s name no known EC2 instance family (catalogue: %s); write the "
                    "karpenter.k8s.aws/instance-family values by hand" % (unknown, FAMILY_CATALOGUE),
                )
                if not families:
                    return None
            self.warn(
                ref,
                join_path(path, "values"),
                "instance-type glob(s) %s translated to karpenter.k8s.aws/instance-family %s %s (values match "
                "literally in v1)%s" % (values, op, families, "".join("; " + n for n in notes)),
                "translated",
            )
            req["key"] = "karpenter.k8s.aws/instance-family"
            req["values"] = families
            return req
        if op == "In" and any(v in ("*", ".*") for v in values):
            self.warn(
                ref,
                path,
                "requirement %s In %s means 'any value'; replaced by operator Exists" % (req.get("key"), values),
                "translated",
            )
            req["operator"] = "Exists"
            req.pop("values", None)
            req.pop("minValues", None)
            return req
        good = [v for v in values if v not in bad]
        self.error(
            ref,
            join_path(path, "values"),
            "values %s of %s are not label values (no globs/regex in v1) and could not be translated; %s"
            % (bad, req.get("key"), "kept %s" % good if good else "requirement dropped"),
        )
        if not good:
            return None
        req["values"] = good
        return req

    def kubelet(self, kubelet, ref, path):
        if not isinstance(kubelet, dict):
            return None
        allowed = _kubelet_fields()
        out = {}
        for k, v in kubelet.items():
            if k == "containerRuntime":
                self.warn(ref, join_path(path, k), "containerRuntime %r dropped: v1 always uses containerd" % (v,))
            elif k in allowed:
                out[k] = copy.deepcopy(v)
            else:
                self.warn(
                    ref, join_path(path, k), "kubelet setting %s has no v1 field; dropped (set it through userData)" % k
                )
        return out

    # -- Provisioner -------------------------------------------------------------------------
    def provisioner(self, obj, ref, outputs):
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        handled = {
            "labels", "annotations", "taints", "startupTaints", "requirements", "providerRef", "provider",
            "kubeletConfiguration", "ttlSecondsUntilExpired", "ttlSecondsAfterEmpty", "consolidation", "limits",
            "weight",
        }  # fmt: skip
        meta = self.metadata(obj, ref)
        name = meta.get("name") or meta.get("generateName", "").rstrip("-") or "converted"
        np = {"apiVersion": NODEPOOL_V1, "kind": "NodePool", "metadata": meta, "spec": {}}
        template = {}
        tmeta = {}
        if spec.get("labels"):
            tmeta["labels"] = self.labels(spec["labels"], ref, "spec.labels")
        if spec.get("annotations"):
            tmeta["annotations"] = self.annotations(spec["annotations"], ref, "spec.annotations")
        if tmeta:
            template["metadata"] = tmeta
        tspec = {}

        # nodeClassRef / inline provider
        provider_ref = spec.get("providerRef")
        nodeclass_name = None
        if isinstance(provider_ref, dict) and spec.get("provider"):
            self.error(ref, "spec.provider", "both providerRef and provider are set; provider ignored")
        if isinstance(provider_ref, dict):
            kind = provider_ref.get("kind", "AWSNodeTemplate")
            if kind != "AWSNodeTemplate":
                self.error(ref, "spec.providerRef.kind", "providerRef kind %s is not AWSNodeTemplate" % kind)
            nodeclass_name = provider_ref.get("name")
        elif isinstance(spec.get("provider"), dict):
            nodeclass_name = name
            provider = {k: v for k, v in spec["provider"].items() if k not in ("apiVersion", "kind")}
            nc = self.nodetemplate_spec(name, provider, ref, "spec.provider", {"name": name})
            outputs.append(nc)
            self.info(ref, "spec.provider", "inline provider converted to EC2NodeClass/%s" % name, "split")
        else:
            self.error(
                ref, "spec.providerRef", "neither providerRef nor provider is set: the NodePool needs an EC2NodeClass"
            )
        tspec["nodeClassRef"] = {"group": NODECLASS_GROUP, "kind": "EC2NodeClass", "name": nodeclass_name or name}

        reqs = self.requirements(spec.get("requirements"), ref, "spec.requirements")
        if not self.ignore_alpha_defaults:
            reqs.extend(self.alpha_default_requirements(reqs, tmeta.get("labels") or {}, ref))
        tspec["requirements"] = reqs
        for field in ("taints", "startupTaints"):
            if spec.get(field):
                tspec[field] = copy.deepcopy(spec[field])

        if "ttlSecondsUntilExpired" in spec and spec["ttlSecondsUntilExpired"] is not None:
            ttl = spec["ttlSecondsUntilExpired"]
            if ttl == 0 and not isinstance(ttl, bool):
                self.error(
                    ref,
                    "spec.ttlSecondsUntilExpired",
                    "ttlSecondsUntilExpired: 0 expires every node as soon as it launches; not converted to "
                    "expireAfter: 0s (Karpenter would replace nodes in a loop, and validation refuses it): write "
                    "expireAfter: Never or a duration such as 720h",
                )
            else:
                duration = self.seconds_to_duration(ttl, ref, "spec.ttlSecondsUntilExpired")
                if duration:
                    tspec["expireAfter"] = duration
        else:
            tspec["expireAfter"] = "Never"
            self.info(
                ref,
                "spec.template.spec.expireAfter",
                "expireAfter: Never written out: the provisioner had no ttlSecondsUntilExpired (v1 would default to "
                "720h)",
            )
        template["spec"] = tspec
        np["spec"]["template"] = template

        # disruption
        consolidation = spec.get("consolidation") if isinstance(spec.get("consolidation"), dict) else {}
        ttl_empty = spec.get("ttlSecondsAfterEmpty")
        if consolidation.get("enabled") is True:
            if ttl_empty is not None:
                self.warn(
                    ref,
                    "spec.ttlSecondsAfterEmpty",
                    "expected exactly one, got both: consolidation.enabled, ttlSecondsAfterEmpty; consolidation wins "
                    "and "
                    "ttlSecondsAfterEmpty is dropped",
                    "conflict",
                )
            disruption = {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "0s"}
        elif ttl_empty is not None:
            after = self.seconds_to_duration(ttl_empty, ref, "spec.ttlSecondsAfterEmpty") or "0s"
            disruption = {"consolidationPolicy": "WhenEmpty", "consolidateAfter": after}
        else:
            disruption = {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "Never"}
            self.info(
                ref,
                "spec.disruption",
                "consolidationPolicy: WhenEmpty, consolidateAfter: Never written out: the provisioner never scaled in "
                "(v1 defaults would turn consolidation on)",
            )
        np["spec"]["disruption"] = disruption

        limits = spec.get("limits")
        if isinstance(limits, dict):
            resources = limits.get("resources") if isinstance(limits.get("resources"), dict) else {}
            for k in limits:
                if k != "resources":
                    self.warn(
                        ref, join_path("spec.limits", k), "limits.%s has no v1 equivalent; dropped" % k, "dropped"
                    )
            if resources:
                np["spec"]["limits"] = {
                    k: self._quantity(v, ref, join_path("spec.limits.resources", key(k))) for k, v in resources.items()
                }
        if spec.get("weight") is not None:
            np["spec"]["weight"] = spec["weight"]

        kubelet = None
        if spec.get("kubeletConfiguration") is not None:
            kubelet = self.kubelet(spec["kubeletConfiguration"], ref, "spec.kubeletConfiguration")
        self.kubelets.append((np, ref, tspec["nodeClassRef"]["name"], kubelet or None, "spec.kubeletConfiguration"))

        for k in spec:
            if k not in handled:
                self.warn(ref, join_path("spec", k), "field spec.%s has no v1 equivalent; dropped" % k, "dropped")
        return np

    def _quantity(self, value, ref, path):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            self.error(ref, path, "%r is not a quantity" % (value,))
            return value
        try:
            parse_quantity(value)
        except ValueError:
            self.error(ref, path, "%r is not a Kubernetes quantity" % (value,))
        return str(value) if not isinstance(value, str) else value

    def alpha_default_requirements(self, reqs, labels, ref):
        present = set(r.get("key") for r in reqs if isinstance(r, dict)) | set(labels)
        added = []

        def add(rkey, op, values):
            added.append({"key": rkey, "operator": op, "values": values})
            self.info(
                ref,
                "spec.template.spec.requirements",
                "alpha default requirement %s %s %s written out (v1 injects no requirements)" % (rkey, op, values),
            )

        if "kubernetes.io/os" not in present:
            add("kubernetes.io/os", "In", ["linux"])
        if "kubernetes.io/arch" not in present:
            add("kubernetes.io/arch", "In", ["amd64"])
        if "karpenter.sh/capacity-type" not in present:
            add("karpenter.sh/capacity-type", "In", ["on-demand"])
        if not present.intersection(INSTANCE_SELECTING_KEYS):
            add("karpenter.k8s.aws/instance-category", "In", ["c", "m", "r"])
            add("karpenter.k8s.aws/instance-generation", "Gt", ["2"])
        return added

    # -- AWSNodeTemplate ---------------------------------------------------------------------
    def nodetemplate(self, obj, ref):
        meta = self.metadata(obj, ref)
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        return self.nodetemplate_spec(meta.get("name"), spec, ref, "spec", meta)

    def nodetemplate_spec(self, name, spec, ref, base, meta):
        handled = {
            "instanceProfile", "amiFamily", "amiSelector", "subnetSelector", "securityGroupSelector", "userData",
            "launchTemplate", "launchTemplateName", "tags", "metadataOptions", "blockDeviceMappings",
            "detailedMonitoring", "context", "instanceStorePolicy", "associatePublicIPAddress",
        }  # fmt: skip
        out_spec = {}
        self.role_or_profile(spec.get("instanceProfile"), out_spec, ref, join_path(base, "instanceProfile"))

        family = spec.get("amiFamily")
        if not family:
            family = "AL2"
            self.info(ref, join_path(base, "amiFamily"), "amiFamily AL2 (the alpha default) written out")
        ami_selector = spec.get("amiSelector") if isinstance(spec.get("amiSelector"), dict) else None
        terms = (
            self.ami_terms_from_selector(ami_selector, ref, join_path(base, "amiSelector")) if ami_selector else None
        )
        self.ami(family, terms, out_spec, spec, ref, base)

        out_spec["subnetSelectorTerms"] = self.selector_terms(
            spec.get("subnetSelector"), ref, join_path(base, "subnetSelector")
        )
        out_spec["securityGroupSelectorTerms"] = self.selector_terms(
            spec.get("securityGroupSelector"), ref, join_path(base, "securityGroupSelector")
        )
        for field in ("launchTemplate", "launchTemplateName"):
            if spec.get(field):
                self.error(
                    ref,
                    join_path(base, field),
                    'cannot convert with "spec.launchTemplate": launch templates were removed in v1beta1; move its '
                    "settings "
                    "into EC2NodeClass fields (blockDeviceMappings, metadataOptions, securityGroupSelectorTerms) or "
                    "userData",
                )
        self.common_nodeclass_fields(spec, out_spec, ref, base, alpha=True)
        for k in spec:
            if k not in handled:
                self.warn(ref, join_path(base, k), "field %s has no v1 equivalent; dropped" % k, "dropped")
        return {"apiVersion": NODECLASS_V1, "kind": "EC2NodeClass", "metadata": meta, "spec": out_spec}

    def role_or_profile(self, instance_profile, out_spec, ref, path, role=None):
        if role:
            out_spec["role"] = role
        elif self.node_role:
            out_spec["role"] = self.node_role
            if instance_profile:
                self.info(
                    ref,
                    path,
                    "instanceProfile %s replaced by role %s (Karpenter manages the instance profile)"
                    % (instance_profile, self.node_role),
                    "changed",
                )
        elif instance_profile:
            out_spec["instanceProfile"] = instance_profile
        elif self.instance_profile:
            out_spec["instanceProfile"] = self.instance_profile
            self.info(ref, path, "instanceProfile %s taken from the converter options" % self.instance_profile)
        else:
            self.error(
                ref,
                path,
                "no instanceProfile: the alpha controller used settings.aws.defaultInstanceProfile, which is gone; "
                "pass "
                "node_role or instance_profile to the converter",
            )

    def ami(self, family, terms, out_spec, spec, ref, base):
        path = join_path(base, "amiFamily")
        if family == "Ubuntu":
            if terms:
                out_spec["amiFamily"] = "AL2"
                out_spec["amiSelectorTerms"] = terms
                if not spec.get("blockDeviceMappings"):
                    out_spec["blockDeviceMappings"] = [copy.deepcopy(UBUNTU_BLOCK_DEVICE)]
                self.warn(
                    ref,
                    path,
                    "amiFamily Ubuntu was removed in v1: converted to AL2 with the explicit AMIs and the Ubuntu root "
                    "volume /dev/sda1 20Gi gp3; check userData/bootstrap (or use Custom)",
                )
            else:
                self.error(
                    ref,
                    path,
                    "amiFamily Ubuntu was removed in v1 and no amiSelector gives the AMIs: choose AL2023, or "
                    "AL2/Custom with explicit AMIs",
                )
            return
        if family == "Custom":
            self.warn(
                ref,
                path,
                "amiFamily Custom: Karpenter v1 generates no userData for it, and a node must register with the "
                "taint %s (v1 refuses to initialize a node without it): your userData must pass it to the kubelet "
                "(--register-with-taints=%s or registerWithTaints)" % (UNREGISTERED_TAINT, UNREGISTERED_TAINT),
                "behaviour",
            )
        if terms:
            out_spec["amiFamily"] = family
            out_spec["amiSelectorTerms"] = terms
            return
        alias_family = ALIAS_FAMILIES.get(family)
        if alias_family is None:
            self.error(ref, path, "amiFamily %s needs explicit AMIs (amiSelector) in v1; none given" % family)
            out_spec["amiFamily"] = family
            return
        version = self._alias_version(alias_family, ref)
        out_spec["amiFamily"] = family
        out_spec["amiSelectorTerms"] = [{"alias": "%s@%s" % (alias_family, version)}]
        if version == "latest" and not alias_family.startswith("windows"):
            self.warn(
                ref,
                "spec.amiSelectorTerms",
                "amiSelectorTerms alias %s@latest: every new AMI drifts every node; pin a version (ami_version option)"
                % alias_family,
                "behaviour",
            )
        if family == "AL2":
            sev = ERROR if self._k8s_at_least(1, 33) else WARNING
            self._add(
                ref,
                path,
                "behaviour",
                "AL2: EKS publishes AL2 AMIs only up to Kubernetes 1.32; prefer AL2023 (userData becomes a NodeConfig "
                "document)",
                sev,
            )

    def _alias_version(self, alias_family, ref):
        """The ``ami_version`` option for an alias of this family, or ``latest`` when it does not fit it
        (AL2/AL2023 releases are ``vYYYYMMDD``, Bottlerocket's ``vX.Y.Z``, Windows aliases only ``latest``)."""
        version = self.ami_version
        if version == "latest":
            return version
        pattern = _ALIAS_VERSIONS.get(alias_family)
        if pattern is not None and pattern.match(str(version)):
            return version
        if pattern is not None:  # Windows has no pinned versions: nothing to report
            self.warn(
                ref,
                "spec.amiSelectorTerms",
                "ami_version %s is not a %s release (%s); alias %s@latest used for this EC2NodeClass"
                % (version, alias_family, _ALIAS_VERSION_FORMS[alias_family], alias_family),
                "behaviour",
            )
        return "latest"

    def _k8s_at_least(self, major, minor):
        if not self.kubernetes_version:
            return False
        try:
            parts = str(self.kubernetes_version).lstrip("v").split(".")
            return (int(parts[0]), int(parts[1])) >= (major, minor)
        except (ValueError, IndexError):
            return False

    def ami_terms_from_selector(self, selector, ref, path):
        ids = []
        names = []
        owners = []
        tags = {}
        for k, v in selector.items():
            values = [s.strip() for s in str(v).split(",") if s.strip()]
            if k in ("aws::ids", "aws-ids"):
                ids.extend(values)
            elif k == "aws::name":
                names.extend(values)
            elif k == "aws::owners":
                owners.extend(values)
            else:
                tags[k] = values
        terms = [{"id": i} for i in ids]
        if names or owners or tags:
            tag_keys = sorted(tags)
            for name, owner, *tag_values in itertools.product(
                names or [None], owners or [None], *[tags[t] for t in tag_keys]
            ):
                term = {}
                if tag_values:
                    term["tags"] = dict(zip(tag_keys, tag_values))  # noqa: B905 - same length
                if name:
                    term["name"] = name
                if owner:
                    term["owner"] = owner
                if not term.get("name") and not term.get("tags"):
                    self.error(
                        ref,
                        join_path(path, "aws::owners"),
                        "aws::owners alone does not select AMIs in v1 (a term needs tags, id, name or alias)",
                    )
                    continue
                terms.append(term)
        if len(terms) > 1 or any(v for v in selector.values() if "," in str(v)):
            self.info(
                ref,
                path,
                "amiSelector expanded into %d amiSelectorTerms (comma-separated values become separate terms)"
                % len(terms),
                "expanded",
            )
        if len(terms) > 30:
            self.error(ref, path, "amiSelector expands into %d terms; v1 allows at most 30" % len(terms))
        return terms

    def selector_terms(self, selector, ref, path):
        if not isinstance(selector, dict) or not selector:
            self.error(ref, path, "selector missing: v1 requires at least one selector term")
            return []
        terms = []
        tags = {}
        for k, v in selector.items():
            values = [s.strip() for s in str(v).split(",") if s.strip()]
            if k in ("aws::ids", "aws-ids"):
                terms.extend({"id": i} for i in values)
            elif k == "aws::name":
                terms.extend({"name": n} for n in values)
            else:
                tags[k] = values or [str(v)]
        if tags:
            tag_keys = sorted(tags)
            for combo in itertools.product(*[tags[t] for t in tag_keys]):
                terms.append({"tags": dict(zip(tag_keys, combo))})  # noqa: B905 - same length
        if len(terms) > 30:
            self.error(ref, path, "selector expands into %d terms; v1 allows at most 30" % len(terms))
        return terms

    def common_nodeclass_fields(self, spec, out_spec, ref, base, alpha):
        if spec.get("userData") is not None:
            out_spec["userData"] = spec["userData"]
        for field in ("detailedMonitoring", "context", "instanceStorePolicy", "associatePublicIPAddress"):
            if spec.get(field) is not None:
                out_spec[field] = copy.deepcopy(spec[field])
        if spec.get("blockDeviceMappings"):
            out_spec["blockDeviceMappings"] = self.block_devices(
                spec["blockDeviceMappings"], ref, join_path(base, "blockDeviceMappings")
            )
        tags = spec.get("tags")
        if isinstance(tags, dict) and tags:
            kept = {}
            for k, v in tags.items():
                if k in OBSOLETE_TAGS:
                    self.warn(
                        ref,
                        join_path(join_path(base, "tags"), key(k)),
                        "alpha tag %s dropped (v1 tags with karpenter.sh/nodepool and eks:eks-cluster-name)" % k,
                        "dropped",
                    )
                elif is_restricted_tag(k) or k.startswith("kubernetes.io/cluster"):
                    self.warn(
                        ref,
                        join_path(join_path(base, "tags"), key(k)),
                        "restricted tag %s dropped (Karpenter sets it)" % k,
                        "dropped",
                    )
                else:
                    kept[k] = v
            if kept:
                out_spec["tags"] = kept
        mo = spec.get("metadataOptions") if isinstance(spec.get("metadataOptions"), dict) else {}
        merged = dict(ALPHA_METADATA_OPTIONS)
        merged.update(mo)
        out_spec["metadataOptions"] = merged
        if "httpPutResponseHopLimit" not in mo:
            self.warn(
                ref,
                join_path(base, "metadataOptions"),
                "IMDS httpPutResponseHopLimit 2 (the %s default) written out; v1 defaults to 1, which blocks IMDS for "
                "pods "
                "without hostNetwork - lower it to 1 if pods do not need IMDS" % ("alpha" if alpha else "v1beta1"),
                "behaviour",
            )

    def block_devices(self, bdms, ref, path):
        out = []
        pattern = schema_for(NODECLASS_V1, "EC2NodeClass")["properties"]["spec"]["properties"]["blockDeviceMappings"][
            "items"
        ]["properties"]["ebs"]["properties"]["volumeSize"]["pattern"]
        rx = compile_pattern(pattern)
        for i, bdm in enumerate(bdms if isinstance(bdms, list) else []):
            bdm = copy.deepcopy(bdm)
            ebs = bdm.get("ebs") if isinstance(bdm.get("ebs"), dict) else None
            p = join_path(join_path(path, i), "ebs")
            if ebs is not None:
                size = ebs.get("volumeSize")
                if size is None and not ebs.get("snapshotID"):
                    self.error(ref, p, "ebs needs volumeSize or snapshotID in v1")
                elif size is not None and not rx.search(str(size)):
                    fixed = self._to_gi(size)
                    if fixed:
                        ebs["volumeSize"] = fixed
                        self.info(
                            ref,
                            join_path(p, "volumeSize"),
                            "volumeSize %s written as %s (v1 accepts Gi/G/Ti/T)" % (size, fixed),
                            "changed",
                        )
                    else:
                        self.error(
                            ref,
                            join_path(p, "volumeSize"),
                            "volumeSize %r is not accepted by v1 (use e.g. 100Gi)" % (size,),
                        )
            out.append(bdm)
        return out

    @staticmethod
    def _to_gi(size):
        try:
            q = parse_quantity(size)
        except ValueError:
            return None
        gib = q / (2**30)
        if gib.denominator == 1 and 1 <= gib <= 59000:
            return "%dGi" % gib
        return None

    # -- v1beta1 -----------------------------------------------------------------------------
    def beta_nodepool(self, obj, ref):
        spec = copy.deepcopy(obj.get("spec")) if isinstance(obj.get("spec"), dict) else {}
        meta = self.metadata(obj, ref)
        template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
        tmeta = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
        tspec = template.get("spec") if isinstance(template.get("spec"), dict) else {}
        out_tmeta = {}
        if tmeta.get("labels"):
            out_tmeta["labels"] = self.labels(tmeta["labels"], ref, "spec.template.metadata.labels")
        if tmeta.get("annotations"):
            out_tmeta["annotations"] = self.annotations(tmeta["annotations"], ref, "spec.template.metadata.annotations")
        out_tspec = {}
        ncr = tspec.get("nodeClassRef") if isinstance(tspec.get("nodeClassRef"), dict) else {}
        api_version = ncr.get("apiVersion") or ""
        group = ncr.get("group") or (api_version.split("/")[0] if api_version else NODECLASS_GROUP)
        out_tspec["nodeClassRef"] = {"group": group, "kind": ncr.get("kind") or "EC2NodeClass", "name": ncr.get("name")}
        if not ncr.get("name"):
            self.error(ref, "spec.template.spec.nodeClassRef.name", "nodeClassRef.name is required")
        out_tspec["requirements"] = self.requirements(tspec.get("requirements"), ref, "spec.template.spec.requirements")
        for field in ("taints", "startupTaints", "terminationGracePeriod"):
            if tspec.get(field):
                out_tspec[field] = tspec[field]
        disruption = spec.get("disruption") if isinstance(spec.get("disruption"), dict) else {}
        if disruption.get("expireAfter") is not None:
            out_tspec["expireAfter"] = disruption["expireAfter"]
            self.info(
                ref, "spec.disruption.expireAfter", "expireAfter moved to spec.template.spec.expireAfter", "moved"
            )
        for k in tspec:
            if k not in (
                "nodeClassRef",
                "requirements",
                "taints",
                "startupTaints",
                "terminationGracePeriod",
                "kubelet",
                "expireAfter",
            ):
                self.warn(
                    ref, join_path("spec.template.spec", k), "field %s has no v1 equivalent; dropped" % k, "dropped"
                )
        if tspec.get("expireAfter") is not None and "expireAfter" not in out_tspec:
            out_tspec["expireAfter"] = tspec["expireAfter"]

        policy = disruption.get("consolidationPolicy", "WhenUnderutilized")
        out_disruption = {}
        if policy == "WhenUnderutilized":
            out_disruption["consolidationPolicy"] = "WhenEmptyOrUnderutilized"
            out_disruption["consolidateAfter"] = "0s"
            if "consolidationPolicy" in disruption:
                self.info(
                    ref,
                    "spec.disruption.consolidationPolicy",
                    "WhenUnderutilized renamed to WhenEmptyOrUnderutilized (consolidateAfter: 0s)",
                    "renamed",
                )
        else:
            out_disruption["consolidationPolicy"] = policy
            after = disruption.get("consolidateAfter")
            if after is None:
                after = "0s"
                self.warn(
                    ref,
                    "spec.disruption.consolidateAfter",
                    "WhenEmpty without consolidateAfter; 0s written out (required in v1)",
                    "default",
                )
            out_disruption["consolidateAfter"] = after
        if disruption.get("budgets") is not None:
            out_disruption["budgets"] = disruption["budgets"]
        template_out = {}
        if out_tmeta:
            template_out["metadata"] = out_tmeta
        template_out["spec"] = out_tspec
        out = {
            "apiVersion": NODEPOOL_V1,
            "kind": "NodePool",
            "metadata": meta,
            "spec": {"template": template_out, "disruption": out_disruption},
        }
        for field in ("limits", "weight"):
            if spec.get(field) is not None:
                out["spec"][field] = spec[field]
        for k in spec:
            if k not in ("template", "disruption", "limits", "weight"):
                self.warn(ref, join_path("spec", k), "field spec.%s has no v1 equivalent; dropped" % k, "dropped")
        kubelet = (
            self.kubelet(tspec.get("kubelet"), ref, "spec.template.spec.kubelet")
            if tspec.get("kubelet") is not None
            else None
        )
        self.kubelets.append(
            (out, ref, out_tspec["nodeClassRef"]["name"], kubelet or None, "spec.template.spec.kubelet")
        )
        return out

    def beta_nodeclass(self, obj, ref):
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        meta = self.metadata(obj, ref)
        handled = {
            "role", "instanceProfile", "amiFamily", "amiSelectorTerms", "subnetSelectorTerms",
            "securityGroupSelectorTerms", "userData", "tags", "metadataOptions", "blockDeviceMappings",
            "detailedMonitoring", "context", "instanceStorePolicy", "associatePublicIPAddress",
        }  # fmt: skip
        out_spec = {}
        if spec.get("role") and spec.get("instanceProfile"):
            self.error(ref, "spec", "both role and instanceProfile are set; keeping role")
        self.role_or_profile(spec.get("instanceProfile"), out_spec, ref, "spec.instanceProfile", role=spec.get("role"))
        family = spec.get("amiFamily")
        if not family:
            family = "AL2"
            self.info(ref, "spec.amiFamily", "amiFamily AL2 (the v1beta1 default) written out")
        terms = copy.deepcopy(spec.get("amiSelectorTerms")) or None
        if terms:
            for i, term in enumerate(terms):
                if isinstance(term, dict) and term.get("id") and len(term) > 1:
                    self.error(
                        ref,
                        join_path(join_path("spec.amiSelectorTerms", i), "id"),
                        "an id term may not carry other fields in v1; split it",
                    )
        self.ami(family, terms, out_spec, spec, ref, "spec")
        for field in ("subnetSelectorTerms", "securityGroupSelectorTerms"):
            out_spec[field] = copy.deepcopy(spec.get(field)) or []
            if not out_spec[field]:
                self.error(ref, join_path("spec", field), "%s is required in v1" % field)
        self.common_nodeclass_fields(spec, out_spec, ref, "spec", alpha=False)
        for k in spec:
            if k not in handled:
                self.warn(ref, join_path("spec", k), "field %s has no v1 equivalent; dropped" % k, "dropped")
        return {"apiVersion": NODECLASS_V1, "kind": "EC2NodeClass", "metadata": meta, "spec": out_spec}

    # -- kubelet distribution ----------------------------------------------------------------
    def distribute_kubelets(self, outputs):
        """Put each pool's kubelet settings on its EC2NodeClass; returns the EC2NodeClass copies it created.

        Pools sharing one class with different kubelet settings get one class per distinct
        configuration: the first configuration (in input order) keeps the class, the others get a
        copy named ``<class>-<first pool using it>``.
        """
        created = []
        classes = {}
        for o in outputs:
            name = o.get("metadata").get("name") if isinstance(o.get("metadata"), dict) else None
            if (
                o.get("apiVersion") == NODECLASS_V1
                and o.get("kind") == "EC2NodeClass"
                and isinstance(name, str)
                and isinstance(o.get("spec"), dict)  # a malformed v1 class is reported by validation, not changed
            ):
                classes.setdefault(name, o)
        by_class = {}
        for entry in self.kubelets:
            by_class.setdefault(entry[2], []).append(entry)
        for class_name, entries in by_class.items():
            groups = []  # [(canonical kubelet json, [entries])] in first-appearance order
            for entry in entries:
                canon = json.dumps(entry[3], sort_keys=True)
                for g in groups:
                    if g[0] == canon:
                        g[1].append(entry)
                        break
                else:
                    groups.append((canon, [entry]))
            nc = classes.get(class_name)
            if nc is None:
                for _np, ref, _name, kubelet, path in entries:
                    if kubelet:
                        self.error(
                            ref,
                            path,
                            "kubelet settings move to EC2NodeClass/%s in v1, which is not in the input: add "
                            "spec.kubelet: %s to it" % (class_name, json.dumps(kubelet, sort_keys=True)),
                            "moved",
                        )
                continue
            first = groups[0][1]
            if first[0][3]:
                _set_kubelet(nc, first[0][3])
                for entry in first:
                    self.info(
                        entry[1],
                        entry[4],
                        "kubelet settings moved to EC2NodeClass/%s spec.kubelet" % class_name,
                        "moved",
                    )
            position = outputs.index(nc)
            for _canon, members in groups[1:]:
                kubelet = members[0][3]
                new_name = "%s-%s" % (class_name, members[0][0]["metadata"].get("name", "pool"))
                clone = copy.deepcopy(nc)
                clone["metadata"]["name"] = new_name
                clone["spec"].pop("kubelet", None)
                if kubelet:
                    _set_kubelet(clone, kubelet)
                position += 1
                outputs.insert(position, clone)
                created.append(clone)
                for np, ref, _name, _kubelet, _path in members:
                    np["spec"]["template"]["spec"]["nodeClassRef"]["name"] = new_name
                    self.warn(
                        ref,
                        "spec.template.spec.nodeClassRef.name",
                        "pools sharing EC2NodeClass/%s have different kubelet settings: this pool now uses the copy "
                        "EC2NodeClass/%s" % (class_name, new_name),
                        "split",
                    )
        return created


def _set_kubelet(nodeclass, kubelet):
    """Set spec.kubelet, placed before metadataOptions (the order of the reference examples)."""
    spec = nodeclass["spec"]
    items = [(k, v) for k, v in spec.items() if k != "kubelet"]
    spec.clear()
    for k, v in items:
        if k == "metadataOptions":
            spec["kubelet"] = copy.deepcopy(kubelet)
        spec[k] = v
    if "kubelet" not in spec:
        spec["kubelet"] = copy.deepcopy(kubelet)


def convert(obj_or_list: Any, **options: Any) -> tuple[list[Any], list[Issue]]:
    """Convert legacy Karpenter objects to v1; returns ``(objects, report)``.

    Options (those of :func:`convert_with_origins`): ``node_role`` (write ``role`` instead of ``instanceProfile``,
    or supply one when the template has none), ``instance_profile`` (used when the template has none),
    ``ami_version`` (alias version instead of ``latest``), ``ignore_alpha_defaults`` (like karpenter-convert
    ``--ignore-defaults``), ``kubernetes_version`` (AL2 on >= 1.33 becomes an error), ``validate`` (report
    validation errors of the converted objects).
    """
    objects, report, _origins = convert_with_origins(obj_or_list, **options)
    return objects, report


def convert_with_origins(
    obj_or_list: object,
    node_role: str | None = None,
    instance_profile: str | None = None,
    ami_version: str = "latest",
    ignore_alpha_defaults: bool = False,
    kubernetes_version: str | float | None = None,
    validate: bool = True,
) -> tuple[list, list[Issue], list[int | None]]:
    """:func:`convert` (same options), plus where each report entry comes from: ``(objects, report, origins)``,
    ``origins[k]`` the index of the input object ``report[k]`` is about (for an EC2NodeClass copied for a pool's
    kubelet settings: the class it copies), ``None`` when unknown. The filter karpenter_convert names the file and
    document of each entry with it."""
    objs = obj_or_list if isinstance(obj_or_list, (list, tuple)) else [obj_or_list]
    conv = _Converter(node_role, instance_profile, ami_version, ignore_alpha_defaults, kubernetes_version)
    outputs = []
    converted = []
    marks = []  # (first report entry, first output) of each input
    for i, obj in enumerate(objs):
        marks.append((len(conv.report), len(outputs)))
        ref = object_ref(obj, i)
        if not isinstance(obj, dict):
            conv.error(ref, "", "not an object; skipped")
            continue
        kind = (obj.get("apiVersion"), obj.get("kind"))
        type_errors = legacy_type_errors(obj, ref)
        if type_errors:  # not converted (and not passed through: it is no v1 object)
            conv.report.extend(type_errors)
            continue
        if kind == ALPHA_PROVISIONER:
            extra = []
            np = conv.provisioner(obj, ref, extra)
            outputs.append(np)
            outputs.extend(extra)
            converted.append(np)
            converted.extend(extra)
        elif kind == ALPHA_NODETEMPLATE:
            out = conv.nodetemplate(obj, ref)
            outputs.append(out)
            converted.append(out)
        elif kind == BETA_NODEPOOL:
            out = conv.beta_nodepool(obj, ref)
            outputs.append(out)
            converted.append(out)
        elif kind == BETA_NODECLASS:
            out = conv.beta_nodeclass(obj, ref)
            outputs.append(out)
            converted.append(out)
        elif any(kind == k for k in NOT_CONVERTED):  # not `in`: apiVersion/kind may be unhashable (a list)
            conv.warn(
                ref, "", "%s %s is a legacy kind that is not converted: %s" % (kind + (NOT_CONVERTED[kind],)), "legacy"
            )
        elif kind in V1_KINDS:
            outputs.append(copy.deepcopy(obj))
        else:
            outputs.append(copy.deepcopy(obj))
            conv.info(ref, "", "%s %s is not a legacy Karpenter kind; passed through unchanged" % kind, "passthrough")
    marks.append((len(conv.report), len(outputs)))
    origins = []
    for i in range(len(objs)):
        origins.extend([i] * (marks[i + 1][0] - marks[i][0]))
    output_origins = {id(out): i for i in range(len(objs)) for out in outputs[marks[i][1] : marks[i + 1][1]]}
    input_refs = {}
    for i, obj in enumerate(objs):
        input_refs.setdefault(object_ref(obj, i), i)
    converted.extend(conv.distribute_kubelets(outputs))
    origins.extend(input_refs.get(issue.object_ref) for issue in conv.report[len(origins) :])  # by the pool's ref
    origin = None
    for out in outputs:  # an EC2NodeClass copy follows the class it copies
        origin = output_origins.setdefault(id(out), origin)
    if validate:
        from .validate import validate as validate_obj

        for out in outputs:
            if not any(out is c for c in converted):
                continue
            for issue in validate_obj(out).errors:
                conv.report.append(
                    Issue(
                        issue.object_ref,
                        issue.path,
                        "invalid-output",
                        "converted object is invalid: %s" % issue.message,
                        ERROR,
                        "convert",
                    )
                )
                origins.append(output_origins.get(id(out)))
    return outputs, conv.report, origins
