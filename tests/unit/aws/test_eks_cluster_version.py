"""eks_cluster_version: version comparison and control plane upgrade logic, against botocore's Stubber.

moto 5.2.5 (the sandbox's AWS emulator) implements DescribeCluster but not UpdateClusterVersion, DescribeUpdate or
ListUpdates (no such handler in moto/eks/responses.py), so the upgrade path is tested with ``botocore.stub.Stubber``:
every request is checked against the real EKS service model shipped with botocore (operation, parameter names and
types) and every canned response against its output shape. A call that is not queued fails the test, so "no write in
check mode / on equal versions / before failing" is asserted by queuing only the reads. Time is a fake clock, so
waiting and timing out take no real time. The equal-version path also runs against moto in the site.yml tests
(tests/unit/roles/test_cluster_ebs_kms.py). UpdateClusterVersion's ``clientRequestToken`` is an idempotency token
botocore fills in after the Stubber checked the parameters, so it is not part of the expected parameters.
"""

import datetime

import pytest
import yaml
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.api import AwsOperationError
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.eks_version import (
    NEXT_STEPS,
    WAIT_DELAY,
    ensure_cluster_version,
    parse_version,
    validate_version,
)

NOW = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
NAME = "platform-prod"
ARN = "arn:aws:eks:us-east-1:123456789012:cluster/platform-prod"
UPDATE_ID = "0a1b2c3d-0000-4000-8000-000000000001"


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def params(version="1.35", allow_upgrade=False, wait=True, wait_timeout=3600):
    return dict(name=NAME, version=version, allow_upgrade=allow_upgrade, wait=wait, wait_timeout=wait_timeout)


def cluster(version="1.34", status="ACTIVE"):
    return {
        "cluster": {
            "name": NAME,
            "arn": ARN,
            "version": version,
            "platformVersion": "eks.7",
            "status": status,
            "createdAt": NOW,
        }
    }


def update(status="InProgress", version="1.35", uid=UPDATE_ID, kind="VersionUpdate", errors=None):
    return {
        "update": {
            "id": uid,
            "status": status,
            "type": kind,
            "params": [{"type": "Version", "value": version}, {"type": "PlatformVersion", "value": "eks.1"}],
            "createdAt": NOW,
            "errors": errors or [],
        }
    }


def describe(stub, version="1.34", status="ACTIVE"):
    stub.add_response("describe_cluster", cluster(version, status), {"name": NAME})


def run(client, p, check_mode=False, clock=None):
    clock = clock or FakeClock()
    warnings = []
    res = ensure_cluster_version(client, p, check_mode, warn=warnings.append, sleep=clock.sleep, clock=clock.clock)
    return res, warnings, clock


# ---------------------------------------------------------------- no change / failures before any write


def test_equal_versions_read_only(eks):
    client, stub = eks
    describe(stub, "1.34")
    res, warnings, clock = run(client, params(version="1.34", allow_upgrade=True))
    assert res["changed"] is False and res["eks_update"] == {}
    assert res["cluster"]["version"] == "1.34" and res["cluster"]["status"] == "ACTIVE"
    assert res["diff"] == {"before": {"version": "1.34"}, "after": {"version": "1.34"}}
    assert warnings == [] and clock.sleeps == []


def test_missing_cluster_is_left_to_eks_cluster(eks):
    client, stub = eks
    stub.add_client_error("describe_cluster", "ResourceNotFoundException", "No cluster found", 404, {"name": NAME})
    res, _clock, _warnings = run(client, params())
    assert res["changed"] is False and res["cluster"] == {}
    assert "does not exist" in res["msg"]


def test_downgrade_fails(eks):
    client, stub = eks
    describe(stub, "1.35")
    with pytest.raises(AwsOperationError) as err:
        run(client, params(version="1.34", allow_upgrade=True))
    assert "cannot downgrade" in err.value.message and "1.35" in err.value.message
    assert err.value.exception is None  # a plan error, no SDK call failed


