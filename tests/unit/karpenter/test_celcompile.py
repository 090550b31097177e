"""celcompile (CEL rules compiled to Python) against cel-python, the reference it must never contradict.

* the parser builds the same tree as cel-python's own (lark) parser for every shipped rule;
* differential tests: for every rule of both CRDs, over values taken from the verdict corpus and values
  hypothesis generates from the rule's schema node (including wrong types, nulls, doubles, missing
  fields), a compiled rule that decides (True/False) says exactly what cel-python says; "undecided" is
  allowed (the caller then asks cel-python) but must stay rare on realistic values;
* hand-written expressions probe cel-python's quirks (&& / || absorbing errors but not raises, ``in``
  over mixed lists, ``int()`` conversions, ``has()`` on non-maps, ...).
"""

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import caches, cel, celcompile
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.crds import ec2nodeclass_v1, nodepool_v1
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.schema import iter_schema, matches_type
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.validate import validate
from corpus_cases import bases as corpus_bases
from corpus_cases import entries as corpus_entries
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

celpy = pytest.importorskip("celpy")

SCHEMAS = {"NodePool": nodepool_v1.SCHEMA, "EC2NodeClass": ec2nodeclass_v1.SCHEMA}
DIFF = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def rule_nodes():
    """``(kind, schema_path, node, [rule texts])`` for every schema node with CEL rules."""
    out = []
    for kind, schema in SCHEMAS.items():
        for path, node in iter_schema(schema):
            texts = [r["rule"] for r in node.get("x-kubernetes-validations") or ()]
            if texts:
                out.append((kind, path, node, texts))
    return out


RULE_NODES = rule_nodes()
ALL_RULES = sorted({t for _k, _p, _n, texts in RULE_NODES for t in texts})
TRANSITION = {t for t in ALL_RULES if cel.is_transition_rule(t)}


def reference(text, value, node):
    """cel-python's verdict: True/False, or None for an evaluation error (what cel._evaluate reports)."""
    ok, unused = cel._evaluate(text, {"self": cel.to_cel(value, node)})
    return ok


def convertible(value, node):
    try:
        cel.to_cel(value, node)
    except cel.CELConversionError:  # integers beyond int64: fastpath never compiles-evaluates those
        return False
    return True


# --------------------------------------------------------------------------------------------
# parser: same tree as cel-python's


def from_lark(tree):
    """cel-python's parse tree in celcompile's tuple form (for the constructs the shipped rules use)."""
    data = tree.data
    kids = tree.children
    if data == "expr":
        return from_lark(kids[0]) if len(kids) == 1 else ("cond",) + tuple(from_lark(k) for k in kids)
    if data in ("conditionalor", "conditionaland"):
        if len(kids) == 1:
            return from_lark(kids[0])
        return ("or" if data == "conditionalor" else "and", from_lark(kids[0]), from_lark(kids[1]))
    if data == "relation":
        if len(kids) == 1:
            return from_lark(kids[0])
        op = {
            "relation_lt": "<",
            "relation_le": "<=",
            "relation_gt": ">",
            "relation_ge": ">=",
            "relation_eq": "==",
            "relation_ne": "!=",
            "relation_in": "in",
        }[kids[0].data]
        return ("op", op, from_lark(kids[0].children[0]), from_lark(kids[1]))
    if data in ("addition", "multiplication", "member", "primary", "paren_expr"):
        assert len(kids) == 1, data
        return from_lark(kids[0])
    if data == "unary":
        if len(kids) == 1:
            return from_lark(kids[0])
        assert kids[0].data == "unary_not"
        return ("not", from_lark(kids[1]))
    if data == "member_dot":
        return ("select", from_lark(kids[0]), kids[1].value)
    if data == "member_index":
        return ("index", from_lark(kids[0]), from_lark(kids[1]))
    if data == "member_dot_arg":
        name = kids[1].value
        args = [from_lark(k) for k in kids[2].children] if len(kids) > 2 else []
        if name in ("all", "exists", "exists_one", "filter", "map"):
            return ("macro", name, from_lark(kids[0]), args[0][1], args[1])
        return ("call", name, from_lark(kids[0]), args)
    if data == "ident":
        return ("ident", kids[0].value)
    if data == "ident_arg":
        name = kids[0].value
        args = [from_lark(k) for k in kids[1].children] if len(kids) > 1 else []
        if name == "has":
            return ("has", args[0][1], args[0][2])
        return ("call", name, None, args)
    if data == "list_lit":
        return ("list", [from_lark(k) for k in kids[0].children] if kids else [])
    if data == "literal":
        token = kids[0]
        if token.type == "INT_LIT":
            return ("int", int(token.value))
        if token.type == "BOOL_LIT":
            return ("bool", token.value == "true")
        assert token.type == "STRING_LIT", token.type
        return ("str", str(celpy.evaluation.celstr(token)))
    raise AssertionError("unexpected node %s" % data)


