"""yaml_load: the collection's YAML loader refuses duplicate keys (PyYAML keeps the last one silently)."""

import pytest
import yaml
from ansible_collections.karpenter_eks.platform.plugins.module_utils import yaml_load
from ansible_collections.karpenter_eks.platform.plugins.module_utils.backup import core as backup


def test_duplicate_key_is_an_error_with_key_and_lines():
    text = "a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\n"
    assert yaml.safe_load(text) == {"a": 1, "b": {"c": 3, "d": 2}}  # what the plain loader does
    with pytest.raises(yaml_load.DuplicateKeyError) as exc:
        yaml_load.load(text)
    assert (exc.value.key, exc.value.line, exc.value.first_line) == ("c", 5, 3)
    assert isinstance(exc.value, yaml.YAMLError)


def test_duplicate_key_in_a_later_document_of_a_stream():
    with pytest.raises(yaml_load.DuplicateKeyError) as exc:
        yaml_load.load_all("---\na: 1\n---\nk: 1\nk: 1\n")
    assert exc.value.key == "k" and exc.value.line == 5


def test_equal_keys_of_different_spelling_are_duplicates():
    with pytest.raises(yaml_load.DuplicateKeyError):
        yaml_load.load("1: a\n0x1: b\n")


def test_merge_keys_may_be_overridden_and_null_documents_are_skipped():
    text = "---\nbase: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\n---\n---\nz: [1]\n"
    assert yaml_load.load_all(text) == [{"base": {"x": 1, "y": 2}, "c": {"x": 3, "y": 2}}, {"z": [1]}]


def test_only_safe_tags():
    with pytest.raises(yaml.YAMLError):
        yaml_load.load("!!python/object/apply:os.system [true]\n")


def test_backup_documents_use_the_strict_loader():
    with pytest.raises(yaml_load.DuplicateKeyError):
        backup.load_yaml_docs("kind: NodePool\nkind: EC2NodeClass\n")


def test_documents_with_their_number_and_first_line():
    text = "# comment\n---\na: 1\n---\n---\n\n# about b\nb: [1]\n---\n"
    assert yaml_load.load_documents(text) == [(1, 3, {"a": 1}), (3, 8, {"b": [1]})]  # document 2 is empty
    assert yaml_load.load_documents("") == []
    with pytest.raises(yaml_load.DuplicateKeyError):
        yaml_load.load_documents("a: 1\n---\nk: 1\nk: 2\n")
