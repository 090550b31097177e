# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible filters over the cost report code: ``karpenter_cost_headline`` (playbooks/cost_report.yml),
``karpenter_whatif_compare`` and ``karpenter_whatif_html`` (playbooks/whatif.yml), so the playbooks' summaries and
the what-if report use the cost report's money format, "no data" rules and charts.

Documentation: one ``<filter>.yml`` per filter beside this file.
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.karpenter_eks.platform.plugins.module_utils.cost import htmlreport, model


def _variants(data, filter_name):
    if not isinstance(data, list) or not all(isinstance(v, dict) and v.get("variant") for v in data):
        raise AnsibleFilterError(
            "%s: the input must be a list of what-if variants (mappings with 'variant')" % filter_name
        )
    return data


def karpenter_cost_headline(report):
    if not isinstance(report, dict) or not isinstance(report.get("totals"), dict):
        raise AnsibleFilterError("karpenter_cost_headline: the input must be a karpenter_cost_report report")
    return htmlreport.headline(report)


def karpenter_whatif_compare(variants, hours_per_month=model.HOURS_PER_MONTH):
    return model.whatif_compare(_variants(variants, "karpenter_whatif_compare"), float(hours_per_month))


def karpenter_whatif_html(run, title=None):
    if not isinstance(run, dict):
        raise AnsibleFilterError("karpenter_whatif_html: the input must be a mapping with 'variants'")
    run = dict(run, variants=_variants(run.get("variants") or [], "karpenter_whatif_html"))
    return htmlreport.render_whatif(run, title)


class FilterModule:
    """Cost report filters."""

    def filters(self):
        return {
            "karpenter_cost_headline": karpenter_cost_headline,
            "karpenter_whatif_compare": karpenter_whatif_compare,
            "karpenter_whatif_html": karpenter_whatif_html,
        }
