"""The cost report's AWS sources: retries on throttling, degradation to notes, region-aware prices.

moto cannot make an API answer ThrottlingException / LimitExceededException / RequestLimitExceeded / AccessDenied
on demand, and has no Pricing API at all, so these tests use botocore's ``Stubber``: every queued answer (error or
response) is validated against the real service model and consumed in order, and ``assert_no_pending_responses``
proves the code made exactly the calls queued, i.e. that it really retried. botocore's own retries are off on the
clients (as in the product code: ``total_max_attempts=1``), and a Stubber answer bypasses them anyway; the
retries counted here are the collection's own (``cost.aws.Retry`` over ``aws.api.retry_policy``, amazon.aws's
``AWSRetry``). The unreachable-endpoint cases use real botocore clients pointed at a closed port on 127.0.0.1
(no Stubber: the connection really fails).
"""

import datetime
import json
import socket
import time
import types

import boto3
import botocore.config
import pytest
from ansible_collections.amazon.aws.plugins.module_utils import cloud as aws_cloud
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws import api
from ansible_collections.karpenter_eks.platform.plugins.module_utils.cost import aws as caws
from ansible_collections.karpenter_eks.platform.plugins.module_utils.cost import collect, fmt, model
from ansible_collections.karpenter_eks.platform.plugins.module_utils.cost_data import prices_us_east_1 as table
from botocore.stub import ANY, Stubber

UTC = datetime.UTC
NOW = datetime.datetime(2026, 7, 8, 12, 0, tzinfo=UTC)
START, END = datetime.date(2026, 7, 1), datetime.date(2026, 7, 3)
NO_RETRY = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1})
SLEEPS = []


@pytest.fixture(autouse=True)
def backoff(monkeypatch):
    """The retries run in amazon.aws's loop (``cloud._retry_func``, through ``api.retry_policy``), which sleeps with
    ``time.sleep`` and jitters with ``random.uniform``: here its sleeps are recorded, not slept, and every jittered
    wait is its upper bound (the cap: ``delay * 2^n``, at most ``max_delay``)."""
    SLEEPS.clear()
    monkeypatch.setattr(aws_cloud, "time", types.SimpleNamespace(sleep=SLEEPS.append))
    monkeypatch.setattr(aws_cloud, "random", types.SimpleNamespace(uniform=lambda low, high: high))
    return SLEEPS


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def raw_client(service, region="us-east-1", endpoint="http://127.0.0.1:1"):
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    ).client(service, endpoint_url=endpoint, config=NO_RETRY)


class Stubs:
    """Stubbed clients per service plus an Aws that uses them (sleeps recorded by the ``backoff`` fixture)."""

    def __init__(self, retries=3, region="us-east-1", real=None):
        self.region = region
        self.sleeps = SLEEPS
        self.clients, self.stubs = dict(real or {}), {}
        self.retry = caws.Retry(retries=retries, delay=1.0, max_delay=20.0)
        self.aws = caws.Aws(
            {"region": region}, retry=self.retry, client_factory=lambda service, _r: self._client(service)
        )

    def _client(self, service):
        if service not in self.clients:  # created on first use: loading a service model takes a while
            self.clients[service] = raw_client(service, self.region)
            self.stubs[service] = Stubber(self.clients[service])
            self.stubs[service].activate()
        return self.clients[service]

    def __getitem__(self, service):
        self._client(service)
        return self.stubs[service]

    def done(self):
        for s in self.stubs.values():
            s.assert_no_pending_responses()
            s.deactivate()


# ------------------------------------------------------------------------------------------ answers


def ce_answer(amounts, tag=False):
    def group(keys, amount):
        return {"Keys": keys, "Metrics": {"UnblendedCost": {"Amount": str(amount), "Unit": "USD"}}}

    results = []
    for day, (start, end) in enumerate((("2026-07-01", "2026-07-02"), ("2026-07-02", "2026-07-03"))):
        if tag:
            groups = [group(["karpenter.sh/nodepool$batch", "Spot Instances"], amounts[day])]
        else:
            groups = [group(["m6i.large", "USE1-BoxUsage:m6i.large"], amounts[day])]
        results.append({"TimePeriod": {"Start": start, "End": end}, "Estimated": False, "Groups": groups})
    return {"ResultsByTime": results}


