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


# the generic Kubernetes layer stands below the domain packages: it may use the shared leaves (errors, progress,
# yaml_load) but no Karpenter, backup, apply or glue code, so a module that only reads or applies plain objects does
# not compile the Karpenter schema and CEL code at every start
KUBE_MAY_IMPORT = ("kube", "errors", "progress", "yaml_load")


def layer_violations(graph):
    return sorted(
        (m, t)
        for m, targets in graph.items()
        if m.split(".")[0] == "kube"
        for t in targets
        if t.split(".")[0] not in KUBE_MAY_IMPORT
    )


def test_the_kube_layer_imports_no_domain_code():
    graph = {m: {t for t, _names, _line in imports(m, p) if t in MODULES and t != m} for m, p in MODULES.items()}
    assert layer_violations(graph) == []
    # the check sees a violation (the one this test was written after: engine took a constant from compare)
    assert layer_violations({"kube.engine": {"karpenter.compare", "kube.ssa"}}) == [
        ("kube.engine", "karpenter.compare")
    ]


def payload(module_file, graph):
    """The module_utils files Ansible packs into a module's AnsiballZ payload: every import, lazy ones included."""
    todo = [t for t, _names, _line in imports("modules." + module_file.stem, module_file) if t in MODULES]
    seen = set()
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph[m])
    return seen


# the modules that apply Karpenter objects (karpenter_backup restores them through the same code)
APPLIES_KARPENTER = {"karpenter_provisioner", "node_template", "karpenter_backup"}


def test_a_module_ships_the_karpenter_apply_code_only_if_it_applies_karpenter_objects():
    graph = {m: {t for t, _names, _line in imports(m, p) if t in MODULES and t != m} for m, p in MODULES.items()}
    shipping = {
        path.stem
        for path in (ROOT.parent / "modules").glob("*.py")
        if path.stem != "__init__" and "apply.karpenter" in payload(path, graph)
    }
    assert shipping == APPLIES_KARPENTER
    objects = payload(ROOT.parent / "modules" / "k8s_objects.py", graph)
    # of the Karpenter package only the issue model (the module layer bounds messages with it)
    assert "kube.objects" in objects and {m for m in objects if m.startswith("karpenter")} <= {
        "karpenter",
        "karpenter.issues",
    }


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


# Public functions and methods (name not starting with "_") of these packages carry type hints: every parameter
# except self/cls and the return value (docs/development.md: type hints on public functions).
TYPED = ("kube/", "karpenter/", "aws/", "apply/", "glue/")


def public_functions(body, prefix=""):
    """(qualified name, node, is_method) of the public functions of a module body and the public methods of its
    public classes (nested ones included); statements such as ``if``/``try`` at that level are looked into,
    function bodies are not (a nested function is no API)."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not node.name.startswith("_"):
                yield prefix + node.name, node, bool(prefix)
        elif isinstance(node, ast.ClassDef):
            if not node.name.startswith("_"):
                yield from public_functions(node.body, prefix + node.name + ".")
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for block in (getattr(node, f, []) for f in ("body", "orelse", "finalbody")):
                yield from public_functions(block, prefix)
            for handler in getattr(node, "handlers", []):
                yield from public_functions(handler.body, prefix)


def missing_hints(node, is_method):
    """Names of the parameters without an annotation (``*args``/``**kwargs`` included) and ``return``."""
    args = node.args
    params = args.posonlyargs + args.args
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
    if is_method and not static and params:
        params = params[1:]  # self, or cls of a classmethod
    params += args.kwonlyargs
    missing = [p.arg for p in params if p.annotation is None]
    missing += ["*" + a.arg for a in (args.vararg,) if a is not None and a.annotation is None]
    missing += ["**" + a.arg for a in (args.kwarg,) if a is not None and a.annotation is None]
    if node.returns is None:
        missing.append("return")
    return missing


def untyped_public_functions(root=ROOT, packages=TYPED):
    """{"file:name": "file:line:name (missing: ...)"} for every public function or method lacking a hint."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if not rel.startswith(packages):
            continue
        for name, node, is_method in public_functions(ast.parse(path.read_text()).body):
            missing = missing_hints(node, is_method)
            if missing:
                found["%s:%s" % (rel, name)] = "%s:%d:%s (missing: %s)" % (rel, node.lineno, name, ", ".join(missing))
    return found


def test_public_functions_have_type_hints():
    found = sorted(untyped_public_functions().values())
    assert not found, "public functions/methods without type hints:\n" + "\n".join(found)


def test_type_hint_check_finds_what_it_should(tmp_path):
    """The checker itself: module functions, methods (self/cls/static), nested classes, under if/try; private
    names, nested functions and private classes are no API."""
    pkg = tmp_path / "kube"
    pkg.mkdir()
    (pkg / "m.py").write_text(
        "try:\n"
        "    import x\n"
        "except ImportError:\n"
        "    def fallback(a): ...\n"
        "def ok(a: int, *args: str, b: int = 1, **kw: int) -> None:\n"
        "    def inner(z): ...\n"
        "def no_return(a: int): ...\n"
        "def _private(a): ...\n"
        "class C:\n"
        "    def __init__(self, a): ...\n"
        "    def method(self, a: int) -> int: ...\n"
        "    @classmethod\n"
        "    def make(cls, a) -> 'C': ...\n"
        "    @staticmethod\n"
        "    def static(a: int, b) -> int: ...\n"
        "    def star(self, *args, **kwargs) -> None: ...\n"
        "    class Inner:\n"
        "        def deep(self) -> int: ...\n"
        "        def deeper(self): ...\n"
        "class _Hidden:\n"
        "    def method(self, a): ...\n"
    )
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "n.py").write_text("def untyped(a): ...\n")
    found = untyped_public_functions(tmp_path, ("kube/",))
    assert found == {
        "kube/m.py:fallback": "kube/m.py:4:fallback (missing: a, return)",
        "kube/m.py:no_return": "kube/m.py:7:no_return (missing: return)",
        "kube/m.py:C.make": "kube/m.py:13:C.make (missing: a)",
        "kube/m.py:C.static": "kube/m.py:15:C.static (missing: b)",
        "kube/m.py:C.star": "kube/m.py:16:C.star (missing: *args, **kwargs)",
        "kube/m.py:C.Inner.deeper": "kube/m.py:19:C.Inner.deeper (missing: return)",
    }
