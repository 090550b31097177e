# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Desired-state logic of iam_managed_policies: many customer managed IAM policies in one process.

Reads: one ``ListPolicies`` (Scope=Local, paginated) finds the policies by name (IAM policy names are unique in an
account, case-insensitively); then per existing policy ``GetPolicy`` (description, tags) and ``GetPolicyVersion`` of
its default version, up to four in flight. A converged batch sends nothing else.

Writes, only for what differs and never in check mode: ``CreatePolicy``; ``CreatePolicyVersion`` (SetAsDefault)
when the default version's document differs - compared as IAM evaluates it (statement order, the order of
actions/resources/condition values, a single value vs a one-element list and the default ``Version`` do not count),
after ``DeletePolicyVersion`` of the oldest non-default version when the policy already has the 5 versions IAM
allows; ``TagPolicy``/``UntagPolicy``; for ``state=absent`` the policy is detached from every role, user and group,
its non-default versions deleted, then the policy itself.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags

from ..errors import InputError
from .api import call, call_missing_ok, paginate
from .batch import check_tags, load_json_field, read_all, tag_dict, tag_list

NAME_RE = re.compile(r"^[\w+=,.@-]{1,128}$")
PATH_RE = re.compile(r"^(/|/[\x21-\x29\x2b-\x7e]{1,510}/)$")  # '/' or '/.../' of printable ASCII without '*'
MAX_DOCUMENT_CHARS = 6144  # IAM quota for a managed policy document, whitespace not counted
MAX_VERSIONS = 5
DEFAULT_POLICY_VERSION = "2008-10-17"  # what IAM assumes when a document has no Version
SET_VALUED = ("Action", "NotAction", "Resource", "NotResource")
PRINCIPAL_KEYS = ("Principal", "NotPrincipal")

# ---------------------------------------------------------------- comparison (pure)


