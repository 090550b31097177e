"""eventbridge_rules logic against a moto server on loopback (moto implements rules, event patterns and targets, and
delivers events to SQS targets), read back with a plain client; every request the module's client sends is
witnessed.
"""

import json

from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.eventbridge import ensure_rules, validate_rules

QUEUE = "arn:aws:sqs:us-east-1:123456789012:sandbox"
OTHER = "arn:aws:sqs:us-east-1:123456789012:other"
TARGET = {"id": "KarpenterInterruptionQueueTarget", "arn": QUEUE, "role_arn": None, "input": None, "input_path": None}
KINDS = [
    ("ScheduledChange", "aws.health", "AWS Health Event"),
    ("SpotInterruption", "aws.ec2", "EC2 Spot Instance Interruption Warning"),
    ("Rebalance", "aws.ec2", "EC2 Instance Rebalance Recommendation"),
    ("InstanceStateChange", "aws.ec2", "EC2 Instance State-change Notification"),
]


def rule(suffix, source, detail_type, **kw):
    out = {
        "name": "Karpenter-sandbox-" + suffix,
        "event_pattern": {"source": [source], "detail-type": [detail_type]},
        "description": "Karpenter interruption handling for sandbox: " + detail_type,
        "enabled": True,
        "targets": [dict(TARGET)],
        "state": None,
    }
    out.update(kw)
    return out


def params(rules, **kw):
    p = {"rules": rules, "state": "present", "event_bus_name": "default", "purge_targets": True}
    p.update(kw)
    return p


def karpenter_rules(**kw):
    return params([rule(*k) for k in KINDS], **kw)


def run(client, p, check_mode=False):
    return ensure_rules(client, p, check_mode, desired=validate_rules(p))


def state(events):
    out = {}
    for r in events.list_rules()["Rules"]:
        out[r["Name"]] = {
            "pattern": json.loads(r["EventPattern"]),
            "description": r.get("Description"),
            "state": r["State"],
            "targets": sorted(
                (t["Id"], t["Arn"], t.get("Input")) for t in events.list_targets_by_rule(Rule=r["Name"])["Targets"]
            ),
        }
    return out


def test_check_mode_on_empty_account_writes_nothing(aws):
    client, witness, events = aws("events")
    res = run(client, karpenter_rules(), check_mode=True)
    assert res["changed"] is True and [r["changes"] for r in res["rules"]] == [["created", "targets"]] * 4
    assert witness.writes == [] and witness.calls == ["ListRules"]
    assert state(events) == {}
    assert res["diff"][1]["before"] == {}
    assert res["diff"][1]["after"]["event_pattern"] == {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Spot Instance Interruption Warning"],
    }
    assert res["diff"][1]["after"]["targets"] == [{"Id": TARGET["id"], "Arn": QUEUE}]


def test_create_then_noop_sends_no_write(aws):
    client, witness, events = aws("events")
    res = run(client, karpenter_rules())
    assert witness.writes == ["PutRule", "PutTargets"] * 4
    live = state(events)
    assert len(live) == 4 and all(v["targets"] == [(TARGET["id"], QUEUE, None)] for v in live.values())
    assert res["rules"][0]["arn"] == "arn:aws:events:us-east-1:123456789012:rule/Karpenter-sandbox-ScheduledChange"
    # stored as amazon.aws.cloudwatchevent_rule writes and compares it (as text), so going back to it is a no-op too
    stored = events.describe_rule(Name="Karpenter-sandbox-ScheduledChange")["EventPattern"]
    assert stored == json.dumps({"source": ["aws.health"], "detail-type": ["AWS Health Event"]})

    witness.reset()
    again = run(client, karpenter_rules())
    assert again["changed"] is False and again["diff"] == []
    assert witness.writes == []
    assert sorted(witness.calls) == ["ListRules"] + ["ListTargetsByRule"] * 4
    assert state(events) == live


def test_what_the_amazon_aws_module_stored_is_converged(aws):
    """Rules written as amazon.aws.cloudwatchevent_rule wrote them (pattern JSON with spaces, other key order)."""
    client, witness, events = aws("events")
    for suffix, source, detail_type in KINDS:
        name = "Karpenter-sandbox-" + suffix
        events.put_rule(
            Name=name,
            EventPattern=json.dumps({"detail-type": [detail_type], "source": [source]}, indent=2),
            State="ENABLED",
            Description="Karpenter interruption handling for sandbox: " + detail_type,
        )
        events.put_targets(Rule=name, Targets=[{"Id": TARGET["id"], "Arn": QUEUE}])
    assert run(client, karpenter_rules())["changed"] is False
    assert witness.writes == []


