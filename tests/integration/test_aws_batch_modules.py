"""The batch AWS modules (ec2_tags, eventbridge_rules, iam_managed_policies) through ansible-playbook, in the roles
that use them, against a private moto server on loopback that records every request it receives.

Witness: moto's own request recorder (``MOTO_ENABLE_RECORDING``), not the modules' counters. Each request is
attributed by its user agent (the batch modules send ``karpenter_eks.platform/<module>``) and classified by its
operation (``X-Amz-Target`` or the query ``Action``): Describe/Get/List are reads, everything else is a write.

* the karpenter role's AWS half alone (``tasks_from: aws``) reads the account itself and converges;
* cluster role + karpenter AWS half (as site.yml runs them): the karpenter play reads no account (the cluster role's
  fact is reused); a second run is changed=0 and our modules send reads only, in the planned number;
* ``--check --diff`` with drifted inputs reports the changes and nothing at all is written to moto;
* a changed policy document is exactly one CreatePolicyVersion, then converged again;
* bad input fails naming the field, before a single request.

No Kubernetes: this needs neither the sandbox nor a cluster (the karpenter role's Helm/NodePool half is not run).
"""

import base64
import json
import os
import sys
import time
import urllib.parse
import urllib.request

import pytest
import yaml
from awslib import aws_client, changed_tasks, moto_server, run_playbook, task_results

CLUSTER = "batch"
UA = "karpenter_eks.platform/"
READS = ("Describe", "Get", "List")


class RecordedMoto:
    def __init__(self, endpoint, recording):
        self.endpoint = endpoint
        self.recording = recording

    def reset(self):
        req = urllib.request.Request(self.endpoint + "/moto-api/recorder/reset-recording", method="POST")
        urllib.request.urlopen(req, timeout=10).read()

    def requests(self):
        """[(operation, user agent)] of every request since the last reset."""
        if not os.path.exists(self.recording):
            return []
        out = []
        with open(self.recording) as f:
            for line in f:
                if line.strip():
                    entry = json.loads(line)
                    headers = dict((k.lower(), v) for k, v in entry["headers"].items())
                    out.append((_operation(entry, headers), headers.get("user-agent", "")))
        return out

    def writes(self, module=None):
        return [op for op, ua in self.requests() if not op.startswith(READS) and (module is None or UA + module in ua)]

    def calls(self, module):
        return sorted(op for op, ua in self.requests() if UA + module in ua)

    def client(self, service):
        return aws_client(self.endpoint, service)


def _operation(entry, headers):
    target = headers.get("x-amz-target")
    if target:
        return target.split(".")[-1]
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(entry["url"]).query)
    query.update(urllib.parse.parse_qs(body))
    return query.get("Action", ["?"])[0]


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    d = tmp_path_factory.mktemp("moto")
    recording = d / "recording.jsonl"
    with moto_server(str(d), {"MOTO_ENABLE_RECORDING": "true", "MOTO_RECORDER_FILEPATH": str(recording)}) as endpoint:
        yield RecordedMoto(endpoint, str(recording))


AUTH = {"region": "us-east-1", "endpoint_url": "{{ endpoint }}", "access_key": "testing", "secret_key": "testing"}
DEFAULTS = {
    "group/amazon.aws.aws": AUTH,
    "group/community.aws.aws": AUTH,
    "group/karpenter_eks.platform.aws": AUTH,
}
CLUSTER_PLAY = {
    "name": "cluster role",
    "hosts": "localhost",
    "gather_facts": False,
    "module_defaults": DEFAULTS,
    "roles": [
        {
            "role": "karpenter_eks.platform.cluster",
            "vars": {
                "cluster_name": CLUSTER,
                "cluster_region": "us-east-1",
                "cluster_vpc_create": True,
                "cluster_vpc_cidr": "10.42.0.0/16",
                "cluster_vpc_subnets": [
                    {"cidr": "10.42.0.0/19", "az": "us-east-1a"},
                    {"cidr": "10.42.32.0/19", "az": "us-east-1b"},
                ],
                "cluster_manage_access_entry": False,
                "cluster_manage_addons": False,
                "cluster_oidc_provider_create": False,
            },
        }
    ],
}
KARPENTER_PLAY = {
    "name": "karpenter role, AWS half",
    "hosts": "localhost",
    "gather_facts": False,
    "module_defaults": DEFAULTS,
    "tasks": [
        {
            "name": "Karpenter controller IAM, interruption queue and rules",
            "ansible.builtin.include_role": {"name": "karpenter_eks.platform.karpenter", "tasks_from": "aws"},
            "vars": {
                "karpenter_cluster_name": CLUSTER,
                "karpenter_region": "us-east-1",
                "karpenter_manage_pod_identity_association": False,
            },
        }
    ],
}


