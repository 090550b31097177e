# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The apply layers above the engine (kube/engine.py), plain Python:

* ``karpenter``: Karpenter objects (karpenter_provisioner, node_template, restores of karpenter_backup): convert ->
  validate the whole batch -> plan -> write -> wait; bad input raises ``InputError`` before any write.
"""
