# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``attributes`` of every module of this collection, in one place.

A module lists exactly one of ``karpenter_eks.platform.attributes`` (it changes something) or
``karpenter_eks.platform.attributes.info_module`` (read-only), plus its action group,
``karpenter_eks.platform.attributes.action_group_karpenter`` or ``...action_group_aws`` (the groups of
``meta/runtime.yml``). A module whose support differs from the fragment overrides only ``support`` and
``details`` of that attribute; the description stays here.

The variables are plain string literals: ansible-test's yamllint reads them from the source without running it.
"""

from __future__ import annotations


class ModuleDocFragment:
    # A module that changes something: check mode sends no write request, --diff shows before and after,
    # a second run with the same input changes nothing.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the target.
    details: Reads what exists and reports what a real run would change; sends no write request.
    support: full
  diff_mode:
    description: Returns details on what has changed (or would change, in check mode) when in diff mode.
    support: full
  idempotent:
    description:
      - When run twice in a row outside check mode with the same arguments, the second run reports no change.
      - This assumes that nothing else changed what the module manages in between.
    details: Writes only what differs; a converged run sends no write request.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    details:
      - The module works on the Kubernetes or AWS API, not on the host it runs on. It runs wherever Python 3.11+
        and its requirements are installed, usually the controller (C(delegate_to=localhost)).
    support: full
    platforms: posix
"""

    # A read-only module (info, checks, diagnosis): nothing to predict, nothing to diff.
    INFO_MODULE = r"""
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the target.
    details: This module only reads and runs the same in check mode.
    support: full
  diff_mode:
    description: Returns details on what has changed (or would change, in check mode) when in diff mode.
    details: This module changes nothing, so there is nothing to diff.
    support: N/A
  idempotent:
    description:
      - When run twice in a row outside check mode with the same arguments, the second run reports no change.
      - This assumes that nothing else changed what the module manages in between.
    details: This module changes nothing.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    details:
      - The module works on the Kubernetes or AWS API, not on the host it runs on. It runs wherever Python 3.11+
        and its requirements are installed, usually the controller (C(delegate_to=localhost)).
    support: full
    platforms: posix
"""

    ACTION_GROUP_KARPENTER = r"""
attributes:
  action_group:
    description: Use C(group/karpenter_eks.platform.karpenter) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - karpenter_eks.platform.karpenter
"""

    ACTION_GROUP_AWS = r"""
attributes:
  action_group:
    description: Use C(group/karpenter_eks.platform.aws) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - karpenter_eks.platform.aws
"""
