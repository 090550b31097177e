#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: karpenter_cost_report
short_description: Cost, utilisation and savings report for Karpenter NodePools (JSON and HTML with charts)
version_added: 0.1.0
description:
  - Reads the cluster's nodes, pods, NodePools and NodeClaims (one LIST each), prices every node, and computes
    the cost per NodePool and per capacity type, requested/allocatable utilisation, the spot share and
    recommendations with savings in dollars per month.
  - Adds, where reachable, AWS Cost Explorer cost for the period (by instance type and usage type, and by the
    C(karpenter.sh/nodepool) tag and purchase type, filtered to the cluster's tag), EC2 spot price history and
    CloudWatch Container Insights utilisation. A source that is unreachable, denied or empty is reported as a
    note in the report; the module does not fail because of it.
  - "Prices, first match per node: O(prices); spot price history (spot nodes, entries newer than 7 days); the
    price the provider recorded on the node (C(eks-node-viewer/instance-price) label or annotation); the shipped
    static us-east-1 on-demand table of the AWS Karpenter provider v1.14.1 (times O(spot_fraction) for spot
    nodes, flagged as an estimate). The AWS Pricing API is not used."
  - Writes the report as JSON (O(json_path)) and as a self-contained HTML page (O(html_path)) with inline SVG
    charts (no JavaScript, no external resources).
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    description:
      - Only reads from the cluster and AWS. In check mode the report is computed and returned but no file
        is written (C(changed) says whether the files would change); set C(check_mode=false) on the task to
        write the report during a C(--check) run.
    support: full
  diff_mode:
    description: Returns no diff.
    support: none
  idempotent:
    description: The report carries its generation time, so written files change on every run.
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
    choices: [cluster, cost_explorer, spot_price_history, cloudwatch]
    default: [cluster, cost_explorer, spot_price_history, cloudwatch]
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
  region:
    description:
      - AWS region for EC2 and CloudWatch (Cost Explorer always uses C(us-east-1)). Defaults to
        E(AWS_REGION), then E(AWS_DEFAULT_REGION), then C(us-east-1).
    type: str
  endpoint_url:
    description: AWS endpoint URL (for example a local emulator); botocore also honours E(AWS_ENDPOINT_URL).
    type: str
    aliases: [aws_endpoint_url]
  aws_profile:
    description: AWS profile; the standard credential chain (E(AWS_PROFILE), E(AWS_ACCESS_KEY_ID), ...) when unset.
    type: str
  aws_access_key:
    description: AWS access key id; the standard credential chain when unset.
    type: str
  aws_secret_key:
    description: AWS secret access key.
    type: str
  aws_session_token:
    description: AWS session token.
    type: str
  aws_retries:
    description: Retries with jittered backoff on AWS throttling and transient errors.
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
  - "IAM for the AWS sources: C(ce:GetCostAndUsage), C(ec2:DescribeSpotPriceHistory), C(cloudwatch:GetMetricData).
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
      C(message)), C(cost_explorer), C(cloudwatch), C(notes), C(period), C(assumptions).
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

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes
from ansible_collections.karpenter_eks.platform.plugins.module_utils.cost import htmlreport, model
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import client as kclient
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC

try:
    import boto3
    import botocore.config
    import botocore.exceptions

    HAS_BOTO3 = True
except ImportError:
    HAS_BOTO3 = False

try:
    from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
except ImportError:  # amazon.aws missing: no retry wrapper
    AWSRetry = None

UTC = datetime.timezone.utc  # noqa: UP017 - modules also run on Python < 3.11
SOURCES = ["cluster", "cost_explorer", "spot_price_history", "cloudwatch"]
PODS_FIELD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"


