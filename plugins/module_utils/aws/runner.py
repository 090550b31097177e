# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one main() of the AWS modules (the only Ansible glue of plugins/module_utils/aws).

``run_aws_module`` builds the AnsibleAWSModule and then, in this order:

1. ``validate(params)`` -> ``desired``: the whole input is checked before any client exists, so bad input fails
   naming the field (``errors.InputError``, ``changed: false``) without a request;
2. the clients: amazon.aws's ``module.client`` with the one retry policy (``AWSRetry.jittered_backoff`` plus the
   codes of ``RETRY_CODES[service]``), a user agent naming the module
   (``karpenter_eks.platform/<module>``) and a :class:`api.RequestCounter` on every client;
3. ``prepare(module, connect)`` -> extra keyword arguments of ``ensure`` (``connect(service)`` makes another
   counted client, e.g. STS);
4. ``ensure(client, params, check_mode, **extra)`` -> the result; ``extra`` has ``desired=`` when ``validate``
   returned something (a validator that only checks returns None).

The result gets ``requests: {total, writes}``, its ``warnings`` are emitted and its ``diff`` is kept only under
``--diff``. Every ``PlatformError`` fails the module here and only here: an :class:`api.AwsOperationError` with a
botocore exception through ``fail_json_aws`` (the SDK's error code and response metadata), any other through
``fail_json``; both with ``requests``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    from botocore.config import Config
except ImportError:  # pragma: no cover - AnsibleAWSModule reports the missing SDK
    Config = None

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ..errors import PlatformError
from . import api
from .api import AwsOperationError, RequestCounter

USER_AGENT = "karpenter_eks.platform"

# Error codes retried (with jittered backoff) on top of amazon.aws's throttling codes, by service.
RETRY_CODES = {
    # EKS answers ResourceInUseException while a previous change of the same resource is still being applied.
    "eks": ["ResourceInUseException", "ServerException"],
    "iam": ["ConcurrentModification"],
    "events": ["ConcurrentModificationException"],
}


def user_agent(module_name: str) -> str:
    """``karpenter_eks.platform/<module>`` for ``karpenter_eks.platform.<module>`` (or a bare module name)."""
    return "%s/%s" % (USER_AGENT, module_name.split(".")[-1])


def retry_policy(service: str) -> Callable:
    """The retry decorator of the AWS modules' clients (api.retry_policy's defaults: amazon.aws's
    ``AWSRetry.jittered_backoff``, 10 attempts): amazon.aws's throttling codes plus the service's."""
    return api.retry_policy(RETRY_CODES.get(service, []))


def run_aws_module(
    argument_spec: dict,
    service: str,
    ensure: Callable[..., dict],
    validate: Callable[[dict], Any] | None = None,
    prepare: Callable[[AnsibleAWSModule, Callable[[str], Any]], dict] | None = None,
    **module_kwargs: Any,
) -> None:
    """main() of an AWS module (see the module docstring); exits the module."""
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True, **module_kwargs)
    counter = RequestCounter()

    def connect(name: str) -> Any:
        client = module.client(
            name,
            retry_decorator=retry_policy(name),
            config=Config(user_agent_extra=user_agent(module._name)),
        )
        counter.attach(client)
        return client

    try:
        extra = {}
        desired = validate(module.params) if validate is not None else None  # before any client: no request
        if desired is not None:
            extra["desired"] = desired
        client = connect(service)
        if prepare is not None:
            extra.update(prepare(module, connect))
        result = ensure(client, module.params, module.check_mode, **extra)
    except PlatformError as e:
        fail(module, e, counter)
    for warning in result.pop("warnings", None) or []:
        module.warn(str(warning))
    if not module._diff:
        result.pop("diff", None)
    result["requests"] = counter.summary()
    module.exit_json(**result)


def fail(module: AnsibleAWSModule, error: PlatformError, counter: RequestCounter) -> None:
    """The one mapping of an error of an AWS module to its failure."""
    kwargs = error.fail_kwargs()
    kwargs["requests"] = counter.summary()
    if isinstance(error, AwsOperationError) and error.exception is not None:
        module.fail_json_aws(error.exception, msg=error.message, **kwargs)
    module.fail_json(msg=str(error), **kwargs)
