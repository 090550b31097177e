# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Input checks and helpers of the batch AWS modules (iam_managed_policies, eventbridge_rules, ec2_tags).

A batch module validates its whole input first (``validate(params)`` -> desired, run by ``runner.run_aws_module``
before any client exists: bad input fails naming the field with ``errors.InputError``), then reads everything with
as few calls as the API allows (``api.paginate``, :func:`read_all`), plans, and writes only what differs - never in
check mode.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import InputError

# Reads of independent resources in flight at once (IAM/EventBridge read quotas are per account and small).
READ_WORKERS = 4


def read_all(function: Callable[[Any], Any], items: Iterable, workers: int = READ_WORKERS) -> list:
    """``[function(i) for i in items]`` with up to ``workers`` calls in flight; the first error is raised."""
    items = list(items)
    if len(items) < 2 or workers < 2:
        return [function(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(function, items))


def chunks(items: Iterable, size: int) -> list[list]:
    items = list(items)
    return [items[i : i + size] for i in range(0, len(items), size)]


def load_json_field(value: Any, field: str) -> Any:
    """A dict/list given as such or as JSON text (what templates and ``to_json`` produce)."""
    if isinstance(value, (dict, list)):
        try:
            json.dumps(value)
        except (TypeError, ValueError) as e:
            raise InputError("%s: not JSON-serialisable (%s)" % (field, e))
        return value
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as e:
            raise InputError("%s: not valid JSON (%s)" % (field, e))
    raise InputError("%s: expected a dict or JSON text, got %s" % (field, type(value).__name__))


def check_tags(
    tags: Any, field: str, max_key: int = 128, max_value: int = 256, allow_none: bool = False
) -> dict | None:
    """Tags as a str -> str dict (numbers and booleans become strings, as the AWS APIs store them)."""
    if tags is None:
        return None
    if not isinstance(tags, dict):
        raise InputError("%s: expected a dict of tag keys to values, got %s" % (field, type(tags).__name__))
    if len(tags) > 50:
        raise InputError("%s: %d tags; AWS allows at most 50 per resource" % (field, len(tags)))
    out = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key or len(key) > max_key:
            raise InputError("%s: tag key %r must be a string of 1 to %d characters" % (field, key, max_key))
        if key.lower().startswith("aws:"):
            raise InputError("%s: tag key %r: the aws: prefix is reserved for AWS" % (field, key))
        if value is None and allow_none:
            out[key] = None
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(value, str) or len(value) > max_value:
            raise InputError("%s: value of tag %r must be a string of at most %d characters" % (field, key, max_value))
        out[key] = value
    return out


def tag_dict(tag_list: list | None, key: str = "Key", value: str = "Value") -> dict:
    return dict((t[key], t.get(value, "")) for t in tag_list or [])


def tag_list(tags: dict) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