EXTRA_EXPRESSIONS = [
    "a || b && c || !d",
    "a && b || c && d",
    "a == b != c in d",
    "!!a",
    "a ? b : c ? d : e",
    "(a ? b : c) ? d : e",
    "a.b.c[0].d(e, f)[g]",
    "x.all(y, y.exists(z, z in [1, 2, 'three']))",
    "size(a) >= a.size() && int(b) < 3 && c.matches('^x$') != false",
    "has(a.b) ? [] : [a, [b]]",
]


@pytest.mark.parametrize("text", ALL_RULES + EXTRA_EXPRESSIONS)
def test_parser_builds_cel_pythons_tree(text):
    expected = from_lark(celpy.Environment().compile(text))
    assert celcompile.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "self.a + 1 > 2",  # arithmetic
        "-self.a < 0",
        "self.a[-1] == 'z'",  # cel-python lexes -1 as one token
        "self.x == 1.5",  # doubles, uints, hex
        "self.x == 2u",
        "self.x == 0x10",
        "self.s == 'a\\nb'",  # escapes
        "self.s == r'raw'",
        "self.s == '''triple'''",
        "self == null",
        "oldSelf.a == self.a",  # transition rules: cel-python with the old object
        "dyn(self) == 1",
        "self.lowerAscii() == 'a'",
        "self.map(x, y, x)",  # three-argument map
        "self.reduce(r, i, 0, r + i)",
        "self.find(self.p) == ''",  # non-literal pattern
        "self.find('(') == ''",  # pattern neither re nor cel-python accepts
        "{'a': 1}.a == 1",
        "self.all(self, true)",
        "self.",
        "(self",
    ],
)
def test_constructs_outside_the_subset_are_left_to_cel_python(text):
    assert celcompile.compile_rule(text) is None


def test_every_shipped_rule_but_the_transition_rules_is_compiled():
    compiled = [t for t in ALL_RULES if celcompile.compile_rule(t) is not None]
    assert TRANSITION and all(celcompile.compile_rule(t) is None for t in TRANSITION)
    assert sorted(compiled) == sorted(set(ALL_RULES) - TRANSITION)
    assert len(compiled) == 53  # v1.14.1: 59; v1.15.0 dropped the six distinct spec.kubelet rules


# --------------------------------------------------------------------------------------------
# differential tests: compiled rules vs cel-python


def _values_at(obj, path):
    """Values of ``obj`` at a schema path (``[*]`` every list item, ``{*}`` every map value)."""
    values = [obj]
    for part in path.replace("[*]", ".[*]").replace("{*}", ".{*}").split("."):
        if not part:
            continue
        nxt = []
        for v in values:
            if part == "[*]" and isinstance(v, list):
                nxt.extend(v)
            elif part == "{*}" and isinstance(v, dict):
                nxt.extend(v.values())
            elif isinstance(v, dict) and part in v:
                nxt.append(v[part])
        values = nxt
    return values


def corpus_objects():
    objs = list(corpus_bases().values())
    for _entry, obj, _old in corpus_entries():
        if isinstance(obj.get("metadata"), dict):
            obj["metadata"]["name"] = "c"
        objs.append(obj)
    return objs


def corpus_values():
    """``{(kind, schema_path): [values]}``: every value the corpus objects (defaulted) have at a rule node."""
    out = {}
    for obj in corpus_objects():
        defaulted = validate(obj).defaulted
        if not isinstance(defaulted, dict):
            continue
        for kind, path, node, _texts in RULE_NODES:
            if defaulted.get("kind") != kind:
                continue
            for v in _values_at(defaulted, path):
                if matches_type(v, node) and convertible(v, node):
                    out.setdefault((kind, path), []).append(v)
    return out


CORPUS_VALUES = corpus_values()


def test_corpus_reaches_most_rule_nodes():
    reached = {k for k, v in CORPUS_VALUES.items() if v}
    assert len(reached) >= 25, sorted(reached)


