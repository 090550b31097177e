"""The monitoring role's CloudWatch side: site.yml (``--tags cloudwatch``) against a private moto, read back with boto3.

moto implements CloudWatch Logs (log groups, retention, metric filters) and CloudWatch alarms, so what the role
leaves is checked as stored: retention, filter pattern and metric transformation, alarm metric/threshold/actions
(an SNS topic created in the same moto). ``--check`` on the empty moto and on the converged state writes nothing,
and a second run reports no change. moto does not evaluate JSON filter patterns, so what the pattern selects is
checked offline against log lines in the format the Karpenter controller writes (zap JSON, ``"level":"ERROR"``).
"""

import json
import re

import pytest
import yaml
from awslib import ROOT, aws_client, changed_tasks, task_results
from sitelib import run_site

GROUP = "/aws/eks/sandbox/karpenter"  # inventories/local: monitoring_cluster_name = sandbox
NAMESPACE = "Karpenter/sandbox"
METRIC = "ControllerErrorLogLines"
ALARM = "karpenter-sandbox-controller-errors"


def cloudwatch_state(endpoint):
    logs, cw = aws_client(endpoint, "logs"), aws_client(endpoint, "cloudwatch")
    groups = logs.describe_log_groups()["logGroups"]
    return {
        "groups": [(g["logGroupName"], g.get("retentionInDays"), g.get("kmsKeyId")) for g in groups],
        "filters": [logs.describe_metric_filters(logGroupName=g["logGroupName"])["metricFilters"] for g in groups],
        "alarms": [
            {k: v for k, v in a.items() if k not in ("StateUpdatedTimestamp", "StateReason", "StateReasonData")}
            for a in cw.describe_alarms()["MetricAlarms"]
        ],
    }


@pytest.fixture(scope="module")
def topic(private_moto):
    return aws_client(private_moto, "sns").create_topic(Name="karpenter-oncall")["TopicArn"]


@pytest.fixture(scope="module")
def fresh_check(private_moto, topic):
    """--check --diff on the empty moto (before anything is created): what it reports, and moto's state after."""
    before = cloudwatch_state(private_moto)
    out = run_site(private_moto, "--tags", "cloudwatch", "--check", "--diff", extra_vars=_vars(topic))
    return before, out, cloudwatch_state(private_moto)


def _vars(topic):
    return {"monitoring_cloudwatch_alarm_sns_topic_arn": topic}


@pytest.fixture(scope="module")
def converged(private_moto, topic, fresh_check):
    first = run_site(private_moto, "--tags", "cloudwatch", extra_vars=_vars(topic))
    assert first["rc"] == 0, json.dumps(first)[-3000:]
    return private_moto, first


def test_check_mode_on_empty_moto_reports_and_writes_nothing(fresh_check):
    before, out, after = fresh_check
    assert out["rc"] == 0
    changed = changed_tasks(out)
    assert any(t.endswith("Create the Karpenter controller log group with its retention") for t in changed)
    assert any(t.endswith("Alarm on the controller's ERROR log lines") for t in changed)
    # no log group yet: the filter cannot be compared and is skipped rather than failing
    (flt,) = task_results(out, "Count the controller's ERROR log lines (metric filter)")
    assert flt.get("skipped") is True
    assert before == after == {"groups": [], "filters": [], "alarms": []}


def test_log_group_retention(converged):
    endpoint, first = converged
    (group,) = aws_client(endpoint, "logs").describe_log_groups()["logGroups"]
    assert group["logGroupName"] == GROUP
    assert group["retentionInDays"] == 1  # inventories/local sets 1 day
    assert len(changed_tasks(first)) == 3


def test_metric_filter_counts_error_lines(converged):
    endpoint, unused = converged
    (flt,) = aws_client(endpoint, "logs").describe_metric_filters(logGroupName=GROUP)["metricFilters"]
    assert flt["filterName"] == "karpenter-controller-errors"
    assert flt["filterPattern"] == '{ $.level = "ERROR" }'
    assert flt["metricTransformations"] == [
        {"metricName": METRIC, "metricNamespace": NAMESPACE, "metricValue": "1", "defaultValue": 0.0}
    ]


