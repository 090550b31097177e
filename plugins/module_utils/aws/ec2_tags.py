# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Desired-state logic of ec2_tags: one set of tags on many EC2 resources with one read and at most one write of
each kind.

Reads: ``DescribeSubnets``/``DescribeSecurityGroups`` only when filters are given (their answers carry the tags),
and one ``DescribeTags`` (resource-id filter, up to 200 ids per call, paginated) for the other resources.

Writes, never in check mode: one ``CreateTags`` for every resource that lacks a tag or has another value (with the
union of the tags that differ anywhere - rewriting a tag to the value it already has changes nothing), and one
``DeleteTags`` for ``purge_tags``/``state=absent`` (AWS limits: 1,000 resources per call, so more only beyond that).
"""

from __future__ import annotations

import re
from typing import Any

from ansible_collections.amazon.aws.plugins.module_utils.transformation import ansible_dict_to_boto3_filter_list

from ..errors import InputError
from .api import call, paginate
from .batch import check_tags, chunks, tag_dict

RESOURCE_ID_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*-[0-9a-f]{8}([0-9a-f]{9})?$")
DESCRIBE_IDS_PER_CALL = 200  # values of one filter
WRITE_IDS_PER_CALL = 1000  # resources of one CreateTags/DeleteTags


def _unique(items):
    seen = set()
    return [i for i in items if not (i in seen or seen.add(i))]


# ---------------------------------------------------------------- planning (pure)


def plan_tags(current: dict, resources: list, tags: dict, state: str = "present", purge: bool = False) -> dict:
    """What to write so that every resource of ``resources`` has ``tags`` (or, absent, has them no longer).

    ``current``: resource id -> its tags. Returns a dict with ``create`` (tags, resources), ``delete`` (tag list for
    DeleteTags, resources) and ``resources``: per resource ``before``/``after``/``changed``.
    """
    create_tags, create_on, delete_keys, delete_on, per = {}, [], {}, [], []
    for rid in resources:
        before = dict(current.get(rid) or {})
        after = dict(before)
        if state == "present":
            to_set = dict((k, v) for k, v in tags.items() if before.get(k) != v)
            to_delete = (
                dict((k, None) for k in before if k not in tags and not k.lower().startswith("aws:")) if purge else {}
            )
        else:
            to_set = {}
            to_delete = dict((k, v) for k, v in tags.items() if k in before and (v is None or before[k] == v))
        if to_set:
            create_tags.update(to_set)
            create_on.append(rid)
            after.update(to_set)
        if to_delete:
            delete_keys.update(to_delete)
            delete_on.append(rid)
            for k in to_delete:
                after.pop(k, None)
        per.append({"resource_id": rid, "before": before, "after": after, "changed": before != after})
    delete_list = [{"Key": k} if v is None else {"Key": k, "Value": v} for k, v in sorted(delete_keys.items())]
    return {
        "create": {"tags": [{"Key": k, "Value": v} for k, v in sorted(create_tags.items())], "resources": create_on},
        "delete": {"tags": delete_list, "resources": delete_on},
        "resources": per,
    }


# ---------------------------------------------------------------- input


def _check_filters(filters, field):
    if filters is None:
        return {}
    if not isinstance(filters, dict):
        raise InputError("%s: expected a dict of EC2 filter names to values" % field)
    for key, value in filters.items():
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (str, int, bool)) for v in values):
            raise InputError("%s.%s: filter values are strings (or a list of strings)" % (field, key))
    return filters


def validate_tags(params: dict) -> dict:
    resources = []
    for i, rid in enumerate(params.get("resources") or []):
        if not isinstance(rid, str) or not RESOURCE_ID_RE.match(rid):
            raise InputError(
                "resources[%d]: %r is not an EC2 resource id (<type>-<8 or 17 hex digits>, e.g. subnet-0123456789abcdef0)"
                % (i, rid)
            )
        resources.append(rid)
    state = params.get("state") or "present"
    tags = check_tags(params.get("tags"), "tags", max_key=127, max_value=255, allow_none=(state == "absent"))
    if not tags:
        raise InputError("tags: at least one tag is required")
    return {
        "resources": _unique(resources),
        "subnet_filters": _check_filters(params.get("subnet_filters"), "subnet_filters"),
        "security_group_filters": _check_filters(params.get("security_group_filters"), "security_group_filters"),
        "tags": tags,
        "state": state,
        "purge": bool(params.get("purge_tags")) and state == "present",
        "require_subnets": bool(params.get("require_subnets")),
    }


# ---------------------------------------------------------------- read, plan, write


def ensure_tags(client: Any, params: dict, check_mode: bool, desired: dict) -> dict:
    current = {}
    found_subnets, found_groups = [], []
    if desired["subnet_filters"]:
        subnets = paginate(
            "describe the subnets matching subnet_filters",
            client,
            "describe_subnets",
            Filters=ansible_dict_to_boto3_filter_list(desired["subnet_filters"]),
        ).get("Subnets", [])
        for s in subnets:
            current[s["SubnetId"]] = tag_dict(s.get("Tags"))
            found_subnets.append(s["SubnetId"])
    if desired["security_group_filters"]:
        groups = paginate(
            "describe the security groups matching security_group_filters",
            client,
            "describe_security_groups",
            Filters=ansible_dict_to_boto3_filter_list(desired["security_group_filters"]),
        ).get("SecurityGroups", [])
        for g in groups:
            current[g["GroupId"]] = tag_dict(g.get("Tags"))
            found_groups.append(g["GroupId"])
    resources = _unique(desired["resources"] + found_subnets + found_groups)
    subnet_ids = [r for r in resources if r.startswith("subnet-")]
    group_ids = [r for r in resources if r.startswith("sg-")]
    if desired["require_subnets"] and not subnet_ids:
        raise InputError(
            "require_subnets: no subnet among resources and none matched subnet_filters %s; nothing was tagged"
            % (desired["subnet_filters"] or "(none given)")
        )
    unknown = [r for r in resources if r not in current]
    for ids in chunks(unknown, DESCRIBE_IDS_PER_CALL):
        for r in ids:
            current[r] = {}
        described = paginate(
            "describe the tags of %d resources" % len(ids),
            client,
            "describe_tags",
            Filters=[{"Name": "resource-id", "Values": ids}],
        ).get("Tags", [])
        for t in described:
            current.setdefault(t["ResourceId"], {})[t["Key"]] = t.get("Value", "")

    plan = plan_tags(current, resources, desired["tags"], desired["state"], desired["purge"])
    if not check_mode:
        for ids in chunks(plan["create"]["resources"], WRITE_IDS_PER_CALL):
            call(
                "tag %d resources (%s)" % (len(ids), ", ".join(ids)),
                client.create_tags,
                Resources=ids,
                Tags=plan["create"]["tags"],
            )
        for ids in chunks(plan["delete"]["resources"], WRITE_IDS_PER_CALL):
            call(
                "untag %d resources (%s)" % (len(ids), ", ".join(ids)),
                client.delete_tags,
                Resources=ids,
                Tags=plan["delete"]["tags"],
            )
    diffs = [
        {
            "before": {"tags": r["before"]},
            "after": {"tags": r["after"]},
            "before_header": "EC2 " + r["resource_id"],
            "after_header": "EC2 " + r["resource_id"],
        }
        for r in plan["resources"]
        if r["changed"]
    ]
    return {
        "changed": any(r["changed"] for r in plan["resources"]),
        "resources": resources,
        "subnet_ids": subnet_ids,
        "security_group_ids": group_ids,
        "results": [
            {"resource_id": r["resource_id"], "changed": r["changed"], "tags": r["after"]} for r in plan["resources"]
        ],
        "diff": diffs,
        "warnings": [],
    }
