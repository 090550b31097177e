"""EC2NodeClass spec.kubelet: the checks of Karpenter v1.15's controller, offline (kubelet.py).

The tables follow karpenter-provider-aws v1.15.0 pkg/apis/v1/kubeletconfiguration_validation_test.go
(ValidateKubeletConfig) and pkg/controllers/nodeclass/validation_test.go (AMI family support).
"""

import copy
import json
import os

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import kubelet as kubelet_mod
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import validate as validate_mod
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.compare import diff
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.crds import kubelet_v1beta1
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.kubelet import (
    ami_family,
    parse_go_duration,
    parse_go_float,
    parse_go_quantity_sign,
    validate_kubelet,
)
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.validate import validate, validate_batch
from hypothesis import given, settings
from hypothesis import strategies as st


def errors(kubelet, family="AL2023"):
    return [i for i in validate_kubelet(kubelet, family, "EC2NodeClass/x") if i.severity == "error"]


def rules(kubelet, family="AL2023"):
    return [i.rule for i in errors(kubelet, family)]


# --------------------------------------------------------------------------------------------
# the generated data


def test_generated_kubelet_types_come_from_the_pinned_kubelet_module():
    from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import crds

    assert kubelet_v1beta1.KARPENTER_VERSION == crds.KARPENTER_VERSION == "v1.15.0"
    assert kubelet_v1beta1.MODULE == "k8s.io/kubelet" and kubelet_v1beta1.VERSION == "v0.37.0"
    assert kubelet_v1beta1.ROOT == "k8s.io/kubelet/config/v1beta1.KubeletConfiguration"
    fields = kubelet_v1beta1.TYPES[kubelet_v1beta1.ROOT]["fields"]
    assert len(fields) == 128  # 126 declared fields + apiVersion/kind of the embedded TypeMeta
    assert fields["maxPods"] == {"go": "int32", "t": "int32"}
    assert fields["evictionSoftGracePeriod"]["go"] == "map[string]string"
    assert fields["cpuCFSQuotaPeriod"] == {"go": "v1.Duration", "ptr": True, "t": "duration"}
    assert fields["logging"]["ref"] == "k8s.io/component-base/logs/api/v1.LoggingConfiguration"
    text = kubelet_v1beta1.TYPES["k8s.io/component-base/logs/api/v1.TextOptions"]["fields"]
    # QuantityValue decodes with the UnmarshalJSON it embeds; the field is promoted from OutputRoutingOptions
    assert text["infoBufferSize"] == {"go": "resource.QuantityValue", "t": "quantity", "via": ["OutputRoutingOptions"]}
    assert fields["kind"] == {"go": "string", "t": "string", "via": ["TypeMeta"]}
    assert kubelet_v1beta1.MANAGED_FIELDS == (
        "clusterDNS",
        "cpuCFSQuota",
        "evictionHard",
        "evictionMaxPodGracePeriod",
        "evictionSoft",
        "evictionSoftGracePeriod",
        "imageGCHighThresholdPercent",
        "imageGCLowThresholdPercent",
        "kubeReserved",
        "maxPods",
        "podsPerCore",
        "systemReserved",
    )


# --------------------------------------------------------------------------------------------
# ValidateKubeletConfig (upstream table)