def playbook(moto, tmp_path, plays, *args, extra_vars=None):
    path = tmp_path / ("play-%d.yml" % time.monotonic_ns())
    path.write_text(yaml.safe_dump(plays, sort_keys=False))
    evars = dict(extra_vars or {}, endpoint=moto.endpoint, ansible_python_interpreter=sys.executable)
    return run_playbook(["-i", "localhost,", "-c", "local", str(path), *args], moto.endpoint, extra_vars=evars)


def aws_state(moto):
    iam, events, ec2 = moto.client("iam"), moto.client("events"), moto.client("ec2")
    out = {"policies": {}, "rules": {}}
    for p in iam.list_policies(Scope="Local")["Policies"]:
        arn = p["Arn"]
        out["policies"][p["PolicyName"]] = {
            "versions": sorted(v["VersionId"] for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]),
            "document": iam.get_policy_version(PolicyArn=arn, VersionId=p["DefaultVersionId"])["PolicyVersion"][
                "Document"
            ],
            "tags": iam.list_policy_tags(PolicyArn=arn)["Tags"],
            "roles": sorted(r["RoleName"] for r in iam.list_entities_for_policy(PolicyArn=arn)["PolicyRoles"]),
        }
    for r in events.list_rules()["Rules"]:
        out["rules"][r["Name"]] = {
            "pattern": json.loads(r["EventPattern"]),
            "description": r.get("Description"),
            "state": r["State"],
            "targets": [(t["Id"], t["Arn"]) for t in events.list_targets_by_rule(Rule=r["Name"])["Targets"]],
        }
    out["tags"] = sorted(
        (t["ResourceId"], t["Key"], t["Value"])
        for t in ec2.describe_tags(Filters=[{"Name": "key", "Values": ["karpenter.sh/discovery"]}])["Tags"]
    )
    return out


@pytest.fixture(scope="module")
def converged(moto, tmp_path_factory):
    """The karpenter AWS half alone first (the role reads the account itself), then both roles as site.yml runs them."""
    tmp = tmp_path_factory.mktemp("plays")
    moto.reset()
    alone = playbook(moto, tmp, [KARPENTER_PLAY])
    assert alone["rc"] == 0, json.dumps(alone)[-3000:]
    alone_requests = moto.requests()
    both = playbook(moto, tmp, [CLUSTER_PLAY, KARPENTER_PLAY])
    assert both["rc"] == 0, json.dumps(both)[-3000:]
    return tmp, alone, alone_requests, both


def test_the_karpenter_half_alone_reads_the_account_and_converges(moto, converged):
    unused, alone, alone_requests, both = converged
    assert [op for op, ua in alone_requests if op == "GetCallerIdentity"] == ["GetCallerIdentity"]
    assert task_results(alone, "(unless karpenter_aws_account_id is known)")[0].get("skipped") is not True
    state = aws_state(moto)
    names = sorted(state["policies"])
    assert names == sorted(
        "KarpenterController%sPolicy-%s" % (n, CLUSTER)
        for n in ("NodeLifecycle", "IAMIntegration", "EKSIntegration", "ResourceDiscovery", "Interruption")
    )
    assert all(p["roles"] == ["KarpenterControllerRole-" + CLUSTER] for p in state["policies"].values())
    assert all(p["versions"] == ["v1"] for p in state["policies"].values())
    queue = "arn:aws:sqs:us-east-1:123456789012:" + CLUSTER
    assert sorted(state["rules"]) == sorted(
        "Karpenter-%s-%s" % (CLUSTER, n)
        for n in ("ScheduledChange", "SpotInterruption", "Rebalance", "InstanceStateChange")
    )
    assert all(r["targets"] == [("KarpenterInterruptionQueueTarget", queue)] for r in state["rules"].values())
    spot = state["rules"]["Karpenter-%s-SpotInterruption" % CLUSTER]
    assert spot["pattern"] == {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]}
    # the cluster role then tagged its subnets and security group in one task
    tagged = set(r for r, unused_key, value in state["tags"] if value == CLUSTER)
    assert (
        len([r for r in tagged if r.startswith("subnet-")]) == 2
        and len([r for r in tagged if r.startswith("sg-")]) == 1
    )
    tagging = task_results(both, "Tag subnets and security groups with the Karpenter discovery tag")[0]
    assert sorted(tagging["subnet_ids"] + tagging["security_group_ids"]) == sorted(tagged)