def test_skipping_a_minor_fails_and_names_the_next_step(eks):
    client, stub = eks
    describe(stub, "1.33")
    with pytest.raises(AwsOperationError) as err:
        run(client, params(version="1.35", allow_upgrade=True))
    assert "one minor version at a time" in err.value.message
    assert "Upgrade to 1.34 first" in err.value.message


def test_major_change_fails(eks):
    client, stub = eks
    describe(stub, "1.36")
    with pytest.raises(AwsOperationError) as err:
        run(client, params(version="2.0", allow_upgrade=True))
    assert "one minor version at a time" in err.value.message


def test_upgrade_needs_the_explicit_variable(eks):
    client, stub = eks
    describe(stub, "1.34")
    with pytest.raises(AwsOperationError) as err:
        run(client, params(version="1.35", allow_upgrade=False))
    msg = err.value.message
    assert "cluster_allow_version_upgrade: true" in msg
    for reminder in ("node groups", "add-ons", "Karpenter", "alias"):
        assert reminder in msg, reminder


@pytest.mark.parametrize("bad", ["1.3.0", "latest", "v1.34", ""])
def test_invalid_desired_version_fails_after_the_read_only(eks, bad):
    client, stub = eks
    describe(stub, "1.34")
    with pytest.raises(AwsOperationError) as err:
        run(client, params(version=bad, allow_upgrade=True))
    assert "major.minor" in err.value.message


def test_parse_version():
    assert parse_version("1.34") == (1, 34) and parse_version(" 1.9 ") == (1, 9)
    assert parse_version("1.34") > parse_version("1.9")  # compared as numbers, not strings


# ---------------------------------------------------------------- the upgrade


def test_check_mode_reports_the_upgrade_without_writing(eks):
    client, stub = eks
    describe(stub, "1.34")  # only the read is queued: UpdateClusterVersion would fail the test
    res, warnings, clock = run(client, params(allow_upgrade=True), check_mode=True)
    assert res["changed"] is True
    assert res["cluster"]["version"] == "1.34"  # the live cluster, as it is
    assert res["diff"] == {"before": {"version": "1.34"}, "after": {"version": "1.35"}}
    assert res["eks_update"] == {} and clock.sleeps == [] and warnings == []


def test_upgrade_waits_for_successful_update(eks):
    client, stub = eks
    describe(stub, "1.34")
    stub.add_response("update_cluster_version", update("InProgress"), {"name": NAME, "version": "1.35"})
    stub.add_response("describe_update", update("InProgress"), {"name": NAME, "updateId": UPDATE_ID})
    stub.add_response("describe_update", update("Successful"), {"name": NAME, "updateId": UPDATE_ID})
    describe(stub, "1.35")
    res, warnings, clock = run(client, params(allow_upgrade=True))
    assert res["changed"] is True
    assert res["cluster"]["version"] == "1.35"
    assert res["eks_update"]["id"] == UPDATE_ID and res["eks_update"]["status"] == "Successful"
    assert res["eks_update"]["params"][0] == {"type": "Version", "value": "1.35"}
    assert clock.sleeps == [WAIT_DELAY]  # one InProgress answer, one pause
    assert warnings == [NEXT_STEPS.format(version="1.35")] == [res["next_steps"]]


def test_upgrade_without_wait_returns_the_started_update(eks):
    client, stub = eks
    describe(stub, "1.34")
    stub.add_response("update_cluster_version", update("InProgress"), {"name": NAME, "version": "1.35"})
    res, unused, clock = run(client, params(allow_upgrade=True, wait=False))
    assert res["changed"] is True and res["eks_update"]["status"] == "InProgress"
    assert UPDATE_ID in res["msg"] and clock.sleeps == []


