"""Fault injection: the AWS endpoint dies in the middle of the cluster role (site.yml ``--tags cluster``).

A private moto sits behind tests/faultproxy.py (AWS_ENDPOINT_URL is the proxy), which counts the write requests
(query ``Action=``, JSON ``X-Amz-Target``, REST method; Describe*/List*/Get* are reads). Sequence, on one moto:

1. clean converge (proxy forwards everything; the read-only preflight play skipped): its writes W and its state, the reference;
2. ``POST /moto-api/reset``, then the same run with the proxy dying after N = len(W) // 2 writes: the next write and
   every later request get a TCP reset, as an endpoint that died;
3. the endpoint back, a rerun; 4. a third run (preflight skipped in 1, 3 and 4).

Asserted: run 2 fails at one task with a clear message (no traceback, no MODULE FAILURE), the N writes let through
are the first N of the clean converge, and what moto holds afterwards is the reference restricted to the resources
present (nothing half-written: same attributes, tags, rules, policies, attachments; nothing else); run 3 succeeds,
sends exactly the writes run 2 could not and leaves moto in the reference state; run 4 changes nothing and sends no
write. The failing task and the number of writes let through are in every assertion message.
"""

import json
import urllib.request

import pytest
from awslib import aws_client, changed_tasks, run_playbook
from faultproxy import FaultProxy
from sitelib import run_site

CLUSTER = "sandbox"  # inventories/local
# The preflight play (first in site.yml) only reads: it runs in the faulted run, as an operator's would, and is
# skipped in the other runs to keep this file within ~3 minutes.
NO_PREFLIGHT = {"karpenter_eks_preflight": False}


# ---------------------------------------------------------------- moto state, without ids that differ per run


def _tags(items, key="Key", value="Value"):
    return {t[key]: t[value] for t in items or []}