def test_second_run_is_changed_0_and_our_modules_only_read(moto, converged):
    tmp = converged[0]
    before = aws_state(moto)
    moto.reset()
    out = playbook(moto, tmp, [CLUSTER_PLAY, KARPENTER_PLAY])
    assert out["rc"] == 0 and changed_tasks(out) == [], changed_tasks(out)
    assert aws_state(moto) == before
    for module in ("ec2_tags", "eventbridge_rules", "iam_managed_policies"):
        assert moto.writes(module) == [], module
    # what each batch task sends on a converged account: one read (per kind and resource), nothing else
    assert moto.calls("ec2_tags") == ["DescribeTags"]
    assert moto.calls("eventbridge_rules") == ["ListRules"] + ["ListTargetsByRule"] * 4
    assert moto.calls("iam_managed_policies") == ["GetPolicy"] * 5 + ["GetPolicyVersion"] * 5 + ["ListPolicies"]
    # the karpenter play reads no account: the cluster role's fact is reused (amazon.aws's ec2_security_group
    # reads it too, so the STS requests cannot simply be counted)
    assert task_results(out, "(unless karpenter_aws_account_id is known)")[0].get("skipped") is True
    for suffix in ("Route interruption events to the queue", "Create the controller's managed policies"):
        assert task_results(out, suffix)[0]["requests"]["writes"] == []


def test_check_mode_with_drift_reports_the_change_and_writes_nothing(moto, converged):
    tmp = converged[0]
    before = aws_state(moto)
    moto.reset()
    drift = {
        "karpenter_tags": {"team": "platform"},
        "karpenter_capacity_reservation_interruption_rule": True,
        "karpenter_ssm_parameter_prefixes": ["/aws/service/*", "/custom/*"],
        "cluster_discovery_tag_value": "other",
    }
    out = playbook(moto, tmp, [CLUSTER_PLAY, KARPENTER_PLAY], "--check", "--diff", extra_vars=drift)
    assert out["rc"] == 0, json.dumps(out)[-3000:]
    assert moto.writes() == [], moto.writes()  # no module of the two roles wrote anything
    assert aws_state(moto) == before

    rules = task_results(out, "Route interruption events to the queue")[0]
    assert rules["changed"] is True
    assert [d["after_header"] for d in rules["diff"]] == [
        "EventBridge rule Karpenter-%s-CapacityReservationInterruption (bus default)" % CLUSTER
    ]
    policies = task_results(out, "Create the controller's managed policies")[0]
    discovery = [d for d in policies["diff"] if "ResourceDiscovery" in d["after_header"]][0]
    assert "arn:aws:ssm:us-east-1:123456789012:parameter/custom/*" in json.dumps(discovery["after"]["document"])
    assert "parameter/custom/*" not in json.dumps(discovery["before"]["document"])
    assert all(d["after"]["tags"] == {"team": "platform"} for d in policies["diff"])
    assert len(policies["diff"]) == 5
    tagging = task_results(out, "Tag subnets and security groups with the Karpenter discovery tag")[0]
    assert len(tagging["diff"]) == 3
    assert all(d["after"]["tags"]["karpenter.sh/discovery"] == "other" for d in tagging["diff"])


def test_a_changed_document_is_one_new_version(moto, converged):
    tmp = converged[0]
    moto.reset()
    drift = {"karpenter_ssm_parameter_prefixes": ["/aws/service/*", "/custom/*"]}
    out = playbook(moto, tmp, [CLUSTER_PLAY, KARPENTER_PLAY], extra_vars=drift)
    assert out["rc"] == 0 and changed_tasks(out) == ["Create the controller's managed policies"], changed_tasks(out)
    assert moto.writes("iam_managed_policies") == ["CreatePolicyVersion"]
    assert moto.writes("eventbridge_rules") == [] and moto.writes("ec2_tags") == []
    state = aws_state(moto)["policies"]["KarpenterControllerResourceDiscoveryPolicy-" + CLUSTER]
    assert state["versions"] == ["v1", "v2"] and "parameter/custom/*" in json.dumps(state["document"])
    moto.reset()
    again = playbook(moto, tmp, [CLUSTER_PLAY, KARPENTER_PLAY], extra_vars=drift)
    assert again["rc"] == 0 and changed_tasks(again) == []
    assert moto.writes("iam_managed_policies") == []


