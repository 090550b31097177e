# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""AWS data sources of the cost report: Cost Explorer, Pricing, EC2 spot price history, CloudWatch.

* One retry policy, the collection's: every call goes through ``Retry.call``, which runs it under
  ``aws.api.retry_policy`` (amazon.aws's ``AWSRetry.jittered_backoff``, as the AWS modules' clients), retrying
  throttling and transient service errors (and HTTP 502/503/504 answers) with jittered exponential backoff.
  botocore's own retries are switched off on these clients (``total_max_attempts=1``), so the number of attempts
  is exactly ``retries + 1`` and is the same under botocore's Stubber as against AWS.
* One failure rule: a source that fails (access denied, throttled past the retries, endpoint unreachable,
  no credentials, unexpected answer) returns nothing and appends one note that starts with the source's name
  (``cost_explorer:``, ``pricing:``, ``spot_price_history:``, ``cloudwatch:``); the report goes on without it.
* Connection errors are not retried: an endpoint that cannot be reached (a closed network, a wrong endpoint URL)
  degrades at once instead of multiplying connect timeouts.
"""

from __future__ import annotations

import datetime
import os

from ..aws import api, credentials
from . import fmt, model

try:
    import boto3
    import botocore.config
    import botocore.exceptions

    HAS_BOTO3 = True
except ImportError:
    HAS_BOTO3 = False

USER_AGENT_EXTRA = "karpenter-eks-platform/0.1.0"
UTC = datetime.UTC
COST_EXPLORER_REGION = "us-east-1"  # Cost Explorer's only endpoint
PRICING_REGION = "us-east-1"  # the Pricing API answers for every region from us-east-1
MAX_PRICING_TYPES = 50  # one GetProducts call per instance type

# Retried: AWS's "slow down" and "try again" codes (aws.api's lists), and these HTTP statuses whatever the code
THROTTLING_CODES = api.THROTTLING_CODES
TRANSIENT_CODES = api.TRANSIENT_CODES
TRANSIENT_STATUS = (502, 503, 504)
ACCESS_DENIED_CODES = frozenset(
    [
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "AuthFailure",
        "ExpiredToken",
        "ExpiredTokenException",
        "OptInRequired",
    ]
)
# IAM action each source needs (named in the note when access is denied)
IAM_ACTIONS = {
    "cost_explorer": "ce:GetCostAndUsage",
    "pricing": "pricing:GetProducts",
    "spot_price_history": "ec2:DescribeSpotPriceHistory",
    "cloudwatch": "cloudwatch:GetMetricData",
}


error_code = api.error_code
http_status = api.http_status


def is_retryable(exc):
    """What ``Retry`` has ``api.retry_policy`` retry (the failure notes say "throttled or failing" for these)."""
    if not HAS_BOTO3 or not isinstance(exc, botocore.exceptions.ClientError):
        return False
    code = error_code(exc)
    return code in THROTTLING_CODES or code in TRANSIENT_CODES or http_status(exc) in TRANSIENT_STATUS


class Retry:
    """The cost sources' calls under the one retry policy (``api.retry_policy``): at most ``retries + 1`` attempts;
    before the n-th retry a wait drawn from [0, min(max_delay, delay * 2^n)] (amazon.aws's jittered backoff).

    ``attempts`` counts the attempts made per ``service:Operation``, ``retried`` the retries among them; an error
    that ends a call carries ``karpenter_attempts``, the attempts that call made.
    """

    def __init__(self, retries=5, delay=1.0, max_delay=20.0):
        self.retries = max(0, int(retries))
        self.policy = api.retry_policy(
            THROTTLING_CODES | TRANSIENT_CODES,
            attempts=self.retries + 1,
            delay=delay,
            max_delay=max_delay,
            transient_status=TRANSIENT_STATUS,
        )
        self.attempts = {}
        self.retried = {}

    def call(self, client, method, **kwargs):
        fn = getattr(client, method)
        key = "%s:%s" % (client.meta.service_model.service_name, client.meta.method_to_api_mapping.get(method, method))
        made = []

        @self.policy
        def attempt():
            if made:
                self.retried[key] = self.retried.get(key, 0) + 1
            made.append(key)
            self.attempts[key] = self.attempts.get(key, 0) + 1
            return fn(**kwargs)

        try:
            return attempt()
        except Exception as exc:
            exc.karpenter_attempts = len(made)
            raise

    def summary(self):
        return dict((k, {"attempts": n, "retries": self.retried.get(k, 0)}) for k, n in sorted(self.attempts.items()))


def region_from_params(p):
    return p.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


class Aws:
    """Session + clients (botocore retries off, short connect timeout) + the retry policy.

    ``client_factory(service, region)`` replaces client creation (tests pass Stubber-wrapped clients).
    """

    def __init__(self, p, retry=None, client_factory=None):
        self.region = region_from_params(p)
        self.client_kwargs = credentials.client_kwargs(p)  # the endpoint URL when one is set
        self.retry = retry or Retry(retries=p.get("aws_retries", 5))
        self._factory = client_factory
        self._clients = {}
        self.session = None
        if client_factory is None:
            self.session = boto3.session.Session(**credentials.session_kwargs(p))

    def client(self, service, region=None):
        region = region or self.region
        if (service, region) not in self._clients:
            if self._factory is not None:
                c = self._factory(service, region)
            else:
                config = botocore.config.Config(
                    user_agent_extra=USER_AGENT_EXTRA,
                    retries={"mode": "standard", "total_max_attempts": 1},
                    connect_timeout=10,
                    read_timeout=60,
                )
                c = self.session.client(service, region_name=region, config=config, **self.client_kwargs)
            self._clients[(service, region)] = c
        return self._clients[(service, region)]

    def call(self, client, method, **kwargs):
        return self.retry.call(client, method, **kwargs)


def short_message(text, limit=300):
    """An error message fit for one line of a report (``fmt.one_line``: an HTML page becomes its title)."""
    return fmt.one_line(text, limit)


def error_text(exc, limit=240):
    """What went wrong, in one bounded line: for an AWS answer its HTTP status (when the code does not say more),
    error code and message, without botocore's "An error occurred ... when calling ..." wrapper; an HTML error
    page (a proxy's, a wrong endpoint's) as its status and title, never its markup."""
    response = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    code, message, status = error.get("Code"), error.get("Message"), http_status(exc)
    if not response or not (code or message or status):
        return fmt.one_line(exc, limit)
    parts = []
    vague = not code or code in ("Unknown", str(status)) or fmt.is_html(message)
    if status and vague:
        parts.append(fmt.http_status_text(status))
    if code and code not in ("Unknown", str(status)):
        parts.append(code)
    if message and message not in ("Unknown", code, fmt.HTTP_REASONS.get(status)):
        parts.append(fmt.one_line(message, limit))
    return fmt.one_line(": ".join(parts) or str(exc), limit)


def failure_note(source, exc, consequence=""):
    """One line naming the source, the kind of failure and the AWS error, e.g. for a report's notes."""
    code = error_code(exc)
    attempts = getattr(exc, "karpenter_attempts", 1)
    message = error_text(exc)
    if code in ACCESS_DENIED_CODES:
        what = "access denied (%s; needs %s)" % (message, IAM_ACTIONS.get(source, "permission"))
    elif is_retryable(exc):
        what = "throttled or failing, gave up after %d attempt(s) (%s)" % (attempts, message)
    elif HAS_BOTO3 and isinstance(exc, botocore.exceptions.NoCredentialsError):
        what = "no AWS credentials (%s)" % message
    elif HAS_BOTO3 and isinstance(
        exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)
    ):
        what = "endpoint unreachable (%s)" % message
    elif getattr(exc, "response", None):
        what = message
    else:
        what = "%s: %s" % (type(exc).__name__, message)
    return "%s: unavailable, %s%s" % (source, what, "; " + consequence if consequence else "")


