"""EKS access entries, Pod Identity associations and add-ons: desired-state logic against botocore's Stubber.

moto (the sandbox's AWS emulator) has no route for these EKS APIs (HTTP 404, docs/sandbox.md section 7), so they are
tested with ``botocore.stub.Stubber``: every expected request is checked against the real EKS service model
shipped with botocore (operation, parameter names and types), and every canned response against its output
shape. A call that is not queued fails the test, so "no write in check mode / on a no-op" is asserted by
queuing only the reads.
"""

import datetime

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.api import AwsOperationError
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.eks import (
    ensure_access_entry,
    ensure_addon,
    ensure_pod_identity_association,
)

NOW = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)

CLUSTER = "platform-prod"
NODE_ROLE = "arn:aws:iam::123456789012:role/KarpenterNodeRole-platform-prod"
CTRL_ROLE = "arn:aws:iam::123456789012:role/KarpenterControllerRole-platform-prod"
ENTRY_ARN = "arn:aws:eks:us-east-1:123456789012:access-entry/platform-prod/role/123456789012/KarpenterNodeRole/abc"
ASSOC_ARN = "arn:aws:eks:us-east-1:123456789012:podidentityassociation/platform-prod/a-0123456789abcdef0"
ADDON_ARN = "arn:aws:eks:us-east-1:123456789012:addon/platform-prod/eks-pod-identity-agent/abc"


def not_found(stub, method, params):
    stub.add_client_error(method, "ResourceNotFoundException", "not found", 404, expected_params=params)


# ---------------------------------------------------------------- access entries


def entry_params(**kw):
    p = dict(
        cluster_name=CLUSTER,
        principal_arn=NODE_ROLE,
        type="EC2_LINUX",
        kubernetes_groups=None,
        username=None,
        tags=None,
        purge_tags=True,
        state="present",
    )
    p.update(kw)
    return p


def live_entry(**kw):
    e = dict(
        clusterName=CLUSTER,
        principalArn=NODE_ROLE,
        kubernetesGroups=["system:nodes"],
        accessEntryArn=ENTRY_ARN,
        createdAt=NOW,
        modifiedAt=NOW,
        tags={},
        username="system:node:{{EC2PrivateDNSName}}",
        type="EC2_LINUX",
    )
    e.update(kw)
    return e


KEY = {"clusterName": CLUSTER, "principalArn": NODE_ROLE}


def test_access_entry_created_when_missing(eks):
    client, stub = eks
    not_found(stub, "describe_access_entry", KEY)
    stub.add_response(
        "create_access_entry", {"accessEntry": live_entry()}, dict(KEY, type="EC2_LINUX", tags={"team": "platform"})
    )
    res = ensure_access_entry(client, entry_params(tags={"team": "platform"}), check_mode=False)
    assert res["changed"] is True
    assert res["access_entry"]["type"] == "EC2_LINUX"
    assert res["diff"]["before"] == {}
    assert res["diff"]["after"]["type"] == "EC2_LINUX"


def test_access_entry_check_mode_only_reads(eks):
    client, stub = eks
    not_found(stub, "describe_access_entry", KEY)
    res = ensure_access_entry(client, entry_params(), check_mode=True)
    assert res["changed"] is True
    assert res["diff"]["after"]["principal_arn"] == NODE_ROLE


def test_access_entry_noop_sends_no_write(eks):
    client, stub = eks
    stub.add_response("describe_access_entry", {"accessEntry": live_entry()}, KEY)
    res = ensure_access_entry(client, entry_params(), check_mode=False)
    assert res["changed"] is False
    assert res["diff"]["before"] == res["diff"]["after"]
    assert res["access_entry"]["kubernetes_groups"] == ["system:nodes"]


def test_access_entry_type_cannot_change(eks):
    client, stub = eks
    stub.add_response("describe_access_entry", {"accessEntry": live_entry(type="STANDARD")}, KEY)
    with pytest.raises(AwsOperationError, match="EKS cannot change it"):
        ensure_access_entry(client, entry_params(), check_mode=False)


