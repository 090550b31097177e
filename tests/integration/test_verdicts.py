"""Offline verdicts equal the real apiserver's, object by object (tests/integration/corpus/*.yaml).

Every corpus entry is a NodePool or EC2NodeClass (a base from corpus/bases.yaml plus a JSON merge patch)
with the verdict it is meant to get:

* ``valid``     - the apiserver accepts it and ``validate()`` reports no error at all;
* ``apiserver`` - the apiserver rejects it (schema, CEL, ObjectMeta or strict field validation);
* ``runtime``   - the apiserver accepts it, Karpenter's runtime validation rejects it (NodePool
  ``ValidationSucceeded=False``, so it is never Ready); ``validate()`` reports it with source ``runtime``.
  test_runtime_verdict_equals_karpenter creates those NodePools for real and reads the condition the
  sandbox's Karpenter (the AWS provider, what EKS users run) sets.

The apiserver's verdict is a server-side dry-run create (``dryRun=All``, ``fieldValidation=Strict``, what
the modules send) - or, for entries with ``old_patch``, a dry-run update of an object created for real, so
the CRDs' transition rules run. The offline verdict for the apiserver is "``validate()`` reports no error
other than runtime ones"; for every entry that is not ``runtime`` it is simply ``validate().ok``.

The sandbox serves the AWS provider's CRDs of the version the collection pins (what EKS users install), so
every rule the offline validator runs is served (test_sandbox_serves_exactly_the_pinned_crds checks it).
"""

import copy
import glob
import json
import os

import pytest
import yaml
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter import cel, schema, validate

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
BASES = yaml.safe_load(open(os.path.join(CORPUS, "bases.yaml")))
PATHS = {
    "NodePool": ("karpenter.sh", "v1", "nodepools"),
    "EC2NodeClass": ("karpenter.k8s.aws", "v1", "ec2nodeclasses"),
}
EXPECT = ("valid", "apiserver", "runtime")


def load_cases():
    cases = []
    for path in sorted(glob.glob(os.path.join(CORPUS, "*.yaml"))):
        if os.path.basename(path) == "bases.yaml":
            continue
        for entry in yaml.safe_load(open(path)) or []:
            entry["file"] = os.path.basename(path)
            cases.append(entry)
    return cases


CASES = load_cases()
IDS = [c["id"] for c in CASES]


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch: maps merge recursively, anything else replaces, null deletes."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _generate(obj, what, count):
    if what == "requirements":
        obj["spec"]["template"]["spec"]["requirements"] = [
            {"key": "example.com/r%d" % i, "operator": "Exists"} for i in range(count)
        ]
    elif what == "labels":
        obj["spec"]["template"]["metadata"]["labels"] = {"example.com/l%d" % i: "v" for i in range(count)}
    elif what == "budgets":
        obj["spec"]["disruption"]["budgets"] = [{"nodes": str(i)} for i in range(count)]
    elif what == "ami_terms":
        obj["spec"]["amiSelectorTerms"] = [{"tags": {"n": str(i)}} for i in range(count)]
    else:
        raise ValueError("unknown generator %s" % what)


def build(case, uid, patch_key="patch"):
    obj = merge_patch(BASES[case["base"]], case.get(patch_key) or {})
    if case.get("generate"):
        _generate(obj, case["generate"], case["count"])
    name = case.get("name")
    if case.get("name_length"):
        prefix = "vc-%s-" % uid
        name = prefix + "a" * (case["name_length"] - len(prefix))
    if isinstance(obj.get("metadata"), dict):
        obj["metadata"]["name"] = name or ("vc-%s-%s" % (uid, case["id"]))[:63].rstrip("-")
    return obj


@pytest.fixture(scope="session")
def served_rules(sandbox):
    """Every x-kubernetes-validations rule of the v1 NodePool/EC2NodeClass CRDs the sandbox serves."""
    rules = {}
    for kind, (group, version, plural) in PATHS.items():
        crd = sandbox.kubectl("get", "crd", "%s.%s" % (plural, group), "-o", "json").stdout
        served = [v for v in json.loads(crd)["spec"]["versions"] if v["name"] == version][0]
        rules[kind] = {r["rule"] for _path, r in cel.iter_rules(served["schema"]["openAPIV3Schema"])}
    return rules


