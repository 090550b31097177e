"""Every lint rule: a case that triggers it (id, severity, path) and a case that must not."""

import copy

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import lint as lint_mod
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.lint import (
    RULES,
    find_obsolete_metrics,
    lint,
    lint_batch,
    lint_controller_policy,
    lint_helm_values,
    suggest_duration,
)
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.validate import default, validate_batch

REQS = "spec.template.spec.requirements"


def ids(issues):
    return sorted(i.rule for i in issues)


def hits(issues, rule_id):
    return [i for i in issues if i.rule == rule_id]


def lint_np(np):
    return lint(np, default(np))


def reqs(np):
    return np["spec"]["template"]["spec"]["requirements"]


def test_reference_objects_are_clean(nodepool, ec2nodeclass):
    assert lint_batch([nodepool, ec2nodeclass]) == [[], []]


def test_every_rule_is_documented_and_tested():
    assert sorted(RULES) == ["KPL%03d" % n for n in range(1, 35)]
    for severity, title in RULES.values():
        assert severity in ("error", "warning") and title
    source = open(__file__).read()
    for rule_id in RULES:
        assert '"%s"' % rule_id in source.replace("test_every_rule_is_documented_and_tested", ""), rule_id


# KPL001
def test_glob_in_requirement_values(nodepool):
    reqs(nodepool).append({"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large", "g5.*"]})
    (issue,) = hits(lint_np(nodepool), "KPL001")
    assert issue.severity == "error" and issue.path == REQS + "[4].values[1]"
    assert "NotReady" in issue.message
    reqs(nodepool)[4]["values"] = ["g5.*"]
    (issue,) = hits(lint_np(nodepool), "KPL001")
    assert "karpenter.k8s.aws/instance-family" in issue.hint and "[g5]" in issue.hint
    reqs(nodepool)[4]["values"] = ["g5.xlarge", "m5-custom_1"]
    assert hits(lint_np(nodepool), "KPL001") == []


# KPL002
def test_zone_label_on_multi_zone_pool(nodepool):
    nodepool["spec"]["template"]["metadata"]["labels"]["topology.kubernetes.io/zone"] = "us-east-1a"
    assert hits(lint_np(nodepool), "KPL002") == []  # no zone requirement: nothing to contradict
    reqs(nodepool).append(
        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a", "us-east-1b"]}
    )
    (issue,) = hits(lint_np(nodepool), "KPL002")
    assert issue.severity == "warning" and issue.path == "spec.template.metadata.labels[topology.kubernetes.io/zone]"
    assert "us-east-1a" in issue.message and "topologySpreadConstraints" in issue.hint


# KPL002 before the ${...} placeholders of a design are substituted: a literal label with templated zones, a
# templated label with literal zones; never claimed when no substitution can make the label one of the zones
@pytest.mark.parametrize(
    "label,values,fires,needle",
    [
        ("us-east-1a", ["${AWS_REGION}a", "${AWS_REGION}b", "${AWS_REGION}c"], True, "${AWS_REGION}=us-east-1"),
        ("${ZONE}", ["us-east-1a", "us-east-1b"], True, "once the ${...} placeholders are substituted"),
        ("${AWS_REGION}a", ["us-east-1a", "us-west-2b"], True, "${AWS_REGION}=us-east-1"),
        ("${AWS_REGION}a", ["${AWS_REGION}a", "${AWS_REGION}b"], True, "allows ${AWS_REGION}a, ${AWS_REGION}b"),
        ("us-east-1a", ["${AWS_REGION}b", "${AWS_REGION}c"], False, None),  # never one of them: KPL003's case
        ("${ZONE}", ["us-east-1a"], False, None),  # a single zone: nothing is lost
        ("${AWS_REGION}a", ["${AWS_REGION}a"], False, None),  # the label is the pool's only zone
    ],
)
def test_zone_label_on_multi_zone_pool_with_placeholders(nodepool, label, values, fires, needle):
    nodepool["spec"]["template"]["metadata"]["labels"]["topology.kubernetes.io/zone"] = label
    reqs(nodepool).append({"key": "topology.kubernetes.io/zone", "operator": "In", "values": values})
    issues = lint(nodepool)  # the raw object: no defaulting, no substitution
    found = hits(issues, "KPL002")
    if not fires:
        assert found == []
        return
    (issue,) = found
    assert issue.path == "spec.template.metadata.labels[topology.kubernetes.io/zone]"
    assert needle in issue.message and "topologySpreadConstraints" in issue.hint
    # possibly satisfiable once substituted: no KPL003 "do not intersect" claim on the zone key
    assert [i for i in hits(issues, "KPL003") if "topology.kubernetes.io/zone" in i.message] == []


