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


def _unfiltered(text):
    """secrets_in without its pre-filter: every pattern on every text."""
    out = set()
    for _reason, rx in redaction.SECRET_VALUE_RES:
        for match in rx.finditer(text):
            value = redaction._value(match)
            if len(value) >= redaction.MIN_MASKED:
                out.add(value)
    return out


ONE_PER_PATTERN = [
    "key AKIAABCDEFGHIJKLMNOP here",
    "-----BEGIN RSA PRIVATE KEY-----MIIEabc",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
    "k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdz",
    "Authorization: Basic dXNlcjpwYXNzd29yZA==",
    "use bearer abc.def12345 now",
    "postgres://app:s3cr3tpw@db:5432/x",
    "ghp_" + "a" * 36,
    "glpat-" + "b" * 20,
    "xoxb-1234567890-abc",
    "aws configure set default.aws_session_token FwoGZXIvYXdzEJr",
    "--api-key sk_live_123456",
    "mariadb -u root -pRootPass1",
    "export DB_TOKEN=abcdef123",
    'client_secret: "kjhgfdsa987"',
    "accountKey=Zm9vYmFyYmF6cXV4",
]


@pytest.mark.parametrize("text", ONE_PER_PATTERN)
def test_the_pre_filter_keeps_every_credential(text):
    assert _unfiltered(text), "the example must hold a credential: %r" % text
    assert redaction.secrets_in(text) == _unfiltered(text)


def test_the_pre_filter_never_changes_the_answer_on_random_text():
    import random

    pieces = [
        "password", "PASSWORD", "passwd", "pwd", "Secret", "token", "api_key", "Api-Key", "accountKey", "client_key",
        "AKIA", "ASIA", "PRIVATE KEY", "-----BEGIN ", "-----", "eyJ", ".", "k8s-aws-v1.", "Authorization", "Bearer ",
        "https://", "u:", "@", "ghp_", "glpat-", "xoxb-", "mysql ", " -p", "aws configure set ", "aws_session_token ",
        "--", "=", ": ", '"', "'", " ", "\n", "$", "{{", "abcdefgh", "12345678", "ZYXWVUTSRQPO", "x9/+_-",
    ]  # fmt: skip
    rng = random.Random(20261207)
    for _round in range(4000):
        text = "".join(rng.choice(pieces) for _piece in range(rng.randrange(1, 14)))
        assert redaction.secrets_in(text) == _unfiltered(text), text
