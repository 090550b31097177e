# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``go_duration_seconds``: seconds of a Go duration (``5m``, ``1h30m``), as Helm and Karpenter parse them.

Documentation: ``go_duration_seconds.yml`` beside this file.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.kubelet import parse_go_duration


def go_duration_seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise AnsibleFilterError("go_duration_seconds: expected a Go duration string such as 5m, got %r" % (value,))
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return parse_go_duration(value.strip()) / 1e9
    except ValueError as exc:
        raise AnsibleFilterError("go_duration_seconds: %s" % exc) from None


class FilterModule:
    def filters(self):
        return {"go_duration_seconds": go_duration_seconds}