def test_zone_requirements_with_placeholders_unsatisfiable_only_when_every_substitution_is():
    def pool(label, values):
        return {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": "p"},
            "spec": {
                "template": {
                    "metadata": {"labels": {"topology.kubernetes.io/zone": label}},
                    "spec": {
                        "requirements": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": values}]
                    },
                }
            },
        }

    # ${AWS_REGION}a is never ${AWS_REGION}b or ${AWS_REGION}c, whatever the region
    (issue,) = hits(lint(pool("${AWS_REGION}a", ["${AWS_REGION}b", "${AWS_REGION}c"])), "KPL003")
    assert "whatever the ${...} placeholders become" in issue.message
    # a literal that no template can produce
    assert hits(lint(pool("zone-x", ["${R}a", "${R}b"])), "KPL003")
    # the same values substituted would intersect: not reported
    assert hits(lint(pool("us-east-1b", ["${AWS_REGION}b"])), "KPL003") == []


# KPL003
@pytest.mark.parametrize(
    "extra,labels,needle",
    [
        (
            [
                {"key": "example.com/a", "operator": "In", "values": ["x"]},
                {"key": "example.com/a", "operator": "NotIn", "values": ["x"]},
            ],
            {},
            "no value is left",
        ),
        (
            [
                {"key": "example.com/a", "operator": "In", "values": ["x"]},
                {"key": "example.com/a", "operator": "In", "values": ["y"]},
            ],
            {},
            "do not intersect",
        ),
        (
            [{"key": "example.com/a", "operator": "Exists"}, {"key": "example.com/a", "operator": "DoesNotExist"}],
            {},
            "both exist and not exist",
        ),
        (
            [
                {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Gt", "values": ["8"]},
                {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Lt", "values": ["8"]},
            ],
            {},
            "numeric bounds are empty",
        ),
        (
            [
                {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Gt", "values": ["8"]},
                {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Lt", "values": ["9"]},
            ],
            {},
            "numeric bounds are empty",
        ),
        (
            [
                {"key": "karpenter.k8s.aws/instance-cpu", "operator": "In", "values": ["4"]},
                {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Gte", "values": ["8"]},
            ],
            {},
            "within the numeric bounds",
        ),
        ([{"key": "example.com/a", "operator": "In", "values": []}], {}, "no values"),
        (
            [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1b", "us-east-1c"]}],
            {"topology.kubernetes.io/zone": "us-east-1a"},
            "do not intersect",
        ),
    ],
)
def test_unsatisfiable_requirements(nodepool, extra, labels, needle):
    reqs(nodepool).extend(extra)
    nodepool["spec"]["template"]["metadata"]["labels"].update(labels)
    found = hits(lint_np(nodepool), "KPL003")
    assert found and all(i.severity == "error" for i in found)
    assert any(needle in i.message for i in found), [i.message for i in found]


def test_satisfiable_requirements_are_not_flagged(nodepool):
    reqs(nodepool).extend(
        [
            {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Gt", "values": ["3"]},
            {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Lt", "values": ["5"]},
            {"key": "example.com/a", "operator": "In", "values": ["x", "y"]},
            {"key": "example.com/a", "operator": "NotIn", "values": ["x"]},
        ]
    )
    assert hits(lint_np(nodepool), "KPL003") == []


# KPL004
def test_unknown_nodeclass_reference(nodepool, ec2nodeclass):
    (issue,) = hits(lint_batch([nodepool], known_nodeclasses=["gpu"])[0], "KPL004")
    assert issue.severity == "error" and issue.path == "spec.template.spec.nodeClassRef.name"
    assert hits(lint_batch([nodepool], known_nodeclasses=["default"])[0], "KPL004") == []
    assert hits(lint_batch([nodepool, ec2nodeclass], known_nodeclasses=[])[0], "KPL004") == []
    # only the batch is known: a warning, not an error
    other = copy.deepcopy(ec2nodeclass)
    other["metadata"]["name"] = "gpu"
    (issue,) = hits(lint_batch([nodepool, other])[0], "KPL004")
    assert issue.severity == "warning"
    # nothing known at all: no finding
    assert hits(lint_batch([nodepool])[0], "KPL004") == []
    assert (
        "names EC2NodeClass 'default'"
        in hits(lint_batch([nodepool], known_nodeclasses=["gpu"])[0], "KPL004")[0].message
    )


def test_unknown_nodeclass_reference_names_the_referenced_kind(nodepool):
    nodepool["spec"]["template"]["spec"]["nodeClassRef"] = {
        "group": "karpenter.kwok.sh",
        "kind": "KWOKNodeClass",
        "name": "missing",
    }
    (issue,) = hits(lint_batch([nodepool], known_nodeclasses=["default"])[0], "KPL004")
    assert "names KWOKNodeClass 'missing'" in issue.message and "EC2NodeClass" not in issue.message


# KPL005
@pytest.mark.parametrize(
    "limits,bad",
    [
        ({"cpu": "500m"}, "cpu"),
        ({"memory": "512Mi"}, "memory"),
        ({"nodes": "0"}, "nodes"),
        ({"nvidia.com/gpu": 0}, "nvidia.com/gpu"),
    ],
)
def test_limits_below_one_node(nodepool, limits, bad):
    nodepool["spec"]["limits"] = limits
    (issue,) = hits(lint_np(nodepool), "KPL005")
    assert issue.path == "spec.limits[%s]" % bad and issue.severity == "warning"


def test_limits_of_one_node_are_fine(nodepool):
    nodepool["spec"]["limits"] = {"cpu": 1, "memory": "1024Mi", "nodes": "1"}
    assert hits(lint_np(nodepool), "KPL005") == []


# KPL006
@pytest.mark.parametrize(
    "requirement",
    [
        {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["g5"]},
        {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["p"]},
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["p4d.24xlarge"]},
        {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt", "values": ["0"]},
        {"key": "karpenter.k8s.aws/instance-gpu-manufacturer", "operator": "Exists"},
    ],
)
def test_gpu_pool_without_noschedule_taint(nodepool, requirement):
    nodepool["spec"]["template"]["spec"]["taints"] = [{"key": "example.com/x", "effect": "PreferNoSchedule"}]
    reqs(nodepool).append(requirement)
    (issue,) = hits(lint_np(nodepool), "KPL006")
    assert issue.severity == "warning" and issue.path == "spec.template.spec.taints"
    nodepool["spec"]["template"]["spec"]["taints"].append({"key": "nvidia.com/gpu", "effect": "NoSchedule"})
    assert hits(lint_np(nodepool), "KPL006") == []


def test_non_gpu_pool_needs_no_taint(nodepool):
    del nodepool["spec"]["template"]["spec"]["taints"]
    reqs(nodepool).append({"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "DoesNotExist"})
    reqs(nodepool).append({"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["m5", "c6g"]})
    assert hits(lint_np(nodepool), "KPL006") == []


# KPL007
def test_spot_only_without_budget(nodepool):
    reqs(nodepool)[1]["values"] = ["spot"]
    del nodepool["spec"]["disruption"]["budgets"]
    (issue,) = hits(lint_np(nodepool), "KPL007")
    assert issue.path == "spec.disruption.budgets" and issue.severity == "warning"
    nodepool["spec"]["disruption"]["budgets"] = [{"nodes": "5%"}]
    assert hits(lint_np(nodepool), "KPL007") == []
    del nodepool["spec"]["disruption"]["budgets"]
    reqs(nodepool)[1]["values"] = ["spot", "on-demand"]
    assert hits(lint_np(nodepool), "KPL007") == []


# KPL008
def test_never_disrupted(nodepool):
    nodepool["spec"]["disruption"]["consolidateAfter"] = "Never"
    assert hits(lint_np(nodepool), "KPL008") == []
    nodepool["spec"]["template"]["spec"]["expireAfter"] = "Never"
    (issue,) = hits(lint_np(nodepool), "KPL008")
    assert issue.severity == "warning"
    nodepool["spec"]["disruption"]["consolidateAfter"] = "30s"
    assert hits(lint_np(nodepool), "KPL008") == []


# KPL009 / KPL010
def test_nodeclassref_with_version(nodepool):
    ref = nodepool["spec"]["template"]["spec"]["nodeClassRef"]
    ref["group"] = "karpenter.k8s.aws/v1"
    (issue,) = hits(lint_np(nodepool), "KPL009")
    assert issue.path == "spec.template.spec.nodeClassRef.group" and "group: karpenter.k8s.aws" in issue.hint
    del ref["group"]
    ref["apiVersion"] = "karpenter.k8s.aws/v1"
    (issue,) = hits(lint_np(nodepool), "KPL009")
    assert issue.path == "spec.template.spec.nodeClassRef.apiVersion"


def test_nodeclassref_wrong_group_or_kind(nodepool):
    nodepool["spec"]["template"]["spec"]["nodeClassRef"]["kind"] = "AWSNodeTemplate"
    (issue,) = hits(lint_np(nodepool), "KPL010")
    assert issue.severity == "error"


# KPL011 / KPL012 / KPL027
def test_legacy_kinds():
    prov = {
        "apiVersion": "karpenter.sh/v1alpha5",
        "kind": "Provisioner",
        "metadata": {"name": "p"},
        "spec": {"ttlSecondsAfterEmpty": 30, "consolidation": {"enabled": True}},
    }
    (issue,) = lint(prov)
    assert issue.rule == "KPL011" and "both ttlSecondsAfterEmpty and consolidation.enabled" in issue.message
    (issue,) = lint({"apiVersion": "karpenter.k8s.aws/v1beta1", "kind": "EC2NodeClass", "metadata": {"name": "x"}})
    assert issue.rule == "KPL011" and "karpenter_convert" in issue.hint


def test_pod_security_policy():
    (issue,) = lint({"apiVersion": "policy/v1beta1", "kind": "PodSecurityPolicy", "metadata": {"name": "karpenter"}})
    assert issue.rule == "KPL012" and "pod-security.kubernetes.io/enforce" in issue.hint


def test_obsolete_metrics_in_prometheus_rules():
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "karpenter"},
        "spec": {
            "groups": [
                {
                    "rules": [
                        {"alert": "a", "expr": "karpenter_provisioner_usage_pct > 90"},
                        {"alert": "b", "expr": "rate(karpenter_nodes_created[5m]) > 1"},
                        {"alert": "ok", "expr": "rate(karpenter_nodes_created_total[5m]) > 1"},
                    ]
                }
            ]
        },
    }
    issues = lint(rule)
    assert ids(issues) == ["KPL027", "KPL027"]
    assert sorted(i.path for i in issues) == ["spec.groups[0].rules[0].expr", "spec.groups[0].rules[1].expr"]
    assert find_obsolete_metrics("sum(karpenter_nodeclaims_created_total) by (nodepool)") == []
    assert (
        find_obsolete_metrics("karpenter_pods_startup_time_seconds")[0][1] == "karpenter_pods_startup_duration_seconds"
    )


# KPL034 (tests/unit/karpenter/test_metric_names.py has the rest)
def test_metric_names_the_target_karpenter_does_not_export():
    from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.metric_names import lint_metrics

    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "karpenter"},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "karpenter_nodepool_usage > 0"}]}]},
    }
    (issue,) = lint_metrics([rule], karpenter_version="1.15.0")
    assert issue.rule == "KPL034" and issue.severity == "error" and issue.path == "spec.groups[0].rules[0].expr"
    rule["spec"]["groups"][0]["rules"][0]["expr"] = "karpenter_nodepools_usage > 0"
    assert lint_metrics([rule], karpenter_version="1.15.0") == []


# KPL013
def test_alpha_and_beta_fields_on_v1_nodepool(nodepool):
    nodepool["spec"]["ttlSecondsUntilExpired"] = 2592000
    nodepool["spec"]["providerRef"] = {"name": "default"}
    nodepool["spec"]["limits"] = {"resources": {"cpu": "10"}}
    nodepool["spec"]["disruption"]["expireAfter"] = "720h"
    nodepool["spec"]["template"]["spec"]["kubelet"] = {"maxPods": 10}
    found = hits(lint_np(nodepool), "KPL013")
    assert sorted(i.path for i in found) == [
        "spec.disruption.expireAfter",
        "spec.limits.resources",
        "spec.providerRef",
        "spec.template.spec.kubelet",
        "spec.ttlSecondsUntilExpired",
    ]


# KPL014 / KPL015 / KPL017
def test_disruption_known_errors(nodepool):
    nodepool["spec"]["disruption"] = {"consolidationPolicy": "WhenUnderutilized", "budgets": [{"nodes": 0}]}
    issues = lint_np(nodepool)
    assert [i.path for i in hits(issues, "KPL014")] == ["spec.disruption.consolidationPolicy"]
    assert [i.path for i in hits(issues, "KPL015")] == ["spec.disruption.consolidateAfter"]
    (issue,) = hits(issues, "KPL017")
    assert issue.path == "spec.disruption.budgets[0].nodes" and issue.hint == 'quote it: nodes: "0"'


# KPL016 / KPL023 / KPL024 / KPL025
def test_ec2nodeclass_rules(ec2nodeclass):
    assert lint(ec2nodeclass) == []
    ec2nodeclass["spec"]["amiSelectorTerms"] = [{"alias": "al2@latest"}]
    ec2nodeclass["spec"]["tags"] = {"karpenter.sh/managed-by": "prod"}
    issues = lint(ec2nodeclass)
    assert ids(issues) == ["KPL023", "KPL024", "KPL025"]
    assert hits(issues, "KPL023")[0].path == "spec.amiSelectorTerms[0].alias"
    ec2nodeclass["spec"]["amiSelectorTerms"] = [{"alias": "windows2022@latest"}]
    ec2nodeclass["spec"]["amiFamily"] = "Ubuntu"
    ec2nodeclass["spec"]["tags"] = {}
    assert ids(lint(ec2nodeclass)) == ["KPL016"]


# KPL018
@pytest.mark.parametrize(
    "path,value,suggestion",
    [
        ("expireAfter", "30d", "720h"),
        ("expireAfter", "1hr", "1h"),
        ("terminationGracePeriod", "2 days", "48h"),
        ("consolidate", "90sec", "90s"),
    ],
)
def test_bad_durations(nodepool, path, value, suggestion):
    if path == "consolidate":
        nodepool["spec"]["disruption"]["consolidateAfter"] = value
        where = "spec.disruption.consolidateAfter"
    else:
        nodepool["spec"]["template"]["spec"][path] = value
        where = "spec.template.spec." + path
    (issue,) = hits(lint_np(nodepool), "KPL018")
    assert issue.path == where and issue.hint == "use %s" % suggestion


def test_bad_budget_duration(nodepool):
    nodepool["spec"]["disruption"]["budgets"][1]["duration"] = "30s"
    (issue,) = hits(lint_np(nodepool), "KPL018")
    assert issue.path == "spec.disruption.budgets[1].duration"
    assert suggest_duration("1.5h") == "90m" and suggest_duration("soon") is None


# KPL019
def test_kubernetes_io_labels(nodepool):
    labels = nodepool["spec"]["template"]["metadata"]["labels"]
    labels.update(
        {
            "node-role.kubernetes.io/worker": "",
            "example.k8s.io/x": "1",
            "node.kubernetes.io/ok": "1",
            "kops.k8s.io/ok": "1",
        }
    )
    reqs(nodepool).append({"key": "kubernetes.io/custom", "operator": "Exists"})
    found = hits(lint_np(nodepool), "KPL019")
    assert sorted(i.path for i in found) == [
        "spec.template.metadata.labels[example.k8s.io/x]",
        "spec.template.metadata.labels[node-role.kubernetes.io/worker]",
        REQS + "[4].key",
    ]


# KPL020 / KPL021 / KPL022
def test_weight_zero(nodepool):
    nodepool["spec"]["weight"] = 0
    assert [i.path for i in hits(lint_np(nodepool), "KPL020")] == ["spec.weight"]


def test_too_many_labels_and_requirements(nodepool):
    nodepool["spec"]["template"]["metadata"]["labels"] = {"example.com/l%d" % i: "v" for i in range(60)}
    nodepool["spec"]["template"]["spec"]["requirements"] = [
        {"key": "example.com/r%d" % i, "operator": "Exists"} for i in range(41)
    ]
    (issue,) = hits(lint_np(nodepool), "KPL021")
    assert "101" in issue.message
    nodepool["spec"]["template"]["spec"]["requirements"].pop()
    assert hits(lint_np(nodepool), "KPL021") == []


def test_nodepool_name_must_be_a_label_value(nodepool):
    nodepool["metadata"]["name"] = "a" * 64
    (issue,) = hits(lint_np(nodepool), "KPL022")
    assert issue.path == "metadata.name"
    nodepool["metadata"]["name"] = "a" * 63
    assert hits(lint_np(nodepool), "KPL022") == []


# KPL026
def test_duplicate_objects(nodepool):
    results = lint_batch([nodepool, copy.deepcopy(nodepool)])
    assert results[0] == []
    assert [i.rule for i in results[1]] == ["KPL026"]


# KPL028
def test_controller_policy():
    alpha = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["ec2:TerminateInstances"],
                "Condition": {"StringLike": {"ec2:ResourceTag/karpenter.sh/provisioner-name": "*"}},
            }
        ]
    }
    issues = lint_controller_policy(alpha)
    assert ids(issues) == ["KPL028", "KPL028"]
    assert any("iam:CreateInstanceProfile" in i.message for i in issues)
    v1 = {"Statement": [{"Effect": "Allow", "Action": ["iam:*", "ec2:*"], "Resource": "*"}]}
    assert lint_controller_policy(v1) == []


