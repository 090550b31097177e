"""The offline validator decides strings as the Go programs do (golang.py): RE2 regular expressions,
strconv.ParseInt for CEL int(), kube-openapi's date-time check, Go's time.Duration range, JSON numbers
where quantities are expected, and the apiserver/etcd size limits.

The expected verdicts of the tables were read from a kube-apiserver (server-side dry-run of a NodePool
with the value) - tests/integration/test_differential.py keeps comparing them with a live one.
"""

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import (
    cel,
    celcompile,
    golang,
    validate,
)
from hypothesis import given, settings
from hypothesis import strategies as st

re2 = pytest.importorskip("re2")

TPL = ("spec", "template", "spec")


def _set(obj, path, value):
    node = obj
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return obj


def _errors(obj):
    return validate.validate(obj).errors


# --------------------------------------------------------------------------------------------
# regular expressions


PATTERNS = [
    r"^(@(annually|yearly|monthly|weekly|daily|midnight|hourly))|((.+)\s(.+)\s(.+)\s(.+)\s(.+))$",
    r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
    r"^\d+$",
    r"\w+\b",
    r"^[\s\d]+$",
    r"^\S+$",
    r"[[:alpha:]]+[[:digit:]]*",
    r"a{,2}",
    r"^x\z",
    r"\Qa.b\E+",
    r"(?P<n>a)(?<m>b)",
    r"(?s:a.b)",
    r"[^\s]x",
    r"\x41\x{42}",
    r"(?i)k",
    r"\pL+",
]
TRICKY = "a bA\u00a0\u0663\u0660\t\n\x0b\x0c\r\u2028\u212a_k1.@"


@pytest.mark.parametrize("pattern", PATTERNS)
@given(text=st.text(alphabet=TRICKY, max_size=8))
@settings(max_examples=150, deadline=None, database=None)
def test_compile_regex_matches_exactly_what_re2_matches(pattern, text):
    rx = golang.compile_regex(pattern)
    assert (rx.search(text) is not None) == (re2.compile(pattern).search(text) is not None)


@pytest.mark.parametrize(
    "pattern, text, expected",
    [
        (r"^\d$", "\u0663", False),  # Arabic-Indic digit: Python's \d takes it, RE2's does not
        (r"^\s$", "\u00a0", False),  # no-break space
        (r"^\s$", "\x0b", False),  # RE2's \s has no vertical tab
        (r"^\s$", "\x0c", True),
        (r"^\w$", "\u00e9", False),
        (r"^a$", "a\n", False),  # Go's $ is the end of the text
    ],
)
def test_perl_classes_are_ascii_and_dollar_is_end_of_text(pattern, text, expected):
    assert (golang.compile_regex(pattern).search(text) is not None) is expected


@pytest.mark.parametrize("pattern", [r"a(?=b)", r"a(?!b)", r"(?<=a)b", r"(?<!a)b", r"(a)\1", r"a\Z", r"(?>a)"])
def test_what_re2_refuses_is_refused(pattern):
    with pytest.raises(golang.GoRegexError):
        golang.compile_regex(pattern)


def test_budget_schedule_with_a_no_break_space_is_refused(nodepool):
    for sep in ("\u00a0", "\x0b", "\u2003"):
        _set(nodepool, ("spec", "disruption", "budgets", 1, "schedule"), "0%s9 * * mon-fri" % sep)
        errors = _errors(nodepool)
        assert [(e.path, e.rule) for e in errors] == [("spec.disruption.budgets[1].schedule", "pattern")], sep
    _set(nodepool, ("spec", "disruption", "budgets", 1, "schedule"), "0\t9 * * mon-fri")
    assert not _errors(nodepool)


def test_cel_find_uses_go_regex_semantics():
    cel.environment()
    assert cel._evaluate("'\u0663\u0664x'.find('[0-9]+') == ''", {}) == (True, None)
    assert cel._evaluate("'\u0663\u0664x'.find('\\\\d+') == ''", {}) == (True, None)
    assert cel._evaluate("'a\\u00a0b'.find('\\\\s') == ''", {}) == (True, None)