def test_wait_times_out_with_the_update_id(eks):
    client, stub = eks
    describe(stub, "1.34")
    stub.add_response("update_cluster_version", update("InProgress"), {"name": NAME, "version": "1.35"})
    for _attempt in range(3):  # t=0, 30, 60 -> deadline 60 reached at the third answer
        stub.add_response("describe_update", update("InProgress"), {"name": NAME, "updateId": UPDATE_ID})
    with pytest.raises(AwsOperationError) as err:
        run(client, params(allow_upgrade=True, wait_timeout=60))
    assert UPDATE_ID in err.value.message and "still InProgress after 60 s" in err.value.message
    assert "run again" in err.value.message


def test_failed_update_reports_the_errors(eks):
    client, stub = eks
    describe(stub, "1.34")
    stub.add_response("update_cluster_version", update("InProgress"), {"name": NAME, "version": "1.35"})
    errors = [{"errorCode": "InsufficientFreeAddresses", "errorMessage": "subnet has too few IPs", "resourceIds": []}]
    stub.add_response("describe_update", update("Failed", errors=errors), {"name": NAME, "updateId": UPDATE_ID})
    with pytest.raises(AwsOperationError) as err:
        run(client, params(allow_upgrade=True))
    assert "ended Failed" in err.value.message and "InsufficientFreeAddresses" in err.value.message


def test_update_in_progress_is_waited_for_not_started_twice(eks):
    """A previous run timed out: the cluster is UPDATING with a VersionUpdate to the desired version."""
    client, stub = eks
    describe(stub, "1.34", status="UPDATING")
    other = "0a1b2c3d-0000-4000-8000-000000000000"
    stub.add_response("list_updates", {"updateIds": [other], "nextToken": "page2"}, {"name": NAME})
    stub.add_response(
        "describe_update", update("Successful", version="1.34", uid=other), {"name": NAME, "updateId": other}
    )
    stub.add_response("list_updates", {"updateIds": [UPDATE_ID]}, {"name": NAME, "nextToken": "page2"})
    stub.add_response("describe_update", update("InProgress"), {"name": NAME, "updateId": UPDATE_ID})
    # no update_cluster_version queued
    stub.add_response("describe_update", update("Successful"), {"name": NAME, "updateId": UPDATE_ID})
    describe(stub, "1.35")
    res, unused, clock = run(client, params(allow_upgrade=True))
    assert res["changed"] is True and res["cluster"]["version"] == "1.35"
    assert res["eks_update"]["status"] == "Successful" and clock.sleeps == []


def test_update_in_progress_to_another_version_fails(eks):
    client, stub = eks
    describe(stub, "1.34", status="UPDATING")
    stub.add_response("list_updates", {"updateIds": [UPDATE_ID]}, {"name": NAME})
    stub.add_response("describe_update", update("InProgress", version="1.36"), {"name": NAME, "updateId": UPDATE_ID})
    with pytest.raises(AwsOperationError) as err:
        run(client, params(allow_upgrade=True))
    assert "in progress, not to 1.35" in err.value.message


# ---------------------------------------------------------------- the module stays thin and documented


def test_module_documents_exactly_its_arguments(monkeypatch):
    from ansible_collections.karpenter_eks.platform.plugins.modules import eks_cluster_version as mod

    captured = {}

    def fake_run(argument_spec, service, ensure, validate=None, prepare=None, **module_kwargs):
        captured.update(spec=argument_spec, service=service, ensure=ensure, validate=validate, prepare=prepare)

    monkeypatch.setattr(mod, "run_aws_module", fake_run)
    mod.main()
    doc = yaml.safe_load(mod.DOCUMENTATION)
    assert set(doc["options"]) == set(captured["spec"])
    for name, spec in captured["spec"].items():
        assert doc["options"][name]["type"] == spec["type"], name
        assert doc["options"][name].get("default") == spec.get("default"), name
    assert captured["service"] == "eks" and captured["ensure"] is ensure_cluster_version
    warned = []

    class Module:
        warn = warned.append

    assert captured["prepare"](Module, None) == {"warn": Module.warn}
    assert captured["validate"] is validate_version
