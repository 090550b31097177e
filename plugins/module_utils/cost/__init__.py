# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Cost and capacity reporting: ``model`` (plain-Python cost logic), ``aws`` (AWS sources, retries, failure notes),
``collect`` (one report run) and ``htmlreport`` (report with inline SVG)."""