# --------------------------------------------------------------------------------------------
# CEL int() of a string: strconv.ParseInt(s, 10, 64)


@pytest.mark.parametrize(
    "text, value",
    [
        ("4", 4),
        ("+4", 4),
        ("-0", 0),
        ("010", 10),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
    ],
)
def test_parse_int_accepts_what_go_accepts(text, value):
    assert golang.parse_int(text) == value


@pytest.mark.parametrize(
    "text", ["16_384", " 4", "4 ", "0x10", "0o7", "0b1", "\u0664", "", "+", "1e3", "9223372036854775808", "4\n"]
)
def test_parse_int_refuses_what_go_refuses(text):
    with pytest.raises(ValueError):
        golang.parse_int(text)


def _gt(nodepool, value):
    req = {"key": "karpenter.k8s.aws/instance-memory", "operator": "Gt", "values": [value]}
    return _set(nodepool, TPL + ("requirements", 3), req)


@pytest.mark.parametrize("value", ["16_384", " 4", "0x10", "\u0664", "9223372036854775808"])
def test_gt_value_the_apiserver_cannot_convert_is_refused_by_the_crd_rule(nodepool, value):
    errors = _errors(_gt(nodepool, value))
    cel_errors = [e for e in errors if e.source == "cel"]
    assert cel_errors and cel_errors[0].path == "spec.template.spec.requirements"
    assert "type conversion error from 'string' to 'int'" in cel_errors[0].message
    assert "must have a single positive integer value" in cel_errors[0].message


@pytest.mark.parametrize("value", ["+4", "010", "9223372036854775807"])
def test_gt_value_go_parses_is_accepted(nodepool, value):
    # "+4" is no valid label value: Karpenter's runtime validation refuses it, the CRD does not
    assert [e.rule for e in _errors(_gt(nodepool, value))] == (["label-value"] if value == "+4" else [])


@pytest.mark.parametrize("value", ["16_384", " 4", "0x10", "-0x10", "4", "+4", "\u0664"])
def test_compiled_int_agrees_with_cel_int(value):
    rule = "int(self) >= 0"
    compiled = celcompile.compile_rule(rule)(value)
    cel.environment()
    reference = cel._evaluate(rule, {"self": cel.to_cel(value)})[0]
    assert compiled in (reference, None)
    assert reference is (True if value in ("4", "+4") else None)


def test_runtime_numeric_operator_check_uses_atoi():
    found = validate.validate_requirement({"key": "example.com/size", "operator": "Gt", "values": ["1_0"]})
    assert [rule for rule, unused, unused2 in found] == ["numeric-operator"]


# --------------------------------------------------------------------------------------------
# date-time


ACCEPTED_DATE_TIMES = [
    "2024-02-29T10:00:00Z",
    "2024-01-01t10:00:00z",
    "2024-01-01T10:00:00x5Z",  # the fraction may follow any character
    "2024-01-01T10:00:00Zt",  # anything after a second t is ignored
    "2024-01-01T10:00:00+25:99",  # offset digits are not range-checked
    "2024-01-01T10:00:00,5Z",
    "2024-01-01T10:00:00.123456789Z",
    "0000-01-01T00:00:00Z",
]
REFUSED_DATE_TIMES = [
    "2024-01-01 10:00:00Z",
    "2024-01-01T25:00:00Z",
    "2024-02-30T10:00:00Z",
    "2024-13-01T10:00:00Z",
    "2023-02-29T10:00:00Z",
    "2024-01-01T10:00:60Z",
    "2024-01-01T10:00Z",
    "2024-01-01T10:00:00",
    "2024-1-01T10:00:00Z",
    "2024-01-01T10:00:00+0100",
    "2024-01-01T\u0661\u0660:00:00Z",
    "2024-01-01T10:00:00Z\n",
]


@pytest.mark.parametrize("value", ACCEPTED_DATE_TIMES)
def test_date_time_the_apiserver_accepts(value):
    assert golang.is_openapi_date_time(value)


