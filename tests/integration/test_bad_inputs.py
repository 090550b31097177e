"""Bad-input tier (issue 18): inputs generated from the modules' argument specs never crash a module, never write.

The options of each Kubernetes-side module are read from its documentation (``ansible-doc --json``, the argument
spec the module is built from). For each option, bad values of its kind are generated: wrong types, out-of-range
numbers, unknown choices, nulls, huge strings, unknown option names and nested garbage in ``definitions``/dicts.
Every input mutates one option of a harmless base (names that do not exist, ``state: absent``/``listed``).

Two layers, both against the sandbox:

* every input (>= 1,000 per run; ``BAD_INPUTS_N``) through the module's entry point exactly as AnsiballZ runs it
  (the arguments handed to ``main()``, the JSON it prints, its exit), one process, in ~15 s;
* a stratified sample of >= 1,000 (``BAD_INPUTS_PLAYBOOK_N``) through ``ansible-playbook`` as users run it, one
  task per input, spread over a few local hosts so that module processes overlap (~4 minutes on the test machine).

Assertions: no traceback (no exception out of ``main()``, no ``Traceback``/``MODULE FAILURE`` in any result); every
refused input sent 0 writes (the sandbox's audit log, attributed to inputs by time; through the playbook no input
may write at all); messages are bounded (4 KB)
and name the option. The seed is printed (``BAD_INPUTS_SEED`` reproduces a run).
"""

import contextlib
import io
import json
import os
import random
import subprocess
import sys
import time
import traceback

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args
from conftest import ROOT

MODULES = (
    "karpenter_provisioner",
    "node_template",
    "k8s_objects",
    "karpenter_info",
    "karpenter_backup",
    "karpenter_diagnose",
    "karpenter_cost_report",
)
# connection options: garbage there would send the module to other hosts (proxy, host) - not generated
CONNECTION = {
    "api_key",
    "ca_cert",
    "client_cert",
    "client_key",
    "context",
    "host",
    "impersonate_groups",
    "impersonate_user",
    "kubeconfig",
    "no_proxy",
    "password",
    "persist_config",
    "proxy",
    "proxy_headers",
    "username",
    "validate_certs",
    "aws_profile",
    "endpoint_url",
    "access_key",
    "secret_key",
    "session_token",
    "aws_access_key",
    "aws_secret_key",
    "aws_session_token",
    "aws_region",
    "region",
}
MAX_MSG = 4096
USER_AGENT = "karpenter-eks-platform/"


def base_args(module, seed, tmp):
    name = "bad-in-%d" % seed
    return {
        "karpenter_provisioner": {"name": name, "state": "absent"},
        "node_template": {"name": name, "state": "absent"},
        "k8s_objects": {
            "state": "absent",
            "definitions": [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}
            ],
        },
        "karpenter_info": {"names": [name]},
        "karpenter_backup": {"cluster_name": "bad", "dest": os.path.join(tmp, "backups"), "state": "listed"},
        "karpenter_diagnose": {"scenario": "provisioning", "namespaces": [name]},
        "karpenter_cost_report": {"cluster_name": "bad", "sources": ["cluster"], "node_selector": "bad-in=%d" % seed},
    }[module]


def garbage(rng, depth=0):
    """A random JSON-ish value: scalars of every type, unicode, control characters, deep and wide nesting."""
    pick = rng.randrange(12 if depth < 4 else 7)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False])
    if pick == 2:
        return rng.choice([0, -1, 2**63, -(2**63) - 1, 10**30, 7])
    if pick == 3:
        return rng.choice([1.5, -0.0, 1e308, float("inf"), float("nan")])
    if pick == 4:
        return rng.choice(["", " ", "\x00", "\u202e\u0000x", "é" * 50, "{{ 1 }}", "$(id)", "a" * 300])
    if pick == 5:
        return "".join(chr(rng.randrange(1, 0x2FF)) for i in range(rng.randrange(1, 40)))
    if pick == 6:
        return rng.choice(["NodePool", "EC2NodeClass", "karpenter.sh/v1", "metadata", "spec"])
    if pick in (7, 8):
        keys = ["apiVersion", "kind", "metadata", "spec", "name", "namespace", "template", "requirements", "x"]
        return {
            rng.choice(keys) + ("" if rng.random() < 0.7 else str(i)): garbage(rng, depth + 1)
            for i in range(rng.randrange(0, 5))
        }
    if pick == 9:
        return [garbage(rng, depth + 1) for i in range(rng.randrange(0, 5))]
    if pick == 10:  # deep nesting
        node = {}
        for i in range(rng.randrange(20, 120)):
            node = {"spec": node} if i % 2 else [node]
        return node
    return list(range(rng.randrange(200, 2000)))  # wide


