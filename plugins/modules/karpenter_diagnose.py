#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: karpenter_diagnose
short_description: Diagnose a Karpenter incident (controller, provisioning, spot storm) and write a bundle
version_added: 0.1.0
description:
  - Diagnoses a Karpenter incident (controller failure, provisioning failure, spot interruption storm, spot
    reintroduction), names the causes it finds, recommends remediations and computes the NodePool changes they need.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
extends_documentation_fragment:
  - karpenter_eks.platform.attributes.info_module
  - karpenter_eks.platform.attributes.action_group_karpenter
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    details:
      - Never writes to the cluster. The bundle (O(output_dir)) is written in check mode too; it is the runbook's
        output, not a change.
options:
  scenario:
    description: Which incident to diagnose.
    type: str
    required: true
    choices: [controller, provisioning, spot_storm, spot_reintroduction]
  namespace:
    description: Namespace of the Karpenter controller (its pods' logs are read from there).
    type: str
    default: karpenter
  deployment:
    description: Name of the Karpenter controller Deployment.
    type: str
    default: karpenter
  health_url:
    description: Readiness URL of the controller (for example C(http://127.0.0.1:8081/readyz)); skipped when unset.
    type: str
  metrics_url:
    description: Prometheus metrics URL of the controller; skipped when unset.
    type: str
  namespaces:
    description:
      - Namespaces whose pending pods are examined (O(scenario=provisioning), O(verify)); all when empty.
    type: list
    elements: str
    default: []
  stuck_seconds:
    description: A NodeClaim not Launched/Registered/Initialized for longer than this is reported as stuck.
    type: int
    default: 300
  limit_factor:
    description: Factor by which a reached NodePool limit is raised (at least to usage plus twice the pending requests).
    type: int
    default: 2
  widen:
    description:
      - Requirement values to add to every NodePool's C(In) requirements, keys C(capacity_types), C(zones),
        C(instance_families), C(instance_categories) (lists). Produces NodePool changes in RV(remediation).
    type: dict
  window_seconds:
    description: Time window for interruption events (O(scenario=spot_storm)).
    type: int
    default: 900
  threshold:
    description:
      - Interruptions in the window that make a storm. An interruption is an interrupted instance (Karpenter reports
        each one on the NodeClaim and on its Node, under one or two reasons; it counts once), or a spot NodeClaim
        terminating in the window.
    type: int
    default: 3
  since:
    description:
      - Epoch seconds; only interruptions after this time count (O(scenario=spot_storm)), for example since a
        reintroduction step began.
    type: float
  verify:
    description:
      - With O(scenario=spot_storm), also require convergence (critical findings until then) - every NodeClaim of
        the examined NodePools Ready and none terminating, all of O(expect_capacity_type) when set, and no pod
        Pending in O(namespaces) (all namespaces when empty). Used with O(wait_healthy) to verify a remediation.
    type: bool
    default: false
  expect_capacity_type:
    description: Capacity type (V(on-demand), V(spot)) every NodeClaim must have for O(verify).
    type: str
  stage:
    description:
      - Reintroduction stage planned by O(scenario=spot_reintroduction) for the NodePools that carry the
        annotation C(karpenter-eks.platform/spot-storm-previous-requirements).
      - V(add_spot) adds the saved capacity types to the current ones (on-demand stays allowed, annotation kept);
        V(restore) puts the saved requirements back exactly and removes the annotation.
      - Nothing is planned while the interruption rate is at or above O(threshold).
    type: str
    choices: [add_spot, restore]
    default: add_spot
  nodepools:
    description:
      - Only these NodePools are examined and changed; all when empty.
    type: list
    elements: str
    default: []
  log_file:
    description:
      - Log file of a controller that runs out of cluster; its ERROR lines are read instead of the pods' logs.
    type: path
  log_seconds:
    description: How far back controller log lines count (seconds); 0 counts none (after a remediation, for example).
    type: int
    default: 900
  iam_check:
    description:
      - Result of M(karpenter_eks.platform.karpenter_iam_check) for O(scenario=provisioning) (keys C(available),
        C(note), C(role_arn), C(role_missing), C(allowed), C(denied)).
    type: dict
  output_dir:
    description: Folder for the bundle; created if missing. No bundle when unset.
    type: path
  bundle_name:
    description: File name (without extension) of the bundle.
    type: str
    default: diagnosis
  fail_on_incident:
    description:
      - When the diagnosis is not healthy, return RV(incident_failure), the message a playbook fails with (after
        the bundle is written and its paths printed), so that a diagnose-only run that finds an incident is a
        failed (red) job. The module itself does not fail.
    type: bool
    default: false
  wait_healthy:
    description: Repeat the diagnosis until it finds no critical problem or O(wait_timeout) passes (verification).
    type: bool
    default: false
  wait_timeout:
    description: Seconds for O(wait_healthy).
    type: int
    default: 120
  watch_seconds:
    description:
      - Repeat the diagnosis for this long and stop at the first critical finding (an observation period, for
        example between spot reintroduction steps). 0 runs it once.
    type: int
    default: 0
  request_timeout:
    description: Seconds before a single API or HTTP request times out.
    type: int
    default: 10
requirements:
  - kubernetes >= 24.2.0
notes:
  - Used by the runbooks in C(playbooks/runbooks/). It looks at the Kubernetes API (and optionally the Karpenter
    health and metrics endpoints) and returns the NodePool changes with the previous specs, for an undo.
  - The controller's recent ERROR log lines (Karpenter logs JSON, C("level":"ERROR")) are read from O(log_file)
    when set (a controller running out of cluster, for example the sandbox's) and otherwise from the controller
    pods' logs (pod log API); they are grouped in RV(observed.log_errors). With O(scenario=provisioning) the ones
    that name an AWS authorization or capacity error become causes.
  - With O(scenario=provisioning), O(iam_check) (the result of M(karpenter_eks.platform.karpenter_iam_check))
    turns denied controller actions into a finding, and an unusable simulator into a note.
  - With O(output_dir) it writes a bundle C(<bundle_name>.json) (everything) and C(<bundle_name>.md) (a readable
    summary), also in check mode.
"""

EXAMPLES = r"""
- name: Why are pods pending?
  karpenter_eks.platform.karpenter_diagnose:
    scenario: provisioning
    output_dir: /tmp/karpenter-incident
  register: diagnosis

- name: Verify the controller is healthy again
  karpenter_eks.platform.karpenter_diagnose:
    scenario: controller
    health_url: http://127.0.0.1:8081/readyz
    wait_healthy: true
    wait_timeout: 180
  register: verification
  failed_when: not verification.healthy
"""

RETURN = r"""
healthy:
  description: True when no critical finding was made.
  returned: always
  type: bool
causes:
  description: IDs of the critical findings (for example V(nodepool_limit_reached), V(controller_unhealthy)).
  returned: always
  type: list
  elements: str
checked:
  description: What was looked at.
  returned: always
  type: list
  elements: str
notes:
  description: What could not be looked at and why (for example C(IAM simulator not available - ...)).
  returned: always
  type: list
  elements: str
findings:
  description: Findings with C(id), C(severity), C(summary) and details.
  returned: always
  type: list
  elements: dict
recommendations:
  description: Recommended actions with C(id), C(action), C(why) and the variable that enables them.
  returned: always
  type: list
  elements: dict
observed:
  description: The data behind the findings (pods, events, usage, metrics).
  returned: always
  type: dict
  contains:
    log_errors:
      description: The controller's ERROR log lines grouped by message and error, with count, likely cause and the
        objects they name.
      returned: when the controller's log was read
      type: list
      elements: dict
remediation:
  description: C(nodepools) (complete NodePool definitions for karpenter_provisioner) and C(previous) (their
    specs before the change, by name).
  returned: always
  type: dict
markdown:
  description: The readable summary.
  returned: always
  type: str
bundle:
  description: Paths of the bundle files written.
  returned: when O(output_dir) is set
  type: dict
incident_failure:
  description: With O(fail_on_incident), the incident's causes and the bundle's path when not healthy; else null.
  returned: always
  type: str
requests:
  description: Number of API requests by verb.
  returned: always
  type: dict
"""

from ansible.module_utils.urls import open_url
from ansible_collections.karpenter_eks.platform.plugins.module_utils.glue.kube_module import KubeModule
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC


def main():
    spec = dict(AUTH_ARG_SPEC)
    spec.update(
        scenario=dict(
            type="str", required=True, choices=["controller", "provisioning", "spot_storm", "spot_reintroduction"]
        ),
        namespace=dict(type="str", default="karpenter"),
        deployment=dict(type="str", default="karpenter"),
        health_url=dict(type="str"),
        metrics_url=dict(type="str"),
        namespaces=dict(type="list", elements="str", default=[]),
        stuck_seconds=dict(type="int", default=300),
        limit_factor=dict(type="int", default=2),
        widen=dict(type="dict"),
        window_seconds=dict(type="int", default=900),
        threshold=dict(type="int", default=3),
        since=dict(type="float"),
        verify=dict(type="bool", default=False),
        expect_capacity_type=dict(type="str"),
        stage=dict(type="str", default="add_spot", choices=["add_spot", "restore"]),
        nodepools=dict(type="list", elements="str", default=[]),
        log_file=dict(type="path"),
        log_seconds=dict(type="int", default=900),
        iam_check=dict(type="dict"),
        output_dir=dict(type="path"),
        bundle_name=dict(type="str", default="diagnosis"),
        fail_on_incident=dict(type="bool", default=False),
        wait_healthy=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=120),
        watch_seconds=dict(type="int", default=0),
        request_timeout=dict(type="int", default=10),
    )
    module = KubeModule(argument_spec=spec, supports_check_mode=True)
    from ansible_collections.karpenter_eks.platform.plugins.module_utils import runbooks

    p = module.params
    api = module.connect(retries=2)

    def http_get(url):
        try:
            resp = open_url(url, timeout=p["request_timeout"], validate_certs=False)
            return True, resp.read().decode("utf-8", "replace")
        except Exception as exc:  # connection refused, HTTP errors
            return False, str(exc)

    def pod_log(namespace, pod, since_seconds):
        """The pod log API (text, not JSON): GET .../pods/<pod>/log?sinceSeconds=N."""
        return api.call(
            "log",
            "GET",
            "/api/v1/namespaces/%s/pods/%s/log" % (namespace, pod),
            query={"sinceSeconds": str(since_seconds), "limitBytes": str(4 * 1024 * 1024)},
            raw=True,
        )

    def run_once():
        return runbooks.run_scenario(api, p, http_get=http_get, pod_log=pod_log)

    def act():
        runbooks.check_params(p)
        if p["wait_healthy"]:
            return runbooks.wait_healthy(run_once, p["wait_timeout"])
        if p["watch_seconds"] > 0:
            return runbooks.watch(run_once, p["watch_seconds"])
        return run_once()

    result = module.run(act)
    result["markdown"] = runbooks.markdown(result)
    if p["output_dir"]:
        try:
            result["bundle"] = runbooks.write_bundle(result, p["output_dir"], p["bundle_name"])
        except OSError as exc:
            module.fail_json(msg="cannot write the bundle to output_dir %s: %s" % (p["output_dir"], exc))
    result["incident_failure"] = runbooks.incident_failure(result, p["fail_on_incident"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
