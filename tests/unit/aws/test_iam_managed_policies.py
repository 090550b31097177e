"""iam_managed_policies logic against a moto server on loopback (moto implements managed policies, versions, tags,
attachments), read back with a plain client; every request the module's client sends is witnessed.

moto gaps, tested with botocore's Stubber instead: throttling (moto never throttles) - the retry is checked against
the IAM service model with a queued ``Throttling`` error.
"""

import copy
import json

from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.iam_policies import (
    ensure_managed_policies,
    validate_policies,
)
from batchlib import stub_client

DOC = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "A", "Effect": "Allow", "Action": ["ec2:DescribeSubnets", "ec2:DescribeImages"], "Resource": "*"},
        {"Sid": "B", "Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::123456789012:role/n"},
    ],
}
READS = ["ListPolicies"]


def params(*items, **kw):
    p = {"policies": list(items), "state": "present", "tags": None, "purge_tags": True}
    p.update(kw)
    return p


def pol(name, document="default", **kw):
    out = {"name": name, "document": DOC if document == "default" else document, "description": None, "path": "/"}
    out.update(tags=None, state=None)
    out.update(kw)
    return out


def run(client, p, check_mode=False):
    return ensure_managed_policies(client, p, check_mode, desired=validate_policies(p))


def state(iam):
    """Every customer managed policy: versions, default document, description, tags, attachments."""
    out = {}
    for p in iam.list_policies(Scope="Local")["Policies"]:
        arn = p["Arn"]
        got = iam.get_policy(PolicyArn=arn)["Policy"]
        out[p["PolicyName"]] = {
            "path": got["Path"],
            "description": got.get("Description"),
            "default": got["DefaultVersionId"],
            "versions": sorted(v["VersionId"] for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]),
            "document": iam.get_policy_version(PolicyArn=arn, VersionId=got["DefaultVersionId"])["PolicyVersion"][
                "Document"
            ],
            "tags": sorted((t["Key"], t["Value"]) for t in got.get("Tags", [])),
            "roles": sorted(r["RoleName"] for r in iam.list_entities_for_policy(PolicyArn=arn)["PolicyRoles"]),
        }
    return out


def test_check_mode_on_empty_account_writes_nothing_and_diffs_the_documents(aws):
    client, witness, iam = aws("iam")
    p = params(pol("A", description="first"), pol("B", tags={"team": "x"}))
    res = run(client, p, check_mode=True)
    assert res["changed"] is True
    assert [r["changes"] for r in res["policies"]] == [["created"], ["created"]]
    assert witness.writes == [] and witness.calls == READS
    assert state(iam) == {}
    assert [d["before"] for d in res["diff"]] == [{}, {}]
    assert res["diff"][0]["after"]["document"] == DOC and res["diff"][1]["after"]["tags"] == {"team": "x"}


def test_create_then_noop_sends_no_write(aws):
    client, witness, iam = aws("iam")
    p = params(pol("A", description="first"), pol("B"), pol("C", path="/karpenter/"), tags={"team": "x"})
    res = run(client, p)
    assert res["changed"] is True
    assert witness.writes == ["CreatePolicy"] * 3
    live = state(iam)
    assert live["A"]["document"] == DOC and live["A"]["description"] == "first"
    assert live["C"]["path"] == "/karpenter/" and live["B"]["tags"] == [("team", "x")]
    assert [r["arn"] for r in res["policies"]] == [
        "arn:aws:iam::123456789012:policy/A",
        "arn:aws:iam::123456789012:policy/B",
        "arn:aws:iam::123456789012:policy/karpenter/C",
    ]

    witness.reset()
    again = run(client, p)
    assert again["changed"] is False and again["diff"] == []
    assert witness.writes == []
    # one listing, then GetPolicy + GetPolicyVersion per policy, nothing else
    assert sorted(witness.calls) == sorted(READS + ["GetPolicy", "GetPolicyVersion"] * 3)
    assert state(iam) == live
    assert [r["default_version_id"] for r in again["policies"]] == ["v1", "v1", "v1"]


def test_reordered_document_is_no_change(aws):
    client, witness, iam = aws("iam")
    run(client, params(pol("A")))
    other = copy.deepcopy(DOC)
    other["Statement"].reverse()
    other["Statement"][1]["Action"].reverse()
    other["Statement"][0]["Resource"] = ["arn:aws:iam::123456789012:role/n"]
    witness.reset()
    assert run(client, params(pol("A", document=json.dumps(other))))["changed"] is False
    assert witness.writes == []


def test_changed_document_check_mode_then_new_default_version(aws):
    client, witness, iam = aws("iam")
    run(client, params(pol("A")))
    new = copy.deepcopy(DOC)
    new["Statement"][0]["Action"].append("ec2:DescribeInstanceTypes")
    witness.reset()

    res = run(client, params(pol("A", document=new)), check_mode=True)
    assert res["changed"] is True and res["policies"][0]["changes"] == ["document"]
    assert res["diff"][0]["before"]["document"] == DOC and res["diff"][0]["after"]["document"] == new
    assert res["diff"][0]["before"]["tags"] == res["diff"][0]["after"]["tags"]
    assert witness.writes == []
    assert state(iam)["A"]["versions"] == ["v1"]

    res = run(client, params(pol("A", document=new)))
    assert witness.writes == ["CreatePolicyVersion"]
    assert res["policies"][0]["default_version_id"] == "v2"
    live = state(iam)["A"]
    assert live["default"] == "v2" and live["document"] == new


