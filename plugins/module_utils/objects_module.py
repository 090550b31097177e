# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible glue of k8s_objects: argument spec, client, errors (the logic is kube/objects.py)."""

from __future__ import absolute_import, division, print_function

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC

from .karpenter_module import KubeModule
from .kube import client as kclient
from .kube import objects
from .kube.engine import FIELD_MANAGER

ARG_SPEC = dict(
    definitions=dict(type="list", elements="raw", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    namespace=dict(type="str"),
    field_manager=dict(type="str", default=FIELD_MANAGER),
    request_timeout=dict(type="int", default=30),
)


def run_objects_module():
    spec = dict(AUTH_ARG_SPEC)
    spec.update(ARG_SPEC)
    module = KubeModule(argument_spec=spec, supports_check_mode=True)
    if not kclient.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(kclient.KUBERNETES_IMPORT_ERROR))
    p = module.params
    if not p["field_manager"]:
        module.fail_json(msg="field_manager: must not be empty")
    try:
        api = kclient.connect(p, timeout=p["request_timeout"])
    except Exception as exc:  # kubeconfig missing/unreadable
        module.fail_json(msg="cannot configure the Kubernetes client: %s" % exc)
    try:
        result = objects.run(
            api,
            p["definitions"],
            state=p["state"],
            check_mode=module.check_mode,
            manager=p["field_manager"],
            namespace=p["namespace"],
        )
    except objects.InputError as exc:
        module.fail_json(msg=str(exc), errors=exc.details, requests=api.request_summary(), changed=False)
    except objects.ObjectError as exc:
        result = exc.result or {}
        if not module._diff:
            result.pop("diff", None)
        result.pop("warnings", None)
        result.pop("requests", None)
        module.fail_json(
            msg="Kubernetes API error: %s" % exc, status=exc.status, requests=api.request_summary(), **result
        )
    except kclient.KubeError as exc:
        module.fail_json(msg="Kubernetes API error: %s" % exc, status=exc.status, requests=api.request_summary())
    for w in result.pop("warnings"):
        module.warn(w)
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)
