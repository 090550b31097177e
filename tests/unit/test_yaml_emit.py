"""yaml_emit: the fast block-style YAML of backups must read back as exactly the data that went in.

Checked with PyYAML's C loader here (what restore uses); tests/integration/test_backup_yaml_kubectl.py checks
the same strings with kubectl's Go YAML reader (what `kubectl apply -f` on an extracted backup uses).
"""

import pytest
import yaml
from ansible_collections.karpenter_eks.platform.plugins.module_utils import yaml_emit

# strings a YAML reader could take for something else, or that need escaping
TRICKY = [
    "yes", "No", "on", "OFF", "y", "N", "null", "Null", "~", "", "1", "1.0", "0o17", "0x1F", "1e3", ".inf", "-",
    "- a", ": x", "#c", "a: b", "a #b", " lead", "trail ", "é", "😀", "\x85", "\u2028", "\ufeff", "true", "True",
    "=", "<<", "!tag", "&a", "*a", "%x", "@x", "`x", "'q", '"q', "{a}", "[a]", "a,b", "?x", "|x", ">x", "a\nb",
    "tab\there", "\x01ctl", "2024-01-01", "12:30", "v1.2.3", "karpenter.sh/nodepool", "_x", "a-", "back\\slash",
    "é\nmulti", "---", "...", "a" * 300,
]  # fmt: skip


def load(text):
    return list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


@pytest.mark.parametrize("text", TRICKY, ids=[repr(t)[:20] for t in TRICKY])
def test_every_tricky_string_reads_back_as_itself_as_value_key_and_list_item(text):
    doc = {"v": text, text or "empty-key": [text, {"k": text}], "nested": {"deeper": [[text]]}}
    assert load(yaml_emit.dump_docs([doc])) == [doc]


def test_scalars_of_every_json_type_and_empty_containers():
    doc = {"i": -3, "big": 10**20, "f": 1.5, "small": 1e-05, "t": True, "f2": False, "z": None, "d": {}, "l": []}
    docs = [doc, {"list": [[1, [2, {}]], [], {}, None, {"a": [{"b": {"c": []}}]}]}]
    assert load(yaml_emit.dump_docs(docs)) == docs


def test_layout_is_block_style_with_sorted_keys():
    doc = {"spec": {"l": [{"b": [1, 2], "a": 1}, [3, 4]], "e": {}}, "metadata": {"name": "x", "labels": {"a": "yes"}}}
    assert yaml_emit.dump_docs([doc]) == (
        "---\n"
        "metadata:\n"
        "  labels:\n"
        '    a: "yes"\n'
        "  name: x\n"
        "spec:\n"
        "  e: {}\n"
        "  l:\n"
        "  - a: 1\n"
        "    b:\n"
        "    - 1\n"
        "    - 2\n"
        "  - - 3\n"
        "    - 4\n"
    )


def test_same_data_as_pyyaml_for_kubernetes_objects():
    objs = [
        {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": "np-%d" % i, "annotations": {"note": "a: b, c # d"}},
            "spec": {
                "limits": {"cpu": "1000", "memory": "1000Gi"},
                "template": {"spec": {"requirements": [{"key": "k", "operator": "In", "values": ["on", "off", "1"]}]}},
                "weight": i,
            },
        }
        for i in range(20)
    ]
    ours = yaml_emit.dump_docs(objs)
    theirs = yaml.safe_dump_all(objs, default_flow_style=False, sort_keys=True, explicit_start=True)
    assert load(ours) == load(theirs) == objs


def test_empty_stream_and_non_string_keys():
    assert yaml_emit.dump_docs([]) == ""
    with pytest.raises(TypeError, match="mapping keys must be strings"):
        yaml_emit.dump_docs([{1: "x"}])