ACCEPTED = [
    {},
    {
        "maxPods": 110,
        "podsPerCore": 10,
        "kubeReserved": {"cpu": "200m", "memory": "100Mi"},
        "systemReserved": {"ephemeral-storage": "1Gi", "pid": "1000"},
        "evictionHard": {"memory.available": "5%"},
    },
    {"serializeImagePulls": False},
    {
        "logging": {
            "format": "json",
            "flushFrequency": "5s",
            "options": {"json": {"infoBufferSize": "100Mi", "splitStream": True}},
        }
    },
    {"evictionHard": {"nodefs.available": "500Mi"}},
    {"evictionSoft": {"memory.available": "10%"}, "evictionSoftGracePeriod": {"memory.available": "1m"}},
    {"imageGCHighThresholdPercent": 80, "imageGCLowThresholdPercent": 60},
    {"maxPods": 0, "podsPerCore": 0, "evictionMaxPodGracePeriod": 0},
    # CEL expressions (warnings only, see test_expressions_are_warnings; upstream's table has "memory * 0.1" and
    # "vcpus * 10m", which ValidateKubeletConfig passes but the controller's CEL compile refuses: see below)
    {"maxPods": "vcpus * 10"},
    {"kubeReserved": {"memory": "memory_mib * 0.1"}},
    {"systemReserved": {"cpu": "vcpus * 10"}},
    {"maxPods": "vcpus * 10", "podsPerCore": 10},
    # more of the upstream type
    {"logging": {"flushFrequency": 5000000000, "verbosity": 4, "vmodule": [{"filePattern": "x*", "verbosity": 2}]}},
    {"reservedMemory": [{"numaNode": 0, "limits": {"memory": "1Gi", "hugepages-2Mi": 0}}]},
    {"featureGates": {"KubeletTracing": True}, "tracing": {"endpoint": "otel:4317", "samplingRatePerMillion": 100}},
    {"shutdownGracePeriod": "30s", "shutdownGracePeriodCriticalPods": "10s", "memoryThrottlingFactor": 0.9},
    {"crashLoopBackOff": {"maxContainerRestartPeriod": "1m"}, "cpuCFSQuotaPeriod": None},
    {"authentication": {"webhook": {"enabled": True, "cacheTTL": "2m"}, "x509": {"clientCAFile": "/ca"}}},
    {"evictionHard": {"memory.available": "100.0%", "nodefs.available": "NaN%"}},  # ParseFloat accepts NaN
    {"maxPods": 110.0},  # the apiserver hands the controller 110
    {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration"},  # the embedded TypeMeta
]


@pytest.mark.parametrize("kubelet", ACCEPTED)
def test_accepted(kubelet):
    assert errors(kubelet) == []


REJECTED = [
    ({"notAKubeletField": True}, ["kubelet-unknown-field"]),
    ({"logging": {"bogusLoggingField": True}}, ["kubelet-unknown-field"]),
    ({"logging": {"options": {"json": {"nope": "x"}}}}, ["kubelet-unknown-field"]),
    ({"podsPerCore": "ten"}, ["kubelet-type"]),
    ({"logging": {"format": 12345}}, ["kubelet-type"]),
    ({"a": {"b": [1, "two", True]}}, ["kubelet-unknown-field"]),
    ({"maxPods": -1}, ["kubelet-negative"]),
    ({"podsPerCore": -1}, ["kubelet-negative"]),
    ({"evictionMaxPodGracePeriod": -1}, ["kubelet-negative"]),
    ({"imageGCHighThresholdPercent": 101}, ["kubelet-percent"]),
    ({"imageGCHighThresholdPercent": -1}, ["kubelet-percent"]),
    ({"imageGCLowThresholdPercent": 101}, ["kubelet-percent"]),
    ({"imageGCLowThresholdPercent": -1}, ["kubelet-percent"]),
    ({"kubeReserved": {"gpu": "1"}}, ["kubelet-reserved-resource"]),
    ({"systemReserved": {"gpu": "1"}}, ["kubelet-reserved-resource"]),
    ({"kubeReserved": {"cpu": "-1"}}, ["kubelet-negative"]),
    ({"systemReserved": {"cpu": "-1"}}, ["kubelet-negative"]),
    ({"evictionHard": {"notASignal": "5%"}}, ["kubelet-eviction-signal"]),
    ({"evictionMinimumReclaim": {"notASignal": "500Mi"}}, ["kubelet-eviction-signal"]),
    ({"evictionHard": {"memory.available": "lots"}}, ["kubelet-eviction-threshold"]),
    ({"evictionMinimumReclaim": {"memory.available": "lots"}}, ["kubelet-eviction-threshold"]),
    ({"evictionHard": {"memory.available": "101%"}}, ["kubelet-eviction-threshold"]),
    ({"evictionHard": {"memory.available": "-1Gi"}}, ["kubelet-eviction-threshold"]),
    ({"evictionHard": {"memory.available": " 1Gi"}}, ["kubelet-eviction-threshold"]),  # ParseQuantity trims nothing
    (
        {"evictionSoft": {"memory.available": "10%"}, "evictionSoftGracePeriod": {"memory.available": "soon"}},
        ["kubelet-eviction-grace-period"],
    ),
    (
        {"evictionSoft": {"memory.available": "10%"}, "evictionSoftGracePeriod": {"memory.available": "-1m"}},
        ["kubelet-eviction-grace-period"],
    ),
    (
        {"evictionSoft": {"memory.available": "10%"}, "evictionSoftGracePeriod": {"nodefs.available": "1m"}},
        ["kubelet-eviction-pairing", "kubelet-eviction-pairing"],
    ),
    ({"evictionSoftGracePeriod": {"memory.available": "1m"}}, ["kubelet-eviction-pairing"]),
    ({"evictionSoft": {"memory.available": "10%"}}, ["kubelet-eviction-pairing"]),
    ({"imageGCHighThresholdPercent": 60, "imageGCLowThresholdPercent": 80}, ["kubelet-image-gc-thresholds"]),
    ({"imageGCHighThresholdPercent": 70, "imageGCLowThresholdPercent": 70}, ["kubelet-image-gc-thresholds"]),
    (
        {"registerWithTaints": [{"key": "example.com/dedicated", "value": "gpu", "effect": "NoSchedule"}]},
        ["kubelet-owned-field"],
    ),
    # the ValidateKubeletConfig/ParseKubeletConfig invariant table
    (
        {"evictionSoft": {"memory.available": "5%"}, "evictionSoftGracePeriod": {"memory.available": "5x"}},
        ["kubelet-eviction-grace-period"],
    ),
    ({"clusterDNS": "10.0.0.10"}, ["kubelet-type"]),
    ({"maxPods": True}, ["kubelet-type"]),
    ({"podsPerCore": "10"}, ["kubelet-type"]),
    ({"kubeReserved": {"cpu": 1}}, ["kubelet-type"]),
    ({"systemReserved": {"cpu": 1}}, ["kubelet-type"]),
    ({"evictionHard": {"memory.available": 5}}, ["kubelet-type"]),
    ({"evictionSoft": {"memory.available": 5}}, ["kubelet-type"]),
    ({"evictionMaxPodGracePeriod": "30"}, ["kubelet-type"]),
    ({"imageGCHighThresholdPercent": "80"}, ["kubelet-type"]),
    ({"imageGCLowThresholdPercent": "70"}, ["kubelet-type"]),
    ({"cpuCFSQuota": "true"}, ["kubelet-type"]),
    # decode details of the upstream type
    ({"MaxPods": 10}, ["kubelet-unknown-field"]),  # case-sensitive, unlike encoding/json
    ({"maxPods": 2**31}, ["kubelet-type"]),  # int32
    ({"maxPods": 1.5}, ["kubelet-type"]),
    ({"syncFrequency": "1d"}, ["kubelet-value"]),
    ({"syncFrequency": 60}, ["kubelet-type"]),
    ({"logging": {"flushFrequency": 1.5}}, ["kubelet-value"]),
    ({"logging": {"verbosity": -1}}, ["kubelet-type"]),  # uint32
    ({"reservedMemory": [{"numaNode": 0, "limits": {"memory": "1 GB"}}]}, ["kubelet-value"]),
    (
        {"registerWithTaints": [{"key": "a", "effect": "NoSchedule", "bogus": 1}]},
        ["kubelet-unknown-field", "kubelet-owned-field"],
    ),
    ({"tlsCipherSuites": ["a", 1]}, ["kubelet-type"]),
    ({"authentication": {"webhook": {"cacheTTL": None}}}, ["kubelet-value"]),  # a non-pointer Duration
]


@pytest.mark.parametrize("kubelet,expected", REJECTED)
def test_rejected(kubelet, expected):
    found = rules(kubelet)
    assert sorted(found) == sorted(expected), [str(i) for i in errors(kubelet)]


def test_messages_name_the_field_path_and_rule():
    (issue,) = errors({"notAKubeletField": True})
    assert issue.path == "spec.kubelet.notAKubeletField" and issue.source == "runtime"
    assert issue.message == 'unknown field "notAKubeletField"'
    assert str(issue) == (
        'EC2NodeClass/x: spec.kubelet.notAKubeletField: unknown field "notAKubeletField" (kubelet-unknown-field)'
    )
    (issue,) = errors({"logging": {"options": {"json": {"nope": "x"}}}})
    assert issue.path == "spec.kubelet.logging.options.json.nope"
    assert issue.message == 'unknown field "logging.options.json.nope"'
    (issue,) = errors({"podsPerCore": "ten"})
    assert issue.path == "spec.kubelet.podsPerCore"
    assert (
        issue.message
        == "json: cannot unmarshal string into Go struct field KubeletConfiguration.podsPerCore of type int32"
    )
    (issue,) = errors({"logging": {"format": 12345}})
    assert issue.message == (
        "json: cannot unmarshal number into Go struct field LoggingConfiguration.logging.format of type string"
    )
    (issue,) = errors({"maxPods": 2**31})
    assert issue.message.startswith("json: cannot unmarshal number 2147483648 into Go struct field")
    (issue,) = errors({"evictionHard": {"memory.available": 5}})
    assert issue.path == "spec.kubelet.evictionHard[memory.available]"
    assert issue.message.endswith("KubeletConfiguration.evictionHard of type string")
    (issue,) = errors({"syncFrequency": "1d"})
    assert issue.message == 'time: unknown unit "d" in duration "1d"'
    (issue,) = errors({"evictionHard": {"notASignal": "5%"}})
    assert issue.path == "spec.kubelet.evictionHard[notASignal]"
    assert issue.message.startswith('"notASignal" isn\'t a valid eviction signal, must be one of memory.available, ')
    (issue,) = errors({"imageGCHighThresholdPercent": 70, "imageGCLowThresholdPercent": 70})
    assert issue.path == "spec.kubelet"
    (issue,) = errors({"registerWithTaints": []})
    assert issue.message.startswith("can't be set, Karpenter sets it from the NodeClaim's taints")


def test_every_violation_is_reported():
    found = rules({"podsPerCore": -1, "kubeReserved": {"gpu": "1", "cpu": "-1"}, "evictionHard": {"notASignal": "5%"}})
    assert len(found) >= 4
    # unlike the Go decoder (first type error only, unknown fields then dropped), every decode problem shows
    found = rules({"maxPods": "vcpus * 2", "podsPerCore": "ten", "cpuCFSQuota": "yes", "nope": 1, "logging": {"x": 1}})
    assert sorted(found) == ["kubelet-type", "kubelet-type", "kubelet-unknown-field", "kubelet-unknown-field"]


def test_expressions_are_warnings():
    issues = validate_kubelet(
        {"maxPods": "vcpus * 10", "kubeReserved": {"cpu": "100m", "memory": "memory_mib * 0.1"}}, "AL2023"
    )
    assert [(i.path, i.severity, i.rule) for i in issues] == [
        ("spec.kubelet.maxPods", "warning", "kubelet-expression"),
        ("spec.kubelet.kubeReserved[memory]", "warning", "kubelet-expression"),
    ]
    assert "NodeClassCEL" in issues[0].message


@pytest.mark.parametrize(
    "kubelet,problem",
    [
        ({"kubeReserved": {"memory": "memory * 0.1"}}, 'undeclared reference to "memory"'),
        ({"systemReserved": {"cpu": "vcpus * 10m"}}, "not valid CEL (a syntax error at column 11)"),
        ({"systemReserved": {"cpu": "1 core"}}, "not valid CEL"),  # v1.14.1's CRD pattern refused it
        ({"maxPods": "vcpus *"}, "not valid CEL"),
    ],
)
def test_expressions_karpenter_cannot_compile_are_errors(kubelet, problem):
    # ValidateKubeletConfig passes them (its own table accepts the first two); the controller then refuses the
    # class either way: KubeletExpressionsDisabled without the NodeClassCEL gate, KubeletExpressionInvalid with it
    (issue,) = errors(kubelet)
    assert issue.rule == "kubelet-expression" and problem in issue.message
    assert kubelet_mod.decode_issues(kubelet) + kubelet_mod.semantic_issues(kubelet) == []


# --------------------------------------------------------------------------------------------
# validateKubeletFieldsSupported (AMI family)


@pytest.mark.parametrize(
    "family,kubelet,fields",
    [
        ("Bottlerocket", {"registryPullQPS": 10}, ["registryPullQPS"]),
        ("Windows2022", {"registryPullQPS": 10}, ["registryPullQPS"]),
        ("AL2", {"registryPullQPS": 10, "maxPods": 20}, ["registryPullQPS"]),
        ("Bottlerocket", {"podsPerCore": 10}, ["podsPerCore"]),
        ("AL2", {"clusterDNS": ["10.0.0.10", "10.0.0.11"]}, ["clusterDNS"]),
        ("Bottlerocket", {"clusterDNS": ["10.0.0.10", "10.0.0.11"]}, ["clusterDNS"]),
        ("Windows2022", {"clusterDNS": ["10.0.0.10", "10.0.0.11"]}, ["clusterDNS"]),
    ],
)
def test_fields_the_ami_family_would_drop(family, kubelet, fields):
    found = errors(kubelet, family)
    assert [i.path for i in found] == ["spec.kubelet." + f for f in fields], [str(i) for i in found]
    assert {i.rule for i in found} == {"kubelet-ami-family"}
    assert family in found[0].message


@pytest.mark.parametrize(
    "family,kubelet",
    [
        ("AL2023", {"clusterDNS": ["10.0.0.10", "10.0.0.11"]}),
        ("Bottlerocket", {"clusterDNS": ["10.0.0.10"]}),
        ("AL2023", {"registryPullQPS": 10}),
        ("AL2023", {"podsPerCore": 10}),
        ("Bottlerocket", {"maxPods": 110, "kubeReserved": {"cpu": "100m"}}),
        ("Custom", {"registryPullQPS": 10}),
        (None, {"registryPullQPS": 10}),  # unknown family: not checked
    ],
)
def test_fields_the_ami_family_applies(family, kubelet):
    assert errors(kubelet, family) == []


def test_an_unknown_field_is_not_reported_twice():
    assert rules({"notAKubeletField": 1}, "AL2") == ["kubelet-unknown-field"]


def test_ami_family_of_a_spec():
    assert ami_family({"amiFamily": "Bottlerocket", "amiSelectorTerms": [{"alias": "al2023@latest"}]}) == "Bottlerocket"
    assert ami_family({"amiSelectorTerms": [{"alias": "al2023@v20240807"}]}) == "AL2023"
    assert ami_family({"amiSelectorTerms": [{"tags": {"a": "b"}}, {"alias": "windows2022@latest"}]}) == "Windows2022"
    assert ami_family({"amiSelectorTerms": [{"id": "ami-1"}]}) == "Custom"
    assert ami_family({"amiSelectorTerms": [{"alias": "AL2023@latest"}]}) is None  # the CRD rejects it
    assert ami_family({}) == "Custom"


# --------------------------------------------------------------------------------------------
# through validate()


def test_validate_rejects_what_the_controller_would_refuse(ec2nodeclass):
    assert validate(ec2nodeclass).ok  # the reference object: maxPods and systemReserved on AL2023
    ec2nodeclass["spec"]["kubelet"] = {
        "maxPods": -1,
        "evictionSoft": {"memory.available": "5%"},
        "registryPullQPS": "fast",
    }
    result = validate(ec2nodeclass)
    assert not result.ok
    assert [(i.path, i.rule, i.source) for i in result.errors] == [
        ("spec.kubelet.registryPullQPS", "kubelet-type", "runtime"),
        ("spec.kubelet.evictionSoft[memory.available]", "kubelet-eviction-pairing", "runtime"),
        ("spec.kubelet.maxPods", "kubelet-negative", "runtime"),
    ]
    # the apiserver keeps spec.kubelet as it is (open map): the defaulted object carries it unchanged
    assert result.defaulted["spec"]["kubelet"]["registryPullQPS"] == "fast"


def test_validate_checks_the_ami_family_of_the_class(ec2nodeclass):
    ec2nodeclass["spec"]["kubelet"] = {"registryPullQPS": 10}
    assert validate(ec2nodeclass).ok  # AL2023 (from the alias) renders it
    ec2nodeclass["spec"]["amiSelectorTerms"] = [{"alias": "bottlerocket@latest"}]
    (issue,) = validate(ec2nodeclass).errors
    assert (issue.path, issue.rule) == ("spec.kubelet.registryPullQPS", "kubelet-ami-family")
    assert "Bottlerocket" in issue.message


def test_validate_batch_reports_kubelet_errors(nodepool, ec2nodeclass):
    ec2nodeclass["spec"]["kubelet"]["systemReserved"]["gpu"] = "1"
    batch = validate_batch([ec2nodeclass, nodepool])
    assert not batch.ok
    assert [(i.object_ref, i.path, i.rule) for i in batch.errors] == [
        ("EC2NodeClass/default", "spec.kubelet.systemReserved[gpu]", "kubelet-reserved-resource")
    ]


def test_fast_and_four_pass_paths_agree_on_an_open_kubelet(ec2nodeclass, monkeypatch):
    ec2nodeclass["spec"]["kubelet"] = {"maxPods": None, "logging": {"format": None, "x": [1, {"y": None}]}}
    fast = validate(copy.deepcopy(ec2nodeclass))
    monkeypatch.setattr(validate_mod, "FAST_PATH", False)
    slow = validate(copy.deepcopy(ec2nodeclass))
    assert fast.defaulted == slow.defaulted
    assert [str(i) for i in fast.issues] == [str(i) for i in slow.issues]
    assert fast.defaulted["spec"]["kubelet"] == {"logging": {"format": None, "x": [1, {"y": None}]}}


def test_compare_treats_kubelet_reservations_as_quantities(ec2nodeclass):
    live = copy.deepcopy(ec2nodeclass)
    live["metadata"]["uid"] = "u"
    ec2nodeclass["spec"]["kubelet"]["systemReserved"]["memory"] = "102400Ki"  # == 100Mi
    assert diff(ec2nodeclass, live)[0] is False
    ec2nodeclass["spec"]["kubelet"]["systemReserved"]["memory"] = "0.1Gi"
    assert diff(ec2nodeclass, live)[3] == ["spec.kubelet.systemReserved[memory]"]


# --------------------------------------------------------------------------------------------
# the real ValidateKubeletConfig's verdicts (kubelet_oracle_cases.json, see its "about")

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "kubelet_oracle_cases.json")) as _fh:
    ORACLE = json.load(_fh)["cases"]


