#!/usr/bin/env python3
"""Molecule verify helper: reads the sandbox's moto state with boto3 and prints it as JSON.

    aws_state.py <cluster> [--deliver]

``--deliver`` also puts a spot interruption event on EventBridge and proves the rule -> queue path: either this
script receives it from the interruption queue (moto delivers EventBridge events to SQS targets), or the sandbox's
Karpenter, which consumes that queue, did (its karpenter_interruption_received_messages_total for spot
interruptions rises). Loopback endpoints only.
"""

import json
import os
import sys
import uuid

import boto3


def spot_messages_received(metrics_url):
    """Karpenter's count of spot interruption messages it received from its queue (None: no metrics URL)."""
    if not metrics_url:
        return None
    import urllib.request

    try:
        text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    except OSError:
        return None
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("karpenter_interruption_received_messages_total{") and "spot" in line.split("}")[0].lower()
    )


def main():
    cluster = sys.argv[1]
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:25055")
    if not endpoint.startswith(("http://127.0.0.1:", "http://localhost:")):
        sys.exit("refusing a non-loopback AWS endpoint: " + endpoint)
    kw = dict(
        endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    iam, sqs, events, ec2 = (boto3.client(s, **kw) for s in ("iam", "sqs", "events", "ec2"))
    out = {"policies": {}, "roles": {}, "rules": {}}
    for pol in iam.list_policies(Scope="Local")["Policies"]:
        if pol["PolicyName"].endswith("-" + cluster):
            doc = iam.get_policy_version(PolicyArn=pol["Arn"], VersionId=pol["DefaultVersionId"])
            out["policies"][pol["PolicyName"]] = doc["PolicyVersion"]["Document"]
    for role in iam.list_roles()["Roles"]:
        if role["RoleName"].endswith("-" + cluster):
            out["roles"][role["RoleName"]] = {
                "trust": role["AssumeRolePolicyDocument"],
                "attached": sorted(
                    p["PolicyArn"]
                    for p in iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
                ),
            }
    out["instance_profiles"] = {
        p["InstanceProfileName"]: [r["RoleName"] for r in p["Roles"]]
        for p in iam.list_instance_profiles()["InstanceProfiles"]
        if p["InstanceProfileName"].endswith("-" + cluster)
    }
    out["oidc_providers"] = [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
    tagged = ec2.describe_tags(
        Filters=[{"Name": "key", "Values": ["karpenter.sh/discovery"]}, {"Name": "value", "Values": [cluster]}]
    )
    out["discovery_tagged"] = sorted({t["ResourceType"] for t in tagged["Tags"]})
    url = sqs.get_queue_url(QueueName=cluster)["QueueUrl"]
    out["queue"] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    for rule in events.list_rules(NamePrefix="Karpenter-" + cluster + "-")["Rules"]:
        out["rules"][rule["Name"]] = {
            "pattern": json.loads(rule["EventPattern"]),
            "targets": [t["Arn"] for t in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]],
        }
    if "--deliver" in sys.argv:
        metrics = os.environ.get("KARPENTER_METRICS_URL", "")
        if not metrics.startswith(("http://127.0.0.1:", "http://localhost:")):
            metrics = ""
        before = spot_messages_received(metrics)  # before the event: the controller may take it at once
        marker = "molecule-" + uuid.uuid4().hex[:8]
        events.put_events(
            Entries=[
                {
                    "Source": "aws.ec2",
                    "DetailType": "EC2 Spot Instance Interruption Warning",
                    "Detail": json.dumps({"instance-id": "i-" + marker, "instance-action": "terminate"}),
                }
            ]
        )
        delivered = []
        for _attempt in range(30):  # up to ~30 s: the controller long-polls the queue and counts after handling
            for msg in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                body = json.loads(msg["Body"])
                if body.get("detail", {}).get("instance-id") == "i-" + marker:
                    delivered.append(body)
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
            if delivered:
                break
            if before is not None and (spot_messages_received(metrics) or 0) > before:
                # the controller took it off the queue first: it arrived there
                delivered.append({"detail-type": "EC2 Spot Instance Interruption Warning", "received_by": "karpenter"})
                break
        out["delivered"] = delivered
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
