# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Common part of the batch AWS modules (iam_managed_policies, eventbridge_rules, ec2_tags).

A batch module validates its whole input first (``validate(params)``, no client yet: bad input fails naming the
field before any request), then reads everything with as few calls as the API allows, plans, and writes only what
differs - never in check mode. ``run_batch_module`` is its ``main()``: AnsibleAWSModule, one client whose calls
retry throttling with jittered backoff (``aws_retry=True``), one error path, diff only with ``--diff``.

Every request the client sends is counted through botocore's ``before-call`` event (not by the planning code), and
returned as ``requests: {total, writes}``: ``writes`` lists the operations that were not a Describe/Get/List call,
so a converged run or a check run can be shown to have sent none.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

try:
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # pragma: no cover - AnsibleAWSModule reports the missing SDK
    BotoCoreError = ClientError = Exception
    Config = None

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.eks import AwsOperationError

# one SDK call with retries on throttling (SDK errors become AwsOperationError naming what we were doing), and the
# same returning None when the error code says the resource does not exist: the EKS modules' helpers
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.eks import _call as call  # noqa: F401  pylint: disable=unused-import
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.eks import _missing_or as call_missing_ok  # noqa: F401  pylint: disable=unused-import

READ_PREFIXES = ("Describe", "Get", "List")
USER_AGENT = "karpenter_eks.platform"
# Reads of independent resources in flight at once (IAM/EventBridge read quotas are per account and small).
READ_WORKERS = 4


class InputError(Exception):
    """The module's input is invalid; raised before any request is sent. The message names the field."""


class RequestCounter:
    """Counts the API calls a botocore client sends (``before-call``: once per call and page, AWSRetry retries
    included; botocore's own internal retries are not seen)."""

    def __init__(self):
        self.total = 0
        self.writes = []
        self._lock = threading.Lock()  # reads run in a few threads (read_all)

    def __call__(self, model=None, **kwargs):
        name = getattr(model, "name", None) or "?"
        with self._lock:
            self.total += 1
            if not name.startswith(READ_PREFIXES):
                self.writes.append(name)

    def attach(self, client):
        raw = getattr(client, "client", client)  # RetryingBotoClientWrapper keeps the botocore client as .client
        raw.meta.events.register("before-call", self)
        return self

    def summary(self):
        return {"total": self.total, "writes": list(self.writes)}


def paginate(what, client, operation, **kwargs):
    """All pages of a paginated read as one result; the whole pagination is retried on throttling."""

    def run():
        return client.get_paginator(operation).paginate(**kwargs).build_full_result()

    retry = getattr(client, "retry", None)
    try:
        return retry(run)() if retry else run()
    except (BotoCoreError, ClientError) as e:
        raise AwsOperationError("Failed to " + what, e)


def read_all(function, items, workers=READ_WORKERS):
    """``[function(i) for i in items]`` with up to ``workers`` calls in flight; the first error is raised."""
    items = list(items)
    if len(items) < 2 or workers < 2:
        return [function(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(function, items))


def chunks(items, size):
    items = list(items)
    return [items[i : i + size] for i in range(0, len(items), size)]


def load_json_field(value, field):
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


def check_tags(tags, field, max_key=128, max_value=256, allow_none=False):
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


def tag_dict(tag_list, key="Key", value="Value"):
    return dict((t[key], t.get(value, "")) for t in tag_list or [])


def tag_list(tags):
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def run_batch_module(argument_spec, service, validate, ensure, retry_codes=None, **module_kwargs):
    """main() of a batch module: ``validate(params)`` -> desired, then ``ensure(client, desired, params,
    check_mode)`` -> result with ``changed``, ``diff`` (a list, one entry per changed resource) and ``warnings``."""
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True, **module_kwargs)
    try:
        desired = validate(module.params)
    except InputError as e:
        module.fail_json(msg=str(e), changed=False)
    # The user agent names the module (karpenter_eks.platform/<module>), so a request log tells its requests apart.
    client = module.client(
        service,
        retry_decorator=AWSRetry.jittered_backoff(catch_extra_error_codes=list(retry_codes or [])),
        config=Config(user_agent_extra="%s/%s" % (USER_AGENT, module._name.split(".")[-1])),
    )
    counter = RequestCounter().attach(client)
    try:
        result = ensure(client, desired, module.params, module.check_mode)
    except InputError as e:
        module.fail_json(msg=str(e), changed=False, requests=counter.summary())
    except AwsOperationError as e:
        if e.exception is None:
            module.fail_json(msg=e.msg, requests=counter.summary())
        module.fail_json_aws(e.exception, msg=e.msg, requests=counter.summary())
    for warning in result.pop("warnings", []):
        module.warn(warning)
    if not module._diff:
        result.pop("diff", None)
    result["requests"] = counter.summary()
    module.exit_json(**result)
