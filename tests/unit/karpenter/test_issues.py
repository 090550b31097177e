"""The user-facing text of every Issue is bounded: one huge value cannot become megabytes of error output."""

import copy
import json

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.apply import karpenter as karpenter_apply
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import issues as issues_mod
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.issues import Issue, object_ref
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.validate import validate_batch
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import resource

MIB = 1 << 20
# generous: path + message + hint of one issue, each bounded (issues.MESSAGE_LIMIT is 4096)
MAX_ISSUE_TEXT = 3 * 4096


def test_shorten_keeps_short_values_and_cuts_long_ones_with_their_length():
    assert issues_mod.shorten("abc") == "abc"
    assert issues_mod.shorten("x" * issues_mod.VALUE_LIMIT) == "x" * issues_mod.VALUE_LIMIT
    cut = issues_mod.shorten("y" * MIB)
    assert cut == "y" * issues_mod.VALUE_LIMIT + "... (1048576 characters)"
    assert issues_mod.shorten(["z"] * MIB).endswith("... (%d characters)" % len(str(["z"] * MIB)))


def test_an_issue_bounds_each_long_value_in_its_texts():
    name = "n" * MIB
    issue = Issue(
        "NodePool/" + name,
        "spec.template.metadata.labels[%s]" % name,
        "label-key",
        'Invalid value: "%s": must be no more than 63 characters' % name,
        hint="rename %s" % name,
    )
    cut = "n" * issues_mod.VALUE_LIMIT + "... (1048576 characters)"
    assert issue.object_ref == "NodePool/" + cut
    assert issue.path == "spec.template.metadata.labels[%s]" % cut
    assert issue.message == 'Invalid value: "%s": must be no more than 63 characters' % cut
    assert issue.hint == "rename " + cut
    assert len(str(issue)) < 6 * issues_mod.VALUE_LIMIT  # four texts, each one cut value


def test_a_long_text_of_short_words_is_bounded_as_a_whole():
    issue = Issue("NodePool/x", "spec", "r", "a b " * MIB)
    assert len(issue.message) <= issues_mod.MESSAGE_LIMIT + 40
    assert issue.message.endswith("... (%d characters)" % (4 * MIB))


def test_valid_names_and_ordinary_messages_are_never_cut(nodepool):
    name = "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 61  # 253 characters, the longest valid name
    nodepool["metadata"]["name"] = name
    assert object_ref(nodepool) == "NodePool/" + name
    message = "value %s of %s looks like a glob/regex" % ("x" * 200, "y" * 200)
    assert Issue("NodePool/" + name, "spec", "KPL001", message).message == message


@pytest.mark.parametrize("where", ["name", "label-key", "requirement-value"])
def test_a_huge_value_gives_bounded_validation_messages(nodepool, where):
    huge = "a" * MIB
    if where == "name":
        nodepool["metadata"]["name"] = huge
    elif where == "label-key":
        nodepool["spec"]["template"]["metadata"]["labels"]["example.com/" + huge] = "x"
    else:
        nodepool["spec"]["template"]["spec"]["requirements"][0]["values"].append(huge)
    batch = validate_batch([nodepool], known_nodeclasses=["default"])
    assert batch.errors
    for issue in batch.errors:
        assert len(str(issue)) < MAX_ISSUE_TEXT, (issue.rule, len(str(issue)))
        assert len(json.dumps(issue.to_dict())) < 2 * MAX_ISSUE_TEXT
    assert any("... (1048576 characters)" in str(i) for i in batch.errors)
    assert len(batch.results[0].object_ref) < 600


class _ListOnly:
    def list(self, path, label_selector=None):
        return {"items": [], "metadata": {"resourceVersion": "1"}}

    def request_summary(self):
        return {}


@pytest.mark.parametrize("kind", [resource.NODEPOOL, resource.EC2NODECLASS], ids=lambda k: k.kind)
def test_a_1mib_name_gives_a_bounded_module_error(nodepool, ec2nodeclass, kind):
    """Was a 4 MB message (and 8 MB of details) for a NodePool: the name in every issue, twice."""
    obj = copy.deepcopy(nodepool if kind is resource.NODEPOOL else ec2nodeclass)
    obj["metadata"]["name"] = "a" * MIB
    with pytest.raises(karpenter_apply.InputError) as exc:
        karpenter_apply.run(_ListOnly(), kind, [obj], check_mode=True)
    assert len(str(exc.value)) < 2 * MAX_ISSUE_TEXT
    assert len(json.dumps(exc.value.details)) < 4 * MAX_ISSUE_TEXT
    assert "... (1048576 characters)" in str(exc.value)


def test_a_name_defined_twice_is_named_bounded(ec2nodeclass):
    ec2nodeclass["metadata"]["name"] = "a" * MIB
    with pytest.raises(karpenter_apply.InputError, match="defined more than once") as exc:
        karpenter_apply.run(_ListOnly(), resource.EC2NODECLASS, [ec2nodeclass, copy.deepcopy(ec2nodeclass)])
    assert len(str(exc.value)) < 600


def test_a_bounded_message_is_at_most_the_limit_with_its_length_note():
    text = "x " * 10000  # no single long value: only the whole is cut
    out = issues_mod.bound(text)
    assert len(out) <= issues_mod.MESSAGE_LIMIT and out.endswith("(20000 characters)")
    assert issues_mod.bound("short") == "short"
