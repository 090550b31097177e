"""KPL034 on the sandbox: the generated metric table agrees with what the real Karpenter controller serves, and the
monitoring role refuses alerts on a removed metric name with no write to the apiserver (its audit log).

* Every ``karpenter_*`` metric family the sandbox's controller exposes on /metrics is in the table of the version it
  reports in ``karpenter_build_info``, with the same Prometheus type. (A vector without series is not exposed, so
  this checks the table from the other side of the generator, not that the table is complete.)
* A copy of the monitoring role whose alert uses ``karpenter_provisioner_scheduling_queue_depth`` fails at the lint,
  and the audit log has no write into the role's namespace; the unmodified copy then writes the three objects there
  (the positive control: the same play does write when the names are right).
"""

import json
import os
import re
import urllib.request

import awslib
import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.metric_names import minor_version
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.metrics_data import METRICS

pytestmark = pytest.mark.sandbox

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_live_controllers_metrics_are_in_the_table(sandbox):
    with urllib.request.urlopen(sandbox.env["KARPENTER_METRICS_URL"], timeout=10) as r:
        text = r.read().decode()
    families = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    m = re.search(r'^karpenter_build_info\{[^}]*\bversion="([^"]+)"', text, re.M)
    assert m, "karpenter_build_info missing from /metrics"
    table = METRICS[minor_version(m.group(1))]
    live = {name: kind for name, kind in families.items() if name.startswith("karpenter_")}
    assert len(live) >= 10, sorted(live)
    assert {name: kind for name, kind in live.items() if table.get(name) != kind} == {}
    # the other families the controller serves carry other prefixes (controller-runtime, client-go, Go, ...)
    assert any(name.startswith("controller_runtime_") for name in families)


PLAY = """
- name: Monitoring role copy on the sandbox
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/karpenter_eks.platform.karpenter:
      kubeconfig: "{{ kubeconfig }}"
  roles:
    - role: monitoring
      vars:
        monitoring_namespace: "{{ namespace }}"
        monitoring_cloudwatch_enabled: false
        monitoring_grafana_dashboard_enabled: true
        monitoring_karpenter_version: "1.15.0"
"""


def role_copy(tmp_path, replace=None):
    return awslib.role_copy("monitoring", tmp_path, PLAY, replace)


def writes_into(sandbox, mark, namespace):
    return [e for e in sandbox.client_writes_since(mark) if (e.get("objectRef") or {}).get("namespace") == namespace]


def test_the_role_refuses_a_removed_metric_name_without_writing(sandbox, tmp_path, uid):
    namespace = f"mlint-{uid}"
    sandbox.kubectl("create", "namespace", namespace)
    extra = {"kubeconfig": sandbox.env["KUBECONFIG"], "namespace": namespace}
    try:
        bad = role_copy(
            tmp_path / "bad",
            ("max(karpenter_scheduler_queue_depth)", "max(karpenter_provisioner_scheduling_queue_depth)"),
        )
        mark = sandbox.audit_mark()
        rc, out = sandbox.playbook(bad, extra_vars=extra, check=False)
        assert rc != 0
        failed = [t for t in out["plays"][0]["tasks"] if t["hosts"]["localhost"].get("failed")]
        assert [t["task"]["name"] for t in failed] == [
            "monitoring : Lint the metric names of the alerts and the dashboard (KPL034)"
        ]
        assert "karpenter_provisioner_scheduling_queue_depth" in json.dumps(failed[0]["hosts"]["localhost"]["msg"])
        assert writes_into(sandbox, mark, namespace) == []

        good = role_copy(tmp_path / "good")
        mark = sandbox.audit_mark()
        sandbox.playbook(good, extra_vars=extra)
        written = {(e["objectRef"]["resource"], e["objectRef"]["name"]) for e in writes_into(sandbox, mark, namespace)}
        assert written == {
            ("prometheusrules", "karpenter"),
            ("servicemonitors", "karpenter"),
            ("configmaps", "karpenter-dashboard"),
        }
    finally:
        sandbox.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