def ce_params(group_by, cluster="prod"):
    return {
        "TimePeriod": {"Start": "2026-07-01", "End": "2026-07-03"},
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"],
        "Filter": {"Tags": {"Key": "eks:eks-cluster-name", "Values": [cluster], "MatchOptions": ["EQUALS"]}},
        "GroupBy": group_by,
    }


BY_TYPE = [{"Type": "DIMENSION", "Key": "INSTANCE_TYPE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}]
BY_POOL = [{"Type": "TAG", "Key": "karpenter.sh/nodepool"}, {"Type": "DIMENSION", "Key": "PURCHASE_TYPE"}]


def price_list_entry(instance_type, region, usd):
    """One Pricing API PriceList element (a JSON string, as AWS sends it), trimmed to the fields read."""
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance",
                "attributes": {"instanceType": instance_type, "regionCode": region, "operatingSystem": "Linux"},
            },
            "terms": {
                "OnDemand": {
                    "X.JRTCKXETXF": {
                        "priceDimensions": {"X.JRTCKXETXF.6YS6EN2CT7": {"unit": "Hrs", "pricePerUnit": {"USD": usd}}}
                    }
                }
            },
        }
    )


def spot_answer():
    return {
        "SpotPriceHistory": [
            {
                "AvailabilityZone": "us-east-1a",
                "InstanceType": "m6i.large",
                "ProductDescription": "Linux/UNIX",
                "SpotPrice": "0.0312",
                "Timestamp": NOW - datetime.timedelta(hours=1),
            }
        ]
    }


CW_ANSWER = {
    "MetricDataResults": [
        {"Id": "cpu", "Label": "cpu", "Values": [40.0, 50.0], "StatusCode": "Complete"},
        {"Id": "memory", "Label": "memory", "Values": [70.0], "StatusCode": "Complete"},
    ]
}


# One entry per AWS data source: (source, service, method, queue a success, run the source, check its result)
def _queue_ce(stubs):
    stubs["ce"].add_response("get_cost_and_usage", ce_answer([1.5, 2.5]), ce_params(BY_TYPE))
    stubs["ce"].add_response("get_cost_and_usage", ce_answer([1.0, 3.0], tag=True), ce_params(BY_POOL))


def _run_ce(stubs, notes):
    return caws.cost_explorer(
        stubs.aws, "prod", START, END, notes, "eks:eks-cluster-name", "karpenter.sh/nodepool"
    )  # fmt: skip


def _check_ce(result):
    assert result["by_type"]["total"] == 4.0 and result["by_type"]["by_instance_type"] == {"m6i.large": 4.0}
    assert result["by_nodepool"]["by_nodepool"] == {"batch": 4.0} and result["by_nodepool"]["spot_share"] == 1.0


def _queue_pricing(stubs):
    params = {"ServiceCode": "AmazonEC2", "Filters": caws.pricing_filters("m6i.large", "us-east-1"), "MaxResults": 100}
    answer = {"FormatVersion": "aws_v1", "PriceList": [price_list_entry("m6i.large", "us-east-1", "0.0960000000")]}
    stubs["pricing"].add_response("get_products", answer, params)


def _run_pricing(stubs, notes):
    return caws.on_demand_prices(stubs.aws, {"m6i.large"}, "us-east-1", notes)


def _check_pricing(result):
    assert result == {"m6i.large": 0.096}


def _queue_ec2(stubs):
    params = {
        "InstanceTypes": ["m6i.large"],
        "ProductDescriptions": ["Linux/UNIX"],
        "StartTime": NOW - datetime.timedelta(hours=6),
        "MaxResults": 1000,
    }
    stubs["ec2"].add_response("describe_spot_price_history", spot_answer(), params)