def bad_definitions(rng, seed):
    name = "bad-in-%d" % seed
    shapes = [
        lambda: garbage(rng),
        lambda: [garbage(rng) for i in range(rng.randrange(1, 4))],
        lambda: [{"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": garbage(rng)}, "spec": {}}],
        lambda: [
            {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": name}, "spec": garbage(rng)}
        ],
        lambda: [{"apiVersion": garbage(rng), "kind": "NodePool", "metadata": {"name": name}}],
        lambda: [{"apiVersion": "karpenter.k8s.aws/v1", "kind": garbage(rng), "metadata": {"name": name}}],
        lambda: [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": garbage(rng)}}],
        lambda: [
            {
                "apiVersion": "karpenter.sh/v1",
                "kind": "NodePool",
                "metadata": {"name": name},
                "spec": {"template": {"spec": {"requirements": garbage(rng), "nodeClassRef": garbage(rng)}}},
            }
        ],
    ]
    return rng.choice(shapes)()


def bad_values(rng, opt, spec, seed):
    """Values of ``opt`` that break its documented type, range or choices."""
    kind, choices = spec.get("type", "str"), spec.get("choices")
    huge = "x" * rng.choice([5000, 20000, 100000])
    unconvertible = [{"a": {"b": 1}}, [[1, 2], {"c": None}]]
    if choices:
        return [
            "no-such-%s" % opt,
            rng.choice(choices).upper() + "x",
            {"choice": rng.choice(choices)},
            huge,
        ] + (["no-such-choice", [None]] if kind == "list" else [])
    if opt == "definitions" or (kind == "raw"):
        return [bad_definitions(rng, seed) for i in range(8)]
    if kind == "int":
        return ["abc", "1e999", -1, -(2**40), 2**70, 1.5, [1], {"n": 1}, "0x10", "", huge[:40]]
    if kind == "float":
        return ["abc", "nan?", -1, -1e309, [0.5], {"f": 1}, "1,5"]
    if kind == "bool":
        return ["maybe", 2, -1, [True], {"b": True}, "ye", "tru"]
    if kind == "list":
        out = [5, {"a": 1}, [{"x": 1}], [[1]], [None], [huge]]
        return out
    if kind == "dict":
        return [5, [1, 2], "a", "=", garbage(rng), {"x" * 300: garbage(rng)}, {"": None}]
    if kind == "path":
        return unconvertible + [5.5, [1]]
    # str
    return unconvertible + [huge, "\x00bad", "Bad_Name!", "-" * 64, "a" * 300, ""]


def generate(docs, seed, tmp, n_min):
    """[(module, option, args)]: at least ``n_min`` inputs, one mutated option each."""
    rng = random.Random(seed)
    inputs = []
    while len(inputs) < n_min:
        for module in MODULES:
            options = docs[module]
            for opt, spec in sorted(options.items()):
                if opt in CONNECTION:
                    continue
                for value in bad_values(rng, opt, spec, seed):
                    args = dict(base_args(module, seed, tmp))
                    args[opt] = value
                    inputs.append((module, opt, args))
            for i in range(3):  # unknown options and nulls of required ones
                args = dict(base_args(module, seed, tmp))
                args["no_such_option_%d_%d" % (i, rng.randrange(1000))] = garbage(rng)
                inputs.append((module, "no_such_option", args))
            for opt, spec in options.items():
                if spec.get("required"):
                    inputs.append((module, opt, dict(base_args(module, seed, tmp), **{opt: None})))
    rng.shuffle(inputs)
    return inputs


@pytest.fixture(scope="module")
def docs():
    names = ["karpenter_eks.platform.%s" % m for m in MODULES]
    res = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-doc"), "--json", *names],
        capture_output=True,
        text=True,
        env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg")),
        cwd=ROOT,
        check=True,
    )
    data = json.loads(res.stdout)
    return {m: data["karpenter_eks.platform.%s" % m]["doc"]["options"] for m in MODULES}


