"""The cluster role on a private moto (site.yml ``--tags cluster``): the EBS KMS key and the version check.

EBS key:
moto implements KMS (create_key, aliases, key policies, tags, enable/get_key_rotation_status), so the key is
checked as created, not mocked: it exists under ``alias/<cluster>-ebs`` with automatic rotation on, the key policy
has the account-root and the EC2-only (``kms:ViaService``) statements, the ARN is exported as the fact the
EC2NodeClasses use, a second run changes nothing and ``--check --diff`` on the converged state neither reports a
change nor alters moto's KMS state. The key policy template (with and without the Auto Scaling service-linked role)
and the inventories' kmsKeyID wiring are checked offline.

Version check (module eks_cluster_version): moto implements DescribeCluster but not UpdateClusterVersion or
DescribeUpdate, so here only what needs no write is run for real - equal versions (no change), every refused
version (the play fails at that task, before any write) and check mode of an allowed upgrade (reported, not sent;
the cluster's version in moto is unchanged). The upgrade itself is tested with botocore's Stubber in
tests/unit/aws/test_eks_cluster_version.py.
"""

import json
import os
import subprocess
import sys
import urllib.request

import pytest
from awslib import ROOT, aws_client, changed_tasks, task_results
from sitelib import run_site

CLUSTER = "sandbox"  # inventories/local (cluster_kubernetes_version 1.36)
ALIAS = "alias/sandbox-ebs"
VERSION_TASK = "Check the Kubernetes version of the existing EKS cluster (upgrade one minor when allowed)"


def kms_state(endpoint):
    """Everything the role manages on KMS keys, as comparable data."""
    kms = aws_client(endpoint, "kms")
    out = {"aliases": sorted((a["AliasName"], a.get("TargetKeyId")) for a in kms.list_aliases()["Aliases"])}
    for key in kms.list_keys()["Keys"]:
        kid = key["KeyId"]
        meta = kms.describe_key(KeyId=kid)["KeyMetadata"]
        out[kid] = {
            "meta": {k: meta.get(k) for k in ("Description", "Enabled", "KeyState", "KeySpec", "KeyUsage")},
            "rotation": kms.get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"],
            "policy": json.loads(kms.get_key_policy(KeyId=kid, PolicyName="default")["Policy"]),
            "tags": kms.list_resource_tags(KeyId=kid)["Tags"],
        }
    return out


CREATE_DELAY = 4  # seconds the new EKS cluster stays CREATING in the emulator (EKS takes ~10 min)
WAIT_TASK = "Wait for the EKS cluster to be ACTIVE (DescribeCluster every cluster_eks_wait_poll seconds)"


def set_create_delay(endpoint, seconds):
    req = urllib.request.Request(
        endpoint + "/sandbox-api/eks-create-delay",
        data=json.dumps({"seconds": seconds}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.load(resp) == {"seconds": float(seconds)}


@pytest.fixture(scope="module")
def converged(private_moto):
    set_create_delay(private_moto, CREATE_DELAY)  # the first run creates the cluster and must wait for it
    first = run_site(private_moto, "--tags", "cluster", extra_vars={"cluster_eks_wait_poll": 1})
    set_create_delay(private_moto, 0)
    assert first["rc"] == 0 and first["stats"]["sandbox"]["failures"] == 0, json.dumps(first)[-3000:]
    return private_moto, first


def test_key_exists_with_rotation_enabled(converged):
    endpoint, unused = converged
    kms = aws_client(endpoint, "kms")
    alias = [a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == ALIAS]
    assert len(alias) == 1, kms.list_aliases()["Aliases"]
    key_id = alias[0]["TargetKeyId"]
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["Enabled"] is True and meta["KeyState"] == "Enabled"
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT" and meta["KeyUsage"] == "ENCRYPT_DECRYPT"  # EBS needs symmetric
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}
    assert tags["Name"] == "sandbox-ebs"


def test_key_policy_allows_root_and_ebs_through_ec2_only(converged):
    endpoint, unused = converged
    kms = aws_client(endpoint, "kms")
    key_id = kms.describe_key(KeyId=ALIAS)["KeyMetadata"]["KeyId"]  # GetKeyPolicy takes no alias (like AWS)
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert set(by_sid) == {"EnableIAMPoliciesOfTheAccount", "AllowEBSThroughEC2ForPrincipalsOfTheAccount"}
    root = by_sid["EnableIAMPoliciesOfTheAccount"]
    assert root["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"} and root["Action"] == "kms:*"
    ebs = by_sid["AllowEBSThroughEC2ForPrincipalsOfTheAccount"]
    assert "kms:CreateGrant" in ebs["Action"] and "kms:GenerateDataKey*" in ebs["Action"]
    assert "kms:*" not in ebs["Action"] and "kms:PutKeyPolicy" not in ebs["Action"]
    assert ebs["Condition"] == {
        "StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com", "kms:CallerAccount": "123456789012"}
    }


