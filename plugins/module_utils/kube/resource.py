# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one resource model: where a kind lives in the Kubernetes API (no Ansible import).

A ``Resource`` is core or grouped, cluster-scoped or namespaced; a namespaced one may be bound to a
namespace (``in_namespace``) so that list and watch paths stay inside it. The apply engine, the
backup and the info/diagnose readers all use it.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Resource:
    """A kind served by the API: ``group`` is "" for the core group."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = False
    namespace: str | None = None  # bound namespace of a namespaced resource (list/watch paths)

    @classmethod
    def of(cls, api_version: str, kind: str, plural: str, namespaced: bool = False) -> Resource:
        """The resource of ``api_version`` ("v1", "apps/v1", ...) and ``kind``."""
        group, _sep, version = api_version.rpartition("/")
        return cls(group, version, plural, kind, namespaced)

    @property
    def api_version(self) -> str:
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    def in_namespace(self, namespace: str) -> Resource:
        """This namespaced resource bound to ``namespace``."""
        return dataclasses.replace(self, namespace=namespace)

    def path(self, name: str | None = None, namespace: str | None = None) -> str:
        """The collection path, or the object path when ``name`` is given. A namespaced resource without a
        namespace (given or bound) gives the all-namespaces collection."""
        base = "/apis/%s/%s" % (self.group, self.version) if self.group else "/api/" + self.version
        ns = namespace or self.namespace
        if self.namespaced and ns:
            base += "/namespaces/" + ns
        base += "/" + self.plural
        return base + ("/" + name if name else "")


# metadata the apiserver sets and owns; never part of a desired state or a comparison
SERVER_METADATA_FIELDS = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
NODEPOOL = Resource("karpenter.sh", "v1", "nodepools", "NodePool")
NODECLAIM = Resource("karpenter.sh", "v1", "nodeclaims", "NodeClaim")
NODEOVERLAY = Resource("karpenter.sh", "v1alpha1", "nodeoverlays", "NodeOverlay")
EC2NODECLASS = Resource("karpenter.k8s.aws", "v1", "ec2nodeclasses", "EC2NodeClass")
KWOKNODECLASS = Resource("karpenter.kwok.sh", "v1alpha1", "kwoknodeclasses", "KWOKNodeClass")
CONFIGMAP = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)
NODECLASS_KINDS = {
    ("karpenter.k8s.aws", "EC2NodeClass"): EC2NODECLASS,
    ("karpenter.kwok.sh", "KWOKNodeClass"): KWOKNODECLASS,
}

# (apiVersion, kind) -> (plural, namespaced): no discovery request for these; other kinds are looked up
# with one discovery GET per apiVersion (objects.resolve).
KNOWN_KINDS = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "Service"): ("services", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "LimitRange"): ("limitranges", True),
    ("v1", "ResourceQuota"): ("resourcequotas", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("scheduling.k8s.io/v1", "PriorityClass"): ("priorityclasses", False),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("kyverno.io/v1", "ClusterPolicy"): ("clusterpolicies", False),
    ("kyverno.io/v1", "Policy"): ("policies", True),
    ("monitoring.coreos.com/v1", "PrometheusRule"): ("prometheusrules", True),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ("servicemonitors", True),
    ("monitoring.coreos.com/v1", "PodMonitor"): ("podmonitors", True),
}


def known(api_version: str, kind: str) -> Resource | None:
    """The resource of a kind in the built-in table, or None (discovery needed)."""
    entry = KNOWN_KINDS.get((api_version, kind))
    return Resource.of(api_version, kind, entry[0], entry[1]) if entry else None
