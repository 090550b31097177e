# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Desired-state logic of eventbridge_rules: many EventBridge rules (event patterns) and their targets at once.

Reads: one ``ListRules`` (NamePrefix = the names' common prefix, paginated) for every rule of the batch, then
``ListTargetsByRule`` per existing rule, up to four in flight. A converged batch sends nothing else.

Writes, only for what differs and never in check mode: ``PutRule`` when the rule is missing or its pattern (compared
as EventBridge matches it: key order and the order of the values in a match list do not count, numeric ranges
keep theirs), description or state differ; ``PutTargets`` for missing or different targets (Arn, RoleArn, Input,
InputPath: fields not managed here are not compared, and a target that is rewritten keeps only what is given);
``RemoveTargets`` for targets not given (``purge_targets``); ``state=absent`` removes the targets, then the rule.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from ..errors import InputError
from .api import AwsOperationError, call, paginate
from .batch import chunks, load_json_field, read_all

NAME_RE = re.compile(r"^[.\-_A-Za-z0-9]{1,64}$")
TARGET_ID_RE = re.compile(r"^[.\-_A-Za-z0-9]{1,64}$")
MAX_PATTERN_CHARS = 4096
MAX_TARGETS = 5
ORDERED_LISTS = ("numeric",)  # [">", 0, "<=", 5]: operator/value pairs, order matters

# ---------------------------------------------------------------- comparison (pure)


def canonical_pattern(value: Any, key: str | None = None) -> Any:
    """A form of an event pattern in which two patterns EventBridge matches identically are equal."""
    if isinstance(value, dict):
        return dict((k, canonical_pattern(v, k)) for k, v in value.items())
    if isinstance(value, list):
        items = [canonical_pattern(v) for v in value]
        if key in ORDERED_LISTS:
            return items
        # a match list is "any of": order and repetition do not count
        return [json.loads(s) for s in sorted(set(json.dumps(i, sort_keys=True) for i in items))]
    return value


def same_pattern(a: Any, b: Any) -> bool:
    return canonical_pattern(a) == canonical_pattern(b)


def _json_or_text(value):
    if value is None:
        return None
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def target_view(target: dict) -> dict:
    """The fields of a target this module manages, in the API's shape (Input as parsed JSON)."""
    out = {"Id": target["Id"], "Arn": target["Arn"]}
    for key in ("RoleArn", "InputPath"):
        if target.get(key):
            out[key] = target[key]
    if target.get("Input") is not None:
        out["Input"] = _json_or_text(target["Input"])
    return out


def same_target(live: dict, want: dict) -> bool:
    return target_view(live) == target_view(want)


# ---------------------------------------------------------------- input


def _check_target(target, field):
    tid = target.get("id")
    if not isinstance(tid, str) or not TARGET_ID_RE.match(tid):
        raise InputError("%s.id: %r is not a target id (1-64 of letters, digits and .-_)" % (field, tid))
    arn = target.get("arn")
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        raise InputError("%s.arn: %r is not an ARN" % (field, arn))
    out = {"Id": tid, "Arn": arn}
    if target.get("role_arn"):
        if not target["role_arn"].startswith("arn:"):
            raise InputError("%s.role_arn: %r is not an ARN" % (field, target["role_arn"]))
        out["RoleArn"] = target["role_arn"]
    if target.get("input") is not None and target.get("input_path"):
        raise InputError("%s: input and input_path are mutually exclusive" % field)
    if target.get("input") is not None:
        value = target["input"]
        if isinstance(value, str):
            load_json_field(value, field + ".input")  # EventBridge accepts only valid JSON text
        else:
            value = json.dumps(load_json_field(value, field + ".input"), separators=(",", ":"))
        out["Input"] = value
    if target.get("input_path"):
        out["InputPath"] = target["input_path"]
    return out


def validate_rules(params: dict) -> list[dict]:
    seen = {}
    out = []
    for i, item in enumerate(params["rules"] or []):
        field = "rules[%d]" % i
        name = item.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise InputError("%s.name: %r is not a rule name (1-64 of letters, digits and .-_)" % (field, name))
        if name in seen:
            raise InputError("%s.name: %s is already rules[%d]" % (field, name, seen[name]))
        seen[name] = i
        field = "rules[%d] (%s)" % (i, name)
        state = item.get("state") or params["state"]
        want = {"index": i, "name": name, "state": state}
        if state == "present":
            if item.get("event_pattern") is None:
                raise InputError("%s.event_pattern: required when state is present" % field)
            pattern = load_json_field(item["event_pattern"], field + ".event_pattern")
            if not isinstance(pattern, dict) or not pattern:
                raise InputError("%s.event_pattern: an event pattern is a non-empty JSON object" % field)
            size = len(json.dumps(pattern, separators=(",", ":")))
            if size > MAX_PATTERN_CHARS:
                raise InputError(
                    "%s.event_pattern: %d characters; EventBridge allows %d" % (field, size, MAX_PATTERN_CHARS)
                )
            description = item.get("description")
            if description is not None and len(description) > 512:
                raise InputError("%s.description: %d characters; EventBridge allows 512" % (field, len(description)))
            targets = item.get("targets")
            if targets is not None:
                if len(targets) > MAX_TARGETS:
                    raise InputError(
                        "%s.targets: %d targets; EventBridge allows %d per rule" % (field, len(targets), MAX_TARGETS)
                    )
                checked = [_check_target(t or {}, "%s.targets[%d]" % (field, j)) for j, t in enumerate(targets)]
                ids = [t["Id"] for t in checked]
                dupes = sorted(set(x for x in ids if ids.count(x) > 1))
                if dupes:
                    raise InputError("%s.targets: duplicate id %s" % (field, ", ".join(dupes)))
                targets = checked
            want.update(
                pattern=pattern,
                # json.dumps' default separators: what amazon.aws.cloudwatchevent_rule sends and compares as text
                pattern_text=json.dumps(pattern),
                description=description,
                enabled=item.get("enabled", True) is not False,
                targets=targets,
            )
        out.append(want)
    if not out:
        raise InputError("rules: at least one rule is required")
    return out


# ---------------------------------------------------------------- read, plan, write


def _view(rule, targets):
    if not rule:
        return {}
    return {
        "name": rule["Name"],
        "event_pattern": _json_or_text(rule.get("EventPattern")),
        "description": rule.get("Description") or "",
        "state": rule.get("State"),
        "targets": [target_view(t) for t in sorted(targets or [], key=lambda t: t["Id"])],
    }


def _check_failed(what, response):
    if response.get("FailedEntryCount"):
        raise AwsOperationError(
            "Failed to %s: %s"
            % (
                what,
                "; ".join(
                    "%s: %s %s" % (e.get("TargetId"), e.get("ErrorCode"), e.get("ErrorMessage"))
                    for e in response.get("FailedEntries", [])
                ),
            ),
            None,
        )


def ensure_rules(client: Any, params: dict, check_mode: bool, desired: list[dict]) -> dict:
    bus = params.get("event_bus_name") or "default"
    purge = params.get("purge_targets", True)
    prefix = os.path.commonprefix([d["name"] for d in desired])
    query = {"EventBusName": bus}
    if prefix:
        query["NamePrefix"] = prefix
    listed = paginate("list the EventBridge rules of bus " + bus, client, "list_rules", **query).get("Rules", [])
    by_name = dict((r["Name"], r) for r in listed)

    def targets_of(want):
        if want["name"] not in by_name:
            return None
        return paginate(
            "list the targets of rule " + want["name"],
            client,
            "list_targets_by_rule",
            Rule=want["name"],
            EventBusName=bus,
        ).get("Targets", [])

    live_targets = read_all(targets_of, desired)

    results, diffs = [], []
    for want, targets in zip(desired, live_targets):  # noqa: B905 - read_all keeps length and order
        name = want["name"]
        live = by_name.get(name)
        changes = []
        if want["state"] == "absent":
            after, after_targets = None, None
            if live:
                changes.append("deleted")
                if not check_mode:
                    for ids in chunks([t["Id"] for t in targets], 100):
                        _check_failed(
                            "remove the targets of rule " + name,
                            call(
                                "remove the targets of rule " + name,
                                client.remove_targets,
                                Rule=name,
                                EventBusName=bus,
                                Ids=ids,
                            ),
                        )
                    call("delete rule " + name, client.delete_rule, Name=name, EventBusName=bus)
        else:
            state = "ENABLED" if want["enabled"] else "DISABLED"
            after = dict(live or {"Name": name, "EventBusName": bus})
            if live is None:
                changes.append("created")
            else:
                if not same_pattern(_json_or_text(live.get("EventPattern")), want["pattern"]):
                    changes.append("event_pattern")
                if want["description"] is not None and want["description"] != (live.get("Description") or ""):
                    changes.append("description")
                if live.get("State") != state:
                    changes.append("state")
            if changes:
                after.update(State=state)
                if "created" in changes or "event_pattern" in changes:
                    after["EventPattern"] = want["pattern_text"]
                if want["description"] is not None:
                    after["Description"] = want["description"]
                if not check_mode:
                    request = {
                        "Name": name,
                        "EventBusName": bus,
                        "EventPattern": after["EventPattern"],
                        "State": state,
                    }
                    if after.get("Description"):
                        request["Description"] = after["Description"]
                    after["Arn"] = call("put rule " + name, client.put_rule, **request)["RuleArn"]
            live_by_id = dict((t["Id"], t) for t in targets or [])
            after_targets = list(targets or [])
            if want["targets"] is not None:
                want_ids = set(t["Id"] for t in want["targets"])
                put = [
                    t for t in want["targets"] if t["Id"] not in live_by_id or not same_target(live_by_id[t["Id"]], t)
                ]
                remove = sorted(i for i in live_by_id if i not in want_ids) if purge else []
                if put or remove:
                    changes.append("targets")
                    after_targets = [t for t in after_targets if t["Id"] not in remove]
                    after_targets = [t for t in after_targets if t["Id"] not in set(p["Id"] for p in put)] + put
                if not check_mode and put:
                    for batch in chunks(put, 10):
                        _check_failed(
                            "put the targets of rule " + name,
                            call(
                                "put the targets of rule " + name,
                                client.put_targets,
                                Rule=name,
                                EventBusName=bus,
                                Targets=batch,
                            ),
                        )
                if not check_mode and remove:
                    _check_failed(
                        "remove the targets of rule " + name,
                        call(
                            "remove the targets of rule " + name,
                            client.remove_targets,
                            Rule=name,
                            EventBusName=bus,
                            Ids=remove,
                        ),
                    )
        view = _view(after, after_targets) if after else {}
        result = dict(view or {"name": name}, arn=(after or live or {}).get("Arn"))
        result.update(changed=bool(changes), changes=changes)
        results.append(result)
        if changes:
            header = "EventBridge rule %s (bus %s)" % (name, bus)
            diffs.append(
                {"before": _view(live, targets), "after": view, "before_header": header, "after_header": header}
            )
    return {"changed": any(r["changed"] for r in results), "rules": results, "diff": diffs, "warnings": []}