def test_key_arn_is_exported_as_fact(converged):
    endpoint, first = converged
    arn = aws_client(endpoint, "kms").describe_key(KeyId=ALIAS)["KeyMetadata"]["Arn"]
    (exported,) = task_results(first, "Export the EBS key ARN (cluster_ebs_kms_key_arn)")
    assert exported["ansible_facts"]["cluster_ebs_kms_key_arn"] == arn
    assert ":key/" in arn


def test_second_run_changes_nothing(converged):
    endpoint, unused = converged
    second = run_site(endpoint, "--tags", "cluster")
    assert second["rc"] == 0
    assert changed_tasks(second) == []
    assert second["stats"]["sandbox"]["changed"] == 0
    (version,) = task_results(second, VERSION_TASK)
    assert version["changed"] is False and version["cluster"]["version"] == "1.36"
    assert version["msg"] == "EKS cluster sandbox already runs Kubernetes 1.36"
    (ready,) = task_results(second, WAIT_TASK)
    assert ready.get("skipped") is True, ready  # an ACTIVE cluster costs no DescribeCluster loop


def test_check_mode_on_converged_state_changes_nothing(converged):
    endpoint, unused = converged
    before = kms_state(endpoint)
    out = run_site(endpoint, "--tags", "cluster", "--check", "--diff")
    assert out["rc"] == 0 and changed_tasks(out) == []
    assert kms_state(endpoint) == before


def test_check_mode_reports_a_drifted_policy_without_writing(converged):
    """A different key policy (Auto Scaling statements on) is reported as a change in --check and not written."""
    endpoint, unused = converged
    before = kms_state(endpoint)
    out = run_site(
        endpoint, "--tags", "cluster", "--check", extra_vars={"cluster_ebs_kms_key_autoscaling_access": True}
    )
    assert out["rc"] == 0
    assert [t for t in changed_tasks(out) if t.endswith("Create the EBS KMS key with automatic rotation")]
    assert kms_state(endpoint) == before


def test_other_tag_selections_only_read_the_key(converged):
    """A tag selection that applies no EC2NodeClass (here one no task has, like --tags security for the cluster
    play) only looks the key up: later plays' argument validation still knows its ARN, nothing is written."""
    endpoint, unused = converged
    arn = aws_client(endpoint, "kms").describe_key(KeyId=ALIAS)["KeyMetadata"]["Arn"]
    out = run_site(endpoint, "--tags", "no-such-tag")
    assert out["rc"] == 0 and changed_tasks(out) == []
    assert task_results(out, "Create the EBS KMS key with automatic rotation") == []
    (found,) = task_results(out, "Export the EBS key ARN found by alias (cluster_ebs_kms_key_arn)")
    assert found["ansible_facts"]["cluster_ebs_kms_key_arn"] == arn


# ---------------------------------------------------------------- version check on the existing cluster


def moto_state(endpoint):
    eks = aws_client(endpoint, "eks")
    return kms_state(endpoint), eks.describe_cluster(name=CLUSTER)["cluster"]["version"]


def test_first_run_leaves_a_missing_cluster_to_eks_cluster(converged):
    unused, first = converged
    (version,) = task_results(first, VERSION_TASK)
    assert version["changed"] is False and version["msg"] == "EKS cluster sandbox does not exist"
    (created,) = task_results(first, "Create the EKS cluster")
    assert created["changed"] is True and created["version"] == "1.36"


def test_first_run_waits_for_the_new_cluster_to_be_active(converged):
    endpoint, first = converged
    (created,) = task_results(first, "Create the EKS cluster")
    assert created["status"] == "CREATING"  # the emulator's delay: EKS answers CreateCluster with CREATING
    (ready,) = task_results(first, WAIT_TASK)
    # a DescribeCluster a second (plus the module's own run time) until ACTIVE: more than one attempt, the last
    # one saw ACTIVE
    assert 2 <= ready["attempts"] <= CREATE_DELAY + 3, ready
    assert ready["cluster"]["status"] == "ACTIVE" and ready["changed"] is False
    # the OIDC provider was made from the issuer the wait saw (eks_cluster's CREATING answer is not relied on)
    iam = aws_client(endpoint, "iam")
    urls = [
        iam.get_open_id_connect_provider(OpenIDConnectProviderArn=p["Arn"])["Url"]
        for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    ]
    assert ready["cluster"]["oidc_issuer"].removeprefix("https://") in urls, (urls, ready["cluster"])


