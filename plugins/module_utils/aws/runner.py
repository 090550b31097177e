# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The common main() of the EKS/IAM modules: AnsibleAWSModule, retrying client, one error path, diff."""

from __future__ import annotations

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.eks import AwsOperationError

# EKS answers ResourceInUseException while a previous change of the same resource is still being applied.
RETRY_CODES = ["ResourceInUseException", "ServerException"]


def run_aws_module(argument_spec, service, ensure, required_if=None, prepare=None):
    """Build the module, call ``ensure(client, params, check_mode[, **extra])`` and exit with its result."""
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True, required_if=required_if or [])
    client = module.client(service, retry_decorator=AWSRetry.jittered_backoff(catch_extra_error_codes=RETRY_CODES))
    try:
        extra = prepare(module) if prepare else {}
        result = ensure(client, module.params, module.check_mode, **extra)
    except AwsOperationError as e:
        if e.exception is None:
            module.fail_json(msg=e.msg)
        module.fail_json_aws(e.exception, msg=e.msg)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)
