"""The one AWS credential option set (module_utils/aws/credentials.py) of karpenter_backup and
karpenter_cost_report: amazon.aws's names and aliases, every old name still accepted, and what reaches boto3.

boto3.session.Session is replaced by a recorder whose clients are never made (nothing leaves the process): the
test asserts the keyword arguments the module's options become.
"""

import json
import os

import boto3
import pytest
import yaml
from ansible.module_utils.testing import patch_module_args
from ansible_collections.amazon.aws.plugins.module_utils.modules import aws_argument_spec
from ansible_collections.karpenter_eks.platform.plugins.doc_fragments.aws_credentials import ModuleDocFragment
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws import credentials
from ansible_collections.karpenter_eks.platform.plugins.modules import karpenter_backup, karpenter_cost_report
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC

# (option as the user writes it, value, where boto3 gets it: ("session" | "client", keyword))
ALIASES = [
    ("access_key", "AKIDNEW", ("session", "aws_access_key_id")),
    ("aws_access_key_id", "AKIDOLD", ("session", "aws_access_key_id")),  # karpenter_backup's old alias
    ("aws_access_key", "AKIDCOST", ("session", "aws_access_key_id")),  # karpenter_cost_report's old name
    ("secret_key", "s1", ("session", "aws_secret_access_key")),
    ("aws_secret_access_key", "s2", ("session", "aws_secret_access_key")),
    ("aws_secret_key", "s3", ("session", "aws_secret_access_key")),
    ("session_token", "t1", ("session", "aws_session_token")),
    ("aws_session_token", "t2", ("session", "aws_session_token")),
    ("profile", "p1", ("session", "profile_name")),
    ("aws_profile", "p2", ("session", "profile_name")),  # both modules' old name
    ("region", "eu-west-1", ("session", "region_name")),
    ("aws_region", "eu-west-2", ("session", "region_name")),  # karpenter_backup's old name
    ("endpoint_url", "http://127.0.0.1:1", ("client", "endpoint_url")),
    ("aws_endpoint_url", "http://127.0.0.1:2", ("client", "endpoint_url")),
]


class Recorded(Exception):
    """Raised instead of making a client: nothing is sent."""


@pytest.fixture
def boto3_seen(monkeypatch):
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k)
    seen = {"session": None, "clients": []}

    class Session:
        def __init__(self, **kwargs):
            seen["session"] = kwargs

        def client(self, service, **kwargs):
            seen["clients"].append((service, kwargs))
            raise Recorded(service)

    monkeypatch.setattr(boto3.session, "Session", Session)
    return seen


def reached(seen, where, keyword):
    if where == "session":
        return seen["session"].get(keyword)
    values = {kwargs.get(keyword) for _service, kwargs in seen["clients"]}
    assert len(values) == 1, values  # every client the same
    return values.pop()


@pytest.mark.parametrize("option,value,target", ALIASES, ids=[a[0] for a in ALIASES])
def test_backup_credential_options_reach_boto3(option, value, target, boto3_seen, tmp_path):
    args = {"state": "listed", "s3_bucket": "bkt", option: value}
    with patch_module_args(args), pytest.raises(Recorded):
        karpenter_backup.main()
    assert reached(boto3_seen, *target) == value
    assert [s for s, _kw in boto3_seen["clients"]] == ["s3"]
    # nothing else was made up: only the given option reached boto3
    given = {k: v for k, v in boto3_seen["session"].items() if v is not None}
    assert given == ({target[1]: value} if target[0] == "session" else {})


@pytest.mark.parametrize("option,value,target", ALIASES, ids=[a[0] for a in ALIASES])
def test_cost_report_credential_options_reach_boto3(option, value, target, boto3_seen, capsys):
    args = {"cluster_name": "c1", "sources": ["cost_explorer"], option: value}
    with patch_module_args(args), pytest.raises(SystemExit):
        karpenter_cost_report.main()
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] is False and not out.get("failed"), out
    assert reached(boto3_seen, *target) == value
    assert [s for s, _kw in boto3_seen["clients"]] == ["ce"]
    assert any(n.startswith("cost_explorer:") for n in out["notes"])  # the client was refused: a note


def test_spec_has_amazon_aws_names_and_aliases():
    theirs = aws_argument_spec()
    for name, spec in credentials.AWS_CREDENTIALS_SPEC.items():
        assert name in theirs, name
        assert set(theirs[name].get("aliases", [])) <= set(spec["aliases"]), name
        assert bool(spec.get("no_log")) == bool(theirs[name].get("no_log")), name


def test_spec_does_not_clash_with_kubernetes_core():
    names = set()
    for name, spec in credentials.AWS_CREDENTIALS_SPEC.items():
        names |= {name, *spec.get("aliases", [])}
    kube = set()
    for name, spec in AUTH_ARG_SPEC.items():
        kube |= {name, *spec.get("aliases", [])}
    assert not names & kube


def test_doc_fragment_documents_the_spec():
    doc = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert set(doc) == set(credentials.AWS_CREDENTIALS_SPEC)
    for name, spec in credentials.AWS_CREDENTIALS_SPEC.items():
        assert doc[name]["type"] == spec["type"] and doc[name]["aliases"] == spec["aliases"], name


@pytest.mark.parametrize("module", [karpenter_backup, karpenter_cost_report])
def test_both_modules_use_the_spec_and_the_fragment(module):
    spec = module.argument_spec() if hasattr(module, "argument_spec") else module._argument_spec()
    for name, option in credentials.AWS_CREDENTIALS_SPEC.items():
        assert spec[name] == option, name
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert "karpenter_eks.platform.aws_credentials" in doc["extends_documentation_fragment"]
    assert not set(doc["options"]) & set(credentials.AWS_CREDENTIALS_SPEC)  # documented by the fragment only


def test_helpers_pass_only_what_is_set():
    params = dict.fromkeys(credentials.AWS_CREDENTIALS_SPEC)
    assert credentials.session_kwargs(params) == {} and credentials.client_kwargs(params) == {}
    params.update(profile="p", endpoint_url="http://127.0.0.1:1")
    assert credentials.session_kwargs(params) == {"profile_name": "p"}
    assert credentials.client_kwargs(params) == {"endpoint_url": "http://127.0.0.1:1"}
