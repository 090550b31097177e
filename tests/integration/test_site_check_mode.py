"""`playbooks/site.yml --check` on a converged sandbox writes nothing: not to the apiserver, not to moto.

Witnesses, not the playbook's own counters:

* **Kubernetes**: the sandbox apiserver's audit log records every write request (create/update/patch/delete,
  dry-run included). The check run authenticates with a client certificate of its own (a user minted for this
  test with the sandbox CA, group ``system:masters``), so every request it makes - through kubernetes.core, the
  helm binary or this collection's modules - is attributed to it exactly, and the sandbox's controllers or
  concurrent test runs (which use the admin user) cannot interfere.
* **AWS**: every moto resource site.yml manages (VPC, subnets, security groups, tags, IAM roles with their trust,
  attached and inline policies, managed policy documents and version ids, instance profiles, IAM OIDC
  providers, the EKS cluster, the
  SQS queue's attributes and tags, the EventBridge rules and targets) is read with boto3 before and after; the
  snapshots must be identical.

Two runs: a plain ``--check --diff`` (must also report changed=0) and one with drifted inputs (other tags,
queue retention, NodePool limits, PSA level), where check mode must report changes and still write nothing.
"""

import base64
import datetime
import json
import os
import subprocess

import boto3
import pytest
import yaml

pytestmark = pytest.mark.sandbox

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SITE = os.path.join(ROOT, "playbooks", "site.yml")
INVENTORY = os.path.join(ROOT, "inventories", "local")
CLUSTER = "sandbox"
NAMESPACE = "karpenter"


def _inventory_vars():
    out = {}
    for name in ("main.yml", "nodepools.yml"):
        with open(os.path.join(INVENTORY, "group_vars", "all", name)) as f:
            out.update(yaml.safe_load(f))
    return out


