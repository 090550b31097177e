# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Karpenter v1 domain core: CRD schema + CEL validation, lint, conversion and comparison.

Plain Python (stdlib + ``celpy`` from cel-python); imports neither ``ansible`` nor ``kubernetes``.
Modules: ``crds`` (generated CRD schemas and upstream KubeletConfiguration types), ``issues``, ``labels``,
``quantity``, ``schema``, ``cel``, ``kubelet`` (the controller's EC2NodeClass spec.kubelet checks),
``validate``, ``lint``, ``convert``, ``compare``.
"""
