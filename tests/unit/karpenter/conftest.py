"""Fixtures for the Karpenter domain-core unit tests: reference NodePool/EC2NodeClass objects.

The objects are the shapes of docs/karpenter-v1.md sections 1.1 and 2.1 (valid on Karpenter v1.14.1 and v1.15.0).
If ``ansible_collections.karpenter_eks.platform`` is not importable yet, the repository's
``.collections`` link directory is put on ``sys.path``.
"""

import copy
import os
import sys

import pytest

try:
    import importlib

    importlib.import_module("ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter")
except ImportError:  # pragma: no cover - depends on how pytest is started
    _COLLECTIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", ".collections")
    if os.path.isdir(_COLLECTIONS):
        sys.path.insert(0, os.path.abspath(_COLLECTIONS))

NODEPOOL = {
    "apiVersion": "karpenter.sh/v1",
    "kind": "NodePool",
    "metadata": {"name": "general"},
    "spec": {
        "template": {
            "metadata": {"labels": {"team": "a"}, "annotations": {"example.com/owner": "a"}},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                "requirements": [
                    {
                        "key": "karpenter.k8s.aws/instance-category",
                        "operator": "In",
                        "values": ["c", "m", "r"],
                        "minValues": 2,
                    },
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]},
                    {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["2"]},
                ],
                "taints": [{"key": "example.com/dedicated", "value": "gpu", "effect": "NoSchedule"}],
                "startupTaints": [{"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NoExecute"}],
                "expireAfter": "720h",
                "terminationGracePeriod": "48h",
            },
        },
        "disruption": {
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": "1m",
            "budgets": [
                {"nodes": "10%"},
                {
                    "nodes": "0",
                    "schedule": "0 9 * * mon-fri",
                    "duration": "8h",
                    "reasons": ["Drifted", "Underutilized", "Empty"],
                },
            ],
        },
        "limits": {"cpu": "1000", "memory": "1000Gi", "nvidia.com/gpu": "8"},
        "weight": 10,
    },
}

EC2NODECLASS = {
    "apiVersion": "karpenter.k8s.aws/v1",
    "kind": "EC2NodeClass",
    "metadata": {"name": "default"},
    "spec": {
        "role": "KarpenterNodeRole-my-cluster",
        "amiSelectorTerms": [{"alias": "al2023@v20240807"}],
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "my-cluster"}}],
        "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "my-cluster"}}],
        "kubelet": {"maxPods": 110, "systemReserved": {"cpu": "100m", "memory": "100Mi"}},
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "rootVolume": True,
                "ebs": {"volumeSize": "100Gi", "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True},
            }
        ],
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        },
        "tags": {"team": "a"},
        "detailedMonitoring": False,
    },
}


@pytest.fixture
def nodepool():
    """A fresh copy of the reference NodePool (docs/karpenter-v1.md section 1.1)."""
    return copy.deepcopy(NODEPOOL)


@pytest.fixture
def ec2nodeclass():
    """A fresh copy of the reference EC2NodeClass (docs/karpenter-v1.md section 2.1)."""
    return copy.deepcopy(EC2NODECLASS)
