#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: karpenter_cost_report
short_description: Cost, utilisation and savings report for Karpenter NodePools (JSON and HTML with charts)
version_added: 0.1.0
description:
  - Reports the cost, utilisation and spot share of a cluster's Karpenter NodePools, with recommendations and their
    savings in dollars per month; optionally writes it as JSON and as an HTML page with charts.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
extends_documentation_fragment:
  - karpenter_eks.platform.attributes
  - karpenter_eks.platform.attributes.action_group_karpenter
  - kubernetes.core.k8s_auth_options
  - karpenter_eks.platform.aws_credentials
attributes:
  check_mode:
    details:
      - Only reads from the cluster and AWS. In check mode the report is computed and returned but no file is
        written (C(changed) says whether the files would change); set C(check_mode=false) on the task to write the
        report during a C(--check) run.
  diff_mode:
    details: Returns no diff of the files it writes.
    support: none
  idempotent:
    details: The report carries its generation time, so written files change on every run.
    support: none
options:
  cluster_name:
    description:
      - Cluster name used for the Cost Explorer tag filter and the CloudWatch C(ClusterName) dimension.
      - Without it Cost Explorer and CloudWatch are skipped (with a note).
    type: str
  cost_tag_key:
    description: Cost allocation tag holding the cluster name (Karpenter v1 tags every instance with it).
    type: str
    default: eks:eks-cluster-name
  nodepool_tag_key:
    description: Cost allocation tag holding the NodePool name.
    type: str
    default: karpenter.sh/nodepool
  period_days:
    description: Report period in days, ending O(end) (today, UTC, when unset). Ignored when O(start) is set.
    type: int
    default: 30
  start:
    description: First day of the period (C(YYYY-MM-DD), inclusive).
    type: str
  end:
    description: Day after the period (C(YYYY-MM-DD), exclusive, as in Cost Explorer).
    type: str
  sources:
    description: Data sources to read.
    type: list
    elements: str
    choices: [cluster, cost_explorer, pricing, spot_price_history, cloudwatch]
    default: [cluster, cost_explorer, pricing, spot_price_history, cloudwatch]
  node_selector:
    description: Label selector restricting the nodes in the report (for example one what-if run).
    type: str
  prices:
    description:
      - Price overrides in USD per hour, by instance type; a number for every capacity type or a dict with
        C(on-demand) and/or C(spot) keys.
    type: dict
    default: {}
  spot_fraction:
    description: Spot price as a fraction of on-demand when no better spot price is known.
    type: float
    default: 0.35
  low_utilization:
    description: A NodePool whose requested CPU, memory (and GPU) are all below this share is reported as underused.
    type: float
    default: 0.5
  target_utilization:
    description: Requested share an underused NodePool could be packed to; drives the savings estimate.
    type: float
    default: 0.8
  hours_per_month:
    description: Hours in a month for monthly figures.
    type: float
    default: 730
  json_path:
    description: Write the report as JSON to this file.
    type: path
  html_path:
    description: Write the report as HTML to this file.
    type: path
  title:
    description: Title of the HTML report.
    type: str
  aws_retries:
    description: Retries with jittered exponential backoff on AWS throttling and transient errors (per call).
    type: int
    default: 5
  request_timeout:
    description: Seconds before a single Kubernetes API request times out.
    type: int
    default: 30
requirements:
  - kubernetes >= 24.2.0
  - boto3 (for the AWS sources)
