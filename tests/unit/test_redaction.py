"""redaction: the credential values found in text and in module parameters (what the module layer masks)."""

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils import redaction

S = "Zx9/kQ2+wEr7tYu1iOp3aSd5fGh8jKl0mNb4vCx6"


@pytest.mark.parametrize(
    "text,value",
    [
        ("aws configure set aws_secret_access_key %s" % S, S),
        ('{"SecretAccessKey": "%s"}' % S, S),
        ("Authorization: Bearer k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdz", "k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdz"),
        ("mysql -u app -p'pa ss word' db", "pa ss word"),
        ("mysql -u app -psecret12 db", "secret12"),
        ("PGPASSWORD=pgsecret psql", "pgsecret"),
        ("git clone https://deploy:hunter22@git.example.com/r.git", "hunter22"),
        ("helm repo add x https://x --password %s" % S, S),
    ],
)
def test_secrets_in_returns_the_value_only(text, value):
    found = redaction.secrets_in("#!/bin/sh\n%s\necho ok\n" % text)
    assert value in found
    assert all("echo" not in v and "aws configure" not in v and "PGPASSWORD" not in v for v in found)


def test_short_values_and_references_are_not_masked():
    assert redaction.secrets_in("mysql -u app -pabc db") == set()  # too short to mask safely
    assert redaction.secrets_in("PGPASSWORD=$DB_PASSWORD psql; password: '{{ vault_pw }}'") == set()


def test_secret_values_of_parameters():
    params = {
        "definitions": [
            {"kind": "ConfigMap", "data": {"db_password": "cm-secret-1", "region": "us-east-1", "token": "x"}},
            {"kind": "Secret", "stringData": {"anything": "sec-value-2"}},
            {"kind": "NodePool", "spec": {"template": {"metadata": {"labels": {"password": "not-data"}}}}},
        ],
        "spec": {
            "userData": "aws configure set aws_session_token %s" % S,
            "metadataOptions": {"httpTokens": "required"},
        },
    }
    assert redaction.secret_values(params) == {"cm-secret-1", "sec-value-2", S}
