# Copyright: contributors to karpenter_eks.platform
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible filters over the Karpenter v1 domain core: ``karpenter_convert`` and ``karpenter_validate``.

Documentation: ``karpenter_convert.yml`` and ``karpenter_validate.yml`` beside this file.
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.convert import convert
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.validate import validate_batch

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None


def _objects(data, filter_name):
    """Accept one object, a list of objects, or a (multi-document) YAML string."""
    if isinstance(data, str):
        if yaml is None:
            raise AnsibleFilterError("%s: PyYAML is required to parse a YAML string" % filter_name)
        try:
            data = [d for d in yaml.safe_load_all(data) if d is not None]
        except yaml.YAMLError as exc:
            raise AnsibleFilterError("%s: input is not valid YAML: %s" % (filter_name, exc))
    if isinstance(data, dict):
        return [data]
    if isinstance(data, (list, tuple)):
        return list(data)
    raise AnsibleFilterError(
        "%s: expected an object, a list of objects or a YAML string, got %s" % (filter_name, type(data).__name__)
    )


def karpenter_convert(
    data,
    node_role=None,
    instance_profile=None,
    ami_version="latest",
    ignore_alpha_defaults=False,
    kubernetes_version=None,
):
    """Convert v1alpha5/v1alpha1/v1beta1 Karpenter objects to v1: ``{objects: [...], report: [...]}``."""
    objs = _objects(data, "karpenter_convert")
    converted, report = convert(
        objs,
        node_role=node_role,
        instance_profile=instance_profile,
        ami_version=ami_version,
        ignore_alpha_defaults=ignore_alpha_defaults,
        kubernetes_version=kubernetes_version,
    )
    return {"objects": converted, "report": [item.to_dict() for item in report]}


def karpenter_validate(data, known_nodeclasses=None, lint=True, warnings=False):
    """Validate (schema, CEL, runtime checks) and lint Karpenter v1 objects; returns the errors."""
    objs = _objects(data, "karpenter_validate")
    if known_nodeclasses is not None and not isinstance(known_nodeclasses, (list, tuple, set)):
        raise AnsibleFilterError("karpenter_validate: known_nodeclasses must be a list of names")
    result = validate_batch(objs, known_nodeclasses=known_nodeclasses, lint=lint)
    issues = result.errors + (result.warnings if warnings else [])
    return [issue.to_dict() for issue in issues]


class FilterModule(object):
    """Karpenter v1 filters."""

    def filters(self):
        return {
            "karpenter_convert": karpenter_convert,
            "karpenter_validate": karpenter_validate,
        }
