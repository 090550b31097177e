# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible filters over the Karpenter v1 domain core: ``karpenter_convert``, ``karpenter_validate``,
``karpenter_manifest``, ``karpenter_manifest_mismatches``, ``karpenter_label_select``,
``karpenter_lint_helm_values``, ``karpenter_lint_controller_policy`` and ``karpenter_lint_metrics``.

Documentation: one ``<filter>.yml`` per filter beside this file.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.karpenter_eks.platform.plugins.module_utils import yaml_load
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import compare
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.convert import convert_with_origins
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.issues import ERROR, Issue
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.lint import (
    lint_controller_policy,
    lint_helm_values,
)
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.metric_names import lint_metrics
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
            data = yaml_load.load_all(data)  # a duplicate key is an error, not the last value silently
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
    source=None,
):
    """Convert v1alpha5/v1alpha1/v1beta1 Karpenter objects to v1: ``{objects: [...], report: [...]}``.

    With ``source`` (the name of the file ``data`` was read from) every report entry names it, with the document
    and its line, and YAML that cannot be read is an error entry of the report (no objects) instead of a failure."""
    places = None
    if source is not None:
        if not isinstance(source, str) or not source:
            raise AnsibleFilterError("karpenter_convert: source must be a file name")
        if isinstance(data, str) and yaml is not None:
            try:
                documents = yaml_load.load_documents(data)
            except (yaml.YAMLError, UnicodeError) as exc:
                line, message = _yaml_problem(exc, data)
                issue = Issue("", "", "yaml", "%s; nothing converted from this file" % message, ERROR, "convert")
                return {"objects": [], "report": [_located(issue, source, None, line)]}
            places = [(number, line) for number, line, _doc in documents]
            data = [doc for _number, _line, doc in documents]
    objs = _objects(data, "karpenter_convert")
    converted, report, origins = convert_with_origins(
        objs,
        node_role=node_role,
        instance_profile=instance_profile,
        ami_version=ami_version,
        ignore_alpha_defaults=ignore_alpha_defaults,
        kubernetes_version=kubernetes_version,
    )
    if source is None:
        return {"objects": converted, "report": [item.to_dict() for item in report]}
    if places is None:  # objects, not text: the list position is the document number
        places = [(i + 1, None) for i in range(len(objs))]
    entries = []
    for item, origin in zip(report, origins, strict=True):
        number, line = places[origin] if origin is not None else (None, None)
        entries.append(_located(item, source, number, line))
    return {"objects": converted, "report": entries}


def _yaml_problem(exc, text):
    """``(line, message)`` of a YAML text that cannot be read (line None when unknown)."""
    if isinstance(exc, UnicodeError):  # bytes that are not UTF-8 (the playbook's b64decode keeps them as surrogates)
        start = getattr(exc, "start", None)
        line = text.count("\n", 0, start) + 1 if isinstance(start, int) else None
        return line, "not UTF-8 text"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        context = getattr(exc, "context", None)
        context_mark = getattr(exc, "context_mark", None)
        if context and context_mark is not None and context_mark.line != mark.line:
            context = "%s (line %d)" % (context, context_mark.line + 1)
        message = ": ".join(p for p in (context, getattr(exc, "problem", None)) if p)
        return mark.line + 1, "not valid YAML: %s" % (message or str(exc))
    position = getattr(exc, "position", None)  # a ReaderError: a character YAML does not allow
    line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
    return line, "not valid YAML: %s" % str(exc).split("\n", maxsplit=1)[0]


def _located(issue, source, number, line):
    """A report entry of ``issue`` naming its file, document (1-based) and the document's first line."""
    entry = issue.to_dict()
    entry["file"] = source
    where = source
    if line is not None:
        entry["line"] = line
        where = "%s:%d" % (source, line)
    if number is not None:
        entry["document"] = number
        where = "%s (document %d)" % (where, number)
    entry["text"] = "%s: %s" % (where, entry["text"])
    return entry


def karpenter_validate(data, known_nodeclasses=None, lint=True, warnings=False):
    """Validate (schema, CEL, runtime checks) and lint Karpenter v1 objects; returns the errors."""
    objs = _objects(data, "karpenter_validate")
    if known_nodeclasses is not None and not isinstance(known_nodeclasses, (list, tuple, set)):
        raise AnsibleFilterError("karpenter_validate: known_nodeclasses must be a list of names")
    result = validate_batch(objs, known_nodeclasses=known_nodeclasses, lint=lint)
    issues = result.errors + (result.warnings if warnings else [])
    return [issue.to_dict() for issue in issues]


def _ref(obj):
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return "%s/%s" % (obj.get("kind") if isinstance(obj, dict) else "?", name)


def karpenter_manifest(obj):
    """The re-appliable manifest of a live object: no status, no server metadata, CRD defaults applied."""
    if not isinstance(obj, dict):
        raise AnsibleFilterError("karpenter_manifest: expected an object (mapping), got %s" % type(obj).__name__)
    return compare.normalize(obj)