def test_sandbox_serves_exactly_the_pinned_crds(served_rules):
    for kind in PATHS:
        pinned = {
            r["rule"] for _path, r in cel.iter_rules(schema.CRDS[[k for k in schema.CRDS if k[1] == kind][0]].SCHEMA)
        }
        assert pinned == served_rules[kind], (pinned - served_rules[kind], served_rules[kind] - pinned)


def call(sandbox, method, obj, dry_run=True, name=None):
    """One raw request with the admin client; returns (status, body)."""
    from kubernetes.client.rest import ApiException

    group, version, plural = PATHS[obj["kind"]]
    path = "/apis/%s/%s/%s" % (group, version, plural) + ("/" + name if name else "")
    query = [("fieldValidation", "Strict")] + ([("dryRun", "All")] if dry_run else [])
    try:
        resp = sandbox.api_client.call_api(
            path,
            method,
            query_params=query,
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=obj,
            auth_settings=["BearerToken"],
            _preload_content=False,
        )
        resp = resp[0] if isinstance(resp, tuple) else resp
        return resp.status, json.loads(resp.data)
    except ApiException as exc:
        try:
            return exc.status, json.loads(exc.body)
        except (TypeError, ValueError):
            return exc.status, {"message": str(exc.body)}


def delete(sandbox, obj):
    group, version, plural = PATHS[obj["kind"]]
    try:
        sandbox.custom.delete_cluster_custom_object(group, version, plural, obj["metadata"]["name"])
    except Exception:  # noqa: BLE001 - best effort cleanup
        pass


def explain(case, status, body, res):
    return "%s (%s, expected %s): apiserver HTTP %s %s\n  offline: %s" % (
        case["id"],
        case.get("covers"),
        case["expect"],
        status,
        body.get("message") if status not in (200, 201) else "accepted",
        "; ".join(str(i) for i in res.errors) or "no error",
    )


def test_corpus_is_well_formed():
    assert len(CASES) >= 40
    assert len(set(IDS)) == len(IDS), "duplicate corpus ids"
    for c in CASES:
        assert c["expect"] in EXPECT, c["id"]
        assert c["base"] in BASES, c["id"]
        assert c.get("covers"), c["id"]
    kinds = {BASES[c["base"]]["kind"] for c in CASES}
    assert kinds == {"NodePool", "EC2NodeClass"}


def _offline_rules():
    """{rule: [case ids]} of every issue the corpus produces offline."""
    seen = {}
    for c in CASES:
        obj = build(c, "cover")
        old = build(c, "cover", "old_patch") if "old_patch" in c else None
        try:
            errors = validate.validate(obj, old=old).errors
        except Exception:  # noqa: BLE001 - a crash is reported by test_offline_verdict_equals_apiserver
            continue
        for i in errors:
            seen.setdefault((i.source, i.rule), []).append(c["id"])
    return seen


def test_corpus_covers_every_cel_rule():
    """Each x-kubernetes-validations rule of both CRDs fails for at least one corpus object."""
    seen = {rule for (source, rule) in _offline_rules() if source == "cel"}
    missing = []
    for (_api_version, kind), crd in schema.CRDS.items():
        for path, rule in cel.iter_rules(crd.SCHEMA):
            if path.startswith("status") or rule["rule"] in seen:
                continue
            missing.append("%s %s: %s" % (kind, path, rule["rule"]))
    assert not missing, "CEL rules no corpus object violates:\n  " + "\n  ".join(missing)


def test_corpus_covers_every_schema_rule_family():
    seen = {rule for (source, rule) in _offline_rules() if source in ("schema", "runtime")}
    families = {
        "type",
        "required",
        "enum",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "maxProperties",
        "x-kubernetes-list-type",
        "unknown-field",
        "name",
        "label-value",
        # Karpenter runtime validation
        "well-known-values",
        "duplicate-taint",
    }
    assert families <= seen, "rule families no corpus object triggers: %s" % sorted(families - seen)