def test_access_entry_groups_and_tags_updated(eks):
    client, stub = eks
    stub.add_response(
        "describe_access_entry",
        {"accessEntry": live_entry(type="STANDARD", kubernetesGroups=["a"], username="u", tags={"old": "1"})},
        KEY,
    )
    stub.add_response(
        "update_access_entry", {"accessEntry": live_entry(type="STANDARD")}, dict(KEY, kubernetesGroups=["b"])
    )
    stub.add_response("untag_resource", {}, {"resourceArn": ENTRY_ARN, "tagKeys": ["old"]})
    stub.add_response("tag_resource", {}, {"resourceArn": ENTRY_ARN, "tags": {"new": "2"}})
    res = ensure_access_entry(
        client, entry_params(type="STANDARD", kubernetes_groups=["b"], tags={"new": "2"}), check_mode=False
    )
    assert res["changed"] is True
    assert res["diff"]["before"]["tags"] == {"old": "1"}
    assert res["diff"]["after"]["tags"] == {"new": "2"}


def test_access_entry_deleted(eks):
    client, stub = eks
    stub.add_response("describe_access_entry", {"accessEntry": live_entry()}, KEY)
    stub.add_response("delete_access_entry", {}, KEY)
    res = ensure_access_entry(client, entry_params(state="absent"), check_mode=False)
    assert res["changed"] is True and res["access_entry"] == {} and res["diff"]["after"] == {}


def test_access_entry_absent_when_missing_is_noop(eks):
    client, stub = eks
    not_found(stub, "describe_access_entry", KEY)
    assert ensure_access_entry(client, entry_params(state="absent"), check_mode=False)["changed"] is False


def test_access_entry_other_errors_name_the_operation(eks):
    client, stub = eks
    stub.add_client_error("describe_access_entry", "AccessDeniedException", "no", 403, expected_params=KEY)
    with pytest.raises(AwsOperationError, match="Failed to describe access entry of .*KarpenterNodeRole"):
        ensure_access_entry(client, entry_params(), check_mode=False)


# ---------------------------------------------------------------- pod identity associations

LIST = {"clusterName": CLUSTER, "namespace": "kube-system", "serviceAccount": "karpenter"}


def assoc_params(**kw):
    p = dict(
        cluster_name=CLUSTER,
        namespace="kube-system",
        service_account="karpenter",
        role_arn=CTRL_ROLE,
        tags=None,
        purge_tags=True,
        state="present",
    )
    p.update(kw)
    return p


def live_assoc(**kw):
    a = dict(
        clusterName=CLUSTER,
        namespace="kube-system",
        serviceAccount="karpenter",
        roleArn=CTRL_ROLE,
        associationArn=ASSOC_ARN,
        associationId="a-0123456789abcdef0",
        tags={},
        createdAt=NOW,
        modifiedAt=NOW,
    )
    a.update(kw)
    return a


def listed(stub):
    stub.add_response(
        "list_pod_identity_associations",
        {
            "associations": [
                {
                    "clusterName": CLUSTER,
                    "namespace": "kube-system",
                    "serviceAccount": "karpenter",
                    "associationArn": ASSOC_ARN,
                    "associationId": "a-0123456789abcdef0",
                }
            ]
        },
        LIST,
    )


def test_association_created_when_missing(eks):
    client, stub = eks
    stub.add_response("list_pod_identity_associations", {"associations": []}, LIST)
    stub.add_response("create_pod_identity_association", {"association": live_assoc()}, dict(LIST, roleArn=CTRL_ROLE))
    res = ensure_pod_identity_association(client, assoc_params(), check_mode=False)
    assert res["changed"] is True
    assert res["association"]["association_id"] == "a-0123456789abcdef0"


def test_association_check_mode_only_reads(eks):
    client, stub = eks
    stub.add_response("list_pod_identity_associations", {"associations": []}, LIST)
    res = ensure_pod_identity_association(client, assoc_params(), check_mode=True)
    assert res["changed"] is True and res["diff"]["after"]["role_arn"] == CTRL_ROLE


def test_association_noop(eks):
    client, stub = eks
    listed(stub)
    stub.add_response(
        "describe_pod_identity_association",
        {"association": live_assoc()},
        {"clusterName": CLUSTER, "associationId": "a-0123456789abcdef0"},
    )
    res = ensure_pod_identity_association(client, assoc_params(), check_mode=False)
    assert res["changed"] is False and res["diff"]["before"] == res["diff"]["after"]