def _run_ec2(stubs, notes):
    return caws.spot_history(stubs.aws, {"m6i.large"}, NOW, notes)


def _check_ec2(result):
    assert result == {("m6i.large", "us-east-1a"): 0.0312}


def _queue_cw(stubs):
    stubs["cloudwatch"].add_response(
        "get_metric_data",
        CW_ANSWER,
        {
            "MetricDataQueries": ANY,
            "StartTime": datetime.datetime(2026, 7, 1, tzinfo=UTC),
            "EndTime": datetime.datetime(2026, 7, 3, tzinfo=UTC),
        },
    )


def _run_cw(stubs, notes):
    return caws.cloudwatch(stubs.aws, "prod", START, END, notes)


def _check_cw(result):
    assert result == {"node_cpu_utilization_percent": 45.0, "node_memory_utilization_percent": 70.0}


SOURCES = {
    "cost_explorer": ("ce", "get_cost_and_usage", "ce:GetCostAndUsage", _queue_ce, _run_ce, _check_ce),
    "pricing": ("pricing", "get_products", "pricing:GetProducts", _queue_pricing, _run_pricing, _check_pricing),
    "spot_price_history": (
        "ec2",
        "describe_spot_price_history",
        "ec2:DescribeSpotPriceHistory",
        _queue_ec2,
        _run_ec2,
        _check_ec2,
    ),
    "cloudwatch": ("cloudwatch", "get_metric_data", "cloudwatch:GetMetricData", _queue_cw, _run_cw, _check_cw),
}

# (source, throttling code, HTTP status) as each service sends it
THROTTLES = [
    ("cost_explorer", "LimitExceededException", 400),
    ("cost_explorer", "ThrottlingException", 400),
    ("pricing", "ThrottlingException", 400),
    ("spot_price_history", "RequestLimitExceeded", 503),
    ("cloudwatch", "Throttling", 400),
    ("cloudwatch", "ServiceUnavailable", 503),
]
DENIALS = [
    ("cost_explorer", "AccessDeniedException"),
    ("pricing", "AccessDeniedException"),
    ("spot_price_history", "UnauthorizedOperation"),
    ("cloudwatch", "AccessDenied"),
]


def _queue_error(stubs, source, code, status):
    service, method = SOURCES[source][:2]
    stubs[service].add_client_error(
        method, service_error_code=code, service_message="slow down", http_status_code=status
    )


# ------------------------------------------------------------------------------------------ retries


@pytest.mark.parametrize("source,code,status", THROTTLES)
def test_throttled_call_is_retried_with_backoff_then_succeeds(source, code, status):
    service, method, op, queue, run, check = SOURCES[source]
    stubs = Stubs(retries=3)
    _queue_error(stubs, source, code, status)
    _queue_error(stubs, source, code, status)
    queue(stubs)  # the third attempt (and the rest of the source's calls) succeed
    notes = []
    result = run(stubs, notes)
    stubs.done()  # every queued answer was consumed: two failed attempts, then the successful ones
    check(result)
    assert not [n for n in notes if "unavailable" in n], notes
    assert stubs.retry.retried[op] == 2
    assert stubs.sleeps == [1.0, 2.0]  # the cap of each wait (see backoff), doubling from 1 s


@pytest.mark.parametrize("source,code,status", THROTTLES[::2])
def test_throttled_past_the_retries_degrades_to_a_note(source, code, status):
    service, method, op, _queue, run, _check = SOURCES[source]
    stubs = Stubs(retries=2)
    for _attempt in range(3):  # retries + 1 attempts, all throttled
        _queue_error(stubs, source, code, status)
    notes = []
    result = run(stubs, notes)
    stubs.done()
    assert not result
    assert stubs.retry.attempts[op] == 3 and stubs.retry.retried[op] == 2
    assert len(notes) == 1
    assert notes[0].startswith(source + ": unavailable, throttled or failing, gave up after 3 attempt(s)")
    assert code in notes[0]


