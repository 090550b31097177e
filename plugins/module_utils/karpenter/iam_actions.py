# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""IAM actions of the Karpenter v1 controller that the linter and the IAM simulator both name.

Plain Python. The policies themselves are the karpenter role's templates (getting-started CloudFormation).
"""

from __future__ import annotations

# instance profiles Karpenter manages itself for EC2NodeClass spec.role (new in v1), on instance-profile/*
INSTANCE_PROFILE_ACTIONS = (
    "iam:CreateInstanceProfile",
    "iam:TagInstanceProfile",
    "iam:AddRoleToInstanceProfile",
    "iam:RemoveRoleFromInstanceProfile",
    "iam:DeleteInstanceProfile",
    "iam:GetInstanceProfile",
)
# read actions v1 needs that v0.32 policies lack
V1_NEW_DESCRIBE_ACTIONS = (
    "ec2:DescribeCapacityReservations",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribePlacementGroups",
)
# everything a v0.32 controller policy must gain for v1 (linter rule KPL028)
V1_NEW_ACTIONS = INSTANCE_PROFILE_ACTIONS + ("iam:ListInstanceProfiles",) + V1_NEW_DESCRIBE_ACTIONS
