"""Kubernetes quantity parser and label/name syntax helpers."""

from fractions import Fraction

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import labels
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.quantity import (
    format_quantity,
    parse_quantity,
    quantities_equal,
)


@pytest.mark.parametrize(
    "text,value",
    [
        ("1", 1),
        (1000, 1000),
        ("100m", Fraction(1, 10)),
        ("1Ki", 1024),
        ("1Gi", 2**30),
        ("1.5Gi", 3 * 2**29),
        ("1k", 1000),
        ("1M", 10**6),
        ("1e3", 1000),
        ("1E-3", Fraction(1, 1000)),
        ("+5", 5),
        ("-5", -5),
        (".5", Fraction(1, 2)),
        ("5.", 5),
        ("1n", Fraction(1, 10**9)),
        (0.25, Fraction(1, 4)),
    ],
)
def test_parse_quantity(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "1 Gi", "1GB", "Gi", "1.2.3", "abc", True, None, "1Kii"])
def test_parse_quantity_rejects(text):
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_quantity_helpers():
    assert quantities_equal("1Gi", "1024Mi") and not quantities_equal("1G", "1Gi")
    assert quantities_equal("x", "x") and not quantities_equal("x", "y")
    assert format_quantity(parse_quantity("1024Mi")) == "1Gi"
    assert format_quantity(parse_quantity("100m")) == "100m"
    assert format_quantity(parse_quantity("1000")) == "1000"


def test_label_syntax():
    assert labels.is_qualified_name("example.com/team") == []
    assert labels.is_qualified_name("team") == []
    assert labels.is_qualified_name("Example.com/team")  # uppercase prefix
    assert labels.is_qualified_name("a/b/c")
    assert labels.is_qualified_name("/x")
    assert labels.is_qualified_name("x" * 64)
    assert labels.is_valid_label_value("") == []
    assert labels.is_valid_label_value("g5.xlarge") == []
    assert labels.is_valid_label_value("g5.*")
    assert labels.is_valid_label_value("a\n") != []  # no newline sneaking past "$"
    assert labels.is_dns1123_subdomain("general") == []
    assert labels.is_dns1123_subdomain("General")


def test_restricted_and_kubernetes_labels():
    assert labels.is_restricted_label("karpenter.sh/capacity-type") is None
    assert labels.is_restricted_label("karpenter.k8s.aws/instance-family") is None
    assert labels.is_restricted_label("karpenter.sh/foo")
    assert labels.is_restricted_label("x.karpenter.k8s.aws/foo")
    assert labels.is_restricted_label("kubernetes.io/hostname")
    assert labels.is_restricted_label("notkarpenter.sh/foo") is None
    assert labels.is_kubernetes_domain_label("kubernetes.io/custom")
    assert not labels.is_kubernetes_domain_label("node-restriction.kubernetes.io/x")
    assert not labels.is_kubernetes_domain_label("topology.kubernetes.io/zone")
    assert not labels.is_kubernetes_domain_label("example.com/x")
    assert labels.is_restricted_tag("kubernetes.io/cluster/prod")
    assert not labels.is_restricted_tag("team")