# KPL029
GOOD_HELM_VALUES = {
    "settings": {"clusterName": "x", "interruptionQueue": "x"},
    "controller": {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
}


def helm_values(**changes):
    values = copy.deepcopy(GOOD_HELM_VALUES)
    values.update(changes)
    return values


def test_helm_values():
    issues = lint_helm_values(
        helm_values(
            settings={"clusterName": "x", "interruptionQueue": "x", "aws": {"defaultInstanceProfile": "p"}},
            webhook={"enabled": True},
        )
    )
    assert ids(issues) == ["KPL029", "KPL029", "KPL029"]
    assert [i.path for i in issues] == ["settings.aws", "settings.aws.defaultInstanceProfile", "webhook"]
    assert all(i.severity == "warning" for i in issues)
    assert lint_helm_values(GOOD_HELM_VALUES) == []


@pytest.mark.parametrize("cluster_name", [None, "", "  ", "absent"])
def test_helm_values_without_cluster_name(cluster_name):
    values = helm_values()
    if cluster_name == "absent":
        del values["settings"]["clusterName"]
    else:
        values["settings"]["clusterName"] = cluster_name
    (issue,) = lint_helm_values(values)
    assert (issue.rule, issue.path, issue.severity) == ("KPL029", "settings.clusterName", "error")
    assert "does not start" in issue.message
    # a Helm template string ({{ .Release.Name }}, tpl'd by the chart) is a name
    assert (
        lint_helm_values(helm_values(settings={"clusterName": "{{ .Release.Name }}", "interruptionQueue": "q"})) == []
    )


@pytest.mark.parametrize("queue", [None, "", "absent"])
def test_helm_values_without_interruption_queue(queue):
    values = helm_values()
    if queue == "absent":
        del values["settings"]["interruptionQueue"]
    else:
        values["settings"]["interruptionQueue"] = queue
    (issue,) = lint_helm_values(values)
    assert (issue.rule, issue.path, issue.severity) == ("KPL029", "settings.interruptionQueue", "warning")
    assert "spot interruptions" in issue.message
    assert lint_helm_values(helm_values(settings={"clusterName": "x", "interruptionQueue": "q"})) == []


def test_helm_values_with_top_level_resources():
    (issue,) = lint_helm_values(helm_values(resources={"requests": {"cpu": "1"}}))
    assert (issue.rule, issue.path, issue.severity) == ("KPL029", "resources", "error")
    assert issue.hint == "controller.resources" and "ignored" in issue.message
    # resources elsewhere (the controller's, a sidecar's) is not this rule
    assert lint_helm_values(helm_values(serviceMonitor={"resources": {}})) == []


@pytest.mark.parametrize(
    "controller",
    [None, {}, {"resources": {}}, {"resources": {"requests": {}}}, {"resources": {"limits": {"cpu": "1"}}}],
)
def test_helm_values_without_controller_requests(controller):
    values = helm_values()
    if controller is None:
        del values["controller"]
    else:
        values["controller"] = controller
    (issue,) = lint_helm_values(values)
    assert (issue.rule, issue.path, issue.severity) == ("KPL029", "controller.resources.requests", "warning")
    assert ("BestEffort" in issue.message) == ("limits" not in str(controller))


def test_helm_values_of_nothing():
    issues = lint_helm_values({})
    assert [(i.path, i.severity) for i in issues] == [
        ("settings.clusterName", "error"),
        ("settings.interruptionQueue", "warning"),
        ("controller.resources.requests", "warning"),
    ]
    assert [i.path for i in lint_helm_values(None)] == [i.path for i in issues]


# KPL030
def test_obsolete_requirement_keys(nodepool):
    reqs(nodepool).append({"key": "node.kubernetes.io/instance-family", "operator": "In", "values": ["m5"]})
    (issue,) = hits(lint_np(nodepool), "KPL030")
    assert issue.hint == "karpenter.k8s.aws/instance-family"


def test_lint_runs_in_validate_batch(nodepool):
    reqs(nodepool).append({"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g5.*"]})
    batch = validate_batch([nodepool])
    assert "KPL001" in [i.rule for i in batch.errors]
    assert lint_mod.lint("not an object") == []


