# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs the eks_nodegroup_scaling module with periodic status lines while it works (see plugin_utils/progress_action.py)."""

from __future__ import annotations

from ansible_collections.karpenter_eks.platform.plugins.plugin_utils.progress_action import ProgressAction


class ActionModule(ProgressAction):
    """The module as the normal action runs it, plus status lines for long writes and waits."""