def test_changes_check_mode_then_applied(aws):
    client, witness, events = aws("events")
    run(client, karpenter_rules())
    changed = karpenter_rules()
    changed["rules"][0]["event_pattern"]["detail-type"].append("AWS Health Abuse Event")
    changed["rules"][1]["enabled"] = False
    changed["rules"][2]["targets"] = [dict(TARGET, arn=OTHER)]
    changed["rules"][3]["targets"].append(dict(TARGET, id="audit", arn=OTHER, input={"k": "v"}))
    witness.reset()
    before = state(events)

    res = run(client, changed, check_mode=True)
    assert [r["changes"] for r in res["rules"]] == [["event_pattern"], ["state"], ["targets"], ["targets"]]
    assert witness.writes == [] and state(events) == before
    assert res["diff"][1]["before"]["state"] == "ENABLED" and res["diff"][1]["after"]["state"] == "DISABLED"
    assert res["diff"][2]["after"]["targets"] == [{"Id": TARGET["id"], "Arn": OTHER}]

    res = run(client, changed)
    assert sorted(witness.writes) == ["PutRule", "PutRule", "PutTargets", "PutTargets"]
    live = state(events)
    assert live["Karpenter-sandbox-ScheduledChange"]["pattern"]["detail-type"] == [
        "AWS Health Event",
        "AWS Health Abuse Event",
    ]
    assert live["Karpenter-sandbox-SpotInterruption"]["state"] == "DISABLED"
    assert live["Karpenter-sandbox-SpotInterruption"]["description"].endswith("Warning")  # kept
    assert live["Karpenter-sandbox-Rebalance"]["targets"] == [(TARGET["id"], OTHER, None)]
    assert live["Karpenter-sandbox-InstanceStateChange"]["targets"] == [
        (TARGET["id"], QUEUE, None),
        ("audit", OTHER, '{"k":"v"}'),
    ]
    witness.reset()
    assert run(client, changed)["changed"] is False and witness.writes == []


def test_purge_targets(aws):
    client, witness, events = aws("events")
    p = params([rule(*KINDS[0], targets=[dict(TARGET), dict(TARGET, id="extra", arn=OTHER)])])
    run(client, p)
    p["rules"][0]["targets"] = [dict(TARGET)]
    witness.reset()
    assert run(client, p, check_mode=True)["rules"][0]["changes"] == ["targets"] and witness.writes == []
    assert run(client, dict(p, purge_targets=False))["changed"] is False
    res = run(client, p)
    assert witness.writes == ["RemoveTargets"] and res["rules"][0]["changes"] == ["targets"]
    assert state(events)["Karpenter-sandbox-ScheduledChange"]["targets"] == [(TARGET["id"], QUEUE, None)]


def test_targets_not_given_are_left_alone(aws):
    client, witness, events = aws("events")
    run(client, karpenter_rules())
    p = karpenter_rules()
    for r in p["rules"]:
        r["targets"] = None
    witness.reset()
    assert run(client, p)["changed"] is False and witness.writes == []


def test_absent_removes_targets_then_rule(aws):
    client, witness, events = aws("events")
    run(client, karpenter_rules())
    gone = params([{"name": "Karpenter-sandbox-Rebalance", "state": "absent"}])
    witness.reset()
    res = run(client, gone, check_mode=True)
    assert res["changed"] is True and witness.writes == [] and len(state(events)) == 4
    assert res["diff"][0]["after"] == {} and res["diff"][0]["before"]["targets"] == [{"Id": TARGET["id"], "Arn": QUEUE}]
    run(client, gone)
    assert witness.writes == ["RemoveTargets", "DeleteRule"]
    assert "Karpenter-sandbox-Rebalance" not in state(events) and len(state(events)) == 3
    witness.reset()
    assert run(client, gone)["changed"] is False and witness.writes == []


def test_events_reach_the_queue(aws):
    """What the module writes routes a real event: moto delivers it to the SQS target."""
    client, witness, events = aws("events")
    sqs = aws("sqs")[2]
    url = sqs.create_queue(QueueName="sandbox")["QueueUrl"]
    run(client, karpenter_rules())
    events.put_events(
        Entries=[
            {
                "Source": "aws.ec2",
                "DetailType": "EC2 Spot Instance Interruption Warning",
                "Detail": json.dumps({"instance-id": "i-0123456789abcdef0"}),
            }
        ]
    )
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    bodies = [json.loads(m["Body"]) for m in messages]
    assert [b["detail-type"] for b in bodies] == ["EC2 Spot Instance Interruption Warning"]