def _argument_spec():
    spec = dict(AUTH_ARG_SPEC)
    spec.update(
        cluster_name=dict(type="str"),
        cost_tag_key=dict(type="str", default="eks:eks-cluster-name", no_log=False),
        nodepool_tag_key=dict(type="str", default="karpenter.sh/nodepool", no_log=False),
        period_days=dict(type="int", default=30),
        start=dict(type="str"),
        end=dict(type="str"),
        sources=dict(type="list", elements="str", choices=SOURCES, default=list(SOURCES)),
        node_selector=dict(type="str"),
        prices=dict(type="dict", default={}),
        spot_fraction=dict(type="float", default=0.35),
        low_utilization=dict(type="float", default=0.5),
        target_utilization=dict(type="float", default=0.8),
        hours_per_month=dict(type="float", default=730),
        json_path=dict(type="path"),
        html_path=dict(type="path"),
        title=dict(type="str"),
        region=dict(type="str"),
        endpoint_url=dict(type="str", aliases=["aws_endpoint_url"]),
        aws_profile=dict(type="str"),
        aws_access_key=dict(type="str", no_log=False),
        aws_secret_key=dict(type="str", no_log=True),
        aws_session_token=dict(type="str", no_log=True),
        aws_retries=dict(type="int", default=5),
        request_timeout=dict(type="int", default=30),
    )
    return spec


def _period(p, today):
    end = datetime.date.fromisoformat(p["end"]) if p["end"] else today
    start = datetime.date.fromisoformat(p["start"]) if p["start"] else end - datetime.timedelta(days=p["period_days"])
    if start >= end:
        raise ValueError("start (%s) must be before end (%s)" % (start, end))
    return start, end


# ------------------------------------------------------------------------------------------------ cluster


def read_cluster(p, notes):
    """(node records, NodePool specs by name, request summary); empty with a note when unreachable."""
    if not kclient.HAS_KUBERNETES:
        notes.append("cluster: the kubernetes Python library is missing; no node data.")
        return [], {}, {}
    from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import info

    api = None
    try:
        configuration, headers = kclient.configuration_from_params(p)
        api = kclient.KubeApi(configuration, headers, timeout=p["request_timeout"])
        summary = info.summarize(api, ["NodePool", "NodeClaim"])
        nodes = api.list("/api/v1/nodes", label_selector=p["node_selector"]).get("items") or []
        pods = api.call("list", "GET", "/api/v1/pods", query={"fieldSelector": PODS_FIELD_SELECTOR}).get("items")
    except kclient.KubeError as exc:
        notes.append("cluster: Kubernetes API error (%s); no node data." % exc)
        return [], {}, api.request_summary() if api else {}
    except Exception as exc:  # kubeconfig missing or unreadable
        notes.append("cluster: cannot configure the Kubernetes client (%s); no node data." % exc)
        return [], {}, api.request_summary() if api else {}
    specs = dict((np["name"], (np.get("object") or {}).get("spec") or {}) for np in summary.get("nodepools", []))
    records = model.node_records(nodes, pods or [], summary.get("nodeclaims", []))
    pending = [c["name"] for c in summary.get("nodeclaims", []) if not c.get("node")]
    if pending and not p["node_selector"]:
        notes.append("cluster: %d NodeClaim(s) without a node yet (launching): not priced." % len(pending))
    return records, specs, api.request_summary()


# ------------------------------------------------------------------------------------------------ AWS


class Aws(object):
    def __init__(self, p):
        kwargs = {}
        if p["aws_profile"]:
            kwargs["profile_name"] = p["aws_profile"]
        if p["aws_access_key"]:
            kwargs.update(
                aws_access_key_id=p["aws_access_key"],
                aws_secret_access_key=p["aws_secret_key"],
                aws_session_token=p["aws_session_token"],
            )
        self.region = p["region"] or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.session = boto3.session.Session(**kwargs)
        self.endpoint_url = p["endpoint_url"]
        self.retries = p["aws_retries"]

    def client(self, service, region=None):
        config = botocore.config.Config(user_agent_extra="karpenter-eks-platform/0.1.0")
        return self.session.client(
            service, region_name=region or self.region, endpoint_url=self.endpoint_url or None, config=config
        )

    def call(self, client, method, **kwargs):
        fn = getattr(client, method)
        if AWSRetry is not None:
            fn = AWSRetry.jittered_backoff(retries=self.retries, delay=1, max_delay=20)(fn)
        return fn(**kwargs)