@pytest.mark.parametrize("value", REFUSED_DATE_TIMES)
def test_date_time_the_apiserver_refuses(nodepool, value):
    assert not golang.is_openapi_date_time(value)
    _set(nodepool, TPL + ("taints", 0, "timeAdded"), value)
    errors = _errors(nodepool)
    assert [(e.path, e.rule) for e in errors] == [("spec.template.spec.taints[0].timeAdded", "format")]


@pytest.mark.parametrize("value", ACCEPTED_DATE_TIMES)
def test_time_added_karpenter_cannot_decode_is_a_runtime_error(nodepool, value):
    _set(nodepool, TPL + ("taints", 0, "timeAdded"), value)
    errors = _errors(nodepool)
    if golang.parse_rfc3339(value):
        assert not errors
    else:
        assert [(e.path, e.rule, e.source) for e in errors] == [
            ("spec.template.spec.taints[0].timeAdded", "time-added", "runtime")
        ]


@pytest.mark.parametrize(
    "value, ok",
    [
        ("2024-02-29T10:00:00Z", True),
        ("2024-01-01T10:00:00.5+01:00", True),
        ("2024-01-01T10:00:00,5Z", True),
        ("2024-01-01t10:00:00Z", False),
        ("2024-01-01T10:00:00z", False),
        ("2024-01-01T10:00:00+25:00", False),
        ("2024-02-30T10:00:00Z", False),
    ],
)
def test_parse_rfc3339(value, ok):
    assert golang.parse_rfc3339(value) is ok


# --------------------------------------------------------------------------------------------
# JSON numbers where an int-or-string quantity or an integer is expected


def test_integral_float_quantity_is_accepted_and_stored_as_an_int(nodepool):
    nodepool["spec"]["limits"]["cpu"] = 1000.0
    nodepool["spec"]["weight"] = 10.0
    for fast in (True, False):
        validate.FAST_PATH = fast
        try:
            result = validate.validate(nodepool)
        finally:
            validate.FAST_PATH = True
        assert result.ok, result.errors
        assert result.defaulted["spec"]["limits"]["cpu"] == 1000
        assert isinstance(result.defaulted["spec"]["limits"]["cpu"], int) and not isinstance(
            result.defaulted["spec"]["limits"]["cpu"], bool
        )
        assert isinstance(result.defaulted["spec"]["weight"], int) and not isinstance(
            result.defaulted["spec"]["weight"], bool
        )


@pytest.mark.parametrize("value", [1.5, 1000.0000001, 2.0**53, -(2.0**53), 1e19])
def test_float_that_is_no_safe_json_integer_is_refused_like_the_apiserver(nodepool, value):
    nodepool["spec"]["limits"]["cpu"] = value
    errors = _errors(nodepool)
    assert [(e.path, e.rule) for e in errors] == [("spec.limits[cpu]", "type")]


@pytest.mark.parametrize("value", [2.0**53 - 1, -(2.0**53 - 1), 1e3, -0.0])
def test_float_that_is_a_safe_json_integer_is_accepted(nodepool, value):
    nodepool["spec"]["limits"]["cpu"] = value
    result = validate.validate(nodepool)
    assert result.ok and result.defaulted["spec"]["limits"]["cpu"] == int(value)


# --------------------------------------------------------------------------------------------
# durations Karpenter decodes with time.ParseDuration


@pytest.mark.parametrize(
    "path, value",
    [
        (TPL + ("expireAfter",), "1000000000000s"),
        (TPL + ("expireAfter",), "2562048h"),
        (TPL + ("terminationGracePeriod",), "9999999999999m"),
        (("spec", "disruption", "consolidateAfter"), "2562047h48m"),
        (("spec", "disruption", "budgets", 1, "duration"), "3000000h"),
    ],
)
def test_duration_past_go_range_is_refused_with_the_limit(nodepool, path, value):
    _set(nodepool, path, value)
    errors = _errors(nodepool)
    assert len(errors) == 1, errors
    err = errors[0]
    assert err.rule == "duration-range" and err.source == "runtime"
    assert err.path == ".".join(str(p) for p in path).replace(".1.", "[1].")
    assert "2562047h47m16.854775807s" in err.message and "time.Duration" in err.message


def test_largest_go_duration_is_accepted(nodepool):
    _set(nodepool, TPL + ("expireAfter",), "2562047h47m16s")
    assert not _errors(nodepool)