def test_oracle_verdicts_and_messages():
    assert len(ORACLE) > 300
    for kubelet, go_messages in ORACLE:
        found = kubelet_mod.decode_issues(kubelet) + kubelet_mod.semantic_issues(kubelet)
        assert bool(found) == bool(go_messages), (kubelet, go_messages, found)
        # every message of the Go code is among ours (we report more: all decode errors, with full paths)
        ours = {message for _segs, _rule, message in found}
        for go in go_messages:
            assert go.split(": ", 1)[1] in ours, (kubelet, go, ours)


# --------------------------------------------------------------------------------------------
# Go parsers


@pytest.mark.parametrize(
    "text,ns",
    [
        ("0", 0),
        ("1s", 10**9),
        ("-1m", -60 * 10**9),
        ("1h30m", 5400 * 10**9),
        ("1.5s", 1500 * 10**6),
        (".5s", 500 * 10**6),
        ("1\u00b5s", 1000),
        ("+2ns", 2),
        ("2562047h47m16.854775807s", 2**63 - 1),
    ],
)
def test_go_duration(text, ns):
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize(
    "text,message",
    [
        ("", 'time: invalid duration ""'),
        ("1", 'time: missing unit in duration "1"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        (".s", 'time: invalid duration ".s"'),
        ("1s ", 'time: unknown unit "s " in duration "1s "'),
        ("2562047h47m16.854775808s", 'time: invalid duration "2562047h47m16.854775808s"'),
    ],
)
def test_go_duration_errors(text, message):
    with pytest.raises(ValueError) as exc:
        parse_go_duration(text)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    "text,sign",
    [("0", 0), ("100Mi", 1), ("-1", -1), ("+1k", 1), ("1.5Gi", 1), ("1e3", 1), ("1E", 1), ("-0", 0), (".5", 1)],
)
def test_go_quantity(text, sign):
    assert parse_go_quantity_sign(text) == sign