def dry_run_update(sandbox, obj):
    """Dry-run PUT of ``obj`` over the live object; returns (status, body, live). Retries when a controller
    (Karpenter writes status and annotations) changed the object between the GET and the PUT."""
    group, version, plural = PATHS[obj["kind"]]
    for _ in range(10):
        live = sandbox.custom.get_cluster_custom_object(group, version, plural, obj["metadata"]["name"])
        obj["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        status, body = call(sandbox, "PUT", obj, name=obj["metadata"]["name"])
        if status != 409:
            return status, body, live
    raise AssertionError("dry-run update kept conflicting: %s" % body)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_offline_verdict_equals_apiserver(sandbox, served_rules, uid, case):
    obj = build(case, uid)
    created = None
    try:
        old_live = None
        if "old_patch" in case:
            old = build(case, uid, "old_patch")
            status, created = call(sandbox, "POST", old, dry_run=False)
            assert status == 201, "could not create the old object of %s: %s" % (case["id"], created)
            status, body, old_live = dry_run_update(sandbox, obj)
        else:
            status, body = call(sandbox, "POST", obj)
        assert status < 500, "apiserver error for %s: %s" % (case["id"], body)
        res = validate.validate(obj, old=old_live)
    finally:
        if created:
            delete(sandbox, created)

    api_ok = status in (200, 201)
    runtime_errors = [i for i in res.errors if i.source == "runtime"]
    unserved = [i for i in res.errors if i.source == "cel" and i.rule not in served_rules[obj["kind"]]]
    assert not unserved, "offline errors from rules the sandbox does not serve: %s" % unserved
    api_errors = [i for i in res.errors if i.source != "runtime"]
    why = explain(case, status, body, res)

    # the verdict: offline "the apiserver will accept it" == the apiserver accepted it
    assert api_ok == (not api_errors), "verdicts differ: " + why
    if case["expect"] != "runtime":
        assert api_ok == res.ok, "validate().ok differs from the apiserver: " + why

    # the corpus entry tests what it says
    if case["expect"] == "valid":
        assert api_ok and res.ok, why
    elif case["expect"] == "apiserver":
        assert not api_ok, why
        # and the offline error names a field the apiserver names too
        text = json.dumps(body)
        assert any(i.path.split("[")[0] in text for i in api_errors), "no common field path: " + why
    else:
        assert api_ok and runtime_errors, why


RUNTIME_CASES = [c for c in CASES if c["expect"] == "runtime"]
CONTROL_CASES = [
    c for c in CASES if c["id"] in ("np-base", "np-req-aws-allowed-tenancy", "np-full", "nc-base", "nc-eviction-100pct")
]


def _validation_condition(sandbox, kind, name):
    group, version, plural = PATHS[kind]
    obj = sandbox.custom.get_cluster_custom_object(group, version, plural, name)
    gen = obj["metadata"].get("generation")
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == "ValidationSucceeded" and c.get("observedGeneration", gen) >= gen and c["status"] != "Unknown":
            return c
    return None


@pytest.mark.parametrize("case", RUNTIME_CASES + CONTROL_CASES, ids=[c["id"] for c in RUNTIME_CASES + CONTROL_CASES])
def test_runtime_verdict_equals_karpenter(sandbox, uid, case):
    """Karpenter (AWS provider) agrees: runtime-invalid NodePools and EC2NodeClasses (v1.15 validates spec.kubelet
    only at runtime) get ValidationSucceeded=False, the controls True."""
    obj = build(case, uid)
    status, created = call(sandbox, "POST", obj, dry_run=False)
    assert status == 201, created
    try:
        cond = sandbox.wait_until(
            "ValidationSucceeded on %s" % obj["metadata"]["name"],
            lambda: _validation_condition(sandbox, obj["kind"], obj["metadata"]["name"]),
            60,
        )
    finally:
        delete(sandbox, obj)
    res = validate.validate(obj)
    runtime_errors = [i for i in res.errors if i.source == "runtime"]
    karpenter_ok = cond["status"] == "True"
    assert karpenter_ok == (not runtime_errors), "%s: Karpenter says %s (%s), offline runtime errors: %s" % (
        case["id"],
        cond["status"],
        cond.get("message"),
        [str(i) for i in runtime_errors],
    )
    assert karpenter_ok == (case["expect"] == "valid")