def moto_state(endpoint):
    """What the cluster role manages, keyed and compared by names/CIDRs/aliases instead of generated ids."""
    ec2, iam, kms, eks = (aws_client(endpoint, s) for s in ("ec2", "iam", "kms", "eks"))
    state = {}

    vpcs = {v["VpcId"]: v for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")}
    vpc_name = {vid: v["CidrBlock"] for vid, v in vpcs.items()}
    for vid, v in vpcs.items():
        attrs = {
            a: ec2.describe_vpc_attribute(VpcId=vid, Attribute=a)[a[0].upper() + a[1:]]["Value"]
            for a in ("enableDnsSupport", "enableDnsHostnames")
        }
        state[f"vpc {v['CidrBlock']}"] = {"tags": _tags(v.get("Tags")), **attrs}

    subnets = {}
    for s in ec2.describe_subnets()["Subnets"]:
        if s["VpcId"] in vpcs:
            subnets[s["SubnetId"]] = s["CidrBlock"]
            state[f"subnet {s['CidrBlock']}"] = {
                "vpc": vpc_name[s["VpcId"]],
                "az": s["AvailabilityZone"],
                "public_ip": s.get("MapPublicIpOnLaunch"),
                "tags": _tags(s.get("Tags")),
            }

    groups = {g["GroupId"]: g for g in ec2.describe_security_groups()["SecurityGroups"] if g.get("VpcId") in vpcs}
    group_name = {gid: f"{vpc_name[g['VpcId']]}/{g['GroupName']}" for gid, g in groups.items()}

    def rules(perms):
        out = []
        for p in perms:
            peers = sorted(
                [
                    ("group", group_name.get(u["GroupId"], u["GroupId"]), u.get("Description"))
                    for u in p["UserIdGroupPairs"]
                ]
                + [("cidr", r["CidrIp"], r.get("Description")) for r in p["IpRanges"]]
                + [("cidr6", r["CidrIpv6"], r.get("Description")) for r in p.get("Ipv6Ranges", [])],
                key=str,
            )
            out.append((p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), peers))
        return sorted(out, key=str)

    for gid, g in groups.items():
        state[f"security group {group_name[gid]}"] = {
            "description": g["Description"],
            "tags": _tags(g.get("Tags")),
            "ingress": rules(g["IpPermissions"]),
            "egress": rules(g["IpPermissionsEgress"]),
        }

    for r in iam.list_roles()["Roles"]:
        name = r["RoleName"]
        role = iam.get_role(RoleName=name)["Role"]
        state[f"iam role {name}"] = {
            "path": role["Path"],
            "description": role.get("Description"),
            "trust": role["AssumeRolePolicyDocument"],
            "tags": _tags(role.get("Tags")),
            "managed": sorted(
                p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
            ),
            "inline": sorted(iam.list_role_policies(RoleName=name)["PolicyNames"]),
        }
    for p in iam.list_instance_profiles()["InstanceProfiles"]:
        state[f"instance profile {p['InstanceProfileName']}"] = {
            "path": p["Path"],
            "roles": sorted(r["RoleName"] for r in p["Roles"]),
            "tags": _tags(p.get("Tags")),
        }

    issuers = {}
    for name in eks.list_clusters()["clusters"]:
        c = eks.describe_cluster(name=name)["cluster"]
        issuers[c.get("identity", {}).get("oidc", {}).get("issuer", "").removeprefix("https://")] = name
        vpc_config = c["resourcesVpcConfig"]
        state[f"eks cluster {name}"] = {
            "version": c["version"],
            "status": c["status"],
            "role": c["roleArn"],
            "subnets": sorted(subnets.get(s, s) for s in vpc_config.get("subnetIds", [])),
            "security_groups": sorted(group_name.get(g, g) for g in vpc_config.get("securityGroupIds", [])),
            "tags": c.get("tags", {}),
        }
    for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]:
        got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=p["Arn"])
        url = got["Url"].removeprefix("https://")
        key = f"oidc provider of cluster {issuers[url]}" if url in issuers else f"oidc provider {url}"
        state[key] = {
            "clients": sorted(got["ClientIDList"]),
            "thumbprints": sorted(got.get("ThumbprintList", [])),
            "tags": _tags(got.get("Tags")),
        }

    aliases = {}
    for a in kms.list_aliases()["Aliases"]:
        if a.get("TargetKeyId") and not a["AliasName"].startswith("alias/aws/"):
            aliases.setdefault(a["TargetKeyId"], []).append(a["AliasName"])
    unaliased = 0
    for key in kms.list_keys()["Keys"]:
        kid = key["KeyId"]
        meta = kms.describe_key(KeyId=kid)["KeyMetadata"]
        if meta.get("KeyManager") == "AWS":
            continue
        if kid in aliases:
            label = ",".join(sorted(aliases[kid]))
        else:  # a key whose alias was never written: an orphan a rerun cannot find
            unaliased += 1
            label = f"<no alias #{unaliased}>"
        state[f"kms key {label}"] = {
            **{k: meta.get(k) for k in ("Description", "Enabled", "KeyState", "KeySpec", "KeyUsage")},
            "rotation": kms.get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"],
            "policy": json.loads(kms.get_key_policy(KeyId=kid, PolicyName="default")["Policy"]),
            "tags": _tags(kms.list_resource_tags(KeyId=kid)["Tags"], "TagKey", "TagValue"),
        }
    return state


def moto_reset(endpoint):
    req = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200


def failed_tasks(out):
    return [
        (task["task"]["name"], host)
        for play in out["plays"]
        for task in play["tasks"]
        for host in task["hosts"].values()
        if host.get("failed") and not host.get("ignore_errors")
    ]


# ---------------------------------------------------------------- the runs


@pytest.fixture(scope="module")
def runs(private_moto):
    r = {"empty": moto_state(private_moto)}
    with FaultProxy(private_moto) as proxy:
        r["clean"] = run_site(proxy.endpoint, "--tags", "cluster", extra_vars=NO_PREFLIGHT)
        r["clean_writes"] = list(proxy.writes)
        r["reference"] = moto_state(private_moto)

        moto_reset(private_moto)
        r["after_reset"] = moto_state(private_moto)
        r["n"] = n = len(r["clean_writes"]) // 2
        proxy.arm(n)
        r["faulted"] = run_site(proxy.endpoint, "--tags", "cluster")
        r["faulted_writes"], r["faulted_refused"] = list(proxy.writes), list(proxy.refused)
        r["partial"] = moto_state(private_moto)

        proxy.arm(None)  # the endpoint is back
        r["rerun"] = run_site(proxy.endpoint, "--tags", "cluster", extra_vars=NO_PREFLIGHT)
        r["rerun_writes"] = list(proxy.writes)
        r["rerun_state"] = moto_state(private_moto)

        proxy.arm(None)
        r["third"] = run_site(proxy.endpoint, "--tags", "cluster", extra_vars=NO_PREFLIGHT)
        r["third_writes"] = list(proxy.writes)
        r["third_state"] = moto_state(private_moto)

    failed = failed_tasks(r["faulted"])
    names = [name for name, unused in failed]
    r["ctx"] = (
        f"endpoint died after {len(r['faulted_writes'])} of {len(r['clean_writes'])} writes "
        f"(let through: {r['faulted_writes']}; refused: {r['faulted_refused']}); failed task(s): {names}"
    )
    return r


