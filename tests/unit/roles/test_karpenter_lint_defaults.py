"""What the karpenter role installs and writes with its defaults passes the lint it runs before (KPL028, KPL029)."""

import json

from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.lint import (
    lint_controller_policy,
    lint_helm_values,
)

ALWAYS = (
    "policy-node-lifecycle.json",
    "policy-iam-integration.json",
    "policy-eks-integration.json",
    "policy-resource-discovery.json",
)
OPTIONAL = ("policy-interruption.json", "policy-zonal-shift.json")


def test_default_helm_values_are_clean(rendered):
    values = json.loads((rendered / "karpenter-values.json").read_text())
    assert values["settings"]["clusterName"] == "unit-cluster"
    assert lint_helm_values(values) == []


def test_default_policies_are_clean_with_and_without_the_optional_ones(rendered):
    docs = {name: json.loads((rendered / name).read_text()) for name in ALWAYS + OPTIONAL}
    assert lint_controller_policy([docs[n] for n in ALWAYS]) == []
    assert lint_controller_policy(list(docs.values())) == []
    # one policy alone lacks what the others grant: the lint sees the set, not one document
    assert [i.rule for i in lint_controller_policy([docs["policy-eks-integration.json"]])] == ["KPL028"]
