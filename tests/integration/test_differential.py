"""Differential test: the offline verdict equals a server-side dry-run on objects mutated toward rule edges.

test_verdicts.py checks a hand-written corpus; here hypothesis mutates the corpus bases (a valid NodePool and
a valid EC2NodeClass) at the places where Python and Go disagree most easily - Unicode in patterned strings
(no-break spaces, non-ASCII digits, newlines), numeric formats of CEL ``int()`` (underscores, spaces, base
prefixes, int64 edges), Go durations (past ``time.Duration``), RFC 3339 / kube-openapi date-times (calendar,
separators, offsets), quantities written as JSON numbers (integral and fractional floats), label lengths and
request sizes - and compares, example by example:

* offline: ``validate()`` reports no error other than Karpenter's runtime checks (``source == "runtime"``,
  which the apiserver does not run);
* apiserver: a dry-run create (``dryRun=All``, ``fieldValidation=Strict``) of the same object succeeds.

Bounded in time: ``DIFF_EXAMPLES`` examples (default 1500) and at most ``DIFF_SECONDS`` seconds (default 150)
of dry-runs; examples past the budget are not sent. The seed is random unless ``DIFF_SEED`` is set, and a
disagreement names it so the run can be replayed (``DIFF_SEED=<seed>``). The numbers (examples compared,
accepted/rejected, agreement) are printed at the end (``pytest -s``); every disagreement is listed (not shrunk).
"""

import copy
import os
import random
import time
from collections import Counter

import pytest
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import validate
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from test_verdicts import BASES, call

pytestmark = pytest.mark.sandbox

SEED = int(os.environ.get("DIFF_SEED") or random.SystemRandom().randrange(2**32))
EXAMPLES = int(os.environ.get("DIFF_EXAMPLES", "1500"))
SECONDS = float(os.environ.get("DIFF_SECONDS", "150"))

# Disagreements that are deliberate: (predicate over the offline errors, why). Each is counted and reported.
DELIBERATE = [
    (
        lambda errors: any(e.rule == "object-size" for e in errors),
        "object over etcd's 1.5 MiB request limit: a dry-run never reaches etcd and passes, the real create fails "
        "with 'etcdserver: request is too large'; offline refuses it (source 'storage') before anything is sent",
    ),
]
# offline error sources the apiserver does not check at admission (see the module docstring); the storage-size
# check ("storage") is not one of them: it is listed in DELIBERATE, as the apiserver does refuse the real write
NOT_ADMISSION = ("runtime",)

# --------------------------------------------------------------------------------------------
# strategies: values at the edges of the rules

UNICODE_TRAPS = "\u00a0\u2003\x0b\x0c\t\n\u0663\u0664\uff11\u00e9\u212a"
digits = st.integers(0, 99999).map(str)
spaced = st.sampled_from([" ", "\t", "\n", "\u00a0", "\u2003", "\x0b", "\x0c"])


def _with_traps(alphabet, max_size):
    return st.text(alphabet=alphabet + UNICODE_TRAPS, max_size=max_size)