def test_clean_converge_is_the_reference(runs):
    clean = runs["clean"]
    assert clean["rc"] == 0 and clean["stats"]["sandbox"]["failures"] == 0, json.dumps(clean)[-3000:]
    assert len(runs["clean_writes"]) >= 4, runs["clean_writes"]  # enough for a write in the middle of the role
    assert runs["empty"] == runs["after_reset"], "moto's reset did not restore the initial state"
    for key in (f"eks cluster {CLUSTER}", f"kms key alias/{CLUSTER}-ebs", f"oidc provider of cluster {CLUSTER}"):
        assert key in runs["reference"], sorted(runs["reference"])


def test_the_faulted_run_fails_with_a_clear_error(runs):
    out, ctx = runs["faulted"], runs["ctx"]
    assert out["rc"] != 0, ctx
    assert out["stats"]["sandbox"]["failures"] == 1, ctx
    (failed,) = failed_tasks(out)
    name, result = failed
    msg = str(result.get("msg", ""))
    assert msg, f"{ctx}: no message in {result}"
    assert "MODULE FAILURE" not in msg and "module_stderr" not in result, f"{ctx}: {result}"
    assert "Traceback" not in msg and "Traceback" not in str(result.get("module_stdout", "")), f"{ctx}: {msg}"
    # the message says what happened: the endpoint could not be reached / the connection was cut
    assert any(w in msg.lower() for w in ("connect", "endpoint")), f"{ctx}: {msg}"
    # the run stopped at the failing task: no task after it ran on the host
    tasks = [t["task"]["name"] for play in out["plays"] for t in play["tasks"]]
    assert tasks[-1] == name, f"{ctx}: tasks after the failing one: {tasks[tasks.index(name) + 1 :]}"


def test_the_writes_let_through_are_the_first_of_a_clean_converge(runs):
    n, ctx = runs["n"], runs["ctx"]
    assert len(runs["faulted_writes"]) == n, ctx
    assert runs["faulted_writes"] == runs["clean_writes"][:n], ctx
    assert runs["faulted_refused"], f"{ctx}: the write after the N-th was never attempted"
    assert runs["faulted_refused"][0] == runs["clean_writes"][n], ctx


def test_nothing_written_is_lost_or_half_written(runs):
    partial, reference, ctx = runs["partial"], runs["reference"], runs["ctx"]
    extra = sorted(set(partial) - set(reference))
    assert not extra, f"{ctx}: resources a clean converge does not have: {extra}"
    differing = {
        k: {"after failure": partial[k], "clean converge": reference[k]} for k in partial if partial[k] != reference[k]
    }
    assert not differing, f"{ctx}: half-written resources:\n{json.dumps(differing, indent=1, default=str)}"
    # something was written (the first N writes created resources), and not everything
    assert set(partial) - set(runs["empty"]), f"{ctx}: nothing written survived"
    assert set(reference) - set(partial), f"{ctx}: everything was already there"