@pytest.mark.parametrize("text", ["", "lots", " 1", "1 ", "1K", "1e", "1.2.3", "1Mi3", "5%"])
def test_go_quantity_errors(text):
    with pytest.raises(ValueError):
        parse_go_quantity_sign(text)


def test_go_float():
    assert parse_go_float("5") == 5.0 and parse_go_float("1e2") == 100.0 and parse_go_float("0x1p-2") == 0.25
    assert parse_go_float("-Inf") == float("-inf")
    for bad in ("", " 5", "5 ", "1_0", "1e400", "five"):
        with pytest.raises(ValueError):
            parse_go_float(bad)


# --------------------------------------------------------------------------------------------
# robustness

_FIELDS = sorted(kubelet_v1beta1.TYPES[kubelet_v1beta1.ROOT]["fields"]) + ["logging", "options", "json", "x"]
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.floats(),
    st.sampled_from(["5%", "1Gi", "-1", "1m", "vcpus * 2", "memory.available", "", "NaN%"]),
    st.text(max_size=5),
)
_values = st.recursive(
    _leaves,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=4), c, max_size=3),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(_FIELDS), _values, max_size=5), st.sampled_from(kubelet_mod.AMI_FAMILIES))
def test_any_kubelet_value_gives_issues_not_exceptions(kubelet, family):
    for issue in validate_kubelet(kubelet, family, "EC2NodeClass/x"):
        assert issue.path.startswith("spec.kubelet") and issue.rule.startswith("kubelet-")


@pytest.mark.parametrize("field", ["systemReserved", "kubeReserved"])
def test_a_null_reservation_is_an_issue_not_an_exception(ec2nodeclass, field):
    """Found by the property test above: the controller decodes null as "" (not a quantity, so a CEL
    expression, and "" does not compile); the message quoted the raw None and raised a TypeError."""
    ec2nodeclass["spec"]["kubelet"] = {field: {"cpu": None}}
    issues = [i for i in validate(ec2nodeclass).issues if i.rule == "kubelet-expression"]
    assert [(i.path, i.severity) for i in issues] == [("spec.kubelet.%s[cpu]" % field, "error")]
    assert issues[0].message.startswith('"" is neither a resource quantity nor a CEL expression')