@pytest.mark.parametrize("kind,path,node,texts", RULE_NODES, ids=["%s:%s" % (r[0], r[1]) for r in RULE_NODES])
def test_compiled_rules_agree_with_cel_python_on_the_corpus(kind, path, node, texts):
    missed = total = 0
    for value in CORPUS_VALUES.get((kind, path), []):
        for text in texts:
            fn = celcompile.compile_rule(text)
            if fn is None:
                continue
            got = fn(value)
            expected = reference(text, value, node)
            if got is not None:
                assert got is expected, (text, value)
            if expected is not None:  # cel-python decides: the compiled rule should have, too
                total += 1
                missed += got is None
    # realistic values are decided by the compiled rule (the fast path), not sent back to cel-python
    assert missed <= 0.1 * total, (missed, total)


# hypothesis values for a schema node: mostly well-typed, sometimes anything

INTERESTING = [
    "",
    "a",
    "In",
    "NotIn",
    "Gt",
    "Lt",
    "Exists",
    "0",
    "-1",
    " 12",
    "0x1f",
    "1_0",
    "99999999999999999999",
    "al2",
    "al2023@latest",
    "al2@v1",
    "windows2019@latest",
    "windows2022@v1",
    "bottlerocket@1.2",
    "x@",
    "@x",
    "al2023@v1\n",
    "karpenter.sh/nodepool",
    "karpenter.sh/capacity-type",
    "sub.karpenter.sh/x",
    "karpenter.k8s.aws/instance-family",
    "karpenter.k8s.aws/instance-pods",
    "kubernetes.io/hostname",
    "kubernetes.io/cluster/x",
    "eks:eks-cluster-name",
    "memory.available",
    "nodefs.available",
    "cpu",
    "-1Gi",
    "100m",
    "efa-only",
    "interface",
    "Custom",
    "AL2",
    "AL2023",
    "nodes",
    "/x",
    "a/b/c",
    "é@ü",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=3),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=True),
    st.sampled_from(INTERESTING),
    st.text(max_size=6),
)
anything = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(INTERESTING), c, max_size=3),
    max_leaves=6,
)


def from_node(node, depth=0):
    """Values for a schema node; one in eight is any JSON value (wrong types, nulls, doubles ...)."""
    typ = node.get("type")
    if node.get("x-kubernetes-int-or-string"):
        good = st.one_of(st.integers(min_value=-5, max_value=200), st.sampled_from(INTERESTING))
    elif typ == "string":
        good = st.sampled_from(node["enum"]) if node.get("enum") else st.sampled_from(INTERESTING)
    elif typ == "integer":
        good = st.integers(min_value=-3, max_value=120)
    elif typ == "number":
        good = st.one_of(st.integers(min_value=-3, max_value=3), st.floats(allow_nan=False))
    elif typ == "boolean":
        good = st.booleans()
    elif typ == "array":
        items = node.get("items") if depth < 4 else None
        good = st.lists(from_node(items, depth + 1) if items else anything, max_size=4)
    elif typ == "object":
        props = node.get("properties") or {}
        addl = node.get("additionalProperties")
        if props and depth < 5:
            good = st.fixed_dictionaries({}, optional={k: from_node(v, depth + 1) for k, v in props.items()})
        elif isinstance(addl, dict):
            good = st.dictionaries(st.sampled_from(INTERESTING), from_node(addl, depth + 1), max_size=4)
        else:
            good = st.dictionaries(st.sampled_from(INTERESTING), anything, max_size=3)
    else:
        good = anything
    if depth == 0:
        return good  # the rules run only on a value of the node's type
    return st.one_of(good, good, good, good, good, good, good, anything)


@pytest.mark.parametrize("kind,path,node,texts", RULE_NODES, ids=["%s:%s" % (r[0], r[1]) for r in RULE_NODES])
def test_compiled_rules_agree_with_cel_python_on_generated_values(kind, path, node, texts):
    compiled = [(t, celcompile.compile_rule(t)) for t in texts if celcompile.compile_rule(t) is not None]
    if not compiled:
        pytest.skip("only transition rules at %s" % path)
    self_kind = celcompile.SELF_KINDS.get(node.get("type"), "any")
    if node.get("x-kubernetes-int-or-string"):
        self_kind = "any"
    node_fn, covered = celcompile.compile_node(texts, self_kind)

    @DIFF
    @given(value=from_node(node))
    def check(value):
        if not convertible(value, node):
            return
        expected = [reference(t, value, node) for t in texts]
        for text, fn in compiled:
            got = fn(value)
            if got is not None:
                assert got is expected[texts.index(text)], (text, value)
        verdicts = node_fn(value)
        if verdicts is None:  # "every covered rule is true"
            assert all(expected[i] is True for i in covered), (texts, value, expected)
        else:
            assert len(verdicts) == len(covered)
            for i, got in zip(covered, verdicts, strict=True):
                if got is not None:
                    assert got is expected[i], (texts[i], value)

    check()


