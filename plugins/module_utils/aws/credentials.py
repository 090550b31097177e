# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The AWS credential options of the modules that are not AnsibleAWSModules (karpenter_backup,
karpenter_cost_report: Kubernetes modules that also call S3/KMS or Cost Explorer/EC2/Pricing/CloudWatch).

The names and aliases are amazon.aws's (doc fragments ``amazon.aws.common.modules`` and
``amazon.aws.region.modules``), so one ``module_defaults`` or one set of variables serves every module; every
name these two modules had before is one of the aliases. Documented by the doc fragment
``karpenter_eks.platform.aws_credentials``. Unset options fall back to boto3's own chain (``AWS_PROFILE``,
``AWS_ACCESS_KEY_ID``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``, instance role, ...).

amazon.aws's ``validate_certs`` is left out on purpose: kubernetes.core's connection options, which these modules
also take, have an option of that name for the Kubernetes API.
"""

from __future__ import annotations

import copy
from typing import Any

AWS_CREDENTIALS_SPEC: dict[str, dict] = dict(
    access_key=dict(type="str", aliases=["aws_access_key_id", "aws_access_key"], no_log=False),
    secret_key=dict(type="str", aliases=["aws_secret_access_key", "aws_secret_key"], no_log=True),
    session_token=dict(type="str", aliases=["aws_session_token"], no_log=True),
    profile=dict(type="str", aliases=["aws_profile"]),
    region=dict(type="str", aliases=["aws_region"]),
    endpoint_url=dict(type="str", aliases=["aws_endpoint_url"]),
)

# option -> keyword argument of boto3.session.Session
_SESSION_KWARGS = (
    ("profile", "profile_name"),
    ("region", "region_name"),
    ("access_key", "aws_access_key_id"),
    ("secret_key", "aws_secret_access_key"),
    ("session_token", "aws_session_token"),
)


def credentials_spec() -> dict[str, dict]:
    """A copy of the options, to add to a module's argument spec."""
    return copy.deepcopy(AWS_CREDENTIALS_SPEC)


def credential_params(params: dict) -> dict[str, Any]:
    """The credential options of ``params`` (by their primary names), for passing on as keyword arguments."""
    return {name: params.get(name) for name in AWS_CREDENTIALS_SPEC}


def session_kwargs(params: dict) -> dict[str, Any]:
    """Keyword arguments of ``boto3.session.Session`` for the options that are set (else boto3's chain)."""
    return {kwarg: params[name] for name, kwarg in _SESSION_KWARGS if params.get(name)}


def client_kwargs(params: dict) -> dict[str, Any]:
    """Keyword arguments of ``Session.client`` from the options (the endpoint URL when set)."""
    return {"endpoint_url": params["endpoint_url"]} if params.get("endpoint_url") else {}