int_texts = st.one_of(
    st.sampled_from(
        ["16_384", " 4", "4 ", "0x10", "+4", "-0", "010", "-1", "9223372036854775807", "9223372036854775808", "1e3"]
    ),
    st.integers(-(2**64), 2**64).map(str),
    _with_traps("0123456789_+-xob ", 6),
)
duration_texts = st.one_of(
    st.sampled_from(
        [
            "0s",
            "0h0m",
            "Never",
            "720h",
            "1000000000000s",
            "2562047h47m16s",
            "2562047h47m17s",
            "2562048h",
            "9223372036s",
            "9223372037s",
            "153722867m",
            "153722868m",
            "1h30m",
            "30d",
            "1.5h",
        ]
    ),
    st.lists(st.tuples(st.integers(0, 10**13), st.sampled_from(["s", "m", "h"])), min_size=1, max_size=3).map(
        lambda parts: "".join("%d%s" % p for p in parts)
    ),
    _with_traps("0123456789smh", 8),
)
budget_durations = st.one_of(
    st.sampled_from(["8h", "0m", "3000000h", "2562047h", "2562048h", "10h30m", "1h0s", "153722868m"]),
    st.tuples(st.integers(0, 10**8), st.sampled_from(["h", "m"])).map(lambda p: "%d%s" % p),
)
schedules = st.one_of(
    st.sampled_from(["@daily", "@every 1h", "0 9 * * mon-fri", "0 9 * *", "0 9 * * mon-fri\n"]),
    st.lists(st.sampled_from(["0", "9", "*", "mon-fri", "*/5", "1-5", "\u0661"]), min_size=4, max_size=6).flatmap(
        lambda fields: st.lists(spaced, min_size=len(fields) - 1, max_size=len(fields) - 1).map(
            lambda seps: fields[0] + "".join(s + f for s, f in zip(seps, fields[1:], strict=True))
        )
    ),
)
date_times = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, zone, trap: (
        "%s-%02d-%02d%s%02d:%02d:%02d%s%s" % (y, mo, d, sep, h, mi, s, frac, zone)
    ).replace("1", trap, 1),
    st.one_of(st.integers(0, 9999).map(lambda y: "%04d" % y), st.sampled_from(["202", "20245"])),
    st.integers(0, 13),
    st.integers(0, 32),
    st.sampled_from(["T", "t", " ", "x", "TT"]),
    st.integers(0, 25),
    st.integers(0, 60),
    st.integers(0, 61),
    st.sampled_from(["", ".5", ",5", "x5", ".123456789", ".", "\u0665"]),
    st.sampled_from(["Z", "z", "+01:00", "-25:99", "+0100", "", "Zt", "+1:00", "Z\n"]),
    st.sampled_from(["1", "1", "1", "\u0661"]),
)
quantities = st.one_of(
    st.integers(-5, 10**7),
    st.floats(min_value=-1e6, max_value=1e20, allow_nan=False, allow_infinity=False),
    st.sampled_from([1000.0, 1e3, 2.0**53, 2.0**53 + 2, 1e19, 0.5, 1000.0000001, -0.0]),
    st.sampled_from(["1000m", "1.5Gi", "1e3", "1E3", " 1", "1_000", "\u0661", "1Ki", "+1", "-1", ".5", ".", "0x10"]),
    st.text(alphabet="0123456789.eEkKMGiu+- _", min_size=1, max_size=6),
)
weights = st.one_of(st.integers(-1, 101), st.floats(min_value=-1, max_value=101, allow_nan=False), st.just(10.0))
label_values = st.one_of(
    st.text(alphabet="aZ09-_.", max_size=64),
    _with_traps("aZ09-_.", 10),
)
user_data_sizes = st.sampled_from([10, 1024 * 1024, 1536 * 1024 + 4096, 3 * 1024 * 1024 + 10])


def _np_spec(obj):
    return obj["spec"]["template"]["spec"]


def _set_gt(obj, value):
    _np_spec(obj)["requirements"].append(
        {"key": "karpenter.k8s.aws/instance-memory", "operator": "Gt", "values": [value]}
    )


def _set_budget(obj, value):
    duration, schedule = value
    obj["spec"]["disruption"]["budgets"] = [{"nodes": "0", "schedule": schedule, "duration": duration}]


def _set_taint_time(obj, value):
    _np_spec(obj)["taints"] = [{"key": "example.com/gpu", "effect": "NoSchedule", "timeAdded": value}]


def _set_path(*path):
    def setter(obj, value):
        node = obj
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value

    return setter


def _set_user_data(obj, size):
    obj["spec"]["userData"] = "x" * size