# --------------------------------------------------------------------------------------------
# cel-python's semantics, case by case (the compiled rule must agree or stay undecided)

QUIRKS = [
    # (expression, self) - evaluated with self converted by cel.to_cel (no schema)
    ("self.a || self.b", {"a": True}),  # error on the right, absorbed
    ("self.b || self.a", {"a": True}),  # error on the left, absorbed
    ("self.a && self.b", {"a": False}),
    ("self.b && self.a", {"a": False}),
    ("self.a || self.c.all(x, x)", {"a": True, "c": 3}),  # a macro over an int raises in cel-python
    ("self.a || self.c.all(x, x)", {"a": True, "c": "abc"}),  # strings are iterated
    ("self.a || self.c.all(x, x)", {"a": True}),  # missing target: an error value, absorbed
    ("self.a && self.c.exists(x, x)", {"a": False, "c": 3}),
    ("self.a || self.c.filter(x, x.y).size() == 0", {"a": True, "c": [1]}),  # error inside filter raises
    ("self.a || self.c.filter(x, x).size() == 0", {"a": True, "c": [True]}),
    ("self.a || self.c.exists_one(x, x.y)", {"a": True, "c": [{}]}),
    ("self.a || self.c.map(x, x.y).size() == 1", {"a": True, "c": [{"y": 1}]}),
    ("self.a || int(self.c) > 0", {"a": True, "c": float("inf")}),  # int() of an infinite double raises
    ("self.a || int(self.c) > 0", {"a": True, "c": "abc"}),  # ... of a bad string is an error value
    ("self.a ? self.b : true", {"a": False}),  # the other branch is not evaluated
    ("self.a ? self.b : true", {"a": 1}),  # a non-bool condition
    ("self.a == 'x'", {"a": True}),  # string == bool is false in cel-python
    ("self.a == 1", {"a": True}),
    ("self.a == true", {"a": 1}),
    ("self.a != 'x'", {"a": 1}),
    ("self.a == self.b", {"a": [1, "x"], "b": [1, "x"]}),
    ("self.a == self.b", {"a": ["x"], "b": ["x"]}),
    ("self.a == self.b", {"a": ["x"], "b": ["y", "z"]}),
    ("self.a == self.b", {"a": {"x": 1}, "b": {"x": 1}}),
    ("self.a < self.b", {"a": "a", "b": "b"}),
    ("self.a < self.b", {"a": 1, "b": "b"}),
    ("self.a < self.b", {"a": True, "b": False}),
    ("self.a >= 1", {"a": 1.5}),
    ("'x' in self.a", {"a": ["x", 1]}),
    ("'x' in self.a", {"a": [1, "x"]}),
    ("'x' in self.a", {"a": [True]}),
    ("'x' in self.a", {"a": "xyz"}),
    ("'x' in self.a", {"a": {"x": 1}}),
    ("1 in self.a", {"a": [True, 1]}),
    ("self.a in ['x', 'y']", {"a": 1}),
    ("self.a in ['x', 'y']", {"a": None}),
    ("has(self.a.b)", {"a": "str"}),
    ("has(self.a.b)", {"a": {"b": None}}),
    ("has(self.a.b)", {}),
    ("size(self.a) == 0", {"a": None}),
    ("size(self.a) == 3", {"a": "héé"}),
    ("self.a.size() == 2", {"a": {"x": 1, "y": 2}}),
    ("self.a[0] == 'x'", {"a": "xyz"}),
    ("self.a[true] == 'z'", {"a": ["x", "z"]}),
    ("self.a[2] == 'z'", {"a": ["x", "z"]}),
    ("self.a['k'] == 1", {"a": {"k": 1}}),
    ("int(self.a) == 16", {"a": "0x10"}),
    ("int(self.a) < 0", {"a": "-0x10"}),
    ("int(self.a) == 12", {"a": " 12 "}),
    ("int(self.a) == 10", {"a": "1_0"}),
    ("int(self.a) == 0", {"a": None}),
    ("int(self.a) == 1", {"a": True}),
    ("int(self.a) == 1", {"a": 1.7}),
    ("int(self.a) > 0", {"a": "9223372036854775808"}),
    ("!self.a", {"a": 0}),
    ("self.a.startsWith('x')", {"a": 1}),
    ("self.a.matches('^x$')", {"a": "x\n"}),
    ("self.a.matches('^[a-z]+@.+$')", {"a": "ab@\u00e9"}),
    ("self.a.matches('^[a-z]+@.+$')", {"a": "ab@\ud800"}),
    ("self.a.find('^[^@]+') == ''", {"a": "@x"}),
    ("self.a.find('^([^/]+)') == self.b", {"a": "a\nb/c", "b": "a\nb"}),
    ("self.a.split('@')[1] == ''", {"a": "x@"}),
    ("self.a.split('@').size() == 1", {"a": ""}),
    ("self.all(k, self[k] != '')", {"": "x"}),
    ("self.a.all(x, x != '')", {"a": {"k": 1}}),
    ("self.a.exists(x, x == 'b')", {"a": "abc"}),
    ("self.a.exists_one(x, x)", {"a": [True, False, 1]}),
    ("self.a.filter(x, x).size() == 1", {"a": [True, False]}),
    ("self.a.filter(x, x).size() == 1", {"a": [1, 0]}),
    ("self.a.map(x, x == 1).size() == 2", {"a": [1, "x"]}),
    ("self.a.all(x, x.all(y, y))", {"a": [[True], 3]}),
    ("self.a.all(x, x > 0) || true", {"a": [1, "x"]}),
    ("[self.a, 1].size() == 2", {}),
    ("self.a", {"a": 1}),
]


