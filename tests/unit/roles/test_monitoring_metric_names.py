"""The monitoring role checks the metric names of what it applies (KPL034) before writing anything.

* its own PrometheusRule (rendered with the defaults) and dashboard pass for every supported Karpenter version;
* tasks/main.yml computes the objects once, lints them, then applies exactly those;
* run for real on localhost without any cluster: a role copy whose alert uses a removed name fails at the lint
  task, and the apply task never starts; the unmodified copy passes the lint and reaches the apply (which then
  fails on the unreachable cluster: the positive control).
"""

import json
import os
import subprocess
import sys

import yaml
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.metric_names import (
    lint_metrics,
    supported_versions,
)
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.promql import metric_names
from awslib import role_copy

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
ROLE = os.path.join(ROOT, "roles", "monitoring")
LINT_TASK = "Lint the metric names of the alerts and the dashboard (KPL034)"
APPLY_TASK = "Apply the PrometheusRule, ServiceMonitor and Grafana dashboard ConfigMap"


def test_the_roles_alerts_and_dashboard_pass_for_every_supported_version(rendered):
    rule = yaml.safe_load((rendered / "prometheusrule.yml").read_text())
    names = {n for g in rule["spec"]["groups"] for r in g["rules"] for n in metric_names(r["expr"])}
    assert {"karpenter_nodepools_usage", "karpenter_interruption_message_queue_duration_seconds_bucket"} <= names
    with open(os.path.join(ROLE, "files", "karpenter-dashboard.json")) as fh:
        configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}, "data": {"d.json": fh.read()}}
    for version in supported_versions():
        assert lint_metrics([rule, configmap], version) == [], version


def test_main_lints_the_computed_objects_before_applying_them():
    with open(os.path.join(ROLE, "tasks", "main.yml")) as fh:
        tasks = yaml.safe_load(fh)
    names = [t["name"] for t in tasks]
    compute, lint, apply = (names.index(n) for n in (names[0], LINT_TASK, APPLY_TASK))
    assert compute < lint < apply
    assert "monitoring_definitions" in tasks[compute]["ansible.builtin.set_fact"]
    assert "karpenter_lint_metrics(karpenter_version=monitoring_karpenter_version)" in json.dumps(tasks[lint])
    assert tasks[lint]["ansible.builtin.assert"]["that"] == "monitoring_metric_issues | length == 0"
    assert tasks[apply]["karpenter_eks.platform.k8s_objects"]["definitions"] == "{{ monitoring_definitions }}"


PLAY = """
- name: Monitoring role copy, no cluster
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  module_defaults:
    group/karpenter_eks.platform.karpenter:
      kubeconfig: "{{ playbook_dir }}/no-such-kubeconfig"
  roles:
    - role: monitoring
      vars:
        monitoring_cloudwatch_enabled: false
        monitoring_grafana_dashboard_enabled: true
        monitoring_karpenter_version: "1.15.0"
        monitoring_k8s_timeout: 20
"""


def run_role_copy(tmp_path, replace=None):
    role_copy("monitoring", tmp_path, PLAY, replace)
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
    )
    res = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "play.yml",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    out = json.loads(res.stdout)
    results = {t["task"]["name"].split(" : ", 1)[-1]: t["hosts"]["localhost"] for t in out["plays"][0]["tasks"]}
    return res.returncode, results


def test_a_removed_metric_name_fails_the_role_before_the_apply(tmp_path):
    rc, results = run_role_copy(
        tmp_path, ("max(karpenter_scheduler_queue_depth)", "max(karpenter_provisioner_scheduling_queue_depth)")
    )
    assert rc != 0
    lint = results[LINT_TASK]
    assert lint.get("failed") is True
    text = " ".join(lint["msg"]) if isinstance(lint["msg"], list) else lint["msg"]
    assert "Karpenter 1.15.0 does not export (1 issue(s)), stopping before anything is written" in text
    assert "alert KarpenterPodsPendingTooLong: metric karpenter_provisioner_scheduling_queue_depth" in text
    assert "karpenter_scheduler_queue_depth" in text  # the suggestion
    assert APPLY_TASK not in results  # never started: nothing can have been written


def test_the_unmodified_role_passes_the_lint_and_reaches_the_apply(tmp_path):
    rc, results = run_role_copy(tmp_path)
    assert rc != 0  # no cluster
    assert results[LINT_TASK].get("failed") is not True
    assert results[APPLY_TASK].get("failed") is True