def _run_in_process(module_name, args):
    """(exit code, parsed result, traceback or None): the module's main() as AnsiballZ runs it."""
    module = __import__(
        "ansible_collections.karpenter_eks.platform.plugins.modules.%s" % module_name, fromlist=["main"]
    )
    out = io.StringIO()
    code, tb = None, None
    with patch_module_args(dict(args, _ansible_check_mode=False)), contextlib.redirect_stdout(out):
        try:
            module.main()
        except SystemExit as exc:
            code = exc.code
        except BaseException:
            tb = traceback.format_exc()
    try:
        result = json.loads(out.getvalue().strip().splitlines()[-1]) if out.getvalue().strip() else {}
    except ValueError:
        result = {"unparsed": out.getvalue()[-2000:]}
    return code, result, tb


def _audit_writes(sandbox, mark):
    events = sandbox.writes_since(mark, USER_AGENT)
    out = []
    for e in events:
        if e.get("verb") in ("create", "update", "patch", "delete", "deletecollection"):
            ts = e.get("requestReceivedTimestamp", "")
            out.append((ts, e.get("verb"), (e.get("objectRef") or {}).get("resource"), e))
    return out


def _ts(t):
    """RFC 3339 with microseconds (the audit log's format) for a time.time() value."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)


def _problems(module, opt, args, code, result, tb):
    """What is wrong with one refused or accepted input (empty: fine)."""
    text = json.dumps(result, default=str)
    probs = []
    if tb or "Traceback" in text or "MODULE FAILURE" in text:
        probs.append("traceback: %s" % (tb or text)[-1500:])
    if result.get("failed"):
        msg = str(result.get("msg", ""))
        if len(msg) > MAX_MSG:
            probs.append("message of %d bytes" % len(msg))
        name_forms = {opt, opt.replace("_", " ")}
        if opt == "no_such_option":
            name_forms = {k for k in args if k.startswith("no_such_option")}
        if not any(f in msg for f in name_forms):
            probs.append("message does not name %s: %s" % (opt, msg[:300]))
        if (result.get("requests") or {}).get("writes"):
            probs.append("refused after %s writes" % result["requests"]["writes"])
    return probs


def test_bad_inputs_through_the_module_entry_point(sandbox, docs, tmp_path, monkeypatch):
    seed = int(os.environ.get("BAD_INPUTS_SEED") or random.SystemRandom().randrange(1, 10**6))
    n_min = int(os.environ.get("BAD_INPUTS_N", "1000"))
    print("bad-input tier: BAD_INPUTS_SEED=%d" % seed)
    inputs = generate(docs, seed, str(tmp_path), n_min)
    assert len(inputs) >= n_min
    monkeypatch.chdir(tmp_path)  # relative paths among the inputs land here
    mark = sandbox.audit_mark()
    spans, problems, refused, accepted = [], [], 0, 0
    started = time.monotonic()
    for i, (module, opt, args) in enumerate(inputs):
        t0 = time.time()
        code, result, tb = _run_in_process(module, args)
        spans.append((_ts(t0), _ts(time.time() + 0.001), i, bool(result.get("failed")) or tb is not None))
        if result.get("failed") or tb:
            refused += 1
        else:
            accepted += 1
        for p in _problems(module, opt, args, code, result, tb):
            problems.append("#%d %s.%s=%s: %s" % (i, module, opt, json.dumps(args[opt], default=str)[:120], p))
    elapsed = time.monotonic() - started
    writes = _audit_writes(sandbox, mark)
    for ts, verb, res in (w[:3] for w in writes):
        for start, end, i, was_refused in spans:
            if start <= ts <= end and was_refused:
                module, opt, args = inputs[i]
                problems.append("#%d %s.%s refused but sent %s %s" % (i, module, opt, verb, res))
    print(
        "bad-input tier: seed=%d inputs=%d refused=%d accepted=%d writes=%d in %.0fs"
        % (seed, len(inputs), refused, accepted, len(writes), elapsed)
    )
    assert problems == [], "seed %d: %d problems:\n%s" % (seed, len(problems), "\n".join(problems[:40]))


class _Unsafe(str):
    """A string that reaches the module as written: Ansible's ``!unsafe`` tag (no templating of ``{{ 1 }}``)."""