notes:
  - Reads the cluster's nodes, pods, NodePools and NodeClaims (one LIST each), prices every node, and computes the
    cost per NodePool and per capacity type, requested/allocatable utilisation, the spot share and recommendations.
  - Adds, where reachable, AWS Cost Explorer cost for the period (by instance type and usage type, and by the
    C(karpenter.sh/nodepool) tag and purchase type, filtered to the cluster's tag), on-demand prices of the region
    from the AWS Pricing API, EC2 spot price history and CloudWatch Container Insights utilisation. A source that
    is unreachable, denied, throttled past O(aws_retries) or empty is reported as a note naming the source (and
    C(report.data_sources) says which answered); the module does not fail because of it.
  - AWS calls that are throttled (C(Throttling), C(ThrottlingException), C(RequestLimitExceeded),
    C(LimitExceededException), ...) or hit a transient service error are retried O(aws_retries) times with
    jittered exponential backoff (1 s doubling, at most 20 s per wait); connection errors are not retried.
  - "Prices, first match per node: O(prices); spot price history (spot nodes, entries newer than 7 days); the
    price the provider recorded on the node (C(eks-node-viewer/instance-price) label or annotation); the Pricing
    API's on-demand price in the region; the shipped static on-demand table of the AWS Karpenter provider
    v1.14.1. Pricing API and static prices are multiplied by O(spot_fraction) for spot nodes, flagged as an
    estimate."
  - The static table holds B(us-east-1) prices only. For nodes in another region (from their zone label, else
    O(region)) priced from it, the report says so in a note naming the region and the instance types, and each
    such node carries C(price_region=us-east-1).
  - O(region) is the region of EC2, CloudWatch and the prices looked up (else E(AWS_REGION), then
    E(AWS_DEFAULT_REGION), then C(us-east-1)); Cost Explorer and the Pricing API are always called in C(us-east-1).
  - The HTML page (O(html_path)) is self-contained, with inline SVG charts (no JavaScript, no external resources).
  - "IAM for the AWS sources: C(ce:GetCostAndUsage), C(pricing:GetProducts), C(ec2:DescribeSpotPriceHistory),
    C(cloudwatch:GetMetricData).
    The tags must be activated as cost allocation tags for Cost Explorer to group and filter by them."
  - Runs where the module executes; use it on the controller (C(delegate_to=localhost)) to get the files there.
"""

EXAMPLES = r"""
- name: Cost report for the last 30 days
  karpenter_eks.platform.karpenter_cost_report:
    cluster_name: prod-eu
    region: eu-west-1
    json_path: /tmp/karpenter-cost.json
    html_path: /tmp/karpenter-cost.html
  delegate_to: localhost
  register: cost

- name: Biggest savings first
  ansible.builtin.debug:
    msg: "{{ cost.report.recommendations | map(attribute='message') }}"

- name: Only the cluster, no AWS calls
  karpenter_eks.platform.karpenter_cost_report:
    sources: [cluster]
    prices:
      m7i.large: {on-demand: 0.1008, spot: 0.04}
"""

RETURN = r"""
report:
  description:
    - The report. C(totals) (nodes, hourly, monthly, CPU/memory allocatable, requested, utilisation),
      C(spot_share) (by nodes, vCPU and cost), C(nodepools) and C(capacity_types) (nodes, hourly, monthly,
      utilisation, C(by_capacity_type), C(instance_types)), C(nodes) (each with instance type, capacity type,
      zone, hourly price and C(price_source)), C(recommendations) (C(kind), C(nodepool), C(monthly_saving),
      C(message)), C(cost_explorer), C(cloudwatch), C(notes), C(period), C(assumptions), C(prices) (region,
      static table region, instance types by price source, C(stand_in_types) priced with another region's
      table, C(missing_types)), C(data_sources) (per source V(ok), V(empty), V(failed), V(skipped) or
      V(not requested)) and C(aws_calls) (attempts and retries per AWS operation).
  returned: always
  type: dict
notes:
  description: Data sources that were skipped or degraded, and estimates used.
  returned: always
  type: list
  elements: str
json_path:
  description: The JSON file (written, or that would be written in check mode).
  returned: when O(json_path) is set
  type: str
html_path:
  description: The HTML file (written, or that would be written in check mode).
  returned: when O(html_path) is set
  type: str
requests:
  description: Number of Kubernetes API requests by verb.
  returned: always
  type: dict
"""

import datetime
import json
import os
import tempfile
import traceback

from ansible.module_utils.common.text.converters import to_bytes
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws import credentials
from ansible_collections.karpenter_eks.platform.plugins.module_utils.cost import collect, htmlreport
from ansible_collections.karpenter_eks.platform.plugins.module_utils.glue.kube_module import KubeModule
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC

UTC = datetime.UTC


def _argument_spec():
    spec = dict(AUTH_ARG_SPEC)
    spec.update(credentials.credentials_spec())
    spec.update(
        cluster_name=dict(type="str"),
        cost_tag_key=dict(type="str", default="eks:eks-cluster-name", no_log=False),
        nodepool_tag_key=dict(type="str", default="karpenter.sh/nodepool", no_log=False),
        period_days=dict(type="int", default=30),
        start=dict(type="str"),
        end=dict(type="str"),
        sources=dict(type="list", elements="str", choices=collect.SOURCES, default=list(collect.SOURCES)),
        node_selector=dict(type="str"),
        prices=dict(type="dict", default={}),
        spot_fraction=dict(type="float", default=0.35),
        low_utilization=dict(type="float", default=0.5),
        target_utilization=dict(type="float", default=0.8),
        hours_per_month=dict(type="float", default=730),
        json_path=dict(type="path"),
        html_path=dict(type="path"),
        title=dict(type="str"),
        aws_retries=dict(type="int", default=5),
        request_timeout=dict(type="int", default=30),
    )
    return spec


# ------------------------------------------------------------------------------------------------ files


def _write(module, path, text):
    """True when the file changes: atomic write when the content differs; nothing written in check mode."""
    data = to_bytes(text)
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return False
    except OSError:
        pass
    if module.check_mode:
        return True
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".karpenter-cost-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    try:
        module.atomic_move(tmp, os.path.abspath(path))
    except BaseException:  # e.g. the path is a directory: no temporary file left behind
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


def main():
    module = KubeModule(argument_spec=_argument_spec(), supports_check_mode=True)
    p = module.params
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    try:
        collect.period(p, now.date())
    except ValueError as exc:
        module.fail_json(msg="invalid period: %s" % exc)
    report, requests = collect.collect(p, now)
    result = dict(changed=False, report=report, notes=report["notes"], requests=requests)
    outputs = (
        ("json_path", lambda: json.dumps(report, indent=2, sort_keys=True) + "\n"),
        ("html_path", lambda: htmlreport.render(report, p["title"])),
    )
    for option, render in outputs:
        if not p[option]:
            continue
        result[option] = p[option]
        try:
            result["changed"] |= _write(module, p[option], render())
        except Exception as exc:  # OSError, and atomic_move's plain Exception
            module.fail_json(
                msg="cannot write the report to %s %s: %s" % (option, p[option], exc),
                exception=traceback.format_exc(),
                **result,
            )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