@pytest.mark.parametrize(
    "task, message",
    [
        (
            {
                "karpenter_eks.platform.iam_managed_policies": {
                    "policies": [
                        {
                            "name": "Good",
                            "document": {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]},
                        },
                        {
                            "name": "Bad",
                            "document": {"Statement": [{"Effect": "Permit", "Action": "s3:*", "Resource": "*"}]},
                        },
                    ]
                }
            },
            "policies[1] (Bad).document.Statement[0].Effect: must be Allow or Deny",
        ),
        (
            {
                "karpenter_eks.platform.eventbridge_rules": {
                    "rules": [
                        {"name": "R", "event_pattern": "{not json", "targets": [{"id": "t", "arn": "arn:aws:sqs:::q"}]}
                    ]
                }
            },
            "rules[0] (R).event_pattern: not valid JSON",
        ),
        (
            {
                "karpenter_eks.platform.ec2_tags": {
                    "resources": ["subnet-0123456789abcdef0", "my-subnet"],
                    "tags": {"k": "v"},
                }
            },
            "resources[1]: 'my-subnet' is not an EC2 resource id",
        ),
    ],
)
def test_bad_input_fails_naming_the_field_before_any_request(moto, tmp_path, task, message):
    moto.reset()
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": DEFAULTS,
        "tasks": [dict(task, name="bad input")],
    }
    out = playbook(moto, tmp_path, [play])
    res = task_results(out, "bad input")[0]
    assert out["rc"] != 0 and res["failed"] is True
    assert message in res["msg"], res["msg"]
    assert "Traceback" not in json.dumps(res) and res.get("exception") in (None, "(traceback unavailable)")
    assert [op for op, ua in moto.requests() if UA in ua] == []


def test_features_turned_off_are_deleted(moto, converged):
    """Zonal shift, the capacity-reservation rule and the whole interruption queue: on, then off again."""
    tmp = converged[0]
    plays = [CLUSTER_PLAY, KARPENTER_PLAY]
    zonal = "KarpenterControllerZonalShiftPolicy-" + CLUSTER
    interruption = "KarpenterControllerInterruptionPolicy-" + CLUSTER
    reservation_rule = "Karpenter-%s-CapacityReservationInterruption" % CLUSTER
    role = "KarpenterControllerRole-" + CLUSTER
    on = {"karpenter_enable_zonal_shift": True, "karpenter_capacity_reservation_interruption_rule": True}
    assert playbook(moto, tmp, plays, extra_vars=on)["rc"] == 0
    state = aws_state(moto)
    assert state["policies"][zonal]["roles"] == [role] and reservation_rule in state["rules"]

    # back to the defaults: --check --diff shows both deletions and writes nothing
    moto.reset()
    check = playbook(moto, tmp, plays, "--check", "--diff")
    assert check["rc"] == 0 and moto.writes() == [], moto.writes()
    rules = task_results(check, "Route interruption events to the queue")[0]
    (deletion,) = rules["diff"]
    assert deletion["after_header"] == "EventBridge rule %s (bus default)" % reservation_rule
    assert deletion["before"]["name"] == reservation_rule and deletion["after"] == {}
    policies = task_results(check, "Create the controller's managed policies")[0]
    assert [p["name"] for p in policies["policies"] if p["changed"]] == [zonal]
    out = playbook(moto, tmp, plays)
    assert out["rc"] == 0, json.dumps(out)[-3000:]
    state = aws_state(moto)
    assert zonal not in state["policies"] and reservation_rule not in state["rules"]
    attached = moto.client("iam").list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert sorted(p["PolicyName"] for p in attached) == sorted(state["policies"])  # the five left, all attached
    moto.reset()
    again = playbook(moto, tmp, plays)
    assert again["rc"] == 0 and changed_tasks(again) == [], changed_tasks(again)

    # the queue turned off: its rules, the queue and the Interruption policy go; a rerun is a no-op
    off = {"karpenter_interruption_queue_enabled": False}
    out = playbook(moto, tmp, plays, extra_vars=off)
    assert out["rc"] == 0, json.dumps(out)[-3000:]
    state = aws_state(moto)
    assert interruption not in state["policies"] and len(state["policies"]) == 4
    assert [r for r in state["rules"] if r.startswith("Karpenter-%s-" % CLUSTER)] == []
    assert moto.client("sqs").list_queues().get("QueueUrls", []) == []
    again = playbook(moto, tmp, plays, extra_vars=off)
    assert again["rc"] == 0 and changed_tasks(again) == [], changed_tasks(again)

    # and on again: everything is back, as the converged fixture left it
    assert playbook(moto, tmp, plays)["rc"] == 0
    assert sorted(aws_state(moto)["rules"]) == sorted(converged_rules())
    assert len(aws_state(moto)["policies"]) == 5


def converged_rules():
    return [
        "Karpenter-%s-%s" % (CLUSTER, n)
        for n in ("ScheduledChange", "SpotInterruption", "Rebalance", "InstanceStateChange")
    ]