# ---------------------------------------------------------------------------------------------- sources


def cost_explorer(aws, cluster_name, start, end, notes, cost_tag_key, nodepool_tag_key):
    """Cost for the period by [instance type, usage type] and by [NodePool tag, purchase type], cluster tag only."""
    base = dict(
        TimePeriod={"Start": start.isoformat(), "End": end.isoformat()},
        Granularity="DAILY",
        Metrics=["UnblendedCost"],
        Filter={"Tags": {"Key": cost_tag_key, "Values": [cluster_name], "MatchOptions": ["EQUALS"]}},
    )
    try:
        ce = aws.client("ce", region=COST_EXPLORER_REGION)

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

        by_type = query([{"Type": "DIMENSION", "Key": "INSTANCE_TYPE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}])
        by_pool = query([{"Type": "TAG", "Key": nodepool_tag_key}, {"Type": "DIMENSION", "Key": "PURCHASE_TYPE"}])
        out = {"by_type": model.ce_by_type(by_type), "by_nodepool": model.ce_by_pool(by_pool)}
    except Exception as exc:
        notes.append(failure_note("cost_explorer", exc, "costs are the cluster's current run-rate only."))
        return None
    if not any(r.get("Groups") for r in by_type + by_pool):
        notes.append(
            "cost_explorer: no cost for tag %s=%s in %s..%s (tag not activated for cost allocation?)."
            % (cost_tag_key, cluster_name, start, end)
        )
    return out


def pricing_filters(instance_type, region):
    return [
        {"Type": "TERM_MATCH", "Field": field, "Value": value}
        for field, value in (
            ("instanceType", instance_type),
            ("regionCode", region),
            ("operatingSystem", "Linux"),
            ("tenancy", "Shared"),
            ("preInstalledSw", "NA"),
            ("capacitystatus", "Used"),
        )
    ]


def on_demand_prices(aws, types, region, notes):
    """{instance type: on-demand USD/hour in ``region``} from the Pricing API (Linux, shared tenancy).

    Stops at the first failure (keeping what it got) with a note; types the API has no price for are named.
    """
    if not types:
        return {}
    wanted = sorted(types)
    prices, missing = {}, []
    try:
        client = aws.client("pricing", region=PRICING_REGION)
        for it in wanted[:MAX_PRICING_TYPES]:
            resp = aws.call(
                client, "get_products", ServiceCode="AmazonEC2", Filters=pricing_filters(it, region), MaxResults=100
            )
            price = model.pricing_on_demand(resp.get("PriceList") or [], it)
            if price is None:
                missing.append(it)
            else:
                prices[it] = price
    except Exception as exc:
        notes.append(
            failure_note(
                "pricing",
                exc,
                "on-demand prices for %s come from the node price label or the static table (%d of %d priced here)."
                % (region, len(prices), len(wanted)),
            )
        )
        return prices
    if missing:
        notes.append("pricing: no %s on-demand Linux price for %s." % (region, ", ".join(missing)))
    if len(wanted) > MAX_PRICING_TYPES:
        notes.append(
            "pricing: only the first %d of %d instance types were looked up." % (MAX_PRICING_TYPES, len(wanted))
        )
    return prices


def spot_history(aws, types, now, notes):
    """{(instance type, zone): latest spot price} of the last 6 hours (entries older than 7 days ignored)."""
    if not types:
        return {}
    entries, token = [], None
    try:
        ec2 = aws.client("ec2")
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
        prices, stale = model.spot_history_prices(entries, now.timestamp())
    except Exception as exc:
        notes.append(failure_note("spot_price_history", exc, "spot nodes use their price label or an estimate."))
        return {}
    if stale:
        notes.append("spot_price_history: %d entr(y/ies) older than 7 days or non-positive ignored." % stale)
    if not prices:
        notes.append("spot_price_history: no current spot price for %s." % ", ".join(sorted(types)))
    return prices


def cloudwatch(aws, cluster_name, start, end, notes):
    """Average Container Insights node CPU/memory utilisation (percent) over the period."""
    days = max((end - start).days, 1)
    queries = [
        {
            "Id": rid,
            "MetricStat": {
                "Metric": {
                    "Namespace": "ContainerInsights",
                    "MetricName": metric,
                    "Dimensions": [{"Name": "ClusterName", "Value": cluster_name}],
                },
                "Period": 86400 if days > 1 else 3600,
                "Stat": "Average",
            },
        }
        for rid, metric in (("cpu", "node_cpu_utilization"), ("memory", "node_memory_utilization"))
    ]
    try:
        cw = aws.client("cloudwatch")
        resp = aws.call(
            cw,
            "get_metric_data",
            MetricDataQueries=queries,
            StartTime=datetime.datetime.combine(start, datetime.time(0), tzinfo=UTC),
            EndTime=datetime.datetime.combine(end, datetime.time(0), tzinfo=UTC),
        )
        avg = model.cloudwatch_average(resp.get("MetricDataResults"))
    except Exception as exc:
        notes.append(failure_note("cloudwatch", exc, "utilisation is requested/allocatable only."))
        return None
    if all(v is None for v in avg.values()):
        notes.append(
            "cloudwatch: no Container Insights data for ClusterName=%s; utilisation is requested/allocatable only."
            % cluster_name
        )
        return None
    return {"node_cpu_utilization_percent": avg.get("cpu"), "node_memory_utilization_percent": avg.get("memory")}