def test_association_role_updated_and_check_mode_does_not(eks):
    client, stub = eks
    other = "arn:aws:iam::123456789012:role/Other"
    for check in (True, False):
        listed(stub)
        stub.add_response(
            "describe_pod_identity_association",
            {"association": live_assoc(roleArn=other)},
            {"clusterName": CLUSTER, "associationId": "a-0123456789abcdef0"},
        )
        if not check:
            stub.add_response(
                "update_pod_identity_association",
                {"association": live_assoc()},
                {"clusterName": CLUSTER, "associationId": "a-0123456789abcdef0", "roleArn": CTRL_ROLE},
            )
        res = ensure_pod_identity_association(client, assoc_params(), check_mode=check)
        assert res["changed"] is True
        assert (res["diff"]["before"]["role_arn"], res["diff"]["after"]["role_arn"]) == (other, CTRL_ROLE)


def test_association_deleted(eks):
    client, stub = eks
    listed(stub)
    stub.add_response(
        "describe_pod_identity_association",
        {"association": live_assoc()},
        {"clusterName": CLUSTER, "associationId": "a-0123456789abcdef0"},
    )
    stub.add_response(
        "delete_pod_identity_association",
        {"association": live_assoc()},
        {"clusterName": CLUSTER, "associationId": "a-0123456789abcdef0"},
    )
    res = ensure_pod_identity_association(client, assoc_params(state="absent"), check_mode=False)
    assert res["changed"] is True


# ---------------------------------------------------------------- add-ons

ADDON_KEY = {"clusterName": CLUSTER, "addonName": "eks-pod-identity-agent"}


def addon_params(**kw):
    p = dict(
        cluster_name=CLUSTER,
        name="eks-pod-identity-agent",
        addon_version=None,
        service_account_role_arn=None,
        configuration_values=None,
        resolve_conflicts=None,
        preserve=False,
        tags=None,
        purge_tags=True,
        state="present",
    )
    p.update(kw)
    return p


def live_addon(**kw):
    a = dict(
        addonName="eks-pod-identity-agent",
        clusterName=CLUSTER,
        status="ACTIVE",
        addonVersion="v1.3.8-eksbuild.2",
        addonArn=ADDON_ARN,
        createdAt=NOW,
        modifiedAt=NOW,
        tags={},
    )
    a.update(kw)
    return a


def test_addon_created_with_eks_default_version(eks):
    client, stub = eks
    not_found(stub, "describe_addon", ADDON_KEY)
    stub.add_response("create_addon", {"addon": live_addon(status="CREATING")}, ADDON_KEY)
    res = ensure_addon(client, addon_params(), check_mode=False)
    assert res["changed"] is True and res["addon"]["status"] == "CREATING"


def test_addon_noop_leaves_unset_options_alone(eks):
    client, stub = eks
    stub.add_response("describe_addon", {"addon": live_addon(configurationValues="{}")}, ADDON_KEY)
    res = ensure_addon(client, addon_params(), check_mode=False)
    assert res["changed"] is False


def test_addon_version_update(eks):
    client, stub = eks
    stub.add_response("describe_addon", {"addon": live_addon()}, ADDON_KEY)
    stub.add_response(
        "update_addon",
        {"update": {"id": "u-1", "status": "InProgress", "type": "VersionUpdate", "createdAt": NOW}},
        dict(ADDON_KEY, addonVersion="v1.3.9-eksbuild.1", resolveConflicts="OVERWRITE"),
    )
    res = ensure_addon(
        client, addon_params(addon_version="v1.3.9-eksbuild.1", resolve_conflicts="OVERWRITE"), check_mode=False
    )
    assert res["changed"] is True
    assert res["diff"]["after"]["addon_version"] == "v1.3.9-eksbuild.1"


def test_addon_version_update_check_mode(eks):
    client, stub = eks
    stub.add_response("describe_addon", {"addon": live_addon()}, ADDON_KEY)
    res = ensure_addon(client, addon_params(addon_version="v1.3.9-eksbuild.1"), check_mode=True)
    assert res["changed"] is True


def test_addon_deleted_preserving_objects(eks):
    client, stub = eks
    stub.add_response("describe_addon", {"addon": live_addon()}, ADDON_KEY)
    stub.add_response("delete_addon", {"addon": live_addon(status="DELETING")}, dict(ADDON_KEY, preserve=True))
    res = ensure_addon(client, addon_params(state="absent", preserve=True), check_mode=False)
    assert res["changed"] is True