def test_backoff_doubles_with_jitter_and_is_capped(monkeypatch):
    for fraction in (0.0, 1.0):
        jitter = types.SimpleNamespace(uniform=lambda low, high, f=fraction: low + (high - low) * f)
        monkeypatch.setattr(aws_cloud, "random", jitter)
        r = caws.Retry(retries=6, delay=1.0, max_delay=8.0)
        client = raw_client("cloudwatch")
        with Stubber(client) as stub:
            for _attempt in range(6):
                stub.add_client_error("get_metric_data", "Throttling", http_status_code=400)
            stub.add_response("get_metric_data", CW_ANSWER)
            r.call(client, "get_metric_data", MetricDataQueries=[], StartTime=NOW, EndTime=NOW)
            stub.assert_no_pending_responses()
    # each wait is drawn from [0, cap]: the bottom of the draw, then its top; caps 1, 2, 4, 8, 8, 8 (max_delay 8)
    assert SLEEPS == [0.0] * 6 + [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_default_retry_jitters_within_bounds_and_really_sleeps(monkeypatch):
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        time.sleep(seconds)

    import random

    monkeypatch.setattr(aws_cloud, "time", types.SimpleNamespace(sleep=sleep))  # real time.sleep and random
    monkeypatch.setattr(aws_cloud, "random", random)
    r = caws.Retry(retries=2, delay=0.01, max_delay=1.0)
    client = raw_client("ce")
    t0 = time.monotonic()
    with Stubber(client) as stub:
        stub.add_client_error("get_cost_and_usage", "LimitExceededException", http_status_code=400)
        stub.add_client_error("get_cost_and_usage", "LimitExceededException", http_status_code=400)
        stub.add_response("get_cost_and_usage", ce_answer([1, 2]))
        r.call(client, "get_cost_and_usage", **ce_params(BY_TYPE))
        stub.assert_no_pending_responses()
    assert len(waits) == 2 and 0 <= waits[0] <= 0.01 and 0 <= waits[1] <= 0.02
    assert time.monotonic() - t0 >= sum(waits)


def test_throttling_is_retried_by_the_shared_aws_retry_policy(monkeypatch):
    """cost.aws.Retry has no retry loop of its own: it is built by aws.api.retry_policy (the AWS modules' policy,
    amazon.aws's AWSRetry.jittered_backoff) and its retries run in amazon.aws's loop."""
    policies, loops = [], []
    real_policy, real_loop = api.retry_policy, aws_cloud._retry_func

    def policy(*args, **kwargs):
        policies.append((args, kwargs))
        return real_policy(*args, **kwargs)

    def loop(**kwargs):
        loops.append(kwargs["retries"])
        return real_loop(**kwargs)

    monkeypatch.setattr(api, "retry_policy", policy)
    monkeypatch.setattr(aws_cloud, "_retry_func", loop)
    r = caws.Retry(retries=3)
    [((codes,), kwargs)] = policies
    assert {"ThrottlingException", "LimitExceededException", "RequestLimitExceeded", "SlowDown"} <= set(codes)
    assert kwargs == {"attempts": 4, "delay": 1.0, "max_delay": 20.0, "transient_status": (502, 503, 504)}
    client = raw_client("ce")
    with Stubber(client) as stub:
        stub.add_client_error("get_cost_and_usage", "ThrottlingException", http_status_code=400)
        stub.add_client_error("get_cost_and_usage", "Unknown", http_status_code=503)  # no code: the status says
        stub.add_response("get_cost_and_usage", ce_answer([1, 2]))
        r.call(client, "get_cost_and_usage", **ce_params(BY_TYPE))
        stub.assert_no_pending_responses()
    assert loops == [4] and SLEEPS == [1.0, 2.0]
    assert r.summary() == {"ce:GetCostAndUsage": {"attempts": 3, "retries": 2}}


def test_clients_have_botocore_retries_off_and_short_connect_timeout():
    aws = caws.Aws({"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:1", "access_key": "a",
                    "secret_key": "b", "aws_retries": 4})  # fmt: skip
    c = aws.client("ec2")
    assert c.meta.config.retries["total_max_attempts"] == 1
    assert c.meta.config.connect_timeout == 10
    assert c.meta.region_name == "eu-west-1" and aws.retry.retries == 4
    assert aws.client("ce", region=caws.COST_EXPLORER_REGION).meta.region_name == "us-east-1"


# ------------------------------------------------------------------------------------------ denied / unreachable


@pytest.mark.parametrize("source,code", DENIALS)
def test_access_denied_is_not_retried_and_names_the_source_and_permission(source, code):
    service, method, op, _queue, run, _check = SOURCES[source]
    stubs = Stubs(retries=3)
    stubs[service].add_client_error(
        method, service_error_code=code, service_message="not authorized", http_status_code=403
    )
    notes = []
    result = run(stubs, notes)
    stubs.done()  # one answer queued, one consumed: no retry
    assert not result
    assert stubs.sleeps == [] and stubs.retry.attempts[op] == 1
    assert len(notes) == 1 and notes[0].startswith(source + ": unavailable, access denied (" + code)
    assert caws.IAM_ACTIONS[source] in notes[0]


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_unreachable_endpoint_degrades_at_once(source):
    service, _method, op, _queue, run, _check = SOURCES[source]
    port = closed_port()
    stubs = Stubs(retries=3, real={service: raw_client(service, endpoint="http://127.0.0.1:%d" % port)})
    notes = []
    t0 = time.monotonic()
    result = run(stubs, notes)
    assert time.monotonic() - t0 < 5
    assert not result and stubs.sleeps == [] and stubs.retry.attempts[op] == 1
    assert len(notes) == 1 and notes[0].startswith(source + ": unavailable, endpoint unreachable (")
    assert "127.0.0.1:%d" % port in notes[0]


def test_no_credentials_is_a_note(monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookup (no traffic off loopback)
    aws = caws.Aws({"region": "us-east-1", "endpoint_url": "http://127.0.0.1:1"}, retry=caws.Retry(retries=2))
    notes = []
    assert caws.cloudwatch(aws, "prod", START, END, notes) is None
    assert len(notes) == 1 and notes[0].startswith("cloudwatch: unavailable, no AWS credentials"), notes
    assert SLEEPS == []


# ------------------------------------------------------------------------------------------ the whole report


def node(name, itype, ct, pool, zone, cpu="4", mem="16Gi", price=None):
    labels = {
        "node.kubernetes.io/instance-type": itype,
        "topology.kubernetes.io/zone": zone,
        "karpenter.sh/nodepool": pool,
        "karpenter.sh/capacity-type": ct,
    }
    if price is not None:
        labels["eks-node-viewer/instance-price"] = str(price)
    return {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": {"cpu": cpu, "memory": mem}}}


def pod(node_name, cpu):
    spec = {"nodeName": node_name, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
    return {"metadata": {"name": "p-" + node_name}, "spec": spec, "status": {"phase": "Running"}}


def cluster_reader(nodes, pods):
    def read(_p, _notes):
        return model.node_records(nodes, pods), {}, {"list": 4}

    return read


PARAMS = {
    "cluster_name": "prod",
    "start": "2026-07-01",
    "end": "2026-07-03",
    "sources": list(collect.SOURCES),
    "prices": {},
    "spot_fraction": 0.35,
}


def test_report_is_computed_when_sources_fail_each_in_its_own_way():
    """CE throttled once (retried), Pricing denied, EC2 unreachable, CloudWatch answers: one report, three notes."""
    nodes = [node("a", "m6i.large", "on-demand", "web", "us-east-1a"), node("b", "c6i.xlarge", "spot", "web", "us-east-1b")]  # fmt: skip
    pods = [pod("a", "1"), pod("b", "2")]
    stubs = Stubs(retries=3, real={"ec2": raw_client("ec2", endpoint="http://127.0.0.1:%d" % closed_port())})
    stubs["ce"].add_client_error("get_cost_and_usage", "ThrottlingException", http_status_code=400)
    _queue_ce(stubs)
    stubs["pricing"].add_client_error("get_products", "AccessDeniedException", "no pricing", http_status_code=400)
    _queue_cw(stubs)
    report, requests = collect.collect(dict(PARAMS), NOW, aws=stubs.aws, cluster_reader=cluster_reader(nodes, pods))
    stubs.done()
    assert requests == {"list": 4}
    # the cluster part is complete, priced from the static table (Pricing denied, no spot history)
    od, spot = table.ON_DEMAND["m6i.large"], table.ON_DEMAND["c6i.xlarge"] * 0.35
    assert report["totals"]["nodes"] == 2 and report["totals"]["hourly"] == round(od + spot, 6)
    assert {n["name"]: n["price_source"] for n in report["nodes"]} == {
        "a": "static-table",
        "b": "static-table x spot_fraction",
    }
    assert report["cost_explorer"]["by_type"]["total"] == 4.0  # after one retry
    assert report["cloudwatch"]["node_cpu_utilization_percent"] == 45.0
    assert report["data_sources"] == {
        "cluster": "ok",
        "cost_explorer": "ok",
        "pricing": "failed",
        "spot_price_history": "failed",
        "cloudwatch": "ok",
    }
    assert report["aws_calls"]["ce:GetCostAndUsage"] == {"attempts": 3, "retries": 1}
    assert report["aws_calls"]["pricing:GetProducts"] == {"attempts": 1, "retries": 0}
    notes = report["notes"]
    assert any(n.startswith("pricing: unavailable, access denied (AccessDeniedException") for n in notes)
    assert any(n.startswith("spot_price_history: unavailable, endpoint unreachable") for n in notes)
    assert not any(n.startswith(("cost_explorer:", "cloudwatch:")) for n in notes), notes


def test_every_aws_source_down_still_reports_the_cluster():
    nodes = [node("a", "m6i.large", "on-demand", "web", "us-east-1a")]
    port = closed_port()
    real = dict(
        (s, raw_client(s, endpoint="http://127.0.0.1:%d" % port)) for s in ("ce", "pricing", "ec2", "cloudwatch")
    )
    stubs = Stubs(real=real)
    report, unused = collect.collect(
        dict(PARAMS), NOW, aws=stubs.aws, cluster_reader=cluster_reader(nodes, [pod("a", "1")])
    )
    assert report["totals"]["hourly"] == table.ON_DEMAND["m6i.large"]
    assert report["totals"]["cpu_utilization"] == 0.25
    failed = [s for s, v in report["data_sources"].items() if v == "failed"]
    assert sorted(failed) == ["cloudwatch", "cost_explorer", "pricing", "spot_price_history"]
    for source in failed:
        assert any(n.startswith(source + ": unavailable, endpoint unreachable") for n in report["notes"]), source
    assert report["cost_explorer"] is None and report["cloudwatch"] is None


# ------------------------------------------------------------------------------------------ regions


def test_other_region_uses_pricing_api_and_flags_static_stand_ins():
    """eu-west-1: Pricing knows m6i.large (its eu-west-1 price is used), not c6i.xlarge (us-east-1 stand-in, flagged)."""
    nodes = [
        node("a", "m6i.large", "on-demand", "web", "eu-west-1a"),
        node("b", "c6i.xlarge", "on-demand", "web", "eu-west-1b"),
    ]
    stubs = Stubs(region="eu-west-1")
    for it, answer in (("c6i.xlarge", []), ("m6i.large", [price_list_entry("m6i.large", "eu-west-1", "0.1070000000")])):
        params = {"ServiceCode": "AmazonEC2", "Filters": caws.pricing_filters(it, "eu-west-1"), "MaxResults": 100}
        stubs["pricing"].add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": answer}, params)
    p = dict(PARAMS, sources=["cluster", "pricing"], region="eu-west-1")
    report, unused = collect.collect(p, NOW, aws=stubs.aws, cluster_reader=cluster_reader(nodes, []))
    stubs.done()
    n = dict((r["name"], r) for r in report["nodes"])
    assert (n["a"]["hourly"], n["a"]["price_source"], n["a"]["price_region"]) == (0.107, "pricing-api", "eu-west-1")
    assert (n["b"]["hourly"], n["b"]["price_source"]) == (table.ON_DEMAND["c6i.xlarge"], "static-table")
    assert (n["b"]["region"], n["b"]["price_region"]) == ("eu-west-1", "us-east-1")
    assert report["prices"]["stand_in_types"] == {"eu-west-1": ["c6i.xlarge"]}
    assert report["prices"]["types_by_source"] == {"pricing-api": ["m6i.large"], "static-table": ["c6i.xlarge"]}
    stand_in = [x for x in report["notes"] if x.startswith("prices:")]
    assert len(stand_in) == 1
    assert "eu-west-1" in stand_in[0] and "c6i.xlarge" in stand_in[0] and "us-east-1" in stand_in[0]
    assert "m6i.large" not in stand_in[0]
    assert any(x == "pricing: no eu-west-1 on-demand Linux price for c6i.xlarge." for x in report["notes"])


def test_pricing_is_asked_for_the_nodes_regions():
    """Nodes in two regions (zone labels): one GetProducts per (region, type), each node priced in its region."""
    nodes = [
        node("a", "m6i.large", "on-demand", "web", "eu-west-1a"),
        node("b", "m6i.large", "on-demand", "web", "us-west-2b"),
    ]
    stubs = Stubs()
    for region, usd in (("eu-west-1", "0.1070000000"), ("us-west-2", "0.0960000000")):
        params = {"ServiceCode": "AmazonEC2", "Filters": caws.pricing_filters("m6i.large", region), "MaxResults": 100}
        answer = {"FormatVersion": "aws_v1", "PriceList": [price_list_entry("m6i.large", region, usd)]}
        stubs["pricing"].add_response("get_products", answer, params)
    p = dict(PARAMS, sources=["cluster", "pricing"], region="us-east-1")
    report, unused = collect.collect(p, NOW, aws=stubs.aws, cluster_reader=cluster_reader(nodes, []))
    stubs.done()
    n = dict((r["name"], r) for r in report["nodes"])
    assert (n["a"]["hourly"], n["a"]["price_region"]) == (0.107, "eu-west-1")
    assert (n["b"]["hourly"], n["b"]["price_region"]) == (0.096, "us-west-2")
    assert report["data_sources"]["pricing"] == "ok" and report["prices"]["stand_in_types"] == {}
    assert not [x for x in report["notes"] if x.startswith(("prices:", "pricing:"))]


def test_an_html_error_page_becomes_one_short_line():
    stubs = Stubs(retries=0)
    body = "<!doctype html>\n<html><title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>" + "x" * 900
    stubs["pricing"].add_client_error("get_products", "500", body, http_status_code=500)
    notes = []
    assert caws.on_demand_prices(stubs.aws, {"m6i.large"}, "us-east-1", notes) == {}
    stubs.done()
    assert len(notes) == 1 and "\n" not in notes[0] and "<" not in notes[0] and "xxx" not in notes[0]
    assert notes[0].startswith(
        'pricing: unavailable, HTTP 500 Internal Server Error: HTML error page "500 Internal Server Error"; '
    )


PROXY_PAGE = (
    "<!DOCTYPE html><html><head><title>403 Forbidden</title><style>body{font-family:sans-serif;color:#333}</style>"
    "<script>var tracker = 1;</script></head><body><h1>Request blocked</h1><p>%s</p></body></html>" % ("y" * 4000)
)


class HtmlErrorEndpoint:
    """A loopback HTTP server answering every request with an HTML error page (a proxy or a wrong endpoint_url),
    so botocore's real response parsing (not a Stubber) builds the error the note is made from."""

    def __init__(self, status):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("content-length") or 0))
                page = PROXY_PAGE.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("status, kind", [(403, "HTTP 403 Forbidden"), (502, "HTTP 502 Bad Gateway")])
def test_html_error_pages_from_a_real_endpoint_are_status_and_title(status, kind):
    """Real botocore parsing of an HTML answer: the note holds the status and the page title, no CSS, no script,
    no body text, whatever the service's protocol (JSON: Cost Explorer, Pricing, CloudWatch; XML: EC2)."""
    endpoint = HtmlErrorEndpoint(status)
    try:
        aws = caws.Aws(
            {"region": "us-east-1", "endpoint_url": endpoint.url, "access_key": "a", "secret_key": "b"},
            retry=caws.Retry(retries=0),
        )
        notes = []
        caws.cost_explorer(aws, "prod", START, END, notes, "eks:eks-cluster-name", "karpenter.sh/nodepool")
        caws.on_demand_prices(aws, {"m6i.large"}, "us-east-1", notes)
        caws.spot_history(aws, {"m6i.large"}, NOW, notes)
        caws.cloudwatch(aws, "prod", START, END, notes)
    finally:
        endpoint.close()
    assert [n.split(":", 1)[0] for n in notes] == ["cost_explorer", "pricing", "spot_price_history", "cloudwatch"]
    for n in notes:
        assert kind in n, n
        assert not any(s in n for s in ("<", "font-family", "tracker", "yyy", "An error occurred")), n
        assert len(n) < 300, n
    # the JSON services hand botocore the page: its title is kept; EC2's XML parser drops it (status only)
    assert 'HTML error page "403 Forbidden"' in notes[0] and 'HTML error page "403 Forbidden"' in notes[3]


def test_one_line_summaries():
    page = "<html><head><style>p{}</style></head><body><h1>Bad &amp; gateway</h1>" + "z" * 9000 + "</body></html>"
    assert fmt.one_line(page) == 'HTML error page "Bad & gateway"'  # no title: the first heading
    assert fmt.one_line("GetProducts failed: " + page) == 'GetProducts failed: HTML error page "Bad & gateway"'
    assert fmt.one_line("<html><body>" + "z" * 9000) == "HTML error page"
    long_text = fmt.one_line("a  b\n\tc <b>d</b> " + "e" * 1000, limit=50)
    assert long_text.startswith("a b c d eee") and len(long_text) == 50 and long_text.endswith("...")
    assert fmt.one_line("x < y and y > z") == "x < y and y > z"  # comparison signs are not a page


def test_pricing_list_parsing():
    entries = [
        price_list_entry("m6i.large", "us-east-1", "0.0000000000"),  # zero (e.g. a reservation line): ignored
        price_list_entry("m6i.large", "us-east-1", "0.0960000000"),
        price_list_entry("m6i.xlarge", "us-east-1", "0.0100000000"),  # another type: ignored
        "not json",
    ]
    assert model.pricing_on_demand(entries, "m6i.large") == 0.096
    assert model.pricing_on_demand([json.loads(entries[1])], "m6i.large") == 0.096  # already decoded
    assert model.pricing_on_demand([], "m6i.large") is None


def test_a_cluster_error_page_is_summarised(monkeypatch):
    """An apiserver behind a proxy that answers with its HTML page: one line in the notes, not the page."""

    def connect(_p, timeout=30):
        raise collect.kclient.KubeError("Bad Gateway: " + PROXY_PAGE, status=502)

    monkeypatch.setattr(collect.kclient, "HAS_KUBERNETES", True)
    monkeypatch.setattr(collect.kclient, "connect", connect)
    notes = []
    assert collect.read_cluster({}, notes) == ([], {}, {})
    assert notes == ['cluster: Kubernetes API error (Bad Gateway: HTML error page "403 Forbidden"); no node data.']