def test_a_rerun_converges_to_the_clean_state(runs):
    rerun, ctx = runs["rerun"], runs["ctx"]
    assert rerun["rc"] == 0, f"{ctx}: rerun failed: {failed_tasks(rerun)}"
    assert runs["rerun_state"] == runs["reference"], (
        f"{ctx}: state after the rerun differs from a clean converge:\n"
        + json.dumps(
            {
                k: {"rerun": runs["rerun_state"].get(k), "clean": runs["reference"].get(k)}
                for k in set(runs["rerun_state"]) | set(runs["reference"])
                if runs["rerun_state"].get(k) != runs["reference"].get(k)
            },
            indent=1,
            default=str,
        )
    )
    # it wrote exactly what the failure prevented, nothing twice
    assert runs["rerun_writes"] == runs["clean_writes"][runs["n"] :], f"{ctx}: rerun writes {runs['rerun_writes']}"


def test_a_third_run_changes_and_writes_nothing(runs):
    third, ctx = runs["third"], runs["ctx"]
    assert third["rc"] == 0, f"{ctx}: {failed_tasks(third)}"
    assert third["stats"]["sandbox"]["changed"] == 0 and changed_tasks(third) == [], f"{ctx}: {changed_tasks(third)}"
    assert runs["third_writes"] == [], f"{ctx}: third run wrote {runs['third_writes']}"
    assert runs["third_state"] == runs["reference"], ctx


# ---------------------------------------------------------------- the endpoint dies inside the EBS key task

KEY_ONLY = """
- name: The cluster role's EBS key tasks only (roles/cluster/tasks/ebs_kms.yml)
  hosts: eks_clusters
  gather_facts: false
  module_defaults:
    group/amazon.aws.aws:
      region: "{{ karpenter_eks_region }}"
      endpoint_url: "{{ karpenter_eks_aws_endpoint_url }}"
      access_key: "{{ karpenter_eks_aws_access_key }}"
      secret_key: "{{ karpenter_eks_aws_secret_key }}"
  tasks:
    - name: Read the AWS account
      amazon.aws.aws_caller_info:
      register: caller
    - name: EBS key
      ansible.builtin.import_role:
        name: karpenter_eks.platform.cluster
        tasks_from: ebs_kms
      vars:
        cluster_name: "{{ karpenter_eks_cluster_name }}"
        cluster_region: "{{ karpenter_eks_region }}"
        cluster_account_id: "{{ caller.account }}"
"""


def customer_keys(endpoint):
    kms = aws_client(endpoint, "kms")
    keys = [kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"] for k in kms.list_keys()["Keys"]]
    return [k for k in keys if k.get("KeyManager") != "AWS"]


def test_a_key_created_before_the_endpoint_died_is_not_leaked(private_moto, tmp_path):
    """moto reset, the EBS key tasks with the endpoint dying after CreateKey (the first write), a rerun.

    amazon.aws.kms_key sends CreateKey, then CreateAlias: cut between the two, the key is left without its alias.
    The role then adopts that key (Name tag, no alias) instead of creating a second one."""
    playbook = tmp_path / "key.yml"
    playbook.write_text(KEY_ONLY)
    moto_reset(private_moto)
    with FaultProxy(private_moto) as proxy:
        args = [str(playbook), "-i", "inventories/local"]
        evars = {"karpenter_eks_aws_endpoint_url": proxy.endpoint}
        proxy.arm(1)
        out = run_playbook(args, proxy.endpoint, extra_vars=evars)
        ctx = f"endpoint died after {proxy.writes}, refused {proxy.refused}; failed: {failed_tasks(out)}"
        assert out["rc"] != 0 and proxy.writes == ["CreateKey"], ctx
        assert [name for name, unused in failed_tasks(out)] == [
            "karpenter_eks.platform.cluster : Create the EBS KMS key with automatic rotation"
        ], ctx
        assert len(customer_keys(private_moto)) == 1, ctx
        proxy.arm(None)
        out = run_playbook(args, proxy.endpoint, extra_vars=evars)
        assert out["rc"] == 0, f"{ctx}; rerun failed: {failed_tasks(out)}"
        keys = customer_keys(private_moto)
        assert len(keys) == 1, f"{ctx}; rerun wrote {proxy.writes}, keys now: {[k['KeyId'] for k in keys]}"
        # the one key is the adopted one, now with its alias and rotation
        kms = aws_client(private_moto, "kms")
        aliased = [a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/sandbox-ebs"]
        assert aliased == [keys[0]["KeyId"]], aliased
        assert kms.get_key_rotation_status(KeyId=keys[0]["KeyId"])["KeyRotationEnabled"] is True
