"""The molecule scenarios (molecule/<scenario>/) are wired as their headers say, without a sandbox.

Molecule looks up the `default` scenario on every run; without molecule/default/molecule.yml each run logs
"CRITICAL 'molecule/default/molecule.yml' glob failed". Paths in molecule.yml are relative to the scenario
directory; the run command in each header must work from the repository root as written.
"""

import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MOLECULE = os.path.join(ROOT, "molecule")
SCENARIOS = sorted(d for d in os.listdir(MOLECULE) if os.path.isfile(os.path.join(MOLECULE, d, "molecule.yml")))


def test_scenarios_and_default():
    assert SCENARIOS == ["cluster", "default", "karpenter", "monitoring", "security"]
    assert not os.path.exists(os.path.join(ROOT, "extensions", "molecule"))  # one place for scenarios


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_paths_resolve(scenario):
    sdir = os.path.join(MOLECULE, scenario)
    with open(os.path.join(sdir, "molecule.yml"), encoding="utf-8") as fh:
        text = fh.read()
    config = yaml.safe_load(text)
    prov = config["provisioner"]
    for name, rel in prov["inventory"]["links"].items():
        assert os.path.exists(os.path.join(sdir, rel)), (scenario, name, rel)
    for name, rel in prov["playbooks"].items():
        assert os.path.isfile(os.path.join(sdir, rel)), (scenario, name, rel)
    assert prov["env"]["PATH"].startswith("${MOLECULE_PROJECT_DIRECTORY}/.venv/bin:")
    # the header's command, run from the root: an absolute PATH (molecule runs ansible-playbook elsewhere)
    command = 'PATH="$PWD/.venv/bin:$PATH" molecule test' + ("" if scenario == "default" else " -s " + scenario)
    assert "# Run from the repository root: %s  (after `source .sandbox/env.sh`)" % command in text
    tags = prov.get("ansible_args")
    assert tags == (None if scenario == "default" else ["--tags", scenario])


def test_shared_converge_is_site_yml():
    with open(os.path.join(MOLECULE, "shared", "converge.yml"), encoding="utf-8") as fh:
        (play,) = yaml.safe_load(fh)
    target = os.path.normpath(os.path.join(MOLECULE, "shared", play["ansible.builtin.import_playbook"]))
    assert target == os.path.join(ROOT, "playbooks", "site.yml")
