"""Every job template's survey asks exactly for variables its playbook documents and reads.

Contract (also in awx/configs/job_templates.yml and awx/README.md). A playbook's *inputs* are the variables it
  * names in its header comment (the leading ``#`` block: documentation for the CLI user), and
  * reads from outside: a play ``vars:`` entry (a default the caller may override), a ``name | default(...)``
    anywhere, or ``name is defined`` in a task.
A survey variable must be an input; ``karpenter_eks_*`` (inventory) variables are never survey questions; a
true/false choice is read with ``| bool``. The same holds for a template's ``extra_vars``.
Every operator playbook under playbooks/ has at least one job template (convert_legacy.yml is a local file tool).
Templates whose playbook does not exist yet are skipped, naming the missing playbook.
"""

import glob
import os
import re
import sys

import pytest
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import awxlib  # noqa: E402

ROOT = awxlib.ROOT
NOT_AWX_JOBS = {"playbooks/convert_legacy.yml"}  # converts local files given as src/dest paths: not an AWX job
ENTRIES = awxlib.plain(awxlib.load_config()["karpenter_eks_awx_job_templates"])


def playbook_inputs(path):
    with open(path) as f:
        text = f.read()
    header = []
    for line in text.splitlines():
        if line.startswith("---"):
            continue
        if not line.startswith("#"):
            break
        header.append(line)
    header = "\n".join(header)
    plays = yaml.safe_load(text) or []
    body = re.sub(r"(?m)^\s*#.*$", "", text)
    read = set(re.findall(r"\b([A-Za-z_]\w*)\s*\|\s*default\(", body))
    read |= set(re.findall(r"\b([A-Za-z_]\w*)\s+is\s+defined\b", body))
    for play in plays:
        read |= set((play.get("vars") or {}).keys())
    documented = {name for name in read if re.search(rf"\b{re.escape(name)}\b", header)}
    return documented, read, body


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_survey_variables_are_documented_playbook_inputs(entry):
    path = os.path.join(ROOT, entry["playbook"])
    if not os.path.exists(path):
        pytest.skip(f"{entry['playbook']} does not exist yet (job template {entry['name']!r})")
    documented, read, body = playbook_inputs(path)
    for q in entry["survey"]:
        var = q["variable"]
        assert not var.startswith("karpenter_eks_"), f"{var}: inventory variables are not survey questions"
        assert var in read, f"{entry['playbook']} never reads {var} (play vars, | default(...), is defined)"
        assert var in documented, f"{var} is read by {entry['playbook']} but not documented in its header comment"
        if q["type"] == "multiplechoice" and set(q["choices"]) == {"true", "false"}:
            assert re.search(rf"\b{var}\s*\|\s*bool\b", body), f"{var} arrives as a string: read it with | bool"
    for var in entry.get("extra_vars", {}):
        assert var in read and var in documented, f"extra var {var} is not a documented input of {entry['playbook']}"


def test_every_operator_playbook_has_a_job_template():
    playbooks = {
        os.path.relpath(p, ROOT)
        for pattern in ("playbooks/*.yml", "playbooks/runbooks/*.yml", "playbooks/drills/*.yml")
        for p in glob.glob(os.path.join(ROOT, pattern))
    }
    templated = {e["playbook"] for e in ENTRIES}
    missing = sorted(playbooks - templated - NOT_AWX_JOBS)
    assert not missing, f"playbooks without an AWX job template (awx/configs/job_templates.yml): {missing}"


def test_contract_detects_a_wrong_survey(tmp_path):
    pb = tmp_path / "p.yml"
    pb.write_text(
        "---\n# Usage: -e my_flag=true -e my_count=3\n- name: P\n  hosts: all\n  vars:\n    my_count: 3\n"
        '  tasks:\n    - name: T\n      ansible.builtin.debug:\n        msg: "{{ my_flag | default(false) | bool }}"\n'
    )
    documented, read, _ = playbook_inputs(str(pb))
    assert documented == {"my_flag", "my_count"} and "undocumented_var" not in read


def test_templates_are_unique_and_environments_known():
    config = awxlib.load_config()
    envs = {e["name"] for e in awxlib.plain(config["karpenter_eks_awx_environments"])}
    names = [t["name"] for t in awxlib.job_templates(config)]
    assert len(names) == len(set(names))
    for e in ENTRIES:
        assert set(e["environments"]) <= envs, e["name"]
        assert os.path.isdir(os.path.join(ROOT, "inventories", *e["environments"][:1])), e["name"]
        if e["playbook"].startswith("playbooks/drills/"):
            assert "prod" not in e["environments"], "drills break things on purpose: not offered for prod"
    site = [t for t in awxlib.job_templates(config) if t["playbook"] == "playbooks/site.yml"]
    assert {t["environment"] for t in site} == {"dev", "staging", "prod"}
    for s in awxlib.plain(config["karpenter_eks_awx_schedules"]):
        assert any(e["name"] == s["template"] for e in ENTRIES)


CHANGING = ("site", "runbook provisioning failure", "runbook controller failure", "runbook spot interruption storm")


def test_templates_that_change_the_platform_are_check_jobs_in_prod():
    """In prod, every template that can change the platform (converge, remediate, restore, reintroduce spot) starts
    as a Check job (dry run with diff) and lets the operator pick Run at launch; dev and staging keep their type."""
    config = awxlib.load_config()
    by_name = {t["name"]: t for t in awxlib.plain(config["karpenter_eks_awx_job_templates"])}
    for name in CHANGING + ("restore", "runbook spot reintroduction"):
        t = by_name[name]
        prod = (t.get("job_type_by_environment") or {}).get("prod", t["job_type"])
        assert prod == "check" and t.get("ask_job_type_on_launch") is True, name
    assert by_name["site"]["job_type"] == "run"  # dev/staging converge for real
    # awx/apply.yml resolves the per-environment type
    task = [t for t in awxlib.apply_play()["tasks"] if "awx.awx.job_template" in t][0]
    assert "job_type_by_environment" in task["awx.awx.job_template"]["job_type"]
