"""`promtool test rules` on the monitoring role's alerts, rendered with the role defaults.

Each alert gets input series that must make it fire (with the exact labels and annotations a receiver sees)
and series that must not (healthy values, excluded label values, or not yet held for the rule's ``for``).
The sandbox test (tests/integration/test_monitoring_rules.py) checks the same rules evaluate on a real
Karpenter's /metrics; this one checks what they decide. promtool comes from the sandbox's binaries
(``$SANDBOX_BIN`` or the sandbox cache); without it the test is skipped.
"""

import glob
import os
import shutil
import subprocess

import pytest
import yaml


def find_promtool():
    candidates = [os.path.join(os.environ.get("SANDBOX_BIN", ""), "promtool")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.cache/karpenter-eks-sandbox/*/bin/promtool")))
    candidates.append(shutil.which("promtool") or "")
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    return None


PROMTOOL = find_promtool()
# scripts/test.sh builds the sandbox binaries first and sets KARPENTER_EKS_STRICT_TOOLS: there a missing
# promtool is a failure, not a skip
if PROMTOOL is None and os.environ.get("KARPENTER_EKS_STRICT_TOOLS"):
    raise RuntimeError("promtool not found although sandbox/build.sh ran (it fetches Debian's prometheus package)")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not built (sandbox/build.sh)")

KARPENTER = {"job": "karpenter", "namespace": "karpenter"}


def series(name, labels, values):
    body = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{body}}}", "values": values}


def rule_annotations(rules, alert):
    return rules[alert].get("annotations", {})


def case(rules, alert, input_series, fire_at, quiet_at, labels=None, annotations=None):
    """One promtool test: ``alert`` fires at ``fire_at`` with ``labels`` and is quiet at every ``quiet_at``."""
    exp = {"exp_labels": dict(rules[alert]["labels"], **(labels or {}))}
    exp["exp_annotations"] = annotations if annotations is not None else rule_annotations(rules, alert)
    checks = [{"eval_time": fire_at, "alertname": alert, "exp_alerts": [exp]}]
    checks += [{"eval_time": t, "alertname": alert, "exp_alerts": []} for t in quiet_at]
    return {"interval": "1m", "input_series": input_series, "alert_rule_test": checks}


def quiet(alert, input_series, at):
    return {
        "interval": "1m",
        "input_series": input_series,
        "alert_rule_test": [{"eval_time": t, "alertname": alert, "exp_alerts": []} for t in at],
    }


def build_tests(rules):
    r = rules
    tests = [
        # controller down: no healthy target; a target reporting up=1 keeps it quiet, one at 0 does not.
        # absent() over a comparison carries no labels of the selector, only the rule's severity.
        case(r, "KarpenterControllerDown", [series("up", dict(KARPENTER, instance="a"), "0x30")], "10m", ["4m"]),
        case(r, "KarpenterControllerDown", [], "10m", []),
        quiet(
            "KarpenterControllerDown",
            [series("up", dict(KARPENTER, instance="a"), "1x30"), series("up", dict(KARPENTER, instance="b"), "0x30")],
            ["10m", "30m"],
        ),
        # leader election: both replicas standby fires, one leader is fine
        case(
            r,
            "KarpenterNoLeader",
            [
                series("leader_election_master_status", {"name": "karpenter-leader-election", "pod": p}, "0x20")
                for p in ("a", "b")
            ],
            "10m",
            ["4m"],
        ),
        quiet(
            "KarpenterNoLeader",
            [
                series("leader_election_master_status", {"name": "karpenter-leader-election", "pod": "a"}, "1x20"),
                series("leader_election_master_status", {"name": "karpenter-leader-election", "pod": "b"}, "0x20"),
            ],
            ["10m"],
        ),
        # cluster state sync
        case(
            r, "KarpenterClusterStateNotSynced", [series("karpenter_cluster_state_synced", {}, "0x30")], "15m", ["9m"]
        ),
        quiet("KarpenterClusterStateNotSynced", [series("karpenter_cluster_state_synced", {}, "1x30")], ["15m"]),
        # cloud provider errors: 6 errors/minute = 0.1/s; NodeClaimNotFoundError is routine and excluded
        case(
            r,
            "KarpenterCloudProviderErrors",
            [
                series(
                    "karpenter_cloudprovider_errors_total",
                    {
                        "controller": "nodeclaim.lifecycle",
                        "method": "Create",
                        "provider": "aws",
                        "error": "InsufficientCapacityError",
                    },
                    "0+6x40",
                )
            ],
            "30m",
            ["10m"],
            labels={"method": "Create", "error": "InsufficientCapacityError"},
            annotations={
                "summary": "Karpenter cloud provider calls fail (Create, InsufficientCapacityError).",
                "description": "100m errors/s for Create (InsufficientCapacityError).",
            },
        ),
        quiet(
            "KarpenterCloudProviderErrors",
            [
                series(
                    "karpenter_cloudprovider_errors_total",
                    {"method": "Get", "provider": "aws", "error": "NodeClaimNotFoundError"},
                    "0+6x40",
                ),
                series("karpenter_cloudprovider_errors_total", {"method": "Create", "error": "X"}, "3x40"),
            ],
            ["30m"],
        ),
        # scheduler backlog held for 15m
        case(r, "KarpenterPodsPendingTooLong", [series("karpenter_scheduler_queue_depth", {}, "4x30")], "20m", ["10m"]),
        quiet("KarpenterPodsPendingTooLong", [series("karpenter_scheduler_queue_depth", {}, "0x30")], ["20m"]),
        # NodeClaims disrupted for launch/registration reasons; other disruption reasons do not count
        case(
            r,
            "KarpenterNodeClaimLaunchFailures",
            [
                series(
                    "karpenter_nodeclaims_disrupted_total",
                    {"nodepool": "general", "reason": "registration_timeout", "capacity_type": "spot"},
                    "0+1x40",
                )
            ],
            "30m",
            ["10m"],
            labels={"nodepool": "general", "reason": "registration_timeout"},
            annotations={
                "summary": "NodeClaims of general fail (registration_timeout).",
                "description": rule_annotations(r, "KarpenterNodeClaimLaunchFailures")["description"],
            },
        ),
        quiet(
            "KarpenterNodeClaimLaunchFailures",
            [
                series(
                    "karpenter_nodeclaims_disrupted_total", {"nodepool": "general", "reason": "underutilized"}, "0+1x40"
                )
            ],
            ["30m"],
        ),
        # p99 pod startup above the default 600 s threshold
        case(
            r,
            "KarpenterPodStartupSlow",
            [
                series("karpenter_pods_startup_duration_seconds", {"quantile": "0.99"}, "900x30"),
                series("karpenter_pods_startup_duration_seconds", {"quantile": "0.5"}, "900x30"),
            ],
            "20m",
            ["10m"],
            labels={"quantile": "0.99"},
            annotations={
                "summary": rule_annotations(r, "KarpenterPodStartupSlow")["summary"],
                "description": "p99 pod startup is 15m 0s.",
            },
        ),
        quiet(
            "KarpenterPodStartupSlow",
            [series("karpenter_pods_startup_duration_seconds", {"quantile": "0.99"}, "120x30")],
            ["20m"],
        ),
        # NodePool at 95 % of its CPU limit (default threshold 0.9); another pool at 50 % stays quiet
        case(
            r,
            "KarpenterNodePoolNearCPULimit",
            [
                series("karpenter_nodepools_usage", {"nodepool": "general", "resource_type": "cpu"}, "95x20"),
                series("karpenter_nodepools_limit", {"nodepool": "general", "resource_type": "cpu"}, "100x20"),
                series("karpenter_nodepools_usage", {"nodepool": "batch", "resource_type": "cpu"}, "50x20"),
                series("karpenter_nodepools_limit", {"nodepool": "batch", "resource_type": "cpu"}, "100x20"),
                series("karpenter_nodepools_usage", {"nodepool": "general", "resource_type": "memory"}, "99x20"),
                series("karpenter_nodepools_limit", {"nodepool": "general", "resource_type": "memory"}, "100x20"),
            ],
            "15m",
            ["5m"],
            labels={"nodepool": "general", "resource_type": "cpu"},
            annotations={
                "summary": "NodePool general uses 95% of its CPU limit.",
                "description": rule_annotations(r, "KarpenterNodePoolNearCPULimit")["description"],
            },
        ),
        # interruption messages waiting > 60 s at p99
        case(
            r,
            "KarpenterInterruptionQueueLatencyHigh",
            [
                series("karpenter_interruption_message_queue_duration_seconds_bucket", {"le": le}, v)
                for le, v in (("30", "0x40"), ("60", "0x40"), ("120", "0+10x40"), ("+Inf", "0+10x40"))
            ],
            "30m",
            ["10m"],
        ),
        quiet(
            "KarpenterInterruptionQueueLatencyHigh",
            [
                series("karpenter_interruption_message_queue_duration_seconds_bucket", {"le": le}, "0+10x40")
                for le in ("30", "60", "120", "+Inf")
            ],
            ["30m"],
        ),
    ]
    return tests


def test_every_alert_fires_and_stays_quiet_as_designed(rendered, tmp_path):
    obj = yaml.safe_load((rendered / "prometheusrule.yml").read_text())
    groups = obj["spec"]["groups"]
    rules = {rule["alert"]: rule for g in groups for rule in g["rules"] if "alert" in rule}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}))

    tests = build_tests(rules)
    covered = {c["alertname"] for t in tests for c in t["alert_rule_test"] if c["exp_alerts"]}
    assert covered == set(rules), f"alerts without a firing test: {set(rules) - covered}"
    quiet_covered = {c["alertname"] for t in tests for c in t["alert_rule_test"] if not c["exp_alerts"]}
    assert quiet_covered == set(rules), f"alerts without a quiet test: {set(rules) - quiet_covered}"

    (tmp_path / "tests.yml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}, sort_keys=False)
    )
    res = subprocess.run(
        [PROMTOOL, "test", "rules", "tests.yml"], capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False
    )
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-6000:]
    assert "SUCCESS" in res.stdout + res.stderr