def test_alarm_on_the_filter_metric(converged, topic):
    endpoint, unused = converged
    (alarm,) = aws_client(endpoint, "cloudwatch").describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (NAMESPACE, METRIC)
    assert alarm["Statistic"] == "Sum" and alarm["Period"] == 300 and alarm["EvaluationPeriods"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and alarm["Threshold"] == 10.0
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]


def test_second_run_changes_nothing(converged, topic):
    endpoint, unused = converged
    out = run_site(endpoint, "--tags", "cloudwatch", extra_vars=_vars(topic))
    assert out["rc"] == 0 and changed_tasks(out) == []


def test_check_mode_on_converged_state_changes_nothing(converged, topic):
    endpoint, unused = converged
    before = cloudwatch_state(endpoint)
    out = run_site(endpoint, "--tags", "cloudwatch", "--check", "--diff", extra_vars=_vars(topic))
    assert out["rc"] == 0 and changed_tasks(out) == []
    assert cloudwatch_state(endpoint) == before


def test_check_mode_reports_drift_without_writing(converged, topic):
    endpoint, unused = converged
    before = cloudwatch_state(endpoint)
    drift = dict(_vars(topic), monitoring_cloudwatch_log_retention_days=30, monitoring_cloudwatch_alarm_threshold=3)
    out = run_site(endpoint, "--tags", "cloudwatch", "--check", extra_vars=drift)
    changed = changed_tasks(out)
    # amazon.aws.cloudwatchlogs_log_group would write the retention in check mode; the role reports it instead
    (report,) = task_results(out, "Report the retention change (check mode, existing log group)")
    assert report["changed"] is True and "retention 1 -> 30 days" in report["msg"]
    assert any(t.endswith("Alarm on the controller's ERROR log lines") for t in changed)
    assert cloudwatch_state(endpoint) == before


# ---------------------------------------------------------------- offline: what the pattern selects

# Lines in the Karpenter v1 controller's format (zap JSON encoder; fields of the sandbox controller's own log).
KARPENTER_LINES = [
    '{"level":"ERROR","time":"2026-11-26T12:29:51.616Z","logger":"controller","message":"Reconciler error",'
    '"controller":"nodeclaim.lifecycle","NodeClaim":{"name":"general-9v25g"},"error":"launching nodeclaim"}',
    '{"level":"INFO","time":"2026-11-26T12:29:52.001Z","logger":"controller","message":"found provisionable pod(s)"}',
    '{"level":"DEBUG","time":"2026-11-26T12:29:52.101Z","logger":"controller","message":"computed new nodeclaim(s)"}',
    '{"level":"WARN","time":"2026-11-26T12:29:53.000Z","logger":"controller","message":"an error occurred"}',
    "plain text line mentioning ERROR",
]


def json_equality_filter(pattern):
    """The single-condition JSON filter form ``{ $.<field> = "<value>" }`` as a predicate on one log line (the
    CloudWatch Logs semantics for it: JSON events only, exact, case-sensitive string match)."""
    m = re.fullmatch(r'\{\s*\$\.([A-Za-z0-9_]+)\s*=\s*"([^"*]*)"\s*\}', pattern)
    assert m, "the role's default pattern is a single JSON equality condition: " + pattern

    def matches(line):
        try:
            event = json.loads(line)
        except ValueError:
            return False
        return isinstance(event, dict) and event.get(m.group(1)) == m.group(2)

    return matches


def test_default_pattern_selects_exactly_the_error_lines():
    with open(f"{ROOT}/roles/monitoring/defaults/main.yml") as f:
        pattern = yaml.safe_load(f)["monitoring_cloudwatch_error_filter_pattern"]
    matches = json_equality_filter(pattern)
    assert [json.loads(line)["level"] for line in KARPENTER_LINES if matches(line)] == ["ERROR"]