@pytest.mark.parametrize("text,value", QUIRKS)
def test_quirks_agree_with_cel_python(text, value):
    fn = celcompile.compile_rule(text)
    assert fn is not None, text
    got = fn(value)
    if got is not None:
        assert got is reference(text, value, None), (text, value)


def test_quirks_are_mostly_decided_by_cel_python():
    """The quirks above are exactly where the compiled rules hand over to cel-python."""
    undecided = [t for t, v in QUIRKS if celcompile.compile_rule(t)(v) is None]
    assert len(undecided) >= 30


def test_short_circuit_is_exact_when_the_skipped_side_cannot_raise():
    fn = celcompile.compile_rule("!has(self.a) || (self.b.exists(x, x == 'y') ? self.a == 'z' : true)")
    # no "a": true whatever b is, as long as b can be iterated (cel-python evaluates it)
    assert fn({"b": ["y"]}) is True
    assert fn({"b": {}}) is True
    assert fn({}) is True  # b missing: an error value, absorbed
    assert fn({"b": 3}) is None  # iterating an int raises inside cel-python: undecided
    assert reference("!has(self.a) || (self.b.exists(x, x == 'y') ? self.a == 'z' : true)", {"b": 3}, None) is None


def test_compiled_matches_agrees_with_re2_on_any_text():
    re2 = pytest.importorskip("re2")
    for pattern in ("^[a-zA-Z0-9]+@.+$", "^[^@]+", "(a|b)", "a+?", "^x$|y", "a{2}", "x$y", "[[:digit:]]", "a{,2}"):
        fn = celcompile.compile_rule("self.matches(%r)" % pattern)
        rx = re2.compile(pattern)
        for text in INTERESTING + ["a@b", "a@b\n", "a@\n", "A9@x y", "@", "x@y@z", "\u0663", "a\u00a0b", "\u00e9@x"]:
            assert fn(text) is (rx.search(text) is not None), (pattern, text)


@given(text=st.text(alphabet="ab/@\n é", max_size=8))
@settings(max_examples=200, deadline=None, database=None)
def test_find_prefix_shortcut_equals_the_regex(text):
    for pattern in ("^([^/]+)", "^[^@]+"):
        fast = celcompile._make_find(None, celcompile._prefix_before(pattern))
        slow = celcompile._make_find(__import__("re").compile(pattern))
        assert fast(text) == slow(text)
    assert celcompile._prefix_before("^[^/]*") is None
    assert celcompile._prefix_before("^([^\\\\]+)") is None


def test_node_function_reports_every_rule():
    texts = ["self.a == 'x'", "self.b.size() > 0", "self.c.lowerAscii() == 'c'", "has(self.d)"]
    fn, covered = celcompile.compile_node(texts, "map")
    assert covered == (0, 1, 3)  # lowerAscii is left to cel-python
    assert fn({"a": "x", "b": [1], "d": 1}) is None
    assert fn({"a": "y", "b": [], "d": 1}) == (False, False, True)
    assert fn({"a": 1, "b": [1]}) == (None, True, False)  # 1 == 'x': undecided


def test_clear_caches_forgets_compiled_rules():
    celcompile.compile_rule("self.a == 'x'")
    assert caches.cache_info()["compiled"] >= 1
    caches.clear_caches(programs=True)
    assert caches.cache_info()["compiled"] == 0