def _clients(env):
    kw = dict(
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    assert kw["endpoint_url"].startswith("http://127.0.0.1:"), "refusing to read a non-loopback AWS endpoint"
    return {s: boto3.client(s, **kw) for s in ("ec2", "iam", "eks", "sqs", "events")}


def moto_snapshot(env):
    """Everything site.yml manages in moto, as plain JSON-able data (ordering normalised)."""
    c = _clients(env)
    snap = {}
    vpcs = c["ec2"].describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{CLUSTER}-vpc"]}])["Vpcs"]
    snap["vpcs"] = vpcs
    vpc_ids = [v["VpcId"] for v in vpcs]
    if vpc_ids:
        # AvailableIpAddressCount moves with every instance Karpenter launches or terminates (other tests' pods)
        snap["subnets"] = sorted(
            (
                {k: v for k, v in s.items() if k != "AvailableIpAddressCount"}
                for s in c["ec2"].describe_subnets(Filters=[{"Name": "vpc-id", "Values": vpc_ids}])["Subnets"]
            ),
            key=lambda s: s["SubnetId"],
        )
        snap["security_groups"] = sorted(
            c["ec2"].describe_security_groups(Filters=[{"Name": "vpc-id", "Values": vpc_ids}])["SecurityGroups"],
            key=lambda g: g["GroupId"],
        )
        ids = [s["SubnetId"] for s in snap["subnets"]] + [g["GroupId"] for g in snap["security_groups"]]
        snap["tags"] = sorted(
            (t["ResourceId"], t["Key"], t["Value"])
            for t in c["ec2"].describe_tags(Filters=[{"Name": "resource-id", "Values": ids}])["Tags"]
        )

    iam = c["iam"]
    roles = {}
    for role in iam.list_roles()["Roles"]:
        name = role["RoleName"]
        if not name.endswith(f"-{CLUSTER}"):
            continue
        roles[name] = {
            "role": iam.get_role(RoleName=name)["Role"],
            "attached": sorted(
                p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
            ),
            "inline": sorted(iam.list_role_policies(RoleName=name)["PolicyNames"]),
            "tags": iam.list_role_tags(RoleName=name)["Tags"],
        }
    snap["iam_roles"] = roles
    policies = {}
    for pol in iam.list_policies(Scope="Local")["Policies"]:
        if not pol["PolicyName"].endswith(f"-{CLUSTER}"):
            continue
        versions = iam.list_policy_versions(PolicyArn=pol["Arn"])["Versions"]
        default = next(v for v in versions if v["IsDefaultVersion"])
        doc = iam.get_policy_version(PolicyArn=pol["Arn"], VersionId=default["VersionId"])["PolicyVersion"]
        policies[pol["PolicyName"]] = {
            "policy": iam.get_policy(PolicyArn=pol["Arn"])["Policy"],
            "versions": sorted(v["VersionId"] for v in versions),
            "document": doc["Document"],
        }
    snap["iam_policies"] = policies
    snap["oidc_providers"] = {
        p["Arn"]: iam.get_open_id_connect_provider(OpenIDConnectProviderArn=p["Arn"])
        for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    }
    for provider in snap["oidc_providers"].values():
        provider.pop("ResponseMetadata", None)
    snap["instance_profiles"] = sorted(
        (p["InstanceProfileName"], sorted(r["RoleName"] for r in p["Roles"]), p["InstanceProfileId"])
        for p in iam.list_instance_profiles()["InstanceProfiles"]
        if p["InstanceProfileName"].endswith(f"-{CLUSTER}")
    )

    if CLUSTER in c["eks"].list_clusters()["clusters"]:
        snap["eks_cluster"] = c["eks"].describe_cluster(name=CLUSTER)["cluster"]

    urls = c["sqs"].list_queues(QueueNamePrefix=CLUSTER).get("QueueUrls", [])
    snap["sqs"] = {
        url: {
            "attributes": c["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"],
            "tags": c["sqs"].list_queue_tags(QueueUrl=url).get("Tags", {}),
        }
        for url in urls
        if url.rsplit("/", 1)[-1] == CLUSTER
    }
    rules = c["events"].list_rules(NamePrefix=f"Karpenter-{CLUSTER}-")["Rules"]
    snap["event_rules"] = {
        r["Name"]: {"rule": r, "targets": c["events"].list_targets_by_rule(Rule=r["Name"])["Targets"]} for r in rules
    }
    return json.loads(json.dumps(snap, default=str, sort_keys=True))


def check_identity(env, tmp_path, user):
    """A kubeconfig like the admin one, but authenticating as ``user`` (group system:masters)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    pki = os.path.join(env["SANDBOX_STATE"], "pki")
    with open(os.path.join(pki, "ca.crt"), "rb") as f:
        ca_cert = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(pki, "ca.key"), "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, user),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    with open(env["KUBECONFIG"]) as f:
        kubeconfig = yaml.safe_load(f)
    for entry in kubeconfig["users"]:
        entry["user"] = {
            "client-certificate-data": base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode(),
            "client-key-data": base64.b64encode(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            ).decode(),
        }
    path = tmp_path / f"{user}.kubeconfig"
    path.write_text(json.dumps(kubeconfig))
    path.chmod(0o600)
    return str(path)


def writes_by(sandbox, mark, user):
    return [
        (e.get("userAgent"), e.get("verb"), e.get("requestURI"))
        for e in sandbox.writes_since(mark)
        if (e.get("user") or {}).get("username") == user
    ]


def assert_identity_is_logged(sandbox, kubeconfig, user):
    """The attribution works: a dry-run write made with the test's kubeconfig is logged under ``user``."""
    mark = sandbox.audit_mark()
    res = subprocess.run(
        [sandbox.kubectl_bin, "--kubeconfig", kubeconfig, "create", "namespace", f"{user}-probe", "--dry-run=server"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert writes_by(sandbox, mark, user), "the audit log does not attribute requests to the test's user"


def recap(out):
    return out["stats"][CLUSTER]


def changed_tasks(out):
    return [
        t["task"]["name"] for play in out["plays"] for t in play["tasks"] if t["hosts"].get(CLUSTER, {}).get("changed")
    ]


@pytest.fixture(scope="module")
def converged(sandbox):
    """site.yml applied (a no-op on an already converged sandbox)."""
    sandbox.playbook(SITE, "-i", INVENTORY)
    return sandbox


def test_check_on_converged_sandbox_writes_nothing(converged, tmp_path, monkeypatch, uid):
    sandbox = converged
    user = f"site-check-{uid}"
    kubeconfig = check_identity(sandbox.env, tmp_path, user)
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", kubeconfig)
    before = moto_snapshot(sandbox.env)
    assert before["vpcs"] and before["iam_roles"] and before["sqs"] and before["event_rules"], "not converged"
    mark = sandbox.audit_mark()

    _, out = sandbox.playbook(SITE, "-i", INVENTORY, "--check", "--diff")

    assert recap(out)["failures"] == 0
    assert recap(out)["changed"] == 0, changed_tasks(out)
    assert writes_by(sandbox, mark, user) == [], "--check sent write requests to the apiserver"
    assert moto_snapshot(sandbox.env) == before, "--check changed moto's state"
    assert_identity_is_logged(sandbox, kubeconfig, user)


def test_check_with_drifted_inputs_reports_changes_and_writes_nothing(converged, tmp_path, monkeypatch, uid):
    """Check mode has work to show here (the real run would change AWS and Kubernetes) and persists nothing.

    The roles' Kubernetes objects go through karpenter_eks.platform.k8s_objects, which plans from its reads and
    sends no write request in check mode, not even a dry-run; neither do the Karpenter modules.
    """
    sandbox = converged
    user = f"site-check-drift-{uid}"
    kubeconfig = check_identity(sandbox.env, tmp_path, user)
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", kubeconfig)
    inv = _inventory_vars()
    pools = json.loads(json.dumps(inv["karpenter_nodepools"]))
    pools[0]["spec"]["limits"]["cpu"] = "48"
    drift = {
        "cluster_tags": {"team": "check-mode-test"},
        "karpenter_tags": {"team": "check-mode-test"},
        "karpenter_interruption_message_retention": 600,
        "karpenter_nodepools": pools,
        "security_pod_security_namespaces": [{"name": NAMESPACE, "enforce": "baseline"}],
    }
    before = moto_snapshot(sandbox.env)
    mark = sandbox.audit_mark()

    _, out = sandbox.playbook(SITE, "-i", INVENTORY, "--check", "--diff", extra_vars=drift)

    changed = changed_tasks(out)
    assert recap(out)["failures"] == 0
    for expected in (
        "Create the SQS interruption queue",
        "Apply the NodePools and wait until they are Ready",
        "Apply the Pod Security Admission labels",
        "Create the Karpenter node IAM role",
    ):
        assert any(expected in name for name in changed), (expected, changed)
    assert writes_by(sandbox, mark, user) == [], "--check sent write requests (dry-run included) to the apiserver"
    # the drifted Namespace is in the diff, with the level the real run would set
    (security,) = [
        t["hosts"][CLUSTER]
        for play in out["plays"]
        for t in play["tasks"]
        if "Apply the Pod Security Admission labels" in t["task"]["name"]
    ]
    (ns_diff,) = [d for d in security["diff"] if d["after_header"] == f"Namespace/{NAMESPACE}"]
    assert ns_diff["before"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ns_diff["after"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert [r["action"] for r in security["results"] if r["kind"] != "Namespace"] == ["unchanged"] * (
        len(security["results"]) - 1
    )
    assert moto_snapshot(sandbox.env) == before, "--check changed moto's state"
