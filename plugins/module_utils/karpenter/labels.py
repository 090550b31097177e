# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Kubernetes name/label syntax checks and Karpenter v1 label knowledge (v1.15.0; unchanged since v1.14.1).

Ports of ``k8s.io/apimachinery/pkg/util/validation`` (``IsQualifiedName``, ``IsValidLabelValue``,
``IsDNS1123Subdomain``) and of Karpenter's ``pkg/apis/v1/labels.go`` (well-known labels, restricted
label domains, ``IsRestrictedLabel``, normalised label aliases, restricted tag patterns).
"""

from __future__ import annotations

import re

from .golang import compile_regex

# --- apimachinery syntax ----------------------------------------------------------------------
_QUALIFIED_NAME_MAX = 63
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
_LABEL_VALUE_MAX = 63
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(r"^%s(\.%s)*\Z" % (_DNS1123_LABEL, _DNS1123_LABEL))
_DNS1123_SUBDOMAIN_MAX = 253


def is_dns1123_subdomain(value: str) -> list[str]:
    """Error strings (empty when valid), like ``validation.IsDNS1123Subdomain``."""
    errs = []
    if len(value) > _DNS1123_SUBDOMAIN_MAX:
        errs.append("must be no more than %d characters" % _DNS1123_SUBDOMAIN_MAX)
    if not _DNS1123_SUBDOMAIN.match(value):
        errs.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return errs


def is_qualified_name(value: str) -> list[str]:
    """Error strings (empty when valid), like ``validation.IsQualifiedName``."""
    errs = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + e for e in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
            "and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > _QUALIFIED_NAME_MAX:
        errs.append("name part must be no more than %d characters" % _QUALIFIED_NAME_MAX)
    if name and not _QUALIFIED_NAME.match(name):
        errs.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
            "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation "
            "is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )
    return errs


def is_valid_label_value(value: str) -> list[str]:
    """Error strings (empty when valid), like ``validation.IsValidLabelValue``."""
    errs = []
    if len(value) > _LABEL_VALUE_MAX:
        errs.append("must be no more than %d characters" % _LABEL_VALUE_MAX)
    if not _LABEL_VALUE.match(value):
        errs.append(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
            "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        )
    return errs


def label_domain(key: str) -> str:
    """The part before ``/`` (empty when the key has no prefix)."""
    return key.split("/", 1)[0] if "/" in key else ""


# --- Karpenter labels ---------------------------------------------------------------------------
NODEPOOL_LABEL = "karpenter.sh/nodepool"
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
ARCH_LABEL = "kubernetes.io/arch"
OS_LABEL = "kubernetes.io/os"
HOSTNAME_LABEL = "kubernetes.io/hostname"
WINDOWS_BUILD_LABEL = "node.kubernetes.io/windows-build"
ZONE_ID_LABEL = "topology.k8s.aws/zone-id"

# karpenter.k8s.aws/* keys the v1.15.0 CRD allows (CEL allow-list) - all are well-known labels.
AWS_LABEL_KEYS = (
    "instance-encryption-in-transit-supported",
    "instance-category",
    "instance-hypervisor",
    "instance-family",
    "instance-generation",
    "instance-local-nvme",
    "instance-size",
    "instance-cpu",
    "instance-cpu-manufacturer",
    "instance-memory",
    "instance-ebs-bandwidth",
    "instance-network-bandwidth",
    "instance-gpu-name",
    "instance-gpu-manufacturer",
    "instance-gpu-count",
    "instance-gpu-memory",
    "instance-accelerator-name",
    "instance-accelerator-manufacturer",
    "instance-accelerator-count",
    "capacity-reservation-type",
    "capacity-reservation-id",
    "ec2nodeclass",
    "instance-cpu-sustained-clock-speed-mhz",
    "instance-capability-flex",
    "instance-tenancy",
    "capacity-reservation-interruptible",
    "placement-group-id",
    "placement-group-partition",
)
AWS_LABELS = frozenset("karpenter.k8s.aws/" + k for k in AWS_LABEL_KEYS)

WELL_KNOWN_LABELS = frozenset(
    {
        NODEPOOL_LABEL,
        CAPACITY_TYPE_LABEL,
        ZONE_LABEL,
        REGION_LABEL,
        INSTANCE_TYPE_LABEL,
        ARCH_LABEL,
        OS_LABEL,
        WINDOWS_BUILD_LABEL,
        ZONE_ID_LABEL,
    }
    | AWS_LABELS
)

RESTRICTED_LABEL_DOMAINS = ("karpenter.sh", "karpenter.k8s.aws")
RESTRICTED_LABELS = frozenset({HOSTNAME_LABEL})

# Deprecated aliases Karpenter normalises (NormalizedLabels).
NORMALIZED_LABELS = {
    "failure-domain.beta.kubernetes.io/zone": ZONE_LABEL,
    "failure-domain.beta.kubernetes.io/region": REGION_LABEL,
    "beta.kubernetes.io/arch": ARCH_LABEL,
    "beta.kubernetes.io/os": OS_LABEL,
    "beta.kubernetes.io/instance-type": INSTANCE_TYPE_LABEL,
    "topology.ebs.csi.aws.com/zone": ZONE_LABEL,
}

# Requirement keys whose values Karpenter knows (validateWellKnownValues).
WELL_KNOWN_VALUES = {
    CAPACITY_TYPE_LABEL: ("on-demand", "spot", "reserved"),
    "karpenter.k8s.aws/instance-tenancy": ("default", "dedicated"),
}

# in the order of the v1.15.0 CRD enum (v1.14.1 listed Gte and Lte first; both versions accept all eight)
SUPPORTED_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", "Gte", "Lte")
NUMERIC_OPERATORS = ("Gt", "Lt", "Gte", "Lte")

# Kubernetes-owned domains custom labels must avoid on Karpenter < v1.9 (and kubelet --node-labels).
KUBERNETES_DOMAINS = ("kubernetes.io", "k8s.io")
KUBERNETES_DOMAIN_EXCEPTIONS = ("node-restriction.kubernetes.io", "node.kubernetes.io", "kops.k8s.io")
KUBERNETES_LABEL_EXCEPTIONS = frozenset(
    {
        "beta.kubernetes.io/instance-type",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        ZONE_LABEL,
        REGION_LABEL,
        ARCH_LABEL,
        OS_LABEL,
        WINDOWS_BUILD_LABEL,
        INSTANCE_TYPE_LABEL,
    }
)

# RestrictedTagPatterns (aws pkg/apis/v1/labels.go) - tags Karpenter sets itself.
RESTRICTED_TAG_PATTERNS = (
    compile_regex(r"^kubernetes\.io/cluster/[0-9A-Za-z][A-Za-z0-9\-_]*$"),
    compile_regex(r"^%s$" % re.escape(NODEPOOL_LABEL)),
    compile_regex(r"^eks:eks-cluster-name$"),
    compile_regex(r"^karpenter\.k8s\.aws/ec2nodeclass$"),
    compile_regex(r"^karpenter\.sh/nodeclaim$"),
)


def _domain_matches(domain, suffix):
    return domain == suffix or domain.endswith("." + suffix)


def is_restricted_label(key: str) -> str | None:
    """Error message when Karpenter's ``IsRestrictedLabel`` rejects the key, else None."""
    if key in WELL_KNOWN_LABELS:
        return None
    domain = label_domain(key)
    if any(_domain_matches(domain, d) for d in RESTRICTED_LABEL_DOMAINS) or key in RESTRICTED_LABELS:
        return (
            "label %s is restricted; specify a well known label (e.g. karpenter.k8s.aws/instance-family, "
            "karpenter.sh/capacity-type) or a custom label that does not use a restricted domain (%s)"
            % (key, ", ".join(RESTRICTED_LABEL_DOMAINS + tuple(sorted(RESTRICTED_LABELS))))
        )
    return None


def is_kubernetes_domain_label(key: str) -> bool:
    """True for a custom label under kubernetes.io / k8s.io that Karpenter < v1.9 (and kubelet) refuse."""
    if key in KUBERNETES_LABEL_EXCEPTIONS or key in WELL_KNOWN_LABELS:
        return False
    domain = label_domain(key)
    if not domain:
        return False
    if any(_domain_matches(domain, d) for d in KUBERNETES_DOMAIN_EXCEPTIONS):
        return False
    return any(_domain_matches(domain, d) for d in KUBERNETES_DOMAINS)


def is_restricted_tag(key: str) -> bool:
    return any(p.match(key) for p in RESTRICTED_TAG_PATTERNS)