def test_nodeclassref_kwok_test_provider_is_accepted(nodepool):
    nodepool["spec"]["template"]["spec"]["nodeClassRef"] = {
        "group": "karpenter.kwok.sh",
        "kind": "KWOKNodeClass",
        "name": "default",
    }
    assert hits(lint_np(nodepool), "KPL010") == []
    nodepool["spec"]["template"]["spec"]["nodeClassRef"]["kind"] = "KWOKNodeTemplate"
    assert len(hits(lint_np(nodepool), "KPL010")) == 1


# KPL031
ANNOTATIONS = "spec.template.metadata.annotations"


def test_template_annotations_larger_than_a_node_may_carry(nodepool):
    """The apiserver refuses a NodeClaim (and a Node) whose annotations total more than 256 KiB (keys and
    values, in bytes); the NodePool itself is accepted, and then no node of it can ever be created."""
    annotations = nodepool["spec"]["template"]["metadata"]["annotations"]
    used = sum(len(k) + len(v) for k, v in annotations.items())
    annotations["example.com/big"] = "x" * (256 * 1024 - used - len("example.com/big"))  # exactly the limit
    assert validate_batch([nodepool], known_nodeclasses=["default"]).ok
    annotations["example.com/big"] += "é"  # one character, two bytes
    (issue,) = hits(lint_np(nodepool), "KPL031")
    assert issue.severity == "error" and issue.path == ANNOTATIONS
    assert "262146 bytes" in issue.message and "262144" in issue.message and "NodeClaim" in issue.message
    assert [i.rule for i in validate_batch([nodepool], known_nodeclasses=["default"]).errors] == ["KPL031"]


