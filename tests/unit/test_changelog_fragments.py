"""Every changelog fragment parses and uses only the sections changelogs/config.yaml declares.

ansible-test sanity (the ``changelog`` test) refuses a fragment that is not valid YAML; this catches it in the unit
tier, seconds after the edit, instead of at the end of a CI run.
"""

import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FRAGMENTS = os.path.join(ROOT, "changelogs", "fragments")
NAMES = sorted(f for f in os.listdir(FRAGMENTS) if f.endswith((".yml", ".yaml")))


def sections() -> set:
    with open(os.path.join(ROOT, "changelogs", "config.yaml"), encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    return {key for key, _title in config["sections"]}


def test_there_are_fragments():
    assert NAMES


@pytest.mark.parametrize("name", NAMES)
def test_fragment_is_valid(name):
    with open(os.path.join(FRAGMENTS, name), encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict) and data, name
    allowed = sections() | {"release_summary", "trivial"}
    assert set(data) <= allowed, set(data) - allowed
    for key, entries in data.items():
        if key == "release_summary":
            assert isinstance(entries, str)
            continue
        assert isinstance(entries, list) and entries, key
        assert all(isinstance(e, str) and e.strip() for e in entries), (key, entries)
