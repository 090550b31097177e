# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Ansible glue of the Kubernetes-side modules (with aws/runner.py for the AWS modules, the only code of
plugins/module_utils that imports Ansible):

* ``kube_module``: ``KubeModule`` (connect, requests, warnings, --diff, every error -> fail_json);
* ``karpenter_main``, ``objects_main``, ``info_main``: the shared main()s of the module families on top of it
  (``build_module``/``run_apply``, ``run_objects``, ``run_info``), one file each so a module ships only its own.
"""