def _unsafe_representer(dumper, value):
    return dumper.represent_scalar("!unsafe", str(value), style='"')


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Unsafe, _unsafe_representer)


def _literal(value):
    """``value`` for a task file: strings that Jinja would read as a template marked ``!unsafe``."""
    if isinstance(value, str) and any(c in value for c in "{%#"):
        return _Unsafe(value)
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_literal(v) for v in value]
    return value


def test_bad_inputs_through_ansible_playbook(sandbox, docs, tmp_path):
    """>= 1,000 inputs (``BAD_INPUTS_PLAYBOOK_N``) as tasks in a playbook, one task per input, as users write them.

    The tasks are spread over ``BAD_INPUTS_PLAYBOOK_HOSTS`` (default 3) local hosts with the ``free`` strategy, so the
    module processes of different hosts overlap (a task costs ~0.35 s, most of it starting Python and importing
    Ansible's module code); each host includes its own task file.
    """
    seed = int(os.environ.get("BAD_INPUTS_SEED") or random.SystemRandom().randrange(1, 10**6))
    n = int(os.environ.get("BAD_INPUTS_PLAYBOOK_N", "1000"))
    hosts = ["bad%d" % i for i in range(int(os.environ.get("BAD_INPUTS_PLAYBOOK_HOSTS", "3")))]
    print("bad-input tier (playbook): BAD_INPUTS_SEED=%d" % seed)
    inputs = generate(docs, seed, str(tmp_path), n)
    by_module = {}
    for item in inputs:  # stratified: every module, then round-robin
        by_module.setdefault(item[0], []).append(item)
    sample = []
    while len(sample) < n:
        for module in MODULES:
            if by_module.get(module) and len(sample) < n:
                sample.append(by_module[module].pop())
    per_host = {h: [] for h in hosts}
    for i, (module, _opt, args) in enumerate(sample):
        per_host[hosts[i % len(hosts)]].append(
            {"name": "input %d" % i, "karpenter_eks.platform.%s" % module: _literal(args), "ignore_errors": True}
        )
    for host, tasks in per_host.items():
        (tmp_path / ("inputs-%s.yml" % host)).write_text(
            yaml.dump(tasks, Dumper=_Dumper, sort_keys=False, allow_unicode=False)
        )
    play = tmp_path / "bad.yml"
    include = {"name": "inputs", "ansible.builtin.include_tasks": "inputs-{{ inventory_hostname }}.yml"}
    play.write_text(yaml.safe_dump([{"hosts": "bad", "gather_facts": False, "strategy": "free", "tasks": [include]}]))
    inventory = tmp_path / "hosts.yml"
    local = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    inventory.write_text(yaml.safe_dump({"bad": {"hosts": {h: local for h in hosts}}}))
    mark = sandbox.audit_mark()
    started = time.monotonic()
    rc, out = sandbox.playbook(str(play), "-i", str(inventory), "--forks", str(len(hosts)), check=False)
    elapsed = time.monotonic() - started
    by_name = {}  # with the free strategy the callback lists a task once per host
    for task in out["plays"][0]["tasks"]:
        for host, result in task["hosts"].items():
            by_name.setdefault(task["task"]["name"], {})[host] = result
    problems = []
    refused = 0
    for i, (module, opt, args) in enumerate(sample):
        result = by_name.get("input %d" % i, {}).get(hosts[i % len(hosts)])
        if result is None:
            problems.append("#%d %s.%s: no result (the play stopped early?)" % (i, module, opt))
            continue
        refused += bool(result.get("failed"))
        for p in _problems(module, opt, args, None, result, None):
            problems.append("#%d %s.%s=%s: %s" % (i, module, opt, json.dumps(args[opt], default=str)[:120], p))
    writes = _audit_writes(sandbox, mark)
    print(
        "bad-input tier (playbook): seed=%d inputs=%d refused=%d accepted=%d writes=%d in %.0fs over %d hosts"
        % (seed, len(sample), refused, len(sample) - refused, len(writes), elapsed, len(hosts))
    )
    assert len(sample) >= n
    assert problems == [], "seed %d: %d problems:\n%s" % (seed, len(problems), "\n".join(problems[:40]))
    # every input is one bad option on a harmless base (names that do not exist, state absent/listed): refused or
    # accepted, none may write
    assert writes == [], [w[:3] for w in writes]