def karpenter_manifest_mismatches(expected, actual):
    """Differences between two sets of objects, matched by kind and name, ignoring server-populated fields
    and defaults: ``["NodePool/a: missing", "NodePool/b: differs at spec.limits", ...]`` (empty when equal)."""
    for arg, value in (("expected", expected), ("actual", actual)):
        if not isinstance(value, (list, tuple)) or not all(isinstance(o, dict) for o in value):
            raise AnsibleFilterError("karpenter_manifest_mismatches: %s must be a list of objects" % arg)
    have = dict((_ref(o), o) for o in actual)
    out = []
    for want in expected:
        ref = _ref(want)
        live = have.pop(ref, None)
        if live is None:
            out.append("%s: missing" % ref)
            continue
        paths = set(compare.diff(want, live)[3]) | set(compare.diff(live, want)[3])
        if paths:
            out.append("%s: differs at %s" % (ref, ", ".join(sorted(paths))))
    out.extend("%s: unexpected" % ref for ref in sorted(have))
    return out


def _selector_terms(selector):
    terms = []
    for raw in (selector or "").split(","):
        term = raw.strip()
        if not term:
            continue
        for op in ("!=", "==", "="):
            if op in term:
                key, value = (t.strip() for t in term.split(op, 1))
                terms.append((key, "!=" if op == "!=" else "=", value))
                break
        else:
            terms.append((term[1:].strip(), "!", None) if term.startswith("!") else (term, "exists", None))
    return terms


def karpenter_label_select(objs, selector):
    """Objects whose metadata.labels match a Kubernetes equality-based label selector
    (``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, comma-separated, all must hold)."""
    if not isinstance(objs, (list, tuple)):
        raise AnsibleFilterError("karpenter_label_select: expected a list of objects, got %s" % type(objs).__name__)
    if not isinstance(selector, str):
        raise AnsibleFilterError("karpenter_label_select: selector must be a string like 'key=value,other'")
    terms = _selector_terms(selector)
    out = []
    for obj in objs:
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        labels = (meta.get("labels") if isinstance(meta, dict) else None) or {}
        ok = True
        for key, op, value in terms:
            if op == "=":
                ok = labels.get(key) == value
            elif op == "!=":
                ok = labels.get(key) != value
            elif op == "exists":
                ok = key in labels
            else:
                ok = key not in labels
            if not ok:
                break
        if ok:
            out.append(obj)
    return out


def _mapping_or_yaml(data, filter_name, what):
    """One mapping, or a YAML string of one mapping (the rendered values file)."""
    if isinstance(data, str):
        if yaml is None:
            raise AnsibleFilterError("%s: PyYAML is required to parse a YAML string" % filter_name)
        try:
            data = yaml_load.load(data)
        except yaml.YAMLError as exc:
            raise AnsibleFilterError("%s: input is not valid YAML: %s" % (filter_name, exc))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AnsibleFilterError("%s: expected %s (a mapping), got %s" % (filter_name, what, type(data).__name__))
    return data


def karpenter_lint_helm_values(values, name="karpenter"):
    """Lint the Helm values of the karpenter chart (KPL029): errors and warnings, as dicts."""
    values = _mapping_or_yaml(values, "karpenter_lint_helm_values", "Helm values")
    return [issue.to_dict() for issue in lint_helm_values(values, name=name)]


def karpenter_lint_controller_policy(documents, name="ControllerPolicy"):
    """Lint the controller's IAM policy documents together (KPL028): errors, as dicts."""
    if isinstance(documents, (list, tuple)):
        docs = [_mapping_or_yaml(d, "karpenter_lint_controller_policy", "a policy document") for d in documents]
    else:
        docs = [_mapping_or_yaml(documents, "karpenter_lint_controller_policy", "a policy document")]
    return [issue.to_dict() for issue in lint_controller_policy(docs, name=name)]


def karpenter_lint_metrics(data, karpenter_version=None):
    """Lint the metric names of PrometheusRules and Grafana dashboards (or their ConfigMaps) against the metrics
    the target Karpenter exports (KPL034): errors, as dicts."""
    objs = _objects(data, "karpenter_lint_metrics")
    if karpenter_version is not None and not isinstance(karpenter_version, str):
        raise AnsibleFilterError("karpenter_lint_metrics: karpenter_version must be a string like '1.15.0'")
    try:
        issues = lint_metrics(objs, karpenter_version=karpenter_version)
    except ValueError as exc:
        raise AnsibleFilterError("karpenter_lint_metrics: %s" % exc)
    return [issue.to_dict() for issue in issues]


class FilterModule:
    """Karpenter v1 filters."""

    def filters(self):
        return {
            "karpenter_convert": karpenter_convert,
            "karpenter_validate": karpenter_validate,
            "karpenter_manifest": karpenter_manifest,
            "karpenter_manifest_mismatches": karpenter_manifest_mismatches,
            "karpenter_label_select": karpenter_label_select,
            "karpenter_lint_helm_values": karpenter_lint_helm_values,
            "karpenter_lint_controller_policy": karpenter_lint_controller_policy,
            "karpenter_lint_metrics": karpenter_lint_metrics,
        }
