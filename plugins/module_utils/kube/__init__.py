# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Kubernetes access and the one apply engine (no Ansible import).

resource.py   where a kind lives in the API (Resource; the well-known Karpenter kinds)
transport.py  direct HTTPS transport: kubeconfig, client certs, exec plugins, in-process EKS tokens
client.py     KubeApi: JSON REST calls, request accounting, retries with backoff, watches
ssa.py        server-side apply predicted offline (managedFields, co-ownership)
engine.py     plan (EXACT / CONTAINS strategies), execute, report, waits
objects.py    k8s_objects' input checks and kind discovery, on top of the engine
info.py       karpenter_info's summaries
"""
