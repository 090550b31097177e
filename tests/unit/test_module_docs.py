# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The modules' documentation as ansible-doc renders it (doc fragments resolved): short descriptions, the
``attributes`` from the collection's fragment and truthful to meta/runtime.yml, RETURN samples of the right
kind, and the redirect names of meta/runtime.yml documented and working."""

import ast
import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
NS = "karpenter_eks.platform"
MODULES = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "plugins", "modules")) if f.endswith(".py"))
MAX_DESCRIPTION_WORDS = 60
ATTRIBUTE_FRAGMENTS = {NS + ".attributes", NS + ".attributes.info_module"}
# what each Karpenter object module manages (results[].kind, the object in the RETURN sample)
KINDS = {"karpenter_provisioner": "NodePool", "node_template": "EC2NodeClass"}


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH")}
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(ROOT, ".collections")
    return env


def _ansible_doc(*names):
    proc = subprocess.run(
        [os.path.join(BIN, "ansible-doc"), "--json", "-t", "module", *names],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def docs():
    """ansible-doc's view of every module, in one call."""
    out = _ansible_doc(*["%s.%s" % (NS, m) for m in MODULES])
    assert sorted(out) == ["%s.%s" % (NS, m) for m in MODULES]
    return {name.rsplit(".", 1)[1]: value for name, value in out.items()}


@pytest.fixture(scope="module")
def runtime():
    with open(os.path.join(ROOT, "meta", "runtime.yml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


def _source_doc(module, var="DOCUMENTATION"):
    """A documentation string of the module's file as written (no fragments)."""
    with open(os.path.join(ROOT, "plugins", "modules", module + ".py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == var:
            return yaml.safe_load(node.value.value)
    raise AssertionError("%s has no %s" % (module, var))


def _words(text):
    return len(" ".join(text if isinstance(text, list) else [text]).split())


@pytest.mark.parametrize("module", MODULES)
def test_description_is_short(docs, module):
    words = _words(docs[module]["doc"]["description"])
    assert 0 < words <= MAX_DESCRIPTION_WORDS, "%s: description has %d words (mechanics belong in notes)" % (
        module,
        words,
    )


@pytest.mark.parametrize("module", MODULES)
def test_attributes_come_from_the_fragment(docs, module):
    raw = _source_doc(module)
    fragments = raw.get("extends_documentation_fragment") or []
    assert len(ATTRIBUTE_FRAGMENTS & set(fragments)) == 1, fragments
    # a module may only override support/details of an attribute; the descriptions are the fragment's
    for name, attr in (raw.get("attributes") or {}).items():
        assert set(attr) <= {"support", "details"}, "%s: inline attribute %s: %s" % (module, name, sorted(attr))
    attributes = docs[module]["doc"]["attributes"]
    assert {"check_mode", "diff_mode", "platform", "action_group", "idempotent"} <= set(attributes)
    for name, attr in attributes.items():
        assert attr.get("description"), (module, name)
        assert attr.get("support") in ("full", "partial", "none", "N/A"), (module, name)
    assert attributes["check_mode"]["support"] == "full"  # every module declares supports_check_mode=True
    if NS + ".attributes.info_module" in fragments:
        assert attributes["diff_mode"]["support"] == "N/A"


@pytest.mark.parametrize("module", MODULES)
def test_action_group_matches_runtime_yml(docs, runtime, module):
    groups = sorted(g for g, members in runtime["action_groups"].items() if module in members)
    assert len(groups) == 1, "%s is in action groups %s" % (module, groups)
    attr = docs[module]["doc"]["attributes"]["action_group"]
    assert attr["membership"] == ["%s.%s" % (NS, groups[0])]
    assert "group/%s.%s" % (NS, groups[0]) in attr["description"]


@pytest.mark.parametrize("module", sorted(KINDS))
def test_return_samples_are_of_the_module_kind(docs, module):
    kind = KINDS[module]
    results = docs[module]["return"]["results"]
    assert results["sample"], module
    for entry in results["sample"]:
        assert entry["kind"] == kind
        if "object" in entry:
            assert entry["object"]["kind"] == kind
        if kind != "NodePool":
            assert "usage" not in entry  # the result carries usage for NodePools only
    assert ("usage" in " ".join(results["description"])) == (kind == "NodePool")
    examples = yaml.safe_load(docs[module]["examples"])
    for task in examples:
        for definition in next((v for k, v in task.items() if k.startswith(NS)), {}).get("definitions") or []:
            if isinstance(definition, dict):
                assert definition["kind"] == kind, (module, task["name"])


@pytest.mark.parametrize("module", MODULES)
def test_requests_sample_has_the_totals(docs, module):
    """Where RETURN shows a sample of ``requests``, it has the keys the module returns."""
    requests = docs[module].get("return", {}).get("requests") or {}
    if "sample" in requests:
        assert {"total", "writes"} <= set(requests["sample"]), module


def test_redirects_are_documented_and_work(docs, runtime):
    redirects = runtime["plugin_routing"]["modules"]
    assert redirects, "meta/runtime.yml has no module redirects"
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    rendered = _ansible_doc(*["%s.%s" % (NS, alias) for alias in redirects])
    for alias, route in redirects.items():
        target = route["redirect"].rsplit(".", 1)[1]
        fqcn = "%s.%s" % (NS, alias)
        doc = docs[target]["doc"]
        assert fqcn in " ".join(doc["description"]), "%s does not name its other name %s" % (target, fqcn)
        assert "%s:" % fqcn in docs[target]["examples"], "%s has no example with %s" % (target, fqcn)
        assert fqcn in readme
        # ansible-doc follows the redirect to the target's documentation
        assert rendered[fqcn]["doc"]["module"] == target