def test_sixth_version_deletes_the_oldest_non_default(aws):
    client, witness, iam = aws("iam")
    run(client, params(pol("A")))
    docs = []
    for i in range(5):
        doc = copy.deepcopy(DOC)
        doc["Statement"][0]["Action"] = ["ec2:Describe%d" % i]
        docs.append(doc)
        run(client, params(pol("A", document=doc)))
    live = state(iam)["A"]
    assert live["default"] == "v6" and live["versions"] == ["v2", "v3", "v4", "v5", "v6"]
    assert live["document"] == docs[-1]
    # the last run: the policy had v1..v5 (v5 default): v1, the oldest, went first
    witness.reset()
    run(client, params(pol("A", document=DOC)))
    assert witness.writes == ["DeletePolicyVersion", "CreatePolicyVersion"]
    assert state(iam)["A"]["versions"] == ["v3", "v4", "v5", "v6", "v7"]


def test_tags_converge_with_and_without_purge(aws):
    client, witness, iam = aws("iam")
    run(client, params(pol("A", tags={"a": "1", "b": "2"})))
    witness.reset()
    res = run(client, params(pol("A", tags={"a": "1", "c": "3"})), check_mode=True)
    assert res["policies"][0]["changes"] == ["tags"] and witness.writes == []
    assert res["diff"][0]["after"]["tags"] == {"a": "1", "c": "3"}
    res = run(client, params(pol("A", tags={"a": "1", "c": "3"})))
    assert sorted(witness.writes) == ["TagPolicy", "UntagPolicy"]
    assert state(iam)["A"]["tags"] == [("a", "1"), ("c", "3")]
    witness.reset()
    res = run(client, params(pol("A", tags={"d": "4"}), purge_tags=False))
    assert witness.writes == ["TagPolicy"]
    assert state(iam)["A"]["tags"] == [("a", "1"), ("c", "3"), ("d", "4")]
    witness.reset()
    assert run(client, params(pol("A")))["changed"] is False  # tags not given: left alone
    assert witness.writes == []


def test_description_and_path_cannot_change_warned_not_written(aws):
    client, witness, iam = aws("iam")
    run(client, params(pol("A", description="one")))
    witness.reset()
    res = run(client, params(pol("A", description="two", path="/other/")))
    assert res["changed"] is False and witness.writes == []
    assert len(res["warnings"]) == 2
    assert "cannot change a policy's path" in res["warnings"][0]
    assert "cannot change a policy's description" in res["warnings"][1]


def test_name_match_is_case_insensitive(aws):
    client, witness, iam = aws("iam")
    run(client, params(pol("KarpenterPolicy")))
    witness.reset()
    assert run(client, params(pol("karpenterpolicy")))["changed"] is False
    assert witness.writes == []


def test_absent_detaches_deletes_versions_and_policy(aws):
    client, witness, iam = aws("iam")
    run(client, params(pol("A"), pol("B")))
    new = copy.deepcopy(DOC)
    new["Statement"].pop()
    run(client, params(pol("A", document=new)))
    iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    iam.attach_role_policy(RoleName="r", PolicyArn="arn:aws:iam::123456789012:policy/A")
    witness.reset()

    res = run(client, params(pol("A", document=None), state="absent"), check_mode=True)
    assert res["changed"] is True and witness.writes == []
    assert res["diff"][0]["after"] == {} and res["diff"][0]["before"]["document"] == new
    assert "A" in state(iam)

    res = run(client, params(pol("A", document=None), state="absent"))
    assert witness.writes == ["DetachRolePolicy", "DeletePolicyVersion", "DeletePolicy"]
    assert sorted(state(iam)) == ["B"]
    assert iam.list_attached_role_policies(RoleName="r")["AttachedPolicies"] == []
    witness.reset()
    assert run(client, params(pol("A", document=None), state="absent"))["changed"] is False
    assert witness.writes == []


def test_mixed_batch_per_item_state(aws):
    client, witness, iam = aws("iam")
    run(client, params(pol("A"), pol("B")))
    witness.reset()
    res = run(client, params(pol("A"), pol("B", document=None, state="absent"), pol("C")))
    assert [r["changes"] for r in res["policies"]] == [[], ["deleted"], ["created"]]
    assert sorted(state(iam)) == ["A", "C"]


def test_throttling_is_retried_stubbed():
    """moto never throttles: the retry on ``Throttling`` is checked with botocore's Stubber (IAM model)."""
    from botocore.stub import Stubber

    client, raw = stub_client("iam")
    listed = {
        "Policies": [
            {
                "PolicyName": "A",
                "Arn": "arn:aws:iam::123456789012:policy/A",
                "Path": "/",
                "DefaultVersionId": "v1",
            }
        ],
        "IsTruncated": False,
    }
    with Stubber(raw) as stub:
        stub.add_client_error("list_policies", "Throttling", "Rate exceeded", 400)
        stub.add_response("list_policies", listed, {"Scope": "Local"})
        stub.add_client_error("get_policy", "Throttling", "Rate exceeded", 400)
        stub.add_response(
            "get_policy", {"Policy": dict(listed["Policies"][0], Tags=[])}, {"PolicyArn": listed["Policies"][0]["Arn"]}
        )
        stub.add_response(
            "get_policy_version",
            {"PolicyVersion": {"Document": json.dumps(DOC), "VersionId": "v1", "IsDefaultVersion": True}},
            {"PolicyArn": listed["Policies"][0]["Arn"], "VersionId": "v1"},
        )
        res = run(client, params(pol("A")))
        stub.assert_no_pending_responses()
    assert res["changed"] is False