@pytest.mark.parametrize(
    "desired, allow, expected",
    [
        ("1.35", True, "cannot downgrade"),
        ("1.38", True, "one minor version at a time"),
        ("1.37", False, "cluster_allow_version_upgrade: true"),
    ],
)
def test_refused_versions_fail_before_any_write(converged, desired, allow, expected):
    endpoint, unused = converged
    before = moto_state(endpoint)
    out = run_site(
        endpoint,
        "--tags",
        "cluster",
        extra_vars={"cluster_kubernetes_version": desired, "cluster_allow_version_upgrade": allow},
    )
    assert out["rc"] != 0
    # the preflight play (first in site.yml) asks the same question read-only and stops the run there
    (preflight,) = task_results(out, "Check the EKS cluster")
    assert preflight["failed"] is True and expected in preflight["msg"]
    assert task_results(out, VERSION_TASK) == []  # the cluster play did not start
    assert changed_tasks(out) == []
    # without the preflight, the cluster role refuses it itself, before any write
    out = run_site(
        endpoint,
        "--tags",
        "cluster",
        extra_vars={
            "cluster_kubernetes_version": desired,
            "cluster_allow_version_upgrade": allow,
            "karpenter_eks_preflight": False,
        },
    )
    assert out["rc"] != 0
    (version,) = task_results(out, VERSION_TASK)
    assert version["failed"] is True and expected in version["msg"]
    assert changed_tasks(out) == []
    assert task_results(out, "Create the EBS KMS key with automatic rotation") == []  # failed before it
    assert moto_state(endpoint) == before


def test_check_mode_reports_an_allowed_upgrade_without_sending_it(converged):
    """moto has no UpdateClusterVersion: a write attempt would fail the run, so rc 0 also proves none was sent."""
    endpoint, unused = converged
    before = moto_state(endpoint)
    out = run_site(
        endpoint,
        "--tags",
        "cluster",
        "--check",
        "--diff",
        extra_vars={"cluster_kubernetes_version": "1.37", "cluster_allow_version_upgrade": True},
    )
    assert out["rc"] == 0, json.dumps(out)[-3000:]
    (version,) = task_results(out, VERSION_TASK)
    assert version["changed"] is True and version["diff"] == {
        "before": {"version": "1.36"},
        "after": {"version": "1.37"},
    }
    assert "node groups" in version["next_steps"]
    (cluster,) = task_results(out, "Create the EKS cluster")
    assert cluster.get("failed") is not True and cluster["version"] == "1.36"  # got the live version, not 1.37
    assert moto_state(endpoint) == before


# ---------------------------------------------------------------- offline: template and inventory wiring


def test_key_policy_template(rendered):
    default = json.loads((rendered / "ebs-kms-key-policy.json").read_text())
    assert [s["Sid"] for s in default["Statement"]] == [
        "EnableIAMPoliciesOfTheAccount",
        "AllowEBSThroughEC2ForPrincipalsOfTheAccount",
    ]
    asg = json.loads((rendered / "ebs-kms-key-policy-autoscaling.json").read_text())
    extra = {s["Sid"]: s for s in asg["Statement"][2:]}
    slr = "arn:aws:iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    assert {s["Principal"]["AWS"] for s in extra.values()} == {slr}
    grant = extra["AllowAttachmentOfPersistentResources"]
    assert grant["Action"] == "kms:CreateGrant"
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


NODECLASSES = """
- name: Template the inventory's EC2NodeClasses
  hosts: eks_clusters
  gather_facts: false
  tasks:
    - name: Show them
      ansible.builtin.debug:
        msg: "{{ karpenter_ec2nodeclasses }}"
"""


@pytest.mark.parametrize("inventory", ["local", "dev", "staging", "prod"])
def test_every_ebs_mapping_uses_the_key(inventory, tmp_path):
    playbook = tmp_path / "nodeclasses.yml"
    playbook.write_text(NODECLASSES)
    arn = "arn:aws:kms:us-east-1:123456789012:key/0f0e0d0c-0b0a-0908-0706-050403020100"
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
    )
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", f"inventories/{inventory}"]

    def run(*extra):
        res = subprocess.run(
            [*cmd, str(playbook), *extra], capture_output=True, text=True, env=env, cwd=ROOT, check=False
        )
        return res.returncode, json.loads(res.stdout)

    rc, out = run("-e", json.dumps({"cluster_ebs_kms_key_arn": arn}))
    assert rc == 0
    (host,) = out["plays"][0]["tasks"][0]["hosts"].values()
    mappings = [m for nc in host["msg"] for m in nc["spec"].get("blockDeviceMappings", [])]
    assert mappings, "every environment encrypts its root volumes with the cluster key"
    for m in mappings:
        assert m["ebs"]["encrypted"] is True and m["ebs"]["kmsKeyID"] == arn, m

    # Without the cluster play's fact (e.g. --skip-tags cluster) templating fails instead of writing kmsKeyID: ""
    rc, out = run()
    (host,) = out["plays"][0]["tasks"][0]["hosts"].values()
    assert rc != 0 and host.get("failed") is True
    assert "EBS KMS key ARN is unknown" in host["msg"]
