"""The layers of plugins/module_utils (docs/development.md, "The layers of plugins/module_utils"), checked on the
source: no import cycles, no use of another module's private names, Ansible imported only by the glue."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2] / "plugins" / "module_utils"
PREFIX = "ansible_collections.karpenter_eks.platform.plugins.module_utils"
# the Ansible glue: modules' common main()s (and the AWS helpers built on amazon.aws's module_utils)
GLUE = ("glue/", "aws/")


def modules():
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = modules()


def imports(name, path):
    """(module imported, names imported from it, line) for every import of ``path`` (lazy ones included)."""
    pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)]
                target = ".".join(base + (node.module.split(".") if node.module else []))
            elif node.module and node.module.startswith(PREFIX):
                target = node.module[len(PREFIX) :].strip(".")
            else:
                yield node.module or "", [a.name for a in node.names], node.lineno
                continue
            for alias in node.names:
                sub = ".".join(x for x in (target, alias.name) if x)
                yield (sub, [], node.lineno) if sub in MODULES else (target, [alias.name], node.lineno)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno


def test_no_import_cycles():
    graph = {m: {t for t, _names, _line in imports(m, p) if t in MODULES and t != m} for m, p in MODULES.items()}
    seen, cycles = {}, []

    def visit(node, trail):
        if node in trail:
            cycles.append(trail[trail.index(node) :] + [node])
            return
        if seen.get(node):
            return
        for nxt in sorted(graph[node]):
            visit(nxt, trail + [node])
        seen[node] = True

    for m in sorted(graph):
        visit(m, [])
    assert not cycles, cycles


def test_no_private_names_of_other_modules():
    bad = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        aliases = {}
        for target, names, line in imports(name, path):
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    bad.append("%s:%d imports %s.%s" % (path.relative_to(ROOT), line, target, n))
        for node in ast.walk(tree):  # module aliases: from . import cel as cel_mod; import x.y as z
            if isinstance(node, (ast.ImportFrom, ast.Import)):
                for alias in node.names:
                    aliases[alias.asname or alias.name.split(".")[-1]] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                bad.append("%s:%d uses %s.%s" % (path.relative_to(ROOT), node.lineno, node.value.id, node.attr))
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_only_the_glue_imports_ansible(name):
    path = MODULES[name]
    rel = str(path.relative_to(ROOT))
    if rel.startswith(GLUE):
        pytest.skip("glue")
    found = [
        "%s:%d imports %s" % (rel, line, target)
        for target, _names, line in imports(name, path)
        if target == "ansible" or target.startswith(("ansible.", "ansible_collections."))
        if not target.startswith("ansible_collections.kubernetes.core.plugins.module_utils.args_common")
    ]
    assert not found, found
