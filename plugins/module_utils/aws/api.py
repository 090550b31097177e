# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SDK calls of the AWS modules: one error type, one way to call, one request counter.

* :class:`AwsOperationError` is amazon.aws's ``AnsibleAWSError`` (``message``, ``exception``: the botocore error
  or None) and the collection's ``errors.ApiError`` (a ``PlatformError``), so the runner maps it to
  ``fail_json_aws``/``fail_json`` in one place and any code that handles either family handles it.
* :func:`call`, :func:`call_missing_ok` and :func:`paginate` run one SDK call (retried by the client's
  ``AWSRetry.jittered_backoff`` decorator: ``aws_retry=True``) through amazon.aws's ``AWSErrorHandler``
  (``common_error_handler`` / ``list_error_handler``), whose errors are :class:`AwsOperationError` naming what
  was being done (``Failed to <what>``, ``Timeout trying to <what>`` for a waiter).
* :class:`RequestCounter` counts what a botocore client sends, for the ``requests`` of every result.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.errors import AWSErrorHandler
from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError

from ..errors import ApiError

READ_PREFIXES = ("Describe", "Get", "List")


class AwsOperationError(AnsibleAWSError, ApiError):
    """An AWS operation failed: ``message`` says what we were doing, ``exception`` is the botocore error (None
    when the failure is ours, e.g. an upgrade EKS does not allow); ``status`` is the HTTP status of a ClientError.

    MRO: AnsibleAWSError.__init__ keeps ``message``/``exception``/``kwargs`` and calls ``super().__init__``,
    which is ApiError's (PlatformError: ``details``, ``status``, ``result``)."""

    def __init__(
        self,
        message: str | None = None,
        exception: BaseException | None = None,
        result: dict | None = None,
        **kwargs: Any,
    ) -> None:
        # PlatformError needs a message: fall back to the SDK error's text.
        message = message or (str(exception) if exception is not None else "AWS operation failed")
        super().__init__(message=message, exception=exception, **kwargs)
        self.status = _http_status(exception)
        self.result = result


def _http_status(exception: BaseException | None) -> int | None:
    response = getattr(exception, "response", None)
    if isinstance(response, dict):
        return response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return None


class AwsErrorHandler(AWSErrorHandler):
    """amazon.aws's error handler raising :class:`AwsOperationError`."""

    _CUSTOM_EXCEPTION = AwsOperationError


@functools.cache
def _missing_handler(codes: tuple[str, ...]) -> type[AwsErrorHandler]:
    """The handler whose ``list_error_handler`` returns None for these error codes (the resource is absent)."""

    class Handler(AwsErrorHandler):
        @classmethod
        def _is_missing(cls):
            return is_boto3_error_code(list(codes))

    return Handler


def _literal(text: str) -> str:
    """``text`` as an AWSErrorHandler description: it is ``str.format``ted, so braces (JSON, ARNs) are escaped."""
    return text.replace("{", "{{").replace("}", "}}")


def call(what: str, method: Callable[..., Any], **kwargs: Any) -> Any:
    """``method(aws_retry=True, **kwargs)``; an SDK error raises AwsOperationError("Failed to <what>", error)."""

    @AwsErrorHandler.common_error_handler(_literal(what))
    def run(**request):
        return method(aws_retry=True, **request)

    return run(**kwargs)


def call_missing_ok(what: str, method: Callable[..., Any], codes: str | Iterable[str], **kwargs: Any) -> Any:
    """Like :func:`call`, but None when the error code is one of ``codes`` (the resource does not exist)."""
    codes = (codes,) if isinstance(codes, str) else tuple(codes)

    @_missing_handler(codes).list_error_handler(_literal(what))
    def run(**request):
        return method(aws_retry=True, **request)

    return run(**kwargs)


def paginate(what: str, client: Any, operation: str, **kwargs: Any) -> dict:
    """All pages of a paginated read as one result; the whole pagination is retried on throttling."""

    def pages():
        return client.get_paginator(operation).paginate(**kwargs).build_full_result()

    retry = getattr(client, "retry", None)  # RetryingBotoClientWrapper's decorator
    run = AwsErrorHandler.common_error_handler(_literal(what))(retry(pages) if retry else pages)
    return run()


class RequestCounter:
    """Counts the API calls a botocore client sends (``before-call``: once per call and page, AWSRetry retries
    included; botocore's own internal retries are not seen). ``writes`` lists the operations that are not a
    Describe/Get/List call, so a converged run or a check run can be shown to have sent none."""

    def __init__(self) -> None:
        self.total = 0
        self.writes: list[str] = []
        self._lock = threading.Lock()  # reads run in a few threads (batch.read_all)

    def __call__(self, model: Any = None, **kwargs: Any) -> None:
        name = getattr(model, "name", None) or "?"
        with self._lock:
            self.total += 1
            if not name.startswith(READ_PREFIXES):
                self.writes.append(name)

    def attach(self, client: Any) -> RequestCounter:
        raw = getattr(client, "client", client)  # RetryingBotoClientWrapper keeps the botocore client as .client
        raw.meta.events.register_first("before-call.*.*", self)  # before any handler that answers the call
        return self

    def summary(self) -> dict:
        return {"total": self.total, "writes": list(self.writes)}
