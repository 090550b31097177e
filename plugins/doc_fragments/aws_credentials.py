# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The AWS credential options of karpenter_backup and karpenter_cost_report (module_utils/aws/credentials.py).

The names and aliases are amazon.aws's (amazon.aws.common.modules, amazon.aws.region.modules), so the same
variables or module_defaults serve these modules and the AnsibleAWSModules of the collection.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  access_key:
    description:
      - AWS access key ID.
      - When not set, boto3's credential chain is used (E(AWS_ACCESS_KEY_ID), the shared credentials file, an
        instance or pod role, ...). Prefer that chain or O(profile) to passing keys.
      - Keys given here are used instead of those of O(profile).
    type: str
    aliases: [aws_access_key_id, aws_access_key]
  secret_key:
    description:
      - AWS secret access key, with O(access_key).
      - When not set, boto3's credential chain is used (E(AWS_SECRET_ACCESS_KEY), ...).
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
  session_token:
    description:
      - AWS session token, for temporary credentials given by O(access_key) and O(secret_key).
      - When not set, E(AWS_SESSION_TOKEN) is used when boto3 reads the keys from the environment.
    type: str
    aliases: [aws_session_token]
  profile:
    description:
      - A named profile of the AWS config and credentials files.
      - When not set, E(AWS_PROFILE) or the default profile.
    type: str
    aliases: [aws_profile]
  region:
    description:
      - The AWS region.
      - When not set, E(AWS_REGION), E(AWS_DEFAULT_REGION) or the profile's region.
    type: str
    aliases: [aws_region]
  endpoint_url:
    description:
      - URL of the AWS API endpoint, for example an emulator on loopback.
      - When not set, E(AWS_ENDPOINT_URL) or the service's public endpoint.
    type: str
    aliases: [aws_endpoint_url]
notes:
  - The AWS options have the names and aliases of amazon.aws's modules. M(karpenter_eks.platform.karpenter_backup)
    and M(karpenter_eks.platform.karpenter_cost_report) are in the C(karpenter) action group, so
    C(module_defaults) of the C(aws) group do not reach them; pass the options (or set the environment).
"""
