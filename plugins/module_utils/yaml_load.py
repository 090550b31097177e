# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one YAML loader of the collection: PyYAML's safe loader that refuses duplicate mapping keys.

YAML says mapping keys are unique, but PyYAML (and so ``yaml.safe_load``) silently keeps the *last* value of
a repeated key: a taint list written twice under ``taints:`` loses the first one, with no message. Every
place the collection parses YAML text goes through :func:`load` / :func:`load_all`, which raise
:class:`DuplicateKeyError` (a ``yaml.YAMLError``, so existing ``except yaml.YAMLError`` handlers report it)
naming the key and the lines of both occurrences. Merge keys (``<<: *anchor``) may still be overridden by
an explicit key: that is what they are for.
"""

try:
    import yaml
    from yaml.constructor import ConstructorError

    _BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
except ImportError:  # pragma: no cover - ansible-core depends on PyYAML
    yaml = None
    ConstructorError = ValueError
    _BaseLoader = object

_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ConstructorError):
    """A mapping repeats a key; ``key``, ``line`` (1-based, the repetition) and ``first_line`` say where."""

    def __init__(self, key, first_mark, mark):
        self.key = key
        self.line = mark.line + 1 if mark is not None else None
        self.first_line = first_mark.line + 1 if first_mark is not None else None
        problem = "found duplicate key %r (line %s; first at line %s): YAML would keep only the last value" % (
            key,
            self.line,
            self.first_line,
        )
        super().__init__("while constructing a mapping", first_mark, problem, mark)


class StrictLoader(_BaseLoader):  # pylint: disable=too-many-ancestors
    """Safe loader (the C parser when available) that raises :class:`DuplicateKeyError`."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node in (pair[0] for pair in node.value):
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base constructor reports it
                    continue
                if first is not None:
                    raise DuplicateKeyError(key, first, key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def load(text):
    """One YAML document, duplicate keys refused."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass


def load_all(text):
    """Every document of a YAML stream (``None`` documents skipped), duplicate keys refused."""
    return [d for _number, _line, d in load_documents(text)]


def load_documents(text):
    """Every document of a YAML stream with where it is: ``[(number, line, document)]``, its 1-based number in
    the stream (empty documents count, and are skipped) and the 1-based line of its first node; duplicate keys
    refused."""
    loader = StrictLoader(text)
    out = []
    try:
        number = 0
        while loader.check_node():
            node = loader.get_node()
            number += 1
            document = loader.construct_document(node) if node is not None else None
            if document is not None:
                out.append((number, node.start_mark.line + 1, document))
    finally:
        loader.dispose()
    return out