def _scalar(value):
    """IAM stores condition values as strings: true/1 and "true"/"1" are the same condition."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _value_set(value):
    values = value if isinstance(value, list) else [value]
    return sorted(set(json.dumps(_scalar(v), sort_keys=True) for v in values))


def _generic(value):
    if isinstance(value, dict):
        return dict((k, _generic(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_generic(v) for v in value]
    return value


def _statement(stmt):
    if not isinstance(stmt, dict):
        return _generic(stmt)
    out = {}
    for key, value in stmt.items():
        if key in SET_VALUED:
            out[key] = _value_set(value)
        elif key in PRINCIPAL_KEYS:
            if value == "*":
                value = {"AWS": "*"}
            out[key] = dict((k, _value_set(v)) for k, v in value.items()) if isinstance(value, dict) else value
        elif key == "Condition" and isinstance(value, dict):
            out[key] = dict(
                (op, dict((k, _value_set(v)) for k, v in keys.items()) if isinstance(keys, dict) else keys)
                for op, keys in value.items()
            )
        else:
            out[key] = _generic(value)
    return out


def canonical_policy(document: Any) -> Any:
    """A form of a policy document in which two documents IAM evaluates identically are equal."""
    if not isinstance(document, dict):
        return document
    out = dict((k, _generic(v)) for k, v in document.items() if k != "Statement")
    out.setdefault("Version", DEFAULT_POLICY_VERSION)
    statements = document.get("Statement", [])
    if not isinstance(statements, list):
        statements = [statements]
    out["Statement"] = sorted(
        set(json.dumps(_statement(s), sort_keys=True) for s in statements)
    )  # a set: IAM evaluates every statement, in no order, and a duplicate adds nothing
    return out


def same_policy(a: Any, b: Any) -> bool:
    return canonical_policy(a) == canonical_policy(b)


def document_text(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"))


# ---------------------------------------------------------------- input


def _check_document(document, field):
    document = load_json_field(document, field)
    if not isinstance(document, dict):
        raise InputError("%s: a policy document is a JSON object, not %s" % (field, type(document).__name__))
    if document.get("Version") not in (None, "2012-10-17", "2008-10-17"):
        raise InputError(
            "%s.Version: %r is not an IAM policy language version (2012-10-17)" % (field, document["Version"])
        )
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise InputError("%s.Statement: required, a statement or a non-empty list of statements" % field)
    for i, stmt in enumerate(statements):
        where = "%s.Statement[%d]" % (field, i)
        if not isinstance(stmt, dict):
            raise InputError("%s: a statement is an object" % where)
        if stmt.get("Effect") not in ("Allow", "Deny"):
            raise InputError("%s.Effect: must be Allow or Deny, got %r" % (where, stmt.get("Effect")))
        if not ("Action" in stmt or "NotAction" in stmt):
            raise InputError("%s: needs Action or NotAction" % where)
        if not ("Resource" in stmt or "NotResource" in stmt):
            raise InputError("%s: needs Resource or NotResource (an identity policy names what it grants)" % where)
        for key in PRINCIPAL_KEYS:
            if key in stmt:
                raise InputError("%s.%s: a managed (identity) policy cannot name a principal" % (where, key))
    size = len(re.sub(r"\s+", "", document_text(document)))
    if size > MAX_DOCUMENT_CHARS:
        raise InputError(
            "%s: %d characters without whitespace; IAM allows %d in a managed policy"
            % (field, size, MAX_DOCUMENT_CHARS)
        )
    return document


def validate_policies(params: dict) -> list[dict]:
    """The module input as a list of desired policies; InputError names the first bad field."""
    default_tags = check_tags(params.get("tags"), "tags")
    seen = {}
    out = []
    for i, item in enumerate(params["policies"] or []):
        field = "policies[%d]" % i
        name = item.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise InputError(
                "%s.name: %r is not an IAM policy name (1-128 of letters, digits and +=,.@_-)" % (field, name)
            )
        if name.lower() in seen:
            raise InputError(
                "%s.name: %s is already policies[%d] (IAM policy names are unique, case-insensitively)"
                % (field, name, seen[name.lower()])
            )
        seen[name.lower()] = i
        field = "policies[%d] (%s)" % (i, name)
        state = item.get("state") or params["state"]
        path = item.get("path") or "/"
        if not PATH_RE.match(path):
            raise InputError("%s.path: %r must be / or start and end with / (printable ASCII, no *)" % (field, path))
        description = item.get("description")
        if description is not None and len(description) > 1000:
            raise InputError("%s.description: %d characters; IAM allows 1000" % (field, len(description)))
        document = None
        if state == "present":
            if item.get("document") is None:
                raise InputError("%s.document: required when state is present" % field)
            document = _check_document(item["document"], field + ".document")
        tags = check_tags(item.get("tags"), field + ".tags")
        out.append(
            {
                "index": i,
                "name": name,
                "state": state,
                "path": path,
                "description": description,
                "document": document,
                "tags": tags if tags is not None else default_tags,
            }
        )
    if not out:
        raise InputError("policies: at least one policy is required")
    return out


# ---------------------------------------------------------------- read, plan, write


def _read(client, listed):
    if listed is None:
        return None
    arn = listed["Arn"]
    got = call_missing_ok("get policy " + arn, client.get_policy, "NoSuchEntity", PolicyArn=arn)
    if got is None:  # deleted since the listing
        return None
    policy = got["Policy"]
    version = call(
        "get the default version of policy " + arn,
        client.get_policy_version,
        PolicyArn=arn,
        VersionId=policy["DefaultVersionId"],
    )["PolicyVersion"]
    document = version["Document"]
    if isinstance(document, str):  # botocore decodes it; IAM's raw form is URL-encoded JSON
        document = json.loads(unquote(document))
    return {
        "arn": arn,
        "name": policy["PolicyName"],
        "path": policy.get("Path", "/"),
        "description": policy.get("Description"),
        "default_version_id": policy["DefaultVersionId"],
        "document": document,
        "tags": tag_dict(policy.get("Tags")),
    }


def _view(policy):
    if not policy:
        return {}
    return dict((k, policy.get(k)) for k in ("name", "path", "description", "document", "tags"))


def _delete(client, arn, check_mode):
    if check_mode:
        return
    entities = paginate(
        "list the entities policy %s is attached to" % arn, client, "list_entities_for_policy", PolicyArn=arn
    )
    for role in entities.get("PolicyRoles", []):
        call(
            "detach policy %s from role %s" % (arn, role["RoleName"]),
            client.detach_role_policy,
            RoleName=role["RoleName"],
            PolicyArn=arn,
        )
    for user in entities.get("PolicyUsers", []):
        call(
            "detach policy %s from user %s" % (arn, user["UserName"]),
            client.detach_user_policy,
            UserName=user["UserName"],
            PolicyArn=arn,
        )
    for group in entities.get("PolicyGroups", []):
        call(
            "detach policy %s from group %s" % (arn, group["GroupName"]),
            client.detach_group_policy,
            GroupName=group["GroupName"],
            PolicyArn=arn,
        )
    versions = call("list the versions of policy " + arn, client.list_policy_versions, PolicyArn=arn)["Versions"]
    for v in versions:
        if not v["IsDefaultVersion"]:
            call(
                "delete version %s of policy %s" % (v["VersionId"], arn),
                client.delete_policy_version,
                PolicyArn=arn,
                VersionId=v["VersionId"],
            )
    call("delete policy " + arn, client.delete_policy, PolicyArn=arn)


def _new_version(client, arn, text):
    versions = call("list the versions of policy " + arn, client.list_policy_versions, PolicyArn=arn)["Versions"]
    if len(versions) >= MAX_VERSIONS:
        old = sorted((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
        if old:
            call(
                "delete the oldest version %s of policy %s (IAM keeps %d)" % (old[0]["VersionId"], arn, MAX_VERSIONS),
                client.delete_policy_version,
                PolicyArn=arn,
                VersionId=old[0]["VersionId"],
            )
    return call(
        "create a new default version of policy " + arn,
        client.create_policy_version,
        PolicyArn=arn,
        PolicyDocument=text,
        SetAsDefault=True,
    )["PolicyVersion"]["VersionId"]


def ensure_managed_policies(client: Any, params: dict, check_mode: bool, desired: list[dict]) -> dict:
    purge_tags = params.get("purge_tags", True)
    # all of them, not only under the desired paths: a name is unique in the account whatever the path
    listed = paginate(
        "list the customer managed policies",
        client,
        "list_policies",
        Scope="Local",
    ).get("Policies", [])
    by_name = dict((p["PolicyName"].lower(), p) for p in listed)
    lives = read_all(lambda d: _read(client, by_name.get(d["name"].lower())), desired)

    results, diffs, warnings = [], [], []
    for want, live in zip(desired, lives):  # noqa: B905 - read_all keeps length and order
        name = want["name"]
        changes = []
        if want["state"] == "absent":
            after = None
            if live:
                changes.append("deleted")
                _delete(client, live["arn"], check_mode)
        elif live is None:
            changes.append("created")
            after = {
                "arn": None,
                "name": name,
                "path": want["path"],
                "description": want["description"],
                "default_version_id": None,
                "document": want["document"],
                "tags": dict(want["tags"] or {}),
            }
            if not check_mode:
                request = {"PolicyName": name, "Path": want["path"], "PolicyDocument": document_text(want["document"])}
                if want["description"]:
                    request["Description"] = want["description"]
                if want["tags"]:
                    request["Tags"] = tag_list(want["tags"])
                created = call("create policy " + name, client.create_policy, **request)["Policy"]
                after.update(arn=created["Arn"], default_version_id=created.get("DefaultVersionId", "v1"))
        else:
            after = dict(live)
            arn = live["arn"]
            if want["path"] != live["path"]:
                warnings.append(
                    "policy %s: its path is %s, not %s; IAM cannot change a policy's path (delete and recreate it)"
                    % (name, live["path"], want["path"])
                )
            if want["description"] is not None and want["description"] != (live["description"] or ""):
                warnings.append(
                    "policy %s: its description is %r, not %r; IAM cannot change a policy's description"
                    % (name, live["description"], want["description"])
                )
            if not same_policy(live["document"], want["document"]):
                changes.append("document")
                after["document"] = want["document"]
                if not check_mode:
                    after["default_version_id"] = _new_version(client, arn, document_text(want["document"]))
            if want["tags"] is not None:
                to_set, to_unset = compare_aws_tags(live["tags"], want["tags"], purge_tags)
                if to_set or to_unset:
                    changes.append("tags")
                    tags = dict((k, v) for k, v in live["tags"].items() if k not in to_unset)
                    tags.update(to_set)
                    after["tags"] = tags
                    if not check_mode and to_unset:
                        call("untag policy " + arn, client.untag_policy, PolicyArn=arn, TagKeys=to_unset)
                    if not check_mode and to_set:
                        call("tag policy " + arn, client.tag_policy, PolicyArn=arn, Tags=tag_list(to_set))
        result = dict(after or live or {"name": name}, state=want["state"], changed=bool(changes), changes=changes)
        result.setdefault("arn", None)
        results.append(result)
        if changes:
            header = "IAM policy %s" % name
            diffs.append(
                {"before": _view(live), "after": _view(after), "before_header": header, "after_header": header}
            )
    return {
        "changed": any(r["changed"] for r in results),
        "policies": results,
        "diff": diffs,
        "warnings": warnings,
    }
