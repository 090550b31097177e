# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible glue shared by karpenter_provisioner and node_template: argument spec, client, errors; and
``KubeModule``, the AnsibleModule of every module that takes kubernetes.core's connection options."""

from __future__ import absolute_import, division, print_function

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC

from .kube import client as kclient
from .kube import transport


class KubeModule(AnsibleModule):
    """AnsibleModule for kubernetes.core's connection options (AUTH_ARG_SPEC): the secrets of a ``kubeconfig``
    given as a mapping (tokens, passwords, client keys, exec plugin env values: transport.kubeconfig_secrets)
    are no_log values, as kubernetes.core makes them, so no result, ``invocation`` (ansible-core 2.19,
    ANSIBLE_INJECT_INVOCATION), ``-vvv`` output or log line shows them. They are added as soon as the
    parameters are read, before the argument checks whose failures return the parameters too."""

    def _load_params(self):
        super()._load_params()
        self.no_log_values.update(transport.kubeconfig_secrets((self.params or {}).get("kubeconfig")))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.no_log_values.update(transport.kubeconfig_secrets(self.params.get("kubeconfig")))


def _karpenter_apply():
    """(karpenter_apply, None), or (None, traceback) when cel-python is missing. Imported on use: the modules
    that only need KubeModule do not load the validator."""
    try:
        from . import karpenter_apply

        return karpenter_apply, None
    except ImportError:
        return None, traceback.format_exc()


ARG_SPEC = dict(
    definitions=dict(type="list", elements="raw", default=[]),
    name=dict(type="str"),
    spec=dict(type="dict"),
    labels=dict(type="dict"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    prune=dict(type="bool", default=False),
    allow_disruption=dict(type="bool", default=False),
    strict=dict(type="bool", default=False),
    wait=dict(type="bool", default=False),
    wait_timeout=dict(type="int", default=120),
    request_timeout=dict(type="int", default=30),
    conversion=dict(
        type="dict",
        default={},
        options=dict(
            node_role=dict(type="str"),
            instance_profile=dict(type="str"),
            ami_version=dict(type="str", default="latest"),
            ignore_alpha_defaults=dict(type="bool", default=False),
            kubernetes_version=dict(type="str"),
        ),
    ),
)


def argument_spec(**extra):
    spec = dict(AUTH_ARG_SPEC)
    spec.update(ARG_SPEC)
    spec.update(extra)
    return spec


def build_module(**extra):
    return KubeModule(
        argument_spec=argument_spec(**extra),
        supports_check_mode=True,
        mutually_exclusive=[("definitions", "name"), ("definitions", "spec")],
        required_by={"spec": "name", "labels": "name"},
    )


def run_module(module, kind_name, **run_args):
    if not kclient.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(kclient.KUBERNETES_IMPORT_ERROR))
    karpenter_apply, import_error = _karpenter_apply()
    if karpenter_apply is None:
        module.fail_json(msg=missing_required_lib("cel-python"), exception=import_error)
    from .kube import engine

    kind = {"NodePool": engine.NODEPOOL, "EC2NodeClass": engine.EC2NODECLASS}[kind_name]
    p = module.params
    definitions = p["definitions"]
    if p["name"]:
        meta = {"name": p["name"]}
        if p["labels"]:
            meta["labels"] = p["labels"]
        definitions = [{"apiVersion": kind.api_version, "kind": kind.kind, "metadata": meta, "spec": p["spec"] or {}}]
    if not definitions and not p["prune"]:
        module.fail_json(msg="one of definitions or name is required")
    try:  # before anything is read: a timeout of 0 or less would retry for nothing or write and then fail
        karpenter_apply.check_timeouts(p["wait_timeout"], p["request_timeout"])
    except karpenter_apply.InputError as exc:
        module.fail_json(msg=str(exc), changed=False)
    try:
        api = kclient.connect(p, timeout=p["request_timeout"])
    except Exception as exc:  # kubeconfig missing/unreadable
        module.fail_json(msg="cannot configure the Kubernetes client: %s" % exc)
    try:
        result = karpenter_apply.run(
            api,
            kind,
            definitions,
            state=p["state"],
            prune=p["prune"],
            wait=p["wait"],
            wait_timeout=p["wait_timeout"],
            check_mode=module.check_mode,
            strict=p["strict"],
            allow_disruption=p["allow_disruption"],
            conversion=p["conversion"],
            **run_args,
        )
    except karpenter_apply.InputError as exc:
        module.fail_json(msg=str(exc), errors=exc.details, requests=api.request_summary(), changed=False)
    except kclient.KubeError as exc:
        if exc.result is None:  # nothing was written
            module.fail_json(msg="Kubernetes API error: %s" % exc, status=exc.status, requests=api.request_summary())
        # a write or the wait failed after objects were written: changed, with what was written
        module.fail_json(msg="Kubernetes API error: %s" % exc, status=exc.status, **_reported(module, exc.result))
    result = _reported(module, result)
    if result["not_ready"]:
        module.fail_json(
            msg="%s not Ready after %ss: %s" % (kind.kind, p["wait_timeout"], ", ".join(result["not_ready"])), **result
        )
    if result["not_deleted"]:
        module.fail_json(
            msg="%s still present %ss after deletion (finalizers pending): %s"
            % (kind.kind, p["wait_timeout"], ", ".join(result["not_deleted"])),
            **result,
        )
    module.exit_json(**result)


def _reported(module, result):
    """karpenter_apply.run's result as the module returns it: warnings emitted, the diff only with --diff."""
    result = dict(result)
    for w in result.pop("warnings"):
        module.warn(w)
    if not module._diff:
        result.pop("diff")
    return result


def run_info_module():
    spec = dict(AUTH_ARG_SPEC)
    spec.update(
        kinds=dict(
            type="list",
            elements="str",
            choices=["NodePool", "EC2NodeClass", "NodeClaim"],
            default=["NodePool", "EC2NodeClass", "NodeClaim"],
        ),
        names=dict(type="list", elements="str", default=[]),
        request_timeout=dict(type="int", default=30),
    )
    module = KubeModule(argument_spec=spec, supports_check_mode=True)
    if not kclient.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(kclient.KUBERNETES_IMPORT_ERROR))
    from .kube import info

    p = module.params
    try:
        api = kclient.connect(p, timeout=p["request_timeout"])
        result = info.summarize(api, p["kinds"], p["names"])
    except kclient.KubeError as exc:
        module.fail_json(msg="Kubernetes API error: %s" % exc, status=exc.status)
    except Exception as exc:  # kubeconfig missing/unreadable
        module.fail_json(msg="cannot configure the Kubernetes client: %s" % exc)
    module.exit_json(changed=False, requests=api.request_summary(), **result)