NODEPOOL_MUTATIONS = {
    "gt-value": (int_texts, _set_gt),
    "expireAfter": (duration_texts, _set_path("spec", "template", "spec", "expireAfter")),
    "terminationGracePeriod": (duration_texts, _set_path("spec", "template", "spec", "terminationGracePeriod")),
    "consolidateAfter": (duration_texts, _set_path("spec", "disruption", "consolidateAfter")),
    "budget": (st.tuples(budget_durations, schedules), _set_budget),
    "timeAdded": (date_times, _set_taint_time),
    "limits.cpu": (quantities, _set_path("spec", "limits", "cpu")),
    "limits.memory": (quantities, _set_path("spec", "limits", "memory")),
    "weight": (weights, _set_path("spec", "weight")),
    "label": (label_values, _set_path("spec", "template", "metadata", "labels", "example.com/team")),
}
EC2NODECLASS_MUTATIONS = {
    "userData": (user_data_sizes, _set_user_data),
    "volumeSize": (
        quantities,
        lambda obj, v: obj["spec"].__setitem__(
            "blockDeviceMappings", [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": v}}]
        ),
    ),
    "hopLimit": (weights, _set_path("spec", "metadataOptions", "httpPutResponseHopLimit")),
    "eviction": (
        _with_traps("0123456789.%Mi", 6),
        _set_path("spec", "kubelet", "evictionHard", "memory.available"),
    ),
    "tag": (label_values, _set_path("spec", "tags", "team")),
}


@st.composite
def mutated(draw):
    """``(mutation names, object)``: a base with one to three mutations."""
    kind = draw(st.sampled_from(["nodepool", "ec2nodeclass"]))
    table = NODEPOOL_MUTATIONS if kind == "nodepool" else EC2NODECLASS_MUTATIONS
    names = draw(st.lists(st.sampled_from(sorted(table)), min_size=1, max_size=2, unique=True))
    obj = copy.deepcopy(BASES[kind])
    obj["metadata"]["name"] = "diff-%s" % kind
    applied = []
    for name in names:
        strategy, apply = table[name]
        value = draw(strategy)
        apply(obj, value)
        applied.append((name, value if not isinstance(value, str) or len(value) < 80 else "<%d chars>" % len(value)))
    return applied, obj


def _offline(obj):
    errors = validate.validate(obj).errors
    return [e for e in errors if e.source not in NOT_ADMISSION], errors


def test_offline_verdict_equals_dry_run(sandbox):
    stats = Counter()
    deliberate = Counter()
    disagreements = []
    started = time.monotonic()

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=mutated())
    def check(case):
        applied, obj = case
        if time.monotonic() - started > SECONDS:
            stats["skipped (time budget)"] += 1
            return
        api_errors, errors = _offline(obj)
        status, body = call(sandbox, "POST", obj)
        assert status < 500, "apiserver error %s for %s: %s" % (status, applied, body)
        api_ok = status in (200, 201)
        stats["examples"] += 1
        stats["accepted" if api_ok else "rejected"] += 1
        if api_ok == (not api_errors):
            stats["agree"] += 1
            return
        for predicate, why in DELIBERATE:
            if api_ok and predicate(errors):
                deliberate[why] += 1
                return
        disagreements.append(
            "mutations: %r\n    apiserver: HTTP %s %s\n    offline: %s"
            % (
                applied,
                status,
                "accepted" if api_ok else (body.get("message") or "")[:400],
                "; ".join(str(e) for e in api_errors)[:400] or "no admission error",
            )
        )

    try:
        check()
    finally:
        rate = stats["agree"] / stats["examples"] if stats["examples"] else 0.0
        print(
            "\ndifferential: seed %d, %d examples compared (%d accepted, %d rejected by the apiserver), "
            "%d skipped for time, same verdict on %.1f%%, %d deliberate and %d other disagreements, %.0f s"
            % (
                SEED,
                stats["examples"],
                stats["accepted"],
                stats["rejected"],
                stats["skipped (time budget)"],
                100 * rate,
                sum(deliberate.values()),
                len(disagreements),
                time.monotonic() - started,
            )
        )
        for why, count in deliberate.items():
            print("  deliberate disagreement x%d: %s" % (count, why))
    assert not disagreements, "offline and apiserver disagree on %d of %d examples (DIFF_SEED=%d to replay):\n  %s" % (
        len(disagreements),
        stats["examples"],
        SEED,
        "\n  ".join(disagreements[:20]),
    )
    assert stats["examples"] >= min(EXAMPLES, 50), "too few examples compared: %s" % dict(stats)