@pytest.mark.parametrize("value", ["0s", "0h", "0h0m0s"])
def test_expire_after_zero_is_refused(nodepool, value):
    _set(nodepool, TPL + ("expireAfter",), value)
    errors = _errors(nodepool)
    assert [(e.path, e.rule) for e in errors] == [("spec.template.spec.expireAfter", "expire-after-zero")]
    assert "Never" in errors[0].message and "loop" in errors[0].message


def test_consolidate_after_zero_stays_valid(nodepool):
    _set(nodepool, ("spec", "disruption", "consolidateAfter"), "0s")
    assert not _errors(nodepool)


# --------------------------------------------------------------------------------------------
# sizes


@pytest.mark.parametrize(
    "size, rule",
    [
        (1024 * 1024, None),
        (1536 * 1024 - 100, "object-size"),
        (2 * 1024 * 1024, "object-size"),
        (4 * 1024 * 1024, "request-size"),
    ],
)
def test_object_size_limits(ec2nodeclass, size, rule):
    ec2nodeclass["spec"]["userData"] = "x" * size
    errors = _errors(ec2nodeclass)
    assert [e.rule for e in errors] == ([rule] if rule else [])
    if rule == "request-size":
        assert "3145728" in errors[0].message and "413" in errors[0].message
    if rule == "object-size":
        assert "1572864" in errors[0].message and errors[0].source == "storage"


def test_object_size_counts_utf8_bytes(ec2nodeclass):
    ec2nodeclass["spec"]["userData"] = "\u00e9" * (800 * 1024)  # 1.6 MiB as UTF-8, 800 Ki characters
    assert [e.rule for e in _errors(ec2nodeclass)] == ["object-size"]


# --------------------------------------------------------------------------------------------
# kubelet


@pytest.mark.parametrize("value", ["\u0661\u0660%", "\uff11\uff10Mi", "100\u0663Mi", "1\u00a0Gi"])
def test_kubelet_eviction_value_with_non_ascii_digits_is_refused(ec2nodeclass, value):
    ec2nodeclass["spec"]["kubelet"]["evictionHard"] = {"memory.available": value}
    errors = _errors(ec2nodeclass)
    assert [e.path for e in errors] == ["spec.kubelet.evictionHard[memory.available]"]


def test_own_checks_mirroring_go_patterns_use_go_end_of_text():
    from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import labels, lint

    assert labels.is_restricted_tag("karpenter.sh/nodeclaim")
    assert not labels.is_restricted_tag("karpenter.sh/nodeclaim\n")
    assert lint._VALID_DURATION.search("720h") and not lint._VALID_DURATION.search("720h\n")
    assert not lint._BUDGET_DURATION.search("8h\n")
    assert lint.suggest_duration("\u0663\u0660d") is None and lint.suggest_duration("30d") == "720h"


FRAGMENTS = [
    "a", "k", "1", ".", "^", "$", "\\d", "\\D", "\\s", "\\S", "\\w", "\\W", "\\b", "[a-z]", "[^a]", "[\\s]", "[\\d_]",
    "[[:alpha:]]", "[[:space:]]", "(", ")", "|", "*", "+", "?", "{2}", "{1,}", "{,2}", "\\.", "\\z", "\\A", "(?:",
    "(?i)", "\\x41", "\\Q.*\\E", "\u00e9", "\\pN", "[&&]", "[~~]",
]  # fmt: skip


@given(
    parts=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=6),
    texts=st.lists(st.text(alphabet=TRICKY, max_size=6), min_size=1, max_size=5),
)
@settings(max_examples=400, deadline=None, database=None)
def test_random_patterns_agree_with_re2(parts, texts):
    pattern = "".join(parts)
    try:
        reference = re2.compile(pattern)
    except Exception:  # noqa: BLE001 - re2.error: Go refuses the pattern too
        with pytest.raises(golang.GoRegexError):
            golang.compile_regex(pattern)
        return
    rx = golang.compile_regex(pattern)
    for text in texts:
        assert (rx.search(text) is not None) == (reference.search(text) is not None), (pattern, text)
