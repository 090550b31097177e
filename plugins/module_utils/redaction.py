# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a credential looks like, in text and under a key (no Ansible import).

One set of rules for the two places that must not let a credential through: ``karpenter_backup`` redacts values
that match them (backup.core.redact), and the module layer (glue.kube_module.KubeModule) makes the credentials found in its
parameters - a password in user data, a token in a ConfigMap - no_log values, so that no result, ``invocation`` or
``-vvv`` output shows them.
"""

from __future__ import annotations

import re

SECRET_KEY_RE = re.compile(
    r"(?i)(passw(or)?d|secret|token|credential|private[-_]?key|api[-_]?key|access[-_]?key|auth[-_]?key|"
    r"client[-_]?key|session[-_]?key|bearer|\bpwd\b|tls\.key|\.pem$|kubeconfig)"
)
# Names of credentials as they appear in scripts, env files, INI files, JSON and YAML text (userData, ConfigMap
# values): an optional prefix (``PG``, ``MYSQL_ROOT_``, ``--``, ``aws_``) and one of these words.
_CRED_WORD = (
    r"(?:secret[-_]?access[-_]?key|session[-_]?token|secret[-_]?key|client[-_]?secret|client[-_]?key[-_]?data|"
    r"api[-_]?key|access[-_]?token|refresh[-_]?token|auth[-_]?token|account[-_]?key|token|passw(?:or)?d|pwd)"
)
# a value: not empty, not a reference to something else ($VAR, ${VAR}, {{ jinja }})
_NOT_REF = r"(?![$]|\{\{)"
# the value, captured as group v (what a module masks in its output)
_CRED_VALUE = r"(?P<v>" + _NOT_REF + r"[^\s'\"]+)"
SECRET_VALUE_RES = (
    ("aws-access-key-id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    (
        "private-key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?P<v>[^-]*)"),
    ),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    # EKS/IAM authenticator tokens (a presigned STS URL), with or without "Bearer"
    ("eks-token", re.compile(r"\bk8s-aws-v1\.[A-Za-z0-9_-]{16,}")),
    # Authorization: Bearer/Basic/... <credential>; "Bearer <token>" anywhere (a token has a digit or a dot)
    (
        "authorization-header",
        re.compile(r"(?i)\bauthorization['\"]?\s*[:=]\s*['\"]?(?:[a-z0-9-]+\s+)?(?P<v>[A-Za-z0-9._~+/=-]{8,})"),
    ),
    ("bearer-token", re.compile(r"(?i)\bbearer\s+(?=[A-Za-z._~+/=-]*[0-9.])(?P<v>[A-Za-z0-9._~+/=-]{8,})")),
    # scheme://user:password@host
    (
        "url-credentials",
        re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:" + r"(?P<v>" + _NOT_REF + r"[^/\s@'\"]+)@"),
    ),
    # well-known token formats: GitHub, GitLab, Slack
    ("api-token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{30,}|glpat-[A-Za-z0-9_-]{20,}|xox[abprs]-[A-Za-z0-9-]{10,})")),
    # aws configure set [profile.]aws_secret_access_key VALUE
    (
        "credential-argument",
        re.compile(
            r"(?i)\baws\s+configure\s+set\s+(?:[\w.-]+\.)?(?:aws_secret_access_key|aws_session_token|"
            r"aws_security_token)\s+['\"]?" + _CRED_VALUE
        ),
    ),
    # --password VALUE, --token VALUE (the --flag=VALUE form is a credential-assignment)
    (
        "credential-argument",
        re.compile(r"(?i)(?<![\w-])--[a-z0-9-]*(?:password|passwd|token|secret|api-key)\s+['\"]?(?!-)" + _CRED_VALUE),
    ),
    # mysql -pPASSWORD (lower-case -p glued to the value; -P is the port)
    (
        "credential-argument",
        re.compile(
            r"\b(?i:mysql|mysqldump|mysqladmin|mysqlimport|mysqlcheck|mysqlshow|mariadb|mariadb-dump)\b"
            r"[^\n|;&]*?\s-p(?:'(?P<v>[^']+)'|\"(?P<v2>[^\"]+)\"|(?P<v3>[^\s'\"-][^\s'\"]*))"
        ),
    ),
    # PGPASSWORD=x, MYSQL_PWD=x, export DB_TOKEN=x: an upper-case variable naming a credential, any length
    (
        "credential-assignment",
        re.compile(
            r"(?<![A-Za-z0-9_])[A-Z0-9_]*(?:PASSWORD|PASSWD|PWD|SECRET|SECRET_ACCESS_KEY|SESSION_TOKEN|TOKEN|API_KEY)"
            r"=['\"]?" + _CRED_VALUE
        ),
    ),
    # password=..., "SecretAccessKey": "...", aws_secret_access_key = ..., --password=..., token: ...
    (
        "credential-assignment",
        re.compile(
            r"(?i)(?<![a-z0-9])[a-z0-9_.-]*?"
            + _CRED_WORD
            + r"['\"]?\s*[=:]\s*['\"]?"
            + r"(?P<v>"
            + _NOT_REF
            + r"[^\s'\"$]{6,})"
        ),
    ),
)


def secret_reason(value: str) -> str | None:
    """The reason (a SECRET_VALUE_RES name) ``value`` holds a credential, or None."""
    for reason, rx in SECRET_VALUE_RES:
        if rx.search(value):
            return reason
    return None


# values shorter than this are not masked: Ansible masks every occurrence of a no_log value in the whole output
MIN_MASKED = 6


def _value(match: re.Match) -> str:
    groups = match.groupdict()
    for name in ("v", "v2", "v3"):
        if groups.get(name):
            return groups[name].strip()
    return match.group(0)


# Every match of SECRET_VALUE_RES contains one of these (case aside): one scan decides that most strings (label
# keys, instance types, names) hold no credential, before the 13 patterns run (a module with 500 NodePools scans
# ~15,000 strings). tests/unit/test_redaction.py checks the claim on every example it has.
_MAY_HOLD_SECRET = re.compile(
    r"(?i)akia|asia|private key|eyj|k8s-aws-v1|authorization|bearer|://|gh[pousr]_|glpat-|xox[abprs]-|secret|token|"
    r"passw|pwd|api[-_]?key|account[-_]?key|client[-_]?key|mysql|mariadb"
)


def secrets_in(text: str) -> set[str]:
    """The credential substrings of ``text`` (the values, without the key or flag that names them)."""
    out: set[str] = set()
    if len(text) < MIN_MASKED or not _MAY_HOLD_SECRET.search(text):
        return out
    for rx in (pattern for reason, pattern in SECRET_VALUE_RES):
        for match in rx.finditer(text):
            value = _value(match)
            if len(value) >= MIN_MASKED:
                out.add(value)
    return out


def secret_values(obj: object) -> set[str]:
    """Credentials in a module's parameters: found in any string (secrets_in), plus the values of a Secret's
    ``data``/``stringData`` and those of a ConfigMap's ``data`` under a key that names a secret (SECRET_KEY_RE)."""
    out: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            kind = node.get("kind")
            if kind in ("ConfigMap", "Secret"):
                for field in ("data", "stringData"):
                    data = node.get(field)
                    if isinstance(data, dict):
                        for key, value in data.items():
                            secret = kind == "Secret" or (isinstance(key, str) and SECRET_KEY_RE.search(key))
                            if secret and isinstance(value, str) and len(value) >= MIN_MASKED:
                                out.add(value)
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            out.update(secrets_in(node))

    walk(obj)
    return out