def test_template_annotation_keys_must_be_qualified_names(nodepool):
    annotations = nodepool["spec"]["template"]["metadata"]["annotations"]
    annotations["Example.COM/Owner"] = "ok"  # case does not matter for annotation keys
    assert hits(lint_np(nodepool), "KPL031") == []
    annotations["not a key"] = "v"
    (issue,) = hits(lint_np(nodepool), "KPL031")
    assert issue.path == ANNOTATIONS + "[not a key]" and "qualified name" in issue.message


# KPL032
def test_more_tags_than_ec2_allows_with_karpenters_own(ec2nodeclass):
    """Karpenter adds 4 tags at launch (kubernetes.io/cluster/<cluster>, karpenter.sh/nodepool,
    eks:eks-cluster-name, karpenter.k8s.aws/ec2nodeclass) and 2 once the node registers (Name unless
    spec.tags has it, karpenter.sh/nodeclaim): 44 tags of one's own is the most an instance can carry."""
    ec2nodeclass["spec"]["tags"] = {"example.com/t%02d" % i: "v" for i in range(44)}
    assert hits(lint(ec2nodeclass), "KPL032") == []
    ec2nodeclass["spec"]["tags"]["example.com/one-more"] = "v"
    (issue,) = hits(lint(ec2nodeclass), "KPL032")
    assert issue.severity == "error" and issue.path == "spec.tags"
    assert (
        "51 tags" in issue.message and "45 from spec.tags" in issue.message and "eks:eks-cluster-name" in issue.message
    )
    # a Name tag of one's own replaces Karpenter's
    del ec2nodeclass["spec"]["tags"]["example.com/one-more"]
    ec2nodeclass["spec"]["tags"]["Name"] = "worker"
    assert hits(lint(ec2nodeclass), "KPL032") == []
    assert validate_batch([ec2nodeclass]).ok


# KPL033
@pytest.mark.parametrize("name,value", [("cpu", "-1"), ("memory", "-512Mi"), ("nodes", -3), ("nvidia.com/gpu", "-1e3")])
def test_negative_limits(nodepool, name, value):
    nodepool["spec"]["limits"] = {name: value}
    issues = lint_np(nodepool)
    (issue,) = hits(issues, "KPL033")
    assert issue.severity == "error" and issue.path == "spec.limits[%s]" % name
    assert "negative" in issue.message and str(value) in issue.message
    assert hits(issues, "KPL005") == []  # one finding, the error
    assert [i.rule for i in validate_batch([nodepool], known_nodeclasses=["default"]).errors] == ["KPL033"]
