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
* :func:`retry_policy` is the one retry decorator of the collection's AWS calls: amazon.aws's
  ``AWSRetry.jittered_backoff``, which the AWS modules' clients get (runner.py), the cost report's sources call
  through (cost/aws.py) and the backup's S3 store wraps its clients with (:func:`retrying_client`, backup/s3.py).
  The callers choose the codes, the attempts and the delays; the loop, the backoff and the jitter are amazon.aws's.
* :class:`RequestCounter` counts what a botocore client sends, for the ``requests`` of every result.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any

try:
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    HAS_BOTOCORE = True
except ImportError:  # pragma: no cover - the modules report the missing SDK
    HAS_BOTOCORE = False

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.errors import AWSErrorHandler
from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry, RetryingBotoClientWrapper

from ..errors import ApiError

READ_PREFIXES = ("Describe", "Get", "List")

# The error codes AWS uses for "slow down": botocore's throttling list (its ``standard`` retry mode), which has
# Cost Explorer's LimitExceededException and S3's SlowDown. AWSRetry's own list is a subset of these two sets.
THROTTLING_CODES = frozenset(
    [
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "BandwidthLimitExceeded",
        "SlowDown",
        "EC2ThrottledException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "PriorRequestNotComplete",
    ]
)
# ... and for "try again": a service error that a later attempt may not meet
TRANSIENT_CODES = frozenset(
    [
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerErrorException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "Unavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    ]
)
CONNECTION_ERROR = "connection error"  # what retry_policy's classification calls a botocore connection error


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
        self.status = http_status(exception)
        self.result = result


def http_status(exception: BaseException | None) -> int | None:
    """The HTTP status of an SDK error's answer (None without one, e.g. a connection error)."""
    response = getattr(exception, "response", None)
    if isinstance(response, dict):
        return (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return None


def error_code(exception: BaseException | None) -> str | None:
    """The AWS error code of an SDK error's answer (``Error.Code``), None without one."""
    response = getattr(exception, "response", None)
    if isinstance(response, dict):
        return (response.get("Error") or {}).get("Code")
    return None


def retry_policy(
    extra_codes: Iterable[str] = (),
    attempts: int = 10,
    delay: float = 3,
    max_delay: float = 60,
    transient_status: Iterable[int] = (),
    connection_errors: bool = False,
) -> Callable:
    """The one retry decorator: amazon.aws's ``AWSRetry.jittered_backoff`` (at most ``attempts`` calls; before
    the n-th retry a wait drawn uniformly from [0, min(max_delay, delay * 2^n)]).

    Retried: a botocore ``ClientError`` whose code is in AWSRetry's throttling list or ``extra_codes``; with
    ``transient_status``, also an answer with one of these HTTP statuses whatever its code says (an HTML page of a
    proxy or a load balancer has none); with ``connection_errors``, also botocore's connection errors (endpoint
    unreachable, connection closed, read timeout). Anything else is raised at once. The defaults are the AWS
    modules' policy (runner.py)."""
    kind = _retry_class(tuple(sorted(set(transient_status))), bool(connection_errors))
    return kind.jittered_backoff(
        retries=max(1, int(attempts)), delay=delay, max_delay=max_delay, catch_extra_error_codes=list(extra_codes)
    )


@functools.cache
def _retry_class(transient_status: tuple[int, ...], connection_errors: bool) -> type[AWSRetry]:
    """AWSRetry, or a subclass whose classification also knows HTTP statuses and connection errors."""
    if not HAS_BOTOCORE or not (transient_status or connection_errors):
        return AWSRetry
    markers = frozenset(["HTTP %d" % s for s in transient_status] + ([CONNECTION_ERROR] if connection_errors else []))

    class Retry(AWSRetry):
        base_class = (ClientError, BotoConnectionError, HTTPClientError) if connection_errors else ClientError

        @staticmethod
        def status_code_from_exception(error):
            if not isinstance(error, ClientError):
                return CONNECTION_ERROR
            status = http_status(error)
            return "HTTP %d" % status if status in transient_status else error_code(error)

        @staticmethod
        def found(response_code, catch_extra_error_codes=None):
            return response_code in markers or AWSRetry.found(response_code, catch_extra_error_codes)

    return Retry


def retrying_client(client: Any, retry: Callable) -> Any:
    """``client`` as amazon.aws's ``module.client`` returns it: a call with ``aws_retry=True`` goes through
    ``retry`` (a :func:`retry_policy`), ``client.retry`` is that decorator, ``client.client`` the botocore client."""
    return RetryingBotoClientWrapper(client, retry)


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