def _aws_error(exc):
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
    return "%s%s" % (code + ": " if code else "", exc)


def cost_explorer(aws, p, start, end, notes):
    ce = aws.client("ce", region="us-east-1")
    base = dict(
        TimePeriod={"Start": start.isoformat(), "End": end.isoformat()},
        Granularity="DAILY",
        Metrics=["UnblendedCost"],
        Filter={"Tags": {"Key": p["cost_tag_key"], "Values": [p["cluster_name"]], "MatchOptions": ["EQUALS"]}},
    )

    def query(group_by):
        results, token = [], None
        for _page in range(50):
            kwargs = dict(base, GroupBy=group_by)
            if token:
                kwargs["NextPageToken"] = token
            resp = aws.call(ce, "get_cost_and_usage", **kwargs)
            results.extend(resp.get("ResultsByTime") or [])
            token = resp.get("NextPageToken")
            if not token:
                break
        return results

    try:
        by_type = query([{"Type": "DIMENSION", "Key": "INSTANCE_TYPE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}])
        by_pool = query([{"Type": "TAG", "Key": p["nodepool_tag_key"]}, {"Type": "DIMENSION", "Key": "PURCHASE_TYPE"}])
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        notes.append(
            "cost_explorer: unavailable (%s); costs are the cluster's current run-rate only." % _aws_error(exc)
        )
        return None
    out = {"by_type": model.ce_by_type(by_type), "by_nodepool": model.ce_by_pool(by_pool)}
    if not any(r.get("Groups") for r in by_type + by_pool):
        notes.append(
            "cost_explorer: no cost for tag %s=%s in %s..%s (tag not activated for cost allocation?)."
            % (p["cost_tag_key"], p["cluster_name"], start, end)
        )
    return out


def spot_history(aws, types, now, notes):
    if not types:
        return {}
    ec2 = aws.client("ec2")
    entries, token = [], None
    try:
        for _page in range(20):
            kwargs = dict(
                InstanceTypes=sorted(types),
                ProductDescriptions=["Linux/UNIX"],
                StartTime=now - datetime.timedelta(hours=6),
                MaxResults=1000,
            )
            if token:
                kwargs["NextToken"] = token
            resp = aws.call(ec2, "describe_spot_price_history", **kwargs)
            entries.extend(resp.get("SpotPriceHistory") or [])
            token = resp.get("NextToken")
            if not token:
                break
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        notes.append("spot_price_history: unavailable (%s)." % _aws_error(exc))
        return {}
    prices, stale = model.spot_history_prices(entries, now.timestamp())
    if stale:
        notes.append("spot_price_history: %d entr(y/ies) older than 7 days or non-positive ignored." % stale)
    if not prices:
        notes.append("spot_price_history: no current spot price for %s." % ", ".join(sorted(types)))
    return prices


def cloudwatch(aws, p, start, end, notes):
    cw = aws.client("cloudwatch")
    days = max((end - start).days, 1)
    queries = [
        {
            "Id": rid,
            "MetricStat": {
                "Metric": {
                    "Namespace": "ContainerInsights",
                    "MetricName": metric,
                    "Dimensions": [{"Name": "ClusterName", "Value": p["cluster_name"]}],
                },
                "Period": 86400 if days > 1 else 3600,
                "Stat": "Average",
            },
        }
        for rid, metric in (("cpu", "node_cpu_utilization"), ("memory", "node_memory_utilization"))
    ]
    try:
        resp = aws.call(
            cw,
            "get_metric_data",
            MetricDataQueries=queries,
            StartTime=datetime.datetime.combine(start, datetime.time(0), tzinfo=UTC),
            EndTime=datetime.datetime.combine(end, datetime.time(0), tzinfo=UTC),
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        notes.append("cloudwatch: unavailable (%s); utilisation is requested/allocatable only." % _aws_error(exc))
        return None
    avg = model.cloudwatch_average(resp.get("MetricDataResults"))
    if all(v is None for v in avg.values()):
        notes.append(
            "cloudwatch: no Container Insights data for ClusterName=%s; utilisation is requested/allocatable only."
            % p["cluster_name"]
        )
        return None
    return {"node_cpu_utilization_percent": avg.get("cpu"), "node_memory_utilization_percent": avg.get("memory")}


# ------------------------------------------------------------------------------------------------ files


def _write(module, path, text):
    """(changed, error): atomic write when the content differs; nothing written in check mode."""
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
    module.atomic_move(tmp, os.path.abspath(path))
    return True


def main():
    module = AnsibleModule(argument_spec=_argument_spec(), supports_check_mode=True)
    p = module.params
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    try:
        start, end = _period(p, now.date())
    except ValueError as exc:
        module.fail_json(msg="invalid period: %s" % exc)
    notes = []
    records, specs, requests = [], {}, {}
    if "cluster" in p["sources"]:
        records, specs, requests = read_cluster(p, notes)

    aws_sources = [s for s in p["sources"] if s != "cluster"]
    aws = None
    if aws_sources and not HAS_BOTO3:
        notes.append("aws: boto3 is missing; %s skipped." % ", ".join(aws_sources))
    elif aws_sources:
        try:
            aws = Aws(p)
        except Exception as exc:  # profile not found, ...
            notes.append("aws: cannot create a session (%s); %s skipped." % (exc, ", ".join(aws_sources)))

    ce = cw = None
    history = {}
    if aws is not None:
        needs_cluster = [s for s in ("cost_explorer", "cloudwatch") if s in p["sources"]]
        if needs_cluster and not p["cluster_name"]:
            notes.append("%s: skipped, cluster_name is not set." % ", ".join(needs_cluster))
        if "cost_explorer" in p["sources"] and p["cluster_name"]:
            ce = cost_explorer(aws, p, start, end, notes)
        if "spot_price_history" in p["sources"]:
            types = set(r["instance_type"] for r in records if r["instance_type"] and r["managed_by"] == "karpenter")
            history = spot_history(aws, types, now, notes)
        if "cloudwatch" in p["sources"] and p["cluster_name"]:
            cw = cloudwatch(aws, p, start, end, notes)

    book = model.PriceBook(
        spot_history=history,
        overrides=p["prices"],
        spot_fraction=p["spot_fraction"],
        region=aws.region if aws else (p["region"] or os.environ.get("AWS_REGION") or "us-east-1"),
    )
    model.price_nodes(records, book)
    report = model.build_report(
        records,
        book,
        specs,
        cost_explorer=ce,
        cloudwatch=cw,
        notes=notes,
        period={"start": start.isoformat(), "end": end.isoformat(), "days": (end - start).days},
        cluster_name=p["cluster_name"],
        generated_at=now.isoformat(),
        hours_per_month=p["hours_per_month"],
        low_utilization=p["low_utilization"],
        target_utilization=p["target_utilization"],
    )
    result = dict(changed=False, report=report, notes=report["notes"], requests=requests)
    try:
        if p["json_path"]:
            result["json_path"] = p["json_path"]
            text = json.dumps(report, indent=2, sort_keys=True) + "\n"
            result["changed"] |= _write(module, p["json_path"], text)
        if p["html_path"]:
            result["html_path"] = p["html_path"]
            result["changed"] |= _write(module, p["html_path"], htmlreport.render(report, p["title"]))
    except OSError as exc:
        module.fail_json(msg="cannot write the report: %s" % exc, exception=traceback.format_exc(), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
